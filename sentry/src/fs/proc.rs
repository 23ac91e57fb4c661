//! /proc (Linux: fs/proc): the sandbox's processes and kernel facts,
//! generated from the sentry's own state when read. Files are snapshots
//! taken at open time, as most Linux proc files behave for small reads.

use abi::linux::Stat;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;
use spin::Mutex;

use super::{DirFile, FileOps, UserSeg};
use crate::errno::{Errno, SysResult};
use crate::kernel::process::{self, Process};
use crate::kernel::task::Task;
use crate::vfs::{DirEntry, Inode, Kind};

/// st_dev of /proc.
const PROC_DEV: u64 = 4;

/// A node of /proc.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Root,
    /// /proc/self, /proc/thread-self.
    SelfLink,
    Pid(u32),
    PidFile(u32, &'static str),
    PidLink(u32, &'static str),
    FdDir(u32),
    Fd(u32, i32),
    /// A directory or file below /proc/sys, or a top-level file, by path.
    Static(&'static str),
    /// /proc/net (and /proc/PID/net): the network namespace's files.
    NetDir,
    NetFile(&'static str),
}

/// Files of /proc/net: the namespace's own from the VMM (`abi::net`), and
/// `unix`, whose sockets live in the sentry.
fn net_names() -> impl Iterator<Item = &'static str> {
    abi::net::PROC_NET.iter().copied().chain(core::iter::once("unix"))
}

/// A /proc/net file's content.
pub(crate) fn net_file(name: &str) -> Result<Vec<u8>, Errno> {
    if name == "unix" {
        return Ok(b"Num       RefCount Protocol Flags    Type St Inode Path\n".to_vec());
    }
    let idx = abi::net::PROC_NET.iter().position(|n| *n == name).ok_or(Errno::ENOENT)?;
    let mut cap = 64usize << 10;
    loop {
        let buf = alloc::vec![0u8; cap];
        let n = crate::host::net(abi::net::NetOp::ProcRead, 0, [idx as u64, crate::host::gpa(&buf[..]), cap as u64, 0])? as usize;
        if n < cap || cap >= 1 << 20 {
            let mut buf = buf;
            buf.truncate(n);
            return Ok(buf);
        }
        cap *= 4;
    }
}

/// Top-level files.
const TOP_FILES: &[&str] = &["cpuinfo", "meminfo", "uptime", "loadavg", "version", "filesystems", "stat", "mounts", "cmdline"];
const PID_FILES: &[&str] =
    &["cmdline", "comm", "status", "stat", "statm", "maps", "environ", "mounts", "cgroup", "limits", "oom_score_adj", "mountinfo", "uid_map", "gid_map"];

/// Sysctls the container's spec set (`linux.sysctl`), by dotted name.
static SYSCTLS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
/// The user namespace's id maps (/proc/PID/uid_map, gid_map), as Linux
/// prints them; the identity map by default.
static ID_MAPS: Mutex<Option<(String, String)>> = Mutex::new(None);

/// Records a sysctl from the container spec.
pub fn set_sysctl(name: &str, value: &str) {
    let mut s = SYSCTLS.lock();
    s.retain(|(n, _)| n != name);
    s.push((name.into(), value.into()));
}

/// Records the id maps of the container's user namespace: "c h n"
/// triples separated by commas.
pub fn set_id_maps(uid: &str, gid: &str) {
    let fmt = |m: &str| {
        let mut out = String::new();
        for t in m.split(',') {
            let f: Vec<u64> = t.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            if let [c, h, n] = f[..] {
                let _ = writeln!(out, "{c:>10} {h:>10} {n:>10}");
            }
        }
        out
    };
    *ID_MAPS.lock() = Some((fmt(uid), fmt(gid)));
}

/// A numeric sysctl the spec set, else `default`.
pub fn sysctl_u32(name: &str, default: u32) -> u32 {
    SYSCTLS.lock().iter().find(|(n, _)| n == name).and_then(|(_, v)| v.trim().parse().ok()).unwrap_or(default)
}

/// A 64-bit numeric sysctl the spec set, else `default`.
pub fn sysctl_u64(name: &str, default: u64) -> u64 {
    SYSCTLS.lock().iter().find(|(n, _)| n == name).and_then(|(_, v)| v.trim().parse().ok()).unwrap_or(default)
}

/// The numbers of a multi-valued sysctl the spec set (kernel.sem); empty
/// if unset.
pub fn sysctl_words(name: &str) -> Vec<u64> {
    SYSCTLS.lock().iter().find(|(n, _)| n == name).map(|(_, v)| v.split_whitespace().filter_map(|w| w.parse().ok()).collect()).unwrap_or_default()
}

/// A sysctl's value: the spec's, else `default`.
fn sysctl(name: &str, default: &str) -> String {
    match SYSCTLS.lock().iter().find(|(n, _)| n == name) {
        Some((_, v)) => format!("{v}\n"),
        None => default.into(),
    }
}
const PID_LINKS: &[&str] = &["exe", "cwd", "root"];
/// Directories and files below /proc/sys (sorted; a directory is a prefix).
const SYS_FILES: &[(&str, fn() -> String)] = &[
    ("sys/fs/file-max", || "9223372036854775807\n".into()),
    ("sys/fs/inotify/max_queued_events", || format!("{}\n", super::inotify::MAX_QUEUED_EVENTS)),
    ("sys/fs/inotify/max_user_instances", || format!("{}\n", super::inotify::MAX_INSTANCES)),
    ("sys/fs/inotify/max_user_watches", || format!("{}\n", super::inotify::MAX_WATCHES)),
    ("sys/fs/mqueue/msg_default", || sysctl("fs.mqueue.msg_default", "10\n")),
    ("sys/fs/mqueue/msg_max", || sysctl("fs.mqueue.msg_max", "10\n")),
    ("sys/fs/mqueue/msgsize_default", || sysctl("fs.mqueue.msgsize_default", "8192\n")),
    ("sys/fs/mqueue/msgsize_max", || sysctl("fs.mqueue.msgsize_max", "8192\n")),
    ("sys/fs/mqueue/queues_max", || sysctl("fs.mqueue.queues_max", "256\n")),
    ("sys/fs/nr_open", || "1048576\n".into()),
    ("sys/kernel/cap_last_cap", || "40\n".into()),
    ("sys/kernel/domainname", || uts_line(|u| &u.domainname)),
    ("sys/kernel/hostname", || uts_line(|u| &u.nodename)),
    ("sys/kernel/msgmax", || sysctl("kernel.msgmax", "8192\n")),
    ("sys/kernel/msgmnb", || sysctl("kernel.msgmnb", "16384\n")),
    ("sys/kernel/msgmni", || sysctl("kernel.msgmni", "32000\n")),
    ("sys/kernel/ngroups_max", || "65536\n".into()),
    ("sys/kernel/osrelease", || format!("{}\n", crate::kernel::get().uts[1])),
    ("sys/kernel/ostype", || "Linux\n".into()),
    ("sys/kernel/pid_max", || "4194304\n".into()),
    ("sys/kernel/random/boot_id", || uuid()),
    ("sys/kernel/random/uuid", || uuid()),
    ("sys/kernel/sem", || sysctl("kernel.sem", "32000\t1024000000\t500\t32000\n")),
    ("sys/kernel/shm_rmid_forced", || sysctl("kernel.shm_rmid_forced", "0\n")),
    ("sys/kernel/shmall", || sysctl("kernel.shmall", "18446744073692774399\n")),
    ("sys/kernel/shmmax", || sysctl("kernel.shmmax", "18446744073692774399\n")),
    ("sys/kernel/shmmni", || sysctl("kernel.shmmni", "4096\n")),
    ("sys/kernel/version", || format!("{}\n", crate::kernel::get().uts[2])),
    ("sys/net/core/somaxconn", || "4096\n".into()),
    ("sys/vm/max_map_count", || "65530\n".into()),
    ("sys/vm/overcommit_memory", || "0\n".into()),
    ("sysvipc/msg", crate::kernel::ipc::msg::proc_text),
    ("sysvipc/sem", crate::kernel::ipc::sem::proc_text),
    ("sysvipc/shm", crate::kernel::ipc::shm::proc_text),
];

fn uts_line(f: fn(&crate::kernel::Uts) -> &Vec<u8>) -> String {
    let mut s = String::from_utf8_lossy(f(&crate::kernel::UTS.read())).into_owned();
    s.push('\n');
    s
}

fn uuid() -> String {
    let mut b = [0u8; 16];
    crate::kernel::random::fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}\n", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// The procfs root, for mounting at /proc.
pub fn root() -> Arc<dyn Inode> {
    Arc::new(ProcInode { node: Node::Root })
}

struct ProcInode {
    node: Node,
}

fn current_pid() -> u32 {
    let Some(t) = crate::kernel::sched::current() else { return 1 };
    process::all_processes()
        .into_iter()
        .find(|p| p.inner.lock().threads.iter().any(|x| Arc::ptr_eq(x, &t)))
        .map(|p| p.pid)
        .unwrap_or(1)
}

/// A process /proc shows: zombies too, as Linux lists them until reaped.
fn live(pid: u32) -> Result<Arc<Process>, Errno> {
    process::find_process(pid).ok_or(Errno::ENOENT)
}

fn is_sys_dir(path: &str) -> bool {
    SYS_FILES.iter().any(|(p, _)| p.starts_with(path) && p.as_bytes().get(path.len()) == Some(&b'/'))
}

fn sys_static(path: &str) -> Option<&'static str> {
    if let Some((p, _)) = SYS_FILES.iter().find(|(p, _)| *p == path) {
        return Some(p);
    }
    // Directories: the longest static prefix that matches.
    ["sys", "sys/fs", "sys/fs/inotify", "sys/fs/mqueue", "sys/kernel", "sys/kernel/random", "sys/net", "sys/net/core", "sys/vm", "sysvipc"].into_iter().find(|d| *d == path)
}

impl ProcInode {
    fn ino(&self) -> u64 {
        let h = |s: &str| s.bytes().fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
        match &self.node {
            Node::Root => 1,
            Node::SelfLink => 2,
            Node::Pid(p) => u64::from(*p) << 16,
            Node::PidFile(p, n) | Node::PidLink(p, n) => (u64::from(*p) << 16) | (h(n) & 0xfff) | 0x1000,
            Node::FdDir(p) => (u64::from(*p) << 16) | 0x2000,
            Node::Fd(p, fd) => (u64::from(*p) << 32) | 0x4000 | (*fd as u64 & 0xfff),
            Node::Static(s) => 0x1_0000_0000 | (h(s) & 0xffff_ffff),
            Node::NetDir => 4,
            Node::NetFile(s) => 0x3_0000_0000 | (h(s) & 0xffff_ffff),
        }
    }

    fn content(&self) -> Result<Vec<u8>, Errno> {
        Ok(match &self.node {
            Node::PidFile(pid, name) => pid_file(*pid, name)?,
            Node::NetFile(name) => net_file(name)?,
            Node::Static(p) => {
                if let Some((_, f)) = SYS_FILES.iter().find(|(x, _)| x == p) {
                    f().into_bytes()
                } else {
                    top_file(p)?
                }
            }
            _ => return Err(Errno::EISDIR),
        })
    }
}

impl Inode for ProcInode {
    fn stat(&self) -> Result<Stat, Errno> {
        let (mode, nlink) = match self.kind() {
            Kind::Dir => (0o040555, 2),
            Kind::Symlink => (0o120777, 1),
            _ => (if matches!(&self.node, Node::PidFile(_, "environ")) { 0o100400 } else { 0o100444 }, 1),
        };
        let (uid, gid) = match &self.node {
            Node::Pid(p) | Node::PidFile(p, _) | Node::PidLink(p, _) | Node::FdDir(p) | Node::Fd(p, _) => {
                let v = live(*p)?;
                let v = v.view.lock();
                (v.creds.euid, v.creds.egid)
            }
            _ => (0, 0),
        };
        let now = crate::kernel::clock::realtime_ns();
        let (s, ns) = ((now / 1_000_000_000) as i64, (now % 1_000_000_000) as i64);
        Ok(Stat {
            st_dev: PROC_DEV,
            st_ino: self.ino(),
            st_mode: mode,
            st_nlink: nlink,
            st_uid: uid,
            st_gid: gid,
            st_blksize: 1024,
            st_atime: s,
            st_atime_nsec: ns,
            st_mtime: s,
            st_mtime_nsec: ns,
            st_ctime: s,
            st_ctime_nsec: ns,
            ..Stat::default()
        })
    }

    fn kind(&self) -> Kind {
        match &self.node {
            Node::Root | Node::Pid(_) | Node::FdDir(_) | Node::NetDir => Kind::Dir,
            Node::NetFile(_) => Kind::File,
            Node::SelfLink | Node::PidLink(..) | Node::Fd(..) => Kind::Symlink,
            Node::PidFile(..) => Kind::File,
            Node::Static(p) => {
                if is_sys_dir(p) {
                    Kind::Dir
                } else {
                    Kind::File
                }
            }
        }
    }

    fn lookup(&self, name: &str) -> Result<Arc<dyn Inode>, Errno> {
        let node = match &self.node {
            Node::Root => {
                if name == "self" || name == "thread-self" {
                    Node::SelfLink
                } else if let Ok(pid) = name.parse::<u32>() {
                    live(pid)?;
                    Node::Pid(pid)
                } else if let Some(f) = TOP_FILES.iter().find(|f| **f == name) {
                    Node::Static(f)
                } else if name == "sys" {
                    Node::Static("sys")
                } else if name == "sysvipc" {
                    Node::Static("sysvipc")
                } else if name == "net" {
                    Node::NetDir
                } else {
                    return Err(Errno::ENOENT);
                }
            }
            Node::Pid(pid) => {
                live(*pid)?;
                if let Some(f) = PID_FILES.iter().find(|f| **f == name) {
                    Node::PidFile(*pid, f)
                } else if let Some(l) = PID_LINKS.iter().find(|l| **l == name) {
                    Node::PidLink(*pid, l)
                } else if name == "fd" {
                    Node::FdDir(*pid)
                } else if name == "net" {
                    Node::NetDir
                } else if name == "task" {
                    // Threads are listed as their process for now.
                    return Ok(Arc::new(ProcInode { node: Node::Pid(*pid) }));
                } else {
                    return Err(Errno::ENOENT);
                }
            }
            Node::FdDir(pid) => {
                let fd: i32 = name.parse().map_err(|_| Errno::ENOENT)?;
                fds_of(*pid)?.lock().get(fd).map_err(|_| Errno::ENOENT)?;
                Node::Fd(*pid, fd)
            }
            Node::Static(p) if is_sys_dir(p) => {
                let full = format!("{p}/{name}");
                Node::Static(sys_static(&full).ok_or(Errno::ENOENT)?)
            }
            Node::NetDir => Node::NetFile(net_names().find(|n| *n == name).ok_or(Errno::ENOENT)?),
            _ => return Err(Errno::ENOTDIR),
        };
        Ok(Arc::new(ProcInode { node }))
    }

    fn magic_link(&self) -> Option<crate::vfs::Location> {
        match &self.node {
            Node::Fd(pid, fd) => {
                let f = fds_of(*pid).ok()?.lock().get(*fd).ok()?;
                Some(super::reopen::location_of(&f))
            }
            _ => None,
        }
    }

    fn readlink(&self) -> Result<String, Errno> {
        match &self.node {
            Node::SelfLink => Ok(current_pid().to_string()),
            Node::PidLink(pid, "exe") => Ok(live(*pid)?.view.lock().exe.clone()),
            Node::PidLink(pid, "cwd") => {
                let p = live(*pid)?;
                let fs = p.view.lock().fs.clone().ok_or(Errno::ENOENT)?;
                let cwd = fs.lock().cwd.path.clone();
                Ok(cwd)
            }
            Node::PidLink(_, _) => Ok("/".into()),
            Node::Fd(pid, fd) => {
                let f = fds_of(*pid)?.lock().get(*fd).map_err(|_| Errno::ENOENT)?;
                Ok(match &f.loc {
                    Some(l) => l.path.clone(),
                    None => {
                        let st = f.ops.stat()?;
                        match st.st_mode & crate::vfs::S_IFMT {
                            crate::vfs::S_IFIFO => format!("pipe:[{}]", st.st_ino),
                            crate::vfs::S_IFSOCK => format!("socket:[{}]", st.st_ino),
                            _ => f.ops.path().into(),
                        }
                    }
                })
            }
            _ => Err(Errno::EINVAL),
        }
    }

    fn open(&self, flags: u32) -> Result<Box<dyn FileOps>, Errno> {
        if flags & 3 != 0 && !matches!(&self.node, Node::PidFile(_, "comm") | Node::PidFile(_, "oom_score_adj")) {
            return Err(Errno::EACCES);
        }
        if self.kind() == Kind::Dir {
            return Ok(Box::new(DirFile::new(self.readdir()?, self.stat()?, "/proc")));
        }
        let data = self.content()?;
        Ok(Box::new(ProcFile { data, pos: Mutex::new(0), stat: self.stat()? }))
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        let e = |name: String, ino: u64, kind: Kind| DirEntry { name, ino, kind };
        Ok(match &self.node {
            Node::Root => {
                let mut v: Vec<DirEntry> = process::all_processes()
                    .into_iter()
                    .filter(|p| !p.inner.lock().zombie)
                    .map(|p| e(p.pid.to_string(), u64::from(p.pid) << 16, Kind::Dir))
                    .collect();
                v.sort_by_key(|d| d.ino);
                v.push(e("self".into(), 2, Kind::Symlink));
                v.push(e("thread-self".into(), 2, Kind::Symlink));
                v.push(e("sys".into(), 3, Kind::Dir));
                v.push(e("sysvipc".into(), ProcInode { node: Node::Static("sysvipc") }.ino(), Kind::Dir));
                v.push(e("net".into(), 4, Kind::Dir));
                for f in TOP_FILES {
                    v.push(e((*f).into(), ProcInode { node: Node::Static(f) }.ino(), Kind::File));
                }
                v
            }
            Node::Pid(pid) => {
                let mut v = Vec::new();
                for f in PID_FILES {
                    v.push(e((*f).into(), ProcInode { node: Node::PidFile(*pid, f) }.ino(), Kind::File));
                }
                for l in PID_LINKS {
                    v.push(e((*l).into(), ProcInode { node: Node::PidLink(*pid, l) }.ino(), Kind::Symlink));
                }
                v.push(e("fd".into(), ProcInode { node: Node::FdDir(*pid) }.ino(), Kind::Dir));
                v.push(e("net".into(), 4, Kind::Dir));
                v.push(e("task".into(), u64::from(*pid) << 16 | 0x3000, Kind::Dir));
                v
            }
            Node::FdDir(pid) => {
                let fds = fds_of(*pid)?;
                let list: Vec<i32> = fds.lock().open_fds().collect();
                list.into_iter().map(|fd| e(fd.to_string(), ProcInode { node: Node::Fd(*pid, fd) }.ino(), Kind::Symlink)).collect()
            }
            Node::Static(p) if is_sys_dir(p) => {
                let prefix = format!("{p}/");
                let mut names: Vec<String> = Vec::new();
                for (f, _) in SYS_FILES {
                    if let Some(rest) = f.strip_prefix(prefix.as_str()) {
                        let first = rest.split('/').next().unwrap_or(rest);
                        if !names.iter().any(|n| n == first) {
                            names.push(first.into());
                        }
                    }
                }
                names
                    .into_iter()
                    .map(|n| {
                        let full = format!("{prefix}{n}");
                        let kind = if is_sys_dir(&full) { Kind::Dir } else { Kind::File };
                        e(n, 0x2_0000_0000 | full.len() as u64, kind)
                    })
                    .collect()
            }
            Node::NetDir => net_names().map(|n| e(n.into(), ProcInode { node: Node::NetFile(n) }.ino(), Kind::File)).collect(),
            _ => return Err(Errno::ENOTDIR),
        })
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

fn fds_of(pid: u32) -> Result<Arc<Mutex<super::FdTable>>, Errno> {
    live(pid)?.view.lock().fds.clone().ok_or(Errno::ENOENT)
}

fn rw(prot: u32, shared: bool) -> String {
    use crate::mm::vma::{PROT_EXEC, PROT_READ, PROT_WRITE};
    let mut s = String::new();
    s.push(if prot & PROT_READ != 0 { 'r' } else { '-' });
    s.push(if prot & PROT_WRITE != 0 { 'w' } else { '-' });
    s.push(if prot & PROT_EXEC != 0 { 'x' } else { '-' });
    s.push(if shared { 's' } else { 'p' });
    s
}

fn pid_file(pid: u32, name: &str) -> Result<Vec<u8>, Errno> {
    let p = live(pid)?;
    let inner = p.inner.lock();
    let (ppid, pgid, sid, threads) = (inner.ppid, inner.pgid, inner.sid, inner.threads.len().max(1));
    // ps's STAT column: zombie, stopped (group stop), sleeping (every
    // thread blocked) or running.
    let (state, state_name) = if inner.zombie {
        ('Z', "zombie")
    } else if inner.stopped.is_some() {
        ('T', "stopped")
    } else if !inner.threads.is_empty() && inner.threads.iter().all(|t| t.state.load(core::sync::atomic::Ordering::Relaxed) == crate::kernel::sched::BLOCKED) {
        ('S', "sleeping")
    } else {
        ('R', "running")
    };
    drop(inner);
    let v = p.view.lock();
    let comm_end = v.comm.iter().position(|&b| b == 0).unwrap_or(16);
    let comm = String::from_utf8_lossy(&v.comm[..comm_end]).into_owned();
    let (vm_kb, rss_kb) = match &v.mm {
        Some(mm) => {
            let mm = mm.lock();
            let size: u64 = mm.vmas().iter().map(|a| a.end - a.start).sum();
            (size / 1024, mm.resident_pages() * 4)
        }
        None => (0, 0),
    };
    let mut s = String::new();
    match name {
        "cmdline" => return Ok(v.cmdline.clone()),
        "uid_map" | "gid_map" => {
            let maps = ID_MAPS.lock();
            let identity = "         0          0 4294967295\n";
            return Ok(match &*maps {
                Some((u, g)) => if name == "uid_map" { u.clone() } else { g.clone() },
                None => identity.into(),
            }
            .into_bytes());
        }
        "environ" => return Ok(v.environ.clone()),
        "comm" => {
            let _ = writeln!(s, "{comm}");
        }
        "status" => {
            let c = &v.creds;
            // Linux leaves a space after the last group (and alone when none).
            let mut groups = String::new();
            for g in &c.groups {
                let _ = write!(groups, "{g} ");
            }
            if groups.is_empty() {
                groups.push(' ');
            }
            let (prm, eff, bnd, inh, amb) = (c.cap_permitted, c.cap_effective, c.cap_bounding, c.cap_inheritable, c.cap_ambient);
            let (sc_mode, sc_filters, nnp) = (v.seccomp.mode(), v.seccomp.filters(), u8::from(v.no_new_privs));
            let _ = write!(
                s,
                "Name:\t{comm}\nUmask:\t0022\nState:\t{state} ({state_name})\nTgid:\t{pid}\nNgid:\t0\nPid:\t{pid}\nPPid:\t{ppid}\nTracerPid:\t0\n\
                 Uid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}\nFDSize:\t64\nGroups:\t{groups}\nNStgid:\t{pid}\nNSpid:\t{pid}\nNSpgid:\t{pgid}\nNSsid:\t{sid}\n\
                 VmPeak:\t{vm_kb:8} kB\nVmSize:\t{vm_kb:8} kB\nVmHWM:\t{rss_kb:8} kB\nVmRSS:\t{rss_kb:8} kB\nThreads:\t{threads}\n\
                 SigQ:\t0/63704\nSigPnd:\t0000000000000000\nShdPnd:\t{pend:016x}\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\nSigCgt:\t0000000000000000\n\
                 CapInh:\t{inh:016x}\nCapPrm:\t{prm:016x}\nCapEff:\t{eff:016x}\nCapBnd:\t{bnd:016x}\nCapAmb:\t{amb:016x}\n\
                 NoNewPrivs:\t{nnp}\nSeccomp:\t{sc_mode}\nSeccomp_filters:\t{sc_filters}\nCpus_allowed:\t1\nCpus_allowed_list:\t0\nvoluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n",
                c.uid,
                c.euid,
                c.suid,
                c.fsuid,
                c.gid,
                c.egid,
                c.sgid,
                c.fsgid,
                pend = p.pending(),
            );
        }
        "stat" => {
            let start = v.start_ns / 10_000_000;
            let _ = writeln!(
                s,
                "{pid} ({comm}) {state} {ppid} {pgid} {sid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 {threads} 0 {start} {vsz} {rss} 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
                vsz = vm_kb * 1024,
                rss = rss_kb / 4
            );
        }
        "statm" => {
            let _ = writeln!(s, "{} {} 0 0 0 0 0", vm_kb / 4, rss_kb / 4);
        }
        "maps" => {
            if let Some(mm) = &v.mm {
                use crate::mm::vma::Backing;
                for a in mm.lock().vmas().iter() {
                    let (off, dev, ino, path) = match &a.backing {
                        Backing::File { path, offset, .. } => (*offset, "00:00", 0, path.clone()),
                        Backing::Heap => (0, "00:00", 0, "[heap]".into()),
                        Backing::Stack => (0, "00:00", 0, "[stack]".into()),
                        Backing::Anon => (0, "00:00", 0, String::new()),
                        Backing::Special { kind: crate::mm::special::Special::Vvar, .. } => (0, "00:00", 0, "[vvar]".into()),
                        Backing::Special { kind: crate::mm::special::Special::Vdso, .. } => (0, "00:00", 0, "[vdso]".into()),
                        Backing::Shared { offset, .. } => (*offset, "00:00", 0, "/dev/zero (deleted)".into()),
                        // Linux's internal shm mount is device 00:01.
                        Backing::SysvShm { seg, offset, .. } => {
                            let (name, ino) = seg.name();
                            (*offset, "00:01", ino, name)
                        }
                    };
                    let _ = writeln!(s, "{:08x}-{:08x} {} {:08x} {} {} {}", a.start, a.end, rw(a.prot, a.shared), off, dev, ino, path).map(|_| ());
                }
            }
        }
        "mounts" => s = mounts_text(),
        "mountinfo" => {
            for (i, m) in crate::vfs::walk::mounts().iter().enumerate() {
                let (fs, src, opts, super_opts) = fs_of(m);
                let _ = writeln!(s, "{} {} 0:{} / {} {} - {} {} {}", 20 + i, if i == 0 { 1 } else { 20 }, 20 + i, m, opts, fs, src, super_opts);
            }
        }
        "cgroup" => s.push_str(&crate::kernel::cgroup::proc_cgroup()),
        "oom_score_adj" => s.push_str("0\n"),
        "limits" => {
            s.push_str("Limit                     Soft Limit           Hard Limit           Units     \n");
            s.push_str("Max open files            1024                 1048576              files     \n");
        }
        _ => return Err(Errno::ENOENT),
    }
    Ok(s.into_bytes())
}

/// What /proc/self/mounts shows for a mount: type, source, mount
/// options and the filesystem's own options.
type MountInfo = (&'static str, &'static str, String, String);

/// Mounts whose type, source and options are known exactly (the rest
/// are guessed from where they are).
static MOUNT_INFO: Mutex<Vec<(String, MountInfo)>> = Mutex::new(Vec::new());

/// Records what /proc/self/mounts shows for the mount at `path`
/// (`super_opts`: the filesystem's options, e.g. a v1 cgroup's controllers).
pub fn note_mount(path: &str, fstype: &'static str, source: &'static str, options: &str, super_opts: &str) {
    let mut m = MOUNT_INFO.lock();
    m.retain(|(p, _)| p != path);
    m.push((path.into(), (fstype, source, options.into(), super_opts.into())));
}

fn fs_of(mount: &str) -> MountInfo {
    if let Some((_, info)) = MOUNT_INFO.lock().iter().find(|(p, _)| p == mount) {
        return info.clone();
    }
    let (t, src) = match mount {
        "/" => ("overlay", "overlay"),
        "/proc" => ("proc", "proc"),
        "/dev" => ("tmpfs", "tmpfs"),
        "/dev/shm" => ("tmpfs", "shm"),
        "/dev/pts" => ("devpts", "devpts"),
        _ => ("tmpfs", "tmpfs"),
    };
    (t, src, "rw,relatime".into(), "rw".into())
}

fn mounts_text() -> String {
    let mut s = String::new();
    for m in crate::vfs::walk::mounts() {
        let (fs, src, opts, super_opts) = fs_of(&m);
        // /proc/mounts joins both lists, without the second "rw"/"ro".
        let extra = super_opts.split(',').filter(|o| *o != "rw" && *o != "ro").fold(String::new(), |a, o| a + "," + o);
        let _ = writeln!(s, "{src} {m} {fs} {opts}{extra} 0 0");
    }
    s
}

/// The files host tools read to list processes (`podman top` reads
/// /proc inside the VMM's mount namespace, where the VMM mirrors this):
/// records of a NUL-terminated relative path, a u32 length and the bytes.
pub fn snapshot() -> Vec<u8> {
    let mut out = Vec::new();
    let mut put = |path: &str, data: &[u8]| {
        out.extend_from_slice(path.as_bytes());
        out.push(0);
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    };
    for name in ["stat", "uptime", "loadavg", "meminfo"] {
        if let Ok(d) = top_file(name) {
            put(name, &d);
        }
    }
    for p in crate::kernel::process::all_processes() {
        if p.inner.lock().zombie {
            continue;
        }
        for name in ["stat", "status", "cmdline", "comm"] {
            if let Ok(d) = pid_file(p.pid, name) {
                put(&format!("{}/{name}", p.pid), &d);
            }
        }
    }
    out
}

fn top_file(name: &str) -> Result<Vec<u8>, Errno> {
    let k = crate::kernel::get();
    let mut s = String::new();
    match name {
        "cpuinfo" => {
            // The host's, as gVisor does: the application sees the host's CPU.
            let f = crate::fs::hostfs::HostInode::root().lookup("proc")?.lookup("cpuinfo")?.open(0)?;
            let mut buf = vec![0u8; 256 << 10];
            let n = f.read_kernel(&mut buf, 0).unwrap_or(0);
            buf.truncate(n);
            return Ok(buf);
        }
        "meminfo" => {
            // The container's memory limit, when it has one, is the
            // machine's size as its programs see it (as gVisor shows it).
            let limit = crate::kernel::cgroup::limits().memory.unwrap_or(u64::MAX);
            let total = k.mem_size.min(limit) / 1024;
            let free = (crate::mm::frame::available() * 4).min(total.saturating_sub(crate::kernel::cgroup::memory_usage() / 1024));
            let _ = write!(
                s,
                "MemTotal:       {total:8} kB\nMemFree:        {free:8} kB\nMemAvailable:   {free:8} kB\nBuffers:               0 kB\nCached:                0 kB\n\
                 SwapCached:            0 kB\nActive:                0 kB\nInactive:              0 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n\
                 Shmem:                 0 kB\nHugePages_Total:       0\nHugePages_Free:        0\nHugepagesize:       2048 kB\n"
            );
        }
        "uptime" => {
            let up = crate::kernel::clock::uptime_ns();
            let _ = writeln!(s, "{}.{:02} {}.{:02}", up / 1_000_000_000, up / 10_000_000 % 100, up / 1_000_000_000, up / 10_000_000 % 100);
        }
        "loadavg" => {
            let n = process::all_processes().len();
            let _ = writeln!(s, "0.00 0.00 0.00 1/{n} {}", current_pid());
        }
        "version" => {
            let _ = writeln!(s, "Linux version {} (rvisor) {}", k.uts[1], k.uts[2]);
        }
        "filesystems" => s.push_str("nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\nnodev\tdevpts\nnodev\toverlay\n"),
        "stat" => {
            let boot = (crate::kernel::clock::realtime_ns().saturating_sub(crate::kernel::clock::uptime_ns())) / 1_000_000_000;
            s.push_str("cpu  0 0 0 0 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\nintr 0\nctxt 0\n");
            let _ = writeln!(s, "btime {boot}\nprocesses {}\nprocs_running 1\nprocs_blocked 0", process::all_processes().len());
        }
        "mounts" => s = mounts_text(),
        "cmdline" => s.push_str("rvisor\n"),
        _ => return Err(Errno::ENOENT),
    }
    Ok(s.into_bytes())
}

/// A file whose content is `data`, for other synthetic filesystems
/// (sysfs) that refuse write opens themselves.
pub(crate) fn content_file(data: Vec<u8>, stat: Stat) -> Box<dyn FileOps> {
    Box::new(ProcFile { data, pos: Mutex::new(0), stat })
}

/// An open /proc file: the content generated at open time.
struct ProcFile {
    data: Vec<u8>,
    pos: Mutex<u64>,
    stat: Stat,
}

impl FileOps for ProcFile {
    fn read(&self, t: &Task, segs: &[UserSeg], off: Option<u64>, _nonblock: bool) -> SysResult {
        let mut pos = self.pos.lock();
        let start = off.unwrap_or(*pos) as usize;
        let mut done = 0usize;
        let mut mm = t.mm.lock();
        for &(addr, len) in segs {
            let from = start + done;
            if from >= self.data.len() {
                break;
            }
            let n = len.min(self.data.len() - from);
            mm.copy_out(addr, &self.data[from..from + n])?;
            done += n;
        }
        if off.is_none() {
            *pos += done as u64;
        }
        Ok(done as u64)
    }

    fn write(&self, _t: &Task, segs: &[UserSeg], _off: Option<u64>, _nonblock: bool) -> SysResult {
        // comm and oom_score_adj accept writes (ignored).
        Ok(segs.iter().map(|s| s.1 as u64).sum())
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.stat)
    }

    fn seek(&self, off: i64, whence: u32) -> SysResult {
        let mut pos = self.pos.lock();
        let new = match whence {
            0 => off,
            1 => *pos as i64 + off,
            2 => self.data.len() as i64 + off,
            _ => return Err(Errno::EINVAL),
        };
        if new < 0 {
            return Err(Errno::EINVAL);
        }
        *pos = new as u64;
        Ok(new as u64)
    }

    fn path(&self) -> &str {
        "/proc"
    }

    fn splice_read(&self, _t: &Task, buf: &mut [u8], off: Option<u64>, _nonblock: bool) -> SysResult {
        let mut pos = self.pos.lock();
        let n = self.read_kernel(buf, off.unwrap_or(*pos))?;
        if off.is_none() {
            *pos += n as u64;
        }
        Ok(n as u64)
    }

    fn read_kernel(&self, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        let from = (off as usize).min(self.data.len());
        let n = buf.len().min(self.data.len() - from);
        buf[..n].copy_from_slice(&self.data[from..from + n]);
        Ok(n)
    }
}
