//! Files served by the host through hypercalls (skeleton only: the gofer
//! takes over with the VFS issue). Data moves zero-copy: the host reads or
//! writes the application's frames directly through a scatter list.

use abi::linux::Stat;
use alloc::string::String;
use alloc::vec::Vec;
use alloc::sync::Arc;
use spin::Mutex;

use crate::mm::filemap::{self, FileMap, Key, PageSource};

use super::{FileOps, UserSeg};
use crate::errno::{Errno, SysResult};
use crate::host;
use crate::kernel::task::Task;
use crate::mm::MemoryManager;

/// Largest transfer per request (the VMM's bound).
const MAX_IO: usize = abi::hypercall::MAX_IO_BYTES as usize;

/// A host file or the caller's stdio.
pub struct HostFile {
    handle: u64,
    path: String,
    dir: bool,
    /// The caller's stdio: readiness comes from the host.
    stdio: bool,
    /// Closed with the file (else the handle belongs to someone else).
    owned: bool,
    /// The /dev/pts number this handle is registered under.
    pty: Option<u32>,
    /// The /dev/pts number it is listed as (its st_rdev follows it).
    pts: Option<u32>,
    /// A regular file opened read-only: its offset is kept here rather
    /// than in the host fd (lseek then costs no exit), reads pass it.
    pos: Option<Mutex<u64>>,
    /// Its attributes, when they cannot change underneath (a read-only
    /// open of a file whose filesystem is assumed not to change, such as
    /// an overlay's lower layer): fstat costs no exit.
    attrs: Option<Mutex<Option<Stat>>>,
    /// Such a file read through the page cache of its contents (shared
    /// with every other open and mapping of it): it holds no handle.
    cache: Option<Arc<FileMap>>,
}

/// No handle (a file read through its page cache).
const NO_HANDLE: u64 = u64::MAX;

/// Largest unchanging file read through the page cache; bigger ones are
/// read through a handle of their own (their mappings still share it).
const CACHED_READ_MAX: i64 = 4 << 20;

/// The bytes of an unchanging host file behind its page cache: read by
/// path through a handle of its own, opened when first needed and kept
/// while the cache lives.
struct PathSource {
    path: String,
    handle: Mutex<Option<u64>>,
}

impl PathSource {
    fn handle(&self) -> Result<u64, Errno> {
        let mut g = self.handle.lock();
        match *g {
            Some(h) => Ok(h),
            None => {
                let h = host::open(&self.path, super::hostfs::O_NOFOLLOW)?;
                *g = Some(h);
                Ok(h)
            }
        }
    }
}

impl PageSource for PathSource {
    fn read_frames(&self, frames: &[u64], off: u64) -> Result<usize, Errno> {
        read_into_frames(self.handle()?, frames, off)
    }

    fn ready(&self) -> Result<(), Errno> {
        self.handle().map(|_| ())
    }
}

impl Drop for PathSource {
    fn drop(&mut self) {
        if let Some(h) = self.handle.lock().take() {
            host::close_later(h);
        }
    }
}

/// The shared page cache of the unchanging host file `path` with (host)
/// attributes `st`.
fn page_cache_of(path: &str, st: &Stat) -> Arc<FileMap> {
    let size = u64::try_from(st.st_size).unwrap_or(0);
    let key = Key { path: path.into(), dev: st.st_dev, ino: st.st_ino, size, mtime: (st.st_mtime, st.st_mtime_nsec) };
    filemap::shared(key, || FileMap::new(Arc::new(PathSource { path: path.into(), handle: Mutex::new(None) }), size))
}

/// Reads a host file into fresh frames (`PageSource::read_frames`).
fn read_into_frames(h: u64, frames: &[u64], off: u64) -> Result<usize, Errno> {
    use abi::hypercall::IoVec;
    use abi::layout::PAGE_SIZE;
    let total = frames.len() as u64 * PAGE_SIZE;
    let mut done = 0u64;
    // A short read before the end is carried on; a read of nothing is
    // the end of the file. Straight into the frames: they are
    // guest-physical pages.
    while done < total {
        let (first, within) = ((done / PAGE_SIZE) as usize, done % PAGE_SIZE);
        let iov: Vec<IoVec> = frames[first..]
            .iter()
            .enumerate()
            .map(|(i, &f)| if i == 0 { IoVec { gpa: f + within, len: PAGE_SIZE - within } } else { IoVec { gpa: f, len: PAGE_SIZE } })
            .collect();
        let n = host::read(h, &iov, Some(off + done))?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done as usize)
}

/// How a host file was opened (`HostFile::open`).
pub struct Opened {
    /// The filesystem's object is a regular file.
    pub regular: bool,
    /// Opened for reading only.
    pub read_only: bool,
    /// Its attributes stay as they are while the file is open; `Some`
    /// with them when the opener already has them.
    pub stable: Option<Option<Stat>>,
}

impl HostFile {
    /// Wraps an opened handle.
    pub fn new(handle: u64, path: String, dir: bool) -> HostFile {
        HostFile { handle, path, dir, owned: true, stdio: false, pty: None, pts: None, pos: None, attrs: None, cache: None }
    }

    /// A file of a host filesystem opened as `how` says.
    pub fn open(handle: u64, path: String, dir: bool, how: Opened) -> HostFile {
        let mut f = HostFile::new(handle, path, dir);
        if how.regular && how.read_only {
            f.pos = Some(Mutex::new(0));
            f.attrs = how.stable.map(Mutex::new);
        }
        f
    }

    /// An unchanging, world-readable file of at most `CACHED_READ_MAX`
    /// bytes with (host) attributes `st`, opened read-only without a
    /// handle of its own: it is read through its page cache, whose
    /// handle (opened now if the cache has none yet) it shares. Files
    /// others may not read keep a handle each, so the host checks every
    /// open. None for other files.
    pub fn cached(path: &str, st: &Stat) -> Result<Option<HostFile>, Errno> {
        if st.st_mode & 0o170000 != 0o100000 || st.st_mode & 0o004 == 0 || st.st_size > CACHED_READ_MAX {
            return Ok(None);
        }
        let cache = page_cache_of(path, st);
        cache.ready()?;
        let mut f = HostFile::new(NO_HANDLE, path.into(), false);
        f.owned = false;
        f.pos = Some(Mutex::new(0));
        f.attrs = Some(Mutex::new(Some(*st)));
        f.cache = Some(cache);
        Ok(Some(f))
    }

    /// Reads into guest-physical buffers at `off`, or at and past the
    /// file's own offset when None.
    fn read_iov(&self, iov: &[abi::hypercall::IoVec], off: Option<u64>) -> SysResult {
        let at = |o: u64| match &self.cache {
            Some(c) => c.read_to(o, iov).map(|n| n as u64),
            None => host::read(self.handle, iov, Some(o)),
        };
        match (&self.pos, off) {
            (Some(pos), None) => {
                let mut pos = pos.lock();
                let n = at(*pos)?;
                *pos += n;
                Ok(n)
            }
            (Some(_), Some(o)) => at(o),
            (None, off) => host::read(self.handle, iov, off),
        }
    }

    /// Whether this is a file or directory of a host filesystem (not a
    /// terminal, pipe or socket the sandbox was given).
    fn on_filesystem(&self) -> bool {
        !self.stdio && self.pts.is_none() && (self.dir || self.pos.is_some())
    }

    /// One of the caller's stdio streams. A host pseudo-terminal is
    /// named and listed as /dev/pts/N, as the application expects.
    pub fn stdio(handle: u64, name: &str) -> HostFile {
        let mut path = String::from(name);
        let mut pty = None;
        if let Ok(st) = host::fstat(handle) {
            if let Some(host_n) = super::devpts::pty_number(&st) {
                let n = super::devpts::register(host_n, handle, st);
                path = alloc::format!("/dev/pts/{n}");
                pty = Some(n);
            }
        }
        HostFile { handle, path, dir: false, owned: true, stdio: true, pty, pts: pty, pos: None, attrs: None, cache: None }
    }

    /// A terminal the sandbox holds open elsewhere (opened again as
    /// /dev/pts/`n`): shares the handle, never closes it.
    pub fn borrowed(handle: u64, n: u32) -> HostFile {
        HostFile {
            handle,
            path: alloc::format!("/dev/pts/{n}"),
            dir: false,
            owned: false,
            stdio: true,
            pty: None,
            pts: Some(n),
            pos: None,
            attrs: None,
            cache: None,
        }
    }
}

pub(crate) fn gather(mm: &mut MemoryManager, segs: &[UserSeg], host_writes: bool) -> Result<Vec<abi::hypercall::IoVec>, Errno> {
    let mut v = Vec::new();
    let mut total = 0usize;
    for &(addr, len) in segs {
        let len = len.min(MAX_IO - total);
        if len == 0 {
            continue;
        }
        v.extend(mm.iovecs(addr, len, host_writes)?);
        total += len;
        if total >= MAX_IO {
            break;
        }
    }
    if v.len() as u64 > abi::hypercall::MAX_IOVECS {
        v.truncate(abi::hypercall::MAX_IOVECS as usize);
    }
    Ok(v)
}

/// Waits in the sentry until a host stream (a terminal, a pipe from the
/// client) has input, instead of blocking the whole vCPU in the host's
/// read: other tasks and control requests (kill, exec) keep running. The
/// host is polled with a growing interval (1 ms to 20 ms) while waiting.
fn wait_readable(t: &Task, handle: u64, nonblock: bool) -> Result<(), Errno> {
    use core::sync::atomic::Ordering;
    use crate::kernel::sched;
    let mut nap = 1_000_000u64;
    loop {
        let r = host::poll(handle, super::POLLIN).unwrap_or(super::POLLERR);
        if r & (super::POLLIN | super::POLLHUP | super::POLLERR | super::POLLNVAL) != 0 {
            return Ok(());
        }
        if nonblock {
            return Err(Errno::EAGAIN);
        }
        if t.deliverable() != 0 || t.shared.killed.load(Ordering::Relaxed) {
            return Err(crate::kernel::wait::ERESTARTSYS);
        }
        sched::add_timer(crate::kernel::clock::monotonic_ns() + nap, &t.shared);
        sched::block(&t.shared);
        sched::cancel_timers(&t.shared);
        nap = (nap * 2).min(20_000_000);
    }
}

impl FileOps for HostFile {
    fn read(&self, t: &Task, segs: &[UserSeg], off: Option<u64>, nonblock: bool) -> SysResult {
        if self.dir {
            return Err(Errno::EISDIR);
        }
        if self.stdio && off.is_none() {
            wait_readable(t, self.handle, nonblock)?;
        }
        // The address space stays locked across the host call so the
        // frames cannot be unmapped and reused while the host fills them.
        let mut mm = t.mm.lock();
        let iov = gather(&mut mm, segs, true)?;
        if iov.is_empty() {
            return Ok(0);
        }
        self.read_iov(&iov, off)
    }

    fn write(&self, t: &Task, segs: &[UserSeg], off: Option<u64>, _nonblock: bool) -> SysResult {
        let mut mm = t.mm.lock();
        let iov = gather(&mut mm, segs, false)?;
        if iov.is_empty() {
            return Ok(0);
        }
        host::write(self.handle, &iov, off)
    }

    fn splice_read(&self, t: &Task, buf: &mut [u8], off: Option<u64>, nonblock: bool) -> SysResult {
        if self.dir {
            return Err(Errno::EISDIR);
        }
        if self.stdio && off.is_none() {
            wait_readable(t, self.handle, nonblock)?;
        }
        let n = buf.len().min(MAX_IO);
        if n == 0 {
            return Ok(0);
        }
        // The host fills the sentry buffer directly (the direct map makes
        // it one guest-physical range).
        let iov = [abi::hypercall::IoVec { gpa: crate::mm::phys::va_to_pa(buf.as_mut_ptr() as u64), len: n as u64 }];
        self.read_iov(&iov, off)
    }

    fn splice_write(&self, _t: &Task, buf: &[u8], off: Option<u64>, _nonblock: bool) -> SysResult {
        let n = buf.len().min(MAX_IO);
        if n == 0 {
            return Ok(0);
        }
        let iov = [abi::hypercall::IoVec { gpa: crate::mm::phys::va_to_pa(buf.as_ptr() as u64), len: n as u64 }];
        host::write(self.handle, &iov, off)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        if let Some(attrs) = &self.attrs {
            let mut a = attrs.lock();
            if let Some(st) = *a {
                return Ok(super::hostfs::to_container(st));
            }
            let st = host::fstat(self.handle)?;
            *a = Some(st);
            return Ok(super::hostfs::to_container(st));
        }
        let mut st = host::fstat(self.handle).map(super::hostfs::to_container)?;
        if let Some(n) = self.pts {
            st.st_rdev = super::devpts::rdev_of(n);
        }
        Ok(st)
    }

    fn seek(&self, off: i64, whence: u32) -> SysResult {
        let Some(pos) = &self.pos else { return host::lseek(self.handle, off, whence) };
        const SEEK_SET: u32 = 0;
        const SEEK_CUR: u32 = 1;
        const SEEK_END: u32 = 2;
        let mut pos = pos.lock();
        let base = match whence {
            SEEK_SET => 0,
            SEEK_CUR => *pos,
            SEEK_END => self.stat()?.st_size as u64,
            // A file without a handle has no holes the sentry knows of:
            // its data runs to the end (Linux's generic SEEK_DATA/HOLE).
            3 | 4 if self.cache.is_some() => {
                let size = self.stat()?.st_size;
                if off < 0 || off >= size {
                    return Err(Errno::ENXIO);
                }
                let new = if whence == 3 { off } else { size } as u64;
                *pos = new;
                return Ok(new);
            }
            // SEEK_DATA, SEEK_HOLE (absolute offsets) and bad values: the
            // host's answer, which also sets the host fd's offset.
            _ => {
                let new = host::lseek(self.handle, off, whence)?;
                *pos = new;
                return Ok(new);
            }
        };
        let new = i64::try_from(base).ok().and_then(|b| b.checked_add(off)).filter(|&n| n >= 0).ok_or(Errno::EINVAL)?;
        *pos = new as u64;
        Ok(new as u64)
    }

    fn getdents(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        if !self.dir {
            return Err(Errno::ENOTDIR);
        }
        host::getdents(self.handle, buf)
    }

    fn ioctl(&self, t: &Task, req: u64, arg: u64) -> SysResult {
        // Job control on a terminal is the sandbox's business: the host
        // side of the pty belongs to the VMM's session.
        if let Some(n) = super::devpts::number_of(&self.path) {
            const TIOCSCTTY: u64 = 0x540e;
            const TIOCGPGRP: u64 = 0x540f;
            const TIOCSPGRP: u64 = 0x5410;
            const TIOCNOTTY: u64 = 0x5422;
            const TIOCGSID: u64 = 0x5429;
            let pid = t.pid();
            let (pgid, sid) = {
                let i = t.proc.inner.lock();
                (i.pgid, i.sid)
            };
            match req {
                // As Linux's tiocsctty: only a session leader without
                // a controlling terminal takes one, and another
                // session's only with arg 1 and CAP_SYS_ADMIN (setsid -c
                // as root). The host side needs nothing: its session is
                // the VMM's.
                TIOCSCTTY => {
                    let owner = super::devpts::console_owner(n);
                    if sid == pid && owner == Some(sid) {
                        return Ok(0);
                    }
                    if sid != pid || super::pty::has_ctty(sid) {
                        return Err(Errno::EPERM);
                    }
                    if let Some(other) = owner {
                        if arg != 1 || !t.creds.capable(crate::kernel::creds::CAP_SYS_ADMIN) {
                            return Err(Errno::EPERM);
                        }
                        super::devpts::forget_console_session(other);
                    }
                    super::devpts::note_console_session(sid, n);
                    return Ok(0);
                }
                TIOCNOTTY => {
                    if super::devpts::console_of_session(sid) != Some(n) {
                        return Err(Errno::ENOTTY);
                    }
                    if sid == pid {
                        // The leader gives it up for the session (Linux:
                        // disassociate_ctty(0)); the foreground group is
                        // told, as daemons detaching expect.
                        super::devpts::forget_console_session(sid);
                        if let Some(g) = super::devpts::take_foreground(n) {
                            super::pty::signal_group(g, crate::kernel::signal::SIGHUP);
                            super::pty::signal_group(g, crate::kernel::signal::SIGCONT);
                        }
                    }
                    return Ok(0);
                }
                TIOCGPGRP => {
                    let fg = super::devpts::foreground(n, pgid);
                    t.mm.lock().write_obj(arg, &fg)?;
                    return Ok(0);
                }
                TIOCSPGRP => {
                    let want: i32 = t.mm.lock().read_obj(arg)?;
                    if want <= 0 {
                        return Err(Errno::EINVAL);
                    }
                    super::devpts::set_foreground(n, want as u32);
                    return Ok(0);
                }
                TIOCGSID => {
                    t.mm.lock().write_obj(arg, &sid)?;
                    return Ok(0);
                }
                _ => {}
            }
        }
        if self.on_filesystem() {
            // No terminal request applies to a file or directory (callers
            // such as Python's open ask TCGETS of every file).
            return Err(Errno::ENOTTY);
        }
        let size = match req {
            0x5401..=0x5404 => 36,
            0x5413 | 0x5414 => 8,
            0x540f => 4,
            _ => return Err(Errno::ENOTTY),
        };
        let mut buf = [0u8; 36];
        let buf = &mut buf[..size];
        let reads_arg = matches!(req, 0x5402..=0x5404 | 0x5414);
        if reads_arg {
            t.mm.lock().copy_in(arg, buf)?;
        }
        host::ioctl(self.handle, req, buf)?;
        if !reads_arg {
            t.mm.lock().copy_out(arg, buf)?;
        }
        Ok(0)
    }

    fn path(&self) -> &str {
        &self.path
    }

    fn is_dir(&self) -> bool {
        self.dir
    }

    fn poll(&self, events: u16) -> u16 {
        if !self.stdio {
            return super::POLLIN | super::POLLOUT;
        }
        host::poll(self.handle, events).unwrap_or(super::POLLERR)
    }

    fn host_backed(&self) -> bool {
        self.stdio
    }

    fn maps_lazily(&self) -> bool {
        self.pos.is_some()
    }

    fn read_frames(&self, frames: &[u64], off: u64) -> Result<usize, Errno> {
        if !self.maps_lazily() {
            return Err(Errno::ENODEV);
        }
        match &self.cache {
            Some(c) => {
                let iov: Vec<abi::hypercall::IoVec> = frames.iter().map(|&f| abi::hypercall::IoVec { gpa: f, len: abi::layout::PAGE_SIZE }).collect();
                c.read_to(off, &iov)
            }
            None => read_into_frames(self.handle, frames, off),
        }
    }

    fn page_cache(&self) -> Option<Arc<FileMap>> {
        if let Some(c) = &self.cache {
            return Some(c.clone());
        }
        let st = (*self.attrs.as_ref()?.lock())?;
        Some(page_cache_of(&self.path, &st))
    }

    fn read_kernel(&self, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        if let Some(c) = &self.cache {
            // The direct map makes a sentry buffer one guest-physical range.
            let iov = [abi::hypercall::IoVec { gpa: crate::mm::phys::va_to_pa(buf.as_mut_ptr() as u64), len: buf.len() as u64 }];
            let n = c.read_to(off, &iov)?;
            core::hint::black_box(&buf);
            return Ok(n);
        }
        let mut done = 0;
        let total = buf.len();
        while done < total {
            let chunk = &mut buf[done..(done + MAX_IO).min(total)];
            let iov = [abi::hypercall::IoVec { gpa: crate::mm::phys::va_to_pa(chunk.as_mut_ptr() as u64), len: chunk.len() as u64 }];
            // The hypercall's asm may write any memory whose address escaped.
            let n = host::read(self.handle, &iov, Some(off + done as u64))? as usize;
            done += n;
            if n < chunk.len() {
                break;
            }
        }
        Ok(done)
    }
}

impl Drop for HostFile {
    fn drop(&mut self) {
        if let Some(n) = self.pty {
            super::devpts::unregister(n, self.handle);
        }
        if self.owned && self.on_filesystem() {
            host::close_later(self.handle);
        } else if self.owned {
            host::close(self.handle);
        }
    }
}
