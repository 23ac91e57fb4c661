//! `rvisor gofer` (internal): the sandbox's file server process. It is
//! started by `rvisor do` with one end of a seqpacket socket pair, confines
//! itself (its own mount namespace holding only the sandbox's root and
//! volumes, pivoted into; capabilities dropped) and serves the VMM on that
//! socket until the VMM hangs up.

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
    gofer::serve(sock, root, &config).context("serving")?;
    Ok(())
}
