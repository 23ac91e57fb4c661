//! Virtual memory areas: the set of mapped ranges of one address space
//! with their permissions. Pure bookkeeping (Linux: `vm_area_struct` and
//! the maple tree); page tables are updated by `MemoryManager`.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

pub const PROT_READ: u32 = 1;
pub const PROT_WRITE: u32 = 2;
pub const PROT_EXEC: u32 = 4;

/// What backs an area (for /proc/self/maps and fault handling).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backing {
    /// Anonymous memory (zero-filled on demand).
    Anon,
    /// The program break.
    Heap,
    /// The main thread's stack.
    Stack,
    /// A private copy of a file's contents: pages come from `map` when
    /// touched (copied on write); without one, zero pages the mapper
    /// fills itself.
    File { path: String, offset: u64, map: Option<super::filemap::FileMapRef> },
    /// A shared memory object (MAP_SHARED|MAP_ANONYMOUS, tmpfs and memfd
    /// files) from byte `offset` on.
    Shared { obj: super::shared::SharedRef, offset: u64 },
    /// A System V segment attached by shmat, from byte `offset` on.
    /// `may_write` is false for a read-only attach, which mprotect may
    /// then not make writable (Linux: VM_MAYWRITE).
    SysvShm { seg: super::shared::SegmentRef, offset: u64, may_write: bool },
    /// Pages the sentry maps into every process (the vDSO and its vvar
    /// page), from byte `offset` of them on.
    Special { kind: super::special::Special, offset: u64 },
}

impl Backing {
    /// The backing of the part of an area starting `by` bytes further in.
    pub fn advance(&mut self, by: u64) {
        match self {
            Backing::File { offset, .. } | Backing::Shared { offset, .. } | Backing::SysvShm { offset, .. } | Backing::Special { offset, .. } => {
                *offset += by
            }
            _ => {}
        }
    }

    /// The shared object whose frames the area maps, and the area's
    /// offset into it.
    pub fn shared_pages(&self) -> Option<(&super::shared::SharedMem, u64)> {
        match self {
            Backing::Shared { obj, offset } => Some((&obj.0, *offset)),
            Backing::SysvShm { seg, offset, .. } => Some((seg.pages(), *offset)),
            _ => None,
        }
    }
}

/// One mapped range `[start, end)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: u32,
    pub shared: bool,
    pub backing: Backing,
}

impl Vma {
    fn split_at(&self, at: u64) -> (Vma, Vma) {
        let mut lo = self.clone();
        let mut hi = self.clone();
        lo.end = at;
        hi.start = at;
        hi.backing.advance(at - self.start);
        (lo, hi)
    }
}

/// The areas of one address space, keyed by start address.
#[derive(Clone, Debug, Default)]
pub struct VmaSet {
    map: BTreeMap<u64, Vma>,
}

impl VmaSet {
    /// The area containing `addr`.
    pub fn find(&self, addr: u64) -> Option<&Vma> {
        self.map.range(..=addr).next_back().map(|(_, v)| v).filter(|v| addr < v.end)
    }

    /// True if no area intersects `[start, end)`.
    pub fn is_free(&self, start: u64, end: u64) -> bool {
        if self.find(start).is_some() {
            return false;
        }
        self.map.range(start..end).next().is_none()
    }

    /// Adds an area; the range must be free. Merges it with compatible
    /// neighbours, as Linux does (mremap and /proc/self/maps see one area).
    pub fn insert(&mut self, v: Vma) {
        debug_assert!(self.is_free(v.start, v.end));
        let (start, end) = (v.start, v.end);
        self.map.insert(v.start, v);
        self.merge_at(end);
        self.merge_at(start);
    }

    /// Merges the area starting at `at` into the one ending there, if
    /// they are compatible.
    fn merge_at(&mut self, at: u64) {
        let Some(hi) = self.map.get(&at) else { return };
        let Some((_, lo)) = self.map.range(..at).next_back() else { return };
        if lo.end != at || lo.prot != hi.prot || lo.shared != hi.shared {
            return;
        }
        let ok = match (&lo.backing, &hi.backing) {
            (Backing::Anon, Backing::Anon) => true,
            (Backing::File { path: p1, offset: o1, map: m1 }, Backing::File { path: p2, offset: o2, map: m2 }) => {
                p1 == p2 && m1 == m2 && o1 + (lo.end - lo.start) == *o2
            }
            (Backing::Shared { obj: a, offset: o1 }, Backing::Shared { obj: b, offset: o2 }) => a == b && o1 + (lo.end - lo.start) == *o2,
            // System V attaches never merge: Linux refuses areas with a
            // close hook (is_mergeable_vma), so the pieces of a split
            // attach stay counted in shm_nattch.
            _ => false,
        };
        if ok {
            let hi_end = hi.end;
            let lo_start = lo.start;
            self.map.remove(&at);
            if let Some(lo) = self.map.get_mut(&lo_start) {
                lo.end = hi_end;
            }
        }
    }

    /// Removes `[start, end)` from every area, splitting at the edges.
    /// Returns the removed pieces.
    pub fn remove(&mut self, start: u64, end: u64) -> Vec<Vma> {
        self.split(start);
        self.split(end);
        let keys: Vec<u64> = self.map.range(start..end).map(|(k, _)| *k).collect();
        keys.into_iter().filter_map(|k| self.map.remove(&k)).collect()
    }

    /// Splits the area containing `at` so that one starts at `at`.
    fn split(&mut self, at: u64) {
        let Some(v) = self.find(at).cloned() else { return };
        if v.start == at {
            return;
        }
        let (lo, hi) = v.split_at(at);
        self.map.insert(lo.start, lo);
        self.map.insert(hi.start, hi);
    }

    /// True if `[start, end)` is entirely covered by areas.
    pub fn covered(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        while at < end {
            match self.find(at) {
                Some(v) => at = v.end,
                None => return false,
            }
        }
        true
    }

    /// Sets the protection of `[start, end)` (must be covered), splitting
    /// as needed, and merges nothing (Linux merges; harmless to skip).
    pub fn protect(&mut self, start: u64, end: u64, prot: u32) -> bool {
        if !self.covered(start, end) {
            return false;
        }
        self.split(start);
        self.split(end);
        for (_, v) in self.map.range_mut(start..end) {
            v.prot = prot;
        }
        let starts: Vec<u64> = self.map.range(start..=end).map(|(k, _)| *k).collect();
        for k in starts.into_iter().rev() {
            self.merge_at(k);
        }
        true
    }

    /// Highest free range of `len` bytes ending at or below `below`, above `floor`.
    pub fn find_gap_topdown(&self, len: u64, below: u64, floor: u64) -> Option<u64> {
        let mut hi = below;
        for (_, v) in self.map.range(..below).rev() {
            let end = v.end.min(hi);
            if hi >= end && hi - end >= len {
                return Some(hi - len);
            }
            hi = hi.min(v.start);
        }
        (hi >= floor.checked_add(len)?).then(|| hi - len)
    }

    /// All areas in address order.
    pub fn iter(&self) -> impl Iterator<Item = &Vma> {
        self.map.values()
    }

    /// Changes the end of the area starting at `start` (brk, mremap in place).
    pub fn set_end(&mut self, start: u64, end: u64) {
        if let Some(v) = self.map.get_mut(&start) {
            v.end = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::shared::{SegmentRef, SharedMem, SysvSegment};
    use alloc::sync::Arc;
    use core::sync::atomic::{AtomicI64, Ordering};

    fn anon(start: u64, end: u64) -> Vma {
        Vma { start, end, prot: PROT_READ | PROT_WRITE, shared: false, backing: Backing::Anon }
    }

    #[test]
    fn find_and_free() {
        let mut s = VmaSet::default();
        s.insert(anon(0x1000, 0x3000));
        assert!(s.find(0x1000).is_some());
        assert!(s.find(0x2fff).is_some());
        assert!(s.find(0x3000).is_none());
        assert!(s.find(0xfff).is_none());
        assert!(s.is_free(0x3000, 0x4000));
        assert!(!s.is_free(0x0, 0x1001));
        assert!(!s.is_free(0x2000, 0x5000));
    }

    #[test]
    fn remove_splits() {
        let mut s = VmaSet::default();
        s.insert(anon(0x1000, 0x5000));
        let gone = s.remove(0x2000, 0x3000);
        assert_eq!(gone, vec![anon(0x2000, 0x3000)]);
        assert_eq!(s.iter().cloned().collect::<Vec<_>>(), vec![anon(0x1000, 0x2000), anon(0x3000, 0x5000)]);
        assert!(s.remove(0x8000, 0x9000).is_empty());
        // Filling the hole merges the three back into one area.
        s.insert(anon(0x2000, 0x3000));
        assert_eq!(s.iter().cloned().collect::<Vec<_>>(), vec![anon(0x1000, 0x5000)]);
        // Different protections do not merge; restoring them does.
        assert!(s.protect(0x2000, 0x3000, PROT_READ));
        assert_eq!(s.iter().count(), 3);
        assert!(s.protect(0x2000, 0x3000, PROT_READ | PROT_WRITE));
        assert_eq!(s.iter().count(), 1);
    }

    #[test]
    fn protect_needs_coverage() {
        let mut s = VmaSet::default();
        s.insert(anon(0x1000, 0x3000));
        s.insert(anon(0x4000, 0x5000));
        assert!(!s.protect(0x1000, 0x5000, PROT_READ));
        assert!(s.protect(0x2000, 0x3000, PROT_READ));
        assert_eq!(s.find(0x2000).unwrap().prot, PROT_READ);
        assert_eq!(s.find(0x1000).unwrap().prot, PROT_READ | PROT_WRITE);
    }

    #[test]
    fn file_areas_merge_only_when_contiguous() {
        let f = |start, end, offset| Vma { backing: Backing::File { path: "/x".into(), offset, map: None }, ..anon(start, end) };
        let mut s = VmaSet::default();
        s.insert(f(0x1000, 0x2000, 0));
        s.insert(f(0x2000, 0x3000, 0x1000));
        s.insert(f(0x3000, 0x4000, 0x5000));
        assert_eq!(s.iter().count(), 2);
    }

    #[test]
    fn gaps_top_down() {
        let mut s = VmaSet::default();
        s.insert(anon(0x8000, 0x10000));
        assert_eq!(s.find_gap_topdown(0x1000, 0x10000, 0x1000), Some(0x7000));
        assert_eq!(s.find_gap_topdown(0x1000, 0x12000, 0x1000), Some(0x11000));
        assert_eq!(s.find_gap_topdown(0x8000, 0x10000, 0x1000), None);
        assert_eq!(s.find_gap_topdown(0x7000, 0x10000, 0x1000), Some(0x1000));
    }

    #[test]
    fn file_offsets_follow_splits() {
        let mut s = VmaSet::default();
        s.insert(Vma { backing: Backing::File { path: "/x".into(), offset: 0, map: None }, ..anon(0x1000, 0x4000) });
        s.remove(0x1000, 0x2000);
        assert_eq!(s.find(0x2000).unwrap().backing, Backing::File { path: "/x".into(), offset: 0x1000, map: None });
    }

    /// A segment that counts the areas holding it.
    struct Counted(Arc<SharedMem>, AtomicI64);

    impl SysvSegment for Counted {
        fn pages(&self) -> &SharedMem {
            &self.0
        }
        fn open(&self) {
            self.1.fetch_add(1, Ordering::Relaxed);
        }
        fn close(&self) {
            self.1.fetch_sub(1, Ordering::Relaxed);
        }
        fn name(&self) -> (String, u64) {
            ("seg".into(), 1)
        }
    }

    #[test]
    fn sysv_attaches_count_their_areas() {
        let seg = Arc::new(Counted(SharedMem::new(0x3000), AtomicI64::new(1)));
        let count = || seg.1.load(Ordering::Relaxed);
        let backing = Backing::SysvShm { seg: SegmentRef::adopt(seg.clone()), offset: 0, may_write: true };
        let mut s = VmaSet::default();
        s.insert(Vma { shared: true, backing, ..anon(0x1000, 0x4000) });
        assert_eq!(count(), 1);
        // A split is one more area; restoring the protection merges
        // nothing, as Linux never merges areas with a close hook.
        assert!(s.protect(0x2000, 0x3000, PROT_READ));
        assert!(s.protect(0x2000, 0x3000, PROT_READ | PROT_WRITE));
        assert_eq!((s.iter().count(), count()), (3, 3));
        let Backing::SysvShm { offset, .. } = &s.find(0x3000).unwrap().backing else { panic!() };
        assert_eq!(*offset, 0x2000);
        // fork copies every area.
        let child = s.clone();
        assert_eq!(count(), 6);
        drop(child);
        drop(s.remove(0x1000, 0x3000));
        assert_eq!(count(), 1);
        drop(s);
        assert_eq!(count(), 0);
    }
}
