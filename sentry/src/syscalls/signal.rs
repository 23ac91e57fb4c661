//! Signal dispositions and masks: rt_sigaction, rt_sigprocmask,
//! sigaltstack. Recorded faithfully; delivery arrives with the process issue.

use super::Args;
use crate::errno::{Errno, SysResult};
use crate::kernel::signal::{SigAction, SigAltStack, NSIG, SIGKILL, SIGSTOP};
use crate::kernel::task::Task;

const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));

pub fn sys_rt_sigaction(t: &mut Task, a: &Args) -> SysResult {
    let sig = a.u32(0);
    if a.u64(3) != 8 || sig == 0 || sig > NSIG {
        return Err(Errno::EINVAL);
    }
    let new = if a.u64(1) != 0 { Some(t.mm.lock().read_obj::<SigAction>(a.u64(1))?) } else { None };
    if new.is_some() && (sig == SIGKILL || sig == SIGSTOP) {
        return Err(Errno::EINVAL);
    }
    let old = t.proc.sighand.lock()[sig as usize - 1];
    if a.u64(2) != 0 {
        t.mm.lock().write_obj(a.u64(2), &old)?;
    }
    if let Some(mut n) = new {
        n.mask &= !UNBLOCKABLE;
        t.proc.sighand.lock()[sig as usize - 1] = n;
        // Setting SIG_IGN (or SIG_DFL for a default-ignored signal)
        // discards it if pending (POSIX).
        if n.handler == crate::kernel::signal::SIG_IGN
            || (n.handler == crate::kernel::signal::SIG_DFL
                && crate::kernel::signal::default_action(sig) == crate::kernel::signal::Default::Ignore)
        {
            let b = !crate::kernel::signal::bit(sig);
            t.proc.pending.fetch_and(b, core::sync::atomic::Ordering::AcqRel);
            t.shared.pending.fetch_and(b, core::sync::atomic::Ordering::AcqRel);
        }
    }
    Ok(0)
}

pub fn sys_rt_sigprocmask(t: &mut Task, a: &Args) -> SysResult {
    if a.u64(3) != 8 {
        return Err(Errno::EINVAL);
    }
    let old = t.shared.sigmask.load(core::sync::atomic::Ordering::Relaxed);
    if a.u64(1) != 0 {
        let set: u64 = t.mm.lock().read_obj(a.u64(1))?;
        let new = match a.u32(0) {
            0 => old | set,
            1 => old & !set,
            2 => set,
            _ => return Err(Errno::EINVAL),
        } & !UNBLOCKABLE;
        t.shared.sigmask.store(new, core::sync::atomic::Ordering::Relaxed);
    }
    if a.u64(2) != 0 {
        t.mm.lock().write_obj(a.u64(2), &old)?;
    }
    Ok(0)
}

pub fn sys_sigaltstack(t: &mut Task, a: &Args) -> SysResult {
    const SS_DISABLE: u32 = 2;
    const MINSIGSTKSZ: u64 = 2048;
    let mut old = t.altstack;
    let on_alt = old.flags & SS_DISABLE == 0 && t.regs.rsp.wrapping_sub(old.sp) < old.size;
    if on_alt {
        old.flags = 1; // SS_ONSTACK
    }
    if a.u64(0) != 0 {
        if on_alt {
            return Err(Errno::EPERM);
        }
        let ss: SigAltStack = t.mm.lock().read_obj(a.u64(0))?;
        if ss.flags & !(SS_DISABLE | 0x8000_0000) != 0 {
            return Err(Errno::EINVAL);
        }
        if ss.flags & SS_DISABLE == 0 && ss.size < MINSIGSTKSZ {
            return Err(Errno::ENOMEM);
        }
        t.altstack = ss;
    }
    if a.u64(1) != 0 {
        t.mm.lock().write_obj(a.u64(1), &old)?;
    }
    Ok(0)
}

use crate::kernel::sched;
use core::sync::atomic::Ordering;

/// Waits until a signal is deliverable with `mask` in force.
fn suspend_with(t: &mut Task, mask: u64) -> SysResult {
    let old = t.shared.sigmask.swap(mask & !UNBLOCKABLE, Ordering::AcqRel);
    t.saved_mask = Some(old);
    while t.deliverable() == 0 && !t.shared.killed.load(Ordering::Relaxed) {
        sched::block(&t.shared);
    }
    // A handler runs, then the call fails with EINTR; a signal that is
    // only discarded (ignored) restarts the wait transparently.
    Err(crate::kernel::wait::ERESTARTNOHAND)
}

pub fn sys_rt_sigsuspend(t: &mut Task, a: &Args) -> SysResult {
    if a.u64(1) != 8 {
        return Err(Errno::EINVAL);
    }
    let mask: u64 = t.mm.lock().read_obj(a.u64(0))?;
    suspend_with(t, mask)
}

pub fn sys_pause(t: &mut Task, _a: &Args) -> SysResult {
    let mask = t.shared.sigmask.load(Ordering::Relaxed);
    suspend_with(t, mask)
}

pub fn sys_rt_sigpending(t: &mut Task, a: &Args) -> SysResult {
    if a.u64(1) > 8 {
        return Err(Errno::EINVAL);
    }
    let pending = (t.shared.pending.load(Ordering::Relaxed) | t.proc.pending()) & t.shared.sigmask.load(Ordering::Relaxed);
    let bytes = pending.to_le_bytes();
    t.mm.lock().copy_out(a.u64(0), &bytes[..a.usize(1)])?;
    Ok(0)
}

pub fn sys_rt_sigtimedwait(t: &mut Task, a: &Args) -> SysResult {
    if a.u64(3) != 8 {
        return Err(Errno::EINVAL);
    }
    let set = t.mm.lock().read_obj::<u64>(a.u64(0))? & !UNBLOCKABLE;
    let deadline = if a.u64(2) != 0 {
        let sec: i64 = t.mm.lock().read_obj(a.u64(2))?;
        let nsec: i64 = t.mm.lock().read_obj(a.u64(2) + 8)?;
        if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
            return Err(Errno::EINVAL);
        }
        Some(crate::kernel::clock::monotonic_ns().saturating_add((sec as u64).saturating_mul(1_000_000_000) + nsec as u64))
    } else {
        None
    };
    // Lets process-directed signals of `set` wake this thread although it
    // blocks them.
    t.shared.sigwait.store(set, Ordering::Relaxed);
    let r = wait_for_signals(t, a.u64(1), set, deadline);
    t.shared.sigwait.store(0, Ordering::Relaxed);
    r
}

/// rt_sigtimedwait's wait: takes a signal of `set` (its siginfo to
/// `info_va` if not 0), or fails with EINTR or, past `deadline`, EAGAIN.
fn wait_for_signals(t: &mut Task, info_va: u64, set: u64, deadline: Option<u64>) -> SysResult {
    loop {
        let pending = t.shared.pending.load(Ordering::Relaxed) | t.proc.pending();
        if let Some((sig, info)) = crate::kernel::signal::dequeue_from(t, pending & set) {
            if info_va != 0 {
                // The whole siginfo: glibc's SIGEV_THREAD helper finds its
                // timer through si_value.
                let si = crate::kernel::signal::user_siginfo(sig, &info);
                t.mm.lock().copy_out(info_va, &si)?;
            }
            return Ok(u64::from(sig));
        }
        // Another (unwaited-for) deliverable signal interrupts the wait.
        if t.deliverable() & !set != 0 || t.shared.killed.load(Ordering::Relaxed) {
            return Err(Errno::EINTR);
        }
        if let Some(d) = deadline {
            if crate::kernel::clock::monotonic_ns() >= d {
                return Err(Errno::EAGAIN);
            }
            sched::add_timer(d, &t.shared);
        }
        sched::block(&t.shared);
        sched::cancel_timers(&t.shared);
    }
}

/// rt_sigqueueinfo / rt_tgsigqueueinfo: the caller supplies the siginfo;
/// only negative si_code values (or its own process) are allowed, as Linux.
fn queue_info(t: &mut Task, va: u64, sig: u32) -> Result<crate::kernel::signal::SigInfo, Errno> {
    let mut si = [0u8; 128];
    t.mm.lock().copy_in(va, &mut si)?;
    let code = i32::from_le_bytes([si[8], si[9], si[10], si[11]]);
    if code >= 0 || code == crate::kernel::signal::SI_TKILL {
        return Err(Errno::EPERM);
    }
    let _ = sig;
    Ok(crate::kernel::signal::SigInfo {
        code,
        pid: u32::from_le_bytes([si[16], si[17], si[18], si[19]]),
        uid: u32::from_le_bytes([si[20], si[21], si[22], si[23]]),
        addr: u64::from_le_bytes(si[24..32].try_into().unwrap_or([0; 8])),
        ..crate::kernel::signal::SigInfo::default()
    })
}

pub fn sys_rt_sigqueueinfo(t: &mut Task, a: &Args) -> SysResult {
    let sig = a.u32(1);
    if sig == 0 || sig > 64 {
        return Err(Errno::EINVAL);
    }
    let info = queue_info(t, a.u64(2), sig)?;
    let p = crate::kernel::process::find_process(a.u32(0)).ok_or(Errno::ESRCH)?;
    crate::kernel::signal::send_to_process(&p, sig, info);
    Ok(0)
}

pub fn sys_rt_tgsigqueueinfo(t: &mut Task, a: &Args) -> SysResult {
    let sig = a.u32(2);
    if sig == 0 || sig > 64 {
        return Err(Errno::EINVAL);
    }
    let info = queue_info(t, a.u64(3), sig)?;
    let p = crate::kernel::process::find_process(a.u32(0)).ok_or(Errno::ESRCH)?;
    let task = crate::kernel::process::find_task(a.u32(1)).ok_or(Errno::ESRCH)?;
    if !p.inner.lock().threads.iter().any(|x| alloc::sync::Arc::ptr_eq(x, &task)) {
        return Err(Errno::ESRCH);
    }
    crate::kernel::signal::send_to_thread(&p, &task, sig, info);
    Ok(0)
}
