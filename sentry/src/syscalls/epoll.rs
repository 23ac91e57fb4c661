//! epoll and the event-notification fds: epoll_create/create1/ctl/wait/
//! pwait/pwait2, eventfd/eventfd2, timerfd_create/settime/gettime,
//! signalfd/signalfd4, inotify_init/init1/add_watch/rm_watch (Linux: fs/eventpoll.c, fs/eventfd.c,
//! fs/timerfd.c, fs/signalfd.c). The files live in `crate::fs`.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use super::Args;
use crate::errno::{Errno, SysResult};
use crate::fs::epoll::{EpollFile, EPOLLS, EPOLL_CTL_DEL, HOST_POLL_NS};
use crate::fs::eventfd::{EventFd, EFD_SEMAPHORE};
use crate::fs::signalfd::{SignalFd, SIGNALFDS};
use crate::fs::timerfd::{self, TimerFd, TIMERFDS};
use crate::fs::{inotify, OpenFile, POLL_WQ};
use crate::kernel::clock;
use crate::kernel::task::Task;

const O_RDWR: u32 = 2;
const O_NONBLOCK: u32 = 0o4000;
const O_CLOEXEC: u32 = 0o2000000;
/// Size of the packed x86-64 `struct epoll_event`.
const EVENT_SIZE: usize = 12;
/// Most events one epoll_wait may ask for (Linux: EP_MAX_EVENTS).
const EP_MAX_EVENTS: usize = (i32::MAX as usize) / EVENT_SIZE;
/// End of the user address range (Linux: TASK_SIZE_MAX).
const USER_END: u64 = (1 << 47) - 4096;
const NSEC: u64 = 1_000_000_000;

/// Installs a new anonymous file.
fn install(t: &mut Task, ops: Box<dyn crate::fs::FileOps>, flags: u32) -> SysResult {
    let f = OpenFile::new(ops, O_RDWR | (flags & O_NONBLOCK));
    t.fds.lock().install(f, flags & O_CLOEXEC != 0, 0).map(|fd| fd as u64)
}

// ---------------------------------------------------------------- epoll

pub fn sys_epoll_create1(t: &mut Task, a: &Args) -> SysResult {
    let flags = a.u32(0);
    if flags & !O_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    install(t, Box::new(EpollFile::new()), flags & O_CLOEXEC)
}

pub fn sys_epoll_create(t: &mut Task, a: &Args) -> SysResult {
    if a.i32(0) <= 0 {
        return Err(Errno::EINVAL);
    }
    install(t, Box::new(EpollFile::new()), 0)
}

pub fn sys_epoll_ctl(t: &mut Task, a: &Args) -> SysResult {
    let (epfd, op, fd, ev_va) = (a.fd(0), a.u32(1), a.fd(2), a.u64(3));
    let mut ev = (0u32, 0u64);
    if op != EPOLL_CTL_DEL {
        let mut b = [0u8; EVENT_SIZE];
        t.mm.lock().copy_in(ev_va, &mut b)?;
        ev.0 = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        ev.1 = u64::from_le_bytes([b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]]);
    }
    let (ep_file, file) = {
        let fds = t.fds.lock();
        (fds.get(epfd)?, fds.get(fd)?)
    };
    if !file.ops.can_poll() {
        return Err(Errno::EPERM);
    }
    if Arc::ptr_eq(&ep_file, &file) {
        return Err(Errno::EINVAL);
    }
    let ep = EPOLLS.lookup(&ep_file).ok_or(Errno::EINVAL)?;
    ep.ctl(op, fd, &file, ev).map(|()| 0)
}

/// Waits for events on `epfd` and copies them out.
fn epoll_wait_common(t: &mut Task, epfd: i32, events_va: u64, maxevents: i32, deadline: Option<u64>) -> SysResult {
    if maxevents <= 0 || maxevents as usize > EP_MAX_EVENTS {
        return Err(Errno::EINVAL);
    }
    let max = maxevents as usize;
    if events_va.checked_add((max * EVENT_SIZE) as u64).is_none_or(|end| end > USER_END) {
        return Err(Errno::EFAULT);
    }
    let f = t.fds.lock().get(epfd)?;
    let ep = EPOLLS.lookup(&f).ok_or(Errno::EINVAL)?;
    loop {
        let now = clock::monotonic_ns();
        let (ready, host) = ep.scan(max, now);
        if !ready.is_empty() {
            let mut n = 0;
            for r in &ready {
                let mut b = [0u8; EVENT_SIZE];
                b[..4].copy_from_slice(&r.events.to_le_bytes());
                b[4..].copy_from_slice(&r.data.to_le_bytes());
                if t.mm.lock().copy_out(events_va + (n * EVENT_SIZE) as u64, &b).is_err() {
                    break;
                }
                n += 1;
            }
            if n == 0 {
                return Err(Errno::EFAULT);
            }
            ep.commit(&ready[..n], now);
            return Ok(n as u64);
        }
        if deadline.is_some_and(|d| now >= d) {
            return Ok(0);
        }
        if t.deliverable() != 0 || t.shared.killed.load(Ordering::Relaxed) {
            return Err(Errno::EINTR);
        }
        let wake_at = if host { Some(deadline.map_or(now + HOST_POLL_NS, |d| d.min(now + HOST_POLL_NS))) } else { deadline };
        let pending = || t.proc.pending();
        let mut first = true;
        // Return after one wake-up (or the deadline) to look again.
        let r = POLL_WQ.wait(&t.shared, &pending, wake_at, || {
            if first {
                first = false;
                None
            } else {
                Some(())
            }
        });
        match r {
            Ok(()) | Err(Errno::ETIMEDOUT) => {}
            // epoll_wait is never restarted (Linux returns EINTR).
            Err(_) => return Err(Errno::EINTR),
        }
    }
}

/// Runs `f` with a temporary signal mask (epoll_pwait, as ppoll): kept
/// until the handler of the signal that interrupted the wait has run.
fn with_sigmask(t: &mut Task, mask_va: u64, size: u64, f: impl FnOnce(&mut Task) -> SysResult) -> SysResult {
    if mask_va == 0 {
        return f(t);
    }
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let mask: u64 = t.mm.lock().read_obj(mask_va)?;
    let unblockable = crate::kernel::signal::bit(9) | crate::kernel::signal::bit(19);
    let old = t.shared.sigmask.swap(mask & !unblockable, Ordering::AcqRel);
    let r = f(t);
    if r == Err(Errno::EINTR) {
        t.saved_mask = Some(old);
    } else {
        t.shared.sigmask.store(old, Ordering::Relaxed);
    }
    r
}

fn deadline_from_ms(ms: i32) -> Option<u64> {
    (ms >= 0).then(|| clock::monotonic_ns().saturating_add(ms as u64 * 1_000_000))
}

pub fn sys_epoll_wait(t: &mut Task, a: &Args) -> SysResult {
    epoll_wait_common(t, a.fd(0), a.u64(1), a.i32(2), deadline_from_ms(a.i32(3)))
}

pub fn sys_epoll_pwait(t: &mut Task, a: &Args) -> SysResult {
    let (epfd, va, max, deadline) = (a.fd(0), a.u64(1), a.i32(2), deadline_from_ms(a.i32(3)));
    with_sigmask(t, a.u64(4), a.u64(5), |t| epoll_wait_common(t, epfd, va, max, deadline))
}

pub fn sys_epoll_pwait2(t: &mut Task, a: &Args) -> SysResult {
    let deadline = if a.u64(3) != 0 {
        let (sec, nsec) = read_timespec(t, a.u64(3))?;
        Some(clock::monotonic_ns().saturating_add(sec.saturating_mul(NSEC).saturating_add(nsec)))
    } else {
        None
    };
    let (epfd, va, max) = (a.fd(0), a.u64(1), a.i32(2));
    with_sigmask(t, a.u64(4), a.u64(5), |t| epoll_wait_common(t, epfd, va, max, deadline))
}

// ---------------------------------------------------------------- eventfd

pub fn sys_eventfd2(t: &mut Task, a: &Args) -> SysResult {
    let flags = a.u32(1);
    if flags & !(O_CLOEXEC | O_NONBLOCK | EFD_SEMAPHORE) != 0 {
        return Err(Errno::EINVAL);
    }
    install(t, Box::new(EventFd::new(u64::from(a.u32(0)), flags & EFD_SEMAPHORE != 0)), flags)
}

pub fn sys_eventfd(t: &mut Task, a: &Args) -> SysResult {
    install(t, Box::new(EventFd::new(u64::from(a.u32(0)), false)), 0)
}

// ---------------------------------------------------------------- timerfd

/// Reads a `struct timespec` as (sec, nsec), validated.
fn read_timespec(t: &mut Task, va: u64) -> Result<(u64, u64), Errno> {
    let sec: i64 = t.mm.lock().read_obj(va)?;
    let nsec: i64 = t.mm.lock().read_obj(va + 8)?;
    if sec < 0 || !(0..NSEC as i64).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    Ok((sec as u64, nsec as u64))
}

/// Writes a `struct itimerspec` { interval, value } from ns.
fn write_itimerspec(t: &mut Task, va: u64, (value, interval): (u64, u64)) -> Result<(), Errno> {
    let words = [interval / NSEC, interval % NSEC, value / NSEC, value % NSEC];
    let mut b = [0u8; 32];
    for (i, w) in words.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    t.mm.lock().copy_out(va, &b)
}

pub fn sys_timerfd_create(t: &mut Task, a: &Args) -> SysResult {
    let (clk, flags) = (a.i32(0), a.u32(1));
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 || !timerfd::valid_clock(clk) {
        return Err(Errno::EINVAL);
    }
    install(t, Box::new(TimerFd::new(clk)), flags)
}

fn timerfd_of(t: &mut Task, fd: i32) -> Result<Arc<timerfd::TimerCore>, Errno> {
    let f = t.fds.lock().get(fd)?;
    TIMERFDS.lookup(&f).ok_or(Errno::EINVAL)
}

pub fn sys_timerfd_settime(t: &mut Task, a: &Args) -> SysResult {
    let flags = a.u32(1);
    let mut raw = [0i64; 4];
    for (i, w) in raw.iter_mut().enumerate() {
        *w = t.mm.lock().read_obj(a.u64(2) + 8 * i as u64)?;
    }
    let valid = |s: i64, n: i64| s >= 0 && (0..NSEC as i64).contains(&n);
    if flags & !(timerfd::TFD_TIMER_ABSTIME | timerfd::TFD_TIMER_CANCEL_ON_SET) != 0 || !valid(raw[0], raw[1]) || !valid(raw[2], raw[3]) {
        return Err(Errno::EINVAL);
    }
    let tf = timerfd_of(t, a.fd(0))?;
    let (isec, insec, vsec, vnsec) = (raw[0] as u64, raw[1] as u64, raw[2] as u64, raw[3] as u64);
    let ns = |s: u64, n: u64| s.saturating_mul(NSEC).saturating_add(n);
    let old = tf.set(flags, ns(vsec, vnsec), ns(isec, insec));
    if a.u64(3) != 0 {
        write_itimerspec(t, a.u64(3), old)?;
    }
    Ok(0)
}

pub fn sys_timerfd_gettime(t: &mut Task, a: &Args) -> SysResult {
    let tf = timerfd_of(t, a.fd(0))?;
    let cur = tf.get();
    write_itimerspec(t, a.u64(1), cur).map(|()| 0)
}

// ---------------------------------------------------------------- signalfd

fn signalfd_common(t: &mut Task, fd: i32, mask_va: u64, size: u64, flags: u32) -> SysResult {
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let mask: u64 = t.mm.lock().read_obj(mask_va)?;
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    if fd == -1 {
        let sfd = SignalFd::new(t, mask);
        return install(t, Box::new(sfd), flags);
    }
    let f = t.fds.lock().get(fd)?;
    let core = SIGNALFDS.lookup(&f).ok_or(Errno::EINVAL)?;
    core.set_mask(mask);
    Ok(fd as u64)
}

pub fn sys_signalfd4(t: &mut Task, a: &Args) -> SysResult {
    signalfd_common(t, a.fd(0), a.u64(1), a.u64(2), a.u32(3))
}

pub fn sys_signalfd(t: &mut Task, a: &Args) -> SysResult {
    signalfd_common(t, a.fd(0), a.u64(1), a.u64(2), 0)
}

// ---------------------------------------------------------------- inotify

pub fn sys_inotify_init1(t: &mut Task, a: &Args) -> SysResult {
    let flags = a.u32(0);
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    install(t, Box::new(inotify::new_instance()?), flags)
}

pub fn sys_inotify_init(t: &mut Task, _a: &Args) -> SysResult {
    install(t, Box::new(inotify::new_instance()?), 0)
}

pub fn sys_inotify_add_watch(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.lock().get(a.fd(0))?;
    let inst = inotify::instance_of(&f)?;
    let mask = a.u32(2);
    let path = super::fs::path_arg(t, a.u64(1))?;
    let loc = super::fs::resolve(t, -100, &path, mask & inotify::IN_DONT_FOLLOW == 0)?;
    // Watching needs read permission on the inode (Linux: inotify_find_inode).
    crate::vfs::perm::check_inode(&*loc.inode, &t.creds, crate::vfs::perm::MAY_READ)?;
    inotify::add_watch(&inst, &*loc.inode, mask).map(|wd| wd as u64)
}

pub fn sys_inotify_rm_watch(t: &mut Task, a: &Args) -> SysResult {
    let f = t.fds.lock().get(a.fd(0))?;
    let inst = inotify::instance_of(&f)?;
    inotify::rm_watch(&inst, a.i32(1)).map(|()| 0)
}
