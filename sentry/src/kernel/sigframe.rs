//! Signal frames on the user stack, laid out as Linux's x86-64
//! `rt_sigframe` (pretcode, ucontext with sigcontext, siginfo; the XSAVE
//! state above it), and rt_sigreturn, which restores from one. The frame
//! is user memory: everything read back is validated (an invalid FPU
//! image would fault XRSTOR inside the sentry).

use alloc::vec;
use core::sync::atomic::Ordering;

use super::signal::{bit, kill_group, SigAction, SIGKILL, SIGSEGV, SIGSTOP};
use super::task::{ExitReason, Task};
use crate::errno::SysResult;

const SA_RESTORER: u64 = 0x0400_0000;
const SA_ONSTACK: u64 = 0x0800_0000;
const SA_RESTART: u64 = 0x1000_0000;
const SA_NODEFER: u64 = 0x4000_0000;
const SA_RESETHAND: u64 = 0x8000_0000;
const SS_ONSTACK: u32 = 1;
const SS_DISABLE: u32 = 2;
const UC_FP_XSTATE: u64 = 1;
const UC_SIGCONTEXT_SS: u64 = 2;
const UC_STRICT_RESTORE_SS: u64 = 4;
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
/// sizeof(struct rt_sigframe): pretcode 8 + ucontext 304 + siginfo 128.
const FRAME_SIZE: u64 = 440;
const UC_OFF: usize = 8;
const MCTX_OFF: usize = UC_OFF + 40;
const SIGMASK_OFF: usize = UC_OFF + 296;
const INFO_OFF: usize = 312;
/// RFLAGS bits user code may set (Linux: FIX_EFLAGS).
const FIX_EFLAGS: u64 = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x4_0000 | 0x20_0000;

fn put(b: &mut [u8], off: usize, v: &[u8]) {
    b[off..off + v.len()].copy_from_slice(v);
}

fn get_u64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap_or([0; 8]))
}

/// Builds a frame for `sig` and points the registers at the handler.
/// Returns false (after killing the process) if the stack is unusable.
pub fn deliver(t: &mut Task, sig: u32, act: &SigAction, info: &super::signal::SigInfo) -> bool {
    // An interrupted syscall: restart it after the handler, or fail EINTR.
    if t.restart {
        super::signal::finish_restart(t, act.flags & SA_RESTART == 0);
    }
    let k = super::get();
    let xsave = k.xsave_size;
    let on_alt = t.altstack.flags & SS_DISABLE == 0
        && t.regs.rsp.wrapping_sub(t.altstack.sp) < t.altstack.size;
    let mut sp = if act.flags & SA_ONSTACK != 0 && t.altstack.flags & SS_DISABLE == 0 && !on_alt {
        t.altstack.sp.wrapping_add(t.altstack.size)
    } else {
        t.regs.rsp.wrapping_sub(128) // the red zone
    };
    sp = sp.wrapping_sub(xsave as u64 + 4) & !63;
    let fp = sp;
    sp = ((sp.wrapping_sub(FRAME_SIZE)) & !15).wrapping_sub(8);
    if act.flags & SA_RESTORER == 0 {
        // x86-64 has no kernel-provided return trampoline.
        fail(t);
        return false;
    }

    let oldmask = t.saved_mask.take().unwrap_or_else(|| t.shared.sigmask.load(Ordering::Relaxed));
    let r = t.regs;
    let mut f = vec![0u8; FRAME_SIZE as usize];
    put(&mut f, 0, &act.restorer.to_le_bytes());
    let xstate = k.xsave_size > 576 || crate::arch::percpu::xsave_enabled();
    let uc_flags = UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS | if xstate { UC_FP_XSTATE } else { 0 };
    put(&mut f, UC_OFF, &uc_flags.to_le_bytes());
    put(&mut f, UC_OFF + 16, &t.altstack.sp.to_le_bytes());
    let ss_flags = if on_alt { SS_ONSTACK } else { t.altstack.flags & SS_DISABLE };
    put(&mut f, UC_OFF + 24, &ss_flags.to_le_bytes());
    put(&mut f, UC_OFF + 32, &t.altstack.size.to_le_bytes());
    let gprs = [r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rdi, r.rsi, r.rbp, r.rbx, r.rdx, r.rax, r.rcx, r.rsp, r.rip, r.rflags];
    for (i, v) in gprs.iter().enumerate() {
        put(&mut f, MCTX_OFF + i * 8, &v.to_le_bytes());
    }
    put(&mut f, MCTX_OFF + 144, &(r.cs as u16).to_le_bytes());
    put(&mut f, MCTX_OFF + 150, &(r.ss as u16).to_le_bytes());
    let (vector, err, cr2) = crate::arch::percpu::last_exception();
    let fault = info.is_fault(sig);
    if fault {
        put(&mut f, MCTX_OFF + 152, &err.to_le_bytes());
        put(&mut f, MCTX_OFF + 160, &vector.to_le_bytes());
        put(&mut f, MCTX_OFF + 176, &cr2.to_le_bytes());
    }
    put(&mut f, MCTX_OFF + 168, &oldmask.to_le_bytes());
    put(&mut f, MCTX_OFF + 184, &fp.to_le_bytes());
    put(&mut f, SIGMASK_OFF, &oldmask.to_le_bytes());
    put(&mut f, INFO_OFF, &super::signal::user_siginfo(sig, info));

    let mut fpu = t.fpu.bytes()[..xsave].to_vec();
    if xstate {
        put(&mut fpu, 464, &FP_XSTATE_MAGIC1.to_le_bytes());
        put(&mut fpu, 468, &(xsave as u32 + 4).to_le_bytes());
        put(&mut fpu, 472, &crate::arch::percpu::xcr0().to_le_bytes());
        put(&mut fpu, 480, &(xsave as u32).to_le_bytes());
    }
    let ok = {
        let mut mm = t.mm.lock();
        mm.copy_out(fp, &fpu).is_ok()
            && mm.copy_out(fp + xsave as u64, &FP_XSTATE_MAGIC2.to_le_bytes()).is_ok()
            && mm.copy_out(sp, &f).is_ok()
    };
    if !ok {
        fail(t);
        return false;
    }
    let mut mask = oldmask | act.mask;
    if act.flags & SA_NODEFER == 0 {
        mask |= bit(sig);
    }
    t.shared.sigmask.store(mask & !(bit(SIGKILL) | bit(SIGSTOP)), Ordering::Relaxed);
    if act.flags & SA_RESETHAND != 0 {
        t.proc.sighand.lock()[sig as usize - 1].handler = super::signal::SIG_DFL;
    }
    t.regs.rsp = sp;
    t.regs.rip = act.handler;
    t.regs.rdi = u64::from(sig);
    t.regs.rsi = sp + INFO_OFF as u64;
    t.regs.rdx = sp + UC_OFF as u64;
    t.regs.rax = 0;
    t.regs.rflags &= !(0x100 | 0x400 | 0x1_0000); // TF, DF, RF
    t.regs.cs = u64::from(abi::layout::SEL_UCODE);
    t.regs.ss = u64::from(abi::layout::SEL_UDATA);
    t.fpu.reset();
    true
}

/// The frame could not be built or read back: the process dies of SIGSEGV.
fn fail(t: &mut Task) {
    kill_group(&t.proc, ExitReason::Signaled(SIGSEGV));
    t.exit = Some(ExitReason::Signaled(SIGSEGV));
}

/// Checks an FPU image from user memory before XRSTOR/FXRSTOR sees it.
fn fpu_image_ok(b: &[u8], xstate: bool, xcr0: u64) -> bool {
    let mxcsr = u32::from_le_bytes([b[24], b[25], b[26], b[27]]);
    if mxcsr & 0xffff_0000 != 0 {
        return false;
    }
    if !xstate {
        return true;
    }
    let xstate_bv = get_u64(b, 512);
    let xcomp_bv = get_u64(b, 520);
    xstate_bv & !xcr0 == 0 && xcomp_bv == 0 && b[528..576].iter().all(|&x| x == 0)
}

pub fn sys_rt_sigreturn(t: &mut Task, _a: &crate::syscalls::Args) -> SysResult {
    t.keep_regs = true;
    let uc = t.regs.rsp; // the handler's `ret` popped pretcode
    let mut f = vec![0u8; FRAME_SIZE as usize - 8];
    if t.mm.lock().copy_in(uc, &mut f).is_err() {
        fail(t);
        return Ok(0);
    }
    let m = 40; // mcontext within ucontext
    let g = |i: usize| get_u64(&f, m + i * 8);
    let xsave = super::get().xsave_size;
    let fp = g(23);
    let xstate = crate::arch::percpu::xsave_enabled();
    if fp != 0 {
        let mut img = vec![0u8; xsave];
        if t.mm.lock().copy_in(fp, &mut img).is_err() || !fpu_image_ok(&img, xstate, crate::arch::percpu::xcr0()) {
            fail(t);
            return Ok(0);
        }
        // The software-reserved bytes are ours to clear.
        img[464..512].fill(0);
        t.fpu.bytes_mut()[..xsave].copy_from_slice(&img);
    } else {
        t.fpu.reset();
    }
    let r = &mut t.regs;
    r.r8 = g(0);
    r.r9 = g(1);
    r.r10 = g(2);
    r.r11 = g(3);
    r.r12 = g(4);
    r.r13 = g(5);
    r.r14 = g(6);
    r.r15 = g(7);
    r.rdi = g(8);
    r.rsi = g(9);
    r.rbp = g(10);
    r.rbx = g(11);
    r.rdx = g(12);
    r.rax = g(13);
    r.rcx = g(14);
    r.rsp = g(15);
    r.rip = g(16);
    r.rflags = (r.rflags & !FIX_EFLAGS) | (g(17) & FIX_EFLAGS) | 0x200;
    r.cs = u64::from(abi::layout::SEL_UCODE);
    r.ss = u64::from(abi::layout::SEL_UDATA);
    r.orig_rax = u64::MAX;
    if r.rip >= abi::layout::USER_END || r.rsp >= abi::layout::USER_END {
        // A non-canonical or kernel address would fault the return itself.
        fail(t);
        return Ok(0);
    }
    let mask = get_u64(&f, 296);
    t.shared.sigmask.store(mask & !(bit(SIGKILL) | bit(SIGSTOP)), Ordering::Relaxed);
    // uc_stack: re-applies sigaltstack, errors ignored as Linux does.
    let (ss_sp, ss_flags, ss_size) = (get_u64(&f, 8), u32::from_le_bytes([f[16], f[17], f[18], f[19]]), get_u64(&f, 24));
    if ss_flags & SS_DISABLE != 0 {
        t.altstack = super::signal::ALTSTACK_DISABLED;
    } else if ss_size >= 2048 {
        t.altstack = super::signal::SigAltStack { sp: ss_sp, flags: 0, pad: 0, size: ss_size };
    }
    Ok(t.regs.rax)
}
