//! Helpers shared by the anonymous-inode files (Linux: fs/anon_inodes.c):
//! epoll, eventfd, timerfd and signalfd. They have no path, a mode of
//! 0600 without a file type, and an inode number unique in the sandbox.
//!
//! `Registry` finds the sentry object behind an `OpenFile` of one of
//! these types (epoll_ctl needs the epoll instance of an fd, signalfd the
//! signalfd to update) without downcasting `dyn FileOps`: each object
//! registers under its inode number and the file's path names its type.

use abi::linux::Stat;
use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;

use super::{OpenFile, UserSeg};
use crate::errno::Errno;
use crate::kernel::task::Task;

/// Device number of the anonymous-inode filesystem.
const ANON_DEV: u64 = 14;

static NEXT_INO: AtomicU64 = AtomicU64::new(1);

/// A fresh inode number.
pub fn next_ino() -> u64 {
    NEXT_INO.fetch_add(1, Ordering::Relaxed)
}

/// fstat of an anonymous inode.
pub fn stat(ino: u64) -> Stat {
    Stat { st_mode: 0o600, st_nlink: 1, st_blksize: 4096, st_dev: ANON_DEV, st_ino: ino, ..Stat::default() }
}

/// Bytes the user buffers hold.
pub fn total(segs: &[UserSeg]) -> usize {
    segs.iter().fold(0usize, |a, s| a.saturating_add(s.1))
}

/// Copies `data` out over the user buffers (in order).
pub fn copy_to_segs(t: &Task, segs: &[UserSeg], data: &[u8]) -> Result<(), Errno> {
    let mut done = 0;
    let mut mm = t.mm.lock();
    for &(addr, len) in segs {
        if done >= data.len() {
            break;
        }
        let n = len.min(data.len() - done);
        mm.copy_out(addr, &data[done..done + n])?;
        done += n;
    }
    Ok(())
}

/// Copies the first `n` bytes of the user buffers in.
pub fn copy_from_segs(t: &Task, segs: &[UserSeg], n: usize) -> Result<Vec<u8>, Errno> {
    let mut data = vec![0u8; n];
    let mut done = 0;
    let mut mm = t.mm.lock();
    for &(addr, len) in segs {
        if done >= n {
            break;
        }
        let k = len.min(n - done);
        mm.copy_in(addr, &mut data[done..done + k])?;
        done += k;
    }
    Ok(data)
}

/// Live objects of one anonymous file type, by inode number.
pub struct Registry<T> {
    map: Mutex<BTreeMap<u64, Weak<T>>>,
    /// The path (`anon_inode:[...]`) files of this type report.
    path: &'static str,
}

impl<T> Registry<T> {
    /// An empty registry for files named `path`.
    pub const fn new(path: &'static str) -> Registry<T> {
        Registry { map: Mutex::new(BTreeMap::new()), path }
    }

    /// Records `obj` under `ino`.
    pub fn insert(&self, ino: u64, obj: &Arc<T>) {
        self.map.lock().insert(ino, Arc::downgrade(obj));
    }

    /// Forgets `ino` (its object is going away).
    pub fn remove(&self, ino: u64) {
        self.map.lock().remove(&ino);
    }

    /// The object behind `f`, if `f` is a file of this type.
    pub fn lookup(&self, f: &OpenFile) -> Option<Arc<T>> {
        if f.ops.path() != self.path {
            return None;
        }
        let ino = f.ops.stat().ok()?.st_ino;
        self.map.lock().get(&ino).and_then(Weak::upgrade)
    }
}
