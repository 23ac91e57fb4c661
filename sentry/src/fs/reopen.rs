//! Opening an open file again through /proc/PID/fd/N (and so /dev/stdin,
//! /dev/stdout, /dev/stderr, /dev/fd/N): Linux follows these "magic"
//! links to the file itself, whatever `readlink` shows. A file opened by
//! path is reached at its location (still there if it was renamed or
//! unlinked); a pipe opens as a new end of the same pipe, with the
//! direction the new open asks for; the caller's stdio from the host (a
//! pipe or file of the client) is shared with the original descriptor, as
//! both are the same host stream. Anything else (sockets, event files)
//! cannot be opened again: ENXIO, as Linux answers for sockets.

use abi::linux::Stat;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;

use super::pipe::{PipeEnd, PipeRef};
use super::{FileOps, OpenFile, UserSeg};
use crate::errno::{Errno, SysResult};
use crate::kernel::task::Task;
use crate::vfs::{Inode, Kind, Location};

/// Where following a /proc/PID/fd link to `f` lands.
pub fn location_of(f: &Arc<OpenFile>) -> Location {
    if let Some(l) = &f.loc {
        return l.clone();
    }
    // A file whose stat fails still has a type to show: a socket's.
    let stat = f.ops.stat().unwrap_or(Stat { st_mode: crate::vfs::S_IFSOCK | 0o777, ..Stat::default() });
    let (target, path) = if let Some(end) = f.ops.as_any().and_then(|a| a.downcast_ref::<PipeEnd>()) {
        (Target::Pipe(end.pipe_ref()), format!("pipe:[{}]", stat.st_ino))
    } else if f.ops.host_backed() {
        (Target::Host(f.clone()), String::from(f.ops.path()))
    } else {
        (Target::Other, f.path())
    };
    Location { inode: Arc::new(Reopenable { target, stat }), path }
}

/// True for the inodes `location_of` makes for files without a location:
/// they open themselves (a pipe's stat says FIFO, but there is no FIFO to
/// meet the other side at).
pub fn is_reopenable(inode: &dyn Inode) -> bool {
    inode.as_any().is::<Reopenable>()
}

/// A file without a location reached through /proc/PID/fd: stat works on
/// it (stat(2) of the link, fstat after an O_PATH open), opening it depends.
struct Reopenable {
    target: Target,
    /// Taken when the link was followed (the type and owner decide open's
    /// permission check).
    stat: Stat,
}

enum Target {
    /// Not the end the link named: the files opened from here are ends of
    /// their own, and the original may close (the pipe sees it).
    Pipe(PipeRef),
    Host(Arc<OpenFile>),
    /// Sockets and the sentry's event files: stat only.
    Other,
}

impl Inode for Reopenable {
    fn stat(&self) -> Result<Stat, Errno> {
        match &self.target {
            Target::Host(f) => f.ops.stat(),
            Target::Pipe(_) | Target::Other => Ok(self.stat),
        }
    }

    fn kind(&self) -> Kind {
        Kind::from_mode(self.stat.st_mode)
    }

    fn open(&self, flags: u32) -> Result<Box<dyn FileOps>, Errno> {
        match &self.target {
            Target::Pipe(p) => Ok(Box::new(p.open(flags)?)),
            Target::Host(f) => Ok(Box::new(Shared(f.clone()))),
            Target::Other => Err(Errno::ENXIO),
        }
    }

    fn id(&self) -> (u64, u64) {
        (self.stat.st_dev, self.stat.st_ino)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

/// A host stream opened again: every operation goes to the original open
/// file, which stays open as long as this one does (the host stream is
/// one object, like the pipe a Linux open of /dev/stdout reaches).
struct Shared(Arc<OpenFile>);

impl FileOps for Shared {
    fn read(&self, t: &Task, segs: &[UserSeg], off: Option<u64>, nonblock: bool) -> SysResult {
        self.0.ops.read(t, segs, off, nonblock)
    }

    fn write(&self, t: &Task, segs: &[UserSeg], off: Option<u64>, nonblock: bool) -> SysResult {
        self.0.ops.write(t, segs, off, nonblock)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        self.0.ops.stat()
    }

    fn seek(&self, off: i64, whence: u32) -> SysResult {
        self.0.ops.seek(off, whence)
    }

    fn ioctl(&self, t: &Task, req: u64, arg: u64) -> SysResult {
        self.0.ops.ioctl(t, req, arg)
    }

    fn path(&self) -> &str {
        self.0.ops.path()
    }

    fn poll(&self, events: u16) -> u16 {
        self.0.ops.poll(events)
    }

    fn host_backed(&self) -> bool {
        self.0.ops.host_backed()
    }

    fn read_kernel(&self, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        self.0.ops.read_kernel(buf, off)
    }

    fn splice_read(&self, t: &Task, buf: &mut [u8], off: Option<u64>, nonblock: bool) -> SysResult {
        self.0.ops.splice_read(t, buf, off, nonblock)
    }

    fn splice_write(&self, t: &Task, buf: &[u8], off: Option<u64>, nonblock: bool) -> SysResult {
        self.0.ops.splice_write(t, buf, off, nonblock)
    }
}
