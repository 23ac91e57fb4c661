//! File pages for private file mappings (Linux: the page cache behind
//! `filemap_fault`). A mapping's pages are read from the file when first
//! touched, a cluster at a time, and mapped read-only; a write takes a
//! private copy (copy-on-write, as after fork). Reading at mmap time
//! instead copied every page of every library, touched or not: the
//! dynamic linker maps a library's whole span before its segments, so
//! python's start copied 16 MiB for the 3 it uses.
//!
//! A file that cannot change while mapped (a read-only open of an
//! overlay's lower layer, `FileOps::cache_key`) shares one `FileMap` among
//! all its mappings, and the last few stay cached after their mappings
//! go: the next process mapping the same library finds its pages read.
//! Under memory pressure `reclaim` drops pages no process maps
//! (`frame::alloc` asks before it fails, so before the OOM killer runs).

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use alloc::collections::BTreeMap;
use spin::Mutex;

use super::{frame, phys, PAGE_SIZE};
use crate::errno::Errno;

/// Where a file map's bytes come from.
pub trait PageSource: Send + Sync {
    /// Fills `frames` (fresh whole pages, in order) with the file's bytes
    /// from `off` on; returns how many bytes there were (short at the
    /// end of the file, the rest of the frames left zero).
    fn read_frames(&self, frames: &[u64], off: u64) -> Result<usize, Errno>;
    /// Makes sure later reads can be served (a source that opens its file
    /// lazily opens it now): a file opened through its page cache stays
    /// readable whatever happens to its path or the file server.
    fn ready(&self) -> Result<(), Errno> {
        Ok(())
    }
}

/// The pages of one file read so far.
pub struct FileMap {
    source: Arc<dyn PageSource>,
    /// The file's size when mapped: pages past it are zero, not read.
    size: u64,
    /// Page index → frame (one reference held here).
    pages: Mutex<BTreeMap<u64, u64>>,
}

/// Most file pages read in one request (a fault reads this many around
/// the page that faulted, as Linux's read-around).
pub const READ_AROUND: u64 = 32;

impl FileMap {
    /// An empty map of a `size`-byte file.
    pub fn new(source: Arc<dyn PageSource>, size: u64) -> Arc<FileMap> {
        let m = Arc::new(FileMap { source, size, pages: Mutex::new(BTreeMap::new()) });
        let mut all = ALL.lock();
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&m));
        m
    }

    /// The frames of file pages `[lo, hi)`, reading those not read yet
    /// (one host request per run of missing pages). Page `need` must be
    /// among them; the others are best effort (a page that found no
    /// memory is left out).
    pub fn frames(&self, lo: u64, hi: u64, need: u64) -> Result<Vec<(u64, u64)>, Errno> {
        let eof_page = self.size.div_ceil(PAGE_SIZE);
        let mut pages = self.pages.lock();
        let mut out = Vec::new();
        let mut i = lo;
        while i < hi {
            if let Some(&f) = pages.get(&i) {
                out.push((i, f));
                i += 1;
                continue;
            }
            let mut j = i;
            while j < hi && !pages.contains_key(&j) {
                j += 1;
            }
            let mut frames = Vec::with_capacity((j - i) as usize);
            while (frames.len() as u64) < j - i {
                match frame::alloc() {
                    Some(f) => frames.push(f),
                    None => break,
                }
            }
            let readable = (frames.len() as u64).min(eof_page.saturating_sub(i)) as usize;
            if readable > 0 {
                if let Err(e) = self.source.read_frames(&frames[..readable], i * PAGE_SIZE) {
                    frames.into_iter().for_each(frame::free);
                    if (i..j).contains(&need) {
                        return Err(e);
                    }
                    i = j;
                    continue;
                }
            }
            for (k, f) in frames.into_iter().enumerate() {
                pages.insert(i + k as u64, f);
                out.push((i + k as u64, f));
            }
            i = j;
        }
        if out.iter().any(|&(p, _)| p == need) {
            Ok(out)
        } else {
            Err(Errno::ENOMEM)
        }
    }

    /// The file's size as mapped.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// See `PageSource::ready`.
    pub fn ready(&self) -> Result<(), Errno> {
        self.source.ready()
    }

    /// Copies the file's bytes from `off` into guest-physical ranges
    /// `dst` (the caller's pages, held for the copy), reading pages not
    /// read yet; returns the bytes copied (fewer at the end of the file,
    /// or where memory for a page ran out).
    pub fn read_to(&self, off: u64, dst: &[abi::hypercall::IoVec]) -> Result<usize, Errno> {
        let want: u64 = dst.iter().map(|v| v.len).sum();
        let n = want.min(self.size.saturating_sub(off));
        if n == 0 {
            return Ok(0);
        }
        let (lo, hi) = (off / PAGE_SIZE, (off + n).div_ceil(PAGE_SIZE));
        let pages = self.frames(lo, hi, lo)?;
        // The pages from `lo` on without a gap.
        let run = pages.iter().enumerate().take_while(|(k, p)| p.0 == lo + *k as u64).count() as u64;
        let n = n.min((lo + run) * PAGE_SIZE - off);
        let mut done = 0u64;
        for v in dst {
            let mut at = 0u64;
            while at < v.len && done < n {
                let src_off = off + done;
                let (page, within) = (src_off / PAGE_SIZE, src_off % PAGE_SIZE);
                let chunk = (PAGE_SIZE - within).min(v.len - at).min(n - done);
                let f = pages[(page - lo) as usize].1;
                // SAFETY: `f` is a frame this map holds; `dst` are pages the
                // caller holds for the copy; neither range crosses a page.
                unsafe { phys::copy_phys(v.gpa + at, f + within, chunk as usize) };
                at += chunk;
                done += chunk;
            }
        }
        Ok(done as usize)
    }

    /// Drops the pages only this map holds; returns how many.
    fn shed(&self) -> u64 {
        // A map being filled is skipped: its owner may be the allocator
        // that ran out.
        let Some(mut pages) = self.pages.try_lock() else { return 0 };
        let before = pages.len();
        pages.retain(|_, f| {
            if frame::refs(*f) <= 1 {
                frame::free(*f);
                false
            } else {
                true
            }
        });
        (before - pages.len()) as u64
    }

    /// Pages held (for tests).
    pub fn cached_pages(&self) -> usize {
        self.pages.lock().len()
    }
}

impl Drop for FileMap {
    fn drop(&mut self) {
        for (_, f) in core::mem::take(&mut *self.pages.lock()) {
            frame::free(f);
        }
    }
}

/// Copies `data` into fresh frames, a page each (a `PageSource` whose
/// bytes come through a sentry buffer).
pub fn copy_into(frames: &[u64], data: &[u8]) {
    for (f, chunk) in frames.iter().zip(data.chunks(PAGE_SIZE as usize)) {
        // SAFETY: `read_frames` callers pass frames just allocated for the
        // read and not mapped anywhere yet; the chunk fits in the page.
        unsafe { phys::copy_to(*f, chunk) };
    }
}

/// A map as an area's backing: equal when it is the same map.
#[derive(Clone)]
pub struct FileMapRef(pub Arc<FileMap>);

impl PartialEq for FileMapRef {
    fn eq(&self, o: &FileMapRef) -> bool {
        Arc::ptr_eq(&self.0, &o.0)
    }
}

impl Eq for FileMapRef {}

impl core::fmt::Debug for FileMapRef {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "FileMap({:p})", Arc::as_ptr(&self.0))
    }
}

/// What makes two opens the same unchanging file: its path and
/// identity, size and modification time.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: (i64, i64),
}

/// Every live map (for `reclaim`).
static ALL: Mutex<Vec<Weak<FileMap>>> = Mutex::new(Vec::new());
/// Maps of unchanging files, by key.
static SHARED: Mutex<Vec<(Key, Weak<FileMap>)>> = Mutex::new(Vec::new());
/// The most recently mapped unchanging files, kept after their mappings
/// go.
static RECENT: Mutex<VecDeque<Arc<FileMap>>> = Mutex::new(VecDeque::new());
/// Most files, and most of their pages, kept after use: enough for what
/// a program such as python reads and maps as it starts (some 90 files,
/// 10 MiB), so the next start finds them.
const RECENT_MAX: usize = 1024;
const RECENT_PAGES: usize = (64 << 20) / PAGE_SIZE as usize;
/// A reclaim is running (an allocation it makes must not start another).
static RECLAIMING: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// The map of an unchanging file: the one already made for `key`, or a
/// new one from `make`.
pub fn shared(key: Key, make: impl FnOnce() -> Arc<FileMap>) -> Arc<FileMap> {
    let m = {
        let mut s = SHARED.lock();
        s.retain(|(_, w)| w.strong_count() > 0);
        match s.iter().find(|(k, _)| *k == key).and_then(|(_, w)| w.upgrade()) {
            Some(m) => m,
            None => {
                let m = make();
                s.push((key, Arc::downgrade(&m)));
                m
            }
        }
    };
    let evicted = {
        let mut r = RECENT.lock();
        r.retain(|x| !Arc::ptr_eq(x, &m));
        r.push_front(m.clone());
        let mut pages = 0;
        let keep = r
            .iter()
            .take_while(|x| {
                pages += x.pages.try_lock().map_or(0, |p| p.len());
                pages <= RECENT_PAGES
            })
            .count()
            .clamp(1, RECENT_MAX);
        r.split_off(keep)
    };
    // Dropped outside the lock: a map's last reference frees its pages.
    drop(evicted);
    m
}

/// Frees what file maps hold that no process maps, and forgets the
/// recently used files; returns the pages freed.
pub fn reclaim() -> u64 {
    use core::sync::atomic::Ordering;
    if RECLAIMING.swap(true, Ordering::Acquire) {
        return 0;
    }
    let freed = reclaim_now();
    RECLAIMING.store(false, Ordering::Release);
    freed
}

fn reclaim_now() -> u64 {
    // Locks are only tried: the allocation that ran out may hold one.
    let recent: Vec<Arc<FileMap>> = match RECENT.try_lock() {
        Some(mut r) => r.drain(..).collect(),
        None => Vec::new(),
    };
    let mut freed = 0;
    for m in &recent {
        freed += m.shed();
    }
    // Maps only the recent list held go now (their frames with them).
    drop(recent);
    let live: Vec<Arc<FileMap>> = ALL.try_lock().map(|a| a.iter().filter_map(Weak::upgrade).collect()).unwrap_or_default();
    for m in &live {
        freed += m.shed();
    }
    freed
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicUsize, Ordering};

    /// `reclaim` sheds every map's unmapped pages: the tests take turns.
    static SERIAL: Mutex<()> = Mutex::new(());

    /// A file of `len` bytes where byte i is (i / 4096 + 1) as u8; counts
    /// its reads.
    struct Numbered {
        len: u64,
        reads: AtomicUsize,
        fail: bool,
    }

    impl PageSource for Numbered {
        fn read_frames(&self, frames: &[u64], off: u64) -> Result<usize, Errno> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            if self.fail {
                return Err(Errno::EIO);
            }
            let n = (frames.len() as u64 * PAGE_SIZE).min(self.len.saturating_sub(off)) as usize;
            let data: Vec<u8> = (0..n as u64).map(|i| ((off + i) / PAGE_SIZE + 1) as u8).collect();
            copy_into(frames, &data);
            Ok(n)
        }
    }

    fn byte(f: u64, at: u64) -> u8 {
        let mut b = [0u8];
        // SAFETY: test frames are live fake physical memory.
        unsafe { phys::copy_from(f + at, &mut b) };
        b[0]
    }

    #[test]
    fn pages_are_read_once_in_clusters() {
        let _turn = SERIAL.lock();
        phys::testmem::init();
        let src = Arc::new(Numbered { len: 10 * PAGE_SIZE + 100, reads: AtomicUsize::new(0), fail: false });
        let m = FileMap::new(src.clone(), src.len);
        let got = m.frames(4, 8, 5).unwrap();
        assert_eq!(got.iter().map(|p| p.0).collect::<Vec<_>>(), [4, 5, 6, 7]);
        assert_eq!(src.reads.load(Ordering::Relaxed), 1);
        assert_eq!(byte(got[1].1, 0), 6);
        // Again: no read; a wider window reads only the missing runs.
        m.frames(4, 8, 4).unwrap();
        assert_eq!(src.reads.load(Ordering::Relaxed), 1);
        let got = m.frames(2, 12, 11).unwrap();
        assert_eq!(got.len(), 10);
        assert_eq!(src.reads.load(Ordering::Relaxed), 3);
        // Page 10 holds the last 100 bytes then zeros; page 11 is past
        // the end: zero, and never read.
        let p10 = got.iter().find(|p| p.0 == 10).unwrap().1;
        assert_eq!((byte(p10, 99), byte(p10, 100)), (11, 0));
        assert_eq!(byte(got.iter().find(|p| p.0 == 11).unwrap().1, 0), 0);
        assert_eq!(m.cached_pages(), 10);
    }

    #[test]
    fn a_failed_read_is_the_faults_error_and_caches_nothing() {
        let _turn = SERIAL.lock();
        phys::testmem::init();
        let src = Arc::new(Numbered { len: 4 * PAGE_SIZE, reads: AtomicUsize::new(0), fail: true });
        let m = FileMap::new(src.clone(), src.len);
        assert_eq!(m.frames(0, 4, 1).err(), Some(Errno::EIO));
        assert_eq!(m.cached_pages(), 0);
    }

    #[test]
    fn unchanging_files_share_one_map_and_reclaim_sheds_unmapped_pages() {
        let _turn = SERIAL.lock();
        phys::testmem::init();
        let src = Arc::new(Numbered { len: 8 * PAGE_SIZE, reads: AtomicUsize::new(0), fail: false });
        let key = Key { path: "/lib/x.so".into(), dev: 1, ino: 2, size: 8 * PAGE_SIZE, mtime: (3, 4) };
        let a = shared(key.clone(), || FileMap::new(src.clone(), src.len));
        let b = shared(key.clone(), || panic!("made twice"));
        assert!(Arc::ptr_eq(&a, &b));
        let other = shared(Key { size: 1, ..key.clone() }, || FileMap::new(src.clone(), 1));
        assert!(!Arc::ptr_eq(&a, &other));
        let got = a.frames(0, 4, 0).unwrap();
        // A page some process maps (a second reference) survives.
        frame::get(got[0].1);
        drop((a, b, other));
        assert!(reclaim() >= 3);
        assert_eq!(frame::refs(got[0].1), 1);
        // The map itself went with the recent list: the key makes anew.
        let mut made = false;
        let _c = shared(key, || {
            made = true;
            FileMap::new(src.clone(), src.len)
        });
        assert!(made);
        frame::free(got[0].1);
    }
}
