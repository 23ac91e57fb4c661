//! System V IPC (Linux: ipc/util.c, and the namespace's three `ipc_ids`):
//! shared memory segments (`shm`), semaphore sets (`sem`) and message
//! queues (`msg`); and POSIX message queues (`mqueue`), which have names
//! instead of ids. The sandbox is one IPC namespace.
//!
//! Each kind keeps its objects in an [`Ids`] table behind one lock, as
//! Linux's per-kind rwsem plus per-object spinlock collapsed into one
//! (the sentry is not preemptible, so nothing is gained by finer locks).
//! Identifiers are built like Linux's: `seq << 15 | index`, indexes handed
//! out cyclically and the sequence bumped when they wrap, so a removed
//! object's id goes stale instead of naming its successor.
//!
//! Blocking (semop, msgsnd, msgrcv) parks the task on a [`Waiter`] that
//! the object lists; whoever completes the operation fills the waiter in
//! and wakes the task, as Linux's wake_q hand-off.
//!
//! Lock order: a process's address space, then SHM (closing a shm area
//! updates its segment); SEM and MSG are leaves. No IPC lock is held while
//! touching application memory.
#![forbid(unsafe_code)]

pub mod mqueue;
pub mod msg;
pub mod sem;
pub mod shm;

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use spin::Mutex;

use super::creds::{Creds, CAP_IPC_OWNER, CAP_SYS_ADMIN};
use super::sched::{self, TaskShared};
use crate::errno::Errno;

/// The key that always makes a new object.
pub const IPC_PRIVATE: i32 = 0;
pub const IPC_CREAT: i32 = 0o1000;
pub const IPC_EXCL: i32 = 0o2000;
pub const IPC_NOWAIT: i32 = 0o4000;

pub const IPC_RMID: i32 = 0;
pub const IPC_SET: i32 = 1;
pub const IPC_STAT: i32 = 2;
pub const IPC_INFO: i32 = 3;

/// Bits of an id that are the index (Linux: IPCMNI_SHIFT, without
/// ipcmni_extend).
const IDX_SHIFT: u32 = 15;
/// Most objects of one kind (Linux: IPCMNI).
pub const IPCMNI: u32 = 1 << IDX_SHIFT;
const IDX_MASK: u32 = IPCMNI - 1;
/// Sequence numbers wrap here (Linux: ipcid_seq_max, INT_MAX >> shift).
const SEQ_MAX: u32 = (i32::MAX as u32) >> IDX_SHIFT;
/// Indexes cycle through at least this many slots before reusing one
/// (Linux: ipc_min_cycle, RADIX_TREE_MAP_SIZE).
const MIN_CYCLE: u32 = 64;
/// Permission bits of a mode (S_IRWXUGO).
const MODE_BITS: u32 = 0o777;

/// An object's owner and permissions (Linux: `kern_ipc_perm`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Perm {
    pub key: i32,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    /// Permission bits plus the kind's flags (SHM_DEST, SHM_LOCKED).
    pub mode: u32,
    pub seq: u32,
    pub id: i32,
}

impl Perm {
    /// A permission record for a new object; the table fills in owner,
    /// sequence and id when it is added.
    pub fn new(key: i32, flags: i32) -> Perm {
        Perm { key, mode: flags as u32 & MODE_BITS, ..Perm::default() }
    }

    /// Linux's ipcperms: the read/write bits of `flag` (in any of the
    /// three classes) must be granted to the caller's class, unless it has
    /// CAP_IPC_OWNER. EACCES otherwise.
    pub fn check(&self, c: &Creds, flag: u32) -> Result<(), Errno> {
        let flag = flag & 0xffff;
        let requested = ((flag >> 6) | (flag >> 3) | flag) & 7;
        let granted = if c.euid == self.cuid || c.euid == self.uid {
            self.mode >> 6
        } else if c.in_group(self.cgid) || c.in_group(self.gid) {
            self.mode >> 3
        } else {
            self.mode
        };
        if requested & !granted & 7 != 0 && !c.capable(CAP_IPC_OWNER) {
            return Err(Errno::EACCES);
        }
        Ok(())
    }

    /// Whether the caller may change or remove the object: its owner, its
    /// creator, or CAP_SYS_ADMIN (Linux: ipcctl_obtain_check). EPERM
    /// otherwise.
    pub fn may_control(&self, c: &Creds) -> Result<(), Errno> {
        if c.euid == self.cuid || c.euid == self.uid || c.capable(CAP_SYS_ADMIN) {
            Ok(())
        } else {
            Err(Errno::EPERM)
        }
    }

    /// IPC_SET's owner and mode change (Linux: ipc_update_perm); EINVAL
    /// for the invalid id -1.
    pub fn update(&mut self, set: &PermSet) -> Result<(), Errno> {
        if set.uid == u32::MAX || set.gid == u32::MAX {
            return Err(Errno::EINVAL);
        }
        self.uid = set.uid;
        self.gid = set.gid;
        self.mode = (self.mode & !MODE_BITS) | (set.mode & MODE_BITS);
        Ok(())
    }

    /// `struct ipc64_perm` (x86-64: 48 bytes).
    pub fn encode(&self, o: &mut Out) {
        o.i32(self.key);
        o.u32(self.uid);
        o.u32(self.gid);
        o.u32(self.cuid);
        o.u32(self.cgid);
        o.u32(self.mode);
        o.u16(self.seq as u16);
        o.u16(0);
        o.pad(4);
        o.u64(0);
        o.u64(0);
    }
}

/// The fields IPC_SET takes from a user's `ipc64_perm`.
#[derive(Clone, Copy, Debug, Default)]
pub struct PermSet {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl PermSet {
    /// Decodes the first 48 bytes of an `*id64_ds`.
    pub fn decode(b: &[u8]) -> PermSet {
        PermSet { uid: le_u32(b, 4), gid: le_u32(b, 8), mode: le_u32(b, 20) }
    }
}

/// Reads a little-endian u32 at `off` (0 past the end).
pub fn le_u32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4).map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Reads a little-endian u64 at `off` (0 past the end).
pub fn le_u64(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8).map_or(0, |s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_le_bytes(a)
    })
}

/// Builds the bytes of a Linux structure field by field (little-endian,
/// explicit padding), so no `repr(C)` type has to be viewed as bytes.
#[derive(Default)]
pub struct Out(pub Vec<u8>);

impl Out {
    pub fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn pad(&mut self, n: usize) {
        self.0.resize(self.0.len() + n, 0);
    }
}

/// Something kept in an [`Ids`] table.
pub trait IpcObject {
    fn perm(&self) -> &Perm;
    fn perm_mut(&mut self) -> &mut Perm;
}

/// What a key lookup (Linux: ipcget) decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Make a new object.
    Create,
    /// The key names this existing object, which the caller may use.
    Existing(i32),
}

/// The objects of one kind (Linux: `struct ipc_ids`), by index.
pub struct Ids<T> {
    objs: BTreeMap<u32, T>,
    keys: BTreeMap<i32, u32>,
    seq: u32,
    last_idx: Option<u32>,
    /// Where the cyclic index search resumes (Linux: the idr's idr_next).
    next: u32,
}

impl<T: IpcObject> Ids<T> {
    /// An empty table.
    pub const fn new() -> Ids<T> {
        Ids { objs: BTreeMap::new(), keys: BTreeMap::new(), seq: 0, last_idx: None, next: 0 }
    }

    /// How many objects exist.
    pub fn in_use(&self) -> usize {
        self.objs.len()
    }

    /// The highest index in use, 0 if none (what the *_INFO commands
    /// return).
    pub fn max_idx(&self) -> u64 {
        self.objs.keys().next_back().map_or(0, |&i| u64::from(i))
    }

    /// The objects in index order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.objs.values()
    }

    /// The objects in index order, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.objs.values_mut()
    }

    /// The object with identifier `id`, whose sequence must match
    /// (Linux: ipc_obtain_object_check). EINVAL otherwise.
    pub fn get(&mut self, id: i32) -> Result<&mut T, Errno> {
        let id = u32::try_from(id).map_err(|_| Errno::EINVAL)?;
        let o = self.objs.get_mut(&(id & IDX_MASK)).ok_or(Errno::EINVAL)?;
        if o.perm().seq != id >> IDX_SHIFT {
            return Err(Errno::EINVAL);
        }
        Ok(o)
    }

    /// The object at the index part of `id`, whatever its sequence: the
    /// *_STAT commands take an index (Linux: ipc_obtain_object_idr).
    pub fn get_by_index(&mut self, id: i32) -> Result<&mut T, Errno> {
        let id = u32::try_from(id).map_err(|_| Errno::EINVAL)?;
        self.objs.get_mut(&(id & IDX_MASK)).ok_or(Errno::EINVAL)
    }

    /// Decides what xxxget(key, ..., flags) does (Linux: ipcget): a new
    /// object for IPC_PRIVATE or an unknown key with IPC_CREAT, else the
    /// existing one after `more` (the kind's own checks) and the
    /// permission check against the requested mode in `flags`.
    pub fn lookup(&self, key: i32, flags: i32, c: &Creds, more: impl FnOnce(&T) -> Result<(), Errno>) -> Result<Lookup, Errno> {
        if key == IPC_PRIVATE {
            return Ok(Lookup::Create);
        }
        let Some(o) = self.keys.get(&key).and_then(|i| self.objs.get(i)) else {
            return if flags & IPC_CREAT != 0 { Ok(Lookup::Create) } else { Err(Errno::ENOENT) };
        };
        if flags & IPC_CREAT != 0 && flags & IPC_EXCL != 0 {
            return Err(Errno::EEXIST);
        }
        more(o)?;
        o.perm().check(c, flags as u32)?;
        Ok(Lookup::Existing(o.perm().id))
    }

    /// Adds an object owned by the caller; returns its identifier. ENOSPC
    /// when `limit` objects exist (Linux: ipc_addid).
    pub fn add(&mut self, mut obj: T, limit: u32, c: &Creds) -> Result<i32, Errno> {
        let limit = limit.min(IPCMNI);
        let in_use = u32::try_from(self.objs.len()).unwrap_or(u32::MAX);
        if in_use >= limit {
            return Err(Errno::ENOSPC);
        }
        let end = (in_use.saturating_mul(3) / 2).clamp(MIN_CYCLE, IPCMNI);
        let idx = self.alloc_index(end).ok_or(Errno::ENOSPC)?;
        if self.last_idx.is_some_and(|l| idx <= l) {
            self.seq += 1;
            if self.seq >= SEQ_MAX {
                self.seq = 0;
            }
        }
        self.last_idx = Some(idx);
        let p = obj.perm_mut();
        p.seq = self.seq;
        p.id = ((self.seq << IDX_SHIFT) | idx) as i32;
        (p.uid, p.cuid, p.gid, p.cgid) = (c.euid, c.euid, c.egid, c.egid);
        let (key, id) = (p.key, p.id);
        if key != IPC_PRIVATE {
            self.keys.insert(key, idx);
        }
        self.objs.insert(idx, obj);
        Ok(id)
    }

    /// The first free index from the cursor below `end`, wrapping to 0
    /// (Linux: idr_alloc_cyclic).
    fn alloc_index(&mut self, end: u32) -> Option<u32> {
        let from = |start: u32, objs: &BTreeMap<u32, T>| (start..end).find(|i| !objs.contains_key(i));
        let idx = from(self.next, &self.objs).or_else(|| if self.next > 0 { from(0, &self.objs) } else { None })?;
        self.next = idx + 1;
        Some(idx)
    }

    /// Removes the object with identifier `id` (already validated).
    pub fn remove(&mut self, id: i32) -> Option<T> {
        let idx = (id as u32) & IDX_MASK;
        let o = self.objs.remove(&idx)?;
        let key = o.perm().key;
        if key != IPC_PRIVATE && self.keys.get(&key) == Some(&idx) {
            self.keys.remove(&key);
        }
        Some(o)
    }

    /// Makes the object unreachable by its key (a segment marked for
    /// removal while attached: Linux's ipc_set_key_private).
    pub fn set_key_private(&mut self, id: i32) {
        let idx = (id as u32) & IDX_MASK;
        if let Some(o) = self.objs.get_mut(&idx) {
            let key = core::mem::replace(&mut o.perm_mut().key, IPC_PRIVATE);
            if key != IPC_PRIVATE {
                self.keys.remove(&key);
            }
        }
    }
}

impl<T: IpcObject> Default for Ids<T> {
    fn default() -> Ids<T> {
        Ids::new()
    }
}

/// The sandbox's limits, from the sysctls the container may set (as
/// /proc/sys/kernel shows them).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub shmmax: u64,
    pub shmall: u64,
    pub shmmni: u32,
    pub semmsl: u32,
    pub semmns: u32,
    pub semopm: u32,
    pub semmni: u32,
    pub msgmax: u32,
    pub msgmnb: u32,
    pub msgmni: u32,
}

/// Linux's defaults (include/uapi/linux/{shm,sem,msg}.h).
pub const DEFAULT_LIMITS: Limits = Limits {
    shmmax: u64::MAX - (1 << 24),
    shmall: u64::MAX - (1 << 24),
    shmmni: 4096,
    semmsl: 32000,
    semmns: 32000 * 32000,
    semopm: 500,
    semmni: 32000,
    msgmax: 8192,
    msgmnb: 16384,
    msgmni: 32000,
};

/// The current limits.
pub fn limits() -> Limits {
    use crate::fs::proc::{sysctl_u32, sysctl_u64, sysctl_words};
    let d = DEFAULT_LIMITS;
    let sem = sysctl_words("kernel.sem");
    let sem_at = |i: usize, dflt: u32| sem.get(i).and_then(|v| u32::try_from(*v).ok()).unwrap_or(dflt);
    Limits {
        shmmax: sysctl_u64("kernel.shmmax", d.shmmax),
        shmall: sysctl_u64("kernel.shmall", d.shmall),
        shmmni: sysctl_u32("kernel.shmmni", d.shmmni),
        semmsl: sem_at(0, d.semmsl),
        semmns: sem_at(1, d.semmns),
        semopm: sem_at(2, d.semopm),
        semmni: sem_at(3, d.semmni),
        msgmax: sysctl_u32("kernel.msgmax", d.msgmax),
        msgmnb: sysctl_u32("kernel.msgmnb", d.msgmnb),
        msgmni: sysctl_u32("kernel.msgmni", d.msgmni),
    }
}

/// Who is calling and when: what the objects record (last pid, times)
/// and check (credentials), passed in so their logic runs in unit tests
/// without a task.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub creds: &'a Creds,
    /// The caller's process id (Linux: task_tgid).
    pub pid: u32,
    /// CLOCK_REALTIME in seconds.
    pub now: i64,
}

/// The running task's process id (0 outside a task).
pub fn current_pid() -> u32 {
    sched::current().map_or(0, |t| t.tgid.load(Ordering::Relaxed))
}

/// CLOCK_REALTIME in seconds (Linux: ktime_get_real_seconds).
pub fn now_secs() -> i64 {
    i64::try_from(super::clock::realtime_ns() / 1_000_000_000).unwrap_or(i64::MAX)
}

/// A task sleeping in an IPC call, and how its wait ended: filled in by
/// whoever completes (or fails) its operation, which then wakes it.
pub struct Waiter<T> {
    task: Option<Arc<TaskShared>>,
    done: Mutex<Option<T>>,
}

impl<T> Waiter<T> {
    /// A waiter for `task` (None in unit tests: nobody to wake).
    pub fn new(task: Option<Arc<TaskShared>>) -> Arc<Waiter<T>> {
        Arc::new(Waiter { task, done: Mutex::new(None) })
    }

    /// Ends the wait with `v` and wakes the task.
    pub fn finish(&self, v: T) {
        *self.done.lock() = Some(v);
        if let Some(t) = &self.task {
            sched::wake(t);
        }
    }

    /// Whether the wait has ended.
    pub fn is_done(&self) -> bool {
        self.done.lock().is_some()
    }

    /// How the wait ended, if it has.
    pub fn take(&self) -> Option<T> {
        self.done.lock().take()
    }
}

/// Process `pid` has ended: its semaphore adjustments are applied
/// (Linux: exit_sem), its message queue notifications are dropped (its
/// descriptors closed: Linux's mqueue_flush_file). Its shared memory
/// detaches with its address space.
pub fn exit_process(pid: u32) {
    sem::exit_undo(pid, now_secs());
    mqueue::process_exited(pid);
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Obj(Perm);
    impl IpcObject for Obj {
        fn perm(&self) -> &Perm {
            &self.0
        }
        fn perm_mut(&mut self) -> &mut Perm {
            &mut self.0
        }
    }

    fn user(uid: u32, gid: u32) -> Creds {
        Creds::new(uid, gid, Vec::new())
    }

    #[test]
    fn ids_cycle_and_go_stale() {
        let root = Creds::default();
        let mut ids: Ids<Obj> = Ids::new();
        let a = ids.add(Obj(Perm::new(0, 0o600)), 10, &root).unwrap();
        let b = ids.add(Obj(Perm::new(0, 0o600)), 10, &root).unwrap();
        assert_eq!((a, b), (0, 1));
        assert!(ids.remove(a).is_some());
        // Indexes keep cycling rather than reusing 0 at once.
        let c = ids.add(Obj(Perm::new(0, 0o600)), 10, &root).unwrap();
        assert_eq!(c, 2);
        assert_eq!(ids.get(a).err(), Some(Errno::EINVAL));
        assert!(ids.get(b).is_ok());
        assert_eq!(ids.max_idx(), 2);
        ids.remove(b);
        ids.remove(c);
        // Once the cycle is used up the index wraps to 0 and the
        // sequence moves on, so old ids stay stale.
        for i in 3..MIN_CYCLE {
            let x = ids.add(Obj(Perm::new(0, 0o600)), 100, &root).unwrap();
            assert_eq!(x, i as i32);
            ids.remove(x);
        }
        let w = ids.add(Obj(Perm::new(0, 0o600)), 100, &root).unwrap();
        assert_eq!(w, 1 << IDX_SHIFT);
        assert_eq!(ids.get(0).err(), Some(Errno::EINVAL));
        assert!(ids.get(w).is_ok());
        assert!(ids.get_by_index(0).is_ok());
        assert_eq!(ids.get(-1).err(), Some(Errno::EINVAL));
    }

    #[test]
    fn limit_is_enospc() {
        let root = Creds::default();
        let mut ids: Ids<Obj> = Ids::new();
        ids.add(Obj(Perm::new(0, 0)), 1, &root).unwrap();
        assert_eq!(ids.add(Obj(Perm::new(0, 0)), 1, &root), Err(Errno::ENOSPC));
    }

    #[test]
    fn key_lookup_follows_ipcget() {
        let root = Creds::default();
        let mut ids: Ids<Obj> = Ids::new();
        let ok = |_: &Obj| Ok(());
        assert_eq!(ids.lookup(42, 0, &root, ok), Err(Errno::ENOENT));
        assert_eq!(ids.lookup(42, IPC_CREAT, &root, ok), Ok(Lookup::Create));
        assert_eq!(ids.lookup(IPC_PRIVATE, 0, &root, ok), Ok(Lookup::Create));
        let id = ids.add(Obj(Perm::new(42, 0o640)), 10, &user(1000, 100)).unwrap();
        assert_eq!(ids.lookup(42, 0, &root, ok), Ok(Lookup::Existing(id)));
        assert_eq!(ids.lookup(42, IPC_CREAT | IPC_EXCL, &root, ok), Err(Errno::EEXIST));
        assert_eq!(ids.lookup(42, 0, &root, |_| Err(Errno::EINVAL)), Err(Errno::EINVAL));
        // Group members may read, not write; others nothing.
        let member = user(1001, 100);
        assert_eq!(ids.lookup(42, 0o400, &member, ok), Ok(Lookup::Existing(id)));
        assert_eq!(ids.lookup(42, 0o600, &member, ok), Err(Errno::EACCES));
        assert_eq!(ids.lookup(42, 0o004, &user(2000, 200), ok), Err(Errno::EACCES));
        assert_eq!(ids.lookup(42, 0, &user(2000, 200), ok), Ok(Lookup::Existing(id)));
        ids.set_key_private(id);
        assert_eq!(ids.lookup(42, 0, &root, ok), Err(Errno::ENOENT));
        assert!(ids.get(id).is_ok());
    }

    #[test]
    fn control_and_update() {
        let mut p = Perm::new(1, 0o600);
        (p.uid, p.cuid, p.gid, p.cgid) = (1000, 1001, 100, 100);
        assert!(p.may_control(&user(1000, 1)).is_ok());
        assert!(p.may_control(&user(1001, 1)).is_ok());
        assert_eq!(p.may_control(&user(1002, 100)), Err(Errno::EPERM));
        assert!(p.may_control(&Creds::default()).is_ok());
        p.mode |= 0o1000;
        assert_eq!(p.update(&PermSet { uid: u32::MAX, gid: 1, mode: 0 }), Err(Errno::EINVAL));
        p.update(&PermSet { uid: 5, gid: 6, mode: 0o7444 }).unwrap();
        assert_eq!((p.uid, p.gid, p.mode), (5, 6, 0o1444));
    }

    #[test]
    fn perm_layout() {
        let p = Perm { key: -1, uid: 1, gid: 2, cuid: 3, cgid: 4, mode: 0o600, seq: 7, id: 0 };
        let mut o = Out::default();
        p.encode(&mut o);
        assert_eq!(o.0.len(), 48);
        assert_eq!(&o.0[0..4], &[0xff; 4]);
        assert_eq!(le_u32(&o.0, 20), 0o600);
        assert_eq!(u16::from_le_bytes([o.0[24], o.0[25]]), 7);
        let s = PermSet::decode(&o.0);
        assert_eq!((s.uid, s.gid, s.mode), (1, 2, 0o600));
    }
}
