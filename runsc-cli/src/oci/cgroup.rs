//! The container's cgroup on the host, as runc makes it: the VMM process
//! (the whole sandbox) goes into `linux.cgroupsPath` in every hierarchy,
//! with the spec's memory, pids and cpu limits. The guest's memory is the
//! VMM's, so the host kernel enforces the memory limit (an OOM kill ends
//! the container with 137, as with runc); `podman stats` and `ctr task
//! metrics` read the usage there. The sandbox sees its own cgroup
//! read-only at /sys/fs/cgroup (bound into the VMM's mount namespace).
//!
//! cgroup v1 (one hierarchy per controller, this machine's hybrid layout)
//! and v2 (the unified hierarchy) are both handled.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::Spec;

/// Where the cgroup filesystems live.
const ROOT: &str = "/sys/fs/cgroup";

/// A hierarchy: its mount point and its controllers (v2: `unified`).
#[derive(Debug, Clone)]
struct Hierarchy {
    mount: PathBuf,
    controllers: Vec<String>,
    v2: bool,
}

/// The cgroup hierarchies mounted under /sys/fs/cgroup (from mountinfo).
fn hierarchies() -> Vec<Hierarchy> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out = Vec::new();
    for line in info.lines() {
        let Some((pre, post)) = line.split_once(" - ") else { continue };
        let mount = pre.split(' ').nth(4).unwrap_or("");
        let mut post = post.split(' ');
        let fstype = post.next().unwrap_or("");
        let _source = post.next();
        let opts = post.next().unwrap_or("");
        if !mount.starts_with(ROOT) {
            continue;
        }
        match fstype {
            "cgroup" => out.push(Hierarchy {
                mount: mount.into(),
                controllers: opts.split(',').filter(|o| !matches!(*o, "rw" | "ro" | "relatime" | "nosuid" | "nodev" | "noexec")).map(String::from).collect(),
                v2: false,
            }),
            "cgroup2" => out.push(Hierarchy { mount: mount.into(), controllers: vec!["unified".into()], v2: true }),
            _ => {}
        }
    }
    out
}

/// The container's cgroup path (absolute, no `..`).
fn cgroup_path(spec: &Spec, id: &str) -> Result<PathBuf> {
    let p = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone()).unwrap_or_else(|| PathBuf::from(format!("/rvisor/{id}")));
    let s = p.to_string_lossy();
    if s.contains(':') {
        return systemd_path(&s);
    }
    if p.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        bail!("cgroupsPath {s:?} must not contain ..");
    }
    Ok(Path::new("/").join(p.strip_prefix("/").unwrap_or(&p)))
}

/// systemd's "slice:prefix:name" (`--systemd-cgroup`), placed where systemd
/// would put the unit in the cgroupfs tree: the slice's ancestry, then
/// `prefix-name.scope`. There is no systemd to ask here, so rvisor makes
/// the directories itself, as runc's cgroupfs fallback does.
fn systemd_path(s: &str) -> Result<PathBuf> {
    let parts: Vec<&str> = s.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        bail!("cgroupsPath {s:?}: expected \"slice:prefix:name\" for systemd cgroups");
    };
    let slice = if slice.is_empty() { "system.slice" } else { slice };
    let ok = |x: &str| !x.is_empty() && !x.contains('/') && x != "." && x != "..";
    if !slice.ends_with(".slice") || !ok(slice) || !ok(name) || prefix.contains('/') {
        bail!("cgroupsPath {s:?}: invalid systemd slice or unit name");
    }
    // "a-b.slice" lives in "a.slice": each dash is a level.
    let mut path = PathBuf::from("/");
    if slice != "-.slice" {
        let stem = &slice[..slice.len() - ".slice".len()];
        let mut acc = String::new();
        for (i, part) in stem.split('-').enumerate() {
            if part.is_empty() {
                bail!("cgroupsPath {s:?}: invalid slice name {slice:?}");
            }
            if i > 0 {
                acc.push('-');
            }
            acc.push_str(part);
            path.push(format!("{acc}.slice"));
        }
    }
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    path.push(unit);
    Ok(path)
}

/// The directories made for a container, to remove on delete.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Cgroups {
    /// Per hierarchy: (controllers joined by ',', directory).
    pub dirs: Vec<(String, PathBuf)>,
}

fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    std::fs::write(dir.join(file), value).with_context(|| format!("setting {} to {value}", dir.join(file).display()))
}

/// cpuset needs cpus and mems before a process may join: copy them down
/// from the nearest ancestor that has them.
fn init_cpuset(mount: &Path, dir: &Path) {
    let mut chain = Vec::new();
    let mut d = dir.to_path_buf();
    while d.starts_with(mount) && d != mount {
        chain.push(d.clone());
        d = d.parent().map(Path::to_path_buf).unwrap_or_default();
    }
    for d in chain.into_iter().rev() {
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let cur = std::fs::read_to_string(d.join(f)).unwrap_or_default();
            if cur.trim().is_empty() {
                if let Some(parent) = d.parent() {
                    let v = std::fs::read_to_string(parent.join(f)).unwrap_or_default();
                    let _ = std::fs::write(d.join(f), v.trim());
                }
            }
        }
    }
}

/// Makes the container's cgroups and applies the spec's limits.
pub fn create(spec: &Spec, id: &str) -> Result<Cgroups> {
    let path = cgroup_path(spec, id)?;
    let rel = path.strip_prefix("/").unwrap_or(&path).to_path_buf();
    let res = spec.linux().as_ref().and_then(|l| l.resources().clone());
    let mut made = Cgroups::default();
    for h in hierarchies() {
        let dir = h.mount.join(&rel);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            // A hierarchy we may not use (read-only, or v2 without
            // delegation) is skipped; the limits that matter are checked below.
            log::debug!("cgroup {}: {e}", dir.display());
            continue;
        }
        made.dirs.push((h.controllers.join(","), dir.clone()));
        if h.controllers.iter().any(|c| c == "cpuset") {
            init_cpuset(&h.mount, &dir);
        }
    }
    if let Some(res) = &res {
        // A limit the kernel refuses fails `create`: take the directories
        // back so nothing is left behind.
        if let Err(e) = made.apply(res) {
            made.remove();
            return Err(e);
        }
    }
    Ok(made)
}

fn apply_v2(mount: &Path, dir: &Path, res: &oci_spec::runtime::LinuxResources) -> Result<()> {
    // Controllers must be enabled in every ancestor's subtree_control.
    let mut d = dir.parent().map(Path::to_path_buf);
    let mut chain = Vec::new();
    while let Some(p) = d {
        if !p.starts_with(mount) {
            break;
        }
        chain.push(p.clone());
        d = p.parent().map(Path::to_path_buf);
    }
    for p in chain.into_iter().rev() {
        let _ = std::fs::write(p.join("cgroup.subtree_control"), "+memory +pids +cpu");
    }
    if let Some(m) = res.memory() {
        let (limit, swap) = (m.limit().unwrap_or(0), m.swap().unwrap_or(0));
        // v1's memory+swap becomes v2's swap alone (runc's conversion).
        let swap_max = match (swap, limit) {
            (0, _) => None,
            (-1, _) => Some("max".to_string()),
            (_, 0 | -1) => bail!("invalid memory+swap limit {swap}: it needs a memory limit"),
            (s, l) if s < l => bail!("memory+swap limit {s} should be larger than memory limit {l}"),
            (s, l) => Some((s - l).to_string()),
        };
        match limit {
            -1 => write(dir, "memory.max", "max")?,
            l if l > 0 => write(dir, "memory.max", &l.to_string())?,
            _ => {}
        }
        if let Some(v) = swap_max {
            // Without swap accounting the file is missing: fine.
            let _ = std::fs::write(dir.join("memory.swap.max"), v);
        }
    }
    if let Some(v) = res.pids().map(|p| p.limit()).and_then(pids_value) {
        write(dir, "pids.max", &v)?;
    }
    if let Some(r) = res.memory().as_ref().and_then(|m| m.reservation()).filter(|r| *r > 0) {
        write(dir, "memory.low", &r.to_string())?;
    }
    for h in res.hugepage_limits().iter().flatten() {
        let _ = std::fs::write(dir.join(format!("hugetlb.{}.max", h.page_size())), h.limit().to_string());
    }
    if let Some(w) = res.block_io().as_ref().and_then(|b| b.weight()).filter(|w| *w > 0) {
        // blkio weight 10..1000 to io.weight 1..10000, as runc converts.
        let _ = std::fs::write(dir.join("io.weight"), (1 + (u64::from(w).saturating_sub(10)) * 9999 / 990).to_string());
    }
    if let Some(c) = res.cpu() {
        // runc: "max" unless a positive quota, then the period if given.
        let (quota, period) = (c.quota().unwrap_or(0), c.period().unwrap_or(0));
        if quota != 0 || period != 0 {
            let mut v = if quota > 0 { quota.to_string() } else { "max".into() };
            if period != 0 {
                v.push_str(&format!(" {period}"));
            }
            write(dir, "cpu.max", &v)?;
        }
        if let Some(s) = c.shares().filter(|s| *s > 0) {
            // cpu.shares 2..262144 to cpu.weight 1..10000, as runc converts.
            let _ = std::fs::write(dir.join("cpu.weight"), (1 + (s.clamp(2, 262_144) - 2) * 9999 / 262_142).to_string());
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
            write(dir, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = c.mems().as_deref().filter(|v| !v.is_empty()) {
            write(dir, "cpuset.mems", mems)?;
        }
    }
    Ok(())
}

/// pids.max for a spec limit: runc leaves 0 alone and writes "max" for
/// a negative one. The sandbox's tasks are not host tasks (the sentry
/// counts and limits them); on the host the cgroup holds the VMM's own
/// threads (vCPUs, control, console, exec waiters), so a smaller limit
/// is raised to what those need: written as given, `--pids-limit 5`
/// made the VMM fail to start its threads.
fn pids_value(limit: i64) -> Option<String> {
    let vmm_threads = 32 + 2 * std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
    match limit {
        0 => None,
        l if l > 0 => Some(l.max(vmm_threads).to_string()),
        _ => Some("max".into()),
    }
}

/// The limits the sentry keeps (kernel/cgroup.rs), as `cg.KEY=VALUE`
/// settings, for the ones `res` sets.
pub fn sentry_settings(res: &oci_spec::runtime::LinuxResources) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(m) = res.memory() {
        if let Some(l) = m.limit().filter(|l| *l != 0) {
            out.push(format!("cg.memory={l}"));
            if l < 0 && m.swap().is_none() {
                out.push("cg.memsw=-1".into());
            }
        }
        if let Some(s) = m.swap().filter(|s| *s != 0) {
            out.push(format!("cg.memsw={s}"));
        }
        if let Some(r) = m.reservation().filter(|r| *r != 0) {
            out.push(format!("cg.reservation={r}"));
        }
    }
    if let Some(c) = res.cpu() {
        if let Some(q) = c.quota().filter(|q| *q != 0) {
            out.push(format!("cg.cpu_quota={q}"));
        }
        if let Some(p) = c.period().filter(|p| *p != 0) {
            out.push(format!("cg.cpu_period={p}"));
        }
        if let Some(sh) = c.shares().filter(|s| *s != 0) {
            out.push(format!("cg.cpu_shares={sh}"));
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
            out.push(format!("cg.cpus={cpus}"));
        }
        if let Some(mems) = c.mems().as_deref().filter(|v| !v.is_empty()) {
            out.push(format!("cg.mems={mems}"));
        }
    }
    if let Some(w) = res.block_io().as_ref().and_then(|b| b.weight()).filter(|w| *w > 0) {
        out.push(format!("cg.blkio_weight={w}"));
    }
    out
}

/// cgroup v1's memory limit and memory+swap limit, in the order runc
/// writes them so that neither is ever below the other (the kernel
/// refuses that); -1 is unlimited, and an unlimited memory limit takes
/// the swap limit along.
fn apply_v1_memory(dir: &Path, m: &oci_spec::runtime::LinuxMemory) -> Result<()> {
    const SWAP: &str = "memory.memsw.limit_in_bytes";
    let limit = m.limit().unwrap_or(0);
    let mut swap = m.swap().unwrap_or(0);
    let has_swap = dir.join(SWAP).exists();
    if limit == -1 && swap == 0 && has_swap {
        swap = -1;
    }
    let set_limit = || write(dir, "memory.limit_in_bytes", &limit.to_string());
    let set_swap = || if has_swap { write(dir, SWAP, &swap.to_string()) } else { Ok(()) };
    if limit != 0 && swap != 0 {
        let cur: i64 = std::fs::read_to_string(dir.join("memory.limit_in_bytes")).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(i64::MAX);
        if swap == -1 || cur < swap {
            set_swap()?;
            set_limit()?;
        } else {
            set_limit()?;
            set_swap()?;
        }
    } else {
        if limit != 0 {
            set_limit()?;
        }
        if swap != 0 {
            set_swap()?;
        }
    }
    Ok(())
}

impl Cgroups {
    /// Writes resource limits into the container's cgroups (at create and
    /// for `update`).
    pub fn apply(&self, res: &oci_spec::runtime::LinuxResources) -> Result<()> {
        // Hybrid hosts (v1 controllers plus an empty cgroup2, this
        // machine): the limits go to v1; cgroup2 only tracks membership.
        let hybrid = self.dirs.iter().any(|(c, _)| c != "unified");
        for (controllers, dir) in &self.dirs {
            let has = |c: &str| controllers.split(',').any(|x| x == c);
            if has("unified") {
                if !hybrid {
                    let mount = hierarchies().into_iter().find(|h| h.v2).map(|h| h.mount).unwrap_or_else(|| ROOT.into());
                    apply_v2(&mount, dir, res)?;
                }
                continue;
            }
            if has("memory") {
                if let Some(m) = res.memory() {
                    if let Some(r) = m.reservation().filter(|r| *r != 0) {
                        write(dir, "memory.soft_limit_in_bytes", &r.to_string())?;
                    }
                    apply_v1_memory(dir, m)?;
                }
            }
            if has("pids") {
                if let Some(v) = res.pids().map(|p| p.limit()).and_then(pids_value) {
                    write(dir, "pids.max", &v)?;
                }
            }
            if has("cpu") {
                if let Some(c) = res.cpu() {
                    if let Some(p) = c.period().filter(|p| *p > 0) {
                        write(dir, "cpu.cfs_period_us", &p.to_string())?;
                    }
                    if let Some(q) = c.quota().filter(|q| *q != 0) {
                        write(dir, "cpu.cfs_quota_us", &q.to_string())?;
                    }
                    if let Some(s) = c.shares().filter(|s| *s > 0) {
                        let _ = std::fs::write(dir.join("cpu.shares"), s.to_string());
                    }
                }
            }
            if has("cpuset") {
                if let Some(c) = res.cpu() {
                    if let Some(cpus) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
                        write(dir, "cpuset.cpus", cpus)?;
                    }
                    if let Some(mems) = c.mems().as_deref().filter(|v| !v.is_empty()) {
                        write(dir, "cpuset.mems", mems)?;
                    }
                }
            }
            if has("blkio") {
                if let Some(w) = res.block_io().as_ref().and_then(|b| b.weight()).filter(|w| *w > 0) {
                    // CFQ's file, or BFQ's on kernels without CFQ; neither
                    // when no weight-based scheduler is in use (runc then
                    // fails; rvisor's I/O is the VMM's and the gofer's, so
                    // a missing knob only loses a hint).
                    if write(dir, "blkio.weight", &w.to_string()).is_err() {
                        let _ = std::fs::write(dir.join("blkio.bfq.weight"), w.to_string());
                    }
                }
            }
            if has("hugetlb") {
                for h in res.hugepage_limits().iter().flatten() {
                    write(dir, &format!("hugetlb.{}.limit_in_bytes", h.page_size()), &h.limit().to_string())?;
                }
            }
        }
        Ok(())
    }

    /// runc's `events --stats` data from the cgroup files.
    pub fn stats(&self) -> serde_json::Value {
        let read = |c: &str, f: &str| -> u64 {
            self.dirs
                .iter()
                .find(|(x, _)| x.split(',').any(|y| y == c))
                .and_then(|(_, d)| std::fs::read_to_string(d.join(f)).ok())
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        serde_json::json!({
            "cpu": {"usage": {"total": read("cpuacct", "cpuacct.usage")}},
            "memory": {
                "usage": {"usage": read("memory", "memory.usage_in_bytes"), "max": read("memory", "memory.max_usage_in_bytes"),
                          "limit": read("memory", "memory.limit_in_bytes"), "failcnt": read("memory", "memory.failcnt")},
            },
            "pids": {"current": read("pids", "pids.current"), "limit": read("pids", "pids.max")},
        })
    }

    /// Moves process `pid` (all its threads) into every cgroup.
    pub fn join(&self, pid: i32) -> Result<()> {
        for (_, d) in &self.dirs {
            write(d, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    /// The container's memory cgroup: the v1 "memory" hierarchy's
    /// directory, else the v2 one if its memory controller is enabled;
    /// and whether it is v1.
    pub fn memory_dir(&self) -> Option<(&Path, bool)> {
        let find = |name: &str| self.dirs.iter().find(|(c, _)| c.split(',').any(|x| x == name)).map(|(_, d)| d.as_path());
        find("memory").map(|d| (d, true)).or_else(|| find("unified").filter(|d| d.join("memory.max").exists()).map(|d| (d, false)))
    }

    /// The file saying how many bytes the container's memory cgroup has
    /// charged (opened now: the VMM reads it after it has left the host's
    /// tree; each read from offset 0 is current).
    pub fn memory_usage_file(&self) -> Option<std::fs::File> {
        let (dir, v1) = self.memory_dir()?;
        std::fs::File::open(dir.join(if v1 { "memory.usage_in_bytes" } else { "memory.current" })).ok()
    }

    /// The mount options of the sentry's cgroup view: `v1=` and the
    /// hierarchies (joined controllers, `name=...`, "unified") when the
    /// host has v1 ones, else empty (v2).
    pub fn sentry_layout(&self) -> String {
        if self.dirs.iter().all(|(c, _)| c == "unified") {
            return String::new();
        }
        let names: Vec<&str> = self.dirs.iter().map(|(c, _)| c.as_str()).collect();
        format!("v1={}", names.join(";"))
    }

    /// The pids limit the sandbox must enforce inside (its processes are
    /// not host processes).
    pub fn pids_limit(spec: &Spec) -> Option<i64> {
        spec.linux().as_ref()?.resources().as_ref()?.pids().as_ref().map(|p| p.limit()).filter(|l| *l > 0)
    }

    /// Removes the directories (the processes are gone).
    pub fn remove(&self) {
        for (_, d) in &self.dirs {
            for _ in 0..50 {
                match std::fs::remove_dir(d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let mut spec = Spec::default();
        assert_eq!(cgroup_path(&spec, "x").unwrap(), PathBuf::from("/rvisor/x"));
        let mut linux = spec.linux().clone().unwrap_or_default();
        linux.set_cgroups_path(Some("/libpod_parent/libpod-abc".into()));
        spec.set_linux(Some(linux.clone()));
        assert_eq!(cgroup_path(&spec, "x").unwrap(), PathBuf::from("/libpod_parent/libpod-abc"));
        linux.set_cgroups_path(Some("default/c1".into()));
        spec.set_linux(Some(linux.clone()));
        assert_eq!(cgroup_path(&spec, "x").unwrap(), PathBuf::from("/default/c1"));
        linux.set_cgroups_path(Some("/a/../../etc".into()));
        spec.set_linux(Some(linux.clone()));
        assert!(cgroup_path(&spec, "x").is_err());
        linux.set_cgroups_path(Some("system.slice:docker:abc".into()));
        spec.set_linux(Some(linux));
        assert_eq!(cgroup_path(&spec, "x").unwrap(), PathBuf::from("/system.slice/docker-abc.scope"));
        assert_eq!(systemd_path("machine-libpod.slice:libpod:c1").unwrap(), PathBuf::from("/machine.slice/machine-libpod.slice/libpod-c1.scope"));
        assert_eq!(systemd_path(":cri:c2").unwrap(), PathBuf::from("/system.slice/cri-c2.scope"));
        assert_eq!(systemd_path("-.slice::c3").unwrap(), PathBuf::from("/c3.scope"));
        for bad in ["a:b", "notaslice:p:n", "system.slice:p:../x", "a--b.slice:p:n", "system.slice:p:"] {
            assert!(systemd_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn this_host_has_hierarchies() {
        // Every Linux host with /sys/fs/cgroup mounted lists at least one.
        if Path::new(ROOT).exists() {
            assert!(!hierarchies().is_empty());
        }
    }

    fn resources(json: &str) -> oci_spec::runtime::LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn fake(controllers: &str, files: &[(&str, &str)]) -> (Cgroups, PathBuf) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rvisor-cg-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (f, v) in files {
            std::fs::write(dir.join(f), v).unwrap();
        }
        (Cgroups { dirs: vec![(controllers.into(), dir.clone())] }, dir)
    }

    fn read(dir: &Path, f: &str) -> String {
        std::fs::read_to_string(dir.join(f)).unwrap_or_default()
    }

    #[test]
    fn v1_limits_as_runc_writes_them() {
        let (cg, d) = fake("memory", &[("memory.limit_in_bytes", "1000"), ("memory.memsw.limit_in_bytes", "1000")]);
        // Raising both: swap first (else the kernel refuses memory > memsw).
        cg.apply(&resources(r#"{"memory":{"limit":5000,"swap":8000}}"#)).unwrap();
        assert_eq!((read(&d, "memory.limit_in_bytes"), read(&d, "memory.memsw.limit_in_bytes")), ("5000".into(), "8000".into()));
        // Unlimited memory takes swap along.
        cg.apply(&resources(r#"{"memory":{"limit":-1}}"#)).unwrap();
        assert_eq!((read(&d, "memory.limit_in_bytes"), read(&d, "memory.memsw.limit_in_bytes")), ("-1".into(), "-1".into()));
        let (cg, d) = fake("pids", &[("pids.max", "7")]);
        cg.apply(&resources(r#"{"pids":{"limit":0}}"#)).unwrap();
        assert_eq!(read(&d, "pids.max"), "7");
        cg.apply(&resources(r#"{"pids":{"limit":4000}}"#)).unwrap();
        assert_eq!(read(&d, "pids.max"), "4000");
        // Room for the VMM's own threads, whatever the container's limit.
        cg.apply(&resources(r#"{"pids":{"limit":3}}"#)).unwrap();
        assert!(read(&d, "pids.max").parse::<i64>().unwrap() >= 34);
        cg.apply(&resources(r#"{"pids":{"limit":-1}}"#)).unwrap();
        assert_eq!(read(&d, "pids.max"), "max");
    }

    #[test]
    fn the_sentry_gets_the_spec_limits() {
        let r = resources(r#"{"memory":{"limit":67108864,"swap":67108864},"cpu":{"quota":50000,"period":100000,"shares":512,"cpus":"0-1"},"pids":{"limit":9}}"#);
        assert_eq!(
            sentry_settings(&r),
            ["cg.memory=67108864", "cg.memsw=67108864", "cg.cpu_quota=50000", "cg.cpu_period=100000", "cg.cpu_shares=512", "cg.cpus=0-1"]
        );
        assert_eq!(sentry_settings(&resources(r#"{"memory":{"limit":-1}}"#)), ["cg.memory=-1", "cg.memsw=-1"]);
        assert!(sentry_settings(&resources("{}")).is_empty());
    }

    #[test]
    fn v2_limits_as_runc_writes_them() {
        let (cg, d) = fake("unified", &[]);
        cg.apply(&resources(r#"{"memory":{"limit":1000,"swap":3000},"cpu":{"quota":-1,"period":50000,"mems":"0"}}"#)).unwrap();
        assert_eq!(read(&d, "memory.max"), "1000");
        assert_eq!(read(&d, "memory.swap.max"), "2000");
        assert_eq!(read(&d, "cpu.max"), "max 50000");
        assert_eq!(read(&d, "cpuset.mems"), "0");
        cg.apply(&resources(r#"{"memory":{"limit":-1,"swap":-1},"cpu":{"quota":20000}}"#)).unwrap();
        assert_eq!((read(&d, "memory.max"), read(&d, "memory.swap.max"), read(&d, "cpu.max")), ("max".into(), "max".into(), "20000".into()));
        assert!(cg.apply(&resources(r#"{"memory":{"limit":3000,"swap":1000}}"#)).is_err());
    }
}
