//! Paths and fds: openat, close, stat family, getdents64, readlinkat,
//! faccessat, getcwd/chdir, ioctl, fcntl, dup family, umask.

use abi::linux::Stat;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;

use super::Args;
use crate::errno::{Errno, SysResult};
use crate::fs::inotify::{self, IN_ACCESS, IN_ATTRIB, IN_CREATE, IN_DELETE, IN_MODIFY, IN_MOVED_FROM, IN_MOVED_TO, IN_MOVE_SELF, IN_OPEN};
use crate::fs::{join, OpenFile};
use crate::kernel::task::Task;
use crate::kernel::creds::{Creds, CAP_MKNOD};
use crate::vfs::{self, perm, walk, xattr, Creator, Kind, Location, SetAttr};
use alloc::sync::Arc;

const AT_FDCWD: i32 = -100;
const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
const AT_EACCESS: u32 = 0x200;
const AT_EMPTY_PATH: u32 = 0x1000;
const AT_NO_AUTOMOUNT: u32 = 0x800;
const AT_STATX_SYNC_TYPE: u32 = 0x6000;
const O_EXCL: u32 = 0o200;
const S_IFMT: u32 = vfs::S_IFMT;
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
const S_IFDIR: u32 = 0o040000;

/// Reads a path argument.
pub fn path_arg(t: &mut Task, va: u64) -> Result<String, Errno> {
    if va == 0 {
        return Err(Errno::EFAULT);
    }
    t.mm.lock().read_cstr(va, PATH_MAX - 1)
}

/// The directory relative paths start from: the cwd or `dirfd`.
fn start_dir(t: &Task, dirfd: i32, path: &str) -> Result<Location, Errno> {
    if path.starts_with('/') || dirfd == AT_FDCWD {
        return Ok(t.fs.lock().cwd.clone());
    }
    let f = t.fds.lock().get(dirfd)?;
    let loc = f.loc.clone().ok_or(Errno::ENOTDIR)?;
    if loc.inode.kind() != Kind::Dir {
        return Err(Errno::ENOTDIR);
    }
    Ok(loc)
}

/// Resolves `path` against `dirfd`.
pub fn resolve(t: &Task, dirfd: i32, path: &str, follow: bool) -> Result<Location, Errno> {
    let start = start_dir(t, dirfd, path)?;
    walk::resolve(&start, path, follow, &t.creds)
}

/// Resolves the parent directory of `path` against `dirfd`.
fn resolve_parent(t: &Task, dirfd: i32, path: &str) -> Result<(Location, String, bool), Errno> {
    let start = start_dir(t, dirfd, path)?;
    walk::resolve_parent(&start, path, &t.creds)
}

/// The location an *at() call with AT_EMPTY_PATH and "" names.
fn empty_path_loc(t: &Task, dirfd: i32) -> Result<Location, Errno> {
    if dirfd == AT_FDCWD {
        return Ok(t.fs.lock().cwd.clone());
    }
    let f = t.fds.lock().get(dirfd)?;
    f.loc.clone().ok_or(Errno::EBADF)
}

/// New files belong to the fs ids (a setgid directory overrides the group).
fn creator(t: &Task) -> Creator {
    Creator { uid: t.creds.fsuid, gid: t.creds.fsgid }
}

/// Linux's may_open: the file type rules, then the mode bits for the
/// access `flags` ask for, then O_NOATIME's ownership rule.
fn may_open(loc: &Location, flags: u32, creds: &Creds) -> Result<(), Errno> {
    const O_NOATIME: u32 = 0o1000000;
    let want = perm::open_access(flags);
    if want == 0 {
        return Ok(());
    }
    match loc.inode.kind() {
        Kind::Symlink => return Err(Errno::ELOOP),
        Kind::Dir if want & perm::MAY_WRITE != 0 => return Err(Errno::EISDIR),
        _ => {}
    }
    perm::check_inode(&*loc.inode, creds, want)?;
    if flags & O_NOATIME != 0 && !perm::owner_or_capable(&loc.inode.stat()?, creds) {
        return Err(Errno::EPERM);
    }
    Ok(())
}

/// Opens a resolved location.
pub fn open_loc(loc: Location, flags: u32) -> Result<Arc<OpenFile>, Errno> {
    let kind = loc.inode.kind();
    // O_TMPFILE carries O_DIRECTORY for the directory it names.
    if flags & O_DIRECTORY != 0 && flags & O_TMPFILE == 0 && kind != Kind::Dir {
        return Err(Errno::ENOTDIR);
    }
    if kind == Kind::Dir && flags & O_ACCMODE != 0 {
        return Err(Errno::EISDIR);
    }
    if kind == Kind::Symlink && flags & O_PATH == 0 {
        // O_NOFOLLOW on a symlink.
        return Err(Errno::ELOOP);
    }
    let ops = loc.inode.open(flags)?;
    Ok(OpenFile::at(ops, flags, loc))
}

/// Opens a FIFO: it may wait for the other side (so it needs the task).
fn open_fifo(t: &Task, loc: Location, flags: u32) -> Result<Arc<OpenFile>, Errno> {
    let end = crate::fs::pipe::open_fifo(t, loc.inode.clone(), &loc.path, flags)?;
    Ok(OpenFile::at(alloc::boxed::Box::new(end), flags, loc))
}

fn do_open(t: &mut Task, dirfd: i32, path: &str, flags: u32, mode: u32) -> Result<Arc<OpenFile>, Errno> {
    let follow = flags & O_NOFOLLOW == 0;
    if flags & O_TMPFILE != 0 {
        let loc = tmpfile_at(t, dirfd, path, flags, mode)?;
        let file = open_loc(loc, flags)?;
        if let Some(loc) = &file.loc {
            inotify::loc_event(loc, IN_OPEN);
        }
        return Ok(file);
    }
    // A file this open creates is not checked against its own mode (open
    // O_CREAT|O_WRONLY with mode 0444 works), nor truncated.
    let mut created = false;
    let loc = if flags & O_CREAT != 0 {
        let (dir, name, trailing) = resolve_parent(t, dirfd, path)?;
        if trailing {
            return Err(Errno::EISDIR);
        }
        match dir.inode.lookup(&name) {
            Ok(existing) => {
                if flags & O_EXCL != 0 {
                    return Err(Errno::EEXIST);
                }
                if existing.kind() == Kind::Symlink && follow {
                    walk::resolve(&dir, &name, true, &t.creds)?
                } else {
                    Location { path: child(&dir.path, &name), inode: existing }
                }
            }
            Err(Errno::ENOENT) if name != "." && name != ".." => {
                perm::may_create(&*dir.inode, &t.creds)?;
                created = true;
                let umask = t.fs.lock().umask;
                let inode = dir.inode.create(&name, Kind::File, mode & 0o7777 & !umask, 0, creator(t))?;
                inotify::child_event(&*dir.inode, &name, IN_CREATE, 0, false);
                Location { path: child(&dir.path, &name), inode }
            }
            Err(e) => return Err(e),
        }
    } else {
        resolve(t, dirfd, path, follow)?
    };
    if !created {
        may_open(&loc, flags, &t.creds)?;
    }
    let truncate = !created && flags & O_TRUNC != 0 && flags & O_ACCMODE != 0 && loc.inode.kind() == Kind::File;
    if truncate {
        loc.inode.setattr(&SetAttr { size: Some(0), ..SetAttr::default() })?;
    }
    // A pipe reached through /proc/PID/fd is no FIFO with a table entry:
    // it opens itself.
    let file = if loc.inode.kind() == Kind::Fifo && flags & O_PATH == 0 && !crate::fs::reopen::is_reopenable(&*loc.inode) {
        open_fifo(t, loc, flags)?
    } else {
        let file = open_loc(loc, flags)?;
        file.ops.opened(t, flags)?;
        file
    };
    if flags & O_PATH == 0 {
        if let Some(loc) = &file.loc {
            // Linux reports the open before the truncation it did.
            inotify::loc_event(loc, IN_OPEN);
            if truncate {
                inotify::loc_event(loc, IN_MODIFY);
            }
        }
    }
    Ok(file)
}

/// O_TMPFILE: an unnamed regular file in the directory `path` names
/// (Linux: vfs_tmpfile). It needs O_DIRECTORY without O_CREAT and write
/// access; O_EXCL keeps linkat from ever naming it.
fn tmpfile_at(t: &mut Task, dirfd: i32, path: &str, flags: u32, mode: u32) -> Result<Location, Errno> {
    if flags & (O_DIRECTORY | O_CREAT) != O_DIRECTORY || flags & O_ACCMODE == 0 {
        return Err(Errno::EINVAL);
    }
    let dir = resolve(t, dirfd, path, flags & O_NOFOLLOW == 0)?;
    if dir.inode.kind() != Kind::Dir {
        return Err(Errno::ENOTDIR);
    }
    perm::check_inode(&*dir.inode, &t.creds, perm::MAY_WRITE | perm::MAY_EXEC)?;
    let umask = t.fs.lock().umask;
    let inode = dir.inode.tmpfile(mode & 0o7777 & !umask, creator(t), flags & O_EXCL == 0)?;
    // What Linux's /proc/self/fd shows for it.
    let path = alloc::format!("{}/#{} (deleted)", dir.path.trim_end_matches('/'), inode.id().1);
    Ok(Location { inode, path })
}

fn child(dir: &str, name: &str) -> String {
    join(dir, name)
}

pub fn sys_openat(t: &mut Task, a: &Args) -> SysResult {
    let path = path_arg(t, a.u64(1))?;
    let flags = a.u32(2);
    let file = do_open(t, a.fd(0), &path, flags, a.u32(3))?;
    t.fds.lock().install(file, flags & O_CLOEXEC != 0, 0).map(|fd| fd as u64)
}

pub fn sys_open(t: &mut Task, a: &Args) -> SysResult {
    sys_openat(t, &Args([AT_FDCWD as u64, a.u64(0), a.u64(1), a.u64(2), 0, 0]))
}

pub fn sys_creat(t: &mut Task, a: &Args) -> SysResult {
    sys_openat(t, &Args([AT_FDCWD as u64, a.u64(0), u64::from(O_CREAT | 1 | O_TRUNC), a.u64(1), 0, 0]))
}

pub fn sys_openat2(t: &mut Task, a: &Args) -> SysResult {
    // struct open_how { u64 flags; u64 mode; u64 resolve; }
    let size = a.usize(3);
    if size < 24 || size > 4096 {
        return Err(Errno::EINVAL);
    }
    let (flags, mode, resolve_flags): (u64, u64, u64) = {
        let mut mm = t.mm.lock();
        (mm.read_obj(a.u64(2))?, mm.read_obj(a.u64(2) + 8)?, mm.read_obj(a.u64(2) + 16)?)
    };
    if flags >> 32 != 0 || mode >> 12 != 0 || (flags & u64::from(O_CREAT | O_TMPFILE) == 0 && mode != 0) {
        return Err(Errno::EINVAL);
    }
    // RESOLVE_NO_XDEV 1, NO_MAGICLINKS 2, NO_SYMLINKS 4, BENEATH 8, IN_ROOT 16, CACHED 32.
    if resolve_flags & !0x3f != 0 {
        return Err(Errno::EINVAL);
    }
    let path = path_arg(t, a.u64(1))?;
    if resolve_flags & 0x8 != 0 && (path.starts_with('/') || path.split('/').any(|c| c == "..")) {
        // RESOLVE_BENEATH: no absolute paths and no climbing out.
        return Err(Errno::EXDEV);
    }
    if resolve_flags & 0x4 != 0 {
        let start = start_dir(t, a.fd(0), &path)?;
        let mut probe = String::new();
        for c in path.split('/').filter(|c| !c.is_empty()) {
            if !probe.is_empty() || path.starts_with('/') {
                probe.push('/');
            }
            probe.push_str(c);
            if let Ok(l) = walk::resolve(&start, &probe, false, &t.creds) {
                if l.inode.kind() == Kind::Symlink {
                    return Err(Errno::ELOOP);
                }
            }
        }
    }
    let flags = flags as u32;
    let file = do_open(t, a.fd(0), &path, flags, mode as u32)?;
    t.fds.lock().install(file, flags & O_CLOEXEC != 0, 0).map(|fd| fd as u64)
}

pub fn sys_close(t: &mut Task, a: &Args) -> SysResult {
    close_fd(t, a.fd(0))
}

pub fn sys_close_range(t: &mut Task, a: &Args) -> SysResult {
    const CLOSE_RANGE_UNSHARE: u32 = 2;
    const CLOSE_RANGE_CLOEXEC: u32 = 4;
    let (first, last, flags) = (a.u32(0), a.u32(1), a.u32(2));
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return Err(Errno::EINVAL);
    }
    if flags & CLOSE_RANGE_UNSHARE != 0 {
        // A table of its own first, so threads sharing the old one keep
        // their fds (Linux: unshare_fd).
        let fds = t.fds.lock().clone();
        t.fds = Arc::new(spin::Mutex::new(fds));
    }
    let open: alloc::vec::Vec<i32> = t.fds.lock().open_fds().filter(|&fd| (first..=last).contains(&(fd as u32))).collect();
    for fd in open {
        if flags & CLOSE_RANGE_CLOEXEC != 0 {
            t.fds.lock().set_cloexec(fd, true)?;
        } else {
            // Another thread may have closed it meanwhile.
            let _ = close_fd(t, fd);
        }
    }
    Ok(0)
}

/// close(2) of one fd.
fn close_fd(t: &Task, fd: i32) -> SysResult {
    let f = t.fds.lock().get(fd)?;
    t.fds.lock().close(fd)?;
    // Closing any fd of a file drops the process's POSIX locks on it.
    if let Some(loc) = &f.loc {
        if let Ok(st) = loc.inode.stat() {
            lock::release_file((st.st_dev, st.st_ino), Owner::Process(t.pid()));
        }
    }
    Ok(0)
}

/// stat of a path or, with AT_EMPTY_PATH and "", of `dirfd`.
fn stat_at(t: &mut Task, dirfd: i32, path_va: u64, flags: u32) -> Result<Stat, Errno> {
    let path = path_arg(t, path_va)?;
    if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        if dirfd != AT_FDCWD {
            return t.fds.lock().get(dirfd)?.ops.stat();
        }
        return empty_path_loc(t, dirfd)?.inode.stat();
    }
    resolve(t, dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?.inode.stat()
}

/// File handles: the sandbox's filesystems export none (a handle would
/// name a host inode behind the gofer's back). The path is still looked
/// up, so a missing file is ENOENT as on Linux.
pub fn sys_name_to_handle_at(t: &mut Task, a: &Args) -> SysResult {
    const AT_HANDLE_MNT_ID_UNIQUE: u32 = 0x1;
    const AT_HANDLE_CONNECTABLE: u32 = 0x2;
    const AT_HANDLE_FID: u32 = 0x200;
    const AT_SYMLINK_FOLLOW: u32 = 0x400;
    let flags = a.u32(4);
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH | AT_HANDLE_FID | AT_HANDLE_MNT_ID_UNIQUE | AT_HANDLE_CONNECTABLE) != 0 {
        return Err(Errno::EINVAL);
    }
    let nofollow = if flags & AT_SYMLINK_FOLLOW != 0 { 0 } else { AT_SYMLINK_NOFOLLOW };
    stat_at(t, a.fd(0), a.u64(1), nofollow | (flags & AT_EMPTY_PATH))?;
    Err(Errno::EOPNOTSUPP)
}

/// No handle was ever given out (see name_to_handle_at), so a well-formed
/// one is stale.
pub fn sys_open_by_handle_at(t: &mut Task, a: &Args) -> SysResult {
    const MAX_HANDLE_SZ: u32 = 128;
    if !t.creds.capable(crate::kernel::creds::CAP_DAC_READ_SEARCH) {
        return Err(Errno::EPERM);
    }
    let (bytes, ty): (u32, i32) = {
        let mut mm = t.mm.lock();
        (mm.read_obj(a.u64(1))?, mm.read_obj(a.u64(1) + 4)?)
    };
    if bytes == 0 || bytes > MAX_HANDLE_SZ || ty < 0 {
        return Err(Errno::EINVAL);
    }
    if a.fd(0) != AT_FDCWD {
        t.fds.lock().get(a.fd(0))?;
    }
    Err(Errno::ESTALE)
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
    if let Some(loc) = &f.loc {
        inotify::loc_event(loc, IN_ACCESS);
    }
    Ok(n as u64)
}

pub fn sys_readlinkat(t: &mut Task, a: &Args) -> SysResult {
    let path = path_arg(t, a.u64(1))?;
    let size = a.i32(3);
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    let loc = if path.is_empty() { empty_path_loc(t, a.fd(0))? } else { resolve(t, a.fd(0), &path, false)? };
    let target = loc.inode.readlink()?.into_bytes();
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
    // The whole lookup runs as the real ids unless AT_EACCESS asks for
    // the effective ones (Linux: access_override_creds).
    let creds = if flags & AT_EACCESS != 0 { (*t.creds).clone() } else { t.creds.for_access() };
    let loc = if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        empty_path_loc(t, dirfd)?
    } else {
        let start = start_dir(t, dirfd, &path)?;
        walk::resolve(&start, &path, flags & AT_SYMLINK_NOFOLLOW == 0, &creds)?
    };
    if mode == 0 {
        return Ok(0);
    }
    perm::check(&loc.inode.stat()?, &creds, mode).map(|()| 0)
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
    let mut b = t.fs.lock().cwd.path.clone().into_bytes();
    b.push(0);
    if a.usize(1) < b.len() {
        return Err(Errno::ERANGE);
    }
    t.mm.lock().copy_out(a.u64(0), &b)?;
    Ok(b.len() as u64)
}

fn set_cwd(t: &mut Task, loc: Location) -> SysResult {
    if loc.inode.kind() != Kind::Dir {
        return Err(Errno::ENOTDIR);
    }
    perm::check_inode(&*loc.inode, &t.creds, perm::MAY_EXEC)?;
    t.fs.lock().cwd = loc;
    Ok(0)
}

/// Lexically normalizes an absolute path (`.`/`..`/`//`).
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
    let loc = resolve(t, AT_FDCWD, &path, true)?;
    set_cwd(t, loc)
}

pub fn sys_fchdir(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.lock().get(a.fd(0))?;
    let loc = f.loc.clone().ok_or(Errno::ENOTDIR)?;
    set_cwd(t, loc)
}

/// True for "/", "//"...: the root, which has no parent entry.
fn is_root_path(path: &str) -> bool {
    !path.is_empty() && path.trim_end_matches('/').is_empty()
}

fn mknod_at(t: &mut Task, dirfd: i32, path: &str, kind: Kind, mode: u32, rdev: u64) -> SysResult {
    if is_root_path(path) {
        return Err(Errno::EEXIST);
    }
    let (dir, name, trailing) = resolve_parent(t, dirfd, path)?;
    if name == "." || name == ".." {
        return Err(Errno::EEXIST);
    }
    if trailing && kind != Kind::Dir {
        return Err(Errno::ENOENT);
    }
    match dir.inode.lookup(&name) {
        Ok(_) => return Err(Errno::EEXIST),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    perm::may_create(&*dir.inode, &t.creds)?;
    if matches!(kind, Kind::CharDev | Kind::BlockDev) && !t.creds.capable(CAP_MKNOD) {
        return Err(Errno::EPERM);
    }
    let umask = t.fs.lock().umask;
    dir.inode.create(&name, kind, mode & 0o7777 & !umask, rdev, creator(t))?;
    inotify::child_event(&*dir.inode, &name, IN_CREATE, 0, kind == Kind::Dir);
    Ok(0)
}

pub fn sys_mkdirat(t: &mut Task, a: &Args) -> SysResult {
    let path = path_arg(t, a.u64(1))?;
    mknod_at(t, a.fd(0), &path, Kind::Dir, a.u32(2), 0)
}

pub fn sys_mkdir(t: &mut Task, a: &Args) -> SysResult {
    sys_mkdirat(t, &Args([AT_FDCWD as u64, a.u64(0), a.u64(1), 0, 0, 0]))
}

pub fn sys_mknodat(t: &mut Task, a: &Args) -> SysResult {
    let path = path_arg(t, a.u64(1))?;
    let mode = a.u32(2);
    let kind = match mode & S_IFMT {
        0 | vfs::S_IFREG => Kind::File,
        vfs::S_IFIFO => Kind::Fifo,
        vfs::S_IFSOCK => Kind::Socket,
        vfs::S_IFCHR | vfs::S_IFBLK => Kind::from_mode(mode),
        S_IFDIR => return Err(Errno::EPERM),
        _ => return Err(Errno::EINVAL),
    };
    mknod_at(t, a.fd(0), &path, kind, mode, a.u64(3))
}

pub fn sys_mknod(t: &mut Task, a: &Args) -> SysResult {
    sys_mknodat(t, &Args([AT_FDCWD as u64, a.u64(0), a.u64(1), a.u64(2), 0, 0]))
}

fn unlink_at(t: &mut Task, dirfd: i32, path: &str, rmdir: bool) -> SysResult {
    if is_root_path(path) {
        return Err(if rmdir { Errno::EBUSY } else { Errno::EISDIR });
    }
    let (dir, name, trailing) = resolve_parent(t, dirfd, path)?;
    if name == "." {
        return Err(Errno::EINVAL);
    }
    if name == ".." {
        return Err(if rmdir { Errno::ENOTEMPTY } else { Errno::EISDIR });
    }
    let victim = dir.inode.lookup(&name)?;
    let is_dir = victim.kind() == Kind::Dir;
    if !rmdir && trailing {
        return Err(if is_dir { Errno::EISDIR } else { Errno::ENOTDIR });
    }
    // Permission before the type checks, as Linux's may_delete.
    perm::may_delete(&*dir.inode, &*victim, &t.creds)?;
    if rmdir && !is_dir {
        return Err(Errno::ENOTDIR);
    }
    if !rmdir && is_dir {
        return Err(Errno::EISDIR);
    }
    if rmdir && walk::mounts().iter().any(|m| *m == join(&dir.path, &name)) {
        return Err(Errno::EBUSY);
    }
    // What inotify needs is taken before the name goes.
    let watched = inotify::active().then(|| (victim.id(), victim.stat().map_or(1, |s| s.st_nlink)));
    dir.inode.unlink(&name, rmdir)?;
    if let Some((id, nlink)) = watched {
        // As Linux: the link count change, then the inode's removal if
        // that was its last name, then the directory's entry.
        // By the identity taken before: a host file's name is gone now.
        if !is_dir {
            inotify::id_event(id, IN_ATTRIB);
        }
        if is_dir || nlink <= 1 {
            inotify::inode_removed(id);
        }
        inotify::child_event(&*dir.inode, &name, IN_DELETE, 0, is_dir);
    }
    Ok(0)
}

pub fn sys_unlinkat(t: &mut Task, a: &Args) -> SysResult {
    const AT_REMOVEDIR: u32 = 0x200;
    let flags = a.u32(2);
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    let path = path_arg(t, a.u64(1))?;
    unlink_at(t, a.fd(0), &path, flags & AT_REMOVEDIR != 0)
}

pub fn sys_unlink(t: &mut Task, a: &Args) -> SysResult {
    let path = path_arg(t, a.u64(0))?;
    unlink_at(t, AT_FDCWD, &path, false)
}

pub fn sys_rmdir(t: &mut Task, a: &Args) -> SysResult {
    let path = path_arg(t, a.u64(0))?;
    unlink_at(t, AT_FDCWD, &path, true)
}

pub fn sys_renameat2(t: &mut Task, a: &Args) -> SysResult {
    let flags = a.u32(4);
    // RENAME_NOREPLACE 1, RENAME_EXCHANGE 2, RENAME_WHITEOUT 4.
    if flags & !7 != 0 || (flags & 1 != 0 && flags & 2 != 0) || flags & 4 != 0 {
        return Err(Errno::EINVAL);
    }
    let old = path_arg(t, a.u64(1))?;
    let new = path_arg(t, a.u64(3))?;
    let (od, on, _) = resolve_parent(t, a.fd(0), &old)?;
    let (nd, nn, _) = resolve_parent(t, a.fd(2), &new)?;
    if on == "." || on == ".." || nn == "." || nn == ".." {
        return Err(Errno::EBUSY);
    }
    let src = od.inode.lookup(&on)?;
    let src_path = join(&od.path, &on);
    let dst_path = join(&nd.path, &nn);
    if src.kind() == Kind::Dir && (dst_path == src_path || dst_path.starts_with(&alloc::format!("{src_path}/"))) && src_path != dst_path {
        return Err(Errno::EINVAL);
    }
    if walk::mounts().iter().any(|m| *m == src_path || *m == dst_path) {
        return Err(Errno::EBUSY);
    }
    let dst = match nd.inode.lookup(&nn) {
        Ok(d) => Some(d),
        Err(Errno::ENOENT) => None,
        Err(e) => return Err(e),
    };
    // Renaming a name onto another link of the same inode does nothing
    // and needs no permission (Linux: vfs_rename's source == target).
    if dst.as_ref().is_none_or(|d| d.id() != src.id()) {
        perm::may_delete(&*od.inode, &*src, &t.creds)?;
        match &dst {
            Some(d) => perm::may_delete(&*nd.inode, &**d, &t.creds)?,
            None => perm::may_create(&*nd.inode, &t.creds)?,
        }
        // A directory moving elsewhere rewrites its "..".
        if od.inode.id() != nd.inode.id() {
            if src.kind() == Kind::Dir {
                perm::check_inode(&*src, &t.creds, perm::MAY_WRITE)?;
            }
            if let Some(d) = dst.as_ref().filter(|d| flags & 2 != 0 && d.kind() == Kind::Dir) {
                perm::check_inode(&**d, &t.creds, perm::MAY_WRITE)?;
            }
        }
    }
    let watched = inotify::active().then(|| (src.id(), dst.as_ref().map(|d| (d.id(), d.kind() == Kind::Dir, d.stat().map_or(1, |s| s.st_nlink)))));
    od.inode.rename(&on, &nd.inode, &nn, flags)?;
    if let Some((src_id, dst)) = watched {
        let src_dir = src.kind() == Kind::Dir;
        let cookie = inotify::new_cookie();
        inotify::child_event(&*od.inode, &on, IN_MOVED_FROM, cookie, src_dir);
        inotify::child_event(&*nd.inode, &nn, IN_MOVED_TO, cookie, src_dir);
        match dst {
            Some((id, is_dir, _)) if flags & 2 != 0 => {
                let cookie = inotify::new_cookie();
                inotify::child_event(&*nd.inode, &nn, IN_MOVED_FROM, cookie, is_dir);
                inotify::child_event(&*od.inode, &on, IN_MOVED_TO, cookie, is_dir);
                inotify::id_event(src_id, IN_MOVE_SELF);
                inotify::id_event(id, IN_MOVE_SELF);
            }
            Some((id, is_dir, nlink)) => {
                inotify::id_event(id, IN_ATTRIB | if is_dir { inotify::IN_ISDIR } else { 0 });
                inotify::id_event(src_id, IN_MOVE_SELF);
                if is_dir || nlink <= 1 {
                    inotify::inode_removed(id);
                }
            }
            None => inotify::id_event(src_id, IN_MOVE_SELF),
        }
    }
    Ok(0)
}

pub fn sys_renameat(t: &mut Task, a: &Args) -> SysResult {
    sys_renameat2(t, &Args([a.u64(0), a.u64(1), a.u64(2), a.u64(3), 0, 0]))
}

pub fn sys_rename(t: &mut Task, a: &Args) -> SysResult {
    sys_renameat2(t, &Args([AT_FDCWD as u64, a.u64(0), AT_FDCWD as u64, a.u64(1), 0, 0]))
}

pub fn sys_symlinkat(t: &mut Task, a: &Args) -> SysResult {
    let target = path_arg(t, a.u64(0))?;
    let path = path_arg(t, a.u64(2))?;
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    if is_root_path(&path) {
        return Err(Errno::EEXIST);
    }
    let (dir, name, _) = resolve_parent(t, a.fd(1), &path)?;
    match dir.inode.lookup(&name) {
        Ok(_) => return Err(Errno::EEXIST),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    perm::may_create(&*dir.inode, &t.creds)?;
    dir.inode.symlink(&name, &target, creator(t))?;
    inotify::child_event(&*dir.inode, &name, IN_CREATE, 0, false);
    Ok(0)
}

pub fn sys_symlink(t: &mut Task, a: &Args) -> SysResult {
    sys_symlinkat(t, &Args([a.u64(0), AT_FDCWD as u64, a.u64(1), 0, 0, 0]))
}

pub fn sys_linkat(t: &mut Task, a: &Args) -> SysResult {
    const AT_SYMLINK_FOLLOW: u32 = 0x400;
    let flags = a.u32(4);
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let old = path_arg(t, a.u64(1))?;
    let new = path_arg(t, a.u64(3))?;
    let src = if old.is_empty() && flags & AT_EMPTY_PATH != 0 {
        empty_path_loc(t, a.fd(0))?
    } else {
        resolve(t, a.fd(0), &old, flags & AT_SYMLINK_FOLLOW != 0)?
    };
    if src.inode.kind() == Kind::Dir {
        return Err(Errno::EPERM);
    }
    let (dir, name, _) = resolve_parent(t, a.fd(2), &new)?;
    match dir.inode.lookup(&name) {
        Ok(_) => return Err(Errno::EEXIST),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    perm::may_link(&src.inode.stat()?, &t.creds)?;
    perm::may_create(&*dir.inode, &t.creds)?;
    dir.inode.link(&name, &src.inode)?;
    inotify::inode_event(&*src.inode, IN_ATTRIB);
    inotify::child_event(&*dir.inode, &name, IN_CREATE, 0, false);
    Ok(0)
}

pub fn sys_link(t: &mut Task, a: &Args) -> SysResult {
    sys_linkat(t, &Args([AT_FDCWD as u64, a.u64(0), AT_FDCWD as u64, a.u64(1), 0, 0]))
}

/// chmod, chown and utimes with their ownership rules. `explicit_times`:
/// the caller gave times other than "now" for both (only the owner may).
fn setattr_loc(t: &mut Task, loc: &Location, attr: &SetAttr, explicit_times: bool) -> SysResult {
    let st = loc.inode.stat()?;
    let mut attr = *attr;
    if let Some(mode) = attr.mode {
        attr.mode = Some(perm::chmod_mode(&st, &t.creds, mode)?);
    }
    if attr.uid.is_some() || attr.gid.is_some() {
        perm::may_chown(&st, &t.creds, attr.uid, attr.gid)?;
    }
    if attr.atime.is_some() || attr.mtime.is_some() {
        perm::may_set_times(&st, &t.creds, explicit_times)?;
    }
    loc.inode.setattr(&attr)?;
    inotify::loc_event(loc, setattr_events(&attr));
    Ok(0)
}

/// The inotify events of an attribute change (Linux: fsnotify_change):
/// both times at once is a utime call (IN_ATTRIB), one alone reads as an
/// access or a modification.
fn setattr_events(a: &SetAttr) -> u32 {
    let mut m = 0;
    if a.mode.is_some() || a.uid.is_some() || a.gid.is_some() {
        m |= IN_ATTRIB;
    }
    if a.size.is_some() {
        m |= IN_MODIFY;
    }
    m | match (a.atime.is_some(), a.mtime.is_some()) {
        (true, true) => IN_ATTRIB,
        (true, false) => IN_ACCESS,
        (false, true) => IN_MODIFY,
        (false, false) => 0,
    }
}

fn fd_loc(t: &Task, fd: i32) -> Result<Location, Errno> {
    t.fds.lock().get(fd)?.loc.clone().ok_or(Errno::EINVAL)
}

pub fn sys_fchmodat(t: &mut Task, a: &Args) -> SysResult {
    let path = path_arg(t, a.u64(1))?;
    let loc = resolve(t, a.fd(0), &path, true)?;
    setattr_loc(t, &loc, &SetAttr { mode: Some(a.u32(2) & 0o7777), ..SetAttr::default() }, false)
}

pub fn sys_chmod(t: &mut Task, a: &Args) -> SysResult {
    sys_fchmodat(t, &Args([AT_FDCWD as u64, a.u64(0), a.u64(1), 0, 0, 0]))
}

pub fn sys_fchmod(t: &mut Task, a: &Args) -> SysResult {
    let loc = fd_loc(t, a.fd(0)).map_err(|_| Errno::EBADF)?;
    setattr_loc(t, &loc, &SetAttr { mode: Some(a.u32(1) & 0o7777), ..SetAttr::default() }, false)
}

fn owner_attr(uid: u32, gid: u32) -> SetAttr {
    SetAttr { uid: (uid != u32::MAX).then_some(uid), gid: (gid != u32::MAX).then_some(gid), ..SetAttr::default() }
}

pub fn sys_fchownat(t: &mut Task, a: &Args) -> SysResult {
    let flags = a.u32(4);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = path_arg(t, a.u64(1))?;
    let loc = if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        empty_path_loc(t, a.fd(0))?
    } else {
        resolve(t, a.fd(0), &path, flags & AT_SYMLINK_NOFOLLOW == 0)?
    };
    setattr_loc(t, &loc, &owner_attr(a.u32(2), a.u32(3)), false)
}

pub fn sys_chown(t: &mut Task, a: &Args) -> SysResult {
    sys_fchownat(t, &Args([AT_FDCWD as u64, a.u64(0), a.u64(1), a.u64(2), 0, 0]))
}

pub fn sys_lchown(t: &mut Task, a: &Args) -> SysResult {
    sys_fchownat(t, &Args([AT_FDCWD as u64, a.u64(0), a.u64(1), a.u64(2), u64::from(AT_SYMLINK_NOFOLLOW), 0]))
}

pub fn sys_fchown(t: &mut Task, a: &Args) -> SysResult {
    let loc = fd_loc(t, a.fd(0)).map_err(|_| Errno::EBADF)?;
    setattr_loc(t, &loc, &owner_attr(a.u32(1), a.u32(2)), false)
}

fn truncate_loc(t: &mut Task, loc: &Location, len: i64, by_path: bool) -> SysResult {
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    match loc.inode.kind() {
        Kind::Dir => return Err(Errno::EISDIR),
        Kind::File => {}
        _ => return Err(Errno::EINVAL),
    }
    // By path the caller needs write permission; an fd open for writing
    // (ftruncate) already proved it.
    if by_path {
        perm::check_inode(&*loc.inode, &t.creds, perm::MAY_WRITE)?;
    }
    // Growing a file past RLIMIT_FSIZE (Linux: inode_newsize_ok).
    let limit = t.rlimits[1].0;
    if len as u64 > limit && len as u64 > loc.inode.stat()?.st_size as u64 {
        super::file::fsize_exceeded(t);
        return Err(Errno::EFBIG);
    }
    loc.inode.setattr(&SetAttr { size: Some(len as u64), ..SetAttr::default() })?;
    inotify::loc_event(loc, IN_MODIFY);
    Ok(0)
}

pub fn sys_truncate(t: &mut Task, a: &Args) -> SysResult {
    let path = path_arg(t, a.u64(0))?;
    let loc = resolve(t, AT_FDCWD, &path, true)?;
    truncate_loc(t, &loc, a.u64(1) as i64, true)
}

pub fn sys_ftruncate(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.lock().get(a.fd(0))?;
    if f.flags() & O_ACCMODE == 0 {
        return Err(Errno::EINVAL);
    }
    let loc = f.loc.clone().ok_or(Errno::EINVAL)?;
    truncate_loc(t, &loc, a.u64(1) as i64, false)
}

/// Access and modification times to set (seconds, nanoseconds), and
/// whether the caller chose them.
type Times = (Option<(i64, i64)>, Option<(i64, i64)>, bool);

/// Times from a user `struct timespec[2]` (NULL: now), honouring
/// UTIME_NOW and UTIME_OMIT; the flag says whether the caller chose a
/// time (anything but "now" for both), which only the owner may.
fn read_times(t: &mut Task, va: u64) -> Result<Times, Errno> {
    const UTIME_NOW: i64 = (1 << 30) - 1;
    const UTIME_OMIT: i64 = (1 << 30) - 2;
    let now_ns = crate::kernel::clock::realtime_ns();
    let now = ((now_ns / 1_000_000_000) as i64, (now_ns % 1_000_000_000) as i64);
    if va == 0 {
        return Ok((Some(now), Some(now), false));
    }
    let mut out = [None, None];
    let mut all_now = true;
    for (i, o) in out.iter_mut().enumerate() {
        let sec: i64 = t.mm.lock().read_obj(va + i as u64 * 16)?;
        let nsec: i64 = t.mm.lock().read_obj(va + i as u64 * 16 + 8)?;
        all_now &= nsec == UTIME_NOW;
        *o = match nsec {
            UTIME_NOW => Some(now),
            UTIME_OMIT => None,
            n if (0..1_000_000_000).contains(&n) => Some((sec, n)),
            _ => return Err(Errno::EINVAL),
        };
    }
    Ok((out[0], out[1], !all_now))
}

pub fn sys_utimensat(t: &mut Task, a: &Args) -> SysResult {
    let flags = a.u32(3);
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let (atime, mtime, explicit) = read_times(t, a.u64(2))?;
    let loc = if a.u64(1) == 0 {
        // utimensat(fd, NULL, ...) is futimens.
        fd_loc(t, a.fd(0)).map_err(|_| Errno::EBADF)?
    } else {
        let path = path_arg(t, a.u64(1))?;
        if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
            empty_path_loc(t, a.fd(0))?
        } else {
            resolve(t, a.fd(0), &path, flags & AT_SYMLINK_NOFOLLOW == 0)?
        }
    };
    if atime.is_none() && mtime.is_none() {
        return Ok(0);
    }
    setattr_loc(t, &loc, &SetAttr { atime, mtime, ..SetAttr::default() }, explicit)
}

pub fn sys_utimes(t: &mut Task, a: &Args) -> SysResult {
    let times = if a.u64(1) != 0 {
        let mut v = [(0i64, 0i64); 2];
        for (i, x) in v.iter_mut().enumerate() {
            let sec: i64 = t.mm.lock().read_obj(a.u64(1) + i as u64 * 16)?;
            let usec: i64 = t.mm.lock().read_obj(a.u64(1) + i as u64 * 16 + 8)?;
            if !(0..1_000_000).contains(&usec) {
                return Err(Errno::EINVAL);
            }
            *x = (sec, usec * 1000);
        }
        Some(v)
    } else {
        None
    };
    let path = path_arg(t, a.u64(0))?;
    let loc = resolve(t, AT_FDCWD, &path, true)?;
    let (atime, mtime, explicit) = match times {
        Some(v) => (Some(v[0]), Some(v[1]), true),
        None => read_times(t, 0)?,
    };
    setattr_loc(t, &loc, &SetAttr { atime, mtime, ..SetAttr::default() }, explicit)
}

pub fn sys_fsync(t: &mut Task, a: &Args) -> SysResult {
    // Nothing is cached on the way to the host: data is already there.
    t.fds.lock().get(a.fd(0)).map(|_| 0)
}

fn statfs_buf(magic: u64) -> [u8; 120] {
    let mut b = [0u8; 120];
    let vals: [u64; 8] = [magic, 4096, 1 << 20, 1 << 19, 1 << 19, 1 << 20, 1 << 19, 0];
    for (i, v) in vals.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    b[72..80].copy_from_slice(&255u64.to_le_bytes()); // f_namelen
    b[80..88].copy_from_slice(&4096u64.to_le_bytes()); // f_frsize
    b
}

/// TMPFS_MAGIC: the overlay root reports as tmpfs-like memory storage.
const TMPFS_MAGIC: u64 = 0x0102_1994;

pub fn sys_statfs(t: &mut Task, a: &Args) -> SysResult {
    let path = path_arg(t, a.u64(0))?;
    let loc = resolve(t, AT_FDCWD, &path, true)?;
    let b = loc.inode.statfs().unwrap_or_else(|| statfs_buf(TMPFS_MAGIC));
    t.mm.lock().copy_out(a.u64(1), &b).map(|()| 0)
}

pub fn sys_fstatfs(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.lock().get(a.fd(0))?;
    let b = f.loc.as_ref().and_then(|l| l.inode.statfs()).unwrap_or_else(|| statfs_buf(TMPFS_MAGIC));
    t.mm.lock().copy_out(a.u64(1), &b).map(|()| 0)
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
    const F_GETLK: u32 = 5;
    const F_SETLK: u32 = 6;
    const F_SETLKW: u32 = 7;
    const F_OFD_GETLK: u32 = 36;
    const F_OFD_SETLK: u32 = 37;
    const F_OFD_SETLKW: u32 = 38;
    const F_SETPIPE_SZ: u32 = 1031;
    const F_GETPIPE_SZ: u32 = 1032;
    const F_ADD_SEALS: u32 = 1033;
    const F_GET_SEALS: u32 = 1034;
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
        F_GETLK | F_SETLK | F_SETLKW | F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW => record_lock(t, &f, a.u32(1), a.u64(2)),
        F_ADD_SEALS => f.ops.seals(a.u32(2)).map(|_| 0),
        F_SETPIPE_SZ => f.ops.pipe_size(Some(a.u64(2))).map(|n| n as u64),
        F_GETPIPE_SZ => f.ops.pipe_size(None).map(|n| n as u64),
        F_GET_SEALS => f.ops.seals(0).map(u64::from),
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

/// What an xattr call names: a path (followed for `p`, not for `l`) or
/// an fd (`f`). None: an fd without an inode of a filesystem (pipes,
/// sockets), which keep no attributes.
fn xattr_target(t: &mut Task, a: &Args, kind: u8) -> Result<Option<Location>, Errno> {
    if kind == b'f' {
        let f = t.fds.lock().get(a.fd(0))?;
        if f.flags() & O_PATH != 0 {
            return Err(Errno::EBADF);
        }
        return Ok(f.loc.clone());
    }
    let path = path_arg(t, a.u64(0))?;
    resolve(t, AT_FDCWD, &path, kind == b'p').map(Some)
}

/// The answer for pipes and sockets: user.* is only for files and
/// directories (EPERM to write, ENODATA to read), nothing else is stored.
fn no_inode_xattr(name: &str, write: bool) -> Errno {
    match (name.starts_with("user."), write) {
        (true, true) => Errno::EPERM,
        (true, false) => Errno::ENODATA,
        _ => Errno::EOPNOTSUPP,
    }
}

/// An attribute name: ERANGE if empty or longer than XATTR_NAME_MAX.
fn xattr_name(t: &mut Task, va: u64) -> Result<String, Errno> {
    let name = t.mm.lock().read_cstr(va, xattr::XATTR_NAME_MAX + 1).map_err(|e| if e == Errno::ENAMETOOLONG { Errno::ERANGE } else { e })?;
    if name.is_empty() || name.len() > xattr::XATTR_NAME_MAX {
        return Err(Errno::ERANGE);
    }
    Ok(name)
}

/// Copies `data` out if it fits `size` (0: only its length is asked).
fn xattr_out(t: &mut Task, va: u64, size: usize, data: &[u8]) -> SysResult {
    if size == 0 {
        return Ok(data.len() as u64);
    }
    if data.len() > size {
        return Err(Errno::ERANGE);
    }
    t.mm.lock().copy_out(va, data)?;
    Ok(data.len() as u64)
}

fn get_xattr(t: &mut Task, a: &Args, kind: u8) -> SysResult {
    let name = xattr_name(t, a.u64(1))?;
    let loc = xattr_target(t, a, kind)?.ok_or_else(|| no_inode_xattr(&name, false))?;
    xattr::permission(&*loc.inode, &name, false, &t.creds)?;
    xattr::namespace(&name)?;
    let v = loc.inode.get_xattr(&name)?;
    xattr_out(t, a.u64(2), a.usize(3).min(xattr::XATTR_SIZE_MAX), &v)
}

fn list_xattr(t: &mut Task, a: &Args, kind: u8) -> SysResult {
    let Some(loc) = xattr_target(t, a, kind)? else { return Ok(0) };
    let mut out = alloc::vec::Vec::new();
    for n in loc.inode.list_xattr()?.iter().filter(|n| xattr::listable(n, &t.creds)) {
        out.extend_from_slice(n.as_bytes());
        out.push(0);
    }
    if out.len() > xattr::XATTR_SIZE_MAX {
        return Err(Errno::E2BIG);
    }
    xattr_out(t, a.u64(1), a.usize(2).min(xattr::XATTR_SIZE_MAX), &out)
}

/// Sets (`value` true) or removes an attribute; either is an IN_ATTRIB.
fn change_xattr(t: &mut Task, a: &Args, kind: u8, value: bool) -> SysResult {
    let flags = if value { a.u32(4) } else { 0 };
    if flags & !(xattr::XATTR_CREATE | xattr::XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = xattr_name(t, a.u64(1))?;
    let data = if value {
        let size = a.usize(3);
        if size > xattr::XATTR_SIZE_MAX {
            return Err(Errno::E2BIG);
        }
        let mut v = vec![0u8; size];
        t.mm.lock().copy_in(a.u64(2), &mut v)?;
        Some(v)
    } else {
        None
    };
    let loc = xattr_target(t, a, kind)?.ok_or_else(|| no_inode_xattr(&name, true))?;
    xattr::permission(&*loc.inode, &name, true, &t.creds)?;
    xattr::namespace(&name)?;
    loc.inode.set_xattr(&name, data.as_deref(), flags)?;
    inotify::loc_event(&loc, IN_ATTRIB);
    Ok(0)
}

fn set_xattr(t: &mut Task, a: &Args, kind: u8) -> SysResult {
    change_xattr(t, a, kind, true)
}

fn remove_xattr(t: &mut Task, a: &Args, kind: u8) -> SysResult {
    change_xattr(t, a, kind, false)
}

pub fn sys_setxattr(t: &mut Task, a: &Args) -> SysResult {
    set_xattr(t, a, b'p')
}
pub fn sys_lsetxattr(t: &mut Task, a: &Args) -> SysResult {
    set_xattr(t, a, b'l')
}
pub fn sys_fsetxattr(t: &mut Task, a: &Args) -> SysResult {
    set_xattr(t, a, b'f')
}
pub fn sys_getxattr(t: &mut Task, a: &Args) -> SysResult {
    get_xattr(t, a, b'p')
}
pub fn sys_lgetxattr(t: &mut Task, a: &Args) -> SysResult {
    get_xattr(t, a, b'l')
}
pub fn sys_fgetxattr(t: &mut Task, a: &Args) -> SysResult {
    get_xattr(t, a, b'f')
}
pub fn sys_listxattr(t: &mut Task, a: &Args) -> SysResult {
    list_xattr(t, a, b'p')
}
pub fn sys_llistxattr(t: &mut Task, a: &Args) -> SysResult {
    list_xattr(t, a, b'l')
}
pub fn sys_flistxattr(t: &mut Task, a: &Args) -> SysResult {
    list_xattr(t, a, b'f')
}
pub fn sys_removexattr(t: &mut Task, a: &Args) -> SysResult {
    remove_xattr(t, a, b'p')
}
pub fn sys_lremovexattr(t: &mut Task, a: &Args) -> SysResult {
    remove_xattr(t, a, b'l')
}
pub fn sys_fremovexattr(t: &mut Task, a: &Args) -> SysResult {
    remove_xattr(t, a, b'f')
}

use crate::fs::lock::{self, Owner, Request, Space};

/// fcntl record locks: `struct flock` at `va`.
fn record_lock(t: &mut Task, f: &Arc<OpenFile>, cmd: u32, va: u64) -> SysResult {
    const F_RDLCK: i16 = 0;
    const F_WRLCK: i16 = 1;
    const F_UNLCK: i16 = 2;
    let ofd = cmd >= 36;
    let (get, wait) = match cmd % 36 {
        0 | 5 => (true, false),
        1 | 6 => (false, false),
        _ => (false, true),
    };
    let mut raw = [0u8; 32];
    t.mm.lock().copy_in(va, &mut raw)?;
    let l_type = i16::from_le_bytes([raw[0], raw[1]]);
    let whence = i16::from_le_bytes([raw[2], raw[3]]);
    let l_start = i64::from_le_bytes(raw[8..16].try_into().unwrap_or([0; 8]));
    let l_len = i64::from_le_bytes(raw[16..24].try_into().unwrap_or([0; 8]));
    let l_pid = i32::from_le_bytes(raw[24..28].try_into().unwrap_or([0; 4]));
    if ofd && l_pid != 0 {
        return Err(Errno::EINVAL);
    }
    let loc = f.loc.clone().ok_or(Errno::EINVAL)?;
    let st = loc.inode.stat()?;
    let base = match whence {
        0 => 0,
        1 => f.ops.seek(0, 1)? as i64,
        2 => st.st_size,
        _ => return Err(Errno::EINVAL),
    };
    let start = base.checked_add(l_start).ok_or(Errno::EOVERFLOW)?;
    // A negative length locks the bytes before `start`.
    let (start, end) = if l_len == 0 {
        (start, u64::MAX as i64)
    } else if l_len > 0 {
        (start, start.checked_add(l_len - 1).ok_or(Errno::EOVERFLOW)?)
    } else {
        (start.checked_add(l_len).ok_or(Errno::EINVAL)?, start - 1)
    };
    if start < 0 {
        return Err(Errno::EINVAL);
    }
    let (start, end) = (start as u64, if end == u64::MAX as i64 { u64::MAX } else { end as u64 });
    let owner = if ofd { Owner::File(Arc::as_ptr(f) as usize) } else { Owner::Process(t.pid()) };
    let write = match l_type {
        F_RDLCK => false,
        F_WRLCK => true,
        F_UNLCK if !get => {
            lock::unlock(Space::Record, (st.st_dev, st.st_ino), owner, start, end);
            return Ok(0);
        }
        _ => return Err(Errno::EINVAL),
    };
    let mode = f.flags() & O_ACCMODE;
    if !get && ((write && mode == 0) || (!write && mode == 1)) {
        return Err(Errno::EBADF);
    }
    let req = Request { space: Space::Record, file: (st.st_dev, st.st_ino), start, end, write, owner, pid: if ofd { -1 } else { t.pid() as i32 } };
    if get {
        match lock::conflict(&req) {
            None => raw[0..2].copy_from_slice(&F_UNLCK.to_le_bytes()),
            Some((w, s, e, pid)) => {
                raw[0..2].copy_from_slice(&(if w { F_WRLCK } else { F_RDLCK }).to_le_bytes());
                raw[2..4].copy_from_slice(&0i16.to_le_bytes());
                raw[8..16].copy_from_slice(&(s as i64).to_le_bytes());
                let len = if e == u64::MAX { 0 } else { (e - s + 1) as i64 };
                raw[16..24].copy_from_slice(&len.to_le_bytes());
                raw[24..28].copy_from_slice(&pid.to_le_bytes());
            }
        }
        t.mm.lock().copy_out(va, &raw)?;
        return Ok(0);
    }
    if !wait {
        return lock::try_lock(&req).map(|()| 0);
    }
    let pending = || t.proc.pending();
    lock::UNLOCKED.wait(&t.shared, &pending, None, || match lock::try_lock(&req) {
        Ok(()) => Some(Ok(0)),
        Err(Errno::EAGAIN) => None,
        Err(e) => Some(Err(e)),
    })?
}

pub fn sys_flock(t: &mut Task, a: &Args) -> SysResult {
    const LOCK_SH: u32 = 1;
    const LOCK_EX: u32 = 2;
    const LOCK_NB: u32 = 4;
    const LOCK_UN: u32 = 8;
    let f = t.fds.lock().get(a.fd(0))?;
    let op = a.u32(1);
    let loc = f.loc.clone().ok_or(Errno::EINVAL)?;
    let st = loc.inode.stat()?;
    let owner = Owner::File(Arc::as_ptr(&f) as usize);
    let file = (st.st_dev, st.st_ino);
    let write = match op & !LOCK_NB {
        LOCK_SH => false,
        LOCK_EX => true,
        LOCK_UN => {
            lock::unlock(Space::Flock, file, owner, 0, u64::MAX);
            return Ok(0);
        }
        _ => return Err(Errno::EINVAL),
    };
    let req = Request { space: Space::Flock, file, start: 0, end: u64::MAX, write, owner, pid: t.pid() as i32 };
    if op & LOCK_NB != 0 {
        return lock::try_lock(&req).map(|()| 0).map_err(|e| if e == Errno::EAGAIN { Errno::EAGAIN } else { e });
    }
    let pending = || t.proc.pending();
    lock::UNLOCKED.wait(&t.shared, &pending, None, || match lock::try_lock(&req) {
        Ok(()) => Some(Ok(0)),
        Err(Errno::EAGAIN) => None,
        Err(e) => Some(Err(e)),
    })?
}
