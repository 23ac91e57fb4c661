//! Networking (design §3 "Networking", phase 1): inet, inet6 and
//! NETLINK_ROUTE sockets of the application are host sockets that the VMM
//! opens in the container's network namespace and drives for the sentry
//! through [`crate::hypercall::Nr::Net`]. The sentry never gets a host fd:
//! it names a socket by its handle.
//!
//! Host sockets are always non-blocking; the sentry does the blocking
//! itself (the task waits in the guest, the vCPU runs others). To know
//! when to wake it, the VMM keeps the *current* poll state of every socket
//! handle in the readiness table at [`READY_GPA`] (one `u16` of poll bits
//! per handle, refreshed after every operation on it and whenever the
//! host's epoll reports an edge). Host events are taken (and the table
//! refreshed) only on the sentry's side of the VMM — after each socket
//! operation, around each halt, and on [`NetOp::Drain`] — so a sentry that
//! just sent on a loopback connection sees its peer become readable when
//! the hypercall returns. `Preempt::net` (vCPU 0) tells the sentry what to
//! do: [`NET_WAKE`] (the table changed: wake waiters) and [`NET_DRAIN`]
//! (events wait in the VMM: make a `Drain` call first; set by the VMM's
//! watcher thread, which also kicks a halted vCPU and preempts a busy one).

/// Guest-physical address of the readiness table (`u16` per handle).
pub const READY_GPA: u64 = 0x4_0000;
/// Entries in the readiness table: one per possible handle.
pub const READY_ENTRIES: u64 = 4096;

/// `Preempt::net` bit: the readiness table changed.
pub const NET_WAKE: u64 = 2;
/// `Preempt::net` bit: host events wait; `NetOp::Drain` takes them.
pub const NET_DRAIN: u64 = 1;

/// Sub-operations of `Nr::Net`: (op, handle, a, b, c, d).
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetOp {
    /// socket: handle ignored, a = domain, b = type (SOCK_STREAM,
    /// SOCK_DGRAM, SOCK_RAW; no flags), c = protocol. Returns a handle.
    Socket = 1,
    /// bind: a = gpa of a [`SockAddr`].
    Bind = 2,
    /// connect: a = gpa of a [`SockAddr`] (never blocks: EINPROGRESS).
    Connect = 3,
    /// listen: a = backlog.
    Listen = 4,
    /// accept: a = gpa of a [`SockAddr`] receiving the peer. Returns the
    /// new socket's handle.
    Accept = 5,
    /// shutdown: a = how.
    Shutdown = 6,
    /// getsockname (a = 0) or getpeername (a = 1): b = gpa of a [`SockAddr`].
    Name = 7,
    /// setsockopt: a = level, b = name, c = value gpa, d = value length.
    SetOpt = 8,
    /// getsockopt: a = level, b = name, c = buffer gpa, d = its length.
    /// Returns the value's length.
    GetOpt = 9,
    /// sendmsg: a = gpa of a [`Msg`], b = MSG_* flags. Returns bytes sent.
    Send = 10,
    /// recvmsg: a = gpa of a [`Msg`], b = MSG_* flags. Returns bytes
    /// received; fills `Msg::addr` and `Msg::flags`.
    Recv = 11,
    /// ioctl: a = request, b = argument gpa (an `int`, a `struct ifreq`
    /// or, for SIOCGIFCONF, the buffer), c = buffer length (SIOCGIFCONF).
    /// Returns the ioctl's result (SIOCGIFCONF: bytes used).
    Ioctl = 12,
    /// Read a file of the namespace's /proc/net: handle ignored, a =
    /// [`ProcNet`] index, b = buffer gpa, c = length, d = offset.
    ProcRead = 13,
    /// Take waiting host events into the readiness table: no arguments.
    Drain = 14,
}

impl NetOp {
    /// Decodes a raw value.
    pub fn from_u64(v: u64) -> Option<NetOp> {
        Some(match v {
            1 => NetOp::Socket,
            2 => NetOp::Bind,
            3 => NetOp::Connect,
            4 => NetOp::Listen,
            5 => NetOp::Accept,
            6 => NetOp::Shutdown,
            7 => NetOp::Name,
            8 => NetOp::SetOpt,
            9 => NetOp::GetOpt,
            10 => NetOp::Send,
            11 => NetOp::Recv,
            12 => NetOp::Ioctl,
            13 => NetOp::ProcRead,
            14 => NetOp::Drain,
            _ => return None,
        })
    }
}

/// Largest socket address (sizeof(struct sockaddr_storage)).
pub const SOCKADDR_MAX: usize = 128;

/// A socket address and its length.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SockAddr {
    /// Bytes used in `data` (in: the address's length; out: the full
    /// length the host reported, which may exceed 128 only in theory).
    pub len: u32,
    pub _pad: u32,
    pub data: [u8; SOCKADDR_MAX],
}
// SAFETY: repr(C), integers and a byte array, no padding (8 + 128 bytes).
unsafe impl crate::Pod for SockAddr {}

impl Default for SockAddr {
    fn default() -> SockAddr {
        SockAddr { len: 0, _pad: 0, data: [0; SOCKADDR_MAX] }
    }
}

/// A sendmsg/recvmsg request. Control messages cross only for the IP
/// levels (packet info, TTL, TOS, timestamps): never file descriptors.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Msg {
    /// Destination (send; `len` 0 = none) or source (recv, filled in).
    pub addr: SockAddr,
    /// gpa of an array of [`crate::hypercall::IoVec`].
    pub iov_gpa: u64,
    pub iov_count: u64,
    /// recv: the MSG_* flags of the message (MSG_TRUNC...).
    pub flags: u64,
    /// Control messages: gpa and length (recv: capacity in, bytes out).
    pub control_gpa: u64,
    pub control_len: u64,
}
// SAFETY: repr(C), Pod fields, no padding (136 + 5 x 8 bytes).
unsafe impl crate::Pod for Msg {}

/// Most control bytes one send or receive carries.
pub const CONTROL_MAX: u64 = 4096;

/// Files of /proc/net the sandbox may read (the namespace's own).
pub const PROC_NET: &[&str] = &["dev", "route", "tcp", "tcp6", "udp", "udp6", "raw", "raw6", "if_inet6", "netstat", "snmp", "snmp6", "sockstat", "sockstat6", "arp", "igmp", "dev_mcast", "ipv6_route"];
