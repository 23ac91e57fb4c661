//! Loading the sentry image: a static-PIE ELF linked at 0, copied to
//! `IMAGE_GPA` and relocated to run from the direct map at
//! `PHYS_OFFSET + IMAGE_GPA`.

use abi::layout::{IMAGE_GPA, IMAGE_MAX, PAGE_SIZE, PHYS_OFFSET};
use goblin::elf::{header, program_header, reloc, Elf};

use crate::memory::GuestMemory;

/// Errors from loading the sentry image. One variant per way it can be bad.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("sentry image is not a valid ELF")]
    Parse(#[source] goblin::error::Error),
    #[error("sentry image is not a 64-bit x86-64 position-independent executable")]
    WrongKind,
    #[error("sentry image segment {vaddr:#x}+{memsz:#x} does not fit the image area")]
    SegmentTooBig { vaddr: u64, memsz: u64 },
    #[error("sentry image segment file range {offset:#x}+{filesz:#x} is outside the file")]
    BadOffset { offset: u64, filesz: u64 },
    #[error("sentry image has unsupported relocation type {0}")]
    Relocation(u32),
    #[error("sentry image relocation at {0:#x} is outside the image")]
    RelocationRange(u64),
    #[error("writing the sentry image into guest memory")]
    Memory(#[from] crate::memory::MemoryError),
}

/// A loaded sentry image.
#[derive(Debug)]
pub struct LoadedImage {
    /// Virtual address of the entry point.
    pub entry: u64,
    /// Virtual address the image was relocated to (link address 0 maps here).
    pub base: u64,
    /// Guest-physical end of the image (incl. bss), page aligned.
    pub end_gpa: u64,
}

/// Function symbols of the image, for symbolizing sentry backtraces.
#[derive(Debug, Default)]
pub struct Symbols {
    /// (link-time address, size, name), sorted by address.
    syms: Vec<(u64, u64, String)>,
}

impl Symbols {
    /// Reads the function symbols of an image (empty if it is stripped).
    pub fn from_image(bytes: &[u8]) -> Symbols {
        let Ok(elf) = Elf::parse(bytes) else { return Symbols::default() };
        let mut syms: Vec<(u64, u64, String)> = elf
            .syms
            .iter()
            .filter(|s| s.is_function() && s.st_value != 0)
            .filter_map(|s| {
                elf.strtab.get_at(s.st_name).map(|n| (s.st_value, s.st_size, format!("{:#}", rustc_demangle::demangle(n))))
            })
            .collect();
        syms.sort();
        Symbols { syms }
    }

    /// Names the function containing link-time address `addr`.
    pub fn lookup(&self, addr: u64) -> Option<(&str, u64)> {
        let i = self.syms.partition_point(|s| s.0 <= addr);
        let (start, size, name) = self.syms.get(i.checked_sub(1)?)?;
        (addr < start + (*size).max(1)).then_some((name.as_str(), addr - start))
    }
}

/// Copies the image into guest memory and applies its relocations.
pub fn load(mem: &GuestMemory, bytes: &[u8]) -> Result<LoadedImage, ImageError> {
    let elf = Elf::parse(bytes).map_err(ImageError::Parse)?;
    if !elf.is_64
        || elf.header.e_machine != header::EM_X86_64
        || elf.header.e_type != header::ET_DYN
    {
        return Err(ImageError::WrongKind);
    }
    let base = PHYS_OFFSET + IMAGE_GPA;
    let mut end = 0u64;
    for ph in elf.program_headers.iter().filter(|p| p.p_type == program_header::PT_LOAD) {
        let seg_end = ph
            .p_vaddr
            .checked_add(ph.p_memsz)
            .filter(|e| *e <= IMAGE_MAX && ph.p_filesz <= ph.p_memsz)
            .ok_or(ImageError::SegmentTooBig { vaddr: ph.p_vaddr, memsz: ph.p_memsz })?;
        let file = ph
            .p_offset
            .checked_add(ph.p_filesz)
            .and_then(|e| bytes.get(usize::try_from(ph.p_offset).ok()?..usize::try_from(e).ok()?))
            .ok_or(ImageError::BadOffset { offset: ph.p_offset, filesz: ph.p_filesz })?;
        mem.write(IMAGE_GPA + ph.p_vaddr, file)?;
        end = end.max(seg_end);
    }
    for r in elf.dynrelas.iter().chain(elf.dynrels.iter()) {
        if r.r_type != reloc::R_X86_64_RELATIVE {
            return Err(ImageError::Relocation(r.r_type));
        }
        if r.r_offset.checked_add(8).is_none_or(|e| e > end) {
            return Err(ImageError::RelocationRange(r.r_offset));
        }
        let value = base.wrapping_add(r.r_addend.unwrap_or(0) as u64);
        mem.write_obj(IMAGE_GPA + r.r_offset, &value)?;
    }
    Ok(LoadedImage {
        entry: base + elf.entry,
        base,
        end_gpa: IMAGE_GPA + end.div_ceil(PAGE_SIZE) * PAGE_SIZE,
    })
}
