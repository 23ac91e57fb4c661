//! Signals: sending (to a process or a thread), default actions, and
//! delivery on the way back to user mode (Linux: kernel/signal.c,
//! arch/x86/kernel/signal.c).

/// Signal numbers used by the sentry.
pub const SIGILL: u32 = 4;
pub const SIGTRAP: u32 = 5;
pub const SIGBUS: u32 = 7;
pub const SIGFPE: u32 = 8;
pub const SIGKILL: u32 = 9;
pub const SIGSEGV: u32 = 11;
pub const SIGSTOP: u32 = 19;
/// Highest signal number.
pub const NSIG: u32 = 64;

/// `struct sigaction` as rt_sigaction passes it (kernel layout).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}
// SAFETY: repr(C), four u64, no padding.
unsafe impl abi::Pod for SigAction {}

/// `stack_t`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAltStack {
    pub sp: u64,
    pub flags: u32,
    pub pad: u32,
    pub size: u64,
}
// SAFETY: repr(C), explicit padding field.
unsafe impl abi::Pod for SigAltStack {}

/// Signal dispositions (Linux: `sighand_struct`), shared by CLONE_SIGHAND.
pub type SigHandlers = [SigAction; NSIG as usize];

/// The disabled alternate stack.
pub const ALTSTACK_DISABLED: SigAltStack = SigAltStack { sp: 0, flags: 2, pad: 0, size: 0 };

use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use super::process::Process;
use super::sched::{self, TaskShared};
use super::task::{ExitReason, Task};

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;
pub const SIGHUP: u32 = 1;
pub const SIGINT: u32 = 2;
pub const SIGQUIT: u32 = 3;
pub const SIGABRT: u32 = 6;
pub const SIGUSR1: u32 = 10;
pub const SIGPIPE: u32 = 13;
pub const SIGALRM: u32 = 14;
pub const SIGTERM: u32 = 15;
pub const SIGCHLD: u32 = 17;
pub const SIGCONT: u32 = 18;
pub const SIGTSTP: u32 = 20;
pub const SIGTTIN: u32 = 21;
pub const SIGTTOU: u32 = 22;
pub const SIGURG: u32 = 23;
pub const SIGWINCH: u32 = 28;
pub const SIGSYS: u32 = 31;

/// What a signal does when its disposition is SIG_DFL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Default {
    Terminate,
    Core,
    Ignore,
    Stop,
    Continue,
}

/// Linux's default action for `sig`.
pub fn default_action(sig: u32) -> Default {
    match sig {
        SIGCHLD | SIGURG | SIGWINCH => Default::Ignore,
        SIGCONT => Default::Continue,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => Default::Stop,
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | 24 | 25 | 31 => Default::Core,
        32..=64 => Default::Terminate,
        _ => Default::Terminate,
    }
}

/// What a handler's siginfo says about a signal (the parts rvisor sets).
///
/// The fields follow the offsets of Linux's siginfo union: for SI_TIMER
/// signals `pid` is si_timerid and `uid` si_overrun (both ints at the
/// same places as si_pid and si_uid), and `addr` si_value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigInfo {
    pub code: i32,
    pub pid: u32,
    pub uid: u32,
    /// si_addr for faults, si_value for queued and timer signals.
    pub addr: u64,
    /// si_status for SIGCHLD.
    pub status: i32,
    /// Nonzero for a signal queued by a POSIX timer: the arming it came
    /// from. Never set from user input (a forged SI_TIMER siginfo from
    /// rt_sigqueueinfo keeps 0), so only real timer signals reach
    /// `posix_timer::dequeued`.
    pub timer_gen: u64,
}

/// si_code: sent by kill.
pub const SI_USER: i32 = 0;
/// si_code: sent by the kernel.
pub const SI_KERNEL: i32 = 0x80;
/// si_code: sent by tkill/tgkill.
pub const SI_TKILL: i32 = -6;
/// si_code: a POSIX timer expired.
pub const SI_TIMER: i32 = -2;
/// si_code for SIGSEGV: no mapping / bad permissions.
pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;
/// si_code for a SIGSYS from a seccomp filter.
pub const SYS_SECCOMP: i32 = 1;
/// si_code for SIGCHLD.
pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_STOPPED: i32 = 5;
pub const CLD_CONTINUED: i32 = 6;
/// sa_flags: no SIGCHLD when a child stops or continues.
pub const SA_NOCLDSTOP: u64 = 1;
/// Signals whose default action stops the process.
const STOP_SET: u64 = (1 << (SIGSTOP - 1)) | (1 << (SIGTSTP - 1)) | (1 << (SIGTTIN - 1)) | (1 << (SIGTTOU - 1));

impl SigInfo {
    /// From a sender process (kill, tkill).
    pub fn from_sender(code: i32, pid: u32, uid: u32) -> SigInfo {
        SigInfo { code, pid, uid, ..SigInfo::default() }
    }
    /// From the kernel.
    pub fn kernel() -> SigInfo {
        SigInfo { code: SI_KERNEL, ..SigInfo::default() }
    }
    /// From POSIX timer `id` armed as `generation` (nonzero).
    pub fn timer(id: i32, overrun: u32, value: u64, generation: u64) -> SigInfo {
        SigInfo { code: SI_TIMER, pid: id as u32, uid: overrun, addr: value, status: 0, timer_gen: generation.max(1) }
    }
    /// A seccomp SIGSYS: the call's address, number and the filter's data
    /// (si_call_addr, si_syscall, si_errno; si_arch is x86-64's).
    pub fn seccomp(call_addr: u64, nr: u32, data: u16) -> SigInfo {
        SigInfo { code: SYS_SECCOMP, addr: call_addr, pid: nr, status: i32::from(data), ..SigInfo::default() }
    }
    /// True for a synchronous fault's siginfo (si_addr instead of si_pid).
    pub fn is_fault(&self, sig: u32) -> bool {
        matches!(sig, SIGILL | SIGTRAP | SIGBUS | SIGFPE | SIGSEGV) && self.code > 0 && self.code < SI_KERNEL
    }
}

/// Size of the user `siginfo_t`.
pub const SIGINFO_SIZE: usize = 128;

/// The user `siginfo_t` of `sig`: signo, errno, code, then the union
/// (faults: addr; kill: pid, uid; SIGCHLD: pid, uid, status; queued and
/// timer signals: pid/uid or timerid/overrun, then the value).
pub fn user_siginfo(sig: u32, info: &SigInfo) -> [u8; SIGINFO_SIZE] {
    let mut si = [0u8; SIGINFO_SIZE];
    let mut put = |off: usize, v: &[u8]| si[off..off + v.len()].copy_from_slice(v);
    put(0, &sig.to_le_bytes());
    put(8, &info.code.to_le_bytes());
    if info.is_fault(sig) {
        put(16, &info.addr.to_le_bytes());
    } else if sig == SIGSYS && info.code == SYS_SECCOMP {
        put(4, &info.status.to_le_bytes());
        put(16, &info.addr.to_le_bytes());
        put(24, &info.pid.to_le_bytes());
        put(28, &crate::kernel::seccomp::AUDIT_ARCH_X86_64.to_le_bytes());
    } else {
        put(16, &info.pid.to_le_bytes());
        put(20, &info.uid.to_le_bytes());
        if sig == SIGCHLD {
            put(24, &info.status.to_le_bytes());
        } else {
            put(24, &info.addr.to_le_bytes());
        }
    }
    si
}

/// Queued siginfo: standard signals keep one pending instance (one
/// slot), real-time signals (32..=64) queue every instance.
#[derive(Clone, Debug)]
pub struct InfoSlots {
    slots: [SigInfo; NSIG as usize],
    rt: alloc::collections::VecDeque<(u32, SigInfo)>,
}

/// Most queued real-time signals per queue (RLIMIT_SIGPENDING-ish).
const MAX_RT_QUEUED: usize = 4096;

impl InfoSlots {
    /// Empty.
    pub fn new() -> InfoSlots {
        InfoSlots { slots: [SigInfo::default(); NSIG as usize], rt: alloc::collections::VecDeque::new() }
    }

    /// Records an instance; returns false if a real-time queue is full.
    fn push(&mut self, sig: u32, info: SigInfo, already_pending: bool) -> bool {
        if sig >= 32 {
            if self.rt.len() >= MAX_RT_QUEUED {
                return false;
            }
            self.rt.push_back((sig, info));
        } else if !already_pending {
            self.slots[sig as usize - 1] = info;
        }
        true
    }

    /// Takes one instance; returns it and whether more remain queued.
    fn pop(&mut self, sig: u32) -> (SigInfo, bool) {
        if sig >= 32 {
            let i = self.rt.iter().position(|(s, _)| *s == sig);
            let info = i.and_then(|i| self.rt.remove(i)).map(|x| x.1).unwrap_or_default();
            let more = self.rt.iter().any(|(s, _)| *s == sig);
            (info, more)
        } else {
            (self.slots[sig as usize - 1], false)
        }
    }
}

impl core::default::Default for InfoSlots {
    fn default() -> Self {
        InfoSlots::new()
    }
}

/// Bit of `sig` in a signal set.
pub fn bit(sig: u32) -> u64 {
    1u64 << (sig - 1)
}

/// Set for containers: pid 1 is the init of a pid namespace, which
/// Linux shields from signals it has no handler for (SIGKILL and SIGSTOP
/// come from outside: the runtime kills the whole sandbox instead). So
/// `docker stop` of a `sleep` waits for its timeout, as with runc.
pub static INIT_PROTECTED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Whether stop signal `sig` is at its default action for `p` and some
/// thread of it takes it (where its group is not orphaned, it stops `p`).
pub fn stops_by_default(p: &Process, sig: u32) -> bool {
    if sig == 0 || sig > NSIG || bit(sig) & STOP_SET == 0 {
        return false;
    }
    if p.pid == 1 && INIT_PROTECTED.load(Ordering::Relaxed) {
        return false;
    }
    if p.sighand.lock()[sig as usize - 1].handler != SIG_DFL {
        return false;
    }
    p.inner.lock().threads.iter().any(|t| t.sigmask.load(Ordering::Relaxed) & bit(sig) == 0)
}

/// True if `sig` would be discarded on arrival (ignored, explicitly or by default).
fn ignored(p: &Process, sig: u32) -> bool {
    // The container's init cannot be stopped from inside (as Linux's
    // pid-namespace init; the runtime's `pause` freezes the whole VM).
    if sig == SIGSTOP && p.pid == 1 && INIT_PROTECTED.load(Ordering::Relaxed) {
        return true;
    }
    if sig == SIGKILL || sig == SIGSTOP {
        return false;
    }
    let act = p.sighand.lock()[sig as usize - 1];
    if act.handler == SIG_DFL && p.pid == 1 && INIT_PROTECTED.load(Ordering::Relaxed) {
        return true;
    }
    act.handler == SIG_IGN || (act.handler == SIG_DFL && default_action(sig) == Default::Ignore)
}

/// Sends `sig` to a whole process (kill). Returns whether it was queued
/// (false: discarded as ignored, or a full real-time queue).
pub fn send_to_process(p: &Arc<Process>, sig: u32, info: SigInfo) -> bool {
    if sig == 0 || sig > NSIG {
        return false;
    }
    if sig == SIGKILL {
        kill_group(p, ExitReason::Signaled(SIGKILL));
        return true;
    }
    prepare_signal(p, sig);
    let b = bit(sig);
    // An ignored signal is discarded unless blocked: a blocked one stays
    // pending (sigwait, signalfd) and is dropped only when unblocked.
    let threads_now = p.inner.lock().threads.clone();
    let blocked_everywhere = !threads_now.is_empty() && threads_now.iter().all(|t| t.sigmask.load(Ordering::Relaxed) & b != 0);
    if ignored(p, sig) && !blocked_everywhere {
        return false;
    }
    if !p.info.lock().push(sig, info, p.pending.load(Ordering::Acquire) & b != 0) {
        return false;
    }
    p.pending.fetch_or(b, Ordering::AcqRel);
    // signalfd readers and pollers (the signal may be blocked).
    crate::fs::POLL_WQ.wake_all();
    let threads = p.inner.lock().threads.clone();
    // Wake a thread that does not block it or waits for it in
    // sigwaitinfo (Linux: complete_signal).
    if let Some(t) = threads.iter().find(|t| t.sigmask.load(Ordering::Relaxed) & b == 0 || t.sigwait.load(Ordering::Relaxed) & b != 0) {
        sched::wake(t);
    }
    true
}

/// Sends `sig` to one thread (tkill, tgkill, faults). Returns whether it
/// was queued, as `send_to_process`.
pub fn send_to_thread(p: &Arc<Process>, t: &Arc<TaskShared>, sig: u32, info: SigInfo) -> bool {
    if sig == 0 || sig > NSIG {
        return false;
    }
    if sig == SIGKILL {
        kill_group(p, ExitReason::Signaled(SIGKILL));
        return true;
    }
    prepare_signal(p, sig);
    if ignored(p, sig) && t.sigmask.load(Ordering::Relaxed) & bit(sig) == 0 {
        return false;
    }
    if !t.info.lock().push(sig, info, t.pending.load(Ordering::Acquire) & bit(sig) != 0) {
        return false;
    }
    t.pending.fetch_or(bit(sig), Ordering::AcqRel);
    sched::wake(t);
    crate::fs::POLL_WQ.wake_all();
    true
}

/// What Linux's prepare_signal does when a signal is generated, before it
/// is queued: SIGCONT resumes a stopped process and discards pending stop
/// signals; a stop signal discards a pending SIGCONT.
fn prepare_signal(p: &Arc<Process>, sig: u32) {
    let threads = p.inner.lock().threads.clone();
    let discard = |set: u64| {
        p.pending.fetch_and(!set, Ordering::AcqRel);
        for t in &threads {
            t.pending.fetch_and(!set, Ordering::AcqRel);
        }
    };
    if sig == SIGCONT {
        discard(STOP_SET);
        let (was_stopped, reported) = {
            let mut inner = p.inner.lock();
            let was = inner.stopped.take().is_some();
            let reported = was && core::mem::take(&mut inner.stop_done);
            if reported {
                inner.stop_report = Some(super::process::StopReport::Continued);
            } else if was {
                inner.stop_report = None;
            }
            (was, reported)
        };
        if was_stopped {
            for t in &threads {
                t.jobctl_stop.store(false, Ordering::Release);
            }
            p.stop_wq.wake_all();
        }
        if reported {
            notify_parent_stop(p, CLD_CONTINUED, SIGCONT as i32);
        }
    } else if bit(sig) & STOP_SET != 0 {
        discard(bit(SIGCONT));
    }
}

/// Tells the parent a child stopped or continued: SIGCHLD (unless its
/// action has SA_NOCLDSTOP) and a wake-up of its waits.
fn notify_parent_stop(p: &Arc<Process>, code: i32, status: i32) {
    let ppid = p.inner.lock().ppid;
    let Some(parent) = super::process::find_process(ppid) else { return };
    let act = parent.sighand.lock()[SIGCHLD as usize - 1];
    if act.flags & SA_NOCLDSTOP == 0 {
        let uid = p.view.lock().creds.uid;
        let info = SigInfo { code, pid: p.pid, uid, status, ..SigInfo::default() };
        send_to_process(&parent, SIGCHLD, info);
    }
    parent.child_events.wake_all();
}

/// Whether a process group is orphaned (no member has a parent in
/// another group of the same session): Linux then discards the terminal
/// stop signals instead of stopping it.
fn orphaned_pgrp(pgid: u32) -> bool {
    let procs = super::process::all_processes();
    !procs.iter().any(|m| {
        let (pg, sid, ppid) = {
            let i = m.inner.lock();
            (i.pgid, i.sid, i.ppid)
        };
        if pg != pgid {
            return false;
        }
        super::process::find_process(ppid).is_some_and(|parent| {
            let pi = parent.inner.lock();
            pi.pgid != pgid && pi.sid == sid
        })
    })
}

/// Starts a group stop for `sig` (a stop signal with the default action
/// was dequeued): every thread parks until SIGCONT or SIGKILL.
fn group_stop(t: &Task, sig: u32) {
    let threads = {
        let mut inner = t.proc.inner.lock();
        if inner.exit.is_some() || inner.stopped.is_some() {
            return;
        }
        inner.stopped = Some(sig);
        inner.stop_done = false;
        inner.threads.clone()
    };
    // Every thread parks at its next return to user mode; waiting ones
    // are interrupted (their syscalls restart after SIGCONT).
    for th in threads {
        th.jobctl_stop.store(true, Ordering::Release);
        if !Arc::ptr_eq(&th, &t.shared) {
            sched::wake(&th);
        }
    }
}

/// Parks the calling thread while its process is stopped.
fn park_while_stopped(t: &Task) {
    let notify = {
        let mut inner = t.proc.inner.lock();
        let Some(sig) = inner.stopped else {
            t.shared.jobctl_stop.store(false, Ordering::Release);
            return;
        };
        inner.parked += 1;
        // The last thread to park completes the stop: the parent hears
        // of it only then, as Linux's do_signal_stop.
        if inner.parked >= inner.threads.len() && !inner.stop_done {
            inner.stop_done = true;
            inner.stop_report = Some(super::process::StopReport::Stopped(sig));
            Some(sig)
        } else {
            None
        }
    };
    // Own references from here on (not before: this runs on every return
    // to user mode, and the common case above needs none).
    let proc = t.proc.clone();
    let me = t.shared.clone();
    if let Some(sig) = notify {
        notify_parent_stop(&proc, CLD_STOPPED, sig as i32);
    }
    // Only SIGKILL (killed) and SIGCONT (which clears `stopped`) end the
    // stop: other signals stay pending meanwhile.
    proc.stop_wq.wait_until(&me, || proc.inner.lock().stopped.is_none() || me.killed.load(Ordering::Acquire));
    proc.inner.lock().parked -= 1;
    me.jobctl_stop.store(false, Ordering::Release);
}

/// Makes every thread of `p` exit with `why` (exit_group, fatal signals).
pub fn kill_group(p: &Arc<Process>, why: ExitReason) {
    let threads = {
        let mut inner = p.inner.lock();
        if inner.exit.is_none() {
            inner.exit = Some(why);
        }
        inner.threads.clone()
    };
    for t in threads {
        t.killed.store(true, Ordering::Release);
        sched::wake(&t);
    }
}

/// A synchronous fault (SIGSEGV, SIGILL...): delivered even if blocked or
/// ignored, as Linux's force_sig does (handlers come with frame delivery).
pub fn force_fault_signal(t: &mut Task, sig: u32, addr: u64, code: i32) {
    force_signal(t, sig, SigInfo { code, addr, ..SigInfo::default() });
}

/// As `force_fault_signal`, with a whole siginfo.
pub fn force_signal(t: &mut Task, sig: u32, info: SigInfo) {
    {
        let mut h = t.proc.sighand.lock();
        let a = &mut h[sig as usize - 1];
        if a.handler == SIG_IGN {
            a.handler = SIG_DFL;
        }
    }
    t.shared.sigmask.fetch_and(!bit(sig), Ordering::AcqRel);
    t.shared.info.lock().push(sig, info, false);
    t.shared.pending.fetch_or(bit(sig), Ordering::AcqRel);
}

/// Takes the lowest deliverable signal off the pending sets.
fn dequeue(t: &Task) -> Option<(u32, SigInfo)> {
    dequeue_from(t, t.deliverable())
}

/// Takes the lowest signal of `set` off the pending sets (thread first).
pub fn dequeue_from(t: &Task, set: u64) -> Option<(u32, SigInfo)> {
    if set == 0 {
        return None;
    }
    let sig = set.trailing_zeros() + 1;
    let b = bit(sig);
    let (mut info, more, pending) = if t.shared.pending.load(Ordering::Acquire) & b != 0 {
        let (info, more) = t.shared.info.lock().pop(sig);
        (info, more, &t.shared.pending)
    } else {
        let (info, more) = t.proc.info.lock().pop(sig);
        (info, more, &t.proc.pending)
    };
    if !more {
        pending.fetch_and(!b, Ordering::AcqRel);
    }
    // A POSIX timer's signal takes its overrun count now, as Linux's
    // dequeue_signal does, and frees the timer to queue the next one.
    super::posix_timer::dequeued(&t.proc, &mut info);
    Some((sig, info))
}

/// Acts on pending signals before returning to user mode, and finishes an
/// interrupted syscall (restart or EINTR).
pub fn handle_pending(t: &mut Task) {
    park_while_stopped(t);
    if t.shared.killed.load(Ordering::Acquire) {
        let why = t.proc.inner.lock().exit.unwrap_or(ExitReason::Signaled(SIGKILL));
        t.exit = Some(why);
        return;
    }
    let mut handled = false;
    while let Some((sig, info)) = dequeue(t) {
        let act = t.proc.sighand.lock()[sig as usize - 1];
        match act.handler {
            SIG_IGN => continue,
            SIG_DFL => match default_action(sig) {
                Default::Ignore | Default::Continue => continue,
                Default::Stop => {
                    // Terminal stops are discarded in orphaned groups.
                    let pgid = t.proc.inner.lock().pgid;
                    if sig != SIGSTOP && orphaned_pgrp(pgid) {
                        continue;
                    }
                    group_stop(t, sig);
                    park_while_stopped(t);
                    if t.shared.killed.load(Ordering::Acquire) {
                        let why = t.proc.inner.lock().exit.unwrap_or(ExitReason::Signaled(SIGKILL));
                        t.exit = Some(why);
                        return;
                    }
                    continue;
                }
                Default::Terminate | Default::Core => {
                    kill_group(&t.proc, ExitReason::Signaled(sig));
                    t.exit = Some(ExitReason::Signaled(sig));
                    return;
                }
            },
            _ => {
                t.handler_running = true;
                handled = super::sigframe::deliver(t, sig, &act, &info);
                t.handler_running = false;
                if t.exit.is_some() {
                    return;
                }
                break;
            }
        }
    }
    if !handled {
        if let Some(m) = t.saved_mask.take() {
            t.shared.sigmask.store(m, Ordering::Relaxed);
        }
    }
    finish_restart(t, false);
}

/// An interrupted syscall left `t.restart` set: with no handler run, it
/// is restarted (rip back over `syscall`, rax = the number again).
pub fn finish_restart(t: &mut Task, handler_ran_without_restart: bool) {
    if !t.restart {
        return;
    }
    t.restart = false;
    let nohand = core::mem::take(&mut t.restart_nohand);
    let nointr = core::mem::take(&mut t.restart_nointr);
    if !nointr && (handler_ran_without_restart || (nohand && t.handler_running)) {
        t.regs.rax = (-i64::from(crate::errno::Errno::EINTR.0)) as u64;
    } else {
        t.regs.rip -= 2;
        t.regs.rax = t.regs.orig_rax;
    }
}
