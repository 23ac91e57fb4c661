//! The real-time interval timer of a process (alarm, setitimer
//! ITIMER_REAL): delivers SIGALRM at its deadline and re-arms itself with
//! its interval.

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
