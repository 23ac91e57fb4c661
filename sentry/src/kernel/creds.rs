//! Credentials (Linux: `struct cred`, the set*id rules of kernel/sys.c and
//! the capability fix-ups of security/commoncap.c).
//!
//! A task holds its credentials in an `Arc` and replaces them whole, as
//! Linux's prepare_creds/commit_creds: whoever captured the old value (an
//! open file, a /proc view) keeps a consistent snapshot.
//!
//! Capabilities follow Linux's root emulation with no file capabilities:
//! the permitted and effective sets are full for a root task and empty
//! otherwise, and moving uids between 0 and non-0 drops or restores them
//! as `cap_emulate_setxuid` does. All five sets exist (capset, prctl's
//! bounding and ambient calls and the OCI spec change them); only the
//! effective set is consulted for privilege.

use alloc::vec::Vec;

use crate::errno::Errno;

pub const CAP_CHOWN: u32 = 0;
pub const CAP_DAC_OVERRIDE: u32 = 1;
pub const CAP_DAC_READ_SEARCH: u32 = 2;
pub const CAP_FOWNER: u32 = 3;
pub const CAP_FSETID: u32 = 4;
pub const CAP_KILL: u32 = 5;
pub const CAP_SETGID: u32 = 6;
pub const CAP_SETUID: u32 = 7;
pub const CAP_SETPCAP: u32 = 8;
pub const CAP_LINUX_IMMUTABLE: u32 = 9;
pub const CAP_NET_BIND_SERVICE: u32 = 10;
pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_NET_RAW: u32 = 13;
pub const CAP_IPC_LOCK: u32 = 14;
pub const CAP_IPC_OWNER: u32 = 15;
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_SYS_RESOURCE: u32 = 24;
pub const CAP_MKNOD: u32 = 27;
pub const CAP_MAC_OVERRIDE: u32 = 32;
/// The highest capability number (/proc/sys/kernel/cap_last_cap).
pub const CAP_LAST_CAP: u32 = 40;
/// Every capability.
pub const CAP_FULL: u64 = (1 << (CAP_LAST_CAP + 1)) - 1;

/// The capabilities that follow the fsuid (Linux: CAP_FS_SET).
const CAP_FS_SET: u64 = 1 << CAP_CHOWN
    | 1 << CAP_DAC_OVERRIDE
    | 1 << CAP_DAC_READ_SEARCH
    | 1 << CAP_FOWNER
    | 1 << CAP_FSETID
    | 1 << CAP_LINUX_IMMUTABLE
    | 1 << CAP_MKNOD
    | 1 << CAP_MAC_OVERRIDE;

/// Most supplementary groups (NGROUPS_MAX).
pub const NGROUPS_MAX: usize = 65536;

/// "Leave unchanged" in the set*id calls ((uid_t)-1).
pub const NO_ID: u32 = u32::MAX;

/// A task's identity for permission checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Creds {
    /// Real ids: who the task is (signals, access(2)).
    pub uid: u32,
    pub gid: u32,
    /// Effective ids: privilege for most checks.
    pub euid: u32,
    pub egid: u32,
    /// Saved ids: what an unprivileged task may switch back to.
    pub suid: u32,
    pub sgid: u32,
    /// Filesystem ids: file permission checks and new files' owners.
    pub fsuid: u32,
    pub fsgid: u32,
    /// Supplementary groups, sorted (as setgroups leaves them).
    pub groups: Vec<u32>,
    pub cap_permitted: u64,
    pub cap_effective: u64,
    /// What exec may give back (the container spec's bounding set).
    pub cap_bounding: u64,
    /// Kept across exec for files with inheritable capabilities (there
    /// are none here), and the ceiling of the ambient set.
    pub cap_inheritable: u64,
    /// Given to the new program by a non-set-id exec (how a non-root
    /// task keeps capabilities).
    pub cap_ambient: u64,
    /// PR_SET_KEEPCAPS: leaving root keeps the permitted set (cleared by
    /// exec).
    pub keep_caps: bool,
}

impl Default for Creds {
    /// Root with every capability: the kernel's own identity.
    fn default() -> Creds {
        Creds::new(0, 0, Vec::new())
    }
}

/// Which ids a change touched, for the capability fix-up (Linux: LSM_SETID_*).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Ids,
    Fs,
}

impl Creds {
    /// All ids set to `uid`/`gid` with supplementary `groups`; full
    /// capabilities for root, none otherwise.
    pub fn new(uid: u32, gid: u32, mut groups: Vec<u32>) -> Creds {
        groups.sort_unstable();
        let caps = if uid == 0 { CAP_FULL } else { 0 };
        Creds { uid, gid, euid: uid, egid: gid, suid: uid, sgid: gid, fsuid: uid, fsgid: gid, groups, cap_permitted: caps, cap_effective: caps, cap_bounding: CAP_FULL, cap_inheritable: 0, cap_ambient: 0, keep_caps: false }
    }

    /// Whether capability `cap` is in the effective set.
    pub fn capable(&self, cap: u32) -> bool {
        cap <= CAP_LAST_CAP && self.cap_effective & (1 << cap) != 0
    }

    /// Whether `gid` is the fsgid or a supplementary group (Linux: in_group_p).
    pub fn in_group(&self, gid: u32) -> bool {
        self.fsgid == gid || self.groups.binary_search(&gid).is_ok()
    }

    /// Linux's root emulation after a uid change (cap_emulate_setxuid and
    /// the LSM_SETID_FS case of cap_task_fix_setuid).
    fn fix_caps(&mut self, old: &Creds, change: Change) {
        if change == Change::Fs {
            if old.fsuid == 0 && self.fsuid != 0 {
                self.cap_effective &= !CAP_FS_SET;
            }
            if old.fsuid != 0 && self.fsuid == 0 {
                self.cap_effective |= self.cap_permitted & CAP_FS_SET;
            }
            return;
        }
        let was_root = old.uid == 0 || old.euid == 0 || old.suid == 0;
        let is_root = self.uid == 0 || self.euid == 0 || self.suid == 0;
        if was_root && !is_root {
            if !self.keep_caps {
                self.cap_permitted = 0;
                self.cap_effective = 0;
            }
            // So that setresuid to non-root then exec still drops everything.
            self.cap_ambient = 0;
        }
        if old.euid == 0 && self.euid != 0 {
            self.cap_effective = 0;
        }
        if old.euid != 0 && self.euid == 0 {
            self.cap_effective = self.cap_permitted;
        }
    }

    /// setuid(2).
    pub fn set_uid(&self, uid: u32) -> Result<Creds, Errno> {
        if uid == NO_ID {
            return Err(Errno::EINVAL);
        }
        let mut n = self.clone();
        if self.capable(CAP_SETUID) {
            (n.uid, n.suid) = (uid, uid);
        } else if uid != self.uid && uid != self.suid {
            return Err(Errno::EPERM);
        }
        (n.euid, n.fsuid) = (uid, uid);
        n.fix_caps(self, Change::Ids);
        Ok(n)
    }

    /// setgid(2).
    pub fn set_gid(&self, gid: u32) -> Result<Creds, Errno> {
        if gid == NO_ID {
            return Err(Errno::EINVAL);
        }
        let mut n = self.clone();
        if self.capable(CAP_SETGID) {
            (n.gid, n.sgid) = (gid, gid);
        } else if gid != self.gid && gid != self.sgid {
            return Err(Errno::EPERM);
        }
        (n.egid, n.fsgid) = (gid, gid);
        Ok(n)
    }

    /// setreuid(2): the real uid may become the real or effective one, the
    /// effective uid any of the three; the saved uid follows the effective
    /// one when the real uid is set or the effective one leaves it.
    pub fn set_reuid(&self, r: u32, e: u32) -> Result<Creds, Errno> {
        let cap = self.capable(CAP_SETUID);
        let mut n = self.clone();
        if r != NO_ID {
            if r != self.uid && r != self.euid && !cap {
                return Err(Errno::EPERM);
            }
            n.uid = r;
        }
        if e != NO_ID {
            if e != self.uid && e != self.euid && e != self.suid && !cap {
                return Err(Errno::EPERM);
            }
            n.euid = e;
        }
        if r != NO_ID || (e != NO_ID && e != self.uid) {
            n.suid = n.euid;
        }
        n.fsuid = n.euid;
        n.fix_caps(self, Change::Ids);
        Ok(n)
    }

    /// setregid(2), as setreuid.
    pub fn set_regid(&self, r: u32, e: u32) -> Result<Creds, Errno> {
        let cap = self.capable(CAP_SETGID);
        let mut n = self.clone();
        if r != NO_ID {
            if r != self.gid && r != self.egid && !cap {
                return Err(Errno::EPERM);
            }
            n.gid = r;
        }
        if e != NO_ID {
            if e != self.gid && e != self.egid && e != self.sgid && !cap {
                return Err(Errno::EPERM);
            }
            n.egid = e;
        }
        if r != NO_ID || (e != NO_ID && e != self.gid) {
            n.sgid = n.egid;
        }
        n.fsgid = n.egid;
        Ok(n)
    }

    /// setresuid(2): without CAP_SETUID each new id must be one of the
    /// current three.
    pub fn set_resuid(&self, r: u32, e: u32, s: u32) -> Result<Creds, Errno> {
        let known = |x: u32| x == NO_ID || x == self.uid || x == self.euid || x == self.suid;
        if [r, e, s].iter().any(|&x| !known(x)) && !self.capable(CAP_SETUID) {
            return Err(Errno::EPERM);
        }
        let mut n = self.clone();
        if r != NO_ID {
            n.uid = r;
        }
        if e != NO_ID {
            n.euid = e;
        }
        if s != NO_ID {
            n.suid = s;
        }
        n.fsuid = n.euid;
        n.fix_caps(self, Change::Ids);
        Ok(n)
    }

    /// setresgid(2).
    pub fn set_resgid(&self, r: u32, e: u32, s: u32) -> Result<Creds, Errno> {
        let known = |x: u32| x == NO_ID || x == self.gid || x == self.egid || x == self.sgid;
        if [r, e, s].iter().any(|&x| !known(x)) && !self.capable(CAP_SETGID) {
            return Err(Errno::EPERM);
        }
        let mut n = self.clone();
        if r != NO_ID {
            n.gid = r;
        }
        if e != NO_ID {
            n.egid = e;
        }
        if s != NO_ID {
            n.sgid = s;
        }
        n.fsgid = n.egid;
        Ok(n)
    }

    /// setfsuid(2): never fails; a refused change leaves the creds alone
    /// (the caller returns the old fsuid either way).
    pub fn set_fsuid(&self, fsuid: u32) -> Option<Creds> {
        let ok = fsuid == self.uid || fsuid == self.euid || fsuid == self.suid || fsuid == self.fsuid || self.capable(CAP_SETUID);
        if fsuid == NO_ID || !ok || fsuid == self.fsuid {
            return None;
        }
        let mut n = self.clone();
        n.fsuid = fsuid;
        n.fix_caps(self, Change::Fs);
        Some(n)
    }

    /// setfsgid(2), as setfsuid.
    pub fn set_fsgid(&self, fsgid: u32) -> Option<Creds> {
        let ok = fsgid == self.gid || fsgid == self.egid || fsgid == self.sgid || fsgid == self.fsgid || self.capable(CAP_SETGID);
        if fsgid == NO_ID || !ok || fsgid == self.fsgid {
            return None;
        }
        let mut n = self.clone();
        n.fsgid = fsgid;
        Some(n)
    }

    /// setgroups(2) (the caller has read the list).
    pub fn set_groups(&self, mut groups: Vec<u32>) -> Result<Creds, Errno> {
        if !self.capable(CAP_SETGID) {
            return Err(Errno::EPERM);
        }
        if groups.len() > NGROUPS_MAX || groups.contains(&NO_ID) {
            return Err(Errno::EINVAL);
        }
        groups.sort_unstable();
        let mut n = self.clone();
        n.groups = groups;
        Ok(n)
    }

    /// The identity access(2) checks with: the real ids in place of the
    /// fs ids, and capabilities only if the real uid is root.
    pub fn for_access(&self) -> Creds {
        let mut n = self.clone();
        n.fsuid = self.uid;
        n.fsgid = self.gid;
        n.cap_effective = if self.uid == 0 { self.cap_permitted } else { 0 };
        n
    }

    /// The credentials after exec of a file with mode `mode` owned by
    /// `owner` (Linux: bprm_fill_uid and cap_bprm_creds_from_file without
    /// file capabilities): set-id bits apply unless `no_new_privs`; root
    /// gets its bounding and inheritable sets as permitted (effective too
    /// if the euid is root); no_new_privs forbids gaining any; a set-id
    /// exec clears the ambient set, which is otherwise added to both.
    pub fn for_exec(&self, mode: u32, owner: (u32, u32), no_new_privs: bool) -> Creds {
        const S_ISUID: u32 = 0o4000;
        const S_ISGID: u32 = 0o2000;
        const S_IXGRP: u32 = 0o010;
        let mut n = self.clone();
        n.keep_caps = false;
        if !no_new_privs {
            if mode & S_ISUID != 0 {
                n.euid = owner.0;
            }
            if mode & (S_ISGID | S_IXGRP) == S_ISGID | S_IXGRP {
                n.egid = owner.1;
            }
        }
        let root = n.uid == 0 || n.euid == 0;
        n.cap_permitted = if root { (self.cap_bounding | self.cap_inheritable) & CAP_FULL } else { 0 };
        let full_effective = n.euid == 0;
        let is_setid = n.euid != n.uid || n.egid != n.gid;
        let gained = n.cap_permitted & !self.cap_permitted != 0;
        if no_new_privs && (is_setid || gained) {
            (n.euid, n.egid) = (n.uid, n.gid);
            n.cap_permitted &= self.cap_permitted;
        }
        (n.suid, n.fsuid) = (n.euid, n.euid);
        (n.sgid, n.fsgid) = (n.egid, n.egid);
        if is_setid {
            n.cap_ambient = 0;
        }
        n.cap_permitted |= n.cap_ambient;
        n.cap_effective = if full_effective { n.cap_permitted } else { n.cap_ambient };
        n
    }

    /// capset(2) (Linux: cap_capset): the inheritable set may grow only
    /// within the permitted set (or, with CAP_SETPCAP, the bounding set),
    /// the permitted set only shrink, the effective set stay within the
    /// permitted one; the ambient set keeps only what both still allow.
    pub fn set_caps(&self, effective: u64, permitted: u64, inheritable: u64) -> Result<Creds, Errno> {
        let subset = |a: u64, b: u64| a & !b == 0;
        if !subset(inheritable, self.cap_inheritable | self.cap_permitted) && !self.capable(CAP_SETPCAP) {
            return Err(Errno::EPERM);
        }
        if !subset(inheritable, self.cap_inheritable | self.cap_bounding)
            || !subset(permitted, self.cap_permitted)
            || !subset(effective, permitted)
        {
            return Err(Errno::EPERM);
        }
        let mut n = self.clone();
        n.cap_effective = effective & CAP_FULL;
        n.cap_permitted = permitted & CAP_FULL;
        n.cap_inheritable = inheritable & CAP_FULL;
        n.cap_ambient &= n.cap_permitted & n.cap_inheritable;
        Ok(n)
    }

    /// Whether an exec with these creds must run in secure mode (AT_SECURE).
    pub fn secure_exec(&self) -> bool {
        self.euid != self.uid || self.egid != self.gid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: u32) -> Creds {
        Creds::new(uid, uid, Vec::new())
    }

    #[test]
    fn new_sorts_groups_and_gives_root_caps() {
        let c = Creds::new(0, 0, alloc::vec![5, 2]);
        assert_eq!(c.groups, [2, 5]);
        assert!(c.capable(CAP_SETUID) && c.capable(CAP_DAC_OVERRIDE));
        assert!(!c.capable(64));
        assert_eq!(user(1000).cap_effective, 0);
        assert!(Creds::new(1, 1, alloc::vec![7]).in_group(7));
    }

    #[test]
    fn setuid_from_root_drops_everything() {
        let c = Creds::default().set_uid(1000).unwrap();
        assert_eq!((c.uid, c.euid, c.suid, c.fsuid), (1000, 1000, 1000, 1000));
        assert_eq!((c.cap_permitted, c.cap_effective), (0, 0));
        assert_eq!(c.set_uid(0), Err(Errno::EPERM));
        assert_eq!(c.set_uid(NO_ID), Err(Errno::EINVAL));
    }

    #[test]
    fn seteuid_keeps_the_saved_root() {
        let c = Creds::default().set_resuid(NO_ID, 1000, NO_ID).unwrap();
        assert_eq!((c.uid, c.euid, c.suid, c.fsuid), (0, 1000, 0, 1000));
        assert_eq!((c.cap_permitted, c.cap_effective), (CAP_FULL, 0));
        // Unprivileged now, but the saved root lets it switch back.
        let back = c.set_uid(0).unwrap();
        assert_eq!((back.uid, back.euid, back.suid), (0, 0, 0));
        assert_eq!(back.cap_effective, CAP_FULL);
    }

    #[test]
    fn setreuid_rules() {
        let c = Creds::default().set_resuid(1, 2, 3).unwrap();
        assert_eq!(c.cap_permitted, 0);
        // Swap real and effective: allowed, saved follows effective.
        let s = c.set_reuid(2, 1).unwrap();
        assert_eq!((s.uid, s.euid, s.suid), (2, 1, 1));
        assert_eq!(c.set_reuid(3, NO_ID), Err(Errno::EPERM));
        let e = c.set_reuid(NO_ID, 3).unwrap();
        assert_eq!((e.uid, e.euid, e.suid), (1, 3, 3));
        // Back to the real uid leaves the saved one.
        let r = c.set_reuid(NO_ID, 1).unwrap();
        assert_eq!((r.uid, r.euid, r.suid), (1, 1, 3));
    }

    #[test]
    fn setresgid_and_groups_need_privilege() {
        let c = Creds::default().set_resgid(10, 20, 30).unwrap();
        assert_eq!((c.gid, c.egid, c.sgid, c.fsgid), (10, 20, 30, 20));
        let u = user(5);
        assert_eq!(u.set_resgid(6, NO_ID, NO_ID), Err(Errno::EPERM));
        assert_eq!(u.set_groups(alloc::vec![1]), Err(Errno::EPERM));
        assert_eq!(u.set_gid(6), Err(Errno::EPERM));
        assert_eq!(Creds::default().set_groups(alloc::vec![NO_ID]), Err(Errno::EINVAL));
        assert_eq!(Creds::default().set_groups(alloc::vec![9, 3]).unwrap().groups, [3, 9]);
    }

    #[test]
    fn fsuid_moves_the_fs_capabilities() {
        let root = Creds::default();
        let f = root.set_fsuid(1000).unwrap();
        assert!(!f.capable(CAP_DAC_OVERRIDE) && f.capable(CAP_SETUID));
        assert!(f.set_fsuid(0).unwrap().capable(CAP_DAC_OVERRIDE));
        assert!(user(7).set_fsuid(8).is_none());
        assert!(root.set_fsuid(NO_ID).is_none());
    }

    #[test]
    fn exec_applies_set_id_bits() {
        let u = user(1000);
        let s = u.for_exec(0o4755, (0, 0), false);
        assert_eq!((s.uid, s.euid, s.suid), (1000, 0, 0));
        assert!(s.capable(CAP_DAC_OVERRIDE) && s.secure_exec());
        assert_eq!(u.for_exec(0o4755, (0, 0), true), u);
        // setgid without group exec is mandatory locking, not set-group-id.
        assert_eq!(u.for_exec(0o2745, (0, 50), false).egid, 1000);
        assert_eq!(u.for_exec(0o2755, (0, 50), false).egid, 50);
        let a = Creds::default().set_resuid(NO_ID, 1000, NO_ID).unwrap().for_access();
        assert!(a.capable(CAP_DAC_OVERRIDE));
        assert!(!u.for_access().capable(CAP_DAC_OVERRIDE));
    }

    #[test]
    fn capset_rules() {
        let root = Creds::default();
        let chown = 1 << CAP_CHOWN;
        // Dropping is always allowed; the effective set stays within the
        // permitted one; nothing comes back.
        let d = root.set_caps(CAP_FULL & !chown, CAP_FULL & !chown, 0).unwrap();
        assert!(!d.capable(CAP_CHOWN) && d.capable(CAP_KILL));
        assert_eq!(d.set_caps(CAP_FULL, CAP_FULL & !chown, 0), Err(Errno::EPERM));
        assert_eq!(d.set_caps(0, CAP_FULL, 0), Err(Errno::EPERM));
        // Inheritable: within permitted, or the bounding set with SETPCAP.
        let u = d.set_caps(0, chown << 5, 0).unwrap();
        assert_eq!(u.set_caps(0, chown << 5, chown), Err(Errno::EPERM));
        assert!(d.set_caps(d.cap_effective, d.cap_permitted, chown).is_ok());
        let mut nob = root.clone();
        nob.cap_bounding = !chown & CAP_FULL;
        assert_eq!(nob.set_caps(CAP_FULL, CAP_FULL, chown), Err(Errno::EPERM));
    }

    #[test]
    fn exec_gives_ambient_and_root_sets() {
        let kill = 1u64 << CAP_KILL;
        let mut u = user(1000);
        (u.cap_permitted, u.cap_inheritable, u.cap_ambient) = (kill, kill, kill);
        let e = u.for_exec(0o755, (0, 0), false);
        assert_eq!((e.cap_permitted, e.cap_effective, e.cap_ambient), (kill, kill, kill));
        // A set-id exec drops the ambient set.
        let s = u.for_exec(0o4755, (5, 5), false);
        assert_eq!((s.cap_permitted, s.cap_ambient), (0, 0));
        // Root: bounding | inheritable; no_new_privs keeps what it had.
        let mut r = Creds::default();
        r.cap_bounding = kill;
        assert_eq!(r.for_exec(0o755, (0, 0), false).cap_effective, kill);
        let mut r = Creds::default().set_caps(0, 0, 0).unwrap();
        assert_eq!(r.for_exec(0o755, (0, 0), false).cap_effective, CAP_FULL);
        r.cap_bounding = kill;
        assert_eq!(r.for_exec(0o755, (0, 0), true).cap_effective, 0);
        // Leaving root clears ambient.
        let mut a = Creds::default();
        (a.cap_inheritable, a.cap_ambient) = (kill, kill);
        assert_eq!(a.set_uid(1000).unwrap().cap_ambient, 0);
    }
}
