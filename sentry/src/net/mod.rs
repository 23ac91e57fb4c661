//! Sockets (Linux: net/). The unix domain lives in the sentry (`unix`);
//! inet, inet6 and NETLINK_ROUTE sockets are host sockets in the
//! container's network namespace driven through the VMM (`host`); other
//! families answer `EAFNOSUPPORT`. The syscalls are in `syscalls/net.rs`.
//!
//! This module holds the ABI constants shared by the socket code.
#![forbid(unsafe_code)]

pub mod host;
pub mod unix;

use crate::errno::Errno;

/// Address families.
pub const AF_UNSPEC: u16 = 0;
pub const AF_UNIX: u16 = 1;
/// One past the highest family number Linux knows.
pub const AF_MAX: i32 = 46;

/// Socket types (the low 4 bits of socket(2)'s `type`).
pub const SOCK_STREAM: u32 = 1;
pub const SOCK_DGRAM: u32 = 2;
pub const SOCK_RAW: u32 = 3;
pub const SOCK_SEQPACKET: u32 = 5;
pub const SOCK_TYPE_MASK: u32 = 0xf;
/// One past the highest type (SOCK_PACKET + 1).
pub const SOCK_MAX: u32 = 11;
/// Creation flags folded into `type`.
pub const SOCK_NONBLOCK: u32 = 0o4000;
pub const SOCK_CLOEXEC: u32 = 0o2000000;

/// send/recv flags.
pub const MSG_OOB: u32 = 0x1;
pub const MSG_PEEK: u32 = 0x2;
pub const MSG_CTRUNC: u32 = 0x8;
pub const MSG_TRUNC: u32 = 0x20;
pub const MSG_DONTWAIT: u32 = 0x40;
pub const MSG_EOR: u32 = 0x80;
pub const MSG_ERRQUEUE: u32 = 0x2000;
pub const MSG_WAITALL: u32 = 0x100;
pub const MSG_NOSIGNAL: u32 = 0x4000;
pub const MSG_WAITFORONE: u32 = 0x10000;
pub const MSG_CMSG_CLOEXEC: u32 = 0x4000_0000;

/// Socket-level options (asm-generic/socket.h, which x86 uses).
pub const SOL_SOCKET: i32 = 1;
pub const SO_DEBUG: i32 = 1;
pub const SO_REUSEADDR: i32 = 2;
pub const SO_TYPE: i32 = 3;
pub const SO_ERROR: i32 = 4;
pub const SO_DONTROUTE: i32 = 5;
pub const SO_BROADCAST: i32 = 6;
pub const SO_SNDBUF: i32 = 7;
pub const SO_RCVBUF: i32 = 8;
pub const SO_KEEPALIVE: i32 = 9;
pub const SO_OOBINLINE: i32 = 10;
pub const SO_PRIORITY: i32 = 12;
pub const SO_LINGER: i32 = 13;
pub const SO_REUSEPORT: i32 = 15;
pub const SO_PASSCRED: i32 = 16;
pub const SO_PEERCRED: i32 = 17;
pub const SO_RCVLOWAT: i32 = 18;
pub const SO_SNDLOWAT: i32 = 19;
pub const SO_RCVTIMEO_OLD: i32 = 20;
pub const SO_SNDTIMEO_OLD: i32 = 21;
pub const SO_ACCEPTCONN: i32 = 30;
pub const SO_SNDBUFFORCE: i32 = 32;
pub const SO_RCVBUFFORCE: i32 = 33;
pub const SO_PROTOCOL: i32 = 38;
pub const SO_DOMAIN: i32 = 39;
pub const SO_COOKIE: i32 = 57;
pub const SO_RCVTIMEO_NEW: i32 = 66;
pub const SO_SNDTIMEO_NEW: i32 = 67;

/// Control message types at SOL_SOCKET.
pub const SCM_RIGHTS: i32 = 1;
pub const SCM_CREDENTIALS: i32 = 2;
/// Most files in one SCM_RIGHTS message (Linux: SCM_MAX_FD).
pub const SCM_MAX_FD: usize = 253;

/// Poll bits the socket code adds to those in `fs`.
pub const POLLWRBAND: u16 = 0x200;
pub const POLLRDHUP: u16 = 0x2000;

/// Socket errnos (not in `errno.rs`' list; strace prints them as numbers).
pub const EDOM: Errno = Errno(33);
pub const ENOTSOCK: Errno = Errno(88);
pub const EMSGSIZE: Errno = Errno(90);
pub const EPROTOTYPE: Errno = Errno(91);
pub const ENOPROTOOPT: Errno = Errno(92);
pub const EPROTONOSUPPORT: Errno = Errno(93);
pub const ESOCKTNOSUPPORT: Errno = Errno(94);
pub const EAFNOSUPPORT: Errno = Errno(97);
pub const EADDRINUSE: Errno = Errno(98);
pub const ECONNRESET: Errno = Errno(104);
pub const ENOBUFS: Errno = Errno(105);
pub const EISCONN: Errno = Errno(106);
pub const ENOTCONN: Errno = Errno(107);
pub const ETOOMANYREFS: Errno = Errno(109);
pub const ECONNREFUSED: Errno = Errno(111);

/// `struct ucred`: who sent a message or connected a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ucred {
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Ucred {
    /// What Linux reports when no credentials are known: pid 0 and the
    /// overflow ids (for SCM_CREDENTIALS) — see `NONE` for SO_PEERCRED.
    pub const NOBODY: Ucred = Ucred { pid: 0, uid: 65534, gid: 65534 };
    /// SO_PEERCRED of an unconnected socket.
    pub const NONE: Ucred = Ucred { pid: 0, uid: u32::MAX, gid: u32::MAX };

    /// The 12-byte wire form.
    pub fn to_bytes(self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[0..4].copy_from_slice(&self.pid.to_le_bytes());
        b[4..8].copy_from_slice(&self.uid.to_le_bytes());
        b[8..12].copy_from_slice(&self.gid.to_le_bytes());
        b
    }

    /// From the wire form (at least 12 bytes).
    pub fn from_bytes(b: &[u8]) -> Option<Ucred> {
        let w = |i: usize| b.get(i..i + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]));
        Some(Ucred { pid: w(0)?, uid: w(4)?, gid: w(8)? })
    }
}
