//! The state directory: `--root` (default `/run/rvisor`), one directory per
//! container holding `state.json` (written atomically: temp file + rename,
//! under an exclusive flock on the directory) and the VMM's control socket.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

/// Default `--root`.
pub const DEFAULT_ROOT: &str = "/run/rvisor";

/// What we remember about a container.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    /// The VMM process (the pid in `--pid-file`).
    pub pid: i32,
    /// The VMM's start time (clock ticks since boot, /proc/PID/stat field
    /// 22), so a recycled pid is not mistaken for it.
    pub pid_start: u64,
    pub bundle: String,
    pub rootfs: String,
    /// "created", "running" or "paused" as last recorded; "stopped" is
    /// derived from the VMM being gone.
    pub status: String,
    /// RFC 3339 creation time.
    pub created: String,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub owner: String,
}

/// Checks a container id: what runc accepts, nothing that could name
/// another path.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
    if !ok {
        bail!("invalid container id format {id:?}");
    }
    Ok(())
}

/// A container's directory under the state root.
pub struct Dir {
    pub path: PathBuf,
}

impl Dir {
    pub fn new(root: &Path, id: &str) -> Result<Dir> {
        check_id(id)?;
        Ok(Dir { path: root.join(id) })
    }

    /// Creates the directory for a new container; fails if it exists.
    pub fn create(&self) -> Result<()> {
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating state root {}", parent.display()))?;
        }
        match std::fs::create_dir(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                bail!("container with id exists: {}", self.id())
            }
            Err(e) => Err(e).with_context(|| format!("creating state directory {}", self.path.display())),
        }
    }

    pub fn id(&self) -> String {
        self.path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// Holds an exclusive lock on the directory until dropped.
    pub fn lock(&self) -> Result<Lock> {
        let f = File::open(&self.path).with_context(|| format!("container {} does not exist", self.id()))?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map(Lock)
            .map_err(|(_, e)| anyhow!("locking {}: {e}", self.path.display()))
    }

    pub fn load(&self) -> Result<State> {
        let p = self.path.join("state.json");
        let data = std::fs::read(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow!("container {} does not exist", self.id())
            } else {
                anyhow!("reading {}: {e}", p.display())
            }
        })?;
        serde_json::from_slice(&data).with_context(|| format!("corrupt state file {}", p.display()))
    }

    /// Writes state.json atomically.
    pub fn save(&self, s: &State) -> Result<()> {
        let tmp = self.path.join(".state.json.tmp");
        let mut f = File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(&serde_json::to_vec(s)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.path.join("state.json"))?;
        Ok(())
    }

    /// The VMM's control socket.
    pub fn socket(&self) -> PathBuf {
        self.path.join("control.sock")
    }
}

/// An flock held on a state directory.
pub struct Lock(#[allow(dead_code)] nix::fcntl::Flock<File>);

/// Start time of `pid` (field 22 of /proc/PID/stat), None if it is gone
/// or a zombie.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

impl State {
    /// Whether the VMM still runs.
    pub fn alive(&self) -> bool {
        self.pid > 0 && start_time(self.pid) == Some(self.pid_start)
    }

    /// The status as runc reports it.
    pub fn current_status(&self) -> String {
        if self.alive() {
            self.status.clone()
        } else {
            "stopped".into()
        }
    }

    /// runc's `state` JSON.
    pub fn to_oci(&self) -> serde_json::Value {
        let alive = self.alive();
        serde_json::json!({
            "ociVersion": crate::OCI_SPEC_VERSION,
            "id": self.id,
            "pid": if alive { self.pid } else { 0 },
            "status": self.current_status(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
            "annotations": self.annotations,
        })
    }
}

/// Now as RFC 3339 with nanoseconds, UTC (what runc writes).
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["abc", "rvh-runc-echo", "0123456789abcdef", "a.b_c+d"] {
            check_id(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "x\0y"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn time_format() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 30, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T');
    }

    #[test]
    fn own_start_time() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some());
        assert!(start_time(-5).is_none());
    }
}
