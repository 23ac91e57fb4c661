//! The physical-frame allocator. Frames above the sentry's image and heap
//! are handed out from a bump pointer (never-touched memory reads as zero,
//! so those need no clearing) and recycled through a free list (cleared
//! on reuse). Linux analogue: the buddy allocator, minus orders.

use alloc::vec::Vec;
use spin::Mutex;

use super::phys;
use abi::layout::PAGE_SIZE;

struct Frames {
    next: u64,
    end: u64,
    free: Vec<u64>,
    used: u64,
    /// Reference counts by page frame number (frames shared after fork),
    /// in chunks made when a frame of theirs is first handed out: a flat
    /// table for 8 GiB of guest memory would be 4 MiB touched at boot.
    refs: Vec<Option<alloc::boxed::Box<[u16; REF_CHUNK]>>>,
    /// Frames covered by `refs`.
    nframes: usize,
}

/// Frames per reference-count chunk (one 4 KiB chunk).
const REF_CHUNK: usize = 2048;

static FRAMES: Mutex<Frames> = Mutex::new(Frames { next: 0, end: 0, free: Vec::new(), used: 0, refs: Vec::new(), nframes: 0 });

/// Hands `[start, end)` (page aligned) to the allocator.
pub fn init(start: u64, end: u64) {
    let mut f = FRAMES.lock();
    f.next = start.div_ceil(PAGE_SIZE) * PAGE_SIZE;
    f.end = end & !(PAGE_SIZE - 1);
    let n = (f.end / PAGE_SIZE) as usize;
    f.nframes = n;
    f.refs = (0..n.div_ceil(REF_CHUNK)).map(|_| None).collect();
}

impl Frames {
    /// The count of frame `pa`, made (zero) if `create`; None outside
    /// the managed range.
    fn slot(&mut self, pa: u64, create: bool) -> Option<&mut u16> {
        let i = (pa / PAGE_SIZE) as usize;
        if i >= self.nframes {
            return None;
        }
        let chunk = self.refs.get_mut(i / REF_CHUNK)?;
        if chunk.is_none() && create {
            *chunk = Some(alloc::boxed::Box::new([0u16; REF_CHUNK]));
        }
        chunk.as_mut().map(|c| &mut c[i % REF_CHUNK])
    }

    fn set_ref(&mut self, pa: u64, v: u16) {
        if let Some(r) = self.slot(pa, true) {
            *r = v;
        }
    }
}

/// Takes another reference to a frame (it is now shared). A count that
/// reaches the maximum stays there: the frame is never freed after that
/// (leaked rather than freed while still mapped).
pub fn get(pa: u64) {
    let mut f = FRAMES.lock();
    if let Some(r) = f.slot(pa, true) {
        *r = r.saturating_add(1);
    }
}

/// Makes a frame permanent: references come and go (`get`, `free`) without
/// ever freeing it, and it always counts as shared, so a write to it is
/// always copied (the vDSO's frames, mapped by every process).
pub fn pin(pa: u64) {
    FRAMES.lock().set_ref(pa, PINNED);
}

/// The count of a pinned (or saturated) frame.
const PINNED: u16 = u16::MAX;

/// References to a frame.
pub fn refs(pa: u64) -> u16 {
    FRAMES.lock().slot(pa, false).map_or(0, |r| *r)
}

/// Allocates one zeroed frame.
pub fn alloc() -> Option<u64> {
    let mut f = FRAMES.lock();
    if let Some(pa) = f.free.pop() {
        f.used += 1;
        f.set_ref(pa, 1);
        drop(f);
        // SAFETY: the frame was just taken off the free list: ours alone.
        unsafe { phys::zero_page(pa) };
        return Some(pa);
    }
    if f.next + PAGE_SIZE > f.end {
        return None;
    }
    let pa = f.next;
    f.next += PAGE_SIZE;
    f.used += 1;
    f.set_ref(pa, 1);
    Some(pa)
}

/// Allocates `n` contiguous never-used frames aligned to `align` bytes
/// (page-table root pairs, the sentry heap). They read as zero.
pub fn alloc_contiguous(n: u64, align: u64) -> Option<u64> {
    let mut f = FRAMES.lock();
    let start = f.next.div_ceil(align) * align;
    let end = start.checked_add(n * PAGE_SIZE)?;
    if end > f.end {
        return None;
    }
    // Frames skipped for alignment go to the free list.
    let mut p = f.next;
    while p < start {
        f.free.push(p);
        p += PAGE_SIZE;
    }
    f.next = end;
    f.used += n;
    let mut p = start;
    while p < end {
        f.set_ref(p, 1);
        p += PAGE_SIZE;
    }
    Some(start)
}

/// Drops a reference to a frame; the last one returns it.
pub fn free(pa: u64) {
    let mut f = FRAMES.lock();
    match f.slot(pa, false) {
        Some(r) if *r == PINNED => return,
        Some(r) if *r > 1 => {
            *r -= 1;
            return;
        }
        Some(r) => *r = 0,
        None => return,
    }
    f.used = f.used.saturating_sub(1);
    f.free.push(pa);
}

/// Frames in use (for /proc/meminfo and tests).
pub fn used() -> u64 {
    FRAMES.lock().used
}

/// Frames still available.
pub fn available() -> u64 {
    let f = FRAMES.lock();
    (f.end - f.next) / PAGE_SIZE + f.free.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_zeroed_and_recycled() {
        phys::testmem::init();
        let a = alloc().unwrap();
        assert_eq!(a % PAGE_SIZE, 0);
        // SAFETY: `a` is a frame we own in the test memory.
        unsafe { phys::write_u64(a, 0xdead) };
        free(a);
        let b = alloc().unwrap();
        // Another test may have taken `a`; either way the frame is clean.
        // SAFETY: `b` is ours.
        assert_eq!(unsafe { phys::read_u64(b) }, 0);
        let pair = alloc_contiguous(2, 8192).unwrap();
        assert_eq!(pair % 8192, 0);
    }

    #[test]
    fn shared_frames_are_freed_by_the_last_reference() {
        phys::testmem::init();
        let a = alloc().unwrap();
        get(a);
        assert_eq!(refs(a), 2);
        free(a);
        assert_eq!(refs(a), 1);
        free(a);
        assert_eq!(refs(a), 0);
    }
}
