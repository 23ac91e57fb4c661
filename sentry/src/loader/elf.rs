//! ELF validation and layout for static and static-PIE x86-64 programs.
//!
//! Everything in the file is hostile input: every offset, size and sum is
//! checked, and each way a file can be bad has its own error so that
//! `rvisor do` can say what is wrong. `plan` is pure (unit-tested on the
//! host); `exec` turns a plan into mappings.

use alloc::vec::Vec;
use goblin::elf::header::{self, Header};
use goblin::elf::program_header::{self, ProgramHeader};

use crate::mm::vma::{PROT_EXEC, PROT_READ, PROT_WRITE};
use crate::mm::{page_down, page_up};
use abi::layout::{PAGE_SIZE, USER_END};

/// Where static-PIE programs are loaded (Linux's ELF_ET_DYN_BASE without ASLR).
pub const PIE_BASE: u64 = 0x5555_5555_4000;
/// Most program headers accepted.
const MAX_PHNUM: u16 = 128;

/// Why a file cannot be executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfError {
    NotElf,
    Truncated,
    NotX86_64,
    Not64Bit,
    NotLittleEndian,
    NotExecutable,
    BadProgramHeaders,
    /// PT_INTERP is malformed (outside the file, too long, not a path).
    BadInterpreter,
    /// The interpreter itself names an interpreter, or is not ET_DYN.
    BadInterpreterKind,
    NoLoadableSegments,
    SegmentOutOfFile,
    SegmentTooLarge,
    SegmentMisaligned,
    EntryOutsideSegments,
}

impl ElfError {
    /// A one-line description for users.
    pub fn describe(&self) -> &'static str {
        match self {
            ElfError::NotElf => "not an ELF executable",
            ElfError::Truncated => "truncated ELF file",
            ElfError::NotX86_64 => "ELF for another architecture (need x86-64)",
            ElfError::Not64Bit => "32-bit ELF (need 64-bit)",
            ElfError::NotLittleEndian => "big-endian ELF",
            ElfError::NotExecutable => "ELF is not an executable (ET_EXEC or ET_DYN)",
            ElfError::BadProgramHeaders => "ELF program headers are malformed",
            ElfError::BadInterpreter => "ELF interpreter (PT_INTERP) is malformed",
            ElfError::BadInterpreterKind => "ELF interpreter is not a position-independent static program",
            ElfError::NoLoadableSegments => "ELF has no loadable segments",
            ElfError::SegmentOutOfFile => "ELF segment lies outside the file",
            ElfError::SegmentTooLarge => "ELF segment is too large or outside user space",
            ElfError::SegmentMisaligned => "ELF segment offset and address are not congruent",
            ElfError::EntryOutsideSegments => "ELF entry point is outside its executable segments",
        }
    }
}

/// One segment to map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Page-aligned area.
    pub start: u64,
    pub end: u64,
    pub prot: u32,
    /// File bytes `[file_off, file_off+file_len)` go to `file_va`.
    pub file_va: u64,
    pub file_off: u64,
    pub file_len: u64,
}

/// How to lay a program out in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub entry: u64,
    pub bias: u64,
    pub segments: Vec<Segment>,
    /// Address of the program headers in memory (AT_PHDR).
    pub phdr: u64,
    pub phnum: u64,
    /// First byte past the highest segment (start of brk).
    pub end: u64,
    /// PT_INTERP: file offset and length of the interpreter's path.
    pub interp: Option<(u64, u64)>,
    /// Lowest page-aligned address of the segments, before the bias.
    pub lo: u64,
}

impl Plan {
    /// Bytes spanned by the segments.
    pub fn span(&self) -> u64 {
        self.end.saturating_sub(self.lo + self.bias).div_ceil(PAGE_SIZE) * PAGE_SIZE
    }

    /// Moves an ET_DYN plan (planned at bias 0) to `bias`.
    pub fn rebase(&mut self, bias: u64) {
        let d = bias.wrapping_sub(self.bias);
        self.bias = bias;
        self.entry = self.entry.wrapping_add(d);
        self.phdr = if self.phdr == 0 { 0 } else { self.phdr.wrapping_add(d) };
        self.end = self.end.wrapping_add(d);
        for s in &mut self.segments {
            s.start = s.start.wrapping_add(d);
            s.end = s.end.wrapping_add(d);
            s.file_va = s.file_va.wrapping_add(d);
        }
    }
}

/// Reads the interpreter path out of the bytes at PT_INTERP.
pub fn interp_path(bytes: &[u8]) -> Result<alloc::string::String, ElfError> {
    let end = bytes.iter().position(|&b| b == 0).ok_or(ElfError::BadInterpreter)?;
    let s = core::str::from_utf8(&bytes[..end]).map_err(|_| ElfError::BadInterpreter)?;
    if !s.starts_with('/') {
        return Err(ElfError::BadInterpreter);
    }
    Ok(s.into())
}

/// Bytes of the file needed to plan: the header and program headers.
pub fn header_len(head: &[u8]) -> Result<usize, ElfError> {
    let h = parse_header(head)?;
    let ph_end = h.e_phoff.checked_add(u64::from(h.e_phnum) * 56).ok_or(ElfError::BadProgramHeaders)?;
    usize::try_from(ph_end.max(64)).map_err(|_| ElfError::BadProgramHeaders)
}

fn parse_header(b: &[u8]) -> Result<Header, ElfError> {
    if b.len() < 4 || &b[..4] != b"\x7fELF" {
        return Err(ElfError::NotElf);
    }
    if b.len() < 64 {
        return Err(ElfError::Truncated);
    }
    if b[header::EI_CLASS] != header::ELFCLASS64 {
        return Err(ElfError::Not64Bit);
    }
    if b[header::EI_DATA] != header::ELFDATA2LSB {
        return Err(ElfError::NotLittleEndian);
    }
    let h = goblin::elf::Elf::parse_header(b).map_err(|_| ElfError::Truncated)?;
    if h.e_machine != header::EM_X86_64 {
        return Err(ElfError::NotX86_64);
    }
    if h.e_type != header::ET_EXEC && h.e_type != header::ET_DYN {
        return Err(ElfError::NotExecutable);
    }
    if h.e_phentsize != 56 || h.e_phnum == 0 || h.e_phnum > MAX_PHNUM {
        return Err(ElfError::BadProgramHeaders);
    }
    Ok(h)
}

/// Validates a program and plans its layout. `head` holds at least
/// `header_len` bytes of the file; `file_size` is the whole file's size.
/// ET_DYN programs are planned at `PIE_BASE` (rebase interpreters).
pub fn plan(head: &[u8], file_size: u64) -> Result<Plan, ElfError> {
    let h = parse_header(head)?;
    let need = header_len(head)?;
    if head.len() < need {
        return Err(ElfError::Truncated);
    }
    let ctx = goblin::container::Ctx::new(goblin::container::Container::Big, goblin::container::Endian::Little);
    let phs = ProgramHeader::parse(head, h.e_phoff as usize, h.e_phnum as usize, ctx)
        .map_err(|_| ElfError::BadProgramHeaders)?;
    let mut interp = None;
    if let Some(p) = phs.iter().find(|p| p.p_type == program_header::PT_INTERP) {
        let end = p.p_offset.checked_add(p.p_filesz).ok_or(ElfError::BadInterpreter)?;
        if p.p_filesz < 2 || p.p_filesz > 4096 || end > file_size {
            return Err(ElfError::BadInterpreter);
        }
        interp = Some((p.p_offset, p.p_filesz));
    }
    let bias = if h.e_type == header::ET_DYN { PIE_BASE } else { 0 };
    let mut segments = Vec::new();
    let mut end = 0u64;
    let mut lo = u64::MAX;
    let mut phdr = None;
    for p in phs.iter().filter(|p| p.p_type == program_header::PT_LOAD) {
        if p.p_filesz > p.p_memsz {
            return Err(ElfError::SegmentOutOfFile);
        }
        let file_end = p.p_offset.checked_add(p.p_filesz).ok_or(ElfError::SegmentOutOfFile)?;
        if file_end > file_size {
            return Err(ElfError::SegmentOutOfFile);
        }
        if p.p_vaddr % PAGE_SIZE != p.p_offset % PAGE_SIZE {
            return Err(ElfError::SegmentMisaligned);
        }
        let va = p.p_vaddr.checked_add(bias).ok_or(ElfError::SegmentTooLarge)?;
        let va_end = va.checked_add(p.p_memsz).ok_or(ElfError::SegmentTooLarge)?;
        let (start, Some(area_end)) = (page_down(va), page_up(va_end)) else {
            return Err(ElfError::SegmentTooLarge);
        };
        if start < crate::mm::MMAP_MIN_ADDR || area_end > USER_END - (1 << 30) || p.p_memsz > (1 << 40) {
            return Err(ElfError::SegmentTooLarge);
        }
        let mut prot = 0;
        if p.is_read() {
            prot |= PROT_READ;
        }
        if p.is_write() {
            prot |= PROT_WRITE;
        }
        if p.is_executable() {
            prot |= PROT_EXEC;
        }
        if (p.p_offset..file_end).contains(&h.e_phoff) {
            phdr = Some(va + (h.e_phoff - p.p_offset));
        }
        segments.push(Segment { start, end: area_end, prot, file_va: va, file_off: p.p_offset, file_len: p.p_filesz });
        end = end.max(va_end);
        lo = lo.min(start - bias);
    }
    if segments.is_empty() {
        return Err(ElfError::NoLoadableSegments);
    }
    if let Some(p) = phs.iter().find(|p| p.p_type == program_header::PT_PHDR) {
        phdr = Some(p.p_vaddr.wrapping_add(bias));
    }
    let entry = h.e_entry.checked_add(bias).ok_or(ElfError::EntryOutsideSegments)?;
    if !segments.iter().any(|s| s.prot & PROT_EXEC != 0 && (s.file_va..s.end).contains(&entry)) {
        return Err(ElfError::EntryOutsideSegments);
    }
    Ok(Plan { entry, bias, segments, phdr: phdr.unwrap_or(0), phnum: u64::from(h.e_phnum), end, interp, lo })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// A minimal static ELF: one RX segment at 0x400000 holding the file.
    fn tiny(e_type: u16, machine: u16) -> Vec<u8> {
        let mut b = vec![0u8; 0x1000];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2; // 64-bit
        b[5] = 1; // little endian
        b[6] = 1;
        b[16..18].copy_from_slice(&e_type.to_le_bytes());
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[20..24].copy_from_slice(&1u32.to_le_bytes());
        b[24..32].copy_from_slice(&0x400100u64.to_le_bytes()); // entry
        b[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
        b[52..54].copy_from_slice(&64u16.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&1u16.to_le_bytes()); // phnum
        let ph = 64;
        b[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        b[ph + 4..ph + 8].copy_from_slice(&5u32.to_le_bytes()); // R+X
        b[ph + 8..ph + 16].copy_from_slice(&0u64.to_le_bytes()); // offset
        b[ph + 16..ph + 24].copy_from_slice(&0x400000u64.to_le_bytes()); // vaddr
        b[ph + 32..ph + 40].copy_from_slice(&0x1000u64.to_le_bytes()); // filesz
        b[ph + 40..ph + 48].copy_from_slice(&0x2000u64.to_le_bytes()); // memsz
        b
    }

    fn set_u64(b: &mut [u8], at: usize, v: u64) {
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn plans_a_static_program() {
        let b = tiny(2, 62);
        let p = plan(&b, b.len() as u64).unwrap();
        assert_eq!(p.entry, 0x400100);
        assert_eq!(p.segments.len(), 1);
        assert_eq!(p.segments[0].start, 0x400000);
        assert_eq!(p.segments[0].end, 0x402000);
        assert_eq!(p.phdr, 0x400040);
        assert_eq!(p.end, 0x402000);
    }

    #[test]
    fn pie_gets_a_bias() {
        let mut b = tiny(3, 62);
        set_u64(&mut b, 24, 0x100);
        set_u64(&mut b, 64 + 16, 0);
        let p = plan(&b, b.len() as u64).unwrap();
        assert_eq!(p.entry, PIE_BASE + 0x100);
    }

    #[test]
    fn hostile_files_are_refused() {
        assert_eq!(plan(b"#!/bin/sh\n", 10), Err(ElfError::NotElf));
        let b = tiny(2, 62);
        assert_eq!(plan(&b[..40], 40), Err(ElfError::Truncated));
        assert_eq!(plan(&tiny(2, 183), 0x1000), Err(ElfError::NotX86_64));
        assert_eq!(plan(&tiny(1, 62), 0x1000), Err(ElfError::NotExecutable));
        let mut big = tiny(2, 62);
        set_u64(&mut big, 64 + 40, u64::MAX - 10);
        assert_eq!(plan(&big, 0x1000), Err(ElfError::SegmentTooLarge));
        let mut off = tiny(2, 62);
        set_u64(&mut off, 64 + 8, 0x10_0000);
        set_u64(&mut off, 64 + 16, 0x50_0000);
        assert_eq!(plan(&off, 0x1000), Err(ElfError::SegmentOutOfFile));
        let mut mis = tiny(2, 62);
        set_u64(&mut mis, 64 + 16, 0x400010);
        assert_eq!(plan(&mis, 0x1000), Err(ElfError::SegmentMisaligned));
        let mut entry = tiny(2, 62);
        set_u64(&mut entry, 24, 0x900000);
        assert_eq!(plan(&entry, 0x1000), Err(ElfError::EntryOutsideSegments));
        let mut interp = tiny(2, 62);
        interp[64..68].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(plan(&interp, 0x1000), Err(ElfError::NoLoadableSegments));
        let mut bad_interp = tiny(2, 62);
        bad_interp[56..58].copy_from_slice(&2u16.to_le_bytes());
        let ph2 = 64 + 56;
        bad_interp[ph2..ph2 + 4].copy_from_slice(&3u32.to_le_bytes());
        set_u64(&mut bad_interp, ph2 + 8, 0xff0);
        set_u64(&mut bad_interp, ph2 + 32, 0x100); // runs past the file
        assert_eq!(plan(&bad_interp, 0x1000), Err(ElfError::BadInterpreter));
        let mut phnum = tiny(2, 62);
        phnum[56..58].copy_from_slice(&60000u16.to_le_bytes());
        assert_eq!(plan(&phnum, 0x1000), Err(ElfError::BadProgramHeaders));
        let mut c32 = tiny(2, 62);
        c32[4] = 1;
        assert_eq!(plan(&c32, 0x1000), Err(ElfError::Not64Bit));
    }

    #[test]
    fn interpreters_are_found_and_rebased() {
        let mut b = tiny(3, 62);
        set_u64(&mut b, 24, 0x100);
        set_u64(&mut b, 64 + 16, 0);
        b[56..58].copy_from_slice(&2u16.to_le_bytes());
        let ph2 = 64 + 56;
        b[ph2..ph2 + 4].copy_from_slice(&3u32.to_le_bytes());
        set_u64(&mut b, ph2 + 8, 0x200);
        set_u64(&mut b, ph2 + 32, 28);
        b[0x200..0x200 + 28].copy_from_slice(b"/lib64/ld-linux-x86-64.so.2\0");
        let mut p = plan(&b, b.len() as u64).unwrap();
        assert_eq!(p.interp, Some((0x200, 28)));
        assert_eq!(interp_path(&b[0x200..0x200 + 28]).unwrap(), "/lib64/ld-linux-x86-64.so.2");
        assert_eq!(p.span(), 0x2000);
        p.rebase(0x7f00_0000_0000);
        assert_eq!(p.entry, 0x7f00_0000_0100);
        assert_eq!(p.segments[0].start, 0x7f00_0000_0000);
        assert!(interp_path(b"relative\0").is_err());
        assert!(interp_path(b"/no-nul").is_err());
    }

    #[test]
    fn header_len_needs_phdrs() {
        let b = tiny(2, 62);
        assert_eq!(header_len(&b).unwrap(), 64 + 56);
    }
}
