//! Ending threads and processes (Linux: kernel/exit.c): robust and PI
//! futexes, clear_child_tid, the last thread turning the process into a
//! zombie, reparenting its children to init, telling the parent. When
//! init (pid 1) ends, the sandbox ends with its status.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::process::{self, Process};
use super::sched;
use super::signal;
use super::task::{ExitReason, Task};

/// Ends a thread; never returns.
pub fn exit_task(mut t: Box<Task>, why: ExitReason) -> ! {
    // Robust and PI futexes first, while the thread's TID is still the
    // one their words name (Linux: futex_exit_release in mm_release).
    crate::syscalls::futex::exit_futexes(&t);
    if t.clear_child_tid != 0 {
        let addr = t.clear_child_tid;
        let _ = t.mm.lock().write_obj(addr, &0u32);
        crate::syscalls::futex::wake_addr(&t, addr, 1);
    }
    release_vfork(&mut t);
    let proc = t.proc.clone();
    let me = t.shared.clone();
    process::unregister_task(me.tid);
    let last = {
        let mut inner = proc.inner.lock();
        inner.threads.retain(|x| !Arc::ptr_eq(x, &me));
        let spent = super::sched::cpu_times(&me);
        proc.cpu_gone.fetch_add(spent.total(), core::sync::atomic::Ordering::Relaxed);
        proc.sys_gone.fetch_add(spent.sys, core::sync::atomic::Ordering::Relaxed);
        let last = inner.threads.is_empty();
        // A group exit (exit_group, fatal signal) already set the status;
        // otherwise the process ends with its last thread's exit.
        if last && inner.exit.is_none() {
            inner.exit = Some(why);
        }
        last
    };
    if last {
        crate::fs::lock::release_owner(crate::fs::lock::Owner::Process(proc.pid));
        super::ipc::exit_process(proc.pid);
        // A zombie keeps no files or memory: /proc must not pin them.
        let mut v = proc.view.lock();
        v.mm = None;
        v.fds = None;
        v.fs = None;
    }
    // Memory, files and the rest go with the last reference; first leave
    // the address space, whose root may be freed with it.
    sched::use_kernel_root();
    drop(t);
    if last {
        process_exit(&proc);
    }
    sched::exit_current()
}

/// Wakes a parent waiting in vfork for this child.
pub fn release_vfork(t: &mut Task) {
    if let Some(parent) = t.vfork_parent.take() {
        t.shared.vfork_released.store(true, Ordering::Release);
        sched::wake(&parent);
    }
}

/// The process's last thread is gone.
fn process_exit(p: &Arc<Process>) {
    let (status, children, ppid, exit_signal, sid) = {
        let mut inner = p.inner.lock();
        let status = inner.exit.unwrap_or(ExitReason::Exited(0));
        let children: Vec<Arc<Process>> = core::mem::take(&mut inner.children);
        (status, children, inner.ppid, inner.exit_signal, inner.sid)
    };
    if sid == p.pid {
        // A session leader's end frees its controlling terminal.
        crate::fs::pty::session_leader_exited(sid);
    }
    // Its timers die with it (Linux: exit_itimers): no signal may reach a zombie.
    p.posix_timers.lock().clear();
    if p.pid == 1 {
        // init is gone: so is the sandbox.
        crate::finish(status);
    }
    if ppid == 0 {
        // Started from outside (OCI exec): the host waits for it, nobody
        // inside reaps it.
        crate::host::process_exited(p.pid, wait_status(status));
    }
    if !children.is_empty() {
        if let Some(init) = process::find_process(1) {
            for c in &children {
                c.inner.lock().ppid = 1;
            }
            init.inner.lock().children.extend(children);
            init.child_events.wake_all();
        }
    }
    p.inner.lock().zombie = true;
    // pidfds of the process poll readable now (SIGCHLD may be ignored,
    // so sending it need not have woken anyone).
    crate::fs::POLL_WQ.wake_all();
    if ppid == 0 {
        process::unregister_process(p.pid);
    }
    if let Some(parent) = process::find_process(ppid) {
        if exit_signal != 0 {
            let (code, st) = match status {
                ExitReason::Exited(c) => (signal::CLD_EXITED, c),
                ExitReason::Signaled(s) => (signal::CLD_KILLED, s as i32),
            };
            let info = signal::SigInfo { code, pid: p.pid, status: st, ..signal::SigInfo::default() };
            signal::send_to_process(&parent, exit_signal, info);
        }
        parent.child_events.wake_all();
    }
}

/// The status word wait4 reports.
pub fn wait_status(e: ExitReason) -> u32 {
    match e {
        ExitReason::Exited(code) => ((code as u32) & 0xff) << 8,
        ExitReason::Signaled(sig) => sig & 0x7f,
    }
}
