//! Guest memory: one anonymous mapping in the VMM (2 MiB aligned, huge
//! pages advised), registered as a KVM memslot at guest-physical 0.
//!
//! The guest writes this memory concurrently with the VMM, so no Rust
//! reference into it is ever handed out: every access is a bounds-checked
//! copy through raw pointers, or a raw host pointer handed straight to a host
//! syscall (read/write into guest buffers).

use abi::Pod;

/// Errors from guest-memory access.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// A guest range is outside guest memory (or overflows).
    #[error("guest range {gpa:#x}+{len:#x} is outside guest memory")]
    OutOfRange { gpa: u64, len: u64 },
    /// Creating the mapping or giving memory back failed.
    #[error("creating guest memory")]
    Create(#[source] std::io::Error),
}

/// The guest's physical memory.
pub struct GuestMemory {
    base: *mut u8,
    size: u64,
}

// SAFETY: `base` points to a MAP_SHARED mapping owned by this struct for its
// whole life; all access goes through bounds-checked raw copies, which are
// as safe from several threads as the guest's own concurrent access is.
unsafe impl Send for GuestMemory {}
// SAFETY: see `Send`: no interior state besides the mapping itself.
unsafe impl Sync for GuestMemory {}

impl GuestMemory {
    /// Creates `size` bytes of zeroed, lazily allocated guest memory.
    ///
    /// Anonymous memory with transparent huge pages rather than a memfd:
    /// on our hosts shmem THP is off, and first-touch population dominated
    /// the cost of a guest page fault (host faults per 4 KiB page). THP
    /// makes it one host fault per 2 MiB.
    pub fn new(size: u64) -> Result<Self, MemoryError> {
        const HUGE: usize = 2 << 20;
        let map_len = usize::try_from(size).map_err(|_| MemoryError::OutOfRange { gpa: 0, len: size })?;
        let reserve = map_len.checked_add(HUGE).ok_or(MemoryError::OutOfRange { gpa: 0, len: size })?;
        // SAFETY: a fresh private anonymous reservation at a kernel-chosen
        // address; MAP_NORESERVE because the guest touches memory lazily.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                reserve,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return Err(MemoryError::Create(std::io::Error::last_os_error()));
        }
        // Align the start to 2 MiB so guest huge pages line up with host ones.
        let lead = (HUGE - (raw as usize) % HUGE) % HUGE;
        // SAFETY: `lead <= HUGE`, inside the reservation.
        let base = unsafe { raw.cast::<u8>().add(lead) };
        // SAFETY: unmapping the unused head and tail of our own reservation.
        unsafe {
            if lead > 0 {
                libc::munmap(raw, lead);
            }
            let tail = HUGE - lead;
            if tail > 0 {
                libc::munmap(base.add(map_len).cast(), tail);
            }
            // Best effort: without THP, memory still works, only slower.
            libc::madvise(base.cast(), map_len, libc::MADV_HUGEPAGE);
            // Guest memory never goes into a host fork child or core dump.
            libc::madvise(base.cast(), map_len, libc::MADV_DONTFORK);
        }
        Ok(GuestMemory { base, size })
    }

    /// Bytes of guest memory.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Host address of the mapping (for the KVM memslot).
    pub fn host_base(&self) -> u64 {
        self.base as u64
    }

    /// Checks that `[gpa, gpa+len)` lies inside guest memory and returns the
    /// host pointer to its start. The pointer may only be used for raw
    /// copies or handed to host syscalls.
    pub fn host_ptr(&self, gpa: u64, len: u64) -> Result<*mut u8, MemoryError> {
        let end = gpa.checked_add(len).ok_or(MemoryError::OutOfRange { gpa, len })?;
        if end > self.size {
            return Err(MemoryError::OutOfRange { gpa, len });
        }
        let off = usize::try_from(gpa).map_err(|_| MemoryError::OutOfRange { gpa, len })?;
        // SAFETY: `off + len <= size`, so the result stays inside the mapping.
        Ok(unsafe { self.base.add(off) })
    }

    /// Copies guest bytes out.
    pub fn read(&self, gpa: u64, out: &mut [u8]) -> Result<(), MemoryError> {
        let p = self.host_ptr(gpa, out.len() as u64)?;
        // SAFETY: `p..p+len` is inside the mapping (checked above); `out` is a
        // distinct host buffer, so the ranges cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(p, out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    /// Copies bytes into guest memory.
    pub fn write(&self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        let p = self.host_ptr(gpa, data.len() as u64)?;
        // SAFETY: as in `read`, with the roles swapped.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
        Ok(())
    }

    /// Reads a plain-old-data value.
    pub fn read_obj<T: Pod>(&self, gpa: u64) -> Result<T, MemoryError> {
        let p = self.host_ptr(gpa, std::mem::size_of::<T>() as u64)?;
        // SAFETY: in bounds (checked); `T: Pod` accepts any bit pattern;
        // read_unaligned because guest addresses carry no alignment promise.
        Ok(unsafe { std::ptr::read_unaligned(p.cast::<T>()) })
    }

    /// Writes a plain-old-data value.
    pub fn write_obj<T: Pod>(&self, gpa: u64, v: &T) -> Result<(), MemoryError> {
        let p = self.host_ptr(gpa, std::mem::size_of::<T>() as u64)?;
        // SAFETY: in bounds (checked); unaligned write of a Pod value.
        unsafe { std::ptr::write_unaligned(p.cast::<T>(), *v) };
        Ok(())
    }

    /// Gives the backing pages of a page-aligned range back to the host;
    /// they read as zero afterwards.
    /// Asks for small host pages in `[gpa, gpa+len)`: memory touched
    /// sparsely (the sentry's image, boot structures and heap) would
    /// otherwise cost a 2 MiB huge page per touch. Best effort.
    pub fn prefer_small_pages(&self, gpa: u64, len: u64) {
        let len = len.min(self.size.saturating_sub(gpa));
        if let Ok(p) = self.host_ptr(gpa, len) {
            // SAFETY: an advice call on a range inside our own mapping; it
            // changes how the host backs the pages, not their contents.
            unsafe { libc::madvise(p.cast(), len as usize, libc::MADV_NOHUGEPAGE) };
        }
    }

    pub fn discard(&self, gpa: u64, len: u64) -> Result<(), MemoryError> {
        self.host_ptr(gpa, len)?;
        if gpa % abi::layout::PAGE_SIZE != 0 || len % abi::layout::PAGE_SIZE != 0 {
            return Err(MemoryError::OutOfRange { gpa, len });
        }
        let p = self.host_ptr(gpa, len)?;
        // SAFETY: MADV_DONTNEED on a page-aligned range inside our private
        // anonymous mapping: the pages are freed and read as zero again.
        let r = unsafe { libc::madvise(p.cast(), len as usize, libc::MADV_DONTNEED) };
        if r != 0 {
            return Err(MemoryError::Create(std::io::Error::last_os_error()));
        }
        Ok(())
    }
}

impl Drop for GuestMemory {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping created in `new`; nothing can
        // use `base` after drop.
        unsafe { libc::munmap(self.base.cast(), self.size as usize) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked() {
        let m = GuestMemory::new(1 << 20).unwrap();
        assert!(m.host_ptr(0, 1 << 20).is_ok());
        assert!(m.host_ptr(1, 1 << 20).is_err());
        assert!(m.host_ptr(u64::MAX, 2).is_err());
        m.write_obj(0x100, &0x1122_3344_5566_7788u64).unwrap();
        assert_eq!(m.read_obj::<u64>(0x100).unwrap(), 0x1122_3344_5566_7788);
        assert!(m.read_obj::<u64>((1 << 20) - 4).is_err());
    }

    #[test]
    fn discard_zeroes() {
        let m = GuestMemory::new(1 << 20).unwrap();
        m.write(0x2000, &[7u8; 16]).unwrap();
        m.discard(0x2000, 0x1000).unwrap();
        let mut b = [1u8; 16];
        m.read(0x2000, &mut b).unwrap();
        assert_eq!(b, [0u8; 16]);
        assert!(m.discard(0x2001, 0x1000).is_err());
    }
}
