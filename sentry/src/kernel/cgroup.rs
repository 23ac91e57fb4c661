//! The container's resource limits as the sentry holds them (Linux:
//! kernel/cgroup, mm/memcontrol.c). The host cgroup around the VMM is the
//! backstop, but it counts the VMM and sees none of the sandbox's
//! processes; the sentry knows them, so it keeps the limits the spec
//! gave (boot settings, then `rvisor update`), enforces the memory and
//! pids limits itself and builds the /sys/fs/cgroup the programs read
//! (fs/cgroupfs.rs) from these numbers and its own live usage.

use alloc::string::String;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;

/// The limits; `None` is "max" (no limit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of memory (memory.limit_in_bytes / memory.max).
    pub memory: Option<u64>,
    /// Memory plus swap (v1 memory.memsw.limit_in_bytes).
    pub memsw: Option<u64>,
    /// Soft limit (memory.soft_limit_in_bytes / memory.low).
    pub reservation: Option<u64>,
    /// CFS quota per period in µs (cpu.cfs_quota_us; None = -1).
    pub cpu_quota: Option<u64>,
    /// CFS period in µs.
    pub cpu_period: u64,
    /// cpu.shares.
    pub cpu_shares: u64,
    /// cpuset.cpus ("" = all of the sandbox's vCPUs).
    pub cpus: String,
    /// cpuset.mems ("" = node 0).
    pub mems: String,
    /// blkio.weight (0 = the default).
    pub blkio_weight: u64,
    /// Bytes of the memory limit charged on the host to the VMM and its
    /// helpers rather than to the sandbox's processes.
    pub reserve: u64,
}

impl Limits {
    const fn new() -> Limits {
        Limits {
            memory: None,
            memsw: None,
            reservation: None,
            cpu_quota: None,
            cpu_period: 100_000,
            cpu_shares: 1024,
            cpus: String::new(),
            mems: String::new(),
            blkio_weight: 0,
            reserve: VMM_RESERVE,
        }
    }
}

static LIMITS: Mutex<Limits> = Mutex::new(Limits::new());

/// Times a page could not be charged under the memory limit (memory.failcnt).
pub static FAILCNT: AtomicU64 = AtomicU64::new(0);
/// Processes killed because memory ran out (memory.oom_control's oom_kill).
pub static OOM_KILLS: AtomicU64 = AtomicU64::new(0);
/// Times the sandbox ran out of memory (v2 memory.events "oom").
pub static OOMS: AtomicU64 = AtomicU64::new(0);
/// Forks refused by the pids limit (pids.events "max").
pub static PIDS_REFUSED: AtomicU64 = AtomicU64::new(0);

/// A copy of the current limits.
pub fn limits() -> Limits {
    LIMITS.lock().clone()
}

/// "max", "-1" and negative numbers are no limit.
fn parse_limit(v: &str) -> Option<Option<u64>> {
    match v {
        "max" | "-1" => Some(None),
        _ if v.starts_with('-') => v[1..].parse::<u64>().ok().map(|_| None),
        _ => v.parse::<u64>().ok().map(Some),
    }
}

/// Sets one limit from a `cg.KEY=VALUE` setting (boot or `rvisor update`);
/// false for an unknown key or a malformed value, which changes nothing.
pub fn set(key: &str, value: &str) -> bool {
    let mut l = LIMITS.lock();
    let ok = match key {
        "memory" => parse_limit(value).map(|v| l.memory = v.filter(|&b| b > 0)),
        "memsw" => parse_limit(value).map(|v| l.memsw = v.filter(|&b| b > 0)),
        "reservation" => parse_limit(value).map(|v| l.reservation = v.filter(|&b| b > 0)),
        "cpu_quota" => parse_limit(value).map(|v| l.cpu_quota = v.filter(|&q| q > 0)),
        "cpu_period" => value.parse::<u64>().ok().filter(|&p| p > 0).map(|p| l.cpu_period = p),
        "cpu_shares" => value.parse::<u64>().ok().filter(|&s| s > 0).map(|s| l.cpu_shares = s),
        "cpus" if value.bytes().all(|b| b.is_ascii_digit() || b == b',' || b == b'-') => {
            l.cpus = value.into();
            Some(())
        }
        "mems" if value.bytes().all(|b| b.is_ascii_digit() || b == b',' || b == b'-') => {
            l.mems = value.into();
            Some(())
        }
        "blkio_weight" => value.parse::<u64>().ok().map(|w| l.blkio_weight = w),
        "reserve" => value.parse::<u64>().ok().map(|r| l.reserve = r),
        _ => None,
    }
    .is_some();
    if ok && (key == "memory" || key == "reserve") {
        crate::mm::frame::set_limit(l.memory.map(|m| m - l.reserve.min(m / 2)));
    }
    ok
}

/// Memory of the host cgroup's limit the sandbox's processes do not get
/// until the VMM measures it (`reserve`): the host charges the VMM (its
/// heap and stacks, the sentry's image, page tables, the hypervisor's
/// shadow tables), the gofer and the OOM reporter to the same cgroup.
/// Without it the host's OOM killer would end the whole sandbox before
/// the sentry picks a process; runsc has the same cost.
pub const VMM_RESERVE: u64 = 32 << 20;

/// Applies `cg.KEY=VALUE` lines (the form both boot and update use);
/// other lines are not ours and are skipped.
pub fn apply(settings: &[String]) {
    for s in settings {
        if let Some((k, v)) = s.strip_prefix("cg.").and_then(|kv| kv.split_once('=')) {
            set(k, v);
        }
    }
}

/// Bytes of memory the sandbox uses: every frame handed out (application
/// pages, tmpfs and shared memory, page tables) and the sentry's heap in
/// use — what a memory cgroup charges for the same work.
pub fn memory_usage() -> u64 {
    crate::mm::frame::charged_bytes()
}

/// The most memory the sandbox has used at once.
pub fn memory_peak() -> u64 {
    crate::mm::frame::peak_bytes()
}

/// CPU time the sandbox's processes have used, exited ones included
/// (cpuacct.usage): each process's own time and that of the children it
/// reaped, zombies too, so every process is counted exactly once.
pub fn cpu_usage() -> super::sched::CpuTimes {
    super::process::all_processes()
        .iter()
        .map(|p| p.cpu_times() + p.children_times())
        .fold(super::sched::CpuTimes::default(), |a, b| a + b)
}

/// The effective CPU list: the cpuset if one was given, else every vCPU.
pub fn effective_cpus() -> String {
    let l = LIMITS.lock();
    if !l.cpus.is_empty() {
        return l.cpus.clone();
    }
    drop(l);
    match crate::kernel::get().num_cpus {
        0 | 1 => "0".into(),
        n => alloc::format!("0-{}", n - 1),
    }
}

/// The v1 hierarchies mounted (None: v2 only).
static V1_HIERARCHIES: Mutex<Option<alloc::vec::Vec<String>>> = Mutex::new(None);

/// Records the v1 hierarchies the cgroup mount shows (for /proc/self/cgroup).
pub fn set_v1_hierarchies(h: alloc::vec::Vec<String>) {
    *V1_HIERARCHIES.lock() = Some(h);
}

/// /proc/<pid>/cgroup: every process is at the root of each hierarchy,
/// as a cgroup namespace shows it (hierarchy ids descending, as Linux
/// lists them; the v2 one is 0).
pub fn proc_cgroup() -> String {
    let mut s = String::new();
    if let Some(hs) = V1_HIERARCHIES.lock().as_ref() {
        let v1: alloc::vec::Vec<&String> = hs.iter().filter(|h| *h != "unified").collect();
        for (i, h) in v1.iter().enumerate().rev() {
            s.push_str(&alloc::format!("{}:{}:/\n", i + 1, h));
        }
    }
    s.push_str("0::/\n");
    s
}

/// Notes a fork refused by the pids limit.
pub fn note_pids_refused() {
    PIDS_REFUSED.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_like_the_cgroup_files() {
        assert_eq!(parse_limit("max"), Some(None));
        assert_eq!(parse_limit("-1"), Some(None));
        assert_eq!(parse_limit("67108864"), Some(Some(67108864)));
        assert_eq!(parse_limit("6x"), None);
        assert!(set("cpu_quota", "50000"));
        assert!(set("cpu_period", "100000"));
        assert!(!set("cpu_period", "0"));
        assert!(!set("cpus", "0;rm"));
        assert!(!set("nonsense", "1"));
        let l = limits();
        assert_eq!((l.cpu_quota, l.cpu_period), (Some(50000), 100000));
        assert!(set("cpu_quota", "-1"));
        assert_eq!(limits().cpu_quota, None);
    }
}
