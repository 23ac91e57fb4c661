//! Thin, safe wrappers over the Linux calls the gofer makes: the only module
//! of the crate allowed to use `unsafe`.
//!
//! Each wrapper is one call wide and turns `-1`/errno into `io::Error`. Paths
//! are `&CStr` so that no wrapper has to allocate or can be handed an
//! unterminated string. Wrappers that take a directory fd and a name do no
//! checking of the name: that is the caller's job ([`crate::protocol::check_name`]).
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr;

use libc::{c_int, c_long, c_uint, c_ulong, c_void, gid_t, mode_t, uid_t};

fn cvt(ret: c_int) -> io::Result<c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cvt_size(ret: isize) -> io::Result<usize> {
    usize::try_from(ret).map_err(|_| io::Error::last_os_error())
}

fn cvt_long(ret: c_long) -> io::Result<c_long> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Wraps a freshly returned fd.
fn owned(fd: c_int) -> io::Result<OwnedFd> {
    let fd = cvt(fd)?;
    // SAFETY: the kernel just returned `fd` to us as a new descriptor, so
    // nothing else owns it and it is open.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

// ---------------------------------------------------------------------------
// Sockets.

/// Makes a connected pair of `AF_UNIX` `SOCK_SEQPACKET` sockets (close-on-exec),
/// the transport [`crate::serve`] expects.
///
/// The send buffers are raised (best effort, within `net.core.wmem_max`)
/// because a unix packet larger than the sender's `SO_SNDBUF` fails with
/// `EMSGSIZE`; the largest messages the server builds (`Getdents`, xattrs, a
/// full walk) stay below the 212992-byte Linux default either way.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as c_int; 2];
    // SAFETY: `fds` is a writable array of two ints, as socketpair(2) needs.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: socketpair succeeded, so both entries are new fds owned by us.
    let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    for s in [&a, &b] {
        let size = c_int::try_from(2 * crate::protocol::MAX_MSG).unwrap_or(c_int::MAX);
        // Ignoring the result is deliberate: the kernel clamps the value and
        // the default already fits every message the server sends.
        let _ = setsockopt_int(s.as_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, size);
    }
    Ok((a, b))
}

/// `setsockopt` of an int-valued option.
pub fn setsockopt_int(
    sock: BorrowedFd<'_>,
    level: c_int,
    opt: c_int,
    value: c_int,
) -> io::Result<()> {
    let len = libc::socklen_t::try_from(size_of::<c_int>())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `value` is a live int and `len` is its size.
    cvt(unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            opt,
            ptr::from_ref(&value).cast(),
            len,
        )
    })?;
    Ok(())
}

/// The `SO_TYPE` of a socket (`ENOTSOCK` if `fd` is not one).
pub fn socket_type(sock: BorrowedFd<'_>) -> io::Result<c_int> {
    let mut value: c_int = 0;
    let mut len = libc::socklen_t::try_from(size_of::<c_int>())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `value` and `len` are live and writable, and `len` holds the size of `value`.
    cvt(unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            ptr::from_mut(&mut value).cast(),
            &mut len,
        )
    })?;
    Ok(value)
}

/// Room for the control message of one fd, kept 8-byte aligned as `cmsghdr` needs.
#[repr(C, align(8))]
struct CmsgBuf([u8; 64]);

/// Sends `data` as one packet, with `fd` as `SCM_RIGHTS` when given.
/// `MSG_NOSIGNAL`: a vanished peer is an `EPIPE` error, not a `SIGPIPE`.
pub fn send_packet(
    sock: BorrowedFd<'_>,
    data: &[u8],
    fd: Option<BorrowedFd<'_>>,
) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    let mut cbuf = CmsgBuf([0; 64]);
    // SAFETY: msghdr is plain old data; all-zero is a valid empty value.
    let mut msg: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(fd) = fd {
        let fd_len = u32::try_from(size_of::<c_int>())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: CMSG_SPACE only computes a size.
        let space = unsafe { libc::CMSG_SPACE(fd_len) } as usize;
        debug_assert!(space <= cbuf.0.len());
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        msg.msg_controllen = space;
        // SAFETY: msg_control points at `space` writable, 8-aligned bytes, so
        // the first header fits and CMSG_FIRSTHDR returns a pointer into it.
        let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        // SAFETY: `cmsg` is non-null (the buffer holds a whole header) and
        // points into `cbuf`, which outlives this function's use of it; the
        // data area written by the copy is inside the `space` bytes.
        unsafe {
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(fd_len) as usize;
            ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<c_int>(), fd.as_raw_fd());
        }
    }
    loop {
        // SAFETY: `msg` points at `iov` (naming `data`, readable for its length)
        // and at `cbuf` when a control message is set; both outlive the call.
        let ret = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        match cvt_size(ret) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// One received packet.
#[derive(Debug)]
pub struct Packet {
    /// Bytes of the packet (may exceed the buffer when `truncated`).
    pub len: usize,
    /// The packet did not fit the buffer (`MSG_TRUNC`).
    pub truncated: bool,
    /// Fds that arrived with it, each owned and close-on-exec.
    pub fds: Vec<OwnedFd>,
    /// More fds were sent than there was room for; the kernel closed those.
    pub fds_truncated: bool,
}

/// Receives one packet into `buf`. With `accept_fds` false no control
/// buffer is offered, so the kernel drops (closes) any fd the peer sends:
/// the server never takes fds from its client.
pub fn recv_packet(sock: BorrowedFd<'_>, buf: &mut [u8], accept_fds: bool) -> io::Result<Packet> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = CmsgBuf([0; 64]);
    // SAFETY: msghdr is plain old data; all-zero is a valid empty value.
    let mut msg: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if accept_fds {
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        msg.msg_controllen = cbuf.0.len();
    }
    let len = loop {
        // SAFETY: `iov` names `buf`, writable for its length, and the control
        // pointer (if set) names `cbuf`; both outlive the call.
        let ret = unsafe {
            libc::recvmsg(
                sock.as_raw_fd(),
                &mut msg,
                libc::MSG_TRUNC | libc::MSG_CMSG_CLOEXEC,
            )
        };
        match cvt_size(ret) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => break r?,
        }
    };
    let mut fds = Vec::new();
    if accept_fds {
        // SAFETY: `msg` was filled by recvmsg; msg_control/msg_controllen
        // describe the part of `cbuf` the kernel wrote.
        let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        while !cmsg.is_null() {
            // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR only return headers wholly
            // inside the control buffer.
            let (level, kind, clen) =
                unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type, (*cmsg).cmsg_len) };
            if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
                // SAFETY: CMSG_LEN(0) only computes a size.
                let header = unsafe { libc::CMSG_LEN(0) } as usize;
                let n = clen.saturating_sub(header) / size_of::<c_int>();
                for i in 0..n {
                    // SAFETY: the kernel wrote `n` ints after the header of this
                    // control message, within the buffer; they may be unaligned.
                    let fd = unsafe {
                        ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<c_int>().add(i))
                    };
                    // SAFETY: SCM_RIGHTS installed `fd` in our table for us alone.
                    fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
            // SAFETY: `cmsg` is a valid header of `msg`'s control buffer.
            cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
        }
    }
    Ok(Packet {
        len,
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
        fds,
        fds_truncated: msg.msg_flags & libc::MSG_CTRUNC != 0,
    })
}

// ---------------------------------------------------------------------------
// Files.

/// `openat(2)`.
pub fn openat(dir: BorrowedFd<'_>, name: &CStr, flags: c_int, mode: mode_t) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated and outlives the call; the mode is
    // passed as the variadic argument openat reads only with O_CREAT/O_TMPFILE.
    owned(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, c_uint::from(mode)) })
}

/// `open(2)` of an absolute or cwd-relative path.
pub fn open(path: &CStr, flags: c_int) -> io::Result<OwnedFd> {
    // SAFETY: `path` is NUL-terminated and outlives the call.
    owned(unsafe { libc::open(path.as_ptr(), flags) })
}

/// Linux `struct open_how` (linux/openat2.h); libc's is `non_exhaustive`.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `openat2(2)`. `ENOSYS` on kernels before 5.6.
pub fn openat2(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: c_int,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let flags = u64::try_from(flags).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let how = OpenHow {
        flags,
        mode: 0,
        resolve,
    };
    // SAFETY: `name` is NUL-terminated, `how` is a live open_how of the size
    // passed; the kernel only reads both.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            name.as_ptr(),
            ptr::from_ref(&how),
            size_of::<OpenHow>(),
        )
    };
    let fd =
        c_int::try_from(cvt_long(ret)?).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: openat2 returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fstatat(2)`.
pub fn fstatat(dir: BorrowedFd<'_>, name: &CStr, flags: c_int) -> io::Result<libc::stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `name` is NUL-terminated; `st` is writable for one `struct stat`.
    cvt(unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), st.as_mut_ptr(), flags) })?;
    // SAFETY: fstatat succeeded and filled the whole struct.
    Ok(unsafe { st.assume_init() })
}

/// `fstat` of any fd, `O_PATH` ones included, never following a symlink
/// (`fstatat(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)`).
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    fstatat(fd, c"", libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW)
}

/// `fstatfs(2)` (works on `O_PATH` fds).
pub fn fstatfs(fd: BorrowedFd<'_>) -> io::Result<libc::statfs> {
    let mut st = MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `st` is writable for one `struct statfs`.
    cvt(unsafe { libc::fstatfs(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstatfs succeeded and filled the whole struct.
    Ok(unsafe { st.assume_init() })
}

/// `fstatvfs(3)` (the C library builds it from `fstatfs`, so `O_PATH` fds work).
pub fn fstatvfs(fd: BorrowedFd<'_>) -> io::Result<libc::statvfs> {
    let mut st = MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `st` is writable for one `struct statvfs`.
    cvt(unsafe { libc::fstatvfs(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstatvfs succeeded and filled the whole struct.
    Ok(unsafe { st.assume_init() })
}

/// `mkdirat(2)`.
pub fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: mode_t) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated and outlives the call.
    cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) }).map(drop)
}

/// `mknodat(2)`.
pub fn mknodat(dir: BorrowedFd<'_>, name: &CStr, mode: mode_t, dev: libc::dev_t) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated and outlives the call.
    cvt(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, dev) }).map(drop)
}

/// `symlinkat(2)`: `name` in `dir` will hold `target`.
pub fn symlinkat(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: both strings are NUL-terminated and outlive the call.
    cvt(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) }).map(drop)
}

/// `linkat(2)`.
pub fn linkat(
    old_dir: BorrowedFd<'_>,
    old_name: &CStr,
    new_dir: BorrowedFd<'_>,
    new_name: &CStr,
    flags: c_int,
) -> io::Result<()> {
    // SAFETY: both names are NUL-terminated and outlive the call.
    cvt(unsafe {
        libc::linkat(
            old_dir.as_raw_fd(),
            old_name.as_ptr(),
            new_dir.as_raw_fd(),
            new_name.as_ptr(),
            flags,
        )
    })
    .map(drop)
}

/// `unlinkat(2)`.
pub fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, flags: c_int) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated and outlives the call.
    cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) }).map(drop)
}

/// `renameat2(2)`, by raw syscall so that old C libraries do not matter.
pub fn renameat2(
    old_dir: BorrowedFd<'_>,
    old_name: &CStr,
    new_dir: BorrowedFd<'_>,
    new_name: &CStr,
    flags: c_uint,
) -> io::Result<()> {
    // SAFETY: both names are NUL-terminated and outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            old_dir.as_raw_fd(),
            old_name.as_ptr(),
            new_dir.as_raw_fd(),
            new_name.as_ptr(),
            flags,
        )
    };
    cvt_long(ret).map(drop)
}

/// `readlinkat(2)` into `buf`; returns the length (no NUL is added).
pub fn readlinkat(dir: BorrowedFd<'_>, name: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `name` is NUL-terminated; `buf` is writable for its length.
    cvt_size(unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    })
}

/// `fchownat(2)`; `u32::MAX` leaves an id unchanged.
pub fn fchownat(
    dir: BorrowedFd<'_>,
    name: &CStr,
    uid: uid_t,
    gid: gid_t,
    flags: c_int,
) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated and outlives the call.
    cvt(unsafe { libc::fchownat(dir.as_raw_fd(), name.as_ptr(), uid, gid, flags) }).map(drop)
}

/// `fchmodat(2)` (no flags: the C library's emulation of
/// `AT_SYMLINK_NOFOLLOW` would go through /proc, which we do ourselves).
pub fn fchmodat(dir: BorrowedFd<'_>, name: &CStr, mode: mode_t) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated and outlives the call.
    cvt(unsafe { libc::fchmodat(dir.as_raw_fd(), name.as_ptr(), mode, 0) }).map(drop)
}

/// `utimensat(2)`.
pub fn utimensat(
    dir: BorrowedFd<'_>,
    name: &CStr,
    times: &[libc::timespec; 2],
    flags: c_int,
) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated and `times` is two live timespecs.
    cvt(unsafe { libc::utimensat(dir.as_raw_fd(), name.as_ptr(), times.as_ptr(), flags) }).map(drop)
}

/// `ftruncate(2)`.
pub fn ftruncate(fd: BorrowedFd<'_>, len: i64) -> io::Result<()> {
    // SAFETY: plain syscall on an fd we borrow.
    cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), len) }).map(drop)
}

/// `lseek(2)`.
pub fn lseek(fd: BorrowedFd<'_>, off: i64, whence: c_int) -> io::Result<i64> {
    // SAFETY: plain syscall on an fd we borrow.
    let ret = unsafe { libc::lseek(fd.as_raw_fd(), off, whence) };
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `getdents64(2)` into `buf`; returns the bytes filled (0 at the end).
pub fn getdents64(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for its length, which is what we pass.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            fd.as_raw_fd(),
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    usize::try_from(cvt_long(ret)?).map_err(|_| io::Error::from_raw_os_error(libc::EIO))
}

/// `fgetxattr(2)` into `buf`; returns the value length.
pub fn fgetxattr(fd: BorrowedFd<'_>, name: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `name` is NUL-terminated; `buf` is writable for its length.
    cvt_size(unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    })
}

/// `fsetxattr(2)`.
pub fn fsetxattr(fd: BorrowedFd<'_>, name: &CStr, value: &[u8], flags: c_int) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated; `value` is readable for its length.
    cvt(unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    })
    .map(drop)
}

/// `flistxattr(2)` into `buf`; returns the bytes of NUL-separated names.
pub fn flistxattr(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for its length.
    cvt_size(unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
}

/// `fremovexattr(2)`.
pub fn fremovexattr(fd: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated and outlives the call.
    cvt(unsafe { libc::fremovexattr(fd.as_raw_fd(), name.as_ptr()) }).map(drop)
}

/// `umask(2)`: sets the process umask, returns the old one.
pub fn umask(mask: mode_t) -> mode_t {
    // SAFETY: umask cannot fail and touches no memory of ours.
    unsafe { libc::umask(mask) }
}

/// Our process id.
pub fn getpid() -> libc::pid_t {
    // SAFETY: getpid cannot fail and touches no memory of ours.
    unsafe { libc::getpid() }
}

// ---------------------------------------------------------------------------
// Confinement (mount namespace, pivot_root, capabilities).

/// `unshare(2)`.
pub fn unshare(flags: c_int) -> io::Result<()> {
    // SAFETY: plain syscall; it changes only this thread's/process's namespaces.
    cvt(unsafe { libc::unshare(flags) }).map(drop)
}

/// `mount(2)` with no filesystem data.
pub fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: c_ulong,
) -> io::Result<()> {
    let src = source.map_or(ptr::null(), CStr::as_ptr);
    let fst = fstype.map_or(ptr::null(), CStr::as_ptr);
    // SAFETY: every non-null pointer is a NUL-terminated string that outlives
    // the call; null is allowed for source, fstype and data.
    cvt(unsafe { libc::mount(src, target.as_ptr(), fst, flags, ptr::null::<c_void>()) }).map(drop)
}

/// `umount2(2)`.
pub fn umount2(target: &CStr, flags: c_int) -> io::Result<()> {
    // SAFETY: `target` is NUL-terminated and outlives the call.
    cvt(unsafe { libc::umount2(target.as_ptr(), flags) }).map(drop)
}

/// `pivot_root(2)`.
pub fn pivot_root(new_root: &CStr, put_old: &CStr) -> io::Result<()> {
    // SAFETY: both strings are NUL-terminated and outlive the call.
    cvt_long(unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) })
        .map(drop)
}

/// `fchdir(2)` (accepts `O_PATH` directory fds).
pub fn fchdir(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain syscall on an fd we borrow.
    cvt(unsafe { libc::fchdir(fd.as_raw_fd()) }).map(drop)
}

/// `chdir(2)`.
pub fn chdir(path: &CStr) -> io::Result<()> {
    // SAFETY: `path` is NUL-terminated and outlives the call.
    cvt(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
}

fn prctl(op: c_int, a: c_ulong, b: c_ulong) -> io::Result<c_int> {
    let zero: c_ulong = 0;
    // SAFETY: the operations used here take only integer arguments.
    cvt(unsafe { libc::prctl(op, a, b, zero, zero) })
}

/// `prctl(PR_CAPBSET_READ, cap)`: whether `cap` is in the bounding set
/// (`EINVAL` past the kernel's last capability).
#[cfg(test)]
pub fn capbset_read(cap: u32) -> io::Result<bool> {
    prctl(libc::PR_CAPBSET_READ, c_ulong::from(cap), 0).map(|v| v == 1)
}

/// `prctl(PR_CAPBSET_DROP, cap)`.
pub fn capbset_drop(cap: u32) -> io::Result<()> {
    prctl(libc::PR_CAPBSET_DROP, c_ulong::from(cap), 0).map(drop)
}

/// `prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)`.
pub fn clear_ambient_caps() -> io::Result<()> {
    let clear = c_ulong::try_from(libc::PR_CAP_AMBIENT_CLEAR_ALL)
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    prctl(libc::PR_CAP_AMBIENT, clear, 0).map(drop)
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
pub fn set_no_new_privs() -> io::Result<()> {
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0).map(drop)
}

/// `prctl(PR_GET_NO_NEW_PRIVS)`.
#[cfg(test)]
pub fn no_new_privs() -> io::Result<bool> {
    prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0).map(|v| v == 1)
}

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets in two 32-bit halves.
const CAP_V3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The calling thread's (effective, permitted, inheritable) capability sets.
pub fn capget() -> io::Result<(u64, u64, u64)> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: version 3 reads one header and writes two CapData, which is
    // exactly what we pass; both live across the call.
    cvt_long(unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) })?;
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
        join(data[0].inheritable, data[1].inheritable),
    ))
}

/// Sets the calling thread's capability sets (`capset(2)`, version 3).
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    // Truncation is the point: each half holds 32 of the 64 bits.
    let lo = |v: u64| (v & 0xffff_ffff) as u32;
    let hi = |v: u64| (v >> 32) as u32;
    let data = [
        CapData {
            effective: lo(effective),
            permitted: lo(permitted),
            inheritable: lo(inheritable),
        },
        CapData {
            effective: hi(effective),
            permitted: hi(permitted),
            inheritable: hi(inheritable),
        },
    ];
    // SAFETY: version 3 reads one header and two CapData, which is exactly
    // what we pass; both live across the call.
    cvt_long(unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) }).map(drop)
}

// ---------------------------------------------------------------------------
// Host seccomp's trap mode.

static SIGSYS_WHO: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
static SIGSYS_NAMES: std::sync::OnceLock<&'static [&'static str]> = std::sync::OnceLock::new();

/// Appends `s` to `buf` at `*at`, cutting at the end.
fn put(buf: &mut [u8], at: &mut usize, s: &[u8]) {
    for &b in s {
        if *at < buf.len() {
            buf[*at] = b;
            *at += 1;
        }
    }
}

/// Appends `v` in hex (`0x…`).
fn put_hex(buf: &mut [u8], at: &mut usize, v: u64) {
    put(buf, at, b"0x");
    let mut started = false;
    for shift in (0..16).rev() {
        let d = ((v >> (shift * 4)) & 0xf) as u8;
        if d != 0 || started || shift == 0 {
            started = true;
            put(buf, at, &[if d < 10 { b'0' + d } else { b'a' + d - 10 }]);
        }
    }
}

/// Reports a syscall the host filter refused (trap mode): one line on
/// stderr naming it and its arguments; the syscall fails with ENOSYS.
/// Async-signal-safe: formats into a stack buffer and calls write(2),
/// which every host filter allows.
extern "C" fn on_sigsys(_sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo for a SA_SIGINFO handler;
    // for SIGSYS its union holds (call address, syscall number, arch) from
    // offset 16 (include/uapi/asm-generic/siginfo.h), so the int at 24 is
    // the syscall number.
    let nr = unsafe { info.cast::<u8>().add(24).cast::<c_int>().read() };
    let mut args = [0u64; 6];
    if !ctx.is_null() {
        // SAFETY: a SA_SIGINFO handler's third argument is the interrupted
        // thread's ucontext, writable for the handler's duration.
        let uc = unsafe { &mut *ctx.cast::<libc::ucontext_t>() };
        let g = &mut uc.uc_mcontext.gregs;
        for (a, r) in args.iter_mut().zip([libc::REG_RDI, libc::REG_RSI, libc::REG_RDX, libc::REG_R10, libc::REG_R8, libc::REG_R9]) {
            *a = g[r as usize] as u64;
        }
        g[libc::REG_RAX as usize] = -i64::from(libc::ENOSYS);
    }
    let mut buf = [0u8; 400];
    let mut at = 0;
    put(&mut buf, &mut at, b"rvisor ");
    put(&mut buf, &mut at, SIGSYS_WHO.get().copied().unwrap_or("").as_bytes());
    put(&mut buf, &mut at, b": host seccomp (trap mode) refused syscall ");
    let mut digits = [0u8; 12];
    let mut n = nr.unsigned_abs();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    put(&mut buf, &mut at, &digits[i..]);
    put(&mut buf, &mut at, b" ");
    let name = usize::try_from(nr).ok().and_then(|i| SIGSYS_NAMES.get().and_then(|n| n.get(i)).copied()).unwrap_or("?");
    put(&mut buf, &mut at, name.as_bytes());
    put(&mut buf, &mut at, b"(");
    for (k, a) in args.iter().enumerate() {
        if k > 0 {
            put(&mut buf, &mut at, b", ");
        }
        put_hex(&mut buf, &mut at, *a);
    }
    put(&mut buf, &mut at, b"); it fails with ENOSYS\n");
    // SAFETY: writes our own stack buffer to stderr.
    unsafe { libc::write(2, buf.as_ptr().cast(), at) };
}

/// Installs the SIGSYS handler of trap mode (`crate::seccomp`).
pub fn install_sigsys_reporter(who: &'static str, names: &'static [&'static str]) -> io::Result<()> {
    let _ = SIGSYS_WHO.set(who);
    let _ = SIGSYS_NAMES.set(names);
    // SAFETY: a zeroed sigaction is valid; we set a SA_SIGINFO handler of
    // the matching signature, which is async-signal-safe (see `on_sigsys`).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigsys as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        cvt(libc::sigaction(libc::SIGSYS, &sa, ptr::null_mut())).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    #[test]
    fn fd_travels_over_seqpacket() {
        let (a, b) = seqpacket_pair().expect("socketpair");
        let mut file = std::fs::File::open("/proc/self/cmdline").expect("open");
        send_packet(a.as_fd(), b"hello", Some(file.as_fd())).expect("send");
        let mut buf = [0u8; 16];
        let p = recv_packet(b.as_fd(), &mut buf, true).expect("recv");
        assert_eq!(
            (p.len, p.truncated, p.fds.len(), p.fds_truncated),
            (5, false, 1, false)
        );
        assert_eq!(&buf[..5], b"hello");
        let mut got = std::fs::File::from(p.fds.into_iter().next().expect("fd"));
        let (mut x, mut y) = (Vec::new(), Vec::new());
        got.read_to_end(&mut x).expect("read");
        file.rewind().expect("rewind");
        file.read_to_end(&mut y).expect("read");
        assert_eq!(x, y);
    }

    #[test]
    fn fds_refused_when_not_accepted_and_truncation_reported() {
        let (a, b) = seqpacket_pair().expect("socketpair");
        let file = std::fs::File::open("/proc/self/cmdline").expect("open");
        send_packet(a.as_fd(), b"0123456789", Some(file.as_fd())).expect("send");
        let mut buf = [0u8; 4];
        let p = recv_packet(b.as_fd(), &mut buf, false).expect("recv");
        assert!(p.fds.is_empty());
        assert!(p.truncated);
        assert_eq!(p.len, 10);
        assert!(p.fds_truncated, "the kernel reports the fd it dropped");
    }

    #[test]
    fn eof_reads_zero() {
        let (a, b) = seqpacket_pair().expect("socketpair");
        drop(a);
        let mut buf = [0u8; 4];
        assert_eq!(recv_packet(b.as_fd(), &mut buf, true).expect("recv").len, 0);
        let err = send_packet(b.as_fd(), b"x", None).expect_err("peer gone");
        assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
        let mut f = std::fs::File::from(b);
        assert!(f.write(b"x").is_err());
    }
}
