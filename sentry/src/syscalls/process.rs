//! Process identity and lifetime: exit, ids, TLS and robust lists, rlimits,
//! CPU affinity. One process with one thread until the process issue.

use super::Args;
use crate::errno::{Errno, SysResult};
use crate::kernel::creds::{Creds, CAP_KILL, CAP_SETGID, CAP_SETPCAP, CAP_SYS_RESOURCE, NGROUPS_MAX};
use crate::kernel::task::{ExitReason, Task};

pub const RLIM_INFINITY: u64 = u64::MAX;
const RLIMIT_NOFILE: usize = 7;
const RLIMIT_NLIMITS: usize = 16;

/// Linux's default limits for a process started by a shell (as runc's
/// containers see them, with Docker's nofile default).
pub fn default_rlimits() -> [(u64, u64); 16] {
    let inf = (RLIM_INFINITY, RLIM_INFINITY);
    [
        inf,                                        // CPU
        inf,                                        // FSIZE
        inf,                                        // DATA
        (8 << 20, RLIM_INFINITY),                   // STACK
        (0, RLIM_INFINITY),                         // CORE
        inf,                                        // RSS
        (63_704, 63_704),                           // NPROC
        (crate::fs::NOFILE as u64, crate::fs::NOFILE_MAX as u64), // NOFILE
        (8 << 20, 8 << 20),                         // MEMLOCK
        inf,                                        // AS
        inf,                                        // LOCKS
        (63_704, 63_704),                           // SIGPENDING
        (819_200, 819_200),                         // MSGQUEUE
        (0, 0),                                     // NICE
        (0, 0),                                     // RTPRIO
        inf,                                        // RTTIME
    ]
}

pub fn sys_exit_group(t: &mut Task, a: &Args) -> SysResult {
    let why = ExitReason::Exited(a.i32(0) & 0xff);
    crate::kernel::signal::kill_group(&t.proc, why);
    t.exit = Some(t.proc.inner.lock().exit.unwrap_or(why));
    Ok(0)
}

pub fn sys_exit(t: &mut Task, a: &Args) -> SysResult {
    // Only this thread; the process ends with its last thread.
    t.exit = Some(ExitReason::Exited(a.i32(0) & 0xff));
    Ok(0)
}

pub fn sys_getpid(t: &mut Task, _a: &Args) -> SysResult {
    Ok(u64::from(t.pid()))
}

pub fn sys_gettid(t: &mut Task, _a: &Args) -> SysResult {
    Ok(u64::from(t.tid))
}

pub fn sys_getppid(t: &mut Task, _a: &Args) -> SysResult {
    Ok(u64::from(t.proc.inner.lock().ppid))
}

pub fn sys_getuid(t: &mut Task, _a: &Args) -> SysResult {
    Ok(u64::from(t.creds.uid))
}

pub fn sys_geteuid(t: &mut Task, _a: &Args) -> SysResult {
    Ok(u64::from(t.creds.euid))
}

pub fn sys_getgid(t: &mut Task, _a: &Args) -> SysResult {
    Ok(u64::from(t.creds.gid))
}

pub fn sys_getegid(t: &mut Task, _a: &Args) -> SysResult {
    Ok(u64::from(t.creds.egid))
}

/// Installs new credentials for the calling thread. /proc/PID shows the
/// thread group leader's, so its view follows the leader.
fn commit_creds(t: &mut Task, new: Creds) {
    t.creds = Arc::new(new);
    if t.tid == t.pid() {
        t.proc.view.lock().creds = t.creds.clone();
    }
}

fn change_creds(t: &mut Task, new: Result<Creds, Errno>) -> SysResult {
    commit_creds(t, new?);
    Ok(0)
}

pub fn sys_setuid(t: &mut Task, a: &Args) -> SysResult {
    let new = t.creds.set_uid(a.u32(0));
    change_creds(t, new)
}

pub fn sys_setgid(t: &mut Task, a: &Args) -> SysResult {
    let new = t.creds.set_gid(a.u32(0));
    change_creds(t, new)
}

pub fn sys_setreuid(t: &mut Task, a: &Args) -> SysResult {
    let new = t.creds.set_reuid(a.u32(0), a.u32(1));
    change_creds(t, new)
}

pub fn sys_setregid(t: &mut Task, a: &Args) -> SysResult {
    let new = t.creds.set_regid(a.u32(0), a.u32(1));
    change_creds(t, new)
}

pub fn sys_setresuid(t: &mut Task, a: &Args) -> SysResult {
    let new = t.creds.set_resuid(a.u32(0), a.u32(1), a.u32(2));
    change_creds(t, new)
}

pub fn sys_setresgid(t: &mut Task, a: &Args) -> SysResult {
    let new = t.creds.set_resgid(a.u32(0), a.u32(1), a.u32(2));
    change_creds(t, new)
}

/// Writes three ids to user memory (getresuid/getresgid).
fn put_ids(t: &mut Task, a: &Args, ids: [u32; 3]) -> SysResult {
    let mut mm = t.mm.lock();
    for (i, id) in ids.iter().enumerate() {
        mm.write_obj(a.u64(i), id)?;
    }
    Ok(0)
}

pub fn sys_getresuid(t: &mut Task, a: &Args) -> SysResult {
    let c = t.creds.clone();
    put_ids(t, a, [c.uid, c.euid, c.suid])
}

pub fn sys_getresgid(t: &mut Task, a: &Args) -> SysResult {
    let c = t.creds.clone();
    put_ids(t, a, [c.gid, c.egid, c.sgid])
}

/// setfsuid/setfsgid return the previous id whether or not they changed it.
pub fn sys_setfsuid(t: &mut Task, a: &Args) -> SysResult {
    let old = t.creds.fsuid;
    if let Some(new) = t.creds.set_fsuid(a.u32(0)) {
        commit_creds(t, new);
    }
    Ok(u64::from(old))
}

pub fn sys_setfsgid(t: &mut Task, a: &Args) -> SysResult {
    let old = t.creds.fsgid;
    if let Some(new) = t.creds.set_fsgid(a.u32(0)) {
        commit_creds(t, new);
    }
    Ok(u64::from(old))
}

pub fn sys_getgroups(t: &mut Task, a: &Args) -> SysResult {
    let size = usize::try_from(a.i32(0)).map_err(|_| Errno::EINVAL)?;
    let groups = t.creds.groups.clone();
    if size == 0 {
        return Ok(groups.len() as u64);
    }
    if size < groups.len() {
        return Err(Errno::EINVAL);
    }
    let bytes: Vec<u8> = groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    t.mm.lock().copy_out(a.u64(1), &bytes)?;
    Ok(groups.len() as u64)
}

pub fn sys_setgroups(t: &mut Task, a: &Args) -> SysResult {
    // Linux checks the privilege before the size.
    if !t.creds.capable(CAP_SETGID) {
        return Err(Errno::EPERM);
    }
    let size = usize::try_from(a.i32(0)).map_err(|_| Errno::EINVAL)?;
    if size > NGROUPS_MAX {
        return Err(Errno::EINVAL);
    }
    let mut bytes = alloc::vec![0u8; size * 4];
    t.mm.lock().copy_in(a.u64(1), &mut bytes)?;
    let groups = bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let new = t.creds.set_groups(groups);
    change_creds(t, new)
}

/// The capability ABI versions and how many 32-bit words each carries
/// per set (Linux: cap_validate_magic); an unknown version is answered
/// with the current one written back and EINVAL.
fn cap_words(t: &Task, hdr: u64) -> Result<usize, Errno> {
    const V1: u32 = 0x1998_0330;
    const V2: u32 = 0x2007_1026;
    const V3: u32 = 0x2008_0522;
    let version = t.mm.lock().read_obj::<u32>(hdr)?;
    match version {
        V1 => Ok(1),
        V2 | V3 => Ok(2),
        _ => {
            t.mm.lock().write_obj(hdr, &V3)?;
            Err(Errno::EINVAL)
        }
    }
}

pub fn sys_capget(t: &mut Task, a: &Args) -> SysResult {
    let words = cap_words(t, a.u64(0))?;
    let pid = t.mm.lock().read_obj::<i32>(a.u64(0) + 4)?;
    if a.u64(1) == 0 {
        // A probe of the supported version.
        return Ok(0);
    }
    let creds = match pid {
        p if p < 0 => return Err(Errno::EINVAL),
        0 => t.creds.clone(),
        p if p as u32 == t.tid => t.creds.clone(),
        p => crate::kernel::process::find_process(p as u32).ok_or(Errno::ESRCH)?.view.lock().creds.clone(),
    };
    let mut data = [0u32; 6];
    for w in 0..words {
        let part = |set: u64| (set >> (32 * w)) as u32;
        data[w * 3..w * 3 + 3].copy_from_slice(&[part(creds.cap_effective), part(creds.cap_permitted), part(creds.cap_inheritable)]);
    }
    let bytes: alloc::vec::Vec<u8> = data[..words * 3].iter().flat_map(|x| x.to_le_bytes()).collect();
    t.mm.lock().copy_out(a.u64(1), &bytes)?;
    Ok(0)
}

pub fn sys_capset(t: &mut Task, a: &Args) -> SysResult {
    let words = cap_words(t, a.u64(0))?;
    let pid = t.mm.lock().read_obj::<i32>(a.u64(0) + 4)?;
    // Only one's own capabilities may be set.
    if pid != 0 && pid as u32 != t.tid {
        return Err(Errno::EPERM);
    }
    let mut bytes = [0u8; 24];
    t.mm.lock().copy_in(a.u64(1), &mut bytes[..words * 12])?;
    let word = |i: usize| u64::from(u32::from_le_bytes([bytes[i * 4], bytes[i * 4 + 1], bytes[i * 4 + 2], bytes[i * 4 + 3]]));
    let set = |k: usize| word(k) | word(3 + k) << 32;
    let new = t.creds.set_caps(set(0), set(1), set(2));
    change_creds(t, new)
}

pub fn sys_getpgrp(t: &mut Task, _a: &Args) -> SysResult {
    Ok(u64::from(t.proc.inner.lock().pgid))
}

fn target_process(t: &Task, pid: i32) -> Result<alloc::sync::Arc<crate::kernel::process::Process>, Errno> {
    match pid {
        0 => Ok(t.proc.clone()),
        p if p > 0 => crate::kernel::process::find_process(p as u32).ok_or(Errno::ESRCH),
        _ => Err(Errno::ESRCH),
    }
}

pub fn sys_getpgid(t: &mut Task, a: &Args) -> SysResult {
    let p = target_process(t, a.i32(0))?;
    let pgid = p.inner.lock().pgid;
    Ok(u64::from(pgid))
}

pub fn sys_getsid(t: &mut Task, a: &Args) -> SysResult {
    let p = target_process(t, a.i32(0))?;
    let sid = p.inner.lock().sid;
    Ok(u64::from(sid))
}

pub fn sys_setpgid(t: &mut Task, a: &Args) -> SysResult {
    let (pid, pgid) = (a.i32(0), a.i32(1));
    if pgid < 0 {
        return Err(Errno::EINVAL);
    }
    let p = target_process(t, pid)?;
    // Only the caller or one of its children.
    if p.pid != t.pid() && p.inner.lock().ppid != t.pid() {
        return Err(Errno::ESRCH);
    }
    let my_sid = t.proc.inner.lock().sid;
    let mut inner = p.inner.lock();
    // A session leader may not change groups; nor may another session's process.
    if inner.sid == p.pid || inner.sid != my_sid {
        return Err(Errno::EPERM);
    }
    inner.pgid = if pgid == 0 { p.pid } else { pgid as u32 };
    Ok(0)
}

pub fn sys_setsid(t: &mut Task, _a: &Args) -> SysResult {
    let pid = t.pid();
    let leader = crate::kernel::process::all_processes().iter().any(|p| p.pid != pid && p.inner.lock().pgid == pid);
    let mut inner = t.proc.inner.lock();
    if inner.pgid == pid || leader {
        return Err(Errno::EPERM);
    }
    inner.sid = pid;
    inner.pgid = pid;
    Ok(u64::from(pid))
}

pub fn sys_set_tid_address(t: &mut Task, a: &Args) -> SysResult {
    t.clear_child_tid = a.u64(0);
    Ok(u64::from(t.tid))
}

pub fn sys_set_robust_list(t: &mut Task, a: &Args) -> SysResult {
    if a.u64(1) != 24 {
        return Err(Errno::EINVAL);
    }
    t.robust_list = (a.u64(0), a.u64(1));
    Ok(0)
}

pub fn sys_get_robust_list(t: &mut Task, a: &Args) -> SysResult {
    let pid = a.i32(0);
    if pid != 0 && pid != t.tid as i32 {
        return Err(Errno::ESRCH);
    }
    t.mm.lock().write_obj(a.u64(1), &t.robust_list.0)?;
    t.mm.lock().write_obj(a.u64(2), &t.robust_list.1)?;
    Ok(0)
}

pub fn sys_arch_prctl(t: &mut Task, a: &Args) -> SysResult {
    const ARCH_SET_GS: u32 = 0x1001;
    const ARCH_SET_FS: u32 = 0x1002;
    const ARCH_GET_FS: u32 = 0x1003;
    const ARCH_GET_GS: u32 = 0x1004;
    const ARCH_GET_CPUID: u32 = 0x1011;
    match a.u32(0) {
        ARCH_SET_FS => {
            if a.u64(1) >= abi::layout::USER_END {
                return Err(Errno::EPERM);
            }
            t.fs_base = a.u64(1);
            Ok(0)
        }
        ARCH_GET_FS => t.mm.lock().write_obj(a.u64(1), &t.fs_base).map(|()| 0),
        ARCH_GET_GS => t.mm.lock().write_obj(a.u64(1), &0u64).map(|()| 0),
        // The GS base is the sentry's per-CPU pointer on hardware
        // virtualization; applications (glibc, musl, Go) use FS.
        ARCH_SET_GS => Err(Errno::EINVAL),
        ARCH_GET_CPUID => Ok(1),
        _ => Err(Errno::EINVAL),
    }
}

fn rlimit_common(t: &mut Task, resource: u32, new: Option<(u64, u64)>, old_va: u64) -> SysResult {
    let r = resource as usize;
    if r >= RLIMIT_NLIMITS {
        return Err(Errno::EINVAL);
    }
    let old = t.rlimits[r];
    if let Some((cur, max)) = new {
        if cur > max {
            return Err(Errno::EINVAL);
        }
        // Raising the hard limit needs CAP_SYS_RESOURCE; the sandbox's
        // root has it, other users do not.
        if max > old.1 && !t.creds.capable(CAP_SYS_RESOURCE) {
            return Err(Errno::EPERM);
        }
        if r == RLIMIT_NOFILE {
            if max > crate::fs::NOFILE_MAX as u64 {
                return Err(Errno::EPERM);
            }
            t.fds.lock().set_limit(cur as usize);
        }
        t.rlimits[r] = (cur, max);
    }
    if old_va != 0 {
        t.mm.lock().write_obj(old_va, &old.0)?;
        t.mm.lock().write_obj(old_va + 8, &old.1)?;
    }
    Ok(0)
}

pub fn sys_prlimit64(t: &mut Task, a: &Args) -> SysResult {
    let pid = a.i32(0);
    if pid != 0 && pid != t.pid() as i32 {
        return Err(Errno::ESRCH);
    }
    let new = if a.u64(2) != 0 {
        let [cur, max] = t.mm.lock().read_obj::<[u64; 2]>(a.u64(2))?;
        Some((cur, max))
    } else {
        None
    };
    rlimit_common(t, a.u32(1), new, a.u64(3))
}

pub fn sys_getrlimit(t: &mut Task, a: &Args) -> SysResult {
    if a.u64(1) == 0 {
        return Err(Errno::EFAULT);
    }
    rlimit_common(t, a.u32(0), None, a.u64(1))
}

pub fn sys_setrlimit(t: &mut Task, a: &Args) -> SysResult {
    let [cur, max] = t.mm.lock().read_obj::<[u64; 2]>(a.u64(1))?;
    let new = (cur, max);
    rlimit_common(t, a.u32(0), Some(new), 0)
}

pub fn sys_sched_getaffinity(t: &mut Task, a: &Args) -> SysResult {
    let pid = a.i32(0);
    if pid != 0 && pid != t.tid as i32 {
        return Err(Errno::ESRCH);
    }
    let len = a.usize(1);
    if len < 8 || len % 8 != 0 {
        return Err(Errno::EINVAL);
    }
    let n = crate::kernel::get().num_cpus.min(64);
    let mask: u64 = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
    t.mm.lock().write_obj(a.u64(2), &mask)?;
    Ok(8)
}

pub fn sys_sched_yield(_t: &mut Task, _a: &Args) -> SysResult {
    crate::kernel::sched::yield_now();
    Ok(0)
}

/// getcpu(cpu, node, cache): the vCPU the caller runs on, NUMA node 0.
pub fn sys_getcpu(t: &mut Task, a: &Args) -> SysResult {
    let cpu = crate::arch::percpu::cpu() as u32;
    let mut mm = t.mm.lock();
    if a.u64(0) != 0 {
        mm.write_obj(a.u64(0), &cpu)?;
    }
    if a.u64(1) != 0 {
        mm.write_obj(a.u64(1), &0u32)?;
    }
    Ok(0)
}

pub fn sys_rseq(_t: &mut Task, _a: &Args) -> SysResult {
    // glibc treats ENOSYS as "no rseq" and carries on.
    Err(Errno::ENOSYS)
}

pub fn sys_prctl(t: &mut Task, a: &Args) -> SysResult {
    const PR_SET_PDEATHSIG: u32 = 1;
    const PR_GET_PDEATHSIG: u32 = 2;
    const PR_GET_DUMPABLE: u32 = 3;
    const PR_SET_DUMPABLE: u32 = 4;
    const PR_SET_NAME: u32 = 15;
    const PR_GET_NAME: u32 = 16;
    const PR_GET_KEEPCAPS: u32 = 7;
    const PR_SET_KEEPCAPS: u32 = 8;
    const PR_GET_SECCOMP: u32 = 21;
    const PR_SET_SECCOMP: u32 = 22;
    const PR_CAPBSET_READ: u32 = 23;
    const PR_CAPBSET_DROP: u32 = 24;
    const PR_CAP_AMBIENT: u32 = 47;
    const PR_SET_CHILD_SUBREAPER: u32 = 36;
    const PR_GET_CHILD_SUBREAPER: u32 = 37;
    const PR_SET_NO_NEW_PRIVS: u32 = 38;
    const PR_GET_NO_NEW_PRIVS: u32 = 39;
    const CAP_LAST_CAP: u64 = 40;
    match a.u32(0) {
        PR_SET_PDEATHSIG => {
            if a.u64(1) > 64 {
                return Err(Errno::EINVAL);
            }
            t.pdeathsig = a.u32(1);
            Ok(0)
        }
        PR_GET_PDEATHSIG => t.mm.lock().write_obj(a.u64(1), &(t.pdeathsig as i32)).map(|()| 0),
        PR_GET_DUMPABLE => Ok(u64::from(t.dumpable)),
        PR_SET_DUMPABLE => match a.u64(1) {
            0 | 1 => {
                t.dumpable = a.u64(1) == 1;
                Ok(0)
            }
            _ => Err(Errno::EINVAL),
        },
        PR_SET_NAME => {
            let mut name = [0u8; 16];
            t.mm.lock().copy_in(a.u64(1), &mut name)
                .or_else(|_| {
                    // The name may end right before an unmapped page.
                    let s = t.mm.lock().read_cstr(a.u64(1), 4096)?;
                    let n = s.len().min(15);
                    name[..n].copy_from_slice(&s.as_bytes()[..n]);
                    Ok::<(), Errno>(())
                })?;
            let end = name.iter().position(|&b| b == 0).unwrap_or(15).min(15);
            name[end..].fill(0);
            t.comm = name;
            t.proc.view.lock().comm = name;
            Ok(0)
        }
        PR_GET_NAME => t.mm.lock().copy_out(a.u64(1), &t.comm).map(|()| 0),
        PR_GET_KEEPCAPS => Ok(u64::from(t.creds.keep_caps)),
        PR_SET_KEEPCAPS => {
            if a.u64(1) > 1 {
                return Err(Errno::EINVAL);
            }
            let mut n = (*t.creds).clone();
            n.keep_caps = a.u64(1) == 1;
            commit_creds(t, n);
            Ok(0)
        }
        PR_GET_SECCOMP => Ok(u64::from(t.seccomp.mode())),
        PR_SET_SECCOMP => match a.u64(1) {
            // The mode numbers, mapped to seccomp(2)'s operations.
            1 => crate::kernel::seccomp::set_mode(t, 0, 0, 0),
            2 => crate::kernel::seccomp::set_mode(t, 1, 0, a.u64(2)),
            _ => Err(Errno::EINVAL),
        },
        PR_CAPBSET_READ => {
            if a.u64(1) > CAP_LAST_CAP {
                return Err(Errno::EINVAL);
            }
            Ok(t.creds.cap_bounding >> a.u64(1) & 1)
        }
        PR_CAPBSET_DROP => {
            if !t.creds.capable(CAP_SETPCAP) {
                return Err(Errno::EPERM);
            }
            if a.u64(1) > CAP_LAST_CAP {
                return Err(Errno::EINVAL);
            }
            let mut n = (*t.creds).clone();
            n.cap_bounding &= !(1 << a.u64(1));
            commit_creds(t, n);
            Ok(0)
        }
        PR_CAP_AMBIENT => {
            const IS_SET: u64 = 1;
            const RAISE: u64 = 2;
            const LOWER: u64 = 3;
            const CLEAR_ALL: u64 = 4;
            if a.u64(1) == CLEAR_ALL {
                if a.u64(2) != 0 || a.u64(3) != 0 || a.u64(4) != 0 {
                    return Err(Errno::EINVAL);
                }
                let mut n = (*t.creds).clone();
                n.cap_ambient = 0;
                commit_creds(t, n);
                return Ok(0);
            }
            if a.u64(2) > CAP_LAST_CAP || a.u64(3) != 0 || a.u64(4) != 0 {
                return Err(Errno::EINVAL);
            }
            let bit = 1u64 << a.u64(2);
            let mut n = (*t.creds).clone();
            match a.u64(1) {
                IS_SET => return Ok(u64::from(n.cap_ambient & bit != 0)),
                RAISE => {
                    if n.cap_permitted & n.cap_inheritable & bit == 0 {
                        return Err(Errno::EPERM);
                    }
                    n.cap_ambient |= bit;
                }
                LOWER => n.cap_ambient &= !bit,
                _ => return Err(Errno::EINVAL),
            }
            commit_creds(t, n);
            Ok(0)
        }
        PR_SET_CHILD_SUBREAPER => {
            t.subreaper = a.u64(1) != 0;
            Ok(0)
        }
        PR_GET_CHILD_SUBREAPER => t.mm.lock().write_obj(a.u64(1), &i32::from(t.subreaper)).map(|()| 0),
        PR_SET_NO_NEW_PRIVS => {
            if a.u64(1) != 1 || a.u64(2) != 0 || a.u64(3) != 0 || a.u64(4) != 0 {
                return Err(Errno::EINVAL);
            }
            t.no_new_privs = true;
            if t.tid == t.pid() {
                t.proc.view.lock().no_new_privs = true;
            }
            Ok(0)
        }
        PR_GET_NO_NEW_PRIVS => Ok(u64::from(t.no_new_privs)),
        _ => Err(Errno::EINVAL),
    }
}

use crate::kernel::fork::{self, CloneArgs};
use crate::kernel::process::{self, Process};
use crate::kernel::signal;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

pub fn sys_clone(t: &mut Task, a: &Args) -> SysResult {
    // x86-64 argument order: flags, stack, parent_tid, child_tid, tls.
    let flags = a.u64(0);
    fork::clone(t, &CloneArgs { flags: flags & !0xff, exit_signal: (flags & 0xff) as u32, stack: a.u64(1), parent_tid: a.u64(2), child_tid: a.u64(3), tls: a.u64(4) })
}

pub fn sys_fork(t: &mut Task, _a: &Args) -> SysResult {
    fork::clone(t, &CloneArgs { flags: 0, exit_signal: signal::SIGCHLD, stack: 0, parent_tid: 0, child_tid: 0, tls: 0 })
}

pub fn sys_vfork(t: &mut Task, _a: &Args) -> SysResult {
    fork::clone(t, &CloneArgs { flags: fork::CLONE_VM | fork::CLONE_VFORK, exit_signal: signal::SIGCHLD, stack: 0, parent_tid: 0, child_tid: 0, tls: 0 })
}

pub fn sys_clone3(t: &mut Task, a: &Args) -> SysResult {
    let (va, size) = (a.u64(0), a.usize(1));
    if !(64..=4096).contains(&size) {
        return Err(Errno::EINVAL);
    }
    let mut buf = alloc::vec![0u8; size];
    t.mm.lock().copy_in(va, &mut buf)?;
    // Fields past the ones we know must be zero (Linux: E2BIG otherwise).
    if buf[88.min(size)..].iter().any(|&b| b != 0) {
        return Err(Errno::E2BIG);
    }
    let f = |i: usize| u64::from_le_bytes(buf[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let (flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls) = (f(0), f(1), f(2), f(3), f(4), f(5), f(6), f(7));
    if exit_signal > 64 || (stack == 0) != (stack_size == 0) || flags & 0xff != 0 {
        return Err(Errno::EINVAL);
    }
    let _ = pidfd;
    let top = if stack != 0 { stack.checked_add(stack_size).ok_or(Errno::EINVAL)? } else { 0 };
    fork::clone(t, &CloneArgs { flags, exit_signal: exit_signal as u32, stack: top, parent_tid, child_tid, tls })
}

/// Reads a NULL-terminated array of strings (argv, envp).
fn read_strings(t: &mut Task, va: u64, budget: &mut usize) -> Result<Vec<String>, Errno> {
    let mut v = Vec::new();
    if va == 0 {
        return Ok(v);
    }
    for i in 0u64.. {
        let p: u64 = t.mm.lock().read_obj(va.checked_add(i * 8).ok_or(Errno::EFAULT)?)?;
        if p == 0 {
            break;
        }
        let s = t.mm.lock().read_cstr(p, crate::loader::stack::MAX_ARG_BYTES)?;
        *budget = budget.checked_sub(s.len() + 1 + 8).ok_or(Errno::E2BIG)?;
        v.push(s);
    }
    Ok(v)
}

pub fn sys_execve(t: &mut Task, a: &Args) -> SysResult {
    exec_at(t, -100, a.u64(0), a.u64(1), a.u64(2), 0)
}

pub fn sys_execveat(t: &mut Task, a: &Args) -> SysResult {
    exec_at(t, a.fd(0), a.u64(1), a.u64(2), a.u64(3), a.u32(4))
}

fn exec_at(t: &mut Task, dirfd: i32, path_va: u64, argv_va: u64, envp_va: u64, flags: u32) -> SysResult {
    const AT_EMPTY_PATH: u32 = 0x1000;
    const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = t.mm.lock().read_cstr(path_va, 4095)?;
    let full = if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        t.fds.lock().get(dirfd)?.path()
    } else if dirfd == -100 || path.starts_with('/') {
        crate::vfs::walk::check_path(&path)?;
        path
    } else {
        super::fs::resolve(t, dirfd, &path, true)?.path
    };
    let mut budget = crate::loader::stack::MAX_ARG_BYTES;
    let argv = read_strings(t, argv_va, &mut budget)?;
    let envp = read_strings(t, envp_va, &mut budget)?;
    let k = crate::kernel::get();
    crate::kernel::exec::exec(t, &full, &argv, &envp, k.hwcap, k.minsigstksz).map_err(|e| e.errno())?;
    t.keep_regs = true;
    Ok(0)
}

/// Which children a wait selects (`my_pgid`: the caller's group, read
/// before the caller's process lock is taken).
fn selects(sel: i64, my_pgid: u32, child: &Process) -> bool {
    match sel {
        -1 => true,
        0 => child.inner.lock().pgid == my_pgid,
        p if p > 0 => child.pid as i64 == p,
        p => child.inner.lock().pgid as i64 == -p,
    }
}

/// What a wait reports about a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WaitEvent {
    Exit(ExitReason),
    Stop(u32),
    Cont,
}

/// Which child state changes a wait takes.
#[derive(Clone, Copy)]
struct WaitFor {
    exited: bool,
    stopped: bool,
    continued: bool,
    /// Reap zombies and clear stop/continue reports (not WNOWAIT).
    consume: bool,
}

/// Waits for a child to change state: (pid, event), or (0, _) with WNOHANG.
fn wait_child(t: &mut Task, sel: i64, nohang: bool, w: WaitFor) -> Result<(u32, WaitEvent), Errno> {
    let reap = w.consume;
    let proc = t.proc.clone();
    let me = t.shared.clone();
    let pending = || proc.pending();
    let my_pgid = proc.inner.lock().pgid;
    proc.child_events.wait(&me, &pending, None, || {
        let mut inner = proc.inner.lock();
        let mut any = false;
        for (i, c) in inner.children.iter().enumerate() {
            if !selects(sel, my_pgid, c) {
                continue;
            }
            any = true;
            let mut ci = c.inner.lock();
            if ci.zombie {
                if !w.exited {
                    continue;
                }
                let why = ci.exit.unwrap_or(ExitReason::Exited(0));
                let pid = c.pid;
                drop(ci);
                if reap {
                    let spent = c.cpu_times() + c.children_times();
                    proc.cpu_children.fetch_add(spent.total(), core::sync::atomic::Ordering::Relaxed);
                    proc.sys_children.fetch_add(spent.sys, core::sync::atomic::Ordering::Relaxed);
                    inner.children.remove(i);
                    process::unregister_process(pid);
                }
                return Some(Ok((pid, WaitEvent::Exit(why))));
            }
            let ev = match ci.stop_report {
                Some(process::StopReport::Stopped(sig)) if w.stopped => WaitEvent::Stop(sig),
                Some(process::StopReport::Continued) if w.continued => WaitEvent::Cont,
                _ => continue,
            };
            if reap {
                ci.stop_report = None;
            }
            return Some(Ok((c.pid, ev)));
        }
        if !any {
            return Some(Err(Errno::ECHILD));
        }
        if nohang {
            return Some(Ok((0, WaitEvent::Exit(ExitReason::Exited(0)))));
        }
        None
    })?
}

pub fn sys_wait4(t: &mut Task, a: &Args) -> SysResult {
    const WNOHANG: u32 = 1;
    const WUNTRACED: u32 = 2;
    const WCONTINUED: u32 = 8;
    const WALL_FLAGS: u32 = 0x2000_0000 | 0x4000_0000 | 0x8000_0000;
    let (sel, status_va, options, rusage) = (a.i32(0) as i64, a.u64(1), a.u32(2), a.u64(3));
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WALL_FLAGS) != 0 || sel == i64::from(i32::MIN) {
        return Err(Errno::EINVAL);
    }
    let w = WaitFor { exited: true, stopped: options & WUNTRACED != 0, continued: options & WCONTINUED != 0, consume: true };
    let (pid, ev) = wait_child(t, sel, options & WNOHANG != 0, w)?;
    if pid != 0 {
        if status_va != 0 {
            let status = match ev {
                WaitEvent::Exit(why) => crate::kernel::exit::wait_status(why),
                WaitEvent::Stop(sig) => (sig << 8) | 0x7f,
                WaitEvent::Cont => 0xffff,
            };
            t.mm.lock().write_obj(status_va, &status)?;
        }
        if rusage != 0 {
            t.mm.lock().copy_out(rusage, &[0u8; 144])?;
        }
    }
    Ok(u64::from(pid))
}

pub fn sys_waitid(t: &mut Task, a: &Args) -> SysResult {
    const WNOHANG: u32 = 1;
    const WEXITED: u32 = 4;
    const WNOWAIT: u32 = 0x0100_0000;
    let (idtype, id, infop, options) = (a.u32(0), a.i32(1), a.u64(2), a.u32(3));
    const WSTOPPED: u32 = 2;
    const WCONTINUED: u32 = 8;
    if options & (WEXITED | WSTOPPED | WCONTINUED) == 0 || options & !(WNOHANG | WSTOPPED | WEXITED | WCONTINUED | WNOWAIT | 0xe000_0000) != 0 {
        return Err(Errno::EINVAL);
    }
    const P_PIDFD: u32 = 3;
    // A pidfd opened with PIDFD_NONBLOCK makes the wait non-blocking, and
    // "no child has exited yet" is then EAGAIN (Linux: kernel_waitid).
    let mut pidfd_nonblock = false;
    let sel = match idtype {
        0 => -1,
        1 if id > 0 => i64::from(id),
        2 if id >= 0 => if id == 0 { 0 } else { -i64::from(id) },
        P_PIDFD if id >= 0 => {
            let f = t.fds.lock().get(id)?;
            let pidfd = crate::fs::pidfd::pidfd_of_file(&f).ok_or(Errno::EBADF)?;
            pidfd_nonblock = f.nonblock();
            i64::from(pidfd.pid())
        }
        _ => return Err(Errno::EINVAL),
    };
    let nohang = options & WNOHANG != 0 || pidfd_nonblock;
    let w = WaitFor { exited: options & WEXITED != 0, stopped: options & WSTOPPED != 0, continued: options & WCONTINUED != 0, consume: options & WNOWAIT == 0 };
    let (pid, ev) = wait_child(t, sel, nohang, w)?;
    if pid == 0 && pidfd_nonblock && options & WNOHANG == 0 {
        return Err(Errno::EAGAIN);
    }
    if infop != 0 {
        let mut si = [0u8; 128];
        if pid != 0 {
            let (code, status) = match ev {
                WaitEvent::Exit(ExitReason::Exited(c)) => (signal::CLD_EXITED, c),
                WaitEvent::Exit(ExitReason::Signaled(s)) => (signal::CLD_KILLED, s as i32),
                WaitEvent::Stop(s) => (signal::CLD_STOPPED, s as i32),
                WaitEvent::Cont => (signal::CLD_CONTINUED, signal::SIGCONT as i32),
            };
            si[0..4].copy_from_slice(&(signal::SIGCHLD as i32).to_le_bytes());
            si[8..12].copy_from_slice(&code.to_le_bytes());
            si[16..20].copy_from_slice(&(pid as i32).to_le_bytes());
            si[20..24].copy_from_slice(&t.creds.uid.to_le_bytes());
            si[24..28].copy_from_slice(&status.to_le_bytes());
        }
        t.mm.lock().copy_out(infop, &si)?;
    }
    Ok(0)
}

fn check_sig(sig: i32) -> Result<u32, Errno> {
    if !(0..=64).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    Ok(sig as u32)
}

pub fn sys_kill(t: &mut Task, a: &Args) -> SysResult {
    let (pid, sig) = (a.i32(0), check_sig(a.i32(1))?);
    let targets: Vec<Arc<Process>> = match pid {
        p if p > 0 => alloc::vec![process::find_process(p as u32).filter(|p| !p.inner.lock().zombie).ok_or(Errno::ESRCH)?],
        0 => {
            let g = t.proc.inner.lock().pgid;
            process::all_processes().into_iter().filter(|p| p.inner.lock().pgid == g).collect()
        }
        -1 => process::all_processes().into_iter().filter(|p| p.pid != 1 && p.pid != t.pid()).collect(),
        p if p == i32::MIN => return Err(Errno::ESRCH),
        p => process::all_processes().into_iter().filter(|x| x.inner.lock().pgid == (-p) as u32).collect(),
    };
    let targets: Vec<Arc<Process>> = targets.into_iter().filter(|p| !p.inner.lock().zombie).collect();
    if targets.is_empty() {
        return Err(Errno::ESRCH);
    }
    let targets: Vec<Arc<Process>> = targets.into_iter().filter(|p| may_signal(t, p, sig)).collect();
    if targets.is_empty() {
        return Err(Errno::EPERM);
    }
    let info = signal::SigInfo::from_sender(signal::SI_USER, t.pid(), t.creds.uid);
    for p in &targets {
        signal::send_to_process(p, sig, info);
    }
    Ok(0)
}

/// Linux's check_kill_permission: the sender's real or effective uid
/// must match the target's real or saved one, unless it has CAP_KILL or
/// continues a process of its own session.
fn may_signal(t: &Task, target: &Arc<Process>, sig: u32) -> bool {
    if Arc::ptr_eq(&t.proc, target) || t.creds.capable(CAP_KILL) {
        return true;
    }
    let tc = target.view.lock().creds.clone();
    let c = &t.creds;
    if [c.uid, c.euid].iter().any(|u| *u == tc.uid || *u == tc.suid) {
        return true;
    }
    let target_sid = target.inner.lock().sid;
    sig == signal::SIGCONT && target_sid == t.proc.inner.lock().sid
}

fn send_thread(t: &Task, tgid: Option<u32>, tid: i32, sig: u32) -> SysResult {
    if tid <= 0 {
        return Err(Errno::EINVAL);
    }
    let task = process::find_task(tid as u32).ok_or(Errno::ESRCH)?;
    let proc = process::all_processes()
        .into_iter()
        .find(|p| p.inner.lock().threads.iter().any(|x| Arc::ptr_eq(x, &task)))
        .ok_or(Errno::ESRCH)?;
    if tgid.is_some_and(|g| g != proc.pid) {
        return Err(Errno::ESRCH);
    }
    if !may_signal(t, &proc, sig) {
        return Err(Errno::EPERM);
    }
    let info = signal::SigInfo::from_sender(signal::SI_TKILL, t.pid(), t.creds.uid);
    signal::send_to_thread(&proc, &task, sig, info);
    Ok(0)
}

pub fn sys_tkill(t: &mut Task, a: &Args) -> SysResult {
    let sig = check_sig(a.i32(1))?;
    send_thread(t, None, a.i32(0), sig)
}

pub fn sys_tgkill(t: &mut Task, a: &Args) -> SysResult {
    let sig = check_sig(a.i32(2))?;
    if a.i32(0) <= 0 {
        return Err(Errno::EINVAL);
    }
    send_thread(t, Some(a.i32(0) as u32), a.i32(1), sig)
}

// ---------------------------------------------------------------- pidfd

/// pidfd_open flag (O_NONBLOCK's value).
const PIDFD_NONBLOCK: u32 = 0o4000;
const O_RDWR: u32 = 2;

pub fn sys_pidfd_open(t: &mut Task, a: &Args) -> SysResult {
    let (pid, flags) = (a.i32(0), a.u32(1));
    if flags & !PIDFD_NONBLOCK != 0 || pid <= 0 {
        return Err(Errno::EINVAL);
    }
    let Some(p) = process::find_process(pid as u32) else {
        // A thread that is not its group's leader needs PIDFD_THREAD,
        // which rvisor does not support: ENOENT, as Linux without it.
        return Err(if process::find_task(pid as u32).is_some() { Errno::ENOENT } else { Errno::ESRCH });
    };
    let file = crate::fs::OpenFile::new(alloc::boxed::Box::new(crate::fs::pidfd::PidFd::new(&p)), O_RDWR | (flags & PIDFD_NONBLOCK));
    // pidfds are always close-on-exec.
    t.fds.lock().install(file, true, 0).map(|fd| fd as u64)
}

pub fn sys_pidfd_send_signal(t: &mut Task, a: &Args) -> SysResult {
    let (fd, sig, infop, flags) = (a.fd(0), a.i32(1), a.u64(2), a.u32(3));
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let sig = check_sig(sig)?;
    let f = t.fds.lock().get(fd)?;
    let pidfd = crate::fs::pidfd::pidfd_of_file(&f).ok_or(Errno::EBADF)?;
    let target = pidfd.process().ok_or(Errno::ESRCH)?;
    let info = if infop != 0 {
        let mut si = [0u8; signal::SIGINFO_SIZE];
        t.mm.lock().copy_in(infop, &mut si)?;
        let word = |o: usize| i32::from_le_bytes([si[o], si[o + 1], si[o + 2], si[o + 3]]);
        if word(0) != sig as i32 {
            return Err(Errno::EINVAL);
        }
        let code = word(8);
        // Only the kernel may claim kill's or tkill's codes for another process.
        if !Arc::ptr_eq(&target, &t.proc) && (code >= 0 || code == signal::SI_TKILL) {
            return Err(Errno::EPERM);
        }
        signal::SigInfo { code, pid: word(16) as u32, uid: word(20) as u32, addr: u64::from_le_bytes(si[24..32].try_into().unwrap_or([0; 8])), ..signal::SigInfo::default() }
    } else {
        signal::SigInfo::from_sender(signal::SI_USER, t.pid(), t.creds.uid)
    };
    if !may_signal(t, &target, sig) {
        return Err(Errno::EPERM);
    }
    // An exited, unreaped process takes the signal silently, as in Linux.
    if sig != 0 && !target.inner.lock().zombie {
        signal::send_to_process(&target, sig, info);
    }
    Ok(0)
}
