//! OCI hooks: host programs run at lifecycle points with the container's
//! state JSON on stdin; a failing or timed-out hook fails the step, as
//! with runc (Docker wires networking through its prestart hook).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::Hook;

use super::state::State;

/// Runs each hook in order.
pub fn run_all(hooks: &Option<Vec<Hook>>, st: &State) -> Result<()> {
    for h in hooks.iter().flatten() {
        run(h, st)?;
    }
    Ok(())
}

fn run(h: &Hook, st: &State) -> Result<()> {
    let path = h.path();
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(path);
    if let Some(first) = args.first() {
        std::os::unix::process::CommandExt::arg0(&mut cmd, first);
        cmd.args(&args[1..]);
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("running hook {}", path.display()))?;
    let body = serde_json::to_vec(&st.to_oci())?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(&body);
    }
    let limit = h.timeout().map(|t| Duration::from_secs(t.max(1) as u64));
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            if status.success() {
                return Ok(());
            }
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            bail!("hook {} failed ({status}): {}", path.display(), err.trim());
        }
        if limit.is_some_and(|l| start.elapsed() > l) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("hook {} timed out", path.display());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
