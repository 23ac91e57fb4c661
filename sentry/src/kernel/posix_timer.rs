//! POSIX per-process timers (Linux: kernel/time/posix-timers.c):
//! timer_create, timer_settime, timer_gettime, timer_getoverrun,
//! timer_delete.
//!
//! A timer notifies by signal (SIGEV_SIGNAL to the process,
//! SIGEV_THREAD_ID to one of its threads) or not at all (SIGEV_NONE).
//! As in Linux, a timer has at most one signal queued: expirations that
//! happen while it is still pending are counted as overruns, and the
//! count is handed over (si_overrun, timer_getoverrun) when the signal is
//! dequeued (`dequeued`, called from `signal::dequeue_from`).
//!
//! Expirations are computed from the clock (`State::advance`), like
//! timerfd's: a scheduler callback at each deadline only decides whether
//! to queue the signal or count an overrun, so late callbacks neither
//! lose nor invent expirations. Every arming bumps `generation`; the
//! callbacks and the queued signal carry it, so stale ones do nothing.
//!
//! All clocks run on CLOCK_MONOTONIC's scale (the realtime clock is never
//! set in the sandbox); absolute CLOCK_REALTIME deadlines are converted
//! once, at settime.
//!
//! Lock order: a process's `posix_timers`, then a timer's `st`; neither is
//! held while sending a signal (which takes the process's locks).

use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use spin::Mutex;

use super::clock;
use super::process::Process;
use super::sched::{self, TaskShared, TimerAction, TimerCallback};
use super::signal::{self, SigInfo};
use crate::errno::Errno;

pub const SIGEV_SIGNAL: i32 = 0;
pub const SIGEV_NONE: i32 = 1;
/// Handled by the C library; the kernel treats it as SIGEV_SIGNAL.
pub const SIGEV_THREAD: i32 = 2;
pub const SIGEV_THREAD_ID: i32 = 4;
/// timer_settime flag.
pub const TIMER_ABSTIME: u32 = 1;
/// Largest overrun count reported (Linux: DELAYTIMER_MAX = INT_MAX).
pub const DELAYTIMER_MAX: u64 = i32::MAX as u64;
/// Most timers a process may own; more is EAGAIN, as when Linux runs
/// out of RLIMIT_SIGPENDING (each timer preallocates a sigqueue).
const MAX_TIMERS: usize = 4096;
/// Closest spacing of a periodic timer's scheduler callbacks: with a tiny
/// interval the overruns are still counted exactly (from the clock), but
/// the scheduler is not asked to fire back-to-back forever.
const MIN_REARM_NS: u64 = 50_000;

/// Who is told when the timer expires.
#[derive(Clone)]
pub enum Notify {
    None,
    /// A process-directed signal.
    Process { sig: u32, value: u64 },
    /// A signal to one thread (SIGEV_THREAD_ID).
    Thread { sig: u32, value: u64, task: Weak<TaskShared> },
}

#[derive(Default)]
struct State {
    /// Next expiry on CLOCK_MONOTONIC's scale; None when disarmed.
    deadline: Option<u64>,
    interval: u64,
    generation: u64,
    /// The timer's signal is queued and not yet dequeued.
    queued: bool,
    /// Expirations since the queued one (while `queued`).
    overrun: u64,
    /// What timer_getoverrun reports: the overrun handed over with the
    /// last dequeued signal.
    overrun_last: u64,
}

impl State {
    /// Folds the expirations up to `now` into the deadline; returns how many.
    fn advance(&mut self, now: u64) -> u64 {
        let Some(d) = self.deadline else { return 0 };
        if now < d {
            return 0;
        }
        match (now - d).checked_div(self.interval) {
            Some(periods) => {
                let n = periods.saturating_add(1);
                self.deadline = Some(d.saturating_add(n.saturating_mul(self.interval)));
                n
            }
            None => {
                self.deadline = None;
                1
            }
        }
    }

    /// (time to the next expiry, interval), without counting anything.
    fn current(&self, now: u64) -> (u64, u64) {
        let remaining = match self.deadline {
            None => 0,
            Some(d) if now < d => d - now,
            Some(d) => match (now - d).checked_rem(self.interval) {
                Some(r) => self.interval - r,
                None => 0,
            },
        };
        (remaining, self.interval)
    }
}

/// One timer.
pub struct PosixTimer {
    id: i32,
    /// The clock the timer was created on (for absolute settime).
    clock: i32,
    notify: Notify,
    proc: Weak<Process>,
    st: Mutex<State>,
    me: Weak<PosixTimer>,
}

impl PosixTimer {
    fn callback(&self) -> Weak<dyn TimerCallback> {
        self.me.clone()
    }

    /// Schedules the callback for the next deadline (signal timers only:
    /// SIGEV_NONE timers are only ever looked at).
    fn schedule(&self, s: &State, now: u64) {
        if matches!(self.notify, Notify::None) {
            return;
        }
        if let Some(d) = s.deadline {
            let at = if s.interval > 0 { d.max(now.saturating_add(MIN_REARM_NS)) } else { d };
            sched::add_timer_action(at, TimerAction::Callback(self.callback(), s.generation));
        }
    }

    /// Queues the timer's signal; false if it was discarded (ignored).
    fn send(&self, generation: u64) -> bool {
        let Some(p) = self.proc.upgrade() else { return false };
        let info = |value| SigInfo::timer(self.id, 0, value, generation);
        match &self.notify {
            Notify::None => false,
            Notify::Process { sig, value } => signal::send_to_process(&p, *sig, info(*value)),
            Notify::Thread { sig, value, task } => match task.upgrade() {
                Some(t) => signal::send_to_thread(&p, &t, *sig, info(*value)),
                None => false,
            },
        }
    }

    /// The timer's clock id.
    pub fn clock(&self) -> i32 {
        self.clock
    }

    /// timer_gettime: (remaining, interval) in ns.
    pub fn get(&self) -> (u64, u64) {
        self.st.lock().current(clock::monotonic_ns())
    }

    /// timer_getoverrun.
    pub fn last_overrun(&self) -> u64 {
        self.st.lock().overrun_last
    }

    /// timer_settime: arms (`deadline` Some, on CLOCK_MONOTONIC's scale)
    /// or disarms; returns the old (remaining, interval).
    pub fn set(&self, deadline: Option<u64>, interval: u64) -> (u64, u64) {
        let now = clock::monotonic_ns();
        sched::cancel_callbacks(&self.callback());
        let mut s = self.st.lock();
        let old = s.current(now);
        s.generation = s.generation.wrapping_add(1);
        s.deadline = deadline;
        s.interval = if deadline.is_some() { interval } else { 0 };
        // A signal still queued from the old arming no longer belongs to
        // this one (its generation is stale): the new arming may queue its own.
        s.queued = false;
        s.overrun = 0;
        // A deadline already past (an absolute time) fires from the next
        // scheduler pass rather than here, with the lock held.
        if let (Some(d), false) = (deadline, matches!(self.notify, Notify::None)) {
            sched::add_timer_action(d.max(now), TimerAction::Callback(self.callback(), s.generation));
        }
        old
    }
}

impl TimerCallback for PosixTimer {
    fn fire(&self, tag: u64, now: u64) {
        let send = {
            let mut s = self.st.lock();
            if s.generation != tag {
                return;
            }
            let n = s.advance(now);
            if n == 0 {
                // Early (coalesced) callback: try again at the deadline.
                self.schedule(&s, now);
                return;
            }
            if s.queued {
                s.overrun = s.overrun.saturating_add(n);
                self.schedule(&s, now);
                return;
            }
            s.queued = true;
            s.overrun = n - 1;
            s.generation
        };
        let queued = self.send(send);
        let mut s = self.st.lock();
        if s.generation != send {
            return;
        }
        if !queued {
            // Discarded (ignored, process gone): nothing will be dequeued.
            s.queued = false;
            s.overrun = 0;
        }
        self.schedule(&s, now);
    }
}

impl Drop for PosixTimer {
    fn drop(&mut self) {
        sched::cancel_callbacks(&self.callback());
    }
}

/// A process's timers (Linux: `signal_struct.posix_timers`).
#[derive(Default)]
pub struct PosixTimers {
    /// Ids are handed out in order and not reused soon, as Linux does.
    next_id: i32,
    timers: BTreeMap<i32, Arc<PosixTimer>>,
}

impl PosixTimers {
    /// The timer `id`, or EINVAL.
    pub fn get(&self, id: i32) -> Result<Arc<PosixTimer>, Errno> {
        self.timers.get(&id).cloned().ok_or(Errno::EINVAL)
    }

    /// Creates a disarmed timer on `clock`; `notify` is given the new id
    /// (the default si_value).
    pub fn create(&mut self, p: &Arc<Process>, clock: i32, notify: impl FnOnce(i32) -> Notify) -> Result<i32, Errno> {
        if self.timers.len() >= MAX_TIMERS {
            return Err(Errno::EAGAIN);
        }
        let mut id = self.next_id;
        while self.timers.contains_key(&id) {
            id = id.checked_add(1).unwrap_or(0);
        }
        self.next_id = id.checked_add(1).unwrap_or(0);
        let timer = Arc::new_cyclic(|me| PosixTimer { id, clock, notify: notify(id), proc: Arc::downgrade(p), st: Mutex::new(State::default()), me: me.clone() });
        self.timers.insert(id, timer);
        Ok(id)
    }

    /// timer_delete.
    pub fn delete(&mut self, id: i32) -> Result<(), Errno> {
        self.timers.remove(&id).map(drop).ok_or(Errno::EINVAL)
    }

    /// Deletes every timer (exec, exit). The counter restarts too: Linux
    /// gives an exec'd image a fresh id space only across fork, but no
    /// program can tell once all timers are gone.
    pub fn clear(&mut self) {
        self.timers.clear();
    }
}

/// A timer's signal left a pending set (delivery, sigwaitinfo, signalfd):
/// fills in si_overrun and lets the timer queue its next signal.
pub fn dequeued(p: &Process, info: &mut SigInfo) {
    if info.timer_gen == 0 {
        return;
    }
    let timer = p.posix_timers.lock().timers.get(&(info.pid as i32)).cloned();
    let Some(timer) = timer else { return };
    let now = clock::monotonic_ns();
    let mut s = timer.st.lock();
    if s.generation != info.timer_gen || !s.queued {
        return;
    }
    let n = s.advance(now);
    let overrun = s.overrun.saturating_add(n).min(DELAYTIMER_MAX);
    s.queued = false;
    s.overrun = 0;
    s.overrun_last = overrun;
    // At most DELAYTIMER_MAX, so it fits si_overrun's int.
    info.uid = overrun as u32;
    // A periodic timer's callback is still scheduled for its next deadline.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_counts_periods() {
        let mut s = State { deadline: Some(100), interval: 10, ..State::default() };
        assert_eq!(s.advance(99), 0);
        assert_eq!(s.advance(100), 1);
        assert_eq!(s.deadline, Some(110));
        assert_eq!(s.advance(145), 4);
        assert_eq!(s.deadline, Some(150));
        assert_eq!(s.current(145), (5, 10));
    }

    #[test]
    fn one_shot_expires_once() {
        let mut s = State { deadline: Some(100), ..State::default() };
        assert_eq!(s.current(50), (50, 0));
        assert_eq!(s.advance(1000), 1);
        assert_eq!(s.deadline, None);
        assert_eq!(s.advance(2000), 0);
        assert_eq!(s.current(2000), (0, 0));
    }

    #[test]
    fn current_of_a_late_periodic_timer_is_the_next_period() {
        let s = State { deadline: Some(100), interval: 30, ..State::default() };
        assert_eq!(s.current(170), (20, 30));
    }
}
