//! The out-of-memory killer (Linux: mm/oom_kill.c, memcg's OOM path).
//! When a page cannot be had — the container's memory limit or the
//! guest's memory is used up — the process holding the most pages is
//! killed with SIGKILL, as Linux does inside a memory cgroup; the
//! others go on. A program that allocates past `--memory` dies with
//! status 137 while its parent shell survives, as under runc (the host
//! cgroup, which holds the VMM, would kill the whole sandbox; it has the
//! same limit but charges less, so the sentry's is reached first).

use alloc::sync::{Arc, Weak};
use core::sync::atomic::Ordering;
use spin::Mutex;

use super::process::{all_processes, Process};
use super::task::ExitReason;
use super::task::Task;

/// The last victim while it is still dying: a fault meanwhile waits for
/// its memory rather than killing a second process.
static VICTIM: Mutex<Option<Weak<Process>>> = Mutex::new(None);

/// How long a faulting task waits for the victim's memory before it
/// tries again (ns).
const RETRY_NS: u64 = 1_000_000;

fn dying(p: &Process) -> bool {
    let inner = p.inner.lock();
    !inner.zombie && !inner.threads.is_empty()
}

/// Pages a process holds, or 0 when its memory is busy (the faulting
/// task's own, or one being changed on another vCPU).
fn resident(p: &Process) -> u64 {
    let mm = p.view.lock().mm.clone();
    mm.and_then(|mm| mm.try_lock().map(|m| m.resident_pages())).unwrap_or(0)
}

/// The process to kill: the one with the most resident pages; `me`'s
/// own count is passed in (its memory is locked by the caller's fault).
fn choose(me: &Arc<Process>, my_pages: u64) -> Option<Arc<Process>> {
    let mut best: Option<(u64, Arc<Process>)> = None;
    for p in all_processes() {
        {
            let inner = p.inner.lock();
            if inner.zombie || inner.exit.is_some() || inner.threads.is_empty() {
                continue;
            }
        }
        let pages = if Arc::ptr_eq(&p, me) { my_pages } else { resident(&p) };
        if best.as_ref().is_none_or(|(b, _)| pages > *b) {
            best = Some((pages, p));
        }
    }
    best.map(|(_, p)| p)
}

/// Memory ran out while serving `t` (a page fault or a copy into its
/// memory). Kills a process, or waits for the last victim to go, and
/// returns; the caller retries (or, if `t`'s own process was chosen,
/// unwinds to the kill).
pub fn out_of_memory(t: &mut Task, my_pages: u64) {
    let waiting_for = VICTIM.lock().as_ref().and_then(Weak::upgrade);
    if let Some(v) = waiting_for {
        if dying(&v) && !Arc::ptr_eq(&v, &t.proc) {
            wait_a_little(t);
            return;
        }
    }
    let victim = choose(&t.proc, my_pages).unwrap_or_else(|| t.proc.clone());
    super::cgroup::OOMS.fetch_add(1, Ordering::Relaxed);
    super::cgroup::OOM_KILLS.fetch_add(1, Ordering::Relaxed);
    if crate::kernel::get().strace {
        crate::klog!("out of memory: killing process {} ({} KiB charged)", victim.pid, super::cgroup::memory_usage() >> 10);
    }
    *VICTIM.lock() = Some(Arc::downgrade(&victim));
    super::signal::kill_group(&victim, ExitReason::Signaled(super::signal::SIGKILL));
    crate::host::note_oom_kill();
    if !Arc::ptr_eq(&victim, &t.proc) {
        wait_a_little(t);
    }
}

/// Lets the victim run and exit (its SIGKILL is handled when it next
/// runs), then returns to retry.
fn wait_a_little(t: &Task) {
    let q = super::wait::WaitQueue::new();
    let deadline = super::clock::monotonic_ns().saturating_add(RETRY_NS);
    let _ = q.wait(&t.shared, &|| 0, Some(deadline), || None::<()>);
}
