//! Open files and the fd table. In the walking skeleton files are host
//! files opened read-only through hypercalls (`HostFile`), the caller's
//! stdio, and a few sentry-internal devices (`/dev/null`, `/dev/zero`,
//! `/dev/full`, `/dev/random`, `/dev/urandom`). The gofer/VFS issue
//! replaces host access with the gofer and adds the mount tree.

pub mod anon;
pub mod cgroupfs;
pub mod dev;
pub mod devpts;
pub mod epoll;
pub mod eventfd;
pub mod host;
pub mod hostfs;
pub mod inotify;
pub mod lock;
pub mod mqueue;
pub mod pidfd;
pub mod pipe;
pub mod signalfd;
pub mod sysfs;
pub mod timerfd;
pub mod tmpfs;
pub mod overlay;
pub mod proc;
pub mod pty;
pub mod reopen;
pub mod tty;

use abi::linux::Stat;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::errno::{Errno, SysResult};
use crate::kernel::task::Task;

pub const POLLIN: u16 = 0x1;
pub const POLLPRI: u16 = 0x2;
pub const POLLOUT: u16 = 0x4;
pub const POLLERR: u16 = 0x8;
pub const POLLHUP: u16 = 0x10;
pub const POLLNVAL: u16 = 0x20;
pub const POLLRDNORM: u16 = 0x40;
pub const POLLWRNORM: u16 = 0x100;

/// Woken whenever a sentry file's readiness may have changed (pipes...);
/// poll and select wait here.
pub static POLL_WQ: crate::kernel::wait::WaitQueue = crate::kernel::wait::WaitQueue::new();

/// A user buffer: (address, length).
pub type UserSeg = (u64, usize);

/// Operations of an open file (Linux: `file_operations`). Defaults give
/// Linux's answer for files that lack the operation.
pub trait FileOps: Send + Sync {
    /// Reads into user buffers; `off = None` uses the file position;
    /// `nonblock` is the open file's O_NONBLOCK.
    fn read(&self, _t: &Task, _segs: &[UserSeg], _off: Option<u64>, _nonblock: bool) -> SysResult {
        Err(Errno::EINVAL)
    }
    /// Writes from user buffers.
    fn write(&self, _t: &Task, _segs: &[UserSeg], _off: Option<u64>, _nonblock: bool) -> SysResult {
        Err(Errno::EINVAL)
    }
    /// fstat.
    fn stat(&self) -> Result<Stat, Errno>;
    /// lseek.
    fn seek(&self, _off: i64, _whence: u32) -> SysResult {
        Err(Errno::ESPIPE)
    }
    /// getdents64 into a sentry buffer.
    fn getdents(&self, _buf: &mut [u8]) -> Result<usize, Errno> {
        Err(Errno::ENOTDIR)
    }
    /// ioctl.
    fn ioctl(&self, _t: &Task, _req: u64, _arg: u64) -> SysResult {
        Err(Errno::ENOTTY)
    }
    /// The path it was opened by (for fchdir, /proc/self/fd).
    fn path(&self) -> &str;
    /// True for directories.
    fn is_dir(&self) -> bool {
        false
    }
    /// Readiness (POLLIN, POLLOUT, POLLHUP, POLLERR...) for `events`.
    /// Default: a file that never blocks.
    fn poll(&self, _events: u16) -> u16 {
        POLLIN | POLLOUT
    }
    /// Whether readiness means anything (Linux: file_can_poll), which
    /// epoll requires. Default: not for regular files and directories,
    /// which are always ready.
    fn can_poll(&self) -> bool {
        const S_IFMT: u32 = 0o170000;
        let kind = self.stat().map(|s| s.st_mode & S_IFMT).unwrap_or(0);
        !(kind == 0o100000 || kind == 0o040000 || self.is_dir())
    }
    /// Readiness changes come from the host (stdio), not from sentry
    /// objects that wake `POLL_WQ`: pollers must re-check periodically.
    fn host_backed(&self) -> bool {
        false
    }
    /// Reads at `off` into a sentry buffer (exec, overlay copy-up).
    fn read_kernel(&self, _buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }
    /// Private mappings of this file read its pages when they are first
    /// touched, through `read_frames` (`mm::filemap`); the others are
    /// copied whole when mapped.
    fn maps_lazily(&self) -> bool {
        false
    }
    /// Fills fresh frames with the file's bytes from `off` on (see
    /// `mm::filemap::PageSource`).
    fn read_frames(&self, _frames: &[u64], _off: u64) -> Result<usize, Errno> {
        Err(Errno::ENODEV)
    }
    /// The page cache of a file whose contents cannot change while it is
    /// open, shared by all its opens and mappings and kept a while.
    fn page_cache(&self) -> Option<Arc<crate::mm::filemap::FileMap>> {
        None
    }
    /// The memory object behind a file whose pages live in the sentry
    /// (tmpfs, memfd, /dev/shm): MAP_SHARED maps share it with the file.
    fn shared_mem(&self) -> Option<alloc::sync::Arc<crate::mm::shared::SharedMem>> {
        None
    }
    /// fcntl F_GETPIPE_SZ (`want` None) / F_SETPIPE_SZ: pipes and fifos.
    fn pipe_size(&self, _want: Option<u64>) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }
    /// fcntl F_GET_SEALS (`add` 0) / F_ADD_SEALS: only memory files seal.
    fn seals(&self, _add: u32) -> Result<u32, Errno> {
        Err(Errno::EINVAL)
    }
    /// open(2) made this file for `t` with `flags`: a terminal may become
    /// the opener's controlling terminal, a pty master takes its owner.
    fn opened(&self, _t: &Task, _flags: u32) -> Result<(), Errno> {
        Ok(())
    }
    /// Reads into a sentry buffer for sendfile, splice and
    /// copy_file_range (Linux: `splice_read`); `off` and `nonblock` as in
    /// `read`. Files that cannot give data this way: EINVAL, as Linux.
    fn splice_read(&self, _t: &Task, _buf: &mut [u8], _off: Option<u64>, _nonblock: bool) -> SysResult {
        Err(Errno::EINVAL)
    }
    /// Writes a sentry buffer (Linux: `splice_write`), possibly partly.
    fn splice_write(&self, _t: &Task, _buf: &[u8], _off: Option<u64>, _nonblock: bool) -> SysResult {
        Err(Errno::EINVAL)
    }
    /// The concrete object, for code that must find its own file type
    /// behind an fd (sockets: `net::unix::sock_of_file`).
    fn as_any(&self) -> Option<&dyn core::any::Any> {
        None
    }
}

/// An open file description (Linux: `struct file`): shared by dup'd fds.
pub struct OpenFile {
    pub ops: alloc::boxed::Box<dyn FileOps>,
    /// O_ flags given at open (status flags may change with F_SETFL).
    pub flags: AtomicU32,
    /// Where it was opened (None for pipes, sockets, stdio...): the start
    /// of *at() lookups, fchdir, ftruncate and /proc/self/fd.
    pub loc: Option<crate::vfs::Location>,
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        // OFD and flock locks belong to the open file description.
        if let Some(loc) = &self.loc {
            lock::release_owner(lock::Owner::File(self as *const OpenFile as usize));
            let flags = self.flags();
            if inotify::active() && flags & tmpfs::O_PATH == 0 {
                let mask = if flags & tmpfs::O_ACCMODE != 0 { inotify::IN_CLOSE_WRITE } else { inotify::IN_CLOSE_NOWRITE };
                inotify::loc_event(loc, mask);
            }
        }
    }
}

impl crate::mm::filemap::PageSource for OpenFile {
    fn read_frames(&self, frames: &[u64], off: u64) -> Result<usize, Errno> {
        self.ops.read_frames(frames, off)
    }
}

/// The page cache private mappings of `file` read from; None when the
/// file is copied whole when mapped (`FileOps::maps_lazily`).
pub fn file_map(file: &Arc<OpenFile>) -> Result<Option<crate::mm::filemap::FileMapRef>, Errno> {
    use crate::mm::filemap::{FileMap, FileMapRef};
    if let Some(map) = file.ops.page_cache() {
        return Ok(Some(FileMapRef(map)));
    }
    if !file.ops.maps_lazily() {
        return Ok(None);
    }
    let size = u64::try_from(file.ops.stat()?.st_size).unwrap_or(0);
    Ok(Some(FileMapRef(FileMap::new(file.clone(), size))))
}

impl OpenFile {
    /// Wraps `ops` with open flags.
    pub fn new(ops: alloc::boxed::Box<dyn FileOps>, flags: u32) -> Arc<OpenFile> {
        Arc::new(OpenFile { ops, flags: AtomicU32::new(flags), loc: None })
    }

    /// Wraps `ops` opened from `loc`.
    pub fn at(ops: alloc::boxed::Box<dyn FileOps>, flags: u32, loc: crate::vfs::Location) -> Arc<OpenFile> {
        Arc::new(OpenFile { ops, flags: AtomicU32::new(flags), loc: Some(loc) })
    }

    /// The path for /proc/self/fd and error messages.
    pub fn path(&self) -> String {
        match &self.loc {
            Some(l) => l.path.clone(),
            None => self.ops.path().into(),
        }
    }

    /// Current flags.
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    /// O_NONBLOCK is set.
    pub fn nonblock(&self) -> bool {
        self.flags() & 0o4000 != 0
    }

    /// Reads through the file's operations with its own O_NONBLOCK.
    pub fn read(&self, t: &Task, segs: &[UserSeg], off: Option<u64>) -> SysResult {
        let r = self.ops.read(t, segs, off, self.nonblock());
        self.notify(&r, inotify::IN_ACCESS);
        r
    }

    /// Writes through the file's operations with its own O_NONBLOCK.
    pub fn write(&self, t: &Task, segs: &[UserSeg], off: Option<u64>) -> SysResult {
        let r = self.ops.write(t, segs, off, self.nonblock());
        self.notify(&r, inotify::IN_MODIFY);
        r
    }

    /// inotify: a read or write that moved bytes is an event on the file
    /// (sendfile and splice report once per call, as Linux).
    pub fn notify(&self, r: &SysResult, mask: u32) {
        if let (Ok(1..), Some(loc)) = (r, &self.loc) {
            if inotify::active() {
                inotify::loc_event(loc, mask);
            }
        }
    }
}

/// A directory listing opened for getdents (synthetic filesystems: /dev,
/// /proc). The listing is taken at open time, with "." and "..".
pub struct DirFile {
    entries: Vec<crate::vfs::DirEntry>,
    pos: spin::Mutex<usize>,
    stat: Stat,
    path: String,
}

impl DirFile {
    /// A directory file over `entries` (without "." and "..").
    pub fn new(entries: Vec<crate::vfs::DirEntry>, stat: Stat, path: &str) -> DirFile {
        let mut all = alloc::vec![
            crate::vfs::DirEntry { name: ".".into(), ino: stat.st_ino, kind: crate::vfs::Kind::Dir },
            crate::vfs::DirEntry { name: "..".into(), ino: stat.st_ino, kind: crate::vfs::Kind::Dir },
        ];
        all.extend(entries);
        DirFile { entries: all, pos: spin::Mutex::new(0), stat, path: path.into() }
    }
}

impl FileOps for DirFile {
    fn read(&self, _t: &Task, _segs: &[UserSeg], _off: Option<u64>, _nonblock: bool) -> SysResult {
        Err(Errno::EISDIR)
    }
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.stat)
    }
    fn seek(&self, off: i64, whence: u32) -> SysResult {
        if whence != 0 || off < 0 {
            return Err(Errno::EINVAL);
        }
        *self.pos.lock() = off as usize;
        Ok(off as u64)
    }
    fn getdents(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        let mut pos = self.pos.lock();
        let (len, n) = hostfs::encode_dirents(&self.entries, *pos, buf);
        if n == 0 && *pos < self.entries.len() {
            return Err(Errno::EINVAL);
        }
        *pos += n;
        Ok(len)
    }
    fn path(&self) -> &str {
        &self.path
    }
    fn is_dir(&self) -> bool {
        true
    }
}

/// Soft limit of open files (RLIMIT_NOFILE default).
pub const NOFILE: usize = 1024;
/// Hard limit of open files.
pub const NOFILE_MAX: usize = 1 << 20;

#[derive(Clone)]
struct Slot {
    file: Arc<OpenFile>,
    cloexec: bool,
}

/// A process's fd table.
#[derive(Clone, Default)]
pub struct FdTable {
    slots: Vec<Option<Slot>>,
    limit: usize,
}

impl FdTable {
    /// An empty table.
    pub fn new() -> FdTable {
        FdTable { slots: Vec::new(), limit: NOFILE }
    }

    /// The file at `fd`.
    pub fn get(&self, fd: i32) -> Result<Arc<OpenFile>, Errno> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get(i))
            .and_then(|s| s.as_ref())
            .map(|s| s.file.clone())
            .ok_or(Errno::EBADF)
    }

    /// Installs at the lowest free fd ≥ `min`.
    pub fn install(&mut self, file: Arc<OpenFile>, cloexec: bool, min: usize) -> Result<i32, Errno> {
        let mut i = min;
        while i < self.slots.len() && self.slots[i].is_some() {
            i += 1;
        }
        if i >= self.limit {
            return Err(Errno::EMFILE);
        }
        self.install_at(i, file, cloexec)?;
        Ok(i as i32)
    }

    /// Installs at exactly `fd`, closing what was there.
    pub fn install_at(&mut self, fd: usize, file: Arc<OpenFile>, cloexec: bool) -> Result<(), Errno> {
        if fd >= self.limit {
            return Err(Errno::EBADF);
        }
        if self.slots.len() <= fd {
            self.slots.resize(fd + 1, None);
        }
        self.slots[fd] = Some(Slot { file, cloexec });
        Ok(())
    }

    /// Closes `fd`.
    pub fn close(&mut self, fd: i32) -> Result<(), Errno> {
        let slot = usize::try_from(fd).ok().and_then(|i| self.slots.get_mut(i)).ok_or(Errno::EBADF)?;
        slot.take().map(|_| ()).ok_or(Errno::EBADF)
    }

    /// The close-on-exec flag of `fd`.
    pub fn cloexec(&self, fd: i32) -> Result<bool, Errno> {
        usize::try_from(fd).ok().and_then(|i| self.slots.get(i)).and_then(|s| s.as_ref()).map(|s| s.cloexec).ok_or(Errno::EBADF)
    }

    /// Sets the close-on-exec flag of `fd`.
    pub fn set_cloexec(&mut self, fd: i32, v: bool) -> Result<(), Errno> {
        let s = usize::try_from(fd).ok().and_then(|i| self.slots.get_mut(i)).and_then(|s| s.as_mut()).ok_or(Errno::EBADF)?;
        s.cloexec = v;
        Ok(())
    }

    /// Closes every close-on-exec fd (execve).
    pub fn close_on_exec(&mut self) {
        for s in self.slots.iter_mut() {
            if s.as_ref().is_some_and(|x| x.cloexec) {
                *s = None;
            }
        }
    }

    /// Sets the table's size limit (RLIMIT_NOFILE).
    pub fn set_limit(&mut self, n: usize) {
        self.limit = n.min(NOFILE_MAX);
    }

    /// Current limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Open fds, for /proc/self/fd.
    pub fn open_fds(&self) -> impl Iterator<Item = i32> + '_ {
        self.slots.iter().enumerate().filter(|(_, s)| s.is_some()).map(|(i, _)| i as i32)
    }
}

/// Joins a path relative to `base` (no normalization: the host resolves
/// `.`, `..` and symlinks itself for host files).
pub fn join(base: &str, path: &str) -> String {
    if path.starts_with('/') {
        return path.into();
    }
    let mut s = String::from(base);
    if !s.ends_with('/') {
        s.push('/');
    }
    s.push_str(path);
    s
}

/// statfs of a pseudo filesystem (no blocks, no inode counts): struct
/// statfs's f_type, f_bsize, f_namelen, f_frsize and f_flags (ST_*).
pub(crate) fn pseudo_statfs(magic: u64, flags: u64) -> [u8; 120] {
    let mut b = [0u8; 120];
    b[0..8].copy_from_slice(&magic.to_le_bytes());
    b[8..16].copy_from_slice(&4096u64.to_le_bytes());
    b[64..72].copy_from_slice(&255u64.to_le_bytes());
    b[72..80].copy_from_slice(&4096u64.to_le_bytes());
    b[80..88].copy_from_slice(&flags.to_le_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dummy;
    impl FileOps for Dummy {
        fn stat(&self) -> Result<Stat, Errno> {
            Ok(Stat::default())
        }
        fn path(&self) -> &str {
            "dummy"
        }
    }

    #[test]
    fn fd_allocation() {
        let mut t = FdTable::new();
        let f = OpenFile::new(alloc::boxed::Box::new(Dummy), 0);
        assert_eq!(t.install(f.clone(), false, 0), Ok(0));
        assert_eq!(t.install(f.clone(), true, 0), Ok(1));
        assert_eq!(t.install(f.clone(), false, 10), Ok(10));
        t.close(0).unwrap();
        assert_eq!(t.install(f.clone(), false, 0), Ok(0));
        assert_eq!(t.cloexec(1), Ok(true));
        assert_eq!(t.close(5), Err(Errno::EBADF));
        assert_eq!(t.close(-1), Err(Errno::EBADF));
        assert!(t.get(99).is_err());
        t.set_limit(11);
        assert_eq!(t.install(f, false, 10), Err(Errno::EMFILE));
    }

    #[test]
    fn joins() {
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(join("/", "b"), "/b");
        assert_eq!(join("/a", "/c"), "/c");
    }
}
