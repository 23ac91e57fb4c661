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
use alloc::format;
use alloc::string::String;

use kernel::task::ExitReason;

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
    // The boot vCPU runs the sentry from here on; the others wait for
    // `BOOTED` and then the lock.
    kernel::sched::bkl_lock();
    let block = PHYS_OFFSET + layout::vcpu_block(0);
    kernel::preempt::init(block + blk::PREEMPT);
    // SAFETY: vCPU 0's own block, with GS base pointing at its per-CPU page.
    unsafe { init_cpu(info, flavour, 0) };
    if info.magic != BOOT_MAGIC {
        host::exit(125);
    }
    mm::frame::init(heap_end, info.mem_size);
    mm::init_trampoline();
    // Before the clock: its calibration is published into the vvar page.
    // Without a vDSO programs still run (on system calls), so a failure
    // here is not fatal.
    if kernel::vdso::init().is_err() {
        host::console("rvisor: sentry: no memory for the vDSO; programs run without one\n");
    }
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
    let domainname = next();
    let mounts: alloc::vec::Vec<[String; 4]> = (0..info.mountc.min(1024)).map(|_| [next(), next(), next(), next()]).collect();
    let groups: alloc::vec::Vec<u32> = (0..info.ngroups.min(65536)).filter_map(|_| next().parse().ok()).collect();
    let extra: alloc::vec::Vec<String> = (0..info.nextra.min(1024)).map(|_| next()).collect();
    let xsave_size = info.xsave_size as usize;
    let hwcap = u64::from(core::arch::x86_64::__cpuid(1).edx);
    kernel::init(kernel::Kernel {
        uts,
        num_cpus: info.num_vcpus.clamp(1, layout::MAX_VCPUS),
        xsave_size,
        hwcap,
        minsigstksz: (xsave_size as u64 + 1024 + 15) & !15,
        mem_size: info.mem_size,
        strace: info.flags & abi::boot::flags::STRACE != 0,
        debug: info.flags & (abi::boot::flags::DEBUG | abi::boot::flags::STRACE) != 0,
    });

    if !domainname.is_empty() {
        kernel::UTS.write().domainname = domainname.into_bytes().into_iter().take(64).collect();
    }
    if info.flags & abi::boot::flags::TEST_PANIC != 0 {
        panic!("panic requested by --debug-sentry-panic");
    }
    let stderr = u64::from(info.stdio[2]);
    let wait_start = info.flags & abi::boot::flags::WAIT_START != 0;
    let fail = |msg: &str, status: i32| -> ! {
        user_error(stderr, msg);
        if wait_start {
            host::ready(Err(msg));
        }
        host::exit(status)
    };
    if let Err(msg) = mount_filesystems(&mounts) {
        fail(&msg, 125);
    }
    let spec = kernel::spawn::ProcSpec {
        exe,
        argv,
        envp,
        cwd,
        uid: info.uid,
        gid: info.gid,
        groups,
        umask: info.umask,
        stdio: [u64::from(info.stdio[0]), u64::from(info.stdio[1]), u64::from(info.stdio[2])],
        settings: kernel::spawn::Settings::parse(&extra),
    };
    for (n, v) in &spec.settings.sysctls {
        fs::proc::set_sysctl(n, v);
    }
    if let Some((u, g)) = &spec.settings.id_maps {
        fs::proc::set_id_maps(u, g);
        fs::hostfs::set_id_maps(u, g);
    }
    if let Some(profile) = &spec.settings.seccomp {
        match kernel::seccomp::parse(profile) {
            Some(f) => kernel::seccomp::install(f),
            None => fail("malformed seccomp profile", 125),
        }
    }
    kernel::cgroup::apply(&extra);
    if let Some(n) = spec.settings.pids_max {
        kernel::process::PIDS_MAX.store(n, core::sync::atomic::Ordering::Relaxed);
    }
    let task = match kernel::spawn::create(&spec) {
        Ok(t) => t,
        Err(e) => fail(&e.msg, e.status),
    };
    if wait_start {
        kernel::signal::INIT_PROTECTED.store(true, core::sync::atomic::Ordering::Relaxed);
        kernel::control::hold_init(task);
        host::ready(Ok(()));
    } else {
        kernel::spawn_task(task);
    }
    BOOTED.store(true, core::sync::atomic::Ordering::Release);
    kernel::sched::idle()
}

/// Set once the boot vCPU has the kernel ready for the others.
static BOOTED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Adopts vCPU `cpu`'s per-CPU block and IDT and points its syscall
/// entry at the sentry.
///
/// # Safety
/// Must run on vCPU `cpu` itself, once, before it enters user mode: the VMM
/// set its GS base to the block's per-CPU page and loaded its (zeroed) IDT.
unsafe fn init_cpu(info: &BootInfo, flavour: Flavour, cpu: u32) {
    let block = PHYS_OFFSET + layout::vcpu_block(cpu);
    // SAFETY: guaranteed by the caller: the page is this vCPU's alone.
    unsafe { arch::percpu::init(block + blk::PERCPU, flavour == Flavour::Pvm, info.xcr0, block + blk::VIF + 8, cpu, block) };
    // SAFETY: the IDT page is this vCPU's, zeroed by the VMM and in IDTR.
    unsafe { arch::install_idt_and_syscall(block + blk::IDT) };
}

/// Entry of the other vCPUs: they wait until the boot vCPU has set up the
/// kernel, then run tasks like it does.
///
/// # Safety
/// Called once per vCPU `cpu` > 0 with the VMM's boot state.
pub unsafe fn ap_main(info: &BootInfo, cpu: u32) -> ! {
    let flavour = if info.flavour == Flavour::Native as u32 { Flavour::Native } else { Flavour::Pvm };
    if cpu >= info.num_vcpus.min(layout::MAX_VCPUS) {
        arch::halt_forever();
    }
    // SAFETY: this is vCPU `cpu`, starting with the VMM's state for it.
    unsafe { init_cpu(info, flavour, cpu) };
    while !BOOTED.load(core::sync::atomic::Ordering::Acquire) {
        host::halt(1_000_000);
    }
    kernel::sched::bkl_lock();
    kernel::sched::idle()
}

/// Device numbers of the sentry's own filesystems.
const ROOT_UPPER_DEV: u64 = 0x2a;
const ROOT_OVERLAY_DEV: u64 = 0x2b;
const SHM_DEV: u64 = 0x2c;

/// Builds the sandbox's mount tree from the VMM's list (kind,
/// destination, source, options), in order: `rvisor do` gets a memory
/// upper layer over the host's root, OCI containers their root and bind
/// mounts written through, plus the sentry's own filesystems.
fn mount_filesystems(mounts: &[[String; 4]]) -> Result<(), String> {
    let root_owner = vfs::Creator { uid: 0, gid: 0 };
    let mut next_dev = ROOT_UPPER_DEV;
    let mut dev = || {
        next_dev += 1;
        next_dev
    };
    for [kind, dest, source, options] in mounts {
        if !dest.starts_with('/') || dest.split('/').any(|c| c == "..") {
            return Err(format!("mount {dest}: not an absolute path"));
        }
        let dest = canonical_mount_point(dest);
        let opt = |name: &str| options.split(',').find_map(|o| o.strip_prefix(name).and_then(|v| v.strip_prefix('=')));
        let ro = options.split(',').any(|o| o == "ro");
        // A tree the host may change while the sandbox runs.
        let revalidate = options.split(',').any(|o| o == "revalidate");
        let root = match kind.as_str() {
            "overlay" => {
                let upper = fs::tmpfs::Tmpfs::with_limit(ROOT_UPPER_DEV, 0o755, root_owner, ROOT_UPPER_LIMIT);
                fs::overlay::new(upper, fs::hostfs::HostInode::lower(source), ROOT_OVERLAY_DEV)
            }
            "host" => fs::hostfs::HostInode::at(source, !ro, revalidate),
            "tmpfs" => {
                let size = opt("size").and_then(|v| v.parse::<u64>().ok()).unwrap_or(TMPFS_DEFAULT_LIMIT);
                let mode = opt("mode").and_then(|v| u32::from_str_radix(v, 8).ok()).unwrap_or(0o1777) & 0o7777;
                let uid = opt("uid").and_then(|v| v.parse().ok()).unwrap_or(0);
                let gid = opt("gid").and_then(|v| v.parse().ok()).unwrap_or(0);
                let d = if dest == "/dev/shm" { SHM_DEV } else { dev() };
                fs::tmpfs::Tmpfs::with_limit(d, mode, vfs::Creator { uid, gid }, size).root()
            }
            "proc" => fs::proc::root(),
            "dev" => fs::dev::DevFs::root(),
            "devpts" => fs::devpts::root(),
            "mqueue" => fs::mqueue::root(),
            "sysfs" => fs::sysfs::root(kernel::get().num_cpus),
            "cgroup" => {
                mount_cgroups(&dest, options);
                continue;
            }
            other => return Err(format!("mount {dest}: unknown filesystem type {other}")),
        };
        vfs::walk::mount(&dest, root);
    }
    for [_, dest, _, _] in mounts {
        make_mount_point_dirs(&canonical_mount_point(dest));
    }
    Ok(())
}

/// The container's cgroups at `dest`: `v1=H;H;...` (the host's v1
/// hierarchies, "unified" for the hybrid's v2 one) mounts a holder with
/// one mount per hierarchy as runc does; anything else one v2 mount.
fn mount_cgroups(dest: &str, options: &str) {
    const FLAGS: &str = "ro,nosuid,nodev,noexec,relatime";
    let Some(list) = options.strip_prefix("v1=") else {
        vfs::walk::mount(dest, fs::cgroupfs::v2_root());
        fs::proc::note_mount(dest, "cgroup2", "cgroup2", FLAGS, "rw");
        return;
    };
    let hierarchies: alloc::vec::Vec<String> = list.split(';').filter(|h| !h.is_empty() && !h.contains('/') && *h != "." && *h != "..").map(String::from).collect();
    vfs::walk::mount(dest, fs::cgroupfs::v1_holder(&hierarchies));
    kernel::cgroup::set_v1_hierarchies(hierarchies.clone());
    fs::proc::note_mount(dest, "tmpfs", "tmpfs", "ro,nosuid,nodev,noexec", "ro,mode=755");
    for h in &hierarchies {
        let at = format!("{}/{}", dest.trim_end_matches('/'), fs::cgroupfs::v1_dir_name(h));
        if h == "unified" {
            vfs::walk::mount(&at, fs::cgroupfs::v2_root());
            fs::proc::note_mount(&at, "cgroup2", "cgroup2", FLAGS, "rw");
        } else {
            vfs::walk::mount(&at, fs::cgroupfs::v1_root(h));
            fs::proc::note_mount(&at, "cgroup", "cgroup", FLAGS, &format!("rw,{h}"));
        }
    }
}

/// A mount below another sentry filesystem (/sys/fs/cgroup under an
/// empty /sys) needs the directories on the way to be walkable: they are
/// made there. Host filesystems are left alone (the VMM made its own).
fn make_mount_point_dirs(dest: &str) {
    let creds = kernel::task::Creds::default();
    let Ok(mut cur) = vfs::walk::root() else { return };
    let parts: alloc::vec::Vec<&str> = dest.split('/').filter(|c| !c.is_empty()).collect();
    for (i, name) in parts.iter().enumerate().take(parts.len().saturating_sub(1)) {
        let path = format!("/{}", parts[..=i].join("/"));
        cur = match vfs::walk::resolve(&cur, name, true, &creds) {
            Ok(l) => l,
            Err(errno::Errno::ENOENT) if cur.inode.as_any().downcast_ref::<fs::hostfs::HostInode>().is_none() => {
                match cur.inode.create(name, vfs::Kind::Dir, 0o755, 0, vfs::Creator { uid: 0, gid: 0 }) {
                    Ok(inode) => vfs::Location { inode, path },
                    Err(_) => return,
                }
            }
            Err(_) => return,
        };
    }
}

/// "/a//b/" -> "/a/b".
fn canonical_mount_point(p: &str) -> String {
    let mut out = String::new();
    for c in p.split('/').filter(|c| !c.is_empty() && *c != ".") {
        out.push('/');
        out.push_str(c);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Default size of a tmpfs mount without `size=`.
const TMPFS_DEFAULT_LIMIT: u64 = 512 << 20;
/// Bytes the sandbox may write to its root (kept in sentry memory).
const ROOT_UPPER_LIMIT: u64 = 512 << 20;

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
