//! The host's files, reached through the host interface (the VMM relays
//! path requests to the gofer): read-only as the lower layer of `rvisor
//! do`'s root, or written through for OCI containers and volumes (where
//! the host kernel enforces read-only mounts as well).
//!
//! Caching. Every call is a VM exit (~20 µs), so on an *exclusive* mount
//! (the root: the sandbox is assumed to be its only writer, as runsc
//! assumes of its root filesystem) the kinds of directories and symlinks
//! already looked up are cached by path, and changes made from inside the
//! sandbox drop the affected entries. A *revalidating* mount (option
//! `revalidate`: `rvisor do --volume`, OCI bind mounts — trees the host
//! may change while the sandbox runs, like runsc's shared mounts) caches
//! nothing: each lookup is one stat of the child (one exit, one gofer
//! walk), so a file the host creates, removes, renames or replaces with
//! another kind is seen at the next lookup; stat, readdir and readlink
//! always ask the host, and reads go to the host fd.
use abi::linux::Stat;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use spin::Mutex;

use super::host::{HostFile, Opened};
use super::FileOps;
use crate::errno::Errno;
use crate::host;
use abi::hypercall::{PathOp, XattrOp};
use crate::vfs::{xattr, DirEntry, Inode, Kind};

/// Most cached lookups.
const CACHE_MAX: usize = 16384;

static KIND_CACHE: Mutex<BTreeMap<String, Kind>> = Mutex::new(BTreeMap::new());

const O_ACCMODE: u32 = 3;
const O_NONBLOCK: u32 = 0o4000;
const O_DIRECTORY: u32 = 0o200000;
pub(crate) const O_NOFOLLOW: u32 = 0o400000;
const O_PATH: u32 = 0o10000000;

const O_APPEND: u32 = 0o2000;
const O_CREAT: u32 = 0o100;
const O_EXCL: u32 = 0o200;

/// A host file or directory, by its absolute host path.
pub struct HostInode {
    path: String,
    kind: Kind,
    /// Changes go through to the host (else EROFS).
    writable: bool,
    /// Lookups ask the host every time (see the module docs).
    revalidate: bool,
    /// Nothing changes the tree underneath: the lower layer of an
    /// overlay (see `overlay`), where changes go to the upper layer. A
    /// lookup's stat then stays good for the inode's life.
    stable: bool,
    /// The stat the lookup that made this inode got, with the system
    /// call epoch and time it was taken: it answers `stat` within the
    /// same call (a walk then a stat is one host round trip, not two).
    fresh: Mutex<Option<(u64, u64, Stat)>>,
}

/// What a host inode's mount allows (see the fields of `HostInode`).
#[derive(Clone, Copy)]
struct Mode {
    writable: bool,
    revalidate: bool,
    stable: bool,
}

/// How long a lookup's stat may answer for the inode (also bounded by
/// the system call it was taken in).
const FRESH_NS: u64 = 1_000_000;

/// The container's user namespace maps ((container, host, count) ranges
/// for uids, then gids): host files carry host ids, the sandbox sees and
/// sets container ids. Empty: the identity.
static ID_MAPS: Mutex<(Vec<(u32, u32, u32)>, Vec<(u32, u32, u32)>)> = Mutex::new((Vec::new(), Vec::new()));

/// The host id behind unmapped ids (Linux's overflowuid).
const OVERFLOW_ID: u32 = 65534;

/// Sets the maps from "c h n" triples separated by commas.
pub fn set_id_maps(uid: &str, gid: &str) {
    let parse = |m: &str| -> Vec<(u32, u32, u32)> {
        m.split(',')
            .filter_map(|t| {
                let f: Vec<u32> = t.split_whitespace().filter_map(|x| x.parse().ok()).collect();
                if let [c, h, n] = f[..] { Some((c, h, n)) } else { None }
            })
            .collect()
    };
    *ID_MAPS.lock() = (parse(uid), parse(gid));
}

fn map_id(maps: &[(u32, u32, u32)], id: u32, to_host: bool) -> u32 {
    if maps.is_empty() {
        return id;
    }
    for &(c, h, n) in maps {
        let (from, to) = if to_host { (c, h) } else { (h, c) };
        if id >= from && id - from < n {
            return to + (id - from);
        }
    }
    OVERFLOW_ID
}

/// (uid, gid) of a new host file made by the sandbox user `who`.
fn host_ids(uid: u32, gid: u32) -> (u32, u32) {
    let m = ID_MAPS.lock();
    (map_id(&m.0, uid, true), map_id(&m.1, gid, true))
}

/// A host stat as the container sees it.
pub fn to_container(mut st: Stat) -> Stat {
    let m = ID_MAPS.lock();
    st.st_uid = map_id(&m.0, st.st_uid, false);
    st.st_gid = map_id(&m.1, st.st_gid, false);
    st
}

/// Forgets cached kinds at and below `path` (it was removed or renamed).
fn forget(path: &str) {
    let mut c = KIND_CACHE.lock();
    let below = alloc::format!("{path}/");
    c.retain(|k, _| k != path && !k.starts_with(&below));
}

impl HostInode {
    /// The host's root directory.
    pub fn root() -> Arc<dyn Inode> {
        HostInode::at("/", false, false)
    }

    /// The host file or directory `path` (absolute), written through if
    /// `writable`, revalidated at each lookup if `revalidate`. A missing
    /// path is taken for a directory whose lookups fail with ENOENT.
    pub fn at(path: &str, writable: bool, revalidate: bool) -> Arc<dyn Inode> {
        HostInode::top(path, Mode { writable, revalidate, stable: false })
    }

    /// The read-only host tree `path` as an overlay's lower layer: stable.
    pub fn lower(path: &str) -> Arc<dyn Inode> {
        HostInode::top(path, Mode { writable: false, revalidate: false, stable: true })
    }

    fn top(path: &str, m: Mode) -> Arc<dyn Inode> {
        let kind = host::stat_path(path, false).map(|s| Kind::from_mode(s.st_mode)).unwrap_or(Kind::Dir);
        Arc::new(HostInode::new(path.into(), kind, m, None))
    }

    fn new(path: String, kind: Kind, m: Mode, st: Option<Stat>) -> HostInode {
        let fresh = st.map(|st| (crate::vfs::epoch(), crate::kernel::clock::monotonic_ns(), st));
        HostInode { path, kind, writable: m.writable, revalidate: m.revalidate, stable: m.stable, fresh: Mutex::new(fresh) }
    }

    /// How this inode's children behave.
    fn mode(&self) -> Mode {
        Mode { writable: self.writable, revalidate: self.revalidate, stable: self.stable }
    }

    /// The lookup's stat, if it is still this system call's (or, on a
    /// stable tree, at all).
    fn fresh_stat(&self) -> Option<Stat> {
        let mut f = self.fresh.lock();
        match *f {
            Some((_, _, st)) if self.stable => Some(st),
            Some((epoch, at, st)) if epoch == crate::vfs::epoch() && crate::kernel::clock::monotonic_ns().wrapping_sub(at) < FRESH_NS => Some(st),
            Some(_) => {
                *f = None;
                None
            }
            None => None,
        }
    }

    /// This inode (or, for a directory, its entries) changed.
    fn changed(&self) {
        *self.fresh.lock() = None;
    }

    fn check_writable(&self) -> Result<(), Errno> {
        if self.writable {
            Ok(())
        } else {
            Err(Errno::EROFS)
        }
    }

    /// The path of `name` in this directory, about to be changed.
    fn dir_child(&self, name: &str) -> Result<String, Errno> {
        if self.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        self.check_writable()?;
        self.changed();
        Ok(self.child(name))
    }

    fn new_child(&self, path: String) -> Result<Arc<dyn Inode>, Errno> {
        let st = host::stat_path(&path, true)?;
        Ok(Arc::new(HostInode::new(path, Kind::from_mode(st.st_mode), self.mode(), Some(st))))
    }

    fn child(&self, name: &str) -> String {
        let mut p = self.path.clone();
        if !p.ends_with('/') {
            p.push('/');
        }
        p.push_str(name);
        p
    }
}

impl Inode for HostInode {
    fn stat(&self) -> Result<Stat, Errno> {
        if let Some(st) = self.fresh_stat() {
            return Ok(to_container(st));
        }
        let st = host::stat_path(&self.path, true)?;
        if self.stable {
            *self.fresh.lock() = Some((0, 0, st));
        }
        Ok(to_container(st))
    }

    fn kind(&self) -> Kind {
        self.kind
    }

    fn lookup(&self, name: &str) -> Result<Arc<dyn Inode>, Errno> {
        if self.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        let path = self.child(name);
        let revalidate = self.revalidate;
        if !revalidate {
            if let Some(kind) = KIND_CACHE.lock().get(&path).copied() {
                return Ok(Arc::new(HostInode::new(path, kind, self.mode(), None)));
            }
        }
        let st = host::stat_path(&path, true)?;
        let kind = Kind::from_mode(st.st_mode);
        if !revalidate && matches!(kind, Kind::Dir | Kind::Symlink) {
            let mut c = KIND_CACHE.lock();
            if c.len() >= CACHE_MAX {
                c.clear();
            }
            c.insert(path.clone(), kind);
        }
        Ok(Arc::new(HostInode::new(path, kind, self.mode(), Some(st))))
    }

    /// Revalidating mounts walk several components in one host round
    /// trip (one gofer walk); each inode made keeps its stat for the rest
    /// of the system call.
    fn lookup_path(&self, names: &[&str]) -> Option<crate::vfs::Found> {
        if !self.revalidate || self.kind != Kind::Dir || names.is_empty() {
            return None;
        }
        let mut path = self.path.clone();
        for n in names {
            if !path.ends_with('/') {
                path.push('/');
            }
            path.push_str(n);
        }
        // The host walks from its root: a stat for each component of
        // this directory's own path comes first.
        let skip = self.path.split('/').filter(|c| !c.is_empty()).count();
        if skip + names.len() > abi::hypercall::MAX_WALK_STATS {
            return None;
        }
        let mut stats = vec![Stat::default(); skip + names.len()];
        let (n, stop) = match host::walk_stat(&path, &mut stats) {
            Ok(r) => r,
            // No gofer to walk with: one lookup at a time.
            Err(Errno::ENOSYS) => return None,
            Err(e) => return Some((Vec::new(), Some(e))),
        };
        if n < skip {
            // This directory itself is gone.
            return Some((Vec::new(), Some(stop.unwrap_or(Errno::ENOENT))));
        }
        let mut found: Vec<Arc<dyn Inode>> = Vec::with_capacity(n - skip);
        let mut p = self.path.clone();
        for (name, st) in names.iter().zip(&stats[skip..n]) {
            if !p.ends_with('/') {
                p.push('/');
            }
            p.push_str(name);
            found.push(Arc::new(HostInode::new(p.clone(), Kind::from_mode(st.st_mode), self.mode(), Some(*st))));
        }
        Some((found, stop))
    }

    fn readlink(&self) -> Result<String, Errno> {
        if self.kind != Kind::Symlink {
            return Err(Errno::EINVAL);
        }
        let mut buf = vec![0u8; 4096];
        let n = host::readlink(&self.path, &mut buf)?;
        buf.truncate(n);
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    fn open(&self, flags: u32) -> Result<Box<dyn FileOps>, Errno> {
        if flags & O_ACCMODE != 0 {
            self.check_writable()?;
        }
        if self.stable && self.kind == Kind::File && flags & (O_ACCMODE | O_PATH | O_DIRECTORY) == 0 {
            let st = match self.fresh_stat() {
                Some(st) => st,
                None => host::stat_path(&self.path, true)?,
            };
            if let Some(f) = HostFile::cached(&self.path, &st)? {
                return Ok(Box::new(f));
            }
        }
        let keep = O_DIRECTORY | O_NONBLOCK | O_PATH | O_ACCMODE | O_APPEND;
        let h = host::open(&self.path, (flags & keep) | O_NOFOLLOW)?;
        let how = Opened {
            regular: self.kind == Kind::File,
            read_only: flags & (O_ACCMODE | O_PATH) == 0,
            stable: self.stable.then(|| self.fresh_stat()),
        };
        Ok(Box::new(HostFile::open(h, self.path.clone(), self.kind == Kind::Dir, how)))
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        if self.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        let h = host::open(&self.path, O_DIRECTORY)?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 32 << 10];
        let r = loop {
            let n = match host::getdents(h, &mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) => break Err(e),
            };
            parse_dirents(&buf[..n], &mut out);
        };
        host::close_later(h);
        r.map(|()| out)
    }

    fn create(&self, name: &str, kind: Kind, mode: u32, _rdev: u64, who: crate::vfs::Creator) -> Result<Arc<dyn Inode>, Errno> {
        let path = self.dir_child(name)?;
        let mode = mode & 0o7777;
        match kind {
            Kind::File => {
                let h = host::open_mode(&path, O_CREAT | O_EXCL | O_NOFOLLOW | 1, mode)?;
                host::close(h);
            }
            Kind::Dir | Kind::Fifo | Kind::Socket => {
                host::path_op(PathOp::Create, &path, "", u64::from(kind.mode_bits() | mode))?;
            }
            // Device nodes need privileges the VMM does not use for the sandbox.
            Kind::CharDev | Kind::BlockDev | Kind::Symlink => return Err(Errno::EPERM),
        }
        self.chown_new(&path, who);
        forget(&path);
        self.new_child(path)
    }

    fn symlink(&self, name: &str, target: &str, who: crate::vfs::Creator) -> Result<Arc<dyn Inode>, Errno> {
        let path = self.dir_child(name)?;
        host::path_op(PathOp::Symlink, &path, target, 0)?;
        self.chown_new(&path, who);
        forget(&path);
        self.new_child(path)
    }

    fn link(&self, name: &str, target: &Arc<dyn Inode>) -> Result<(), Errno> {
        let path = self.dir_child(name)?;
        let t = target.as_any().downcast_ref::<HostInode>().ok_or(Errno::EXDEV)?;
        t.changed();
        host::path_op(PathOp::Link, &t.path, &path, 0).map(|_| ())
    }

    fn unlink(&self, name: &str, dir: bool) -> Result<(), Errno> {
        let path = self.dir_child(name)?;
        forget(&path);
        host::path_op(PathOp::Unlink, &path, "", if dir { 0x200 } else { 0 }).map(|_| ())
    }

    fn rename(&self, name: &str, new_dir: &Arc<dyn Inode>, new_name: &str, flags: u32) -> Result<(), Errno> {
        let from = self.dir_child(name)?;
        let to_dir = new_dir.as_any().downcast_ref::<HostInode>().ok_or(Errno::EXDEV)?;
        let to = to_dir.dir_child(new_name)?;
        forget(&from);
        forget(&to);
        host::path_op(PathOp::Rename, &from, &to, u64::from(flags)).map(|_| ())
    }

    fn statfs(&self) -> Option<[u8; 120]> {
        host::statfs(&self.path).ok()
    }

    fn setattr(&self, a: &crate::vfs::SetAttr) -> Result<(), Errno> {
        self.check_writable()?;
        self.changed();
        if let Some(size) = a.size {
            host::path_op(PathOp::Truncate, &self.path, "", size)?;
        }
        if let Some(mode) = a.mode {
            if self.kind != Kind::Symlink {
                host::path_op(PathOp::Chmod, &self.path, "", u64::from(mode & 0o7777))?;
            }
        }
        if a.uid.is_some() || a.gid.is_some() {
            let (hu, hg) = host_ids(a.uid.unwrap_or(0), a.gid.unwrap_or(0));
            let uid = if a.uid.is_some() { hu } else { u32::MAX };
            let gid = if a.gid.is_some() { hg } else { u32::MAX };
            let arg = u64::from(uid) | (u64::from(gid) << 32);
            host::path_op(PathOp::Chown, &self.path, "", arg)?;
        }
        if a.atime.is_some() || a.mtime.is_some() {
            const UTIME_OMIT: i64 = (1 << 30) - 2;
            let (asec, ansec) = a.atime.unwrap_or((0, UTIME_OMIT));
            let (msec, mnsec) = a.mtime.unwrap_or((0, UTIME_OMIT));
            let ts = [asec, ansec, msec, mnsec];
            // The VMM reads the array through its guest-physical address.
            host::path_op(PathOp::Utimens, &self.path, "", crate::mm::phys::va_to_pa(ts.as_ptr() as u64))?;
            core::hint::black_box(&ts);
        }
        Ok(())
    }

    /// Only `user.*` reaches the host (the gofer serves no other
    /// namespace). The others get what an unprivileged program on the
    /// host gets: trusted.* needs CAP_SYS_ADMIN there (reads find
    /// nothing, writes EPERM), security.* and system.* hold nothing the
    /// sandbox may read or set (ENODATA, EOPNOTSUPP).
    fn get_xattr(&self, name: &str) -> Result<Vec<u8>, Errno> {
        if xattr::namespace(name)? != xattr::Ns::User {
            return Err(Errno::ENODATA);
        }
        let mut buf = vec![0u8; xattr::XATTR_SIZE_MAX];
        let n = host::xattr(XattrOp::Get, &self.path, name, &mut buf, 0)?;
        buf.truncate(n);
        Ok(buf)
    }

    fn set_xattr(&self, name: &str, value: Option<&[u8]>, flags: u32) -> Result<(), Errno> {
        match xattr::namespace(name)? {
            xattr::Ns::User => {}
            xattr::Ns::Trusted => return Err(Errno::EPERM),
            xattr::Ns::Unstored => return Err(Errno::EOPNOTSUPP),
        }
        self.check_writable()?;
        self.changed();
        match value {
            Some(v) => {
                // The VMM reads the value through its guest-physical address.
                let mut v = v.to_vec();
                host::xattr(XattrOp::Set, &self.path, name, &mut v, flags)?;
            }
            None => {
                host::xattr(XattrOp::Remove, &self.path, name, &mut [], 0)?;
            }
        }
        Ok(())
    }

    fn list_xattr(&self) -> Result<Vec<String>, Errno> {
        if !matches!(self.kind, Kind::File | Kind::Dir) {
            return Ok(Vec::new()); // user.* lives only on files and directories
        }
        let mut buf = vec![0u8; xattr::XATTR_SIZE_MAX];
        let n = match host::xattr(XattrOp::List, &self.path, "", &mut buf, 0) {
            Ok(n) => n,
            // A host without xattrs (no gofer, or a filesystem without them).
            Err(Errno::EOPNOTSUPP) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(buf[..n.min(buf.len())]
            .split(|&b| b == 0)
            .filter(|n| n.starts_with(b"user."))
            .filter_map(|n| core::str::from_utf8(n).ok())
            .map(String::from)
            .collect())
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

impl HostInode {
    /// New host files belong to the sandbox user who made them (the VMM
    /// creates them as itself). Best effort: a failure leaves the VMM's
    /// owner, as on a filesystem without ownership.
    fn chown_new(&self, path: &str, who: crate::vfs::Creator) {
        let (uid, gid) = host_ids(who.uid, who.gid);
        if uid != 0 || gid != 0 {
            let _ = host::path_op(PathOp::Chown, path, "", u64::from(uid) | (u64::from(gid) << 32));
        }
    }
}

/// Appends the entries of a `linux_dirent64` buffer (minus "." and "..").
pub fn parse_dirents(b: &[u8], out: &mut Vec<DirEntry>) {
    let mut at = 0;
    while at + 19 <= b.len() {
        let ino = u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]));
        let reclen = usize::from(u16::from_le_bytes([b[at + 16], b[at + 17]]));
        if reclen < 20 || at + reclen > b.len() {
            break;
        }
        let dtype = b[at + 18];
        let name_bytes = &b[at + 19..at + reclen];
        let name_len = name_bytes.iter().position(|&c| c == 0).unwrap_or(name_bytes.len());
        let name = String::from_utf8_lossy(&name_bytes[..name_len]).into_owned();
        at += reclen;
        if name == "." || name == ".." {
            continue;
        }
        let kind = match dtype {
            1 => Kind::Fifo,
            2 => Kind::CharDev,
            4 => Kind::Dir,
            6 => Kind::BlockDev,
            10 => Kind::Symlink,
            12 => Kind::Socket,
            _ => Kind::File,
        };
        out.push(DirEntry { name, ino, kind });
    }
}

/// Encodes entries as `linux_dirent64` records into `buf`, starting with
/// entry `from`; returns (bytes written, entries consumed). Used by
/// directory files of every filesystem.
pub fn encode_dirents(entries: &[DirEntry], from: usize, buf: &mut [u8]) -> (usize, usize) {
    let mut at = 0;
    let mut n = 0;
    for (i, e) in entries.iter().enumerate().skip(from) {
        let reclen = (19 + e.name.len() + 1).div_ceil(8) * 8;
        if at + reclen > buf.len() {
            break;
        }
        let rec = &mut buf[at..at + reclen];
        rec.fill(0);
        rec[0..8].copy_from_slice(&e.ino.to_le_bytes());
        rec[8..16].copy_from_slice(&((i + 1) as i64).to_le_bytes());
        rec[16..18].copy_from_slice(&(reclen as u16).to_le_bytes());
        rec[18] = e.kind.dtype();
        rec[19..19 + e.name.len()].copy_from_slice(e.name.as_bytes());
        at += reclen;
        n += 1;
    }
    (at, n)
}

#[cfg(test)]
mod tests {

    #[test]
    fn id_maps_translate_both_ways() {
        let m = [(0, 100000, 65536)];
        assert_eq!(map_id(&m, 0, true), 100000);
        assert_eq!(map_id(&m, 1000, true), 101000);
        assert_eq!(map_id(&m, 100, false), OVERFLOW_ID);
        assert_eq!(map_id(&m, 101000, false), 1000);
        assert_eq!(map_id(&m, 70000, true), OVERFLOW_ID);
        assert_eq!(map_id(&[], 7, true), 7);
        assert_eq!(map_id(&m, u32::MAX, true), OVERFLOW_ID);
    }

    use super::*;

    #[test]
    fn dirents_round_trip() {
        let entries = vec![
            DirEntry { name: ".".into(), ino: 1, kind: Kind::Dir },
            DirEntry { name: "a".into(), ino: 2, kind: Kind::File },
            DirEntry { name: "longer-name".into(), ino: 3, kind: Kind::Symlink },
        ];
        let mut buf = vec![0u8; 256];
        let (len, n) = encode_dirents(&entries, 0, &mut buf);
        assert_eq!(n, 3);
        let mut back = Vec::new();
        parse_dirents(&buf[..len], &mut back);
        assert_eq!(back, entries[1..].to_vec());
        // A small buffer takes what fits and says how many.
        let (len2, n2) = encode_dirents(&entries, 1, &mut buf[..30]);
        assert_eq!(n2, 1);
        assert_eq!(len2, 24);
        // Garbage never panics.
        let mut junk = Vec::new();
        parse_dirents(&[0xff; 100], &mut junk);
        parse_dirents(&[1, 2, 3], &mut junk);
    }
}
