//! The container's cgroup filesystem as the sandbox sees it (Linux:
//! kernel/cgroup): the container's own cgroup at the root, as a cgroup
//! namespace shows it, read-only like runc's mount. The limits are the
//! spec's (kernel/cgroup.rs) and the usage is the sentry's: the host
//! cgroup around the VMM has room for the VMM's threads and memory, so
//! its files would show neither the container's limits nor its usage.
//!
//! v1 (the host has v1 hierarchies) is a read-only holder with one mount
//! per hierarchy, symlinks for the joined ones (cpu -> cpu,cpuacct), as
//! runc builds it; v2 is one directory. Files are generated when opened.

use abi::linux::Stat;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

use super::{DirFile, FileOps};
use crate::errno::Errno;
use crate::kernel::cgroup::{self, Limits};
use crate::vfs::{DirEntry, Inode, Kind};

const CGROUP_DEV: u64 = 0x1d;
const CGROUP_SUPER_MAGIC: u64 = 0x0027_e0eb;
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;
const TMPFS_MAGIC: u64 = 0x0102_1994;
/// What v1 prints for "no limit" (PAGE_COUNTER_MAX pages, in bytes).
const V1_UNLIMITED: u64 = 0x7fff_ffff_ffff_f000;

enum Body {
    Dir(BTreeMap<String, Arc<Node>>),
    /// A file and the hierarchy it belongs to (v2 or v1).
    File(&'static str, bool),
    Symlink(String),
}

/// One node of a cgroup tree.
pub struct Node {
    ino: u64,
    body: Body,
    magic: u64,
}

static NEXT_INO: AtomicU64 = AtomicU64::new(1);

fn node(body: Body, magic: u64) -> Arc<Node> {
    Arc::new(Node { ino: NEXT_INO.fetch_add(1, Ordering::Relaxed), body, magic })
}

/// Files of a v1 hierarchy, by controller.
fn v1_files(controller: &str) -> &'static [&'static str] {
    match controller {
        "memory" => &[
            "memory.limit_in_bytes",
            "memory.soft_limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "memory.usage_in_bytes",
            "memory.memsw.usage_in_bytes",
            "memory.max_usage_in_bytes",
            "memory.memsw.max_usage_in_bytes",
            "memory.failcnt",
            "memory.memsw.failcnt",
            "memory.oom_control",
            "memory.stat",
            "memory.swappiness",
            "memory.use_hierarchy",
            "memory.move_charge_at_immigrate",
        ],
        "pids" => &["pids.max", "pids.current", "pids.events"],
        "cpu" => &["cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares", "cpu.stat"],
        "cpuacct" => &["cpuacct.usage", "cpuacct.usage_user", "cpuacct.usage_sys", "cpuacct.stat", "cpuacct.usage_percpu"],
        "cpuset" => &["cpuset.cpus", "cpuset.mems", "cpuset.effective_cpus", "cpuset.effective_mems", "cpuset.cpu_exclusive", "cpuset.mem_exclusive"],
        "blkio" => &["blkio.weight"],
        "devices" => &["devices.list"],
        "freezer" => &["freezer.state", "freezer.self_freezing", "freezer.parent_freezing"],
        "hugetlb" => &["hugetlb.2MB.limit_in_bytes", "hugetlb.2MB.usage_in_bytes", "hugetlb.1GB.limit_in_bytes", "hugetlb.1GB.usage_in_bytes"],
        _ => &[],
    }
}

const V1_COMMON: &[&str] = &["cgroup.procs", "tasks", "cgroup.clone_children", "notify_on_release"];

const V2_FILES: &[&str] = &[
    "cgroup.controllers",
    "cgroup.subtree_control",
    "cgroup.procs",
    "cgroup.threads",
    "cgroup.type",
    "cgroup.events",
    "cgroup.freeze",
    "cgroup.max.depth",
    "cgroup.max.descendants",
    "cgroup.stat",
    "memory.max",
    "memory.current",
    "memory.peak",
    "memory.high",
    "memory.low",
    "memory.min",
    "memory.swap.max",
    "memory.swap.current",
    "memory.events",
    "memory.stat",
    "memory.oom.group",
    "pids.max",
    "pids.current",
    "pids.events",
    "cpu.max",
    "cpu.weight",
    "cpu.stat",
    "cpuset.cpus",
    "cpuset.cpus.effective",
    "cpuset.mems",
    "cpuset.mems.effective",
    "io.weight",
    "io.stat",
    "hugetlb.2MB.max",
    "hugetlb.2MB.current",
];

fn dir_of(files: impl Iterator<Item = &'static str>, v2: bool) -> Arc<Node> {
    let magic = if v2 { CGROUP2_SUPER_MAGIC } else { CGROUP_SUPER_MAGIC };
    let map = files.map(|f| (String::from(f), node(Body::File(f, v2), magic))).collect();
    node(Body::Dir(map), magic)
}

/// The root of a v2 cgroup mount.
pub fn v2_root() -> Arc<dyn Inode> {
    dir_of(V2_FILES.iter().copied(), true)
}

/// The root of a v1 hierarchy with `controllers` ("cpu,cpuacct",
/// "name=systemd").
pub fn v1_root(controllers: &str) -> Arc<dyn Inode> {
    let mut files: Vec<&'static str> = V1_COMMON.to_vec();
    for c in controllers.split(',') {
        files.extend_from_slice(v1_files(c));
    }
    dir_of(files.into_iter(), false)
}

/// The read-only directory v1 hierarchies are mounted under: a directory
/// per hierarchy (mount points) and a symlink per controller of the
/// joined ones.
pub fn v1_holder(hierarchies: &[String]) -> Arc<dyn Inode> {
    let mut map: BTreeMap<String, Arc<Node>> = BTreeMap::new();
    for h in hierarchies {
        let name = h.strip_prefix("name=").unwrap_or(h);
        map.insert(name.into(), node(Body::Dir(BTreeMap::new()), TMPFS_MAGIC));
        if name.contains(',') {
            for c in name.split(',') {
                map.entry(c.into()).or_insert_with(|| node(Body::Symlink(name.into()), TMPFS_MAGIC));
            }
        }
    }
    node(Body::Dir(map), TMPFS_MAGIC)
}

/// The mount directory name of a v1 hierarchy.
pub fn v1_dir_name(hierarchy: &str) -> &str {
    hierarchy.strip_prefix("name=").unwrap_or(hierarchy)
}

fn v1_limit(v: Option<u64>) -> u64 {
    v.unwrap_or(V1_UNLIMITED)
}

fn v2_limit(v: Option<u64>) -> String {
    v.map_or_else(|| "max".into(), |b| format!("{b}"))
}

fn pids_max() -> String {
    match crate::kernel::process::PIDS_MAX.load(Ordering::Relaxed) {
        0 => "max".into(),
        n => format!("{n}"),
    }
}

/// Live pids (cgroup.procs) or thread ids (tasks), ascending.
fn members(threads: bool) -> String {
    let mut ids: Vec<u32> = Vec::new();
    for p in crate::kernel::process::all_processes() {
        let inner = p.inner.lock();
        if inner.zombie {
            continue;
        }
        if threads {
            ids.extend(inner.threads.iter().map(|t| t.tid));
        } else {
            ids.push(p.pid);
        }
    }
    ids.sort_unstable();
    let mut s = String::new();
    for id in ids {
        let _ = writeln!(s, "{id}");
    }
    s
}

/// cpu.weight from cpu.shares (the conversion runc and systemd use).
fn weight_of_shares(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + (s - 2) * 9999 / 262_142
}

fn memory_stat(l: &Limits, v2: bool) -> String {
    // Frames are the programs' pages; the rest of the charge is the heap.
    let anon = crate::mm::frame::frame_bytes();
    let heap = cgroup::memory_usage().saturating_sub(anon);
    if v2 {
        return format!(
            "anon {anon}\nfile 0\nkernel {heap}\nkernel_stack 0\npagetables 0\nsock 0\nshmem 0\nfile_mapped 0\nfile_dirty 0\nfile_writeback 0\n\
             anon_thp 0\ninactive_anon 0\nactive_anon {anon}\ninactive_file 0\nactive_file 0\nunevictable 0\npgfault 0\npgmajfault 0\n"
        );
    }
    let hl = v1_limit(l.memory);
    let hs = v1_limit(l.memsw);
    format!(
        "cache 0\nrss {anon}\nrss_huge 0\nshmem 0\nmapped_file 0\ndirty 0\nwriteback 0\nswap 0\npgpgin 0\npgpgout 0\npgfault 0\npgmajfault 0\n\
         inactive_anon 0\nactive_anon {anon}\ninactive_file 0\nactive_file 0\nunevictable 0\n\
         hierarchical_memory_limit {hl}\nhierarchical_memsw_limit {hs}\n\
         total_cache 0\ntotal_rss {anon}\ntotal_rss_huge 0\ntotal_shmem 0\ntotal_mapped_file 0\ntotal_dirty 0\ntotal_writeback 0\ntotal_swap 0\n\
         total_pgpgin 0\ntotal_pgpgout 0\ntotal_pgfault 0\ntotal_pgmajfault 0\ntotal_inactive_anon 0\ntotal_active_anon {anon}\n\
         total_inactive_file 0\ntotal_active_file 0\ntotal_unevictable 0\n"
    )
}

/// The content of a cgroup file, generated now.
fn content(name: &str, v2: bool) -> String {
    let l = cgroup::limits();
    // Only the files that show them pay for these.
    let usage = cgroup::memory_usage;
    let cpu = cgroup::cpu_usage;
    let n = |v: u64| format!("{v}\n");
    match name {
        "cgroup.procs" => members(false),
        "tasks" | "cgroup.threads" => members(true),
        "cgroup.clone_children" | "notify_on_release" | "cgroup.freeze" | "memory.oom.group" => "0\n".into(),
        "cgroup.controllers" => "cpuset cpu io memory hugetlb pids\n".into(),
        "cgroup.subtree_control" => "\n".into(),
        "cgroup.type" => "domain\n".into(),
        "cgroup.events" => "populated 1\nfrozen 0\n".into(),
        "cgroup.max.depth" | "cgroup.max.descendants" | "memory.high" | "hugetlb.2MB.max" => "max\n".into(),
        "cgroup.stat" => "nr_descendants 0\nnr_dying_descendants 0\n".into(),
        "memory.limit_in_bytes" => n(v1_limit(l.memory)),
        "memory.soft_limit_in_bytes" => n(v1_limit(l.reservation)),
        "memory.memsw.limit_in_bytes" => n(v1_limit(l.memsw)),
        "memory.usage_in_bytes" | "memory.memsw.usage_in_bytes" | "memory.current" => n(usage()),
        "memory.max_usage_in_bytes" | "memory.memsw.max_usage_in_bytes" | "memory.peak" => n(cgroup::memory_peak()),
        "memory.failcnt" => n(cgroup::FAILCNT.load(Ordering::Relaxed)),
        "memory.memsw.failcnt" | "memory.swap.current" | "memory.min" | "memory.move_charge_at_immigrate" => "0\n".into(),
        "memory.oom_control" => format!("oom_kill_disable 0\nunder_oom 0\noom_kill {}\n", cgroup::OOM_KILLS.load(Ordering::Relaxed)),
        "memory.stat" => memory_stat(&l, v2),
        "memory.swappiness" => "60\n".into(),
        "memory.use_hierarchy" => "1\n".into(),
        "memory.max" => format!("{}\n", v2_limit(l.memory)),
        "memory.low" => n(l.reservation.unwrap_or(0)),
        // v1's memory+swap is v2's swap alone.
        "memory.swap.max" => match (l.memory, l.memsw) {
            (Some(m), Some(s)) => n(s.saturating_sub(m)),
            _ => "max\n".into(),
        },
        "memory.events" => format!(
            "low 0\nhigh 0\nmax {}\noom {}\noom_kill {}\noom_group_kill 0\n",
            cgroup::FAILCNT.load(Ordering::Relaxed),
            cgroup::OOMS.load(Ordering::Relaxed),
            cgroup::OOM_KILLS.load(Ordering::Relaxed)
        ),
        "pids.max" => format!("{}\n", pids_max()),
        "pids.current" => n(crate::kernel::process::task_count() as u64),
        "pids.events" => format!("max {}\n", cgroup::PIDS_REFUSED.load(Ordering::Relaxed)),
        "cpu.cfs_quota_us" => match l.cpu_quota {
            Some(q) => n(q),
            None => "-1\n".into(),
        },
        "cpu.cfs_period_us" => n(l.cpu_period),
        "cpu.shares" => n(l.cpu_shares),
        "cpu.max" => match l.cpu_quota {
            Some(q) => format!("{q} {}\n", l.cpu_period),
            None => format!("max {}\n", l.cpu_period),
        },
        "cpu.weight" => n(weight_of_shares(l.cpu_shares)),
        "cpu.stat" if v2 => {
            let cpu = cpu();
            format!(
                "usage_usec {}\nuser_usec {}\nsystem_usec {}\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
                cpu.total() / 1000,
                cpu.user / 1000,
                cpu.sys / 1000
            )
        }
        "cpu.stat" => "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n".into(),
        "cpuacct.usage" => n(cpu().total()),
        "cpuacct.usage_user" => n(cpu().user),
        "cpuacct.usage_sys" => n(cpu().sys),
        // USER_HZ ticks.
        "cpuacct.stat" => {
            let cpu = cpu();
            format!("user {}\nsystem {}\n", cpu.user / 10_000_000, cpu.sys / 10_000_000)
        }
        "cpuacct.usage_percpu" => {
            // The sentry does not split CPU time per vCPU: all of it is
            // shown on the first.
            let mut s = format!("{}", cpu().total());
            for _ in 1..crate::kernel::get().num_cpus.max(1) {
                s.push_str(" 0");
            }
            s + " \n"
        }
        "cpuset.cpus" | "cpuset.cpus.effective" | "cpuset.effective_cpus" => format!("{}\n", cgroup::effective_cpus()),
        "cpuset.mems" | "cpuset.mems.effective" | "cpuset.effective_mems" => {
            if l.mems.is_empty() {
                "0\n".into()
            } else {
                format!("{}\n", l.mems)
            }
        }
        "cpuset.cpu_exclusive" | "cpuset.mem_exclusive" => "0\n".into(),
        "blkio.weight" => n(if l.blkio_weight == 0 { 500 } else { l.blkio_weight }),
        "io.weight" => format!("default {}\n", if l.blkio_weight == 0 { 100 } else { l.blkio_weight }),
        "io.stat" => String::new(),
        // The devices the sentry provides (fs/dev.rs, fs/devpts.rs).
        "devices.list" => "c 1:3 rwm\nc 1:5 rwm\nc 1:7 rwm\nc 1:8 rwm\nc 1:9 rwm\nc 5:0 rwm\nc 5:1 rwm\nc 5:2 rwm\nc 136:* rwm\n".into(),
        "freezer.state" => "THAWED\n".into(),
        "freezer.self_freezing" | "freezer.parent_freezing" => "0\n".into(),
        "hugetlb.2MB.limit_in_bytes" | "hugetlb.1GB.limit_in_bytes" => n(V1_UNLIMITED),
        "hugetlb.2MB.usage_in_bytes" | "hugetlb.1GB.usage_in_bytes" | "hugetlb.2MB.current" => "0\n".into(),
        _ => String::new(),
    }
}

impl Node {
    fn kind_of(&self) -> Kind {
        match self.body {
            Body::Dir(_) => Kind::Dir,
            Body::File(..) => Kind::File,
            Body::Symlink(_) => Kind::Symlink,
        }
    }
}

impl Inode for Node {
    fn stat(&self) -> Result<Stat, Errno> {
        let (mode, nlink, size) = match &self.body {
            Body::Dir(c) => (crate::vfs::S_IFDIR | 0o555, 2 + c.values().filter(|n| n.kind_of() == Kind::Dir).count() as u64, 0),
            Body::File(name, _) => {
                let ro = matches!(*name, "memory.usage_in_bytes" | "memory.current" | "pids.current" | "cpuacct.usage_user" | "cgroup.controllers");
                (crate::vfs::S_IFREG | if ro { 0o444 } else { 0o644 }, 1, 0)
            }
            Body::Symlink(t) => (crate::vfs::S_IFLNK | 0o777, 1, t.len() as i64),
        };
        Ok(Stat { st_dev: CGROUP_DEV, st_ino: self.ino, st_mode: mode, st_nlink: nlink, st_size: size, st_blksize: 4096, ..Stat::default() })
    }

    fn kind(&self) -> Kind {
        self.kind_of()
    }

    fn lookup(&self, name: &str) -> Result<Arc<dyn Inode>, Errno> {
        match &self.body {
            Body::Dir(c) => c.get(name).map(|n| n.clone() as Arc<dyn Inode>).ok_or(Errno::ENOENT),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn readlink(&self) -> Result<String, Errno> {
        match &self.body {
            Body::Symlink(t) => Ok(t.clone()),
            _ => Err(Errno::EINVAL),
        }
    }

    fn open(&self, flags: u32) -> Result<Box<dyn FileOps>, Errno> {
        match &self.body {
            Body::Dir(_) => Ok(Box::new(DirFile::new(self.readdir()?, self.stat()?, "/sys/fs/cgroup"))),
            // Mounted read-only, as runc mounts it for the container.
            _ if flags & 3 != 0 => Err(Errno::EROFS),
            Body::File(name, v2) => Ok(super::proc::content_file(content(name, *v2).into_bytes(), self.stat()?)),
            Body::Symlink(_) => Err(Errno::ELOOP),
        }
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        match &self.body {
            Body::Dir(c) => Ok(c.iter().map(|(n, c)| DirEntry { name: n.clone(), ino: c.ino, kind: c.kind_of() }).collect()),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn statfs(&self) -> Option<[u8; 120]> {
        // ST_RDONLY | ST_NOSUID | ST_NODEV | ST_NOEXEC.
        Some(super::pseudo_statfs(self.magic, 1 | 2 | 4 | 8))
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(dir: &Arc<dyn Inode>, name: &str) -> String {
        let f = dir.lookup(name).unwrap().open(0).unwrap();
        let mut buf = [0u8; 4096];
        let len = f.read_kernel(&mut buf, 0).unwrap();
        String::from_utf8(buf[..len].to_vec()).unwrap()
    }

    #[test]
    fn v1_layout_and_limits() {
        let holder = v1_holder(&["cpu,cpuacct".into(), "memory".into(), "name=systemd".into()]);
        assert_eq!(holder.lookup("cpu").unwrap().readlink().unwrap(), "cpu,cpuacct");
        assert_eq!(holder.lookup("cpuacct").unwrap().readlink().unwrap(), "cpu,cpuacct");
        assert_eq!(holder.lookup("systemd").unwrap().kind(), Kind::Dir);
        assert!(holder.lookup("memory").unwrap().readdir().unwrap().is_empty());
        let cpu = v1_root("cpu,cpuacct");
        assert!(cpu.lookup("cpu.cfs_quota_us").is_ok() && cpu.lookup("cpuacct.usage").is_ok() && cpu.lookup("tasks").is_ok());
        assert!(cpu.lookup("memory.limit_in_bytes").is_err());
        assert_eq!(read(&cpu, "cpu.cfs_period_us"), "100000\n");
        assert_eq!(cpu.lookup("cpu.shares").unwrap().open(1).err(), Some(Errno::EROFS));
        let mem = v1_root("memory");
        // No limit reads as v1's page-counter maximum.
        assert_eq!(read(&mem, "memory.limit_in_bytes"), "9223372036854771712\n");
        assert!(read(&mem, "memory.oom_control").contains("oom_kill "));
    }

    #[test]
    fn v2_files() {
        let r = v2_root();
        assert_eq!(read(&r, "memory.max"), "max\n");
        assert!(read(&r, "cpu.max").ends_with(" 100000\n"));
        assert!(read(&r, "cgroup.controllers").contains("memory"));
        assert_eq!(weight_of_shares(1024), 39);
        assert_eq!(weight_of_shares(2), 1);
        assert_eq!(weight_of_shares(262_144), 10000);
    }
}
