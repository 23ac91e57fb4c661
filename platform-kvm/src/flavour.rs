//! Which kind of KVM this host offers.
//!
//! PVM (a software hypervisor: guest supervisor code runs at hardware CPL3
//! on shadow page tables) and hardware VMX/SVM need different entry/exit
//! mechanics; everything else is shared. Detection: the `kvm_pvm` module,
//! or the PVM identification MSR once a vCPU exists.

use abi::boot::Flavour;

/// PVM control MSR (VIF page address | flags).
pub const MSR_PVM_CTL: u32 = 0x4b56_4d10;
/// PVM identification MSR; reads `PVM_ID`.
pub const MSR_PVM_ID: u32 = 0x4b56_4d11;
/// PVM TSC frequency in kHz.
pub const MSR_PVM_TSC_KHZ: u32 = 0x4b56_4d13;
/// "PVM".
pub const PVM_ID: u64 = 0x4d_5650;
/// PVM_CTL flags that work on our hosts: arm the no-exit direct switches,
/// report CR2 at VIF+8, enable the iret-style return.
pub const PVM_CTL_FLAGS: u64 = 0x7f;

/// Detects the flavour from the host. `RVISOR_PLATFORM_FLAVOUR=pvm|native`
/// overrides it (for debugging only).
pub fn detect() -> Flavour {
    match std::env::var("RVISOR_PLATFORM_FLAVOUR").as_deref() {
        Ok("pvm") => return Flavour::Pvm,
        Ok("native") => return Flavour::Native,
        _ => {}
    }
    if std::path::Path::new("/sys/module/kvm_pvm").exists() {
        Flavour::Pvm
    } else {
        Flavour::Native
    }
}
