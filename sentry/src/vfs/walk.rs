//! Path resolution (Linux: fs/namei.c): one component at a time from the
//! root or a starting directory, following symlinks (at most 40, else
//! ELOOP), handling `..` through the canonical path (so it never climbs
//! above the root), and crossing mount points. Symlinks are resolved here,
//! in the sandbox's namespace, never by the host. Every directory a
//! component is looked up in must be searchable by the caller, as in
//! Linux's link_path_walk (including the parent of the last component).

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::RwLock;

use super::{perm, Inode, Kind, Location};
use crate::errno::Errno;
use crate::kernel::creds::Creds;

/// Most symlinks followed in one resolution (Linux: MAXSYMLINKS).
const MAX_SYMLINKS: u32 = 40;
/// Longest path accepted (PATH_MAX, including the NUL).
pub const PATH_MAX: usize = 4096;
/// Longest component.
pub const NAME_MAX: usize = 255;

/// Mounted filesystems by canonical mount point ("/" first).
static MOUNTS: RwLock<Vec<(String, Arc<dyn Inode>)>> = RwLock::new(Vec::new());

/// Mounts `root` at the canonical absolute path `at` (replacing a mount there).
pub fn mount(at: &str, root: Arc<dyn Inode>) {
    let mut m = MOUNTS.write();
    m.retain(|(p, _)| p != at);
    m.push((at.into(), root));
}

/// Mount points, for /proc/self/mounts.
pub fn mounts() -> Vec<String> {
    MOUNTS.read().iter().map(|(p, _)| p.clone()).collect()
}

fn mounted_at(path: &str) -> Option<Arc<dyn Inode>> {
    MOUNTS.read().iter().find(|(p, _)| p == path).map(|(_, i)| i.clone())
}

/// The root of the sandbox's filesystem tree.
pub fn root() -> Result<Location, Errno> {
    Ok(Location { inode: mounted_at("/").ok_or(Errno::ENOENT)?, path: "/".into() })
}

fn child_path(dir: &str, name: &str) -> String {
    let mut p = String::from(dir);
    if !p.ends_with('/') {
        p.push('/');
    }
    p.push_str(name);
    p
}

fn parent_path(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &p[..i],
    }
}

/// Re-resolves a canonical path (no symlinks, no dots) from the root.
fn walk_canonical(path: &str) -> Result<Location, Errno> {
    let mut cur = root()?;
    for c in path.split('/').filter(|c| !c.is_empty()) {
        let p = child_path(&cur.path, c);
        let inode = match mounted_at(&p) {
            Some(m) => m,
            None => cur.inode.lookup(c)?,
        };
        cur = Location { inode, path: p };
    }
    Ok(cur)
}

/// The location at a canonical path (as `Location::path` holds), looked
/// up again from the root without permission checks: for the kernel's
/// own uses (inotify finding a file's parent directory).
pub fn resolve_canonical(path: &str) -> Result<Location, Errno> {
    walk_canonical(path)
}

/// Checks a path argument: not empty, not too long.
pub fn check_path(path: &str) -> Result<(), Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

/// Resolves `path` from `start` (used when `path` is relative).
/// `follow_last`: follow a symlink in the last component. `creds`: whose
/// search permission the walk needs.
pub fn resolve(start: &Location, path: &str, follow_last: bool, creds: &Creds) -> Result<Location, Errno> {
    check_path(path)?;
    let mut links = 0;
    walk(start.clone(), path, follow_last, &mut links, creds)
}

/// Resolves all but the last component of `path`; returns the directory
/// and the last name (for create, unlink, rename). A trailing slash is
/// kept as a "must be a directory" hint in the returned bool.
pub fn resolve_parent(start: &Location, path: &str, creds: &Creds) -> Result<(Location, String, bool), Errno> {
    check_path(path)?;
    let trailing = path.ends_with('/');
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        // "/" itself: no parent entry to operate on.
        return Err(Errno::EBUSY);
    }
    let (dir, name) = match trimmed.rfind('/') {
        Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
        None => ("", trimmed),
    };
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    let mut links = 0;
    let d = if dir.is_empty() { start.clone() } else { walk(start.clone(), dir, true, &mut links, creds)? };
    if d.inode.kind() != Kind::Dir {
        return Err(Errno::ENOTDIR);
    }
    perm::may_search(&*d.inode, creds)?;
    Ok((d, name.into(), trailing))
}

/// The run of plain names at the start of `comps` (below the directory
/// at `dir`) that one `Inode::lookup_path` may resolve: no `.`, `..`,
/// over-long name, or mount point on the way.
fn batchable<'a>(dir: &str, comps: &[&'a str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut p = String::from(dir);
    for (j, &c) in comps.iter().enumerate() {
        if c == "." || c == ".." || c.len() > NAME_MAX {
            break;
        }
        p = child_path(&p, c);
        if j > 0 && mounted_at(&p).is_some() {
            break;
        }
        out.push(c);
    }
    out
}

fn walk(start: Location, path: &str, follow_last: bool, links: &mut u32, creds: &Creds) -> Result<Location, Errno> {
    let mut cur = if path.starts_with('/') { root()? } else { start };
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let must_be_dir = path.ends_with('/');
    // Inodes of the next components, looked up together by a filesystem
    // where each lookup is a host round trip, and the errno of the first
    // component it did not find.
    let mut ahead: alloc::collections::VecDeque<Arc<dyn Inode>> = alloc::collections::VecDeque::new();
    let mut ahead_stop: Option<Errno> = None;
    for (i, c) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        if cur.inode.kind() != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        perm::may_search(&*cur.inode, creds)?;
        match *c {
            "." => continue,
            ".." => {
                cur = walk_canonical(parent_path(&cur.path))?;
                continue;
            }
            name => {
                if name.len() > NAME_MAX {
                    return Err(Errno::ENAMETOOLONG);
                }
                let p = child_path(&cur.path, name);
                let inode = match mounted_at(&p) {
                    Some(m) => m,
                    None => {
                        if ahead.is_empty() && ahead_stop.is_none() {
                            let names = batchable(&cur.path, &comps[i..]);
                            if names.len() > 1 {
                                if let Some((found, stop)) = cur.inode.lookup_path(&names) {
                                    ahead.extend(found);
                                    ahead_stop = stop;
                                }
                            }
                        }
                        match (ahead.pop_front(), ahead_stop) {
                            (Some(inode), _) => inode,
                            (None, Some(e)) => return Err(e),
                            (None, None) => cur.inode.lookup(name)?,
                        }
                    }
                };
                if inode.kind() == Kind::Symlink && (!last || follow_last || must_be_dir) {
                    *links += 1;
                    if *links > MAX_SYMLINKS {
                        return Err(Errno::ELOOP);
                    }
                    if let Some(target) = inode.magic_link() {
                        // /proc/PID/fd/N: the open file itself, even if it
                        // was renamed or has no name.
                        let rest: Vec<&str> = comps[i + 1..].to_vec();
                        if rest.is_empty() {
                            if must_be_dir && target.inode.kind() != Kind::Dir {
                                return Err(Errno::ENOTDIR);
                            }
                            return Ok(target);
                        }
                        let mut tail = rest.join("/");
                        if must_be_dir {
                            tail.push('/');
                        }
                        return walk(target, &tail, follow_last, links, creds);
                    }
                    let target = inode.readlink()?;
                    if target.is_empty() {
                        return Err(Errno::ENOENT);
                    }
                    let mut rest = target;
                    for r in &comps[i + 1..] {
                        rest.push('/');
                        rest.push_str(r);
                    }
                    if must_be_dir {
                        rest.push('/');
                    }
                    return walk(cur, &rest, follow_last, links, creds);
                }
                cur = Location { inode, path: p };
            }
        }
    }
    if must_be_dir && cur.inode.kind() != Kind::Dir {
        return Err(Errno::ENOTDIR);
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(parent_path("/a/b"), "/a");
        assert_eq!(parent_path("/a"), "/");
        assert_eq!(parent_path("/"), "/");
        assert_eq!(child_path("/", "a"), "/a");
        assert_eq!(child_path("/a", "b"), "/a/b");
        assert_eq!(check_path(""), Err(Errno::ENOENT));
    }

    use crate::fs::tmpfs::Tmpfs;
    use crate::fs::FileOps;
    use crate::vfs::Creator;
    use alloc::boxed::Box;
    use alloc::format;
    use spin::Mutex;

    /// A filesystem that looks up runs of components together (as a
    /// revalidating host mount does), logging each call.
    struct Batching {
        inner: Arc<dyn Inode>,
        log: Arc<Mutex<Vec<String>>>,
    }

    impl Batching {
        fn wrap(&self, inner: Arc<dyn Inode>) -> Arc<dyn Inode> {
            Arc::new(Batching { inner, log: self.log.clone() })
        }
    }

    impl Inode for Batching {
        fn stat(&self) -> Result<abi::linux::Stat, Errno> {
            self.inner.stat()
        }
        fn kind(&self) -> Kind {
            self.inner.kind()
        }
        fn lookup(&self, name: &str) -> Result<Arc<dyn Inode>, Errno> {
            self.log.lock().push(format!("lookup {name}"));
            Ok(self.wrap(self.inner.lookup(name)?))
        }
        fn lookup_path(&self, names: &[&str]) -> Option<crate::vfs::Found> {
            self.log.lock().push(format!("batch {}", names.join("/")));
            let mut found = Vec::new();
            let mut cur = self.inner.clone();
            for n in names {
                match cur.lookup(n) {
                    Ok(i) => {
                        found.push(self.wrap(i.clone()));
                        cur = i;
                    }
                    Err(e) => return Some((found, Some(e))),
                }
            }
            Some((found, None))
        }
        fn readlink(&self) -> Result<String, Errno> {
            self.inner.readlink()
        }
        fn open(&self, flags: u32) -> Result<Box<dyn FileOps>, Errno> {
            self.inner.open(flags)
        }
        fn as_any(&self) -> &dyn core::any::Any {
            self
        }
    }

    /// The walker hands runs of plain names to `lookup_path`, stops a run
    /// at a mount point, `.`, `..` or a symlink, and reports the errno of
    /// the first missing component where a lookup would have.
    #[test]
    fn runs_of_components_are_looked_up_together() {
        let root = Creator { uid: 0, gid: 0 };
        let fs = Tmpfs::new(70, 0o755, root);
        let r = fs.root_inode();
        let a = r.create_node("a", Kind::Dir, 0o755, 0, root).unwrap();
        let b = a.create_node("b", Kind::Dir, 0o755, 0, root).unwrap();
        b.create_node("c", Kind::File, 0o644, 0, root).unwrap();
        a.create_node("f", Kind::File, 0o644, 0, root).unwrap();
        a.create_node("m", Kind::Dir, 0o755, 0, root).unwrap();
        a.symlink_node("lnk", "b", root).unwrap();
        let other = Tmpfs::new(71, 0o755, root);
        other.root_inode().create_node("x", Kind::File, 0o644, 0, root).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        mount("/", Arc::new(Batching { inner: fs.root(), log: log.clone() }));
        mount("/a/m", other.root());
        let creds = Creds::default();
        let start = super::root().unwrap();
        let go = |path: &str| {
            log.lock().clear();
            let r = resolve(&start, path, true, &creds).map(|l| l.path);
            (r, core::mem::take(&mut *log.lock()))
        };
        let s = |v: &[&str]| v.iter().map(|x| String::from(*x)).collect::<Vec<_>>();
        assert_eq!(go("/a/b/c"), (Ok("/a/b/c".into()), s(&["batch a/b/c"])));
        assert_eq!(go("/a/b/nope/c"), (Err(Errno::ENOENT), s(&["batch a/b/nope/c"])));
        assert_eq!(go("/a/f/c"), (Err(Errno::ENOTDIR), s(&["batch a/f/c"])));
        assert_eq!(go("/nope"), (Err(Errno::ENOENT), s(&["lookup nope"])));
        // A mount point ends the run; the mounted filesystem takes over.
        assert_eq!(go("/a/m/x"), (Ok("/a/m/x".into()), s(&["lookup a"])));
        // `.` and `..` end runs (`..` walks the canonical path again); a
        // symlink's target starts a new walk.
        assert_eq!(go("/a/./b/c"), (Ok("/a/b/c".into()), s(&["lookup a", "batch b/c"])));
        assert_eq!(go("/a/b/../b/c"), (Ok("/a/b/c".into()), s(&["batch a/b", "lookup a", "batch b/c"])));
        assert_eq!(go("/a/lnk/c"), (Ok("/a/b/c".into()), s(&["batch a/lnk/c", "batch b/c"])));
    }
}
