//! Host files through the gofer (design §4): the sentry's path requests
//! (open, stat, readlink, statfs and the path changes) become gofer
//! requests, walked from the gofer's root one component at a time without
//! following symlinks; opened files come back as donated fds that join the
//! sandbox's handles, and reads and writes then go to them directly.
//!
//! The VMM never resolves a sandbox path on the host itself when a gofer
//! serves the sandbox. Paths are absolute in the gofer's namespace (its
//! root holds the sandbox's root and volumes, see `gofer::confine`).

use std::os::fd::OwnedFd;
use std::sync::Mutex;

use abi::hypercall::PathOp;
use abi::linux::Stat;
use gofer::client::{Client, Response};
use gofer::protocol::{attr, Fid, Reply, Request, SetAttr, Timespec};

type Res<T> = Result<T, i32>;

/// The root fid `Attach` binds.
const ROOT: Fid = 0;

/// The id maps of a gofer that runs in a user namespace of its own:
/// (first id in the gofer's namespace, first host id, count) ranges, as
/// in /proc/PID/uid_map. The sentry deals in host ids (it maps them to the
/// container's itself, and fstat of a donated fd by the VMM gives host
/// ids), so ids crossing to and from such a gofer are translated here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMaps {
    pub uid: Vec<(u32, u32, u32)>,
    pub gid: Vec<(u32, u32, u32)>,
}

impl IdMaps {
    fn map(ranges: &[(u32, u32, u32)], id: u32, to_host: bool) -> Option<u32> {
        ranges.iter().find_map(|&(inner, host, n)| {
            let (from, to) = if to_host { (inner, host) } else { (host, inner) };
            id.checked_sub(from).filter(|d| *d < n).map(|d| to + d)
        })
    }
}

/// A connection to the sandbox's gofer.
pub struct GoferFiles {
    client: Mutex<Client>,
    /// Owner given to files the sentry creates, as ids of the gofer's
    /// namespace (the VMM's, as when it created them itself, or the
    /// gofer's root when the VMM's are not mapped there; the sentry sets
    /// the container's afterwards).
    owner: (u32, u32),
    maps: Option<IdMaps>,
}

/// Why the gofer could not be used at start.
#[derive(Debug, thiserror::Error)]
#[error("gofer: {0}")]
pub struct GoferStartError(String);

impl GoferFiles {
    /// Attaches to the gofer on `sock`; `maps` are its user namespace's
    /// when it has one.
    pub fn connect(sock: OwnedFd, maps: Option<IdMaps>) -> Result<GoferFiles, GoferStartError> {
        let mut client = Client::new(sock);
        match client.call(&Request::Attach) {
            Ok(Response { reply: Reply::Attach { .. }, .. }) => {}
            Ok(r) => return Err(GoferStartError(format!("attach answered with {:?}", r.reply))),
            Err(e) => return Err(GoferStartError(format!("attach: {e}"))),
        }
        // SAFETY: geteuid/getegid have no preconditions.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let owner = match &maps {
            Some(m) => (IdMaps::map(&m.uid, uid, false).unwrap_or(0), IdMaps::map(&m.gid, gid, false).unwrap_or(0)),
            None => (uid, gid),
        };
        Ok(GoferFiles { client: Mutex::new(client), owner, maps })
    }

    /// A host id as the gofer names it (`EINVAL` when its namespace has
    /// none for it, as chown(2) in a user namespace answers).
    fn to_gofer(&self, id: u32, gid: bool) -> Res<u32> {
        match &self.maps {
            Some(m) => IdMaps::map(if gid { &m.gid } else { &m.uid }, id, false).ok_or(libc::EINVAL),
            None => Ok(id),
        }
    }

    /// A stat from the gofer with host ids. Ids the gofer's namespace
    /// cannot name (its overflow id) come back through its map as they
    /// went.
    fn host_stat(&self, s: &gofer::protocol::Stat) -> Stat {
        let mut st = to_stat(s);
        if let Some(m) = &self.maps {
            st.st_uid = IdMaps::map(&m.uid, st.st_uid, true).unwrap_or(st.st_uid);
            st.st_gid = IdMaps::map(&m.gid, st.st_gid, true).unwrap_or(st.st_gid);
        }
        st
    }

    fn call(c: &mut Client, req: &Request) -> Res<Response> {
        match c.call(req) {
            Ok(Response { reply: Reply::Error { errno }, .. }) => Err(errno),
            Ok(r) => Ok(r),
            // A gofer that died or misbehaves fails the file call; the
            // sandbox goes on (design: EIO, never a hang).
            Err(e) => {
                log::warn!("gofer: {e}");
                Err(libc::EIO)
            }
        }
    }

    /// A fid for `names` walked from the root (all of them, or the errno
    /// that stopped the walk).
    fn walk(c: &mut Client, names: &[&[u8]]) -> Res<Fid> {
        let names = names.iter().map(|n| n.to_vec()).collect();
        match Self::call(c, &Request::Walk { fid: ROOT, names })?.reply {
            Reply::Walk { fid, stop: 0, .. } => Ok(fid),
            Reply::Walk { fid, stop, .. } => {
                Self::clunk(c, fid);
                Err(stop)
            }
            _ => Err(libc::EIO),
        }
    }

    /// Releases a fid without waiting: its reply is read before the next
    /// request's, so a release costs no round trip of its own.
    fn clunk(c: &mut Client, fid: Fid) {
        let _ = c.post(&Request::Clunk { fid });
    }

    /// Runs `f` on a fid for `names`, releasing the fid afterwards.
    fn with_fid<T>(&self, names: &[&[u8]], f: impl FnOnce(&mut Client, Fid) -> Res<T>) -> Res<T> {
        let mut c = self.client.lock().unwrap_or_else(|e| e.into_inner());
        let fid = Self::walk(&mut c, names)?;
        let r = f(&mut c, fid);
        Self::clunk(&mut c, fid);
        r
    }

    /// open(2) of `path`: O_CREAT makes the file (O_EXCL honoured, an
    /// existing one is opened otherwise).
    pub fn open(&self, path: &[u8], flags: i32, mode: u32) -> Res<OwnedFd> {
        let names = components(path)?;
        let io_flags = (flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC)) as u32;
        if flags & libc::O_CREAT != 0 {
            let (parent, name) = split_last(&names)?;
            let created = self.with_fid(parent, |c, dir| {
                let req = Request::Create {
                    dir,
                    name: name.to_vec(),
                    flags: io_flags & !(libc::O_TRUNC as u32),
                    mode: mode & 0o7777,
                    uid: self.owner.0,
                    gid: self.owner.1,
                };
                let r = Self::call(c, &req)?;
                if let Reply::Create { fid, .. } = r.reply {
                    Self::clunk(c, fid);
                }
                r.fd.ok_or(libc::EIO)
            });
            match created {
                Err(libc::EEXIST) if flags & libc::O_EXCL == 0 => {}
                r => return r,
            }
        }
        self.with_fid(&names, |c, fid| Self::call(c, &Request::Open { fid, flags: io_flags })?.fd.ok_or(libc::EIO))
    }

    /// lstat(2) of `path` (the sentry resolves symlinks itself).
    pub fn stat(&self, path: &[u8]) -> Res<Stat> {
        let names = components(path)?;
        let mut c = self.client.lock().unwrap_or_else(|e| e.into_inner());
        let names_v = names.iter().map(|n| n.to_vec()).collect();
        match Self::call(&mut c, &Request::WalkStat { fid: ROOT, names: names_v })?.reply {
            Reply::WalkStat { stop, .. } if stop != 0 => Err(stop),
            Reply::WalkStat { stats, .. } => stats.last().map(|s| self.host_stat(s)).ok_or(libc::EIO),
            _ => Err(libc::EIO),
        }
    }

    /// lstat(2) of every component of `path` in one gofer walk: the
    /// stats of the components that worked and the errno that stopped
    /// the walk (0 if none); a first component that fails is an error.
    pub fn walk_stat(&self, path: &[u8]) -> Res<(Vec<Stat>, i32)> {
        let names = components(path)?.iter().map(|n| n.to_vec()).collect::<Vec<_>>();
        if names.is_empty() {
            return Err(libc::EINVAL);
        }
        let mut c = self.client.lock().unwrap_or_else(|e| e.into_inner());
        match Self::call(&mut c, &Request::WalkStat { fid: ROOT, names })?.reply {
            Reply::WalkStat { stats, stop } => Ok((stats.iter().map(|s| self.host_stat(s)).collect(), stop)),
            _ => Err(libc::EIO),
        }
    }

    /// readlink(2) of `path`.
    pub fn readlink(&self, path: &[u8]) -> Res<Vec<u8>> {
        self.with_fid(&components(path)?, |c, fid| match Self::call(c, &Request::Readlink { fid })?.reply {
            Reply::Readlink { target } => Ok(target),
            _ => Err(libc::EIO),
        })
    }

    /// statfs(2) of `path`: type, bsize, blocks, bfree, bavail, files,
    /// ffree, namelen, frsize.
    pub fn statfs(&self, path: &[u8]) -> Res<[i64; 9]> {
        self.with_fid(&components(path)?, |c, fid| match Self::call(c, &Request::StatFs { fid })?.reply {
            Reply::StatFs { statfs: s } => Ok([s.fs_type, s.bsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.namelen, s.frsize].map(|v| v as i64)),
            _ => Err(libc::EIO),
        })
    }

    /// lgetxattr(2) of `path` (the gofer serves `user.*` only).
    pub fn get_xattr(&self, path: &[u8], name: &[u8]) -> Res<Vec<u8>> {
        self.with_fid(&components(path)?, |c, fid| match Self::call(c, &Request::GetXattr { fid, name: name.to_vec() })?.reply {
            Reply::GetXattr { value } => Ok(value),
            _ => Err(libc::EIO),
        })
    }

    /// llistxattr(2) of `path`: the names the gofer shows.
    pub fn list_xattr(&self, path: &[u8]) -> Res<Vec<Vec<u8>>> {
        self.with_fid(&components(path)?, |c, fid| match Self::call(c, &Request::ListXattr { fid })?.reply {
            Reply::ListXattr { names } => Ok(names),
            _ => Err(libc::EIO),
        })
    }

    /// lsetxattr(2) (`value` Some, with XATTR_* `flags`) or
    /// lremovexattr(2) (`value` None) of `path`.
    pub fn change_xattr(&self, path: &[u8], name: &[u8], value: Option<&[u8]>, flags: u32) -> Res<()> {
        self.with_fid(&components(path)?, |c, fid| {
            let name = name.to_vec();
            let req = match value {
                Some(v) => Request::SetXattr { fid, name, value: v.to_vec(), flags },
                None => Request::RemoveXattr { fid, name },
            };
            Self::call(c, &req).map(drop)
        })
    }

    /// The sentry's path changes (`abi::hypercall::PathOp`), already
    /// validated by the caller: `second` is the other path (rename, link)
    /// or the symlink target; `times` the utimens pair.
    pub fn path_op(&self, op: PathOp, path: &[u8], second: &[u8], arg: u64, times: Option<[Timespec; 2]>) -> Res<()> {
        let names = components(path)?;
        let (uid, gid) = self.owner;
        let set = |a: SetAttr| move |c: &mut Client, fid: Fid| Self::call(c, &Request::SetAttr { fid, attr: a }).map(drop);
        match op {
            PathOp::Create => {
                let (parent, name) = split_last(&names)?;
                let mode = (arg & 0o177777) as u32;
                self.with_fid(parent, |c, dir| {
                    let name = name.to_vec();
                    let req = match mode & libc::S_IFMT {
                        libc::S_IFDIR => Request::Mkdir { dir, name, mode: mode & 0o7777, uid, gid },
                        libc::S_IFREG | libc::S_IFIFO | libc::S_IFSOCK => Request::Mknod { dir, name, mode, rdev: 0, uid, gid },
                        _ => return Err(libc::EPERM),
                    };
                    if let Reply::Entry { fid, .. } = Self::call(c, &req)?.reply {
                        Self::clunk(c, fid);
                    }
                    Ok(())
                })
            }
            PathOp::Unlink => {
                let (parent, name) = split_last(&names)?;
                self.with_fid(parent, |c, dir| Self::call(c, &Request::Unlink { dir, name: name.to_vec(), flags: arg as u32 }).map(drop))
            }
            PathOp::Rename => {
                let (from_dir, from) = split_last(&names)?;
                let to_names = components(second)?;
                let (to_dir, to) = split_last(&to_names)?;
                self.with_fid(from_dir, |c, old_dir| {
                    let new_dir = Self::walk(c, to_dir)?;
                    let req = Request::Rename { old_dir, old_name: from.to_vec(), new_dir, new_name: to.to_vec(), flags: arg as u32 };
                    let r = Self::call(c, &req).map(drop);
                    Self::clunk(c, new_dir);
                    r
                })
            }
            PathOp::Symlink => {
                let (parent, name) = split_last(&names)?;
                self.with_fid(parent, |c, dir| {
                    let req = Request::Symlink { dir, name: name.to_vec(), target: second.to_vec(), uid, gid };
                    if let Reply::Entry { fid, .. } = Self::call(c, &req)?.reply {
                        Self::clunk(c, fid);
                    }
                    Ok(())
                })
            }
            PathOp::Link => {
                let to_names = components(second)?;
                let (to_dir, to) = split_last(&to_names)?;
                self.with_fid(&names, |c, target| {
                    let dir = Self::walk(c, to_dir)?;
                    let r = Self::call(c, &Request::Link { dir, name: to.to_vec(), target });
                    if let Ok(Response { reply: Reply::Entry { fid, .. }, .. }) = &r {
                        Self::clunk(c, *fid);
                    }
                    Self::clunk(c, dir);
                    r.map(drop)
                })
            }
            PathOp::Chmod => self.with_fid(&names, set(SetAttr { mask: attr::MODE, mode: (arg & 0o7777) as u32, ..SetAttr::default() })),
            PathOp::Chown => {
                let (u, g) = (arg as u32, (arg >> 32) as u32);
                let u = if u != u32::MAX { self.to_gofer(u, false)? } else { u };
                let g = if g != u32::MAX { self.to_gofer(g, true)? } else { g };
                // -1 leaves an id as it is, as in chown(2).
                let mask = if u != u32::MAX { attr::UID } else { 0 } | if g != u32::MAX { attr::GID } else { 0 };
                self.with_fid(&names, set(SetAttr { mask, uid: u, gid: g, ..SetAttr::default() }))
            }
            PathOp::Utimens => {
                let [atime, mtime] = times.ok_or(libc::EINVAL)?;
                let mask = if atime.nsec != libc::UTIME_OMIT { attr::ATIME } else { 0 } | if mtime.nsec != libc::UTIME_OMIT { attr::MTIME } else { 0 };
                self.with_fid(&names, set(SetAttr { mask, atime, mtime, ..SetAttr::default() }))
            }
            PathOp::Truncate => self.with_fid(&names, set(SetAttr { mask: attr::SIZE, size: arg, ..SetAttr::default() })),
        }
    }
}

/// The components of an absolute path; `.` and `..` are refused (the
/// sentry sends canonical paths; anything else is hostile).
fn components(path: &[u8]) -> Res<Vec<&[u8]>> {
    if path.first() != Some(&b'/') {
        return Err(libc::EINVAL);
    }
    let names: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|c| !c.is_empty()).collect();
    if names.iter().any(|c| *c == b"." || *c == b"..") {
        return Err(libc::EINVAL);
    }
    Ok(names)
}

fn split_last<'a, 'b>(names: &'b [&'a [u8]]) -> Res<(&'b [&'a [u8]], &'a [u8])> {
    match names.split_last() {
        Some((last, parent)) => Ok((parent, last)),
        // The root itself has no parent to create or remove it in.
        None => Err(libc::EBUSY),
    }
}

fn to_stat(s: &gofer::protocol::Stat) -> Stat {
    Stat {
        st_dev: s.dev,
        st_ino: s.ino,
        st_nlink: s.nlink,
        st_mode: s.mode,
        st_uid: s.uid,
        st_gid: s.gid,
        pad0: 0,
        st_rdev: s.rdev,
        st_size: s.size,
        st_blksize: s.blksize,
        st_blocks: s.blocks,
        st_atime: s.atime.sec,
        st_atime_nsec: s.atime.nsec,
        st_mtime: s.mtime.sec,
        st_mtime_nsec: s.mtime.nsec,
        st_ctime: s.ctime.sec,
        st_ctime_nsec: s.ctime.nsec,
        unused: [0; 3],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_split_and_checked() {
        assert_eq!(components(b"/a//b/").unwrap(), vec![&b"a"[..], &b"b"[..]]);
        assert_eq!(components(b"/").unwrap().len(), 0);
        assert_eq!(components(b"rel"), Err(libc::EINVAL));
        assert_eq!(components(b"/a/../b"), Err(libc::EINVAL));
        assert_eq!(components(b"/a/./b"), Err(libc::EINVAL));
        assert_eq!(split_last(&[]).err(), Some(libc::EBUSY));
    }

    #[test]
    fn ids_cross_the_map_both_ways() {
        let r = [(0, 100_000, 65536), (70_000, 5000, 10)];
        assert_eq!(IdMaps::map(&r, 100_007, false), Some(7));
        assert_eq!(IdMaps::map(&r, 7, true), Some(100_007));
        assert_eq!(IdMaps::map(&r, 5009, false), Some(70_009));
        assert_eq!(IdMaps::map(&r, 5010, false), None);
        assert_eq!(IdMaps::map(&r, 0, false), None);
        assert_eq!(IdMaps::map(&r, 65536, true), None);
        assert_eq!(IdMaps::map(&[], 1, true), None);
    }
}
