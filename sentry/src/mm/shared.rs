//! Shared memory objects (Linux: shmem): the frames of a MAP_SHARED
//! anonymous mapping, or of a SysV segment, kept by page index so that
//! every address space mapping the object — including children forked
//! before a page was first touched — finds the same frame.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use spin::Mutex;

use super::frame;
use crate::errno::Errno;

/// One shared memory object. It holds one reference on each of its
/// frames; each mapping of a frame holds another.
pub struct SharedMem {
    frames: Mutex<BTreeMap<u64, u64>>,
    /// Bytes (pages past it are not part of the object).
    pub size: u64,
}

impl SharedMem {
    pub fn new(size: u64) -> Arc<SharedMem> {
        Arc::new(SharedMem { frames: Mutex::new(BTreeMap::new()), size })
    }

    /// The frame of page `idx`, allocated (zeroed) on first use. The
    /// caller gets its own reference.
    pub fn frame(&self, idx: u64) -> Result<u64, Errno> {
        let mut m = self.frames.lock();
        let f = match m.get(&idx) {
            Some(&f) => f,
            None => {
                let f = frame::alloc().ok_or(Errno::ENOMEM)?;
                m.insert(idx, f);
                f
            }
        };
        frame::get(f);
        Ok(f)
    }

    /// Pages with a frame (for accounting).
    pub fn resident(&self) -> usize {
        self.frames.lock().len()
    }

    /// Copies bytes at `off` into `buf`; pages never written read as zero.
    pub fn read(&self, off: u64, buf: &mut [u8]) {
        let m = self.frames.lock();
        let mut done = 0usize;
        while done < buf.len() {
            let at = off + done as u64;
            let n = ((PAGE - at % PAGE) as usize).min(buf.len() - done);
            match m.get(&(at / PAGE)) {
                // SAFETY: `f` is a frame this object holds a reference on;
                // the copy stays within the page (`n` <= the page's rest).
                Some(&f) => unsafe { super::phys::copy_from(f + at % PAGE, &mut buf[done..done + n]) },
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
    }

    /// Copies `data` to `off`, giving pages frames as needed.
    pub fn write(&self, off: u64, data: &[u8]) -> Result<(), Errno> {
        let mut m = self.frames.lock();
        let mut done = 0usize;
        while done < data.len() {
            let at = off + done as u64;
            let n = ((PAGE - at % PAGE) as usize).min(data.len() - done);
            let f = match m.get(&(at / PAGE)) {
                Some(&f) => f,
                None => {
                    let f = frame::alloc().ok_or(Errno::ENOSPC)?;
                    m.insert(at / PAGE, f);
                    f
                }
            };
            // SAFETY: as in `read`, with the roles swapped.
            unsafe { super::phys::copy_to(f + at % PAGE, &data[done..done + n]) };
            done += n;
        }
        Ok(())
    }

    /// Drops everything from byte `size` on (truncate): whole pages are
    /// freed (mappings keep their own references), the rest of the last
    /// page is zeroed, so a later extension reads zeros.
    pub fn cut(&self, size: u64) {
        let mut m = self.frames.lock();
        let first_gone = size.div_ceil(PAGE);
        for (_, f) in m.split_off(&first_gone) {
            frame::free(f);
        }
        if size % PAGE != 0 {
            if let Some(&f) = m.get(&(size / PAGE)) {
                let z = [0u8; 4096];
                // SAFETY: as in `write`; from `size` to the page's end.
                unsafe { super::phys::copy_to(f + size % PAGE, &z[..(PAGE - size % PAGE) as usize]) };
            }
        }
    }
}

const PAGE: u64 = 4096;

impl Drop for SharedMem {
    fn drop(&mut self) {
        for (_, f) in core::mem::take(&mut *self.frames.lock()) {
            frame::free(f);
        }
    }
}

/// A reference to a shared object as an area's backing: equal when it is
/// the same object.
#[derive(Clone)]
pub struct SharedRef(pub Arc<SharedMem>);

impl PartialEq for SharedRef {
    fn eq(&self, o: &SharedRef) -> bool {
        Arc::ptr_eq(&self.0, &o.0)
    }
}

impl Eq for SharedRef {}

impl core::fmt::Debug for SharedRef {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SharedMem({:p})", Arc::as_ptr(&self.0))
    }
}

/// A System V segment as the areas attaching it see it (Linux: the shm
/// file's `vm_operations_struct`): its pages, and hooks that keep its
/// attach count as areas come and go.
pub trait SysvSegment: Send + Sync {
    /// The segment's pages.
    fn pages(&self) -> &SharedMem;
    /// An area attaching the segment appeared (shmat, fork, split).
    fn open(&self);
    /// An area attaching the segment went away (munmap, shmdt, exit,
    /// exec, a merge).
    fn close(&self);
    /// The name /proc/PID/maps shows, and the inode number beside it.
    fn name(&self) -> (String, u64);
}

/// One area's hold on a System V segment. Cloning the area (fork, split)
/// opens the segment again and dropping it closes it, so the segment
/// counts exactly the areas that attach it, as Linux's shm_nattch.
pub struct SegmentRef(Arc<dyn SysvSegment>);

impl SegmentRef {
    /// A hold for a new attach whose `open` the caller already did (it
    /// counted the attach under the segment table's lock).
    pub fn adopt(seg: Arc<dyn SysvSegment>) -> SegmentRef {
        SegmentRef(seg)
    }

    /// The segment's pages.
    pub fn pages(&self) -> &SharedMem {
        self.0.pages()
    }

    /// The name /proc/PID/maps shows, and its inode number.
    pub fn name(&self) -> (String, u64) {
        self.0.name()
    }
}

impl Clone for SegmentRef {
    fn clone(&self) -> SegmentRef {
        self.0.open();
        SegmentRef(self.0.clone())
    }
}

impl Drop for SegmentRef {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl PartialEq for SegmentRef {
    fn eq(&self, o: &SegmentRef) -> bool {
        // The data pointers: vtable pointers of one type may differ
        // between codegen units.
        core::ptr::eq(Arc::as_ptr(&self.0).cast::<u8>(), Arc::as_ptr(&o.0).cast::<u8>())
    }
}

impl Eq for SegmentRef {}

impl core::fmt::Debug for SegmentRef {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SegmentRef({})", self.0.name().0)
    }
}
