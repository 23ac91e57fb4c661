//! A task: one application thread (Linux: `task_struct`).
//!
//! Ownership: a `Task` is only touched by its own kernel thread (`&mut
//! Task`); what others may touch is in `TaskShared` (atomics) and in the
//! shared, locked parts (memory, files, fs context, signal handlers).

use alloc::string::String;
use alloc::sync::Arc;
use core::alloc::Layout;
use spin::Mutex;

use crate::fs::FdTable;
use crate::kernel::process::Process;
use crate::kernel::sched::TaskShared;
use crate::kernel::signal::SigAltStack;
use crate::mm::MemoryManager;

/// The application's registers, laid out like Linux's `pt_regs` (the entry
/// assembly depends on this order).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct UserRegs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}
const _: () = assert!(core::mem::size_of::<UserRegs>() == 168);

impl UserRegs {
    /// Registers for a fresh program: everything zero but the entry state.
    pub fn new_user(rip: u64, rsp: u64) -> UserRegs {
        UserRegs {
            rip,
            rsp,
            cs: u64::from(abi::layout::SEL_UCODE),
            ss: u64::from(abi::layout::SEL_UDATA),
            rflags: 0x202,
            ..UserRegs::default()
        }
    }
}

/// A 64-byte aligned FXSAVE/XSAVE area in the sentry heap.
///
/// While its task is in the sentry, part of the state may still be in the
/// CPU's registers (see `arch::entry`): every access to the area as a
/// whole goes through the methods below, which complete it first.
pub struct FpuArea {
    ptr: *mut u8,
    layout: Layout,
}

/// Makes `area` complete in memory if its state is live in this CPU.
fn spill(area: *const u8) {
    // Unit tests run in a host process without the per-CPU block; there
    // the area is only ever in memory.
    #[cfg(not(test))]
    crate::arch::percpu::spill_fpu_of(area);
    #[cfg(test)]
    let _ = area;
}

impl FpuArea {
    /// A copy of another area (fork).
    pub fn clone_from_area(other: &FpuArea) -> FpuArea {
        spill(other.ptr);
        let a = FpuArea::new(other.layout.size());
        // SAFETY: both areas have the same size and are distinct allocations.
        unsafe { core::ptr::copy_nonoverlapping(other.ptr, a.ptr, other.layout.size()) };
        a
    }

    /// Puts the area back in the initial state (signal handlers start so).
    pub fn reset(&mut self) {
        // The registers must not keep the old state either.
        spill(self.ptr);
        // SAFETY: the area is ours and at least 576 bytes.
        unsafe {
            core::ptr::write_bytes(self.ptr, 0, self.layout.size());
            self.ptr.cast::<u16>().write(0x37f);
            self.ptr.add(24).cast::<u32>().write(0x1f80);
        }
    }

    /// The saved state as bytes.
    pub fn bytes(&self) -> &[u8] {
        spill(self.ptr);
        // SAFETY: `ptr` is valid for `layout.size()` bytes while `self` lives.
        unsafe { core::slice::from_raw_parts(self.ptr, self.layout.size()) }
    }

    /// The saved state as mutable bytes (callers keep it valid for XRSTOR).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        spill(self.ptr);
        // SAFETY: as in `bytes`, exclusively borrowed.
        unsafe { core::slice::from_raw_parts_mut(self.ptr, self.layout.size()) }
    }

    /// A fresh area in the initial FPU state.
    pub fn new(size: usize) -> FpuArea {
        let layout = Layout::from_size_align(size.max(576), 64).unwrap_or(Layout::new::<[u8; 1024]>());
        // SAFETY: non-zero size.
        let ptr = unsafe { alloc::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            alloc::alloc::handle_alloc_error(layout);
        }
        // SAFETY: the area is at least 576 bytes; FCW at 0 and MXCSR at 24
        // get their reset values (XSTATE_BV stays 0 = init state).
        unsafe {
            ptr.cast::<u16>().write(0x37f);
            ptr.add(24).cast::<u32>().write(0x1f80);
        }
        FpuArea { ptr, layout }
    }

    /// Raw pointer for the entry code.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr
    }
}

impl Drop for FpuArea {
    fn drop(&mut self) {
        #[cfg(not(test))]
        crate::arch::percpu::forget_fpu(self.ptr);
        // SAFETY: allocated in `new` with this layout.
        unsafe { alloc::alloc::dealloc(self.ptr, self.layout) };
    }
}

pub use super::creds::Creds;

/// Why a task stopped running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// exit/exit_group with a status.
    Exited(i32),
    /// Killed by a signal.
    Signaled(u32),
}

/// Filesystem context (Linux: `fs_struct`), shared by CLONE_FS.
#[derive(Clone)]
pub struct FsState {
    pub cwd: crate::vfs::Location,
    pub umask: u32,
}

/// An application thread. Fields shared with other threads sit behind
/// `Arc<Mutex<..>>` according to the clone flags that created it (CLONE_VM,
/// CLONE_FILES, CLONE_FS, CLONE_SIGHAND); `shared` is what the scheduler
/// and signal senders touch; everything else is the owner's alone.
pub struct Task {
    pub regs: UserRegs,
    pub fpu: FpuArea,
    pub fs_base: u64,
    pub tid: u32,
    pub shared: Arc<TaskShared>,
    pub proc: Arc<Process>,
    pub mm: Arc<Mutex<MemoryManager>>,
    pub fds: Arc<Mutex<FdTable>>,
    pub fs: Arc<Mutex<FsState>>,
    pub altstack: SigAltStack,
    /// The current syscall was interrupted and may be restarted
    /// (ERESTARTSYS); settled by signal handling before returning to user.
    pub restart: bool,
    /// The interrupted call was ERESTARTNOHAND.
    pub restart_nohand: bool,
    /// The interrupted call was ERESTARTNOINTR: restarted even after a
    /// handler without SA_RESTART.
    pub restart_nointr: bool,
    /// A handler frame is being set up (finish_restart's view).
    pub handler_running: bool,
    /// Dispatch must leave the registers as the handler set them
    /// (rt_sigreturn restores them all).
    pub keep_regs: bool,
    /// The mask to restore after the handler of a signal that ended
    /// rt_sigsuspend/pselect (Linux: saved_sigmask).
    pub saved_mask: Option<u64>,
    /// This thread's credentials, replaced whole when they change.
    pub creds: Arc<Creds>,
    pub clear_child_tid: u64,
    pub robust_list: (u64, u64),
    /// Set when this thread must stop running (its own exit or the group's).
    pub exit: Option<ExitReason>,
    /// Thread name (PR_SET_NAME, /proc/self/comm), NUL padded.
    pub comm: [u8; 16],
    /// PR_SET_PDEATHSIG signal.
    pub pdeathsig: u32,
    /// PR_SET_DUMPABLE value.
    pub dumpable: bool,
    /// PR_SET_NO_NEW_PRIVS.
    pub no_new_privs: bool,
    /// The thread's own seccomp filters (or strict mode).
    pub seccomp: super::seccomp::TaskSeccomp,
    /// PR_SET_CHILD_SUBREAPER.
    pub subreaper: bool,
    /// Resource limits (cur, max) by RLIMIT_ number.
    pub rlimits: [(u64, u64); 16],
    /// The executable's path (for /proc/self/exe and AT_EXECFN).
    pub exe: String,
    /// The parent blocked in vfork until this child execs or exits.
    pub vfork_parent: Option<Arc<TaskShared>>,
}

impl Task {
    /// Process id (thread group id).
    pub fn pid(&self) -> u32 {
        self.proc.pid
    }

    /// Signals that could be delivered now.
    pub fn deliverable(&self) -> u64 {
        self.shared.deliverable(self.proc.pending())
    }
}
