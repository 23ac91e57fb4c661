//! The kernel proper: boot-time state shared by all tasks, and the loop
//! that runs a task — switch to the application, serve what brought it
//! back (a syscall or an exception), repeat.

pub mod cgroup;
pub mod clock;
pub mod control;
pub mod creds;
pub mod exec;
pub mod exit;
pub mod fork;
pub mod ipc;
pub mod itimer;
pub mod oom;
pub mod posix_timer;
pub mod process;
pub mod random;
pub mod sched;
pub mod seccomp;
pub mod sigframe;
pub mod spawn;
pub mod signal;
pub mod task;
pub mod vdso;
pub mod preempt;
pub mod wait;

use alloc::string::String;
use alloc::vec::Vec;
use spin::Once;

use crate::arch::{entry, percpu};
use task::{ExitReason, Task};

/// Facts fixed at boot.
pub struct Kernel {
    /// `uname` fields at boot: nodename, release, version (the names the
    /// sandbox may change live in `UTS`).
    pub uts: [String; 3],
    pub num_cpus: u32,
    pub xsave_size: usize,
    pub hwcap: u64,
    pub minsigstksz: u64,
    pub mem_size: u64,
    pub strace: bool,
    /// Log unsupported syscalls and other diagnostics to the host.
    pub debug: bool,
}

static KERNEL: Once<Kernel> = Once::new();

/// Longest host or domain name (Linux: __NEW_UTS_LEN).
pub const UTS_NAME_MAX: usize = 64;

/// The names sethostname/setdomainname change (Linux: the UTS namespace's
/// nodename and domainname); raw bytes, as Linux stores them.
pub struct Uts {
    pub nodename: Vec<u8>,
    pub domainname: Vec<u8>,
}

/// The sandbox's one UTS namespace.
pub static UTS: spin::RwLock<Uts> = spin::RwLock::new(Uts { nodename: Vec::new(), domainname: Vec::new() });

/// Sets the boot facts (once).
pub fn init(k: Kernel) {
    KERNEL.call_once(|| {
        let mut u = UTS.write();
        u.nodename = k.uts[0].as_bytes().iter().copied().take(UTS_NAME_MAX).collect();
        u.domainname = b"(none)".to_vec();
        k
    });
}

/// The boot facts.
pub fn get() -> &'static Kernel {
    // The kernel is initialized in `kmain` before any task runs; a missing
    // value is a sentry bug, reported as a panic.
    KERNEL.get().expect("kernel not initialized")
}

/// Maps an exception vector from user mode to the signal Linux sends.
pub fn signal_for_exception(vector: u64) -> u32 {
    match vector {
        0 | 16 | 19 => signal::SIGFPE, // #DE, #MF, #XM
        1 | 3 => signal::SIGTRAP,      // #DB, #BP
        6 => signal::SIGILL,           // #UD
        11 | 12 | 17 => signal::SIGBUS, // #NP, #SS, #AC
        _ => signal::SIGSEGV,          // #GP, #PF, #OF, #BR, ...
    }
}

/// The kernel thread of a task: runs it until it exits.
pub extern "C" fn task_entry(arg: u64) -> ! {
    // SAFETY: `spawn_task` passed a pointer from `Box::into_raw`, and this
    // thread is its only user.
    let mut t = unsafe { alloc::boxed::Box::from_raw(arg as *mut Task) };
    let why = run(&mut t);
    exit::exit_task(t, why)
}

/// Starts a task on a kernel thread of its own.
pub fn spawn_task(t: alloc::boxed::Box<Task>) {
    let shared = t.shared.clone();
    sched::spawn(&shared, task_entry, alloc::boxed::Box::into_raw(t) as u64);
}

/// Runs `t` until it must exit; returns why.
pub fn run(t: &mut Task) -> ExitReason {
    loop {
        if let Some(e) = t.exit {
            return e;
        }
        signal::handle_pending(t);
        if let Some(e) = t.exit {
            return e;
        }
        // WRFSBASE costs ~10x RDFSBASE: skip it when the CPU holds the
        // value already (the same task came back from a syscall).
        if crate::arch::fs_base() != t.fs_base {
            crate::arch::set_fs_base(t.fs_base);
        }
        // A CPU-time timer needs the ticker too, to fire in a busy loop.
        preempt::set_wanted(sched::others_waiting() || t.proc.cpu_itimers_armed.load(core::sync::atomic::Ordering::Relaxed));
        let fpu = t.fpu.as_mut_ptr();
        sched::to_user(&t.shared);
        // Other vCPUs may run the sentry while this one is in user mode.
        sched::bkl_unlock();
        // SAFETY: `t.regs` and `t.fpu` live in `t`, which outlives the call;
        // the FPU area is 64-byte aligned and sized for the XSAVE features.
        let reason = unsafe { percpu::enter_user(&mut t.regs, fpu) };
        sched::bkl_lock();
        sched::from_user(&t.shared);
        t.fs_base = crate::arch::fs_base();
        if reason == entry::REASON_SYSCALL {
            crate::syscalls::dispatch(t);
        } else {
            handle_exception(t);
        }
    }
}

fn handle_exception(t: &mut Task) {
    let (vector, error, cr2) = percpu::last_exception();
    if vector == 6 && t.regs.rip == abi::layout::PREEMPT_TRAMPOLINE {
        if let Some(rip) = preempt::take_saved_rip() {
            // The VMM interrupted the application for us: resume it where
            // it was, after letting the other tasks run.
            t.regs.rip = rip;
            itimer::check_cpu(&t.proc);
            control::poll();
            crate::net::host::poll_events();
            if !sched::preempted(&t.shared) {
                sched::yield_now();
            }
            return;
        }
    }
    if vector == 14 {
        let access = crate::mm::Access { write: error & 2 != 0, exec: error & 16 != 0, user: true };
        let (r, pages) = {
            let mut mm = t.mm.lock();
            let r = mm.handle_fault(cr2, access);
            let pages = if r == Err(crate::errno::Errno::ENOMEM) { mm.resident_pages() } else { 0 };
            (r, pages)
        };
        match r {
            Ok(()) => {
                note_repeated_fault(t.regs.rip, cr2, error);
                return;
            }
            // No page to give: someone is killed (perhaps this process)
            // and the access is tried again.
            Err(crate::errno::Errno::ENOMEM) => {
                oom::out_of_memory(t, pages);
                return;
            }
            Err(_) => {}
        }
    }
    let sig = signal_for_exception(vector);
    if crate::kernel::get().strace {
        crate::klog!("[{}] fault: vector {} error {:#x} cr2 {:#x} rip {:#x} -> signal {}", t.tid, vector, error, cr2, t.regs.rip, sig);
    }
    let code = match (vector, error & 1) {
        (14, 0) => signal::SEGV_MAPERR,
        (14, _) => signal::SEGV_ACCERR,
        // #GP and friends: Linux reports SI_KERNEL with address 0.
        (13, _) => signal::SI_KERNEL,
        // #UD: ILL_ILLOPN; #DE: FPE_INTDIV; #BP: TRAP_BRKPT (SI_KERNEL on x86).
        (6, _) => 2,
        (0, _) => 1,
        _ => signal::SI_KERNEL,
    };
    let addr = match vector {
        14 => cr2,
        13 | 3 => 0,
        _ => t.regs.rip,
    };
    signal::force_fault_signal(t, sig, addr, code);
}

/// With --debug, reports a page fault that keeps coming back at the same
/// place although it was resolved (a translation the hardware or the
/// hypervisor does not pick up): otherwise it is an invisible hang.
fn note_repeated_fault(rip: u64, cr2: u64, error: u64) {
    use core::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    static COUNT: AtomicU64 = AtomicU64::new(0);
    if !get().debug {
        return;
    }
    let key = rip ^ cr2.rotate_left(17);
    if LAST.swap(key, Ordering::Relaxed) == key {
        let n = COUNT.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() && n >= 1024 {
            crate::klog!("page fault at {cr2:#x} (rip {rip:#x}, error {error:#x}) resolved {n} times in a row");
        }
    } else {
        COUNT.store(0, Ordering::Relaxed);
    }
}

/// Splits the boot argument blob into its strings.
pub fn split_args(blob: &[u8]) -> Vec<String> {
    blob.split(|&b| b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}
