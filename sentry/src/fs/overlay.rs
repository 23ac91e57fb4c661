//! A union of a writable tmpfs (the upper layer) over a read-only
//! filesystem (the lower layer) (Linux: fs/overlayfs, simplified: one
//! lower layer, no redirect_dir, no index). The root of `rvisor do`: the
//! host's files appear writable, and every change stays in the sandbox.
//!
//! On-"disk" format in the upper layer, as Linux overlayfs:
//! - a whiteout (a deleted lower name) is a character device 0:0;
//! - an opaque directory (one that hides the lower directory of the same
//!   name) carries tmpfs's opaque mark (`TmpInode::set_opaque`, standing
//!   for the trusted.overlay.opaque xattr). Every directory created
//!   through the overlay is opaque: it never merges with a lower one.
//!
//! Lower calls are expensive (host round trips), so each overlay directory
//! caches what it looked up: a slot per name (the child inode or "absent",
//! and whether a lower entry of that name exists), its lower listing, and
//! each inode its lower attributes and symlink target. The lower layer is
//! assumed not to change underneath (as overlayfs says: undefined). The
//! cache of positive entries is also what gives an object one identity,
//! so a copy-up through one name is seen by every user of the inode.
//!
//! Locking: mutations (and copy-up) hold the overlay's `ns` lock, then
//! take node state locks one at a time; tmpfs locks are taken below them.
//! Lookups run without `ns`; a generation count per directory keeps a slow
//! lookup that raced with a mutation from caching a stale answer.

use abi::linux::Stat;
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
use spin::Mutex;

use super::tmpfs::{check_name, encode_dirent, TmpInode, Tmpfs, O_ACCMODE, O_PATH, O_TRUNC, RENAME_EXCHANGE, RENAME_NOREPLACE};
use super::{FileOps, UserSeg, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use crate::errno::{Errno, SysResult};
use crate::kernel::task::Task;
use crate::vfs::{Creator, DirEntry, Inode, Kind, SetAttr};

/// st_ino of the overlay's root.
const ROOT_INO: u64 = 2;
/// Directory inode numbers (the overlay's st_dev) come from two disjoint
/// ranges: upper-only directories use their tmpfs inode number with this
/// bit, directories with a lower part a hash of their path with the next
/// one down. Neither changes on copy-up, and lower directories on
/// different host filesystems never collide on their host inode numbers.
const UPPER_DIR_BIT: u64 = 1 << 61;
const HASH_DIR_BIT: u64 = 1 << 60;
/// Cached negative entries per directory before they are dropped (they
/// can all be recomputed; positive ones are kept for identity).
const MAX_NEGATIVE: usize = 4096;
/// Copy-up transfer size.
const COPY_CHUNK: usize = 64 << 10;

/// One overlay mount.
struct Overlay {
    upper: Arc<Tmpfs>,
    dev: u64,
    /// Serializes mutations and copy-ups (Linux: the directory locks plus
    /// the per-inode copy-up lock).
    ns: Mutex<()>,
}

/// The merged root over `upper` and `lower_root`, on device `dev`.
pub fn new(upper: Arc<Tmpfs>, lower_root: Arc<dyn Inode>, dev: u64) -> Arc<dyn Inode> {
    new_root(upper, lower_root, dev)
}

/// As `new`, as the concrete type.
pub fn new_root(upper: Arc<Tmpfs>, lower_root: Arc<dyn Inode>, dev: u64) -> Arc<OvlInode> {
    let root_upper = upper.root_inode();
    let ovl = Arc::new(Overlay { upper, dev, ns: Mutex::new(()) });
    OvlInode::make(&ovl, Weak::new(), String::new(), Kind::Dir, ROOT_INO, Some(root_upper), Some(lower_root))
}

/// FNV-1a of (parent directory inode, name), in the hashed range.
fn dir_hash(parent: u64, name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parent.to_le_bytes().iter().chain(name.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h & (HASH_DIR_BIT - 1)) | HASH_DIR_BIT
}

/// What a directory knows about one name.
#[derive(Clone)]
struct Slot {
    /// The visible object, or None: absent (or whited out).
    node: Option<Arc<OvlInode>>,
    /// Whether the lower directory has this name (so removing the upper
    /// entry needs a whiteout); None: not asked yet.
    lower_below: Option<bool>,
}

struct State {
    upper: Option<Arc<TmpInode>>,
    /// The lower object. Dropped from non-directories once copied up.
    lower: Option<Arc<dyn Inode>>,
    lower_stat: Option<Stat>,
    lower_link: Option<String>,
    /// Directories: cached lookups.
    slots: BTreeMap<String, Slot>,
    negatives: usize,
    /// Bumped by every mutation of `slots` made under `ns`.
    gen: u64,
    /// Directories: the lower listing, sorted by name.
    lower_list: Option<Arc<Vec<DirEntry>>>,
    /// The lower object's `user.*` xattr names (asked once: the lower
    /// layer does not change underneath).
    lower_xattrs: Option<Arc<Vec<String>>>,
}

/// An overlay inode.
pub struct OvlInode {
    ovl: Arc<Overlay>,
    me: Weak<OvlInode>,
    kind: Kind,
    /// Directories: st_ino (stable across copy-up).
    dir_ino: u64,
    /// The parent directory and name: where a copy-up puts this object.
    place: Mutex<(Weak<OvlInode>, String)>,
    /// Removed from the namespace with no upper object left behind it, so
    /// a later copy-up (through an open fd or a cwd) must not recreate it.
    unlinked: AtomicBool,
    st: Mutex<State>,
}

impl OvlInode {
    fn make(
        ovl: &Arc<Overlay>,
        parent: Weak<OvlInode>,
        name: String,
        kind: Kind,
        dir_ino: u64,
        upper: Option<Arc<TmpInode>>,
        lower: Option<Arc<dyn Inode>>,
    ) -> Arc<OvlInode> {
        Arc::new_cyclic(|me| OvlInode {
            ovl: ovl.clone(),
            me: me.clone(),
            kind,
            dir_ino,
            place: Mutex::new((parent, name)),
            unlinked: AtomicBool::new(false),
            st: Mutex::new(State {
                upper,
                lower,
                lower_stat: None,
                lower_link: None,
                slots: BTreeMap::new(),
                negatives: 0,
                gen: 0,
                lower_list: None,
                lower_xattrs: None,
            }),
        })
    }

    /// A child object found or created under `name` in this directory.
    fn new_child(&self, name: &str, kind: Kind, upper: Option<Arc<TmpInode>>, lower: Option<Arc<dyn Inode>>) -> Arc<OvlInode> {
        let dir_ino = match (&upper, &lower) {
            (Some(u), None) if kind == Kind::Dir => u.ino() | UPPER_DIR_BIT,
            _ if kind == Kind::Dir => dir_hash(self.dir_ino, name),
            _ => 0,
        };
        OvlInode::make(&self.ovl, self.me.clone(), name.into(), kind, dir_ino, upper, lower)
    }

    fn arc(&self) -> Result<Arc<OvlInode>, Errno> {
        self.me.upgrade().ok_or(Errno::ENOENT)
    }

    /// The upper object, if copied up (or created in the upper layer).
    pub fn upper(&self) -> Option<Arc<TmpInode>> {
        self.st.lock().upper.clone()
    }

    fn lower(&self) -> Option<Arc<dyn Inode>> {
        self.st.lock().lower.clone()
    }

    /// Whether a lower object is part of this one (a lower or merged
    /// directory, or a file not copied up yet).
    pub fn has_lower(&self) -> bool {
        self.st.lock().lower.is_some()
    }

    /// The lower directory merged into this one (none if opaque).
    fn lower_dir(&self) -> Option<Arc<dyn Inode>> {
        let s = self.st.lock();
        if s.upper.as_ref().is_some_and(|u| u.is_opaque()) {
            return None;
        }
        s.lower.clone()
    }

    /// The `user.*` xattr names of the lower object (none without one).
    /// Other namespaces of a lower (host) file are not the sandbox's.
    fn lower_xattr_names(&self) -> Result<Arc<Vec<String>>, Errno> {
        let lower = {
            let s = self.st.lock();
            if let Some(l) = &s.lower_xattrs {
                return Ok(l.clone());
            }
            match s.lower.clone() {
                Some(l) => l,
                None => return Ok(Arc::new(Vec::new())),
            }
        };
        let names: Vec<String> = lower.list_xattr()?.into_iter().filter(|n| n.starts_with("user.")).collect();
        let names = Arc::new(names);
        self.st.lock().lower_xattrs = Some(names.clone());
        Ok(names)
    }

    fn lower_stat(&self) -> Result<Stat, Errno> {
        let lower = {
            let s = self.st.lock();
            if let Some(st) = s.lower_stat {
                return Ok(st);
            }
            s.lower.clone().ok_or(Errno::EIO)?
        };
        let st = lower.stat()?;
        self.st.lock().lower_stat = Some(st);
        Ok(st)
    }

    /// The sorted lower listing of this directory (empty without one).
    fn lower_list(&self) -> Result<Arc<Vec<DirEntry>>, Errno> {
        if let Some(l) = self.st.lock().lower_list.clone() {
            return Ok(l);
        }
        let Some(lower) = self.lower_dir() else { return Ok(Arc::new(Vec::new())) };
        let mut v = lower.readdir()?;
        v.sort_by(|a, b| a.name.cmp(&b.name));
        let v = Arc::new(v);
        self.st.lock().lower_list = Some(v.clone());
        Ok(v)
    }

    /// Looks `name` up in the lower directory.
    fn lookup_lower(&self, name: &str) -> Result<Option<Arc<dyn Inode>>, Errno> {
        let (lower, list) = {
            let s = self.st.lock();
            if s.upper.as_ref().is_some_and(|u| u.is_opaque()) {
                return Ok(None);
            }
            (s.lower.clone(), s.lower_list.clone())
        };
        let Some(lower) = lower else { return Ok(None) };
        // A cached listing answers "absent" without a host call.
        if let Some(l) = list {
            if l.binary_search_by(|e| e.name.as_str().cmp(name)).is_err() {
                return Ok(None);
            }
        }
        match lower.lookup(name) {
            Ok(i) => Ok(Some(i)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Computes the slot of `name` from the layers (no locks held).
    fn resolve(&self, name: &str) -> Result<Slot, Errno> {
        if let Some(u) = self.upper() {
            match u.child(name) {
                Ok(x) if x.is_whiteout() => return Ok(Slot { node: None, lower_below: Some(true) }),
                Ok(x) => {
                    let mut below = if self.lower_dir().is_none() { Some(false) } else { None };
                    let mut lower = None;
                    if x.kind() == Kind::Dir && !x.is_opaque() && below.is_none() {
                        let l = self.lookup_lower(name)?;
                        below = Some(l.is_some());
                        lower = l.filter(|l| l.kind() == Kind::Dir);
                    }
                    let node = self.new_child(name, x.kind(), Some(x), lower);
                    return Ok(Slot { node: Some(node), lower_below: below });
                }
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(match self.lookup_lower(name)? {
            Some(l) => Slot { node: Some(self.new_child(name, l.kind(), None, Some(l))), lower_below: Some(true) },
            None => Slot { node: None, lower_below: Some(false) },
        })
    }

    fn insert_slot(s: &mut State, name: &str, slot: Slot) {
        if slot.node.is_none() {
            s.negatives += 1;
            if s.negatives > MAX_NEGATIVE {
                s.slots.retain(|_, v| v.node.is_some());
                s.negatives = 0;
            }
        }
        s.slots.insert(name.into(), slot);
    }

    /// The (cached) slot of `name`. `ns_held`: the caller holds the
    /// overlay's mutation lock.
    fn get_slot(&self, name: &str, ns_held: bool) -> Result<Slot, Errno> {
        if self.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        check_name(name)?;
        if self.unlinked.load(Ordering::Acquire) {
            return Err(Errno::ENOENT);
        }
        for _ in 0..2 {
            let gen = {
                let s = self.st.lock();
                if let Some(slot) = s.slots.get(name) {
                    return Ok(slot.clone());
                }
                s.gen
            };
            let slot = self.resolve(name)?;
            let mut s = self.st.lock();
            // Another lookup got there first: its object is the one.
            if let Some(existing) = s.slots.get(name) {
                return Ok(existing.clone());
            }
            if ns_held || s.gen == gen {
                Self::insert_slot(&mut s, name, slot.clone());
                return Ok(slot);
            }
        }
        // Mutations keep racing with this lookup: shut them out.
        let _ns = self.ovl.ns.lock();
        self.get_slot(name, true)
    }

    /// Records a mutation's result for `name` (ns held).
    fn set_slot(&self, name: &str, slot: Slot) {
        let mut s = self.st.lock();
        Self::insert_slot(&mut s, name, slot);
        s.gen += 1;
    }

    /// Makes sure this object exists in the upper layer, creating its
    /// missing ancestors first (with the lower directories' attributes),
    /// and returns the upper object. Files get their content copied only
    /// if `data` (not when they are about to be truncated). ns held.
    fn copy_up(&self, data: bool) -> Result<Arc<TmpInode>, Errno> {
        if let Some(u) = self.upper() {
            return Ok(u);
        }
        // Iterative, not recursive: paths can be thousands deep.
        let mut chain = vec![self.arc()?];
        let mut top = loop {
            let Some(last) = chain.last() else { return Err(Errno::EIO) };
            if let Some(u) = last.upper() {
                chain.pop();
                break u;
            }
            if last.unlinked.load(Ordering::Acquire) {
                return Err(Errno::ENOENT);
            }
            let parent = last.place.lock().0.upgrade().ok_or(Errno::ENOENT)?;
            chain.push(parent);
        };
        for node in chain.iter().rev() {
            top = node.copy_up_one(&top, data)?;
        }
        Ok(top)
    }

    /// Copies this object (whose parent is `pu` in the upper layer) up.
    fn copy_up_one(&self, pu: &Arc<TmpInode>, data: bool) -> Result<Arc<TmpInode>, Errno> {
        let lower = self.lower().ok_or(Errno::EIO)?;
        let st = self.lower_stat()?;
        let name = self.place.lock().1.clone();
        let who = Creator { uid: st.st_uid, gid: st.st_gid };
        let perm = st.st_mode & 0o7777;
        let new = match self.kind {
            Kind::Symlink => pu.symlink_node(&name, &self.readlink()?, who)?,
            // Would read back as a whiteout.
            Kind::CharDev if st.st_rdev == 0 => return Err(Errno::EPERM),
            k => pu.create_node(&name, k, perm, st.st_rdev, who)?,
        };
        let is_dir = self.kind == Kind::Dir;
        if self.kind == Kind::File && data {
            if let Err(e) = copy_data(&self.ovl, &lower, &new, st.st_size) {
                let _ = pu.unlink(&name, false);
                return Err(e);
            }
        }
        let attrs = SetAttr {
            mode: (self.kind != Kind::Symlink).then_some(perm),
            uid: Some(st.st_uid),
            gid: Some(st.st_gid),
            size: None,
            atime: Some((st.st_atime, st.st_atime_nsec)),
            mtime: Some((st.st_mtime, st.st_mtime_nsec)),
        };
        if let Err(e) = new.setattr(&attrs).and_then(|()| self.copy_up_xattrs(&lower, &new)) {
            let _ = pu.unlink(&name, is_dir);
            return Err(e);
        }
        let mut s = self.st.lock();
        s.upper = Some(new.clone());
        if !is_dir {
            // Everything now comes from the upper copy.
            s.lower = None;
        }
        Ok(new)
    }

    /// Copies the lower object's `user.*` xattrs to its upper copy (as
    /// overlayfs copies xattrs up): one host call for the list, usually
    /// empty, and one per attribute. Symlinks hold no user xattrs.
    fn copy_up_xattrs(&self, lower: &Arc<dyn Inode>, new: &Arc<TmpInode>) -> Result<(), Errno> {
        if !matches!(self.kind, Kind::File | Kind::Dir) {
            return Ok(());
        }
        for name in self.lower_xattr_names()?.iter() {
            match lower.get_xattr(name) {
                Ok(v) => new.set_xattr(name, Some(&v), 0)?,
                // Removed from the host since it was listed.
                Err(Errno::ENODATA) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Removes a whiteout at `name` in the upper directory `pu`; true if
    /// there was one. Any other entry there means the name exists.
    fn clear_whiteout(pu: &Arc<TmpInode>, name: &str) -> Result<bool, Errno> {
        match pu.child(name) {
            Ok(x) if x.is_whiteout() => pu.unlink(name, false).map(|()| true),
            Ok(_) => Err(Errno::EEXIST),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn put_whiteout(pu: &Arc<TmpInode>, name: &str) -> Result<(), Errno> {
        pu.create_node(name, Kind::CharDev, 0, 0, Creator::default()).map(|_| ())
    }

    /// Removes the whiteouts inside an upper directory (before rmdir of a
    /// directory whose merged view is empty).
    fn clear_whiteouts_in(u: &Arc<TmpInode>) -> Result<(), Errno> {
        for (n, c) in u.children()? {
            if c.is_whiteout() {
                u.unlink(&n, false)?;
            }
        }
        Ok(())
    }

    /// Adds a new upper object `name` made by `make` (create, symlink).
    fn add_entry(&self, name: &str, make: impl FnOnce(&Arc<TmpInode>) -> Result<Arc<TmpInode>, Errno>) -> Result<Arc<OvlInode>, Errno> {
        if self.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        check_name(name)?;
        let _ns = self.ovl.ns.lock();
        let slot = self.get_slot(name, true)?;
        if slot.node.is_some() {
            return Err(Errno::EEXIST);
        }
        let pu = self.copy_up(false)?;
        let had_wh = Self::clear_whiteout(&pu, name)?;
        let new = match make(&pu) {
            Ok(n) => n,
            Err(e) => {
                if had_wh {
                    let _ = Self::put_whiteout(&pu, name);
                }
                return Err(e);
            }
        };
        let node = self.new_child(name, new.kind(), Some(new), None);
        let below = if had_wh { Some(true) } else { slot.lower_below };
        self.set_slot(name, Slot { node: Some(node.clone()), lower_below: below });
        Ok(node)
    }

    /// Whether the lower directory has `name`, from the slot or asking.
    fn below(&self, slot: &Slot, name: &str) -> Result<bool, Errno> {
        match slot.lower_below {
            Some(b) => Ok(b),
            None => Ok(self.lookup_lower(name)?.is_some()),
        }
    }

    /// The merged listing, with overlay inode numbers for directories.
    fn merged(&self) -> Result<Vec<DirEntry>, Errno> {
        if self.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        if self.unlinked.load(Ordering::Acquire) {
            return Ok(Vec::new());
        }
        let lower = self.lower_list()?;
        let in_lower_as_dir = |name: &str| lower.binary_search_by(|e| e.name.as_str().cmp(name)).is_ok_and(|i| lower[i].kind == Kind::Dir);
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        if let Some(u) = self.upper() {
            for (name, c) in u.children()? {
                if !c.is_whiteout() {
                    let ino = if c.kind() != Kind::Dir {
                        c.ino()
                    } else if !c.is_opaque() && in_lower_as_dir(&name) {
                        dir_hash(self.dir_ino, &name)
                    } else {
                        c.ino() | UPPER_DIR_BIT
                    };
                    out.push(DirEntry { name: name.clone(), ino, kind: c.kind() });
                }
                seen.insert(name);
            }
        }
        for e in lower.iter() {
            if seen.contains(&e.name) {
                continue;
            }
            let ino = if e.kind == Kind::Dir { dir_hash(self.dir_ino, &e.name) } else { e.ino };
            out.push(DirEntry { name: e.name.clone(), ino, kind: e.kind });
        }
        Ok(out)
    }

    fn parent_ino(&self) -> u64 {
        self.place.lock().0.upgrade().map_or(self.dir_ino, |p| p.dir_ino)
    }
}

/// Copies a lower file's bytes into `new` through the lower's
/// `read_kernel`.
fn copy_data(ovl: &Overlay, lower: &Arc<dyn Inode>, new: &Arc<TmpInode>, size: i64) -> Result<(), Errno> {
    // Fail before reading a file that cannot fit.
    if u64::try_from(size).unwrap_or(0) > ovl.upper.available() {
        return Err(Errno::ENOSPC);
    }
    let f = lower.open(0)?;
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut off = 0u64;
    loop {
        let n = f.read_kernel(&mut buf, off)?.min(buf.len());
        if n == 0 {
            return Ok(());
        }
        let (w, _) = new.write_at(off, &buf[..n], false)?;
        if w < n {
            return Err(Errno::ENOSPC);
        }
        off += n as u64;
    }
}

impl Inode for OvlInode {
    fn stat(&self) -> Result<Stat, Errno> {
        let (upper, has_lower) = {
            let s = self.st.lock();
            (s.upper.clone(), s.lower.is_some())
        };
        if self.kind != Kind::Dir {
            return match upper {
                Some(u) => u.stat(),
                None => self.lower_stat(),
            };
        }
        let mut st = match upper {
            Some(u) => {
                let mut st = u.stat()?;
                // As overlayfs: a merged directory's link count is unknown
                // (1 tells find not to count subdirectories with it).
                if has_lower {
                    st.st_nlink = 1;
                }
                st
            }
            None => self.lower_stat()?,
        };
        st.st_dev = self.ovl.dev;
        st.st_ino = self.dir_ino;
        Ok(st)
    }

    fn kind(&self) -> Kind {
        self.kind
    }

    fn lookup(&self, name: &str) -> Result<Arc<dyn Inode>, Errno> {
        self.get_slot(name, false)?.node.map(|n| n as Arc<dyn Inode>).ok_or(Errno::ENOENT)
    }

    fn readlink(&self) -> Result<String, Errno> {
        if self.kind != Kind::Symlink {
            return Err(Errno::EINVAL);
        }
        let lower = {
            let s = self.st.lock();
            if let Some(u) = &s.upper {
                return u.readlink();
            }
            if let Some(l) = &s.lower_link {
                return Ok(l.clone());
            }
            s.lower.clone().ok_or(Errno::EIO)?
        };
        let t = lower.readlink()?;
        self.st.lock().lower_link = Some(t.clone());
        Ok(t)
    }

    fn open(&self, flags: u32) -> Result<Box<dyn FileOps>, Errno> {
        let path_only = flags & O_PATH != 0;
        if self.kind == Kind::Dir {
            if !path_only && flags & O_ACCMODE != 0 {
                return Err(Errno::EISDIR);
            }
            return Ok(Box::new(OvlDir { node: self.arc()?, pos: Mutex::new(0), list: Mutex::new(None), path_only }));
        }
        if self.kind == Kind::File && !path_only && (flags & O_ACCMODE != 0 || flags & O_TRUNC != 0) {
            let u = {
                let _ns = self.ovl.ns.lock();
                self.copy_up(true)?
            };
            return u.open(flags);
        }
        let (upper, lower) = {
            let s = self.st.lock();
            (s.upper.clone(), s.lower.clone())
        };
        match (upper, lower) {
            (Some(u), _) => u.open(flags),
            (None, Some(l)) => l.open(flags),
            (None, None) => Err(Errno::EIO),
        }
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        self.merged()
    }

    fn create(&self, name: &str, kind: Kind, mode: u32, rdev: u64, who: Creator) -> Result<Arc<dyn Inode>, Errno> {
        match kind {
            Kind::Symlink => return Err(Errno::EINVAL),
            // 0:0 is the whiteout format; such a node would hide its name.
            Kind::CharDev if rdev == 0 => return Err(Errno::EPERM),
            _ => {}
        }
        let node = self.add_entry(name, |pu| {
            let n = pu.create_node(name, kind, mode, rdev, who)?;
            if kind == Kind::Dir {
                n.set_opaque(true);
            }
            Ok(n)
        })?;
        Ok(node)
    }

    fn tmpfile(&self, mode: u32, who: Creator, linkable: bool) -> Result<Arc<dyn Inode>, Errno> {
        if self.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        let _ns = self.ovl.ns.lock();
        let pu = self.copy_up(false)?;
        let node = pu.tmpfile_node(mode, who, linkable)?;
        // Upper-only and unnamed: no parent slot to find it through.
        Ok(OvlInode::make(&self.ovl, Weak::new(), alloc::format!("#{}", node.ino()), Kind::File, 0, Some(node), None))
    }

    fn symlink(&self, name: &str, target: &str, who: Creator) -> Result<Arc<dyn Inode>, Errno> {
        let node = self.add_entry(name, |pu| pu.symlink_node(name, target, who))?;
        Ok(node)
    }

    fn link(&self, name: &str, target: &Arc<dyn Inode>) -> Result<(), Errno> {
        if self.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        check_name(name)?;
        let t = target.as_any().downcast_ref::<OvlInode>().ok_or(Errno::EXDEV)?;
        if !Arc::ptr_eq(&t.ovl, &self.ovl) {
            return Err(Errno::EXDEV);
        }
        if t.kind == Kind::Dir {
            return Err(Errno::EPERM);
        }
        let t = t.arc()?;
        let _ns = self.ovl.ns.lock();
        let slot = self.get_slot(name, true)?;
        if slot.node.is_some() {
            return Err(Errno::EEXIST);
        }
        let tu: Arc<dyn Inode> = t.copy_up(true)?;
        let pu = self.copy_up(false)?;
        let had_wh = Self::clear_whiteout(&pu, name)?;
        if let Err(e) = pu.link(name, &tu) {
            if had_wh {
                let _ = Self::put_whiteout(&pu, name);
            }
            return Err(e);
        }
        // Both names share the object (it is in the upper layer now, so
        // its parent link no longer matters).
        let below = if had_wh { Some(true) } else { slot.lower_below };
        self.set_slot(name, Slot { node: Some(t), lower_below: below });
        Ok(())
    }

    fn unlink(&self, name: &str, dir: bool) -> Result<(), Errno> {
        if self.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        check_name(name)?;
        let _ns = self.ovl.ns.lock();
        let slot = self.get_slot(name, true)?;
        let node = slot.node.clone().ok_or(Errno::ENOENT)?;
        if dir {
            if node.kind != Kind::Dir {
                return Err(Errno::ENOTDIR);
            }
            if !node.merged()?.is_empty() {
                return Err(Errno::ENOTEMPTY);
            }
        } else if node.kind == Kind::Dir {
            return Err(Errno::EISDIR);
        }
        let below = self.below(&slot, name)?;
        let pu = self.copy_up(false)?;
        let node_upper = node.upper();
        if let Some(cu) = &node_upper {
            if dir {
                Self::clear_whiteouts_in(cu)?;
            }
            pu.unlink(name, dir)?;
        }
        if below {
            Self::put_whiteout(&pu, name)?;
        }
        if dir || node_upper.is_none() {
            node.unlinked.store(true, Ordering::Release);
            // Nothing can be looked up in it any more.
            let mut s = node.st.lock();
            s.slots.clear();
            s.lower_list = None;
        }
        self.set_slot(name, Slot { node: None, lower_below: Some(below) });
        Ok(())
    }

    fn rename(&self, name: &str, new_dir: &Arc<dyn Inode>, new_name: &str, flags: u32) -> Result<(), Errno> {
        if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0 || flags == RENAME_NOREPLACE | RENAME_EXCHANGE {
            return Err(Errno::EINVAL);
        }
        if self.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        check_name(name)?;
        check_name(new_name)?;
        let nd = new_dir.as_any().downcast_ref::<OvlInode>().ok_or(Errno::EXDEV)?;
        if !Arc::ptr_eq(&nd.ovl, &self.ovl) {
            return Err(Errno::EXDEV);
        }
        if nd.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        let nd = nd.arc()?;
        let _ns = self.ovl.ns.lock();
        let ss = self.get_slot(name, true)?;
        let src = ss.node.clone().ok_or(Errno::ENOENT)?;
        let ds = nd.get_slot(new_name, true)?;
        let dst = ds.node.clone();
        if let Some(d) = &dst {
            let same_upper = matches!((src.upper(), d.upper()), (Some(a), Some(b)) if Arc::ptr_eq(&a, &b));
            if Arc::ptr_eq(d, &src) || same_upper {
                return Ok(());
            }
        }
        let exchange = flags & RENAME_EXCHANGE != 0;
        if exchange && dst.is_none() {
            return Err(Errno::ENOENT);
        }
        if flags & RENAME_NOREPLACE != 0 && dst.is_some() {
            return Err(Errno::EEXIST);
        }
        // Without redirect_dir a directory with a lower part cannot move:
        // EXDEV makes mv and friends copy it instead.
        let moves_lower_dir = |n: &Arc<OvlInode>| n.kind == Kind::Dir && n.has_lower();
        if moves_lower_dir(&src) || (exchange && dst.as_ref().is_some_and(moves_lower_dir)) {
            return Err(Errno::EXDEV);
        }
        if !exchange {
            if let Some(d) = &dst {
                match (src.kind == Kind::Dir, d.kind == Kind::Dir) {
                    (true, false) => return Err(Errno::ENOTDIR),
                    (false, true) => return Err(Errno::EISDIR),
                    (true, true) if !d.merged()?.is_empty() => return Err(Errno::ENOTEMPTY),
                    _ => {}
                }
            }
        }
        let src_below = if exchange { false } else { self.below(&ss, name)? };
        src.copy_up(true)?;
        if let (true, Some(d)) = (exchange, &dst) {
            d.copy_up(true)?;
        }
        let spu = self.copy_up(false)?;
        let dpu = nd.copy_up(false)?;
        let mut had_wh = false;
        if !exchange {
            if let Ok(x) = dpu.child(new_name) {
                if x.is_whiteout() {
                    dpu.unlink(new_name, false)?;
                    had_wh = true;
                }
            }
            if let Some(du) = dst.as_ref().and_then(|d| if d.kind == Kind::Dir { d.upper() } else { None }) {
                Self::clear_whiteouts_in(&du)?;
            }
        }
        let dpu_dyn: Arc<dyn Inode> = dpu.clone();
        if let Err(e) = spu.rename(name, &dpu_dyn, new_name, flags) {
            if had_wh {
                let _ = Self::put_whiteout(&dpu, new_name);
            }
            return Err(e);
        }
        // A moved directory is upper-only: it must not merge with a lower
        // directory at its new name.
        for n in core::iter::once(&src).chain(dst.as_ref().filter(|_| exchange)) {
            if n.kind == Kind::Dir {
                if let Some(u) = n.upper() {
                    u.set_opaque(true);
                }
            }
        }
        if src_below {
            Self::put_whiteout(&spu, name)?;
        }
        if exchange {
            self.set_slot(name, Slot { node: dst.clone(), lower_below: ss.lower_below });
            nd.set_slot(new_name, Slot { node: Some(src.clone()), lower_below: ds.lower_below });
            if let Some(d) = &dst {
                *d.place.lock() = (self.me.clone(), name.into());
            }
        } else {
            self.set_slot(name, Slot { node: None, lower_below: Some(src_below) });
            let below = if had_wh { Some(true) } else { ds.lower_below };
            nd.set_slot(new_name, Slot { node: Some(src.clone()), lower_below: below });
            if let Some(d) = &dst {
                if d.kind == Kind::Dir || d.upper().is_none() {
                    d.unlinked.store(true, Ordering::Release);
                }
            }
        }
        *src.place.lock() = (Arc::downgrade(&nd), new_name.into());
        Ok(())
    }

    fn setattr(&self, a: &SetAttr) -> Result<(), Errno> {
        let _ns = self.ovl.ns.lock();
        // Truncation to 0 (O_TRUNC) need not copy the old content.
        let data = !(self.kind == Kind::File && a.size == Some(0));
        self.copy_up(data)?.setattr(a)
    }

    fn get_xattr(&self, name: &str) -> Result<Vec<u8>, Errno> {
        // Not copied up: the lower object's user.* attributes show
        // through (copy-up copies them, so they do not change with it).
        match self.upper() {
            Some(u) => u.get_xattr(name),
            None if crate::vfs::xattr::namespace(name)? == crate::vfs::xattr::Ns::User => {
                if !self.lower_xattr_names()?.iter().any(|n| n == name) {
                    return Err(Errno::ENODATA);
                }
                self.lower().ok_or(Errno::ENODATA)?.get_xattr(name)
            }
            None => Err(Errno::ENODATA),
        }
    }

    fn set_xattr(&self, name: &str, value: Option<&[u8]>, flags: u32) -> Result<(), Errno> {
        if crate::vfs::xattr::namespace(name)? == crate::vfs::xattr::Ns::Unstored {
            return Err(Errno::EOPNOTSUPP);
        }
        let _ns = self.ovl.ns.lock();
        if value.is_none() && self.upper().is_none() && !self.lower_xattr_names()?.iter().any(|n| n == name) {
            return Err(Errno::ENODATA);
        }
        self.copy_up(true)?.set_xattr(name, value, flags)
    }

    fn list_xattr(&self) -> Result<Vec<String>, Errno> {
        match self.upper() {
            Some(u) => u.list_xattr(),
            None => Ok(self.lower_xattr_names()?.to_vec()),
        }
    }

    fn id(&self) -> (u64, u64) {
        if self.kind == Kind::Dir {
            return (self.ovl.dev, self.dir_ino);
        }
        match self.upper() {
            Some(u) => u.id(),
            None => self.lower_stat().map_or((0, 0), |s| (s.st_dev, s.st_ino)),
        }
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

/// An open overlay directory. The merged listing is built at the first
/// getdents (or after a rewind), not at open: directories are often
/// opened only to serve as *at() anchors.
pub struct OvlDir {
    node: Arc<OvlInode>,
    pos: Mutex<u64>,
    list: Mutex<Option<Vec<DirEntry>>>,
    /// Opened with O_PATH: no access to the contents.
    path_only: bool,
}

impl FileOps for OvlDir {
    fn read(&self, _t: &Task, _segs: &[UserSeg], _off: Option<u64>, _nonblock: bool) -> SysResult {
        Err(Errno::EISDIR)
    }

    fn write(&self, _t: &Task, _segs: &[UserSeg], _off: Option<u64>, _nonblock: bool) -> SysResult {
        Err(Errno::EISDIR)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        self.node.stat()
    }

    fn seek(&self, off: i64, whence: u32) -> SysResult {
        let mut pos = self.pos.lock();
        let new = match whence {
            0 => off,
            1 => i64::try_from(*pos).ok().and_then(|p| p.checked_add(off)).ok_or(Errno::EINVAL)?,
            _ => return Err(Errno::EINVAL),
        };
        let new = u64::try_from(new).map_err(|_| Errno::EINVAL)?;
        *pos = new;
        Ok(new)
    }

    fn getdents(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        if self.path_only {
            return Err(Errno::EBADF);
        }
        let mut pos = self.pos.lock();
        let mut list = self.list.lock();
        if list.is_none() || *pos == 0 {
            let mut v = vec![
                DirEntry { name: ".".into(), ino: self.node.dir_ino, kind: Kind::Dir },
                DirEntry { name: "..".into(), ino: self.node.parent_ino(), kind: Kind::Dir },
            ];
            v.extend(self.node.merged()?);
            *list = Some(v);
        }
        let Some(l) = list.as_ref() else { return Ok(0) };
        let mut i = usize::try_from(*pos).unwrap_or(usize::MAX);
        let mut at = 0;
        while let Some(e) = l.get(i) {
            match encode_dirent(&mut buf[at..], e.ino, i as u64 + 1, e.kind.dtype(), &e.name) {
                Some(n) => {
                    at += n;
                    i += 1;
                }
                None if at == 0 => return Err(Errno::EINVAL),
                None => break,
            }
        }
        if at > 0 {
            *pos = i as u64;
        }
        Ok(at)
    }

    fn path(&self) -> &str {
        "overlay"
    }

    fn is_dir(&self) -> bool {
        true
    }

    fn poll(&self, _events: u16) -> u16 {
        POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM
    }

    fn read_kernel(&self, _buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicUsize;

    const ROOT: Creator = Creator { uid: 0, gid: 0 };

    /// A read-only view of another filesystem (as the host lower layer
    /// is), counting the calls that would be host round trips.
    struct Ro {
        inner: Arc<dyn Inode>,
        calls: Arc<AtomicUsize>,
    }

    impl Inode for Ro {
        fn stat(&self) -> Result<Stat, Errno> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.inner.stat()
        }
        fn kind(&self) -> Kind {
            self.inner.kind()
        }
        fn lookup(&self, name: &str) -> Result<Arc<dyn Inode>, Errno> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let i = self.inner.lookup(name)?;
            Ok(Arc::new(Ro { inner: i, calls: self.calls.clone() }))
        }
        fn readlink(&self) -> Result<String, Errno> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.inner.readlink()
        }
        fn open(&self, flags: u32) -> Result<Box<dyn FileOps>, Errno> {
            if flags & O_ACCMODE != 0 {
                return Err(Errno::EROFS);
            }
            self.inner.open(flags)
        }
        fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.inner.readdir()
        }
        fn get_xattr(&self, name: &str) -> Result<Vec<u8>, Errno> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.inner.get_xattr(name)
        }
        fn list_xattr(&self) -> Result<Vec<String>, Errno> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.inner.list_xattr()
        }
        fn as_any(&self) -> &dyn core::any::Any {
            self
        }
    }

    struct World {
        lower: Arc<Tmpfs>,
        upper: Arc<Tmpfs>,
        calls: Arc<AtomicUsize>,
        root: Arc<dyn Inode>,
    }

    impl World {
        /// Another overlay over the same layers: sees only what the
        /// layers record, nothing cached.
        fn remount(&self) -> Arc<dyn Inode> {
            new(self.upper.clone(), Arc::new(Ro { inner: self.lower.root(), calls: self.calls.clone() }), 99)
        }
        fn calls(&self) -> usize {
            self.calls.load(Ordering::Relaxed)
        }
    }

    fn file(d: &Arc<TmpInode>, name: &str, data: &[u8], mode: u32, uid: u32) -> Arc<TmpInode> {
        let f = d.create_node(name, Kind::File, mode, 0, Creator { uid, gid: uid }).unwrap();
        f.write_at(0, data, false).unwrap();
        f.setattr(&SetAttr { mtime: Some((1000, 5)), ..SetAttr::default() }).unwrap();
        f
    }

    /// lower: /etc/{passwd,hosts} /bin/sh /dir/sub/deep /dir/keep /empty
    /// /lnk -> etc/passwd
    fn world() -> World {
        world_with_limit(1 << 20)
    }

    fn world_with_limit(limit: u64) -> World {
        let lower = Tmpfs::new(1, 0o755, ROOT);
        let r = lower.root_inode();
        let etc = r.create_node("etc", Kind::Dir, 0o755, 0, ROOT).unwrap();
        file(&etc, "passwd", b"root:x:0:0", 0o644, 0);
        file(&etc, "hosts", b"127.0.0.1 localhost", 0o600, 7);
        let bin = r.create_node("bin", Kind::Dir, 0o755, 0, ROOT).unwrap();
        file(&bin, "sh", &[0x7f, b'E', b'L', b'F'], 0o4755, 0);
        let dir = r.create_node("dir", Kind::Dir, 0o750, 0, Creator { uid: 3, gid: 4 }).unwrap();
        let sub = dir.create_node("sub", Kind::Dir, 0o700, 0, ROOT).unwrap();
        file(&sub, "deep", b"deep", 0o644, 0);
        file(&dir, "keep", b"keep", 0o644, 0);
        r.create_node("empty", Kind::Dir, 0o755, 0, ROOT).unwrap();
        r.symlink_node("lnk", "etc/passwd", ROOT).unwrap();
        let upper = Tmpfs::with_limit(2, 0o755, ROOT, limit);
        let calls = Arc::new(AtomicUsize::new(0));
        let root = new(upper.clone(), Arc::new(Ro { inner: lower.root(), calls: calls.clone() }), 99);
        World { lower, upper, calls, root }
    }

    fn walk(root: &Arc<dyn Inode>, path: &str) -> Result<Arc<dyn Inode>, Errno> {
        let mut cur = root.clone();
        for c in path.split('/').filter(|c| !c.is_empty()) {
            cur = cur.lookup(c)?;
        }
        Ok(cur)
    }

    fn read_all(i: &Arc<dyn Inode>) -> Vec<u8> {
        let f = i.open(0).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            let n = f.read_kernel(&mut buf, out.len() as u64).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    fn names(i: &Arc<dyn Inode>) -> Vec<String> {
        let mut v: Vec<String> = i.readdir().unwrap().into_iter().map(|e| e.name).collect();
        v.sort();
        v
    }

    fn upper_at(w: &World, path: &str) -> Result<Arc<TmpInode>, Errno> {
        let mut cur = w.upper.root_inode();
        for c in path.split('/').filter(|c| !c.is_empty()) {
            cur = cur.child(c)?;
        }
        Ok(cur)
    }

    fn lower_content(w: &World, path: &str) -> Vec<u8> {
        read_all(&walk(&w.lower.root(), path).unwrap())
    }

    #[test]
    fn lookup_through_and_cache() {
        let w = world();
        let passwd = walk(&w.root, "etc/passwd").unwrap();
        assert_eq!(passwd.kind(), Kind::File);
        assert_eq!(read_all(&passwd), b"root:x:0:0");
        assert_eq!(passwd.stat().unwrap().st_mode, 0o100644);
        let lnk = walk(&w.root, "lnk").unwrap();
        assert_eq!(lnk.readlink().unwrap(), "etc/passwd");
        assert_eq!(walk(&w.root, "etc/nope").err(), Some(Errno::ENOENT));
        assert_eq!(walk(&w.root, "etc/passwd/x").err(), Some(Errno::ENOTDIR));
        assert_eq!(w.root.lookup(&"x".repeat(256)).err(), Some(Errno::ENAMETOOLONG));
        assert_eq!(names(&w.root), ["bin", "dir", "empty", "etc", "lnk"]);
        // Repeats are served from the overlay's caches: no lower calls.
        lnk.readlink().unwrap();
        passwd.stat().unwrap();
        let before = w.calls();
        let again = walk(&w.root, "etc/passwd").unwrap();
        assert_eq!(walk(&w.root, "etc/nope").err(), Some(Errno::ENOENT));
        lnk.readlink().unwrap();
        passwd.stat().unwrap();
        assert_eq!(w.calls(), before);
        // ... and one object per name.
        assert!(core::ptr::eq(Arc::as_ptr(&again) as *const u8, Arc::as_ptr(&passwd) as *const u8));
        // Nothing was written to the upper layer by reading.
        assert!(w.upper.root_inode().children().unwrap().is_empty());
        // A lower listing, once read, answers misses too.
        let etc = walk(&w.root, "etc").unwrap();
        names(&etc);
        let before = w.calls();
        assert_eq!(etc.lookup("other").err(), Some(Errno::ENOENT));
        assert_eq!(w.calls(), before);
    }

    #[test]
    fn whiteout_on_unlink_and_recreate() {
        let w = world();
        let etc = walk(&w.root, "etc").unwrap();
        etc.unlink("passwd", false).unwrap();
        assert_eq!(etc.lookup("passwd").err(), Some(Errno::ENOENT));
        assert_eq!(names(&etc), ["hosts"]);
        assert_eq!(etc.unlink("passwd", false), Err(Errno::ENOENT));
        // The upper layer records a whiteout; the lower is untouched.
        assert!(upper_at(&w, "etc/passwd").unwrap().is_whiteout());
        assert_eq!(lower_content(&w, "etc/passwd"), b"root:x:0:0");
        let fresh = w.remount();
        assert_eq!(walk(&fresh, "etc/passwd").err(), Some(Errno::ENOENT));
        assert_eq!(names(&walk(&fresh, "etc").unwrap()), ["hosts"]);
        // Recreating replaces the whiteout with a new, empty file.
        let n = etc.create("passwd", Kind::File, 0o600, 0, ROOT).unwrap();
        assert_eq!(n.stat().unwrap().st_size, 0);
        assert_eq!(read_all(&etc.lookup("passwd").unwrap()), b"");
        assert_eq!(names(&etc), ["hosts", "passwd"]);
        assert_eq!(etc.create("passwd", Kind::File, 0o600, 0, ROOT).err(), Some(Errno::EEXIST));
        let fresh = w.remount();
        assert_eq!(read_all(&walk(&fresh, "etc/passwd").unwrap()), b"");
        // Removing the recreated file brings the whiteout back.
        etc.unlink("passwd", false).unwrap();
        assert!(upper_at(&w, "etc/passwd").unwrap().is_whiteout());
        assert_eq!(walk(&w.remount(), "etc/passwd").err(), Some(Errno::ENOENT));
        // An upper-only file leaves nothing behind.
        etc.create("tmp", Kind::File, 0o600, 0, ROOT).unwrap();
        etc.unlink("tmp", false).unwrap();
        assert_eq!(upper_at(&w, "etc/tmp").err(), Some(Errno::ENOENT));
        // Whiteouts cannot be made through the overlay.
        assert_eq!(etc.create("c", Kind::CharDev, 0o600, 0, ROOT).err(), Some(Errno::EPERM));
        assert!(etc.create("c", Kind::CharDev, 0o600, 0x103, ROOT).is_ok());
    }

    #[test]
    fn rmdir_then_mkdir_is_opaque() {
        let w = world();
        let dir = walk(&w.root, "dir").unwrap();
        assert_eq!(dir.unlink("sub", true), Err(Errno::ENOTEMPTY));
        assert_eq!(dir.unlink("sub", false), Err(Errno::EISDIR));
        assert_eq!(dir.unlink("keep", true), Err(Errno::ENOTDIR));
        let sub = dir.lookup("sub").unwrap();
        sub.unlink("deep", false).unwrap();
        // Merged view empty (the upper holds a whiteout): rmdir works.
        dir.unlink("sub", true).unwrap();
        assert_eq!(dir.lookup("sub").err(), Some(Errno::ENOENT));
        assert!(upper_at(&w, "dir/sub").unwrap().is_whiteout());
        // The removed directory is dead, even through an old reference.
        assert_eq!(sub.lookup("deep").err(), Some(Errno::ENOENT));
        assert_eq!(sub.create("x", Kind::File, 0o644, 0, ROOT).err(), Some(Errno::ENOENT));
        // Recreated: opaque, the lower content stays hidden.
        let sub2 = dir.create("sub", Kind::Dir, 0o755, 0, ROOT).unwrap();
        assert_eq!(sub2.lookup("deep").err(), Some(Errno::ENOENT));
        assert!(sub2.readdir().unwrap().is_empty());
        assert!(upper_at(&w, "dir/sub").unwrap().is_opaque());
        let fresh = w.remount();
        assert_eq!(walk(&fresh, "dir/sub/deep").err(), Some(Errno::ENOENT));
        assert!(walk(&fresh, "dir/sub").unwrap().readdir().unwrap().is_empty());
        // And it can be removed again (leaving a whiteout: the lower has it).
        dir.unlink("sub", true).unwrap();
        assert!(upper_at(&w, "dir/sub").unwrap().is_whiteout());
        // An empty lower directory goes straight to a whiteout.
        w.root.unlink("empty", true).unwrap();
        assert!(upper_at(&w, "empty").unwrap().is_whiteout());
        assert_eq!(names(&w.root), ["bin", "dir", "etc", "lnk"]);
        // The lower tree is untouched.
        assert_eq!(lower_content(&w, "dir/sub/deep"), b"deep");
    }

    #[test]
    fn readdir_merges() {
        let w = world();
        let etc = walk(&w.root, "etc").unwrap();
        etc.create("new", Kind::File, 0o644, 0, ROOT).unwrap();
        etc.symlink("sl", "x", ROOT).unwrap();
        etc.unlink("hosts", false).unwrap();
        assert_eq!(names(&etc), ["new", "passwd", "sl"]);
        // Copying a file up does not duplicate it.
        etc.lookup("passwd").unwrap().setattr(&SetAttr { mode: Some(0o600), ..SetAttr::default() }).unwrap();
        assert_eq!(names(&etc), ["new", "passwd", "sl"]);
        // getdents: ".", "..", then the merged entries; directories carry
        // the inode numbers stat reports.
        w.root.create("made", Kind::Dir, 0o755, 0, ROOT).unwrap();
        let f = w.root.open(0).unwrap();
        assert!(f.is_dir());
        let mut buf = vec![0u8; 4096];
        let n = f.getdents(&mut buf).unwrap();
        let mut got = Vec::new();
        let mut at = 0;
        while at < n {
            let ino = u64::from_le_bytes(buf[at..at + 8].try_into().unwrap());
            let reclen = u16::from_le_bytes([buf[at + 16], buf[at + 17]]) as usize;
            let name = &buf[at + 19..at + reclen];
            let end = name.iter().position(|&c| c == 0).unwrap();
            got.push((String::from_utf8(name[..end].to_vec()).unwrap(), ino, buf[at + 18]));
            at += reclen;
        }
        let mut got_names: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
        assert_eq!(&got_names[..2], [".", ".."]);
        got_names.sort();
        assert_eq!(got_names, [".", "..", "bin", "dir", "empty", "etc", "lnk", "made"]);
        for (name, ino, dtype) in &got {
            if name.starts_with('.') {
                continue;
            }
            let i = w.root.lookup(name).unwrap();
            assert_eq!(*dtype, i.kind().dtype());
            if i.kind() == Kind::Dir {
                assert_eq!(*ino, i.stat().unwrap().st_ino, "{name}");
                assert_eq!(i.stat().unwrap().st_dev, 99);
            }
        }
        assert_eq!(f.getdents(&mut buf), Ok(0));
        assert_eq!(f.seek(0, 0), Ok(0));
        assert_eq!(f.getdents(&mut [0u8; 8]), Err(Errno::EINVAL));
        assert_eq!(w.root.open(O_PATH).unwrap().getdents(&mut buf), Err(Errno::EBADF));
    }

    /// A lower file's user.* xattrs show through (one lower listing, then
    /// cached), are copied up with it, and changes never reach the lower.
    #[test]
    fn lower_xattrs_show_and_copy_up() {
        let w = world();
        let lp = w.lower.root_inode().child("etc").unwrap().child("passwd").unwrap();
        lp.set_xattr("user.a", Some(b"1"), 0).unwrap();
        lp.set_xattr("user.b", Some(b"2"), 0).unwrap();
        lp.set_xattr("trusted.t", Some(b"t"), 0).unwrap();
        let p = walk(&w.root, "etc/passwd").unwrap();
        let before = w.calls();
        let mut l = p.list_xattr().unwrap();
        l.sort();
        assert_eq!(l, ["user.a", "user.b"]);
        assert_eq!(p.list_xattr().unwrap().len(), 2);
        assert_eq!(w.calls(), before + 1, "the lower listing is asked once");
        assert_eq!(p.get_xattr("user.a").unwrap(), b"1");
        assert_eq!(p.get_xattr("user.zz"), Err(Errno::ENODATA));
        assert_eq!(p.get_xattr("trusted.t"), Err(Errno::ENODATA));
        // Removing one copies the file up with the others.
        p.set_xattr("user.b", None, 0).unwrap();
        let up = upper_at(&w, "etc/passwd").unwrap();
        assert_eq!(up.list_xattr().unwrap(), ["user.a"]);
        assert_eq!(up.get_xattr("user.a").unwrap(), b"1");
        assert_eq!(p.set_xattr("user.b", None, 0), Err(Errno::ENODATA));
        assert_eq!(read_all(&p), b"root:x:0:0");
        let mut l = lp.list_xattr().unwrap();
        l.sort();
        assert_eq!(l, ["trusted.t", "user.a", "user.b"], "the lower is unchanged");
        // A copy-up for another reason (a chmod) also takes them along.
        let h = walk(&w.root, "etc/hosts").unwrap();
        w.lower.root_inode().child("etc").unwrap().child("hosts").unwrap().set_xattr("user.h", Some(b"h"), 0).unwrap();
        h.setattr(&SetAttr { mode: Some(0o640), ..SetAttr::default() }).unwrap();
        assert_eq!(upper_at(&w, "etc/hosts").unwrap().get_xattr("user.h").unwrap(), b"h");
        assert_eq!(h.get_xattr("user.h").unwrap(), b"h");
    }

    #[test]
    fn copy_up_preserves_and_lower_unchanged() {
        let w = world();
        let hosts = walk(&w.root, "etc/hosts").unwrap();
        let lower_st = hosts.stat().unwrap();
        // Opening for writing copies up first.
        let f = hosts.open(2).unwrap();
        let up = upper_at(&w, "etc/hosts").unwrap();
        assert_eq!(read_all(&(up.clone() as Arc<dyn Inode>)), b"127.0.0.1 localhost");
        let st = hosts.stat().unwrap();
        assert_eq!((st.st_mode, st.st_uid, st.st_gid, st.st_size), (0o100600, 7, 7, 19));
        assert_eq!((st.st_mtime, st.st_mtime_nsec), (1000, 5));
        assert_eq!(st.st_dev, 2);
        assert_ne!(lower_st.st_dev, st.st_dev);
        // The parent came up with the lower directory's attributes.
        let etc_up = upper_at(&w, "etc").unwrap().stat().unwrap();
        assert_eq!(etc_up.st_mode, 0o040755);
        assert!(!upper_at(&w, "etc").unwrap().is_opaque());
        // Writes land in the upper copy only.
        up.write_at(0, b"10.0.0.99", false).unwrap();
        assert_eq!(f.read_kernel(&mut [0u8; 4], 0), Ok(4));
        assert_eq!(read_all(&hosts), b"10.0.0.99 localhost");
        assert_eq!(lower_content(&w, "etc/hosts"), b"127.0.0.1 localhost");
        // A deep copy-up creates the whole chain with its attributes.
        let deep = walk(&w.root, "dir/sub/deep").unwrap();
        deep.setattr(&SetAttr { mode: Some(0o640), ..SetAttr::default() }).unwrap();
        let dir_up = upper_at(&w, "dir").unwrap().stat().unwrap();
        assert_eq!((dir_up.st_mode, dir_up.st_uid, dir_up.st_gid), (0o040750, 3, 4));
        assert_eq!(upper_at(&w, "dir/sub").unwrap().stat().unwrap().st_mode, 0o040700);
        assert_eq!(read_all(&deep), b"deep");
        assert_eq!(deep.stat().unwrap().st_mode, 0o100640);
        assert_eq!(walk(&w.lower.root(), "dir/sub/deep").unwrap().stat().unwrap().st_mode, 0o100644);
        // The merged directory still shows the lower siblings.
        assert_eq!(names(&walk(&w.root, "dir").unwrap()), ["keep", "sub"]);
        // Truncation copies up without the old bytes; set-id bits kept.
        let sh = walk(&w.root, "bin/sh").unwrap();
        sh.setattr(&SetAttr { size: Some(0), ..SetAttr::default() }).unwrap();
        assert_eq!(sh.stat().unwrap().st_size, 0);
        assert_eq!(sh.stat().unwrap().st_mode, 0o104755);
        assert_eq!(lower_content(&w, "bin/sh"), b"\x7fELF");
        // Reading does not copy up.
        let keep = walk(&w.root, "dir/keep").unwrap();
        read_all(&keep);
        assert_eq!(upper_at(&w, "dir/keep").err(), Some(Errno::ENOENT));
        // Symlinks copy up with their target (lchown).
        let lnk = walk(&w.root, "lnk").unwrap();
        lnk.setattr(&SetAttr { uid: Some(5), ..SetAttr::default() }).unwrap();
        assert_eq!(upper_at(&w, "lnk").unwrap().readlink().unwrap(), "etc/passwd");
        assert_eq!(lnk.readlink().unwrap(), "etc/passwd");
        // Directory inode numbers survive copy-up.
        let etc = walk(&w.root, "dir").unwrap();
        assert_eq!(etc.stat().unwrap().st_ino, walk(&w.remount(), "dir").unwrap().stat().unwrap().st_ino);
        assert_eq!(etc.stat().unwrap().st_nlink, 1);
    }

    #[test]
    fn copy_up_enospc_leaves_nothing() {
        let w = world_with_limit(8);
        let hosts = walk(&w.root, "etc/hosts").unwrap();
        assert_eq!(hosts.open(1).err(), Some(Errno::ENOSPC));
        assert_eq!(upper_at(&w, "etc/hosts").err(), Some(Errno::ENOENT));
        assert_eq!(read_all(&hosts), b"127.0.0.1 localhost");
        assert_eq!(w.upper.used(), 0);
        // A small file still fits.
        walk(&w.root, "bin/sh").unwrap().open(1).unwrap();
        assert_eq!(w.upper.used(), 4);
    }

    #[test]
    fn rename_rules() {
        let w = world();
        let etc = walk(&w.root, "etc").unwrap();
        let dir = walk(&w.root, "dir").unwrap();
        // Directories with a lower part cannot move.
        assert_eq!(w.root.rename("etc", &w.root, "etc2", 0), Err(Errno::EXDEV));
        assert_eq!(dir.rename("sub", &w.root, "sub", 0), Err(Errno::EXDEV));
        assert_eq!(etc.rename("passwd", &w.root, "dir", RENAME_EXCHANGE), Err(Errno::EXDEV));
        // A lower file: copied up, then moved; the old name is whited out.
        etc.rename("passwd", &dir, "pw", 0).unwrap();
        assert_eq!(etc.lookup("passwd").err(), Some(Errno::ENOENT));
        assert_eq!(read_all(&dir.lookup("pw").unwrap()), b"root:x:0:0");
        assert!(upper_at(&w, "etc/passwd").unwrap().is_whiteout());
        assert_eq!(lower_content(&w, "etc/passwd"), b"root:x:0:0");
        let fresh = w.remount();
        assert_eq!(walk(&fresh, "etc/passwd").err(), Some(Errno::ENOENT));
        assert_eq!(read_all(&walk(&fresh, "dir/pw").unwrap()), b"root:x:0:0");
        // Onto a whited-out name, and onto a lower file.
        dir.rename("pw", &etc, "passwd", RENAME_NOREPLACE).unwrap();
        assert_eq!(read_all(&etc.lookup("passwd").unwrap()), b"root:x:0:0");
        assert!(!upper_at(&w, "etc/passwd").unwrap().is_whiteout());
        assert_eq!(etc.rename("passwd", &etc, "hosts", RENAME_NOREPLACE), Err(Errno::EEXIST));
        etc.rename("passwd", &etc, "hosts", 0).unwrap();
        assert_eq!(names(&etc), ["hosts"]);
        assert_eq!(read_all(&walk(&w.remount(), "etc/hosts").unwrap()), b"root:x:0:0");
        // Type rules against the merged view.
        assert_eq!(etc.rename("hosts", &w.root, "dir", 0), Err(Errno::EISDIR));
        let made = w.root.create("made", Kind::Dir, 0o755, 0, ROOT).unwrap();
        assert_eq!(w.root.rename("made", &etc, "hosts", 0), Err(Errno::ENOTDIR));
        assert_eq!(w.root.rename("made", &w.root, "dir", 0), Err(Errno::ENOTEMPTY));
        // An upper-only directory moves, also over an empty lower one,
        // which it then hides.
        made.create("f", Kind::File, 0o644, 0, ROOT).unwrap();
        w.root.rename("made", &w.root, "empty", 0).unwrap();
        assert_eq!(names(&walk(&w.root, "empty").unwrap()), ["f"]);
        assert!(upper_at(&w, "empty").unwrap().is_opaque());
        assert_eq!(w.root.lookup("made").err(), Some(Errno::ENOENT));
        // Into its own subtree.
        let empty = walk(&w.root, "empty").unwrap();
        assert_eq!(w.root.rename("empty", &empty, "x", 0), Err(Errno::EINVAL));
        // Exchange a lower file with an upper one.
        let bin = walk(&w.root, "bin").unwrap();
        bin.rename("sh", &empty, "f", RENAME_EXCHANGE).unwrap();
        assert_eq!(read_all(&empty.lookup("f").unwrap()), b"\x7fELF");
        assert_eq!(read_all(&bin.lookup("sh").unwrap()), b"");
        assert_eq!(bin.rename("sh", &empty, "none", RENAME_EXCHANGE), Err(Errno::ENOENT));
        assert_eq!(bin.rename("sh", &bin, "x", 3), Err(Errno::EINVAL));
        assert_eq!(lower_content(&w, "bin/sh"), b"\x7fELF");
    }

    #[test]
    fn links_and_dead_objects() {
        let w = world();
        let etc = walk(&w.root, "etc").unwrap();
        let passwd = etc.lookup("passwd").unwrap();
        w.root.link("pw", &passwd).unwrap();
        assert_eq!(passwd.stat().unwrap().st_nlink, 2);
        assert_eq!(w.root.lookup("pw").unwrap().id(), passwd.id());
        assert_eq!(w.root.link("pw", &passwd), Err(Errno::EEXIST));
        assert_eq!(w.root.link("d", &etc), Err(Errno::EPERM));
        let other = new(Tmpfs::new(5, 0o755, ROOT), w.lower.root(), 98);
        assert_eq!(other.link("x", &passwd), Err(Errno::EXDEV));
        // An unlinked lower file cannot be resurrected by a copy-up.
        let hosts = etc.lookup("hosts").unwrap();
        etc.unlink("hosts", false).unwrap();
        assert_eq!(hosts.setattr(&SetAttr { mode: Some(0o600), ..SetAttr::default() }), Err(Errno::ENOENT));
        assert_eq!(hosts.open(1).err(), Some(Errno::ENOENT));
        assert!(upper_at(&w, "etc/hosts").unwrap().is_whiteout());
        // Directory attributes: chmod of a lower directory copies it up.
        etc.setattr(&SetAttr { mode: Some(0o700), ..SetAttr::default() }).unwrap();
        assert_eq!(etc.stat().unwrap().st_mode, 0o040700);
        assert_eq!(walk(&w.lower.root(), "etc").unwrap().stat().unwrap().st_mode, 0o040755);
        assert_eq!(etc.open(1).err(), Some(Errno::EISDIR));
    }
}
