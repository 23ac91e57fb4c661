//! The per-CPU block the GS base points at. Field offsets are used by the
//! assembly in `entry.rs`; the layout assertion below keeps them in step.

use crate::kernel::task::UserRegs;

/// Per-CPU data (one per vCPU, in the vCPU's block in guest memory).
#[repr(C)]
pub struct PerCpu {
    pub self_ptr: u64,
    pub user_rsp: u64,
    pub sentry_rsp: u64,
    pub regs: *mut UserRegs,
    pub fpu: *mut u8,
    pub xcr0: u64,
    /// bit0: PVM, bit1: XSAVE.
    pub flags: u64,
    pub vector: u64,
    pub error: u64,
    pub cr2: u64,
    pub vif_cr2: u64,
    pub scratch: u64,
    /// This vCPU's index (0 = the boot vCPU).
    pub cpu: u64,
    /// Direct-map address of this vCPU's block (mailbox, preemption
    /// handshake).
    pub block: u64,
    /// The FPU area whose application state is live in this CPU's
    /// registers, XMM0-15 excepted (saved in the area); 0 if none. See
    /// `entry.rs`.
    pub fpu_live: u64,
}

const _: () = assert!(core::mem::offset_of!(PerCpu, regs) == 0x18);
const _: () = assert!(core::mem::offset_of!(PerCpu, flags) == 0x30);
const _: () = assert!(core::mem::offset_of!(PerCpu, vif_cr2) == 0x50);
const _: () = assert!(core::mem::offset_of!(PerCpu, fpu_live) == 0x70);

/// Byte offset of XMM0 in the FXSAVE/XSAVE legacy region; XMM0-15 take
/// 256 bytes from there.
const XMM_OFF: usize = 160;
/// Byte offset of XSTATE_BV in the XSAVE header.
const XSTATE_BV_OFF: usize = 512;

/// `PerCpu::flags` bit: return with `int $0x19` (see entry.rs).
const FLAG_FAST_RETURN: u64 = 4;

/// Returns this vCPU's per-CPU block.
pub fn get() -> *mut PerCpu {
    let p: u64;
    // SAFETY: GS base points at the per-CPU block whose first field is its
    // own address (set in `init`).
    unsafe { core::arch::asm!("mov %gs:0, {}", out(reg) p, options(att_syntax, nostack, readonly, preserves_flags)) };
    p as *mut PerCpu
}

/// Initializes the per-CPU block at `va` (the address GS base holds) of
/// vCPU `cpu`, whose block is at `block` (direct map).
///
/// # Safety
/// `va` must be this vCPU's per-CPU page, mapped writable, and GS base
/// must already point at it.
pub unsafe fn init(va: u64, pvm: bool, xcr0: u64, vif_cr2_va: u64, cpu: u32, block: u64) {
    let p = va as *mut PerCpu;
    // SAFETY: guaranteed by the caller; the page is ours alone.
    unsafe {
        p.write(PerCpu {
            self_ptr: va,
            user_rsp: 0,
            sentry_rsp: 0,
            regs: core::ptr::null_mut(),
            fpu: core::ptr::null_mut(),
            xcr0,
            flags: u64::from(pvm) | if xcr0 != 0 { 2 } else { 0 },
            vector: 0,
            error: 0,
            cr2: 0,
            vif_cr2: vif_cr2_va,
            scratch: 0,
            cpu: u64::from(cpu),
            block,
            fpu_live: 0,
        })
    };
}

/// This vCPU's index; 0 before `init` (only the boot vCPU runs then).
pub fn cpu() -> usize {
    let p = get();
    if p.is_null() {
        return 0;
    }
    // SAFETY: a non-null self pointer means `init` ran: the block is valid
    // for the life of the sentry and `cpu` never changes afterwards.
    unsafe { (*p).cpu as usize }
}

/// Direct-map address of this vCPU's block, or 0 before `init`.
pub fn block() -> u64 {
    let p = get();
    if p.is_null() {
        return 0;
    }
    // SAFETY: as in `cpu`.
    unsafe { (*p).block }
}

/// The exception that last brought the CPU into the sentry.
pub fn last_exception() -> (u64, u64, u64) {
    let p = get();
    // SAFETY: the per-CPU block is valid for the life of the sentry; these
    // fields are written only by this vCPU's entry code.
    unsafe { ((*p).vector, (*p).error, (*p).cr2) }
}

/// Runs the application with `regs` and `fpu` until it enters the sentry;
/// returns `entry::REASON_*`.
///
/// # Safety
/// `regs` and `fpu` must stay valid (and `fpu` 64-byte aligned, large
/// enough for the XSAVE area) until this returns.
pub unsafe fn enter_user(regs: *mut UserRegs, fpu: *mut u8) -> u64 {
    let p = get();
    // SAFETY: per-CPU block valid; the caller guarantees the pointers.
    unsafe {
        let r = &*regs;
        // The sysret-like return only restores rip from rcx and rflags from
        // r11 (minus IOPL/NT/RF/VM, plus IF): usable when they already match.
        let fast = r.rcx == r.rip && r.r11 == r.rflags && r.rflags & 0x37000 == 0 && r.rflags & 0x200 != 0;
        (*p).flags = ((*p).flags & !FLAG_FAST_RETURN) | if fast { FLAG_FAST_RETURN } else { 0 };
        (*p).regs = regs;
        (*p).fpu = fpu;
        super::entry::rv_switch_to_user()
    }
}

/// True when the entry code saves state with XSAVE (else FXSAVE).
pub fn xsave_enabled() -> bool {
    // SAFETY: the per-CPU block is valid for the life of the sentry.
    unsafe { (*get()).flags & 2 != 0 }
}

/// XCR0 in force (0 without XSAVE).
pub fn xcr0() -> u64 {
    // SAFETY: as above.
    unsafe { (*get()).xcr0 }
}

/// Completes the FPU area whose state is live in this CPU (if any) and
/// makes the area the only copy: the next return to user mode restores it
/// in full. Must run before the registers may be reloaded for another
/// area (a switch of kernel thread) and before the area is read or
/// written as a whole.
pub fn spill_fpu() {
    let p = get();
    if p.is_null() {
        return;
    }
    // SAFETY: the per-CPU block is valid for the life of the sentry and
    // only this vCPU touches `fpu_live`.
    let area = unsafe { core::mem::replace(&mut (*p).fpu_live, 0) } as *mut u8;
    if area.is_null() {
        return;
    }
    let mut xmm = [0u8; 256];
    // SAFETY: `fpu_live` is only ever set by the entry code to the area of
    // the task that runs on this CPU (64-byte aligned, at least 576 bytes,
    // alive: `forget_fpu` clears it before the area is freed). The
    // registers still hold that task's x87, AVX-upper, MXCSR and PKRU state
    // (the sentry never changes them), so XSAVE/FXSAVE captures them; its
    // XMM slots would get the sentry's values, so the application's saved
    // XMM0-15 are put back after it. XSTATE_BV bit 1 (SSE) is set because
    // the slots now hold meaningful values.
    unsafe {
        core::ptr::copy_nonoverlapping(area.add(XMM_OFF), xmm.as_mut_ptr(), xmm.len());
        if (*p).flags & 2 != 0 {
            let xcr0 = (*p).xcr0;
            core::arch::asm!("xsave64 ({})", in(reg) area, in("eax") xcr0 as u32, in("edx") (xcr0 >> 32) as u32,
                options(att_syntax, nostack, preserves_flags));
            let bv = area.add(XSTATE_BV_OFF).cast::<u64>();
            bv.write(bv.read() | 2);
        } else {
            core::arch::asm!("fxsave64 ({})", in(reg) area, options(att_syntax, nostack, preserves_flags));
        }
        core::ptr::copy_nonoverlapping(xmm.as_ptr(), area.add(XMM_OFF), xmm.len());
    }
}

/// `spill_fpu` if `area`'s state is the one live in this CPU.
pub fn spill_fpu_of(area: *const u8) {
    let p = get();
    // SAFETY: as in `spill_fpu`.
    if !p.is_null() && unsafe { (*p).fpu_live } == area as u64 {
        spill_fpu();
    }
}

/// The FPU area `area` is about to be freed: it must not be taken for the
/// live one any more (a new area could be allocated at its address). Its
/// state in the registers is simply dropped.
pub fn forget_fpu(area: *const u8) {
    let p = get();
    if p.is_null() {
        return;
    }
    // SAFETY: as in `spill_fpu`.
    unsafe {
        if (*p).fpu_live == area as u64 {
            (*p).fpu_live = 0;
        }
    }
}
