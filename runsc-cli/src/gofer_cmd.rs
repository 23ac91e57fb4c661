//! `rvisor gofer` (internal): the sandbox's file server process. It is
//! started by `rvisor do` with one end of a seqpacket socket pair, confines
//! itself (its own mount namespace holding only the sandbox's root and
//! volumes, pivoted into; capabilities dropped) and serves the VMM on that
//! socket until the VMM hangs up.
//!
//! For an OCI container (`--in-place`), `rvisor boot` has already built the
//! container's tree (root and bind mounts at their container paths) in the
//! mount namespace the gofer inherits; the gofer copies that namespace,
//! pivots into the tree and serves it, so the sentry's paths are container
//! paths. With `--userns-sync` it first enters a user namespace of its own
//! whose id maps the VMM writes (the container's), so host files are made
//! and changed as the container's ids.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

/// Where the sandbox's root appears in the gofer's namespace.
pub const ROOT_DIR: &str = "/root";

/// Where volume `i` appears in the gofer's namespace.
pub fn volume_dir(i: usize) -> String {
    format!("/v{i}")
}

#[derive(clap::Args, Debug)]
pub struct GoferArgs {
    /// The socket to serve (inherited fd).
    #[arg(long)]
    fd: RawFd,
    /// Host directory that is the sandbox's root.
    #[arg(long)]
    root: PathBuf,
    /// Host directories to serve as volumes, in order: SRC or SRC:ro.
    #[arg(long = "volume")]
    volumes: Vec<String>,
    /// `--root` is a mount point already holding the sandbox's mounts (an
    /// OCI container's tree): serve it as it is.
    #[arg(long)]
    in_place: bool,
    /// A stream socket to the VMM: enter a new user namespace, say so
    /// with one byte, and go on (as its root) once the VMM has written the
    /// id maps and answered with one byte.
    #[arg(long)]
    userns_sync: Option<RawFd>,
}

/// Starts `rvisor gofer --fd N ARGS…` with one end of a new seqpacket
/// pair (and `inherit` open across exec); returns the other end and the
/// process. Its stdin and stdout are /dev/null, its stderr ours. It runs
/// in a process group of its own: the terminal's ^C and ^Z go to the
/// sandbox (see `rvisor do` and the OCI console), never to the gofer,
/// which ends with the VMM anyway (PDEATHSIG of the calling thread).
pub fn spawn(args: &[&std::ffi::OsStr], inherit: &[std::os::fd::BorrowedFd<'_>]) -> std::io::Result<(OwnedFd, std::process::Child)> {
    use std::os::fd::AsRawFd;
    let (vmm_end, gofer_end) = gofer::seqpacket_pair()?;
    for fd in inherit.iter().map(|f| f.as_raw_fd()).chain([gofer_end.as_raw_fd()]) {
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()))?;
    }
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg("gofer").arg("--fd").arg(gofer_end.as_raw_fd().to_string()).args(args);
    cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd.spawn()?;
    Ok((vmm_end, child))
}

/// The gofer process's main; returns its exit status.
pub fn run(a: &GoferArgs) -> i32 {
    match serve(a) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rvisor gofer: {e:#}");
            1
        }
    }
}

fn serve(a: &GoferArgs) -> Result<()> {
    // The gofer lives as long as its VMM, not longer.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).context("PR_SET_PDEATHSIG")?;
    if a.fd < 3 {
        bail!("--fd {}: not a socket of ours", a.fd);
    }
    // SAFETY: `rvisor do` passed us its socket under this number (checked
    // above not to be stdio) and nothing else in this process uses it.
    #[allow(unsafe_code)]
    let sock = unsafe { OwnedFd::from_raw_fd(a.fd) };
    // Whatever else the VMM held without close-on-exec (the container's
    // stdio, its sync pipe to `create`) is not ours to keep open: a reader
    // waiting for the end of those would wait for the gofer too.
    close_inherited(&[a.fd, a.userns_sync.unwrap_or(-1)]);
    if a.in_place {
        let proc_fd = Arc::new(gofer::ProcSelfFd::open().context("opening /proc/self/fd")?);
        if let Some(fd) = a.userns_sync {
            if fd < 3 {
                bail!("--userns-sync {fd}: not a socket of ours");
            }
            // SAFETY: as for `--fd`: the VMM's socket under this number.
            #[allow(unsafe_code)]
            let s = unsafe { OwnedFd::from_raw_fd(fd) };
            enter_user_namespace(std::os::unix::net::UnixStream::from(s))?;
        }
        let root = gofer::confine::confine_in_place(&a.root).context("confining the gofer")?;
        // As the VMM: a process of the same uid with the same or more
        // capabilities (another container's gofer) cannot reach our fds.
        nix::sys::prctl::set_dumpable(false).context("PR_SET_DUMPABLE")?;
        let config = gofer::Config { readonly: false, proc_self_fd: Some(proc_fd), ..gofer::Config::default() };
        crate::host_seccomp::confine_gofer()?;
        gofer::serve(sock, root, &config).context("serving")?;
        return Ok(());
    }
    let mut binds = vec![gofer::confine::Bind { source: a.root.clone(), dest: ROOT_DIR.into(), readonly: true, recursive: true }];
    let mut any_rw = false;
    for (i, v) in a.volumes.iter().enumerate() {
        let (src, ro) = match v.strip_suffix(":ro") {
            Some(s) => (s, true),
            None => (v.as_str(), false),
        };
        any_rw |= !ro;
        binds.push(gofer::confine::Bind { source: src.into(), dest: volume_dir(i).into(), readonly: ro, recursive: false });
    }
    let proc_fd = Arc::new(gofer::ProcSelfFd::open().context("opening /proc/self/fd")?);
    let root = gofer::confine::confine_tree(&binds).context("confining the gofer")?;
    let config = gofer::Config { readonly: !any_rw, proc_self_fd: Some(proc_fd), ..gofer::Config::default() };
    // Set up: from here on the gofer reads the VMM's requests.
    crate::host_seccomp::confine_gofer()?;
    gofer::serve(sock, root, &config).context("serving")?;
    Ok(())
}

/// Closes every fd but stdio and `keep`.
fn close_inherited(keep: &[RawFd]) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return };
    let fds: Vec<RawFd> = dir.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
    for fd in fds {
        if fd > 2 && !keep.contains(&fd) {
            // The directory's own fd is among them and already closed: EBADF.
            let _ = nix::unistd::close(fd);
        }
    }
}

/// Enters a new user namespace and becomes its root once the VMM has
/// mapped it (see `GoferArgs::userns_sync`).
fn enter_user_namespace(mut sync: std::os::unix::net::UnixStream) -> Result<()> {
    use std::io::{Read, Write};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).context("unshare(CLONE_NEWUSER)")?;
    sync.write_all(b"u").context("userns sync")?;
    let mut b = [0u8; 1];
    sync.read_exact(&mut b).context("waiting for the id maps")?;
    let root_g = nix::unistd::Gid::from_raw(0);
    let root_u = nix::unistd::Uid::from_raw(0);
    // The host's supplementary groups mean nothing (and stay unmapped) here.
    nix::unistd::setgroups(&[]).context("setgroups")?;
    nix::unistd::setresgid(root_g, root_g, root_g).context("setresgid 0 in the user namespace")?;
    nix::unistd::setresuid(root_u, root_u, root_u).context("setresuid 0 in the user namespace")?;
    // A change of ids clears the parent-death signal: arm it again. The
    // VMM is waiting for us (it attaches next), so it is still our parent.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).context("PR_SET_PDEATHSIG")?;
    Ok(())
}
