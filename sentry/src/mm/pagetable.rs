//! x86-64 4-level page tables for one address space.
//!
//! PVM needs a root *pair*: the supervisor PML4 at an 8 KiB aligned frame
//! X and the user PML4 at X+4 KiB; the hypervisor switches between them on
//! every transition. The user root maps only application memory (the lower
//! half). The supervisor root has the sentry's upper half (shared
//! lower-level tables, copied PML4 entries) and mirrors the user half's
//! PML4 entries so hardware virtualization, which uses one root, sees both.
//! PVM also requires U=1 on every present entry at every level; on real
//! hardware the upper half keeps U=0 (set up by the VMM).

use super::{frame, phys};
use crate::errno::Errno;
use abi::layout::PAGE_SIZE;

pub const PTE_P: u64 = 1;
pub const PTE_W: u64 = 1 << 1;
pub const PTE_U: u64 = 1 << 2;
pub const PTE_A: u64 = 1 << 5;
pub const PTE_D: u64 = 1 << 6;
pub const PTE_PS: u64 = 1 << 7;
pub const PTE_NX: u64 = 1 << 63;
/// Software bit in a *non-present* leaf: the page holds a frame but its
/// area is PROT_NONE (Linux: `_PAGE_PROTNONE`). Hardware ignores every
/// bit of a non-present entry, so the frame address stays recorded.
pub const PTE_PROTNONE: u64 = 1 << 10;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
/// Intermediate entries allow everything; leaves decide.
const TABLE_FLAGS: u64 = PTE_P | PTE_W | PTE_U;

/// An address space's page tables.
#[derive(Debug)]
pub struct PageTable {
    /// Supervisor PML4; the user PML4 is the next frame.
    root: u64,
}

fn index(va: u64, level: u32) -> u64 {
    (va >> (12 + 9 * level)) & 511
}

impl PageTable {
    /// Adopts an existing root pair (the boot address space).
    pub fn adopt(root: u64) -> PageTable {
        PageTable { root }
    }

    /// A new address space sharing the sentry half of `template`.
    pub fn new_from(template: &PageTable) -> Result<PageTable, Errno> {
        let root = frame::alloc_contiguous(2, 2 * PAGE_SIZE).ok_or(Errno::ENOMEM)?;
        for i in 256..512 {
            // SAFETY: both roots are page-table frames we own; i < 512.
            unsafe { phys::write_u64(root + i * 8, phys::read_u64(template.root + i * 8)) };
        }
        Ok(PageTable { root })
    }

    /// Supervisor root (CR3 value).
    pub fn root(&self) -> u64 {
        self.root
    }

    fn user_root(&self) -> u64 {
        self.root + PAGE_SIZE
    }

    /// The leaf entry's physical address for `va`, creating tables if asked.
    fn leaf(&mut self, va: u64, create: bool) -> Result<Option<u64>, Errno> {
        let mut table = self.user_root();
        for level in (1..=3).rev() {
            let slot = table + index(va, level) * 8;
            // SAFETY: `table` is a page-table frame of this address space.
            let e = unsafe { phys::read_u64(slot) };
            if e & PTE_P != 0 {
                table = e & ADDR_MASK;
                continue;
            }
            if !create {
                return Ok(None);
            }
            let t = frame::alloc().ok_or(Errno::ENOMEM)?;
            // SAFETY: `slot` belongs to our table; `t` is a fresh zeroed frame.
            unsafe { phys::write_u64(slot, t | TABLE_FLAGS) };
            if level == 3 {
                // SAFETY: mirror the PML4 entry into the supervisor root.
                unsafe { phys::write_u64(self.root + index(va, 3) * 8, t | TABLE_FLAGS) };
            }
            table = t;
        }
        Ok(Some(table + index(va, 0) * 8))
    }

    /// The leaf entry for `va` (0 if unmapped).
    pub fn lookup(&self, va: u64) -> u64 {
        let mut table = self.user_root();
        for level in (1..=3).rev() {
            // SAFETY: walking our own tables.
            let e = unsafe { phys::read_u64(table + index(va, level) * 8) };
            if e & PTE_P == 0 {
                return 0;
            }
            table = e & ADDR_MASK;
        }
        // SAFETY: as above.
        unsafe { phys::read_u64(table + index(va, 0) * 8) }
    }

    /// Maps page `va` to frame `pa` with leaf `flags` (P and U are added).
    pub fn map(&mut self, va: u64, pa: u64, flags: u64) -> Result<(), Errno> {
        let slot = self.leaf(va, true)?.ok_or(Errno::ENOMEM)?;
        // A and D are set up front: KVM's shadow MMU only prefetches
        // neighbouring guest entries that are already accessed, so this
        // turns one shadow fault per page into one per group of pages.
        let ad = if flags & PTE_W != 0 { PTE_A | PTE_D } else { PTE_A };
        // SAFETY: `slot` is the leaf entry of our table for `va`.
        unsafe { phys::write_u64(slot, (pa & ADDR_MASK) | flags | ad | PTE_P | PTE_U) };
        Ok(())
    }

    /// Unmaps page `va`, returning the old entry (0 if none). The caller
    /// flushes the TLB.
    pub fn unmap(&mut self, va: u64) -> u64 {
        match self.leaf(va, false) {
            Ok(Some(slot)) => {
                // SAFETY: leaf entry of our table.
                let old = unsafe { phys::read_u64(slot) };
                // SAFETY: as above.
                unsafe { phys::write_u64(slot, 0) };
                old
            }
            _ => 0,
        }
    }

    /// Replaces the permissions of a page that holds a frame: `Some(flags)`
    /// makes it accessible with those leaf flags, `None` makes it PROT_NONE.
    /// Returns whether the page held a frame.
    pub fn protect(&mut self, va: u64, flags: Option<u64>) -> bool {
        if let Ok(Some(slot)) = self.leaf(va, false) {
            // SAFETY: leaf entry of our table.
            let old = unsafe { phys::read_u64(slot) };
            if let Some(f) = Self::frame_of(old) {
                let new = match flags {
                    Some(fl) => f | fl | PTE_A | if fl & PTE_W != 0 { PTE_D } else { 0 } | PTE_P | PTE_U,
                    None => f | PTE_PROTNONE,
                };
                // SAFETY: as above.
                unsafe { phys::write_u64(slot, new) };
                return true;
            }
        }
        false
    }

    /// The frame a leaf entry holds (present or PROT_NONE), if any.
    pub fn frame_of(pte: u64) -> Option<u64> {
        (pte & (PTE_P | PTE_PROTNONE) != 0).then_some(pte & ADDR_MASK)
    }

    /// Calls `f(va, pte)` for every leaf entry holding a frame in
    /// `[start, end)`, skipping empty tables.
    pub fn for_each_frame(&self, start: u64, end: u64, f: &mut dyn FnMut(u64, u64)) {
        fn walk(table: u64, level: u32, base: u64, start: u64, end: u64, f: &mut dyn FnMut(u64, u64)) {
            let span = 1u64 << (12 + 9 * level);
            for i in 0..512u64 {
                let lo = base + i * span;
                if lo >= end || lo + span <= start {
                    continue;
                }
                // SAFETY: walking tables of a live address space.
                let e = unsafe { phys::read_u64(table + i * 8) };
                if level == 0 {
                    if PageTable::frame_of(e).is_some() {
                        f(lo, e);
                    }
                } else if e & PTE_P != 0 {
                    walk(e & ADDR_MASK, level - 1, lo, start, end, f);
                }
            }
        }
        walk(self.user_root(), 3, 0, start, end.min(abi::layout::USER_END), f);
    }

    /// Frees the root pair (the address space is gone).
    pub fn free_roots(&mut self) {
        frame::free(self.root);
        frame::free(self.root + PAGE_SIZE);
    }

    /// Frees every user page-table frame (not the mapped frames).
    pub fn free_tables(&mut self) {
        fn walk(table: u64, level: u32) {
            for i in 0..512 {
                // SAFETY: walking tables owned by the address space being torn down.
                let e = unsafe { phys::read_u64(table + i * 8) };
                if e & PTE_P != 0 {
                    if level > 1 {
                        walk(e & ADDR_MASK, level - 1);
                    }
                    frame::free(e & ADDR_MASK);
                }
            }
        }
        for i in 0..256 {
            let slot = self.user_root() + i * 8;
            // SAFETY: our own root.
            let e = unsafe { phys::read_u64(slot) };
            if e & PTE_P != 0 {
                walk(e & ADDR_MASK, 2);
                frame::free(e & ADDR_MASK);
                // SAFETY: our own roots.
                unsafe {
                    phys::write_u64(slot, 0);
                    phys::write_u64(self.root + i * 8, 0);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_lookup_unmap() {
        phys::testmem::init();
        let boot = PageTable { root: frame::alloc_contiguous(2, 8192).unwrap() };
        let mut pt = PageTable::new_from(&boot).unwrap();
        let f = frame::alloc().unwrap();
        let va = 0x7fff_1234_5000;
        assert_eq!(pt.lookup(va), 0);
        pt.map(va, f, PTE_W).unwrap();
        let e = pt.lookup(va);
        assert_eq!(e & ADDR_MASK, f);
        assert_ne!(e & PTE_U, 0);
        assert_ne!(e & PTE_W, 0);
        assert!(pt.protect(va, Some(PTE_NX)));
        assert_eq!(pt.lookup(va) & PTE_W, 0);
        assert!(pt.protect(va, None));
        assert_eq!(pt.lookup(va) & PTE_P, 0);
        assert_eq!(PageTable::frame_of(pt.lookup(va)), Some(f));
        assert!(pt.protect(va, Some(PTE_W)));
        assert_eq!(PageTable::frame_of(pt.unmap(va)), Some(f));
        assert_eq!(pt.lookup(va), 0);
        // The PML4 entry was mirrored into the supervisor root.
        // SAFETY: reading our test table.
        assert_ne!(unsafe { phys::read_u64(pt.root + index(va, 3) * 8) }, 0);
        pt.free_tables();
        assert_eq!(pt.lookup(va), 0);
    }
}
