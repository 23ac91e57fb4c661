//! Socket syscalls (Linux: net/socket.c, net/core/scm.c): socket,
//! socketpair, bind, listen, connect, accept/accept4, send/recv families
//! (incl. sendmmsg/recvmmsg and ancillary data), shutdown, getsockname,
//! getpeername, getsockopt/setsockopt. Only AF_UNIX exists for now (see
//! `net::unix`); other families are EAFNOSUPPORT.
//!
//! Everything read from the application (sockaddr lengths, msghdr,
//! iovecs, control messages) is bounded before use.
#![forbid(unsafe_code)]

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use super::Args;
use crate::errno::{Errno, SysResult};
use crate::fs::{OpenFile, UserSeg};
use crate::kernel::task::Task;
use crate::vfs::walk;
use crate::net::host::{host_sock_of, is_host_family, HostSock, HostSockFile};
use crate::net::unix::{cred_of, encode_name, parse_sockaddr, sock_of_file, Kind, Name, SockAddr, SocketFile, Sock, UserIo};
use crate::net::*;

/// Linux caps one transfer at this many bytes.
const MAX_RW: usize = 0x7fff_f000;
/// Most iovecs in one msghdr, and most messages in one sendmmsg/recvmmsg.
const UIO_MAXIOV: u64 = 1024;
/// sizeof(struct sockaddr_storage).
const SOCKADDR_STORAGE: usize = 128;
/// Largest control buffer sendmsg takes (net.core.optmem_max).
const OPTMEM_MAX: u64 = 131_072;
const O_RDWR: u32 = 2;
const O_NONBLOCK: u32 = 0o4000;
/// sizeof(struct msghdr), sizeof(struct mmsghdr), sizeof(struct cmsghdr).
const MSGHDR_LEN: u64 = 56;
const MMSGHDR_LEN: u64 = 64;
const CMSGHDR_LEN: usize = 16;

fn cmsg_align(n: usize) -> usize {
    (n + 7) & !7
}

/// The open file at `fd` and the socket behind it (ENOTSOCK otherwise).
fn sock_of(t: &Task, fd: i32) -> Result<(Arc<OpenFile>, Arc<Sock>), Errno> {
    let f = t.fds.lock().get(fd)?;
    let s = sock_of_file(&f).cloned().ok_or(ENOTSOCK)?;
    Ok((f, s))
}

/// The host socket (inet, inet6, netlink) at `fd`, if it is one.
fn host_of(t: &Task, fd: i32) -> Result<Option<(Arc<OpenFile>, Arc<HostSock>)>, Errno> {
    let f = t.fds.lock().get(fd)?;
    let s = host_sock_of(&f).cloned();
    Ok(s.map(|s| (f, s)))
}

/// Copies in a sockaddr of `len` bytes (EINVAL beyond sockaddr_storage).
fn read_addr(t: &Task, va: u64, len: i64) -> Result<Vec<u8>, Errno> {
    let len = usize::try_from(len).map_err(|_| Errno::EINVAL)?;
    if len > SOCKADDR_STORAGE {
        return Err(Errno::EINVAL);
    }
    let mut b = vec![0u8; len];
    t.mm.lock().copy_in(va, &mut b)?;
    Ok(b)
}

/// Parses a sockaddr against the caller's cwd.
fn parse(t: &Task, raw: &[u8]) -> Result<SockAddr, Errno> {
    let cwd = t.fs.lock().cwd.path.clone();
    parse_sockaddr(raw, &cwd)
}

/// The pathname of a pathname address, if it is one (and UTF-8, as the
/// VFS takes paths).
fn path_of(addr: &SockAddr) -> Option<&str> {
    match addr {
        SockAddr::Named(Name::Path { given, .. }) => core::str::from_utf8(given).ok(),
        _ => None,
    }
}

/// The name-table key of a socket inode: pathname sockets are found by
/// the inode a path leads to, as Linux does, so a link or rename of the
/// file still reaches the socket and a new file at the path is a new name.
fn inode_key(i: &dyn crate::vfs::Inode) -> Vec<u8> {
    let (dev, ino) = i.id();
    alloc::format!("\0inode:{dev}:{ino}").into_bytes()
}

/// Binding a pathname makes the socket's inode there (mode 0777 less the
/// umask; EADDRINUSE if the name exists). Returns the address keyed by
/// that inode, and how to remove it again if the bind fails.
fn make_socket_node(t: &Task, addr: SockAddr) -> Result<(SockAddr, Option<(crate::vfs::Location, alloc::string::String)>), Errno> {
    let SockAddr::Named(Name::Path { given, .. }) = &addr else { return Ok((addr, None)) };
    let p = core::str::from_utf8(given).map_err(|_| Errno::EINVAL)?;
    let cwd = t.fs.lock().cwd.clone();
    let (dir, name, trailing) = walk::resolve_parent(&cwd, p, &t.creds)?;
    if trailing || name == "." || name == ".." || dir.inode.lookup(&name).is_ok() {
        return Err(EADDRINUSE);
    }
    crate::vfs::perm::may_create(&*dir.inode, &t.creds)?;
    let umask = t.fs.lock().umask;
    let who = crate::vfs::Creator { uid: t.creds.fsuid, gid: t.creds.fsgid };
    let node = dir.inode.create(&name, crate::vfs::Kind::Socket, 0o777 & !umask, 0, who)?;
    let key = inode_key(&*node);
    Ok((SockAddr::Named(Name::Path { given: given.clone(), key }), Some((dir, name))))
}

/// A pathname address to connect or send to, keyed by the socket inode
/// its path leads to (ECONNREFUSED if the file is not a socket, EACCES
/// without write permission on it, as Linux).
fn by_inode(t: &Task, addr: SockAddr) -> Result<SockAddr, Errno> {
    let SockAddr::Named(Name::Path { given, .. }) = &addr else { return Ok(addr) };
    let p = core::str::from_utf8(given).map_err(|_| Errno::ENOENT)?;
    let cwd = t.fs.lock().cwd.clone();
    let loc = walk::resolve(&cwd, p, true, &t.creds)?;
    if loc.inode.kind() != crate::vfs::Kind::Socket {
        return Err(ECONNREFUSED);
    }
    crate::vfs::perm::check_inode(&*loc.inode, &t.creds, 2)?;
    Ok(SockAddr::Named(Name::Path { given: given.clone(), key: inode_key(&*loc.inode) }))
}

/// A pathname that names no bound socket: ECONNREFUSED if something else
/// is there, else why the path does not resolve (ENOENT, ENOTDIR...).
fn refine_unbound(t: &Task, addr: &SockAddr, e: Errno) -> Errno {
    let Some(p) = path_of(addr).filter(|_| e == Errno::ENOENT) else { return e };
    let cwd = t.fs.lock().cwd.clone();
    match walk::resolve(&cwd, p, true, &t.creds) {
        Ok(_) => ECONNREFUSED,
        Err(e) => e,
    }
}

/// Linux's move_addr_to_user: copies at most *lenp bytes of `b` to `va`
/// and stores the full length in *lenp.
fn write_addr(t: &Task, va: u64, lenp: u64, b: &[u8]) -> Result<(), Errno> {
    let len: i32 = t.mm.lock().read_obj(lenp)?;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let n = (len as usize).min(b.len());
    let mut mm = t.mm.lock();
    if n > 0 {
        mm.copy_out(va, &b[..n])?;
    }
    mm.write_obj(lenp, &(b.len() as i32))
}

/// Validates socket(2)/socketpair(2) arguments; returns the unix type.
fn check_create(domain: i32, ty: u32, proto: i32) -> Result<Kind, Errno> {
    if ty & !(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    if !(0..AF_MAX).contains(&domain) {
        return Err(EAFNOSUPPORT);
    }
    if ty & SOCK_TYPE_MASK >= SOCK_MAX {
        return Err(Errno::EINVAL);
    }
    if domain != i32::from(AF_UNIX) {
        return Err(EAFNOSUPPORT);
    }
    if proto != 0 && proto != i32::from(AF_UNIX) {
        return Err(EPROTONOSUPPORT);
    }
    Kind::from_type(ty & SOCK_TYPE_MASK).ok_or(ESOCKTNOSUPPORT)
}

fn socket_file(sock: Arc<Sock>, nonblock: bool) -> Arc<OpenFile> {
    OpenFile::new(Box::new(SocketFile::new(sock)), O_RDWR | if nonblock { O_NONBLOCK } else { 0 })
}

pub fn sys_socket(t: &mut Task, a: &Args) -> SysResult {
    let ty = a.u32(1);
    if is_host_family(a.i32(0)) {
        if ty & !(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 || ty & SOCK_TYPE_MASK >= SOCK_MAX {
            return Err(Errno::EINVAL);
        }
        let hs = HostSock::create(t, a.i32(0), ty & SOCK_TYPE_MASK, a.i32(2))?;
        let f = OpenFile::new(Box::new(HostSockFile::new(hs)), O_RDWR | if ty & SOCK_NONBLOCK != 0 { O_NONBLOCK } else { 0 });
        return t.fds.lock().install(f, ty & SOCK_CLOEXEC != 0, 0).map(|fd| fd as u64);
    }
    let kind = check_create(a.i32(0), ty, a.i32(2))?;
    let f = socket_file(Sock::new(kind, (t.creds.fsuid, t.creds.fsgid)), ty & SOCK_NONBLOCK != 0);
    t.fds.lock().install(f, ty & SOCK_CLOEXEC != 0, 0).map(|fd| fd as u64)
}

pub fn sys_socketpair(t: &mut Task, a: &Args) -> SysResult {
    let ty = a.u32(1);
    if is_host_family(a.i32(0)) {
        return Err(Errno::EOPNOTSUPP);
    }
    let kind = check_create(a.i32(0), ty, a.i32(2))?;
    let (x, y) = Sock::pair(kind, cred_of(t));
    let nonblock = ty & SOCK_NONBLOCK != 0;
    let cloexec = ty & SOCK_CLOEXEC != 0;
    let (fx, fy) = (socket_file(x, nonblock), socket_file(y, nonblock));
    let pair = {
        let mut fds = t.fds.lock();
        let a0 = fds.install(fx, cloexec, 0)?;
        match fds.install(fy, cloexec, 0) {
            Ok(a1) => [a0, a1],
            Err(e) => {
                let _ = fds.close(a0);
                return Err(e);
            }
        }
    };
    if let Err(e) = t.mm.lock().write_obj(a.u64(3), &pair) {
        let mut fds = t.fds.lock();
        let _ = fds.close(pair[0]);
        let _ = fds.close(pair[1]);
        return Err(e);
    }
    Ok(0)
}

pub fn sys_bind(t: &mut Task, a: &Args) -> SysResult {
    if let Some((_f, h)) = host_of(t, a.fd(0))? {
        let raw = read_addr(t, a.u64(1), i64::from(a.i32(2)))?;
        return h.bind(t, &raw).map(|()| 0);
    }
    let (_f, s) = sock_of(t, a.fd(0))?;
    let raw = read_addr(t, a.u64(1), i64::from(a.i32(2)))?;
    let addr = parse(t, &raw)?;
    let (addr, node) = make_socket_node(t, addr)?;
    s.bind(addr).map(|()| 0).inspect_err(|_| {
        if let Some((dir, name)) = node {
            let _ = dir.inode.unlink(&name, false);
        }
    })
}

pub fn sys_listen(t: &mut Task, a: &Args) -> SysResult {
    if let Some((_f, h)) = host_of(t, a.fd(0))? {
        return h.listen(a.i32(1)).map(|()| 0);
    }
    let (_f, s) = sock_of(t, a.fd(0))?;
    s.listen(a.i32(1), cred_of(t)).map(|()| 0)
}

pub fn sys_connect(t: &mut Task, a: &Args) -> SysResult {
    if let Some((f, h)) = host_of(t, a.fd(0))? {
        let raw = read_addr(t, a.u64(1), i64::from(a.i32(2)))?;
        return h.connect(t, &raw, f.nonblock()).map(|()| 0);
    }
    let (f, s) = sock_of(t, a.fd(0))?;
    let raw = read_addr(t, a.u64(1), i64::from(a.i32(2)))?;
    let addr = by_inode(t, parse(t, &raw)?)?;
    s.connect(t, addr.clone(), f.nonblock()).map(|()| 0).map_err(|e| refine_unbound(t, &addr, e))
}

pub fn sys_accept4(t: &mut Task, a: &Args) -> SysResult {
    let flags = a.u32(3);
    if flags & !(SOCK_CLOEXEC | SOCK_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    if let Some((f, h)) = host_of(t, a.fd(0))? {
        let (conn, name) = h.accept(t, f.nonblock())?;
        let nf = OpenFile::new(Box::new(HostSockFile::new(conn)), O_RDWR | if flags & SOCK_NONBLOCK != 0 { O_NONBLOCK } else { 0 });
        return install_accepted(t, nf, flags, a.u64(1), a.u64(2), &name);
    }
    let (f, s) = sock_of(t, a.fd(0))?;
    let conn = s.accept(t, f.nonblock())?;
    let name = conn.peer_name().unwrap_or_else(|_| encode_name(None));
    let nf = socket_file(conn, flags & SOCK_NONBLOCK != 0);
    install_accepted(t, nf, flags, a.u64(1), a.u64(2), &name)
}

/// Installs an accepted connection and reports the peer's address.
fn install_accepted(t: &Task, nf: Arc<OpenFile>, flags: u32, addr: u64, lenp: u64, name: &[u8]) -> SysResult {
    let fd = t.fds.lock().install(nf, flags & SOCK_CLOEXEC != 0, 0)?;
    if addr != 0 {
        if let Err(e) = write_addr(t, addr, lenp, name) {
            let _ = t.fds.lock().close(fd);
            return Err(e);
        }
    }
    Ok(fd as u64)
}

pub fn sys_accept(t: &mut Task, a: &Args) -> SysResult {
    sys_accept4(t, &Args([a.u64(0), a.u64(1), a.u64(2), 0, 0, 0]))
}

pub fn sys_shutdown(t: &mut Task, a: &Args) -> SysResult {
    if let Some((_f, h)) = host_of(t, a.fd(0))? {
        return h.shutdown(a.i32(1)).map(|()| 0);
    }
    let (_f, s) = sock_of(t, a.fd(0))?;
    s.shutdown(a.i32(1)).map(|()| 0)
}

pub fn sys_getsockname(t: &mut Task, a: &Args) -> SysResult {
    if let Some((_f, h)) = host_of(t, a.fd(0))? {
        let b = h.name(t, false)?;
        return write_addr(t, a.u64(1), a.u64(2), &b).map(|()| 0);
    }
    let (_f, s) = sock_of(t, a.fd(0))?;
    write_addr(t, a.u64(1), a.u64(2), &s.sock_name()).map(|()| 0)
}

pub fn sys_getpeername(t: &mut Task, a: &Args) -> SysResult {
    if let Some((_f, h)) = host_of(t, a.fd(0))? {
        let b = h.name(t, true)?;
        return write_addr(t, a.u64(1), a.u64(2), &b).map(|()| 0);
    }
    let (_f, s) = sock_of(t, a.fd(0))?;
    let b = s.peer_name()?;
    write_addr(t, a.u64(1), a.u64(2), &b).map(|()| 0)
}

/// Bytes of the value a SOL_SOCKET option reads.
fn optval_len(name: i32) -> usize {
    match name {
        SO_RCVTIMEO_OLD | SO_RCVTIMEO_NEW | SO_SNDTIMEO_OLD | SO_SNDTIMEO_NEW => 16,
        SO_LINGER => 8,
        _ => 4,
    }
}

pub fn sys_setsockopt(t: &mut Task, a: &Args) -> SysResult {
    let (level, name, optlen) = (a.i32(1), a.i32(2), a.i32(4));
    if let Some((_f, h)) = host_of(t, a.fd(0))? {
        if optlen < 0 {
            return Err(Errno::EINVAL);
        }
        let mut val = vec![0u8; (optlen as usize).min(256)];
        if !val.is_empty() {
            t.mm.lock().copy_in(a.u64(3), &mut val)?;
        }
        return h.setsockopt(level, name, &val).map(|()| 0);
    }
    let (_f, s) = sock_of(t, a.fd(0))?;
    if optlen < 0 {
        return Err(Errno::EINVAL);
    }
    if level != SOL_SOCKET {
        return Err(Errno::EOPNOTSUPP);
    }
    let n = (optlen as usize).min(optval_len(name));
    let mut val = vec![0u8; n];
    t.mm.lock().copy_in(a.u64(3), &mut val)?;
    s.setsockopt(name, &val, optlen as usize, t.creds.capable(crate::kernel::creds::CAP_NET_ADMIN)).map(|()| 0)
}

pub fn sys_getsockopt(t: &mut Task, a: &Args) -> SysResult {
    let (level, name, optval, lenp) = (a.i32(1), a.i32(2), a.u64(3), a.u64(4));
    if let Some((_f, h)) = host_of(t, a.fd(0))? {
        let len: i32 = t.mm.lock().read_obj(lenp)?;
        if len < 0 {
            return Err(Errno::EINVAL);
        }
        let v = h.getsockopt(level, name, len as usize)?;
        let n = (len as usize).min(v.len());
        let mut mm = t.mm.lock();
        mm.copy_out(optval, &v[..n])?;
        return mm.write_obj(lenp, &(n as i32)).map(|()| 0);
    }
    let (_f, s) = sock_of(t, a.fd(0))?;
    if level != SOL_SOCKET {
        return Err(Errno::EOPNOTSUPP);
    }
    let len: i32 = t.mm.lock().read_obj(lenp)?;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let v = s.getsockopt(name)?;
    let n = (len as usize).min(v.len());
    let mut mm = t.mm.lock();
    mm.copy_out(optval, &v[..n])?;
    mm.write_obj(lenp, &(n as i32)).map(|()| 0)
}

// ---- data -----------------------------------------------------------------

/// A user `struct msghdr`.
struct MsgHdr {
    name: u64,
    namelen: i32,
    iov: u64,
    iovlen: u64,
    control: u64,
    controllen: u64,
}

fn read_msghdr(t: &Task, va: u64) -> Result<MsgHdr, Errno> {
    let w: [u64; 7] = t.mm.lock().read_obj(va)?;
    let h = MsgHdr { name: w[0], namelen: w[1] as u32 as i32, iov: w[2], iovlen: w[3], control: w[4], controllen: w[5] };
    if h.namelen < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(h)
}

/// Reads a msghdr's iovec array (EMSGSIZE past UIO_MAXIOV), clamping the
/// total to MAX_RW.
fn read_iov(t: &Task, iov: u64, cnt: u64) -> Result<Vec<UserSeg>, Errno> {
    if cnt > UIO_MAXIOV {
        return Err(EMSGSIZE);
    }
    let mut raw = vec![0u8; cnt as usize * 16];
    t.mm.lock().copy_in(iov, &mut raw)?;
    let mut segs = Vec::with_capacity(cnt as usize);
    let mut total = 0usize;
    for c in raw.chunks_exact(16) {
        let base = u64::from_le_bytes(c[0..8].try_into().map_err(|_| Errno::EINVAL)?);
        let len = u64::from_le_bytes(c[8..16].try_into().map_err(|_| Errno::EINVAL)?);
        if len > isize::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        let len = (len as usize).min(MAX_RW - total);
        total += len;
        segs.push((base, len));
    }
    Ok(segs)
}

/// Control messages of a sendmsg: SCM_RIGHTS fds and SCM_CREDENTIALS.
#[derive(Debug, Default, PartialEq, Eq)]
struct SendCtl {
    fds: Vec<i32>,
    creds: Option<Ucred>,
}

/// Parses a sendmsg control buffer as Linux's __scm_send: EINVAL for a
/// malformed header, too many fds or an unknown SOL_SOCKET type; other
/// levels are skipped.
fn parse_control(buf: &[u8]) -> Result<SendCtl, Errno> {
    let mut c = SendCtl::default();
    let mut off = 0usize;
    while buf.len().saturating_sub(off) >= CMSGHDR_LEN {
        let h = &buf[off..];
        let clen = u64::from_le_bytes(h[0..8].try_into().map_err(|_| Errno::EINVAL)?);
        let level = i32::from_le_bytes(h[8..12].try_into().map_err(|_| Errno::EINVAL)?);
        let ty = i32::from_le_bytes(h[12..16].try_into().map_err(|_| Errno::EINVAL)?);
        if clen < CMSGHDR_LEN as u64 || clen > h.len() as u64 {
            return Err(Errno::EINVAL);
        }
        let clen = clen as usize;
        let data = &h[CMSGHDR_LEN..clen];
        if level == SOL_SOCKET {
            match ty {
                SCM_RIGHTS => {
                    let n = data.len() / 4;
                    if c.fds.len() + n > SCM_MAX_FD {
                        return Err(Errno::EINVAL);
                    }
                    c.fds.extend(data.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])));
                }
                SCM_CREDENTIALS => {
                    if clen != CMSGHDR_LEN + 12 {
                        return Err(Errno::EINVAL);
                    }
                    c.creds = Ucred::from_bytes(data);
                }
                _ => return Err(Errno::EINVAL),
            }
        }
        off = off.saturating_add(cmsg_align(clen));
    }
    Ok(c)
}

/// Builds a recvmsg control buffer of capacity `cap` as Linux's
/// put_cmsg / scm_detach_fds (truncation sets MSG_CTRUNC).
struct CtlOut {
    cap: usize,
    buf: Vec<u8>,
    ctrunc: bool,
}

impl CtlOut {
    fn new(cap: usize) -> CtlOut {
        CtlOut { cap, buf: Vec::new(), ctrunc: false }
    }

    fn avail(&self) -> usize {
        self.cap - self.buf.len()
    }

    fn header(&mut self, len: usize, ty: i32) {
        self.buf.extend_from_slice(&(len as u64).to_le_bytes());
        self.buf.extend_from_slice(&SOL_SOCKET.to_le_bytes());
        self.buf.extend_from_slice(&ty.to_le_bytes());
    }

    fn advance(&mut self, start: usize, space: usize) {
        let end = start + space.min(self.cap - start);
        self.buf.resize(end.max(self.buf.len()), 0);
        self.buf.truncate(end);
    }

    fn put(&mut self, ty: i32, data: &[u8]) {
        let avail = self.avail();
        if avail < CMSGHDR_LEN {
            self.ctrunc = true;
            return;
        }
        let mut len = CMSGHDR_LEN + data.len();
        if avail < len {
            self.ctrunc = true;
            len = avail;
        }
        let start = self.buf.len();
        self.header(len, ty);
        self.buf.extend_from_slice(&data[..len - CMSGHDR_LEN]);
        self.advance(start, CMSGHDR_LEN + cmsg_align(data.len()));
    }

    /// How many fds fit.
    fn fd_room(&self) -> usize {
        let avail = self.avail();
        if avail > CMSGHDR_LEN {
            (avail - CMSGHDR_LEN) / 4
        } else {
            0
        }
    }

    /// Records the installed `fds` out of `total` received.
    fn put_fds(&mut self, fds: &[i32], total: usize) {
        let room = self.fd_room();
        if !fds.is_empty() {
            let start = self.buf.len();
            self.header(CMSGHDR_LEN + 4 * fds.len(), SCM_RIGHTS);
            for fd in fds {
                self.buf.extend_from_slice(&fd.to_le_bytes());
            }
            self.advance(start, CMSGHDR_LEN + cmsg_align(4 * fds.len()));
        }
        if fds.len() < total || (total > 0 && room == 0) {
            self.ctrunc = true;
        }
    }
}

/// The destination of a send, as the socket type needs it.
fn destination(t: &Task, kind: Kind, raw: Option<Vec<u8>>) -> Result<Option<Name>, Errno> {
    let Some(raw) = raw else { return Ok(None) };
    match kind {
        // Seqpacket sockets ignore it; streams only care that one was given.
        Kind::SeqPacket => Ok(None),
        Kind::Stream => Ok(Some(Name::Abstract(Vec::new()))),
        Kind::Dgram => match by_inode(t, parse(t, &raw)?)? {
            SockAddr::Named(n) => Ok(Some(n)),
            _ => Err(Errno::EINVAL),
        },
    }
}

/// Sends, turning an unknown pathname destination into Linux's error.
#[allow(clippy::too_many_arguments)]
fn send_to(t: &Task, f: &OpenFile, s: &Arc<Sock>, segs: &[UserSeg], flags: u32, to: Option<Name>, rights: Vec<Arc<OpenFile>>, creds: Option<Ucred>) -> SysResult {
    let dest = to.clone().map(SockAddr::Named);
    let mut io = UserIo::new(t, segs);
    match s.send(t, &mut io, flags, f.nonblock(), to, rights, creds) {
        Err(e) if s.kind == Kind::Dgram => Err(dest.map_or(e, |d| refine_unbound(t, &d, e))),
        r => r,
    }
}

pub fn sys_sendto(t: &mut Task, a: &Args) -> SysResult {
    let segs = [(a.u64(1), a.usize(2).min(MAX_RW))];
    let (addr, alen) = (a.u64(4), a.i32(5));
    if let Some((f, h)) = host_of(t, a.fd(0))? {
        let raw = if addr != 0 && alen != 0 { Some(read_addr(t, addr, i64::from(alen))?) } else { None };
        return h.send(t, &segs, a.u32(3), raw.as_deref(), &[], f.nonblock());
    }
    let (f, s) = sock_of(t, a.fd(0))?;
    let raw = if addr != 0 && alen != 0 { Some(read_addr(t, addr, i64::from(alen))?) } else { None };
    let to = destination(t, s.kind, raw)?;
    send_to(t, &f, &s, &segs, a.u32(3), to, Vec::new(), None)
}

pub fn sys_recvfrom(t: &mut Task, a: &Args) -> SysResult {
    let segs = [(a.u64(1), a.usize(2).min(MAX_RW))];
    if let Some((f, h)) = host_of(t, a.fd(0))? {
        let r = h.recv(t, &segs, a.u32(3), 0, f.nonblock())?;
        if a.u64(4) != 0 {
            write_addr(t, a.u64(4), a.u64(5), &r.from)?;
        }
        return Ok(r.ret as u64);
    }
    let (f, s) = sock_of(t, a.fd(0))?;
    let mut io = UserIo::new(t, &segs);
    let r = s.recv(t, &mut io, a.u32(3), f.nonblock())?;
    if a.u64(4) != 0 {
        let name = r.from.as_ref().map(|n| encode_name(Some(n))).unwrap_or_default();
        write_addr(t, a.u64(4), a.u64(5), &name)?;
    }
    // Files passed with the data are dropped (closed) here, as Linux.
    Ok(r.ret as u64)
}

fn sendmsg_one(t: &Task, f: &OpenFile, s: &Arc<Sock>, va: u64, flags: u32) -> SysResult {
    let h = read_msghdr(t, va)?;
    let raw = if h.name != 0 && h.namelen != 0 {
        Some(read_addr(t, h.name, i64::from(h.namelen).min(SOCKADDR_STORAGE as i64))?)
    } else {
        None
    };
    let segs = read_iov(t, h.iov, h.iovlen)?;
    if h.controllen > i32::MAX as u64 || h.controllen > OPTMEM_MAX {
        return Err(ENOBUFS);
    }
    let mut ctl = vec![0u8; h.controllen as usize];
    if !ctl.is_empty() {
        t.mm.lock().copy_in(h.control, &mut ctl)?;
    }
    let c = parse_control(&ctl)?;
    let mut rights = Vec::with_capacity(c.fds.len());
    {
        let fds = t.fds.lock();
        for &fd in &c.fds {
            rights.push(fds.get(fd)?);
        }
    }
    if let Some(cr) = c.creds {
        // Linux's scm_check_creds: each claimed id must be one of the
        // sender's own unless it holds the matching capability.
        use crate::kernel::creds::{CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN};
        let me = &t.creds;
        let pid_ok = cr.pid == t.pid() || me.capable(CAP_SYS_ADMIN);
        let uid_ok = [me.uid, me.euid, me.suid].contains(&cr.uid) || me.capable(CAP_SETUID);
        let gid_ok = [me.gid, me.egid, me.sgid].contains(&cr.gid) || me.capable(CAP_SETGID);
        if !(pid_ok && uid_ok && gid_ok) {
            return Err(Errno::EPERM);
        }
    }
    let to = destination(t, s.kind, raw)?;
    send_to(t, f, s, &segs, flags, to, rights, c.creds)
}

fn recvmsg_one(t: &Task, f: &OpenFile, s: &Arc<Sock>, va: u64, flags: u32) -> SysResult {
    let h = read_msghdr(t, va)?;
    let segs = read_iov(t, h.iov, h.iovlen)?;
    let mut io = UserIo::new(t, &segs);
    let r = s.recv(t, &mut io, flags, f.nonblock())?;
    if h.name != 0 {
        let name = r.from.as_ref().map(|n| encode_name(Some(n))).unwrap_or_default();
        let n = (h.namelen as usize).min(SOCKADDR_STORAGE).min(name.len());
        let mut mm = t.mm.lock();
        if n > 0 {
            mm.copy_out(h.name, &name[..n])?;
        }
        mm.write_obj(va + 8, &(name.len() as u32))?;
    }
    let cap = if h.control == 0 { 0 } else { usize::try_from(h.controllen).unwrap_or(usize::MAX) };
    let mut ctl = CtlOut::new(cap);
    if let Some(c) = r.creds {
        ctl.put(SCM_CREDENTIALS, &c.to_bytes());
    }
    let total = r.rights.len();
    let room = ctl.fd_room().min(total);
    let cloexec = flags & MSG_CMSG_CLOEXEC != 0;
    let mut installed = Vec::new();
    let mut files = r.rights.into_iter();
    {
        let mut fds = t.fds.lock();
        for file in files.by_ref().take(room) {
            match fds.install(file, cloexec, 0) {
                Ok(fd) => installed.push(fd),
                Err(_) => break,
            }
        }
    }
    // Files that did not fit are closed.
    drop(files);
    ctl.put_fds(&installed, total);
    let out_flags = (flags & MSG_CMSG_CLOEXEC) | r.flags | if ctl.ctrunc { MSG_CTRUNC } else { 0 };
    let res = (|| {
        let mut mm = t.mm.lock();
        if !ctl.buf.is_empty() {
            mm.copy_out(h.control, &ctl.buf)?;
        }
        mm.write_obj(va + 40, &(ctl.buf.len() as u64))?;
        mm.write_obj(va + 48, &out_flags)
    })();
    if let Err(e) = res {
        let mut fds = t.fds.lock();
        for fd in installed {
            let _ = fds.close(fd);
        }
        return Err(e);
    }
    Ok(r.ret as u64)
}

/// sendmsg on a host socket: control messages are not carried (the
/// supported ones are unix-only).
fn host_sendmsg_one(t: &Task, f: &OpenFile, h: &HostSock, va: u64, flags: u32) -> SysResult {
    let m = read_msghdr(t, va)?;
    let raw = if m.name != 0 && m.namelen != 0 {
        Some(read_addr(t, m.name, i64::from(m.namelen).min(SOCKADDR_STORAGE as i64))?)
    } else {
        None
    };
    let segs = read_iov(t, m.iov, m.iovlen)?;
    if m.controllen > i32::MAX as u64 || m.controllen > OPTMEM_MAX {
        return Err(ENOBUFS);
    }
    let mut ctl = vec![0u8; (m.controllen as usize).min(abi::net::CONTROL_MAX as usize)];
    if !ctl.is_empty() {
        t.mm.lock().copy_in(m.control, &mut ctl)?;
    }
    h.send(t, &segs, flags, raw.as_deref(), &ctl, f.nonblock())
}

fn host_recvmsg_one(t: &Task, f: &OpenFile, h: &HostSock, va: u64, flags: u32) -> SysResult {
    let m = read_msghdr(t, va)?;
    let segs = read_iov(t, m.iov, m.iovlen)?;
    let cap = if m.control == 0 { 0 } else { usize::try_from(m.controllen).unwrap_or(usize::MAX) };
    let r = h.recv(t, &segs, flags, cap, f.nonblock())?;
    let mut mm = t.mm.lock();
    if m.name != 0 {
        let n = (m.namelen as usize).min(r.from.len());
        if n > 0 {
            mm.copy_out(m.name, &r.from[..n])?;
        }
        mm.write_obj(va + 8, &(r.from.len() as u32))?;
    }
    if !r.control.is_empty() {
        mm.copy_out(m.control, &r.control)?;
    }
    mm.write_obj(va + 40, &(r.control.len() as u64))?;
    mm.write_obj(va + 48, &(r.flags & (MSG_TRUNC | MSG_EOR | MSG_OOB | MSG_CTRUNC | MSG_ERRQUEUE)))?;
    Ok(r.ret as u64)
}

/// One sendmsg or recvmsg at `va` on the socket at `fd`, either kind.
fn msg_op(t: &Task, fd: i32, send: bool) -> Result<impl Fn(&Task, u64, u32) -> SysResult, Errno> {
    let f = t.fds.lock().get(fd)?;
    let host = host_sock_of(&f).cloned();
    let unix = sock_of_file(&f).cloned();
    if host.is_none() && unix.is_none() {
        return Err(ENOTSOCK);
    }
    Ok(move |t: &Task, va: u64, flags: u32| match (&host, &unix, send) {
        (Some(h), _, true) => host_sendmsg_one(t, &f, h, va, flags),
        (Some(h), _, false) => host_recvmsg_one(t, &f, h, va, flags),
        (None, Some(s), true) => sendmsg_one(t, &f, s, va, flags),
        (None, Some(s), false) => recvmsg_one(t, &f, s, va, flags),
        (None, None, _) => Err(ENOTSOCK),
    })
}

pub fn sys_sendmsg(t: &mut Task, a: &Args) -> SysResult {
    msg_op(t, a.fd(0), true)?(t, a.u64(1), a.u32(2))
}

pub fn sys_recvmsg(t: &mut Task, a: &Args) -> SysResult {
    msg_op(t, a.fd(0), false)?(t, a.u64(1), a.u32(2))
}

pub fn sys_sendmmsg(t: &mut Task, a: &Args) -> SysResult {
    let one = msg_op(t, a.fd(0), true)?;
    let (vec_va, vlen, flags) = (a.u64(1), u64::from(a.u32(2)).min(UIO_MAXIOV), a.u32(3));
    let mut sent = 0u64;
    while sent < vlen {
        let va = vec_va.wrapping_add(sent * MMSGHDR_LEN);
        match one(t, va, flags) {
            Ok(n) => {
                t.mm.lock().write_obj(va + MSGHDR_LEN, &(n as u32))?;
                sent += 1;
            }
            Err(e) if sent == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(sent)
}

pub fn sys_recvmmsg(t: &mut Task, a: &Args) -> SysResult {
    let one = msg_op(t, a.fd(0), false)?;
    let (vec_va, vlen, flags, tmo) = (a.u64(1), u64::from(a.u32(2)).min(UIO_MAXIOV), a.u32(3), a.u64(4));
    let deadline = if tmo != 0 {
        let ts: [i64; 2] = t.mm.lock().read_obj(tmo)?;
        if ts[0] < 0 || !(0..1_000_000_000).contains(&ts[1]) {
            return Err(Errno::EINVAL);
        }
        Some(crate::kernel::clock::monotonic_ns().saturating_add((ts[0] as u64).saturating_mul(1_000_000_000)).saturating_add(ts[1] as u64))
    } else {
        None
    };
    let mut flags_now = flags & !MSG_WAITFORONE;
    let mut got = 0u64;
    while got < vlen {
        let va = vec_va.wrapping_add(got * MMSGHDR_LEN);
        match one(t, va, flags_now) {
            Ok(n) => {
                t.mm.lock().write_obj(va + MSGHDR_LEN, &(n as u32))?;
                got += 1;
                if flags & MSG_WAITFORONE != 0 {
                    flags_now |= MSG_DONTWAIT;
                }
            }
            Err(e) if got == 0 => return Err(e),
            Err(_) => break,
        }
        if deadline.is_some_and(|d| crate::kernel::clock::monotonic_ns() >= d) {
            break;
        }
    }
    if let Some(d) = deadline {
        let left = d.saturating_sub(crate::kernel::clock::monotonic_ns());
        t.mm.lock().write_obj(tmo, &[(left / 1_000_000_000) as i64, (left % 1_000_000_000) as i64])?;
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmsg(level: i32, ty: i32, data: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&((16 + data.len()) as u64).to_le_bytes());
        b.extend_from_slice(&level.to_le_bytes());
        b.extend_from_slice(&ty.to_le_bytes());
        b.extend_from_slice(data);
        b.resize(cmsg_align(b.len()), 0);
        b
    }

    #[test]
    fn parses_control_messages() {
        let mut buf = cmsg(SOL_SOCKET, SCM_RIGHTS, &[3, 0, 0, 0, 4, 0, 0, 0]);
        buf.extend(cmsg(6, 1, &[9; 4]));
        buf.extend(cmsg(SOL_SOCKET, SCM_CREDENTIALS, &Ucred { pid: 1, uid: 2, gid: 3 }.to_bytes()));
        let c = parse_control(&buf).unwrap();
        assert_eq!(c.fds, vec![3, 4]);
        assert_eq!(c.creds, Some(Ucred { pid: 1, uid: 2, gid: 3 }));
        // Too short to hold a header: nothing.
        assert_eq!(parse_control(&[0u8; 8]), Ok(SendCtl::default()));
        // cmsg_len past the buffer, or below the header size.
        let mut bad = cmsg(SOL_SOCKET, SCM_RIGHTS, &[0; 4]);
        bad[0] = 100;
        assert_eq!(parse_control(&bad), Err(Errno::EINVAL));
        bad[0] = 8;
        assert_eq!(parse_control(&bad), Err(Errno::EINVAL));
        assert_eq!(parse_control(&cmsg(SOL_SOCKET, 99, &[0; 4])), Err(Errno::EINVAL));
        assert_eq!(parse_control(&cmsg(SOL_SOCKET, SCM_CREDENTIALS, &[0; 8])), Err(Errno::EINVAL));
        let many = vec![0u8; 4 * (SCM_MAX_FD + 1)];
        assert_eq!(parse_control(&cmsg(SOL_SOCKET, SCM_RIGHTS, &many)), Err(Errno::EINVAL));
        let max = vec![0u8; 4 * SCM_MAX_FD];
        assert_eq!(parse_control(&cmsg(SOL_SOCKET, SCM_RIGHTS, &max)).unwrap().fds.len(), SCM_MAX_FD);
        // A huge cmsg_len cannot overflow the walk.
        let mut huge = cmsg(SOL_SOCKET, SCM_RIGHTS, &[0; 4]);
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(parse_control(&huge), Err(Errno::EINVAL));
    }

    #[test]
    fn builds_control_like_linux() {
        // Room for one fd exactly (20 bytes): no truncation.
        let mut c = CtlOut::new(20);
        assert_eq!(c.fd_room(), 1);
        c.put_fds(&[5], 1);
        assert_eq!((c.buf.len(), c.ctrunc), (20, false));
        assert_eq!(u64::from_le_bytes(c.buf[..8].try_into().unwrap()), 20);
        // 17 bytes hold no fd.
        let mut c = CtlOut::new(17);
        assert_eq!(c.fd_room(), 0);
        c.put_fds(&[], 1);
        assert_eq!((c.buf.len(), c.ctrunc), (0, true));
        // Credentials then two of three fds.
        let mut c = CtlOut::new(32 + 24);
        c.put(SCM_CREDENTIALS, &Ucred { pid: 1, uid: 2, gid: 3 }.to_bytes());
        assert_eq!(c.buf.len(), 32);
        assert_eq!(c.fd_room(), 2);
        c.put_fds(&[7, 8], 3);
        assert_eq!((c.buf.len(), c.ctrunc), (56, true));
        // A truncated credentials message.
        let mut c = CtlOut::new(20);
        c.put(SCM_CREDENTIALS, &[0; 12]);
        assert_eq!((c.buf.len(), c.ctrunc), (20, true));
        assert_eq!(u64::from_le_bytes(c.buf[..8].try_into().unwrap()), 20);
        let mut c = CtlOut::new(0);
        c.put(SCM_CREDENTIALS, &[0; 12]);
        assert!(c.ctrunc && c.buf.is_empty());
    }

    #[test]
    fn create_arguments() {
        assert_eq!(check_create(1, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), Ok(Kind::Stream));
        assert_eq!(check_create(1, SOCK_RAW, 0), Ok(Kind::Dgram));
        assert_eq!(check_create(1, SOCK_SEQPACKET, 1), Ok(Kind::SeqPacket));
        assert_eq!(check_create(2, SOCK_STREAM, 0), Err(EAFNOSUPPORT));
        assert_eq!(check_create(10, SOCK_DGRAM, 0), Err(EAFNOSUPPORT));
        assert_eq!(check_create(16, SOCK_DGRAM, 0), Err(EAFNOSUPPORT));
        assert_eq!(check_create(200, SOCK_STREAM, 0), Err(EAFNOSUPPORT));
        assert_eq!(check_create(-1, SOCK_STREAM, 0), Err(EAFNOSUPPORT));
        assert_eq!(check_create(1, SOCK_STREAM | 0x100, 0), Err(Errno::EINVAL));
        assert_eq!(check_create(1, 7, 0), Err(ESOCKTNOSUPPORT));
        assert_eq!(check_create(1, 12, 0), Err(Errno::EINVAL));
        assert_eq!(check_create(1, SOCK_STREAM, 2), Err(EPROTONOSUPPORT));
    }
}
