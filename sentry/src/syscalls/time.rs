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

/// Sleeps until `clk` reads `deadline`.
fn sleep_until(clk: i32, deadline: u64) -> Result<(), Errno> {
    loop {
        let n = now(clk)?;
        if n >= deadline {
            return Ok(());
        }
        crate::host::halt(deadline - n);
    }
}

pub fn sys_nanosleep(t: &mut Task, a: &Args) -> SysResult {
    let d = read_timespec(t, a.u64(0))?;
    let start = clock::monotonic_ns();
    sleep_until(CLOCK_MONOTONIC, start.saturating_add(d)).map(|()| 0)
}

pub fn sys_clock_nanosleep(t: &mut Task, a: &Args) -> SysResult {
    const TIMER_ABSTIME: u32 = 1;
    let clk = a.i32(0);
    if matches!(clk, CLOCK_THREAD_CPUTIME_ID) {
        return Err(Errno::EINVAL);
    }
    let d = read_timespec(t, a.u64(2))?;
    let deadline = if a.u32(1) & TIMER_ABSTIME != 0 { d } else { now(clk)?.saturating_add(d) };
    sleep_until(clk, deadline).map(|()| 0)
}
