//! Wait queues (Linux: `wait_queue_head_t`): tasks block until a condition
//! holds, a signal arrives, or a deadline passes.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;

use super::sched::{self, TaskShared, BLOCKED};
use crate::errno::Errno;

/// Internal errno: the syscall may be restarted after a signal handler
/// (SA_RESTART) or transparently; never seen by the application.
pub const ERESTARTSYS: Errno = Errno(512);
/// Internal errno: always restart, handler or not (futex LOCK_PI, which
/// must never fail with EINTR); never seen by the application.
pub const ERESTARTNOINTR: Errno = Errno(513);
/// Internal errno: restart unless a handler runs (then EINTR, whatever
/// SA_RESTART says): sigsuspend, pause, select.
pub const ERESTARTNOHAND: Errno = Errno(514);

/// Tasks waiting for something.
#[derive(Default)]
pub struct WaitQueue {
    waiters: Mutex<Vec<Arc<TaskShared>>>,
    /// Wake-ups so far: epoll's edge-triggered mode asks whether the
    /// queue was woken since it last reported (`wake_count`).
    wakes: AtomicU64,
}

impl WaitQueue {
    /// An empty queue.
    pub const fn new() -> WaitQueue {
        WaitQueue { waiters: Mutex::new(Vec::new()), wakes: AtomicU64::new(0) }
    }

    /// How many times the queue was woken.
    pub fn wake_count(&self) -> u64 {
        self.wakes.load(Ordering::Acquire)
    }

    /// Wakes every waiter.
    pub fn wake_all(&self) {
        self.wakes.fetch_add(1, Ordering::AcqRel);
        let w: Vec<Arc<TaskShared>> = core::mem::take(&mut *self.waiters.lock());
        for t in w {
            sched::wake(&t);
        }
    }

    /// Wakes up to `n` waiters; returns how many.
    pub fn wake_n(&self, n: usize) -> usize {
        self.wakes.fetch_add(1, Ordering::AcqRel);
        let w: Vec<Arc<TaskShared>> = {
            let mut q = self.waiters.lock();
            let k = n.min(q.len());
            q.drain(..k).collect()
        };
        let k = w.len();
        for t in w {
            sched::wake(&t);
        }
        k
    }

    /// Blocks the current task until `done()` holds, whatever signals
    /// arrive (a group stop: only SIGCONT and SIGKILL end it, and both
    /// make `done` true before waking the task).
    pub fn wait_until(&self, me: &Arc<TaskShared>, mut done: impl FnMut() -> bool) {
        while !done() {
            self.waiters.lock().push(me.clone());
            me.state.store(BLOCKED, Ordering::Release);
            sched::schedule();
            self.waiters.lock().retain(|t| !Arc::ptr_eq(t, me));
        }
    }

    /// Blocks the current task until `ready()` returns Some, a signal is
    /// pending (`ERESTARTSYS`), the thread group is killed, or `deadline`
    /// (CLOCK_MONOTONIC ns) passes (`ETIMEDOUT`).
    pub fn wait<T>(&self, me: &Arc<TaskShared>, process_pending: &dyn Fn() -> u64, deadline: Option<u64>, mut ready: impl FnMut() -> Option<T>) -> Result<T, Errno> {
        loop {
            if let Some(v) = ready() {
                return Ok(v);
            }
            if me.deliverable(process_pending()) != 0 || me.killed.load(Ordering::Relaxed) || me.jobctl_stop.load(Ordering::Relaxed) {
                return Err(ERESTARTSYS);
            }
            if let Some(d) = deadline {
                if super::clock::monotonic_ns() >= d {
                    return Err(Errno::ETIMEDOUT);
                }
                sched::add_timer(d, me);
            }
            self.waiters.lock().push(me.clone());
            me.state.store(BLOCKED, Ordering::Release);
            sched::schedule();
            self.waiters.lock().retain(|t| !Arc::ptr_eq(t, me));
            if deadline.is_some() {
                sched::cancel_timers(me);
            }
        }
    }
}
