//! The scheduler (Linux: `kernel/sched`). Each task runs on its own kernel
//! stack; a task gives up the CPU by calling `schedule` (after marking
//! itself blocked, or to yield), which switches straight to the next
//! runnable task, or to the vCPU's idle loop on its boot stack. The idle
//! loop fires timers and halts the vCPU in the VMM until the next deadline.
//!
//! Several vCPUs: applications run in parallel, the sentry does not. Sentry
//! code runs under one big lock (`BKL`), taken when a vCPU leaves user mode
//! or its halt and released when it returns to user mode or halts; a task
//! switch hands it over with the CPU. So the sentry is still not
//! preemptible and check-then-block sequences cannot race with a wake-up,
//! while the time applications spend in user mode (most of it) overlaps.
//! An address space runs on one vCPU at a time (`pick` skips tasks whose
//! root another vCPU has loaded): the sentry changes page tables only from
//! the vCPU that runs them, so no TLB shootdown is ever needed.
//! A woken task goes on the shared run queue and is not pushed to a halted
//! vCPU at once: waking one costs a VMM round trip (~20 µs here), and the
//! waker usually blocks soon and runs it itself (pipes, ping-pong, fork
//! and wait), and tasks that hand work back and forth run best on one
//! vCPU. A task waits for the vCPU it last ran on, unless that one has
//! nothing to run; work spreads when it is CPU-bound (`spread`), and only
//! then is a halted vCPU woken.
//!
//! Lock order: BKL, then SCHED (a leaf lock, never held across a switch).

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use spin::Mutex;

use crate::arch::switch;

/// Kernel stack size of a task.
pub const KSTACK_SIZE: usize = 64 << 10;

/// Scheduling state of a task.
pub const RUNNABLE: u8 = 0;
/// Waiting for a wake-up.
pub const BLOCKED: u8 = 1;
/// Gone: will never run again.
pub const DEAD: u8 = 2;

/// The part of a task the scheduler and other tasks touch.
pub struct TaskShared {
    pub tid: u32,
    /// The thread group (process) id: who "the current process" is for
    /// code that runs without the `Task` at hand (an address space's
    /// teardown updating a System V segment's last pid).
    pub tgid: AtomicU32,
    /// Saved kernel stack pointer while switched out.
    rsp: AtomicU64,
    pub state: AtomicU8,
    /// Supervisor root of the task's address space (CR3).
    pub cr3: AtomicU64,
    /// Signals sent to this thread (bit N-1 = signal N).
    pub pending: AtomicU64,
    /// Blocked signals.
    pub sigmask: AtomicU64,
    /// Signals the task waits for in rt_sigtimedwait (blocked, yet to be
    /// woken for, as Linux's sigtimedwait unblocks them while it waits).
    pub sigwait: AtomicU64,
    /// siginfo of the pending thread-directed signals.
    pub info: Mutex<super::signal::InfoSlots>,
    /// Set when the whole thread group must exit (exit_group, fatal signal).
    pub killed: AtomicBool,
    /// Set while the thread group is being stopped (SIGSTOP...): waits end
    /// so the thread can park, and its syscall restarts after SIGCONT.
    pub jobctl_stop: AtomicBool,
    /// Set when a vfork child has exec'd or exited (its parent may go on).
    pub vfork_released: AtomicBool,
    /// When the task last got the CPU (CLOCK_MONOTONIC ns).
    slice_start: AtomicU64,
    /// CPU time used before `slice_start` (ns): the time the task held a
    /// vCPU, in user mode or in the sentry on its behalf.
    cpu_ns: AtomicU64,
    /// Part of `cpu_ns` spent in the sentry (system time).
    sys_ns: AtomicU64,
    /// When the task last entered the sentry and is there since, or 0
    /// while it runs in user mode.
    sentry_since: AtomicU64,
    /// The vCPU the task last ran on, where it waits to run again while
    /// that vCPU is busy (`ANY_CPU`: wherever one is free).
    last_cpu: AtomicU32,
    stack: Mutex<Option<KStack>>,
}

impl TaskShared {
    /// A new task record.
    pub fn new(tid: u32, cr3: u64, sigmask: u64) -> Arc<TaskShared> {
        Arc::new(TaskShared {
            tid,
            tgid: AtomicU32::new(tid),
            rsp: AtomicU64::new(0),
            state: AtomicU8::new(RUNNABLE),
            cr3: AtomicU64::new(cr3),
            pending: AtomicU64::new(0),
            sigmask: AtomicU64::new(sigmask),
            sigwait: AtomicU64::new(0),
            info: Mutex::new(super::signal::InfoSlots::new()),
            killed: AtomicBool::new(false),
            jobctl_stop: AtomicBool::new(false),
            vfork_released: AtomicBool::new(false),
            slice_start: AtomicU64::new(0),
            cpu_ns: AtomicU64::new(0),
            sys_ns: AtomicU64::new(0),
            sentry_since: AtomicU64::new(0),
            last_cpu: AtomicU32::new(ANY_CPU),
            stack: Mutex::new(None),
        })
    }

    /// Signals that are pending and not blocked.
    pub fn deliverable(&self, process_pending: u64) -> u64 {
        (self.pending.load(Ordering::Relaxed) | process_pending) & !self.sigmask.load(Ordering::Relaxed)
    }
}

/// A kernel stack.
struct KStack {
    mem: Vec<u128>,
}

impl KStack {
    fn new() -> KStack {
        KStack { mem: alloc::vec![0u128; KSTACK_SIZE / 16] }
    }
    fn top(&self) -> u64 {
        self.mem.as_ptr() as u64 + KSTACK_SIZE as u64
    }
}

/// Most vCPUs.
const NCPU: usize = abi::layout::MAX_VCPUS as usize;
/// `TaskShared::last_cpu` of a task any free vCPU may take.
const ANY_CPU: u32 = u32::MAX;

struct Sched {
    /// The task each vCPU runs.
    current: [Option<Arc<TaskShared>>; NCPU],
    runq: VecDeque<Arc<TaskShared>>,
    /// (deadline in CLOCK_MONOTONIC ns, what happens)
    timers: Vec<(u64, TimerAction)>,
    /// Stacks of exited tasks, freed once we are off them.
    dead: Vec<KStack>,
    /// The root each vCPU has loaded (0: not known, reload before use).
    cr3: [u64; NCPU],
}

impl Sched {
    /// Whether a vCPU other than `me` runs the address space `cr3`.
    fn runs_elsewhere(&self, me: usize, cr3: u64) -> bool {
        self.current.iter().enumerate().any(|(i, c)| i != me && c.as_ref().is_some_and(|c| c.cr3.load(Ordering::Relaxed) == cr3))
    }

    /// Whether vCPU `me` may run `t` now: no other vCPU runs its address
    /// space, and the vCPU it last ran on (whose caches it warmed, and
    /// whose run queue turn it waits for) is `me` or has nothing to run.
    fn may_run(&self, me: usize, t: &TaskShared) -> bool {
        let last = t.last_cpu.load(Ordering::Relaxed) as usize;
        let free = last == me || self.current.get(last).is_none_or(|c| c.is_none());
        free && !self.runs_elsewhere(me, t.cr3.load(Ordering::Relaxed))
    }

    /// Position in the run queue of the first task vCPU `me` may run.
    fn pickable(&self, me: usize) -> Option<usize> {
        self.runq.iter().position(|t| self.may_run(me, t))
    }

    fn is_current(&self, t: &Arc<TaskShared>) -> Option<usize> {
        self.current.iter().position(|c| c.as_ref().is_some_and(|c| Arc::ptr_eq(c, t)))
    }
}

static SCHED: Mutex<Sched> = Mutex::new(Sched {
    current: [const { None }; NCPU],
    runq: VecDeque::new(),
    timers: Vec::new(),
    dead: Vec::new(),
    cr3: [0; NCPU],
});
/// Each vCPU's idle context while it runs a task.
static IDLE_RSP: [AtomicU64; NCPU] = [const { AtomicU64::new(0) }; NCPU];

/// The big sentry lock: a test-and-set lock, taken by whichever waiting
/// vCPU runs when it comes free. Not a ticket lock: on a host with more
/// runnable threads than CPUs, a ticket's owner is often a vCPU thread the
/// host is not running, and every other vCPU then waits for the host to
/// schedule it, even with the lock free (a pipe between two processes on
/// two vCPUs ran 5-20x slower that way). A vCPU that releases it goes to
/// user mode or halts (a world switch at least), so a spinning waiter
/// sees it free first and a syscall loop does not starve it.
static BKL: AtomicBool = AtomicBool::new(false);

/// Takes the big sentry lock (leaving user mode or a halt). A long wait
/// means the holder's host thread is probably not running (the host has
/// more runnable threads than CPUs): then the waiter gives its host CPU
/// away now and then instead of spinning on it.
pub fn bkl_lock() {
    const SPINS: u32 = 1 << 12;
    let mut spins = 0;
    while BKL.load(Ordering::Relaxed) || BKL.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        core::hint::spin_loop();
        spins += 1;
        if spins == SPINS {
            spins = 0;
            crate::host::yield_cpu();
        }
    }
}

/// Releases the big sentry lock (entering user mode or a halt).
pub fn bkl_unlock() {
    BKL.store(false, Ordering::Release);
}

fn cpu() -> usize {
    crate::arch::percpu::cpu()
}
/// Earliest timer deadline (u64::MAX: none), checked cheaply on syscall exit.
static NEXT_DEADLINE: AtomicU64 = AtomicU64::new(u64::MAX);

/// What a timer does when it fires.
#[derive(Clone)]
pub enum TimerAction {
    /// Wake a sleeping task.
    Wake(Arc<TaskShared>),
    /// A process interval timer (ITIMER_REAL/alarm): the process and the
    /// timer's generation, so re-armed or cancelled timers are ignored.
    ProcessTimer(alloc::sync::Weak<super::process::Process>, u64),
    /// A sentry object's own expiry (timerfd) and the tag it was armed
    /// with; called after the scheduler lock is released.
    Callback(alloc::sync::Weak<dyn TimerCallback>, u64),
}

/// Something a `TimerAction::Callback` calls when its deadline passes.
pub trait TimerCallback: Send + Sync {
    /// The timer armed with `tag` came due; `now` is CLOCK_MONOTONIC ns.
    fn fire(&self, tag: u64, now: u64);
}

/// Removes the pending `Callback` timers of `c` (disarmed or closed).
pub fn cancel_callbacks(c: &alloc::sync::Weak<dyn TimerCallback>) {
    let mut s = SCHED.lock();
    s.timers.retain(|(_, a)| !matches!(a, TimerAction::Callback(x, _) if x.ptr_eq(c)));
    update_next(&s);
}

fn update_next(s: &Sched) {
    let d = s.timers.iter().map(|(d, _)| *d).min().unwrap_or(u64::MAX);
    NEXT_DEADLINE.store(d, Ordering::Relaxed);
}

/// Adds a timer.
pub fn add_timer_action(deadline: u64, a: TimerAction) {
    let mut s = SCHED.lock();
    s.timers.push((deadline, a));
    update_next(&s);
}

/// Fires due timers (from the idle loop and on the way back to user mode).
pub fn run_timers() {
    run_timers_at(super::clock::monotonic_ns());
}

/// `run_timers` with the current time `now` already read; returns whether
/// any timer fired (time then passed: `now` is stale).
pub fn run_timers_at(now: u64) -> bool {
    if now < NEXT_DEADLINE.load(Ordering::Relaxed) {
        return false;
    }
    let fired: Vec<TimerAction> = {
        let mut s = SCHED.lock();
        let mut fired = Vec::new();
        s.timers.retain(|(d, a)| {
            if *d <= now {
                fired.push(a.clone());
                false
            } else {
                true
            }
        });
        update_next(&s);
        fired
    };
    for a in fired {
        match a {
            TimerAction::Wake(t) => wake(&t),
            TimerAction::ProcessTimer(p, generation) => {
                if let Some(p) = p.upgrade() {
                    super::itimer::fire(&p, generation, now);
                }
            }
            TimerAction::Callback(c, tag) => {
                if let Some(c) = c.upgrade() {
                    c.fire(tag, now);
                }
            }
        }
    }
    true
}
/// Where a dying task's last context goes (it is never resumed).
static DEAD_RSP: [AtomicU64; NCPU] = [const { AtomicU64::new(0) }; NCPU];

/// The task running on this vCPU.
pub fn current() -> Option<Arc<TaskShared>> {
    SCHED.lock().current[cpu()].clone()
}

/// Starts a new kernel thread running `entry(arg)` for `task`.
pub fn spawn(task: &Arc<TaskShared>, entry: extern "C" fn(u64) -> !, arg: u64) {
    let stack = KStack::new();
    // SAFETY: the stack is fresh, owned by the new thread from now on.
    let rsp = unsafe { switch::prepare_stack(stack.top() & !15, entry, arg) };
    task.rsp.store(rsp, Ordering::Relaxed);
    *task.stack.lock() = Some(stack);
    task.state.store(RUNNABLE, Ordering::Relaxed);
    // Near its parent: a fork is mostly followed by a wait for the child.
    task.last_cpu.store(cpu() as u32, Ordering::Relaxed);
    SCHED.lock().runq.push_back(task.clone());
}

/// Adds the running slice to `t`'s CPU time and starts a new one at `now`.
fn charge(t: &TaskShared, now: u64) {
    let start = t.slice_start.swap(now, Ordering::Relaxed);
    if start != 0 {
        t.cpu_ns.fetch_add(now.saturating_sub(start), Ordering::Relaxed);
    }
    let since = t.sentry_since.load(Ordering::Relaxed);
    if since != 0 {
        t.sys_ns.fetch_add(now.saturating_sub(since), Ordering::Relaxed);
        t.sentry_since.store(now, Ordering::Relaxed);
    }
}

/// The running task enters user mode: its time in the sentry so far is
/// system time.
pub fn to_user(t: &TaskShared) {
    let since = t.sentry_since.swap(0, Ordering::Relaxed);
    if since != 0 {
        t.sys_ns.fetch_add(super::clock::monotonic_ns().saturating_sub(since), Ordering::Relaxed);
    }
}

/// The running task came back from user mode into the sentry.
pub fn from_user(t: &TaskShared) {
    t.sentry_since.store(super::clock::monotonic_ns(), Ordering::Relaxed);
}

/// CPU time split into user and system time (ns).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user: u64,
    pub sys: u64,
}

impl CpuTimes {
    /// User plus system time.
    pub fn total(self) -> u64 {
        self.user + self.sys
    }
}

impl core::ops::Add for CpuTimes {
    type Output = CpuTimes;
    fn add(self, o: CpuTimes) -> CpuTimes {
        CpuTimes { user: self.user + o.user, sys: self.sys + o.sys }
    }
}

/// CPU time `t` has used (ns), its current slice included when it runs.
pub fn cpu_time(t: &Arc<TaskShared>) -> u64 {
    cpu_times(t).total()
}

/// `cpu_time` split into user and system time.
pub fn cpu_times(t: &Arc<TaskShared>) -> CpuTimes {
    let running = SCHED.lock().is_current(t).is_some();
    let mut total = t.cpu_ns.load(Ordering::Relaxed);
    let mut sys = t.sys_ns.load(Ordering::Relaxed);
    if running {
        let now = super::clock::monotonic_ns();
        total += now.saturating_sub(t.slice_start.load(Ordering::Relaxed));
        let since = t.sentry_since.load(Ordering::Relaxed);
        if since != 0 {
            sys += now.saturating_sub(since);
        }
    }
    let sys = sys.min(total);
    CpuTimes { user: total - sys, sys }
}

/// How long a task runs before yielding to others at its next syscall.
pub const TIMESLICE_NS: u64 = 5_000_000;

/// Gives the CPU to other runnable tasks if `me` used up its timeslice.
/// (A preemption point: the sentry has no timer interrupt yet, so a task
/// spinning in user mode without syscalls still keeps the CPU.)
pub fn maybe_yield(me: &TaskShared) {
    maybe_yield_at(me, super::clock::monotonic_ns());
}

/// `maybe_yield` with the current time `now` already read.
pub fn maybe_yield_at(me: &TaskShared, now: u64) {
    if now.saturating_sub(me.slice_start.load(Ordering::Relaxed)) < TIMESLICE_NS {
        return;
    }
    if SCHED.lock().pickable(cpu()).is_none() {
        charge(me, now);
        return;
    }
    if spread(me, now) {
        return;
    }
    schedule();
}

/// True if tasks other than the current one wait for the CPU, or a
/// timer will make one runnable: the application should not be left to
/// run unbounded.
pub fn others_waiting() -> bool {
    let s = SCHED.lock();
    !s.runq.is_empty() || !s.timers.is_empty()
}

/// Lets the other runnable tasks run; the current one stays runnable.
pub fn yield_now() {
    run_timers();
    if SCHED.lock().pickable(cpu()).is_some() {
        schedule();
    }
}

/// The ticker preempted `me`'s application; returns true if it should
/// keep this vCPU rather than yield (see `spread`).
pub fn preempted(me: &TaskShared) -> bool {
    let now = super::clock::monotonic_ns();
    now.saturating_sub(me.slice_start.load(Ordering::Relaxed)) >= TIMESLICE_NS && spread(me, now)
}

/// `me` used up its timeslice while tasks wait for its vCPU: CPU-bound
/// work outnumbers the busy vCPUs. If a vCPU is idle, the waiting tasks
/// may move there and it is woken (a VMM round trip, at most once per
/// timeslice); `me` keeps this vCPU for another timeslice (true). Tasks of
/// `me`'s address space cannot run beside it, so they wait here.
fn spread(me: &TaskShared, now: u64) -> bool {
    let here = cpu();
    let n = super::get().num_cpus as usize;
    let idle = {
        let s = SCHED.lock();
        let Some(idle) = (0..n).find(|&i| i != here && s.current[i].is_none()) else {
            return false;
        };
        let mine = me.cr3.load(Ordering::Relaxed);
        let mut moved = false;
        for t in s.runq.iter().filter(|t| t.last_cpu.load(Ordering::Relaxed) == here as u32 && t.cr3.load(Ordering::Relaxed) != mine) {
            t.last_cpu.store(ANY_CPU, Ordering::Relaxed);
            moved = true;
        }
        if !moved {
            return false;
        }
        idle
    };
    crate::host::wake_cpu(idle);
    charge(me, now);
    true
}

/// Blocks the current task until a wake-up (a signal, a timer).
pub fn block(me: &TaskShared) {
    me.state.store(BLOCKED, Ordering::Release);
    schedule();
}

/// Makes a blocked task runnable.
pub fn wake(t: &Arc<TaskShared>) {
    if t.state.compare_exchange(BLOCKED, RUNNABLE, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
        let me = cpu();
        let mut s = SCHED.lock();
        if s.is_current(t).is_none() {
            s.runq.push_back(t.clone());
            // It waits for the vCPU it last ran on: if that one runs an
            // application, have it interrupted at its next tick (it then
            // yields, or moves the task to an idle vCPU), or a program
            // spinning there without syscalls would keep it waiting.
            let last = t.last_cpu.load(Ordering::Relaxed) as usize;
            if last != me && s.current.get(last).is_some_and(Option::is_some) {
                super::preempt::request_on(last);
            }
        }
        return;
    }
    // Running in user mode on another vCPU (the sentry is ours): have it
    // interrupted, so it sees what woke it (a signal) within a tick.
    let me = cpu();
    if let Some(c) = SCHED.lock().is_current(t).filter(|&c| c != me) {
        super::preempt::request_on(c);
    }
}

/// Wakes `t` at `deadline` (CLOCK_MONOTONIC ns) unless woken before.
pub fn add_timer(deadline: u64, t: &Arc<TaskShared>) {
    add_timer_action(deadline, TimerAction::Wake(t.clone()));
}

/// Removes `t`'s wake-up timers.
pub fn cancel_timers(t: &Arc<TaskShared>) {
    let mut s = SCHED.lock();
    s.timers.retain(|(_, a)| !matches!(a, TimerAction::Wake(x) if Arc::ptr_eq(x, t)));
    update_next(&s);
}

/// Switches away from the current task. Returns when it runs again (if
/// it is blocked: after a `wake`; if runnable: after the others had a turn).
pub fn schedule() {
    let me = cpu();
    let (save, to, cr3) = {
        let mut s = SCHED.lock();
        let cur = s.current[me].take();
        let save = match &cur {
            // A dead task's record may be freed as soon as `cur` drops.
            Some(c) if c.state.load(Ordering::Relaxed) == DEAD => DEAD_RSP[me].as_ptr(),
            Some(c) => c.rsp.as_ptr(),
            None => IDLE_RSP[me].as_ptr(),
        };
        if let Some(c) = cur {
            charge(&c, super::clock::monotonic_ns());
            if c.state.load(Ordering::Relaxed) == RUNNABLE {
                s.runq.push_back(c);
            }
        }
        match s.pickable(me).and_then(|i| s.runq.remove(i)) {
            Some(next) => {
                next.slice_start.store(super::clock::monotonic_ns(), Ordering::Relaxed);
                next.last_cpu.store(me as u32, Ordering::Relaxed);
                // Tasks are switched to inside the sentry.
                next.sentry_since.store(super::clock::monotonic_ns(), Ordering::Relaxed);
                let rsp = next.rsp.load(Ordering::Relaxed);
                let cr3 = next.cr3.load(Ordering::Relaxed);
                s.current[me] = Some(next);
                (save, rsp, cr3)
            }
            None => (save, IDLE_RSP[me].load(Ordering::Relaxed), 0),
        }
    };
    switch_to(save, to, cr3);
}

fn switch_to(save: *mut u64, to: u64, cr3: u64) {
    if cr3 != 0 {
        load_root(cr3);
    }
    if save as u64 == 0 {
        return;
    }
    // The next context may return another task to user mode (a full
    // XRSTOR of its area), or this task may resume on another vCPU: the
    // FPU state still in the registers goes to its area first.
    #[cfg(not(test))]
    crate::arch::percpu::spill_fpu();
    // SAFETY: `save` points at the current context's rsp slot (a live
    // TaskShared or IDLE_RSP), `to` is a context saved by an earlier switch
    // or prepared by `spawn`.
    unsafe { switch::rv_context_switch(save, to) };
    // Back on this stack: free stacks of tasks that exited meanwhile.
    let dead: Vec<KStack> = core::mem::take(&mut SCHED.lock().dead);
    drop(dead);
}

/// Loads `cr3` on this vCPU unless it is loaded already.
fn load_root(cr3: u64) {
    let me = cpu();
    let mut s = SCHED.lock();
    if s.cr3[me] != cr3 {
        s.cr3[me] = cr3;
        drop(s);
        switch::load_cr3(cr3);
    }
}

/// Notes that the address space of the current task changed (exec).
pub fn set_cr3(t: &Arc<TaskShared>, cr3: u64) {
    t.cr3.store(cr3, Ordering::Relaxed);
    load_root(cr3);
}

/// Runs on the sentry's template root (no user half), so the current
/// address space can be freed.
pub fn use_kernel_root() {
    load_root(abi::layout::BOOT_PML4_GPA);
}

/// Ends the current task: never returns. Its stack is freed by whoever runs next.
pub fn exit_current() -> ! {
    if let Some(c) = current() {
        c.state.store(DEAD, Ordering::Relaxed);
        if let Some(st) = c.stack.lock().take() {
            SCHED.lock().dead.push(st);
        }
    }
    schedule();
    unreachable_halt()
}

fn unreachable_halt() -> ! {
    crate::arch::halt_forever()
}

/// The idle loop of a vCPU, on its boot stack, entered with the BKL held:
/// runs tasks, fires timers, halts.
pub fn idle() -> ! {
    let me = cpu();
    loop {
        super::control::poll();
        crate::net::host::poll_events();
        run_timers();
        let now = super::clock::monotonic_ns();
        let next_deadline = {
            let s = SCHED.lock();
            if s.pickable(me).is_some() {
                None
            } else {
                Some(s.timers.iter().map(|(d, _)| *d).min().unwrap_or(now + 10_000_000_000))
            }
        };
        match next_deadline {
            None => schedule(),
            Some(d) => {
                // No user root stays loaded while the sentry is not here to
                // see its address space change or go away.
                use_kernel_root();
                bkl_unlock();
                crate::host::halt(d.saturating_sub(now));
                bkl_lock();
            }
        }
    }
}
