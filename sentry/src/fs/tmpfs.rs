//! tmpfs (Linux: mm/shmem.c used as a filesystem): files, directories,
//! symlinks and special nodes kept in the sentry's memory. One `Tmpfs` is
//! one filesystem with its own device number, inode numbers and byte
//! limit; it is also the writable upper layer of `fs::overlay`.
//!
//! Locking: every namespace mutation (create, link, unlink, rename) takes
//! the filesystem's `ns` lock first, so only one mutator ever holds more
//! than one directory lock at a time and lock order between directories
//! does not matter. Readers (lookup, readdir, getdents, stat) hold at most
//! one directory lock. An inode's `meta` lock is a leaf: nothing else is
//! locked while it is held. File data locks are never held across a user
//! memory copy (data goes through a kernel bounce buffer), so a page fault
//! path that holds the address space and reads a file cannot deadlock.

use abi::linux::Stat;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Bound;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use spin::Mutex;

use super::{FileOps, UserSeg, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use crate::errno::{Errno, SysResult};
use crate::kernel::task::Task;
use crate::vfs::{Creator, DirEntry, Inode, Kind, SetAttr};

/// Default byte limit of one filesystem (file data only).
pub const DEFAULT_LIMIT: u64 = 1 << 30;
/// Longest name (NAME_MAX).
pub const NAME_MAX: usize = 255;
/// Longest symlink target (PATH_MAX less the NUL).
const SYMLINK_MAX: usize = 4095;
/// Largest file size (Linux: MAX_LFS_FILESIZE).
const MAX_FILE_SIZE: u64 = i64::MAX as u64;
/// Linux tmpfs counts this many bytes per directory entry in st_size.
const BOGO_DIRENT_SIZE: u64 = 20;
/// Writes up to this size are gathered whole and applied under one lock,
/// so they are atomic with respect to other reads and writes; larger ones
/// go through a bounce buffer of this size, chunk by chunk, to bound the
/// extra memory a huge write needs.
const CHUNK: usize = 1 << 20;

pub const O_ACCMODE: u32 = 3;
pub const O_TRUNC: u32 = 0o1000;
pub const O_APPEND: u32 = 0o2000;
pub const O_PATH: u32 = 0o10000000;
pub const RENAME_NOREPLACE: u32 = 1;
pub const RENAME_EXCHANGE: u32 = 2;
const SEEK_SET: u32 = 0;
const SEEK_CUR: u32 = 1;
const SEEK_END: u32 = 2;
const SEEK_DATA: u32 = 3;
const SEEK_HOLE: u32 = 4;
const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_IXGRP: u32 = 0o010;

/// The current time as (seconds, nanoseconds).
#[cfg(not(test))]
fn now() -> (i64, i64) {
    let ns = crate::kernel::clock::realtime_ns();
    ((ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i64)
}

/// Unit tests cannot read the guest clock (it needs the TSC calibration
/// done through the host): a counter that only moves forward stands in,
/// so tests can still see that an operation updated a timestamp.
#[cfg(test)]
fn now() -> (i64, i64) {
    static FAKE: AtomicU64 = AtomicU64::new(1);
    (FAKE.fetch_add(1, Ordering::Relaxed) as i64, 0)
}

/// Checks a single path component given to a directory operation. The
/// walker already splits paths, but a bad name must never corrupt the
/// tree, so it is checked again here.
pub fn check_name(name: &str) -> Result<(), Errno> {
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    if name == "." || name == ".." || name.bytes().any(|b| b == b'/' || b == 0) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Writes one `linux_dirent64` record at the start of `buf`: d_ino (u64),
/// d_off (i64, the position of the next entry), d_reclen (u16), d_type
/// (u8), the name and a NUL, padded to 8 bytes. Returns the record length,
/// or None if it does not fit.
pub fn encode_dirent(buf: &mut [u8], ino: u64, next: u64, dtype: u8, name: &str) -> Option<usize> {
    let reclen = (19 + name.len() + 1).div_ceil(8) * 8;
    let rec = buf.get_mut(..reclen)?;
    rec.fill(0);
    rec[0..8].copy_from_slice(&ino.to_le_bytes());
    rec[8..16].copy_from_slice(&(next as i64).to_le_bytes());
    rec[16..18].copy_from_slice(&u16::try_from(reclen).ok()?.to_le_bytes());
    rec[18] = dtype;
    rec[19..19 + name.len()].copy_from_slice(name.as_bytes());
    Some(reclen)
}

/// State shared by every inode of one filesystem.
struct FsShared {
    dev: u64,
    next_ino: AtomicU64,
    /// Bytes of file data held.
    used: AtomicU64,
    limit: AtomicU64,
    /// Serializes namespace mutations (Linux: s_vfs_rename_mutex and the
    /// directory i_rwsems, collapsed into one lock).
    ns: Mutex<()>,
}

impl FsShared {
    /// Takes up to `want` bytes of the budget; returns how many it got.
    fn reserve_upto(&self, want: u64) -> u64 {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            let got = want.min(self.limit.load(Ordering::Relaxed).saturating_sub(cur));
            if got == 0 {
                return 0;
            }
            match self.used.compare_exchange_weak(cur, cur + got, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return got,
                Err(v) => cur = v,
            }
        }
    }

    /// Takes exactly `want` bytes or nothing.
    fn reserve(&self, want: u64) -> Result<(), Errno> {
        let got = self.reserve_upto(want);
        if got < want {
            self.release(got);
            return Err(Errno::ENOSPC);
        }
        Ok(())
    }

    fn release(&self, n: u64) {
        // Saturating: accounting must never wrap even if a bug double-frees.
        let _ = self.used.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |u| Some(u.saturating_sub(n)));
    }
}

/// A tmpfs filesystem.
pub struct Tmpfs {
    fs: Arc<FsShared>,
    root: Arc<TmpInode>,
}

impl Tmpfs {
    /// A new empty filesystem on device `dev` whose root directory has
    /// permission bits `root_mode` and owner `who`; default byte limit.
    pub fn new(dev: u64, root_mode: u32, who: Creator) -> Arc<Tmpfs> {
        Tmpfs::with_limit(dev, root_mode, who, DEFAULT_LIMIT)
    }

    /// As `new`, holding at most `limit` bytes of file data.
    pub fn with_limit(dev: u64, root_mode: u32, who: Creator, limit: u64) -> Arc<Tmpfs> {
        // File pages are frames: unit tests need the fake physical memory.
        #[cfg(test)]
        crate::mm::phys::testmem::init();
        let fs = Arc::new(FsShared {
            dev,
            next_ino: AtomicU64::new(1),
            used: AtomicU64::new(0),
            limit: AtomicU64::new(limit),
            ns: Mutex::new(()),
        });
        let root = TmpInode::alloc(&fs, Kind::Dir, root_mode, 0, who, Weak::new(), String::new());
        Arc::new(Tmpfs { fs, root })
    }

    /// The root directory.
    pub fn root(&self) -> Arc<dyn Inode> {
        self.root.clone()
    }

    /// The root directory as its concrete type.
    pub fn root_inode(&self) -> Arc<TmpInode> {
        self.root.clone()
    }

    /// The device number.
    pub fn dev(&self) -> u64 {
        self.fs.dev
    }

    /// Changes the byte limit (existing data above it stays).
    pub fn set_limit(&self, limit: u64) {
        self.fs.limit.store(limit, Ordering::Relaxed);
    }

    /// Bytes of file data held.
    pub fn used(&self) -> u64 {
        self.fs.used.load(Ordering::Relaxed)
    }

    /// Bytes still available under the limit.
    pub fn available(&self) -> u64 {
        self.fs.limit.load(Ordering::Relaxed).saturating_sub(self.used())
    }
}

/// Attributes that change.
struct Meta {
    /// Permission bits only (0o7777); the type is `TmpInode::kind`.
    mode: u32,
    uid: u32,
    gid: u32,
    /// Links of a non-directory (directories compute theirs).
    nlink: u64,
    atime: (i64, i64),
    mtime: (i64, i64),
    ctime: (i64, i64),
}

struct DirData {
    children: BTreeMap<String, Arc<TmpInode>>,
    /// The containing directory (empty for the root): "..", and the walk
    /// up for rename's "into its own subtree" check.
    parent: Weak<TmpInode>,
    /// Child directories, for st_nlink (2 + subdirectories).
    subdirs: u64,
    /// Removed by rmdir (or replaced by rename): no new entries, nlink 0.
    removed: bool,
}

enum Body {
    Dir(Mutex<DirData>),
    File(Mutex<FileData>),
    Symlink(String),
    /// Fifos, sockets and device nodes: attributes only.
    Special,
}

/// A regular file's bytes: page frames of a shared memory object (so
/// MAP_SHARED mappings see the file and the file sees their writes), and
/// the size.
struct FileData {
    obj: Arc<crate::mm::shared::SharedMem>,
    size: u64,
    /// F_SEAL_* bits (memfd; other files are born sealed against sealing).
    seals: u32,
}

pub const F_SEAL_SEAL: u32 = 1;
pub const F_SEAL_SHRINK: u32 = 2;
pub const F_SEAL_GROW: u32 = 4;
pub const F_SEAL_WRITE: u32 = 8;
pub const F_SEAL_FUTURE_WRITE: u32 = 0x10;
pub const F_SEAL_EXEC: u32 = 0x20;
const ALL_SEALS: u32 = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE | F_SEAL_EXEC;

impl FileData {
    fn new() -> FileData {
        FileData { obj: crate::mm::shared::SharedMem::new(0), size: 0, seals: F_SEAL_SEAL }
    }

    fn len(&self) -> usize {
        self.size as usize
    }
}

/// One tmpfs inode.
pub struct TmpInode {
    fs: Arc<FsShared>,
    /// This inode's own Arc, for `open` and `as_any` users that need an
    /// owning reference from `&self`.
    me: Weak<TmpInode>,
    ino: u64,
    kind: Kind,
    rdev: u64,
    /// The overlay's "opaque directory" mark (what trusted.overlay.opaque
    /// is to Linux overlayfs); tmpfs itself ignores it.
    opaque: AtomicBool,
    /// An O_TMPFILE file (no name yet) that linkat may still give a name
    /// (Linux: I_LINKABLE); cleared by the first link.
    linkable: AtomicBool,
    meta: Mutex<Meta>,
    body: Body,
    xattrs: crate::vfs::xattr::Store,
}

impl TmpInode {
    fn alloc(fs: &Arc<FsShared>, kind: Kind, mode: u32, rdev: u64, who: Creator, parent: Weak<TmpInode>, target: String) -> Arc<TmpInode> {
        let t = now();
        let body = match kind {
            Kind::Dir => Body::Dir(Mutex::new(DirData { children: BTreeMap::new(), parent, subdirs: 0, removed: false })),
            Kind::File => Body::File(Mutex::new(FileData::new())),
            Kind::Symlink => Body::Symlink(target),
            _ => Body::Special,
        };
        let rdev = if matches!(kind, Kind::CharDev | Kind::BlockDev) { rdev } else { 0 };
        Arc::new_cyclic(|me| TmpInode {
            fs: fs.clone(),
            me: me.clone(),
            ino: fs.next_ino.fetch_add(1, Ordering::Relaxed),
            kind,
            rdev,
            opaque: AtomicBool::new(false),
            linkable: AtomicBool::new(false),
            meta: Mutex::new(Meta { mode: mode & 0o7777, uid: who.uid, gid: who.gid, nlink: 1, atime: t, mtime: t, ctime: t }),
            body,
            xattrs: crate::vfs::xattr::Store::default(),
        })
    }

    /// An owning reference to this inode (inodes only ever live in Arcs).
    fn arc(&self) -> Result<Arc<TmpInode>, Errno> {
        self.me.upgrade().ok_or(Errno::ENOENT)
    }

    fn dir(&self) -> Result<&Mutex<DirData>, Errno> {
        match &self.body {
            Body::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    /// The inode number.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The device number of a device node.
    pub fn rdev(&self) -> u64 {
        self.rdev
    }

    /// An overlay whiteout: a character device 0:0, as Linux overlayfs.
    pub fn is_whiteout(&self) -> bool {
        self.kind == Kind::CharDev && self.rdev == 0
    }

    /// Marked opaque by the overlay.
    pub fn is_opaque(&self) -> bool {
        self.opaque.load(Ordering::Acquire)
    }

    /// Sets the overlay's opaque mark.
    pub fn set_opaque(&self, v: bool) {
        self.opaque.store(v, Ordering::Release);
    }

    /// Bytes of a regular file (0 for others).
    pub fn size(&self) -> u64 {
        match &self.body {
            Body::File(d) => d.lock().len() as u64,
            _ => 0,
        }
    }

    fn touch_mc(&self) {
        let t = now();
        let mut m = self.meta.lock();
        m.mtime = t;
        m.ctime = t;
    }

    fn touch_c(&self) {
        self.meta.lock().ctime = now();
    }

    /// Looks `name` up, as the concrete type.
    pub fn child(&self, name: &str) -> Result<Arc<TmpInode>, Errno> {
        let d = self.dir()?;
        check_name(name)?;
        d.lock().children.get(name).cloned().ok_or(Errno::ENOENT)
    }

    /// The entries of a directory with their inodes (for the overlay,
    /// which needs to tell whiteouts and opaque directories apart).
    pub fn children(&self) -> Result<Vec<(String, Arc<TmpInode>)>, Errno> {
        let d = self.dir()?.lock();
        Ok(d.children.iter().map(|(n, c)| (n.clone(), c.clone())).collect())
    }

    /// Inserts a new inode under `name` (namespace lock held by caller).
    fn insert_new(&self, name: &str, kind: Kind, mode: u32, rdev: u64, who: Creator, target: String) -> Result<Arc<TmpInode>, Errno> {
        let d = self.dir()?;
        check_name(name)?;
        let (pmode, pgid) = {
            let m = self.meta.lock();
            (m.mode, m.gid)
        };
        let mut mode = mode & 0o7777;
        let mut who = who;
        // BSD group semantics of a setgid directory: new entries take its
        // group, and new subdirectories inherit the bit.
        if pmode & S_ISGID != 0 {
            who.gid = pgid;
            if kind == Kind::Dir {
                mode |= S_ISGID;
            }
        }
        {
            let dd = d.lock();
            if dd.removed {
                return Err(Errno::ENOENT);
            }
            if dd.children.contains_key(name) {
                return Err(Errno::EEXIST);
            }
        }
        let parent = if kind == Kind::Dir { self.me.clone() } else { Weak::new() };
        let node = TmpInode::alloc(&self.fs, kind, mode, rdev, who, parent, target);
        {
            let mut dd = d.lock();
            dd.children.insert(name.into(), node.clone());
            if kind == Kind::Dir {
                dd.subdirs += 1;
            }
        }
        self.touch_mc();
        Ok(node)
    }

    /// `Inode::create`, returning the concrete type.
    pub fn create_node(&self, name: &str, kind: Kind, mode: u32, rdev: u64, who: Creator) -> Result<Arc<TmpInode>, Errno> {
        self.dir()?;
        if kind == Kind::Symlink {
            return Err(Errno::EINVAL);
        }
        let _ns = self.fs.ns.lock();
        self.insert_new(name, kind, mode, rdev, who, String::new())
    }

    /// `Inode::tmpfile`, returning the concrete type: a regular file with
    /// no name (nlink 0), owned like a file created here.
    pub fn tmpfile_node(&self, mode: u32, who: Creator, linkable: bool) -> Result<Arc<TmpInode>, Errno> {
        let d = self.dir()?;
        let _ns = self.fs.ns.lock();
        if d.lock().removed {
            return Err(Errno::ENOENT);
        }
        let mut who = who;
        {
            let m = self.meta.lock();
            if m.mode & S_ISGID != 0 {
                who.gid = m.gid;
            }
        }
        let node = TmpInode::alloc(&self.fs, Kind::File, mode, 0, who, Weak::new(), String::new());
        node.meta.lock().nlink = 0;
        node.linkable.store(linkable, Ordering::Relaxed);
        Ok(node)
    }

    /// `Inode::symlink`, returning the concrete type.
    pub fn symlink_node(&self, name: &str, target: &str, who: Creator) -> Result<Arc<TmpInode>, Errno> {
        self.dir()?;
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.len() > SYMLINK_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let _ns = self.fs.ns.lock();
        self.insert_new(name, Kind::Symlink, 0o777, 0, who, target.into())
    }

    /// A read(2) of the file: its access time moves as under Linux's
    /// default relatime (tar, find -atime and mail readers look at it):
    /// only when it is not newer than the last change, or a day old, so
    /// most reads of a file leave it alone.
    fn accessed(&self) {
        let mut m = self.meta.lock();
        let now = now();
        if m.atime <= m.mtime || m.atime <= m.ctime || now.0.saturating_sub(m.atime.0) >= 24 * 3600 {
            m.atime = now;
        }
    }

    /// Reads file bytes at `off` into `buf`; 0 at or past the end.
    pub fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let d = match &self.body {
            Body::File(d) => d.lock(),
            Body::Dir(_) => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        };
        if off >= d.size {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(d.size - off) as usize;
        d.obj.read(off, &mut buf[..n]);
        Ok(n)
    }

    /// fcntl F_GET_SEALS (`add` 0) and F_ADD_SEALS: the seals after.
    pub fn seals(&self, add: u32) -> Result<u32, Errno> {
        let Body::File(d) = &self.body else { return Err(Errno::EINVAL) };
        let mut d = d.lock();
        if add & !ALL_SEALS != 0 {
            return Err(Errno::EINVAL);
        }
        if add != 0 {
            if d.seals & F_SEAL_SEAL != 0 {
                return Err(Errno::EPERM);
            }
            d.seals |= add;
        }
        Ok(d.seals)
    }

    /// The shared memory object holding a regular file's pages (for
    /// MAP_SHARED mappings).
    pub fn shared_mem(&self) -> Option<Arc<crate::mm::shared::SharedMem>> {
        match &self.body {
            Body::File(d) => Some(d.lock().obj.clone()),
            _ => None,
        }
    }

    /// Writes `data` at `off` (at the end if `append`), growing the file
    /// (a gap is zero-filled). Returns (bytes written, where they went).
    /// Short when the filesystem fills up; ENOSPC if nothing fits.
    pub fn write_at(&self, off: u64, data: &[u8], append: bool) -> Result<(usize, u64), Errno> {
        let mut d = match &self.body {
            Body::File(d) => d.lock(),
            Body::Dir(_) => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        };
        let off = if append { d.len() as u64 } else { off };
        if d.seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 {
            return Err(Errno::EPERM);
        }
        if data.is_empty() {
            return Ok((0, off));
        }
        if off >= MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let len = (data.len() as u64).min(MAX_FILE_SIZE - off);
        let cur = d.len() as u64;
        let mut end = off + len;
        if end > cur && d.seals & F_SEAL_GROW != 0 {
            return Err(Errno::EPERM);
        }
        if end > cur {
            let got = self.fs.reserve_upto(end - cur);
            end = cur + got;
            if end <= off {
                // Only (part of) the hole fitted: nothing of the data.
                self.fs.release(got);
                return Err(Errno::ENOSPC);
            }
            // Running out of frames is "no space", never an abort.
            if let Err(e) = d.obj.write(off, &data[..(end - off) as usize]) {
                d.obj.cut(cur);
                self.fs.release(got);
                return Err(e);
            }
            d.size = end;
        } else {
            d.obj.write(off, &data[..(end - off) as usize])?;
        }
        drop(d);
        self.touch_mc();
        Ok(((end - off) as usize, off))
    }

    /// Sets a regular file's size: cuts or zero-extends it.
    fn truncate(&self, size: u64) -> Result<(), Errno> {
        let mut d = match &self.body {
            Body::File(d) => d.lock(),
            Body::Dir(_) => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        };
        if size > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let cur = d.size;
        if (size > cur && d.seals & F_SEAL_GROW != 0) || (size < cur && d.seals & F_SEAL_SHRINK != 0) {
            return Err(Errno::EPERM);
        }
        if size > cur {
            // The size counts against the limit, holes included (they
            // take no frames until written, but may be).
            self.fs.reserve(size - cur)?;
            d.size = size;
        } else if size < cur {
            d.obj.cut(size);
            d.size = size;
            self.fs.release(cur - size);
        }
        Ok(())
    }

    /// Whether `self` is `d` or one of its ancestors (the namespace lock
    /// keeps parent links stable during the walk).
    fn is_ancestor_of(&self, d: &Arc<TmpInode>) -> bool {
        let mut cur = d.clone();
        loop {
            if core::ptr::eq(Arc::as_ptr(&cur), self) {
                return true;
            }
            let next = match &cur.body {
                Body::Dir(dd) => dd.lock().parent.upgrade(),
                _ => None,
            };
            match next {
                Some(p) => cur = p,
                None => return false,
            }
        }
    }

    fn dir_is_empty(&self) -> bool {
        match &self.body {
            Body::Dir(d) => d.lock().children.is_empty(),
            _ => true,
        }
    }

    /// Marks a directory gone (rmdir, or replaced by rename).
    fn mark_removed(&self) {
        if let Body::Dir(d) = &self.body {
            let mut d = d.lock();
            d.removed = true;
            d.parent = Weak::new();
        }
        self.touch_c();
    }

    /// One fewer name for a non-directory.
    fn drop_link(&self) {
        let mut m = self.meta.lock();
        m.nlink = m.nlink.saturating_sub(1);
        m.ctime = now();
    }

    fn set_parent(&self, p: &Arc<TmpInode>) {
        if let Body::Dir(d) = &self.body {
            d.lock().parent = Arc::downgrade(p);
        }
    }

    /// Opens for I/O, recording `path` for `FileOps::path`.
    pub fn open_file(&self, flags: u32, path: &str) -> Result<TmpFile, Errno> {
        let inode = self.arc()?;
        let (readable, writable) = if flags & O_PATH != 0 {
            (false, false)
        } else {
            match self.kind {
                Kind::Symlink => return Err(Errno::ELOOP),
                // No driver behind device nodes, fifos or sockets in tmpfs yet.
                Kind::CharDev | Kind::BlockDev | Kind::Fifo | Kind::Socket => return Err(Errno::ENXIO),
                Kind::Dir | Kind::File => {}
            }
            match flags & O_ACCMODE {
                0 => (true, false),
                1 => (false, true),
                2 => (true, true),
                _ => return Err(Errno::EINVAL),
            }
        };
        Ok(TmpFile {
            inode,
            pos: Mutex::new(0),
            cursor: Mutex::new(None),
            readable,
            writable,
            append: flags & O_APPEND != 0,
            path: path.into(),
        })
    }
}

/// The internal filesystem behind memfd_create (Linux: the shm mount).
static MEMFD_FS: spin::Once<Arc<Tmpfs>> = spin::Once::new();
static MEMFD_SEQ: AtomicU64 = AtomicU64::new(0);
/// Its device number (apart from the mounted filesystems').
const MEMFD_DEV: u64 = 0x29;

/// memfd_create: a new unlinked, read-write file named `memfd:NAME`
/// whose pages are guest memory, with sealing allowed or not.
pub fn memfd(name: &str, who: Creator, allow_sealing: bool) -> Result<(Arc<TmpInode>, TmpFile), Errno> {
    // Sized by guest memory, not by a mount's size= option.
    let fs = MEMFD_FS.call_once(|| Tmpfs::with_limit(MEMFD_DEV, 0o1777, Creator { uid: 0, gid: 0 }, MAX_FILE_SIZE));
    let root = fs.root_inode();
    let slot = alloc::format!("{}", MEMFD_SEQ.fetch_add(1, Ordering::Relaxed));
    let node = root.create_node(&slot, Kind::File, 0o777, 0, who)?;
    root.unlink(&slot, false)?;
    if allow_sealing {
        if let Body::File(d) = &node.body {
            d.lock().seals = 0;
        }
    }
    let file = node.open_file(2, &alloc::format!("/memfd:{name} (deleted)"))?;
    Ok((node, file))
}

impl Drop for TmpInode {
    fn drop(&mut self) {
        match &mut self.body {
            Body::File(d) => self.fs.release(d.get_mut().size),
            Body::Dir(d) => {
                // Tear a tree down iteratively: dropping nested directories
                // recursively could overflow the kernel stack.
                let mut stack: Vec<Arc<TmpInode>> = core::mem::take(&mut d.get_mut().children).into_values().collect();
                while let Some(c) = stack.pop() {
                    if let Some(mut inner) = Arc::into_inner(c) {
                        if let Body::Dir(cd) = &mut inner.body {
                            stack.extend(core::mem::take(&mut cd.get_mut().children).into_values());
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

impl Inode for TmpInode {
    fn stat(&self) -> Result<Stat, Errno> {
        let (size, blocks, dir_nlink) = match &self.body {
            Body::File(d) => {
                let n = d.lock().len() as u64;
                // Whole pages are allocated, as tmpfs reports.
                (n, n.div_ceil(4096) * 8, None)
            }
            Body::Dir(d) => {
                let d = d.lock();
                let nlink = if d.removed { 0 } else { 2 + d.subdirs };
                ((d.children.len() as u64 + 2) * BOGO_DIRENT_SIZE, 0, Some(nlink))
            }
            Body::Symlink(t) => (t.len() as u64, 0, None),
            Body::Special => (0, 0, None),
        };
        let m = self.meta.lock();
        Ok(Stat {
            st_dev: self.fs.dev,
            st_ino: self.ino,
            st_nlink: dir_nlink.unwrap_or(m.nlink),
            st_mode: self.kind.mode_bits() | m.mode,
            st_uid: m.uid,
            st_gid: m.gid,
            st_rdev: self.rdev,
            st_size: size as i64,
            st_blksize: 4096,
            st_blocks: blocks as i64,
            st_atime: m.atime.0,
            st_atime_nsec: m.atime.1,
            st_mtime: m.mtime.0,
            st_mtime_nsec: m.mtime.1,
            st_ctime: m.ctime.0,
            st_ctime_nsec: m.ctime.1,
            ..Stat::default()
        })
    }

    fn kind(&self) -> Kind {
        self.kind
    }

    fn lookup(&self, name: &str) -> Result<Arc<dyn Inode>, Errno> {
        self.child(name).map(|c| c as Arc<dyn Inode>)
    }

    fn readlink(&self) -> Result<String, Errno> {
        match &self.body {
            Body::Symlink(t) => Ok(t.clone()),
            _ => Err(Errno::EINVAL),
        }
    }

    fn open(&self, flags: u32) -> Result<Box<dyn FileOps>, Errno> {
        Ok(Box::new(self.open_file(flags, "tmpfs")?))
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        let d = self.dir()?.lock();
        Ok(d.children.iter().map(|(n, c)| DirEntry { name: n.clone(), ino: c.ino, kind: c.kind }).collect())
    }

    fn create(&self, name: &str, kind: Kind, mode: u32, rdev: u64, who: Creator) -> Result<Arc<dyn Inode>, Errno> {
        self.create_node(name, kind, mode, rdev, who).map(|c| c as Arc<dyn Inode>)
    }

    fn symlink(&self, name: &str, target: &str, who: Creator) -> Result<Arc<dyn Inode>, Errno> {
        self.symlink_node(name, target, who).map(|c| c as Arc<dyn Inode>)
    }

    fn link(&self, name: &str, target: &Arc<dyn Inode>) -> Result<(), Errno> {
        let d = self.dir()?;
        check_name(name)?;
        let t = target.as_any().downcast_ref::<TmpInode>().ok_or(Errno::EXDEV)?;
        if !Arc::ptr_eq(&t.fs, &self.fs) {
            return Err(Errno::EXDEV);
        }
        if t.kind == Kind::Dir {
            return Err(Errno::EPERM);
        }
        let t = t.arc()?;
        let _ns = self.fs.ns.lock();
        // A name that was unlinked cannot be brought back (no O_TMPFILE yet).
        if t.meta.lock().nlink == 0 && !t.linkable.load(Ordering::Relaxed) {
            return Err(Errno::ENOENT);
        }
        {
            let mut dd = d.lock();
            if dd.removed {
                return Err(Errno::ENOENT);
            }
            if dd.children.contains_key(name) {
                return Err(Errno::EEXIST);
            }
            dd.children.insert(name.into(), t.clone());
        }
        {
            let mut m = t.meta.lock();
            m.nlink += 1;
            m.ctime = now();
        }
        t.linkable.store(false, Ordering::Relaxed);
        self.touch_mc();
        Ok(())
    }

    fn unlink(&self, name: &str, dir: bool) -> Result<(), Errno> {
        let d = self.dir()?;
        check_name(name)?;
        let _ns = self.fs.ns.lock();
        let child = d.lock().children.get(name).cloned().ok_or(Errno::ENOENT)?;
        if dir {
            if child.kind != Kind::Dir {
                return Err(Errno::ENOTDIR);
            }
            if !child.dir_is_empty() {
                return Err(Errno::ENOTEMPTY);
            }
        } else if child.kind == Kind::Dir {
            return Err(Errno::EISDIR);
        }
        {
            let mut dd = d.lock();
            dd.children.remove(name);
            if dir {
                dd.subdirs = dd.subdirs.saturating_sub(1);
            }
        }
        if dir {
            child.mark_removed();
        } else {
            child.drop_link();
        }
        self.touch_mc();
        Ok(())
    }

    fn rename(&self, name: &str, new_dir: &Arc<dyn Inode>, new_name: &str, flags: u32) -> Result<(), Errno> {
        if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0 || flags == RENAME_NOREPLACE | RENAME_EXCHANGE {
            return Err(Errno::EINVAL);
        }
        let sd = self.dir()?;
        check_name(name)?;
        check_name(new_name)?;
        let nd_ref = new_dir.as_any().downcast_ref::<TmpInode>().ok_or(Errno::EXDEV)?;
        if !Arc::ptr_eq(&nd_ref.fs, &self.fs) {
            return Err(Errno::EXDEV);
        }
        let dd = nd_ref.dir()?;
        let nd = nd_ref.arc()?;
        let me = self.arc()?;
        let same_dir = Arc::ptr_eq(&nd, &me);
        let _ns = self.fs.ns.lock();
        let src = sd.lock().children.get(name).cloned().ok_or(Errno::ENOENT)?;
        let dst = dd.lock().children.get(new_name).cloned();
        if dd.lock().removed {
            return Err(Errno::ENOENT);
        }
        if let Some(t) = &dst {
            // Two names of one inode: Linux does nothing and succeeds.
            if Arc::ptr_eq(t, &src) {
                return Ok(());
            }
        }
        let exchange = flags & RENAME_EXCHANGE != 0;
        if exchange {
            let Some(t) = &dst else { return Err(Errno::ENOENT) };
            if (src.kind == Kind::Dir && src.is_ancestor_of(&nd)) || (t.kind == Kind::Dir && t.is_ancestor_of(&me)) {
                return Err(Errno::EINVAL);
            }
        } else {
            if flags & RENAME_NOREPLACE != 0 && dst.is_some() {
                return Err(Errno::EEXIST);
            }
            if src.kind == Kind::Dir && src.is_ancestor_of(&nd) {
                return Err(Errno::EINVAL);
            }
            match &dst {
                Some(t) if src.kind == Kind::Dir && t.kind != Kind::Dir => return Err(Errno::ENOTDIR),
                Some(t) if src.kind != Kind::Dir && t.kind == Kind::Dir => return Err(Errno::EISDIR),
                Some(t) if t.kind == Kind::Dir && !t.dir_is_empty() => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
        }
        // Both directory maps change under their locks held together, so a
        // lookup sees either the old or the new state of each name.
        {
            let mut s = sd.lock();
            let mut d2 = if same_dir { None } else { Some(dd.lock()) };
            let is_dir = |n: &Arc<TmpInode>| u64::from(n.kind == Kind::Dir);
            if exchange {
                let Some(t) = dst.clone() else { return Err(Errno::ENOENT) };
                s.children.insert(name.into(), t.clone());
                match d2.as_mut() {
                    Some(d2) => {
                        d2.children.insert(new_name.into(), src.clone());
                        s.subdirs = (s.subdirs + is_dir(&t)).saturating_sub(is_dir(&src));
                        d2.subdirs = (d2.subdirs + is_dir(&src)).saturating_sub(is_dir(&t));
                    }
                    None => {
                        s.children.insert(new_name.into(), src.clone());
                    }
                }
            } else {
                s.children.remove(name);
                s.subdirs = s.subdirs.saturating_sub(is_dir(&src));
                let target = d2.as_deref_mut().unwrap_or(&mut *s);
                if let Some(old) = target.children.insert(new_name.into(), src.clone()) {
                    target.subdirs = target.subdirs.saturating_sub(is_dir(&old));
                }
                target.subdirs += is_dir(&src);
            }
        }
        if exchange {
            if let Some(t) = &dst {
                t.set_parent(&me);
                t.touch_c();
            }
        } else if let Some(t) = &dst {
            if t.kind == Kind::Dir {
                t.mark_removed();
            } else {
                t.drop_link();
            }
        }
        src.set_parent(&nd);
        src.touch_c();
        self.touch_mc();
        if !same_dir {
            nd.touch_mc();
        }
        Ok(())
    }

    fn setattr(&self, a: &SetAttr) -> Result<(), Errno> {
        if let Some(size) = a.size {
            self.truncate(size)?;
        }
        let t = now();
        let mut m = self.meta.lock();
        if a.uid.is_some() || a.gid.is_some() {
            if let Some(u) = a.uid {
                m.uid = u;
            }
            if let Some(g) = a.gid {
                m.gid = g;
            }
            // chown strips set-id bits from non-directories (an explicit
            // mode below still wins).
            if self.kind != Kind::Dir {
                m.mode &= !S_ISUID;
                if m.mode & S_IXGRP != 0 {
                    m.mode &= !S_ISGID;
                }
            }
        }
        if let Some(mode) = a.mode {
            m.mode = mode & 0o7777;
        }
        if let Some(at) = a.atime {
            m.atime = at;
        }
        if let Some(mt) = a.mtime {
            m.mtime = mt;
        } else if a.size.is_some() {
            m.mtime = t;
        }
        m.ctime = t;
        Ok(())
    }

    fn tmpfile(&self, mode: u32, who: Creator, linkable: bool) -> Result<Arc<dyn Inode>, Errno> {
        Ok(self.tmpfile_node(mode, who, linkable)?)
    }

    fn get_xattr(&self, name: &str) -> Result<Vec<u8>, Errno> {
        self.xattrs.get(name)
    }

    fn set_xattr(&self, name: &str, value: Option<&[u8]>, flags: u32) -> Result<(), Errno> {
        self.xattrs.set(name, value, flags)?;
        self.touch_c();
        Ok(())
    }

    fn list_xattr(&self) -> Result<Vec<String>, Errno> {
        Ok(self.xattrs.names())
    }

    fn id(&self) -> (u64, u64) {
        (self.fs.dev, self.ino)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

/// An open tmpfs file or directory.
pub struct TmpFile {
    inode: Arc<TmpInode>,
    /// File offset; for directories, the index of the next entry
    /// (0 ".", 1 "..", 2.. the children in name order).
    pos: Mutex<u64>,
    /// Directories: (position, name of the entry before it), so getdents
    /// resumes after a name rather than by counting, which stays right
    /// when entries before it are added or removed between calls.
    cursor: Mutex<Option<(u64, String)>>,
    readable: bool,
    writable: bool,
    /// O_APPEND at open (F_SETFL changes are not seen: FileOps has no hook).
    append: bool,
    path: String,
}

impl TmpFile {
    /// The inode.
    pub fn inode(&self) -> &Arc<TmpInode> {
        &self.inode
    }

    /// Runs `f` on the position to use: `off` for pread/pwrite, else the
    /// file offset, held locked so concurrent read/write calls on one open
    /// file each see and advance it whole (Linux: f_pos_lock).
    fn with_pos<R>(&self, off: Option<u64>, f: impl FnOnce(&mut u64) -> Result<R, Errno>) -> Result<R, Errno> {
        match off {
            Some(o) => {
                let mut p = o;
                f(&mut p)
            }
            None => f(&mut self.pos.lock()),
        }
    }

    fn check_read(&self) -> Result<(), Errno> {
        if self.inode.kind == Kind::Dir {
            return Err(Errno::EISDIR);
        }
        if !self.readable {
            return Err(Errno::EBADF);
        }
        Ok(())
    }

    fn check_write(&self) -> Result<(), Errno> {
        if self.inode.kind == Kind::Dir {
            return Err(Errno::EISDIR);
        }
        if !self.writable {
            return Err(Errno::EBADF);
        }
        Ok(())
    }

    /// read(2)/pread(2) into a kernel buffer: the logic of `read` without
    /// user memory.
    pub fn read_buf(&self, buf: &mut [u8], off: Option<u64>) -> Result<usize, Errno> {
        self.check_read()?;
        self.with_pos(off, |pos| {
            let n = self.inode.read_at(*pos, buf)?;
            *pos += n as u64;
            Ok(n)
        })
    }

    /// write(2)/pwrite(2) from a kernel buffer. With O_APPEND every write
    /// goes to the end (pwrite too, as on Linux) and the offset follows.
    pub fn write_buf(&self, data: &[u8], off: Option<u64>) -> Result<usize, Errno> {
        self.check_write()?;
        self.with_pos(off, |pos| {
            let (n, at) = self.inode.write_at(*pos, data, self.append)?;
            *pos = at + n as u64;
            Ok(n)
        })
    }

    /// lseek(2).
    pub fn seek_to(&self, off: i64, whence: u32) -> Result<u64, Errno> {
        let mut pos = self.pos.lock();
        let cur = i64::try_from(*pos).map_err(|_| Errno::EOVERFLOW)?;
        let new = if self.inode.kind == Kind::Dir {
            match whence {
                SEEK_SET => off,
                SEEK_CUR => cur.checked_add(off).ok_or(Errno::EINVAL)?,
                _ => return Err(Errno::EINVAL),
            }
        } else {
            let size = self.inode.size() as i64;
            match whence {
                SEEK_SET => off,
                SEEK_CUR => cur.checked_add(off).ok_or(Errno::EINVAL)?,
                SEEK_END => size.checked_add(off).ok_or(Errno::EINVAL)?,
                // Everything is data: no holes are tracked.
                SEEK_DATA | SEEK_HOLE => {
                    // As shmem_file_llseek: no data before the start either.
                    if off < 0 {
                        return Err(Errno::ENXIO);
                    }
                    if off >= size {
                        return Err(Errno::ENXIO);
                    }
                    if whence == SEEK_DATA {
                        off
                    } else {
                        size
                    }
                }
                _ => return Err(Errno::EINVAL),
            }
        };
        if new < 0 {
            return Err(Errno::EINVAL);
        }
        *pos = new as u64;
        if self.inode.kind == Kind::Dir {
            *self.cursor.lock() = None;
        }
        Ok(new as u64)
    }

    /// getdents64 of a directory: records from the current position,
    /// d_off = the index of the following entry.
    fn dirents(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        let d = self.inode.dir()?;
        // An O_PATH descriptor has no access to the contents.
        if !self.readable {
            return Err(Errno::EBADF);
        }
        let mut pos = self.pos.lock();
        let mut cursor = self.cursor.lock();
        let mut idx = *pos;
        let mut at = 0;
        let mut no_room = false;
        if idx == 0 {
            match encode_dirent(&mut buf[at..], self.inode.ino, 1, Kind::Dir.dtype(), ".") {
                Some(n) => {
                    at += n;
                    idx = 1;
                }
                None => no_room = true,
            }
        }
        if idx == 1 && !no_room {
            let parent = d.lock().parent.upgrade().map_or(self.inode.ino, |p| p.ino);
            match encode_dirent(&mut buf[at..], parent, 2, Kind::Dir.dtype(), "..") {
                Some(n) => {
                    at += n;
                    idx = 2;
                }
                None => no_room = true,
            }
        }
        if idx >= 2 && !no_room {
            let dd = d.lock();
            let iter: Box<dyn Iterator<Item = (&String, &Arc<TmpInode>)>> = match &*cursor {
                Some((ci, last)) if *ci == idx => Box::new(dd.children.range::<str, _>((Bound::Excluded(last.as_str()), Bound::Unbounded))),
                _ => Box::new(dd.children.iter().skip(usize::try_from(idx - 2).unwrap_or(usize::MAX))),
            };
            let mut last = None;
            for (name, c) in iter {
                match encode_dirent(&mut buf[at..], c.ino, idx + 1, c.kind.dtype(), name) {
                    Some(n) => {
                        at += n;
                        idx += 1;
                        last = Some(name);
                    }
                    None => {
                        no_room = true;
                        break;
                    }
                }
            }
            if let Some(l) = last {
                *cursor = Some((idx, l.clone()));
            }
        }
        if at == 0 && no_room {
            return Err(Errno::EINVAL);
        }
        *pos = idx;
        Ok(at)
    }
}

fn total_len(segs: &[UserSeg]) -> usize {
    segs.iter().fold(0usize, |a, s| a.saturating_add(s.1))
}

impl FileOps for TmpFile {
    fn read(&self, t: &Task, segs: &[UserSeg], off: Option<u64>, _nonblock: bool) -> SysResult {
        self.check_read()?;
        let want = total_len(segs);
        if want == 0 {
            return Ok(0);
        }
        let mut bounce = vec![0u8; want.min(CHUNK)];
        self.with_pos(off, |pos| {
            let mut done = 0usize;
            'segs: for &(addr, len) in segs {
                let mut seg_done = 0usize;
                while seg_done < len {
                    let m = (len - seg_done).min(bounce.len());
                    let n = self.inode.read_at(*pos, &mut bounce[..m])?;
                    if n == 0 {
                        break 'segs;
                    }
                    if let Err(e) = t.mm.lock().copy_out(addr.wrapping_add(seg_done as u64), &bounce[..n]) {
                        if done == 0 {
                            return Err(e);
                        }
                        break 'segs;
                    }
                    *pos += n as u64;
                    done += n;
                    seg_done += n;
                    if n < m {
                        break 'segs;
                    }
                }
            }
            Ok(done as u64)
        })
        .inspect(|_| self.inode.accessed())
    }

    fn write(&self, t: &Task, segs: &[UserSeg], off: Option<u64>, _nonblock: bool) -> SysResult {
        self.check_write()?;
        let want = total_len(segs);
        if want == 0 {
            return Ok(0);
        }
        if want <= CHUNK {
            // Gather first, then one write under one lock: atomic.
            let mut data = vec![0u8; want];
            {
                let mut mm = t.mm.lock();
                let mut at = 0;
                for &(addr, len) in segs {
                    mm.copy_in(addr, &mut data[at..at + len])?;
                    at += len;
                }
            }
            return self.write_buf(&data, off).map(|n| n as u64);
        }
        let mut bounce = vec![0u8; CHUNK];
        self.with_pos(off, |pos| {
            let mut done = 0usize;
            'segs: for &(addr, len) in segs {
                let mut seg_done = 0usize;
                while seg_done < len {
                    let m = (len - seg_done).min(CHUNK);
                    if let Err(e) = t.mm.lock().copy_in(addr.wrapping_add(seg_done as u64), &mut bounce[..m]) {
                        if done == 0 {
                            return Err(e);
                        }
                        break 'segs;
                    }
                    let (n, at) = match self.inode.write_at(*pos, &bounce[..m], self.append) {
                        Ok(r) => r,
                        Err(e) if done == 0 => return Err(e),
                        Err(_) => break 'segs,
                    };
                    *pos = at + n as u64;
                    done += n;
                    seg_done += n;
                    if n < m {
                        break 'segs;
                    }
                }
            }
            Ok(done as u64)
        })
    }

    fn stat(&self) -> Result<Stat, Errno> {
        self.inode.stat()
    }

    fn seek(&self, off: i64, whence: u32) -> SysResult {
        self.seek_to(off, whence)
    }

    fn getdents(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        self.dirents(buf)
    }

    fn path(&self) -> &str {
        &self.path
    }

    fn is_dir(&self) -> bool {
        self.inode.kind == Kind::Dir
    }

    fn shared_mem(&self) -> Option<Arc<crate::mm::shared::SharedMem>> {
        self.inode.shared_mem()
    }

    fn seals(&self, add: u32) -> Result<u32, Errno> {
        if add != 0 && !self.writable {
            return Err(Errno::EPERM);
        }
        self.inode.seals(add)
    }

    fn poll(&self, _events: u16) -> u16 {
        POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM
    }

    fn splice_read(&self, _t: &Task, buf: &mut [u8], off: Option<u64>, _nonblock: bool) -> SysResult {
        let n = self.read_buf(buf, off)?;
        self.inode.accessed();
        Ok(n as u64)
    }

    fn splice_write(&self, _t: &Task, buf: &[u8], off: Option<u64>, _nonblock: bool) -> SysResult {
        self.write_buf(buf, off).map(|n| n as u64)
    }

    fn read_kernel(&self, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        if self.inode.kind == Kind::Dir {
            return Err(Errno::EISDIR);
        }
        self.inode.read_at(off, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: Creator = Creator { uid: 0, gid: 0 };

    fn fs() -> Arc<Tmpfs> {
        Tmpfs::new(42, 0o755, ROOT)
    }

    fn mkfile(d: &Arc<TmpInode>, name: &str, data: &[u8]) -> Arc<TmpInode> {
        let f = d.create_node(name, Kind::File, 0o644, 0, ROOT).unwrap();
        f.write_at(0, data, false).unwrap();
        f
    }

    fn content(f: &TmpInode) -> Vec<u8> {
        let mut b = vec![0u8; f.size() as usize];
        let n = f.read_at(0, &mut b).unwrap();
        b.truncate(n);
        b
    }

    fn names(d: &TmpInode) -> Vec<String> {
        d.readdir().unwrap().into_iter().map(|e| e.name).collect()
    }

    fn rename(d: &Arc<TmpInode>, a: &str, nd: &Arc<TmpInode>, b: &str, flags: u32) -> Result<(), Errno> {
        let nd: Arc<dyn Inode> = nd.clone();
        d.rename(a, &nd, b, flags)
    }

    /// Parses getdents64 output into (ino, d_off, type, name).
    fn parse(buf: &[u8]) -> Vec<(u64, i64, u8, String)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < buf.len() {
            let ino = u64::from_le_bytes(buf[at..at + 8].try_into().unwrap());
            let off = i64::from_le_bytes(buf[at + 8..at + 16].try_into().unwrap());
            let reclen = u16::from_le_bytes([buf[at + 16], buf[at + 17]]) as usize;
            assert_eq!(reclen % 8, 0);
            let name = &buf[at + 19..at + reclen];
            let end = name.iter().position(|&c| c == 0).unwrap();
            out.push((ino, off, buf[at + 18], String::from_utf8(name[..end].to_vec()).unwrap()));
            at += reclen;
        }
        out
    }

    #[test]
    fn create_read_write_truncate() {
        let fs = fs();
        let root = fs.root_inode();
        let f = root.create_node("a", Kind::File, 0o100644, 0, Creator { uid: 5, gid: 6 }).unwrap();
        assert_eq!(root.create_node("a", Kind::File, 0o644, 0, ROOT).err(), Some(Errno::EEXIST));
        let st = f.stat().unwrap();
        assert_eq!(st.st_mode, 0o100644);
        assert_eq!((st.st_uid, st.st_gid, st.st_nlink, st.st_dev, st.st_blksize), (5, 6, 1, 42, 4096));
        let file = f.open_file(2, "/a").unwrap();
        assert_eq!(file.write_buf(b"hello", None), Ok(5));
        assert_eq!(file.write_buf(b"!", None), Ok(1));
        let mut b = [0u8; 16];
        assert_eq!(file.read_buf(&mut b, Some(0)), Ok(6));
        assert_eq!(&b[..6], b"hello!");
        // Reads at or past the end give 0.
        assert_eq!(file.read_buf(&mut b, None), Ok(0));
        assert_eq!(file.read_buf(&mut b, Some(100)), Ok(0));
        // pwrite past the end zero-fills the gap and leaves the offset.
        assert_eq!(file.write_buf(b"x", Some(10)), Ok(1));
        assert_eq!(content(&f), b"hello!\0\0\0\0x");
        assert_eq!(file.seek_to(0, SEEK_CUR), Ok(6));
        let st = f.stat().unwrap();
        assert_eq!((st.st_size, st.st_blocks), (11, 8));
        // Truncate down and sparse up.
        let before = f.stat().unwrap().st_mtime;
        f.setattr(&SetAttr { size: Some(3), ..SetAttr::default() }).unwrap();
        assert_eq!(content(&f), b"hel");
        assert!(f.stat().unwrap().st_mtime > before);
        f.setattr(&SetAttr { size: Some(6), ..SetAttr::default() }).unwrap();
        assert_eq!(content(&f), b"hel\0\0\0");
        assert_eq!(fs.used(), 6);
        // Attributes: type bits are kept, only 0o7777 is taken.
        f.setattr(&SetAttr { mode: Some(0o170755), uid: Some(1), gid: Some(2), mtime: Some((7, 8)), ..SetAttr::default() }).unwrap();
        let st = f.stat().unwrap();
        assert_eq!((st.st_mode, st.st_uid, st.st_gid, st.st_mtime, st.st_mtime_nsec), (0o100755, 1, 2, 7, 8));
        // Sizes of non-files.
        assert_eq!(root.setattr(&SetAttr { size: Some(0), ..SetAttr::default() }), Err(Errno::EISDIR));
        // Access modes and directories.
        let ro = f.open_file(0, "/a").unwrap();
        assert_eq!(ro.write_buf(b"x", None), Err(Errno::EBADF));
        let wo = f.open_file(1, "/a").unwrap();
        assert_eq!(wo.read_buf(&mut b, None), Err(Errno::EBADF));
        let dirf = root.open_file(0, "/").unwrap();
        assert_eq!(dirf.write_buf(b"x", None), Err(Errno::EISDIR));
        assert_eq!(dirf.read_buf(&mut b, None), Err(Errno::EISDIR));
        assert!(FileOps::is_dir(&dirf));
        assert_eq!(FileOps::path(&dirf), "/");
        // read_kernel for exec and copy-up.
        assert_eq!(ro.read_kernel(&mut b, 1), Ok(5));
        assert_eq!(&b[..2], b"el");
    }

    #[test]
    fn append_and_seek() {
        let fs = fs();
        let root = fs.root_inode();
        let f = mkfile(&root, "log", b"abc");
        let a = f.open_file(1 | O_APPEND, "log").unwrap();
        assert_eq!(a.write_buf(b"de", None), Ok(2));
        // pwrite on an O_APPEND file appends too (Linux behaviour).
        assert_eq!(a.write_buf(b"f", Some(0)), Ok(1));
        assert_eq!(content(&f), b"abcdef");
        assert_eq!(a.seek_to(0, SEEK_CUR), Ok(5));
        assert_eq!(a.seek_to(-2, SEEK_END), Ok(4));
        assert_eq!(a.seek_to(-10, SEEK_CUR), Err(Errno::EINVAL));
        assert_eq!(a.seek_to(2, SEEK_DATA), Ok(2));
        assert_eq!(a.seek_to(2, SEEK_HOLE), Ok(6));
        assert_eq!(a.seek_to(6, SEEK_DATA), Err(Errno::ENXIO));
        assert_eq!(a.seek_to(0, 99), Err(Errno::EINVAL));
        assert_eq!(a.seek_to(i64::MAX, SEEK_SET), Ok(i64::MAX as u64));
        assert_eq!(a.seek_to(1, SEEK_CUR), Err(Errno::EINVAL));
        assert_eq!(f.write_at(u64::MAX - 1, b"xx", false), Err(Errno::EFBIG));
    }

    #[test]
    fn unlink_while_open_and_links() {
        let fs = fs();
        let root = fs.root_inode();
        let f = mkfile(&root, "f", b"data");
        let open = f.open_file(0, "f").unwrap();
        let as_dyn: Arc<dyn Inode> = f.clone();
        root.link("g", &as_dyn).unwrap();
        assert_eq!(f.stat().unwrap().st_nlink, 2);
        assert_eq!(root.link("g", &as_dyn), Err(Errno::EEXIST));
        let dir: Arc<dyn Inode> = root.create_node("d", Kind::Dir, 0o755, 0, ROOT).unwrap();
        assert_eq!(root.link("dl", &dir), Err(Errno::EPERM));
        let other = Tmpfs::new(7, 0o755, ROOT);
        assert_eq!(other.root().link("x", &as_dyn), Err(Errno::EXDEV));
        root.unlink("f", false).unwrap();
        assert_eq!(f.stat().unwrap().st_nlink, 1);
        root.unlink("g", false).unwrap();
        assert_eq!(f.stat().unwrap().st_nlink, 0);
        assert_eq!(root.lookup("f").err(), Some(Errno::ENOENT));
        // The open file still reads the data, and it is still accounted.
        let mut b = [0u8; 8];
        assert_eq!(open.read_buf(&mut b, Some(0)), Ok(4));
        assert_eq!(&b[..4], b"data");
        assert_eq!(fs.used(), 4);
        // A fully unlinked inode cannot be linked back.
        assert_eq!(root.link("h", &as_dyn), Err(Errno::ENOENT));
        drop((open, as_dyn, f));
        assert_eq!(fs.used(), 0);
        assert_eq!(root.unlink("d", false), Err(Errno::EISDIR));
        assert_eq!(root.unlink("nope", false), Err(Errno::ENOENT));
    }

    #[test]
    fn dirs_nlink_rmdir() {
        let fs = fs();
        let root = fs.root_inode();
        assert_eq!(root.stat().unwrap().st_nlink, 2);
        let a = root.create_node("a", Kind::Dir, 0o755, 0, ROOT).unwrap();
        root.create_node("b", Kind::Dir, 0o755, 0, ROOT).unwrap();
        mkfile(&root, "f", b"");
        assert_eq!(root.stat().unwrap().st_nlink, 4);
        assert_eq!(root.stat().unwrap().st_mode, 0o040755);
        mkfile(&a, "x", b"1");
        assert_eq!(root.unlink("a", true), Err(Errno::ENOTEMPTY));
        assert_eq!(root.unlink("f", true), Err(Errno::ENOTDIR));
        a.unlink("x", false).unwrap();
        root.unlink("a", true).unwrap();
        assert_eq!(root.stat().unwrap().st_nlink, 3);
        // The removed directory: nlink 0, nothing can be created in it.
        assert_eq!(a.stat().unwrap().st_nlink, 0);
        assert_eq!(a.create_node("y", Kind::File, 0o644, 0, ROOT).err(), Some(Errno::ENOENT));
        // Special nodes and symlinks.
        let c = root.create_node("null", Kind::CharDev, 0o666, 0x103, ROOT).unwrap();
        let st = c.stat().unwrap();
        assert_eq!((st.st_mode, st.st_rdev), (0o020666, 0x103));
        assert_eq!(c.open(0).err(), Some(Errno::ENXIO));
        let p = root.create_node("p", Kind::Fifo, 0o644, 0, ROOT).unwrap();
        assert_eq!(p.open(0).err(), Some(Errno::ENXIO));
        let s = root.create_node("s", Kind::Socket, 0o644, 0, ROOT).unwrap();
        assert_eq!(s.open(2).err(), Some(Errno::ENXIO));
        assert!(s.open(O_PATH).is_ok());
        let l = root.symlink_node("l", "target/path", ROOT).unwrap();
        assert_eq!(l.readlink().unwrap(), "target/path");
        assert_eq!(l.stat().unwrap().st_size, 11);
        assert_eq!(l.stat().unwrap().st_mode, 0o120777);
        assert_eq!(l.open(0).err(), Some(Errno::ELOOP));
        assert_eq!(root.symlink_node("e", "", ROOT).err(), Some(Errno::ENOENT));
        // Names.
        let long = "n".repeat(256);
        assert_eq!(root.create_node(&long, Kind::File, 0o644, 0, ROOT).err(), Some(Errno::ENAMETOOLONG));
        assert_eq!(root.lookup(&long).err(), Some(Errno::ENAMETOOLONG));
        assert!(root.create_node(&"n".repeat(255), Kind::File, 0o644, 0, ROOT).is_ok());
        assert_eq!(root.create_node("a/b", Kind::File, 0o644, 0, ROOT).err(), Some(Errno::EINVAL));
        // Inode numbers are unique.
        let mut inos: Vec<u64> = root.readdir().unwrap().iter().map(|e| e.ino).collect();
        inos.push(root.ino());
        let n = inos.len();
        inos.sort();
        inos.dedup();
        assert_eq!(inos.len(), n);
    }

    #[test]
    fn setgid_dir_inheritance() {
        let fs = fs();
        let root = fs.root_inode();
        let d = root.create_node("d", Kind::Dir, 0o2775, 0, Creator { uid: 1, gid: 50 }).unwrap();
        let sub = d.create_node("s", Kind::Dir, 0o755, 0, Creator { uid: 2, gid: 2 }).unwrap();
        let f = d.create_node("f", Kind::File, 0o644, 0, Creator { uid: 2, gid: 2 }).unwrap();
        assert_eq!(sub.stat().unwrap().st_gid, 50);
        assert_eq!(sub.stat().unwrap().st_mode & 0o7777, 0o2755);
        assert_eq!(f.stat().unwrap().st_gid, 50);
        // chown clears set-id bits of files.
        f.setattr(&SetAttr { mode: Some(0o6755), ..SetAttr::default() }).unwrap();
        f.setattr(&SetAttr { uid: Some(3), ..SetAttr::default() }).unwrap();
        assert_eq!(f.stat().unwrap().st_mode & 0o7777, 0o755);
    }

    #[test]
    fn rename_cases() {
        let fs = fs();
        let root = fs.root_inode();
        let a = root.create_node("a", Kind::Dir, 0o755, 0, ROOT).unwrap();
        let b = root.create_node("b", Kind::Dir, 0o755, 0, ROOT).unwrap();
        let f = mkfile(&a, "f", b"F");
        let g = mkfile(&b, "g", b"G");
        // Plain move between directories.
        rename(&a, "f", &b, "f2", 0).unwrap();
        assert_eq!(names(&a), Vec::<String>::new());
        assert_eq!(names(&b), ["f2", "g"]);
        // Replace a file; the old target loses its link.
        rename(&b, "f2", &b, "g", 0).unwrap();
        assert_eq!(names(&b), ["g"]);
        assert_eq!(g.stat().unwrap().st_nlink, 0);
        assert!(Arc::ptr_eq(&b.child("g").unwrap(), &f));
        // Missing source.
        assert_eq!(rename(&a, "zz", &b, "x", 0), Err(Errno::ENOENT));
        // NOREPLACE.
        let h = mkfile(&a, "h", b"H");
        assert_eq!(rename(&a, "h", &b, "g", RENAME_NOREPLACE), Err(Errno::EEXIST));
        rename(&a, "h", &b, "h", RENAME_NOREPLACE).unwrap();
        // Bad flags.
        assert_eq!(rename(&b, "h", &b, "i", 3), Err(Errno::EINVAL));
        assert_eq!(rename(&b, "h", &b, "i", 8), Err(Errno::EINVAL));
        // EXCHANGE, including a file with a directory across parents.
        let sub = a.create_node("sub", Kind::Dir, 0o755, 0, ROOT).unwrap();
        rename(&b, "h", &a, "sub", RENAME_EXCHANGE).unwrap();
        assert!(Arc::ptr_eq(&a.child("sub").unwrap(), &h));
        assert!(Arc::ptr_eq(&b.child("h").unwrap(), &sub));
        assert_eq!(a.stat().unwrap().st_nlink, 2);
        assert_eq!(b.stat().unwrap().st_nlink, 3);
        assert_eq!(rename(&b, "h", &a, "none", RENAME_EXCHANGE), Err(Errno::ENOENT));
        // Type mismatches.
        assert_eq!(rename(&b, "h", &b, "g", 0), Err(Errno::ENOTDIR));
        assert_eq!(rename(&b, "g", &b, "h", 0), Err(Errno::EISDIR));
        // Replacing an empty directory works, a non-empty one does not.
        let e = root.create_node("e", Kind::Dir, 0o755, 0, ROOT).unwrap();
        mkfile(&sub, "inside", b"");
        assert_eq!(rename(&root, "e", &b, "h", 0), Err(Errno::ENOTEMPTY));
        let empty = b.create_node("empty", Kind::Dir, 0o755, 0, ROOT).unwrap();
        rename(&root, "e", &b, "empty", 0).unwrap();
        assert_eq!(empty.stat().unwrap().st_nlink, 0);
        assert!(Arc::ptr_eq(&b.child("empty").unwrap(), &e));
        assert_eq!(root.stat().unwrap().st_nlink, 4);
        // ".." of a moved directory follows it.
        let df = e.open_file(0, "e").unwrap();
        let mut buf = [0u8; 256];
        let n = df.getdents(&mut buf).unwrap();
        assert_eq!(parse(&buf[..n])[1], (b.ino(), 2, 4, "..".into()));
        // A directory into its own subtree.
        assert_eq!(rename(&root, "b", &e, "x", 0), Err(Errno::EINVAL));
        assert_eq!(rename(&root, "b", &b, "x", 0), Err(Errno::EINVAL));
        assert_eq!(rename(&root, "b", &e, "x", RENAME_EXCHANGE), Err(Errno::ENOENT));
        mkfile(&e, "x", b"");
        assert_eq!(rename(&root, "b", &e, "x", RENAME_EXCHANGE), Err(Errno::EINVAL));
        assert_eq!(rename(&b, "empty", &root, "b", RENAME_EXCHANGE), Err(Errno::EINVAL));
        // Onto an ancestor: not empty.
        assert_eq!(rename(&b, "empty", &root, "b", 0), Err(Errno::ENOTEMPTY));
        // Same inode under both names: nothing happens.
        let fd: Arc<dyn Inode> = f.clone();
        b.link("g2", &fd).unwrap();
        rename(&b, "g", &b, "g2", 0).unwrap();
        assert_eq!(f.stat().unwrap().st_nlink, 2);
        // Another filesystem.
        let other = Tmpfs::new(7, 0o755, ROOT);
        assert_eq!(rename(&b, "g", &other.root_inode(), "g", 0), Err(Errno::EXDEV));
    }

    #[test]
    fn getdents_records_and_resume() {
        let fs = fs();
        let root = fs.root_inode();
        let d = root.create_node("d", Kind::Dir, 0o755, 0, ROOT).unwrap();
        let mut want = vec![(".".to_string(), 4u8), ("..".into(), 4)];
        for i in 0..10 {
            let name = format!("entry-{i:02}");
            if i % 3 == 0 {
                d.create_node(&name, Kind::Dir, 0o755, 0, ROOT).unwrap();
                want.push((name, 4));
            } else if i % 3 == 1 {
                mkfile(&d, &name, b"");
                want.push((name, 8));
            } else {
                d.symlink_node(&name, "t", ROOT).unwrap();
                want.push((name, 10));
            }
        }
        let f = d.open_file(0, "d").unwrap();
        // Big buffer: everything at once.
        let mut buf = vec![0u8; 4096];
        let n = f.getdents(&mut buf).unwrap();
        let recs = parse(&buf[..n]);
        assert_eq!(recs.iter().map(|r| (r.3.clone(), r.2)).collect::<Vec<_>>(), want);
        assert_eq!(recs[0].0, d.ino());
        assert_eq!(recs[1].0, root.ino());
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.1, i as i64 + 1);
        }
        assert_eq!(f.getdents(&mut buf), Ok(0));
        // Small buffer: one or two records per call, resuming.
        f.seek_to(0, SEEK_SET).unwrap();
        let mut got = Vec::new();
        let mut small = [0u8; 40];
        loop {
            let n = f.getdents(&mut small).unwrap();
            if n == 0 {
                break;
            }
            got.extend(parse(&small[..n]).into_iter().map(|r| r.3));
        }
        assert_eq!(got, want.iter().map(|w| w.0.clone()).collect::<Vec<_>>());
        // Seeking to a d_off resumes after that record.
        f.seek_to(recs[4].1, SEEK_SET).unwrap();
        let n = f.getdents(&mut buf).unwrap();
        assert_eq!(parse(&buf[..n])[0].3, want[5].0);
        // A buffer too small for one record.
        f.seek_to(0, SEEK_SET).unwrap();
        assert_eq!(f.getdents(&mut [0u8; 10]), Err(Errno::EINVAL));
        // Entries removed before the cursor do not make it skip any.
        f.seek_to(0, SEEK_SET).unwrap();
        let mut first = [0u8; 128];
        let n = f.getdents(&mut first).unwrap();
        let seen = parse(&first[..n]);
        let last = seen.last().unwrap().3.clone();
        assert!(last.starts_with("entry-"));
        d.unlink("entry-01", false).unwrap();
        let n = f.getdents(&mut buf).unwrap();
        let rest: Vec<String> = parse(&buf[..n]).into_iter().map(|r| r.3).collect();
        let pos = want.iter().position(|w| w.0 == last).unwrap();
        assert_eq!(rest.first(), Some(&want[pos + 1].0));
        assert_eq!(d.open_file(O_PATH, "d").unwrap().getdents(&mut buf), Err(Errno::EBADF));
        // Not a directory.
        let file = mkfile(&root, "plain", b"");
        assert_eq!(file.open_file(0, "p").unwrap().getdents(&mut buf), Err(Errno::ENOTDIR));
    }

    #[test]
    fn enospc() {
        let fs = Tmpfs::with_limit(1, 0o755, ROOT, 10);
        let root = fs.root_inode();
        let f = root.create_node("f", Kind::File, 0o644, 0, ROOT).unwrap();
        assert_eq!(f.write_at(0, b"12345678", false), Ok((8, 0)));
        // A write that does not fully fit is short.
        assert_eq!(f.write_at(8, b"abcd", false), Ok((2, 8)));
        assert_eq!(f.write_at(10, b"x", false), Err(Errno::ENOSPC));
        // Overwriting in place needs no space.
        assert_eq!(f.write_at(0, b"zz", false), Ok((2, 0)));
        let g = root.create_node("g", Kind::File, 0o644, 0, ROOT).unwrap();
        assert_eq!(g.setattr(&SetAttr { size: Some(1), ..SetAttr::default() }), Err(Errno::ENOSPC));
        assert_eq!(g.write_at(0, b"x", false), Err(Errno::ENOSPC));
        // Freed space is reusable.
        f.setattr(&SetAttr { size: Some(4), ..SetAttr::default() }).unwrap();
        assert_eq!(fs.used(), 4);
        assert_eq!(g.write_at(0, b"123456", false), Ok((6, 0)));
        root.unlink("g", false).unwrap();
        drop(g);
        assert_eq!(fs.used(), 4);
        fs.set_limit(100);
        assert_eq!(fs.available(), 96);
    }

    #[test]
    fn deep_tree_drops() {
        let fs = fs();
        let mut d = fs.root_inode();
        for _ in 0..20000 {
            d = d.create_node("d", Kind::Dir, 0o755, 0, ROOT).unwrap();
        }
        mkfile(&d, "f", b"abc");
        drop(d);
        assert_eq!(fs.used(), 3);
        drop(fs);
    }
}
