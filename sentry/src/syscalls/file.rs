//! Reading and writing open files: read, write, readv, writev, pread64,
//! pwrite64, preadv, pwritev, lseek.

use alloc::vec::Vec;

use super::Args;
use crate::errno::{Errno, SysResult};
use crate::fs::{OpenFile, UserSeg};
use crate::kernel::task::Task;
use alloc::sync::Arc;

/// Linux caps one read/write at this many bytes.
const MAX_RW: usize = 0x7fff_f000;
const O_ACCMODE: u32 = 3;
const O_WRONLY: u32 = 1;
const O_RDONLY: u32 = 0;
const O_PATH: u32 = 0o10000000;
const IOV_MAX: u64 = 1024;

/// The file at `fd`, if it may be read (`write = false`) or written.
pub fn file_for(t: &Task, fd: i32, write: bool) -> Result<Arc<OpenFile>, Errno> {
    let f = t.fds.lock().get(fd)?;
    let flags = f.flags();
    if flags & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    let mode = flags & O_ACCMODE;
    if (write && mode == O_RDONLY) || (!write && mode == O_WRONLY) {
        return Err(Errno::EBADF);
    }
    Ok(f)
}

/// Reads a user `struct iovec` array, clamping the total to MAX_RW.
pub(super) fn read_iovecs(t: &mut Task, iov: u64, cnt: u64) -> Result<Vec<UserSeg>, Errno> {
    if cnt > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let mut segs = Vec::with_capacity(cnt as usize);
    let mut total = 0usize;
    for i in 0..cnt {
        let base: u64 = t.mm.lock().read_obj(iov.wrapping_add(i * 16))?;
        let len: u64 = t.mm.lock().read_obj(iov.wrapping_add(i * 16 + 8))?;
        if len > isize::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        let len = (len as usize).min(MAX_RW - total);
        total += len;
        segs.push((base, len));
    }
    Ok(segs)
}

/// RLIMIT_FSIZE's index.
const RLIMIT_FSIZE: usize = 1;

/// RLIMIT_FSIZE for writing `len` bytes to a regular file at `off`
/// (None: the file position, or its end with O_APPEND): how many may be
/// written. Writing at or past the limit raises SIGXFSZ and fails with
/// EFBIG, a write across it is cut short (Linux:
/// generic_write_check_limits).
pub fn fsize_room(t: &Task, f: &OpenFile, len: usize, off: Option<u64>) -> Result<usize, Errno> {
    const O_APPEND: u32 = 0o2000;
    const SEEK_CUR: u32 = 1;
    let limit = t.rlimits[RLIMIT_FSIZE].0;
    let regular = f.loc.as_ref().is_some_and(|l| l.inode.kind() == crate::vfs::Kind::File);
    // An empty write checks nothing (Linux: generic_write_checks).
    if limit == u64::MAX || !regular || len == 0 {
        return Ok(len);
    }
    let pos = match off {
        Some(o) => o,
        None if f.flags() & O_APPEND != 0 => f.ops.stat()?.st_size as u64,
        None => f.ops.seek(0, SEEK_CUR)?,
    };
    if pos >= limit {
        fsize_exceeded(t);
        return Err(Errno::EFBIG);
    }
    Ok(len.min(usize::try_from(limit - pos).unwrap_or(usize::MAX)))
}

/// `segs` cut to what RLIMIT_FSIZE lets a write at `off` take (None: all).
fn fsize_limit(t: &Task, f: &OpenFile, segs: &[UserSeg], off: Option<u64>) -> Result<Option<Vec<UserSeg>>, Errno> {
    let want = segs.iter().fold(0usize, |a, s| a.saturating_add(s.1));
    let mut room = fsize_room(t, f, want, off)?;
    if room == want {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(segs.len());
    for &(base, len) in segs {
        let n = len.min(room);
        room -= n;
        out.push((base, n));
    }
    Ok(Some(out))
}

/// Sends the caller SIGXFSZ (Linux: send_sig from the write path).
pub fn fsize_exceeded(t: &Task) {
    const SIGXFSZ: u32 = 25;
    crate::kernel::signal::send_to_thread(&t.proc, &t.shared, SIGXFSZ, crate::kernel::signal::SigInfo::kernel());
}

/// Writes `segs` within RLIMIT_FSIZE.
fn write_limited(t: &Task, f: &OpenFile, segs: &[UserSeg], off: Option<u64>) -> SysResult {
    match fsize_limit(t, f, segs, off)? {
        Some(cut) => f.write(t, &cut, off),
        None => f.write(t, segs, off),
    }
}

fn offset(a: &Args, i: usize) -> Result<u64, Errno> {
    let off = a.u64(i) as i64;
    if off < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(off as u64)
}

pub fn sys_read(t: &mut Task, a: &Args) -> SysResult {
    let f = file_for(t, a.fd(0), false)?;
    f.read(t, &[(a.u64(1), a.usize(2).min(MAX_RW))], None)
}

pub fn sys_write(t: &mut Task, a: &Args) -> SysResult {
    let f = file_for(t, a.fd(0), true)?;
    write_limited(t, &f, &[(a.u64(1), a.usize(2).min(MAX_RW))], None)
}

pub fn sys_pread64(t: &mut Task, a: &Args) -> SysResult {
    let off = offset(a, 3)?;
    let f = file_for(t, a.fd(0), false)?;
    f.read(t, &[(a.u64(1), a.usize(2).min(MAX_RW))], Some(off))
}

pub fn sys_pwrite64(t: &mut Task, a: &Args) -> SysResult {
    let off = offset(a, 3)?;
    let f = file_for(t, a.fd(0), true)?;
    write_limited(t, &f, &[(a.u64(1), a.usize(2).min(MAX_RW))], Some(off))
}

pub fn sys_readv(t: &mut Task, a: &Args) -> SysResult {
    let f = file_for(t, a.fd(0), false)?;
    let segs = read_iovecs(t, a.u64(1), a.u64(2))?;
    f.read(t, &segs, None)
}

pub fn sys_writev(t: &mut Task, a: &Args) -> SysResult {
    let f = file_for(t, a.fd(0), true)?;
    let segs = read_iovecs(t, a.u64(1), a.u64(2))?;
    write_limited(t, &f, &segs, None)
}

pub fn sys_preadv(t: &mut Task, a: &Args) -> SysResult {
    let off = offset(a, 3)?;
    let f = file_for(t, a.fd(0), false)?;
    let segs = read_iovecs(t, a.u64(1), a.u64(2))?;
    f.read(t, &segs, Some(off))
}

pub fn sys_pwritev(t: &mut Task, a: &Args) -> SysResult {
    let off = offset(a, 3)?;
    let f = file_for(t, a.fd(0), true)?;
    let segs = read_iovecs(t, a.u64(1), a.u64(2))?;
    write_limited(t, &f, &segs, Some(off))
}

pub fn sys_lseek(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.lock().get(a.fd(0))?;
    let whence = a.u32(2);
    if whence > 4 {
        return Err(Errno::EINVAL);
    }
    f.ops.seek(a.u64(1) as i64, whence)
}

/// Whether `f` reads and writes at offsets (Linux: FMODE_PREAD/PWRITE,
/// which pipes, sockets and terminals lack).
pub(super) fn positional(f: &OpenFile) -> bool {
    const SEEK_CUR: u32 = 1;
    match kind_of(f) {
        Ok(crate::vfs::Kind::File) => true,
        Ok(crate::vfs::Kind::Fifo | crate::vfs::Kind::Socket) => false,
        _ => f.ops.seek(0, SEEK_CUR) != Err(Errno::ESPIPE),
    }
}

/// The type of the file behind `f`.
pub(super) fn kind_of(f: &OpenFile) -> Result<crate::vfs::Kind, Errno> {
    use crate::vfs::Kind;
    if let Some(l) = &f.loc {
        return Ok(l.inode.kind());
    }
    if f.ops.is_dir() {
        return Ok(Kind::Dir);
    }
    Ok(Kind::from_mode(f.ops.stat()?.st_mode))
}

const RWF_HIPRI: u32 = 0x1;
const RWF_DSYNC: u32 = 0x2;
const RWF_SYNC: u32 = 0x4;
const RWF_NOWAIT: u32 = 0x8;
const RWF_APPEND: u32 = 0x10;
const RWF_NOAPPEND: u32 = 0x20;

/// preadv2 and pwritev2: an offset of -1 is the file position. HIPRI,
/// DSYNC and SYNC need nothing (writes reach tmpfs memory or the host
/// synchronously); NOWAIT makes this call non-blocking; APPEND writes at
/// the end.
fn rw2(t: &mut Task, a: &Args, write: bool) -> SysResult {
    let (fd, off, flags) = (a.fd(0), a.u64(3) as i64, a.u32(5));
    if off < -1 {
        return Err(Errno::EINVAL);
    }
    let f = t.fds.lock().get(fd)?;
    if f.flags() & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    if off >= 0 && !positional(&f) {
        return Err(Errno::ESPIPE);
    }
    let segs = read_iovecs(t, a.u64(1), a.u64(2))?;
    let f = file_for(t, fd, write)?;
    if segs.iter().all(|s| s.1 == 0) {
        return Ok(0);
    }
    if flags & !(RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND | RWF_NOAPPEND) != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    if flags & RWF_APPEND != 0 && flags & RWF_NOAPPEND != 0 {
        return Err(Errno::EINVAL);
    }
    const O_APPEND: u32 = 0o2000;
    if flags & RWF_NOAPPEND != 0 && write && f.flags() & O_APPEND != 0 {
        // Writing an O_APPEND file at an offset is not offered.
        return Err(Errno::EOPNOTSUPP);
    }
    let nonblock = f.nonblock() || flags & RWF_NOWAIT != 0;
    let at = u64::try_from(off).ok();
    if !write {
        let r = f.ops.read(t, &segs, at, nonblock);
        f.notify(&r, crate::fs::inotify::IN_ACCESS);
        return r;
    }
    let regular = kind_of(&f)? == crate::vfs::Kind::File;
    let at = if flags & RWF_APPEND != 0 && regular { Some(f.ops.stat()?.st_size as u64) } else { at };
    let cut = fsize_limit(t, &f, &segs, at)?;
    let r = f.ops.write(t, cut.as_deref().unwrap_or(&segs), at, nonblock);
    f.notify(&r, crate::fs::inotify::IN_MODIFY);
    if let (Ok(n), Some(end), -1) = (r, at, off) {
        // RWF_APPEND at the file position: it follows the write.
        f.ops.seek((end + n) as i64, 0)?;
    }
    r
}

pub fn sys_preadv2(t: &mut Task, a: &Args) -> SysResult {
    rw2(t, a, false)
}

pub fn sys_pwritev2(t: &mut Task, a: &Args) -> SysResult {
    rw2(t, a, true)
}

pub fn sys_fadvise64(t: &mut Task, a: &Args) -> SysResult {
    const POSIX_FADV_NOREUSE: u32 = 5;
    let f = t.fds.lock().get(a.fd(0))?;
    if f.flags() & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    if kind_of(&f)? == crate::vfs::Kind::Fifo {
        return Err(Errno::ESPIPE);
    }
    if (a.u64(2) as i64) < 0 || a.u32(3) > POSIX_FADV_NOREUSE {
        return Err(Errno::EINVAL);
    }
    // Advice about a page cache the sandbox does not keep: nothing to do.
    Ok(0)
}

pub fn sys_readahead(t: &mut Task, a: &Args) -> SysResult {
    let f = file_for(t, a.fd(0), false)?;
    if kind_of(&f)? != crate::vfs::Kind::File || (a.u64(2) as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

pub fn sys_sync_file_range(t: &mut Task, a: &Args) -> SysResult {
    use crate::vfs::Kind;
    const VALID: u32 = 7;
    let f = t.fds.lock().get(a.fd(0))?;
    if f.flags() & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    let (off, n, flags) = (a.u64(1) as i64, a.u64(2) as i64, a.u32(3));
    if flags & !VALID != 0 || off < 0 || off.checked_add(n).is_none_or(|end| end < 0) || n < 0 {
        return Err(Errno::EINVAL);
    }
    if !matches!(kind_of(&f)?, Kind::File | Kind::BlockDev | Kind::Dir | Kind::Symlink) {
        return Err(Errno::ESPIPE);
    }
    // Writes already reached tmpfs memory or the host file.
    Ok(0)
}
