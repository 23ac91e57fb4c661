//! signalfd (Linux: fs/signalfd.c): reading returns a `struct
//! signalfd_siginfo` (128 bytes) per pending signal of the file's mask,
//! taken off the *reading* thread's pending sets (thread first, then
//! process). Readiness is likewise that of the polling thread. Signal
//! senders wake `POLL_WQ`, where blocked readers and pollers wait.

use abi::linux::Stat;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use super::{anon, FileOps, UserSeg, POLLIN, POLLRDNORM, POLL_WQ};
use crate::errno::{Errno, SysResult};
use crate::kernel::process::{self, Process};
use crate::kernel::sched;
use crate::kernel::signal::{self, SigInfo};
use crate::kernel::task::Task;

/// Size of `struct signalfd_siginfo`.
pub const SIGINFO_SIZE: usize = 128;

/// The part signalfd(fd, ...) updates.
pub struct SignalCore {
    mask: AtomicU64,
}

impl SignalCore {
    /// Replaces the mask (SIGKILL and SIGSTOP are never taken).
    pub fn set_mask(&self, mask: u64) {
        self.mask.store(mask & !(signal::bit(signal::SIGKILL) | signal::bit(signal::SIGSTOP)), Ordering::Release);
        POLL_WQ.wake_all();
    }

    fn mask(&self) -> u64 {
        self.mask.load(Ordering::Acquire)
    }
}

/// A signalfd.
pub struct SignalFd {
    core: Arc<SignalCore>,
    /// The creating process: where the polling thread is usually found.
    creator: Weak<Process>,
    ino: u64,
}

/// Live signalfds, for updating one's mask.
pub static SIGNALFDS: anon::Registry<SignalCore> = anon::Registry::new("anon_inode:[signalfd]");

impl SignalFd {
    /// A signalfd for `mask`, created by `t`.
    pub fn new(t: &Task, mask: u64) -> SignalFd {
        let core = Arc::new(SignalCore { mask: AtomicU64::new(0) });
        core.set_mask(mask);
        let ino = anon::next_ino();
        SIGNALFDS.insert(ino, &core);
        SignalFd { core, creator: Arc::downgrade(&t.proc), ino }
    }

    /// Signals of the mask pending for the current thread (poll has no
    /// task argument: find the running thread and its process).
    fn pending_for_current(&self) -> u64 {
        let Some(me) = sched::current() else { return 0 };
        let owns = |p: &Arc<Process>| p.inner.lock().threads.iter().any(|x| Arc::ptr_eq(x, &me));
        let proc = match self.creator.upgrade() {
            Some(p) if owns(&p) => Some(p),
            _ => process::all_processes().into_iter().find(|p| owns(p)),
        };
        let pp = proc.map_or(0, |p| p.pending());
        (me.pending.load(Ordering::Acquire) | pp) & self.core.mask()
    }
}

impl Drop for SignalFd {
    fn drop(&mut self) {
        SIGNALFDS.remove(self.ino);
    }
}

/// Encodes `struct signalfd_siginfo`.
pub fn encode(sig: u32, info: &SigInfo) -> [u8; SIGINFO_SIZE] {
    let mut b = [0u8; SIGINFO_SIZE];
    let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
    put(0, &sig.to_le_bytes()); // ssi_signo
    put(8, &info.code.to_le_bytes()); // ssi_code
    const SIGCHLD: u32 = 17;
    if info.code == signal::SI_TIMER {
        // The timer layout, as Linux's signalfd_copyinfo (no pid or uid).
        put(24, &info.pid.to_le_bytes()); // ssi_tid: the timer id
        put(32, &info.uid.to_le_bytes()); // ssi_overrun
        put(44, &(info.addr as u32).to_le_bytes()); // ssi_int
        put(48, &info.addr.to_le_bytes()); // ssi_ptr
        return b;
    }
    put(12, &info.pid.to_le_bytes()); // ssi_pid
    put(16, &info.uid.to_le_bytes()); // ssi_uid
    match sig {
        SIGCHLD => put(40, &info.status.to_le_bytes()), // ssi_status
        4 | 5 | 7 | 8 | 11 if info.code > 0 => put(72, &info.addr.to_le_bytes()), // ssi_addr
        _ if info.code < 0 => {
            // sigqueue's value: ssi_int and ssi_ptr.
            put(44, &(info.addr as u32).to_le_bytes());
            put(48, &info.addr.to_le_bytes());
        }
        _ => {}
    }
    b
}

impl FileOps for SignalFd {
    fn read(&self, t: &Task, segs: &[UserSeg], off: Option<u64>, nonblock: bool) -> SysResult {
        if off.is_some() {
            return Err(Errno::ESPIPE);
        }
        let want = anon::total(segs) / SIGINFO_SIZE;
        if want == 0 {
            return Err(Errno::EINVAL);
        }
        let mine = || (t.shared.pending.load(Ordering::Acquire) | t.proc.pending()) & self.core.mask();
        let pending = || t.proc.pending();
        POLL_WQ.wait(&t.shared, &pending, None, || {
            if mine() != 0 {
                Some(Ok(()))
            } else if nonblock {
                Some(Err(Errno::EAGAIN))
            } else {
                None
            }
        })??;
        let mut out = Vec::new();
        while out.len() < want * SIGINFO_SIZE {
            let Some((sig, info)) = signal::dequeue_from(t, mine()) else { break };
            out.extend_from_slice(&encode(sig, &info));
        }
        if out.is_empty() {
            return Err(Errno::EAGAIN);
        }
        // Like Linux, a bad buffer loses the signals.
        anon::copy_to_segs(t, segs, &out)?;
        Ok(out.len() as u64)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(anon::stat(self.ino))
    }

    fn path(&self) -> &str {
        "anon_inode:[signalfd]"
    }

    fn poll(&self, _events: u16) -> u16 {
        if self.pending_for_current() != 0 {
            POLLIN | POLLRDNORM
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siginfo_layout() {
        let b = encode(10, &SigInfo { code: -1, pid: 7, uid: 1000, addr: 0x1_0000_002a, ..SigInfo::default() });
        assert_eq!(u32::from_le_bytes(b[0..4].try_into().unwrap()), 10);
        assert_eq!(i32::from_le_bytes(b[8..12].try_into().unwrap()), -1);
        assert_eq!(u32::from_le_bytes(b[12..16].try_into().unwrap()), 7);
        assert_eq!(u32::from_le_bytes(b[16..20].try_into().unwrap()), 1000);
        assert_eq!(i32::from_le_bytes(b[44..48].try_into().unwrap()), 42);
        assert_eq!(u64::from_le_bytes(b[48..56].try_into().unwrap()), 0x1_0000_002a);
        let c = encode(17, &SigInfo { code: 1, pid: 9, status: 3, ..SigInfo::default() });
        assert_eq!(i32::from_le_bytes(c[40..44].try_into().unwrap()), 3);
        let s = encode(11, &SigInfo { code: 1, addr: 0xdead, ..SigInfo::default() });
        assert_eq!(u64::from_le_bytes(s[72..80].try_into().unwrap()), 0xdead);
        // A POSIX timer's signal: ssi_tid and ssi_overrun, no pid or uid.
        let t = encode(14, &SigInfo::timer(3, 5, 99, 1));
        assert_eq!(i32::from_le_bytes(t[8..12].try_into().unwrap()), signal::SI_TIMER);
        assert_eq!(u32::from_le_bytes(t[12..16].try_into().unwrap()), 0);
        assert_eq!(u32::from_le_bytes(t[24..28].try_into().unwrap()), 3);
        assert_eq!(u32::from_le_bytes(t[32..36].try_into().unwrap()), 5);
        assert_eq!(u64::from_le_bytes(t[48..56].try_into().unwrap()), 99);
    }
}
