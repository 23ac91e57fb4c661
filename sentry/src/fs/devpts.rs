//! /dev/pts as the sandbox sees it: the host pseudo-terminals that are
//! some process's stdio (the console of `--console-socket`, a `do` run
//! in a terminal, an `exec -t`), under their host numbers, so that
//! `ttyname`, `tty` and `/proc/self/fd` agree with `fstat` of the fd.
//! The sandbox cannot make pseudo-terminals of its own yet (`ptmx`).

use abi::linux::Stat;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::Mutex;

use super::host::HostFile;
use super::FileOps;
use crate::errno::Errno;
use crate::vfs::{DirEntry, Inode, Kind};

/// Host ptys by number: the open handles on each, and its stat.
static CONSOLES: Mutex<BTreeMap<u32, (Vec<u64>, Stat)>> = Mutex::new(BTreeMap::new());

/// Job control state per pty: the foreground process group (set by
/// TIOCSPGRP; before that, the first asker's group is taken).
static FOREGROUND: Mutex<BTreeMap<u32, u32>> = Mutex::new(BTreeMap::new());

/// The foreground process group of pty `n`, defaulting to `pgid`.
pub fn foreground(n: u32, pgid: u32) -> u32 {
    *FOREGROUND.lock().entry(n).or_insert(pgid)
}

/// The foreground process group of pty `n`, if anyone set or asked it.
pub fn foreground_of(n: u32) -> Option<u32> {
    FOREGROUND.lock().get(&n).copied()
}

/// TIOCSPGRP.
pub fn set_foreground(n: u32, pgid: u32) {
    FOREGROUND.lock().insert(n, pgid);
}

/// The pty number of a /dev/pts path.
pub fn number_of(path: &str) -> Option<u32> {
    path.strip_prefix("/dev/pts/")?.parse().ok()
}

/// Opens pty `n` again (for /dev/tty).
pub fn open_pty(n: u32) -> Result<Box<dyn FileOps>, Errno> {
    PtsNode { n: Some(n) }.open(2)
}

/// The st_dev of /dev/pts.
const DEVPTS_DEV: u64 = 0x22;

/// (major, minor) of a Linux dev_t.
pub fn split_dev(d: u64) -> (u32, u32) {
    let major = ((d >> 8) & 0xfff) | ((d >> 32) & !0xfff);
    let minor = (d & 0xff) | ((d >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// If `st` is a host pty slave, its /dev/pts number.
pub fn pty_number(st: &Stat) -> Option<u32> {
    let (major, minor) = split_dev(st.st_rdev);
    (st.st_mode & 0o170000 == 0o020000 && (136..=143).contains(&major)).then(|| (major - 136) * 256 + minor)
}

/// Records that `handle` is open on host pty `n`.
pub fn register(n: u32, handle: u64, st: Stat) {
    let mut c = CONSOLES.lock();
    let e = c.entry(n).or_insert((Vec::new(), st));
    e.0.push(handle);
}

/// `handle` on pty `n` is about to close.
pub fn unregister(n: u32, handle: u64) {
    let mut c = CONSOLES.lock();
    if let Some(e) = c.get_mut(&n) {
        e.0.retain(|&h| h != handle);
        if e.0.is_empty() {
            c.remove(&n);
            FOREGROUND.lock().remove(&n);
        }
    }
}

/// The root of a devpts mount.
pub fn root() -> Arc<dyn Inode> {
    Arc::new(PtsNode { n: None })
}

struct PtsNode {
    /// None: the directory.
    n: Option<u32>,
}

impl Inode for PtsNode {
    fn stat(&self) -> Result<Stat, Errno> {
        match self.n {
            None => Ok(Stat { st_dev: DEVPTS_DEV, st_ino: 1, st_mode: 0o040755, st_nlink: 2, st_blksize: 4096, ..Stat::default() }),
            Some(n) => CONSOLES.lock().get(&n).map(|e| e.1).ok_or(Errno::EIO),
        }
    }

    fn kind(&self) -> Kind {
        if self.n.is_none() {
            Kind::Dir
        } else {
            Kind::CharDev
        }
    }

    fn lookup(&self, name: &str) -> Result<Arc<dyn Inode>, Errno> {
        if self.n.is_some() {
            return Err(Errno::ENOTDIR);
        }
        let n: u32 = name.parse().map_err(|_| Errno::ENOENT)?;
        if !CONSOLES.lock().contains_key(&n) {
            return Err(Errno::ENOENT);
        }
        Ok(Arc::new(PtsNode { n: Some(n) }))
    }

    fn open(&self, _flags: u32) -> Result<Box<dyn FileOps>, Errno> {
        match self.n {
            None => Ok(Box::new(super::DirFile::new(self.readdir()?, self.stat()?, "/dev/pts"))),
            Some(n) => {
                let h = CONSOLES.lock().get(&n).and_then(|e| e.0.first().copied()).ok_or(Errno::EIO)?;
                Ok(Box::new(HostFile::borrowed(h, format!("/dev/pts/{n}"))))
            }
        }
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        if self.n.is_some() {
            return Err(Errno::ENOTDIR);
        }
        Ok(CONSOLES.lock().keys().map(|&n| DirEntry { name: String::from(itoa(n).as_str()), ino: u64::from(n) + 3, kind: Kind::CharDev }).collect())
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

fn itoa(n: u32) -> String {
    format!("{n}")
}
