//! The boot state the VMM writes into guest memory before the first
//! KVM_RUN: direct-map page tables, per-vCPU GDT/TSS/IDT pages, the boot
//! information page and the argument blob. Addresses come from
//! `abi::layout`; the sentry adopts all of it and builds the rest itself.

use abi::boot::{BootInfo, Flavour, BOOT_MAGIC};
use abi::layout::{self, vcpu, PAGE_SIZE, PHYS_OFFSET};

use crate::memory::{GuestMemory, MemoryError};

const PTE_P: u64 = 1;
const PTE_W: u64 = 2;
const PTE_U: u64 = 4;
const PTE_PS: u64 = 0x80;

/// Errors building the boot state.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("guest memory size {0:#x} is not a multiple of 2 MiB between 128 MiB and 64 GiB")]
    MemorySize(u64),
    #[error("arguments and environment are too large ({0} bytes)")]
    ArgsTooLarge(u64),
    #[error("an argument or environment string contains a NUL byte")]
    Nul,
    #[error("too many vCPUs ({0})")]
    Vcpus(u32),
    #[error("writing boot state")]
    Memory(#[from] MemoryError),
}

/// Flags for supervisor (direct-map) mappings. PVM requires U=1 on every
/// present entry (isolation comes from the root pair instead); on real
/// hardware supervisor pages must be U=0.
pub fn supervisor_pte_flags(flavour: Flavour) -> u64 {
    match flavour {
        Flavour::Pvm => PTE_P | PTE_W | PTE_U,
        Flavour::Native => PTE_P | PTE_W,
    }
}

/// Builds the boot page tables: the supervisor root maps all guest memory
/// at `PHYS_OFFSET` with 2 MiB pages; the user root (next page) is empty.
pub fn build_page_tables(mem: &GuestMemory, flavour: Flavour) -> Result<(), BootError> {
    let size = mem.size();
    if size % (2 << 20) != 0 || size < (128 << 20) || size > layout::MAX_GUEST_MEM {
        return Err(BootError::MemorySize(size));
    }
    let f = supervisor_pte_flags(flavour);
    // Intermediate entries also carry U=1 on PVM; on native U=0 here makes
    // the whole upper half supervisor-only.
    let pml4_index = (PHYS_OFFSET >> 39) & 511;
    mem.write_obj(layout::BOOT_PML4_GPA + pml4_index * 8, &(layout::BOOT_PDPT_GPA | f))?;
    let gib = size.div_ceil(1 << 30);
    for g in 0..gib {
        let pd = layout::BOOT_PD_GPA + g * PAGE_SIZE;
        mem.write_obj(layout::BOOT_PDPT_GPA + g * 8, &(pd | f))?;
        for j in 0..512u64 {
            let pa = (g << 30) + (j << 21);
            if pa >= size {
                break;
            }
            mem.write_obj(pd + j * 8, &(pa | f | PTE_PS))?;
        }
    }
    Ok(())
}

/// Writes vCPU `i`'s GDT (with its TSS descriptor) and TSS. The IDT page
/// is left zeroed: the sentry fills in its own gates.
pub fn build_descriptors(mem: &GuestMemory, i: u32) -> Result<(), BootError> {
    if i >= layout::MAX_VCPUS {
        return Err(BootError::Vcpus(i + 1));
    }
    let block = layout::vcpu_block(i);
    let gdt = block + vcpu::GDT;
    let entries: [u64; 7] = [
        0,
        0,
        0x00af_9b00_0000_ffff, // 0x10 supervisor code, L=1
        0x00cf_9300_0000_ffff, // 0x18 supervisor data
        0x00cf_fb00_0000_ffff, // 0x20 user code 32
        0x00cf_f300_0000_ffff, // 0x28 user data
        0x00af_fb00_0000_ffff, // 0x30 user code 64
    ];
    for (k, e) in entries.iter().enumerate() {
        mem.write_obj(gdt + 8 * k as u64, e)?;
    }
    let tss_va = PHYS_OFFSET + block + vcpu::TSS;
    let limit = 0x67u64;
    let lo = (limit & 0xffff)
        | ((tss_va & 0xff_ffff) << 16)
        | (0x89u64 << 40)
        | (((tss_va >> 24) & 0xff) << 56);
    mem.write_obj(gdt + 0x40, &lo)?;
    mem.write_obj(gdt + 0x48, &(tss_va >> 32))?;
    // TSS: RSP0 at +4, IST1 at +36 (the sentry uses it for #DF), I/O map
    // base past the limit (no I/O bitmap).
    let tss = block + vcpu::TSS;
    mem.write_obj(tss + 4, &(PHYS_OFFSET + block + vcpu::RSP0_TOP))?;
    mem.write_obj(tss + 36, &(PHYS_OFFSET + block + vcpu::RSP0_BOTTOM + 0x1000))?;
    mem.write_obj(tss + 102, &0x68u16)?;
    Ok(())
}

/// Everything the sentry needs to start the first program.
pub struct BootArgs<'a> {
    pub flavour: Flavour,
    pub num_vcpus: u32,
    pub tsc_khz: u64,
    pub image: &'a crate::image::LoadedImage,
    pub exe: &'a str,
    pub cwd: &'a str,
    pub argv: &'a [String],
    pub envp: &'a [String],
    /// nodename, release, version for `uname`.
    pub uts: [&'a str; 3],
    pub xcr0: u64,
    pub xsave_size: u32,
    pub stdio: [u32; 3],
    pub flags: u64,
    pub random_seed: [u64; 4],
    pub uid: u32,
    pub gid: u32,
    pub groups: &'a [u32],
    pub umask: u32,
    pub domainname: &'a str,
    pub mounts: &'a [crate::MountSpec],
    pub extra: &'a [String],
}

/// Writes the argument blob and the boot information page.
pub fn write_boot_info(mem: &GuestMemory, a: &BootArgs<'_>) -> Result<(), BootError> {
    let mut blob = Vec::new();
    let strings = [a.exe, a.cwd]
        .into_iter()
        .chain(a.argv.iter().map(String::as_str))
        .chain(a.envp.iter().map(String::as_str))
        .chain(a.uts)
        .chain([a.domainname])
        .chain(a.mounts.iter().flat_map(|m| [m.kind.as_str(), m.dest.as_str(), m.source.as_str(), m.options.as_str()]));
    for s in strings {
        if s.as_bytes().contains(&0) {
            return Err(BootError::Nul);
        }
        blob.extend_from_slice(s.as_bytes());
        blob.push(0);
    }
    for g in a.groups {
        blob.extend_from_slice(g.to_string().as_bytes());
        blob.push(0);
    }
    for x in a.extra {
        if x.as_bytes().contains(&0) {
            return Err(BootError::Nul);
        }
        blob.extend_from_slice(x.as_bytes());
        blob.push(0);
    }
    if blob.len() as u64 > layout::ARGS_MAX {
        return Err(BootError::ArgsTooLarge(blob.len() as u64));
    }
    mem.write(layout::ARGS_GPA, &blob)?;
    let info = BootInfo {
        magic: BOOT_MAGIC,
        flavour: a.flavour as u32,
        num_vcpus: a.num_vcpus,
        mem_size: mem.size(),
        tsc_khz: a.tsc_khz,
        image_start: layout::IMAGE_GPA,
        image_end: a.image.end_gpa,
        image_base: a.image.base,
        args_gpa: layout::ARGS_GPA,
        args_len: blob.len() as u64,
        argc: u32::try_from(a.argv.len()).map_err(|_| BootError::ArgsTooLarge(blob.len() as u64))?,
        envc: u32::try_from(a.envp.len()).map_err(|_| BootError::ArgsTooLarge(blob.len() as u64))?,
        xcr0: a.xcr0,
        xsave_size: a.xsave_size,
        stdio: a.stdio,
        flags: a.flags,
        random_seed: a.random_seed,
        uid: a.uid,
        gid: a.gid,
        mountc: u32::try_from(a.mounts.len()).map_err(|_| BootError::ArgsTooLarge(blob.len() as u64))?,
        ngroups: u32::try_from(a.groups.len()).map_err(|_| BootError::ArgsTooLarge(blob.len() as u64))?,
        umask: a.umask & 0o777,
        nextra: u32::try_from(a.extra.len()).map_err(|_| BootError::ArgsTooLarge(blob.len() as u64))?,
    };
    mem.write_obj(layout::BOOT_INFO_GPA, &info)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_map_covers_memory() {
        let mem = GuestMemory::new(256 << 20).unwrap();
        build_page_tables(&mem, Flavour::Pvm).unwrap();
        let pml4e: u64 = mem.read_obj(layout::BOOT_PML4_GPA + 273 * 8).unwrap();
        assert_eq!(pml4e & !0xfff, layout::BOOT_PDPT_GPA);
        let last: u64 = mem.read_obj(layout::BOOT_PD_GPA + 127 * 8).unwrap();
        assert_eq!(last & !0xfff, 127 << 21);
        let past: u64 = mem.read_obj(layout::BOOT_PD_GPA + 128 * 8).unwrap();
        assert_eq!(past, 0);
        // The user root stays empty.
        for k in 0..512 {
            assert_eq!(mem.read_obj::<u64>(layout::BOOT_PML4_GPA + 0x1000 + k * 8).unwrap(), 0);
        }
    }

    #[test]
    fn bad_sizes_are_refused() {
        let mem = GuestMemory::new(64 << 20).unwrap();
        assert!(matches!(build_page_tables(&mem, Flavour::Pvm), Err(BootError::MemorySize(_))));
    }
}
