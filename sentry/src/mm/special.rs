//! Pages the sentry itself maps into every process (Linux: special
//! mappings): the vDSO's code and the vvar page below it. Their frames are
//! filled once at boot and pinned (`frame::pin`): every process maps the
//! same frames, read-only, and no munmap, exit or exec ever frees them. A
//! process that makes its vDSO writable (a debugger setting a breakpoint)
//! gets a private copy on its first write, as for any private mapping.

use core::sync::atomic::{AtomicU64, Ordering};

use super::{frame, phys};
use crate::errno::Errno;
use crate::kernel::vdso::VvarData;
use abi::layout::PAGE_SIZE;

/// Which special mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    /// The clock parameters the vDSO reads ([vvar]).
    Vvar,
    /// The vDSO's image ([vdso]).
    Vdso,
}

/// Most pages of one special mapping.
pub const MAX_PAGES: usize = 2;

/// Frames by kind and page; 0 where none.
static FRAMES: [[AtomicU64; MAX_PAGES]; 2] = [const { [const { AtomicU64::new(0) }; MAX_PAGES] }; 2];
/// Pages by kind.
static PAGES: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];

fn slot(kind: Special) -> usize {
    match kind {
        Special::Vvar => 0,
        Special::Vdso => 1,
    }
}

/// Gives `kind` pinned frames holding `contents` (at least one page,
/// zero-filled past the contents). Once per kind, at boot.
pub fn install(kind: Special, contents: &[u8]) -> Result<(), Errno> {
    let n = contents.len().div_ceil(PAGE_SIZE as usize).max(1);
    if n > MAX_PAGES || PAGES[slot(kind)].load(Ordering::Relaxed) != 0 {
        return Err(Errno::EINVAL);
    }
    for (i, chunk) in (0..n).map(|i| (i, contents.chunks(PAGE_SIZE as usize).nth(i).unwrap_or(&[]))) {
        let f = frame::alloc().ok_or(Errno::ENOMEM)?;
        frame::pin(f);
        // SAFETY: a fresh zeroed frame we own, written before any address
        // space maps it; the chunk is at most one page.
        unsafe { phys::copy_to(f, chunk) };
        FRAMES[slot(kind)][i].store(f, Ordering::Relaxed);
    }
    PAGES[slot(kind)].store(n as u64, Ordering::Release);
    Ok(())
}

/// Pages of `kind` (0 before `install`).
pub fn pages(kind: Special) -> u64 {
    PAGES[slot(kind)].load(Ordering::Acquire)
}

/// The frame of page `idx` of `kind`.
pub fn frame(kind: Special, idx: u64) -> Option<u64> {
    if idx >= pages(kind) {
        return None;
    }
    Some(FRAMES[slot(kind)][idx as usize].load(Ordering::Relaxed)).filter(|&f| f != 0)
}

/// The vvar page, where the sentry writes the clock parameters.
pub fn vvar() -> Option<&'static VvarData> {
    let f = frame(Special::Vvar, 0)?;
    // SAFETY: the frame is pinned (never freed or reused) and reached
    // through the direct map, which covers all guest memory; `VvarData` is
    // atomics only, valid for any bytes, smaller than the page, and
    // page-aligned here. The application maps the frame read-only, so only
    // the sentry writes it, through this reference's atomics.
    Some(unsafe { &*(phys::pa_to_va(f) as *const VvarData) })
}
