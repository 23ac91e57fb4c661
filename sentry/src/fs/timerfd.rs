//! timerfd (Linux: fs/timerfd.c): a timer whose expirations are read as
//! a u64 count.
//!
//! Expirations are computed lazily from the clock (`State::advance`):
//! whoever looks (read, poll, gettime, settime) first folds the periods
//! that passed into `ticks`, so late or coalesced scheduler timers never
//! lose or invent expirations. A scheduler `TimerAction::Callback` at
//! each deadline only wakes readers and pollers (and re-arms itself for
//! the next period of an interval timer), tagged with a generation that
//! settime bumps, so stale callbacks do nothing.

use abi::linux::Stat;
use alloc::sync::{Arc, Weak};
use spin::Mutex;

use super::{anon, FileOps, UserSeg, POLLIN, POLLRDNORM, POLL_WQ};
use crate::errno::{Errno, SysResult};
use crate::kernel::clock;
use crate::kernel::sched::{self, TimerAction, TimerCallback};
use crate::kernel::task::Task;
use crate::kernel::wait::WaitQueue;

pub const CLOCK_REALTIME: i32 = 0;
pub const CLOCK_MONOTONIC: i32 = 1;
pub const CLOCK_BOOTTIME: i32 = 7;
pub const CLOCK_REALTIME_ALARM: i32 = 8;
pub const CLOCK_BOOTTIME_ALARM: i32 = 9;
/// timerfd_settime flags.
pub const TFD_TIMER_ABSTIME: u32 = 1;
pub const TFD_TIMER_CANCEL_ON_SET: u32 = 2;

#[derive(Default)]
struct State {
    /// Next expiry, CLOCK_MONOTONIC ns; None when disarmed.
    deadline: Option<u64>,
    interval: u64,
    /// Expirations not yet read.
    ticks: u64,
    /// Bumped by every settime; tags the scheduler callbacks.
    generation: u64,
}

impl State {
    /// Counts the expirations up to `now`.
    fn advance(&mut self, now: u64) {
        let Some(d) = self.deadline else { return };
        if now < d {
            return;
        }
        if let Some(periods) = (now - d).checked_div(self.interval) {
            let n = periods + 1;
            self.ticks = self.ticks.saturating_add(n);
            self.deadline = Some(d.saturating_add(n.saturating_mul(self.interval)));
        } else {
            self.ticks = self.ticks.saturating_add(1);
            self.deadline = None;
        }
    }

    /// (time to the next expiry, interval), zeros when disarmed.
    fn current(&self, now: u64) -> (u64, u64) {
        (self.deadline.map_or(0, |d| d.saturating_sub(now)), self.interval)
    }
}

/// The timer proper, shared with the scheduler's callbacks.
pub struct TimerCore {
    st: Mutex<State>,
    /// Readers wait here for an expiration.
    wq: WaitQueue,
    clock: i32,
    me: Weak<TimerCore>,
}

impl TimerCore {
    fn callback(&self) -> Weak<dyn TimerCallback> {
        self.me.clone()
    }

    fn expired(&self) {
        self.wq.wake_all();
        POLL_WQ.wake_all();
    }
}

impl TimerCallback for TimerCore {
    fn fire(&self, tag: u64, now: u64) {
        let (ready, next) = {
            let mut s = self.st.lock();
            if s.generation != tag {
                return;
            }
            s.advance(now);
            (s.ticks > 0, s.deadline)
        };
        if let Some(d) = next {
            sched::add_timer_action(d, TimerAction::Callback(self.callback(), tag));
        }
        if ready {
            self.expired();
        }
    }
}

/// A timerfd.
pub struct TimerFd {
    core: Arc<TimerCore>,
    ino: u64,
}

/// True for the clocks timerfd_create accepts.
pub fn valid_clock(c: i32) -> bool {
    matches!(c, CLOCK_REALTIME | CLOCK_MONOTONIC | CLOCK_BOOTTIME | CLOCK_REALTIME_ALARM | CLOCK_BOOTTIME_ALARM)
}

impl TimerFd {
    /// A disarmed timer on `clock` (checked by the caller with `valid_clock`).
    pub fn new(clock: i32) -> TimerFd {
        let core = Arc::new_cyclic(|me| TimerCore { st: Mutex::new(State::default()), wq: WaitQueue::new(), clock, me: me.clone() });
        let ino = anon::next_ino();
        TIMERFDS.insert(ino, &core);
        TimerFd { core, ino }
    }
}

impl TimerCore {
    /// timerfd_gettime: (remaining, interval) in ns.
    pub fn get(&self) -> (u64, u64) {
        let now = clock::monotonic_ns();
        let mut s = self.st.lock();
        s.advance(now);
        s.current(now)
    }

    /// timerfd_settime: arms (value != 0) or disarms; returns the old
    /// (remaining, interval). `value` is relative, or with
    /// TFD_TIMER_ABSTIME a time on the timer's clock.
    pub fn set(&self, flags: u32, value: u64, interval: u64) -> (u64, u64) {
        let now = clock::monotonic_ns();
        let cb = self.callback();
        sched::cancel_callbacks(&cb);
        let (old, deadline, tag, ready) = {
            let mut s = self.st.lock();
            s.advance(now);
            let old = s.current(now);
            s.generation += 1;
            s.ticks = 0;
            s.interval = interval;
            s.deadline = if value == 0 {
                None
            } else if flags & TFD_TIMER_ABSTIME == 0 {
                Some(now.saturating_add(value))
            } else if matches!(self.clock, CLOCK_REALTIME | CLOCK_REALTIME_ALARM) {
                // On CLOCK_MONOTONIC's scale (the realtime clock is never set).
                Some(now.saturating_add(value.saturating_sub(clock::realtime_ns())))
            } else {
                // CLOCK_BOOTTIME is CLOCK_MONOTONIC here (no suspend); a
                // deadline in the past expires at once.
                Some(value)
            };
            s.advance(now);
            (old, s.deadline, s.generation, s.ticks > 0)
        };
        if let Some(d) = deadline {
            sched::add_timer_action(d, TimerAction::Callback(cb, tag));
        }
        if ready {
            self.expired();
        }
        old
    }
}

impl Drop for TimerFd {
    fn drop(&mut self) {
        TIMERFDS.remove(self.ino);
        sched::cancel_callbacks(&self.core.callback());
    }
}

impl FileOps for TimerFd {
    fn read(&self, t: &Task, segs: &[UserSeg], off: Option<u64>, nonblock: bool) -> SysResult {
        if off.is_some() {
            return Err(Errno::ESPIPE);
        }
        if anon::total(segs) < 8 {
            return Err(Errno::EINVAL);
        }
        let c = &self.core;
        let pending = || t.proc.pending();
        let v = loop {
            let deadline = c.st.lock().deadline;
            let r = c.wq.wait(&t.shared, &pending, deadline, || {
                let mut s = c.st.lock();
                s.advance(clock::monotonic_ns());
                if s.ticks > 0 {
                    let v = s.ticks;
                    s.ticks = 0;
                    return Some(Ok(v));
                }
                if nonblock {
                    Some(Err(Errno::EAGAIN))
                } else {
                    None
                }
            });
            match r {
                Ok(v) => break v?,
                // The deadline passed (or moved): look again.
                Err(Errno::ETIMEDOUT) => continue,
                Err(e) => return Err(e),
            }
        };
        anon::copy_to_segs(t, segs, &v.to_le_bytes())?;
        Ok(8)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(anon::stat(self.ino))
    }

    fn path(&self) -> &str {
        "anon_inode:[timerfd]"
    }

    fn poll(&self, _events: u16) -> u16 {
        let mut s = self.core.st.lock();
        s.advance(clock::monotonic_ns());
        if s.ticks > 0 {
            POLLIN | POLLRDNORM
        } else {
            0
        }
    }
}

/// Live timerfds, for timerfd_settime/gettime on an fd.
pub static TIMERFDS: anon::Registry<TimerCore> = anon::Registry::new("anon_inode:[timerfd]");

#[cfg(test)]
mod tests {
    use super::State;

    #[test]
    fn expirations_are_counted_from_the_clock() {
        let mut s = State { deadline: Some(100), interval: 10, ..State::default() };
        s.advance(99);
        assert_eq!((s.ticks, s.deadline), (0, Some(100)));
        s.advance(100);
        assert_eq!((s.ticks, s.deadline), (1, Some(110)));
        s.advance(135);
        assert_eq!((s.ticks, s.deadline), (4, Some(140)));
        assert_eq!(s.current(135), (5, 10));
        let mut once = State { deadline: Some(50), ..State::default() };
        once.advance(1000);
        assert_eq!((once.ticks, once.deadline), (1, None));
        assert_eq!(once.current(1000), (0, 0));
    }
}
