//! One sandbox = one VM: guest memory, the loaded sentry, vCPU threads and
//! the hypercall service. `Sandbox::run` returns the exit status of the
//! sandboxed program (128+N when a signal N killed it).

use std::os::fd::OwnedFd;
use std::sync::Arc;

use abi::boot::Flavour;
use kvm_ioctls::Kvm;

use crate::boot::{self, BootArgs};
use crate::hypercall::{HandleTable, Service};
use crate::image::{self, Symbols};
use crate::memory::GuestMemory;
use crate::vcpu::{self, VcpuSetup};
use crate::{flavour, Error};

/// What to run and how.
pub struct SandboxConfig {
    /// The sentry image (ELF).
    pub image: &'static [u8],
    /// Guest memory in bytes.
    pub mem_size: u64,
    /// Program path as the sentry should open it.
    pub exe: String,
    pub cwd: String,
    pub argv: Vec<String>,
    pub envp: Vec<String>,
    /// The program's stdin, stdout, stderr.
    pub stdio: [OwnedFd; 3],
    /// `abi::boot::flags`.
    pub flags: u64,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups of the init process.
    pub groups: Vec<u32>,
    pub umask: u32,
    /// `uname` nodename (None: the host's).
    pub hostname: Option<String>,
    pub domainname: String,
    /// The sandbox's mount table, in mount order (the root first).
    pub mounts: Vec<MountSpec>,
    /// Let the sentry change host files (OCI mode; see `Service`).
    pub allow_writes: bool,
    /// Settings of the init process (`abi::boot::BootInfo::nextra`).
    pub extra: Vec<String>,
    /// Let the sandbox make raw inet sockets (CAP_NET_RAW in the spec).
    pub net_raw: bool,
    /// The gofer's socket: path requests go there (mount sources are then
    /// paths in the gofer's namespace) instead of the VMM's namespace.
    pub gofer: Option<OwnedFd>,
    /// Trees the sentry may write without `allow_writes` (read-write
    /// volumes), as mount sources.
    pub writable: Vec<String>,
    /// vCPUs (0: one per host CPU this process may use); at most
    /// `abi::layout::MAX_VCPUS`.
    pub num_vcpus: u32,
    /// The id maps of the gofer's user namespace, when it runs in one.
    pub gofer_id_maps: Option<crate::files::IdMaps>,
    /// The host seccomp filter `Sandbox::run` puts on this process before
    /// the first vCPU runs (None: no filter, for a sandbox run inside a
    /// test process).
    pub host_seccomp: Option<HostSeccomp>,
}

/// A host seccomp filter for the VMM process: the list (built by
/// `crate::seccomp::vmm_rules`, plus whatever the embedding program's
/// own threads need), what a refused syscall does, and syscall names for
/// trap mode's reports.
pub struct HostSeccomp {
    pub rules: gofer::seccomp::Rules,
    pub mode: gofer::seccomp::Mode,
    pub names: &'static [&'static str],
}

/// One mount of the sentry's tree. `kind`: `overlay` (memory upper over
/// the host directory `source`), `host` (the host directory or file
/// `source`, written through unless `ro`), `tmpfs`, `proc`, `dev`,
/// `sysfs`, `devpts`, `mqueue`, `cgroup`. `options`: comma-separated
/// (`ro`, `size=BYTES`, `mode=OCTAL`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountSpec {
    pub kind: String,
    pub dest: String,
    pub source: String,
    pub options: String,
}

impl SandboxConfig {
    /// The mounts of `rvisor do`: the host's root under a memory overlay.
    pub fn do_mounts() -> Vec<MountSpec> {
        let m = |kind: &str, dest: &str, source: &str, options: &str| MountSpec {
            kind: kind.into(),
            dest: dest.into(),
            source: source.into(),
            options: options.into(),
        };
        vec![
            m("overlay", "/", "/", ""),
            m("dev", "/dev", "", ""),
            m("devpts", "/dev/pts", "", ""),
            m("tmpfs", "/dev/shm", "", "size=67108864,mode=1777"),
            m("proc", "/proc", "", ""),
        ]
    }
}

/// Size of the sentry's heap (`sentry::HEAP_SIZE`; the VMM does not link
/// the sentry, so the value is repeated here and in `abi`'s layout notes).
const SENTRY_HEAP_SIZE: u64 = 1 << 30;

/// A built, not yet running sandbox.
pub struct Sandbox {
    flavour: Flavour,
    host_seccomp: Option<HostSeccomp>,
    service: Arc<Service>,
    vcpus: Vec<kvm_ioctls::VcpuFd>,
    // Kept alive for as long as the vCPUs run.
    _vm: kvm_ioctls::VmFd,
    _mem: Arc<GuestMemory>,
}

impl Sandbox {
    /// A handle for control requests, usable from other threads while
    /// `run` runs.
    pub fn controller(&self) -> crate::Controller {
        crate::Controller { shared: self.service.control().clone(), mem: self._mem.clone(), service: self.service.clone() }
    }
}

fn uname() -> [String; 3] {
    // SAFETY: all-zero is a valid utsname; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname writes into our local struct.
    unsafe { libc::uname(&mut u) };
    let s = |f: &[libc::c_char]| {
        let b: Vec<u8> = f.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    [s(&u.nodename), s(&u.release), s(&u.version)]
}

fn random_seed() -> [u64; 4] {
    let mut seed = [0u64; 4];
    // SAFETY: getrandom writes at most 32 bytes into `seed`.
    unsafe { libc::getrandom(seed.as_mut_ptr().cast(), 32, 0) };
    seed
}

/// XCR0 for the guest and the XSAVE area size it needs: the features both
/// KVM and the host kernel have enabled, minus AMX tiles (which need a
/// per-process permission the sentry does not manage).
fn xsave_features(cpuid: &kvm_bindings::CpuId) -> (u64, u32) {
    let Some(e) = cpuid.as_slice().iter().find(|e| e.function == 0xd && e.index == 0) else {
        return (0, 512);
    };
    let supported = u64::from(e.eax) | (u64::from(e.edx) << 32);
    let host = host_xcr0();
    let xcr0 = supported & host & !(0x3 << 17);
    if xcr0 & 3 != 3 {
        return (0, 512);
    }
    (xcr0, e.ecx.max(576))
}

fn host_xcr0() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: xgetbv(0) is valid whenever the host enabled XSAVE, which
    // CPUID leaf 0xD being reported by KVM implies; it only reads XCR0.
    unsafe { std::arch::asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    u64::from(lo) | (u64::from(hi) << 32)
}

/// How many vCPUs a sandbox asking for `wanted` (0: as many as the host
/// lets this process use) gets.
pub fn vcpu_count(wanted: u32) -> u32 {
    let host = std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX));
    let n = if wanted == 0 { host } else { wanted };
    n.clamp(1, abi::layout::MAX_VCPUS)
}

/// The signal that interrupts a vCPU thread's KVM_RUN (a "kick").
const KICK_SIGNAL: i32 = libc::SIGUSR2;

extern "C" fn on_kick(_: libc::c_int) {}

/// Installs a no-op handler without SA_RESTART, so a kick makes KVM_RUN
/// return EINTR.
fn install_kick_handler() {
    // SAFETY: a zeroed sigaction with a valid handler and empty mask;
    // `on_kick` is async-signal-safe (does nothing).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_kick as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(KICK_SIGNAL, &sa, std::ptr::null_mut());
    }
}

/// Every tick, kicks the vCPUs whose sentry asked to be preempted.
fn ticker(threads: &[libc::pthread_t], done: &std::sync::atomic::AtomicBool, service: &Service) {
    let tick = std::time::Duration::from_nanos(abi::hypercall::PREEMPT_TICK_NS);
    // RVISOR_WATCHDOG=1: kick every tick so a vCPU that never exits shows
    // where it runs (see vcpu::preempt).
    let watchdog = std::env::var_os("RVISOR_WATCHDOG").is_some();
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(tick);
        for (i, &th) in threads.iter().enumerate() {
            let at = abi::layout::vcpu_block(i as u32) + abi::layout::vcpu::PREEMPT;
            let wanted = watchdog
                || service.control().paused()
                || service.mem().read_obj::<abi::hypercall::Preempt>(at).map(|p| p.wanted != 0 || p.control != 0 || p.net != 0).unwrap_or(false);
            if wanted && !done.load(std::sync::atomic::Ordering::Relaxed) {
                // SAFETY: `th` is a vCPU thread of this sandbox, joined only
                // after `done` is set and this loop has stopped.
                unsafe { libc::pthread_kill(th, KICK_SIGNAL) };
            }
        }
    }
}

impl Sandbox {
    /// Creates the VM, loads the sentry and prepares vCPU 0.
    pub fn new(cfg: SandboxConfig) -> Result<Sandbox, Error> {
        let flavour = flavour::detect();
        let kvm = Kvm::new().map_err(Error::OpenKvm)?;
        let vm = kvm.create_vm().map_err(|e| Error::Kvm("KVM_CREATE_VM", e))?;
        let mem = Arc::new(GuestMemory::new(cfg.mem_size)?);
        let region = kvm_bindings::kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: mem.size(),
            userspace_addr: mem.host_base(),
        };
        // SAFETY: the region is our own shared mapping of `mem.size()` bytes,
        // which lives in `_mem` at least as long as the VM.
        unsafe { vm.set_user_memory_region(region) }.map_err(|e| Error::Kvm("KVM_SET_USER_MEMORY_REGION", e))?;

        let loaded = image::load(&mem, cfg.image)?;
        // Everything up to the end of the sentry's heap (which follows its
        // image, 2 MiB aligned) is touched sparsely; application frames
        // above keep huge pages.
        let heap_end = loaded.end_gpa.div_ceil(2 << 20) * (2 << 20) + SENTRY_HEAP_SIZE;
        mem.prefer_small_pages(0, heap_end);
        boot::build_page_tables(&mem, flavour)?;
        let num_vcpus = vcpu_count(cfg.num_vcpus);
        for i in 0..num_vcpus {
            boot::build_descriptors(&mem, i)?;
        }
        let cpuid = kvm
            .get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
            .map_err(|e| Error::Kvm("KVM_GET_SUPPORTED_CPUID", e))?;
        let (xcr0, xsave_size) = xsave_features(&cpuid);

        let vcpus = (0..num_vcpus)
            .map(|index| vcpu::create(&kvm, &vm, &VcpuSetup { index, flavour, entry: loaded.entry, xcr0 }))
            .collect::<Result<Vec<_>, _>>()?;
        let tsc_khz = vcpus[0].get_tsc_khz().map(u64::from).unwrap_or(0);

        let [stdin, stdout, stderr] = cfg.stdio;
        let mut handles = HandleTable::default();
        let mut stdio = [0u32; 3];
        for (slot, fd) in stdio.iter_mut().zip([stdin, stdout, stderr]) {
            *slot = handles.insert(fd).map_err(|_| Error::Setup("handle table"))? as u32;
        }
        let mut uts = uname();
        if let Some(h) = &cfg.hostname {
            uts[0] = h.clone();
        }
        boot::write_boot_info(
            &mem,
            &BootArgs {
                flavour,
                num_vcpus,
                tsc_khz,
                image: &loaded,
                exe: &cfg.exe,
                cwd: &cfg.cwd,
                argv: &cfg.argv,
                envp: &cfg.envp,
                uts: [&uts[0], &uts[1], &uts[2]],
                xcr0,
                xsave_size,
                stdio,
                flags: cfg.flags,
                random_seed: random_seed(),
                uid: cfg.uid,
                gid: cfg.gid,
                groups: &cfg.groups,
                umask: cfg.umask,
                domainname: &cfg.domainname,
                mounts: &cfg.mounts,
                extra: &cfg.extra,
            },
        )?;
        let mut service = Service::new(mem.clone(), handles, Symbols::from_image(cfg.image), loaded.base);
        if cfg.allow_writes {
            service = service.allow_writes();
        }
        if cfg.net_raw {
            service = service.allow_raw_sockets();
        }
        service = service.writable_trees(&cfg.writable);
        if let Some(sock) = cfg.gofer {
            service = service.with_gofer(crate::files::GoferFiles::connect(sock, cfg.gofer_id_maps.clone())?);
        }
        if cfg.flags & abi::boot::flags::STRACE != 0 {
            service = service.unlimited_console();
        }
        let service = Arc::new(service);
        Ok(Sandbox { flavour, host_seccomp: cfg.host_seccomp, service, vcpus, _vm: vm, _mem: mem })
    }

    /// Runs the sandbox to completion and returns its exit status.
    pub fn run(self) -> Result<i32, Error> {
        let Sandbox { flavour, host_seccomp, service, vcpus, _vm, _mem } = self;
        install_kick_handler();
        // Set up is over: from here on the VMM serves the guest, whose
        // requests are hostile, so it keeps only the syscalls serving
        // them needs (on every thread, those started later too).
        if let Some(f) = &host_seccomp {
            gofer::seccomp::install(&f.rules, f.mode, "VMM", f.names)?;
        }
        // vCPU threads report when they finish, so the ticker is stopped
        // before any of them is joined (kicking a joined thread would be
        // undefined behaviour).
        let (finished_tx, finished_rx) = std::sync::mpsc::channel::<()>();
        let threads: Vec<_> = vcpus
            .into_iter()
            .enumerate()
            .map(|(i, fd)| {
                let service = service.clone();
                let finished = finished_tx.clone();
                std::thread::Builder::new().name(format!("vcpu{i}")).spawn(move || {
                    let r = vcpu::run(fd, i as u32, flavour, service);
                    let _ = finished.send(());
                    r
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::Thread)?;
        drop(finished_tx);
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ticker = {
            use std::os::unix::thread::JoinHandleExt;
            let ids: Vec<libc::pthread_t> = threads.iter().map(|t| t.as_pthread_t()).collect();
            let (done, service) = (done.clone(), service.clone());
            std::thread::Builder::new()
                .name("preempt".into())
                .spawn(move || ticker(&ids, &done, &service))
                .map_err(Error::Thread)?
        };
        let _ = finished_rx.recv();
        // The sandbox ended on one vCPU: stop the others, which may be in
        // KVM_RUN (kicked out of it; a kick that lands just before KVM_RUN
        // is missed, hence the repeats) or halted (woken by `stop`).
        service.stop();
        {
            use std::os::unix::thread::JoinHandleExt;
            let mut left = threads.len() - 1;
            while left > 0 {
                for t in &threads {
                    // SAFETY: the thread is not joined yet (joins happen
                    // below), so its pthread_t is valid even if it ended.
                    unsafe { libc::pthread_kill(t.as_pthread_t(), KICK_SIGNAL) };
                }
                while left > 0 && finished_rx.recv_timeout(std::time::Duration::from_millis(2)).is_ok() {
                    left -= 1;
                }
            }
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = ticker.join();
        let mut status = None;
        let mut err = None;
        for t in threads {
            match t.join().map_err(|_| Error::Setup("vCPU thread panicked")).and_then(|r| r.map_err(Error::from)) {
                Ok(Some(r)) => {
                    status.get_or_insert(r);
                }
                Ok(None) => {}
                Err(e) => err = Some(e),
            }
        }
        if std::env::var_os("RVISOR_KVM_STATS").is_some() {
            for (nr, n) in service.counts() {
                let name = abi::hypercall::Nr::from_u64(nr).map_or_else(|| format!("#{nr}"), |x| format!("{x:?}"));
                eprintln!("hypercall {name}: {n}");
            }
        }
        service.control().set_ended(status.unwrap_or(crate::hypercall::SENTRY_PANIC_STATUS));
        if let Some(e) = err {
            return Err(e);
        }
        status.ok_or(Error::Setup("no vCPU"))
    }
}
