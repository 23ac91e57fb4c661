//! System V IPC syscalls: shmget, shmat, shmdt, shmctl, semget, semop,
//! semtimedop, semctl, msgget, msgsnd, msgrcv, msgctl. The objects live in
//! `kernel::ipc`; here arguments are decoded and checked in Linux's order,
//! application memory is read and written (never under an IPC lock), and
//! blocked callers sleep.
//!
//! Signals: semop fails with EINTR (Linux never restarts it); msgsnd and
//! msgrcv return ERESTARTNOHAND, restarted unless a handler runs.
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::Args;
use crate::errno::{Errno, SysResult};
use crate::kernel::ipc::msg::{self, Message, Recv, RecvReq, Search, Send, MSG_COPY, MSG_EXCEPT, MSG_INFO, MSG_STAT, MSG_STAT_ANY};
use crate::kernel::ipc::sem::{self, SemBuf, GETALL, GETNCNT, GETPID, GETVAL, GETZCNT, SEM_INFO, SEM_STAT, SEM_STAT_ANY, SETALL, SETVAL};
use crate::kernel::ipc::shm::{self, SHMLBA, SHM_EXEC, SHM_INFO, SHM_LOCK, SHM_RDONLY, SHM_REMAP, SHM_RND, SHM_STAT, SHM_STAT_ANY, SHM_UNLOCK};
use crate::kernel::ipc::{self as ipc, Ctx, PermSet, Waiter, IPC_INFO, IPC_NOWAIT, IPC_RMID, IPC_SET, IPC_STAT};
use crate::kernel::sched::{self, BLOCKED};
use crate::kernel::task::{Creds, Task};
use crate::kernel::wait::ERESTARTNOHAND;
use crate::mm::shared::SegmentRef;
use crate::mm::vma::{Backing, PROT_EXEC, PROT_READ, PROT_WRITE};
use abi::layout::TASK_SIZE;

/// Sizes of the `*id64_ds` structures IPC_SET reads.
const SHMID_DS: usize = 112;
const SEMID_DS: usize = 104;
const MSQID_DS: usize = 120;
/// RLIMIT_MEMLOCK's index.
const RLIMIT_MEMLOCK: usize = 8;

fn ctx<'a>(t: &Task, creds: &'a Creds) -> Ctx<'a> {
    Ctx { creds, pid: t.pid(), now: ipc::now_secs() }
}

/// How a sleep ended.
enum Woke {
    Done,
    Interrupted,
    TimedOut,
}

/// Sleeps until `done()`, a deliverable signal (or the group's end), or
/// `deadline` (CLOCK_MONOTONIC ns). The sentry is not preemptible, so
/// nobody can complete the wait between the check and the sleep.
fn sleep(t: &Task, deadline: Option<u64>, done: impl Fn() -> bool) -> Woke {
    let me = &t.shared;
    loop {
        if done() {
            return Woke::Done;
        }
        if t.deliverable() != 0 || me.killed.load(Ordering::Relaxed) {
            return Woke::Interrupted;
        }
        if let Some(d) = deadline {
            if crate::kernel::clock::monotonic_ns() >= d {
                return Woke::TimedOut;
            }
            sched::add_timer(d, me);
        }
        me.state.store(BLOCKED, Ordering::Release);
        sched::schedule();
        if deadline.is_some() {
            sched::cancel_timers(me);
        }
    }
}

fn interrupted(t: &Task) -> bool {
    t.deliverable() != 0 || t.shared.killed.load(Ordering::Relaxed)
}

/// Copies `len` bytes in; the length can come from sysctls the
/// container sets, so a failed allocation is ENOMEM, as Linux's kvmalloc.
fn read_bytes(t: &Task, va: u64, len: usize) -> Result<Vec<u8>, Errno> {
    let mut b = Vec::new();
    b.try_reserve_exact(len).map_err(|_| Errno::ENOMEM)?;
    b.resize(len, 0);
    t.mm.lock().copy_in(va, &mut b)?;
    Ok(b)
}

// ---- shared memory ----

pub fn sys_shmget(t: &mut Task, a: &Args) -> SysResult {
    let creds = t.creds.clone();
    let c = ctx(t, &creds);
    let lim = ipc::limits();
    let id = shm::with(|s| s.get(a.i32(0), a.u64(1), a.i32(2), &c, &lim))?;
    Ok(u64::from(id as u32))
}

pub fn sys_shmat(t: &mut Task, a: &Args) -> SysResult {
    let (id, mut addr, flags) = (a.i32(0), a.u64(1), a.i32(2));
    if id < 0 {
        return Err(Errno::EINVAL);
    }
    if addr != 0 {
        if addr % SHMLBA != 0 {
            if flags & SHM_RND == 0 {
                return Err(Errno::EINVAL);
            }
            addr -= addr % SHMLBA;
            if addr == 0 && flags & SHM_REMAP != 0 {
                return Err(Errno::EINVAL);
            }
        }
    } else if flags & SHM_REMAP != 0 {
        return Err(Errno::EINVAL);
    }
    let read_only = flags & SHM_RDONLY != 0;
    let mut prot = if read_only { PROT_READ } else { PROT_READ | PROT_WRITE };
    if flags & SHM_EXEC != 0 {
        prot |= PROT_EXEC;
    }
    let creds = t.creds.clone();
    let c = ctx(t, &creds);
    let at = shm::with(|s| s.attach(id, flags, &c))?;
    // From here the area owns the attach: dropping it (on error too)
    // detaches.
    let seg = SegmentRef::adopt(at.mem);
    let mut mm = t.mm.lock();
    if addr != 0 {
        let end = addr.checked_add(at.size).ok_or(Errno::EINVAL)?;
        let end = crate::mm::page_up(end).ok_or(Errno::EINVAL)?;
        if flags & SHM_REMAP == 0 && !mm.vmas().is_free(addr, end) {
            return Err(Errno::EINVAL);
        }
        if end > TASK_SIZE {
            return Err(Errno::ENOMEM);
        }
    }
    let backing = Backing::SysvShm { seg, offset: 0, may_write: !read_only };
    mm.mmap(addr, at.size, prot, addr != 0, false, true, backing)
}

pub fn sys_shmdt(t: &mut Task, a: &Args) -> SysResult {
    t.mm.lock().detach_shared(a.u64(0)).map(|()| 0)
}

pub fn sys_shmctl(t: &mut Task, a: &Args) -> SysResult {
    let (id, cmd, buf) = (a.i32(0), a.i32(1), a.u64(2));
    if id < 0 || cmd < 0 {
        return Err(Errno::EINVAL);
    }
    let creds = t.creds.clone();
    let c = ctx(t, &creds);
    match cmd {
        IPC_INFO | SHM_INFO => {
            let lim = ipc::limits();
            let (b, max) = shm::with(|s| s.info(cmd, &lim));
            t.mm.lock().copy_out(buf, &b)?;
            Ok(max)
        }
        IPC_STAT | SHM_STAT | SHM_STAT_ANY => {
            let (b, ret) = shm::with(|s| s.stat(id, cmd, &c))?;
            t.mm.lock().copy_out(buf, &b)?;
            Ok(ret)
        }
        IPC_SET => {
            let p = PermSet::decode(&read_bytes(t, buf, SHMID_DS)?);
            shm::with(|s| s.set(id, &p, &c)).map(|()| 0)
        }
        IPC_RMID => shm::with(|s| s.rmid(id, &c)).map(|()| 0),
        SHM_LOCK | SHM_UNLOCK => {
            let memlock = t.rlimits[RLIMIT_MEMLOCK].0;
            shm::with(|s| s.lock(id, cmd, &c, memlock)).map(|()| 0)
        }
        _ => Err(Errno::EINVAL),
    }
}

// ---- semaphores ----

pub fn sys_semget(t: &mut Task, a: &Args) -> SysResult {
    let creds = t.creds.clone();
    let c = ctx(t, &creds);
    let lim = ipc::limits();
    let id = sem::with(|s| s.get(a.i32(0), a.i32(1), a.i32(2), &c, &lim))?;
    Ok(u64::from(id as u32))
}

pub fn sys_semop(t: &mut Task, a: &Args) -> SysResult {
    semtimedop(t, a.i32(0), a.u64(1), a.u32(2), None)
}

pub fn sys_semtimedop(t: &mut Task, a: &Args) -> SysResult {
    let timeout = match a.u64(3) {
        0 => None,
        va => {
            let [sec, nsec] = t.mm.lock().read_obj::<[i64; 2]>(va)?;
            Some((sec, nsec))
        }
    };
    semtimedop(t, a.i32(0), a.u64(1), a.u32(2), timeout)
}

/// semop with an optional relative timeout (seconds, nanoseconds) in
/// Linux's order of checks: E2BIG, EINVAL, EFAULT, then the timeout.
fn semtimedop(t: &mut Task, id: i32, sops: u64, nsops: u32, timeout: Option<(i64, i64)>) -> SysResult {
    let lim = ipc::limits();
    if nsops > lim.semopm {
        return Err(Errno::E2BIG);
    }
    if nsops < 1 {
        return Err(Errno::EINVAL);
    }
    let ops = SemBuf::decode_all(&read_bytes(t, sops, nsops as usize * 6)?);
    if id < 0 {
        return Err(Errno::EINVAL);
    }
    let deadline = match timeout {
        None => None,
        Some((sec, nsec)) => {
            if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
                return Err(Errno::EINVAL);
            }
            let ns = (sec as u64).saturating_mul(1_000_000_000).saturating_add(nsec as u64);
            Some(crate::kernel::clock::monotonic_ns().saturating_add(ns))
        }
    };
    let creds = t.creds.clone();
    let c = ctx(t, &creds);
    let w = Waiter::new(Some(t.shared.clone()));
    match sem::with(|s| s.semop(id, &ops, &c, &w))? {
        sem::Op::Done(r) => r.map(|()| 0),
        sem::Op::Queued => {
            let woke = sleep(t, deadline, || w.is_done());
            let r = match woke {
                Woke::Done => w.take(),
                _ => sem::with(|s| s.cancel(id, &w)),
            };
            match (r, woke) {
                (Some(r), _) => r.map(|()| 0),
                (None, Woke::TimedOut) => Err(Errno::EAGAIN),
                (None, _) => Err(Errno::EINTR),
            }
        }
    }
}

pub fn sys_semctl(t: &mut Task, a: &Args) -> SysResult {
    let (id, num, cmd, arg) = (a.i32(0), a.i32(1), a.i32(2), a.u64(3));
    if id < 0 {
        return Err(Errno::EINVAL);
    }
    let creds = t.creds.clone();
    let c = ctx(t, &creds);
    match cmd {
        IPC_INFO | SEM_INFO => {
            let lim = ipc::limits();
            let (b, max) = sem::with(|s| s.info(cmd, &lim));
            t.mm.lock().copy_out(arg, &b)?;
            Ok(max)
        }
        IPC_STAT | SEM_STAT | SEM_STAT_ANY => {
            let (b, ret) = sem::with(|s| s.stat(id, cmd, &c))?;
            t.mm.lock().copy_out(arg, &b)?;
            Ok(ret)
        }
        GETALL => {
            let vals = sem::with(|s| s.getall(id, &c))?;
            let b: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
            t.mm.lock().copy_out(arg, &b)?;
            Ok(0)
        }
        GETVAL | GETPID | GETNCNT | GETZCNT => sem::with(|s| s.get_one(id, num, cmd, &c)),
        SETALL => {
            let n = sem::with(|s| s.setall_len(id, &c))?;
            let b = read_bytes(t, arg, n * 2)?;
            let vals: Vec<u16> = b.chunks_exact(2).map(|p| u16::from_le_bytes([p[0], p[1]])).collect();
            sem::with(|s| s.setall(id, &vals, &c)).map(|()| 0)
        }
        // The union semun arrives by value: `val` is its low 32 bits.
        SETVAL => sem::with(|s| s.setval(id, num, arg as u32 as i32, &c)).map(|()| 0),
        IPC_SET => {
            let p = PermSet::decode(&read_bytes(t, arg, SEMID_DS)?);
            sem::with(|s| s.set(id, &p, &c)).map(|()| 0)
        }
        IPC_RMID => sem::with(|s| s.rmid(id, &c)).map(|()| 0),
        _ => Err(Errno::EINVAL),
    }
}

// ---- message queues ----

pub fn sys_msgget(t: &mut Task, a: &Args) -> SysResult {
    let creds = t.creds.clone();
    let c = ctx(t, &creds);
    let lim = ipc::limits();
    let id = msg::with(|s| s.get(a.i32(0), a.i32(1), &c, &lim))?;
    Ok(u64::from(id as u32))
}

pub fn sys_msgsnd(t: &mut Task, a: &Args) -> SysResult {
    let (id, msgp, size, flags) = (a.i32(0), a.u64(1), a.u64(2), a.i32(3));
    let mtype: i64 = t.mm.lock().read_obj(msgp)?;
    let lim = ipc::limits();
    if size > u64::from(lim.msgmax) || id < 0 {
        return Err(Errno::EINVAL);
    }
    if mtype < 1 {
        return Err(Errno::EINVAL);
    }
    let text = read_bytes(t, msgp.checked_add(8).ok_or(Errno::EFAULT)?, size as usize)?;
    let creds = t.creds.clone();
    let c = ctx(t, &creds);
    let mut m = Message { mtype, text };
    let mut slept = false;
    loop {
        let w = Waiter::new(Some(t.shared.clone()));
        match msg::with(|s| s.send(id, m, flags, &c, &w)) {
            // The queue went away while we slept.
            Err(Errno::EINVAL) if slept => return Err(Errno::EIDRM),
            Err(e) => return Err(e),
            Ok(Send::Sent) => return Ok(0),
            Ok(Send::Queued(back)) => m = back,
        }
        slept = true;
        sleep(t, None, || w.is_done());
        if let Some(Err(e)) = msg::with(|s| s.cancel_send(id, &w)) {
            return Err(e);
        }
        if interrupted(t) {
            return Err(ERESTARTNOHAND);
        }
    }
}

pub fn sys_msgrcv(t: &mut Task, a: &Args) -> SysResult {
    let (id, buf, bufsz, msgtyp, flags) = (a.i32(0), a.u64(1), a.u64(2), a.u64(3) as i64, a.i32(4));
    if id < 0 || (bufsz as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let lim = ipc::limits();
    let copy_max = bufsz.min(u64::from(lim.msgmax));
    if flags & MSG_COPY != 0 {
        if flags & MSG_EXCEPT != 0 || flags & IPC_NOWAIT == 0 {
            return Err(Errno::EINVAL);
        }
        // Linux first loads the buffer as the copy's message.
        read_bytes(t, buf, copy_max as usize)?;
    }
    let req = RecvReq { search: Search::new(msgtyp, flags), bufsz, flags, copy_max };
    let creds = t.creds.clone();
    let c = ctx(t, &creds);
    let mut slept = false;
    let m = loop {
        let w = Waiter::new(Some(t.shared.clone()));
        match msg::with(|s| s.recv(id, &req, &c, &w)) {
            Err(Errno::EINVAL) if slept => return Err(Errno::EIDRM),
            Err(e) => return Err(e),
            Ok(Recv::Got(m)) => break m,
            Ok(Recv::Queued) => {}
        }
        slept = true;
        sleep(t, None, || w.is_done());
        match msg::with(|s| s.cancel_recv(id, &w)) {
            Some(Ok(m)) => break m,
            // EAGAIN: the queue changed hands (IPC_SET); look again.
            Some(Err(e)) if e != Errno::EAGAIN => return Err(e),
            _ => {}
        }
        if interrupted(t) {
            return Err(ERESTARTNOHAND);
        }
    };
    let n = (bufsz as usize).min(m.text.len());
    let mut mm = t.mm.lock();
    mm.write_obj(buf, &m.mtype)?;
    mm.copy_out(buf.checked_add(8).ok_or(Errno::EFAULT)?, &m.text[..n])?;
    Ok(n as u64)
}

pub fn sys_msgctl(t: &mut Task, a: &Args) -> SysResult {
    let (id, cmd, buf) = (a.i32(0), a.i32(1), a.u64(2));
    if id < 0 || cmd < 0 {
        return Err(Errno::EINVAL);
    }
    let creds = t.creds.clone();
    let c = ctx(t, &creds);
    match cmd {
        IPC_INFO | MSG_INFO => {
            let lim = ipc::limits();
            let (b, max) = msg::with(|s| s.info(cmd, &lim));
            t.mm.lock().copy_out(buf, &b)?;
            Ok(max)
        }
        IPC_STAT | MSG_STAT | MSG_STAT_ANY => {
            let (b, ret) = msg::with(|s| s.stat(id, cmd, &c))?;
            t.mm.lock().copy_out(buf, &b)?;
            Ok(ret)
        }
        IPC_SET => {
            let b = read_bytes(t, buf, MSQID_DS)?;
            let lim = ipc::limits();
            msg::with(|s| s.set(id, &PermSet::decode(&b), ipc::le_u64(&b, 88), &c, &lim)).map(|()| 0)
        }
        IPC_RMID => msg::with(|s| s.rmid(id, &c)).map(|()| 0),
        _ => Err(Errno::EINVAL),
    }
}
