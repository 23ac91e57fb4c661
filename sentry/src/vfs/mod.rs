//! The virtual filesystem (Linux: fs/namei.c, fs/dcache.c, the inode and
//! file layers): filesystems expose `Inode`s, the walker resolves paths
//! component by component (symlinks, `..`, mount points) and opening an
//! inode gives a `FileOps` for the fd table.
//!
//! Filesystems: `fs::hostfs` (the host's files, read-only, through the
//! host interface), `fs::tmpfs` (memory), `fs::overlay` (a tmpfs upper
//! layer over a read-only lower one: the root of `rvisor do`), `fs::dev`,
//! `fs::proc`.
//!
//! Lock order: mount table, then a directory's own lock, then its
//! children's. No inode lock is held across a blocking wait.

pub mod perm;
pub mod walk;
pub mod xattr;

use core::sync::atomic::{AtomicU64, Ordering};

/// Bumped at every system call's entry: attributes a filesystem fetched
/// from the host during one call (a lookup's stat) may answer later
/// questions of the same call, never of another.
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// A new system call begins.
pub fn next_epoch() {
    EPOCH.fetch_add(1, Ordering::Relaxed);
}

/// The current system call's epoch.
pub fn epoch() -> u64 {
    EPOCH.load(Ordering::Relaxed)
}

use abi::linux::Stat;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::errno::Errno;
use crate::fs::FileOps;

/// File types, as in `st_mode & S_IFMT` and `d_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    CharDev,
    BlockDev,
    Fifo,
    Socket,
}

pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;

impl Kind {
    /// From `st_mode`.
    pub fn from_mode(mode: u32) -> Kind {
        match mode & S_IFMT {
            S_IFDIR => Kind::Dir,
            S_IFLNK => Kind::Symlink,
            S_IFCHR => Kind::CharDev,
            S_IFBLK => Kind::BlockDev,
            S_IFIFO => Kind::Fifo,
            S_IFSOCK => Kind::Socket,
            _ => Kind::File,
        }
    }

    /// The `S_IF*` bits.
    pub fn mode_bits(self) -> u32 {
        match self {
            Kind::Dir => S_IFDIR,
            Kind::File => S_IFREG,
            Kind::Symlink => S_IFLNK,
            Kind::CharDev => S_IFCHR,
            Kind::BlockDev => S_IFBLK,
            Kind::Fifo => S_IFIFO,
            Kind::Socket => S_IFSOCK,
        }
    }

    /// `d_type` for getdents64.
    pub fn dtype(self) -> u8 {
        match self {
            Kind::Fifo => 1,
            Kind::CharDev => 2,
            Kind::Dir => 4,
            Kind::BlockDev => 6,
            Kind::File => 8,
            Kind::Symlink => 10,
            Kind::Socket => 12,
        }
    }
}

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub ino: u64,
    pub kind: Kind,
}

/// Attribute changes (chmod, chown, truncate, utimens).
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    /// (seconds, nanoseconds).
    pub atime: Option<(i64, i64)>,
    pub mtime: Option<(i64, i64)>,
}

/// Who is creating something (owner of new inodes).
#[derive(Clone, Copy, Debug, Default)]
pub struct Creator {
    pub uid: u32,
    pub gid: u32,
}

/// What `Inode::lookup_path` found: the inodes of the leading components,
/// and the errno of the first component not found (None: all were).
pub type Found = (Vec<Arc<dyn Inode>>, Option<Errno>);

/// An inode. Operations a filesystem lacks get Linux's answer by default
/// (EROFS for mutations of read-only filesystems, ENOTDIR for directory
/// operations on non-directories...).
pub trait Inode: Send + Sync {
    /// Attributes.
    fn stat(&self) -> Result<Stat, Errno>;
    /// The file type (cheap: no host round trip where avoidable).
    fn kind(&self) -> Kind;
    /// Looks `name` up in this directory (`name` is one component, never
    /// "", "." or "..").
    fn lookup(&self, _name: &str) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::ENOTDIR)
    }
    /// Looks up several components at once (`names`: plain names, with no
    /// mount point among their paths), for a filesystem whose lookups
    /// are host round trips and that can batch them: the inodes of the
    /// leading components found, and the errno of the first one that was
    /// not (None: all found). None: no cheaper way than `lookup` each.
    fn lookup_path(&self, _names: &[&str]) -> Option<Found> {
        None
    }
    /// The target of a symlink.
    fn readlink(&self) -> Result<String, Errno> {
        Err(Errno::EINVAL)
    }
    /// Opens the inode for I/O with open(2) flags (O_TRUNC already applied
    /// by the caller through `setattr`).
    fn open(&self, flags: u32) -> Result<Box<dyn FileOps>, Errno>;
    /// Entries of this directory, without "." and "..".
    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        Err(Errno::ENOTDIR)
    }
    /// Creates `name` in this directory: a regular file, directory, fifo,
    /// socket or device node (`rdev`) with permission bits `mode`.
    fn create(&self, _name: &str, _kind: Kind, _mode: u32, _rdev: u64, _who: Creator) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::EROFS)
    }
    /// O_TMPFILE: a regular file in this directory's filesystem with no
    /// name; `linkable` (no O_EXCL) lets linkat name it later.
    fn tmpfile(&self, _mode: u32, _who: Creator, _linkable: bool) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Creates a symlink `name` → `target`.
    fn symlink(&self, _name: &str, _target: &str, _who: Creator) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::EROFS)
    }
    /// Creates a hard link `name` to `target` (an inode of this filesystem).
    fn link(&self, _name: &str, _target: &Arc<dyn Inode>) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }
    /// Removes `name` (a directory if `dir`, which must be empty).
    fn unlink(&self, _name: &str, _dir: bool) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }
    /// Moves `name` to `new_dir`/`new_name` (same filesystem). `flags`:
    /// RENAME_NOREPLACE (1), RENAME_EXCHANGE (2).
    fn rename(&self, _name: &str, _new_dir: &Arc<dyn Inode>, _new_name: &str, _flags: u32) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }
    /// Changes attributes.
    fn setattr(&self, _a: &SetAttr) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }
    /// The extended attribute `name` (namespace and permission already
    /// checked by `xattr`). Default: a filesystem that stores none.
    fn get_xattr(&self, _name: &str) -> Result<Vec<u8>, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Sets (`value` Some) or removes extended attribute `name`, with
    /// XATTR_CREATE / XATTR_REPLACE `flags`.
    fn set_xattr(&self, _name: &str, _value: Option<&[u8]>, _flags: u32) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Names of the extended attributes held.
    fn list_xattr(&self) -> Result<Vec<String>, Errno> {
        Ok(Vec::new())
    }
    /// statfs of the filesystem: Linux's 120-byte `struct statfs`; None
    /// where the filesystem has no numbers of its own (a generic answer).
    fn statfs(&self) -> Option<[u8; 120]> {
        None
    }
    /// A /proc/PID/fd/N link: the open file's own location, which a walk
    /// follows instead of the link's text (the file may have no name).
    fn magic_link(&self) -> Option<Location> {
        None
    }
    /// Identity for mount points and rename checks: (device, inode).
    fn id(&self) -> (u64, u64) {
        self.stat().map(|s| (s.st_dev, s.st_ino)).unwrap_or((0, 0))
    }
    /// For `rename`/`link` between inodes of the same filesystem: lets a
    /// filesystem recover its own type from `&dyn Inode`.
    fn as_any(&self) -> &dyn core::any::Any;
}

/// A resolved location: the inode and its canonical absolute path (after
/// symlinks), which /proc, getcwd and `..` at mount roots use.
#[derive(Clone)]
pub struct Location {
    pub inode: Arc<dyn Inode>,
    pub path: String,
}
