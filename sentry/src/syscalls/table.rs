//! The syscall table: one row per implemented number. Dispatch, strace,
//! `rvisor help syscalls` and docs/compatibility.md all read it. Numbers
//! not listed return ENOSYS (logged once).

use super::names::{NAMES, NR_SYSCALLS};
use super::{file, fs, futex, info, ipc, mm, mqueue, poll, process, signal, splice, time, Handler};
use crate::kernel::sigframe;

/// How completely a syscall is implemented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    Full,
    Partial(&'static str),
}

/// One row of the table.
pub struct Row {
    pub nr: usize,
    pub name: &'static str,
    pub handler: Handler,
    pub support: Support,
}

macro_rules! rows {
    ($( ($nr:expr, $name:ident, $h:path, $s:expr) ),* $(,)?) => {
        /// All implemented syscalls, sorted by number.
        pub static ROWS: &[Row] = &[ $( Row { nr: $nr, name: stringify!($name), handler: $h, support: $s } ),* ];
    };
}

use Support::{Full, Partial};

rows! {
    (0, read, file::sys_read, Full),
    (1, write, file::sys_write, Full),
    (2, open, fs::sys_open, Full),
    (3, close, fs::sys_close, Full),
    (4, stat, fs::sys_stat, Full),
    (5, fstat, fs::sys_fstat, Full),
    (6, lstat, fs::sys_lstat, Full),
    (7, poll, poll::sys_poll, Full),
    (8, lseek, file::sys_lseek, Full),
    (9, mmap, mm::sys_mmap, Partial("MAP_SHARED of tmpfs, memfd and /dev/shm files shares their pages; host files: private copies, no writable MAP_SHARED")),
    (10, mprotect, mm::sys_mprotect, Full),
    (11, munmap, mm::sys_munmap, Full),
    (12, brk, mm::sys_brk, Full),
    (13, rt_sigaction, signal::sys_rt_sigaction, Partial("recorded; handlers run once signal delivery lands")),
    (14, rt_sigprocmask, signal::sys_rt_sigprocmask, Full),
    (15, rt_sigreturn, sigframe::sys_rt_sigreturn, Full),
    (16, ioctl, fs::sys_ioctl, Partial("terminals: termios, window size, job control, FIONREAD; pty masters: TIOCGPTN, TIOCSPTLCK, TIOCGPTPEER, TIOCPKT, TIOCSIG; FIOCLEX, FIONCLEX, FIONBIO; SIOCGIF*; no TIOCSTI, TCGETA/TCSETA")),
    (17, pread64, file::sys_pread64, Full),
    (18, pwrite64, file::sys_pwrite64, Full),
    (19, readv, file::sys_readv, Full),
    (20, writev, file::sys_writev, Full),
    (21, access, fs::sys_access, Full),
    (22, pipe, fs::sys_pipe, Full),
    (23, select, poll::sys_select, Full),
    (24, sched_yield, process::sys_sched_yield, Full),
    (25, mremap, mm::sys_mremap, Partial("MREMAP_DONTUNMAP unsupported")),
    (27, mincore, mm::sys_mincore, Partial("a page counts as resident when this process has a frame mapped for it: a touched page's neighbours come with it (fault-around), file pages cached but not mapped count as absent")),
    (28, madvise, mm::sys_madvise, Full),
    (29, shmget, ipc::sys_shmget, Partial("SHM_HUGETLB segments get ordinary pages")),
    (30, shmat, ipc::sys_shmat, Full),
    (31, shmctl, ipc::sys_shmctl, Partial("SHM_LOCK checks RLIMIT_MEMLOCK per segment, not per user")),
    (32, dup, fs::sys_dup, Full),
    (33, dup2, fs::sys_dup2, Full),
    (34, pause, signal::sys_pause, Full),
    (35, nanosleep, time::sys_nanosleep, Full),
    (36, getitimer, time::sys_getitimer, Full),
    (37, alarm, time::sys_alarm, Full),
    (38, setitimer, time::sys_setitimer, Partial("ITIMER_VIRTUAL and ITIMER_PROF both count all CPU time (no user/system split)")),
    (39, getpid, process::sys_getpid, Full),
    (40, sendfile, splice::sys_sendfile, Full),
    (41, socket, super::net::sys_socket, Partial("AF_UNIX in the sentry; AF_INET/AF_INET6 (TCP, UDP, ICMP ping, raw with CAP_NET_RAW) and AF_NETLINK NETLINK_ROUTE are host sockets in the container's netns; others EAFNOSUPPORT")),
    (42, connect, super::net::sys_connect, Partial("inet and inet6 through host sockets in the container's netns; AF_UNIX in the sentry")),
    (43, accept, super::net::sys_accept, Full),
    (44, sendto, super::net::sys_sendto, Partial("no MSG_OOB on unix sockets")),
    (45, recvfrom, super::net::sys_recvfrom, Partial("no MSG_OOB on unix sockets")),
    (46, sendmsg, super::net::sys_sendmsg, Partial("unix: SCM_RIGHTS, SCM_CREDENTIALS; inet: IP_PKTINFO/TOS/TTL control messages")),
    (47, recvmsg, super::net::sys_recvmsg, Partial("unix: SCM_RIGHTS, SCM_CREDENTIALS; inet: IP-level control messages")),
    (48, shutdown, super::net::sys_shutdown, Full),
    (49, bind, super::net::sys_bind, Partial("inet and inet6 through host sockets; an AF_UNIX pathname makes a socket file (sockets are found by its inode)")),
    (50, listen, super::net::sys_listen, Full),
    (51, getsockname, super::net::sys_getsockname, Full),
    (52, getpeername, super::net::sys_getpeername, Full),
    (53, socketpair, super::net::sys_socketpair, Partial("AF_UNIX only (as Linux: inet gives EOPNOTSUPP)")),
    (54, setsockopt, super::net::sys_setsockopt, Partial("unix: SOL_SOCKET; inet: an allowlist of SOL_SOCKET/IP/IPV6/TCP/UDP options (no BPF filters, no TCP ULP, loaded congestion controls only)")),
    (55, getsockopt, super::net::sys_getsockopt, Partial("unix: SOL_SOCKET; inet: the setsockopt allowlist plus SO_ERROR, TCP_INFO...")),
    (56, clone, process::sys_clone, Partial("no namespaces, no CLONE_PIDFD")),
    (57, fork, process::sys_fork, Full),
    (58, vfork, process::sys_vfork, Full),
    (59, execve, process::sys_execve, Partial("other threads of the caller are not killed")),
    (60, exit, process::sys_exit, Full),
    (61, wait4, process::sys_wait4, Partial("exits only: no stopped/continued children; rusage zeroed")),
    (62, kill, process::sys_kill, Full),
    (63, uname, info::sys_uname, Full),
    (64, semget, ipc::sys_semget, Full),
    (65, semop, ipc::sys_semop, Full),
    (66, semctl, ipc::sys_semctl, Full),
    (67, shmdt, ipc::sys_shmdt, Full),
    (68, msgget, ipc::sys_msgget, Full),
    (69, msgsnd, ipc::sys_msgsnd, Full),
    (70, msgrcv, ipc::sys_msgrcv, Full),
    (71, msgctl, ipc::sys_msgctl, Full),
    (72, fcntl, fs::sys_fcntl, Full),
    (73, flock, fs::sys_flock, Full),
    (74, fsync, fs::sys_fsync, Full),
    (75, fdatasync, fs::sys_fsync, Full),
    (76, truncate, fs::sys_truncate, Full),
    (77, ftruncate, fs::sys_ftruncate, Full),
    (79, getcwd, fs::sys_getcwd, Full),
    (80, chdir, fs::sys_chdir, Full),
    (81, fchdir, fs::sys_fchdir, Full),
    (82, rename, fs::sys_rename, Partial("lower-layer directories cannot be renamed (EXDEV)")),
    (83, mkdir, fs::sys_mkdir, Full),
    (84, rmdir, fs::sys_rmdir, Full),
    (85, creat, fs::sys_creat, Full),
    (86, link, fs::sys_link, Full),
    (87, unlink, fs::sys_unlink, Full),
    (88, symlink, fs::sys_symlink, Full),
    (89, readlink, fs::sys_readlink, Full),
    (90, chmod, fs::sys_chmod, Full),
    (91, fchmod, fs::sys_fchmod, Full),
    (92, chown, fs::sys_chown, Full),
    (93, fchown, fs::sys_fchown, Full),
    (94, lchown, fs::sys_lchown, Full),
    (95, umask, fs::sys_umask, Full),
    (96, gettimeofday, time::sys_gettimeofday, Full),
    (97, getrlimit, process::sys_getrlimit, Full),
    (98, getrusage, time::sys_getrusage, Partial("CPU time only, all of it as user time")),
    (99, sysinfo, info::sys_sysinfo, Full),
    (100, times, time::sys_times, Partial("all CPU time as user time")),
    (102, getuid, process::sys_getuid, Full),
    (104, getgid, process::sys_getgid, Full),
    (105, setuid, process::sys_setuid, Full),
    (106, setgid, process::sys_setgid, Full),
    (107, geteuid, process::sys_geteuid, Full),
    (108, getegid, process::sys_getegid, Full),
    (109, setpgid, process::sys_setpgid, Full),
    (110, getppid, process::sys_getppid, Full),
    (111, getpgrp, process::sys_getpgrp, Full),
    (112, setsid, process::sys_setsid, Full),
    (113, setreuid, process::sys_setreuid, Full),
    (114, setregid, process::sys_setregid, Full),
    (115, getgroups, process::sys_getgroups, Full),
    (116, setgroups, process::sys_setgroups, Full),
    (117, setresuid, process::sys_setresuid, Full),
    (118, getresuid, process::sys_getresuid, Full),
    (119, setresgid, process::sys_setresgid, Full),
    (120, getresgid, process::sys_getresgid, Full),
    (121, getpgid, process::sys_getpgid, Full),
    (122, setfsuid, process::sys_setfsuid, Full),
    (123, setfsgid, process::sys_setfsgid, Full),
    (124, getsid, process::sys_getsid, Full),
    (125, capget, process::sys_capget, Full),
    (126, capset, process::sys_capset, Full),
    (127, rt_sigpending, signal::sys_rt_sigpending, Full),
    (128, rt_sigtimedwait, signal::sys_rt_sigtimedwait, Full),
    (129, rt_sigqueueinfo, signal::sys_rt_sigqueueinfo, Full),
    (130, rt_sigsuspend, signal::sys_rt_sigsuspend, Full),
    (131, sigaltstack, signal::sys_sigaltstack, Full),
    (133, mknod, fs::sys_mknod, Partial("fifos work inside the sandbox; device nodes exist but cannot be opened")),
    (137, statfs, fs::sys_statfs, Partial("synthetic sizes")),
    (138, fstatfs, fs::sys_fstatfs, Partial("synthetic sizes")),
    (157, prctl, process::sys_prctl, Partial("names, dumpable, pdeathsig, no_new_privs, subreaper, seccomp, keepcaps, capability bounding and ambient sets; no securebits")),
    (158, arch_prctl, process::sys_arch_prctl, Partial("ARCH_SET_GS unsupported")),
    (160, setrlimit, process::sys_setrlimit, Full),
    (170, sethostname, info::sys_sethostname, Full),
    (171, setdomainname, info::sys_setdomainname, Full),
    (186, gettid, process::sys_gettid, Full),
    (187, readahead, file::sys_readahead, Full),
    (188, setxattr, fs::sys_setxattr, Partial("user.* and trusted.* on tmpfs and the overlay root; host-backed files store none (EOPNOTSUPP)")),
    (189, lsetxattr, fs::sys_lsetxattr, Partial("user.* and trusted.* on tmpfs and the overlay root; host-backed files store none (EOPNOTSUPP)")),
    (190, fsetxattr, fs::sys_fsetxattr, Partial("user.* and trusted.* on tmpfs and the overlay root; host-backed files store none (EOPNOTSUPP)")),
    (191, getxattr, fs::sys_getxattr, Partial("user.* and trusted.* on tmpfs and the overlay root; host-backed files store none (EOPNOTSUPP)")),
    (192, lgetxattr, fs::sys_lgetxattr, Partial("user.* and trusted.* on tmpfs and the overlay root; host-backed files store none (EOPNOTSUPP)")),
    (193, fgetxattr, fs::sys_fgetxattr, Partial("user.* and trusted.* on tmpfs and the overlay root; host-backed files store none (EOPNOTSUPP)")),
    (194, listxattr, fs::sys_listxattr, Partial("user.* and trusted.* on tmpfs and the overlay root; host-backed files store none (EOPNOTSUPP)")),
    (195, llistxattr, fs::sys_llistxattr, Partial("user.* and trusted.* on tmpfs and the overlay root; host-backed files store none (EOPNOTSUPP)")),
    (196, flistxattr, fs::sys_flistxattr, Partial("user.* and trusted.* on tmpfs and the overlay root; host-backed files store none (EOPNOTSUPP)")),
    (197, removexattr, fs::sys_removexattr, Partial("user.* and trusted.* on tmpfs and the overlay root; host-backed files store none (EOPNOTSUPP)")),
    (198, lremovexattr, fs::sys_lremovexattr, Partial("user.* and trusted.* on tmpfs and the overlay root; host-backed files store none (EOPNOTSUPP)")),
    (199, fremovexattr, fs::sys_fremovexattr, Partial("user.* and trusted.* on tmpfs and the overlay root; host-backed files store none (EOPNOTSUPP)")),
    (200, tkill, process::sys_tkill, Full),
    (201, time, time::sys_time, Full),
    (202, futex, futex::sys_futex, Partial("PI futexes keep Linux's ownership protocol; priority inheritance is a no-op (tasks have no priorities)")),
    (204, sched_getaffinity, process::sys_sched_getaffinity, Full),
    (213, epoll_create, super::epoll::sys_epoll_create, Full),
    (217, getdents64, fs::sys_getdents64, Full),
    (218, set_tid_address, process::sys_set_tid_address, Full),
    (220, semtimedop, ipc::sys_semtimedop, Full),
    (221, fadvise64, file::sys_fadvise64, Full),
    (222, timer_create, time::sys_timer_create, Partial("CPU-time clocks are approximated by CLOCK_MONOTONIC; no other process's CPU clock")),
    (223, timer_settime, time::sys_timer_settime, Full),
    (224, timer_gettime, time::sys_timer_gettime, Full),
    (225, timer_getoverrun, time::sys_timer_getoverrun, Full),
    (226, timer_delete, time::sys_timer_delete, Full),
    (228, clock_gettime, time::sys_clock_gettime, Full),
    (229, clock_getres, time::sys_clock_getres, Full),
    (230, clock_nanosleep, time::sys_clock_nanosleep, Full),
    (231, exit_group, process::sys_exit_group, Full),
    (232, epoll_wait, super::epoll::sys_epoll_wait, Full),
    (233, epoll_ctl, super::epoll::sys_epoll_ctl, Partial("edge-triggered mode may report extra edges after unrelated I/O")),
    (234, tgkill, process::sys_tgkill, Full),
    (235, utimes, fs::sys_utimes, Full),
    (240, mq_open, mqueue::sys_mq_open, Full),
    (241, mq_unlink, mqueue::sys_mq_unlink, Full),
    (242, mq_timedsend, mqueue::sys_mq_timedsend, Full),
    (243, mq_timedreceive, mqueue::sys_mq_timedreceive, Full),
    (244, mq_notify, mqueue::sys_mq_notify, Partial("SIGEV_THREAD (a netlink socket) fails with ENOSYS")),
    (245, mq_getsetattr, mqueue::sys_mq_getsetattr, Full),
    (247, waitid, process::sys_waitid, Partial("exits only")),
    (253, inotify_init, super::epoll::sys_inotify_init, Full),
    (254, inotify_add_watch, super::epoll::sys_inotify_add_watch, Partial("events come from the sandbox's own operations, not from changes the host makes")),
    (255, inotify_rm_watch, super::epoll::sys_inotify_rm_watch, Full),
    (257, openat, fs::sys_openat, Partial("O_TMPFILE on tmpfs and the overlay root only (EOPNOTSUPP elsewhere)")),
    (258, mkdirat, fs::sys_mkdirat, Full),
    (259, mknodat, fs::sys_mknodat, Partial("fifos work inside the sandbox; device nodes exist but cannot be opened")),
    (260, fchownat, fs::sys_fchownat, Full),
    (262, newfstatat, fs::sys_newfstatat, Full),
    (263, unlinkat, fs::sys_unlinkat, Full),
    (264, renameat, fs::sys_renameat, Partial("as rename")),
    (265, linkat, fs::sys_linkat, Full),
    (266, symlinkat, fs::sys_symlinkat, Full),
    (267, readlinkat, fs::sys_readlinkat, Full),
    (268, fchmodat, fs::sys_fchmodat, Full),
    (269, faccessat, fs::sys_faccessat, Full),
    (270, pselect6, poll::sys_pselect6, Full),
    (271, ppoll, poll::sys_ppoll, Full),
    (273, set_robust_list, process::sys_set_robust_list, Full),
    (274, get_robust_list, process::sys_get_robust_list, Full),
    (275, splice, splice::sys_splice, Partial("bytes are copied through the sentry, never page-moved (SPLICE_F_MOVE and SPLICE_F_GIFT are hints, as on Linux)")),
    (276, tee, splice::sys_tee, Full),
    (277, sync_file_range, file::sys_sync_file_range, Full),
    (278, vmsplice, splice::sys_vmsplice, Partial("the user's bytes are copied into the pipe, not mapped: later changes to that memory do not show")),
    (280, utimensat, fs::sys_utimensat, Full),
    (281, epoll_pwait, super::epoll::sys_epoll_pwait, Full),
    (282, signalfd, super::epoll::sys_signalfd, Full),
    (283, timerfd_create, super::epoll::sys_timerfd_create, Partial("alarm clocks act as their plain clocks; TFD_TIMER_CANCEL_ON_SET never cancels")),
    (284, eventfd, super::epoll::sys_eventfd, Full),
    (286, timerfd_settime, super::epoll::sys_timerfd_settime, Full),
    (287, timerfd_gettime, super::epoll::sys_timerfd_gettime, Full),
    (288, accept4, super::net::sys_accept4, Full),
    (289, signalfd4, super::epoll::sys_signalfd4, Full),
    (290, eventfd2, super::epoll::sys_eventfd2, Full),
    (291, epoll_create1, super::epoll::sys_epoll_create1, Full),
    (292, dup3, fs::sys_dup3, Full),
    (293, pipe2, fs::sys_pipe2, Partial("O_DIRECT packet mode not yet")),
    (294, inotify_init1, super::epoll::sys_inotify_init1, Full),
    (295, preadv, file::sys_preadv, Full),
    (296, pwritev, file::sys_pwritev, Full),
    (297, rt_tgsigqueueinfo, signal::sys_rt_tgsigqueueinfo, Full),
    (299, recvmmsg, super::net::sys_recvmmsg, Partial("the timeout is checked between messages, as Linux")),
    (302, prlimit64, process::sys_prlimit64, Partial("only the calling process")),
    (303, name_to_handle_at, fs::sys_name_to_handle_at, Partial("no filesystem exports handles: EOPNOTSUPP after the path lookup")),
    (304, open_by_handle_at, fs::sys_open_by_handle_at, Partial("no handle is ever issued, so a well-formed one is ESTALE")),
    (307, sendmmsg, super::net::sys_sendmmsg, Full),
    (309, getcpu, process::sys_getcpu, Full),
    (316, renameat2, fs::sys_renameat2, Partial("no RENAME_WHITEOUT")),
    (317, seccomp, crate::kernel::seccomp::sys_seccomp, Partial("no user notification (SECCOMP_FILTER_FLAG_NEW_LISTENER, SECCOMP_RET_USER_NOTIF); TSYNC never refuses")),
    (318, getrandom, info::sys_getrandom, Full),
    (319, memfd_create, mm::sys_memfd_create, Partial("no MFD_HUGETLB; F_SEAL_WRITE does not wait for writable maps to go")),
    (322, execveat, process::sys_execveat, Partial("as execve")),
    (326, copy_file_range, splice::sys_copy_file_range, Partial("copies between any two sandbox filesystems, where Linux 5.19+ answers EXDEV across superblocks")),
    (327, preadv2, file::sys_preadv2, Partial("RWF_ATOMIC, RWF_DONTCACHE and RWF_NOSIGNAL are EOPNOTSUPP")),
    (328, pwritev2, file::sys_pwritev2, Partial("RWF_NOAPPEND on an O_APPEND file is EOPNOTSUPP; RWF_ATOMIC, RWF_DONTCACHE and RWF_NOSIGNAL are EOPNOTSUPP")),
    (332, statx, fs::sys_statx, Full),
    (334, rseq, process::sys_rseq, Partial("returns ENOSYS; glibc falls back")),
    (424, pidfd_send_signal, process::sys_pidfd_send_signal, Partial("flags must be 0 (no PIDFD_SIGNAL_THREAD or _PROCESS_GROUP)")),
    (434, pidfd_open, process::sys_pidfd_open, Partial("no PIDFD_THREAD")),
    (435, clone3, process::sys_clone3, Partial("as clone; no set_tid or cgroup")),
    (436, close_range, fs::sys_close_range, Full),
    (437, openat2, fs::sys_openat2, Partial("RESOLVE_NO_XDEV/IN_ROOT/CACHED accepted, not enforced")),
    (439, faccessat2, fs::sys_faccessat2, Full),
    (441, epoll_pwait2, super::epoll::sys_epoll_pwait2, Full),
}

static INDEX: spin::Once<[u16; NR_SYSCALLS]> = spin::Once::new();

fn index() -> &'static [u16; NR_SYSCALLS] {
    INDEX.call_once(|| {
        let mut idx = [u16::MAX; NR_SYSCALLS];
        for (i, r) in ROWS.iter().enumerate() {
            idx[r.nr] = i as u16;
        }
        idx
    })
}

/// The handler for syscall `nr`.
pub fn handler(nr: u64) -> Option<Handler> {
    let i = *index().get(usize::try_from(nr).ok()?)?;
    ROWS.get(usize::from(i)).map(|r| r.handler)
}

/// The name of syscall `nr` ("" if unassigned).
pub fn name(nr: usize) -> &'static str {
    NAMES.get(nr).copied().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_sorted_unique_and_named_right() {
        for w in ROWS.windows(2) {
            assert!(w[0].nr < w[1].nr, "{} and {} out of order", w[0].name, w[1].name);
        }
        for r in ROWS {
            assert_eq!(NAMES[r.nr], r.name, "row {} has the wrong name", r.nr);
        }
        assert_eq!(NAMES[libc::SYS_openat as usize], "openat");
        assert_eq!(NAMES[libc::SYS_statx as usize], "statx");
        assert_eq!(NAMES[libc::SYS_faccessat2 as usize], "faccessat2");
        assert_eq!(NAMES[libc::SYS_clone3 as usize], "clone3");
        assert_eq!(NAMES[libc::SYS_setresuid as usize], "setresuid");
        assert_eq!(NAMES[libc::SYS_setfsgid as usize], "setfsgid");
        assert_eq!(NAMES[libc::SYS_sethostname as usize], "sethostname");
    }

    #[test]
    fn lookup() {
        assert!(handler(0).is_some());
        assert!(handler(56).is_some());
        assert!(handler(134).is_none()); // uselib: never
        assert!(handler(u64::MAX).is_none());
        assert!(handler(100_000).is_none());
    }
}
