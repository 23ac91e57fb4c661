//! Shared memory objects (Linux: shmem): the frames of a MAP_SHARED
//! anonymous mapping, or of a SysV segment, kept by page index so that
//! every address space mapping the object — including children forked
//! before a page was first touched — finds the same frame.

use alloc::collections::BTreeMap;
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
}

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
