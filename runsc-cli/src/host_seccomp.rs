//! The host seccomp filters of rvisor's processes, as the CLI sets them
//! up: the VMM's (`platform_kvm::seccomp`'s list, plus what this
//! program's own threads do in an OCI container's VMM) and the gofer's
//! (`gofer::seccomp`). On by default; `--host-seccomp` or
//! `RVISOR_HOST_SECCOMP` (kill, trap, log, off) changes what a refused
//! syscall does, for debugging (docs/debugging.md).

use anyhow::{anyhow, Result};
use gofer::seccomp::{Mode, Rules};
use platform_kvm::seccomp::VmmProfile;
use platform_kvm::HostSeccomp;

/// The mode the user asked for.
pub fn mode() -> Result<Mode> {
    Mode::from_env().map_err(|e| anyhow!(e))
}

fn names() -> &'static [&'static str] {
    &sentry::syscalls::names::NAMES
}

/// The filter of a VMM: `host_paths` when no gofer serves its files,
/// `oci` for a container's VMM (its control socket and /proc mirror).
pub fn vmm(host_paths: bool, oci: bool) -> Result<HostSeccomp> {
    let mut rules = platform_kvm::seccomp::vmm_rules(VmmProfile { host_paths });
    if oci {
        rules.merge(&oci_rules());
    }
    Ok(HostSeccomp { rules, mode: mode()?, names: names() })
}

/// What `oci::boot`'s threads do besides the sandbox's service: accept
/// the control socket's connections (and check the caller's uid); keep
/// the /proc mirror current (files made, renamed and removed by path in
/// the tmpfs the VMM is chrooted into, which holds nothing else); and at
/// the sentry's first OOM kill, poke the OOM reporter (`oci::oom`, a
/// child started before) and wait for it to end.
fn oci_rules() -> Rules {
    use libc::*;
    let mut r = Rules::default();
    r.allow(&[
        SYS_geteuid, SYS_openat, SYS_mkdir, SYS_mkdirat, SYS_symlink, SYS_symlinkat, SYS_rename, SYS_renameat,
        SYS_renameat2, SYS_unlink, SYS_unlinkat, SYS_rmdir, SYS_wait4, SYS_waitid,
    ]);
    r
}

/// Puts the gofer's filter on this process (the gofer, set up and about
/// to serve).
pub fn confine_gofer() -> Result<()> {
    gofer::seccomp::install(&gofer::seccomp::gofer_rules(), mode()?, "gofer", names()).map_err(|e| anyhow!(e))
}
