//! Preemption of application code that makes no syscalls. The sentry has
//! no timer interrupt; instead, while other tasks are runnable it sets
//! `Preempt::wanted` in its vCPU's mailbox page, and the VMM's ticker
//! interrupts the vCPU and, if it is in user mode, moves its RIP to the
//! trampoline page (`ud2`), saving the real RIP. The resulting #UD at the
//! trampoline brings every register into the sentry untouched.

use abi::hypercall::Preempt;
use core::sync::atomic::{AtomicU64, Ordering};

static PREEMPT_VA: AtomicU64 = AtomicU64::new(0);

/// Points at this vCPU's handshake block.
pub fn init(va: u64) {
    PREEMPT_VA.store(va, Ordering::Relaxed);
}

/// This vCPU's handshake block.
pub fn block_ptr() -> Option<*mut Preempt> {
    block()
}

fn block() -> Option<*mut Preempt> {
    let p = PREEMPT_VA.load(Ordering::Relaxed);
    (p != 0).then_some(p as *mut Preempt)
}

/// Tells the VMM whether the application on this vCPU may be interrupted.
pub fn set_wanted(w: bool) {
    if let Some(p) = block() {
        // SAFETY: the block is this vCPU's, in the mailbox page (direct map);
        // the VMM reads it concurrently, hence volatile.
        unsafe { core::ptr::addr_of_mut!((*p).wanted).write_volatile(u64::from(w)) };
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
    let Some(p) = block() else { return 0 };
    // SAFETY: as in `set_wanted`; the field is an aligned u64 the VMM
    // updates atomically (fetch_or), so it is accessed as an atomic here.
    let f = unsafe { &*(core::ptr::addr_of_mut!((*p).net) as *const core::sync::atomic::AtomicU64) };
    if f.load(Ordering::Relaxed) == 0 {
        return 0;
    }
    f.swap(0, Ordering::SeqCst)
}
