//! vCPU setup and the run loop. `classify` turns one KVM exit into what it
//! means for us, as a pure function, so its logic is testable without a
//! guest; `run` is the small loop around it.

use std::sync::Arc;

use abi::boot::Flavour;
use abi::hypercall::HYPERCALL_PORT;
use abi::layout::{self, vcpu as blk, PHYS_OFFSET};
use kvm_bindings::{kvm_segment, Msrs, kvm_msr_entry, kvm_xcrs, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd};

use crate::flavour::{MSR_PVM_CTL, PVM_CTL_FLAGS};
use crate::hypercall::{Control, Service, SENTRY_PANIC_STATUS};

const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_SFMASK: u32 = 0xc000_0084;
const MSR_GS_BASE: u32 = 0xc000_0101;
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
const CR4_BASE: u64 = 0x10620; // PAE | OSFXSR | OSXMMEXCPT | FSGSBASE
const CR4_OSXSAVE: u64 = 1 << 18;

/// Errors setting up or running a vCPU.
#[derive(Debug, thiserror::Error)]
pub enum VcpuError {
    #[error("KVM ioctl {0} failed")]
    Kvm(&'static str, #[source] kvm_ioctls::Error),
    #[error("guest stopped unexpectedly: {0}")]
    Unexpected(String),
}

/// Where a vCPU starts and how it is set up.
pub struct VcpuSetup {
    pub index: u32,
    pub flavour: Flavour,
    pub entry: u64,
    pub xcr0: u64,
}

fn seg(selector: u16, type_: u8, l: u8, db: u8) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_,
        present: 1,
        dpl: 0,
        db,
        s: 1,
        l,
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// Creates and configures vCPU `s.index` to start at the sentry's entry.
pub fn create(kvm: &Kvm, vm: &kvm_ioctls::VmFd, s: &VcpuSetup) -> Result<VcpuFd, VcpuError> {
    let k = |what| move |e| VcpuError::Kvm(what, e);
    let fd = vm.create_vcpu(u64::from(s.index)).map_err(k("KVM_CREATE_VCPU"))?;
    let cpuid = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).map_err(k("KVM_GET_SUPPORTED_CPUID"))?;
    fd.set_cpuid2(&cpuid).map_err(k("KVM_SET_CPUID2"))?;

    let block = layout::vcpu_block(s.index);
    let mut sr = fd.get_sregs().map_err(k("KVM_GET_SREGS"))?;
    sr.cs = seg(layout::SEL_KCODE, 0xb, 1, 0);
    sr.ss = seg(layout::SEL_KDATA, 0x3, 0, 1);
    let mut null = seg(0, 0x3, 0, 1);
    null.present = 0;
    null.unusable = 1;
    sr.ds = null;
    sr.es = null;
    sr.fs = null;
    sr.gs = null;
    sr.tr = kvm_segment {
        base: PHYS_OFFSET + block + blk::TSS,
        limit: 0x67,
        selector: layout::SEL_TSS,
        type_: 0xb,
        present: 1,
        ..Default::default()
    };
    sr.ldt = kvm_segment { type_: 2, unusable: 1, ..Default::default() };
    sr.gdt.base = PHYS_OFFSET + block + blk::GDT;
    sr.gdt.limit = 0x4f;
    sr.idt.base = PHYS_OFFSET + block + blk::IDT;
    sr.idt.limit = 256 * 16 - 1;
    sr.cr0 = 0x8005_0033;
    sr.cr4 = CR4_BASE | if s.xcr0 != 0 { CR4_OSXSAVE } else { 0 };
    sr.cr3 = layout::BOOT_PML4_GPA;
    sr.efer = 0xd01;
    fd.set_sregs(&sr).map_err(k("KVM_SET_SREGS"))?;

    if s.xcr0 != 0 {
        let mut x = kvm_xcrs::default();
        x.nr_xcrs = 1;
        x.xcrs[0].xcr = 0;
        x.xcrs[0].value = s.xcr0;
        fd.set_xcrs(&x).map_err(k("KVM_SET_XCRS"))?;
    }

    let percpu = PHYS_OFFSET + block + blk::PERCPU;
    let mut msrs = vec![
        (MSR_STAR, 0x0023_0010_0000_0000u64),
        (MSR_SFMASK, 0x47700),
        (MSR_GS_BASE, percpu),
        (MSR_KERNEL_GS_BASE, percpu),
        (MSR_LSTAR, 0),
    ];
    if s.flavour == Flavour::Pvm {
        msrs.push((MSR_PVM_CTL, block + blk::VIF | PVM_CTL_FLAGS));
    }
    let entries: Vec<kvm_msr_entry> =
        msrs.iter().map(|&(index, data)| kvm_msr_entry { index, data, ..Default::default() }).collect();
    let m = Msrs::from_entries(&entries).map_err(|_| VcpuError::Unexpected("MSR list".into()))?;
    let n = fd.set_msrs(&m).map_err(k("KVM_SET_MSRS"))?;
    if n != entries.len() {
        return Err(VcpuError::Unexpected(format!("KVM_SET_MSRS set {n} of {} MSRs", entries.len())));
    }

    let regs = kvm_bindings::kvm_regs {
        rip: s.entry,
        rsp: PHYS_OFFSET + block + blk::STACK_TOP,
        rdi: PHYS_OFFSET + layout::BOOT_INFO_GPA,
        rsi: u64::from(s.index),
        rflags: 2,
        ..Default::default()
    };
    fd.set_regs(&regs).map_err(k("KVM_SET_REGS"))?;
    Ok(fd)
}

/// What one KVM exit means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitKind {
    /// The sentry made a hypercall.
    Hypercall,
    /// KVM_RUN was interrupted by a signal (a kick).
    Interrupted,
    /// The guest triple-faulted.
    Shutdown,
    /// Anything else: a bug in the sentry or an unsupported host.
    Other(String),
}

/// Decides what an exit means for a vCPU of `flavour`.
pub fn classify(exit: &Result<VcpuExit<'_>, kvm_ioctls::Error>, flavour: Flavour) -> ExitKind {
    match exit {
        Ok(VcpuExit::Hlt) if flavour == Flavour::Pvm => ExitKind::Hypercall,
        Ok(VcpuExit::IoOut(port, _)) if *port == HYPERCALL_PORT && flavour == Flavour::Native => {
            ExitKind::Hypercall
        }
        Ok(VcpuExit::Shutdown) => ExitKind::Shutdown,
        Ok(other) => ExitKind::Other(format!("{other:?}")),
        Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => ExitKind::Interrupted,
        Err(e) => ExitKind::Other(format!("KVM_RUN: {e}")),
    }
}

/// Runs vCPU `index` until the sandbox exits; returns the exit status if
/// the sandbox ended on this vCPU (None: it ended on another one).
pub fn run(mut fd: VcpuFd, index: u32, flavour: Flavour, service: Arc<Service>) -> Result<Option<i32>, VcpuError> {
    let r = run_loop(&mut fd, index, flavour, &service);
    if std::env::var_os("RVISOR_KVM_STATS").is_some() {
        crate::stats::print(&format!("vcpu{index}"), &fd);
    }
    r
}

fn run_loop(fd: &mut VcpuFd, index: u32, flavour: Flavour, service: &Service) -> Result<Option<i32>, VcpuError> {
    let mailbox = layout::vcpu_block(index) + blk::MAILBOX;
    loop {
        if service.stopping() {
            return Ok(None);
        }
        service.control().wait_while_paused();
        let kind = {
            let exit = fd.run();
            classify(&exit, flavour)
        };
        match kind {
            ExitKind::Hypercall => {
                if let Control::Exit(status) = service.handle(mailbox) {
                    return Ok(Some(status));
                }
            }
            ExitKind::Interrupted => preempt(fd, index, service),
            ExitKind::Shutdown => {
                eprintln!("rvisor: the sentry triple-faulted; {}", describe(fd));
                return Ok(Some(SENTRY_PANIC_STATUS));
            }
            ExitKind::Other(what) => {
                return Err(VcpuError::Unexpected(format!("{what}; {}", describe(fd))));
            }
        }
    }
}

/// The ticker interrupted KVM_RUN: if the sentry asked for it and the
/// vCPU is in user mode, send the application to the preemption
/// trampoline (see `sentry::kernel::preempt`). Any failure just skips
/// this tick.
fn preempt(fd: &VcpuFd, index: u32, service: &Service) {
    if std::env::var_os("RVISOR_WATCHDOG").is_some() {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        if N.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 50 == 0 {
            eprintln!("[watchdog] vcpu{index}: {}", describe(fd));
        }
    }
    let at = layout::vcpu_block(index) + blk::PREEMPT;
    let Ok(mut p) = service.mem().read_obj::<abi::hypercall::Preempt>(at) else { return };
    if (p.wanted == 0 && p.control == 0 && p.net == 0) || p.saved_rip != 0 || service.control().paused() {
        return;
    }
    let Ok(sregs) = fd.get_sregs() else { return };
    if sregs.cs.selector & 3 != 3 {
        return;
    }
    let Ok(mut regs) = fd.get_regs() else { return };
    if regs.rip >= layout::TASK_SIZE {
        return;
    }
    p.saved_rip = regs.rip;
    p.count += 1;
    if service.mem().write_obj(at, &p).is_err() {
        return;
    }
    regs.rip = layout::PREEMPT_TRAMPOLINE;
    if fd.set_regs(&regs).is_err() {
        p.saved_rip = 0;
        let _ = service.mem().write_obj(at, &p);
    }
}

/// Register summary for diagnosing a dead guest.
fn describe(fd: &VcpuFd) -> String {
    match (fd.get_regs(), fd.get_sregs()) {
        (Ok(r), Ok(s)) => format!(
            "rip={:#x} rsp={:#x} rax={:#x} rcx={:#x} cr2={:#x} cr3={:#x} cs={:#x}",
            r.rip, r.rsp, r.rax, r.rcx, s.cr2, s.cr3, s.cs.selector
        ),
        _ => "registers unavailable".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_are_classified_per_flavour() {
        assert_eq!(classify(&Ok(VcpuExit::Hlt), Flavour::Pvm), ExitKind::Hypercall);
        assert!(matches!(classify(&Ok(VcpuExit::Hlt), Flavour::Native), ExitKind::Other(_)));
        assert_eq!(classify(&Ok(VcpuExit::IoOut(HYPERCALL_PORT, &[0])), Flavour::Native), ExitKind::Hypercall);
        assert!(matches!(classify(&Ok(VcpuExit::IoOut(0x80, &[0])), Flavour::Native), ExitKind::Other(_)));
        assert_eq!(classify(&Ok(VcpuExit::Shutdown), Flavour::Pvm), ExitKind::Shutdown);
        let eintr = kvm_ioctls::Error::new(libc::EINTR);
        assert_eq!(classify(&Err(eintr), Flavour::Pvm), ExitKind::Interrupted);
    }
}
