//! The interval timers of a process: the real-time one (alarm, setitimer
//! ITIMER_REAL) delivers SIGALRM at its deadline and re-arms itself with
//! its interval; the CPU-time ones (ITIMER_VIRTUAL, ITIMER_PROF) are
//! checked against the process's CPU time at each syscall and preemption
//! (the VMM's ticker preempts a spinning process while one is armed).

use alloc::sync::Arc;

use super::process::Process;
use super::sched::{self, TimerAction};
use super::signal::{self, SIGALRM};

/// One interval timer.
#[derive(Clone, Copy, Debug, Default)]
pub struct ITimer {
    /// CLOCK_MONOTONIC deadline, 0 when disarmed.
    pub deadline: u64,
    pub interval: u64,
    /// Bumped on every (re)arm, so stale queued expiries are ignored.
    pub generation: u64,
}

/// Arms (deadline != 0) or disarms the timer; returns the old (remaining, interval).
pub fn set(p: &Arc<Process>, value_ns: u64, interval_ns: u64) -> (u64, u64) {
    let now = super::clock::monotonic_ns();
    let mut t = p.itimer_real.lock();
    let old = (if t.deadline == 0 { 0 } else { t.deadline.saturating_sub(now).max(1) }, t.interval);
    t.generation += 1;
    t.interval = interval_ns;
    t.deadline = if value_ns == 0 { 0 } else { now.saturating_add(value_ns) };
    if t.deadline != 0 {
        sched::add_timer_action(t.deadline, TimerAction::ProcessTimer(Arc::downgrade(p), t.generation));
    }
    old
}

/// The timer's (remaining, interval).
pub fn get(p: &Process) -> (u64, u64) {
    let now = super::clock::monotonic_ns();
    let t = p.itimer_real.lock();
    (if t.deadline == 0 { 0 } else { t.deadline.saturating_sub(now).max(1) }, t.interval)
}

/// A queued expiry came due.
pub fn fire(p: &Arc<Process>, generation: u64, now: u64) {
    let rearm = {
        let mut t = p.itimer_real.lock();
        if t.generation != generation || t.deadline == 0 {
            return;
        }
        if t.interval > 0 {
            // Skip missed periods rather than firing a burst.
            let mut d = t.deadline + t.interval;
            if d <= now {
                d = now + t.interval;
            }
            t.deadline = d;
            Some((d, t.generation))
        } else {
            t.deadline = 0;
            None
        }
    };
    if let Some((d, g)) = rearm {
        sched::add_timer_action(d, TimerAction::ProcessTimer(Arc::downgrade(p), g));
    }
    signal::send_to_process(p, SIGALRM, signal::SigInfo::kernel());
}

/// An ITIMER_VIRTUAL or ITIMER_PROF timer, on the process's CPU time (the
/// sentry does not split user from system time, so both count the same).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuTimer {
    /// CPU time (ns) at which it fires, 0 when disarmed.
    pub expires: u64,
    pub interval: u64,
}

/// Index 0 is ITIMER_VIRTUAL (SIGVTALRM), 1 ITIMER_PROF (SIGPROF).
const CPU_SIGNALS: [u32; 2] = [26, 27];

/// Arms or disarms CPU timer `which` (0 virtual, 1 prof); returns the old
/// (remaining, interval).
pub fn set_cpu(p: &Arc<Process>, which: usize, value_ns: u64, interval_ns: u64) -> (u64, u64) {
    let now = p.cpu_time();
    let mut ts = p.cpu_itimers.lock();
    let t = &mut ts[which];
    let old = (if t.expires == 0 { 0 } else { t.expires.saturating_sub(now).max(1) }, t.interval);
    t.interval = interval_ns;
    t.expires = if value_ns == 0 { 0 } else { now.saturating_add(value_ns) };
    let armed = ts.iter().any(|t| t.expires != 0);
    p.cpu_itimers_armed.store(armed, core::sync::atomic::Ordering::Relaxed);
    old
}

/// CPU timer `which`'s (remaining, interval).
pub fn get_cpu(p: &Arc<Process>, which: usize) -> (u64, u64) {
    let now = p.cpu_time();
    let t = p.cpu_itimers.lock()[which];
    (if t.expires == 0 { 0 } else { t.expires.saturating_sub(now).max(1) }, t.interval)
}

/// Fires the CPU timers whose time has come.
pub fn check_cpu(p: &Arc<Process>) {
    if !p.cpu_itimers_armed.load(core::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let now = p.cpu_time();
    let mut due = [false; 2];
    {
        let mut ts = p.cpu_itimers.lock();
        for (i, t) in ts.iter_mut().enumerate() {
            if t.expires == 0 || now < t.expires {
                continue;
            }
            due[i] = true;
            t.expires = if t.interval > 0 { now + t.interval } else { 0 };
        }
        let armed = ts.iter().any(|t| t.expires != 0);
        p.cpu_itimers_armed.store(armed, core::sync::atomic::Ordering::Relaxed);
    }
    for (i, d) in due.iter().enumerate() {
        if *d {
            signal::send_to_process(p, CPU_SIGNALS[i], signal::SigInfo::kernel());
        }
    }
}
