//! The direct map: every guest-physical address `pa` is visible to the
//! sentry at `base + pa` (base = `abi::layout::PHYS_OFFSET` in the image; a
//! host buffer in unit tests). The raw accessors here are the only code
//! that dereferences physical memory.

use core::sync::atomic::{AtomicU64, Ordering};

static BASE: AtomicU64 = AtomicU64::new(abi::layout::PHYS_OFFSET);

/// Points the direct map at `base` (unit tests use a host buffer).
pub fn set_base(base: u64) {
    BASE.store(base, Ordering::Relaxed);
}

/// Sentry virtual address of a physical address.
#[inline]
pub fn pa_to_va(pa: u64) -> u64 {
    BASE.load(Ordering::Relaxed).wrapping_add(pa)
}

/// Physical address of a sentry virtual address in the direct map.
#[inline]
pub fn va_to_pa(va: u64) -> u64 {
    va.wrapping_sub(BASE.load(Ordering::Relaxed))
}

/// Reads a page-table entry.
///
/// # Safety
/// `pa` must be an 8-byte aligned address inside guest memory that the
/// caller owns (a page table of an address space it holds).
#[inline]
pub unsafe fn read_u64(pa: u64) -> u64 {
    // SAFETY: guaranteed by the caller.
    unsafe { (pa_to_va(pa) as *const u64).read_volatile() }
}

/// Writes a page-table entry (volatile: the MMU reads it).
///
/// # Safety
/// As for [`read_u64`], and the caller must hold the address space's lock.
#[inline]
pub unsafe fn write_u64(pa: u64, v: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe { (pa_to_va(pa) as *mut u64).write_volatile(v) }
}

/// Zeroes one page.
///
/// # Safety
/// `pa` must be a page-aligned frame the caller owns.
pub unsafe fn zero_page(pa: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe { core::ptr::write_bytes(pa_to_va(pa) as *mut u8, 0, abi::layout::PAGE_SIZE as usize) }
}

/// Copies `dst.len()` bytes out of physical memory.
///
/// # Safety
/// `[pa, pa+len)` must lie in one frame the caller has mapped (and so
/// owns a reference to) for the duration of the copy.
pub unsafe fn copy_from(pa: u64, dst: &mut [u8]) {
    // SAFETY: guaranteed by the caller; `dst` is a distinct sentry buffer.
    unsafe { core::ptr::copy_nonoverlapping(pa_to_va(pa) as *const u8, dst.as_mut_ptr(), dst.len()) }
}

/// Copies `src` into physical memory.
///
/// # Safety
/// As for [`copy_from`].
pub unsafe fn copy_to(pa: u64, src: &[u8]) {
    // SAFETY: guaranteed by the caller.
    unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), pa_to_va(pa) as *mut u8, src.len()) }
}

/// Copies `len` bytes between physical ranges.
///
/// # Safety
/// The caller holds references to the frames of both ranges for the
/// copy, and the ranges do not overlap.
pub unsafe fn copy_phys(dst: u64, src: u64, len: usize) {
    // SAFETY: guaranteed by the caller; the direct map is linear.
    unsafe { core::ptr::copy_nonoverlapping(pa_to_va(src) as *const u8, pa_to_va(dst) as *mut u8, len) }
}

/// Copies one whole frame to another.
///
/// # Safety
/// Both must be frames the caller owns.
pub unsafe fn copy_page(dst: u64, src: u64) {
    // SAFETY: guaranteed by the caller; distinct frames never overlap.
    unsafe {
        core::ptr::copy_nonoverlapping(
            pa_to_va(src) as *const u8,
            pa_to_va(dst) as *mut u8,
            abi::layout::PAGE_SIZE as usize,
        )
    }
}

#[cfg(test)]
pub mod testmem {
    //! A shared fake physical memory for unit tests.
    use std::sync::Once;

    /// Size of the fake physical memory.
    pub const SIZE: u64 = 256 << 20;
    /// First frame handed to the frame allocator in tests.
    pub const FIRST_FREE: u64 = 1 << 20;

    /// Sets up the fake memory and the global frame allocator once.
    pub fn init() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let layout = std::alloc::Layout::from_size_align(SIZE as usize, 4096).unwrap();
            // SAFETY: non-zero size; leaked on purpose for the whole test run.
            let p = unsafe { std::alloc::alloc_zeroed(layout) };
            assert!(!p.is_null());
            super::set_base(p as u64);
            crate::mm::frame::init(FIRST_FREE, SIZE);
        });
    }
}
