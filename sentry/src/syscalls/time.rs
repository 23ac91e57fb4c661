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
        // Sleeps and timers on CPU-time clocks run on elapsed time (they
        // would need a deadline checked as CPU time accrues); reading them
        // is `now_for`'s.
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

/// A clock, CPU-time clocks included (they need the caller).
fn now_for(t: &Task, clk: i32) -> Result<u64, Errno> {
    match clk {
        CLOCK_PROCESS_CPUTIME_ID => Ok(t.proc.cpu_time()),
        CLOCK_THREAD_CPUTIME_ID => Ok(crate::kernel::sched::cpu_time(&t.shared)),
        _ => now(clk),
    }
}

/// getrusage(2): user and system time; the other fields stay 0.
pub fn sys_getrusage(t: &mut Task, a: &Args) -> SysResult {
    const RUSAGE_SELF: i32 = 0;
    const RUSAGE_CHILDREN: i32 = -1;
    const RUSAGE_THREAD: i32 = 1;
    let times = match a.i32(0) {
        RUSAGE_SELF => t.proc.cpu_times(),
        RUSAGE_CHILDREN => t.proc.children_times(),
        RUSAGE_THREAD => crate::kernel::sched::cpu_times(&t.shared),
        _ => return Err(Errno::EINVAL),
    };
    // struct rusage: ru_utime, ru_stime (timevals), then 14 longs.
    let mut r = [0i64; 18];
    r[0] = (times.user / NSEC) as i64;
    r[1] = ((times.user % NSEC) / 1000) as i64;
    r[2] = (times.sys / NSEC) as i64;
    r[3] = ((times.sys % NSEC) / 1000) as i64;
    t.mm.lock().write_obj(a.u64(1), &r).map(|()| 0)
}

/// times(2): CPU times in clock ticks (USER_HZ 100), and the ticks since
/// boot as the result.
pub fn sys_times(t: &mut Task, a: &Args) -> SysResult {
    const TICK_NS: u64 = NSEC / 100;
    if a.u64(0) != 0 {
        let (me, kids) = (t.proc.cpu_times(), t.proc.children_times());
        let tms = [me.user, me.sys, kids.user, kids.sys].map(|ns| (ns / TICK_NS) as i64);
        t.mm.lock().write_obj(a.u64(0), &tms)?;
    }
    Ok(clock::uptime_ns() / TICK_NS)
}

pub fn sys_clock_gettime(t: &mut Task, a: &Args) -> SysResult {
    let ns = now_for(t, a.i32(0))?;
    write_timespec(t, a.u64(1), ns).map(|()| 0)
}

pub fn sys_clock_getres(t: &mut Task, a: &Args) -> SysResult {
    let clk = a.i32(0);
    now(clk)?;
    let res = if clk == CLOCK_REALTIME_COARSE || clk == CLOCK_MONOTONIC_COARSE { clock::COARSE_RES_NS } else { 1 };
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
        ITIMER_VIRTUAL => crate::kernel::itimer::set_cpu(&t.proc, 0, value, interval),
        ITIMER_PROF => crate::kernel::itimer::set_cpu(&t.proc, 1, value, interval),
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
        ITIMER_VIRTUAL => crate::kernel::itimer::get_cpu(&t.proc, 0),
        ITIMER_PROF => crate::kernel::itimer::get_cpu(&t.proc, 1),
        _ => return Err(Errno::EINVAL),
    };
    write_timeval(t, a.u64(1), cur.1)?;
    write_timeval(t, a.u64(1) + 16, cur.0)?;
    Ok(0)
}

// POSIX timers (kernel/posix_timer.rs holds the timers themselves).

use crate::kernel::posix_timer::{self, Notify};

/// `struct sigevent` is 64 bytes; rvisor reads its first 20.
const SIGEVENT_SIZE: usize = 64;
/// CAP_WAKE_ALARM: needed for the *_ALARM clocks.
const CAP_WAKE_ALARM: u32 = 35;

/// Checks a clock for timer_create. CPU-time clocks are approximated by
/// CLOCK_MONOTONIC (the sentry keeps no per-task CPU accounting yet).
fn timer_clock(t: &Task, clk: i32) -> Result<(), Errno> {
    match clk {
        CLOCK_REALTIME | CLOCK_MONOTONIC | CLOCK_BOOTTIME | CLOCK_TAI => Ok(()),
        CLOCK_PROCESS_CPUTIME_ID | CLOCK_THREAD_CPUTIME_ID => Ok(()),
        CLOCK_REALTIME_ALARM | CLOCK_BOOTTIME_ALARM if t.creds.capable(CAP_WAKE_ALARM) => Ok(()),
        CLOCK_REALTIME_ALARM | CLOCK_BOOTTIME_ALARM => Err(Errno::EPERM),
        // Readable clocks that cannot drive a timer, as Linux answers.
        CLOCK_MONOTONIC_RAW | CLOCK_REALTIME_COARSE | CLOCK_MONOTONIC_COARSE => Err(Errno::EOPNOTSUPP),
        // Negative ids name other processes' CPU clocks: not supported.
        _ => Err(Errno::EINVAL),
    }
}

/// Decodes a `struct sigevent` (Linux: good_sigevent). `id` is the new
/// timer's id, the default value.
fn read_sigevent(t: &Task, va: u64) -> Result<Option<(u64, i32, i32, i32)>, Errno> {
    if va == 0 {
        return Ok(None);
    }
    let mut ev = [0u8; SIGEVENT_SIZE];
    t.mm.lock().copy_in(va, &mut ev)?;
    let word = |off: usize| i32::from_le_bytes([ev[off], ev[off + 1], ev[off + 2], ev[off + 3]]);
    let value = u64::from_le_bytes([ev[0], ev[1], ev[2], ev[3], ev[4], ev[5], ev[6], ev[7]]);
    Ok(Some((value, word(8), word(12), word(16))))
}

pub fn sys_timer_create(t: &mut Task, a: &Args) -> SysResult {
    let (clk, sevp, idp) = (a.i32(0), a.u64(1), a.u64(2));
    timer_clock(t, clk)?;
    let ev = read_sigevent(t, sevp)?;
    let check_sig = |s: i32| if (1..=64).contains(&s) { Ok(s as u32) } else { Err(Errno::EINVAL) };
    // The notification, with None for the value meaning "the timer id".
    let (notify, value): (Notify, Option<u64>) = match ev {
        None => (Notify::Process { sig: crate::kernel::signal::SIGALRM, value: 0 }, None),
        Some((_, _, posix_timer::SIGEV_NONE, _)) => (Notify::None, Some(0)),
        Some((v, s, posix_timer::SIGEV_SIGNAL | posix_timer::SIGEV_THREAD, _)) => (Notify::Process { sig: check_sig(s)?, value: v }, Some(v)),
        Some((v, s, posix_timer::SIGEV_THREAD_ID, tid)) => {
            // Only a thread of the caller's own process.
            let task = u32::try_from(tid).ok().and_then(crate::kernel::process::find_task).ok_or(Errno::EINVAL)?;
            if !t.proc.inner.lock().threads.iter().any(|x| alloc::sync::Arc::ptr_eq(x, &task)) {
                return Err(Errno::EINVAL);
            }
            (Notify::Thread { sig: check_sig(s)?, value: v, task: alloc::sync::Arc::downgrade(&task) }, Some(v))
        }
        Some(_) => return Err(Errno::EINVAL),
    };
    let proc = t.proc.clone();
    let id = proc.posix_timers.lock().create(&proc, clk, |id| {
        let v = value.unwrap_or(id as u64);
        match notify {
            Notify::None => Notify::None,
            Notify::Process { sig, .. } => Notify::Process { sig, value: v },
            Notify::Thread { sig, task, .. } => Notify::Thread { sig, value: v, task },
        }
    })?;
    if let Err(e) = t.mm.lock().write_obj(idp, &id) {
        // Linux deletes the timer again when the id cannot be stored.
        let _ = proc.posix_timers.lock().delete(id);
        return Err(e);
    }
    Ok(0)
}

/// The timer `id` of the caller's process.
fn timer_of(t: &Task, id: i32) -> Result<alloc::sync::Arc<posix_timer::PosixTimer>, Errno> {
    t.proc.posix_timers.lock().get(id)
}

/// Writes a `struct itimerspec` (interval first).
fn write_itimerspec(t: &mut Task, va: u64, (value, interval): (u64, u64)) -> Result<(), Errno> {
    write_timespec(t, va, interval)?;
    write_timespec(t, va + 16, value)
}

pub fn sys_timer_settime(t: &mut Task, a: &Args) -> SysResult {
    let (id, flags, newp, oldp) = (a.i32(0), a.u32(1), a.u64(2), a.u64(3));
    if newp == 0 {
        return Err(Errno::EINVAL);
    }
    let interval = read_timespec(t, newp)?;
    let value = read_timespec(t, newp + 16)?;
    let timer = timer_of(t, id)?;
    let deadline = if value == 0 {
        None
    } else if flags & posix_timer::TIMER_ABSTIME == 0 {
        Some(clock::monotonic_ns().saturating_add(value))
    } else {
        // On CLOCK_MONOTONIC's scale; a time already past fires at once.
        let clk = timer.clock();
        let now_clk = now(clk)?;
        Some(clock::monotonic_ns().saturating_add(value.saturating_sub(now_clk)))
    };
    let old = timer.set(deadline, interval);
    if oldp != 0 {
        write_itimerspec(t, oldp, old)?;
    }
    Ok(0)
}

pub fn sys_timer_gettime(t: &mut Task, a: &Args) -> SysResult {
    let cur = timer_of(t, a.i32(0))?.get();
    write_itimerspec(t, a.u64(1), cur)?;
    Ok(0)
}

pub fn sys_timer_getoverrun(t: &mut Task, a: &Args) -> SysResult {
    Ok(timer_of(t, a.i32(0))?.last_overrun())
}

pub fn sys_timer_delete(t: &mut Task, a: &Args) -> SysResult {
    t.proc.posix_timers.lock().delete(a.i32(0))?;
    Ok(0)
}
