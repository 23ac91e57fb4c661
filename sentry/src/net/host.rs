//! inet, inet6 and NETLINK_ROUTE sockets (design §3 "Networking", phase
//! 1): each is a host socket the VMM opened in the container's network
//! namespace, named by a handle (`abi::net`). The sentry owns the socket
//! semantics the host cannot see — blocking (tasks wait in the guest on
//! the VMM's readiness table, so the vCPU keeps running others), signals
//! and restarts, SIGPIPE, SO_RCVTIMEO/SO_SNDTIMEO, MSG_WAITALL,
//! capability checks — and forwards the rest.
#![forbid(unsafe_code)]

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use abi::hypercall::IoVec;
use abi::linux::Stat;
use abi::net::{Msg, NetOp, SockAddr, SOCKADDR_MAX};

use super::*;
use crate::errno::{Errno, SysResult};
use crate::fs::{FileOps, UserSeg, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM, POLL_WQ};
use crate::host;
use crate::kernel::creds::{CAP_NET_BIND_SERVICE, CAP_NET_RAW};
use crate::kernel::task::Task;
use crate::kernel::wait::ERESTARTSYS;

pub const AF_INET: i32 = 2;
pub const AF_INET6: i32 = 10;
pub const AF_NETLINK: i32 = 16;

const SOL_SOCKET: i32 = super::SOL_SOCKET;
const EINPROGRESS: Errno = Errno(115);
const EALREADY: Errno = Errno(114);
const EPIPE: Errno = Errno(32);
const EACCES: Errno = Errno(13);
const EISCONN: Errno = super::EISCONN;

/// Inode numbers of host sockets (shared space with `unix`'s is not
/// needed: st_dev differs).
static NEXT_INO: AtomicU64 = AtomicU64::new(1 << 32);

/// A host socket.
pub struct HostSock {
    handle: u64,
    pub domain: i32,
    pub ty: u32,
    pub proto: i32,
    ino: u64,
    /// SO_RCVTIMEO / SO_SNDTIMEO in ns (0: wait forever). The host socket
    /// never blocks, so these live here.
    rcvtimeo: AtomicU64,
    sndtimeo: AtomicU64,
    /// Netlink: (the host's port id, the one the application sees). The
    /// host names an autobound socket after the VMM's pid; Linux would
    /// name it after the application's process.
    portid: spin::Mutex<Option<(u32, u32)>>,
    /// Netlink: bound to an explicit port id (kept as is).
    explicit: core::sync::atomic::AtomicBool,
    /// listen(2) succeeded: reads are an error, not a wait.
    listening: core::sync::atomic::AtomicBool,
    /// Stream bytes taken from the host ahead of the application's reads
    /// (each host call costs ~20 µs, so one fills the caller's buffer and
    /// this one).
    rx: spin::Mutex<RxBuf>,
}

/// A stream socket's read-ahead buffer: `buf[start..end]` is pending.
#[derive(Default)]
struct RxBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// Read-ahead sizes: at least a page, at most this.
const RX_MIN: usize = 4096;
const RX_MAX: usize = 256 << 10;

/// Netlink port ids the sandbox's sockets show (autobinding takes the
/// process id only when free, as Linux).
static PORTIDS: spin::Mutex<Vec<u32>> = spin::Mutex::new(Vec::new());

impl Drop for HostSock {
    fn drop(&mut self) {
        if let Some((_, g)) = *self.portid.lock() {
            let mut p = PORTIDS.lock();
            if let Some(i) = p.iter().position(|x| *x == g) {
                p.swap_remove(i);
            }
        }
        host::close(self.handle);
    }
}

/// Whether a family is served by host sockets.
pub fn is_host_family(domain: i32) -> bool {
    matches!(domain, AF_INET | AF_INET6 | AF_NETLINK)
}

/// Copies a sockaddr into the ABI's fixed buffer.
fn sockaddr(raw: &[u8]) -> Box<SockAddr> {
    let mut sa = Box::new(SockAddr::default());
    let n = raw.len().min(SOCKADDR_MAX);
    sa.data[..n].copy_from_slice(&raw[..n]);
    sa.len = n as u32;
    sa
}

fn family_of(raw: &[u8]) -> Option<i32> {
    (raw.len() >= 2).then(|| i32::from(u16::from_le_bytes([raw[0], raw[1]])))
}

/// The waiting a blocking operation does: until `events` (or an error or
/// hang-up) shows on the socket, a signal, or the timeout.
fn wait_for(t: &Task, s: &HostSock, events: u16, timeo_ns: u64) -> Result<(), Errno> {
    let deadline = (timeo_ns != 0).then(|| crate::kernel::clock::monotonic_ns().saturating_add(timeo_ns));
    let pending = || t.proc.pending();
    let want = events | POLLERR | POLLHUP;
    match POLL_WQ.wait(&t.shared, &pending, deadline, || (host::net_ready(s.handle) & want != 0).then_some(())) {
        Ok(()) => Ok(()),
        Err(Errno::ETIMEDOUT) => Err(Errno::EAGAIN),
        // Linux's sock_intr_errno: a socket with a timeout is not restarted.
        Err(e) if e == ERESTARTSYS && timeo_ns != 0 => Err(Errno::EINTR),
        Err(e) => Err(e),
    }
}

/// Wakes the tasks waiting on host sockets when the VMM says readiness
/// changed. Called at the sentry's safe points (idle loop, syscall entry,
/// preemption).
pub fn poll_events() {
    let bits = crate::kernel::preempt::take_net_flag();
    if bits & abi::net::NET_DRAIN != 0 {
        let _ = host::net(NetOp::Drain, 0, [0; 4]);
    }
    if bits != 0 {
        POLL_WQ.wake_all();
    }
}

/// Result of a receive.
pub struct Recv {
    pub ret: usize,
    pub from: Vec<u8>,
    pub flags: u32,
    /// Control messages (IP packet info...).
    pub control: Vec<u8>,
}

impl HostSock {
    /// socket(2) for a host family; `ty` without flags.
    pub fn create(t: &Task, domain: i32, ty: u32, proto: i32) -> Result<Arc<HostSock>, Errno> {
        if ty == SOCK_RAW && domain != AF_NETLINK && !t.creds.capable(CAP_NET_RAW) {
            return Err(Errno::EPERM);
        }
        let h = host::net(NetOp::Socket, 0, [domain as u64, u64::from(ty), proto as u32 as u64, 0])?;
        Ok(Arc::new(HostSock::new(h, domain, ty, proto)))
    }

    fn new(handle: u64, domain: i32, ty: u32, proto: i32) -> HostSock {
        HostSock {
            handle,
            domain,
            ty,
            proto,
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
            rcvtimeo: AtomicU64::new(0),
            sndtimeo: AtomicU64::new(0),
            portid: spin::Mutex::new(None),
            explicit: core::sync::atomic::AtomicBool::new(false),
            listening: core::sync::atomic::AtomicBool::new(false),
            rx: spin::Mutex::new(RxBuf::default()),
        }
    }

    /// Bytes in the read-ahead buffer.
    fn buffered(&self) -> usize {
        let rx = self.rx.lock();
        rx.end - rx.start
    }

    /// Serves a read from the read-ahead buffer into `segs` after the
    /// first `done` bytes: how many bytes it gave (consumed unless
    /// `peek`; not copied when `discard`, as MSG_TRUNC on TCP).
    fn take_buffered(&self, t: &Task, segs: &[UserSeg], done: usize, peek: bool, discard: bool) -> Result<usize, Errno> {
        let total: usize = segs.iter().map(|s| s.1).sum();
        let chunk = {
            let mut rx = self.rx.lock();
            let n = (rx.end - rx.start).min(total - done);
            if n == 0 {
                return Ok(0);
            }
            let chunk = if discard { Vec::new() } else { rx.buf[rx.start..rx.start + n].to_vec() };
            if !peek {
                rx.start += n;
            }
            (n, chunk)
        };
        let (n, data) = chunk;
        if !discard {
            let mut mm = t.mm.lock();
            let mut off = 0usize;
            for (va, len) in skip(segs, done) {
                if off >= n {
                    break;
                }
                let k = len.min(n - off);
                mm.copy_out(va, &data[off..off + k])?;
                off += k;
            }
        }
        Ok(n)
    }

    /// Whether an operation waiting for `events` would only get EAGAIN
    /// from the host now: the readiness table (current as of the last
    /// operation or host event) shows neither them nor an error or
    /// hang-up. Saves the ~20 µs exit of a doomed call.
    fn would_block(&self, events: u16) -> bool {
        self.ready() & (events | POLLERR | POLLHUP) == 0 && !(events & POLLIN != 0 && self.buffered() > 0)
    }

    /// The (host, sandbox) port ids of a bound netlink socket.
    fn portids(&self, t: &Task) -> Option<(u32, u32)> {
        if self.domain != AF_NETLINK {
            return None;
        }
        let mut g = self.portid.lock();
        if g.is_none() {
            let name = self.host_name(false).ok()?;
            let host = u32::from_le_bytes(name.get(4..8)?.try_into().ok()?);
            if host == 0 {
                return None;
            }
            let mut used = PORTIDS.lock();
            let mine = if self.explicit.load(Ordering::Relaxed) || used.contains(&t.pid()) || host > i32::MAX as u32 { host } else { t.pid() };
            used.push(mine);
            *g = Some((host, mine));
        }
        *g
    }

    /// Rewrites the host's port id to the sandbox's in received netlink
    /// messages (`nlmsg_pid` of replies names the requester).
    fn fix_portids(&self, t: &Task, segs: &[UserSeg], n: usize) {
        let Some((host, mine)) = self.portids(t) else { return };
        if host == mine || n < 16 {
            return;
        }
        let mut data = vec![0u8; n];
        let mut off = 0;
        {
            let mut mm = t.mm.lock();
            for &(va, len) in segs {
                let k = len.min(n - off);
                if k == 0 || mm.copy_in(va, &mut data[off..off + k]).is_err() {
                    break;
                }
                off += k;
            }
        }
        let mut changed = false;
        let mut at = 0usize;
        while off.saturating_sub(at) >= 16 {
            let len = u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
            if u32::from_le_bytes([data[at + 12], data[at + 13], data[at + 14], data[at + 15]]) == host {
                data[at + 12..at + 16].copy_from_slice(&mine.to_le_bytes());
                changed = true;
            }
            if len < 16 {
                break;
            }
            at += (len + 3) & !3;
        }
        if changed {
            let mut mm = t.mm.lock();
            let mut pos = 0;
            for &(va, len) in segs {
                let k = len.min(off - pos);
                if k == 0 || mm.copy_out(va, &data[pos..pos + k]).is_err() {
                    break;
                }
                pos += k;
            }
        }
    }

    fn op(&self, op: NetOp, a: [u64; 4]) -> Result<u64, Errno> {
        host::net(op, self.handle, a)
    }

    pub fn ready(&self) -> u16 {
        host::net_ready(self.handle)
    }

    /// Linux's minimum address lengths and the privileged-port check.
    fn check_addr(&self, t: &Task, raw: &[u8], bind: bool) -> Result<(), Errno> {
        let fam = family_of(raw).ok_or(Errno::EINVAL)?;
        let min = match (self.domain, fam) {
            (_, 0) if !bind => 2,
            (AF_INET, _) => 16,
            (AF_INET6, _) => 24,
            (AF_NETLINK, _) => 12,
            _ => 2,
        };
        if raw.len() < min {
            return Err(Errno::EINVAL);
        }
        if bind && matches!(fam, AF_INET | AF_INET6) && fam == self.domain {
            let port = u16::from_be_bytes([raw[2], raw[3]]);
            let start = crate::fs::proc::sysctl_u32("net.ipv4.ip_unprivileged_port_start", 1024);
            if port != 0 && u32::from(port) < start && !t.creds.capable(CAP_NET_BIND_SERVICE) {
                return Err(EACCES);
            }
        }
        Ok(())
    }

    pub fn bind(&self, t: &Task, raw: &[u8]) -> Result<(), Errno> {
        self.check_addr(t, raw, true)?;
        if self.domain == AF_NETLINK {
            // A port id another sandbox socket shows is taken, whatever
            // the host calls it.
            let want = raw.get(4..8).map(|p| u32::from_le_bytes([p[0], p[1], p[2], p[3]])).unwrap_or(0);
            if want != 0 && PORTIDS.lock().contains(&want) && self.portid.lock().is_none_or(|(_, g)| g != want) {
                return Err(EADDRINUSE);
            }
        }
        let sa = sockaddr(raw);
        self.op(NetOp::Bind, [host::gpa(&*sa), 0, 0, 0])?;
        if self.domain == AF_NETLINK && raw.get(4..8).is_some_and(|p| p != [0; 4]) {
            self.explicit.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    pub fn listen(&self, backlog: i32) -> Result<(), Errno> {
        if self.ty != SOCK_STREAM {
            return Err(Errno::EOPNOTSUPP);
        }
        self.op(NetOp::Listen, [backlog.max(0) as u64, 0, 0, 0])?;
        self.listening.store(true, Ordering::Relaxed);
        Ok(())
    }

    pub fn connect(&self, t: &Task, raw: &[u8], nonblock: bool) -> Result<(), Errno> {
        self.check_addr(t, raw, false)?;
        let sa = sockaddr(raw);
        let mut first = true;
        loop {
            match self.op(NetOp::Connect, [host::gpa(&*sa), 0, 0, 0]) {
                // The host finishes a pending connect on the next call:
                // 0 once established (then EISCONN), or the failure.
                Err(e) if (e == EINPROGRESS || e == EALREADY) && !nonblock && self.ty == SOCK_STREAM => {
                    match wait_for(t, self, POLLOUT, self.sndtimeo.load(Ordering::Relaxed)) {
                        Ok(()) => {}
                        Err(Errno::EAGAIN) => return Err(EINPROGRESS),
                        Err(e) if e == ERESTARTSYS => return Err(Errno::EINTR),
                        Err(e) => return Err(e),
                    }
                }
                Err(e) if e == EISCONN && !first => return Ok(()),
                r => return r.map(|_| ()),
            }
            first = false;
        }
    }

    /// accept4(2): the new socket and the peer's address.
    pub fn accept(&self, t: &Task, nonblock: bool) -> Result<(Arc<HostSock>, Vec<u8>), Errno> {
        let sa = Box::new(SockAddr::default());
        loop {
            if self.listening.load(Ordering::Relaxed) && self.would_block(POLLIN) {
                if nonblock {
                    return Err(Errno::EAGAIN);
                }
                wait_for(t, self, POLLIN, self.rcvtimeo.load(Ordering::Relaxed))?;
            }
            match self.op(NetOp::Accept, [host::gpa(&*sa), 0, 0, 0]) {
                Ok(h) => {
                    let n = (sa.len as usize).min(SOCKADDR_MAX);
                    return Ok((Arc::new(HostSock::new(h, self.domain, self.ty, self.proto)), sa.data[..n].to_vec()));
                }
                Err(Errno::EAGAIN) if !nonblock => wait_for(t, self, POLLIN, self.rcvtimeo.load(Ordering::Relaxed))?,
                Err(e) => return Err(e),
            }
        }
    }

    pub fn shutdown(&self, how: i32) -> Result<(), Errno> {
        if !(0..=2).contains(&how) {
            return Err(Errno::EINVAL);
        }
        self.op(NetOp::Shutdown, [how as u64, 0, 0, 0]).map(|_| ())
    }

    /// getsockname (peer false) or getpeername.
    pub fn name(&self, t: &Task, peer: bool) -> Result<Vec<u8>, Errno> {
        let mut b = self.host_name(peer)?;
        if !peer {
            if let Some((_, mine)) = self.portids(t) {
                if b.len() >= 8 {
                    b[4..8].copy_from_slice(&mine.to_le_bytes());
                }
            }
        }
        Ok(b)
    }

    fn host_name(&self, peer: bool) -> Result<Vec<u8>, Errno> {
        let sa = Box::new(SockAddr::default());
        self.op(NetOp::Name, [u64::from(peer), host::gpa(&*sa), 0, 0])?;
        Ok(sa.data[..(sa.len as usize).min(SOCKADDR_MAX)].to_vec())
    }

    pub fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        if level == SOL_SOCKET && matches!(name, SO_RCVTIMEO_OLD | SO_RCVTIMEO_NEW | SO_SNDTIMEO_OLD | SO_SNDTIMEO_NEW) {
            if val.len() < 16 {
                return Err(Errno::EINVAL);
            }
            let sec = i64::from_le_bytes(val[0..8].try_into().map_err(|_| Errno::EINVAL)?);
            let usec = i64::from_le_bytes(val[8..16].try_into().map_err(|_| Errno::EINVAL)?);
            if !(0..1_000_000).contains(&usec) {
                return Err(EDOM);
            }
            let ns = if sec < 0 { 0 } else { (sec as u64).saturating_mul(1_000_000_000).saturating_add(usec as u64 * 1000) };
            let slot = if matches!(name, SO_RCVTIMEO_OLD | SO_RCVTIMEO_NEW) { &self.rcvtimeo } else { &self.sndtimeo };
            slot.store(ns, Ordering::Relaxed);
            return Ok(());
        }
        let buf = val.to_vec();
        self.op(NetOp::SetOpt, [level as u32 as u64, name as u32 as u64, host::gpa(&buf[..]), buf.len() as u64]).map(|_| ())
    }

    /// getsockopt: the value (at most `cap` bytes).
    pub fn getsockopt(&self, level: i32, name: i32, cap: usize) -> Result<Vec<u8>, Errno> {
        if level == SOL_SOCKET && matches!(name, SO_RCVTIMEO_OLD | SO_RCVTIMEO_NEW | SO_SNDTIMEO_OLD | SO_SNDTIMEO_NEW) {
            let slot = if matches!(name, SO_RCVTIMEO_OLD | SO_RCVTIMEO_NEW) { &self.rcvtimeo } else { &self.sndtimeo };
            let ns = slot.load(Ordering::Relaxed);
            let mut v = Vec::with_capacity(16);
            v.extend_from_slice(&((ns / 1_000_000_000) as i64).to_le_bytes());
            v.extend_from_slice(&(((ns % 1_000_000_000) / 1000) as i64).to_le_bytes());
            return Ok(v);
        }
        let mut buf = vec![0u8; cap.clamp(1, 512)];
        let n = self.op(NetOp::GetOpt, [level as u32 as u64, name as u32 as u64, host::gpa(&buf[..]), buf.len() as u64])? as usize;
        buf.truncate(n.min(cap));
        Ok(buf)
    }

    /// One send of `iov` (already gathered guest-physical buffers).
    fn send_once(&self, iov: &[IoVec], flags: u32, to: Option<&SockAddr>, control: &[u8]) -> Result<u64, Errno> {
        let mut m = Box::new(Msg { iov_gpa: host::gpa(iov), iov_count: iov.len() as u64, ..Msg::default() });
        if !control.is_empty() {
            m.control_gpa = host::gpa(control);
            m.control_len = control.len() as u64;
        }
        if let Some(a) = to {
            m.addr = *a;
        }
        self.op(NetOp::Send, [host::gpa(&*m), u64::from(flags), 0, 0])
    }

    /// send/sendto/sendmsg: blocks until everything is sent on a blocking
    /// stream, raises SIGPIPE on a broken stream unless MSG_NOSIGNAL.
    pub fn send(&self, t: &Task, segs: &[UserSeg], flags: u32, to: Option<&[u8]>, control: &[u8], nonblock: bool) -> SysResult {
        let total: usize = segs.iter().map(|s| s.1).sum();
        self.send_from(t, total, flags, to, control, nonblock, &mut |done, send| {
            // The address space stays locked across the host call so the
            // frames cannot be unmapped and reused while the host reads them.
            let rest = skip(segs, done);
            let mut mm = t.mm.lock();
            let iov = crate::fs::host::gather(&mut mm, &rest, false)?;
            send(&iov)
        })
    }

    /// send from a sentry buffer (sendfile and splice to a socket).
    pub fn send_kernel(&self, t: &Task, buf: &[u8], nonblock: bool) -> SysResult {
        let max = abi::hypercall::MAX_IO_BYTES as usize;
        self.send_from(t, buf.len(), 0, None, &[], nonblock, &mut |done, send| {
            let rest = &buf[done..];
            let n = rest.len().min(max);
            let iov = [IoVec { gpa: crate::mm::phys::va_to_pa(rest.as_ptr() as u64), len: n as u64 }];
            send(if n == 0 { &[] } else { &iov })
        })
    }

    /// The send loop: `piece(done, send)` hands `send` the scatter list of
    /// the bytes after the first `done`; an empty list when some were asked
    /// for means there are no more (None).
    #[allow(clippy::too_many_arguments)]
    fn send_from(
        &self,
        t: &Task,
        total: usize,
        flags: u32,
        to: Option<&[u8]>,
        control: &[u8],
        nonblock: bool,
        piece: &mut NextPiece,
    ) -> SysResult {
        let to = match to {
            Some(raw) if self.ty != SOCK_STREAM => {
                self.check_addr(t, raw, false)?;
                Some(sockaddr(raw))
            }
            _ => None,
        };
        let nonblock = nonblock || flags & MSG_DONTWAIT != 0;
        let mut done = 0usize;
        loop {
            if self.would_block(POLLOUT) {
                if nonblock {
                    return if done > 0 { Ok(done as u64) } else { Err(Errno::EAGAIN) };
                }
                if let Err(e) = wait_for(t, self, POLLOUT, self.sndtimeo.load(Ordering::Relaxed)) {
                    return if done > 0 { Ok(done as u64) } else { Err(e) };
                }
            }
            // Control data goes with the first piece only.
            let c = if done == 0 { control } else { &[] };
            let r = piece(done, &mut |iov| {
                if iov.is_empty() && total > 0 {
                    return Ok(None);
                }
                self.send_once(iov, flags & !(MSG_DONTWAIT | MSG_NOSIGNAL), to.as_deref(), c).map(Some)
            });
            match r {
                Ok(None) => return Ok(done as u64),
                Ok(Some(n)) => {
                    done += n as usize;
                    if done >= total || self.ty != SOCK_STREAM || nonblock {
                        return Ok(done as u64);
                    }
                }
                Err(Errno::EAGAIN) if !nonblock => {
                    if let Err(e) = wait_for(t, self, POLLOUT, self.sndtimeo.load(Ordering::Relaxed)) {
                        return if done > 0 { Ok(done as u64) } else { Err(e) };
                    }
                }
                Err(e) if e == EPIPE => {
                    if flags & MSG_NOSIGNAL == 0 && self.ty == SOCK_STREAM {
                        use crate::kernel::signal;
                        let info = signal::SigInfo::from_sender(signal::SI_USER, t.pid(), t.creds.uid);
                        signal::send_to_thread(&t.proc, &t.shared, signal::SIGPIPE, info);
                    }
                    return if done > 0 { Ok(done as u64) } else { Err(e) };
                }
                Err(e) => return if done > 0 { Ok(done as u64) } else { Err(e) },
            }
        }
    }

    /// recv/recvfrom/recvmsg. MSG_WAITALL on a stream keeps reading until
    /// the buffer is full, the peer is done, or a signal comes.
    pub fn recv(&self, t: &Task, segs: &[UserSeg], flags: u32, control_cap: usize, nonblock: bool) -> Result<Recv, Errno> {
        let mut nonblock = nonblock || flags & MSG_DONTWAIT != 0;
        let waitall = flags & MSG_WAITALL != 0 && self.ty == SOCK_STREAM && flags & MSG_PEEK == 0;
        let total: usize = segs.iter().map(|s| s.1).sum();
        let mut done = 0usize;
        let mut from = Vec::new();
        let mut out_flags = 0u32;
        let mut control = vec![0u8; control_cap.min(abi::net::CONTROL_MAX as usize)];
        let mut control_len = 0usize;
        let ahead = self.ty == SOCK_STREAM && flags & (MSG_OOB | MSG_ERRQUEUE) == 0;
        loop {
            if ahead {
                let n = self.take_buffered(t, segs, done, flags & MSG_PEEK != 0, flags & MSG_TRUNC != 0)?;
                done += n;
                if n > 0 && (done >= total || flags & MSG_PEEK != 0) {
                    return Ok(Recv { ret: done, from, flags: out_flags, control: Vec::new() });
                }
                if n > 0 && !waitall {
                    // The rest of the buffer gets what the host has now,
                    // without waiting (as one read of the host's queue).
                    nonblock = true;
                }
            }
            let want = POLLIN | POLLRDHUP_BIT;
            if flags & (MSG_ERRQUEUE | MSG_OOB) == 0 && !self.listening.load(Ordering::Relaxed) && self.would_block(want) {
                let r = if nonblock { Err(Errno::EAGAIN) } else { wait_for(t, self, want, self.rcvtimeo.load(Ordering::Relaxed)) };
                if let Err(e) = r {
                    return if done > 0 { Ok(Recv { ret: done, from, flags: out_flags, control: Vec::new() }) } else { Err(e) };
                }
            }
            let rest = skip(segs, done);
            let rest_len: usize = rest.iter().map(|s| s.1).sum();
            // The read-ahead buffer rides along with a plain read (it is
            // empty here: served above).
            let mut ra = if ahead && flags & (MSG_PEEK | MSG_TRUNC) == 0 {
                let mut b = core::mem::take(&mut self.rx.lock().buf);
                let size = (rest_len.saturating_mul(2)).clamp(RX_MIN, RX_MAX);
                if b.len() < size {
                    b = vec![0u8; size];
                }
                Some(b)
            } else {
                None
            };
            let r = {
                let mut mm = t.mm.lock();
                let mut iov = crate::fs::host::gather(&mut mm, &rest, true)?;
                if let Some(b) = &ra {
                    if (iov.len() as u64) < abi::hypercall::MAX_IOVECS {
                        iov.push(IoVec { gpa: host::gpa(&b[..]), len: b.len() as u64 });
                    }
                }
                let mut m = Box::new(Msg { iov_gpa: host::gpa(&iov[..]), iov_count: iov.len() as u64, ..Msg::default() });
                if !control.is_empty() && done == 0 {
                    m.control_gpa = host::gpa(&control[..]);
                    m.control_len = control.len() as u64;
                }
                let r = self.op(NetOp::Recv, [host::gpa(&*m), u64::from(flags & !(MSG_DONTWAIT | MSG_WAITALL)), 0, 0]);
                if r.is_ok() {
                    from = m.addr.data[..(m.addr.len as usize).min(SOCKADDR_MAX)].to_vec();
                    out_flags = m.flags as u32;
                    if done == 0 {
                        control_len = (m.control_len as usize).min(control.len());
                    }
                }
                r
            };
            let r = match (r, ra.take()) {
                (Ok(n), Some(b)) => {
                    // Bytes past the caller's buffer landed in read-ahead.
                    let extra = (n as usize).saturating_sub(rest_len);
                    let mut rx = self.rx.lock();
                    rx.buf = b;
                    rx.start = 0;
                    rx.end = extra.min(rx.buf.len());
                    drop(rx);
                    Ok(n - extra as u64)
                }
                (r, Some(b)) => {
                    self.rx.lock().buf = b;
                    r
                }
                (r, None) => r,
            };
            match r {
                Ok(n) => {
                    if self.domain == AF_NETLINK && flags & MSG_TRUNC == 0 {
                        self.fix_portids(t, segs, n as usize);
                    }
                    done += n as usize;
                    if !waitall || n == 0 || done >= total {
                        control.truncate(control_len);
                        return Ok(Recv { ret: if waitall || self.ty == SOCK_STREAM { done } else { n as usize }, from, flags: out_flags, control });
                    }
                }
                Err(Errno::EAGAIN) if !nonblock => {
                    if let Err(e) = wait_for(t, self, POLLIN | POLLRDHUP_BIT, self.rcvtimeo.load(Ordering::Relaxed)) {
                        if done > 0 {
                            return Ok(Recv { ret: done, from, flags: out_flags, control: control[..control_len].to_vec() });
                        }
                        return Err(e);
                    }
                }
                Err(e) => {
                    if done > 0 {
                        return Ok(Recv { ret: done, from, flags: out_flags, control: control[..control_len].to_vec() });
                    }
                    return Err(e);
                }
            }
        }
    }

    /// recv into a sentry buffer (splice from a socket): bytes read ahead
    /// first, else one host recv straight into `buf`.
    pub fn recv_kernel(&self, t: &Task, buf: &mut [u8], nonblock: bool) -> SysResult {
        if buf.is_empty() {
            return Ok(0);
        }
        {
            let mut rx = self.rx.lock();
            let n = (rx.end - rx.start).min(buf.len());
            if n > 0 {
                buf[..n].copy_from_slice(&rx.buf[rx.start..rx.start + n]);
                rx.start += n;
                return Ok(n as u64);
            }
        }
        let want = POLLIN | POLLRDHUP_BIT;
        let len = buf.len().min(abi::hypercall::MAX_IO_BYTES as usize);
        let iov = [IoVec { gpa: crate::mm::phys::va_to_pa(buf.as_mut_ptr() as u64), len: len as u64 }];
        loop {
            if !self.listening.load(Ordering::Relaxed) && self.would_block(want) {
                if nonblock {
                    return Err(Errno::EAGAIN);
                }
                wait_for(t, self, want, self.rcvtimeo.load(Ordering::Relaxed))?;
            }
            let m = Box::new(Msg { iov_gpa: host::gpa(&iov[..]), iov_count: 1, ..Msg::default() });
            match self.op(NetOp::Recv, [host::gpa(&*m), 0, 0, 0]) {
                Err(Errno::EAGAIN) if !nonblock => wait_for(t, self, want, self.rcvtimeo.load(Ordering::Relaxed))?,
                r => return r,
            }
        }
    }

    /// Socket ioctls: FIONREAD, SIOCOUTQ, SIOCATMARK and the interface
    /// queries (SIOCGIF*).
    pub fn ioctl(&self, t: &Task, req: u64, arg: u64) -> SysResult {
        match req {
            0x541b | 0x5411 | 0x8905 | 0x894b => {
                let v = Box::new(0i32);
                self.op(NetOp::Ioctl, [req, host::gpa(&*v), 0, 0])?;
                // FIONREAD counts what was read ahead too.
                let extra = if req == 0x541b { self.buffered() as i32 } else { 0 };
                t.mm.lock().write_obj(arg, &v.saturating_add(extra)).map(|()| 0)
            }
            _ => self.iface_ioctl(t, req, arg).unwrap_or(Err(Errno::ENOTTY)),
        }
    }

    /// The interface queries (SIOCGIFCONF, SIOCGIF*), which Linux answers
    /// on a socket of any family; None for other requests.
    fn iface_ioctl(&self, t: &Task, req: u64, arg: u64) -> Option<SysResult> {
        const SIOCGIFCONF: u64 = 0x8912;
        Some(match req {
            SIOCGIFCONF => (|| {
                // struct ifconf { int ifc_len; (pad) char *ifc_buf; }
                let (len, buf): (i32, u64) = {
                    let mut mm = t.mm.lock();
                    (mm.read_obj(arg)?, mm.read_obj(arg + 8)?)
                };
                let cap = (len.max(0) as usize).min(64 << 10);
                let tmp = vec![0u8; cap.max(1)];
                let used = self.op(NetOp::Ioctl, [req, if buf == 0 { 0 } else { host::gpa(&tmp[..]) }, cap as u64, 0])? as usize;
                let mut mm = t.mm.lock();
                if buf != 0 && used > 0 {
                    mm.copy_out(buf, &tmp[..used.min(cap)])?;
                }
                mm.write_obj(arg, &(used as i32)).map(|()| 0)
            })(),
            0x8910 | 0x8913 | 0x8915 | 0x8917 | 0x8919 | 0x891b | 0x891d | 0x8921 | 0x8927 | 0x8933 | 0x8942 => (|| {
                let mut ifr = [0u8; 40];
                t.mm.lock().copy_in(arg, &mut ifr)?;
                let b = Box::new(ifr);
                self.op(NetOp::Ioctl, [req, host::gpa(&*b), 0, 0])?;
                t.mm.lock().copy_out(arg, &b[..]).map(|()| 0)
            })(),
            _ => return None,
        })
    }

    pub fn ino(&self) -> u64 {
        self.ino
    }
}

/// A host socket for interface queries made on sockets that have none
/// (glibc's if_nametoindex asks a unix socket).
static IFACE_SOCK: spin::Mutex<Option<Arc<HostSock>>> = spin::Mutex::new(None);

/// Answers an interface ioctl (SIOCGIF*) made on a sentry socket; None
/// if `req` is not one.
pub fn iface_ioctl(t: &Task, req: u64, arg: u64) -> Option<SysResult> {
    if !matches!(req, 0x8910 | 0x8912 | 0x8913 | 0x8915 | 0x8917 | 0x8919 | 0x891b | 0x891d | 0x8921 | 0x8927 | 0x8933 | 0x8942) {
        return None;
    }
    match iface_sock() {
        Ok(s) => s.iface_ioctl(t, req, arg),
        Err(e) => Some(Err(e)),
    }
}

fn iface_sock() -> Result<Arc<HostSock>, Errno> {
    let mut g = IFACE_SOCK.lock();
    if let Some(s) = g.as_ref() {
        return Ok(s.clone());
    }
    let h = host::net(NetOp::Socket, 0, [AF_INET as u64, u64::from(SOCK_DGRAM), 0, 0])?;
    let s = Arc::new(HostSock::new(h, AF_INET, SOCK_DGRAM, 0));
    *g = Some(s.clone());
    Ok(s)
}

/// An interface query (SIOCGIFFLAGS, SIOCGIFMTU, SIOCGIFHWADDR,
/// SIOCGIFINDEX, SIOCGIFTXQLEN) for the sentry itself (sysfs): the
/// `struct ifreq` the host filled in for interface `name`.
pub fn iface_query(req: u64, name: &str) -> Result<[u8; 40], Errno> {
    if !matches!(req, 0x8913 | 0x8921 | 0x8927 | 0x8933 | 0x8942) || name.len() >= 16 {
        return Err(Errno::EINVAL);
    }
    let mut ifr = Box::new([0u8; 40]);
    ifr[..name.len()].copy_from_slice(name.as_bytes());
    iface_sock()?.op(NetOp::Ioctl, [req, host::gpa(&*ifr), 0, 0])?;
    Ok(*ifr)
}

/// POLLRDHUP as the host reports it.
const POLLRDHUP_BIT: u16 = super::POLLRDHUP;

/// The part of `segs` after the first `n` bytes.
fn skip(segs: &[UserSeg], mut n: usize) -> Vec<UserSeg> {
    let mut out = Vec::with_capacity(segs.len());
    for &(a, l) in segs {
        if n >= l {
            n -= l;
            continue;
        }
        out.push((a + n as u64, l - n));
        n = 0;
    }
    out
}

/// Sends one scatter list: the bytes the host took, or None when the list
/// is empty because nothing was left.
type SendPiece<'a> = dyn FnMut(&[IoVec]) -> Result<Option<u64>, Errno> + 'a;

/// Hands a `SendPiece` the scatter list of the bytes after the first `done`.
type NextPiece<'a> = dyn FnMut(usize, &mut SendPiece) -> Result<Option<u64>, Errno> + 'a;

/// The open-file face of a host socket.
pub struct HostSockFile {
    pub sock: Arc<HostSock>,
    name: String,
}

impl HostSockFile {
    pub fn new(sock: Arc<HostSock>) -> HostSockFile {
        let name = format!("socket:[{}]", sock.ino);
        HostSockFile { sock, name }
    }
}

/// The host socket behind an open file, if it is one.
pub fn host_sock_of(f: &crate::fs::OpenFile) -> Option<&Arc<HostSock>> {
    f.ops.as_any()?.downcast_ref::<HostSockFile>().map(|s| &s.sock)
}

impl FileOps for HostSockFile {
    fn read(&self, t: &Task, segs: &[UserSeg], _off: Option<u64>, nonblock: bool) -> SysResult {
        self.sock.recv(t, segs, 0, 0, nonblock).map(|r| r.ret as u64)
    }

    fn write(&self, t: &Task, segs: &[UserSeg], _off: Option<u64>, nonblock: bool) -> SysResult {
        self.sock.send(t, segs, 0, None, &[], nonblock)
    }

    fn splice_write(&self, t: &Task, buf: &[u8], _off: Option<u64>, nonblock: bool) -> SysResult {
        self.sock.send_kernel(t, buf, nonblock)
    }

    fn splice_read(&self, t: &Task, buf: &mut [u8], _off: Option<u64>, nonblock: bool) -> SysResult {
        self.sock.recv_kernel(t, buf, nonblock)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(Stat { st_mode: 0o140777, st_nlink: 1, st_blksize: 4096, st_ino: self.sock.ino, st_dev: 9, ..Stat::default() })
    }

    fn ioctl(&self, t: &Task, req: u64, arg: u64) -> SysResult {
        self.sock.ioctl(t, req, arg)
    }

    fn path(&self) -> &str {
        &self.name
    }

    fn poll(&self, events: u16) -> u16 {
        let mut r = self.sock.ready();
        if self.sock.buffered() > 0 {
            r |= POLLIN;
        }
        if r & POLLIN != 0 {
            r |= POLLRDNORM;
        }
        if r & POLLOUT != 0 {
            r |= POLLWRNORM;
        }
        r & (events | POLLERR | POLLHUP)
    }

    fn as_any(&self) -> Option<&dyn core::any::Any> {
        Some(self)
    }
}
