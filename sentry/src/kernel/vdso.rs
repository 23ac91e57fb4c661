//! The vDSO (Linux: arch/x86/entry/vdso): a small shared object the sentry
//! maps into every process, named by AT_SYSINFO_EHDR, through which the C
//! library reads the clocks without a system call. It is built from
//! `sentry/vdso/` by the build script and embedded here.
//!
//! Below it lies the vvar page, which holds the clock parameters
//! (`clock::Params`) under a sequence lock: the vDSO's code reads them at
//! a fixed distance below itself. Both are shared, read-only frames
//! (`mm::special`); the vvar page is the only place the sentry writes them.

use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

use super::clock::{self, Params};
use crate::errno::Errno;
use crate::mm::special::{self, Special};
use crate::mm::vma::{PROT_EXEC, PROT_READ};
use crate::mm::MemoryManager;
use abi::layout::PAGE_SIZE;

/// The vDSO's ELF image (sentry/build.rs).
pub const IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vdso.so"));

/// Pages of the image; the linker script puts the vvar page right below.
pub const PAGES: u64 = (IMAGE.len() as u64).div_ceil(PAGE_SIZE);
const _: () = assert!(PAGES as usize <= special::MAX_PAGES, "the vDSO outgrew its pages");

/// The vvar page's contents: `struct rvisor_vvar` of sentry/vdso/vvar.h.
#[repr(C)]
pub struct VvarData {
    /// Odd while the fields below are being rewritten.
    seq: AtomicU32,
    shift: AtomicU32,
    tsc0: AtomicU64,
    mult: AtomicU64,
    mono0: AtomicU64,
    real0: AtomicU64,
    coarse_res_ns: AtomicU64,
}

// The offsets vvar.h asserts on the C side.
const _: () = {
    assert!(core::mem::offset_of!(VvarData, seq) == 0);
    assert!(core::mem::offset_of!(VvarData, shift) == 4);
    assert!(core::mem::offset_of!(VvarData, tsc0) == 8);
    assert!(core::mem::offset_of!(VvarData, mult) == 16);
    assert!(core::mem::offset_of!(VvarData, mono0) == 24);
    assert!(core::mem::offset_of!(VvarData, real0) == 32);
    assert!(core::mem::offset_of!(VvarData, coarse_res_ns) == 40);
    assert!(core::mem::size_of::<VvarData>() == 48);
};

impl VvarData {
    /// Empty (all zero: the vDSO falls back to system calls while the
    /// multiplier is zero).
    pub const fn new() -> VvarData {
        VvarData {
            seq: AtomicU32::new(0),
            shift: AtomicU32::new(0),
            tsc0: AtomicU64::new(0),
            mult: AtomicU64::new(0),
            mono0: AtomicU64::new(0),
            real0: AtomicU64::new(0),
            coarse_res_ns: AtomicU64::new(0),
        }
    }

    /// Rewrites the parameters. Readers run on other vCPUs at any time in
    /// user mode; the odd sequence number makes them retry until the new
    /// values are all in place. Callers are serialized (the big kernel
    /// lock; there is one writer in any case, the clock's calibration).
    pub fn publish(&self, p: &Params) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.tsc0.store(p.tsc0, Ordering::Relaxed);
        self.mult.store(p.mult, Ordering::Relaxed);
        self.shift.store(p.shift, Ordering::Relaxed);
        self.mono0.store(p.mono0, Ordering::Relaxed);
        self.real0.store(p.real0, Ordering::Relaxed);
        self.coarse_res_ns.store(clock::COARSE_RES_NS, Ordering::Relaxed);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    /// Reads the parameters as the vDSO does: a consistent set, never one
    /// torn by a concurrent `publish`.
    pub fn read(&self) -> Params {
        loop {
            let s = self.seq.load(Ordering::Acquire);
            if s & 1 == 0 {
                let p = Params {
                    tsc0: self.tsc0.load(Ordering::Relaxed),
                    mult: self.mult.load(Ordering::Relaxed),
                    shift: self.shift.load(Ordering::Relaxed),
                    mono0: self.mono0.load(Ordering::Relaxed),
                    real0: self.real0.load(Ordering::Relaxed),
                };
                fence(Ordering::Acquire);
                if self.seq.load(Ordering::Relaxed) == s {
                    return p;
                }
            }
            core::hint::spin_loop();
        }
    }
}

impl Default for VvarData {
    fn default() -> Self {
        VvarData::new()
    }
}

/// Puts the image and an empty vvar page in their frames (once, at boot,
/// before the clock's calibration publishes into it).
pub fn init() -> Result<(), Errno> {
    special::install(Special::Vvar, &[])?;
    special::install(Special::Vdso, IMAGE)
}

/// Publishes the clock parameters to every process's vvar page.
pub fn publish(p: &Params) {
    if let Some(v) = special::vvar() {
        v.publish(p);
    }
}

/// Maps the vvar page and the vDSO into a new address space, where mmap
/// would put them (just below the program's interpreter, as Linux does);
/// returns the vDSO's address for AT_SYSINFO_EHDR, None if boot could not
/// set the vDSO up (programs then make system calls, as without one).
pub fn map(m: &mut MemoryManager) -> Result<Option<u64>, Errno> {
    if special::pages(Special::Vdso) == 0 || special::pages(Special::Vvar) == 0 {
        return Ok(None);
    }
    let vvar_len = PAGE_SIZE * special::pages(Special::Vvar);
    let at = m.find_free(vvar_len + PAGES * PAGE_SIZE).ok_or(Errno::ENOMEM)?;
    m.map_special(at, Special::Vvar, PROT_READ)?;
    m.map_special(at + vvar_len, Special::Vdso, PROT_READ | PROT_EXEC)?;
    Ok(Some(at + vvar_len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::frame;
    use goblin::elf::Elf;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    /// The symbols Linux's x86-64 vDSO exports that this one provides.
    const EXPORTS: [&str; 10] = [
        "__vdso_clock_gettime",
        "__vdso_gettimeofday",
        "__vdso_time",
        "__vdso_getcpu",
        "__vdso_clock_getres",
        "clock_gettime",
        "gettimeofday",
        "time",
        "getcpu",
        "clock_getres",
    ];

    #[test]
    fn image_is_a_vdso() {
        let elf = Elf::parse(IMAGE).expect("the vDSO parses");
        assert_eq!(elf.header.e_type, goblin::elf::header::ET_DYN);
        assert_eq!(elf.soname, Some("linux-vdso.so.1"));
        // One loadable segment from address 0, read+execute only: the image
        // is mapped as it is.
        let loads: Vec<_> = elf.program_headers.iter().filter(|p| p.p_type == goblin::elf::program_header::PT_LOAD).collect();
        assert_eq!(loads.len(), 1);
        assert_eq!((loads[0].p_vaddr, loads[0].p_offset), (0, 0));
        assert!(loads[0].is_read() && loads[0].is_executable() && !loads[0].is_write());
        assert!(loads[0].p_memsz <= PAGES * PAGE_SIZE);
        for t in [goblin::elf::program_header::PT_DYNAMIC, goblin::elf::program_header::PT_NOTE] {
            assert!(elf.program_headers.iter().any(|p| p.p_type == t), "no program header of type {t}");
        }
        // Nothing for anyone to relocate or write.
        assert!(elf.dynrelas.is_empty() && elf.dynrels.is_empty() && elf.pltrelocs.is_empty());
        assert!(!elf.section_headers.iter().any(|s| {
            let name = elf.shdr_strtab.get_at(s.sh_name).unwrap_or("");
            matches!(name, ".data" | ".bss" | ".got" | ".got.plt" | ".plt")
        }));
        let dynamic = elf.dynamic.as_ref().expect("PT_DYNAMIC");
        let tags: Vec<u64> = dynamic.dyns.iter().map(|d| d.d_tag).collect();
        for t in [goblin::elf::dynamic::DT_HASH, goblin::elf::dynamic::DT_GNU_HASH, goblin::elf::dynamic::DT_VERSYM, goblin::elf::dynamic::DT_VERDEF] {
            assert!(tags.contains(&t), "no dynamic tag {t:#x}");
        }
        // Each export is a function defined in the image, versioned
        // LINUX_2.6 as glibc and musl look it up.
        let verdef = elf.verdef.as_ref().expect("version definitions");
        let version_name = |idx: u16| {
            verdef.iter().find(|d| d.vd_ndx == idx).and_then(|d| d.iter().next()).and_then(|a| elf.dynstrtab.get_at(a.vda_name))
        };
        let versym = elf.versym.as_ref().expect("version symbols");
        for name in EXPORTS {
            let (i, sym) = elf.dynsyms.iter().enumerate().find(|(_, s)| elf.dynstrtab.get_at(s.st_name) == Some(name)).unwrap_or_else(|| panic!("{name} missing"));
            assert!(sym.is_function() && sym.st_shndx != 0 && sym.st_value != 0, "{name} is not a defined function");
            let v = versym.get_at(i).expect("a version for each symbol").version();
            assert_eq!(version_name(v), Some("LINUX_2.6"), "{name}'s version");
        }
    }

    #[test]
    fn every_process_maps_the_same_pinned_pages() {
        let mut m = MemoryManager::for_tests();
        // Other tests may have installed them already.
        let _ = init();
        let at = map(&mut m).expect("mapping").expect("a vDSO");
        let vvar = at - PAGE_SIZE;
        let p = Params::new(11, 2_000_000, 33, 44);
        publish(&p);
        assert_eq!(m.read_obj::<[u64; 5]>(vvar + 8).unwrap(), [11, p.mult, 33, 44, clock::COARSE_RES_NS]);
        assert_eq!(m.read_obj::<u32>(vvar + 4).unwrap(), p.shift);
        let mut head = [0u8; 4];
        m.copy_in(at, &mut head).unwrap();
        assert_eq!(&head, b"\x7fELF");
        let frame_at = |m: &MemoryManager, va: u64| crate::mm::pagetable::PageTable::frame_of(m.page_table().lookup(va)).expect("mapped");
        let (text, data) = (frame_at(&m, at), frame_at(&m, vvar));
        assert_eq!(frame::refs(text), u16::MAX, "pinned");
        // Read-only for the application, and never writable or executable
        // for the vvar page.
        assert_eq!(m.copy_out(at, b"x"), Err(Errno::EFAULT));
        assert_eq!(m.copy_out(vvar, b"x"), Err(Errno::EFAULT));
        assert_eq!(m.mprotect(vvar, PAGE_SIZE, PROT_READ | crate::mm::vma::PROT_WRITE), Err(Errno::EACCES));
        assert_eq!(m.mprotect(vvar, PAGE_SIZE, PROT_READ | PROT_EXEC), Err(Errno::EACCES));
        // A child shares the frames; made writable, its vDSO is its own copy.
        let mut child = m.fork().unwrap();
        assert_eq!((frame_at(&child, at), frame_at(&child, vvar)), (text, data));
        child.mprotect(at, PAGE_SIZE, PROT_READ | crate::mm::vma::PROT_WRITE | PROT_EXEC).unwrap();
        child.copy_out(at, b"X").unwrap();
        assert_ne!(frame_at(&child, at), text);
        m.copy_in(at, &mut head).unwrap();
        assert_eq!(&head, b"\x7fELF");
        // Unmapping, dropping pages and tearing down free nothing shared.
        child.munmap(at, PAGE_SIZE).unwrap();
        m.madvise(at, PAGE_SIZE, 4).unwrap();
        drop(child);
        assert_eq!(frame::refs(text), u16::MAX);
        m.copy_in(at, &mut head).unwrap();
        assert_eq!(&head, b"\x7fELF", "faulted back in from the shared frame");
        assert_eq!(frame_at(&m, at), text);
    }

    /// The vDSO's code, run on the host over a vvar page laid out as the
    /// sentry lays it out, reads the clocks exactly as the sentry's
    /// formula does: between a sentry reading before and one after.
    #[test]
    fn the_vdso_computes_the_sentrys_clocks() {
        let elf = Elf::parse(IMAGE).expect("the vDSO parses");
        let offset_of = |name: &str| {
            elf.dynsyms.iter().find(|s| elf.dynstrtab.get_at(s.st_name) == Some(name)).map(|s| s.st_value).expect("exported")
        };
        let len = ((1 + PAGES) * PAGE_SIZE) as usize;
        // SAFETY: a fresh private anonymous mapping; nothing else uses it.
        let base = unsafe {
            libc::mmap(core::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        assert_ne!(base, libc::MAP_FAILED);
        let text = base as u64 + PAGE_SIZE;
        // SAFETY: the mapping is page-aligned, writable and larger than
        // one VvarData; it lives until the end of the test.
        let vvar = unsafe { &*(base as *const VvarData) };
        // SAFETY: the image fits the pages after the vvar page (PAGES);
        // then those pages become read+execute, as in a process.
        unsafe {
            core::ptr::copy_nonoverlapping(IMAGE.as_ptr(), text as *mut u8, IMAGE.len());
            assert_eq!(libc::mprotect(text as *mut libc::c_void, (PAGES * PAGE_SIZE) as usize, libc::PROT_READ | libc::PROT_EXEC), 0);
        }
        type GetTime = unsafe extern "C" fn(i32, *mut [i64; 2]) -> i32;
        type Time = unsafe extern "C" fn(*mut i64) -> i64;
        // SAFETY: the symbols are functions of these C signatures
        // (sentry/vdso/vdso.c), now mapped executable at their offsets.
        let (gettime, time): (GetTime, Time) = unsafe {
            (
                core::mem::transmute::<u64, GetTime>(text + offset_of("__vdso_clock_gettime")),
                core::mem::transmute::<u64, Time>(text + offset_of("__vdso_time")),
            )
        };
        let p = Params::new(crate::arch::rdtsc() - 3_000_000_000, 2_345_678, 7_000_000_123, 1_700_000_000_987_654_321);
        vvar.publish(&p);
        for (clk, base0) in [(1, p.mono0), (0, p.real0), (7, p.mono0), (5, p.real0)] {
            for _ in 0..1000 {
                let before = base0 + p.elapsed_ns(crate::arch::rdtsc());
                let mut ts = [0i64; 2];
                // SAFETY: `ts` is a valid timespec for the call.
                assert_eq!(unsafe { gettime(clk, &mut ts) }, 0);
                let after = base0 + p.elapsed_ns(crate::arch::rdtsc());
                let got = ts[0] as u64 * 1_000_000_000 + ts[1] as u64;
                assert!(before <= got && got <= after, "clock {clk}: {before} <= {got} <= {after}");
            }
        }
        let mut t = 0i64;
        // SAFETY: `t` is a valid time_t for the call.
        let s = unsafe { time(&mut t) } as u64;
        assert_eq!(s, t as u64);
        assert!((p.real0 / 1_000_000_000..=p.real0 / 1_000_000_000 + 100).contains(&s));
        // An unknown clock is the host's system call's business: EINVAL.
        let mut ts = [0i64; 2];
        // SAFETY: as above.
        assert_eq!(unsafe { gettime(100, &mut ts) }, -libc::EINVAL);
        // SAFETY: unmapping what this test mapped; nothing refers to it now.
        unsafe { libc::munmap(base, len) };
    }

    #[test]
    fn vvar_readers_never_see_a_torn_update() {
        let v = Arc::new(VvarData::new());
        let p = |k: u64| Params { tsc0: k, mult: k + 1, shift: k as u32, mono0: k * 3, real0: k * 5 };
        v.publish(&p(1));
        assert_eq!(v.read(), p(1));
        assert_eq!(v.seq.load(Ordering::Relaxed) % 2, 0);
        let stop = Arc::new(AtomicBool::new(false));
        // Reads done by each reader: the writer goes on until both have
        // read while it wrote (a busy machine may start them late).
        let counts: Arc<[core::sync::atomic::AtomicU64; 2]> = Arc::new(Default::default());
        let readers: Vec<_> = (0..2)
            .map(|i| {
                let (v, stop, counts) = (v.clone(), stop.clone(), counts.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let r = v.read();
                        assert_eq!(r, p(r.tsc0), "a torn read");
                        counts[i].fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let mut k = 2;
        while k < 200_000 || counts.iter().any(|c| c.load(Ordering::Relaxed) < 1000) {
            v.publish(&p(k));
            k += 1;
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().expect("reader");
        }
        assert_eq!(v.read(), p(k - 1));
    }
}
