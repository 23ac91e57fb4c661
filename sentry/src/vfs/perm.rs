//! Discretionary access control (Linux: generic_permission, may_delete,
//! may_create and the ownership rules of setattr_prepare). The sentry is
//! the only enforcement: host files are read by a root VMM, so every
//! check a Linux kernel would make happens here, against the inode's
//! mode and owner as the sandbox sees them.
//!
//! Errors follow Linux: missing mode bits are EACCES, a missing ownership
//! (chmod, chown, sticky directories, explicit times) is EPERM.

use abi::linux::Stat;

use super::{Inode, Kind, S_IFDIR, S_IFMT, S_IFREG};
use crate::errno::Errno;
use crate::kernel::creds::{Creds, CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID};

/// Search a directory or execute a file.
pub const MAY_EXEC: u32 = 1;
pub const MAY_WRITE: u32 = 2;
pub const MAY_READ: u32 = 4;

const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;
const S_IXGRP: u32 = 0o010;
const S_IXUGO: u32 = 0o111;

/// Whether `c` may access an object with attributes `st` for `want`
/// (MAY_* bits). Only one class of bits applies: the owner's, else the
/// group's (the fsgid or a supplementary group), else the others'.
/// CAP_DAC_OVERRIDE grants reads, writes and directory search, and
/// execution when some x bit is set; CAP_DAC_READ_SEARCH grants reads
/// and search.
pub fn check(st: &Stat, c: &Creds, want: u32) -> Result<(), Errno> {
    let want = want & (MAY_READ | MAY_WRITE | MAY_EXEC);
    let mode = st.st_mode;
    let bits = if st.st_uid == c.fsuid {
        mode >> 6
    } else if c.in_group(st.st_gid) {
        mode >> 3
    } else {
        mode
    };
    if want & !bits & 7 == 0 {
        return Ok(());
    }
    if mode & S_IFMT == S_IFDIR {
        if want & MAY_WRITE == 0 && c.capable(CAP_DAC_READ_SEARCH) {
            return Ok(());
        }
        return if c.capable(CAP_DAC_OVERRIDE) { Ok(()) } else { Err(Errno::EACCES) };
    }
    if want == MAY_READ && c.capable(CAP_DAC_READ_SEARCH) {
        return Ok(());
    }
    if (want & MAY_EXEC == 0 || mode & S_IXUGO != 0) && c.capable(CAP_DAC_OVERRIDE) {
        return Ok(());
    }
    Err(Errno::EACCES)
}

/// `check` on an inode. When the capabilities alone decide (root, the
/// common case), the stat is skipped: for a lower-layer file it can be a
/// host round trip.
pub fn check_inode(inode: &dyn Inode, c: &Creds, want: u32) -> Result<(), Errno> {
    let is_dir = inode.kind() == Kind::Dir;
    if c.capable(CAP_DAC_OVERRIDE) && (is_dir || want & MAY_EXEC == 0) {
        return Ok(());
    }
    if is_dir && want & MAY_WRITE == 0 && c.capable(CAP_DAC_READ_SEARCH) {
        return Ok(());
    }
    check(&inode.stat()?, c, want)
}

/// Search permission on a directory being walked through.
pub fn may_search(dir: &dyn Inode, c: &Creds) -> Result<(), Errno> {
    check_inode(dir, c, MAY_EXEC)
}

/// Adding an entry to `dir` (create, mkdir, mknod, symlink, link, the
/// target side of rename).
pub fn may_create(dir: &dyn Inode, c: &Creds) -> Result<(), Errno> {
    check_inode(dir, c, MAY_WRITE | MAY_EXEC)
}

/// Whether `c` owns the object or may act as its owner (Linux:
/// inode_owner_or_capable).
pub fn owner_or_capable(st: &Stat, c: &Creds) -> bool {
    st.st_uid == c.fsuid || c.capable(CAP_FOWNER)
}

/// Removing `victim` from `dir` (unlink, rmdir, the source of rename and
/// a replaced target): write and search on the directory, and in a sticky
/// directory ownership of the entry or the directory.
pub fn may_delete(dir: &dyn Inode, victim: &dyn Inode, c: &Creds) -> Result<(), Errno> {
    if c.capable(CAP_DAC_OVERRIDE) && c.capable(CAP_FOWNER) {
        return Ok(());
    }
    let dst = dir.stat()?;
    check(&dst, c, MAY_WRITE | MAY_EXEC)?;
    if dst.st_mode & S_ISVTX != 0 {
        let vst = victim.stat()?;
        if vst.st_uid != c.fsuid && dst.st_uid != c.fsuid && !c.capable(CAP_FOWNER) {
            return Err(Errno::EPERM);
        }
    }
    Ok(())
}

/// A hard link to a file the caller does not own (Linux's
/// fs.protected_hardlinks, on by default): only to a regular file that is
/// not set-id and that the caller may read and write.
pub fn may_link(st: &Stat, c: &Creds) -> Result<(), Errno> {
    if owner_or_capable(st, c) {
        return Ok(());
    }
    let mode = st.st_mode;
    let safe = mode & S_IFMT == S_IFREG && mode & S_ISUID == 0 && mode & (S_ISGID | S_IXGRP) != S_ISGID | S_IXGRP;
    if safe && check(st, c, MAY_READ | MAY_WRITE).is_ok() {
        return Ok(());
    }
    Err(Errno::EPERM)
}

/// chmod: the owner only. Returns the mode to store: the set-group-id bit
/// is dropped when the caller is outside the file's group and lacks
/// CAP_FSETID (so nobody can make a file set-gid to a group they are not in).
pub fn chmod_mode(st: &Stat, c: &Creds, mode: u32) -> Result<u32, Errno> {
    if !owner_or_capable(st, c) {
        return Err(Errno::EPERM);
    }
    if mode & S_ISGID != 0 && !c.in_group(st.st_gid) && !c.capable(CAP_FSETID) {
        return Ok(mode & !S_ISGID);
    }
    Ok(mode)
}

/// chown/chgrp (`None`: unchanged): giving a file away needs CAP_CHOWN;
/// the owner may set the group to one of its own.
pub fn may_chown(st: &Stat, c: &Creds, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
    if c.capable(CAP_CHOWN) {
        return Ok(());
    }
    if let Some(u) = uid {
        if !(st.st_uid == c.fsuid && u == st.st_uid) {
            return Err(Errno::EPERM);
        }
    }
    if let Some(g) = gid {
        if !(st.st_uid == c.fsuid && (g == st.st_gid || c.in_group(g))) {
            return Err(Errno::EPERM);
        }
    }
    Ok(())
}

/// utimensat: explicit times need ownership (EPERM); "now" for both (a
/// NULL times pointer) is also allowed with write permission (EACCES).
pub fn may_set_times(st: &Stat, c: &Creds, explicit: bool) -> Result<(), Errno> {
    if owner_or_capable(st, c) {
        return Ok(());
    }
    if explicit {
        return Err(Errno::EPERM);
    }
    check(st, c, MAY_WRITE)
}

/// The access an open(2) needs (Linux: ACC_MODE plus O_TRUNC); O_PATH
/// needs none.
pub fn open_access(flags: u32) -> u32 {
    const O_TRUNC: u32 = 0o1000;
    const O_PATH: u32 = 0o10000000;
    if flags & O_PATH != 0 {
        return 0;
    }
    let mut want = match flags & 3 {
        0 => MAY_READ,
        1 => MAY_WRITE,
        // O_RDWR, and 3, which Linux reads as "both" for the check.
        _ => MAY_READ | MAY_WRITE,
    };
    if flags & O_TRUNC != 0 {
        want |= MAY_WRITE;
    }
    want
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::creds::CAP_FULL;
    use alloc::vec;

    fn st(mode: u32, uid: u32, gid: u32) -> Stat {
        Stat { st_mode: mode, st_uid: uid, st_gid: gid, ..Stat::default() }
    }

    fn user() -> Creds {
        Creds::new(1000, 1000, vec![2000])
    }

    #[test]
    fn classes_are_exclusive() {
        let u = user();
        // The owner class alone applies, even when "others" would allow.
        assert_eq!(check(&st(0o100077, 1000, 0), &u, MAY_READ), Err(Errno::EACCES));
        assert_eq!(check(&st(0o100640, 1000, 0), &u, MAY_READ | MAY_WRITE), Ok(()));
        // Group through the fsgid or a supplementary group.
        assert_eq!(check(&st(0o100040, 0, 1000), &u, MAY_READ), Ok(()));
        assert_eq!(check(&st(0o100060, 0, 2000), &u, MAY_WRITE), Ok(()));
        assert_eq!(check(&st(0o100604, 0, 2000), &u, MAY_READ), Err(Errno::EACCES));
        assert_eq!(check(&st(0o100604, 0, 3000), &u, MAY_READ), Ok(()));
        assert_eq!(check(&st(0o100644, 0, 0), &u, MAY_WRITE), Err(Errno::EACCES));
        assert_eq!(check(&st(0o040700, 0, 0), &u, MAY_EXEC), Err(Errno::EACCES));
        assert_eq!(check(&st(0o040755, 0, 0), &u, MAY_WRITE | MAY_EXEC), Err(Errno::EACCES));
        assert_eq!(check(&st(0o040755, 0, 0), &u, MAY_READ | MAY_EXEC), Ok(()));
    }

    #[test]
    fn root_overrides_all_but_exec_without_x() {
        let r = Creds::default();
        assert_eq!(check(&st(0o100000, 5, 5), &r, MAY_READ | MAY_WRITE), Ok(()));
        assert_eq!(check(&st(0o040000, 5, 5), &r, MAY_WRITE | MAY_EXEC), Ok(()));
        assert_eq!(check(&st(0o100644, 5, 5), &r, MAY_EXEC), Err(Errno::EACCES));
        assert_eq!(check(&st(0o100001, 5, 5), &r, MAY_EXEC), Ok(()));
        // Root by fsuid only (setfsuid) keeps nothing of this.
        let f = r.set_fsuid(1000).unwrap();
        assert_eq!(check(&st(0o100600, 0, 0), &f, MAY_READ), Err(Errno::EACCES));
        // An euid-0 task whose capabilities were dropped is checked as anyone.
        let mut dropped = r.clone();
        dropped.cap_effective = 0;
        assert_eq!(check(&st(0o100600, 5, 5), &dropped, MAY_READ), Err(Errno::EACCES));
        assert_eq!(r.cap_effective, CAP_FULL);
    }

    #[test]
    fn read_search_capability() {
        let mut c = user();
        c.cap_effective = 1 << CAP_DAC_READ_SEARCH;
        assert_eq!(check(&st(0o100000, 0, 0), &c, MAY_READ), Ok(()));
        assert_eq!(check(&st(0o100000, 0, 0), &c, MAY_WRITE), Err(Errno::EACCES));
        assert_eq!(check(&st(0o040000, 0, 0), &c, MAY_READ | MAY_EXEC), Ok(()));
        assert_eq!(check(&st(0o040000, 0, 0), &c, MAY_WRITE | MAY_EXEC), Err(Errno::EACCES));
    }

    #[test]
    fn ownership_rules() {
        let u = user();
        let mine = st(0o102755, 1000, 5);
        let theirs = st(0o100644, 0, 0);
        assert_eq!(chmod_mode(&theirs, &u, 0o777), Err(Errno::EPERM));
        // Not in group 5: the set-gid bit silently goes.
        assert_eq!(chmod_mode(&mine, &u, 0o2755), Ok(0o755));
        assert_eq!(chmod_mode(&st(0o100755, 1000, 2000), &u, 0o2755), Ok(0o2755));
        assert_eq!(may_chown(&mine, &u, Some(0), None), Err(Errno::EPERM));
        assert_eq!(may_chown(&mine, &u, Some(1000), Some(2000)), Ok(()));
        assert_eq!(may_chown(&mine, &u, None, Some(3000)), Err(Errno::EPERM));
        assert_eq!(may_chown(&theirs, &u, None, Some(2000)), Err(Errno::EPERM));
        assert_eq!(may_chown(&theirs, &Creds::default(), Some(7), Some(7)), Ok(()));
        assert_eq!(may_set_times(&theirs, &u, true), Err(Errno::EPERM));
        assert_eq!(may_set_times(&theirs, &u, false), Err(Errno::EACCES));
        assert_eq!(may_set_times(&st(0o100666, 0, 0), &u, false), Ok(()));
        assert_eq!(may_link(&theirs, &u), Err(Errno::EPERM));
        assert_eq!(may_link(&st(0o100666, 0, 0), &u), Ok(()));
        assert_eq!(may_link(&st(0o104666, 0, 0), &u), Err(Errno::EPERM));
    }

    #[test]
    fn sticky_directories() {
        use crate::fs::tmpfs::Tmpfs;
        use crate::vfs::Creator;
        let root = Tmpfs::new(77, 0o1777, Creator { uid: 0, gid: 0 }).root();
        let other = root.create("other", Kind::File, 0o666, 0, Creator { uid: 1001, gid: 1001 }).unwrap();
        let mine = root.create("mine", Kind::File, 0o600, 0, Creator { uid: 1000, gid: 1000 }).unwrap();
        let u = user();
        assert_eq!(may_delete(&*root, &*other, &u), Err(Errno::EPERM));
        assert_eq!(may_delete(&*root, &*mine, &u), Ok(()));
        assert_eq!(may_delete(&*root, &*other, &Creds::default()), Ok(()));
        // The directory's owner may delete anything in it.
        let dir = root.create("d", Kind::Dir, 0o1777, 0, Creator { uid: 1000, gid: 1000 }).unwrap();
        let f = dir.create("f", Kind::File, 0o644, 0, Creator { uid: 1001, gid: 1001 }).unwrap();
        assert_eq!(may_delete(&*dir, &*f, &u), Ok(()));
        // Without write permission on the directory it is EACCES first.
        let closed = root.create("c", Kind::Dir, 0o755, 0, Creator { uid: 0, gid: 0 }).unwrap();
        let g = closed.create("g", Kind::File, 0o644, 0, Creator { uid: 1000, gid: 1000 }).unwrap();
        assert_eq!(may_delete(&*closed, &*g, &u), Err(Errno::EACCES));
        assert_eq!(may_create(&*closed, &u), Err(Errno::EACCES));
        assert_eq!(may_search(&*closed, &u), Ok(()));
    }

    #[test]
    fn fast_paths_agree_with_the_mode_check() {
        use crate::fs::tmpfs::Tmpfs;
        use crate::vfs::Creator;
        let root = Tmpfs::new(78, 0o755, Creator { uid: 0, gid: 0 }).root();
        let mut dropped = Creds::default();
        dropped.cap_effective = 1 << CAP_DAC_READ_SEARCH;
        let who = [Creds::default(), user(), dropped];
        for (i, mode) in [0o000, 0o100, 0o644, 0o700, 0o755, 0o001].iter().enumerate() {
            for kind in [Kind::File, Kind::Dir] {
                let name = alloc::format!("{i}{kind:?}");
                let n = root.create(&name, kind, *mode, 0, Creator { uid: 5, gid: 5 }).unwrap();
                let st = n.stat().unwrap();
                for c in &who {
                    for want in 1..8 {
                        assert_eq!(check_inode(&*n, c, want), check(&st, c, want), "{name} {want}");
                    }
                }
            }
        }
    }

    #[test]
    fn open_modes() {
        assert_eq!(open_access(0), MAY_READ);
        assert_eq!(open_access(1), MAY_WRITE);
        assert_eq!(open_access(2), MAY_READ | MAY_WRITE);
        assert_eq!(open_access(0o1000), MAY_READ | MAY_WRITE);
        assert_eq!(open_access(0o10000000 | 2), 0);
    }
}
