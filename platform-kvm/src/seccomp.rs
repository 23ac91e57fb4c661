//! The VMM's host seccomp list (see `gofer::seccomp` for the machinery
//! and the modes): what the vCPU threads, the hypercall service, the
//! socket poller and the preemption ticker need once the VM is built.
//! `Sandbox::run` installs it before the first vCPU runs guest code.
//!
//! Not on it, among others: opening files (with a gofer: the files it
//! reads, /proc/self/net's, are opened at start), execve, fork (clone without CLONE_THREAD;
//! clone3 answers ENOSYS so threads are made with clone), ptrace,
//! mount, setns/unshare, other socket families than inet, inet6 and
//! netlink, KVM ioctls but the few the run loop uses, new executable
//! memory.

use gofer::seccomp::{Cmp, Rules};

/// KVM ioctls of the run loop (linux/kvm.h, `_IO*(KVMIO=0xAE, n, …)`):
/// KVM_RUN, KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, and
/// KVM_GET_STATS_FD for `RVISOR_KVM_STATS`.
const KVM_IOCTLS: [u64; 5] = [0xae80, 0x8090_ae81, 0x4090_ae82, 0x8138_ae83, 0xaece];

/// Terminal ioctls of `Nr::HostIoctl` (TCGETS, TCSETS, TCSETSW,
/// TCSETSF, TIOCGPGRP, TIOCGWINSZ, TIOCSWINSZ; `hypercall::ioctl`).
const TTY_IOCTLS: [u64; 7] = [0x5401, 0x5402, 0x5403, 0x5404, 0x540f, 0x5413, 0x5414];

/// Socket ioctls of `net::ioctl`: FIONREAD, SIOCOUTQ, SIOCATMARK,
/// SIOCOUTQNSD, SIOCGIFCONF and the SIOCGIF* reads.
const NET_IOCTLS: [u64; 16] = [
    0x541b, 0x5411, 0x8905, 0x894b, 0x8912, 0x8910, 0x8913, 0x8915, 0x8917, 0x8919, 0x891b, 0x891d, 0x8921, 0x8927,
    0x8933, 0x8942,
];

/// What shapes the VMM's list.
#[derive(Debug, Clone, Copy, Default)]
pub struct VmmProfile {
    /// No gofer serves the sandbox: the VMM opens, stats and reads links
    /// of host paths itself (read-only `rvisor do` without root).
    pub host_paths: bool,
}

/// The VMM's allow list.
pub fn vmm_rules(p: VmmProfile) -> Rules {
    use libc::*;
    let mut r = gofer::seccomp::base_rules();
    r.allow(&[
        // The hypercall service on donated fds and guest memory.
        SYS_preadv, SYS_pwritev, SYS_pread64, SYS_pwrite64, SYS_fstat, SYS_newfstatat, SYS_statx, SYS_getdents64,
        SYS_ftruncate, SYS_fsync, SYS_fdatasync, SYS_fallocate, SYS_poll, SYS_ppoll,
        // Host sockets (`net`) and the gofer's connection (SCM_RIGHTS).
        SYS_bind, SYS_connect, SYS_listen, SYS_accept4, SYS_shutdown, SYS_getsockname, SYS_getpeername,
        SYS_setsockopt, SYS_getsockopt, SYS_sendmsg, SYS_recvmsg, SYS_sendto, SYS_recvfrom, SYS_epoll_ctl,
        SYS_epoll_wait, SYS_epoll_pwait,
        // Threads: the socket poller starts on first use; std's threads
        // name themselves and set up their signal stack.
        SYS_set_robust_list, SYS_rseq, SYS_sched_getaffinity,
    ]);
    if p.host_paths {
        r.allow(&[SYS_open, SYS_openat, SYS_readlink, SYS_readlinkat, SYS_access, SYS_faccessat, SYS_faccessat2, SYS_statfs]);
    }
    r.allow_values(SYS_socket, 0, &[AF_INET, AF_INET6, AF_NETLINK].map(|f| f as u64));
    r.allow_values(SYS_ioctl, 1, &KVM_IOCTLS);
    r.allow_values(SYS_ioctl, 1, &TTY_IOCTLS);
    r.allow_values(SYS_ioctl, 1, &NET_IOCTLS);
    // Threads only: a clone that shares memory, files and signal handlers
    // in this thread group. glibc makes threads with clone3 first, whose
    // flags sit in memory a filter cannot read: ENOSYS sends it to clone.
    let thread = (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD) as u64;
    r.allow_if(SYS_clone, &[(0, Cmp::Masked(thread, thread))]);
    r.enosys(SYS_clone3);
    // Kicks: SIGUSR2 to our own vCPU threads; and SIGABRT to ourselves,
    // so that a panic (panic = abort) still reads as one.
    let me = u64::from(std::process::id());
    for sig in [SIGUSR2, SIGABRT] {
        r.allow_if(SYS_tgkill, &[(0, Cmp::Eq(me)), (2, Cmp::Eq(sig as u64))]);
    }
    // `rvisor do` on a terminal: ^Z stops the VMM itself.
    r.allow_if(SYS_kill, &[(0, Cmp::Eq(me)), (1, Cmp::Eq(SIGSTOP as u64))]);
    // Waiting for forwarded terminal signals.
    r.allow(&[SYS_rt_sigtimedwait]);
    // std names its threads.
    r.allow_values(SYS_prctl, 0, &[PR_SET_NAME as u64]);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use gofer::seccomp::{install, probe_in_child, Mode, PROBE_ENV};
    use std::os::unix::process::ExitStatusExt;

    const TEST: &str = "seccomp::tests::vmm_filter_enforces";

    fn say(what: &str) {
        use std::io::Write;
        let mut out = std::io::stdout();
        let _ = writeln!(out, "{what}");
        let _ = out.flush();
    }

    fn errno<T>(r: T, bad: T) -> i32
    where
        T: PartialEq,
    {
        if r == bad {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
        } else {
            0
        }
    }

    /// In the child: the VMM's filter (as `rvisor do` with a gofer has
    /// it), what the VMM does once running, then `probe`'s syscall.
    fn child(probe: &str) {
        install(&vmm_rules(VmmProfile::default()), Mode::Kill, "VMM-test", &[]).unwrap();
        // KVM_RUN on a bad fd: allowed, so the kernel answers EBADF.
        // SAFETY: an ioctl on fd -1 touches nothing.
        assert_eq!(errno(unsafe { libc::ioctl(-1, 0xae80, 0) }, -1), libc::EBADF);
        let s = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        drop(s);
        // Threads (the socket poller starts late): clone3 answers ENOSYS
        // and glibc falls back to clone, whose flags pass.
        std::thread::Builder::new().name("probe".into()).spawn(|| 7).unwrap().join().unwrap();
        // SAFETY: a fresh anonymous read-write mapping, unmapped at once.
        unsafe {
            let p = libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
            assert_ne!(p, libc::MAP_FAILED);
            libc::munmap(p, 4096);
        }
        say("allowed ok");
        let r = match probe {
            // SAFETY: socket returns a new fd or -1; the fd is leaked.
            "unix-socket" => i64::from(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) }),
            // KVM_CREATE_VM: the run loop never makes a VM.
            // SAFETY: an ioctl on fd -1 touches nothing.
            "kvm-create-vm" => i64::from(unsafe { libc::ioctl(-1, 0xae01, 0) }),
            "spawn" => std::process::Command::new("/bin/true").status().map_or(-1, |_| 0),
            // Refused without a kill (glibc's malloc opens a /proc file at
            // odd times): the negated errno.
            "open" => std::fs::File::open("/etc/hostname").map_or_else(|e| -i64::from(e.raw_os_error().unwrap_or(0)), |_| 0),
            // A thread's malloc arena grows and shrinks: on its first
            // shrink glibc reads /proc/sys/vm/overcommit_memory.
            "malloc-shrink" => std::thread::spawn(|| {
                for _ in 0..4 {
                    let blocks: Vec<Vec<u8>> = (0..64).map(|_| vec![1u8; 100_000]).collect();
                    drop(blocks.into_iter().rev().collect::<Vec<_>>());
                }
                0
            })
            .join()
            .unwrap_or(-1),
            // SAFETY: an anonymous mapping; it is never used.
            "exec-memory" => (unsafe { libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_EXEC, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) }) as i64,
            _ => panic!("unknown probe {probe}"),
        };
        say(&format!("probe returned {r}"));
    }

    /// The VMM's filter, installed in a child process, lets the run
    /// loop's calls through and kills the process for anything else.
    #[test]
    fn vmm_filter_enforces() {
        if let Ok(p) = std::env::var(PROBE_ENV) {
            child(&p);
            return;
        }
        for probe in ["unix-socket", "kvm-create-vm", "spawn", "exec-memory"] {
            let out = probe_in_child(TEST, probe).unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains("allowed ok"), "{probe}: {stdout} {}", String::from_utf8_lossy(&out.stderr));
            assert!(!stdout.contains("probe returned"), "{probe}: {stdout}");
            assert_eq!(out.status.signal(), Some(libc::SIGSYS), "{probe}: {:?}", out.status);
        }
        // Opening files is refused with ENOSYS rather than a kill, so the
        // C library's own late opens fail harmlessly.
        for (probe, want) in [("open", format!("probe returned -{}", libc::ENOSYS)), ("malloc-shrink", "probe returned 0".into())] {
            let out = probe_in_child(TEST, probe).unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains(&want), "{probe}: {stdout} {}", String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success(), "{probe}: {:?}", out.status);
        }
    }

    #[test]
    fn lists_differ_by_profile() {
        let with_gofer = vmm_rules(VmmProfile { host_paths: false });
        let own_paths = vmm_rules(VmmProfile { host_paths: true });
        assert!(!with_gofer.allows(libc::SYS_readlink));
        assert!(!with_gofer.allows(libc::SYS_openat) && !with_gofer.allows(libc::SYS_open));
        assert!(own_paths.allows(libc::SYS_readlink));
        for nr in [libc::SYS_execve, libc::SYS_execveat, libc::SYS_ptrace, libc::SYS_mount, libc::SYS_setns, libc::SYS_unshare, libc::SYS_fork, libc::SYS_vfork] {
            assert!(!own_paths.allows(nr), "{nr}");
        }
    }
}
