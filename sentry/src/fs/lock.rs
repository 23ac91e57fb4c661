//! Advisory file locks (Linux: fs/locks.c): POSIX record locks owned by
//! a process (released when it closes any fd of the file, or exits), OFD
//! locks owned by an open file description, and flock(2) locks (whole
//! file, per open file description, a separate namespace). Blocking
//! requests wait on one queue woken by every unlock.

use alloc::vec::Vec;
use spin::Mutex;

use crate::errno::Errno;
use crate::kernel::wait::WaitQueue;

/// Who holds a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A process (POSIX fcntl locks).
    Process(u32),
    /// An open file description (OFD locks), by address.
    File(usize),
}

/// Which kind of lock table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// fcntl record locks (POSIX and OFD share it, as in Linux).
    Record,
    /// flock(2).
    Flock,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Lock {
    space: Space,
    file: (u64, u64),
    start: u64,
    /// Inclusive end (u64::MAX: to end of file and beyond).
    end: u64,
    write: bool,
    owner: Owner,
    /// Reported by F_GETLK (-1 for OFD locks).
    pid: i32,
}

static LOCKS: Mutex<Vec<Lock>> = Mutex::new(Vec::new());
/// Woken on every unlock.
pub static UNLOCKED: WaitQueue = WaitQueue::new();

/// A requested lock range.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    pub space: Space,
    pub file: (u64, u64),
    pub start: u64,
    pub end: u64,
    pub write: bool,
    pub owner: Owner,
    pub pid: i32,
}

fn overlaps(a: &Lock, start: u64, end: u64) -> bool {
    a.start <= end && start <= a.end
}

/// The first lock of another owner that conflicts with `r`:
/// (write, start, end, pid).
pub fn conflict(r: &Request) -> Option<(bool, u64, u64, i32)> {
    LOCKS
        .lock()
        .iter()
        .find(|l| l.space == r.space && l.file == r.file && l.owner != r.owner && overlaps(l, r.start, r.end) && (l.write || r.write))
        .map(|l| (l.write, l.start, l.end, l.pid))
}

/// Removes `owner`'s locks in `[start, end]`, splitting partial overlaps.
fn remove_range(v: &mut Vec<Lock>, space: Space, file: (u64, u64), owner: Owner, start: u64, end: u64) {
    let mut out = Vec::with_capacity(v.len());
    for l in v.drain(..) {
        if l.space != space || l.file != file || l.owner != owner || !overlaps(&l, start, end) {
            out.push(l);
            continue;
        }
        if l.start < start {
            out.push(Lock { end: start - 1, ..l });
        }
        if l.end > end {
            out.push(Lock { start: end + 1, ..l });
        }
    }
    *v = out;
}

/// Takes the lock if nothing conflicts (EAGAIN otherwise).
pub fn try_lock(r: &Request) -> Result<(), Errno> {
    let mut v = LOCKS.lock();
    if v.iter().any(|l| l.space == r.space && l.file == r.file && l.owner != r.owner && overlaps(l, r.start, r.end) && (l.write || r.write)) {
        return Err(Errno::EAGAIN);
    }
    if v.len() >= 65536 {
        return Err(Errno::ENOLCK);
    }
    remove_range(&mut v, r.space, r.file, r.owner, r.start, r.end);
    v.push(Lock { space: r.space, file: r.file, start: r.start, end: r.end, write: r.write, owner: r.owner, pid: r.pid });
    drop(v);
    // Downgrades (write → read) can let waiters in.
    UNLOCKED.wake_all();
    Ok(())
}

/// Releases `owner`'s locks in a range.
pub fn unlock(space: Space, file: (u64, u64), owner: Owner, start: u64, end: u64) {
    remove_range(&mut LOCKS.lock(), space, file, owner, start, end);
    UNLOCKED.wake_all();
}

/// Releases every lock of `owner` on `file` (POSIX: a close of any fd).
pub fn release_file(file: (u64, u64), owner: Owner) {
    let mut v = LOCKS.lock();
    let before = v.len();
    v.retain(|l| !(l.file == file && l.owner == owner));
    if v.len() != before {
        drop(v);
        UNLOCKED.wake_all();
    }
}

/// Releases every lock of `owner` (process exit, last close of an OFD).
pub fn release_owner(owner: Owner) {
    let mut v = LOCKS.lock();
    let before = v.len();
    v.retain(|l| l.owner != owner);
    if v.len() != before {
        drop(v);
        UNLOCKED.wake_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(file: u64, start: u64, end: u64, write: bool, owner: Owner) -> Request {
        Request { space: Space::Record, file: (99, file), start, end, write, owner, pid: 1 }
    }

    #[test]
    fn conflicts_and_splits() {
        let (a, b) = (Owner::Process(10), Owner::Process(11));
        try_lock(&req(1, 0, 99, true, a)).unwrap();
        assert_eq!(try_lock(&req(1, 50, 60, false, b)), Err(Errno::EAGAIN));
        assert!(try_lock(&req(1, 100, 200, true, b)).is_ok());
        // Unlocking the middle splits a's lock.
        unlock(Space::Record, (99, 1), a, 40, 59);
        assert!(try_lock(&req(1, 45, 55, false, b)).is_ok());
        assert_eq!(try_lock(&req(1, 30, 39, false, b)), Err(Errno::EAGAIN));
        // Readers share.
        try_lock(&req(2, 0, u64::MAX, false, a)).unwrap();
        try_lock(&req(2, 0, u64::MAX, false, b)).unwrap();
        assert!(conflict(&req(2, 5, 5, true, a)).is_some());
        release_owner(a);
        release_owner(b);
        assert!(conflict(&req(1, 0, u64::MAX, true, Owner::Process(12))).is_none());
        // flock is a separate namespace.
        try_lock(&Request { space: Space::Flock, ..req(3, 0, u64::MAX, true, Owner::File(1)) }).unwrap();
        assert!(try_lock(&req(3, 0, u64::MAX, true, a)).is_ok());
        release_owner(Owner::File(1));
        release_owner(a);
    }
}
