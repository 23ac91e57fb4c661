//! What the VMM tells the sentry at boot.

/// `BootInfo::magic`.
pub const BOOT_MAGIC: u64 = 0x7276_6973_6f72_0001; // "rvisor" v1

/// Which kind of KVM the guest runs on; selects the entry/exit mechanics.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// PVM (pagetable-based VM): supervisor runs at hardware CPL3, root pair,
    /// `int $0x19`/`int $0x17` returns, `int $0x1b` hypercalls.
    Pvm = 1,
    /// Hardware VMX/SVM: real ring 0, `sysretq`/`iretq`, `out` exits.
    Native = 2,
}

/// Boot flags.
pub mod flags {
    /// Log every syscall (`--strace`).
    pub const STRACE: u64 = 1 << 0;
    /// Verbose sentry logging (`--debug`).
    pub const DEBUG: u64 = 1 << 1;
    /// Panic right after boot (tests the panic path end to end).
    pub const TEST_PANIC: u64 = 1 << 2;
    /// Load the init program, report `Ready` and wait for a control
    /// `Start` before running it (OCI create/start).
    pub const WAIT_START: u64 = 1 << 3;
}

/// The boot information page at [`crate::layout::BOOT_INFO_GPA`].
///
/// The argument blob at `args_gpa` holds NUL-terminated strings in this
/// order: executable path, working directory, `argc` arguments, `envc`
/// environment entries, uname nodename, release, version, domainname,
/// `mountc` mounts of four strings each (kind, destination, source,
/// options), `ngroups` supplementary group ids in decimal, `nextra` settings.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BootInfo {
    pub magic: u64,
    /// [`Flavour`] as u32.
    pub flavour: u32,
    pub num_vcpus: u32,
    /// Bytes of guest memory, starting at GPA 0.
    pub mem_size: u64,
    /// TSC frequency in kHz.
    pub tsc_khz: u64,
    /// Guest-physical range occupied by the sentry image (incl. bss).
    pub image_start: u64,
    pub image_end: u64,
    /// Virtual address the image was relocated to.
    pub image_base: u64,
    pub args_gpa: u64,
    pub args_len: u64,
    pub argc: u32,
    pub envc: u32,
    /// XCR0 the guest runs with (0: no XSAVE, use FXSAVE).
    pub xcr0: u64,
    /// Size of the XSAVE area for `xcr0` (512 + 64 minimum).
    pub xsave_size: u32,
    /// Host handles for the application's stdin, stdout, stderr.
    pub stdio: [u32; 3],
    pub flags: u64,
    /// Seed for the sentry's random number generator (from the host).
    pub random_seed: [u64; 4],
    pub uid: u32,
    pub gid: u32,
    pub mountc: u32,
    pub ngroups: u32,
    pub umask: u32,
    /// Settings after the groups in the blob: `key=value` strings
    /// (`cap_eff=HEX`, `cap_prm=HEX`, `rlimit=RES,SOFT,HARD`).
    pub nextra: u32,
}

// SAFETY: repr(C), only integers, fields ordered so there is no padding
// (checked by the size assertion below).
unsafe impl crate::Pod for BootInfo {}
const _: () = assert!(core::mem::size_of::<BootInfo>() == 168);
