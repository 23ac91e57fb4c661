//! The crate's error type for setting up and running a server.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use crate::protocol::ProtoError;

/// Why the gofer could not start, confine itself, or keep serving.
///
/// Request-level failures never show up here: they are answered with an
/// error reply and the server goes on.
#[derive(Debug, Error)]
pub enum GoferError {
    /// A host call failed; `op` names it.
    #[error("{op}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The host error.
        #[source]
        source: io::Error,
    },
    /// The connection fd is not a unix `SOCK_SEQPACKET` socket.
    #[error("the connection is not a unix SOCK_SEQPACKET socket")]
    NotSeqpacket,
    /// The root fd is not a directory.
    #[error("the root is not a directory")]
    RootNotDirectory,
    /// `/proc/self/fd` is not on procfs (for instance after `pivot_root`
    /// into a tree without /proc: open [`crate::ProcSelfFd`] before confining).
    #[error("/proc/self/fd is not on procfs")]
    NotProcfs,
    /// The [`crate::ProcSelfFd`] was opened by another process (inherited
    /// over fork), so its entries would name that process's fds.
    #[error("the /proc/self/fd handle belongs to process {opened_by}")]
    ForeignProcFd {
        /// Pid that opened it.
        opened_by: i32,
    },
    /// A packet could not be framed (shorter than a header, length field
    /// disagreeing with the packet, or over the size limit); the
    /// connection was closed because its tag cannot be trusted.
    #[error("malformed frame, connection closed")]
    Frame(#[source] ProtoError),
    /// A bind mount destination is not an absolute path of plain components.
    #[error("bind destination {0:?} must be absolute, without '.' or '..'")]
    BindDest(PathBuf),
    /// A bind mount destination exists with a type that does not match its source.
    #[error("bind destination {0:?} does not match its source's type")]
    BindDestType(PathBuf),
    /// A confinement step failed; `step` names it.
    #[error("confine: {step}")]
    Confine {
        /// What was being done.
        step: &'static str,
        /// The host error.
        #[source]
        source: io::Error,
    },
}

/// Maps an `io::Error` into [`GoferError::Io`] naming `op`.
pub(crate) fn io_err(op: &'static str) -> impl FnOnce(io::Error) -> GoferError {
    move |source| GoferError::Io { op, source }
}
