//! Memory management: frames, page tables, areas and the per-process
//! `MemoryManager` (Linux: `mm_struct`). Page faults are resolved here,
//! inside the guest, without leaving it.
//!
//! Lock order: a `MemoryManager` is owned by its process (one lock
//! outside), then the frame allocator's lock (leaf).

pub mod filemap;
pub mod frame;
pub mod pagetable;
pub mod phys;
pub mod shared;
pub mod special;
pub mod usercopy;
pub mod vma;

use abi::layout::{PAGE_SIZE, TASK_SIZE};
use alloc::vec::Vec;

use crate::errno::Errno;
use pagetable::{PageTable, PTE_NX, PTE_W};
use vma::{Backing, Vma, VmaSet, PROT_EXEC, PROT_READ, PROT_WRITE};

/// Lowest address `mmap` hands out (Linux's default `mmap_min_addr`).
pub const MMAP_MIN_ADDR: u64 = 0x10000;
/// Top of the main stack (Linux without ASLR).
pub const STACK_TOP: u64 = 0x7fff_ffff_f000;
/// Size reserved for the main stack (RLIMIT_STACK default).
pub const STACK_SIZE: u64 = 8 << 20;
/// Pages mapped around a faulting anonymous page.
const FAULT_AROUND: u64 = 16;

/// The frame holding the preemption trampoline (`ud2`), 0 until boot sets it.
static TRAMPOLINE_FRAME: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Allocates and fills the preemption trampoline frame (once, at boot).
pub fn init_trampoline() {
    if let Some(f) = frame::alloc() {
        let ud2 = [0x0fu8, 0x0b];
        let mut page = [0u8; 64];
        for c in page.chunks_mut(2) {
            c.copy_from_slice(&ud2);
        }
        // SAFETY: a fresh frame we own, written once before anyone maps it.
        unsafe { phys::copy_to(f, &page) };
        TRAMPOLINE_FRAME.store(f, core::sync::atomic::Ordering::Relaxed);
    }
}

/// Page-aligns down.
pub fn page_down(v: u64) -> u64 {
    v & !(PAGE_SIZE - 1)
}

/// Page-aligns up (None on overflow).
pub fn page_up(v: u64) -> Option<u64> {
    v.checked_add(PAGE_SIZE - 1).map(page_down)
}

/// How a page was accessed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Access {
    pub write: bool,
    pub exec: bool,
    /// The application's own fault at this address: taking it dropped
    /// any cached translation of the address (x86 invalidates the TLB
    /// entry of a faulting address, and KVM's shadow MMU walks the guest
    /// tables again on a fault), so a changed entry needs no invlpg.
    pub user: bool,
}

fn pte_flags(prot: u32) -> u64 {
    let mut f = 0;
    if prot & PROT_WRITE != 0 {
        f |= PTE_W;
    }
    if prot & PROT_EXEC == 0 {
        f |= PTE_NX;
    }
    f
}

fn allows(prot: u32, a: Access) -> bool {
    if a.write {
        prot & PROT_WRITE != 0
    } else if a.exec {
        prot & PROT_EXEC != 0
    } else {
        prot & (PROT_READ | PROT_WRITE | PROT_EXEC) != 0
    }
}

/// Pages whose translations must be dropped: invalidated one by one when
/// few (each `invlpg` is emulated by PVM, ~µs), with one whole flush when
/// many. Flushes when dropped, so no path can forget it.
#[derive(Default)]
struct TlbBatch {
    pages: [u64; TLB_BATCH],
    n: usize,
    overflow: bool,
}

/// Most single-page invalidations before a whole flush is cheaper.
const TLB_BATCH: usize = 4;

impl TlbBatch {
    fn add(&mut self, va: u64) {
        if self.n < TLB_BATCH {
            self.pages[self.n] = va;
            self.n += 1;
        } else {
            self.overflow = true;
        }
    }
}

impl Drop for TlbBatch {
    fn drop(&mut self) {
        if self.overflow {
            crate::arch::flush_tlb();
        } else {
            for &p in &self.pages[..self.n] {
                crate::arch::invlpg(p);
            }
        }
    }
}

/// One process's address space.
pub struct MemoryManager {
    pt: PageTable,
    vmas: VmaSet,
    brk_start: u64,
    brk: u64,
    /// mmap searches downwards from here.
    mmap_base: u64,
}

impl MemoryManager {
    /// An empty address space over page tables `pt`, which it owns (and
    /// frees with itself): never the boot root pair, which is only the
    /// template of the sentry's half.
    pub fn new(mut pt: PageTable) -> MemoryManager {
        let tramp = TRAMPOLINE_FRAME.load(core::sync::atomic::Ordering::Relaxed);
        if tramp != 0 {
            // Read/execute for the application; never in a VMA, never freed
            // with the address space. A failure only disables preemption.
            let _ = pt.map(abi::layout::PREEMPT_TRAMPOLINE, tramp, 0);
        }
        MemoryManager { pt, vmas: VmaSet::default(), brk_start: 0, brk: 0, mmap_base: STACK_TOP - STACK_SIZE - (1 << 30) }
    }

    /// An empty address space over the unit tests' fake physical memory.
    #[cfg(test)]
    pub fn for_tests() -> MemoryManager {
        phys::testmem::init();
        let boot = PageTable::adopt(frame::alloc_contiguous(2, 8192).expect("test memory"));
        MemoryManager::new(PageTable::new_from(&boot).expect("test memory"))
    }

    /// The page tables (for CR3).
    pub fn page_table(&self) -> &PageTable {
        &self.pt
    }

    /// Pages with a frame (resident set, for /proc).
    pub fn resident_pages(&self) -> u64 {
        let mut n = 0;
        for v in self.vmas.iter() {
            self.pt.for_each_frame(v.start, v.end, &mut |_, _| n += 1);
        }
        n
    }

    /// mincore: one byte per page of `[start, start+pages*4K)`, 1 where
    /// the page has a frame in this address space. Stops at the first
    /// page outside every area: the bytes so far and ENOMEM (Linux fills
    /// the user's vector area by area before failing).
    pub fn mincore(&self, start: u64, pages: u64) -> (Vec<u8>, Option<Errno>) {
        let mut out = Vec::new();
        let mut at = start;
        for _ in 0..pages {
            if self.vmas.find(at).is_none() {
                return (out, Some(Errno::ENOMEM));
            }
            out.push(u8::from(self.pt.lookup(at) & pagetable::PTE_P != 0));
            at += PAGE_SIZE;
        }
        (out, None)
    }

    /// The areas, for /proc/self/maps.
    pub fn vmas(&self) -> &VmaSet {
        &self.vmas
    }

    /// Sets the initial program break (just past the loaded program).
    pub fn set_brk_start(&mut self, at: u64) {
        self.brk_start = at;
        self.brk = at;
    }

    /// Resolves a fault at `va`: Ok if the access is now possible.
    pub fn handle_fault(&mut self, va: u64, a: Access) -> Result<(), Errno> {
        let v = self.vmas.find(va).ok_or(Errno::EFAULT)?;
        if !allows(v.prot, a) {
            return Err(Errno::EFAULT);
        }
        let (prot, start, end) = (v.prot, v.start, v.end);
        let page = page_down(va);
        let pte = self.pt.lookup(page);
        if pte & pagetable::PTE_PROTNONE != 0 {
            // The area allows the access but the page was left PROT_NONE:
            // cannot happen (mprotect updates both), so refuse it.
            return Err(Errno::EFAULT);
        }
        if pte & pagetable::PTE_P != 0 {
            if a.write && pte & PTE_W == 0 {
                if v.shared {
                    // Shared frames are never copy-on-write.
                    self.pt.protect(page, Some(pte_flags(prot)));
                    if !a.user {
                        crate::arch::invlpg(page);
                    }
                    return Ok(());
                }
                if let Backing::File { map: Some(_), offset, .. } = v.backing {
                    // The file's pages around it are likely written too
                    // (a program's data, first read then written).
                    let idx = (offset + (page - start)) / PAGE_SIZE;
                    let lo = start.max(page - (idx % filemap::READ_AROUND) * PAGE_SIZE);
                    let hi = end.min(lo + filemap::READ_AROUND * PAGE_SIZE);
                    self.copy_cluster(lo, hi, page, prot);
                }
                return self.break_cow(page, pte, prot, !a.user);
            }
            // Present with the right permissions: a stale TLB entry.
            crate::arch::invlpg(page);
            return Ok(());
        }
        let flags = pte_flags(prot);
        if let Backing::Special { kind, offset } = v.backing {
            // The shared frame, read-only; a write (to an area made
            // writable) then takes a private copy.
            let f = special::frame(kind, (offset + (page - start)) / PAGE_SIZE).ok_or(Errno::EFAULT)?;
            frame::get(f);
            if let Err(e) = self.pt.map(page, f, flags & !PTE_W) {
                frame::free(f);
                return Err(e);
            }
            if a.write {
                // Mapped just now: no translation of it can be cached.
                return self.break_cow(page, self.pt.lookup(page), prot, false);
            }
            return Ok(());
        }
        if let Some((obj, offset)) = v.backing.shared_pages() {
            // The object's frame for this page, whoever touched it first.
            let idx = (offset + (page - start)) / PAGE_SIZE;
            if matches!(v.backing, Backing::SysvShm { .. }) && idx >= obj.size.div_ceil(PAGE_SIZE) {
                // Past the segment (an attach grown by mremap), where
                // Linux raises SIGBUS: no page to give.
                return Err(Errno::EFAULT);
            }
            let f = obj.frame(idx)?;
            if let Err(e) = self.pt.map(page, f, flags) {
                frame::free(f);
                return Err(e);
            }
            return Ok(());
        }
        if let Backing::File { map: Some(map), offset, .. } = &v.backing {
            let (map, offset) = (map.0.clone(), *offset);
            return self.fault_file(page, start, end, offset, &map, prot, a.write);
        }
        let block = page_down(page - start) / (FAULT_AROUND * PAGE_SIZE) * (FAULT_AROUND * PAGE_SIZE) + start;
        let lo = block.max(start);
        let hi = (block + FAULT_AROUND * PAGE_SIZE).min(end);
        let mut p = lo;
        while p < hi {
            if p == page || PageTable::frame_of(self.pt.lookup(p)).is_none() {
                let f = frame::alloc().ok_or(Errno::ENOMEM)?;
                if let Err(e) = self.pt.map(p, f, flags) {
                    frame::free(f);
                    return Err(e);
                }
            }
            p += PAGE_SIZE;
        }
        Ok(())
    }

    /// A fault on a page of a private file mapping: the file's pages
    /// around it (an aligned cluster of file pages, within the area) are
    /// read if need be and mapped read-only; a write then copies its page.
    #[allow(clippy::too_many_arguments)]
    fn fault_file(&mut self, page: u64, start: u64, end: u64, offset: u64, map: &filemap::FileMap, prot: u32, write: bool) -> Result<(), Errno> {
        let idx = (offset + (page - start)) / PAGE_SIZE;
        let first = (offset / PAGE_SIZE).max(idx - idx % filemap::READ_AROUND);
        let last = (offset / PAGE_SIZE + (end - start) / PAGE_SIZE).min(idx - idx % filemap::READ_AROUND + filemap::READ_AROUND);
        for (i, f) in map.frames(first, last, idx)? {
            let va = start + i * PAGE_SIZE - offset;
            if PageTable::frame_of(self.pt.lookup(va)).is_some() {
                continue;
            }
            // A write fault takes private copies of the whole cluster: the
            // pages of a written file mapping (a library's data, which the
            // dynamic linker relocates) are mostly written, and a copy
            // costs far less than the fault each would take.
            let copy = if write { frame::alloc() } else { None };
            let r = match copy {
                Some(new) => {
                    // SAFETY: `new` is ours; `f` is held by the file map.
                    unsafe { phys::copy_page(new, f) };
                    self.pt.map(va, new, pte_flags(prot)).inspect_err(|_| frame::free(new))
                }
                None => {
                    frame::get(f);
                    self.pt.map(va, f, pte_flags(prot) & !PTE_W).inspect_err(|_| frame::free(f))
                }
            };
            if let Err(e) = r {
                if va == page {
                    return Err(e);
                }
            }
        }
        let pte = self.pt.lookup(page);
        if write && pte & PTE_W == 0 {
            // No memory for a copy above: the usual break, which says so.
            return self.break_cow(page, pte, prot, false);
        }
        Ok(())
    }

    /// Gives the present read-only pages of `[lo, hi)` (but `skip`) that
    /// still share a frame private copies, writable: one TLB batch
    /// instead of a write fault each. Best effort: stops when memory runs
    /// short.
    fn copy_cluster(&mut self, lo: u64, hi: u64, skip: u64, prot: u32) {
        let mut flush = TlbBatch::default();
        let mut p = lo;
        while p < hi {
            let pte = self.pt.lookup(p);
            let shared = pte & pagetable::PTE_P != 0 && pte & PTE_W == 0 && PageTable::frame_of(pte).is_some_and(|f| frame::refs(f) > 1);
            if p != skip && shared {
                let Some(old) = PageTable::frame_of(pte) else { break };
                if self.copy_private(p, old, pte_flags(prot)).is_err() {
                    break;
                }
                flush.add(p);
            }
            p += PAGE_SIZE;
        }
    }

    /// Gives the page at `va` (in an area) a frame of its own, whatever
    /// the area's protection: the loader then writes into it (the zeros
    /// after a segment's last file byte).
    pub fn private_page(&mut self, va: u64) -> Result<(), Errno> {
        let page = page_down(va);
        let v = self.vmas.find(page).ok_or(Errno::EFAULT)?;
        let (prot, start, end) = (v.prot, v.start, v.end);
        if PageTable::frame_of(self.pt.lookup(page)).is_none() {
            match &v.backing {
                Backing::File { map: Some(map), offset, .. } => {
                    let (map, offset) = (map.0.clone(), *offset);
                    self.fault_file(page, start, end, offset, &map, prot, false)?;
                }
                _ => return self.populate_page(page),
            }
        }
        let f = PageTable::frame_of(self.pt.lookup(page)).ok_or(Errno::EFAULT)?;
        if frame::refs(f) > 1 {
            self.copy_private(page, f, pte_flags(prot))?;
            crate::arch::invlpg(page);
        }
        Ok(())
    }

    /// Maps a private copy of frame `old` (mapped at `page`, which keeps
    /// it referenced until now) at `page` with `flags`, dropping the
    /// reference to `old`. The caller invalidates the TLB entry.
    fn copy_private(&mut self, page: u64, old: u64, flags: u64) -> Result<(), Errno> {
        let new = frame::alloc().ok_or(Errno::ENOMEM)?;
        // SAFETY: `new` is ours; `old` stays mapped (and referenced) here.
        unsafe { phys::copy_page(new, old) };
        if let Err(e) = self.pt.map(page, new, flags) {
            frame::free(new);
            return Err(e);
        }
        frame::free(old);
        Ok(())
    }

    /// A write to a present read-only page of a writable area: the frame is
    /// shared copy-on-write (after fork). The last user takes it over; the
    /// others get a private copy.
    fn break_cow(&mut self, page: u64, pte: u64, prot: u32, flush: bool) -> Result<(), Errno> {
        let old = PageTable::frame_of(pte).ok_or(Errno::EFAULT)?;
        let flags = pte_flags(prot);
        if frame::refs(old) <= 1 {
            self.pt.protect(page, Some(flags));
        } else {
            self.copy_private(page, old, flags)?;
        }
        if flush {
            crate::arch::invlpg(page);
        }
        Ok(())
    }

    /// Writes `data` at `va` through the page tables, whatever the pages'
    /// protection (loading program segments). The pages must be present.
    pub fn poke(&mut self, va: u64, data: &[u8]) -> Result<(), Errno> {
        let mut done = 0;
        while done < data.len() {
            let at = va + done as u64;
            let n = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(data.len() - done);
            let f = PageTable::frame_of(self.pt.lookup(page_down(at))).ok_or(Errno::EFAULT)?;
            // SAFETY: `f` is a frame mapped in this address space, which we
            // hold exclusively; the copy stays within the page.
            unsafe { phys::copy_to(f + at % PAGE_SIZE, &data[done..done + n]) };
            done += n;
        }
        Ok(())
    }

    /// A copy of this address space for a child process (fork): shared
    /// areas share frames, private ones share them copy-on-write.
    pub fn fork(&mut self) -> Result<MemoryManager, Errno> {
        let mut child = MemoryManager::new(PageTable::new_from(&self.pt)?);
        child.vmas = self.vmas.clone();
        child.brk_start = self.brk_start;
        child.brk = self.brk;
        child.mmap_base = self.mmap_base;
        let mut result = Ok(());
        let mut shared_writes = 0u64;
        let areas: Vec<(u64, u64, u32, bool)> = self.vmas.iter().map(|v| (v.start, v.end, v.prot, v.shared)).collect();
        for (start, end, prot, shared) in areas {
            let mut leaves = Vec::new();
            self.pt.for_each_frame(start, end, &mut |va, pte| leaves.push((va, pte)));
            for (va, pte) in leaves {
                let Some(f) = PageTable::frame_of(pte) else { continue };
                let flags = pte_flags(prot);
                let child_flags = if shared || prot & PROT_WRITE == 0 { flags } else { flags & !PTE_W };
                if !shared && pte & PTE_W != 0 {
                    self.pt.protect(va, Some(child_flags));
                    shared_writes += 1;
                }
                frame::get(f);
                if let Err(e) = child.pt.map(va, f, child_flags) {
                    frame::free(f);
                    result = Err(e);
                    break;
                }
                if pte & pagetable::PTE_P == 0 {
                    child.pt.protect(va, None);
                }
            }
        }
        if shared_writes > 0 {
            crate::arch::flush_tlb();
        }
        result.map(|()| child)
    }

    /// Maps all the pages of special mapping `kind` at `start` (present
    /// from the start: every process uses them).
    pub fn map_special(&mut self, start: u64, kind: special::Special, prot: u32) -> Result<(), Errno> {
        let n = special::pages(kind);
        if n == 0 {
            return Err(Errno::ENOMEM);
        }
        let end = start.checked_add(n * PAGE_SIZE).ok_or(Errno::ENOMEM)?;
        self.map_fixed(Vma { start, end, prot, shared: false, backing: Backing::Special { kind, offset: 0 } })?;
        for i in 0..n {
            let f = special::frame(kind, i).ok_or(Errno::ENOMEM)?;
            frame::get(f);
            if let Err(e) = self.pt.map(start + i * PAGE_SIZE, f, pte_flags(prot) & !PTE_W) {
                frame::free(f);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Gives page `va` of an existing area a frame whatever the area's
    /// protection (used to fill program segments, even PROT_NONE ones).
    pub fn populate_page(&mut self, va: u64) -> Result<(), Errno> {
        let prot = self.vmas.find(va).ok_or(Errno::EFAULT)?.prot;
        if PageTable::frame_of(self.pt.lookup(va)).is_some() {
            return Ok(());
        }
        let f = frame::alloc().ok_or(Errno::ENOMEM)?;
        if let Err(e) = self.pt.map(va, f, pte_flags(prot)) {
            frame::free(f);
            return Err(e);
        }
        if prot & (PROT_READ | PROT_WRITE | PROT_EXEC) == 0 {
            self.pt.protect(va, None);
        }
        Ok(())
    }

    /// Unmaps and frees the pages of `[start, end)`.
    fn drop_pages(&mut self, start: u64, end: u64) {
        let mut flush = TlbBatch::default();
        let mut p = start;
        while p < end {
            if let Some(f) = PageTable::frame_of(self.pt.unmap(p)) {
                frame::free(f);
                flush.add(p);
            }
            p += PAGE_SIZE;
        }
    }

    fn check_range(addr: u64, len: u64) -> Result<(u64, u64), Errno> {
        if addr % PAGE_SIZE != 0 || len == 0 {
            return Err(Errno::EINVAL);
        }
        let end = page_up(len).and_then(|l| addr.checked_add(l)).ok_or(Errno::EINVAL)?;
        if end > TASK_SIZE {
            return Err(Errno::EINVAL);
        }
        Ok((addr, end))
    }

    /// Adds an area at a fixed place, replacing what was there.
    pub fn map_fixed(&mut self, v: Vma) -> Result<(), Errno> {
        if v.start % PAGE_SIZE != 0 || v.end % PAGE_SIZE != 0 || v.start >= v.end || v.end > TASK_SIZE {
            return Err(Errno::EINVAL);
        }
        for gone in self.vmas.remove(v.start, v.end) {
            self.drop_pages(gone.start, gone.end);
        }
        self.vmas.insert(v);
        Ok(())
    }

    /// mmap for anonymous and private-copy mappings; returns the address.
    /// `hint`/`fixed` follow MAP_FIXED / MAP_FIXED_NOREPLACE semantics.
    pub fn mmap(&mut self, hint: u64, len: u64, prot: u32, fixed: bool, noreplace: bool, shared: bool, backing: Backing) -> Result<u64, Errno> {
        let len = page_up(len).filter(|l| *l != 0 && *l <= TASK_SIZE).ok_or(Errno::ENOMEM)?;
        let addr = if fixed {
            let (a, end) = Self::check_range(hint, len)?;
            if a < MMAP_MIN_ADDR {
                return Err(Errno::EPERM);
            }
            if noreplace && !self.vmas.is_free(a, end) {
                return Err(Errno::EEXIST);
            }
            a
        } else {
            let h = page_down(hint);
            if h >= MMAP_MIN_ADDR && h.checked_add(len).is_some_and(|e| e <= TASK_SIZE) && self.vmas.is_free(h, h + len) {
                h
            } else {
                self.vmas.find_gap_topdown(len, self.mmap_base, MMAP_MIN_ADDR).ok_or(Errno::ENOMEM)?
            }
        };
        self.map_fixed(Vma { start: addr, end: addr + len, prot, shared, backing })?;
        Ok(addr)
    }

    /// A free range of `len` bytes where mmap would put it.
    pub fn find_free(&mut self, len: u64) -> Option<u64> {
        self.vmas.find_gap_topdown(len, self.mmap_base, MMAP_MIN_ADDR)
    }

    /// munmap.
    pub fn munmap(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        let (start, end) = Self::check_range(addr, len)?;
        for gone in self.vmas.remove(start, end) {
            self.drop_pages(gone.start, gone.end);
        }
        Ok(())
    }

    /// shmdt: unmaps the System V attach at `addr`: the area starting
    /// there and the pieces of the same attach that munmap or mprotect
    /// split off, found by their offset into the segment (Linux:
    /// ksys_shmdt). EINVAL if no attach starts at `addr`.
    pub fn detach_shared(&mut self, addr: u64) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let at_its_offset = |v: &Vma| match &v.backing {
            Backing::SysvShm { offset, .. } => v.start >= addr && (v.start - addr) / PAGE_SIZE == offset / PAGE_SIZE,
            _ => false,
        };
        let mut ranges = Vec::new();
        let mut first: Option<(&shared::SegmentRef, u64)> = None;
        for v in self.vmas.iter().filter(|v| v.end > addr) {
            match (&first, &v.backing) {
                (None, Backing::SysvShm { seg, .. }) if at_its_offset(v) => {
                    first = Some((seg, page_up(seg.pages().size).unwrap_or(u64::MAX)));
                    ranges.push((v.start, v.end));
                }
                (None, _) => {}
                (Some((m, size)), backing) => {
                    if v.end - addr > *size {
                        break;
                    }
                    if matches!(backing, Backing::SysvShm { seg, .. } if seg == *m) && at_its_offset(v) {
                        ranges.push((v.start, v.end));
                    }
                }
            }
        }
        if ranges.is_empty() {
            return Err(Errno::EINVAL);
        }
        for (s, e) in ranges {
            self.munmap(s, e - s)?;
        }
        Ok(())
    }

    /// mprotect.
    pub fn mprotect(&mut self, addr: u64, len: u64, prot: u32) -> Result<(), Errno> {
        if addr % PAGE_SIZE != 0 {
            return Err(Errno::EINVAL);
        }
        if len == 0 {
            return Ok(());
        }
        let (start, end) = Self::check_range(addr, len)?;
        // Protections an area may never get (Linux: no VM_MAYWRITE or
        // VM_MAYEXEC): write for a read-only System V attach, write or
        // execute for the vvar page.
        let forbidden = |v: &Vma| match v.backing {
            Backing::SysvShm { may_write: false, .. } => PROT_WRITE,
            Backing::Special { kind: special::Special::Vvar, .. } => PROT_WRITE | PROT_EXEC,
            _ => 0,
        };
        if self.vmas.iter().any(|v| v.start < end && v.end > start && prot & forbidden(v) != 0) {
            return Err(Errno::EACCES);
        }
        if !self.vmas.protect(start, end, prot) {
            return Err(Errno::ENOMEM);
        }
        let flags = (prot & (PROT_READ | PROT_WRITE | PROT_EXEC) != 0).then(|| pte_flags(prot));
        let mut flush = TlbBatch::default();
        let mut leaves = Vec::new();
        self.pt.for_each_frame(start, end, &mut |va, pte| leaves.push((va, pte)));
        for (va, pte) in leaves {
            // A frame shared copy-on-write stays read-only until written.
            let shared = self.vmas.find(va).is_some_and(|v| v.shared);
            let cow = !shared && PageTable::frame_of(pte).is_some_and(|f| frame::refs(f) > 1);
            let f = flags.map(|f| if cow { f & !PTE_W } else { f });
            if self.pt.protect(va, f) {
                flush.add(va);
            }
        }
        Ok(())
    }

    /// madvise: MADV_DONTNEED/FREE drop private anonymous pages (they read
    /// as zero afterwards); other advice is accepted and ignored, as Linux
    /// may.
    pub fn madvise(&mut self, addr: u64, len: u64, advice: u32) -> Result<(), Errno> {
        const MADV_DONTNEED: u32 = 4;
        const MADV_FREE: u32 = 8;
        if addr % PAGE_SIZE != 0 {
            return Err(Errno::EINVAL);
        }
        if len == 0 {
            return Ok(());
        }
        let (start, end) = Self::check_range(addr, len)?;
        if !self.vmas.covered(start, end) {
            return Err(Errno::ENOMEM);
        }
        match advice {
            MADV_DONTNEED | MADV_FREE => self.drop_pages(start, end),
            0..=3 | 9..=21 | 100..=101 => {}
            _ => return Err(Errno::EINVAL),
        }
        Ok(())
    }

    /// brk: grows or shrinks the heap area; returns the new break (the old
    /// one if the request cannot be met, as Linux does).
    pub fn brk(&mut self, new: u64) -> u64 {
        if new < self.brk_start || new > self.brk_start + (1 << 40) {
            return self.brk;
        }
        let (Some(old_end), Some(new_end)) = (page_up(self.brk), page_up(new)) else { return self.brk };
        if new_end > old_end {
            if !self.vmas.is_free(old_end, new_end) {
                return self.brk;
            }
            let heap_start = page_up(self.brk_start).unwrap_or(self.brk_start);
            if self.vmas.find(heap_start).is_some_and(|v| v.backing == Backing::Heap) {
                self.vmas.set_end(heap_start, new_end);
            } else {
                self.vmas.insert(Vma { start: old_end, end: new_end, prot: PROT_READ | PROT_WRITE, shared: false, backing: Backing::Heap });
            }
        } else if new_end < old_end {
            for gone in self.vmas.remove(new_end, old_end) {
                self.drop_pages(gone.start, gone.end);
            }
        }
        self.brk = new;
        new
    }

    /// mremap (MREMAP_MAYMOVE = 1, MREMAP_FIXED = 2, MREMAP_DONTUNMAP = 4).
    pub fn mremap(&mut self, old: u64, old_len: u64, new_len: u64, flags: u32, new_addr: u64) -> Result<u64, Errno> {
        if old % PAGE_SIZE != 0 || flags & !7 != 0 || (flags & 2 != 0 && flags & 1 == 0) || flags & 4 != 0 {
            return Err(Errno::EINVAL);
        }
        let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
        let new_len = page_up(new_len).filter(|l| *l != 0).ok_or(Errno::EINVAL)?;
        if old_len == 0 {
            // Duplicating shared mappings is not supported.
            return Err(Errno::EINVAL);
        }
        let v = self.vmas.find(old).cloned().ok_or(Errno::EFAULT)?;
        let old_end = old.checked_add(old_len).ok_or(Errno::EINVAL)?;
        if old_end > v.end {
            return Err(Errno::EFAULT);
        }
        if flags & 2 == 0 {
            if new_len <= old_len {
                self.munmap(old + new_len, old_len - new_len)?;
                return Ok(old);
            }
            let grow_end = old.checked_add(new_len).ok_or(Errno::ENOMEM)?;
            if old_end == v.end && grow_end <= TASK_SIZE && self.vmas.is_free(old_end, grow_end) {
                self.vmas.set_end(v.start, grow_end);
                return Ok(old);
            }
            if flags & 1 == 0 {
                return Err(Errno::ENOMEM);
            }
        }
        let dest = if flags & 2 != 0 {
            let (d, _) = Self::check_range(new_addr, new_len)?;
            let overlap = d < old_end && old < d + new_len;
            if overlap {
                return Err(Errno::EINVAL);
            }
            d
        } else {
            self.vmas.find_gap_topdown(new_len, self.mmap_base, MMAP_MIN_ADDR).ok_or(Errno::ENOMEM)?
        };
        // Move the pages (frames change address, not content).
        let mut moved = Vec::new();
        let mut moved_flush = TlbBatch::default();
        let mut p = old;
        while p < old_end.min(old + new_len) {
            if let Some(f) = PageTable::frame_of(self.pt.unmap(p)) {
                moved_flush.add(p);
                moved.push((p - old, f));
            }
            p += PAGE_SIZE;
        }
        drop(moved_flush);
        for gone in self.vmas.remove(old, old_end) {
            self.drop_pages(gone.start, gone.end);
        }
        let mut nv = v.clone();
        nv.start = dest;
        nv.end = dest + new_len;
        nv.backing.advance(old - v.start);
        self.map_fixed(nv)?;
        let flags_pte = pte_flags(v.prot);
        let none = v.prot & (PROT_READ | PROT_WRITE | PROT_EXEC) == 0;
        for (off, f) in moved {
            self.pt.map(dest + off, f, flags_pte)?;
            if none {
                self.pt.protect(dest + off, None);
            }
        }
        Ok(dest)
    }

    /// Frees every page and page table (process exit, exec). No TLB
    /// entry is dropped: an address space goes only once no vCPU has its
    /// root loaded (exit leaves it for the sentry's root first, exec for
    /// the new program's), and loading another root flushed them. Nor are
    /// the entries cleared, as the tables go too: each write to a table
    /// the host shadows would be an emulated instruction.
    pub fn teardown(&mut self) {
        let all: Vec<(u64, u64)> = self.vmas.iter().map(|v| (v.start, v.end)).collect();
        for (s, e) in all {
            self.pt.for_each_frame(s, e, &mut |_, pte| {
                if let Some(f) = PageTable::frame_of(pte) {
                    frame::free(f);
                }
            });
        }
        self.vmas = VmaSet::default();
        self.pt.free_tables();
    }
}

impl Drop for MemoryManager {
    fn drop(&mut self) {
        self.teardown();
        self.pt.free_roots();
    }
}
