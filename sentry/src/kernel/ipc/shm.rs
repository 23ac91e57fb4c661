//! System V shared memory (Linux: ipc/shm.c).
//!
//! A segment's pages are a shared memory object (`mm::shared::SharedMem`,
//! as MAP_SHARED anonymous memory), allocated on first touch and shared by
//! every area that attaches it: shmat maps it with `Backing::SysvShm`,
//! whose page faults map the segment's own frames. The areas'
//! open/close hooks ([`ShmMem`] as an `mm::shared::SysvSegment`) keep the
//! attach count, last pid and times as Linux's shm_open/shm_close do, so
//! fork (areas copied), munmap, exit and exec (areas dropped) need nothing
//! else. A segment removed while attached is marked SHM_DEST, loses its
//! key, and goes with its last detach; its frames go with the last
//! reference to its pages.
#![forbid(unsafe_code)]

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::sync::atomic::{AtomicI32, Ordering};
use spin::Mutex;

use super::{Ctx, Ids, IpcObject, Lookup, Out, Perm, PermSet, IPC_INFO, IPC_STAT};
use crate::errno::Errno;
use crate::kernel::creds::CAP_IPC_LOCK;
use crate::mm::shared::{SharedMem, SysvSegment};
use abi::layout::PAGE_SIZE;

/// shmat flags.
pub const SHM_RDONLY: i32 = 0o10000;
pub const SHM_RND: i32 = 0o20000;
pub const SHM_REMAP: i32 = 0o40000;
pub const SHM_EXEC: i32 = 0o100000;
/// shmctl commands.
pub const SHM_LOCK: i32 = 11;
pub const SHM_UNLOCK: i32 = 12;
pub const SHM_STAT: i32 = 13;
pub const SHM_INFO: i32 = 14;
pub const SHM_STAT_ANY: i32 = 15;
/// Mode flags: removed while attached; locked in memory.
const SHM_DEST: u32 = 0o1000;
const SHM_LOCKED: u32 = 0o2000;
/// Smallest segment.
const SHMMIN: u64 = 1;
/// Attach addresses are multiples of this (x86: a page).
pub const SHMLBA: u64 = PAGE_SIZE;

/// A segment as its attaches see it: its pages, and who it is.
pub struct ShmMem {
    /// The segment's identifier (its inode number in /proc/PID/maps).
    id: AtomicI32,
    /// The key at creation (the segment's name keeps it).
    key: i32,
    pages: Arc<SharedMem>,
}

impl ShmMem {
    fn new(key: i32, size: u64) -> Arc<ShmMem> {
        Arc::new(ShmMem { id: AtomicI32::new(-1), key, pages: SharedMem::new(size) })
    }

    /// Pages the segment spans (what shm_tot counts).
    fn npages(&self) -> u64 {
        self.pages.size.div_ceil(PAGE_SIZE)
    }

    /// Pages with a frame (the segment's resident set).
    fn resident(&self) -> u64 {
        self.pages.resident() as u64
    }
}

impl SysvSegment for ShmMem {
    fn pages(&self) -> &SharedMem {
        &self.pages
    }

    fn open(&self) {
        let mut s = SHM.lock();
        if let Some(seg) = s.segment_of(self) {
            seg.nattch += 1;
            seg.atime = super::now_secs();
            seg.lpid = super::current_pid();
        }
    }

    fn close(&self) {
        let mut s = SHM.lock();
        s.detach(self, super::current_pid(), super::now_secs());
    }

    fn name(&self) -> (String, u64) {
        (format!("/SYSV{:08x} (deleted)", self.key as u32), u64::from(self.id.load(Ordering::Relaxed) as u32))
    }
}

/// One segment (Linux: `shmid_kernel`).
pub struct Segment {
    pub perm: Perm,
    pub size: u64,
    pub atime: i64,
    pub dtime: i64,
    pub ctime: i64,
    pub cpid: u32,
    pub lpid: u32,
    pub nattch: u64,
    mem: Arc<ShmMem>,
}

impl IpcObject for Segment {
    fn perm(&self) -> &Perm {
        &self.perm
    }
    fn perm_mut(&mut self) -> &mut Perm {
        &mut self.perm
    }
}

impl Segment {
    /// `struct shmid64_ds` (x86-64: 112 bytes).
    fn encode(&self) -> Vec<u8> {
        let mut o = Out::default();
        self.perm.encode(&mut o);
        o.u64(self.size);
        o.i64(self.atime);
        o.i64(self.dtime);
        o.i64(self.ctime);
        o.u32(self.cpid);
        o.u32(self.lpid);
        o.u64(self.nattch);
        o.u64(0);
        o.u64(0);
        o.0
    }
}

/// All segments and the pages they account for.
pub struct ShmState {
    ids: Ids<Segment>,
    /// Pages of all segments (Linux: shm_tot), against shmall.
    tot: u64,
}

static SHM: Mutex<ShmState> = Mutex::new(ShmState::new());

/// Runs `f` on the sandbox's segments.
pub fn with<R>(f: impl FnOnce(&mut ShmState) -> R) -> R {
    f(&mut SHM.lock())
}

/// What an attach needs: the pages and how far they reach.
pub struct Attach {
    pub mem: Arc<ShmMem>,
    pub size: u64,
}

impl ShmState {
    /// No segments.
    pub const fn new() -> ShmState {
        ShmState { ids: Ids::new(), tot: 0 }
    }

    /// The live segment whose pages `mem` are.
    fn segment_of(&mut self, mem: &ShmMem) -> Option<&mut Segment> {
        let seg = self.ids.get(mem.id.load(Ordering::Relaxed)).ok()?;
        core::ptr::eq(Arc::as_ptr(&seg.mem), mem).then_some(seg)
    }

    /// An area of `mem` went away (Linux: shm_close).
    fn detach(&mut self, mem: &ShmMem, pid: u32, now: i64) {
        let Some(seg) = self.segment_of(mem) else { return };
        seg.lpid = pid;
        seg.dtime = now;
        seg.nattch = seg.nattch.saturating_sub(1);
        if seg.nattch == 0 && seg.perm.mode & SHM_DEST != 0 {
            let id = seg.perm.id;
            self.destroy(id);
        }
    }

    fn destroy(&mut self, id: i32) {
        if let Some(seg) = self.ids.remove(id) {
            self.tot = self.tot.saturating_sub(seg.mem.npages());
        }
    }

    /// shmget.
    pub fn get(&mut self, key: i32, size: u64, flags: i32, c: &Ctx, lim: &super::Limits) -> Result<i32, Errno> {
        match self.ids.lookup(key, flags, c.creds, |s| if s.size < size { Err(Errno::EINVAL) } else { Ok(()) })? {
            Lookup::Existing(id) => Ok(id),
            Lookup::Create => {
                if size < SHMMIN || size > lim.shmmax {
                    return Err(Errno::EINVAL);
                }
                let pages = size.div_ceil(PAGE_SIZE);
                if pages.checked_mul(PAGE_SIZE).is_none() {
                    return Err(Errno::ENOSPC);
                }
                let tot = self.tot.checked_add(pages).filter(|t| *t <= lim.shmall).ok_or(Errno::ENOSPC)?;
                let mem = ShmMem::new(key, size);
                let seg = Segment { perm: Perm::new(key, flags), size, atime: 0, dtime: 0, ctime: c.now, cpid: c.pid, lpid: 0, nattch: 0, mem: mem.clone() };
                let id = self.ids.add(seg, lim.shmmni, c.creds)?;
                mem.id.store(id, Ordering::Relaxed);
                self.tot = tot;
                Ok(id)
            }
        }
    }

    /// shmat's checks and bookkeeping; the caller maps the pages and owns
    /// the attach (its area's close undoes this).
    pub fn attach(&mut self, id: i32, flags: i32, c: &Ctx) -> Result<Attach, Errno> {
        let seg = self.ids.get(id)?;
        let mut want = 0o444;
        if flags & SHM_RDONLY == 0 {
            want |= 0o222;
        }
        if flags & SHM_EXEC != 0 {
            want |= 0o111;
        }
        seg.perm.check(c.creds, want)?;
        seg.nattch += 1;
        seg.atime = c.now;
        seg.lpid = c.pid;
        Ok(Attach { mem: seg.mem.clone(), size: seg.size })
    }

    /// IPC_STAT, SHM_STAT and SHM_STAT_ANY: the `shmid64_ds` and what the
    /// call returns (0, or the full id for the index-taking commands).
    pub fn stat(&mut self, id: i32, cmd: i32, c: &Ctx) -> Result<(Vec<u8>, u64), Errno> {
        let seg = if cmd == IPC_STAT { self.ids.get(id)? } else { self.ids.get_by_index(id)? };
        if cmd != SHM_STAT_ANY {
            seg.perm.check(c.creds, 0o444)?;
        }
        let ret = if cmd == IPC_STAT { 0 } else { u64::from(seg.perm.id as u32) };
        Ok((seg.encode(), ret))
    }

    /// IPC_SET.
    pub fn set(&mut self, id: i32, p: &PermSet, c: &Ctx) -> Result<(), Errno> {
        let seg = self.ids.get(id)?;
        seg.perm.may_control(c.creds)?;
        seg.perm.update(p)?;
        seg.ctime = c.now;
        Ok(())
    }

    /// IPC_RMID: removed now if nothing is attached, else when the last
    /// attach goes; either way its key is free at once.
    pub fn rmid(&mut self, id: i32, c: &Ctx) -> Result<(), Errno> {
        let seg = self.ids.get(id)?;
        seg.perm.may_control(c.creds)?;
        if seg.nattch > 0 {
            seg.perm.mode |= SHM_DEST;
            self.ids.set_key_private(id);
        } else {
            self.destroy(id);
        }
        Ok(())
    }

    /// SHM_LOCK/SHM_UNLOCK: recorded in the mode (the sentry never swaps).
    /// `memlock` is the caller's RLIMIT_MEMLOCK in bytes.
    pub fn lock(&mut self, id: i32, cmd: i32, c: &Ctx, memlock: u64) -> Result<(), Errno> {
        let seg = self.ids.get(id)?;
        let privileged = c.creds.capable(CAP_IPC_LOCK);
        if !privileged {
            if c.creds.euid != seg.perm.uid && c.creds.euid != seg.perm.cuid {
                return Err(Errno::EPERM);
            }
            if cmd == SHM_LOCK && memlock == 0 {
                return Err(Errno::EPERM);
            }
        }
        if cmd == SHM_LOCK {
            if seg.perm.mode & SHM_LOCKED == 0 && !privileged && seg.mem.npages().saturating_mul(PAGE_SIZE) > memlock {
                return Err(Errno::ENOMEM);
            }
            seg.perm.mode |= SHM_LOCKED;
        } else {
            seg.perm.mode &= !SHM_LOCKED;
        }
        Ok(())
    }

    /// IPC_INFO (`shminfo64`) or SHM_INFO (`shm_info`), and the highest
    /// index in use.
    pub fn info(&self, cmd: i32, lim: &super::Limits) -> (Vec<u8>, u64) {
        let mut o = Out::default();
        if cmd == IPC_INFO {
            o.u64(lim.shmmax);
            o.u64(SHMMIN);
            o.u64(u64::from(lim.shmmni));
            o.u64(u64::from(lim.shmmni));
            o.u64(lim.shmall);
            o.pad(32);
        } else {
            o.i32(self.ids.in_use() as i32);
            o.pad(4);
            o.u64(self.tot);
            o.u64(self.ids.iter().map(|s| s.mem.resident()).sum());
            o.u64(0);
            o.u64(0);
            o.u64(0);
        }
        (o.0, self.ids.max_idx())
    }
}

impl Default for ShmState {
    fn default() -> ShmState {
        ShmState::new()
    }
}

/// /proc/sysvipc/shm.
pub fn proc_text() -> String {
    let mut s = String::from(
        "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n",
    );
    let st = SHM.lock();
    for g in st.ids.iter() {
        let p = &g.perm;
        let _ = writeln!(
            s,
            "{:10} {:10}  {:4o} {:21} {:5} {:5}  {:5} {:5} {:5} {:5} {:5} {:10} {:10} {:10} {:21} {:21}",
            p.key,
            p.id,
            p.mode,
            g.size,
            g.cpid,
            g.lpid,
            g.nattch,
            p.uid,
            p.gid,
            p.cuid,
            p.cgid,
            g.atime,
            g.dtime,
            g.ctime,
            g.mem.resident() * PAGE_SIZE,
            0
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::creds::Creds;
    use crate::kernel::ipc::{DEFAULT_LIMITS, IPC_CREAT, IPC_EXCL, IPC_PRIVATE};

    fn ctx(c: &Creds) -> Ctx<'_> {
        Ctx { creds: c, pid: 7, now: 100 }
    }

    #[test]
    fn get_sizes_and_keys() {
        let root = Creds::default();
        let c = ctx(&root);
        let lim = DEFAULT_LIMITS;
        let mut s = ShmState::new();
        assert_eq!(s.get(IPC_PRIVATE, 0, 0o600, &c, &lim), Err(Errno::EINVAL));
        assert_eq!(s.get(IPC_PRIVATE, u64::MAX, 0o600, &c, &lim), Err(Errno::EINVAL));
        let small = DEFAULT_LIMITS;
        let small = crate::kernel::ipc::Limits { shmall: 2, shmmni: 2, ..small };
        assert_eq!(s.get(IPC_PRIVATE, 3 * 4096, 0o600, &c, &small), Err(Errno::ENOSPC));
        let id = s.get(77, 5000, IPC_CREAT | 0o640, &c, &lim).unwrap();
        assert_eq!(s.tot, 2);
        assert_eq!(s.get(77, 5000, 0, &c, &lim), Ok(id));
        assert_eq!(s.get(77, 5001, 0, &c, &lim), Err(Errno::EINVAL));
        assert_eq!(s.get(77, 0, IPC_CREAT | IPC_EXCL, &c, &lim), Err(Errno::EEXIST));
        assert_eq!(s.get(78, 10, 0, &c, &lim), Err(Errno::ENOENT));
        let two = crate::kernel::ipc::Limits { shmmni: 2, ..DEFAULT_LIMITS };
        s.get(IPC_PRIVATE, 1, 0, &c, &two).unwrap();
        assert_eq!(s.get(IPC_PRIVATE, 1, 0, &c, &two), Err(Errno::ENOSPC));
    }

    #[test]
    fn rmid_waits_for_the_last_detach() {
        let root = Creds::default();
        let c = ctx(&root);
        let mut s = ShmState::new();
        let id = s.get(5, 4096, IPC_CREAT | 0o600, &c, &DEFAULT_LIMITS).unwrap();
        let a = s.attach(id, 0, &c).unwrap();
        s.rmid(id, &c).unwrap();
        // Gone from the key space, still there by id.
        assert_eq!(s.get(5, 1, 0, &c, &DEFAULT_LIMITS), Err(Errno::ENOENT));
        let (ds, _) = s.stat(id, IPC_STAT, &c).unwrap();
        assert_eq!(crate::kernel::ipc::le_u32(&ds, 20), 0o600 | SHM_DEST);
        assert_eq!(crate::kernel::ipc::le_u64(&ds, 88), 1);
        s.detach(&a.mem, 9, 200);
        assert_eq!(s.stat(id, IPC_STAT, &c).err(), Some(Errno::EINVAL));
        assert_eq!(s.tot, 0);
    }

    #[test]
    fn permissions() {
        let owner = Creds::new(1000, 1000, Vec::new());
        let other = Creds::new(2000, 2000, Vec::new());
        let mut s = ShmState::new();
        let id = s.get(IPC_PRIVATE, 4096, 0o604, &ctx(&owner), &DEFAULT_LIMITS).unwrap();
        assert!(s.attach(id, SHM_RDONLY, &ctx(&other)).is_ok());
        assert_eq!(s.attach(id, 0, &ctx(&other)).err(), Some(Errno::EACCES));
        assert_eq!(s.attach(id, SHM_RDONLY | SHM_EXEC, &ctx(&other)).err(), Some(Errno::EACCES));
        assert_eq!(s.rmid(id, &ctx(&other)), Err(Errno::EPERM));
        assert_eq!(s.lock(id, SHM_LOCK, &ctx(&other), 1 << 20), Err(Errno::EPERM));
        assert_eq!(s.lock(id, SHM_LOCK, &ctx(&owner), 0), Err(Errno::EPERM));
        assert!(s.lock(id, SHM_LOCK, &ctx(&owner), 1 << 20).is_ok());
        assert!(s.lock(id, SHM_UNLOCK, &ctx(&owner), 0).is_ok());
        assert_eq!(s.stat(id, SHM_STAT, &ctx(&Creds::new(3000, 3000, Vec::new()))).map(|r| r.1), Ok(id as u64));
        s.set(id, &PermSet { uid: 3000, gid: 3000, mode: 0o600 }, &ctx(&owner)).unwrap();
        assert_eq!(s.stat(id, IPC_STAT, &ctx(&other)).err(), Some(Errno::EACCES));
        assert!(s.stat(id, SHM_STAT_ANY, &ctx(&other)).is_ok());
    }

    #[test]
    fn info_layouts() {
        let s = ShmState::new();
        let (i, max) = s.info(IPC_INFO, &DEFAULT_LIMITS);
        assert_eq!((i.len(), max), (72, 0));
        let (i, _) = s.info(SHM_INFO, &DEFAULT_LIMITS);
        assert_eq!(i.len(), 48);
        let root = Creds::default();
        let mut s = ShmState::new();
        let id = s.get(IPC_PRIVATE, 1, 0, &ctx(&root), &DEFAULT_LIMITS).unwrap();
        assert_eq!(s.ids.get(id).unwrap().encode().len(), 112);
    }
}
