//! Syscall dispatch. The table (`table.rs`) is data: number → name,
//! handler, support level; it feeds dispatch, `--strace`, `rvisor help
//! syscalls` and `docs/compatibility.md`. One file per area holds the
//! handlers (`sys_<name>`), each decoding and validating its arguments
//! first and returning a typed `Errno`.

pub mod epoll;
pub mod file;
pub mod fs;
pub mod futex;
pub mod info;
pub mod ipc;
pub mod mm;
pub mod mqueue;
pub mod names;
pub mod net;
pub mod poll;
pub mod process;
pub mod signal;
pub mod splice;
pub mod table;
pub mod time;

use core::sync::atomic::{AtomicU64, Ordering};

use crate::errno::{self, Errno, SysResult};
use crate::kernel::task::Task;

/// Raw syscall arguments (rdi, rsi, rdx, r10, r8, r9).
#[derive(Clone, Copy, Debug)]
pub struct Args(pub [u64; 6]);

impl Args {
    /// Argument `i` as u64.
    pub fn u64(&self, i: usize) -> u64 {
        self.0[i]
    }
    /// Argument `i` as a C `int` (Linux truncates to 32 bits).
    pub fn i32(&self, i: usize) -> i32 {
        self.0[i] as u32 as i32
    }
    /// Argument `i` as a C `unsigned int`.
    pub fn u32(&self, i: usize) -> u32 {
        self.0[i] as u32
    }
    /// Argument `i` as an fd.
    pub fn fd(&self, i: usize) -> i32 {
        self.i32(i)
    }
    /// Argument `i` as a size (usize).
    pub fn usize(&self, i: usize) -> usize {
        self.0[i] as usize
    }
}

/// A syscall handler.
pub type Handler = fn(&mut Task, &Args) -> SysResult;

static WARNED: [AtomicU64; names::NR_SYSCALLS.div_ceil(64) + 1] = [const { AtomicU64::new(0) }; names::NR_SYSCALLS.div_ceil(64) + 1];

/// Logs an unimplemented syscall once per number.
fn warn_once(nr: u64) {
    let i = (nr as usize).min(names::NR_SYSCALLS);
    let bit = 1u64 << (i % 64);
    if WARNED[i / 64].fetch_or(bit, Ordering::Relaxed) & bit == 0 && crate::kernel::get().debug {
        let name = names::NAMES.get(i).copied().filter(|n| !n.is_empty()).unwrap_or("unknown");
        crate::klog!("unsupported syscall {nr} ({name}): returning ENOSYS");
    }
}

/// Carries out a seccomp verdict in place of the syscall.
fn seccomp_denied(t: &mut Task, nr: u64, v: crate::kernel::seccomp::Verdict) -> SysResult {
    use crate::kernel::seccomp::Verdict;
    use crate::kernel::signal::{self, SigInfo};
    use crate::kernel::task::ExitReason;
    use signal::{SIGKILL, SIGSYS};
    let kill = |t: &mut Task, sig: u32, whole: bool| {
        let alone = t.proc.inner.lock().threads.len() <= 1;
        if whole || alone {
            let p = t.proc.clone();
            signal::kill_group(&p, ExitReason::Signaled(sig));
        }
        t.exit = Some(ExitReason::Signaled(sig));
    };
    match v {
        Verdict::Return(r) => r,
        Verdict::Trap(data) => {
            signal::force_signal(t, SIGSYS, SigInfo::seccomp(t.regs.rip, nr as u32, data));
            // Linux rolls the registers back: the handler, and the code
            // after it, see rax still holding the syscall number.
            Ok(nr)
        }
        Verdict::KillThread => {
            // Strict mode's kill is SIGKILL, a filter's SIGSYS.
            let sig = if t.seccomp.mode() == crate::kernel::seccomp::MODE_STRICT { SIGKILL } else { SIGSYS };
            kill(t, sig, false);
            Err(Errno::ENOSYS)
        }
        Verdict::KillProcess => {
            kill(t, SIGSYS, true);
            Err(Errno::ENOSYS)
        }
    }
}

/// Serves the syscall in `t.regs` and stores the result in `rax`.
pub fn dispatch(t: &mut Task) {
    let nr = t.regs.orig_rax;
    let args = Args([t.regs.rdi, t.regs.rsi, t.regs.rdx, t.regs.r10, t.regs.r8, t.regs.r9]);
    t.keep_regs = false;
    crate::vfs::next_epoch();
    crate::net::host::poll_events();
    let ret = match (crate::kernel::seccomp::check(t, nr, &args.0), table::handler(nr)) {
        (Some(v), _) => seccomp_denied(t, nr, v),
        (None, Some(h)) => h(t, &args),
        (None, None) => {
            warn_once(nr);
            Err(Errno::ENOSYS)
        }
    };
    if t.keep_regs {
        // execve and rt_sigreturn set every register themselves.
        return;
    }
    if ret == Err(Errno::ENOMEM) && crate::mm::frame::at_limit() {
        // A copy into the caller's memory found no page: as for a page
        // fault, the OOM killer picks a process (the caller, if largest).
        let pages = t.mm.lock().resident_pages();
        crate::kernel::oom::out_of_memory(t, pages);
    }
    if crate::kernel::get().strace {
        let name = names::NAMES.get(nr as usize).copied().unwrap_or("?");
        match ret {
            Ok(v) => crate::klog!("[{}] {}({:#x}, {:#x}, {:#x}, {:#x}) = {:#x}", t.tid, name, args.0[0], args.0[1], args.0[2], args.0[3], v),
            Err(e) => crate::klog!("[{}] {}({:#x}, {:#x}, {:#x}, {:#x}) = -{} {}", t.tid, name, args.0[0], args.0[1], args.0[2], args.0[3], e.0, errno::name(e)),
        }
    }
    t.regs.rax = match ret {
        Ok(v) => v,
        Err(crate::kernel::wait::ERESTARTSYS) => {
            // Settled by signal handling: restarted, or EINTR if a
            // handler without SA_RESTART runs.
            t.restart = true;
            (-i64::from(Errno::EINTR.0)) as u64
        }
        Err(crate::kernel::wait::ERESTARTNOINTR) => {
            t.restart = true;
            t.restart_nointr = true;
            (-i64::from(Errno::EINTR.0)) as u64
        }
        Err(crate::kernel::wait::ERESTARTNOHAND) => {
            t.restart = true;
            t.restart_nohand = true;
            (-i64::from(Errno::EINTR.0)) as u64
        }
        Err(e) => (-i64::from(e.0)) as u64,
    };
    // Linux's syscall return leaves rcx = rip and r11 = rflags.
    t.regs.rcx = t.regs.rip;
    t.regs.r11 = t.regs.rflags;
    // One clock reading serves both checks unless timers fired in between.
    let now = crate::kernel::clock::monotonic_ns();
    let fired = crate::kernel::sched::run_timers_at(now);
    crate::kernel::itimer::check_cpu(&t.proc);
    if fired {
        crate::kernel::sched::maybe_yield(&t.shared);
    } else {
        crate::kernel::sched::maybe_yield_at(&t.shared, now);
    }
}
