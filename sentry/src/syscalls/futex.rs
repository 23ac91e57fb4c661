//! futex(2): wait queues keyed by user addresses (Linux: kernel/futex).
//! Private futexes are keyed by (address space, address), shared ones by
//! the physical frame and offset, so they work across processes sharing
//! memory. The sentry is not preemptible, so "check the word, then sleep"
//! is atomic with respect to wakers on this vCPU.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
use spin::Mutex;

use super::Args;
use crate::errno::{Errno, SysResult};
use crate::kernel::sched::{self, TaskShared, BLOCKED};
use crate::kernel::task::Task;
use crate::kernel::wait::ERESTARTSYS;

const FUTEX_WAIT: u32 = 0;
const FUTEX_WAKE: u32 = 1;
const FUTEX_REQUEUE: u32 = 3;
const FUTEX_CMP_REQUEUE: u32 = 4;
const FUTEX_WAKE_OP: u32 = 5;
const FUTEX_WAIT_BITSET: u32 = 9;
const FUTEX_WAKE_BITSET: u32 = 10;
const FUTEX_PRIVATE_FLAG: u32 = 128;
const FUTEX_CLOCK_REALTIME: u32 = 256;
const BITSET_MATCH_ANY: u32 = u32::MAX;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Key {
    Private { mm: usize, addr: u64 },
    Shared { pa: u64 },
}

struct Waiter {
    key: Key,
    bitset: u32,
    task: Arc<TaskShared>,
    woken: Arc<AtomicBool>,
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
    WAITERS.lock().push(Waiter { key: k, bitset, task: t.shared.clone(), woken: woken.clone() });
    let me = t.shared.clone();
    let result = loop {
        if woken.load(Ordering::Acquire) {
            break Ok(0);
        }
        if t.deliverable() != 0 || me.killed.load(Ordering::Relaxed) {
            break Err(ERESTARTSYS);
        }
        if let Some(d) = deadline {
            if crate::kernel::clock::monotonic_ns() >= d {
                break Err(Errno::ETIMEDOUT);
            }
            sched::add_timer(d, &me);
        }
        me.state.store(BLOCKED, Ordering::Release);
        sched::schedule();
        if deadline.is_some() {
            sched::cancel_timers(&me);
        }
    };
    if result.is_err() {
        WAITERS.lock().retain(|w| !Arc::ptr_eq(&w.woken, &woken));
        if woken.load(Ordering::Acquire) {
            return Ok(0);
        }
    }
    result
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
    let mut mm = t.mm.lock();
    let old: u32 = mm.read_obj(addr2)?;
    let new = match opcode {
        0 => oparg,
        1 => old.wrapping_add(oparg),
        2 => old | oparg,
        3 => old & !oparg,
        4 => old ^ oparg,
        _ => return Err(Errno::ENOSYS),
    };
    mm.write_obj(addr2, &new)?;
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
    if realtime && cmd != FUTEX_WAIT_BITSET && cmd != FUTEX_WAIT {
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
                if w.key == k1 {
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
        _ => Err(Errno::ENOSYS),
    }
}
