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
fn read_iovecs(t: &mut Task, iov: u64, cnt: u64) -> Result<Vec<UserSeg>, Errno> {
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

/// RLIMIT_FSIZE for a write to a regular file at `off` (None: the file
/// position, or its end with O_APPEND): writing at or past the limit
/// raises SIGXFSZ and fails with EFBIG, a write across it is cut short
/// (Linux: generic_write_check_limits).
fn fsize_limit(t: &Task, f: &OpenFile, segs: &[UserSeg], off: Option<u64>) -> Result<Option<Vec<UserSeg>>, Errno> {
    const O_APPEND: u32 = 0o2000;
    const SEEK_CUR: u32 = 1;
    let limit = t.rlimits[RLIMIT_FSIZE].0;
    let regular = f.loc.as_ref().is_some_and(|l| l.inode.kind() == crate::vfs::Kind::File);
    // An empty write checks nothing (Linux: generic_write_checks).
    if limit == u64::MAX || !regular || segs.iter().all(|s| s.1 == 0) {
        return Ok(None);
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
    let mut room = (limit - pos) as usize;
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
