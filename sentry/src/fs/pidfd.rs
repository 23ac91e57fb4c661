//! pidfd (Linux: kernel/pid.c pidfd_open, kernel/fork.c pidfd_fops): a
//! file that names a process. It polls readable once the process has
//! exited (POLLHUP too once it is reaped), and pidfd_send_signal and
//! waitid(P_PIDFD) find their target through it.
//!
//! The file holds the process weakly plus its pid: a reaped process is
//! gone for good (its pid may be reused), which the weak reference tells
//! apart from a new process with the same number.

use abi::linux::Stat;
use alloc::sync::{Arc, Weak};

use super::{anon, FileOps, OpenFile, POLLHUP, POLLIN, POLLRDNORM};
use crate::kernel::process::Process;

/// A pidfd.
pub struct PidFd {
    pid: u32,
    proc: Weak<Process>,
    ino: u64,
}

impl PidFd {
    /// A pidfd for `p`.
    pub fn new(p: &Arc<Process>) -> PidFd {
        PidFd { pid: p.pid, proc: Arc::downgrade(p), ino: anon::next_ino() }
    }

    /// The pid the file was opened for.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The process, while it has not been reaped.
    pub fn process(&self) -> Option<Arc<Process>> {
        self.proc.upgrade().filter(|p| crate::kernel::process::find_process(self.pid).is_some_and(|q| Arc::ptr_eq(p, &q)))
    }
}

/// The pidfd behind `f`, if it is one.
pub fn pidfd_of_file(f: &OpenFile) -> Option<&PidFd> {
    f.ops.as_any()?.downcast_ref::<PidFd>()
}

impl FileOps for PidFd {
    fn stat(&self) -> Result<Stat, crate::errno::Errno> {
        Ok(anon::stat(self.ino))
    }

    fn path(&self) -> &str {
        "anon_inode:[pidfd]"
    }

    fn poll(&self, _events: u16) -> u16 {
        match self.process() {
            // Readable once the whole thread group has exited.
            Some(p) if p.inner.lock().zombie => POLLIN | POLLRDNORM,
            Some(_) => 0,
            None => POLLIN | POLLRDNORM | POLLHUP,
        }
    }

    fn as_any(&self) -> Option<&dyn core::any::Any> {
        Some(self)
    }
}
