//! Entry and exit trampolines between the application (guest user mode)
//! and the sentry (guest supervisor mode).
//!
//! Model (like gVisor's `Context.Switch`): the sentry calls
//! `rv_switch_to_user`, which saves the sentry's callee-saved registers and
//! stack pointer in the per-CPU block, loads the application's registers
//! from the current `UserRegs` and returns to user mode. A `syscall` or an
//! exception from user mode stores the application's registers back into
//! that `UserRegs`, saves its FPU/XSAVE state, restores the sentry's stack
//! and "returns" from `rv_switch_to_user` with the reason in `rax`
//! (0 = syscall, 1 = exception). So the sentry is ordinary Rust code on a
//! per-task kernel stack; only this file is assembly.
//!
//! Per-CPU block (GS base), offsets used below — must match `percpu.rs`:
//! 0x08 user rsp scratch, 0x10 sentry rsp, 0x18 *UserRegs, 0x20 *fpu area,
//! 0x28 xcr0 (u64), 0x30 flags (bit0 PVM, bit1 XSAVE, bit2 fast return:
//! rcx == rip and r11 == rflags, so PVM's sysret-like `int $0x19` restores
//! everything), 0x38 vector,
//! 0x40 error code, 0x48 cr2, 0x50 VA of the PVM VIF CR2 cell, 0x58 scratch,
//! 0x70 the FPU area whose state is live in this CPU (see below).
//!
//! FPU state is saved lazily. A full XSAVE and XRSTOR cost ~400 cycles
//! here (most of a trivial syscall's time in the sentry), yet the sentry
//! only ever touches XMM0-15: it is built for the baseline x86-64 target
//! (no VEX/AVX code, which would clobber the upper YMM halves: legacy SSE
//! instructions preserve them), never uses x87/MMX and never writes MXCSR
//! or PKRU. So entry saves just XMM0-15 into the task's area (FXSAVE/XSAVE
//! legacy layout, byte 160) and records the area at 0x70: the rest of the
//! application's FPU state stays in the registers. Returning to the same
//! area reloads XMM0-15 alone. Anything that needs the whole area (a switch
//! to another kernel thread, signal frames, fork, exec, sigreturn) first
//! calls `percpu::spill_fpu`, which completes the area and clears 0x70; the
//! next return then does a full XRSTOR.
//!
//! `UserRegs` is laid out like Linux's `pt_regs` (168 bytes), so the
//! syscall path can build it with pushes.

core::arch::global_asm!(
    r#"
    .section .text.rv_entry,"ax"
    .balign 16
    .globl rv_switch_to_user
rv_switch_to_user:
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %gs:0x10
    mov %gs:0x20, %rdi
    /* The rest of this area's state is still in the registers: only the
       XMM registers the sentry may have used need reloading. */
    cmp %rdi, %gs:0x70
    jne 5f
    movaps 160(%rdi), %xmm0
    movaps 176(%rdi), %xmm1
    movaps 192(%rdi), %xmm2
    movaps 208(%rdi), %xmm3
    movaps 224(%rdi), %xmm4
    movaps 240(%rdi), %xmm5
    movaps 256(%rdi), %xmm6
    movaps 272(%rdi), %xmm7
    movaps 288(%rdi), %xmm8
    movaps 304(%rdi), %xmm9
    movaps 320(%rdi), %xmm10
    movaps 336(%rdi), %xmm11
    movaps 352(%rdi), %xmm12
    movaps 368(%rdi), %xmm13
    movaps 384(%rdi), %xmm14
    movaps 400(%rdi), %xmm15
    jmp 2f
5:  testb $2, %gs:0x30
    jz 1f
    mov %gs:0x28, %eax
    mov %gs:0x2c, %edx
    xrstor64 (%rdi)
    jmp 2f
1:  fxrstor64 (%rdi)
2:  mov %gs:0x18, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rax
    pop %rcx
    pop %rdx
    pop %rsi
    pop %rdi
    add $8, %rsp
    testb $1, %gs:0x30
    jz 3f
    testb $4, %gs:0x30
    jz 4f
    /* sysret-like: rcx = rip and r11 = rflags already (checked by the
       sentry), so only the stack pointer needs loading. */
    mov 24(%rsp), %rsp
    int $0x19
    ud2
4:  int $0x17
    ud2
3:  iretq

    .balign 16
    .globl rv_syscall_entry
rv_syscall_entry:
    mov %rsp, %gs:0x08
    mov %gs:0x18, %rsp
    add $168, %rsp
    pushq $0x2b
    pushq %gs:0x08
    push %r11
    pushq $0x33
    push %rcx
    push %rax
    push %rdi
    push %rsi
    push %rdx
    push %rcx
    push %rax
    push %r8
    push %r9
    push %r10
    push %r11
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    xor %ebx, %ebx
    jmp rv_to_sentry

/* ebx = reason. Saves XMM0-15 (the FPU state the sentry may clobber; the
   rest stays live, see the top of this file) and returns from
   rv_switch_to_user. */
rv_to_sentry:
    mov %gs:0x20, %rdi
    movaps %xmm0, 160(%rdi)
    movaps %xmm1, 176(%rdi)
    movaps %xmm2, 192(%rdi)
    movaps %xmm3, 208(%rdi)
    movaps %xmm4, 224(%rdi)
    movaps %xmm5, 240(%rdi)
    movaps %xmm6, 256(%rdi)
    movaps %xmm7, 272(%rdi)
    movaps %xmm8, 288(%rdi)
    movaps %xmm9, 304(%rdi)
    movaps %xmm10, 320(%rdi)
    movaps %xmm11, 336(%rdi)
    movaps %xmm12, 352(%rdi)
    movaps %xmm13, 368(%rdi)
    movaps %xmm14, 384(%rdi)
    movaps %xmm15, 400(%rdi)
    mov %rdi, %gs:0x70
    mov %ebx, %eax
    mov %gs:0x10, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    cld
    ret

/* Exceptions. Stack on entry: [vector][error][rip][cs][rflags][rsp][ss]. */
rv_exc_common:
    testb $3, 24(%rsp)
    jz rv_kernel_exc
    mov %rax, %gs:0x58
    mov %gs:0x18, %rax
    mov %r15, 0(%rax)
    mov %r14, 8(%rax)
    mov %r13, 16(%rax)
    mov %r12, 24(%rax)
    mov %rbp, 32(%rax)
    mov %rbx, 40(%rax)
    mov %r11, 48(%rax)
    mov %r10, 56(%rax)
    mov %r9, 64(%rax)
    mov %r8, 72(%rax)
    mov %rcx, 88(%rax)
    mov %rdx, 96(%rax)
    mov %rsi, 104(%rax)
    mov %rdi, 112(%rax)
    mov %gs:0x58, %rbx
    mov %rbx, 80(%rax)
    movq $-1, 120(%rax)
    mov 16(%rsp), %rbx
    mov %rbx, 128(%rax)
    mov 24(%rsp), %rbx
    mov %rbx, 136(%rax)
    mov 32(%rsp), %rbx
    mov %rbx, 144(%rax)
    mov 40(%rsp), %rbx
    mov %rbx, 152(%rax)
    mov 48(%rsp), %rbx
    mov %rbx, 160(%rax)
    mov 0(%rsp), %rbx
    mov %rbx, %gs:0x38
    mov 8(%rsp), %rbx
    mov %rbx, %gs:0x40
    testb $1, %gs:0x30
    jz 1f
    mov %gs:0x50, %rbx
    mov (%rbx), %rbx
    jmp 2f
1:  mov %cr2, %rbx
2:  mov %rbx, %gs:0x48
    mov $1, %ebx
    jmp rv_to_sentry

/* An exception in the sentry itself: a bug. Hand the frame to Rust. */
rv_kernel_exc:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %rdi
    and $-16, %rsp
    call rv_kernel_fault
    ud2

    .balign 16
    .globl rv_exc_stubs
rv_exc_stubs:
    .irp v,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .balign 16
    .if (\v==8)||(\v==10)||(\v==11)||(\v==12)||(\v==13)||(\v==14)||(\v==17)||(\v==21)||(\v==29)||(\v==30)
    .else
    pushq $0
    .endif
    pushq $\v
    jmp rv_exc_common
    .endr
    .text
"#,
    options(att_syntax)
);

/// Reason codes returned by `rv_switch_to_user`.
pub const REASON_SYSCALL: u64 = 0;
/// See [`REASON_SYSCALL`].
pub const REASON_EXCEPTION: u64 = 1;

extern "C" {
    /// Runs the application until its next syscall or exception.
    pub fn rv_switch_to_user() -> u64;
    /// `syscall` entry (LSTAR). The same code serves both flavours: PVM
    /// pre-swaps GS, and on hardware virtualization GS_BASE and
    /// KERNEL_GS_BASE both hold the per-CPU block, so no `swapgs` is needed.
    pub fn rv_syscall_entry();
    /// Start of the 32 exception stubs, 16 bytes apart.
    pub fn rv_exc_stubs();
}
