//! The physical-frame allocator. Frames above the sentry's image and heap
//! are handed out from a bump pointer (never-touched memory reads as zero,
//! so those need no clearing) and recycled through a free list (cleared
//! on reuse). Linux analogue: the buddy allocator, minus orders.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
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

/// The container's memory limit in bytes (u64::MAX: none): an allocation
/// that would take frames plus heap past it fails like an exhausted
/// machine, and the caller's OOM handling takes over.
static LIMIT: AtomicU64 = AtomicU64::new(u64::MAX);
/// The most bytes charged at once (memory.max_usage_in_bytes).
static PEAK: AtomicU64 = AtomicU64::new(0);

/// Sets the memory limit (None: no limit).
pub fn set_limit(bytes: Option<u64>) {
    LIMIT.store(bytes.unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// Bytes of the sentry's heap in use: kernel memory the sandbox's work
/// costs (file tables, sockets' buffers, tmpfs metadata), charged with
/// the frames.
fn heap_bytes() -> u64 {
    #[cfg(feature = "image")]
    return crate::image::heap_used();
    #[cfg(not(feature = "image"))]
    0
}

/// Bytes charged to the sandbox: frames in use plus the heap in use.
pub fn charged_bytes() -> u64 {
    FRAMES.lock().used * PAGE_SIZE + heap_bytes()
}

/// Whether memory is used up: the next frame would be refused (by the
/// limit, or because none is left).
pub fn at_limit() -> bool {
    let heap = heap_bytes();
    let f = FRAMES.lock();
    let none_left = f.free.is_empty() && f.next + PAGE_SIZE > f.end;
    none_left || (f.used + 1) * PAGE_SIZE + heap > LIMIT.load(Ordering::Relaxed)
}

/// Bytes of frames in use.
pub fn frame_bytes() -> u64 {
    FRAMES.lock().used * PAGE_SIZE
}

/// The most bytes charged at once.
pub fn peak_bytes() -> u64 {
    PEAK.load(Ordering::Relaxed).max(charged_bytes())
}

/// Whether one more frame fits under the limit (the heap is read before
/// the frame lock is taken: the heap's lock comes first, never the other
/// way). Counts a failed charge (memory.failcnt).
fn charge_ok(used: u64, heap: u64) -> bool {
    let after = (used + 1) * PAGE_SIZE + heap;
    if after > LIMIT.load(Ordering::Relaxed) {
        crate::kernel::cgroup::FAILCNT.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    PEAK.fetch_max(after, Ordering::Relaxed);
    true
}

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

/// Allocates one zeroed frame. At the limit (or out of frames), file
/// pages no process maps are dropped first, as Linux reclaims its page
/// cache before it fails an allocation.
pub fn alloc() -> Option<u64> {
    alloc_once().or_else(|| (super::filemap::reclaim() > 0).then(alloc_once).flatten())
}

fn alloc_once() -> Option<u64> {
    let heap = heap_bytes();
    let mut f = FRAMES.lock();
    if !charge_ok(f.used, heap) {
        return None;
    }
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
