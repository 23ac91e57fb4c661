//! Preemption of application code that makes no syscalls. The sentry has
//! no timer interrupt; instead, while other tasks are runnable it sets
//! `Preempt::wanted` in its vCPU's mailbox page, and the VMM's ticker
//! interrupts the vCPU and, if it is in user mode, moves its RIP to the
//! trampoline page (`ud2`), saving the real RIP. The resulting #UD at the
//! trampoline brings every register into the sentry untouched.
//!
//! `wanted` and `saved_rip` are per vCPU; the VMM's `control` and `net`
//! flags live in vCPU 0's block only and are taken by whichever vCPU looks.

use abi::hypercall::Preempt;
use core::sync::atomic::{AtomicU64, Ordering};

/// vCPU 0's handshake block, which holds the sandbox-wide flags.
static GLOBAL_VA: AtomicU64 = AtomicU64::new(0);

/// Points at vCPU 0's handshake block (at boot).
pub fn init(va: u64) {
    GLOBAL_VA.store(va, Ordering::Relaxed);
}

/// The block with the VMM's sandbox-wide flags (`control`, `net`).
pub fn global_block() -> Option<*mut Preempt> {
    let p = GLOBAL_VA.load(Ordering::Relaxed);
    (p != 0).then_some(p as *mut Preempt)
}

/// This vCPU's handshake block.
fn block() -> Option<*mut Preempt> {
    let b = crate::arch::percpu::block();
    (b != 0).then_some((b + abi::layout::vcpu::PREEMPT) as *mut Preempt)
}

/// vCPU `cpu`'s handshake block.
fn block_of(cpu: usize) -> Option<*mut Preempt> {
    let num = super::get().num_cpus as usize;
    (cpu < num).then(|| crate::mm::phys::pa_to_va(abi::layout::vcpu_block(cpu as u32) + abi::layout::vcpu::PREEMPT) as *mut Preempt)
}

/// Tells the VMM whether the application on this vCPU may be interrupted.
pub fn set_wanted(w: bool) {
    if let Some(p) = block() {
        // SAFETY: the block is this vCPU's, in the mailbox page (direct map);
        // the VMM reads it concurrently, hence volatile.
        unsafe { core::ptr::addr_of_mut!((*p).wanted).write_volatile(u64::from(w)) };
    }
}

/// Asks the VMM to interrupt the application running on vCPU `cpu` (a
/// signal or a waiting task needs that vCPU); it does at its next tick.
pub fn request_on(cpu: usize) {
    if let Some(p) = block_of(cpu) {
        // SAFETY: the block is vCPU `cpu`'s (direct map); a word store races
        // only with that vCPU's own `set_wanted`, which at worst asks again.
        unsafe { core::ptr::addr_of_mut!((*p).wanted).write_volatile(1) };
    }
}

/// The RIP the VMM saved when it redirected the application, if it did.
pub fn take_saved_rip() -> Option<u64> {
    let p = block()?;
    // SAFETY: as in `set_wanted`; the VMM wrote it before resuming us.
    let rip = unsafe { core::ptr::addr_of_mut!((*p).saved_rip).read_volatile() };
    if rip == 0 {
        return None;
    }
    // SAFETY: as above.
    unsafe { core::ptr::addr_of_mut!((*p).saved_rip).write_volatile(0) };
    Some(rip)
}

/// Takes the VMM's network bits (`Preempt::net`, `abi::net::NET_*`).
pub fn take_net_flag() -> u64 {
    let Some(p) = global_block() else { return 0 };
    // SAFETY: as in `set_wanted`; the field is an aligned u64 the VMM
    // updates atomically (fetch_or), so it is accessed as an atomic here.
    let f = unsafe { &*(core::ptr::addr_of_mut!((*p).net) as *const core::sync::atomic::AtomicU64) };
    if f.load(Ordering::Relaxed) == 0 {
        return 0;
    }
    f.swap(0, Ordering::SeqCst)
}
