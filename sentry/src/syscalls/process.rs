//! Process identity and lifetime: exit, ids, TLS and robust lists, rlimits,
//! CPU affinity. One process with one thread until the process issue.

use super::Args;
use crate::errno::{Errno, SysResult};
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
    t.exit = Some(ExitReason::Exited(a.i32(0) & 0xff));
    Ok(0)
}

pub fn sys_exit(t: &mut Task, a: &Args) -> SysResult {
    // The only thread: exiting it ends the process.
    sys_exit_group(t, a)
}

pub fn sys_getpid(t: &mut Task, _a: &Args) -> SysResult {
    Ok(u64::from(t.pid))
}

pub fn sys_gettid(t: &mut Task, _a: &Args) -> SysResult {
    Ok(u64::from(t.tid))
}

pub fn sys_getppid(t: &mut Task, _a: &Args) -> SysResult {
    Ok(u64::from(t.ppid))
}

pub fn sys_getuid(t: &mut Task, _a: &Args) -> SysResult {
    Ok(u64::from(t.creds.uid))
}

pub fn sys_getgid(t: &mut Task, _a: &Args) -> SysResult {
    Ok(u64::from(t.creds.gid))
}

pub fn sys_getgroups(_t: &mut Task, a: &Args) -> SysResult {
    if a.i32(0) < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

pub fn sys_getpgrp(t: &mut Task, _a: &Args) -> SysResult {
    Ok(u64::from(t.pid))
}

pub fn sys_getpgid(t: &mut Task, a: &Args) -> SysResult {
    let pid = a.i32(0);
    if pid != 0 && pid != t.pid as i32 {
        return Err(Errno::ESRCH);
    }
    Ok(u64::from(t.pid))
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
    t.mm.write_obj(a.u64(1), &t.robust_list.0)?;
    t.mm.write_obj(a.u64(2), &t.robust_list.1)?;
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
        ARCH_GET_FS => t.mm.write_obj(a.u64(1), &t.fs_base).map(|()| 0),
        ARCH_GET_GS => t.mm.write_obj(a.u64(1), &0u64).map(|()| 0),
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
        if max > old.1 && t.creds.uid != 0 {
            return Err(Errno::EPERM);
        }
        if r == RLIMIT_NOFILE {
            if max > crate::fs::NOFILE_MAX as u64 {
                return Err(Errno::EPERM);
            }
            t.fds.set_limit(cur as usize);
        }
        t.rlimits[r] = (cur, max);
    }
    if old_va != 0 {
        t.mm.write_obj(old_va, &old.0)?;
        t.mm.write_obj(old_va + 8, &old.1)?;
    }
    Ok(0)
}

pub fn sys_prlimit64(t: &mut Task, a: &Args) -> SysResult {
    let pid = a.i32(0);
    if pid != 0 && pid != t.pid as i32 {
        return Err(Errno::ESRCH);
    }
    let new = if a.u64(2) != 0 {
        Some((t.mm.read_obj::<u64>(a.u64(2))?, t.mm.read_obj::<u64>(a.u64(2) + 8)?))
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
    let new = (t.mm.read_obj::<u64>(a.u64(1))?, t.mm.read_obj::<u64>(a.u64(1) + 8)?);
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
    t.mm.write_obj(a.u64(2), &mask)?;
    Ok(8)
}

pub fn sys_sched_yield(_t: &mut Task, _a: &Args) -> SysResult {
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
    const PR_GET_SECCOMP: u32 = 21;
    const PR_CAPBSET_READ: u32 = 23;
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
        PR_GET_PDEATHSIG => t.mm.write_obj(a.u64(1), &(t.pdeathsig as i32)).map(|()| 0),
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
            t.mm.copy_in(a.u64(1), &mut name)
                .or_else(|_| {
                    // The name may end right before an unmapped page.
                    let s = t.mm.read_cstr(a.u64(1), 4096)?;
                    let n = s.len().min(15);
                    name[..n].copy_from_slice(&s.as_bytes()[..n]);
                    Ok::<(), Errno>(())
                })?;
            let end = name.iter().position(|&b| b == 0).unwrap_or(15).min(15);
            name[end..].fill(0);
            t.comm = name;
            Ok(0)
        }
        PR_GET_NAME => t.mm.copy_out(a.u64(1), &t.comm).map(|()| 0),
        PR_GET_SECCOMP => Ok(0),
        PR_CAPBSET_READ => {
            if a.u64(1) > CAP_LAST_CAP {
                return Err(Errno::EINVAL);
            }
            Ok(1)
        }
        PR_SET_CHILD_SUBREAPER => {
            t.subreaper = a.u64(1) != 0;
            Ok(0)
        }
        PR_GET_CHILD_SUBREAPER => t.mm.write_obj(a.u64(1), &i32::from(t.subreaper)).map(|()| 0),
        PR_SET_NO_NEW_PRIVS => {
            if a.u64(1) != 1 || a.u64(2) != 0 || a.u64(3) != 0 || a.u64(4) != 0 {
                return Err(Errno::EINVAL);
            }
            t.no_new_privs = true;
            Ok(0)
        }
        PR_GET_NO_NEW_PRIVS => Ok(u64::from(t.no_new_privs)),
        _ => Err(Errno::EINVAL),
    }
}
