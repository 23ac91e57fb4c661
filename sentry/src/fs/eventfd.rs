//! eventfd (Linux: fs/eventfd.c): a 64-bit counter. write adds to it
//! (blocking while the sum would exceed 0xffff_ffff_ffff_fffe), read
//! returns it and resets it to 0 — or, with EFD_SEMAPHORE, returns 1 and
//! decrements it — blocking while it is 0. Both need 8-byte buffers.

use abi::linux::Stat;
use spin::Mutex;

use super::{anon, FileOps, UserSeg, POLLERR, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM, POLL_WQ};
use crate::errno::{Errno, SysResult};
use crate::kernel::task::Task;
use crate::kernel::wait::WaitQueue;

/// Largest value the counter may hold.
pub const EVENTFD_MAX: u64 = 0xffff_ffff_ffff_fffe;
/// eventfd2 flags.
pub const EFD_SEMAPHORE: u32 = 1;

/// An eventfd.
pub struct EventFd {
    count: Mutex<u64>,
    semaphore: bool,
    /// Readers and writers wait here for the counter to change.
    wq: WaitQueue,
    ino: u64,
}

impl EventFd {
    /// A new counter starting at `init`.
    pub fn new(init: u64, semaphore: bool) -> EventFd {
        EventFd { count: Mutex::new(init), semaphore, wq: WaitQueue::new(), ino: anon::next_ino() }
    }

    /// Counter changed: wake both directions and pollers.
    fn changed(&self) {
        self.wq.wake_all();
        POLL_WQ.wake_all();
    }
}

impl FileOps for EventFd {
    fn read(&self, t: &Task, segs: &[UserSeg], off: Option<u64>, nonblock: bool) -> SysResult {
        if off.is_some() {
            return Err(Errno::ESPIPE);
        }
        if anon::total(segs) < 8 {
            return Err(Errno::EINVAL);
        }
        let pending = || t.proc.pending();
        let v = self.wq.wait(&t.shared, &pending, None, || {
            let mut c = self.count.lock();
            if *c == 0 {
                return if nonblock { Some(Err(Errno::EAGAIN)) } else { None };
            }
            let v = if self.semaphore { 1 } else { *c };
            *c -= v;
            Some(Ok(v))
        })??;
        self.changed();
        // Like Linux, a bad buffer loses the value.
        anon::copy_to_segs(t, segs, &v.to_le_bytes())?;
        Ok(8)
    }

    fn write(&self, t: &Task, segs: &[UserSeg], off: Option<u64>, nonblock: bool) -> SysResult {
        if off.is_some() {
            return Err(Errno::ESPIPE);
        }
        if anon::total(segs) < 8 {
            return Err(Errno::EINVAL);
        }
        let b = anon::copy_from_segs(t, segs, 8)?;
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&b);
        let add = u64::from_le_bytes(raw);
        if add == u64::MAX {
            return Err(Errno::EINVAL);
        }
        let pending = || t.proc.pending();
        self.wq.wait(&t.shared, &pending, None, || {
            let mut c = self.count.lock();
            if EVENTFD_MAX - *c >= add {
                *c += add;
                return Some(Ok(()));
            }
            if nonblock {
                Some(Err(Errno::EAGAIN))
            } else {
                None
            }
        })??;
        self.changed();
        Ok(8)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(anon::stat(self.ino))
    }

    fn path(&self) -> &str {
        "anon_inode:[eventfd]"
    }

    fn poll(&self, _events: u16) -> u16 {
        let c = *self.count.lock();
        let mut r = 0;
        if c > 0 {
            r |= POLLIN | POLLRDNORM;
        }
        if c == u64::MAX {
            r |= POLLERR;
        }
        if c < EVENTFD_MAX {
            r |= POLLOUT | POLLWRNORM;
        }
        r
    }
}
