//! Extended attributes (Linux: fs/xattr.c, mm/shmem.c's handlers): the
//! namespace and permission rules shared by every filesystem, and the
//! in-memory store tmpfs inodes (and so the overlay's upper layer) keep.
//!
//! Stored: `user.*` and `trusted.*`. `security.*` and `system.*` (POSIX
//! ACLs) are not: reads find nothing (ENODATA), writes get EOPNOTSUPP, as
//! on a tmpfs without ACL or LSM support. Filesystems without a store
//! (host files: the VMM never writes host xattrs) answer EOPNOTSUPP.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use spin::Mutex;

use super::{perm, Inode, Kind};
use crate::errno::Errno;
use crate::kernel::creds::{Creds, CAP_FOWNER, CAP_SYS_ADMIN};

pub const XATTR_CREATE: u32 = 1;
pub const XATTR_REPLACE: u32 = 2;
/// Longest name (with its prefix).
pub const XATTR_NAME_MAX: usize = 255;
/// Largest value, and largest list.
pub const XATTR_SIZE_MAX: usize = 65536;

/// The namespaces a name may be in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ns {
    User,
    Trusted,
    /// security.* and system.*: known, never stored here.
    Unstored,
}

/// The namespace of `name`: EOPNOTSUPP for an unknown prefix, EINVAL for
/// a prefix with nothing after it (Linux: xattr_resolve_name).
pub fn namespace(name: &str) -> Result<Ns, Errno> {
    let (ns, rest) = if let Some(r) = name.strip_prefix("user.") {
        (Ns::User, r)
    } else if let Some(r) = name.strip_prefix("trusted.") {
        (Ns::Trusted, r)
    } else if let Some(r) = name.strip_prefix("security.").or_else(|| name.strip_prefix("system.")) {
        (Ns::Unstored, r)
    } else {
        return Err(Errno::EOPNOTSUPP);
    };
    if rest.is_empty() {
        return Err(Errno::EINVAL);
    }
    Ok(ns)
}

/// Linux's xattr_permission: trusted.* needs CAP_SYS_ADMIN, user.* lives
/// only on files and directories (and a sticky directory's only for its
/// owner) and needs the access the operation implies.
pub fn permission(inode: &dyn Inode, name: &str, write: bool, c: &Creds) -> Result<(), Errno> {
    let deny = if write { Errno::EPERM } else { Errno::ENODATA };
    if name.starts_with("trusted.") {
        return if c.capable(CAP_SYS_ADMIN) { Ok(()) } else { Err(deny) };
    }
    if name.starts_with("user.") {
        let kind = inode.kind();
        if kind != Kind::File && kind != Kind::Dir {
            return Err(deny);
        }
        if write && kind == Kind::Dir {
            let st = inode.stat()?;
            if st.st_mode & 0o1000 != 0 && st.st_uid != c.fsuid && !c.capable(CAP_FOWNER) {
                return Err(Errno::EPERM);
            }
        }
    }
    if name.starts_with("security.") || name.starts_with("system.") {
        return Ok(());
    }
    perm::check_inode(inode, c, if write { perm::MAY_WRITE } else { perm::MAY_READ })
}

/// Whether a listing shown to `c` includes `name` (trusted.* only for
/// CAP_SYS_ADMIN, as Linux's simple_xattr_list).
pub fn listable(name: &str, c: &Creds) -> bool {
    !name.starts_with("trusted.") || c.capable(CAP_SYS_ADMIN)
}

/// An inode's attributes, kept in sentry memory.
#[derive(Default)]
pub struct Store {
    map: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl Store {
    /// The value of `name`.
    pub fn get(&self, name: &str) -> Result<Vec<u8>, Errno> {
        if namespace(name)? == Ns::Unstored {
            return Err(Errno::ENODATA);
        }
        self.map.lock().get(name).cloned().ok_or(Errno::ENODATA)
    }

    /// Sets (`value` Some) or removes `name` with XATTR_CREATE/REPLACE.
    pub fn set(&self, name: &str, value: Option<&[u8]>, flags: u32) -> Result<(), Errno> {
        if namespace(name)? == Ns::Unstored {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut m = self.map.lock();
        let exists = m.contains_key(name);
        match value {
            None if !exists => Err(Errno::ENODATA),
            None => {
                m.remove(name);
                Ok(())
            }
            Some(_) if flags & XATTR_CREATE != 0 && exists => Err(Errno::EEXIST),
            Some(_) if flags & XATTR_REPLACE != 0 && !exists => Err(Errno::ENODATA),
            Some(v) => {
                m.insert(name.into(), v.to_vec());
                Ok(())
            }
        }
    }

    /// The names held.
    pub fn names(&self) -> Vec<String> {
        self.map.lock().keys().cloned().collect()
    }

    /// A copy of every attribute (overlay copy-up).
    pub fn copy_from(&self, other: &Store) {
        let src = other.map.lock().clone();
        *self.map.lock() = src;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        assert_eq!(namespace("user.a"), Ok(Ns::User));
        assert_eq!(namespace("trusted.x"), Ok(Ns::Trusted));
        assert_eq!(namespace("security.selinux"), Ok(Ns::Unstored));
        assert_eq!(namespace("user."), Err(Errno::EINVAL));
        assert_eq!(namespace("foo.bar"), Err(Errno::EOPNOTSUPP));
        assert_eq!(namespace("user"), Err(Errno::EOPNOTSUPP));
    }

    #[test]
    fn create_replace_remove() {
        let s = Store::default();
        assert_eq!(s.get("user.a"), Err(Errno::ENODATA));
        assert_eq!(s.set("user.a", Some(b"1"), XATTR_REPLACE), Err(Errno::ENODATA));
        s.set("user.a", Some(b"1"), XATTR_CREATE).unwrap();
        assert_eq!(s.set("user.a", Some(b"2"), XATTR_CREATE), Err(Errno::EEXIST));
        s.set("user.a", Some(b"2"), XATTR_REPLACE).unwrap();
        assert_eq!(s.get("user.a").unwrap(), b"2");
        assert_eq!(s.names(), alloc::vec![String::from("user.a")]);
        s.set("user.a", None, 0).unwrap();
        assert_eq!(s.set("user.a", None, 0), Err(Errno::ENODATA));
        assert_eq!(s.set("security.x", Some(b""), 0), Err(Errno::EOPNOTSUPP));
    }
}
