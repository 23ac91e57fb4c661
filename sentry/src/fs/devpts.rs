//! /dev/pts (Linux: fs/devpts): the sandbox's own pseudo-terminal
//! slaves (`fs::pty`, made through /dev/ptmx or /dev/pts/ptmx) and the
//! host pseudo-terminals that are some process's stdio (the console of
//! `--console-socket`, a `do` run in a terminal, an `exec -t`), so that
//! `ttyname`, `tty` and `/proc/self/fd` agree with `fstat` of the fd.
//!
//! Both kinds share one number space. A host terminal keeps its host
//! number unless a sandbox pty holds it; then it is listed under a free
//! number, with st_rdev to match.

use abi::linux::Stat;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::Mutex;

use super::host::HostFile;
use super::pty::Pty;
use super::FileOps;
use crate::errno::Errno;
use crate::vfs::{DirEntry, Inode, Kind, SetAttr};

/// What a /dev/pts number is.
enum Slot {
    /// A host pty: the open handles on it, its stat (st_rdev made to
    /// match the number) and its number on the host.
    Host { handles: Vec<u64>, stat: Stat, host_n: u32 },
    /// One of the sandbox's (until its master closes).
    Pty(Arc<Pty>),
}

/// Every number in use.
static PTS: Mutex<BTreeMap<u32, Slot>> = Mutex::new(BTreeMap::new());

/// Job control state per host pty: the foreground process group (set by
/// TIOCSPGRP; before that, the first asker's group is taken).
static FOREGROUND: Mutex<BTreeMap<u32, u32>> = Mutex::new(BTreeMap::new());

/// Sessions started on a host terminal (their controlling terminal): by
/// session id, the /dev/pts number.
static CONSOLE_SESSIONS: Mutex<BTreeMap<u32, u32>> = Mutex::new(BTreeMap::new());

/// The foreground process group of host pty `n`, defaulting to `pgid`.
pub fn foreground(n: u32, pgid: u32) -> u32 {
    *FOREGROUND.lock().entry(n).or_insert(pgid)
}

/// The foreground process group of host pty `n`, if anyone set or asked it.
pub fn foreground_of(n: u32) -> Option<u32> {
    FOREGROUND.lock().get(&n).copied()
}

/// TIOCSPGRP on a host pty.
pub fn set_foreground(n: u32, pgid: u32) {
    FOREGROUND.lock().insert(n, pgid);
}

/// The pty number of a /dev/pts path.
pub fn number_of(path: &str) -> Option<u32> {
    path.strip_prefix("/dev/pts/")?.parse().ok()
}

/// Whether `n` is a host pty.
pub fn is_console(n: u32) -> bool {
    matches!(PTS.lock().get(&n), Some(Slot::Host { .. }))
}

/// Opens host pty `n` again (for /dev/tty).
pub fn open_pty(n: u32) -> Result<Box<dyn FileOps>, Errno> {
    PtsNode { node: Node::Pts(n) }.open(2)
}

/// Records that session `sid` was started with host pty `n` as stdio.
pub fn note_console_session(sid: u32, n: u32) {
    CONSOLE_SESSIONS.lock().insert(sid, n);
}

/// The host pty session `sid` was started on, while it is open.
pub fn console_of_session(sid: u32) -> Option<u32> {
    let n = *CONSOLE_SESSIONS.lock().get(&sid)?;
    is_console(n).then_some(n)
}

/// Session `sid` ended or gave its terminal up: its host terminal is
/// nobody's now.
pub fn forget_console_session(sid: u32) {
    CONSOLE_SESSIONS.lock().remove(&sid);
}

/// The session host pty `n` is the controlling terminal of.
pub fn console_owner(n: u32) -> Option<u32> {
    CONSOLE_SESSIONS.lock().iter().find(|&(_, &c)| c == n).map(|(&sid, _)| sid)
}

/// Host pty `n` has no session any more: its foreground group, if one
/// was set or asked for, is returned and forgotten.
pub fn take_foreground(n: u32) -> Option<u32> {
    FOREGROUND.lock().remove(&n)
}

/// The st_dev of /dev/pts.
pub const DEVPTS_DEV: u64 = 0x22;

/// (major, minor) of a Linux dev_t.
pub fn split_dev(d: u64) -> (u32, u32) {
    let major = ((d >> 8) & 0xfff) | ((d >> 32) & !0xfff);
    let minor = (d & 0xff) | ((d >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// A Linux dev_t (glibc's makedev).
pub fn make_dev(major: u32, minor: u32) -> u64 {
    let (major, minor) = (u64::from(major), u64::from(minor));
    ((major & 0xffff_f000) << 32) | ((major & 0xfff) << 8) | ((minor & 0xffff_ff00) << 12) | (minor & 0xff)
}

/// If `st` is a host pty slave, its number on the host.
pub fn pty_number(st: &Stat) -> Option<u32> {
    let (major, minor) = split_dev(st.st_rdev);
    (st.st_mode & 0o170000 == 0o020000 && (136..=143).contains(&major)).then(|| (major - 136) * 256 + minor)
}

/// st_rdev of /dev/pts/`n`.
pub fn rdev_of(n: u32) -> u64 {
    make_dev(super::pty::PTS_MAJOR, n)
}

fn lowest_free(m: &BTreeMap<u32, Slot>) -> u32 {
    let mut n = 0;
    for &k in m.keys() {
        if k != n {
            break;
        }
        n += 1;
    }
    n
}

/// Records that `handle` is open on host pty `host_n` (whose stat is
/// `st`); returns its number in the sandbox.
pub fn register(host_n: u32, handle: u64, mut st: Stat) -> u32 {
    let mut m = PTS.lock();
    for (&n, slot) in m.iter_mut() {
        if let Slot::Host { handles, host_n: h, .. } = slot {
            if *h == host_n {
                handles.push(handle);
                return n;
            }
        }
    }
    let n = if m.contains_key(&host_n) { lowest_free(&m) } else { host_n };
    st.st_rdev = rdev_of(n);
    m.insert(n, Slot::Host { handles: alloc::vec![handle], stat: st, host_n });
    n
}

/// `handle` on host pty `n` is about to close.
pub fn unregister(n: u32, handle: u64) {
    let mut m = PTS.lock();
    if let Some(Slot::Host { handles, .. }) = m.get_mut(&n) {
        handles.retain(|&h| h != handle);
        if handles.is_empty() {
            m.remove(&n);
            FOREGROUND.lock().remove(&n);
            // The number may come back as another terminal, which no
            // session has taken.
            CONSOLE_SESSIONS.lock().retain(|_, c| *c != n);
        }
    }
}

/// Registers a new sandbox pty under the lowest free number.
pub fn add_pty(make: impl FnOnce(u32) -> Arc<Pty>) -> Result<Arc<Pty>, Errno> {
    let mut m = PTS.lock();
    if m.values().filter(|s| matches!(s, Slot::Pty(_))).count() >= super::pty::PTY_MAX {
        return Err(Errno::ENOSPC);
    }
    let n = lowest_free(&m);
    let pty = make(n);
    m.insert(n, Slot::Pty(pty.clone()));
    Ok(pty)
}

/// The master of sandbox pty `n` closed: the number is free again.
pub fn remove_pty(n: u32) {
    let mut m = PTS.lock();
    if matches!(m.get(&n), Some(Slot::Pty(_))) {
        m.remove(&n);
    }
}

/// The sandbox's ptys.
pub fn sandbox_ptys() -> Vec<Arc<Pty>> {
    PTS.lock()
        .values()
        .filter_map(|s| match s {
            Slot::Pty(p) => Some(p.clone()),
            Slot::Host { .. } => None,
        })
        .collect()
}

/// The sandbox pty numbered `n`.
fn sandbox_pty(n: u32) -> Option<Arc<Pty>> {
    match PTS.lock().get(&n) {
        Some(Slot::Pty(p)) => Some(p.clone()),
        _ => None,
    }
}

/// The inode of /dev/pts/`n`.
pub fn node(n: u32) -> Arc<dyn Inode> {
    Arc::new(PtsNode { node: Node::Pts(n) })
}

/// The root of a devpts mount.
pub fn root() -> Arc<dyn Inode> {
    Arc::new(PtsNode { node: Node::Dir })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Node {
    Dir,
    /// /dev/pts/ptmx: another way to make a pair.
    Ptmx,
    Pts(u32),
}

struct PtsNode {
    node: Node,
}

impl Inode for PtsNode {
    fn stat(&self) -> Result<Stat, Errno> {
        match self.node {
            Node::Dir => Ok(Stat { st_dev: DEVPTS_DEV, st_ino: 1, st_mode: 0o040755, st_nlink: 2, st_blksize: 4096, ..Stat::default() }),
            Node::Ptmx => Ok(Stat { st_dev: DEVPTS_DEV, st_ino: 2, st_mode: 0o020666, st_nlink: 1, st_rdev: make_dev(5, 2), st_blksize: 1024, ..Stat::default() }),
            Node::Pts(n) => match PTS.lock().get(&n) {
                Some(Slot::Host { stat, .. }) => Ok(*stat),
                Some(Slot::Pty(p)) => Ok(p.stat()),
                None => Err(Errno::EIO),
            },
        }
    }

    fn kind(&self) -> Kind {
        if self.node == Node::Dir {
            Kind::Dir
        } else {
            Kind::CharDev
        }
    }

    fn lookup(&self, name: &str) -> Result<Arc<dyn Inode>, Errno> {
        if self.node != Node::Dir {
            return Err(Errno::ENOTDIR);
        }
        if name == "ptmx" {
            return Ok(Arc::new(PtsNode { node: Node::Ptmx }));
        }
        let n: u32 = name.parse().map_err(|_| Errno::ENOENT)?;
        if name != format!("{n}") || !PTS.lock().contains_key(&n) {
            return Err(Errno::ENOENT);
        }
        Ok(node(n))
    }

    fn open(&self, _flags: u32) -> Result<Box<dyn FileOps>, Errno> {
        match self.node {
            Node::Dir => Ok(Box::new(super::DirFile::new(self.readdir()?, self.stat()?, "/dev/pts"))),
            Node::Ptmx => super::pty::open_master(),
            Node::Pts(n) => {
                if let Some(p) = sandbox_pty(n) {
                    return super::pty::open_slave(p);
                }
                let h = match PTS.lock().get(&n) {
                    Some(Slot::Host { handles, .. }) => handles.first().copied(),
                    _ => None,
                }
                .ok_or(Errno::EIO)?;
                Ok(Box::new(HostFile::borrowed(h, n)))
            }
        }
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        if self.node != Node::Dir {
            return Err(Errno::ENOTDIR);
        }
        let mut v = alloc::vec![DirEntry { name: String::from("ptmx"), ino: 2, kind: Kind::CharDev }];
        v.extend(PTS.lock().keys().map(|&n| DirEntry { name: format!("{n}"), ino: u64::from(n) + 3, kind: Kind::CharDev }));
        Ok(v)
    }

    fn setattr(&self, a: &SetAttr) -> Result<(), Errno> {
        // grantpt (older glibc) chowns and chmods the slave.
        match self.node {
            Node::Pts(n) => {
                let p = sandbox_pty(n).ok_or(Errno::EROFS)?;
                p.set_owner(a.mode, a.uid, a.gid);
                Ok(())
            }
            _ => Err(Errno::EROFS),
        }
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_numbers_round_trip() {
        for (ma, mi) in [(136, 0), (136, 3), (136, 300), (5, 2), (4095, 1 << 19)] {
            assert_eq!(split_dev(make_dev(ma, mi)), (ma, mi));
        }
        assert_eq!(make_dev(136, 3), (136 << 8) | 3);
    }

    /// The only test touching the global tables (tests run in
    /// parallel): sandbox ptys and host terminals share the number space
    /// in both orders of arrival.
    #[test]
    fn host_and_sandbox_ptys_share_numbers() {
        let first = add_pty(|n| Arc::new(Pty::new(n))).unwrap();
        let n = first.index;
        let st = Stat { st_mode: 0o020620, st_rdev: make_dev(136, n), ..Stat::default() };
        // A host terminal whose host number is taken moves to a free one.
        let moved = register(n, 1000, st);
        assert_ne!(moved, n);
        assert_eq!(node(moved).stat().unwrap().st_rdev, rdev_of(moved));
        assert_eq!(register(n, 1001, st), moved, "a second handle on it joins the entry");
        // A new sandbox pty skips both.
        let second = add_pty(|n| Arc::new(Pty::new(n))).unwrap();
        assert!(second.index != n && second.index != moved);
        assert!(sandbox_ptys().iter().any(|p| p.index == n));
        assert!(is_console(moved) && !is_console(n));
        note_console_session(77, moved);
        assert_eq!(console_owner(moved), Some(77));
        unregister(moved, 1000);
        assert!(is_console(moved));
        assert_eq!(console_of_session(77), Some(moved));
        unregister(moved, 1001);
        assert!(!is_console(moved));
        assert_eq!(console_owner(moved), None, "a closed terminal is no session's");
        remove_pty(n);
        remove_pty(second.index);
        assert!(node(n).stat().is_err());
    }

    #[test]
    fn lowest_free_number() {
        let mut m = BTreeMap::new();
        assert_eq!(lowest_free(&m), 0);
        let st = Stat::default();
        m.insert(0, Slot::Host { handles: Vec::new(), stat: st, host_n: 0 });
        m.insert(2, Slot::Host { handles: Vec::new(), stat: st, host_n: 2 });
        assert_eq!(lowest_free(&m), 1);
    }
}
