//! System V semaphores (Linux: ipc/sem.c).
//!
//! A semop applies all its operations or none. One that cannot proceed
//! waits in its set's FIFO queue; whoever changes the set (semop, SETVAL,
//! SETALL, an exiting process's undo) retries the queue in order and
//! completes what can now run, handing each sleeper its result — Linux's
//! update_queue, so wake-ups are FIFO and never lose a race to a
//! newcomer. Removing the set fails the sleepers with EIDRM.
//!
//! SEM_UNDO adjustments are kept per set and process (Linux keeps them
//! per process and set); they are applied, clamped to 0..=SEMVMX, when the
//! process ends.
#![forbid(unsafe_code)]

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write as _;
use spin::Mutex;

use super::{Ctx, Ids, IpcObject, Limits, Lookup, Out, Perm, PermSet, Waiter, IPC_INFO, IPC_NOWAIT, IPC_STAT};
use crate::errno::Errno;

/// semctl commands.
pub const GETPID: i32 = 11;
pub const GETVAL: i32 = 12;
pub const GETALL: i32 = 13;
pub const GETNCNT: i32 = 14;
pub const GETZCNT: i32 = 15;
pub const SETVAL: i32 = 16;
pub const SETALL: i32 = 17;
pub const SEM_STAT: i32 = 18;
pub const SEM_INFO: i32 = 19;
pub const SEM_STAT_ANY: i32 = 20;
/// sem_flg: undo when the process ends.
pub const SEM_UNDO: i16 = 0x1000;
/// Largest semaphore value.
pub const SEMVMX: i32 = 32767;
/// Largest undo adjustment.
const SEMAEM: i32 = SEMVMX;
/// Fixed seminfo fields (Linux: SEMUME = SEMOPM, SEMUSZ, SEMMNU = SEMMAP = SEMMNS).
const SEMUME: i32 = 500;
const SEMUSZ: i32 = 20;
const SEMMNS_DEFAULT: i32 = 32000 * 32000;

/// One operation of a semop (`struct sembuf`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SemBuf {
    pub num: u16,
    pub op: i16,
    pub flg: i16,
}

impl SemBuf {
    /// Decodes the 6-byte `struct sembuf`s of `b`.
    pub fn decode_all(b: &[u8]) -> Vec<SemBuf> {
        b.chunks_exact(6)
            .map(|c| SemBuf { num: u16::from_le_bytes([c[0], c[1]]), op: i16::from_le_bytes([c[2], c[3]]), flg: i16::from_le_bytes([c[4], c[5]]) })
            .collect()
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Sem {
    val: i32,
    /// Last process to change it (semop, SETVAL, SETALL, undo).
    pid: u32,
}

/// How a semop ends for a sleeper: Ok, or its error (EIDRM, ERANGE...).
pub type SemResult = Result<(), Errno>;

/// A semop waiting in its set's queue.
struct Pending {
    waiter: Arc<Waiter<SemResult>>,
    ops: Vec<SemBuf>,
    pid: u32,
    alter: bool,
    /// The operation it waits on (Linux: q->blocking), for GETNCNT/GETZCNT.
    blocking: SemBuf,
}

/// What trying a semop found.
#[derive(Debug, PartialEq, Eq)]
enum Try {
    Done,
    /// Must wait for this operation.
    Blocked(SemBuf),
    Failed(Errno),
}

/// One set (Linux: `sem_array`).
pub struct SemSet {
    pub perm: Perm,
    otime: i64,
    ctime: i64,
    sems: Vec<Sem>,
    pending: Vec<Pending>,
    /// SEM_UNDO adjustments by process.
    undo: BTreeMap<u32, Vec<i32>>,
}

impl IpcObject for SemSet {
    fn perm(&self) -> &Perm {
        &self.perm
    }
    fn perm_mut(&mut self) -> &mut Perm {
        &mut self.perm
    }
}

impl SemSet {
    /// Applies `ops` for `pid` if they can all proceed now, in order
    /// (Linux: perform_atomic_semop_slow); changes nothing otherwise.
    fn try_ops(&mut self, ops: &[SemBuf], pid: u32) -> Try {
        let mut vals: Vec<i32> = self.sems.iter().map(|s| s.val).collect();
        let undoes = ops.iter().any(|o| o.flg & SEM_UNDO != 0);
        let mut adj = if undoes { self.undo.get(&pid).cloned().unwrap_or_else(|| vec![0; vals.len()]) } else { Vec::new() };
        for o in ops {
            let i = usize::from(o.num);
            let v = vals[i];
            let op = i32::from(o.op);
            if (op == 0 && v != 0) || v + op < 0 {
                return if o.flg & IPC_NOWAIT as i16 != 0 { Try::Failed(Errno::EAGAIN) } else { Try::Blocked(*o) };
            }
            if v + op > SEMVMX {
                return Try::Failed(Errno::ERANGE);
            }
            if o.flg & SEM_UNDO != 0 {
                let u = adj[i] - op;
                if !(-SEMAEM - 1..=SEMAEM).contains(&u) {
                    return Try::Failed(Errno::ERANGE);
                }
                adj[i] = u;
            }
            vals[i] = v + op;
        }
        for (s, v) in self.sems.iter_mut().zip(vals) {
            s.val = v;
        }
        for o in ops {
            self.sems[usize::from(o.num)].pid = pid;
        }
        if undoes {
            self.undo.insert(pid, adj);
        }
        Try::Done
    }

    /// Completes the queued semops that can now run, oldest first,
    /// starting over whenever one changes a value (Linux: update_queue).
    /// Returns whether any completed.
    fn update_queue(&mut self) -> bool {
        let mut any = false;
        'scan: loop {
            let mut i = 0;
            while i < self.pending.len() {
                let (ops, pid) = (self.pending[i].ops.clone(), self.pending[i].pid);
                match self.try_ops(&ops, pid) {
                    Try::Blocked(b) => {
                        self.pending[i].blocking = b;
                        i += 1;
                    }
                    r => {
                        let p = self.pending.remove(i);
                        let done = r == Try::Done;
                        p.waiter.finish(match r {
                            Try::Failed(e) => Err(e),
                            _ => Ok(()),
                        });
                        if done {
                            any = true;
                            if p.alter {
                                continue 'scan;
                            }
                        }
                    }
                }
            }
            return any;
        }
    }

    /// A change outside semop (SETVAL, SETALL, undo): waiters may now run.
    fn changed(&mut self, now: i64, set_otime: bool) {
        if self.update_queue() || set_otime {
            self.otime = now;
        }
    }

    /// How many sleepers wait on semaphore `num` to grow (or, with
    /// `zero`, to be zero).
    fn count(&self, num: u16, zero: bool) -> u64 {
        self.pending.iter().filter(|p| p.blocking.num == num && if zero { p.blocking.op == 0 } else { p.blocking.op < 0 }).count() as u64
    }

    /// `struct semid64_ds` (x86-64: 104 bytes).
    fn encode(&self) -> Vec<u8> {
        let mut o = Out::default();
        self.perm.encode(&mut o);
        o.i64(self.otime);
        o.u64(0);
        o.i64(self.ctime);
        o.u64(0);
        o.u64(self.sems.len() as u64);
        o.u64(0);
        o.u64(0);
        o.0
    }
}

/// All semaphore sets.
pub struct SemState {
    ids: Ids<SemSet>,
    /// Semaphores in all sets (Linux: used_sems), against semmns.
    used: u64,
}

static SEM: Mutex<SemState> = Mutex::new(SemState::new());

/// Runs `f` on the sandbox's semaphore sets.
pub fn with<R>(f: impl FnOnce(&mut SemState) -> R) -> R {
    f(&mut SEM.lock())
}

/// What a semop did: finished (Ok or not), or queued to wait.
pub enum Op {
    Done(SemResult),
    Queued,
}

impl SemState {
    /// No sets.
    pub const fn new() -> SemState {
        SemState { ids: Ids::new(), used: 0 }
    }

    /// semget.
    pub fn get(&mut self, key: i32, nsems: i32, flags: i32, c: &Ctx, lim: &Limits) -> Result<i32, Errno> {
        let n = u32::try_from(nsems).ok().filter(|n| *n <= lim.semmsl).ok_or(Errno::EINVAL)?;
        match self.ids.lookup(key, flags, c.creds, |s| if (n as usize) > s.sems.len() { Err(Errno::EINVAL) } else { Ok(()) })? {
            Lookup::Existing(id) => Ok(id),
            Lookup::Create => {
                if n == 0 {
                    return Err(Errno::EINVAL);
                }
                if self.used + u64::from(n) > u64::from(lim.semmns) {
                    return Err(Errno::ENOSPC);
                }
                let mut sems = Vec::new();
                sems.try_reserve_exact(n as usize).map_err(|_| Errno::ENOMEM)?;
                sems.resize(n as usize, Sem::default());
                let set = SemSet { perm: Perm::new(key, flags), otime: 0, ctime: c.now, sems, pending: Vec::new(), undo: BTreeMap::new() };
                let id = self.ids.add(set, lim.semmni, c.creds)?;
                self.used += u64::from(n);
                Ok(id)
            }
        }
    }

    /// semop/semtimedop after the argument checks: runs `ops` now, fails,
    /// or queues `waiter` (unless every blocking op said IPC_NOWAIT).
    pub fn semop(&mut self, id: i32, ops: &[SemBuf], c: &Ctx, waiter: &Arc<Waiter<SemResult>>) -> Result<Op, Errno> {
        let set = self.ids.get(id)?;
        let max = ops.iter().map(|o| o.num).max().unwrap_or(0);
        if usize::from(max) >= set.sems.len() {
            return Err(Errno::EFBIG);
        }
        let alter = ops.iter().any(|o| o.op != 0);
        set.perm.check(c.creds, if alter { 0o222 } else { 0o444 })?;
        match set.try_ops(ops, c.pid) {
            Try::Done => {
                if alter {
                    set.update_queue();
                }
                set.otime = c.now;
                Ok(Op::Done(Ok(())))
            }
            Try::Failed(e) => Ok(Op::Done(Err(e))),
            Try::Blocked(b) => {
                set.pending.push(Pending { waiter: waiter.clone(), ops: ops.to_vec(), pid: c.pid, alter, blocking: b });
                Ok(Op::Queued)
            }
        }
    }

    /// A sleeper gave up (signal, timeout): takes it out of its set's
    /// queue. Returns its result instead if it completed meanwhile.
    pub fn cancel(&mut self, id: i32, waiter: &Arc<Waiter<SemResult>>) -> Option<SemResult> {
        if let Some(r) = waiter.take() {
            return Some(r);
        }
        if let Ok(set) = self.ids.get(id) {
            set.pending.retain(|p| !Arc::ptr_eq(&p.waiter, waiter));
        }
        None
    }

    /// semctl IPC_STAT, SEM_STAT, SEM_STAT_ANY.
    pub fn stat(&mut self, id: i32, cmd: i32, c: &Ctx) -> Result<(Vec<u8>, u64), Errno> {
        let set = if cmd == IPC_STAT { self.ids.get(id)? } else { self.ids.get_by_index(id)? };
        if cmd != SEM_STAT_ANY {
            set.perm.check(c.creds, 0o444)?;
        }
        let ret = if cmd == IPC_STAT { 0 } else { u64::from(set.perm.id as u32) };
        Ok((set.encode(), ret))
    }

    /// IPC_INFO / SEM_INFO (`struct seminfo`), and the highest index.
    pub fn info(&self, cmd: i32, lim: &Limits) -> (Vec<u8>, u64) {
        let semmns = i32::try_from(lim.semmns).unwrap_or(i32::MAX);
        let (usz, aem) = if cmd == IPC_INFO { (SEMUSZ, SEMAEM) } else { (self.ids.in_use() as i32, i32::try_from(self.used).unwrap_or(i32::MAX)) };
        let mut o = Out::default();
        // semmap, semmni, semmns, semmnu, semmsl, semopm, semume, semusz, semvmx, semaem
        for v in [SEMMNS_DEFAULT, lim.semmni as i32, semmns, SEMMNS_DEFAULT, lim.semmsl as i32, lim.semopm as i32, SEMUME, usz, SEMVMX, aem] {
            o.i32(v);
        }
        (o.0, self.ids.max_idx())
    }

    /// GETVAL, GETPID, GETNCNT, GETZCNT.
    pub fn get_one(&mut self, id: i32, num: i32, cmd: i32, c: &Ctx) -> Result<u64, Errno> {
        let set = self.ids.get(id)?;
        set.perm.check(c.creds, 0o444)?;
        let i = usize::try_from(num).ok().filter(|i| *i < set.sems.len()).ok_or(Errno::EINVAL)?;
        Ok(match cmd {
            GETVAL => set.sems[i].val as u64,
            GETPID => u64::from(set.sems[i].pid),
            GETNCNT => set.count(i as u16, false),
            _ => set.count(i as u16, true),
        })
    }

    /// GETALL's checks: the number of semaphores to copy out.
    pub fn getall(&mut self, id: i32, c: &Ctx) -> Result<Vec<u16>, Errno> {
        let set = self.ids.get(id)?;
        set.perm.check(c.creds, 0o444)?;
        Ok(set.sems.iter().map(|s| s.val as u16).collect())
    }

    /// How many semaphores set `id` has, if the caller may write them
    /// (SETALL's checks before it reads the values).
    pub fn setall_len(&mut self, id: i32, c: &Ctx) -> Result<usize, Errno> {
        let set = self.ids.get(id)?;
        set.perm.check(c.creds, 0o222)?;
        Ok(set.sems.len())
    }

    /// SETALL with the values read; the set may have gone meanwhile.
    pub fn setall(&mut self, id: i32, vals: &[u16], c: &Ctx) -> Result<(), Errno> {
        if vals.iter().any(|v| i32::from(*v) > SEMVMX) {
            return Err(Errno::ERANGE);
        }
        let set = self.ids.get(id).map_err(|_| Errno::EIDRM)?;
        if vals.len() != set.sems.len() {
            return Err(Errno::EIDRM);
        }
        for (s, v) in set.sems.iter_mut().zip(vals) {
            s.val = i32::from(*v);
            s.pid = c.pid;
        }
        for adj in set.undo.values_mut() {
            adj.iter_mut().for_each(|a| *a = 0);
        }
        set.ctime = c.now;
        set.changed(c.now, false);
        Ok(())
    }

    /// SETVAL.
    pub fn setval(&mut self, id: i32, num: i32, val: i32, c: &Ctx) -> Result<(), Errno> {
        if !(0..=SEMVMX).contains(&val) {
            return Err(Errno::ERANGE);
        }
        let set = self.ids.get(id)?;
        let i = usize::try_from(num).ok().filter(|i| *i < set.sems.len()).ok_or(Errno::EINVAL)?;
        set.perm.check(c.creds, 0o222)?;
        for adj in set.undo.values_mut() {
            adj[i] = 0;
        }
        set.sems[i] = Sem { val, pid: c.pid };
        set.ctime = c.now;
        set.changed(c.now, false);
        Ok(())
    }

    /// IPC_SET.
    pub fn set(&mut self, id: i32, p: &PermSet, c: &Ctx) -> Result<(), Errno> {
        let set = self.ids.get(id)?;
        set.perm.may_control(c.creds)?;
        set.perm.update(p)?;
        set.ctime = c.now;
        Ok(())
    }

    /// IPC_RMID: sleepers fail with EIDRM.
    pub fn rmid(&mut self, id: i32, c: &Ctx) -> Result<(), Errno> {
        self.ids.get(id)?.perm.may_control(c.creds)?;
        if let Some(set) = self.ids.remove(id) {
            self.used -= set.sems.len() as u64;
            for p in set.pending {
                p.waiter.finish(Err(Errno::EIDRM));
            }
        }
        Ok(())
    }

    /// Applies and forgets process `pid`'s undo adjustments.
    fn exit(&mut self, pid: u32, now: i64) {
        for set in self.ids.iter_mut() {
            let Some(adj) = set.undo.remove(&pid) else { continue };
            for (s, a) in set.sems.iter_mut().zip(adj) {
                if a != 0 {
                    s.val = (s.val + a).clamp(0, SEMVMX);
                    s.pid = pid;
                }
            }
            set.changed(now, true);
        }
    }
}

impl Default for SemState {
    fn default() -> SemState {
        SemState::new()
    }
}

/// Process `pid` ended: applies its SEM_UNDO adjustments (Linux: exit_sem).
pub fn exit_undo(pid: u32, now: i64) {
    SEM.lock().exit(pid, now);
}

/// /proc/sysvipc/sem.
pub fn proc_text() -> String {
    let mut s = String::from("       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n");
    for set in SEM.lock().ids.iter() {
        let p = &set.perm;
        let _ = writeln!(
            s,
            "{:10} {:10}  {:4o} {:10} {:5} {:5} {:5} {:5} {:10} {:10}",
            p.key,
            p.id,
            p.mode,
            set.sems.len(),
            p.uid,
            p.gid,
            p.cuid,
            p.cgid,
            set.otime,
            set.ctime
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::creds::Creds;
    use crate::kernel::ipc::{DEFAULT_LIMITS, IPC_PRIVATE};

    fn op(num: u16, op: i16, flg: i16) -> SemBuf {
        SemBuf { num, op, flg }
    }

    fn ctx(c: &Creds, pid: u32) -> Ctx<'_> {
        Ctx { creds: c, pid, now: 10 }
    }

    fn semop(s: &mut SemState, id: i32, ops: &[SemBuf], c: &Ctx) -> (Result<Op, Errno>, Arc<Waiter<SemResult>>) {
        let w = Waiter::new(None);
        (s.semop(id, ops, c, &w), w)
    }

    #[test]
    fn all_or_nothing() {
        let root = Creds::default();
        let c = ctx(&root, 1);
        let mut s = SemState::new();
        let id = s.get(IPC_PRIVATE, 2, 0o600, &c, &DEFAULT_LIMITS).unwrap();
        s.setval(id, 0, 1, &c).unwrap();
        // The second op would block: the first must not stick.
        let (r, _) = semop(&mut s, id, &[op(0, -1, 0), op(1, -1, IPC_NOWAIT as i16)], &c);
        assert!(matches!(r, Ok(Op::Done(Err(Errno::EAGAIN)))));
        assert_eq!(s.get_one(id, 0, GETVAL, &c), Ok(1));
        // Sequential within one call: take then give back.
        let (r, _) = semop(&mut s, id, &[op(0, -1, 0), op(0, 1, 0), op(1, 3, 0)], &c);
        assert!(matches!(r, Ok(Op::Done(Ok(())))));
        assert_eq!(s.getall(id, &c).unwrap(), vec![1, 3]);
        let (r, _) = semop(&mut s, id, &[op(0, i16::MAX, 0)], &c);
        assert!(matches!(r, Ok(Op::Done(Err(Errno::ERANGE)))));
        assert_eq!(semop(&mut s, id, &[op(2, 1, 0)], &c).0.err(), Some(Errno::EFBIG));
    }

    #[test]
    fn queue_completes_in_order_and_counts() {
        let root = Creds::default();
        let mut s = SemState::new();
        let c1 = ctx(&root, 1);
        let id = s.get(IPC_PRIVATE, 1, 0o600, &c1, &DEFAULT_LIMITS).unwrap();
        let (r, w1) = semop(&mut s, id, &[op(0, -2, 0)], &ctx(&root, 2));
        assert!(matches!(r, Ok(Op::Queued)));
        let (_, w2) = semop(&mut s, id, &[op(0, -1, 0)], &ctx(&root, 3));
        assert_eq!(s.get_one(id, 0, GETNCNT, &c1), Ok(2));
        // 1 is not enough for the first sleeper; the second gets it.
        assert!(matches!(semop(&mut s, id, &[op(0, 1, 0)], &c1).0, Ok(Op::Done(Ok(())))));
        assert!(!w1.is_done());
        assert_eq!(w2.take(), Some(Ok(())));
        assert!(matches!(semop(&mut s, id, &[op(0, 3, 0)], &c1).0, Ok(Op::Done(Ok(())))));
        assert_eq!(w1.take(), Some(Ok(())));
        assert_eq!(s.get_one(id, 0, GETPID, &c1), Ok(2));
        let (r, wz) = semop(&mut s, id, &[op(0, 0, 0)], &ctx(&root, 4));
        assert!(matches!(r, Ok(Op::Queued)));
        assert_eq!(s.get_one(id, 0, GETZCNT, &c1), Ok(1));
        assert!(matches!(semop(&mut s, id, &[op(0, -1, 0)], &c1).0, Ok(Op::Done(Ok(())))));
        assert_eq!(wz.take(), Some(Ok(())));
        let (_, w3) = semop(&mut s, id, &[op(0, -1, 0)], &c1);
        s.rmid(id, &c1).unwrap();
        assert_eq!(w3.take(), Some(Err(Errno::EIDRM)));
    }

    #[test]
    fn undo_on_exit() {
        let root = Creds::default();
        let mut s = SemState::new();
        let c = ctx(&root, 5);
        let id = s.get(IPC_PRIVATE, 1, 0o600, &c, &DEFAULT_LIMITS).unwrap();
        s.setval(id, 0, 1, &c).unwrap();
        assert!(matches!(semop(&mut s, id, &[op(0, -1, SEM_UNDO)], &c).0, Ok(Op::Done(Ok(())))));
        let (_, w) = semop(&mut s, id, &[op(0, -1, 0)], &ctx(&root, 6));
        s.exit(5, 20);
        assert_eq!(w.take(), Some(Ok(())));
        assert_eq!(s.get_one(id, 0, GETVAL, &c), Ok(0));
        // SETVAL clears adjustments.
        assert!(matches!(semop(&mut s, id, &[op(0, 2, SEM_UNDO)], &c).0, Ok(Op::Done(Ok(())))));
        s.setval(id, 0, 0, &c).unwrap();
        s.exit(5, 30);
        assert_eq!(s.get_one(id, 0, GETVAL, &c), Ok(0));
    }

    #[test]
    fn checks() {
        let owner = Creds::new(1000, 1000, Vec::new());
        let other = Creds::new(2000, 2000, Vec::new());
        let mut s = SemState::new();
        let lim = DEFAULT_LIMITS;
        assert_eq!(s.get(IPC_PRIVATE, 0, 0, &ctx(&owner, 1), &lim), Err(Errno::EINVAL));
        assert_eq!(s.get(IPC_PRIVATE, -1, 0, &ctx(&owner, 1), &lim), Err(Errno::EINVAL));
        assert_eq!(s.get(IPC_PRIVATE, 32001, 0, &ctx(&owner, 1), &lim), Err(Errno::EINVAL));
        let id = s.get(9, 3, 0o604 | crate::kernel::ipc::IPC_CREAT, &ctx(&owner, 1), &lim).unwrap();
        assert_eq!(s.get(9, 4, 0, &ctx(&owner, 1), &lim), Err(Errno::EINVAL));
        assert_eq!(s.get(9, 0, 0, &ctx(&owner, 1), &lim), Ok(id));
        assert_eq!(s.setval(id, 0, 32768, &ctx(&owner, 1)), Err(Errno::ERANGE));
        assert_eq!(s.setval(id, 3, 1, &ctx(&owner, 1)), Err(Errno::EINVAL));
        assert_eq!(s.setval(id, 0, 1, &ctx(&other, 1)), Err(Errno::EACCES));
        assert_eq!(s.get_one(id, 0, GETVAL, &ctx(&other, 1)), Ok(0));
        assert_eq!(s.get_one(id, 5, GETVAL, &ctx(&other, 1)), Err(Errno::EINVAL));
        assert_eq!(semop(&mut s, id, &[op(0, 1, 0)], &ctx(&other, 1)).0.err(), Some(Errno::EACCES));
        assert_eq!(s.rmid(id, &ctx(&other, 1)), Err(Errno::EPERM));
        let (ds, _) = s.stat(id, IPC_STAT, &ctx(&other, 1)).unwrap();
        assert_eq!(ds.len(), 104);
        assert_eq!(crate::kernel::ipc::le_u64(&ds, 80), 3);
        assert_eq!(s.info(IPC_INFO, &lim).0.len(), 40);
        assert_eq!(SemBuf::decode_all(&[1, 0, 0xff, 0xff, 0, 0x10]), vec![op(1, -1, SEM_UNDO)]);
    }
}
