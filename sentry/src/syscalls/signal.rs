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
    let new = if a.u64(1) != 0 { Some(t.mm.read_obj::<SigAction>(a.u64(1))?) } else { None };
    if new.is_some() && (sig == SIGKILL || sig == SIGSTOP) {
        return Err(Errno::EINVAL);
    }
    let old = t.signals.actions[sig as usize - 1];
    if a.u64(2) != 0 {
        t.mm.write_obj(a.u64(2), &old)?;
    }
    if let Some(mut n) = new {
        n.mask &= !UNBLOCKABLE;
        t.signals.actions[sig as usize - 1] = n;
    }
    Ok(0)
}

pub fn sys_rt_sigprocmask(t: &mut Task, a: &Args) -> SysResult {
    if a.u64(3) != 8 {
        return Err(Errno::EINVAL);
    }
    let old = t.signals.mask;
    if a.u64(1) != 0 {
        let set: u64 = t.mm.read_obj(a.u64(1))?;
        t.signals.mask = match a.u32(0) {
            0 => old | set,
            1 => old & !set,
            2 => set,
            _ => return Err(Errno::EINVAL),
        } & !UNBLOCKABLE;
    }
    if a.u64(2) != 0 {
        t.mm.write_obj(a.u64(2), &old)?;
    }
    Ok(0)
}

pub fn sys_sigaltstack(t: &mut Task, a: &Args) -> SysResult {
    const SS_DISABLE: u32 = 2;
    const MINSIGSTKSZ: u64 = 2048;
    let old = t.signals.altstack;
    if a.u64(0) != 0 {
        let ss: SigAltStack = t.mm.read_obj(a.u64(0))?;
        if ss.flags & !(SS_DISABLE | 0x8000_0000) != 0 {
            return Err(Errno::EINVAL);
        }
        if ss.flags & SS_DISABLE == 0 && ss.size < MINSIGSTKSZ {
            return Err(Errno::ENOMEM);
        }
        t.signals.altstack = ss;
    }
    if a.u64(1) != 0 {
        t.mm.write_obj(a.u64(1), &old)?;
    }
    Ok(0)
}
