//! The sentry: rvisor's guest kernel. It runs inside the VM in supervisor
//! mode, next to the application, and implements Linux for it: syscalls,
//! page faults and exceptions are served here without leaving the guest.
//! The only way out is the hypercall interface (`host`).
//!
//! Built two ways: as a freestanding kernel image (`--features image`,
//! `src/main.rs`, no_std) embedded in the `rvisor` binary, and as an
//! ordinary library with std for `cargo test`, so its logic is unit-tested
//! on the host.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod arch;
pub mod errno;
pub mod fs;
pub mod host;
pub mod kernel;
pub mod loader;
pub mod mm;
pub mod net;
pub mod syscalls;
pub mod vfs;

#[cfg(feature = "image")]
pub mod image;

use abi::boot::{BootInfo, Flavour, BOOT_MAGIC};
use abi::layout::{self, vcpu as blk, PHYS_OFFSET};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::Mutex;

use fs::host::HostFile;
use fs::{FdTable, OpenFile};
use kernel::task::{Creds, ExitReason, FpuArea, Task, UserRegs};

/// Bytes of guest memory reserved for the sentry's heap (touched lazily;
/// tmpfs file data lives here until it moves to page frames).
pub const HEAP_SIZE: u64 = 1 << 30;

/// Writes a one-line error for the user to the application's stderr.
fn user_error(stderr: u64, msg: &str) {
    let line = format!("rvisor: {msg}\n");
    let iov = [abi::hypercall::IoVec { gpa: mm::phys::va_to_pa(line.as_ptr() as u64), len: line.len() as u64 }];
    let _ = host::write(stderr, &iov, None);
}

/// Ends the sandbox the way a shell reports the program's end.
pub(crate) fn finish(e: ExitReason) -> ! {
    match e {
        ExitReason::Exited(s) => host::exit(s),
        ExitReason::Signaled(sig) => host::exit(128 + sig as i32),
    }
}

/// Brings the kernel up on the boot vCPU and runs the first program.
///
/// # Safety
/// Must be called once, on vCPU 0, with `info` pointing at the VMM's
/// BootInfo page, GS base at the vCPU's per-CPU page, and the heap (when
/// built as the image) initialized over memory nobody else uses.
pub unsafe fn kmain(info: &BootInfo, heap_end: u64) -> ! {
    let flavour = if info.flavour == Flavour::Native as u32 { Flavour::Native } else { Flavour::Pvm };
    arch::set_flavour(flavour);
    let block = PHYS_OFFSET + layout::vcpu_block(0);
    host::init(block + blk::MAILBOX);
    kernel::preempt::init(block + blk::PREEMPT);
    // SAFETY: the per-CPU page belongs to vCPU 0, GS base points at it.
    unsafe { arch::percpu::init(block + blk::PERCPU, flavour == Flavour::Pvm, info.xcr0, block + blk::VIF + 8) };
    // SAFETY: the IDT page is vCPU 0's, zeroed by the VMM and loaded in IDTR.
    unsafe { arch::install_idt_and_syscall(block + blk::IDT) };
    if info.magic != BOOT_MAGIC {
        host::exit(125);
    }
    mm::frame::init(heap_end, info.mem_size);
    mm::init_trampoline();
    kernel::clock::init(info.tsc_khz);
    kernel::random::init(info.random_seed);

    // SAFETY: the VMM wrote `args_len` bytes at `args_gpa` (both bounded
    // by the layout), visible through the direct map.
    let blob = unsafe {
        core::slice::from_raw_parts(mm::phys::pa_to_va(info.args_gpa) as *const u8, info.args_len.min(layout::ARGS_MAX) as usize)
    };
    let mut strings = kernel::split_args(blob).into_iter();
    let mut next = || strings.next().unwrap_or_default();
    let exe = next();
    let cwd = next();
    let argv: alloc::vec::Vec<String> = (0..info.argc).map(|_| next()).collect();
    let envp: alloc::vec::Vec<String> = (0..info.envc).map(|_| next()).collect();
    let uts = [next(), next(), next()];
    let xsave_size = info.xsave_size as usize;
    let hwcap = u64::from(core::arch::x86_64::__cpuid(1).edx);
    kernel::init(kernel::Kernel {
        uts,
        num_cpus: info.num_vcpus.max(1),
        xsave_size,
        hwcap,
        minsigstksz: (xsave_size as u64 + 1024 + 15) & !15,
        mem_size: info.mem_size,
        strace: info.flags & abi::boot::flags::STRACE != 0,
        debug: info.flags & (abi::boot::flags::DEBUG | abi::boot::flags::STRACE) != 0,
    });

    if info.flags & abi::boot::flags::TEST_PANIC != 0 {
        panic!("panic requested by --debug-sentry-panic");
    }
    let stderr = u64::from(info.stdio[2]);
    let mut fds = FdTable::new();
    for (i, name) in ["stdin", "stdout", "stderr"].iter().enumerate() {
        let f = OpenFile::new(Box::new(HostFile::stdio(u64::from(info.stdio[i]), name)), 2);
        let _ = fds.install_at(i, f, false);
    }
    mount_filesystems();
    let Ok(root) = vfs::walk::root() else {
        user_error(stderr, "no root filesystem");
        host::exit(125);
    };
    let creds = Arc::new(Creds::new(info.uid, info.gid, Vec::new()));
    let cwd_loc = match vfs::walk::resolve(&root, &cwd, true, &creds) {
        Ok(l) if l.inode.kind() == vfs::Kind::Dir => l,
        _ => {
            user_error(stderr, &format!("working directory {cwd}: not found in the sandbox"));
            host::exit(125);
        }
    };
    let template = mm::pagetable::PageTable::adopt(layout::BOOT_PML4_GPA);
    let Ok(pt) = mm::pagetable::PageTable::new_from(&template) else {
        user_error(stderr, "out of memory at boot");
        host::exit(125);
    };
    let pid = kernel::process::alloc_id();
    let proc = kernel::process::Process::new(pid, 0, pid, pid, 0, [kernel::signal::SigAction::default(); kernel::signal::NSIG as usize]);
    let shared = kernel::sched::TaskShared::new(pid, pt.root(), 0);
    kernel::process::register_task(&shared);
    proc.inner.lock().threads.push(shared.clone());
    let mut task = Box::new(Task {
        regs: UserRegs::default(),
        fpu: FpuArea::new(xsave_size),
        fs_base: 0,
        tid: pid,
        shared,
        proc,
        mm: Arc::new(Mutex::new(mm::MemoryManager::new(pt))),
        fds: Arc::new(Mutex::new(fds)),
        fs: Arc::new(Mutex::new(kernel::task::FsState { cwd: cwd_loc, umask: 0o022 })),
        altstack: kernel::signal::ALTSTACK_DISABLED,
        restart: false,
        restart_nohand: false,
        handler_running: false,
        keep_regs: false,
        saved_mask: None,
        creds,
        clear_child_tid: 0,
        robust_list: (0, 0),
        exit: None,
        comm: kernel::exec::comm_of(&exe),
        pdeathsig: 0,
        dumpable: true,
        no_new_privs: false,
        subreaper: false,
        rlimits: syscalls::process::default_rlimits(),
        exe: exe.clone(),
        vfork_parent: None,
    });
    kernel::sched::set_cr3(&task.shared, task.mm.lock().page_table().root());
    let k = kernel::get();
    if let Err(e) = kernel::exec::exec(&mut task, &exe, &argv, &envp, k.hwcap, k.minsigstksz) {
        use kernel::exec::ExecError;
        let (status, why) = match e {
            ExecError::Io(errno::Errno::ENOENT) => (127, "no such file or directory".into()),
            ExecError::Io(errno::Errno::EACCES) => (126, "permission denied".into()),
            ExecError::Io(errno::Errno::ENOTDIR) => (127, "not a directory".into()),
            ExecError::Io(_) => (126, "cannot read the program".into()),
            ExecError::Elf(ref el) => (126, String::from(el.describe())),
            ExecError::NoMem => (126, "not enough memory to load the program".into()),
            ExecError::Interp(ref p, errno::Errno::ENOENT) => (127, format!("interpreter {p}: no such file or directory")),
            ExecError::Interp(ref p, _) => (126, format!("interpreter {p}: cannot be opened")),
        };
        user_error(stderr, &format!("{exe}: {why}"));
        host::exit(status);
    }
    let proc = task.proc.clone();
    proc.update_view(&task, None, None);
    kernel::spawn_task(task);
    kernel::sched::idle()
}

/// Device numbers of the sentry's own filesystems.
const ROOT_UPPER_DEV: u64 = 0x2a;
const ROOT_OVERLAY_DEV: u64 = 0x2b;
const SHM_DEV: u64 = 0x2c;

/// Builds the sandbox's mount tree: the root is a memory upper layer
/// over the host's files (writes stay in the sandbox), the sentry's
/// devices on /dev, shared memory on /dev/shm, /proc.
fn mount_filesystems() {
    let root_owner = vfs::Creator { uid: 0, gid: 0 };
    let upper = fs::tmpfs::Tmpfs::with_limit(ROOT_UPPER_DEV, 0o755, root_owner, ROOT_UPPER_LIMIT);
    vfs::walk::mount("/", fs::overlay::new(upper, fs::hostfs::HostInode::root(), ROOT_OVERLAY_DEV));
    vfs::walk::mount("/dev", fs::dev::DevFs::root());
    vfs::walk::mount("/dev/shm", fs::tmpfs::Tmpfs::with_limit(SHM_DEV, 0o1777, root_owner, SHM_LIMIT).root());
    vfs::walk::mount("/proc", fs::proc::root());
}

/// Bytes the sandbox may write to its root (kept in sentry memory).
const ROOT_UPPER_LIMIT: u64 = 512 << 20;
/// Bytes of /dev/shm (Docker's default --shm-size).
const SHM_LIMIT: u64 = 64 << 20;

/// Registers of a fault inside the sentry, as `rv_kernel_fault` gets them.
#[repr(C)]
pub struct KernelFrame {
    pub gprs: [u64; 15],
    pub vector: u64,
    pub error: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Called by the entry code when the sentry itself faults: always a bug.
#[no_mangle]
extern "C" fn rv_kernel_fault(f: &KernelFrame) -> ! {
    let (_, _, cr2) = arch::percpu::last_exception();
    panic!(
        "sentry fault: vector {} error {:#x} rip {:#x} rsp {:#x} cr2(last user) {:#x} rbp {:#x}",
        f.vector, f.error, f.rip, f.rsp, cr2, f.gprs[8]
    );
}
