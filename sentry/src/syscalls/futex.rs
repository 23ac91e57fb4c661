//! futex(2): wait queues keyed by user addresses (Linux: kernel/futex).
//! Private futexes are keyed by (address space, address), shared ones by
//! the physical frame and offset, so they work across processes sharing
//! memory. The sentry is not preemptible, so "check the word, then sleep"
//! is atomic with respect to wakers on this vCPU.
//!
//! PI futexes (LOCK_PI, LOCK_PI2, TRYLOCK_PI, UNLOCK_PI) follow Linux's
//! ownership protocol on the futex word: the owner's TID in the low 30
//! bits, FUTEX_WAITERS when someone sleeps in the kernel, FUTEX_OWNER_DIED
//! after the owner died holding it. Sleepers queue in arrival order on the
//! futex's `PiState`; unlocking hands the lock straight to the first of
//! them (the word then names it), as Linux's rt_mutex does. Priority
//! inheritance itself has nothing to do: all tasks have one priority.
//! FUTEX_WAIT_REQUEUE_PI waits on a plain futex for FUTEX_CMP_REQUEUE_PI
//! to give it a PI futex or queue it there.
//!
//! A dying thread (Linux: futex_exit_release) walks its robust list,
//! marking the futexes it still owns FUTEX_OWNER_DIED and waking a waiter,
//! then hands the PI futexes it owns to their first waiters.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
use spin::Mutex;

use super::Args;
use crate::errno::{Errno, SysResult};
use crate::kernel::sched::{self, TaskShared, BLOCKED};
use crate::kernel::task::Task;
use crate::kernel::wait::{ERESTARTNOINTR, ERESTARTSYS};
use crate::mm::MemoryManager;

const FUTEX_WAIT: u32 = 0;
const FUTEX_WAKE: u32 = 1;
const FUTEX_REQUEUE: u32 = 3;
const FUTEX_CMP_REQUEUE: u32 = 4;
const FUTEX_WAKE_OP: u32 = 5;
const FUTEX_LOCK_PI: u32 = 6;
const FUTEX_UNLOCK_PI: u32 = 7;
const FUTEX_TRYLOCK_PI: u32 = 8;
const FUTEX_WAIT_REQUEUE_PI: u32 = 11;
const FUTEX_CMP_REQUEUE_PI: u32 = 12;
const FUTEX_LOCK_PI2: u32 = 13;
const FUTEX_WAIT_BITSET: u32 = 9;
const FUTEX_WAKE_BITSET: u32 = 10;
const FUTEX_PRIVATE_FLAG: u32 = 128;
const FUTEX_CLOCK_REALTIME: u32 = 256;
const BITSET_MATCH_ANY: u32 = u32::MAX;
/// Bits of a PI (and robust) futex word.
const FUTEX_WAITERS: u32 = 0x8000_0000;
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// Most robust list entries walked (Linux: ROBUST_LIST_LIMIT), so a
/// looping list cannot hold a dying thread forever.
const ROBUST_LIST_LIMIT: usize = 2048;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Key {
    Private { mm: usize, addr: u64 },
    Shared { pa: u64 },
}

struct Waiter {
    key: Key,
    /// 0 for a FUTEX_WAIT_REQUEUE_PI waiter: no wake reaches it, only
    /// FUTEX_CMP_REQUEUE_PI.
    bitset: u32,
    task: Arc<TaskShared>,
    woken: Arc<AtomicBool>,
    requeue_pi: Option<RequeuePi>,
}

/// What a FUTEX_WAIT_REQUEUE_PI waiter needs to become a PI waiter.
struct RequeuePi {
    /// The PI futex it expects to be moved to.
    target: Key,
    tid: u32,
    mm: Arc<Mutex<MemoryManager>>,
    addr: u64,
}

static WAITERS: Mutex<Vec<Waiter>> = Mutex::new(Vec::new());

fn key(t: &Task, addr: u64, private: bool) -> Result<Key, Errno> {
    if addr % 4 != 0 {
        return Err(Errno::EINVAL);
    }
    if private {
        Ok(Key::Private { mm: Arc::as_ptr(&t.mm) as usize, addr })
    } else {
        Ok(Key::Shared { pa: t.mm.lock().translate(addr, false)? })
    }
}

fn wake_key(k: Key, n: usize, bitset: u32) -> usize {
    let woken: Vec<Waiter> = {
        let mut w = WAITERS.lock();
        let mut out = Vec::new();
        let mut i = 0;
        while i < w.len() && out.len() < n {
            if w[i].key == k && w[i].bitset & bitset != 0 {
                out.push(w.remove(i));
            } else {
                i += 1;
            }
        }
        out
    };
    for w in &woken {
        w.woken.store(true, Ordering::Release);
        sched::wake(&w.task);
    }
    woken.len()
}

/// Wakes up to `n` waiters on a private futex at `addr` (thread exit's
/// clear_child_tid).
pub fn wake_addr(t: &Task, addr: u64, n: usize) {
    if let Ok(k) = key(t, addr, true) {
        wake_key(k, n, BITSET_MATCH_ANY);
    }
    if let Ok(k) = key(t, addr, false) {
        wake_key(k, n, BITSET_MATCH_ANY);
    }
}

fn wait(t: &mut Task, k: Key, addr: u64, val: u32, bitset: u32, deadline: Option<u64>) -> SysResult {
    if bitset == 0 {
        return Err(Errno::EINVAL);
    }
    let cur: u32 = t.mm.lock().read_obj(addr)?;
    if cur != val {
        return Err(Errno::EAGAIN);
    }
    let woken = Arc::new(AtomicBool::new(false));
    WAITERS.lock().push(Waiter { key: k, bitset, task: t.shared.clone(), woken: woken.clone(), requeue_pi: None });
    let result = sleep_until(t, &woken, deadline).map(|()| 0);
    if result.is_err() {
        WAITERS.lock().retain(|w| !Arc::ptr_eq(&w.woken, &woken));
        if woken.load(Ordering::Acquire) {
            return Ok(0);
        }
    }
    result
}

/// Sleeps until `flag` is set (Ok), a signal is deliverable or the group
/// is killed (ERESTARTSYS), or `deadline` (CLOCK_MONOTONIC ns) passes
/// (ETIMEDOUT).
fn sleep_until(t: &Task, flag: &AtomicBool, deadline: Option<u64>) -> Result<(), Errno> {
    let me = &t.shared;
    loop {
        if flag.load(Ordering::Acquire) {
            return Ok(());
        }
        if t.deliverable() != 0 || me.killed.load(Ordering::Relaxed) {
            return Err(ERESTARTSYS);
        }
        if let Some(d) = deadline {
            if crate::kernel::clock::monotonic_ns() >= d {
                return Err(Errno::ETIMEDOUT);
            }
            sched::add_timer(d, me);
        }
        me.state.store(BLOCKED, Ordering::Release);
        sched::schedule();
        if deadline.is_some() {
            sched::cancel_timers(me);
        }
    }
}

/// Reads a timeout argument: relative for FUTEX_WAIT, absolute otherwise.
pub(super) fn deadline(t: &mut Task, va: u64, absolute: bool, realtime: bool) -> Result<Option<u64>, Errno> {
    if va == 0 {
        return Ok(None);
    }
    let sec: i64 = t.mm.lock().read_obj(va)?;
    let nsec: i64 = t.mm.lock().read_obj(va + 8)?;
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    let ns = (sec as u64).saturating_mul(1_000_000_000).saturating_add(nsec as u64);
    let now_mono = crate::kernel::clock::monotonic_ns();
    Ok(Some(if !absolute {
        now_mono.saturating_add(ns)
    } else if realtime {
        // Convert the absolute realtime deadline to monotonic.
        let now_real = crate::kernel::clock::realtime_ns();
        now_mono.saturating_add(ns.saturating_sub(now_real))
    } else {
        ns
    }))
}

fn wake_op(t: &mut Task, addr2: u64, op: u32) -> Result<bool, Errno> {
    let opcode = (op >> 28) & 7;
    let shift = op >> 31 != 0;
    let cmp = (op >> 24) & 15;
    let mut oparg = (op >> 12) & 0xfff;
    let cmparg = op & 0xfff;
    if shift {
        oparg = 1u32.checked_shl(oparg).unwrap_or(0);
    }
    if opcode > 4 {
        return Err(Errno::ENOSYS);
    }
    let old = t.mm.lock().update_u32(addr2, |old| {
        Some(match opcode {
            0 => oparg,
            1 => old.wrapping_add(oparg),
            2 => old | oparg,
            3 => old & !oparg,
            _ => old ^ oparg,
        })
    })?;
    let (o, c) = (old as i32, cmparg as i32);
    Ok(match cmp {
        0 => o == c,
        1 => o != c,
        2 => o < c,
        3 => o <= c,
        4 => o > c,
        5 => o >= c,
        _ => return Err(Errno::ENOSYS),
    })
}

pub fn sys_futex(t: &mut Task, a: &Args) -> SysResult {
    let (addr, op, val) = (a.u64(0), a.u32(1), a.u32(2));
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    if realtime && !matches!(cmd, FUTEX_WAIT_BITSET | FUTEX_WAIT | FUTEX_LOCK_PI2 | FUTEX_WAIT_REQUEUE_PI) {
        return Err(Errno::ENOSYS);
    }
    match cmd {
        FUTEX_WAIT => {
            let k = key(t, addr, private)?;
            let d = deadline(t, a.u64(3), false, false)?;
            wait(t, k, addr, val, BITSET_MATCH_ANY, d)
        }
        FUTEX_WAIT_BITSET => {
            let k = key(t, addr, private)?;
            let d = deadline(t, a.u64(3), true, realtime)?;
            wait(t, k, addr, val, a.u32(5), d)
        }
        FUTEX_WAKE => Ok(wake_key(key(t, addr, private)?, val as usize, BITSET_MATCH_ANY) as u64),
        FUTEX_WAKE_BITSET => {
            if a.u32(5) == 0 {
                return Err(Errno::EINVAL);
            }
            Ok(wake_key(key(t, addr, private)?, val as usize, a.u32(5)) as u64)
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            let k1 = key(t, addr, private)?;
            let k2 = key(t, a.u64(4), private)?;
            if cmd == FUTEX_CMP_REQUEUE {
                let cur: u32 = t.mm.lock().read_obj(addr)?;
                if cur != a.u32(5) {
                    return Err(Errno::EAGAIN);
                }
            }
            let n2 = a.u64(3) as u32 as usize;
            let woken = wake_key(k1, val as usize, BITSET_MATCH_ANY);
            let mut moved = 0;
            for w in WAITERS.lock().iter_mut() {
                if moved >= n2 {
                    break;
                }
                if w.key == k1 && w.requeue_pi.is_none() {
                    w.key = k2;
                    moved += 1;
                }
            }
            Ok((woken + moved) as u64)
        }
        FUTEX_WAKE_OP => {
            let k1 = key(t, addr, private)?;
            let k2 = key(t, a.u64(4), private)?;
            let cond = wake_op(t, a.u64(4), a.u32(5))?;
            let mut n = wake_key(k1, val as usize, BITSET_MATCH_ANY);
            if cond {
                n += wake_key(k2, a.u64(3) as u32 as usize, BITSET_MATCH_ANY);
            }
            Ok(n as u64)
        }
        // LOCK_PI's timeout is an absolute CLOCK_REALTIME time, LOCK_PI2's
        // an absolute CLOCK_MONOTONIC one unless FUTEX_CLOCK_REALTIME.
        FUTEX_LOCK_PI | FUTEX_LOCK_PI2 => {
            let d = deadline(t, a.u64(3), true, cmd == FUTEX_LOCK_PI || realtime)?;
            let k = key(t, addr, private)?;
            lock_pi(t, k, addr, d, false)
        }
        FUTEX_TRYLOCK_PI => {
            let k = key(t, addr, private)?;
            lock_pi(t, k, addr, None, true)
        }
        FUTEX_UNLOCK_PI => {
            let k = key(t, addr, private)?;
            unlock_pi(t, k, addr)
        }
        FUTEX_WAIT_REQUEUE_PI => {
            let (addr2, k1) = (a.u64(4), key(t, addr, private)?);
            let k2 = key(t, addr2, private)?;
            let d = deadline(t, a.u64(3), true, realtime)?;
            wait_requeue_pi(t, (k1, addr), val, (k2, addr2), d)
        }
        FUTEX_CMP_REQUEUE_PI => {
            let (addr2, nr_requeue) = (a.u64(4), a.u64(3) as u32 as i32);
            if val != 1 || nr_requeue < 0 {
                return Err(Errno::EINVAL);
            }
            let k1 = key(t, addr, private)?;
            let k2 = key(t, addr2, private)?;
            cmp_requeue_pi(t, (k1, addr), (k2, addr2), nr_requeue as usize, a.u32(5))
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// A task asleep in LOCK_PI.
struct PiWaiter {
    task: Arc<TaskShared>,
    tid: u32,
    /// Where the waiter sees the futex word: a dying owner hands the lock
    /// over through the waiter's own mapping (the owner's address may
    /// differ for a shared futex, and it may have none).
    mm: Arc<Mutex<MemoryManager>>,
    addr: u64,
    /// Set when the lock was handed to this waiter.
    granted: Arc<AtomicBool>,
}

/// A contended PI futex (Linux: futex_pi_state): who owns it and who
/// waits, in arrival order. It exists while someone waits.
struct PiState {
    key: Key,
    owner: u32,
    waiters: VecDeque<PiWaiter>,
}

static PI: Mutex<Vec<PiState>> = Mutex::new(Vec::new());

/// Hands a PI futex to its first waiter, if any: the word names the new
/// owner (with FUTEX_WAITERS, as Linux leaves it) plus `keep` of the old
/// value's bits, written through `write` (None: the waiter's own mapping).
/// Returns false if nobody waited.
fn hand_over(k: Key, keep: u32, write: Option<(&Task, u64)>) -> Result<bool, Errno> {
    let w = {
        let mut pi = PI.lock();
        let Some(i) = pi.iter().position(|s| s.key == k) else { return Ok(false) };
        let w = pi[i].waiters.pop_front();
        match &w {
            Some(w) if !pi[i].waiters.is_empty() => pi[i].owner = w.tid,
            _ => {
                pi.swap_remove(i);
            }
        }
        match w {
            Some(w) => w,
            None => return Ok(false),
        }
    };
    let r = match write {
        Some((t, addr)) => {
            t.mm.lock().update_u32(addr, |old| Some(FUTEX_WAITERS | w.tid | (old & keep))).map(|_| ())
        }
        None => w.mm.lock().update_u32(w.addr, |old| Some(FUTEX_WAITERS | w.tid | (old & keep))).map(|_| ()),
    };
    // The waiter owns the lock even if the word could not be written (it
    // was unmapped): Linux's owner fix-up would fail the same way.
    w.granted.store(true, Ordering::Release);
    sched::wake(&w.task);
    r.map(|()| true)
}

/// FUTEX_LOCK_PI / LOCK_PI2 / TRYLOCK_PI (Linux: futex_lock_pi): takes a
/// free lock, else queues behind its owner and sleeps until handed the
/// lock, the timeout, or never for a trylock (EAGAIN). EDEADLK for a lock
/// the caller owns, ESRCH when the owner TID names no thread.
fn lock_pi(t: &mut Task, k: Key, addr: u64, deadline: Option<u64>, trylock: bool) -> SysResult {
    let me = t.tid;
    let owner = {
        // Queued waiters keep FUTEX_WAITERS for a new owner.
        let waiters = if PI.lock().iter().any(|s| s.key == k) { FUTEX_WAITERS } else { 0 };
        // One atomic step against the owner unlocking in user mode on
        // another vCPU: take a free lock (its last owner may have died:
        // the bit stays for the new owner to see), or make the owner go
        // to the kernel to unlock.
        let val = t.mm.lock().update_u32(addr, |val| match val & FUTEX_TID_MASK {
            o if o == me => None,
            0 => Some(me | (val & FUTEX_OWNER_DIED) | waiters),
            _ if val & FUTEX_WAITERS == 0 => Some(val | FUTEX_WAITERS),
            _ => None,
        })?;
        let owner = val & FUTEX_TID_MASK;
        if owner == me {
            return Err(Errno::EDEADLK);
        }
        if owner == 0 {
            if let Some(s) = PI.lock().iter_mut().find(|s| s.key == k) {
                s.owner = me;
            }
            return Ok(0);
        }
        owner
    };
    if crate::kernel::process::find_task(owner).is_none() {
        return Err(Errno::ESRCH);
    }
    if trylock {
        return Err(Errno::EAGAIN);
    }
    let granted = Arc::new(AtomicBool::new(false));
    {
        let w = PiWaiter { task: t.shared.clone(), tid: me, mm: t.mm.clone(), addr, granted: granted.clone() };
        let mut pi = PI.lock();
        match pi.iter_mut().find(|s| s.key == k) {
            Some(s) => s.waiters.push_back(w),
            None => pi.push(PiState { key: k, owner, waiters: VecDeque::from([w]) }),
        }
    }
    match sleep_until(t, &granted, deadline) {
        Ok(()) => Ok(0),
        Err(e) => {
            {
                let mut pi = PI.lock();
                if let Some(i) = pi.iter().position(|s| s.key == k) {
                    pi[i].waiters.retain(|w| !Arc::ptr_eq(&w.granted, &granted));
                    if pi[i].waiters.is_empty() {
                        pi.swap_remove(i);
                    }
                }
            }
            if granted.load(Ordering::Acquire) {
                return Ok(0);
            }
            // A signal never fails the lock: it is retaken after the
            // handler (Linux: ERESTARTNOINTR).
            Err(if e == ERESTARTSYS { ERESTARTNOINTR } else { e })
        }
    }
}

/// FUTEX_UNLOCK_PI (Linux: futex_unlock_pi): only the owner may unlock
/// (EPERM); the first waiter gets the lock, or the word becomes 0.
fn unlock_pi(t: &mut Task, k: Key, addr: u64) -> SysResult {
    let val: u32 = t.mm.lock().read_obj(addr)?;
    if val & FUTEX_TID_MASK != t.tid {
        return Err(Errno::EPERM);
    }
    if !hand_over(k, 0, Some((t, addr)))? {
        let me = t.tid;
        t.mm.lock().update_u32(addr, |v| (v & FUTEX_TID_MASK == me).then_some(0))?;
    }
    Ok(0)
}

/// FUTEX_WAIT_REQUEUE_PI (Linux: futex_wait_requeue_pi): waits on the
/// plain futex `k1` (EAGAIN unless it holds `val`) until
/// FUTEX_CMP_REQUEUE_PI gives it the PI futex `k2` or queues it there;
/// returns once it owns `k2`. A signal before the requeue restarts the
/// call; after it, the call fails with EAGAIN (Linux's answer: a restart
/// would see the word changed).
fn wait_requeue_pi(t: &mut Task, (k1, addr1): (Key, u64), val: u32, (k2, addr2): (Key, u64), deadline: Option<u64>) -> SysResult {
    if k1 == k2 {
        return Err(Errno::EINVAL);
    }
    let cur: u32 = t.mm.lock().read_obj(addr1)?;
    if cur != val {
        return Err(Errno::EAGAIN);
    }
    let granted = Arc::new(AtomicBool::new(false));
    let rq = RequeuePi { target: k2, tid: t.tid, mm: t.mm.clone(), addr: addr2 };
    WAITERS.lock().push(Waiter { key: k1, bitset: 0, task: t.shared.clone(), woken: granted.clone(), requeue_pi: Some(rq) });
    let Err(e) = sleep_until(t, &granted, deadline) else { return Ok(0) };
    let still_waiting = {
        let mut w = WAITERS.lock();
        let before = w.len();
        w.retain(|x| !Arc::ptr_eq(&x.woken, &granted));
        w.len() != before
    };
    if !still_waiting {
        let mut pi = PI.lock();
        if let Some(i) = pi.iter().position(|s| s.key == k2) {
            pi[i].waiters.retain(|w| !Arc::ptr_eq(&w.granted, &granted));
            if pi[i].waiters.is_empty() {
                pi.swap_remove(i);
            }
        }
    }
    if granted.load(Ordering::Acquire) {
        return Ok(0);
    }
    Err(match (e, still_waiting) {
        (ERESTARTSYS, true) => ERESTARTNOINTR,
        (ERESTARTSYS, false) => Errno::EAGAIN,
        (e, _) => e,
    })
}

/// FUTEX_CMP_REQUEUE_PI (Linux: futex_requeue with requeue_pi): if the
/// plain futex `k1` still holds `val3`, its first waiter takes the PI
/// futex `k2` if it is free (else queues on it), and up to `nr_requeue`
/// more queue on it. Every waiter moved must be waiting for `k2` (EINVAL).
/// Returns how many were woken or moved.
fn cmp_requeue_pi(t: &mut Task, (k1, addr1): (Key, u64), (k2, addr2): (Key, u64), nr_requeue: usize, val3: u32) -> SysResult {
    if k1 == k2 {
        return Err(Errno::EINVAL);
    }
    let cur: u32 = t.mm.lock().read_obj(addr1)?;
    if cur != val3 {
        return Err(Errno::EAGAIN);
    }
    let word: u32 = t.mm.lock().read_obj(addr2)?;
    // The word must be writable before any waiter leaves its queue.
    t.mm.lock().write_obj(addr2, &word)?;
    let owner = word & FUTEX_TID_MASK;
    let moved: Vec<Waiter> = {
        let mut w = WAITERS.lock();
        let mine: Vec<usize> = w.iter().enumerate().filter(|(_, x)| x.key == k1).map(|(i, _)| i).take(nr_requeue.saturating_add(1)).collect();
        if mine.iter().any(|&i| w[i].requeue_pi.as_ref().map(|r| r.target) != Some(k2)) {
            return Err(Errno::EINVAL);
        }
        if owner != 0 && mine.first().is_some_and(|&i| w[i].requeue_pi.as_ref().is_some_and(|r| r.tid == owner)) {
            return Err(Errno::EDEADLK);
        }
        if owner != 0 && !mine.is_empty() && crate::kernel::process::find_task(owner).is_none() {
            return Err(Errno::ESRCH);
        }
        mine.iter().rev().map(|&i| w.remove(i)).collect::<Vec<_>>().into_iter().rev().collect()
    };
    let Some(first) = moved.first() else { return Ok(0) };
    let mut rest = &moved[..];
    let new_owner = if owner == 0 {
        // The first waiter takes the free lock (FUTEX_WAITERS set, as
        // Linux's proxy lock does: more may be queued behind it).
        let tid = first.requeue_pi.as_ref().map_or(0, |r| r.tid);
        let _ = t.mm.lock().update_u32(addr2, |word| Some(tid | FUTEX_WAITERS | (word & FUTEX_OWNER_DIED)));
        first.woken.store(true, Ordering::Release);
        sched::wake(&first.task);
        rest = &moved[1..];
        tid
    } else {
        let _ = t.mm.lock().update_u32(addr2, |word| Some(word | FUTEX_WAITERS));
        owner
    };
    if !rest.is_empty() {
        let mut pi = PI.lock();
        let i = match pi.iter().position(|s| s.key == k2) {
            Some(i) => i,
            None => {
                pi.push(PiState { key: k2, owner: new_owner, waiters: VecDeque::new() });
                pi.len() - 1
            }
        };
        for w in rest {
            let Some(r) = &w.requeue_pi else { continue };
            pi[i].waiters.push_back(PiWaiter { task: w.task.clone(), tid: r.tid, mm: r.mm.clone(), addr: r.addr, granted: w.woken.clone() });
        }
    }
    Ok(moved.len() as u64)
}

/// A robust futex's owner died (Linux: handle_futex_death): if the word
/// still names `tid`, it gets FUTEX_OWNER_DIED (keeping FUTEX_WAITERS)
/// and, for a non-PI futex, one waiter is woken to recover it (a PI
/// futex's waiter is handed the lock by `exit_futexes`). A pending
/// non-PI op on a free word also wakes one, as the unlocker may have
/// died between its store and its wake.
fn futex_death(t: &Task, addr: u64, pi: bool, pending: bool) {
    let Ok(val) = t.mm.lock().read_obj::<u32>(addr) else { return };
    if pending && !pi && val == 0 {
        wake_addr(t, addr, 1);
        return;
    }
    if val & FUTEX_TID_MASK != t.tid {
        return;
    }
    let tid = t.tid;
    let Ok(val) = t.mm.lock().update_u32(addr, |v| (v & FUTEX_TID_MASK == tid).then_some((v & FUTEX_WAITERS) | FUTEX_OWNER_DIED)) else {
        return;
    };
    if val & FUTEX_TID_MASK != tid {
        return;
    }
    if !pi && val & FUTEX_WAITERS != 0 {
        wake_addr(t, addr, 1);
    }
}

/// Walks the thread's robust list (Linux: exit_robust_list): `struct
/// robust_list_head { next, futex_offset, list_op_pending }`; an entry's
/// low bit marks a PI futex.
fn exit_robust_list(t: &Task) {
    let head = t.robust_list.0;
    if head == 0 {
        return;
    }
    let read = |va: u64| t.mm.lock().read_obj::<u64>(va).ok();
    let (Some(mut entry), Some(offset), Some(pending)) = (read(head), read(head.wrapping_add(8)), read(head.wrapping_add(16))) else { return };
    let offset = offset as i64;
    let futex_of = |e: u64| e.wrapping_add(offset as u64);
    let mut n = 0;
    while entry != head && n < ROBUST_LIST_LIMIT {
        let (e, pi) = (entry & !1, entry & 1 != 0);
        // Read the next entry first: the futex's owner-died handling may
        // let another thread free this one.
        let Some(next) = read(e) else { return };
        if e != pending & !1 {
            futex_death(t, futex_of(e), pi, false);
        }
        entry = next;
        n += 1;
    }
    if pending != 0 {
        futex_death(t, futex_of(pending & !1), pending & 1 != 0, true);
    }
}

/// A thread is exiting (Linux: futex_exit_release): robust futexes it
/// holds are marked and waiters woken, the PI futexes it owns go to their
/// first waiters (keeping FUTEX_OWNER_DIED if the robust walk set it).
pub fn exit_futexes(t: &Task) {
    exit_robust_list(t);
    loop {
        let owned = PI.lock().iter().find(|s| s.owner == t.tid).map(|s| s.key);
        let Some(k) = owned else { break };
        // A failed write still hands the lock over (the state moves on).
        if let Ok(false) = hand_over(k, FUTEX_OWNER_DIED, None) {
            PI.lock().retain(|s| s.key != k);
        }
    }
}
