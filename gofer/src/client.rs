//! A blocking client for the gofer protocol: what the VMM uses to relay the
//! sentry's requests, and what the tests drive the server with.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use thiserror::Error;

use crate::protocol::{ProtoError, Reply, Request, MAX_MSG};
use crate::sys;

/// Why a call did not produce a reply.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The socket failed.
    #[error("gofer socket")]
    Io(#[source] io::Error),
    /// The server closed the connection.
    #[error("gofer closed the connection")]
    Closed,
    /// The reply could not be decoded.
    #[error("bad reply from gofer")]
    Proto(#[from] ProtoError),
    /// The reply answers another request.
    #[error("reply tag {got} does not match request tag {sent}")]
    TagMismatch {
        /// Tag sent.
        sent: u32,
        /// Tag received.
        got: u32,
    },
    /// An `Open`/`Create` reply came without its fd, or another reply with one.
    #[error("reply kind {kind:#x} came with {fds} fds")]
    FdMismatch {
        /// Reply kind.
        kind: u16,
        /// Fds received.
        fds: usize,
    },
}

/// A reply and, for `Open`/`Create`, the donated host fd.
#[derive(Debug)]
pub struct Response {
    /// The decoded reply.
    pub reply: Reply,
    /// The fd that came with it (close-on-exec).
    pub fd: Option<OwnedFd>,
}

/// One connection to a gofer; requests are answered in order.
#[derive(Debug)]
pub struct Client {
    sock: OwnedFd,
    next_tag: u32,
    buf: Vec<u8>,
    /// Requests sent with [`Client::post`] whose replies are still unread.
    posted: usize,
}

impl Client {
    /// Wraps a connected `SOCK_SEQPACKET` socket.
    pub fn new(sock: OwnedFd) -> Client {
        Client {
            sock,
            next_tag: 1,
            buf: vec![0u8; MAX_MSG + 1],
            posted: 0,
        }
    }

    /// Sends `req` without waiting for its reply (for requests whose
    /// answer does not matter, such as `Clunk`): the reply is read and
    /// dropped before the next call's, so the server handles it while the
    /// caller goes on.
    pub fn post(&mut self, req: &Request) -> Result<(), ClientError> {
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1);
        self.send_raw(&req.encode(tag))?;
        self.posted += 1;
        Ok(())
    }

    /// Sends `req` and waits for its reply.
    pub fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        while self.posted > 0 {
            self.posted -= 1;
            self.recv()?;
        }
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1);
        let (got, resp) = self.call_raw(&req.encode(tag))?;
        if got != tag {
            return Err(ClientError::TagMismatch { sent: tag, got });
        }
        Ok(resp)
    }

    /// Sends the bytes of one message as they are (for tests and fuzzing) and
    /// waits for a reply.
    pub fn call_raw(&mut self, msg: &[u8]) -> Result<(u32, Response), ClientError> {
        self.send_raw(msg)?;
        self.recv()
    }

    /// Sends the bytes of one message as they are.
    pub fn send_raw(&mut self, msg: &[u8]) -> Result<(), ClientError> {
        match sys::send_packet(self.sock.as_fd(), msg, None) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)) => {
                Err(ClientError::Closed)
            }
            Err(e) => Err(ClientError::Io(e)),
        }
    }

    /// Receives one reply with its tag.
    pub fn recv(&mut self) -> Result<(u32, Response), ClientError> {
        let packet = match sys::recv_packet(self.sock.as_fd(), &mut self.buf, true) {
            Ok(p) => p,
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => {
                return Err(ClientError::Closed)
            }
            Err(e) => return Err(ClientError::Io(e)),
        };
        if packet.len == 0 {
            return Err(ClientError::Closed);
        }
        if packet.truncated {
            return Err(ProtoError::TooLarge(packet.len).into());
        }
        let (tag, reply) = Reply::decode(&self.buf[..packet.len])?;
        let mut fds = packet.fds;
        let want = usize::from(reply.carries_fd());
        if fds.len() != want || packet.fds_truncated {
            return Err(ClientError::FdMismatch {
                kind: reply.kind(),
                fds: fds.len(),
            });
        }
        Ok((
            tag,
            Response {
                reply,
                fd: fds.pop(),
            },
        ))
    }
}
