//! Switching between sentry kernel threads (one per task, each on its own
//! kernel stack). Only callee-saved registers need saving: the switch is a
//! function call from the compiler's point of view. The per-CPU "sentry
//! rsp" of `rv_switch_to_user` is per call, so a task that blocks inside a
//! syscall and later resumes finds its own saved value on its own stack.

core::arch::global_asm!(
    r#"
    .section .text.rv_switch,"ax"
    .balign 16
    .globl rv_context_switch
/* rdi = where to save the current rsp, rsi = the rsp to resume. */
rv_context_switch:
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, (%rdi)
    mov %rsi, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    ret

    .balign 16
    .globl rv_thread_start
/* First "return" of a new kernel thread: r12 = entry, r13 = argument. */
rv_thread_start:
    mov %r13, %rdi
    xor %ebp, %ebp
    call *%r12
    ud2
    .text
"#,
    options(att_syntax)
);

extern "C" {
    /// Saves the current kernel context into `*save` and resumes `to`.
    pub fn rv_context_switch(save: *mut u64, to: u64);
    /// Entry trampoline of new kernel threads.
    pub fn rv_thread_start();
}

/// Prepares a fresh kernel stack (top at `top`, 16-byte aligned) so that
/// switching to the returned rsp calls `entry(arg)`.
///
/// # Safety
/// `[top - 72, top)` must be writable memory owned by the new thread.
pub unsafe fn prepare_stack(top: u64, entry: extern "C" fn(u64) -> !, arg: u64) -> u64 {
    // Layout popped by rv_context_switch: r15 r14 r13 r12 rbx rbp, then ret.
    let frame: [u64; 8] = [0, 0, arg, entry as usize as u64, 0, 0, rv_thread_start as *const () as u64, 0];
    // After `ret` pops the entry address, rsp must be 16-byte aligned for
    // the `call` in rv_thread_start: sp = top - 72.
    let sp = top - 72;
    // SAFETY: guaranteed by the caller.
    unsafe { core::ptr::copy_nonoverlapping(frame.as_ptr(), sp as *mut u64, frame.len()) };
    sp
}

/// Loads an address space's supervisor root (PVM flips to the user root
/// at X+4 KiB by itself).
pub fn load_cr3(root: u64) {
    #[cfg(not(test))]
    // SAFETY: `root` is the supervisor PML4 of a live address space whose
    // upper half maps the sentry exactly like every other root.
    unsafe {
        core::arch::asm!("mov cr3, {}", in(reg) root, options(nostack, preserves_flags))
    };
    #[cfg(test)]
    let _ = root;
}
