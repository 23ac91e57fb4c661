//! Creating tasks: fork, vfork, clone and clone3 (Linux: kernel/fork.c).
//! The clone flags decide what the child shares with its parent.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::sync::atomic::Ordering;
use spin::Mutex;

use super::process::{self, Process};
use super::sched::{self, TaskShared};
use super::task::{FpuArea, Task};
use crate::errno::{Errno, SysResult};

pub const CLONE_VM: u64 = 0x100;
pub const CLONE_FS: u64 = 0x200;
pub const CLONE_FILES: u64 = 0x400;
pub const CLONE_SIGHAND: u64 = 0x800;
pub const CLONE_PIDFD: u64 = 0x1000;
pub const CLONE_PTRACE: u64 = 0x2000;
pub const CLONE_VFORK: u64 = 0x4000;
pub const CLONE_PARENT: u64 = 0x8000;
pub const CLONE_THREAD: u64 = 0x1_0000;
pub const CLONE_NEWNS: u64 = 0x2_0000;
pub const CLONE_SYSVSEM: u64 = 0x4_0000;
pub const CLONE_SETTLS: u64 = 0x8_0000;
pub const CLONE_PARENT_SETTID: u64 = 0x10_0000;
pub const CLONE_CHILD_CLEARTID: u64 = 0x20_0000;
pub const CLONE_DETACHED: u64 = 0x40_0000;
pub const CLONE_UNTRACED: u64 = 0x80_0000;
pub const CLONE_CHILD_SETTID: u64 = 0x100_0000;
pub const CLONE_IO: u64 = 0x8000_0000;
/// Namespace flags: refused for now (the sandbox has one of each).
const CLONE_NS_FLAGS: u64 = 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000 | CLONE_NEWNS | 0x80;

/// What the caller asked for.
pub struct CloneArgs {
    pub flags: u64,
    pub exit_signal: u32,
    pub stack: u64,
    pub parent_tid: u64,
    pub child_tid: u64,
    pub tls: u64,
}

/// Creates a child task; returns its tid to the parent.
pub fn clone(t: &mut Task, a: &CloneArgs) -> SysResult {
    let f = a.flags;
    if f & CLONE_THREAD != 0 && f & CLONE_SIGHAND == 0 || f & CLONE_SIGHAND != 0 && f & CLONE_VM == 0 {
        return Err(Errno::EINVAL);
    }
    if f & CLONE_NS_FLAGS != 0 {
        return Err(Errno::EPERM);
    }
    if f & CLONE_PIDFD != 0 {
        return Err(Errno::EINVAL);
    }
    if a.exit_signal > super::signal::NSIG {
        return Err(Errno::EINVAL);
    }
    // RLIMIT_NPROC: root and tasks with CAP_SYS_RESOURCE or
    // CAP_SYS_ADMIN are exempt (Linux: copy_process).
    const RLIMIT_NPROC: usize = 6;
    let c = &t.creds;
    let nproc = t.rlimits[RLIMIT_NPROC].0;
    if nproc != u64::MAX
        && c.uid != 0
        && !c.capable(super::creds::CAP_SYS_RESOURCE)
        && !c.capable(super::creds::CAP_SYS_ADMIN)
        && process::tasks_of_user(c.uid) as u64 >= nproc
    {
        return Err(Errno::EAGAIN);
    }
    let max = process::PIDS_MAX.load(core::sync::atomic::Ordering::Relaxed);
    if max != 0 && process::task_count() >= max as usize {
        // What the pids controller answers when the limit is reached.
        super::cgroup::note_pids_refused();
        return Err(Errno::EAGAIN);
    }
    let tid = process::alloc_id();
    let mm = if f & CLONE_VM != 0 { t.mm.clone() } else { Arc::new(Mutex::new(t.mm.lock().fork()?)) };
    let fds = if f & CLONE_FILES != 0 { t.fds.clone() } else { Arc::new(Mutex::new(t.fds.lock().clone())) };
    let fs = if f & CLONE_FS != 0 { t.fs.clone() } else { Arc::new(Mutex::new(t.fs.lock().clone())) };
    let proc = if f & CLONE_THREAD != 0 {
        t.proc.clone()
    } else {
        let (pgid, sid, ppid) = {
            let i = t.proc.inner.lock();
            (i.pgid, i.sid, if f & CLONE_PARENT != 0 { i.ppid } else { t.proc.pid })
        };
        let handlers = *t.proc.sighand.lock();
        let p = Process::new(tid, ppid, pgid, sid, a.exit_signal, handlers);
        let parent = if f & CLONE_PARENT != 0 { process::find_process(ppid) } else { Some(t.proc.clone()) };
        if let Some(parent) = parent {
            parent.inner.lock().children.push(p.clone());
        }
        p
    };
    let cr3 = mm.lock().page_table().root();
    let shared = TaskShared::new(tid, cr3, t.shared.sigmask.load(Ordering::Relaxed));
    shared.tgid.store(proc.pid, Ordering::Relaxed);
    let mut regs = t.regs;
    regs.rax = 0;
    if a.stack != 0 {
        regs.rsp = a.stack;
    }
    regs.rcx = regs.rip;
    regs.r11 = regs.rflags;
    let child = Box::new(Task {
        regs,
        fpu: FpuArea::clone_from_area(&t.fpu),
        fs_base: if f & CLONE_SETTLS != 0 { a.tls } else { t.fs_base },
        tid,
        shared: shared.clone(),
        proc: proc.clone(),
        mm: mm.clone(),
        fds,
        fs,
        altstack: if f & CLONE_VM != 0 && f & CLONE_VFORK == 0 { super::signal::ALTSTACK_DISABLED } else { t.altstack },
        restart: false,
        restart_nohand: false,
        restart_nointr: false,
        handler_running: false,
        keep_regs: false,
        saved_mask: None,
        creds: t.creds.clone(),
        clear_child_tid: if f & CLONE_CHILD_CLEARTID != 0 { a.child_tid } else { 0 },
        robust_list: (0, 0),
        exit: None,
        comm: t.comm,
        pdeathsig: 0,
        dumpable: t.dumpable,
        no_new_privs: t.no_new_privs,
        seccomp: t.seccomp.clone(),
        subreaper: false,
        rlimits: t.rlimits,
        exe: t.exe.clone(),
        vfork_parent: if f & CLONE_VFORK != 0 { Some(t.shared.clone()) } else { None },
    });
    if f & CLONE_PARENT_SETTID != 0 {
        t.mm.lock().write_obj(a.parent_tid, &tid)?;
    }
    if f & CLONE_CHILD_SETTID != 0 {
        mm.lock().write_obj(a.child_tid, &tid)?;
    }
    process::register_task(&shared);
    proc.inner.lock().threads.push(shared.clone());
    if f & CLONE_THREAD == 0 {
        let parent_view = t.proc.view.lock();
        let (cmdline, environ) = (parent_view.cmdline.clone(), parent_view.environ.clone());
        drop(parent_view);
        proc.update_view(&child, None, None);
        let mut v = proc.view.lock();
        v.cmdline = cmdline;
        v.environ = environ;
    }
    super::spawn_task(child);
    if f & CLONE_VFORK != 0 {
        // The parent sleeps (uninterruptibly, as Linux's killable wait)
        // until the child execs or exits: they share the stack until then.
        while !shared.vfork_released.load(Ordering::Acquire) && !t.shared.killed.load(Ordering::Relaxed) {
            t.shared.state.store(sched::BLOCKED, Ordering::Release);
            if shared.vfork_released.load(Ordering::Acquire) {
                t.shared.state.store(sched::RUNNABLE, Ordering::Release);
                break;
            }
            sched::schedule();
        }
    }
    Ok(u64::from(tid))
}
