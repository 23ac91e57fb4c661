//! Pipes (Linux: fs/pipe.c): a bounded byte queue between a read end and
//! a write end. Reads block while it is empty and writers remain; writes
//! block while it is full and readers remain; writes of up to PIPE_BUF
//! bytes are atomic; writing with no readers is EPIPE plus SIGPIPE.
//! A FIFO is the same pipe, found through its inode by every opener.

use abi::linux::Stat;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::{Arc, Weak};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use spin::Mutex;

use super::{FileOps, UserSeg, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM, POLL_WQ};
use crate::errno::{Errno, SysResult};
use crate::kernel::task::Task;
use crate::kernel::wait::WaitQueue;

/// Default capacity (Linux: 16 pages).
pub const PIPE_SIZE: usize = 64 << 10;
/// Writes up to this size are atomic.
pub const PIPE_BUF: usize = 4096;

static NEXT_INO: AtomicU64 = AtomicU64::new(1);

/// The shared pipe.
pub struct Pipe {
    buf: Mutex<VecDeque<u8>>,
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
        buf: Mutex::new(VecDeque::new()),
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
    /// shrink below what is buffered.
    pub fn resize(&self, want: Option<u64>) -> Result<usize, Errno> {
        const MAX: u64 = 1 << 20; // /proc/sys/fs/pipe-max-size
        let Some(want) = want else { return Ok(self.pipe.capacity.load(Ordering::Relaxed)) };
        if want > MAX {
            return Err(if want > 1 << 31 { Errno::EINVAL } else { Errno::EPERM });
        }
        let size = want.max(4096).next_power_of_two() as usize;
        let b = self.pipe.buf.lock();
        if b.len() > size {
            return Err(Errno::EBUSY);
        }
        self.pipe.capacity.store(size, Ordering::Relaxed);
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
            let room = p.capacity.load(Ordering::Relaxed).saturating_sub(p.buf.lock().len());
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
    pub fn peek(&self, max: usize) -> alloc::vec::Vec<u8> {
        let b = self.pipe.buf.lock();
        let n = max.min(b.len());
        let (front, back) = b.as_slices();
        let k = n.min(front.len());
        let mut out = alloc::vec::Vec::with_capacity(n);
        out.extend_from_slice(&front[..k]);
        out.extend_from_slice(&back[..n - k]);
        out
    }

    /// Drops `n` bytes from the front (peeked bytes that went elsewhere).
    pub fn consume(&self, n: usize) {
        {
            let mut b = self.pipe.buf.lock();
            let n = n.min(b.len());
            b.drain(..n);
        }
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
        self.pipe.buf.lock().extend(data);
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

/// Most bytes a write takes from the caller at once (the largest pipe).
const WRITE_CHUNK: usize = 1 << 20;

/// Copies bytes [off, off+buf.len()) of the caller's segments into `buf`.
fn copy_from_segs(t: &Task, segs: &[UserSeg], off: usize, buf: &mut [u8]) -> Result<(), Errno> {
    let mut mm = t.mm.lock();
    let (mut pos, mut done) = (0usize, 0usize);
    for &(addr, len) in segs {
        if done == buf.len() {
            break;
        }
        let end = pos + len;
        if end > off + done {
            let from = off + done - pos;
            let n = (len - from).min(buf.len() - done);
            mm.copy_in(addr + from as u64, &mut buf[done..done + n])?;
            done += n;
        }
        pos = end;
    }
    Ok(())
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
        let data = p.readable.wait(&t.shared, &pending, None, || {
            let mut b = p.buf.lock();
            if !b.is_empty() {
                // Two slice copies (memcpy), not a byte-wise iterator.
                let n = want.min(b.len());
                let mut out = alloc::vec::Vec::with_capacity(n);
                let (front, back) = b.as_slices();
                let k = n.min(front.len());
                out.extend_from_slice(&front[..k]);
                out.extend_from_slice(&back[..n - k]);
                b.drain(..n);
                return Some(Ok(out));
            }
            if p.writers.load(Ordering::Acquire) == 0 {
                return Some(Ok(alloc::vec::Vec::new()));
            }
            if nonblock {
                return Some(Err(Errno::EAGAIN));
            }
            None
        })??;
        p.writable.wake_all();
        POLL_WQ.wake_all();
        // Copy out; a bad buffer loses the data, as in Linux.
        let mut done = 0;
        let mut mm = t.mm.lock();
        for &(addr, len) in segs {
            if done >= data.len() {
                break;
            }
            let n = len.min(data.len() - done);
            mm.copy_out(addr, &data[done..done + n])?;
            done += n;
        }
        Ok(data.len() as u64)
    }

    fn write(&self, t: &Task, segs: &[UserSeg], off: Option<u64>, nonblock: bool) -> SysResult {
        if off.is_some() {
            return Err(Errno::ESPIPE);
        }
        if !self.write {
            return Err(Errno::EBADF);
        }
        let want = total(segs);
        let p = &self.pipe;
        let mut written = 0usize;
        let pending = || t.proc.pending();
        // The caller's bytes come in a piece at a time (a huge length must
        // not become one sentry allocation); `data` holds [base, base+len).
        let mut data = alloc::vec::Vec::new();
        let mut base = 0usize;
        while written < want || want == 0 {
            if written >= base + data.len() && want > 0 {
                base = written;
                let n = (want - written).min(WRITE_CHUNK);
                data.resize(n, 0);
                if let Err(e) = copy_from_segs(t, segs, base, &mut data) {
                    return if written > 0 { Ok(written as u64) } else { Err(e) };
                }
            }
            let r = p.writable.wait(&t.shared, &pending, None, || {
                if p.readers.load(Ordering::Acquire) == 0 {
                    return Some(Err(Errno::EPIPE));
                }
                let mut b = p.buf.lock();
                let room = p.capacity.load(Ordering::Relaxed).saturating_sub(b.len());
                let left = want - written;
                // Small writes go in whole or not at all.
                let need = if left <= PIPE_BUF { left } else { 1 };
                if room >= need.max(1) || want == 0 {
                    let n = left.min(room).min(base + data.len() - written);
                    b.extend(&data[written - base..written - base + n]);
                    return Some(Ok(n));
                }
                if nonblock {
                    return Some(Err(Errno::EAGAIN));
                }
                None
            });
            match r {
                Ok(Ok(n)) => {
                    written += n;
                    p.readable.wake_all();
                    POLL_WQ.wake_all();
                    if want == 0 {
                        break;
                    }
                }
                Ok(Err(e)) | Err(e) => {
                    if e == Errno::EPIPE {
                        sigpipe(t);
                    }
                    if written > 0 {
                        return Ok(written as u64);
                    }
                    return Err(e);
                }
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
            FIONREAD => t.mm.lock().write_obj(arg, &(self.available() as i32)).map(|()| 0),
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
        let len = p.buf.lock().len();
        let mut r = 0;
        if self.write {
            if p.readers.load(Ordering::Acquire) == 0 {
                r |= POLLERR;
            } else if p.capacity.load(Ordering::Relaxed) - len >= PIPE_BUF {
                r |= POLLOUT | POLLWRNORM;
            }
        }
        if self.read {
            if len > 0 {
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
}
