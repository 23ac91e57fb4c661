//! The gofer: rvisor's file server, the only process that opens host files.
//!
//! Linux analogue: a 9P server, like gVisor's `runsc gofer`. The sentry
//! never holds a host fd; it sends file requests through the VMM, which
//! relays them here over a unix `SOCK_SEQPACKET` socket and keeps the fds
//! the gofer donates with `SCM_RIGHTS` as handles (design.md §4).
//!
//! * [`protocol`]: the versioned binary messages, with bounds-checked decoding.
//! * [`server`]: serves one connection beneath a root directory, one path
//!   component at a time, never following symlinks; [`serve`] is the entry point.
//! * [`client`]: the blocking client the VMM uses.
//! * [`confine`]: mount namespace, `pivot_root` and capability drop, to be run
//!   in the gofer process before serving.
//! * [`fuzzing`]: the decoders' fuzz target and a deterministic corpus for it.
//!
//! A gofer process, as the CLI is expected to run it:
//!
//! ```no_run
//! # fn main() -> Result<(), gofer::GoferError> {
//! # let (conn, _vmm_end) = gofer::seqpacket_pair().expect("socketpair");
//! use std::sync::Arc;
//! // Before confining: /proc is gone afterwards.
//! let proc_fd = Arc::new(gofer::ProcSelfFd::open()?);
//! let root = gofer::confine::confine("/path/to/rootfs".as_ref(), &[])?;
//! let config = gofer::Config { proc_self_fd: Some(proc_fd), ..gofer::Config::default() };
//! gofer::serve(conn, root, &config)?;
//! # Ok(()) }
//! ```
//!
//! * [`seccomp`]: the host seccomp filters of rvisor's processes (the gofer's
//!   list, and the machinery the VMM's list uses too).
//!
//! May depend on: `libc`, `thiserror`, `seccompiler`. Nothing of rvisor's.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod confine;
mod error;
pub mod fuzzing;
mod procfs;
pub mod protocol;
pub mod seccomp;
pub mod server;
mod sys;

#[cfg(test)]
mod testutil;

pub use error::GoferError;
pub use procfs::ProcSelfFd;
pub use server::{serve, Config, Lookup, Server};
pub use sys::seqpacket_pair;
