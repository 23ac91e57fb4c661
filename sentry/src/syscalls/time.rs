//! Clocks and sleeping: clock_gettime, clock_getres, gettimeofday, time,
//! nanosleep, clock_nanosleep. Served from the TSC in the guest; sleeping
//! halts the vCPU in the VMM until the deadline.

use super::Args;
use crate::errno::{Errno, SysResult};
use crate::kernel::clock;
use crate::kernel::task::Task;

const CLOCK_REALTIME: i32 = 0;
const CLOCK_MONOTONIC: i32 = 1;
const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
const CLOCK_MONOTONIC_RAW: i32 = 4;
const CLOCK_REALTIME_COARSE: i32 = 5;
const CLOCK_MONOTONIC_COARSE: i32 = 6;
const CLOCK_BOOTTIME: i32 = 7;
const CLOCK_REALTIME_ALARM: i32 = 8;
const CLOCK_BOOTTIME_ALARM: i32 = 9;
const CLOCK_TAI: i32 = 11;
const NSEC: u64 = 1_000_000_000;

/// Reads a clock in nanoseconds.
fn now(clk: i32) -> Result<u64, Errno> {
    Ok(match clk {
        CLOCK_REALTIME | CLOCK_REALTIME_COARSE | CLOCK_REALTIME_ALARM | CLOCK_TAI => clock::realtime_ns(),
        CLOCK_MONOTONIC | CLOCK_MONOTONIC_RAW | CLOCK_MONOTONIC_COARSE | CLOCK_BOOTTIME | CLOCK_BOOTTIME_ALARM => clock::monotonic_ns(),
        // CPU time: the only task has been runnable since boot.
        CLOCK_PROCESS_CPUTIME_ID | CLOCK_THREAD_CPUTIME_ID => clock::uptime_ns(),
        _ => return Err(Errno::EINVAL),
    })
}

fn write_timespec(t: &mut Task, va: u64, ns: u64) -> Result<(), Errno> {
    t.mm.lock().write_obj(va, &(ns / NSEC))?;
    t.mm.lock().write_obj(va + 8, &(ns % NSEC))
}

fn read_timespec(t: &mut Task, va: u64) -> Result<u64, Errno> {
    let sec: i64 = t.mm.lock().read_obj(va)?;
    let nsec: i64 = t.mm.lock().read_obj(va + 8)?;
    if sec < 0 || !(0..NSEC as i64).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    Ok((sec as u64).saturating_mul(NSEC).saturating_add(nsec as u64))
}

pub fn sys_clock_gettime(t: &mut Task, a: &Args) -> SysResult {
    let ns = now(a.i32(0))?;
    write_timespec(t, a.u64(1), ns).map(|()| 0)
}

pub fn sys_clock_getres(t: &mut Task, a: &Args) -> SysResult {
    let clk = a.i32(0);
    now(clk)?;
    let res = if clk == CLOCK_REALTIME_COARSE || clk == CLOCK_MONOTONIC_COARSE { 4_000_000 } else { 1 };
    if a.u64(1) != 0 {
        write_timespec(t, a.u64(1), res)?;
    }
    Ok(0)
}

pub fn sys_gettimeofday(t: &mut Task, a: &Args) -> SysResult {
    let ns = clock::realtime_ns();
    if a.u64(0) != 0 {
        t.mm.lock().write_obj(a.u64(0), &(ns / NSEC))?;
        t.mm.lock().write_obj(a.u64(0) + 8, &(ns % NSEC / 1000))?;
    }
    if a.u64(1) != 0 {
        t.mm.lock().write_obj(a.u64(1), &0u64)?;
    }
    Ok(0)
}

pub fn sys_time(t: &mut Task, a: &Args) -> SysResult {
    let s = clock::realtime_ns() / NSEC;
    if a.u64(0) != 0 {
        t.mm.lock().write_obj(a.u64(0), &s)?;
    }
    Ok(s)
}

/// Sleeps until `clk` reads `deadline`; other tasks run meanwhile. A
/// signal ends the sleep early with EINTR (Err(remaining ns)).
fn sleep_until(t: &mut Task, clk: i32, deadline: u64) -> Result<(), u64> {
    use crate::kernel::sched;
    loop {
        let n = now(clk).unwrap_or(deadline);
        if n >= deadline {
            return Ok(());
        }
        if t.deliverable() != 0 || t.shared.killed.load(core::sync::atomic::Ordering::Relaxed) {
            return Err(deadline - n);
        }
        sched::add_timer(clock::monotonic_ns().saturating_add(deadline - n), &t.shared);
        sched::block(&t.shared);
        sched::cancel_timers(&t.shared);
    }
}

pub fn sys_nanosleep(t: &mut Task, a: &Args) -> SysResult {
    let d = read_timespec(t, a.u64(0))?;
    let start = clock::monotonic_ns();
    match sleep_until(t, CLOCK_MONOTONIC, start.saturating_add(d)) {
        Ok(()) => Ok(0),
        Err(left) => {
            if a.u64(1) != 0 {
                write_timespec(t, a.u64(1), left)?;
            }
            Err(Errno::EINTR)
        }
    }
}

pub fn sys_clock_nanosleep(t: &mut Task, a: &Args) -> SysResult {
    const TIMER_ABSTIME: u32 = 1;
    let clk = a.i32(0);
    if matches!(clk, CLOCK_THREAD_CPUTIME_ID) {
        return Err(Errno::EINVAL);
    }
    let d = read_timespec(t, a.u64(2))?;
    let abs = a.u32(1) & TIMER_ABSTIME != 0;
    let deadline = if abs { d } else { now(clk)?.saturating_add(d) };
    match sleep_until(t, clk, deadline) {
        Ok(()) => Ok(0),
        Err(left) => {
            if !abs && a.u64(3) != 0 {
                write_timespec(t, a.u64(3), left)?;
            }
            Err(Errno::EINTR)
        }
    }
}

fn read_timeval(t: &mut Task, va: u64) -> Result<u64, Errno> {
    let sec: i64 = t.mm.lock().read_obj(va)?;
    let usec: i64 = t.mm.lock().read_obj(va + 8)?;
    if sec < 0 || !(0..1_000_000).contains(&usec) {
        return Err(Errno::EINVAL);
    }
    Ok((sec as u64).saturating_mul(NSEC).saturating_add(usec as u64 * 1000))
}

fn write_timeval(t: &mut Task, va: u64, ns: u64) -> Result<(), Errno> {
    t.mm.lock().write_obj(va, &(ns / NSEC))?;
    t.mm.lock().write_obj(va + 8, &(ns % NSEC / 1000))
}

const ITIMER_REAL: u32 = 0;
const ITIMER_VIRTUAL: u32 = 1;
const ITIMER_PROF: u32 = 2;

pub fn sys_alarm(t: &mut Task, a: &Args) -> SysResult {
    let (old, _) = crate::kernel::itimer::set(&t.proc, u64::from(a.u32(0)) * NSEC, 0);
    // Remaining seconds, rounded to nearest; a pending alarm is at least 1.
    Ok(if old == 0 { 0 } else { ((old + NSEC / 2) / NSEC).max(1) })
}

pub fn sys_setitimer(t: &mut Task, a: &Args) -> SysResult {
    let which = a.u32(0);
    if which > ITIMER_PROF {
        return Err(Errno::EINVAL);
    }
    let (interval, value) = if a.u64(1) != 0 { (read_timeval(t, a.u64(1))?, read_timeval(t, a.u64(1) + 16)?) } else { (0, 0) };
    let old = match which {
        ITIMER_REAL => crate::kernel::itimer::set(&t.proc, value, interval),
        // CPU-time timers: accepted, never fire (no per-task CPU accounting yet).
        ITIMER_VIRTUAL | ITIMER_PROF => (0, 0),
        _ => return Err(Errno::EINVAL),
    };
    if a.u64(2) != 0 {
        write_timeval(t, a.u64(2), old.1)?;
        write_timeval(t, a.u64(2) + 16, old.0)?;
    }
    Ok(0)
}

pub fn sys_getitimer(t: &mut Task, a: &Args) -> SysResult {
    let which = a.u32(0);
    let cur = match which {
        ITIMER_REAL => crate::kernel::itimer::get(&t.proc),
        ITIMER_VIRTUAL | ITIMER_PROF => (0, 0),
        _ => return Err(Errno::EINVAL),
    };
    write_timeval(t, a.u64(1), cur.1)?;
    write_timeval(t, a.u64(1) + 16, cur.0)?;
    Ok(0)
}
