//! epoll (Linux: fs/eventpoll.c), built on the files' `poll` and on
//! `POLL_WQ`: epoll_wait scans the interest list, and when nothing is
//! ready sleeps on `POLL_WQ` (every sentry file wakes it when its
//! readiness may change), re-checking host-backed files (stdio) every few
//! milliseconds, as poll(2) does.
//!
//! Interests are keyed by (fd number, open file) like Linux, and hold the
//! file weakly: when its last reference goes (the last fd closed), the
//! interest disappears.
//!
//! Level-triggered interests are reported whenever the file is ready.
//! Edge-triggered (EPOLLET) ones are reported when the ready mask gains a
//! bit since the last report or observation, or when `POLL_WQ` has been
//! woken since the last report while the file is still ready (a new write
//! to an undrained pipe or eventfd is a new edge in Linux too). `POLL_WQ`
//! is global, so the latter can report an extra edge after activity on
//! another file — a spurious event, which correct ET programs tolerate
//! (they read until EAGAIN) — but never misses one. Host-backed files,
//! whose changes do not wake `POLL_WQ`, are re-reported at most every
//! `HOST_POLL_NS` while ready.
//!
//! An epoll file is itself pollable (POLLIN when epoll_wait would report
//! something), so epoll instances nest, with Linux's loop and depth
//! limits (ELOOP).

use abi::linux::Stat;
use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use spin::Mutex;

use super::{anon, FileOps, OpenFile, POLLIN, POLLRDNORM, POLL_WQ};
use crate::errno::Errno;

pub const EPOLLIN: u32 = 0x1;
pub const EPOLLOUT: u32 = 0x4;
pub const EPOLLERR: u32 = 0x8;
pub const EPOLLHUP: u32 = 0x10;
pub const EPOLLRDHUP: u32 = 0x2000;
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
pub const EPOLLWAKEUP: u32 = 1 << 29;
pub const EPOLLONESHOT: u32 = 1 << 30;
pub const EPOLLET: u32 = 1 << 31;
/// The event bits (what `poll` can return); the rest are flags.
const EVENT_BITS: u32 = 0xffff;
/// What EPOLLEXCLUSIVE may be combined with.
const EXCLUSIVE_OK: u32 = EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;

pub const EPOLL_CTL_ADD: u32 = 1;
pub const EPOLL_CTL_DEL: u32 = 2;
pub const EPOLL_CTL_MOD: u32 = 3;

/// Deepest nesting of epoll instances (Linux: EP_MAX_NESTS).
const EP_MAX_NESTS: usize = 4;
/// How often host-backed files are re-checked while waiting.
pub const HOST_POLL_NS: u64 = 2_000_000;
/// Path of epoll files.
const PATH: &str = "anon_inode:[eventpoll]";

/// One registered (fd, file).
struct Interest {
    fd: i32,
    file: Weak<OpenFile>,
    /// The epoll instance behind `file`, when it is one.
    nested: Option<Weak<EpollCore>>,
    /// Requested events (always with EPOLLERR | EPOLLHUP) and flags.
    events: u32,
    data: u64,
    /// EPOLLONESHOT fired: nothing is reported until EPOLL_CTL_MOD.
    disabled: bool,
    /// EPOLLET: mask last reported (or 0 once seen not ready).
    last: u32,
    /// EPOLLET: `POLL_WQ` wake count at the last report.
    gen: u64,
    /// EPOLLET: CLOCK_MONOTONIC ns of the last report (host-backed files).
    reported_at: u64,
}

impl Interest {
    fn rearm(&mut self) {
        self.disabled = false;
        self.last = 0;
        self.gen = u64::MAX;
        self.reported_at = 0;
    }
}

#[derive(Default)]
struct Inner {
    /// By a private id, in registration order.
    interests: BTreeMap<u64, Interest>,
    next_id: u64,
    /// Id of the last reported interest: scans start after it, so a
    /// small `maxevents` cannot starve the others.
    cursor: u64,
}

/// An event epoll_wait reports.
#[derive(Clone, Copy, Debug)]
pub struct Ready {
    id: u64,
    pub events: u32,
    pub data: u64,
    gen: u64,
}

/// An epoll instance.
pub struct EpollCore {
    inner: Mutex<Inner>,
    /// The instances this one is registered in (for the depth limit).
    parents: Mutex<Vec<Weak<EpollCore>>>,
    me: Weak<EpollCore>,
}

/// Live epoll instances, to find the one behind an fd.
pub static EPOLLS: anon::Registry<EpollCore> = anon::Registry::new(PATH);

/// An epoll file.
pub struct EpollFile {
    core: Arc<EpollCore>,
    ino: u64,
}

impl EpollFile {
    /// A new, empty instance.
    pub fn new() -> EpollFile {
        let core = Arc::new_cyclic(|me| EpollCore { inner: Mutex::new(Inner::default()), parents: Mutex::new(Vec::new()), me: me.clone() });
        let ino = anon::next_ino();
        EPOLLS.insert(ino, &core);
        EpollFile { core, ino }
    }
}

impl Default for EpollFile {
    fn default() -> Self {
        EpollFile::new()
    }
}

impl Drop for EpollFile {
    fn drop(&mut self) {
        EPOLLS.remove(self.ino);
    }
}

/// How many epoll levels lie below `c` (0: no nested instance), or
/// usize::MAX if `target` is among them (a loop) or it is too deep.
fn depth_below(c: &Arc<EpollCore>, target: &EpollCore, depth: usize) -> usize {
    let children: Vec<Arc<EpollCore>> =
        c.inner.lock().interests.values().filter_map(|i| i.nested.as_ref().and_then(Weak::upgrade)).collect();
    let mut result = 0;
    for ch in children {
        if core::ptr::eq(Arc::as_ptr(&ch), target) || depth > EP_MAX_NESTS {
            return usize::MAX;
        }
        let d = depth_below(&ch, target, depth + 1);
        if d == usize::MAX {
            return d;
        }
        result = result.max(d + 1);
    }
    result
}

/// How many epoll levels lie above `c` (0: it is in no instance).
fn depth_above(c: &EpollCore, depth: usize) -> usize {
    if depth > EP_MAX_NESTS + 1 {
        return depth;
    }
    let parents: Vec<Arc<EpollCore>> = c.parents.lock().iter().filter_map(Weak::upgrade).collect();
    parents.iter().map(|p| depth_above(p, depth + 1) + 1).max().unwrap_or(0)
}

/// A waiter of this instance (another thread, an outer instance) must
/// look again if the file just (re)registered is ready already.
fn wake_if_ready(file: &OpenFile, events: u32) {
    let want = (events | EPOLLERR | EPOLLHUP) & EVENT_BITS;
    if u32::from(file.ops.poll(want as u16)) & want != 0 {
        POLL_WQ.wake_all();
    }
}

impl EpollCore {
    /// epoll_ctl on (`fd`, `file`); `ev` is (events, data) for ADD and MOD.
    pub fn ctl(&self, op: u32, fd: i32, file: &Arc<OpenFile>, ev: (u32, u64)) -> Result<(), Errno> {
        // No CAP_BLOCK_SUSPEND: EPOLLWAKEUP is dropped silently, as Linux does.
        let events = ev.0 & !EPOLLWAKEUP;
        let target = EPOLLS.lookup(file);
        if target.as_ref().is_some_and(|c| core::ptr::eq(Arc::as_ptr(c), self)) {
            return Err(Errno::EINVAL);
        }
        let exclusive = op != EPOLL_CTL_DEL && events & EPOLLEXCLUSIVE != 0;
        if exclusive && (op == EPOLL_CTL_MOD || (op == EPOLL_CTL_ADD && (target.is_some() || events & !EXCLUSIVE_OK != 0))) {
            return Err(Errno::EINVAL);
        }
        if op == EPOLL_CTL_ADD {
            if let Some(tc) = &target {
                let below = depth_below(tc, self, 0);
                if below > EP_MAX_NESTS || below + 1 + depth_above(self, 0) > EP_MAX_NESTS {
                    return Err(Errno::ELOOP);
                }
            }
        }
        let mut g = self.inner.lock();
        g.interests.retain(|_, i| i.file.strong_count() > 0);
        let found = g.interests.iter().find(|(_, i)| i.fd == fd && Weak::as_ptr(&i.file) == Arc::as_ptr(file)).map(|(id, _)| *id);
        match (op, found) {
            (EPOLL_CTL_ADD, None) => {
                let id = g.next_id;
                g.next_id += 1;
                let mut it = Interest {
                    fd,
                    file: Arc::downgrade(file),
                    nested: target.as_ref().map(Arc::downgrade),
                    events: events | EPOLLERR | EPOLLHUP,
                    data: ev.1,
                    disabled: false,
                    last: 0,
                    gen: 0,
                    reported_at: 0,
                };
                it.rearm();
                g.interests.insert(id, it);
                drop(g);
                if let Some(tc) = target {
                    tc.parents.lock().push(self.me.clone());
                }
                wake_if_ready(file, events);
                Ok(())
            }
            (EPOLL_CTL_ADD, Some(_)) => Err(Errno::EEXIST),
            (EPOLL_CTL_DEL, Some(id)) => {
                let it = g.interests.remove(&id);
                drop(g);
                if let Some(tc) = it.and_then(|i| i.nested).and_then(|w| w.upgrade()) {
                    let mut p = tc.parents.lock();
                    if let Some(k) = p.iter().position(|w| Weak::as_ptr(w) == Weak::as_ptr(&self.me)) {
                        p.remove(k);
                    }
                }
                Ok(())
            }
            (EPOLL_CTL_MOD, Some(id)) => {
                let it = g.interests.get_mut(&id).ok_or(Errno::ENOENT)?;
                if it.events & EPOLLEXCLUSIVE != 0 {
                    return Err(Errno::EINVAL);
                }
                it.events = events | EPOLLERR | EPOLLHUP;
                it.data = ev.1;
                it.rearm();
                drop(g);
                wake_if_ready(file, events);
                Ok(())
            }
            (EPOLL_CTL_DEL | EPOLL_CTL_MOD, None) => Err(Errno::ENOENT),
            _ => Err(Errno::EINVAL),
        }
    }

    /// What epoll_wait would report now, at most `max` events, without
    /// consuming anything; and whether a host-backed file is watched.
    pub fn scan(&self, max: usize, now: u64) -> (Vec<Ready>, bool) {
        let gen = POLL_WQ.wake_count();
        // Poll without holding our lock: a nested instance takes its own.
        let snap: Vec<(u64, Arc<OpenFile>, u32)> = {
            let mut g = self.inner.lock();
            g.interests.retain(|_, i| i.file.strong_count() > 0);
            let c = g.cursor;
            g.interests
                .range(c.saturating_add(1)..)
                .chain(g.interests.range(..=c))
                .filter(|(_, i)| !i.disabled)
                .filter_map(|(id, i)| i.file.upgrade().map(|f| (*id, f, i.events)))
                .collect()
        };
        let mut host = false;
        let mut masks = Vec::with_capacity(snap.len());
        for (id, f, events) in &snap {
            let h = f.ops.host_backed();
            host |= h;
            let m = u32::from(f.ops.poll((*events & EVENT_BITS) as u16)) & *events & EVENT_BITS;
            masks.push((*id, m, h));
        }
        let mut out = Vec::new();
        let mut g = self.inner.lock();
        for (id, m, h) in masks {
            if out.len() >= max {
                break;
            }
            let Some(it) = g.interests.get_mut(&id) else { continue };
            if it.disabled {
                continue;
            }
            if it.events & EPOLLET != 0 {
                if m == 0 {
                    it.last = 0;
                    continue;
                }
                let edge = m & !it.last != 0 || it.gen != gen || (h && now.saturating_sub(it.reported_at) >= HOST_POLL_NS);
                if !edge {
                    // Bits seen cleared: their return is a rising edge.
                    it.last &= m;
                    continue;
                }
            } else if m == 0 {
                continue;
            }
            out.push(Ready { id, events: m, data: it.data, gen });
        }
        (out, host)
    }

    /// Marks `done` (a prefix of what `scan` returned) as reported.
    pub fn commit(&self, done: &[Ready], now: u64) {
        let mut g = self.inner.lock();
        for r in done {
            if let Some(it) = g.interests.get_mut(&r.id) {
                if it.events & EPOLLET != 0 {
                    it.last = r.events;
                    it.gen = r.gen;
                    it.reported_at = now;
                }
                if it.events & EPOLLONESHOT != 0 {
                    it.disabled = true;
                }
            }
        }
        if let Some(r) = done.last() {
            g.cursor = r.id;
        }
    }

    /// Whether a watched file is host-backed.
    fn watches_host(&self) -> bool {
        let files: Vec<Arc<OpenFile>> = self.inner.lock().interests.values().filter_map(|i| i.file.upgrade()).collect();
        files.iter().any(|f| f.ops.host_backed())
    }
}

impl FileOps for EpollFile {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(anon::stat(self.ino))
    }

    fn path(&self) -> &str {
        PATH
    }

    fn poll(&self, _events: u16) -> u16 {
        let now = crate::kernel::clock::monotonic_ns();
        if self.core.scan(1, now).0.is_empty() {
            0
        } else {
            POLLIN | POLLRDNORM
        }
    }

    fn host_backed(&self) -> bool {
        self.core.watches_host()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{POLLERR, POLLOUT};
    use core::sync::atomic::{AtomicU16, Ordering};

    /// The tests share `POLL_WQ`'s wake count.
    static SERIAL: Mutex<()> = Mutex::new(());

    struct Fake(Arc<AtomicU16>);
    impl FileOps for Fake {
        fn stat(&self) -> Result<Stat, Errno> {
            Ok(Stat::default())
        }
        fn path(&self) -> &str {
            "fake"
        }
        fn poll(&self, _events: u16) -> u16 {
            self.0.load(Ordering::Relaxed)
        }
    }

    fn fake() -> (Arc<OpenFile>, Arc<AtomicU16>) {
        let r = Arc::new(AtomicU16::new(0));
        (OpenFile::new(alloc::boxed::Box::new(Fake(r.clone())), 0), r)
    }

    fn epoll() -> (Arc<OpenFile>, Arc<EpollCore>) {
        let f = OpenFile::new(alloc::boxed::Box::new(EpollFile::new()), 2);
        let c = EPOLLS.lookup(&f).unwrap();
        (f, c)
    }

    /// Reports and commits like epoll_wait with timeout 0.
    fn wait(c: &EpollCore, max: usize) -> Vec<(u32, u64)> {
        let (r, _) = c.scan(max, 0);
        c.commit(&r, 0);
        r.iter().map(|r| (r.events, r.data)).collect()
    }

    #[test]
    fn ctl_rules() {
        let _g = SERIAL.lock();
        let (ef, c) = epoll();
        let (f, _) = fake();
        assert_eq!(c.ctl(EPOLL_CTL_ADD, 3, &ef, (EPOLLIN, 0)), Err(Errno::EINVAL));
        assert_eq!(c.ctl(EPOLL_CTL_MOD, 3, &f, (EPOLLIN, 0)), Err(Errno::ENOENT));
        assert_eq!(c.ctl(EPOLL_CTL_DEL, 3, &f, (0, 0)), Err(Errno::ENOENT));
        assert_eq!(c.ctl(EPOLL_CTL_ADD, 3, &f, (EPOLLIN, 1)), Ok(()));
        assert_eq!(c.ctl(EPOLL_CTL_ADD, 3, &f, (EPOLLIN, 1)), Err(Errno::EEXIST));
        // Another fd number for the same file is another interest.
        assert_eq!(c.ctl(EPOLL_CTL_ADD, 4, &f, (EPOLLIN, 2)), Ok(()));
        assert_eq!(c.ctl(99, 3, &f, (EPOLLIN, 1)), Err(Errno::EINVAL));
        assert_eq!(c.ctl(EPOLL_CTL_MOD, 3, &f, (EPOLLIN | EPOLLEXCLUSIVE, 1)), Err(Errno::EINVAL));
        let (g, _) = fake();
        assert_eq!(c.ctl(EPOLL_CTL_ADD, 5, &g, (EPOLLIN | EPOLLONESHOT | EPOLLEXCLUSIVE, 1)), Err(Errno::EINVAL));
        assert_eq!(c.ctl(EPOLL_CTL_ADD, 5, &g, (EPOLLIN | EPOLLEXCLUSIVE, 1)), Ok(()));
        assert_eq!(c.ctl(EPOLL_CTL_MOD, 5, &g, (EPOLLIN, 1)), Err(Errno::EINVAL));
        assert_eq!(c.ctl(EPOLL_CTL_DEL, 4, &f, (0, 0)), Ok(()));
        assert_eq!(c.ctl(EPOLL_CTL_DEL, 4, &f, (0, 0)), Err(Errno::ENOENT));
    }

    #[test]
    fn level_edge_oneshot() {
        let _g = SERIAL.lock();
        let (_ef, c) = epoll();
        let (f, r) = fake();
        c.ctl(EPOLL_CTL_ADD, 3, &f, (EPOLLIN, 0xdead_beef_0000_0001)).unwrap();
        assert!(wait(&c, 8).is_empty());
        r.store(POLLIN | POLLOUT, Ordering::Relaxed);
        // Level: every time, masked by the interest.
        assert_eq!(wait(&c, 8), [(EPOLLIN, 0xdead_beef_0000_0001)]);
        assert_eq!(wait(&c, 8), [(EPOLLIN, 0xdead_beef_0000_0001)]);
        // Edge: once, then again only after a wake-up or a new bit.
        c.ctl(EPOLL_CTL_MOD, 3, &f, (EPOLLIN | EPOLLOUT | EPOLLET, 7)).unwrap();
        assert_eq!(wait(&c, 8), [(EPOLLIN | EPOLLOUT, 7)]);
        assert!(wait(&c, 8).is_empty());
        POLL_WQ.wake_all();
        assert_eq!(wait(&c, 8).len(), 1);
        assert!(wait(&c, 8).is_empty());
        r.store(POLLOUT, Ordering::Relaxed);
        assert!(wait(&c, 8).is_empty());
        r.store(POLLIN | POLLOUT, Ordering::Relaxed);
        assert_eq!(wait(&c, 8), [(EPOLLIN | EPOLLOUT, 7)], "a bit seen cleared came back");
        r.store(0, Ordering::Relaxed);
        assert!(wait(&c, 8).is_empty());
        r.store(POLLIN, Ordering::Relaxed);
        assert_eq!(wait(&c, 8), [(EPOLLIN, 7)]);
        // One-shot: once until MOD; errors are reported even if not asked for.
        c.ctl(EPOLL_CTL_MOD, 3, &f, (EPOLLOUT | EPOLLONESHOT, 8)).unwrap();
        r.store(POLLOUT | POLLERR, Ordering::Relaxed);
        assert_eq!(wait(&c, 8), [(EPOLLOUT | EPOLLERR, 8)]);
        POLL_WQ.wake_all();
        assert!(wait(&c, 8).is_empty());
        c.ctl(EPOLL_CTL_MOD, 3, &f, (EPOLLOUT, 9)).unwrap();
        assert_eq!(wait(&c, 8), [(EPOLLOUT | EPOLLERR, 9)]);
    }

    #[test]
    fn closed_files_go_and_all_get_a_turn() {
        let _g = SERIAL.lock();
        let (_ef, c) = epoll();
        let files: Vec<_> = (0..3).map(|_| fake()).collect();
        for (i, (f, r)) in files.iter().enumerate() {
            r.store(POLLIN, Ordering::Relaxed);
            c.ctl(EPOLL_CTL_ADD, i as i32, f, (EPOLLIN, i as u64)).unwrap();
        }
        let mut seen = 0;
        for _ in 0..3 {
            let got = wait(&c, 1);
            assert_eq!(got.len(), 1);
            seen |= 1 << got[0].1;
        }
        assert_eq!(seen, 7);
        drop(files);
        assert!(wait(&c, 8).is_empty());
        assert!(c.inner.lock().interests.is_empty());
    }

    #[test]
    fn nesting_and_loops() {
        let _g = SERIAL.lock();
        let eps: Vec<_> = (0..6).map(|_| epoll()).collect();
        let (f, r) = fake();
        eps[0].1.ctl(EPOLL_CTL_ADD, 10, &eps[1].0, (EPOLLIN, 1)).unwrap();
        eps[1].1.ctl(EPOLL_CTL_ADD, 10, &f, (EPOLLIN, 2)).unwrap();
        assert_eq!(eps[0].0.ops.poll(POLLIN), 0);
        r.store(POLLIN, Ordering::Relaxed);
        assert_eq!(eps[0].0.ops.poll(POLLIN), POLLIN | POLLRDNORM);
        assert_eq!(wait(&eps[0].1, 8), [(EPOLLIN, 1)]);
        // 1 in 0 already: 0 in 1 is a loop.
        assert_eq!(eps[1].1.ctl(EPOLL_CTL_ADD, 11, &eps[0].0, (EPOLLIN, 0)), Err(Errno::ELOOP));
        // A chain of five instances is the deepest allowed.
        for i in 1..4 {
            eps[i].1.ctl(EPOLL_CTL_ADD, 12, &eps[i + 1].0, (EPOLLIN, 0)).unwrap();
        }
        assert_eq!(eps[4].1.ctl(EPOLL_CTL_ADD, 12, &eps[5].0, (EPOLLIN, 0)), Err(Errno::ELOOP));
        assert_eq!(eps[5].1.ctl(EPOLL_CTL_ADD, 12, &eps[0].0, (EPOLLIN, 0)), Err(Errno::ELOOP));
        // Removing a link makes room again.
        eps[0].1.ctl(EPOLL_CTL_DEL, 10, &eps[1].0, (0, 0)).unwrap();
        assert_eq!(eps[4].1.ctl(EPOLL_CTL_ADD, 12, &eps[5].0, (EPOLLIN, 0)), Ok(()));
    }
}
