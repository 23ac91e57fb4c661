//! Architecture code: the only place in the sentry (with low-level `mm`)
//! that uses `unsafe` for CPU state. Entry trampolines, the per-CPU block,
//! the IDT, FPU areas and privileged instructions. The difference between
//! PVM and hardware virtualization is confined to `flavour` checks here.

pub mod entry;
pub mod percpu;
pub mod switch;

use abi::boot::Flavour;
use core::sync::atomic::{AtomicBool, Ordering};

static PVM: AtomicBool = AtomicBool::new(true);

/// Records the flavour (once, at boot).
pub fn set_flavour(f: Flavour) {
    PVM.store(f == Flavour::Pvm, Ordering::Relaxed);
}

/// True on PVM.
pub fn is_pvm() -> bool {
    PVM.load(Ordering::Relaxed)
}

/// Reads the time-stamp counter.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc only reads the TSC; it does not exit under PVM.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Writes a model-specific register.
///
/// # Safety
/// The caller must know that writing `value` to `msr` keeps the CPU in a
/// state the sentry relies on (only used for LSTAR at boot).
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the caller guarantees the write is sound.
    unsafe {
        core::arch::asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
            options(nostack, preserves_flags))
    };
}

/// Sets the FS base of the current CPU (the application's TLS pointer).
pub fn set_fs_base(v: u64) {
    // SAFETY: CR4.FSGSBASE is set by the VMM; the sentry itself never uses
    // FS, so changing it only affects the application.
    unsafe { core::arch::asm!("wrfsbase {}", in(reg) v, options(nostack, preserves_flags)) };
}

/// Reads the FS base.
pub fn fs_base() -> u64 {
    let v: u64;
    // SAFETY: see `set_fs_base`; reading has no side effects.
    unsafe { core::arch::asm!("rdfsbase {}", out(reg) v, options(nostack, preserves_flags)) };
    v
}

/// Invalidates the TLB entry of one user page.
pub fn invlpg(va: u64) {
    // Unit tests run the memory manager in a host process, where invlpg
    // would fault.
    #[cfg(not(test))]
    // SAFETY: invlpg only drops a cached translation.
    unsafe {
        core::arch::asm!("invlpg ({})", in(reg) va, options(att_syntax, nostack, preserves_flags))
    };
    #[cfg(test)]
    let _ = va;
}

/// Drops every cached user translation of this vCPU.
pub fn flush_tlb() {
    #[cfg(not(test))]
    {
        if is_pvm() {
            // SAFETY: PVM's TLB-flush hypercall is served inside the host
            // kernel and returns here; it clobbers rax only (rbx, rcx, rdx
            // carry no arguments for it and are zeroed).
            unsafe {
                core::arch::asm!("push rbx", "xor ebx, ebx", "int 0x1b", "pop rbx",
                    inout("rax") abi::hypercall::PVM_HC_TLB_FLUSH => _,
                    inout("rcx") 0u64 => _, inout("rdx") 0u64 => _)
            };
        } else {
            // SAFETY: reloading CR3 with its current value only flushes
            // non-global TLB entries.
            unsafe {
                core::arch::asm!("mov {t}, cr3", "mov cr3, {t}", t = out(reg) _, options(nostack, preserves_flags))
            };
        }
    }
}

/// Fills vCPU `vcpu`'s IDT with the exception stubs and points LSTAR at
/// the syscall entry.
///
/// # Safety
/// `idt_va` must be the (zeroed, 4 KiB) IDT page the VMM loaded into IDTR
/// for this vCPU, mapped writable in the direct map.
pub unsafe fn install_idt_and_syscall(idt_va: u64) {
    let stubs = entry::rv_exc_stubs as *const () as u64;
    for v in 0..32u64 {
        let h = stubs + v * 16;
        // DPL 3 for #BP and #OF so `int3`/`into` from user mode reach them.
        let type_attr: u64 = if v == 3 || v == 4 { 0xee } else { 0x8e };
        let ist: u64 = if v == 8 { 1 } else { 0 };
        let lo = (h & 0xffff) | (u64::from(abi::layout::SEL_KCODE) << 16) | (ist << 32) | (type_attr << 40)
            | (((h >> 16) & 0xffff) << 48);
        let gate = (idt_va + v * 16) as *mut u64;
        // SAFETY: the caller guarantees the IDT page is ours and mapped;
        // v < 32 keeps the writes inside it.
        unsafe {
            gate.write_volatile(lo);
            gate.add(1).write_volatile(h >> 32);
        }
    }
    // SAFETY: LSTAR must point at the syscall entry before user code runs;
    // that is exactly what this sets.
    unsafe { wrmsr(0xc000_0082, entry::rv_syscall_entry as *const () as u64) };
}

/// Ends the current vCPU's work in a tight loop; used after a fatal error
/// once the VMM has been told.
pub fn halt_forever() -> ! {
    loop {
        core::hint::spin_loop();
    }
}
