//! poll, ppoll, select, pselect6 (Linux: fs/select.c). Sentry files wake
//! `POLL_WQ` when their readiness may change; host-backed files (stdio)
//! are re-checked every few milliseconds while others run.

use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::Args;
use crate::errno::{Errno, SysResult};
use crate::fs::{POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI, POLL_WQ};
use crate::kernel::sched;
use crate::kernel::task::Task;

/// How often host-backed files are re-polled while waiting.
const HOST_POLL_NS: u64 = 2_000_000;
/// Most fds in one poll (Linux: RLIMIT_NOFILE).
const MAX_POLL_FDS: usize = 1 << 20;

/// One entry: (fd, requested events, returned events).
type Entry = (i32, u16, u16);

/// Polls until something is ready, the deadline passes or a signal comes.
fn do_poll(t: &mut Task, entries: &mut [Entry], deadline: Option<u64>) -> Result<usize, Errno> {
    loop {
        let mut ready = 0;
        let mut host = false;
        for e in entries.iter_mut() {
            e.2 = 0;
            if e.0 < 0 {
                continue;
            }
            let Ok(f) = t.fds.lock().get(e.0) else {
                e.2 = POLLNVAL;
                ready += 1;
                continue;
            };
            host |= f.ops.host_backed();
            e.2 = f.ops.poll(e.1) & (e.1 | POLLERR | POLLHUP);
            if e.2 != 0 {
                ready += 1;
            }
        }
        let now = crate::kernel::clock::monotonic_ns();
        if ready > 0 || deadline.is_some_and(|d| now >= d) {
            return Ok(ready);
        }
        if t.deliverable() != 0 || t.shared.killed.load(Ordering::Relaxed) {
            return Err(Errno::EINTR);
        }
        if host {
            let wake = deadline.map_or(now + HOST_POLL_NS, |d| d.min(now + HOST_POLL_NS));
            sched::add_timer(wake, &t.shared);
            sched::block(&t.shared);
            sched::cancel_timers(&t.shared);
        } else {
            let pending = || t.proc.pending();
            let mut first = true;
            match POLL_WQ.wait(&t.shared, &pending, deadline, || {
                // Return after one wake-up to re-check every fd.
                if first {
                    first = false;
                    None
                } else {
                    Some(())
                }
            }) {
                Ok(()) | Err(Errno::ETIMEDOUT) => {}
                Err(_) => return Err(Errno::EINTR),
            }
        }
    }
}

fn deadline_from_ms(ms: i32) -> Option<u64> {
    (ms >= 0).then(|| crate::kernel::clock::monotonic_ns().saturating_add(ms as u64 * 1_000_000))
}

fn read_timespec_deadline(t: &mut Task, va: u64) -> Result<Option<u64>, Errno> {
    if va == 0 {
        return Ok(None);
    }
    let sec: i64 = t.mm.lock().read_obj(va)?;
    let nsec: i64 = t.mm.lock().read_obj(va + 8)?;
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(Some(crate::kernel::clock::monotonic_ns().saturating_add((sec as u64).saturating_mul(1_000_000_000) + nsec as u64)))
}

fn poll_common(t: &mut Task, fds_va: u64, nfds: u64, deadline: Option<u64>) -> SysResult {
    let n = usize::try_from(nfds).map_err(|_| Errno::EINVAL)?;
    if n > MAX_POLL_FDS || n > t.rlimits[7].0 as usize {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; n * 8];
    t.mm.lock().copy_in(fds_va, &mut raw)?;
    let mut entries: Vec<Entry> = raw
        .chunks(8)
        .map(|c| (i32::from_le_bytes([c[0], c[1], c[2], c[3]]), u16::from_le_bytes([c[4], c[5]]), 0))
        .collect();
    let r = do_poll(t, &mut entries, deadline)?;
    for (i, e) in entries.iter().enumerate() {
        raw[i * 8 + 6..i * 8 + 8].copy_from_slice(&e.2.to_le_bytes());
    }
    t.mm.lock().copy_out(fds_va, &raw)?;
    Ok(r as u64)
}

/// Applies a temporary signal mask for ppoll/pselect (restored after a
/// handler runs, or now if none does).
fn with_sigmask(t: &mut Task, mask_va: u64, f: impl FnOnce(&mut Task) -> SysResult) -> SysResult {
    if mask_va == 0 {
        return f(t);
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

pub fn sys_poll(t: &mut Task, a: &Args) -> SysResult {
    poll_common(t, a.u64(0), a.u64(1), deadline_from_ms(a.i32(2)))
}

pub fn sys_ppoll(t: &mut Task, a: &Args) -> SysResult {
    if a.u64(3) != 0 && a.u64(4) != 8 {
        return Err(Errno::EINVAL);
    }
    let deadline = read_timespec_deadline(t, a.u64(2))?;
    let (fds, n) = (a.u64(0), a.u64(1));
    with_sigmask(t, a.u64(3), |t| poll_common(t, fds, n, deadline))
}

/// select over fd_set bitmaps.
fn select_common(t: &mut Task, nfds: i32, sets: [u64; 3], deadline: Option<u64>) -> SysResult {
    if nfds < 0 || nfds as usize > t.fds.lock().limit().max(1024) {
        return Err(Errno::EINVAL);
    }
    let n = nfds as usize;
    let bytes = n.div_ceil(64) * 8;
    let mut bits = [vec![0u8; bytes], vec![0u8; bytes], vec![0u8; bytes]];
    for (k, va) in sets.iter().enumerate() {
        if *va != 0 {
            t.mm.lock().copy_in(*va, &mut bits[k])?;
        }
    }
    let want = [POLLIN | POLLHUP | POLLERR, POLLOUT | POLLERR, POLLPRI];
    let mut entries: Vec<Entry> = Vec::new();
    for fd in 0..n {
        let mut ev = 0;
        for k in 0..3 {
            if bits[k][fd / 8] & (1 << (fd % 8)) != 0 {
                ev |= want[k];
            }
        }
        if ev != 0 {
            entries.push((fd as i32, ev, 0));
        }
    }
    do_poll(t, &mut entries, deadline)?;
    let mut count = 0;
    for b in bits.iter_mut() {
        b.fill(0);
    }
    for e in &entries {
        if e.2 & POLLNVAL != 0 {
            return Err(Errno::EBADF);
        }
        let fd = e.0 as usize;
        for k in 0..3 {
            if e.1 & want[k] != 0 && e.2 & want[k] != 0 {
                bits[k][fd / 8] |= 1 << (fd % 8);
                count += 1;
            }
        }
    }
    for (k, va) in sets.iter().enumerate() {
        if *va != 0 {
            t.mm.lock().copy_out(*va, &bits[k])?;
        }
    }
    Ok(count)
}

/// Writes the time left before `deadline` back into a timeval (select)
/// or timespec (pselect6), as Linux does.
fn write_remaining(t: &mut Task, va: u64, deadline: Option<u64>, timeval: bool) -> Result<(), Errno> {
    let (Some(d), true) = (deadline, va != 0) else { return Ok(()) };
    let left = d.saturating_sub(crate::kernel::clock::monotonic_ns());
    let sub = if timeval { left % 1_000_000_000 / 1000 } else { left % 1_000_000_000 };
    let mut mm = t.mm.lock();
    mm.write_obj(va, &(left / 1_000_000_000))?;
    mm.write_obj(va + 8, &sub)
}

pub fn sys_select(t: &mut Task, a: &Args) -> SysResult {
    let deadline = if a.u64(4) != 0 {
        let sec: i64 = t.mm.lock().read_obj(a.u64(4))?;
        let usec: i64 = t.mm.lock().read_obj(a.u64(4) + 8)?;
        if sec < 0 || !(0..1_000_000).contains(&usec) {
            return Err(Errno::EINVAL);
        }
        Some(crate::kernel::clock::monotonic_ns().saturating_add((sec as u64).saturating_mul(1_000_000_000) + usec as u64 * 1000))
    } else {
        None
    };
    let r = select_common(t, a.i32(0), [a.u64(1), a.u64(2), a.u64(3)], deadline);
    write_remaining(t, a.u64(4), deadline, true)?;
    r
}

pub fn sys_pselect6(t: &mut Task, a: &Args) -> SysResult {
    let deadline = read_timespec_deadline(t, a.u64(4))?;
    // The sixth argument points at { const sigset_t *ss; size_t ss_len; }.
    let (mut mask_va, mut len) = (0u64, 8u64);
    if a.u64(5) != 0 {
        mask_va = t.mm.lock().read_obj(a.u64(5))?;
        len = t.mm.lock().read_obj(a.u64(5) + 8)?;
    }
    if mask_va != 0 && len != 8 {
        return Err(Errno::EINVAL);
    }
    let (n, sets) = (a.i32(0), [a.u64(1), a.u64(2), a.u64(3)]);
    let r = with_sigmask(t, mask_va, |t| select_common(t, n, sets, deadline));
    write_remaining(t, a.u64(4), deadline, false)?;
    r
}
