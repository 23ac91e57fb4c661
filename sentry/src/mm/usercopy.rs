//! Copying between the sentry and application memory.
//!
//! Application addresses are never dereferenced directly: each page is
//! translated by a software walk of the process's page tables (faulting it
//! in if its area allows the access), then accessed through the direct map.
//! A bad pointer is therefore `EFAULT`, never a sentry fault.

use abi::hypercall::IoVec;
use abi::layout::{PAGE_SIZE, TASK_SIZE as USER_END};
use abi::Pod;
use alloc::string::String;
use alloc::vec::Vec;

use super::pagetable::{PageTable, PTE_P, PTE_W};
use super::{phys, Access, MemoryManager};
use crate::errno::Errno;

impl MemoryManager {
    /// Physical address backing user address `va` for the given access.
    pub fn translate(&mut self, va: u64, write: bool) -> Result<u64, Errno> {
        if va >= USER_END {
            return Err(Errno::EFAULT);
        }
        let page = va & !(PAGE_SIZE - 1);
        let mut tries = 0;
        loop {
            let pte = self.page_table().lookup(page);
            if pte & PTE_P != 0 && (!write || pte & PTE_W != 0) {
                let frame = PageTable::frame_of(pte).ok_or(Errno::EFAULT)?;
                return Ok(frame + (va - page));
            }
            if tries > 0 {
                return Err(Errno::EFAULT);
            }
            self.handle_fault(va, Access { write, exec: false, user: false })?;
            tries += 1;
        }
    }

    /// Walks `[va, va+len)` page by page, calling `f(pa, offset, chunk)`.
    fn each_chunk(&mut self, va: u64, len: usize, write: bool, mut f: impl FnMut(u64, usize, usize)) -> Result<(), Errno> {
        let end = va.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        if end > USER_END {
            return Err(Errno::EFAULT);
        }
        let mut at = va;
        while at < end {
            let chunk = ((PAGE_SIZE - at % PAGE_SIZE).min(end - at)) as usize;
            let pa = self.translate(at, write)?;
            f(pa, (at - va) as usize, chunk);
            at += chunk as u64;
        }
        Ok(())
    }

    /// Copies application memory into `dst`.
    pub fn copy_in(&mut self, va: u64, dst: &mut [u8]) -> Result<(), Errno> {
        self.each_chunk(va, dst.len(), false, |pa, off, n| {
            // SAFETY: `pa..pa+n` lies in one frame mapped in this address
            // space (just translated); we hold the address space.
            unsafe { phys::copy_from(pa, &mut dst[off..off + n]) }
        })
    }

    /// Copies `src` into application memory (which must be writable).
    pub fn copy_out(&mut self, va: u64, src: &[u8]) -> Result<(), Errno> {
        self.each_chunk(va, src.len(), true, |pa, off, n| {
            // SAFETY: as in `copy_in`, for a writable mapping.
            unsafe { phys::copy_to(pa, &src[off..off + n]) }
        })
    }

    /// Reads a plain-old-data value.
    pub fn read_obj<T: Pod + Default>(&mut self, va: u64) -> Result<T, Errno> {
        let mut v = T::default();
        // SAFETY: `T: Pod`, so viewing it as bytes and filling them with
        // any values is sound.
        let bytes = unsafe { core::slice::from_raw_parts_mut((&mut v as *mut T).cast::<u8>(), core::mem::size_of::<T>()) };
        self.copy_in(va, bytes)?;
        Ok(v)
    }

    /// Writes a plain-old-data value.
    pub fn write_obj<T: Pod>(&mut self, va: u64, v: &T) -> Result<(), Errno> {
        // SAFETY: `T: Pod` has no padding, so all its bytes are initialized.
        let bytes = unsafe { core::slice::from_raw_parts((v as *const T).cast::<u8>(), core::mem::size_of::<T>()) };
        self.copy_out(va, bytes)
    }

    /// Atomically updates the aligned u32 at user address `va`: `f` maps
    /// the current value to the new one, or to None to leave it. Returns
    /// the value `f` decided on. Atomic against the application, which may
    /// run on another vCPU when the memory is shared with another process
    /// (futex words the sentry changes: PI locks, WAKE_OP, robust lists).
    pub fn update_u32(&mut self, va: u64, mut f: impl FnMut(u32) -> Option<u32>) -> Result<u32, Errno> {
        if va % 4 != 0 {
            return Err(Errno::EINVAL);
        }
        let pa = self.translate(va, true)?;
        // SAFETY: `translate` checked that `va` is mapped writable in this
        // address space and returned its frame's address (an aligned u32
        // never crosses a page); the direct map covers every frame, and the
        // frame stays mapped while `self` (its address space) is locked.
        let word = unsafe { &*(phys::pa_to_va(pa) as *const core::sync::atomic::AtomicU32) };
        let mut cur = word.load(core::sync::atomic::Ordering::SeqCst);
        loop {
            let Some(new) = f(cur) else { return Ok(cur) };
            match word.compare_exchange(cur, new, core::sync::atomic::Ordering::SeqCst, core::sync::atomic::Ordering::SeqCst) {
                Ok(_) => return Ok(cur),
                Err(now) => cur = now,
            }
        }
    }

    /// Reads a NUL-terminated string of at most `max` bytes (ENAMETOOLONG
    /// past that, EFAULT on a bad pointer, EINVAL if not UTF-8... Linux
    /// paths are bytes; non-UTF-8 is kept lossily for the host path).
    pub fn read_cstr(&mut self, va: u64, max: usize) -> Result<String, Errno> {
        let mut out = Vec::new();
        let mut at = va;
        loop {
            let pa = self.translate(at, false)?;
            let n = (PAGE_SIZE - at % PAGE_SIZE) as usize;
            let mut buf = [0u8; PAGE_SIZE as usize];
            // SAFETY: one translated frame, read only.
            unsafe { phys::copy_from(pa, &mut buf[..n]) };
            if let Some(z) = buf[..n].iter().position(|&b| b == 0) {
                out.extend_from_slice(&buf[..z]);
                break;
            }
            out.extend_from_slice(&buf[..n]);
            if out.len() > max {
                return Err(Errno::ENAMETOOLONG);
            }
            at = at.checked_add(n as u64).ok_or(Errno::EFAULT)?;
        }
        if out.len() > max {
            return Err(Errno::ENAMETOOLONG);
        }
        Ok(String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    /// Guest-physical scatter list for `[va, va+len)`, for zero-copy host
    /// I/O (`write` = the host will write into it). Adjacent frames merge.
    pub fn iovecs(&mut self, va: u64, len: usize, write: bool) -> Result<Vec<IoVec>, Errno> {
        let mut v: Vec<IoVec> = Vec::new();
        self.each_chunk(va, len, write, |pa, _, n| match v.last_mut() {
            Some(last) if last.gpa + last.len == pa => last.len += n as u64,
            _ => v.push(IoVec { gpa: pa, len: n as u64 }),
        })?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::super::vma::{Backing, PROT_READ, PROT_WRITE};
    use super::super::MemoryManager;
    #[allow(unused_imports)]
    use alloc::vec;
    use super::*;

    fn mm() -> MemoryManager {
        MemoryManager::for_tests()
    }

    #[test]
    fn copies_fault_pages_in() {
        let mut m = mm();
        let a = m.mmap(0, 3 * 4096, PROT_READ | PROT_WRITE, false, false, false, Backing::Anon).unwrap();
        let data: Vec<u8> = (0..6000u32).map(|i| i as u8).collect();
        m.copy_out(a + 100, &data).unwrap();
        let mut back = vec![0u8; 6000];
        m.copy_in(a + 100, &mut back).unwrap();
        assert_eq!(back, data);
        m.write_obj(a + 8000, &0x55aa_u64).unwrap();
        assert_eq!(m.read_obj::<u64>(a + 8000).unwrap(), 0x55aa);
    }

    #[test]
    fn bad_pointers_are_efault() {
        let mut m = mm();
        let a = m.mmap(0, 4096, PROT_READ, false, false, false, Backing::Anon).unwrap();
        let mut b = [0u8; 8];
        assert_eq!(m.copy_in(0x1000, &mut b), Err(Errno::EFAULT));
        assert_eq!(m.copy_in(u64::MAX - 3, &mut b), Err(Errno::EFAULT));
        assert_eq!(m.copy_in(0xffff_8880_0000_0000, &mut b), Err(Errno::EFAULT));
        // Read-only memory cannot be written by the sentry on the app's behalf.
        assert_eq!(m.copy_out(a, &b), Err(Errno::EFAULT));
        assert!(m.copy_in(a, &mut b).is_ok());
        // Straddling the end of the mapping.
        assert_eq!(m.copy_in(a + 4092, &mut b), Err(Errno::EFAULT));
    }

    #[test]
    fn strings_and_iovecs() {
        let mut m = mm();
        let a = m.mmap(0, 2 * 4096, PROT_READ | PROT_WRITE, false, false, false, Backing::Anon).unwrap();
        m.copy_out(a + 4090, b"hello world\0").unwrap();
        assert_eq!(m.read_cstr(a + 4090, 100).unwrap(), "hello world");
        assert_eq!(m.read_cstr(a + 4090, 5), Err(Errno::ENAMETOOLONG));
        let v = m.iovecs(a + 10, 5000, true).unwrap();
        assert_eq!(v.iter().map(|x| x.len).sum::<u64>(), 5000);
    }

    #[test]
    fn munmap_mprotect_mremap() {
        let mut m = mm();
        let a = m.mmap(0, 4 * 4096, PROT_READ | PROT_WRITE, false, false, false, Backing::Anon).unwrap();
        m.copy_out(a, &[1u8; 4 * 4096]).unwrap();
        m.munmap(a + 4096, 4096).unwrap();
        let mut b = [0u8; 1];
        assert_eq!(m.copy_in(a + 4096, &mut b), Err(Errno::EFAULT));
        m.mprotect(a, 4096, 0).unwrap();
        assert_eq!(m.copy_in(a, &mut b), Err(Errno::EFAULT));
        m.mprotect(a, 4096, PROT_READ).unwrap();
        m.copy_in(a, &mut b).unwrap();
        assert_eq!(b[0], 1);
        let n = m.mremap(a + 2 * 4096, 2 * 4096, 8 * 4096, 1, 0).unwrap();
        m.copy_in(n + 4096, &mut b).unwrap();
        assert_eq!(b[0], 1);
        m.copy_in(n + 7 * 4096, &mut b).unwrap();
        assert_eq!(b[0], 0);
        assert_eq!(m.munmap(a + 1, 4096), Err(Errno::EINVAL));
        m.teardown();
        assert_eq!(m.copy_in(n, &mut b), Err(Errno::EFAULT));
    }

    #[test]
    fn brk_grows_and_shrinks() {
        let mut m = mm();
        m.set_brk_start(0x60_0000);
        assert_eq!(m.brk(0), 0x60_0000);
        assert_eq!(m.brk(0x60_5000), 0x60_5000);
        m.write_obj(0x60_4ff8, &7u64).unwrap();
        assert_eq!(m.brk(0x60_1000), 0x60_1000);
        assert_eq!(m.read_obj::<u64>(0x60_4ff8), Err(Errno::EFAULT));
    }
}
