//! Paths and fds: openat, close, stat family, getdents64, readlinkat,
//! faccessat, getcwd/chdir, ioctl, fcntl, dup family, umask.

use abi::linux::Stat;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;

use super::Args;
use crate::errno::{Errno, SysResult};
use crate::fs::dev::{Dev, DevFile};
use crate::fs::host::HostFile;
use crate::fs::{join, OpenFile};
use crate::host;
use crate::kernel::task::Task;

const AT_FDCWD: i32 = -100;
const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
const AT_EACCESS: u32 = 0x200;
const AT_EMPTY_PATH: u32 = 0x1000;
const AT_NO_AUTOMOUNT: u32 = 0x800;
const AT_STATX_SYNC_TYPE: u32 = 0x6000;
const O_ACCMODE: u32 = 3;
const O_CREAT: u32 = 0o100;
const O_TRUNC: u32 = 0o1000;
const O_NONBLOCK: u32 = 0o4000;
const O_DIRECTORY: u32 = 0o200000;
const O_NOFOLLOW: u32 = 0o400000;
const O_CLOEXEC: u32 = 0o2000000;
const O_PATH: u32 = 0o10000000;
const O_TMPFILE: u32 = 0o20000000;
const PATH_MAX: usize = 4096;
const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;

/// Reads a path argument.
fn path_arg(t: &mut Task, va: u64) -> Result<String, Errno> {
    if va == 0 {
        return Err(Errno::EFAULT);
    }
    t.mm.lock().read_cstr(va, PATH_MAX - 1)
}

/// Resolves `path` against `dirfd` to an absolute path.
pub fn resolve(t: &Task, dirfd: i32, path: &str) -> Result<String, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.starts_with('/') {
        return Ok(path.into());
    }
    if dirfd == AT_FDCWD {
        return Ok(join(&t.fs.lock().cwd, path));
    }
    let f = t.fds.lock().get(dirfd)?;
    if !f.ops.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    Ok(join(f.ops.path(), path))
}

/// Opens `path` (absolute) for the sandbox.
pub fn open_path(path: &str, flags: u32) -> Result<alloc::sync::Arc<OpenFile>, Errno> {
    if let Some(d) = Dev::by_path(path) {
        if flags & O_DIRECTORY != 0 {
            return Err(Errno::ENOTDIR);
        }
        return Ok(OpenFile::new(Box::new(DevFile::new(d)), flags));
    }
    if flags & O_ACCMODE != 0 || flags & (O_CREAT | O_TRUNC) != 0 || flags & O_TMPFILE == O_TMPFILE {
        // Until the gofer arrives, host files are read-only.
        return Err(Errno::EROFS);
    }
    let host_flags = flags & (O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_PATH);
    let h = host::open(path, host_flags)?;
    let dir = match host::fstat(h) {
        Ok(st) => st.st_mode & S_IFMT == S_IFDIR,
        Err(e) => {
            host::close(h);
            return Err(e);
        }
    };
    Ok(OpenFile::new(Box::new(HostFile::new(h, path.into(), dir)), flags))
}

pub fn sys_openat(t: &mut Task, a: &Args) -> SysResult {
    let path = path_arg(t, a.u64(1))?;
    let flags = a.u32(2);
    let full = resolve(t, a.fd(0), &path)?;
    let file = open_path(&full, flags)?;
    t.fds.lock().install(file, flags & O_CLOEXEC != 0, 0).map(|fd| fd as u64)
}

pub fn sys_open(t: &mut Task, a: &Args) -> SysResult {
    sys_openat(t, &Args([AT_FDCWD as u64, a.u64(0), a.u64(1), a.u64(2), 0, 0]))
}

pub fn sys_close(t: &mut Task, a: &Args) -> SysResult {
    t.fds.lock().close(a.fd(0)).map(|()| 0)
}

/// stat of a path or, with AT_EMPTY_PATH and "", of `dirfd`.
fn stat_at(t: &mut Task, dirfd: i32, path_va: u64, flags: u32) -> Result<Stat, Errno> {
    let path = path_arg(t, path_va)?;
    if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        if dirfd == AT_FDCWD {
            return host::stat_path(&t.fs.lock().cwd.clone(), false);
        }
        return t.fds.lock().get(dirfd)?.ops.stat();
    }
    let full = resolve(t, dirfd, &path)?;
    if let Some(d) = Dev::by_path(&full) {
        return Ok(d.stat());
    }
    host::stat_path(&full, flags & AT_SYMLINK_NOFOLLOW != 0)
}

pub fn sys_fstat(t: &mut Task, a: &Args) -> SysResult {
    let st = t.fds.lock().get(a.fd(0))?.ops.stat()?;
    t.mm.lock().write_obj(a.u64(1), &st).map(|()| 0)
}

pub fn sys_newfstatat(t: &mut Task, a: &Args) -> SysResult {
    let flags = a.u32(3);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT) != 0 {
        return Err(Errno::EINVAL);
    }
    let st = stat_at(t, a.fd(0), a.u64(1), flags)?;
    t.mm.lock().write_obj(a.u64(2), &st).map(|()| 0)
}

pub fn sys_stat(t: &mut Task, a: &Args) -> SysResult {
    let st = stat_at(t, AT_FDCWD, a.u64(0), 0)?;
    t.mm.lock().write_obj(a.u64(1), &st).map(|()| 0)
}

pub fn sys_lstat(t: &mut Task, a: &Args) -> SysResult {
    let st = stat_at(t, AT_FDCWD, a.u64(0), AT_SYMLINK_NOFOLLOW)?;
    t.mm.lock().write_obj(a.u64(1), &st).map(|()| 0)
}

/// Encodes `struct statx` from a `struct stat`.
pub fn statx_from(st: &Stat) -> [u8; 256] {
    let mut b = [0u8; 256];
    let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
    let major = |d: u64| (((d >> 8) & 0xfff) | ((d >> 32) & !0xfff)) as u32;
    let minor = |d: u64| ((d & 0xff) | ((d >> 12) & !0xff)) as u32;
    put(0, &0x7ffu32.to_le_bytes()); // STATX_BASIC_STATS
    put(4, &(st.st_blksize as u32).to_le_bytes());
    put(16, &(st.st_nlink as u32).to_le_bytes());
    put(20, &st.st_uid.to_le_bytes());
    put(24, &st.st_gid.to_le_bytes());
    put(28, &(st.st_mode as u16).to_le_bytes());
    put(32, &st.st_ino.to_le_bytes());
    put(40, &(st.st_size as u64).to_le_bytes());
    put(48, &(st.st_blocks as u64).to_le_bytes());
    for (off, sec, nsec) in [(64, st.st_atime, st.st_atime_nsec), (96, st.st_ctime, st.st_ctime_nsec), (112, st.st_mtime, st.st_mtime_nsec)] {
        put(off, &sec.to_le_bytes());
        put(off + 8, &(nsec as u32).to_le_bytes());
    }
    put(128, &major(st.st_rdev).to_le_bytes());
    put(132, &minor(st.st_rdev).to_le_bytes());
    put(136, &major(st.st_dev).to_le_bytes());
    put(140, &minor(st.st_dev).to_le_bytes());
    b
}

pub fn sys_statx(t: &mut Task, a: &Args) -> SysResult {
    let flags = a.u32(2);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE) != 0
        || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE
    {
        return Err(Errno::EINVAL);
    }
    if a.u32(3) & 0x8000_0000 != 0 {
        return Err(Errno::EINVAL); // STATX__RESERVED
    }
    let st = stat_at(t, a.fd(0), a.u64(1), flags)?;
    t.mm.lock().copy_out(a.u64(4), &statx_from(&st)).map(|()| 0)
}

pub fn sys_getdents64(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.lock().get(a.fd(0))?;
    let count = a.usize(2).min(1 << 16);
    let mut buf = vec![0u8; count];
    let n = f.ops.getdents(&mut buf)?;
    t.mm.lock().copy_out(a.u64(1), &buf[..n])?;
    Ok(n as u64)
}

pub fn sys_readlinkat(t: &mut Task, a: &Args) -> SysResult {
    let path = path_arg(t, a.u64(1))?;
    let size = a.i32(3);
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    let full = resolve(t, a.fd(0), &path)?;
    let target = if full == "/proc/self/exe" {
        t.exe.clone().into_bytes()
    } else {
        let mut buf = vec![0u8; PATH_MAX];
        let n = host::readlink(&full, &mut buf)?;
        buf.truncate(n);
        buf
    };
    let n = target.len().min(size as usize);
    t.mm.lock().copy_out(a.u64(2), &target[..n])?;
    Ok(n as u64)
}

pub fn sys_readlink(t: &mut Task, a: &Args) -> SysResult {
    sys_readlinkat(t, &Args([AT_FDCWD as u64, a.u64(0), a.u64(1), a.u64(2), 0, 0]))
}

fn access_at(t: &mut Task, dirfd: i32, path_va: u64, mode: u32, flags: u32) -> SysResult {
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = path_arg(t, path_va)?;
    let full = resolve(t, dirfd, &path)?;
    if Dev::by_path(&full).is_some() {
        return Ok(0);
    }
    host::access(&full, mode).map(|()| 0)
}

pub fn sys_faccessat(t: &mut Task, a: &Args) -> SysResult {
    access_at(t, a.fd(0), a.u64(1), a.u32(2), 0)
}

pub fn sys_faccessat2(t: &mut Task, a: &Args) -> SysResult {
    access_at(t, a.fd(0), a.u64(1), a.u32(2), a.u32(3))
}

pub fn sys_access(t: &mut Task, a: &Args) -> SysResult {
    access_at(t, AT_FDCWD, a.u64(0), a.u32(1), 0)
}

pub fn sys_getcwd(t: &mut Task, a: &Args) -> SysResult {
    let mut b = t.fs.lock().cwd.clone().into_bytes();
    b.push(0);
    if a.usize(1) < b.len() {
        return Err(Errno::ERANGE);
    }
    t.mm.lock().copy_out(a.u64(0), &b)?;
    Ok(b.len() as u64)
}

fn set_cwd(t: &mut Task, full: String) -> SysResult {
    let st = host::stat_path(&full, false)?;
    if st.st_mode & S_IFMT != S_IFDIR {
        return Err(Errno::ENOTDIR);
    }
    t.fs.lock().cwd = normalize(&full);
    Ok(0)
}

/// Lexically normalizes an absolute path for getcwd (`.`/`..`/`//`).
pub fn normalize(p: &str) -> String {
    let mut parts: alloc::vec::Vec<&str> = alloc::vec::Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut s = String::new();
    for c in parts {
        s.push('/');
        s.push_str(c);
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

pub fn sys_chdir(t: &mut Task, a: &Args) -> SysResult {
    let path = path_arg(t, a.u64(0))?;
    let full = resolve(t, AT_FDCWD, &path)?;
    set_cwd(t, full)
}

pub fn sys_fchdir(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.lock().get(a.fd(0))?;
    if !f.ops.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    set_cwd(t, f.ops.path().into())
}

pub fn sys_ioctl(t: &mut Task, a: &Args) -> SysResult {
    const FIONCLEX: u64 = 0x5450;
    const FIOCLEX: u64 = 0x5451;
    const FIONBIO: u64 = 0x5421;
    let fd = a.fd(0);
    let f = t.fds.lock().get(fd)?;
    match a.u64(1) & 0xffff_ffff {
        FIOCLEX => t.fds.lock().set_cloexec(fd, true).map(|()| 0),
        FIONCLEX => t.fds.lock().set_cloexec(fd, false).map(|()| 0),
        FIONBIO => {
            let on: u32 = t.mm.lock().read_obj(a.u64(2))?;
            let fl = f.flags();
            f.flags.store(if on != 0 { fl | O_NONBLOCK } else { fl & !O_NONBLOCK }, core::sync::atomic::Ordering::Relaxed);
            Ok(0)
        }
        req => f.ops.ioctl(t, req, a.u64(2)),
    }
}

pub fn sys_fcntl(t: &mut Task, a: &Args) -> SysResult {
    const F_DUPFD: u32 = 0;
    const F_GETFD: u32 = 1;
    const F_SETFD: u32 = 2;
    const F_GETFL: u32 = 3;
    const F_SETFL: u32 = 4;
    const F_DUPFD_CLOEXEC: u32 = 1030;
    let fd = a.fd(0);
    let f = t.fds.lock().get(fd)?;
    match a.u32(1) {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let min = a.i32(2);
            if min < 0 || min as usize >= t.fds.lock().limit() {
                return Err(Errno::EINVAL);
            }
            t.fds.lock().install(f, a.u32(1) == F_DUPFD_CLOEXEC, min as usize).map(|n| n as u64)
        }
        F_GETFD => Ok(u64::from(t.fds.lock().cloexec(fd)?)),
        F_SETFD => t.fds.lock().set_cloexec(fd, a.u64(2) & 1 != 0).map(|()| 0),
        F_GETFL => Ok(u64::from(f.flags() & !O_CLOEXEC)),
        F_SETFL => {
            // Only O_APPEND, O_NONBLOCK, O_ASYNC, O_DIRECT, O_NOATIME change.
            let settable = 0o2000 | O_NONBLOCK | 0o20000 | 0o40000 | 0o1000000;
            let new = (f.flags() & !settable) | (a.u32(2) & settable);
            f.flags.store(new, core::sync::atomic::Ordering::Relaxed);
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_dup(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.lock().get(a.fd(0))?;
    t.fds.lock().install(f, false, 0).map(|n| n as u64)
}

fn dup_to(t: &mut Task, old: i32, new: i32, cloexec: bool) -> SysResult {
    let f = t.fds.lock().get(old)?;
    if new < 0 {
        return Err(Errno::EBADF);
    }
    t.fds.lock().install_at(new as usize, f, cloexec)?;
    Ok(new as u64)
}

pub fn sys_dup2(t: &mut Task, a: &Args) -> SysResult {
    let (old, new) = (a.fd(0), a.fd(1));
    if old == new {
        t.fds.lock().get(old)?;
        return Ok(new as u64);
    }
    dup_to(t, old, new, false)
}

pub fn sys_dup3(t: &mut Task, a: &Args) -> SysResult {
    let (old, new, flags) = (a.fd(0), a.fd(1), a.u32(2));
    if old == new || flags & !O_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    dup_to(t, old, new, flags != 0)
}

pub fn sys_umask(t: &mut Task, a: &Args) -> SysResult {
    let old = t.fs.lock().umask;
    t.fs.lock().umask = a.u32(0) & 0o777;
    Ok(u64::from(old))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        assert_eq!(normalize("/a/./b//c/../d"), "/a/b/d");
        assert_eq!(normalize("/.."), "/");
        assert_eq!(normalize("/"), "/");
    }

    #[test]
    fn statx_encodes_devices() {
        let st = Stat { st_rdev: (1 << 8) | 3, st_mode: 0o20666, st_size: 7, ..Stat::default() };
        let b = statx_from(&st);
        assert_eq!(u32::from_le_bytes(b[128..132].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(b[132..136].try_into().unwrap()), 3);
        assert_eq!(u16::from_le_bytes(b[28..30].try_into().unwrap()), 0o20666);
        assert_eq!(u64::from_le_bytes(b[40..48].try_into().unwrap()), 7);
    }
}

pub fn sys_pipe2(t: &mut Task, a: &Args) -> SysResult {
    const O_DIRECT: u32 = 0o40000;
    let flags = a.u32(1);
    if flags & !(O_CLOEXEC | O_NONBLOCK | O_DIRECT) != 0 {
        return Err(Errno::EINVAL);
    }
    let (r, w) = crate::fs::pipe::new_pipe();
    let rf = OpenFile::new(Box::new(r), O_NONBLOCK & flags);
    let wf = OpenFile::new(Box::new(w), 1 | (O_NONBLOCK & flags));
    let cloexec = flags & O_CLOEXEC != 0;
    let (rfd, wfd) = {
        let mut fds = t.fds.lock();
        let rfd = fds.install(rf, cloexec, 0)?;
        match fds.install(wf, cloexec, 0) {
            Ok(w) => (rfd, w),
            Err(e) => {
                let _ = fds.close(rfd);
                return Err(e);
            }
        }
    };
    let pair = [rfd, wfd];
    if let Err(e) = t.mm.lock().write_obj(a.u64(0), &pair) {
        let mut fds = t.fds.lock();
        let _ = fds.close(rfd);
        let _ = fds.close(wfd);
        return Err(e);
    }
    Ok(0)
}

pub fn sys_pipe(t: &mut Task, a: &Args) -> SysResult {
    sys_pipe2(t, &Args([a.u64(0), 0, 0, 0, 0, 0]))
}
