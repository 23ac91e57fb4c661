//! Fixed guest-physical (GPA) and guest-virtual layout, shared by the VMM
//! (which builds the boot state there) and the sentry (which adopts it).
//!
//! ```text
//! GPA 0x0000_1000  BootInfo (one page)
//!     0x0008_0000  control block (VMM -> sentry requests)
//!     0x0010_0000  per-vCPU blocks, VCPU_BLOCK_SIZE each, MAX_VCPUS of them
//!     0x0030_0000  boot page tables: PML4 pair, direct-map PDPT, PDs
//!     0x0040_0000  boot argument blob (exe, cwd, argv, envp)
//!     0x0080_0000  sentry image (linked at 0, relocated to PHYS_OFFSET+here)
//!     image end    (2 MiB aligned) free memory, owned by the sentry
//! ```
//! All guest memory is mapped by the sentry's direct map at `PHYS_OFFSET`.

/// Size of a page.
pub const PAGE_SIZE: u64 = 4096;
/// Virtual address of guest-physical 0 in the supervisor address space.
/// Upper half, as PVM requires for supervisor stacks (RSP0).
pub const PHYS_OFFSET: u64 = 0xffff_8880_0000_0000;
/// First address past the lower (application) half.
pub const USER_END: u64 = 0x0000_8000_0000_0000;
/// Linux's TASK_SIZE: applications never map at or above it.
pub const TASK_SIZE: u64 = 0x0000_7fff_ffff_f000;
/// The page above TASK_SIZE holds the preemption trampoline (`ud2`),
/// mapped read/execute in every address space. The VMM points a
/// preempted vCPU's RIP here; the sentry sees #UD at this address.
pub const PREEMPT_TRAMPOLINE: u64 = TASK_SIZE;

/// Guest-physical address of [`crate::boot::BootInfo`].
pub const BOOT_INFO_GPA: u64 = 0x1000;

/// The control block ([`crate::control`]), `CONTROL_SIZE` bytes.
pub const CONTROL_GPA: u64 = 0x8_0000;

/// Start of the per-vCPU blocks.
pub const VCPU_BLOCKS_GPA: u64 = 0x10_0000;
/// Size of one per-vCPU block.
pub const VCPU_BLOCK_SIZE: u64 = 0x2_0000;
/// Most vCPUs a sandbox can have.
pub const MAX_VCPUS: u32 = 16;
/// Offsets inside a per-vCPU block.
pub mod vcpu {
    /// Hypercall mailbox ([`crate::hypercall::Mailbox`]).
    pub const MAILBOX: u64 = 0x0000;
    /// [`crate::hypercall::Preempt`], in the mailbox page.
    pub const PREEMPT: u64 = 0x0800;
    /// PVM VIF page (virtual IF, pending, CR2 of the last #PF).
    pub const VIF: u64 = 0x1000;
    /// GDT (16 entries) followed by the TSS at `TSS`.
    pub const GDT: u64 = 0x2000;
    /// 64-bit TSS, inside the GDT page.
    pub const TSS: u64 = 0x2800;
    /// IDT (256 gates).
    pub const IDT: u64 = 0x3000;
    /// Sentry-owned per-CPU data (GS base points here).
    pub const PERCPU: u64 = 0x4000;
    /// Bottom of the exception stack (TSS.RSP0 = `RSP0_TOP`).
    pub const RSP0_BOTTOM: u64 = 0x8000;
    /// Top of the exception stack.
    pub const RSP0_TOP: u64 = 0x1_0000;
    /// Bottom of the boot/idle kernel stack.
    pub const STACK_BOTTOM: u64 = 0x1_0000;
    /// Top of the boot/idle kernel stack (initial RSP of the vCPU).
    pub const STACK_TOP: u64 = 0x2_0000;
}

/// Guest-physical address of vCPU `i`'s block.
pub const fn vcpu_block(i: u32) -> u64 {
    VCPU_BLOCKS_GPA + (i as u64) * VCPU_BLOCK_SIZE
}

/// Supervisor PML4 of the boot address space (8 KiB aligned; the user PML4
/// is the next page, as PVM's root pair requires).
pub const BOOT_PML4_GPA: u64 = 0x30_0000;
/// Direct-map PDPT.
pub const BOOT_PDPT_GPA: u64 = 0x30_2000;
/// First direct-map page directory (one per GiB, 2 MiB pages).
pub const BOOT_PD_GPA: u64 = 0x30_3000;
/// Most guest memory the boot direct map can cover (one PD page per GiB).
pub const MAX_GUEST_MEM: u64 = 64 << 30;

/// Boot argument blob.
pub const ARGS_GPA: u64 = 0x40_0000;
/// Largest boot argument blob (Linux's ARG_MAX-ish budget plus paths).
pub const ARGS_MAX: u64 = 0x40_0000;

/// Where the sentry image is loaded.
pub const IMAGE_GPA: u64 = 0x80_0000;
/// Largest sentry image (memsz, including bss).
pub const IMAGE_MAX: u64 = 0x380_0000;

// Segment selectors of the GDT the VMM builds.
/// Supervisor 64-bit code.
pub const SEL_KCODE: u16 = 0x10;
/// Supervisor data.
pub const SEL_KDATA: u16 = 0x18;
/// User data (RPL 3).
pub const SEL_UDATA: u16 = 0x2b;
/// User 64-bit code (RPL 3).
pub const SEL_UCODE: u16 = 0x33;
/// TSS.
pub const SEL_TSS: u16 = 0x40;
