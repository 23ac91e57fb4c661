//! inotify (Linux: fs/notify/inotify/): watches on inodes, keyed by
//! their (device, inode) identity, and per-instance event queues read as
//! `struct inotify_event` records.
//!
//! Events come from the sentry's own operations, so every filesystem kind
//! gets them from the same few hooks: `OpenFile` (open, read, write,
//! close) and the path syscalls in `syscalls::fs` (create, unlink,
//! rename, setattr, xattr). Changes made by the host behind a host-backed
//! mount are not seen. An event on a file also goes, with the file's
//! name, to watches on its parent directory, found again through the
//! canonical path it was opened by.
//!
//! When no watch exists (`active()` false) the hooks cost one atomic load.
//!
//! Lock order: `WATCHES`, then an instance's queue.

use abi::linux::Stat;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use spin::Mutex;

use super::{anon, FileOps, UserSeg, POLLIN, POLLRDNORM, POLL_WQ};
use crate::errno::{Errno, SysResult};
use crate::kernel::task::Task;
use crate::kernel::wait::WaitQueue;
use crate::vfs::{walk, Inode, Kind, Location};

pub const IN_ACCESS: u32 = 0x1;
pub const IN_MODIFY: u32 = 0x2;
pub const IN_ATTRIB: u32 = 0x4;
pub const IN_CLOSE_WRITE: u32 = 0x8;
pub const IN_CLOSE_NOWRITE: u32 = 0x10;
pub const IN_OPEN: u32 = 0x20;
pub const IN_MOVED_FROM: u32 = 0x40;
pub const IN_MOVED_TO: u32 = 0x80;
pub const IN_CREATE: u32 = 0x100;
pub const IN_DELETE: u32 = 0x200;
pub const IN_DELETE_SELF: u32 = 0x400;
pub const IN_MOVE_SELF: u32 = 0x800;
pub const IN_Q_OVERFLOW: u32 = 0x4000;
pub const IN_IGNORED: u32 = 0x8000;
pub const IN_ONLYDIR: u32 = 0x0100_0000;
pub const IN_DONT_FOLLOW: u32 = 0x0200_0000;
pub const IN_EXCL_UNLINK: u32 = 0x0400_0000;
pub const IN_MASK_CREATE: u32 = 0x1000_0000;
pub const IN_MASK_ADD: u32 = 0x2000_0000;
pub const IN_ISDIR: u32 = 0x4000_0000;
pub const IN_ONESHOT: u32 = 0x8000_0000;
pub const IN_ALL_EVENTS: u32 = 0xfff;
/// Every bit inotify_add_watch accepts.
const VALID_BITS: u32 = IN_ALL_EVENTS | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK | IN_MASK_CREATE | IN_MASK_ADD | IN_ONESHOT;
/// /proc/sys/fs/inotify/max_queued_events.
pub const MAX_QUEUED_EVENTS: usize = 16384;
/// /proc/sys/fs/inotify/max_user_watches (per sandbox here).
pub const MAX_WATCHES: usize = 65536;
/// /proc/sys/fs/inotify/max_user_instances (per sandbox here).
pub const MAX_INSTANCES: usize = 128;
/// Live instances.
static NINSTANCES: AtomicUsize = AtomicUsize::new(0);
/// Size of `struct inotify_event` without its name.
const EVENT_HDR: usize = 16;

type Id = (u64, u64);

struct Watch {
    inst: Weak<Instance>,
    /// The instance's inode number (its identity while it lives).
    key: u64,
    wd: i32,
    mask: u32,
}

/// Watches by the watched inode.
static WATCHES: Mutex<BTreeMap<Id, Vec<Watch>>> = Mutex::new(BTreeMap::new());
/// Number of watches in `WATCHES`.
static NWATCH: AtomicUsize = AtomicUsize::new(0);
/// Cookies pairing IN_MOVED_FROM with IN_MOVED_TO.
static COOKIE: AtomicU32 = AtomicU32::new(0);

static INSTANCES: anon::Registry<Instance> = anon::Registry::new("anon_inode:inotify");

/// True when some watch exists: only then do the hooks do any work.
pub fn active() -> bool {
    NWATCH.load(Ordering::Relaxed) != 0
}

/// A fresh rename cookie (never 0).
pub fn new_cookie() -> u32 {
    loop {
        let c = COOKIE.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if c != 0 {
            return c;
        }
    }
}

struct Event {
    wd: i32,
    mask: u32,
    cookie: u32,
    name: String,
}

impl Event {
    /// The name field's size: NUL-terminated, padded to 16 bytes.
    fn name_len(&self) -> usize {
        if self.name.is_empty() {
            0
        } else {
            (self.name.len() + 1).next_multiple_of(EVENT_HDR)
        }
    }

    fn size(&self) -> usize {
        EVENT_HDR + self.name_len()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.wd.to_le_bytes());
        out.extend_from_slice(&self.mask.to_le_bytes());
        out.extend_from_slice(&self.cookie.to_le_bytes());
        out.extend_from_slice(&(self.name_len() as u32).to_le_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out.resize(out.len() + self.name_len() - self.name.len(), 0);
    }
}

/// One inotify instance: its event queue.
pub struct Instance {
    queue: Mutex<VecDeque<Event>>,
    next_wd: AtomicU32,
    wq: WaitQueue,
    ino: u64,
}

impl Instance {
    /// Queues an event, merging it with an identical last one and
    /// turning the one past the limit into IN_Q_OVERFLOW (as Linux).
    fn push(&self, ev: Event) {
        {
            let mut q = self.queue.lock();
            if let Some(last) = q.back() {
                if last.wd == ev.wd && last.mask == ev.mask && last.name == ev.name && (last.cookie == ev.cookie || ev.mask & (IN_MOVED_FROM | IN_MOVED_TO) == 0) {
                    return;
                }
                if last.mask == IN_Q_OVERFLOW {
                    return;
                }
            }
            if q.len() >= MAX_QUEUED_EVENTS {
                q.push_back(Event { wd: -1, mask: IN_Q_OVERFLOW, cookie: 0, name: String::new() });
            } else {
                q.push_back(ev);
            }
        }
        self.wq.wake_all();
        POLL_WQ.wake_all();
    }

    fn queued_bytes(&self) -> usize {
        self.queue.lock().iter().map(Event::size).sum()
    }
}

/// The file of an inotify instance.
pub struct InotifyFile {
    inst: Arc<Instance>,
}

/// inotify_init1: a new instance's file; EMFILE past the instance limit.
pub fn new_instance() -> Result<InotifyFile, Errno> {
    if NINSTANCES.fetch_add(1, Ordering::Relaxed) >= MAX_INSTANCES {
        NINSTANCES.fetch_sub(1, Ordering::Relaxed);
        return Err(Errno::EMFILE);
    }
    let inst = Arc::new(Instance { queue: Mutex::new(VecDeque::new()), next_wd: AtomicU32::new(1), wq: WaitQueue::new(), ino: anon::next_ino() });
    INSTANCES.insert(inst.ino, &inst);
    Ok(InotifyFile { inst })
}

impl Drop for InotifyFile {
    fn drop(&mut self) {
        INSTANCES.remove(self.inst.ino);
        NINSTANCES.fetch_sub(1, Ordering::Relaxed);
        let key = self.inst.ino;
        let mut w = WATCHES.lock();
        w.retain(|_, v| {
            let before = v.len();
            v.retain(|x| x.key != key);
            NWATCH.fetch_sub(before - v.len(), Ordering::Relaxed);
            !v.is_empty()
        });
    }
}

/// The instance behind an fd's file: EINVAL for other files.
pub fn instance_of(f: &super::OpenFile) -> Result<Arc<Instance>, Errno> {
    INSTANCES.lookup(f).ok_or(Errno::EINVAL)
}

/// inotify_add_watch on a resolved inode: the watch descriptor.
pub fn add_watch(inst: &Arc<Instance>, inode: &dyn Inode, mask: u32) -> Result<i32, Errno> {
    if mask & VALID_BITS == 0 {
        return Err(Errno::EINVAL);
    }
    if mask & IN_MASK_ADD != 0 && mask & IN_MASK_CREATE != 0 {
        return Err(Errno::EINVAL);
    }
    if mask & IN_ONLYDIR != 0 && inode.kind() != Kind::Dir {
        return Err(Errno::ENOTDIR);
    }
    let id = inode.id();
    // Only event bits and the flags that shape delivery are kept.
    let keep = mask & (IN_ALL_EVENTS | IN_ONESHOT | IN_EXCL_UNLINK);
    let mut w = WATCHES.lock();
    if let Some(x) = w.get_mut(&id).and_then(|v| v.iter_mut().find(|x| x.key == inst.ino)) {
        if mask & IN_MASK_CREATE != 0 {
            return Err(Errno::EEXIST);
        }
        x.mask = if mask & IN_MASK_ADD != 0 { x.mask | keep } else { keep };
        return Ok(x.wd);
    }
    if NWATCH.load(Ordering::Relaxed) >= MAX_WATCHES {
        return Err(Errno::ENOSPC);
    }
    let wd = inst.next_wd.fetch_add(1, Ordering::Relaxed) as i32;
    if wd <= 0 {
        return Err(Errno::ENOSPC);
    }
    w.entry(id).or_default().push(Watch { inst: Arc::downgrade(inst), key: inst.ino, wd, mask: keep });
    NWATCH.fetch_add(1, Ordering::Relaxed);
    Ok(wd)
}

/// inotify_rm_watch: queues IN_IGNORED.
pub fn rm_watch(inst: &Arc<Instance>, wd: i32) -> Result<(), Errno> {
    let mut w = WATCHES.lock();
    let id = w.iter().find(|(_, v)| v.iter().any(|x| x.key == inst.ino && x.wd == wd)).map(|(id, _)| *id).ok_or(Errno::EINVAL)?;
    if let Some(v) = w.get_mut(&id) {
        v.retain(|x| !(x.key == inst.ino && x.wd == wd));
        if v.is_empty() {
            w.remove(&id);
        }
    }
    NWATCH.fetch_sub(1, Ordering::Relaxed);
    drop(w);
    inst.push(Event { wd, mask: IN_IGNORED, cookie: 0, name: String::new() });
    Ok(())
}

/// Delivers `mask` to the watches on `id` that want it; `name` for
/// events on a directory's child. `linked`: for IN_EXCL_UNLINK watches,
/// whether the child is still in the directory (asked lazily).
fn deliver(id: Id, mask: u32, cookie: u32, name: &str, linked: &mut dyn FnMut() -> bool) {
    let wanted = |x: &Watch| x.mask & mask & IN_ALL_EVENTS != 0;
    // The lookup runs without the lock held: it may reach the host.
    let need_linked = !name.is_empty() && WATCHES.lock().get(&id).is_some_and(|v| v.iter().any(|x| wanted(x) && x.mask & IN_EXCL_UNLINK != 0));
    let still_linked = !need_linked || linked();
    let mut hits: Vec<(Arc<Instance>, i32, bool)> = Vec::new();
    {
        let mut w = WATCHES.lock();
        let Some(v) = w.get_mut(&id) else { return };
        for x in v.iter() {
            if !wanted(x) || (!name.is_empty() && x.mask & IN_EXCL_UNLINK != 0 && !still_linked) {
                continue;
            }
            if let Some(i) = x.inst.upgrade() {
                hits.push((i, x.wd, x.mask & IN_ONESHOT != 0));
            }
        }
        let before = v.len();
        v.retain(|x| !(x.mask & IN_ONESHOT != 0 && hits.iter().any(|(i, wd, _)| i.ino == x.key && *wd == x.wd)));
        NWATCH.fetch_sub(before - v.len(), Ordering::Relaxed);
        if v.is_empty() {
            w.remove(&id);
        }
    }
    for (inst, wd, oneshot) in hits {
        inst.push(Event { wd, mask, cookie, name: name.into() });
        if oneshot {
            inst.push(Event { wd, mask: IN_IGNORED, cookie: 0, name: String::new() });
        }
    }
}

fn has_watches(id: Id) -> bool {
    WATCHES.lock().contains_key(&id)
}

fn isdir(inode: &dyn Inode) -> u32 {
    if inode.kind() == Kind::Dir {
        IN_ISDIR
    } else {
        0
    }
}

/// An event on `inode` itself only (link count changes).
pub fn inode_event(inode: &dyn Inode, mask: u32) {
    if active() {
        deliver(inode.id(), mask | isdir(inode), 0, "", &mut || true);
    }
}

/// An event on the inode known by `id`, exactly `mask` (IN_MOVE_SELF,
/// which Linux sends without IN_ISDIR).
pub fn id_event(id: Id, mask: u32) {
    if active() {
        deliver(id, mask, 0, "", &mut || true);
    }
}

/// An event on the child `name` of directory `dir` (create, delete,
/// moves): `child_is_dir` adds IN_ISDIR.
pub fn child_event(dir: &dyn Inode, name: &str, mask: u32, cookie: u32, child_is_dir: bool) {
    if active() {
        let m = mask | if child_is_dir { IN_ISDIR } else { 0 };
        deliver(dir.id(), m, cookie, name, &mut || true);
    }
}

/// An event on the file at `loc` (open, access, modify, attrib, close):
/// first to its parent directory's watches with its name, then to its own.
pub fn loc_event(loc: &Location, mask: u32) {
    if !active() {
        return;
    }
    let mask = mask | isdir(&*loc.inode);
    let id = loc.inode.id();
    if loc.path != "/" {
        let (parent, name) = match loc.path.rfind('/') {
            Some(0) => ("/", &loc.path[1..]),
            Some(i) => (&loc.path[..i], &loc.path[i + 1..]),
            None => ("", ""),
        };
        if !name.is_empty() {
            if let Ok(dir) = walk::resolve_canonical(parent) {
                let did = dir.inode.id();
                if has_watches(did) {
                    deliver(did, mask, 0, name, &mut || dir.inode.lookup(name).is_ok_and(|c| c.id() == id));
                }
            }
        }
    }
    deliver(id, mask, 0, "", &mut || true);
}

/// `inode` lost its last link (or was a removed directory): IN_DELETE_SELF,
/// then its watches go away with IN_IGNORED.
pub fn inode_removed(id: Id) {
    if !active() {
        return;
    }
    deliver(id, IN_DELETE_SELF, 0, "", &mut || true);
    let gone = WATCHES.lock().remove(&id).unwrap_or_default();
    NWATCH.fetch_sub(gone.len(), Ordering::Relaxed);
    for x in gone {
        if let Some(i) = x.inst.upgrade() {
            i.push(Event { wd: x.wd, mask: IN_IGNORED, cookie: 0, name: String::new() });
        }
    }
}

impl FileOps for InotifyFile {
    fn read(&self, t: &Task, segs: &[UserSeg], off: Option<u64>, nonblock: bool) -> SysResult {
        if off.is_some() {
            return Err(Errno::ESPIPE);
        }
        let room = anon::total(segs);
        let pending = || t.proc.pending();
        let out = self.inst.wq.wait(&t.shared, &pending, None, || {
            let mut q = self.inst.queue.lock();
            let Some(first) = q.front() else {
                return if nonblock { Some(Err(Errno::EAGAIN)) } else { None };
            };
            if first.size() > room {
                return Some(Err(Errno::EINVAL));
            }
            let mut out = Vec::new();
            while q.front().is_some_and(|e| out.len() + e.size() <= room) {
                if let Some(e) = q.pop_front() {
                    e.encode(&mut out);
                }
            }
            Some(Ok(out))
        })??;
        // Like Linux, a bad buffer loses the events taken.
        anon::copy_to_segs(t, segs, &out)?;
        Ok(out.len() as u64)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(anon::stat(self.inst.ino))
    }

    fn ioctl(&self, t: &Task, req: u64, arg: u64) -> SysResult {
        const FIONREAD: u64 = 0x541b;
        if req != FIONREAD {
            return Err(Errno::EINVAL);
        }
        let n = self.inst.queued_bytes() as i32;
        t.mm.lock().write_obj(arg, &n).map(|()| 0)
    }

    fn path(&self) -> &str {
        "anon_inode:inotify"
    }

    fn poll(&self, _events: u16) -> u16 {
        if self.inst.queue.lock().is_empty() {
            0
        } else {
            POLLIN | POLLRDNORM
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_records_are_padded() {
        let e = Event { wd: 3, mask: IN_CREATE, cookie: 0, name: "abc".into() };
        let mut out = Vec::new();
        e.encode(&mut out);
        assert_eq!(out.len(), 32);
        assert_eq!(u32::from_le_bytes(out[12..16].try_into().unwrap()), 16);
        assert_eq!(&out[16..20], b"abc\0");
        let e = Event { wd: 1, mask: IN_IGNORED, cookie: 0, name: String::new() };
        assert_eq!(e.size(), 16);
        let e = Event { wd: 1, mask: IN_IGNORED, cookie: 0, name: "0123456789abcdef".into() };
        assert_eq!(e.size(), 48);
    }

    #[test]
    fn queue_merges_and_overflows() {
        let f = new_instance().unwrap();
        let ev = || Event { wd: 1, mask: IN_MODIFY, cookie: 0, name: "a".into() };
        f.inst.push(ev());
        f.inst.push(ev());
        assert_eq!(f.inst.queue.lock().len(), 1);
        for i in 0..MAX_QUEUED_EVENTS + 5 {
            f.inst.push(Event { wd: 1, mask: IN_MODIFY, cookie: 0, name: alloc::format!("{i}") });
        }
        let q = f.inst.queue.lock();
        assert_eq!(q.len(), MAX_QUEUED_EVENTS + 1);
        assert_eq!(q.back().map(|e| e.mask), Some(IN_Q_OVERFLOW));
    }
}
