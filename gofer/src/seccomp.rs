//! Host seccomp filters for rvisor's own processes (defence in depth, as
//! gVisor's): once set up, the gofer and the VMM keep only the host
//! syscalls, and where practical the argument values, that they need to
//! serve the sandbox. A process taken over through a bug in its request
//! handling can then do little more than it was doing.
//!
//! This module is shared: [`Rules`] and [`install`] are the machinery,
//! [`gofer_rules`] the gofer's list; the VMM's list is
//! `platform_kvm::seccomp::vmm_rules`. The filters are built with
//! seccompiler (rust-vmm), not written as BPF by hand.
//!
//! A syscall off the list kills the process (`SECCOMP_RET_KILL_PROCESS`)
//! unless [`Mode`] says otherwise (`RVISOR_HOST_SECCOMP`, or
//! `--host-seccomp`): `trap` reports it on stderr and fails it with
//! `ENOSYS`, `log` lets it run and has the kernel log it (dmesg), `off`
//! installs nothing. docs/debugging.md tells how to find a missing one.

use std::collections::BTreeMap;

use seccompiler::{SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule};

use crate::sys;

/// The environment variable that picks the [`Mode`] (the CLI's
/// `--host-seccomp` sets it for the processes it starts).
pub const MODE_ENV: &str = "RVISOR_HOST_SECCOMP";

/// What happens to a syscall the filter does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The process is killed (SIGSYS): the default.
    #[default]
    Kill,
    /// The syscall fails with `ENOSYS` and a line naming it and its
    /// arguments goes to stderr (debugging).
    Trap,
    /// The syscall runs; the kernel logs it (`audit: type=1326` lines in
    /// dmesg) (debugging a whole test suite at once).
    Log,
    /// No filter (debugging only).
    Off,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "kill" | "on" | "" => Ok(Mode::Kill),
            "trap" => Ok(Mode::Trap),
            "log" => Ok(Mode::Log),
            "off" => Ok(Mode::Off),
            _ => Err(format!("host seccomp mode {s:?}: expected kill, trap, log or off")),
        }
    }
}

impl Mode {
    /// The mode `RVISOR_HOST_SECCOMP` asks for (the default when unset).
    pub fn from_env() -> Result<Mode, String> {
        match std::env::var(MODE_ENV) {
            Ok(v) => v.parse(),
            Err(std::env::VarError::NotPresent) => Ok(Mode::Kill),
            Err(e) => Err(format!("{MODE_ENV}: {e}")),
        }
    }
}

/// Why a filter could not be built or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// seccompiler refused the rules (a bug in a list).
    #[error("building the host seccomp filter: {0}")]
    Build(String),
    /// The kernel refused the filter.
    #[error("installing the host seccomp filter: {0}")]
    Install(String),
    /// The SIGSYS handler of trap mode could not be installed.
    #[error("installing the SIGSYS handler: {0}")]
    Handler(#[source] std::io::Error),
}

/// An allow list: per syscall number, any arguments (`None`) or one of a
/// set of argument patterns (each a conjunction of conditions).
#[derive(Debug, Clone, Default)]
pub struct Rules {
    allowed: BTreeMap<i64, Option<Vec<Conds>>>,
    /// Syscalls answered `ENOSYS` unless allowed above: `clone3`, so
    /// that the C library falls back to `clone`, whose flags a filter
    /// can see; and calls the C library makes on its own at odd times
    /// and does without (malloc opens /proc/sys/vm/overcommit_memory the
    /// first time a thread's arena shrinks), which must not kill.
    enosys: Vec<i64>,
}

/// Conditions that must all hold: (argument index, comparison).
type Conds = Vec<(u8, Cmp)>;

/// One argument condition (on the low 32 bits, which is all the kernel
/// reads of the int arguments checked here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// The argument equals the value.
    Eq(u64),
    /// The argument's bits under the mask equal the value's.
    Masked(u64, u64),
}

impl Rules {
    /// Allows each of `nrs` with any arguments.
    pub fn allow(&mut self, nrs: &[i64]) -> &mut Self {
        for &nr in nrs {
            self.allowed.insert(nr, None);
        }
        self
    }

    /// Allows `nr` when argument `arg` is one of `values`.
    pub fn allow_values(&mut self, nr: i64, arg: u8, values: &[u64]) -> &mut Self {
        for &v in values {
            self.allow_if(nr, &[(arg, Cmp::Eq(v))]);
        }
        self
    }

    /// Allows `nr` when all of `conds` hold (on top of what it already
    /// allows).
    pub fn allow_if(&mut self, nr: i64, conds: &[(u8, Cmp)]) -> &mut Self {
        match self.allowed.entry(nr).or_insert_with(|| Some(Vec::new())) {
            None => {}
            Some(rules) => rules.push(conds.to_vec()),
        }
        self
    }

    /// Answers `nr` with `ENOSYS` when nothing allows it (see the field).
    pub fn enosys(&mut self, nr: i64) -> &mut Self {
        if !self.enosys.contains(&nr) {
            self.enosys.push(nr);
        }
        self
    }

    /// Adds everything `other` allows.
    pub fn merge(&mut self, other: &Rules) -> &mut Self {
        for (&nr, rules) in &other.allowed {
            match rules {
                None => {
                    self.allowed.insert(nr, None);
                }
                Some(rs) => {
                    for r in rs {
                        self.allow_if(nr, r);
                    }
                }
            }
        }
        for &nr in &other.enosys {
            self.enosys(nr);
        }
        self
    }

    /// Whether `nr` is allowed with some arguments.
    pub fn allows(&self, nr: i64) -> bool {
        self.allowed.contains_key(&nr)
    }

    fn filter(&self, mismatch: SeccompAction) -> Result<SeccompFilter, SeccompError> {
        let build = |e: seccompiler::BackendError| SeccompError::Build(e.to_string());
        let mut map = BTreeMap::new();
        for (&nr, rules) in &self.allowed {
            let mut out = Vec::new();
            for conds in rules.iter().flatten() {
                let conds = conds
                    .iter()
                    .map(|&(arg, cmp)| {
                        let (op, v) = match cmp {
                            Cmp::Eq(v) => (SeccompCmpOp::Eq, v),
                            Cmp::Masked(mask, v) => (SeccompCmpOp::MaskedEq(mask), v),
                        };
                        SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, v)
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(build)?;
                out.push(SeccompRule::new(conds).map_err(build)?);
            }
            map.insert(nr, out);
        }
        for nr in self.refused() {
            map.insert(nr, Vec::new());
        }
        SeccompFilter::new(map, mismatch, SeccompAction::Allow, arch()).map_err(build)
    }

    /// The `enosys` syscalls nothing allows.
    fn refused(&self) -> impl Iterator<Item = i64> + '_ {
        self.enosys.iter().copied().filter(|nr| !self.allowed.contains_key(nr))
    }

    fn enosys_filter(&self) -> Result<Option<SeccompFilter>, SeccompError> {
        let map: BTreeMap<i64, Vec<SeccompRule>> = self.refused().map(|nr| (nr, Vec::new())).collect();
        if map.is_empty() {
            return Ok(None);
        }
        SeccompFilter::new(map, SeccompAction::Allow, SeccompAction::Errno(libc::ENOSYS as u32), arch())
            .map(Some)
            .map_err(|e| SeccompError::Build(e.to_string()))
    }
}

fn arch() -> seccompiler::TargetArch {
    seccompiler::TargetArch::x86_64
}

/// Installs `rules` on every thread of this process (threads started
/// later inherit it). `who` names the process in trap mode's reports;
/// `names` are syscall names by number for them (may be empty). The
/// filter also sets no_new_privs, which the VMM and gofer never need
/// without: they exec nothing once running.
pub fn install(rules: &Rules, mode: Mode, who: &'static str, names: &'static [&'static str]) -> Result<(), SeccompError> {
    let mismatch = match mode {
        Mode::Off => return Ok(()),
        Mode::Kill => SeccompAction::KillProcess,
        Mode::Trap => SeccompAction::Trap,
        Mode::Log => SeccompAction::Log,
    };
    let main: seccompiler::BpfProgram = rules.filter(mismatch)?.try_into().map_err(|e: seccompiler::BackendError| SeccompError::Build(e.to_string()))?;
    let enosys: Option<seccompiler::BpfProgram> = match rules.enosys_filter()? {
        Some(f) => Some(f.try_into().map_err(|e: seccompiler::BackendError| SeccompError::Build(e.to_string()))?),
        None => None,
    };
    if mode == Mode::Trap {
        sys::install_sigsys_reporter(who, names).map_err(SeccompError::Handler)?;
    }
    // Both filters run on every syscall and the stricter answer wins, so
    // an ENOSYS syscall is allowed by the main one and refused by this.
    if let Some(p) = &enosys {
        seccompiler::apply_filter_all_threads(p).map_err(|e| SeccompError::Install(e.to_string()))?;
    }
    seccompiler::apply_filter_all_threads(&main).map_err(|e| SeccompError::Install(e.to_string()))
}

/// The syscalls every rvisor process needs after setup, whatever it
/// serves: memory (never executable), its threads' locks, signals coming
/// back, time, exit.
pub fn base_rules() -> Rules {
    use libc::*;
    let mut r = Rules::default();
    r.allow(&[
        SYS_brk, SYS_munmap, SYS_mremap, SYS_madvise, SYS_futex, SYS_sched_yield, SYS_rt_sigreturn,
        SYS_rt_sigprocmask, SYS_rt_sigaction, SYS_sigaltstack, SYS_restart_syscall, SYS_clock_gettime, SYS_clock_nanosleep,
        SYS_nanosleep, SYS_gettimeofday, SYS_getrandom, SYS_exit, SYS_exit_group, SYS_getpid, SYS_gettid,
        SYS_close, SYS_read, SYS_write, SYS_readv, SYS_writev, SYS_lseek,
    ]);
    // No new executable memory: the programs are loaded.
    let no_exec = [(2, Cmp::Masked(PROT_EXEC as u64, 0))];
    r.allow_if(SYS_mmap, &no_exec).allow_if(SYS_mprotect, &no_exec);
    // Descriptor flags only (std's try_clone, O_NONBLOCK changes).
    r.allow_values(SYS_fcntl, 1, &[F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC].map(|c| c as u64));
    // The C library opens files on its own (malloc's overcommit check,
    // sysconf) and copes with a refusal; a process whose list does not
    // allow opening gets ENOSYS for them rather than a kill.
    r.enosys(SYS_open).enosys(SYS_openat);
    r
}

/// The gofer's list once it serves (after [`crate::confine`] and
/// [`crate::Server::new`]'s setup): the file operations of
/// [`crate::server`] on fds beneath its root, the packets of its one
/// connection, and nothing that makes a socket, a process or a mount.
pub fn gofer_rules() -> Rules {
    use libc::*;
    let mut r = base_rules();
    r.allow(&[
        SYS_recvmsg, SYS_sendmsg, SYS_openat, SYS_openat2, SYS_fstat, SYS_newfstatat, SYS_statx, SYS_fstatfs,
        SYS_statfs, SYS_getdents64, SYS_mkdirat, SYS_mknodat, SYS_symlinkat, SYS_linkat, SYS_unlinkat,
        SYS_renameat, SYS_renameat2, SYS_readlinkat, SYS_fchmodat, SYS_fchmodat2, SYS_fchmod, SYS_fchownat, SYS_fchown,
        SYS_utimensat, SYS_ftruncate, SYS_fallocate, SYS_fsync, SYS_fdatasync, SYS_pread64, SYS_pwrite64,
        SYS_umask,
        // Extended attributes, on fds and (not following links) on
        // paths beneath fds through /proc/self/fd.
        SYS_fgetxattr, SYS_fsetxattr, SYS_flistxattr, SYS_fremovexattr, SYS_lgetxattr, SYS_lsetxattr,
        SYS_llistxattr, SYS_lremovexattr, SYS_getxattr, SYS_setxattr, SYS_listxattr, SYS_removexattr,
    ]);
    // SO_TYPE of the connection (checked by `serve`), SO_SNDBUF-type reads.
    r.allow_values(SYS_getsockopt, 1, &[SOL_SOCKET as u64]);
    r
}

/// The environment variable by which [`probe_in_child`] tells the
/// re-run test which probe to run.
pub const PROBE_ENV: &str = "RVISOR_SECCOMP_PROBE";

/// For tests of a filter: runs the test `test` of the current test binary
/// again in a child process with [`PROBE_ENV`] set to `probe` (the test
/// then installs its filter and makes its syscalls instead of spawning),
/// and returns what the child did. A filter must never be installed in
/// the test process itself: it would stay on every other test.
pub fn probe_in_child(test: &str, probe: &str) -> std::io::Result<std::process::Output> {
    std::process::Command::new(std::env::current_exe()?)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(PROBE_ENV, probe)
        .env_remove(MODE_ENV)
        .output()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    const TEST: &str = "seccomp::tests::gofer_filter_enforces";

    fn say(what: &str) {
        use std::io::Write;
        let mut out = std::io::stdout();
        let _ = writeln!(out, "{what}");
        let _ = out.flush();
    }

    /// In the child: the gofer's filter, then what a gofer does (a file
    /// beneath a directory fd, a packet on its socket pair), then `probe`'s
    /// syscall, which is not on the list.
    fn child(probe: &str) {
        let mode = if probe.starts_with("trap") { Mode::Trap } else { Mode::Kill };
        let dir = std::env::temp_dir();
        let (a, b) = crate::seqpacket_pair().unwrap();
        let dirfd = std::fs::File::open(&dir).unwrap();
        install(&gofer_rules(), mode, "gofer-test", &[]).unwrap();
        // Allowed: a file made and removed beneath a directory fd, a
        // packet across the pair.
        use std::os::fd::AsFd;
        let name = std::ffi::CString::new(format!("rvisor-seccomp-{}", std::process::id())).unwrap();
        let f = crate::sys::openat(dirfd.as_fd(), &name, libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC, 0o600).unwrap();
        drop(f);
        crate::sys::unlinkat(dirfd.as_fd(), &name, 0).unwrap();
        crate::sys::send_packet(a.as_fd(), b"x", None).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(crate::sys::recv_packet(b.as_fd(), &mut buf, false).unwrap().len, 1);
        say("allowed ok");
        let r = match probe {
            "socket" | "trap-socket" => std::net::UdpSocket::bind("127.0.0.1:0").map(drop),
            "fork" => std::process::Command::new("/bin/true").status().map(drop),
            _ => panic!("unknown probe {probe}"),
        };
        say(&format!("probe returned {r:?}"));
    }

    /// The gofer's filter lets its file and packet calls through and
    /// kills it for a socket or a new process; trap mode reports instead.
    #[test]
    fn gofer_filter_enforces() {
        if let Ok(p) = std::env::var(PROBE_ENV) {
            child(&p);
            return;
        }
        for probe in ["socket", "fork"] {
            let out = probe_in_child(TEST, probe).unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains("allowed ok"), "{probe}: {stdout} {}", String::from_utf8_lossy(&out.stderr));
            assert!(!stdout.contains("probe returned"), "{probe}: {stdout}");
            assert_eq!(out.status.signal(), Some(libc::SIGSYS), "{probe}: {:?}", out.status);
        }
        let out = probe_in_child(TEST, "trap-socket").unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{:?} {stdout} {stderr}", out.status);
        assert!(stdout.contains("probe returned Err"), "{stdout}");
        assert!(stderr.contains("rvisor gofer-test: host seccomp (trap mode) refused syscall 41 ?(0x2, 0x80002"), "{stderr}");
    }

    #[test]
    fn rules_merge_and_modes_parse() {
        let mut a = Rules::default();
        a.allow_values(libc::SYS_ioctl, 1, &[1]);
        let mut b = Rules::default();
        b.allow(&[libc::SYS_ioctl, libc::SYS_read]).enosys(libc::SYS_clone3);
        a.merge(&b);
        assert!(a.allows(libc::SYS_read) && a.allows(libc::SYS_ioctl));
        assert_eq!(a.allowed[&libc::SYS_ioctl], None, "any arguments win over some");
        assert_eq!(a.enosys, vec![libc::SYS_clone3]);
        assert_eq!("trap".parse(), Ok(Mode::Trap));
        assert_eq!("off".parse(), Ok(Mode::Off));
        assert!("nope".parse::<Mode>().is_err());
        assert!(!gofer_rules().allows(libc::SYS_socket));
        assert!(!gofer_rules().allows(libc::SYS_execve));
        assert!(gofer_rules().allows(libc::SYS_lsetxattr));
    }
}
