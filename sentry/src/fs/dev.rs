//! Character devices implemented in the sentry: null, zero, full, random
//! and urandom (the latter two from the sentry's CSPRNG, seeded by the
//! host); /dev/tty and /dev/ptmx open terminals (`fs::pty`).

use abi::linux::Stat;
use alloc::vec;

use super::{FileOps, UserSeg};
use crate::errno::{Errno, SysResult};
use crate::kernel::task::Task;

/// Which device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dev {
    Null,
    Zero,
    Full,
    Random,
    Urandom,
}

impl Dev {
    /// The device at `path`, if it is one of ours.
    pub fn by_path(path: &str) -> Option<Dev> {
        Some(match path {
            "/dev/null" => Dev::Null,
            "/dev/zero" => Dev::Zero,
            "/dev/full" => Dev::Full,
            "/dev/random" => Dev::Random,
            "/dev/urandom" => Dev::Urandom,
            _ => return None,
        })
    }

    fn rdev(self) -> u64 {
        let (major, minor) = match self {
            Dev::Null => (1, 3),
            Dev::Zero => (1, 5),
            Dev::Full => (1, 7),
            Dev::Random => (1, 8),
            Dev::Urandom => (1, 9),
        };
        (major << 8) | minor
    }

    /// fstat of the device node.
    pub fn stat(self) -> Stat {
        Stat { st_mode: 0o20666, st_rdev: self.rdev(), st_nlink: 1, st_blksize: 4096, st_dev: 6, st_ino: self.rdev(), ..Stat::default() }
    }
}

/// An open device.
pub struct DevFile {
    pub dev: Dev,
    path: &'static str,
}

impl DevFile {
    /// Opens `dev`.
    pub fn new(dev: Dev) -> DevFile {
        let path = match dev {
            Dev::Null => "/dev/null",
            Dev::Zero => "/dev/zero",
            Dev::Full => "/dev/full",
            Dev::Random => "/dev/random",
            Dev::Urandom => "/dev/urandom",
        };
        DevFile { dev, path }
    }
}

impl FileOps for DevFile {
    fn read(&self, t: &Task, segs: &[UserSeg], _off: Option<u64>, _nonblock: bool) -> SysResult {
        if self.dev == Dev::Null {
            return Ok(0);
        }
        // Zeros come from one static page (no allocation or fill per read:
        // `head -c` from /dev/zero reads it a few KiB at a time).
        static ZEROS: [u8; 4096] = [0; 4096];
        let random = matches!(self.dev, Dev::Random | Dev::Urandom);
        let mut buf = if random { vec![0u8; 4096] } else { alloc::vec::Vec::new() };
        let mut total = 0u64;
        let mut mm = t.mm.lock();
        for &(addr, len) in segs {
            let mut done = 0;
            while done < len {
                let n = (len - done).min(4096);
                let src = if random {
                    crate::kernel::random::fill(&mut buf[..n]);
                    &buf[..n]
                } else {
                    &ZEROS[..n]
                };
                mm.copy_out(addr + done as u64, src)?;
                done += n;
            }
            total += len as u64;
        }
        Ok(total)
    }

    fn write(&self, _t: &Task, segs: &[UserSeg], _off: Option<u64>, _nonblock: bool) -> SysResult {
        if self.dev == Dev::Full {
            return Err(Errno::ENOSPC);
        }
        Ok(segs.iter().map(|s| s.1 as u64).sum())
    }

    // As Linux's: /dev/null gives nothing to splice from and /dev/full
    // takes nothing spliced to it (EINVAL, not ENOSPC).
    fn splice_read(&self, _t: &Task, buf: &mut [u8], _off: Option<u64>, _nonblock: bool) -> SysResult {
        match self.dev {
            Dev::Null => return Err(Errno::EINVAL),
            Dev::Random | Dev::Urandom => crate::kernel::random::fill(buf),
            Dev::Zero | Dev::Full => buf.fill(0),
        }
        Ok(buf.len() as u64)
    }

    fn splice_write(&self, _t: &Task, buf: &[u8], _off: Option<u64>, _nonblock: bool) -> SysResult {
        if self.dev == Dev::Full {
            return Err(Errno::EINVAL);
        }
        Ok(buf.len() as u64)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.dev.stat())
    }

    fn seek(&self, _off: i64, _whence: u32) -> SysResult {
        Ok(0)
    }

    fn path(&self) -> &str {
        self.path
    }
}

/// /dev/tty: the caller's controlling terminal, a sandbox pty or the
/// host terminal its session started on; ENXIO without one.
fn controlling_tty() -> Result<alloc::boxed::Box<dyn FileOps>, Errno> {
    let me = crate::kernel::sched::current().ok_or(Errno::ENXIO)?.tid;
    let procs = crate::kernel::process::all_processes();
    let p = procs.iter().find(|p| p.inner.lock().threads.iter().any(|t| t.tid == me)).ok_or(Errno::ENXIO)?;
    let sid = p.inner.lock().sid;
    if let Some(pty) = super::pty::session_tty(sid) {
        return super::pty::open_slave(pty);
    }
    let n = super::devpts::console_of_session(sid).ok_or(Errno::ENXIO)?;
    super::devpts::open_pty(n)
}

/// stat of /dev/ptmx (and of the masters opened through it).
pub fn ptmx_stat() -> Stat {
    let i = DEV_ENTRIES.iter().position(|(n, _)| *n == "ptmx").unwrap_or(0);
    crate::vfs::Inode::stat(&DevNode { index: Some(i) }).unwrap_or_default()
}

/// The device filesystem mounted at /dev (Linux: devtmpfs as a container
/// sees it): the memory devices served by the sentry, the standard
/// symlinks into /proc/self/fd, and mount points for shm and pts.
pub struct DevFs;

/// A node of /dev.
enum DevEntry {
    Dev(Dev),
    /// A device opened by a function of its own: /dev/tty (the
    /// controlling terminal) and /dev/ptmx (a new pseudo-terminal).
    Special(u64),
    Link(&'static str),
    Dir,
}

const DEV_ENTRIES: &[(&str, DevEntry)] = &[
    ("full", DevEntry::Dev(Dev::Full)),
    ("null", DevEntry::Dev(Dev::Null)),
    ("random", DevEntry::Dev(Dev::Random)),
    ("urandom", DevEntry::Dev(Dev::Urandom)),
    ("zero", DevEntry::Dev(Dev::Zero)),
    ("tty", DevEntry::Special(5 << 8)),
    ("ptmx", DevEntry::Special((5 << 8) | 2)),
    ("fd", DevEntry::Link("/proc/self/fd")),
    ("stdin", DevEntry::Link("/proc/self/fd/0")),
    ("stdout", DevEntry::Link("/proc/self/fd/1")),
    ("stderr", DevEntry::Link("/proc/self/fd/2")),
    ("shm", DevEntry::Dir),
    ("pts", DevEntry::Dir),
];

/// The st_dev of /dev.
const DEVFS_DEV: u64 = 5;

impl DevFs {
    /// The root directory of /dev.
    pub fn root() -> alloc::sync::Arc<dyn crate::vfs::Inode> {
        alloc::sync::Arc::new(DevNode { index: None })
    }
}

/// An inode of /dev: `index` into DEV_ENTRIES, None for the root.
struct DevNode {
    index: Option<usize>,
}

fn dir_stat(ino: u64, nlink: u64) -> Stat {
    Stat { st_dev: DEVFS_DEV, st_ino: ino, st_mode: 0o040755, st_nlink: nlink, st_blksize: 4096, ..Stat::default() }
}

impl crate::vfs::Inode for DevNode {
    fn stat(&self) -> Result<Stat, Errno> {
        let Some(i) = self.index else { return Ok(dir_stat(1, 4)) };
        let ino = i as u64 + 2;
        Ok(match &DEV_ENTRIES[i].1 {
            DevEntry::Dev(d) => Stat { st_dev: DEVFS_DEV, st_ino: ino, ..d.stat() },
            DevEntry::Special(rdev) => Stat { st_dev: DEVFS_DEV, st_ino: ino, st_mode: 0o020666, st_rdev: *rdev, st_nlink: 1, st_blksize: 4096, ..Stat::default() },
            DevEntry::Link(t) => Stat { st_dev: DEVFS_DEV, st_ino: ino, st_mode: 0o120777, st_nlink: 1, st_size: t.len() as i64, st_blksize: 4096, ..Stat::default() },
            DevEntry::Dir => dir_stat(ino, 2),
        })
    }

    fn kind(&self) -> crate::vfs::Kind {
        use crate::vfs::Kind;
        match self.index.map(|i| &DEV_ENTRIES[i].1) {
            None | Some(DevEntry::Dir) => Kind::Dir,
            Some(DevEntry::Link(_)) => Kind::Symlink,
            Some(_) => Kind::CharDev,
        }
    }

    fn lookup(&self, name: &str) -> Result<alloc::sync::Arc<dyn crate::vfs::Inode>, Errno> {
        if self.index.is_some() {
            return if self.kind() == crate::vfs::Kind::Dir { Err(Errno::ENOENT) } else { Err(Errno::ENOTDIR) };
        }
        let i = DEV_ENTRIES.iter().position(|(n, _)| *n == name).ok_or(Errno::ENOENT)?;
        Ok(alloc::sync::Arc::new(DevNode { index: Some(i) }))
    }

    fn readlink(&self) -> Result<alloc::string::String, Errno> {
        match self.index.map(|i| &DEV_ENTRIES[i].1) {
            Some(DevEntry::Link(t)) => Ok((*t).into()),
            _ => Err(Errno::EINVAL),
        }
    }

    fn open(&self, _flags: u32) -> Result<alloc::boxed::Box<dyn FileOps>, Errno> {
        match self.index.map(|i| &DEV_ENTRIES[i].1) {
            Some(DevEntry::Dev(d)) => Ok(alloc::boxed::Box::new(DevFile::new(*d))),
            Some(DevEntry::Special(rdev)) if *rdev == (5 << 8) => controlling_tty(),
            Some(DevEntry::Special(_)) => super::pty::open_master(),
            Some(DevEntry::Link(_)) => Err(Errno::ELOOP),
            None | Some(DevEntry::Dir) => {
                let entries = self.readdir()?;
                Ok(alloc::boxed::Box::new(super::DirFile::new(entries, self.stat()?, "/dev")))
            }
        }
    }

    fn readdir(&self) -> Result<alloc::vec::Vec<crate::vfs::DirEntry>, Errno> {
        if self.index.is_some() {
            return Ok(alloc::vec::Vec::new());
        }
        Ok(DEV_ENTRIES
            .iter()
            .enumerate()
            .map(|(i, (n, _))| crate::vfs::DirEntry { name: (*n).into(), ino: i as u64 + 2, kind: DevNode { index: Some(i) }.kind() })
            .collect())
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}
