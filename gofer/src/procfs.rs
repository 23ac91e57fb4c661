//! The `/proc/self/fd` directory handle through which `O_PATH` fids are
//! reopened for I/O; see [`ProcSelfFd`] for why that is safe.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use crate::error::{io_err, GoferError};
use crate::sys;

/// An open `/proc/self/fd` directory of this process, verified to be procfs.
///
/// The server reopens an `O_PATH` fid for I/O as `openat(this, "N", flags)`,
/// where `N` is the fid's fd. Why this is safe: `/proc/self/fd/N` is a
/// *magic link*. Following it resolves no path: the kernel jumps straight to
/// the (mount, dentry) that fd `N` already holds. A concurrent rename, or a
/// directory swapped for a symlink, cannot change what it reaches, so the
/// reopen yields exactly the file the fid was walked to, which is beneath
/// the root. The only name looked up is the decimal fd number, inside
/// procfs, which the sandbox cannot write. On top of that the server refuses
/// symlink (ELOOP), socket and device fids before reopening, adds
/// `O_NONBLOCK` for FIFOs so an open cannot stall the connection, and checks
/// that the reopened file has the fid's device and inode.
///
/// The handle must be opened while the real procfs is visible, that is
/// before [`crate::confine::confine`] pivots into a root without /proc. It
/// is tied to the process that opened it: after `fork` a child's copy would
/// still list the parent's fds, so the server refuses it there.
#[derive(Debug)]
pub struct ProcSelfFd {
    dir: OwnedFd,
    pid: libc::pid_t,
}

impl ProcSelfFd {
    /// Opens `/proc/self/fd` and checks it is on procfs.
    pub fn open() -> Result<ProcSelfFd, GoferError> {
        let dir = sys::open(
            c"/proc/self/fd",
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
        .map_err(io_err("open /proc/self/fd"))?;
        let fs = sys::fstatfs(dir.as_fd()).map_err(io_err("fstatfs /proc/self/fd"))?;
        if fs.f_type != libc::PROC_SUPER_MAGIC {
            return Err(GoferError::NotProcfs);
        }
        Ok(ProcSelfFd {
            dir,
            pid: sys::getpid(),
        })
    }

    /// A handle that claims to belong to process `pid`, to test the check.
    #[cfg(test)]
    pub(crate) fn open_as(pid: libc::pid_t) -> ProcSelfFd {
        let mut p = ProcSelfFd::open().expect("open /proc/self/fd");
        p.pid = pid;
        p
    }

    /// Fails if this handle was opened by another process.
    pub(crate) fn check_owner(&self) -> Result<(), GoferError> {
        if self.pid == sys::getpid() {
            Ok(())
        } else {
            Err(GoferError::ForeignProcFd {
                opened_by: self.pid,
            })
        }
    }

    /// The directory fd, for `*at` calls naming [`ProcSelfFd::entry`].
    pub(crate) fn dir(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    /// The entry name of `fd` in this directory.
    pub(crate) fn entry(fd: BorrowedFd<'_>) -> CString {
        // A decimal number has no NUL byte, so this cannot fail.
        CString::new(fd.as_raw_fd().to_string()).unwrap_or_default()
    }

    /// Opens the file `fd` refers to anew with `flags` (plus `O_CLOEXEC`),
    /// following the magic link; see the type's docs for why that is safe.
    pub(crate) fn reopen(&self, fd: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<OwnedFd> {
        sys::openat(self.dir(), &Self::entry(fd), flags | libc::O_CLOEXEC, 0)
    }
}
