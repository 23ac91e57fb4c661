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
