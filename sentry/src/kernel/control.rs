//! Requests from the host about the running sandbox (OCI `start`, `kill`,
//! `exec`, `ps`), read from the control block (`abi::control`). They are
//! taken at safe points only — the idle loop and the preemption
//! trampoline — where no sentry lock is held.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use spin::Mutex;

use abi::control::{ControlHeader, Kind, CONTROL_DATA_MAX};
use alloc::sync::Arc;

use super::sched::TaskShared;

use super::spawn::{self, ProcSpec};
use super::task::Task;

/// The init program, loaded and waiting for `Start`: its scheduler
/// record and the task as `task_entry` takes it (a leaked box).
static PENDING_INIT: Mutex<Option<(Arc<TaskShared>, u64)>> = Mutex::new(None);

/// Parks the loaded init program until the host says `start`.
pub fn hold_init(t: Box<Task>) {
    let shared = t.shared.clone();
    *PENDING_INIT.lock() = Some((shared, Box::into_raw(t) as u64));
}

fn block() -> *mut ControlHeader {
    crate::mm::phys::pa_to_va(abi::layout::CONTROL_GPA) as *mut ControlHeader
}

fn flag() -> Option<*mut u64> {
    let p = super::preempt::global_block()?;
    // SAFETY: `p` points at vCPU 0's Preempt block (direct map).
    Some(unsafe { core::ptr::addr_of_mut!((*p).control) })
}

/// Whether a request waits (cheap: one memory read).
pub fn pending() -> bool {
    // SAFETY: the flag lives in the mailbox page, written by the VMM.
    flag().is_some_and(|f| unsafe { f.read_volatile() } != 0)
}

/// Serves a waiting request, if any.
pub fn poll() {
    let Some(f) = flag() else { return };
    // SAFETY: as in `pending`.
    if unsafe { f.read_volatile() } == 0 {
        return;
    }
    // SAFETY: as above; clearing before reading the block means a request
    // posted after this point raises the flag again.
    unsafe { f.write_volatile(0) };
    core::sync::atomic::fence(Ordering::SeqCst);
    // SAFETY: the control block is reserved guest memory (layout), mapped
    // by the direct map; the VMM does not touch it while a request is open.
    let hdr = unsafe { block().read_volatile() };
    if hdr.seq == hdr.done {
        return;
    }
    let data_len = hdr.data_len.min(CONTROL_DATA_MAX) as usize;
    // SAFETY: as above; `data_len` is bounded by the block's size.
    let data = unsafe { core::slice::from_raw_parts((block() as *const u8).add(core::mem::size_of::<ControlHeader>()), data_len) }.to_vec();
    let (ret, answer) = match Kind::from_u64(hdr.kind) {
        Some(Kind::Start) => start(),
        Some(Kind::Signal) => signal(&hdr.args),
        Some(Kind::Exec) => exec(&hdr.args, &data),
        Some(Kind::Ps) => (0, ps()),
        Some(Kind::ProcSnapshot) => (0, crate::fs::proc::snapshot()),
        Some(Kind::SetLimits) => {
            if hdr.args[1] & 1 != 0 {
                let n = u32::try_from(hdr.args[0]).unwrap_or(u32::MAX);
                super::process::PIDS_MAX.store(n, Ordering::Relaxed);
            }
            // The other limits: `cg.KEY=VALUE` lines.
            let lines: Vec<alloc::string::String> =
                core::str::from_utf8(&data).unwrap_or("").lines().map(alloc::string::String::from).collect();
            super::cgroup::apply(&lines);
            (0, Vec::new())
        }
        None => (-i64::from(crate::errno::Errno::EINVAL.0), Vec::new()),
    };
    let n = answer.len().min(CONTROL_DATA_MAX as usize);
    // SAFETY: as above; at most CONTROL_DATA_MAX bytes after the header.
    unsafe {
        core::ptr::copy_nonoverlapping(answer.as_ptr(), (block() as *mut u8).add(core::mem::size_of::<ControlHeader>()), n);
        let mut h = hdr;
        h.ret = ret;
        h.data_len = n as u64;
        h.done = hdr.seq;
        block().write_volatile(h);
    }
    crate::host::control_done(hdr.seq);
}

fn start() -> (i64, Vec<u8>) {
    match PENDING_INIT.lock().take() {
        Some((shared, task)) => {
            super::sched::spawn(&shared, super::task_entry, task);
            (0, Vec::new())
        }
        None => (-i64::from(crate::errno::Errno::EBUSY.0), b"already started".to_vec()),
    }
}

fn signal(args: &[u64; 8]) -> (i64, Vec<u8>) {
    use super::signal::{send_to_process, SigInfo, NSIG};
    let sig = args[0] as u32;
    if sig == 0 || sig > NSIG {
        return (-i64::from(crate::errno::Errno::EINVAL.0), Vec::new());
    }
    let pid = if args[1] == 0 { 1 } else { args[1] as u32 };
    // SI_USER from "the kernel": pid 0, uid 0, like a signal from outside.
    let info = SigInfo::from_sender(0, 0, 0);
    if args[2] == 2 {
        // From the console (^C, ^Z, window size, hangup): to its
        // foreground process group.
        // The terminal that is `pid`'s stdin (init's when 0).
        let owner = super::process::find_process(pid);
        let console = owner
            .as_ref()
            .and_then(|p| p.view.lock().fds.clone())
            .and_then(|fds| fds.lock().get(0).ok().and_then(|f| crate::fs::devpts::number_of(&f.path())));
        let own_group = owner.as_ref().map_or(pid, |p| p.inner.lock().pgid);
        let fg = console.and_then(crate::fs::devpts::foreground_of).unwrap_or(own_group);
        // `rvisor do`'s program is a job of the host's shell: ^Z while it
        // is in the foreground stops the whole sandbox, as the program
        // would stop natively (here its group is orphaned: nothing would).
        if args[3] == 1 && fg == own_group && owner.as_ref().is_some_and(|p| super::signal::stops_by_default(p, sig)) {
            return (1, Vec::new());
        }
        for p in super::process::all_processes() {
            let i = p.inner.lock();
            let hit = i.pgid == fg && !i.zombie;
            drop(i);
            if hit {
                send_to_process(&p, sig, info);
            }
        }
        return (0, Vec::new());
    }
    if args[2] == 1 {
        for p in super::process::all_processes() {
            if !p.inner.lock().zombie {
                send_to_process(&p, sig, info);
            }
        }
        return (0, Vec::new());
    }
    match super::process::find_process(pid) {
        Some(p) => {
            send_to_process(&p, sig, info);
            (0, Vec::new())
        }
        None => (-i64::from(crate::errno::Errno::ESRCH.0), Vec::new()),
    }
}

/// Splits NUL-terminated strings off the front of `data`.
fn take_strings(data: &[u8], n: usize) -> Option<(Vec<String>, &[u8])> {
    let mut out = Vec::with_capacity(n.min(4096));
    let mut rest = data;
    for _ in 0..n {
        let end = rest.iter().position(|&b| b == 0)?;
        out.push(String::from_utf8_lossy(&rest[..end]).into_owned());
        rest = &rest[end + 1..];
    }
    Some((out, rest))
}

fn exec(args: &[u64; 8], data: &[u8]) -> (i64, Vec<u8>) {
    let bad = || (-i64::from(crate::errno::Errno::EINVAL.0), b"malformed exec request".to_vec());
    let (argc, envc, ngroups) = (args[0] as usize, args[1] as usize, args[7] as usize);
    if argc == 0 || argc > 1 << 16 || envc > 1 << 16 || ngroups > 65536 {
        return bad();
    }
    let Some((mut strings, rest)) = take_strings(data, 1 + argc + envc) else { return bad() };
    if rest.len() < ngroups * 4 {
        return bad();
    }
    let groups = rest[..ngroups * 4].chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    // Then the process's settings (capabilities, rlimits, no_new_privs),
    // NUL-terminated, to the end.
    let settings: Vec<String> =
        rest[ngroups * 4..].split(|&b| b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
    let envp = strings.split_off(1 + argc);
    let argv = strings.split_off(1);
    let cwd = strings.pop().unwrap_or_default();
    let spec = ProcSpec {
        exe: argv[0].clone(),
        argv,
        envp,
        cwd,
        uid: args[2] as u32,
        gid: args[3] as u32,
        groups,
        umask: 0o022,
        stdio: [args[4], args[5], args[6]],
        settings: super::spawn::Settings::parse(&settings),
    };
    match spawn::create(&spec) {
        Ok(t) => {
            let pid = t.pid();
            super::spawn_task(t);
            (i64::from(pid), Vec::new())
        }
        Err(e) => {
            for h in spec.stdio {
                crate::host::close(h);
            }
            (-i64::from(e.status), e.msg.into_bytes())
        }
    }
}

fn ps() -> Vec<u8> {
    let mut out = String::new();
    let mut procs = super::process::all_processes();
    procs.sort_by_key(|p| p.pid);
    for p in procs {
        let (ppid, zombie) = {
            let i = p.inner.lock();
            (i.ppid, i.zombie)
        };
        let v = p.view.lock();
        let comm_len = v.comm.iter().position(|&c| c == 0).unwrap_or(v.comm.len());
        let comm = String::from_utf8_lossy(&v.comm[..comm_len]).into_owned();
        let args: Vec<String> =
            v.cmdline.split(|&b| b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
        out.push_str(&format!("{} {} {} {} {}\t{}\n", p.pid, ppid, v.creds.uid, if zombie { 'Z' } else { 'S' }, comm, args.join(" ")));
    }
    out.into_bytes()
}
