//! Tells the container's runtime about the sentry's OOM kills.
//!
//! The sentry enforces the memory limit itself and kills the largest
//! process in the sandbox, as Linux's memory cgroup would; the host
//! cgroup (same limit, but it charges less: what the VMM touched before
//! joining it stays charged elsewhere) does not run out first. But the
//! runtimes learn of OOM kills only from the host cgroup (conmon and
//! containerd's shim watch memory.oom_control or memory.events), so
//! `podman inspect` / `docker inspect` would not say OOMKilled. The
//! reporter makes that event real: a small process started with the
//! VMM waits; at the sentry's first OOM kill it joins the container's
//! memory cgroup with oom_score_adj 1000 and allocates until the host's
//! OOM killer ends it — the VMM, with a lower score and less memory than
//! the whole limit, is never chosen. It only acts where that is sure to
//! be harmless: OOM kills enabled, not a group kill (v2 memory.oom.group),
//! no swap the allocation could push the sandbox into, and a VMM whose
//! own oom_score_adj cannot make it outscore the reporter.

use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The VMM's end: a byte written asks the reporter to act.
pub struct Reporter {
    pipe: std::io::PipeWriter,
    child: std::process::Child,
}

impl Reporter {
    /// Starts the reporter for the container's memory cgroup (`cgroups`'
    /// "memory" hierarchy, or the v2 one). None: no memory cgroup.
    pub fn start(cgroups: &super::cgroup::Cgroups) -> Result<Option<Reporter>> {
        let Some((dir, _)) = cgroups.memory_dir() else { return Ok(None) };
        let (r, w) = std::io::pipe().context("oom reporter pipe")?;
        let child = std::process::Command::new("/proc/self/exe")
            .arg("oom-reporter")
            .arg(&dir)
            .arg(std::process::id().to_string())
            .stdin(r)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting the oom reporter")?;
        Ok(Some(Reporter { pipe: w, child }))
    }

    /// The sentry has OOM-killed a process: make the host cgroup see one,
    /// and wait (a little) until it has, so that a sandbox ending now
    /// does not end before its runtime hears of it.
    pub fn report(mut self) {
        if self.pipe.write_all(b"o").is_err() {
            return;
        }
        drop(self.pipe);
        for _ in 0..300 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

#[derive(clap::Args)]
pub struct ReporterArgs {
    /// The container's memory cgroup directory.
    dir: PathBuf,
    /// The VMM's pid.
    vmm: u32,
}

/// `rvisor oom-reporter DIR VMM`: waits on stdin; acts on a byte, ends on EOF.
pub fn reporter_main(a: &ReporterArgs) -> i32 {
    let mut b = [0u8; 1];
    if !matches!(std::io::stdin().read(&mut b), Ok(1)) {
        return 0;
    }
    match act(&a.dir, a.vmm) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rvisor oom-reporter: {e:#}");
            1
        }
    }
}

/// Whether a host OOM in `dir` would kill only a process with oom_score_adj 1000.
fn safe_to_act(dir: &Path, vmm: u32) -> Result<u64> {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).map(|s| s.trim().to_string());
    let v1 = dir.join("memory.limit_in_bytes").exists();
    let limit: u64 = if v1 { read("memory.limit_in_bytes")? } else { read("memory.max")? }.parse().context("no memory limit")?;
    anyhow::ensure!(limit < 1 << 50, "no memory limit");
    let swap_total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find_map(|l| l.strip_prefix("SwapTotal:").map(|v| v.trim().trim_end_matches(" kB").trim().to_string())))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if v1 {
        anyhow::ensure!(read("memory.oom_control")?.contains("oom_kill_disable 0"), "OOM kills are disabled");
        let memsw = read("memory.memsw.limit_in_bytes").ok().and_then(|v| v.parse::<u64>().ok());
        anyhow::ensure!(swap_total == 0 || memsw == Some(limit), "the container may swap");
    } else {
        anyhow::ensure!(read("memory.oom.group").map_or(true, |g| g == "0"), "a group OOM would kill the VMM");
        anyhow::ensure!(swap_total == 0 || read("memory.swap.max").is_ok_and(|s| s == "0"), "the container may swap");
    }
    // The host's OOM killer scores rss + adj * limit / 1000: this process
    // (adj 1000) scores at least the limit plus what it holds, the VMM its
    // rss (at most the limit minus that) plus its adj's share; the
    // runtimes often give the VMM an adj of a few points.
    let adj: i64 = std::fs::read_to_string(format!("/proc/{vmm}/oom_score_adj"))?.trim().parse()?;
    let usage: u64 = if v1 { read("memory.usage_in_bytes")? } else { read("memory.current")? }.parse()?;
    let ours = limit.saturating_sub(usage);
    anyhow::ensure!(adj <= 0 || 2 * ours > (adj as u64).saturating_mul(limit) / 1000 + (2 << 20), "the VMM's oom_score_adj is {adj}");
    Ok(limit)
}

fn act(dir: &Path, vmm: u32) -> Result<()> {
    let limit = safe_to_act(dir, vmm)?;
    std::fs::write("/proc/self/oom_score_adj", "1000").context("oom_score_adj")?;
    std::fs::write(dir.join("cgroup.procs"), std::process::id().to_string()).context("joining the memory cgroup")?;
    // Touch memory until the host's OOM killer ends this process; give
    // up (no OOM came) past the limit itself.
    let mut held: Vec<Vec<u8>> = Vec::new();
    let chunk = 1 << 20;
    while (held.len() as u64) * chunk as u64 <= limit + (64 << 20) {
        held.push(vec![0x5a; chunk]);
        std::hint::black_box(held.last());
    }
    anyhow::bail!("allocated past the limit without an OOM kill")
}
