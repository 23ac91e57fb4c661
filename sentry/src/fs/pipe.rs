//! Pipes (Linux: fs/pipe.c): a bounded byte queue between a read end and
//! a write end. Reads block while it is empty and writers remain; writes
//! block while it is full and readers remain; writes of up to PIPE_BUF
//! bytes are atomic; writing with no readers is EPIPE plus SIGPIPE.
//! A FIFO is the same pipe, found through its inode by every opener.

use abi::linux::Stat;
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use alloc::sync::{Arc, Weak};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use spin::Mutex;

use super::{FileOps, UserSeg, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM, POLL_WQ};
use crate::errno::{Errno, SysResult};
use crate::kernel::task::Task;
use crate::kernel::wait::WaitQueue;
use crate::mm::MemoryManager;

/// Default capacity (Linux: 16 pages).
pub const PIPE_SIZE: usize = 64 << 10;
/// Writes up to this size are atomic.
pub const PIPE_BUF: usize = 4096;

static NEXT_INO: AtomicU64 = AtomicU64::new(1);

/// One page of a pipe's bytes (Linux: struct pipe_buffer): `len` bytes
/// from `off`. Capacity is counted in these slots, not in bytes, as in
/// Linux, which readers of poll, O_NONBLOCK partial writes and
/// F_SETPIPE_SZ can see.
struct Slot {
    page: Box<[u8]>,
    off: usize,
    len: usize,
    /// A write's page, which later small writes may fill up (Linux:
    /// PIPE_BUF_FLAG_CAN_MERGE); spliced pages are not.
    merge: bool,
}

/// The bytes a pipe holds: a queue of page slots that readers and writers
/// copy to and from the application's pages directly (one copy each way).
/// Pages of emptied slots are kept for the next writes, at most as many
/// as the pipe has slots.
struct Ring {
    slots: VecDeque<Slot>,
    /// Bytes in all slots.
    bytes: usize,
    free: Vec<Box<[u8]>>,
}

impl Ring {
    const fn new() -> Ring {
        Ring { slots: VecDeque::new(), bytes: 0, free: Vec::new() }
    }

    fn len(&self) -> usize {
        self.bytes
    }

    /// No slot at all (a slot a faulting write left empty still counts,
    /// as in Linux).
    fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Slots in use.
    fn used(&self) -> usize {
        self.slots.len()
    }

    fn page(&mut self) -> Box<[u8]> {
        self.free.pop().unwrap_or_else(|| alloc::vec![0u8; PAGE].into_boxed_slice())
    }

    /// Takes the front slot away; its page is kept if fewer than `keep`
    /// are.
    fn pop(&mut self, keep: usize) {
        if let Some(s) = self.slots.pop_front() {
            self.bytes -= s.len;
            if self.free.len() < keep {
                self.free.push(s.page);
            }
        }
    }

    /// Appends `data` in new slots of a page each (splice, tee, vmsplice:
    /// their pages never merge with later writes).
    fn push(&mut self, data: &[u8]) {
        for chunk in data.chunks(PAGE) {
            let mut page = self.page();
            page[..chunk.len()].copy_from_slice(chunk);
            self.slots.push_back(Slot { page, off: 0, len: chunk.len(), merge: false });
            self.bytes += chunk.len();
        }
    }

    /// A copy of up to `max` bytes from the front.
    fn peek(&self, max: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(max.min(self.bytes));
        for s in &self.slots {
            let n = s.len.min(max - out.len());
            out.extend_from_slice(&s.page[s.off..s.off + n]);
            if out.len() == max {
                break;
            }
        }
        out
    }

    /// Drops `n` bytes from the front.
    fn consume(&mut self, mut n: usize, keep: usize) {
        while let Some(s) = self.slots.front_mut() {
            let k = n.min(s.len);
            s.off += k;
            s.len -= k;
            self.bytes -= k;
            n -= k;
            if s.len > 0 {
                break;
            }
            self.pop(keep);
            if n == 0 {
                break;
            }
        }
    }
}

/// The shared pipe.
pub struct Pipe {
    buf: Mutex<Ring>,
    capacity: AtomicUsize,
    readers: AtomicUsize,
    writers: AtomicUsize,
    /// Readers wait here for data or the last writer to close.
    readable: WaitQueue,
    /// Writers wait here for room or the last reader to close.
    writable: WaitQueue,
    ino: u64,
    /// Writer and reader opens so far (FIFOs: an opener waiting for the
    /// other side goes on once one came, even if it left again).
    writer_opens: AtomicU64,
    reader_opens: AtomicU64,
}

impl Pipe {
    /// Capacity in page slots.
    fn slots(&self) -> usize {
        self.capacity.load(Ordering::Relaxed) / PAGE
    }
}

/// One end of a pipe; a FIFO opened O_RDWR is both.
pub struct PipeEnd {
    pipe: Arc<Pipe>,
    read: bool,
    write: bool,
    /// FIFOs: the inode (for fstat) and the path opened.
    fifo: Option<(Arc<dyn crate::vfs::Inode>, alloc::string::String)>,
    /// Writer opens seen when this end was opened: a FIFO reader hangs up
    /// only once a writer came and went (Linux: f_version vs w_counter).
    writers_seen: u64,
}

fn alloc_pipe(readers: usize, writers: usize) -> Arc<Pipe> {
    Arc::new(Pipe {
        buf: Mutex::new(Ring::new()),
        capacity: AtomicUsize::new(PIPE_SIZE),
        readers: AtomicUsize::new(readers),
        writers: AtomicUsize::new(writers),
        readable: WaitQueue::new(),
        writable: WaitQueue::new(),
        ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
        writer_opens: AtomicU64::new(writers as u64),
        reader_opens: AtomicU64::new(readers as u64),
    })
}

/// A new pipe: (read end, write end).
pub fn new_pipe() -> (PipeEnd, PipeEnd) {
    let p = alloc_pipe(1, 1);
    (
        PipeEnd { pipe: p.clone(), read: true, write: false, fifo: None, writers_seen: 0 },
        PipeEnd { pipe: p, read: false, write: true, fifo: None, writers_seen: 0 },
    )
}

/// The pipes of FIFOs someone has open, by inode (dev, ino).
static FIFOS: Mutex<BTreeMap<(u64, u64), Weak<Pipe>>> = Mutex::new(BTreeMap::new());

/// Opens the FIFO inode `key` (Linux: fifo_open). A reader waits for a
/// writer and a writer for a reader, unless O_NONBLOCK (then a writer
/// without readers gets ENXIO); O_RDWR never waits.
pub fn open_fifo(t: &Task, inode: Arc<dyn crate::vfs::Inode>, path: &str, flags: u32) -> Result<PipeEnd, Errno> {
    let key = inode.id();
    const O_NONBLOCK: u32 = 0o4000;
    let (read, write) = match flags & 3 {
        0 => (true, false),
        1 => (false, true),
        2 => (true, true),
        _ => return Err(Errno::EINVAL),
    };
    let nonblock = flags & O_NONBLOCK != 0;
    let end = {
        let mut m = FIFOS.lock();
        m.retain(|_, w| w.strong_count() > 0);
        let pipe = match m.get(&key).and_then(Weak::upgrade) {
            Some(p) => p,
            None => {
                let p = alloc_pipe(0, 0);
                m.insert(key, Arc::downgrade(&p));
                p
            }
        };
        if write && !read && nonblock && pipe.readers.load(Ordering::Acquire) == 0 {
            return Err(Errno::ENXIO);
        }
        // Counted under the table lock, so two openers always see each
        // other.
        if read {
            pipe.readers.fetch_add(1, Ordering::AcqRel);
            pipe.reader_opens.fetch_add(1, Ordering::AcqRel);
        }
        if write {
            pipe.writers.fetch_add(1, Ordering::AcqRel);
            pipe.writer_opens.fetch_add(1, Ordering::AcqRel);
        }
        let writers_seen = pipe.writer_opens.load(Ordering::Acquire);
        PipeEnd { pipe, read, write, fifo: Some((inode, path.into())), writers_seen }
    };
    let p = end.pipe.clone();
    let (readers_seen, writers_seen) = (p.reader_opens.load(Ordering::Acquire), p.writer_opens.load(Ordering::Acquire));
    p.readable.wake_all();
    p.writable.wake_all();
    POLL_WQ.wake_all();
    if read != write && !nonblock {
        let pending = || t.proc.pending();
        // Dropping `end` on a signal takes its count back.
        if read {
            let came = || p.writers.load(Ordering::Acquire) > 0 || p.writer_opens.load(Ordering::Acquire) != writers_seen;
            p.readable.wait(&t.shared, &pending, None, || came().then_some(()))?;
        } else {
            let came = || p.readers.load(Ordering::Acquire) > 0 || p.reader_opens.load(Ordering::Acquire) != readers_seen;
            p.writable.wait(&t.shared, &pending, None, || came().then_some(()))?;
        }
    }
    Ok(end)
}

/// A pipe without being one of its ends.
pub struct PipeRef(Arc<Pipe>);

impl PipeRef {
    /// A new end opened with open(2) `flags` (Linux opens a pipe's inode
    /// like a FIFO): the read end of a pipe may come back as a writer.
    /// Unlike a FIFO's open it never waits for the other side; the pipe had
    /// both when it was made.
    pub fn open(&self, flags: u32) -> Result<PipeEnd, Errno> {
        let (read, write) = match flags & 3 {
            0 => (true, false),
            1 => (false, true),
            2 => (true, true),
            _ => return Err(Errno::EINVAL),
        };
        let p = &self.0;
        if read {
            p.readers.fetch_add(1, Ordering::AcqRel);
            p.reader_opens.fetch_add(1, Ordering::AcqRel);
        }
        if write {
            p.writers.fetch_add(1, Ordering::AcqRel);
            p.writer_opens.fetch_add(1, Ordering::AcqRel);
        }
        let writers_seen = p.writer_opens.load(Ordering::Acquire);
        p.readable.wake_all();
        p.writable.wake_all();
        POLL_WQ.wake_all();
        Ok(PipeEnd { pipe: p.clone(), read, write, fifo: None, writers_seen })
    }
}

impl PipeEnd {
    /// The pipe, to open again through /proc/PID/fd (holding it neither
    /// reads nor writes, so the pipe's ends still see EOF and EPIPE).
    pub fn pipe_ref(&self) -> PipeRef {
        PipeRef(self.pipe.clone())
    }

    /// F_GETPIPE_SZ (`want` None) and F_SETPIPE_SZ: the capacity after.
    /// Linux rounds up to a power-of-two number of pages and refuses to
    /// shrink below the slots in use.
    pub fn resize(&self, want: Option<u64>) -> Result<usize, Errno> {
        const MAX: u64 = 1 << 20; // /proc/sys/fs/pipe-max-size
        let Some(want) = want else { return Ok(self.pipe.capacity.load(Ordering::Relaxed)) };
        if want > MAX {
            return Err(if want > 1 << 31 { Errno::EINVAL } else { Errno::EPERM });
        }
        let size = want.max(4096).next_power_of_two() as usize;
        let mut b = self.pipe.buf.lock();
        if b.used() > size / PAGE {
            return Err(Errno::EBUSY);
        }
        self.pipe.capacity.store(size, Ordering::Relaxed);
        b.free.truncate(size / PAGE);
        drop(b);
        self.pipe.writable.wake_all();
        Ok(size)
    }

    /// Bytes buffered (FIONREAD).
    pub fn available(&self) -> usize {
        self.pipe.buf.lock().len()
    }

    /// Whether `other` is an end of the same pipe (splice and tee refuse
    /// to move a pipe's bytes into itself).
    pub fn same_pipe(&self, other: &PipeEnd) -> bool {
        Arc::ptr_eq(&self.pipe, &other.pipe)
    }

    /// splice, tee, vmsplice: waits until the pipe holds bytes (true) or
    /// no writer is left (false: end of file). `nonblock`: EAGAIN instead
    /// of waiting (Linux: splice_from_pipe_next, ipipe_prep).
    pub fn wait_data(&self, t: &Task, nonblock: bool) -> Result<bool, Errno> {
        let p = &self.pipe;
        let pending = || t.proc.pending();
        p.readable.wait(&t.shared, &pending, None, || {
            if !p.buf.lock().is_empty() {
                return Some(Ok(true));
            }
            if p.writers.load(Ordering::Acquire) == 0 {
                return Some(Ok(false));
            }
            nonblock.then_some(Err(Errno::EAGAIN))
        })?
    }

    /// splice, tee, vmsplice, sendfile: waits until the pipe has room and
    /// returns how much; with no reader left it is EPIPE and SIGPIPE
    /// (Linux: wait_for_space, opipe_prep).
    pub fn wait_room(&self, t: &Task, nonblock: bool) -> Result<usize, Errno> {
        let p = &self.pipe;
        let pending = || t.proc.pending();
        let r = p.writable.wait(&t.shared, &pending, None, || {
            if p.readers.load(Ordering::Acquire) == 0 {
                return Some(Err(Errno::EPIPE));
            }
            let room = p.slots().saturating_sub(p.buf.lock().used()) * PAGE;
            if room > 0 {
                return Some(Ok(room));
            }
            nonblock.then_some(Err(Errno::EAGAIN))
        });
        let r = r.and_then(|r| r);
        if r == Err(Errno::EPIPE) {
            sigpipe(t);
        }
        r
    }

    /// A copy of up to `max` bytes from the front, left in the pipe (tee;
    /// splice takes them only once they went out).
    pub fn peek(&self, max: usize) -> Vec<u8> {
        self.pipe.buf.lock().peek(max)
    }

    /// Drops `n` bytes from the front (peeked bytes that went elsewhere).
    pub fn consume(&self, n: usize) {
        self.pipe.buf.lock().consume(n, self.pipe.slots());
        self.pipe.writable.wake_all();
        POLL_WQ.wake_all();
    }

    /// Appends `data` for the readers. The caller waited for room with
    /// `wait_room` and brings at most that much, so the pipe overfills only
    /// if another writer came in between.
    pub fn push(&self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.pipe.buf.lock().push(data);
        self.pipe.readable.wake_all();
        POLL_WQ.wake_all();
    }
}

/// The pipe end behind an open file: a pipe or a FIFO.
pub fn pipe_of(f: &super::OpenFile) -> Option<&PipeEnd> {
    f.ops.as_any()?.downcast_ref::<PipeEnd>()
}

/// Writing to a pipe without readers raises SIGPIPE.
fn sigpipe(t: &Task) {
    let info = crate::kernel::signal::SigInfo::from_sender(crate::kernel::signal::SI_USER, t.pid(), t.creds.uid);
    crate::kernel::signal::send_to_thread(&t.proc, &t.shared, crate::kernel::signal::SIGPIPE, info);
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        if self.write && self.pipe.writers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.pipe.readable.wake_all();
        }
        if self.read && self.pipe.readers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.pipe.writable.wake_all();
        }
        POLL_WQ.wake_all();
    }
}

/// A position in the caller's segments, handing out runs of user memory
/// that do not cross a page: a copy that faults is then known to have
/// moved exactly the runs before the bad page.
struct SegCursor<'a> {
    segs: &'a [UserSeg],
    /// The segment and the offset in it.
    at: (usize, usize),
}

impl<'a> SegCursor<'a> {
    fn new(segs: &'a [UserSeg]) -> SegCursor<'a> {
        SegCursor { segs, at: (0, 0) }
    }

    /// The next run of at most `max` (> 0) bytes; None past the end.
    fn next(&mut self, max: usize) -> Option<(u64, usize)> {
        loop {
            let &(addr, len) = self.segs.get(self.at.0)?;
            if self.at.1 < len {
                let va = addr.wrapping_add(self.at.1 as u64);
                let in_page = (PAGE - (va % PAGE as u64) as usize).min(len - self.at.1);
                let n = in_page.min(max);
                self.at.1 += n;
                return Some((va, n));
            }
            self.at = (self.at.0 + 1, 0);
        }
    }
}

const PAGE: usize = abi::layout::PAGE_SIZE as usize;

/// Copies the caller's next bytes into `dst` (two pieces of a ring):
/// returns how many arrived, and the error of a bad page that stopped it.
fn copy_in(mm: &mut MemoryManager, from: &mut SegCursor, dst: [&mut [u8]; 2]) -> (usize, Result<(), Errno>) {
    let mut done = 0;
    for d in dst {
        let mut at = 0;
        while at < d.len() {
            let Some((va, n)) = from.next(d.len() - at) else { return (done, Ok(())) };
            if let Err(e) = mm.copy_in(va, &mut d[at..at + n]) {
                return (done, Err(e));
            }
            at += n;
            done += n;
        }
    }
    (done, Ok(()))
}

/// Copies `src` (two pieces of a ring) into the caller's next bytes, as
/// `copy_in` the other way.
fn copy_out(mm: &mut MemoryManager, to: &mut SegCursor, src: [&[u8]; 2]) -> (usize, Result<(), Errno>) {
    let mut done = 0;
    for s in src {
        let mut at = 0;
        while at < s.len() {
            let Some((va, n)) = to.next(s.len() - at) else { return (done, Ok(())) };
            if let Err(e) = mm.copy_out(va, &s[at..at + n]) {
                return (done, Err(e));
            }
            at += n;
            done += n;
        }
    }
    (done, Ok(()))
}

fn total(segs: &[UserSeg]) -> usize {
    segs.iter().map(|s| s.1).sum()
}

impl FileOps for PipeEnd {
    fn pipe_size(&self, want: Option<u64>) -> Result<usize, Errno> {
        self.resize(want)
    }

    fn read(&self, t: &Task, segs: &[UserSeg], off: Option<u64>, nonblock: bool) -> SysResult {
        if off.is_some() {
            return Err(Errno::ESPIPE);
        }
        if !self.read {
            return Err(Errno::EBADF);
        }
        let want = total(segs);
        if want == 0 {
            return Ok(0);
        }
        let p = &self.pipe;
        let pending = || t.proc.pending();
        let n = p.readable.wait(&t.shared, &pending, None, || {
            let mut guard = p.buf.lock();
            let b = &mut *guard;
            // Straight from the slots into the caller's pages (Linux:
            // pipe_read). A slot whose copy faults stays whole.
            let (mut got, mut fault, used) = (0, None, b.used());
            if !b.is_empty() {
                let mut mm = t.mm.lock();
                let mut to = SegCursor::new(segs);
                while let Some(s) = b.slots.front_mut() {
                    let n = s.len.min(want - got);
                    let (k, r) = copy_out(&mut mm, &mut to, [&s.page[s.off..s.off + n], &[]]);
                    if k < n {
                        fault = r.err();
                        break;
                    }
                    s.off += n;
                    s.len -= n;
                    b.bytes -= n;
                    got += n;
                    if s.len == 0 {
                        b.pop(p.slots());
                    }
                    if got == want {
                        break;
                    }
                }
            }
            if got > 0 {
                return Some(Ok(got));
            }
            if let Some(e) = fault {
                return Some(Err(e));
            }
            if b.used() < used {
                // Only empty slots (left by faulting writes) went: a writer
                // waiting for one must hear of it before this reader sleeps.
                p.writable.wake_all();
            }
            if p.writers.load(Ordering::Acquire) == 0 {
                return Some(Ok(0));
            }
            if nonblock {
                return Some(Err(Errno::EAGAIN));
            }
            None
        })??;
        if n > 0 {
            p.writable.wake_all();
            POLL_WQ.wake_all();
        }
        Ok(n as u64)
    }

    fn write(&self, t: &Task, segs: &[UserSeg], off: Option<u64>, nonblock: bool) -> SysResult {
        if off.is_some() {
            return Err(Errno::ESPIPE);
        }
        if !self.write {
            return Err(Errno::EBADF);
        }
        let want = total(segs);
        // Linux: a null write succeeds before the readers are looked at.
        if want == 0 {
            return Ok(0);
        }
        let p = &self.pipe;
        let mut written = 0usize;
        let mut from = SegCursor::new(segs);
        let pending = || t.proc.pending();
        // Linux: pipe_write. The part of the write past its last whole page
        // may first fill up the last slot; the rest goes into new slots of
        // a page each, as they come free. A write of at most PIPE_BUF
        // bytes thus goes in whole, and a bigger one may be cut at a slot.
        let mut first = true;
        while written < want {
            let r = p.writable.wait(&t.shared, &pending, None, || {
                if p.readers.load(Ordering::Acquire) == 0 {
                    return Some(Err((Errno::EPIPE, 0)));
                }
                let mut guard = p.buf.lock();
                let b = &mut *guard;
                let mut mm = t.mm.lock();
                let mut moved = 0;
                let chars = want % PAGE;
                if core::mem::take(&mut first) && chars > 0 {
                    if let Some(s) = b.slots.back_mut().filter(|s| s.merge && s.off + s.len + chars <= PAGE) {
                        let at = s.off + s.len;
                        let (k, r) = copy_in(&mut mm, &mut from, [&mut s.page[at..at + chars], &mut []]);
                        if let Err(e) = r {
                            return Some(Err((e, 0)));
                        }
                        s.len += k;
                        b.bytes += k;
                        moved = k;
                    }
                }
                let slots = p.slots();
                while written + moved < want && b.used() < slots {
                    let n = (want - written - moved).min(PAGE);
                    let mut page = b.page();
                    let (k, r) = copy_in(&mut mm, &mut from, [&mut page[..n], &mut []]);
                    // A page the copy cut short stays as an empty slot,
                    // as in Linux (a later small write may fill it).
                    let len = if r.is_ok() { k } else { 0 };
                    b.slots.push_back(Slot { page, off: 0, len, merge: true });
                    b.bytes += len;
                    if let Err(e) = r {
                        return Some(Err((e, moved)));
                    }
                    moved += k;
                }
                if moved > 0 {
                    return Some(Ok(moved));
                }
                if nonblock {
                    return Some(Err((Errno::EAGAIN, 0)));
                }
                None
            });
            let (n, err) = match r {
                Ok(Ok(n)) => (n, None),
                Ok(Err((e, n))) => (n, Some(e)),
                Err(e) => (0, Some(e)),
            };
            if n > 0 {
                written += n;
                p.readable.wake_all();
                POLL_WQ.wake_all();
            }
            if let Some(e) = err {
                if e == Errno::EPIPE {
                    sigpipe(t);
                }
                return if written > 0 { Ok(written as u64) } else { Err(e) };
            }
        }
        Ok(written as u64)
    }

    fn as_any(&self) -> Option<&dyn core::any::Any> {
        Some(self)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        if let Some((inode, _)) = &self.fifo {
            return inode.stat();
        }
        Ok(Stat { st_mode: 0o010600, st_nlink: 1, st_blksize: 4096, st_ino: self.pipe.ino, st_dev: 12, ..Stat::default() })
    }

    fn ioctl(&self, t: &Task, req: u64, arg: u64) -> SysResult {
        const FIONREAD: u64 = 0x541b;
        match req {
            FIONREAD => {
                let n = self.available() as i32;
                t.mm.lock().write_obj(arg, &n).map(|()| 0)
            }
            _ => Err(Errno::ENOTTY),
        }
    }

    fn path(&self) -> &str {
        match &self.fifo {
            Some((_, path)) => path,
            None => "pipe:",
        }
    }

    fn poll(&self, _events: u16) -> u16 {
        let p = &self.pipe;
        let (empty, used) = {
            let b = p.buf.lock();
            (b.is_empty(), b.used())
        };
        let mut r = 0;
        // Linux: writable while a slot is free, an error without readers
        // (both may hold at once).
        if self.write {
            if used < p.slots() {
                r |= POLLOUT | POLLWRNORM;
            }
            if p.readers.load(Ordering::Acquire) == 0 {
                r |= POLLERR;
            }
        }
        if self.read {
            if !empty {
                r |= POLLIN | POLLRDNORM;
            }
            if p.writers.load(Ordering::Acquire) == 0 && p.writer_opens.load(Ordering::Acquire) != self.writers_seen {
                r |= POLLHUP;
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_consume_push() {
        let (r, w) = new_pipe();
        let (r2, _w2) = new_pipe();
        assert!(r.same_pipe(&w));
        assert!(!r.same_pipe(&r2));
        w.push(b"hello ");
        w.push(b"world");
        assert_eq!(r.available(), 11);
        // A peek leaves the bytes; consume takes them from the front.
        assert_eq!(r.peek(5), b"hello");
        assert_eq!(r.peek(100), b"hello world");
        r.consume(6);
        assert_eq!(r.peek(100), b"world");
        r.consume(100);
        assert_eq!(r.available(), 0);
        assert!(r.peek(10).is_empty());
        w.push(b"");
        assert_eq!(r.available(), 0);
    }

    #[test]
    fn ring_slots() {
        let mut ring = Ring::new();
        // Spliced bytes take a slot per page and never merge.
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        ring.push(&data);
        assert_eq!((ring.used(), ring.len()), (3, 10_000));
        assert!(ring.slots.iter().all(|s| !s.merge));
        assert_eq!(ring.peek(5000), &data[..5000]);
        assert_eq!(ring.peek(1 << 20), data);
        // Consuming part of a slot keeps it; all of it frees it, and its
        // page is kept for reuse up to `keep` pages.
        ring.consume(4000, 16);
        assert_eq!((ring.used(), ring.len()), (3, 6000));
        ring.consume(100, 16);
        assert_eq!((ring.used(), ring.len(), ring.free.len()), (2, 5900, 1));
        assert_eq!(ring.peek(10), &data[4100..4110]);
        ring.consume(1 << 20, 1);
        assert!(ring.is_empty());
        assert_eq!((ring.len(), ring.free.len()), (0, 1));
        // A reused page is overwritten, never shown stale.
        ring.push(b"ab");
        assert_eq!(ring.peek(100), b"ab");
    }
}
