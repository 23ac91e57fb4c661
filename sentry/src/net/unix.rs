//! Unix domain sockets (Linux: net/unix/af_unix.c): SOCK_STREAM,
//! SOCK_DGRAM and SOCK_SEQPACKET, socketpair, the abstract namespace and
//! pathname names, SCM_RIGHTS and SCM_CREDENTIALS.
//!
//! Model. A `Sock` owns its receive queue of `Msg`s; a sender appends to
//! the receiver's queue and is charged for it (`wmem`, released when the
//! receiver frees the message), so a sender blocks while its charge is at
//! or above its SO_SNDBUF, as in Linux. Stream sockets read across message
//! boundaries (not across senders' credentials with SO_PASSCRED, nor past
//! a message carrying files); datagram and seqpacket sockets read one
//! message per call. A listening socket queues "embryo" sockets, already
//! connected to their client, until accept.
//!
//! Names. Bound names live in one sentry-global table (`NAMES`): abstract
//! names (sun_path[0] == 0) keyed by socket type, as Linux hashes them,
//! and pathnames keyed by the lexically normalized absolute path. The
//! sandbox filesystem is read-only host files for now, so binding a
//! pathname creates no socket inode on disk and the name cannot be
//! unlinked; instead it is forgotten when the socket is closed. The VFS
//! change that makes pathname sockets real files replaces `bind_path` /
//! `lookup` with an inode that points at the listening `Sock`.
//!
//! Locking. Each socket's state is behind its own spin lock; code never
//! holds two socket locks at once (it snapshots what it needs), except
//! that binding holds the socket's lock and then `NAMES`. Anything that
//! may drop a message, an open file or a socket (which can run another
//! socket's release) is dropped after the locks are released. Copies to
//! and from user memory happen with at most the receiving socket's lock
//! held (order: socket → mm), never while blocking.
//!
//! Waiting. Readers and acceptors wait on their socket's queue; writers
//! wait on their own queue when blocked by their send buffer charge and
//! on the receiver's when blocked by its queue length; connectors on the
//! listener's. Every state change wakes the socket concerned (and its
//! peer) and `POLL_WQ`.
//!
//! Known gaps: no garbage collector for in-flight files (a socket whose
//! only reference is a message in its own or a peer's queue that is never
//! read is leaked; bounded by the in-flight limit and the nesting limit),
//! no MSG_OOB, no SO_PEEK_OFF, no SO_PASSSEC/SO_PASSPIDFD.
#![forbid(unsafe_code)]

use abi::linux::Stat;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use spin::Mutex;

use super::*;
use crate::errno::{Errno, SysResult};
use crate::fs::{FileOps, OpenFile, UserSeg, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM, POLL_WQ};
use crate::kernel::task::Task;
use crate::kernel::wait::{WaitQueue, ERESTARTSYS};

/// Default SO_SNDBUF/SO_RCVBUF (Linux: net.core.wmem_default).
pub const BUF_DEFAULT: usize = 212_992;
/// Largest value SO_SNDBUF/SO_RCVBUF accept before doubling (wmem_max).
const BUF_MAX: usize = 212_992;
/// Largest value the *FORCE variants accept before doubling: a sentry
/// heap bound (Linux allows INT_MAX / 2).
const BUF_FORCE_MAX: usize = 4 << 20;
const SNDBUF_MIN: usize = 4608;
const RCVBUF_MIN: usize = 2304;
/// A datagram receiver not connected back to the sender takes at most
/// this many queued messages plus one (net.unix.max_dgram_qlen).
const DGRAM_QLEN: usize = 10;
/// Largest listen backlog (net.core.somaxconn).
const SOMAXCONN: usize = 4096;
/// Deepest nesting of sockets passed inside sockets.
const MAX_RECURSION: u8 = 4;
/// Largest piece a stream write queues at once.
const STREAM_CHUNK_MAX: usize = 36 << 10;
/// Bytes charged per queued message besides its data (Linux: skb truesize).
const MSG_OVERHEAD: usize = 704;

const RCV_SHUTDOWN: u8 = 1;
const SEND_SHUTDOWN: u8 = 2;
const SHUTDOWN_MASK: u8 = 3;

/// Files in flight in all socket queues (Linux: per-user unix_inflight).
static INFLIGHT: AtomicUsize = AtomicUsize::new(0);
static NEXT_INO: AtomicU64 = AtomicU64::new(0x1_0000);
static AUTOBIND_NEXT: AtomicU64 = AtomicU64::new(0);

/// The socket type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Stream,
    Dgram,
    SeqPacket,
}

impl Kind {
    /// From socket(2)'s type (without flags); SOCK_RAW means datagrams,
    /// as in Linux.
    pub fn from_type(ty: u32) -> Option<Kind> {
        match ty {
            SOCK_STREAM => Some(Kind::Stream),
            SOCK_DGRAM | SOCK_RAW => Some(Kind::Dgram),
            SOCK_SEQPACKET => Some(Kind::SeqPacket),
            _ => None,
        }
    }

    /// The SOCK_ value (SO_TYPE).
    pub fn sock_type(self) -> u32 {
        match self {
            Kind::Stream => SOCK_STREAM,
            Kind::Dgram => SOCK_DGRAM,
            Kind::SeqPacket => SOCK_SEQPACKET,
        }
    }
}

/// A bound name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Name {
    /// Abstract: the bytes after the leading NUL (any bytes, any length).
    Abstract(Vec<u8>),
    /// Pathname: as the application gave it (getsockname reports this)
    /// and resolved against the cwd (the table key).
    Path { given: Vec<u8>, key: Vec<u8> },
}

/// A parsed `struct sockaddr_un`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SockAddr {
    /// AF_UNSPEC (dissolves a datagram association).
    Unspec,
    /// Just the family: bind picks an abstract name.
    Autobind,
    Named(Name),
}

/// Largest `struct sockaddr_un`.
pub const SOCKADDR_UN_LEN: usize = 110;

/// Parses a sockaddr of `raw.len()` bytes, resolving a relative pathname
/// against `cwd`. EINVAL as Linux for bad lengths and families.
pub fn parse_sockaddr(raw: &[u8], cwd: &str) -> Result<SockAddr, Errno> {
    if raw.len() < 2 {
        return Err(Errno::EINVAL);
    }
    let family = u16::from_le_bytes([raw[0], raw[1]]);
    if family == AF_UNSPEC {
        return Ok(SockAddr::Unspec);
    }
    if family != AF_UNIX || raw.len() > SOCKADDR_UN_LEN {
        return Err(Errno::EINVAL);
    }
    if raw.len() == 2 {
        return Ok(SockAddr::Autobind);
    }
    let path = &raw[2..];
    if path[0] == 0 {
        return Ok(SockAddr::Named(Name::Abstract(path[1..].to_vec())));
    }
    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
    let given = path[..end].to_vec();
    let key = resolve_path(cwd, &given);
    Ok(SockAddr::Named(Name::Path { given, key }))
}

/// Lexically normalizes `path` (relative to `cwd` unless absolute).
pub fn resolve_path(cwd: &str, path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    let base: &[u8] = if path.first() == Some(&b'/') { b"" } else { cwd.as_bytes() };
    for c in base.split(|&b| b == b'/').chain(path.split(|&b| b == b'/')) {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = Vec::new();
    for c in parts {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// The sockaddr bytes for a socket's name (unnamed: just the family).
pub fn encode_name(n: Option<&Name>) -> Vec<u8> {
    let mut b = Vec::from(AF_UNIX.to_le_bytes());
    match n {
        None => {}
        Some(Name::Abstract(a)) => {
            b.push(0);
            b.extend_from_slice(a);
        }
        Some(Name::Path { given, .. }) => {
            b.extend_from_slice(given);
            b.push(0);
        }
    }
    b
}

/// Key of the name table.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Abstract(u32, Vec<u8>),
    Path(Vec<u8>),
}

fn key_of(kind: Kind, n: &Name) -> Key {
    match n {
        Name::Abstract(a) => Key::Abstract(kind.sock_type(), a.clone()),
        Name::Path { key, .. } => Key::Path(key.clone()),
    }
}

/// Bound names → sockets.
static NAMES: Mutex<BTreeMap<Key, Weak<Sock>>> = Mutex::new(BTreeMap::new());

/// The live socket bound to `n` for a socket of type `kind`: ENOENT for
/// an unknown pathname, ECONNREFUSED for an unknown abstract name,
/// EPROTOTYPE for a pathname bound by another type.
fn lookup(kind: Kind, n: &Name) -> Result<Arc<Sock>, Errno> {
    let found = NAMES.lock().get(&key_of(kind, n)).and_then(Weak::upgrade);
    match (n, found) {
        (_, Some(s)) if s.kind == kind => Ok(s),
        (Name::Path { .. }, Some(_)) => Err(EPROTOTYPE),
        (Name::Path { .. }, None) => Err(Errno::ENOENT),
        (Name::Abstract(_), _) => Err(ECONNREFUSED),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Conn {
    Unconnected,
    Listening,
    Connected,
}

/// Socket options.
#[derive(Clone, Copy, Debug)]
struct Opts {
    passcred: bool,
    sndbuf: usize,
    rcvbuf: usize,
    /// Receive/send timeouts in ns: None waits forever, Some(0) not at all.
    rcvtimeo: Option<u64>,
    sndtimeo: Option<u64>,
    linger: (bool, i32),
    rcvlowat: i32,
    priority: i32,
    /// Stored-only boolean options, bit = option number.
    flags: u64,
}

impl Default for Opts {
    fn default() -> Opts {
        Opts {
            passcred: false,
            sndbuf: BUF_DEFAULT,
            rcvbuf: BUF_DEFAULT,
            rcvtimeo: None,
            sndtimeo: None,
            linger: (false, 0),
            rcvlowat: 1,
            priority: 0,
            flags: 0,
        }
    }
}

/// A queued message (a chunk of a stream, or one datagram).
struct Msg {
    data: Vec<u8>,
    /// Bytes already read (streams).
    off: usize,
    rights: Vec<Arc<OpenFile>>,
    creds: Option<Ucred>,
    /// The sender's name when it sent.
    from: Option<Name>,
    /// Charged for the message until it is freed.
    sender: Option<Arc<Sock>>,
    charge: usize,
}

impl Msg {
    fn remaining(&self) -> usize {
        self.data.len() - self.off
    }

    /// Takes the files out (they are no longer in flight).
    fn take_rights(&mut self) -> Vec<Arc<OpenFile>> {
        INFLIGHT.fetch_sub(self.rights.len(), Ordering::Relaxed);
        core::mem::take(&mut self.rights)
    }
}

impl Drop for Msg {
    fn drop(&mut self) {
        INFLIGHT.fetch_sub(self.rights.len(), Ordering::Relaxed);
        if let Some(s) = self.sender.take() {
            s.wmem.fetch_sub(self.charge, Ordering::AcqRel);
            s.notify();
        }
    }
}

/// What the bytes of a message cost its sender.
fn charge_of(len: usize) -> usize {
    (len.saturating_add(63) & !63).saturating_add(MSG_OVERHEAD)
}

/// Mutable state of a socket.
struct State {
    addr: Option<Name>,
    conn: Conn,
    peer: Option<Arc<Sock>>,
    accept_q: VecDeque<Arc<Sock>>,
    backlog: usize,
    rxq: VecDeque<Msg>,
    /// Unread data bytes in `rxq`.
    rx_bytes: usize,
    shutdown: u8,
    /// Pending error (SO_ERROR), a positive errno.
    err: i32,
    /// Released (its last file closed, or an embryo dropped).
    dead: bool,
    opts: Opts,
    /// SO_PEERCRED: the peer's creds at connect/socketpair time, or the
    /// listener's own at listen time.
    peercred: Option<Ucred>,
}

impl State {
    fn new() -> State {
        State {
            addr: None,
            conn: Conn::Unconnected,
            peer: None,
            accept_q: VecDeque::new(),
            backlog: 0,
            rxq: VecDeque::new(),
            rx_bytes: 0,
            shutdown: 0,
            err: 0,
            dead: false,
            opts: Opts::default(),
            peercred: None,
        }
    }
}

/// A unix socket.
pub struct Sock {
    pub kind: Kind,
    ino: u64,
    /// Owner (uid, gid) for fstat.
    owner: (u32, u32),
    st: Mutex<State>,
    wq: WaitQueue,
    /// Charge of this socket's messages still queued at receivers.
    wmem: AtomicUsize,
    /// Nesting depth of sockets passed to this one.
    level: AtomicU8,
}

/// What a blocking operation's attempt found.
pub enum Step<T> {
    Done(T),
    /// Must wait on this socket's queue.
    Block(Arc<Sock>),
}

/// Where received bytes go / sent bytes come from.
pub trait Io {
    /// Total bytes of the buffers.
    fn cap(&self) -> usize;
    /// Stores `data` at byte offset `at` of the buffers.
    fn put(&mut self, at: usize, data: &[u8]) -> Result<(), Errno>;
    /// Fills `dst` from byte offset `at` of the buffers.
    fn get(&mut self, at: usize, dst: &mut [u8]) -> Result<(), Errno>;
}

/// User buffers of a task.
pub struct UserIo<'a> {
    t: &'a Task,
    segs: &'a [UserSeg],
    total: usize,
}

impl<'a> UserIo<'a> {
    /// Buffers `segs` of `t` (their total is bounded by the caller).
    pub fn new(t: &'a Task, segs: &'a [UserSeg]) -> UserIo<'a> {
        let total = segs.iter().fold(0usize, |a, s| a.saturating_add(s.1));
        UserIo { t, segs, total }
    }

    fn walk(&mut self, at: usize, len: usize, mut f: impl FnMut(&mut crate::mm::MemoryManager, u64, core::ops::Range<usize>) -> Result<(), Errno>) -> Result<(), Errno> {
        let mut mm = self.t.mm.lock();
        let mut skip = at;
        let mut done = 0;
        for &(addr, seg) in self.segs {
            if done == len {
                break;
            }
            if skip >= seg {
                skip -= seg;
                continue;
            }
            let n = (seg - skip).min(len - done);
            let va = addr.checked_add(skip as u64).ok_or(Errno::EFAULT)?;
            f(&mut mm, va, done..done + n)?;
            done += n;
            skip = 0;
        }
        if done < len {
            return Err(Errno::EFAULT);
        }
        Ok(())
    }
}

impl Io for UserIo<'_> {
    fn cap(&self) -> usize {
        self.total
    }
    fn put(&mut self, at: usize, data: &[u8]) -> Result<(), Errno> {
        self.walk(at, data.len(), |mm, va, r| mm.copy_out(va, &data[r]))
    }
    fn get(&mut self, at: usize, dst: &mut [u8]) -> Result<(), Errno> {
        let len = dst.len();
        self.walk(at, len, |mm, va, r| mm.copy_in(va, &mut dst[r]))
    }
}

/// A sentry buffer data is sent from (sendfile and splice to a socket).
pub struct KernelSrc<'a>(pub &'a [u8]);

impl Io for KernelSrc<'_> {
    fn cap(&self) -> usize {
        self.0.len()
    }
    fn put(&mut self, _at: usize, _data: &[u8]) -> Result<(), Errno> {
        Err(Errno::EFAULT)
    }
    fn get(&mut self, at: usize, dst: &mut [u8]) -> Result<(), Errno> {
        dst.copy_from_slice(self.0.get(at..at + dst.len()).ok_or(Errno::EFAULT)?);
        Ok(())
    }
}

/// A sentry buffer data is received into (splice from a socket).
pub struct KernelDst<'a>(pub &'a mut [u8]);

impl Io for KernelDst<'_> {
    fn cap(&self) -> usize {
        self.0.len()
    }
    fn put(&mut self, at: usize, data: &[u8]) -> Result<(), Errno> {
        self.0.get_mut(at..at + data.len()).ok_or(Errno::EFAULT)?.copy_from_slice(data);
        Ok(())
    }
    fn get(&mut self, _at: usize, _dst: &mut [u8]) -> Result<(), Errno> {
        Err(Errno::EFAULT)
    }
}

/// A zeroed buffer, or ENOBUFS if the sentry heap cannot hold it.
fn alloc_buf(n: usize) -> Result<Vec<u8>, Errno> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| ENOBUFS)?;
    v.resize(n, 0);
    Ok(v)
}

/// The credentials of `t` as a socket reports them (the effective ids).
pub fn cred_of(t: &Task) -> Ucred {
    Ucred { pid: t.pid(), uid: t.creds.euid, gid: t.creds.egid }
}

fn deadline_of(timeo: Option<u64>) -> Option<u64> {
    timeo.map(|ns| crate::kernel::clock::monotonic_ns().saturating_add(ns))
}

/// Runs `attempt` until it is done, blocking on the queue it names in
/// between: EAGAIN when non-blocking or at the deadline (SO_RCVTIMEO /
/// SO_SNDTIMEO), ERESTARTSYS on a signal (EINTR with a timeout, as Linux).
fn block_on<T>(t: &Task, nonblock: bool, deadline: Option<u64>, mut attempt: impl FnMut() -> Result<Step<T>, Errno>) -> Result<T, Errno> {
    loop {
        let q = match attempt()? {
            Step::Done(v) => return Ok(v),
            Step::Block(q) => q,
        };
        if nonblock {
            return Err(Errno::EAGAIN);
        }
        let pending = || t.proc.pending();
        let r = q.wq.wait(&t.shared, &pending, deadline, || match attempt() {
            Ok(Step::Block(q2)) if Arc::ptr_eq(&q2, &q) => None,
            other => Some(other),
        });
        match r {
            Ok(Ok(Step::Done(v))) => return Ok(v),
            Ok(Ok(Step::Block(_))) => continue,
            Ok(Err(e)) => return Err(e),
            Err(Errno::ETIMEDOUT) => return Err(Errno::EAGAIN),
            Err(ERESTARTSYS) if deadline.is_some() => return Err(Errno::EINTR),
            Err(e) => return Err(e),
        }
    }
}

/// The unix socket behind an open file, if it is one.
pub fn sock_of_file(f: &OpenFile) -> Option<&Arc<Sock>> {
    f.ops.as_any()?.downcast_ref::<SocketFile>().map(|s| &s.sock)
}

/// Checks files about to be sent: the in-flight limit (`limit`, the
/// sender's RLIMIT_NOFILE) and the nesting of sockets; returns the level
/// the receiver gets (0: no files).
fn check_rights(rights: &[Arc<OpenFile>], limit: u64) -> Result<u8, Errno> {
    if rights.is_empty() {
        return Ok(0);
    }
    if INFLIGHT.load(Ordering::Relaxed) as u64 > limit {
        return Err(ETOOMANYREFS);
    }
    let mut max = 0;
    for f in rights {
        if let Some(s) = sock_of_file(f) {
            max = max.max(s.level.load(Ordering::Relaxed));
        }
    }
    if max > MAX_RECURSION {
        return Err(ETOOMANYREFS);
    }
    Ok(max + 1)
}

/// A message on its way to a receiver.
struct Outgoing {
    data: Vec<u8>,
    rights: Vec<Arc<OpenFile>>,
    /// Explicit SCM_CREDENTIALS.
    creds: Option<Ucred>,
    from: Option<Name>,
    level: u8,
}

/// What a receive got.
#[derive(Default)]
pub struct Received {
    /// The syscall's return value.
    pub ret: usize,
    /// MSG_TRUNC when a datagram did not fit.
    pub flags: u32,
    /// The sender's name, if it had one.
    pub from: Option<Name>,
    /// Files passed with the data (to install or drop).
    pub rights: Vec<Arc<OpenFile>>,
    /// Credentials, when the receiver has SO_PASSCRED.
    pub creds: Option<Ucred>,
    /// Streams: the sender creds the read is glued to, and whether the
    /// sender's name was taken.
    glue: Option<Option<Ucred>>,
    got_from: bool,
}

impl Sock {
    fn with_state(kind: Kind, owner: (u32, u32), st: State) -> Arc<Sock> {
        Arc::new(Sock {
            kind,
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
            owner,
            st: Mutex::new(st),
            wq: WaitQueue::new(),
            wmem: AtomicUsize::new(0),
            level: AtomicU8::new(0),
        })
    }

    /// A new unconnected socket owned by `owner` (uid, gid).
    pub fn new(kind: Kind, owner: (u32, u32)) -> Arc<Sock> {
        Sock::with_state(kind, owner, State::new())
    }

    /// socketpair: two sockets connected to each other, each reporting
    /// `cred` (the creator) as its peer's credentials.
    pub fn pair(kind: Kind, cred: Ucred) -> (Arc<Sock>, Arc<Sock>) {
        let a = Sock::new(kind, (cred.uid, cred.gid));
        let b = Sock::new(kind, (cred.uid, cred.gid));
        for (x, y) in [(&a, &b), (&b, &a)] {
            let mut st = x.st.lock();
            st.peer = Some(y.clone());
            st.conn = Conn::Connected;
            st.peercred = Some(cred);
        }
        (a, b)
    }

    /// Wakes waiters on this socket and pollers.
    fn notify(&self) {
        self.wq.wake_all();
        POLL_WQ.wake_all();
    }

    fn is(&self, other: &Arc<Sock>) -> bool {
        core::ptr::eq(self, Arc::as_ptr(other))
    }

    /// inode number (fstat, /proc/self/fd).
    pub fn ino(&self) -> u64 {
        self.ino
    }

    // ---- names ----------------------------------------------------------

    /// bind(2).
    pub fn bind(self: &Arc<Self>, addr: SockAddr) -> Result<(), Errno> {
        let n = match addr {
            SockAddr::Autobind => return self.autobind(),
            SockAddr::Unspec => return Err(Errno::EINVAL),
            SockAddr::Named(n) => n,
        };
        let mut st = self.st.lock();
        if st.addr.is_some() || st.dead {
            return Err(Errno::EINVAL);
        }
        let key = key_of(self.kind, &n);
        let mut names = NAMES.lock();
        if names.get(&key).is_some_and(|w| w.strong_count() > 0) {
            return Err(EADDRINUSE);
        }
        names.insert(key, Arc::downgrade(self));
        st.addr = Some(n);
        Ok(())
    }

    /// Binds a fresh abstract name of five hex digits (no-op if bound).
    pub fn autobind(self: &Arc<Self>) -> Result<(), Errno> {
        let mut st = self.st.lock();
        if st.addr.is_some() {
            return Ok(());
        }
        let mut names = NAMES.lock();
        for _ in 0..=0xfffff {
            let n = AUTOBIND_NEXT.fetch_add(1, Ordering::Relaxed) & 0xfffff;
            let name = format!("{n:05x}").into_bytes();
            let key = Key::Abstract(self.kind.sock_type(), name.clone());
            if names.get(&key).is_none_or(|w| w.strong_count() == 0) {
                names.insert(key, Arc::downgrade(self));
                st.addr = Some(Name::Abstract(name));
                return Ok(());
            }
        }
        Err(Errno::ENOSPC)
    }

    /// getsockname(2) bytes.
    pub fn sock_name(&self) -> Vec<u8> {
        encode_name(self.st.lock().addr.as_ref())
    }

    /// getpeername(2) bytes.
    pub fn peer_name(&self) -> Result<Vec<u8>, Errno> {
        let peer = {
            let st = self.st.lock();
            match (&st.peer, st.conn) {
                (Some(p), _) if self.kind == Kind::Dgram => p.clone(),
                (Some(p), Conn::Connected) => p.clone(),
                _ => return Err(ENOTCONN),
            }
        };
        let b = encode_name(peer.st.lock().addr.as_ref());
        Ok(b)
    }

    // ---- connection setup -----------------------------------------------

    /// listen(2); `cred` is the caller's (what clients see as SO_PEERCRED).
    pub fn listen(&self, backlog: i32, cred: Ucred) -> Result<(), Errno> {
        if self.kind == Kind::Dgram {
            return Err(Errno::EOPNOTSUPP);
        }
        {
            let mut st = self.st.lock();
            if st.addr.is_none() || st.conn == Conn::Connected {
                return Err(Errno::EINVAL);
            }
            st.backlog = if backlog < 0 || backlog as usize > SOMAXCONN { SOMAXCONN } else { backlog as usize };
            st.conn = Conn::Listening;
            st.peercred = Some(cred);
        }
        self.notify();
        Ok(())
    }

    /// connect(2). Stream and seqpacket sockets queue an embryo at the
    /// listener (blocking while its backlog is full); datagram sockets
    /// set (or with AF_UNSPEC dissolve) their default destination.
    pub fn connect(self: &Arc<Self>, t: &Task, addr: SockAddr, nonblock: bool) -> Result<(), Errno> {
        if self.kind == Kind::Dgram {
            return self.connect_dgram(addr);
        }
        let SockAddr::Named(name) = addr else { return Err(Errno::EINVAL) };
        let (passcred, bound, timeo) = {
            let st = self.st.lock();
            match st.conn {
                Conn::Listening => return Err(Errno::EINVAL),
                Conn::Connected => return Err(EISCONN),
                Conn::Unconnected => {}
            }
            (st.opts.passcred, st.addr.is_some(), st.opts.sndtimeo)
        };
        let target = lookup(self.kind, &name)?;
        if passcred && !bound {
            self.autobind()?;
        }
        let me = cred_of(t);
        block_on(t, nonblock, deadline_of(timeo), || self.try_connect(&target, me))
    }

    fn try_connect(self: &Arc<Self>, target: &Arc<Sock>, me: Ucred) -> Result<Step<()>, Errno> {
        {
            let st = self.st.lock();
            match st.conn {
                Conn::Listening => return Err(Errno::EINVAL),
                Conn::Connected => return Err(EISCONN),
                Conn::Unconnected => {}
            }
        }
        let mut ts = target.st.lock();
        if ts.dead || ts.conn != Conn::Listening {
            return Err(ECONNREFUSED);
        }
        if ts.accept_q.len() > ts.backlog {
            return Ok(Step::Block(target.clone()));
        }
        let mut est = State::new();
        est.addr = ts.addr.clone();
        est.conn = Conn::Connected;
        est.peer = Some(self.clone());
        est.peercred = Some(me);
        est.opts.passcred = ts.opts.passcred;
        let embryo = Sock::with_state(self.kind, target.owner, est);
        ts.accept_q.push_back(embryo.clone());
        let lcred = ts.peercred;
        drop(ts);
        {
            let mut st = self.st.lock();
            st.peer = Some(embryo);
            st.conn = Conn::Connected;
            st.peercred = lcred;
        }
        target.notify();
        self.notify();
        Ok(Step::Done(()))
    }

    fn connect_dgram(self: &Arc<Self>, addr: SockAddr) -> Result<(), Errno> {
        match addr {
            SockAddr::Unspec => {
                self.set_dgram_peer(None);
                Ok(())
            }
            SockAddr::Autobind => Err(Errno::EINVAL),
            SockAddr::Named(n) => {
                let target = lookup(Kind::Dgram, &n)?;
                let (passcred, bound) = {
                    let st = self.st.lock();
                    (st.opts.passcred, st.addr.is_some())
                };
                if passcred && !bound {
                    self.autobind()?;
                }
                {
                    let ts = target.st.lock();
                    if ts.peer.as_ref().is_some_and(|p| !self.is(p)) {
                        return Err(Errno::EPERM);
                    }
                }
                self.set_dgram_peer(Some(target));
                Ok(())
            }
        }
    }

    /// Changes a datagram socket's association; a change drops what was
    /// queued, and a peer connected back to us learns ECONNRESET.
    fn set_dgram_peer(self: &Arc<Self>, new: Option<Arc<Sock>>) {
        let (old, purged) = {
            let mut st = self.st.lock();
            let old = core::mem::replace(&mut st.peer, new.clone());
            let changed = match (&old, &new) {
                (Some(o), Some(n)) => !Arc::ptr_eq(o, n),
                (Some(_), None) => true,
                _ => false,
            };
            let purged = if changed && !st.rxq.is_empty() {
                st.rx_bytes = 0;
                Some(core::mem::take(&mut st.rxq))
            } else {
                None
            };
            (if changed { old } else { None }, purged)
        };
        if let (Some(o), Some(_)) = (&old, &purged) {
            let mut os = o.st.lock();
            if !os.dead && os.peer.as_ref().is_some_and(|p| self.is(p)) {
                os.err = ECONNRESET.0;
            }
            drop(os);
            o.notify();
        }
        self.notify();
        drop(purged);
        drop(old);
        drop(new);
    }

    /// accept(2): the next queued connection.
    pub fn accept(self: &Arc<Self>, t: &Task, nonblock: bool) -> Result<Arc<Sock>, Errno> {
        if self.kind == Kind::Dgram {
            return Err(Errno::EOPNOTSUPP);
        }
        let timeo = {
            let st = self.st.lock();
            if st.conn != Conn::Listening {
                return Err(Errno::EINVAL);
            }
            st.opts.rcvtimeo
        };
        block_on(t, nonblock, deadline_of(timeo), || {
            let mut st = self.st.lock();
            if st.conn != Conn::Listening {
                return Err(Errno::EINVAL);
            }
            match st.accept_q.pop_front() {
                Some(e) => {
                    drop(st);
                    self.notify();
                    Ok(Step::Done(e))
                }
                None => Ok(Step::Block(self.clone())),
            }
        })
    }

    /// shutdown(2); `how` is SHUT_RD (0), SHUT_WR (1) or SHUT_RDWR (2).
    pub fn shutdown(&self, how: i32) -> Result<(), Errno> {
        if !(0..=2).contains(&how) {
            return Err(Errno::EINVAL);
        }
        let mode = how as u8 + 1;
        let peer = {
            let mut st = self.st.lock();
            st.shutdown |= mode;
            st.peer.clone()
        };
        if let Some(p) = &peer {
            if self.kind != Kind::Dgram {
                let mut pm = 0;
                if mode & RCV_SHUTDOWN != 0 {
                    pm |= SEND_SHUTDOWN;
                }
                if mode & SEND_SHUTDOWN != 0 {
                    pm |= RCV_SHUTDOWN;
                }
                p.st.lock().shutdown |= pm;
                p.notify();
            }
        }
        self.notify();
        drop(peer);
        Ok(())
    }

    /// The last file of the socket closed (or, with `embryo`, a queued
    /// connection was dropped with its listener): forget the name, tell
    /// the peer, drop queued messages and connections.
    pub fn release(&self, embryo: bool) {
        let (peer, rxq, accept_q, name, had_data) = {
            let mut st = self.st.lock();
            if st.dead {
                return;
            }
            st.dead = true;
            st.shutdown = SHUTDOWN_MASK;
            st.rx_bytes = 0;
            let had_data = !st.rxq.is_empty();
            (st.peer.take(), core::mem::take(&mut st.rxq), core::mem::take(&mut st.accept_q), st.addr.clone(), had_data)
        };
        if let Some(n) = &name {
            let mut names = NAMES.lock();
            let key = key_of(self.kind, n);
            if names.get(&key).is_some_and(|w| core::ptr::eq(w.as_ptr(), self)) {
                names.remove(&key);
            }
        }
        if let Some(p) = &peer {
            if self.kind != Kind::Dgram {
                let mut ps = p.st.lock();
                ps.shutdown = SHUTDOWN_MASK;
                if had_data || embryo {
                    ps.err = ECONNRESET.0;
                }
            }
            p.notify();
        }
        self.notify();
        for e in &accept_q {
            e.release(true);
        }
        drop(rxq);
        drop(accept_q);
        drop(peer);
    }

    // ---- data -------------------------------------------------------------

    /// sendmsg: `io` holds the data, `to` an explicit destination,
    /// `rights`/`creds` the ancillary data. EPIPE on a stream raises
    /// SIGPIPE unless MSG_NOSIGNAL.
    #[allow(clippy::too_many_arguments)]
    pub fn send(self: &Arc<Self>, t: &Task, io: &mut dyn Io, flags: u32, nonblock: bool, to: Option<Name>, rights: Vec<Arc<OpenFile>>, creds: Option<Ucred>) -> SysResult {
        if flags & MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let nonblock = nonblock || flags & MSG_DONTWAIT != 0;
        let me = cred_of(t);
        let limit = t.rlimits[7].0;
        let r = match self.kind {
            Kind::Stream => self.send_stream(t, io, nonblock, to, rights, creds, me, limit),
            _ => self.send_dgram(t, io, nonblock, to, rights, creds, me, limit),
        };
        if r == Err(Errno::EPIPE) && self.kind == Kind::Stream && flags & MSG_NOSIGNAL == 0 {
            use crate::kernel::signal;
            let info = signal::SigInfo::from_sender(signal::SI_USER, t.pid(), t.creds.uid);
            signal::send_to_thread(&t.proc, &t.shared, signal::SIGPIPE, info);
        }
        r.map(|n| n as u64)
    }

    #[allow(clippy::too_many_arguments)]
    fn send_stream(self: &Arc<Self>, t: &Task, io: &mut dyn Io, nonblock: bool, to: Option<Name>, rights: Vec<Arc<OpenFile>>, creds: Option<Ucred>, me: Ucred, limit: u64) -> Result<usize, Errno> {
        let (peer, sndbuf, timeo, passcred, from) = {
            let st = self.st.lock();
            if to.is_some() {
                return Err(if st.conn == Conn::Connected { EISCONN } else { Errno::EOPNOTSUPP });
            }
            let Some(peer) = st.peer.clone() else { return Err(ENOTCONN) };
            if st.shutdown & SEND_SHUTDOWN != 0 {
                return Err(Errno::EPIPE);
            }
            (peer, st.opts.sndbuf, st.opts.sndtimeo, st.opts.passcred, st.addr.clone())
        };
        let total = io.cap();
        if total == 0 {
            // Linux queues nothing, files included.
            return Ok(0);
        }
        let level = check_rights(&rights, limit)?;
        let deadline = deadline_of(timeo);
        let chunk_max = ((sndbuf >> 1).saturating_sub(64)).clamp(1, STREAM_CHUNK_MAX);
        let mut rights = Some(rights);
        let mut sent = 0usize;
        while sent < total {
            let n = (total - sent).min(chunk_max);
            let mut data = match alloc_buf(n) {
                Ok(d) => d,
                Err(e) => return if sent > 0 { Ok(sent) } else { Err(e) },
            };
            if let Err(e) = io.get(sent, &mut data) {
                return if sent > 0 { Ok(sent) } else { Err(e) };
            }
            let mut out = Some(Outgoing { data, rights: rights.take().unwrap_or_default(), creds, from: from.clone(), level });
            match block_on(t, nonblock, deadline, || self.try_send_stream(&peer, &mut out, sndbuf, me, passcred)) {
                Ok(k) => sent += k,
                Err(e) => return if sent > 0 { Ok(sent) } else { Err(e) },
            }
        }
        Ok(sent)
    }

    /// One stream chunk, if the send buffer has room.
    fn try_send_stream(self: &Arc<Self>, peer: &Arc<Sock>, out: &mut Option<Outgoing>, sndbuf: usize, me: Ucred, passcred: bool) -> Result<Step<usize>, Errno> {
        if self.st.lock().shutdown & SEND_SHUTDOWN != 0 {
            return Err(Errno::EPIPE);
        }
        if self.wmem.load(Ordering::Acquire) >= sndbuf {
            return Ok(Step::Block(self.clone()));
        }
        let mut ps = peer.st.lock();
        if ps.dead || ps.shutdown & RCV_SHUTDOWN != 0 {
            return Err(Errno::EPIPE);
        }
        let Some(o) = out.take() else { return Ok(Step::Done(0)) };
        let n = o.data.len();
        self.enqueue(peer, &mut ps, o, me, passcred);
        drop(ps);
        peer.notify();
        Ok(Step::Done(n))
    }

    #[allow(clippy::too_many_arguments)]
    fn send_dgram(self: &Arc<Self>, t: &Task, io: &mut dyn Io, nonblock: bool, to: Option<Name>, rights: Vec<Arc<OpenFile>>, creds: Option<Ucred>, me: Ucred, limit: u64) -> Result<usize, Errno> {
        let (sndbuf, timeo, passcred, bound, peer) = {
            let st = self.st.lock();
            if self.kind == Kind::SeqPacket && st.conn != Conn::Connected {
                return Err(ENOTCONN);
            }
            if st.shutdown & SEND_SHUTDOWN != 0 {
                return Err(Errno::EPIPE);
            }
            (st.opts.sndbuf, st.opts.sndtimeo, st.opts.passcred, st.addr.is_some(), st.peer.clone())
        };
        // Seqpacket sockets ignore a destination, as Linux.
        let to = if self.kind == Kind::SeqPacket { None } else { to };
        let total = io.cap();
        if total > sndbuf.saturating_sub(32) {
            return Err(EMSGSIZE);
        }
        let target = match &to {
            Some(n) => lookup(self.kind, n)?,
            None => peer.clone().ok_or(ENOTCONN)?,
        };
        drop(peer);
        let level = check_rights(&rights, limit)?;
        if passcred && !bound {
            self.autobind()?;
        }
        let mut data = alloc_buf(total)?;
        io.get(0, &mut data)?;
        let from = self.st.lock().addr.clone();
        let mut out = Some(Outgoing { data, rights, creds, from, level });
        block_on(t, nonblock, deadline_of(timeo), || self.try_send_dgram(&target, &mut out, sndbuf, me, passcred))
    }

    /// One datagram, if the sender's buffer and the receiver's queue allow.
    fn try_send_dgram(self: &Arc<Self>, target: &Arc<Sock>, out: &mut Option<Outgoing>, sndbuf: usize, me: Ucred, passcred: bool) -> Result<Step<usize>, Errno> {
        if self.st.lock().shutdown & SEND_SHUTDOWN != 0 {
            return Err(Errno::EPIPE);
        }
        let mut gone: Option<Arc<Sock>> = None;
        let mut ts = target.st.lock();
        if ts.dead {
            drop(ts);
            if self.kind == Kind::SeqPacket {
                return Err(Errno::EPIPE);
            }
            // The association to a closed socket is dissolved.
            let mut st = self.st.lock();
            if st.peer.as_ref().is_some_and(|p| Arc::ptr_eq(p, target)) {
                gone = st.peer.take();
            }
            drop(st);
            drop(gone);
            return Err(ECONNREFUSED);
        }
        if ts.shutdown & RCV_SHUTDOWN != 0 {
            return Err(Errno::EPIPE);
        }
        let to_self = Arc::ptr_eq(self, target);
        let peer_is_me = ts.peer.as_ref().is_some_and(|p| Arc::ptr_eq(p, self));
        if self.kind == Kind::Dgram && ts.peer.is_some() && !peer_is_me {
            return Err(Errno::EPERM);
        }
        if self.wmem.load(Ordering::Acquire) >= sndbuf {
            return Ok(Step::Block(self.clone()));
        }
        if !to_self && !peer_is_me && ts.rxq.len() > DGRAM_QLEN {
            return Ok(Step::Block(target.clone()));
        }
        let Some(o) = out.take() else { return Ok(Step::Done(0)) };
        let n = o.data.len();
        self.enqueue(target, &mut ts, o, me, passcred);
        drop(ts);
        target.notify();
        Ok(Step::Done(n))
    }

    /// Appends `o` to `target`'s queue (its state locked in `ts`),
    /// charging this socket.
    fn enqueue(self: &Arc<Self>, target: &Sock, ts: &mut State, o: Outgoing, me: Ucred, passcred: bool) {
        let creds = o.creds.or(if passcred || ts.opts.passcred { Some(me) } else { None });
        let charge = charge_of(o.data.len());
        self.wmem.fetch_add(charge, Ordering::AcqRel);
        if !o.rights.is_empty() {
            INFLIGHT.fetch_add(o.rights.len(), Ordering::Relaxed);
            target.level.fetch_max(o.level, Ordering::Relaxed);
        }
        ts.rx_bytes += o.data.len();
        ts.rxq.push_back(Msg { data: o.data, off: 0, rights: o.rights, creds, from: o.from, sender: Some(self.clone()), charge });
    }

    /// recvmsg into `io` with MSG_ flags.
    pub fn recv(self: &Arc<Self>, t: &Task, io: &mut dyn Io, flags: u32, nonblock: bool) -> Result<Received, Errno> {
        if flags & MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let nonblock = nonblock || flags & MSG_DONTWAIT != 0;
        let (conn, timeo, lowat) = {
            let st = self.st.lock();
            (st.conn, st.opts.rcvtimeo, st.opts.rcvlowat)
        };
        let deadline = deadline_of(timeo);
        let mut r = Received::default();
        match self.kind {
            Kind::Stream => {
                if conn != Conn::Connected {
                    return Err(Errno::EINVAL);
                }
                let cap = io.cap();
                let target = if flags & MSG_WAITALL != 0 { cap } else { cap.min(lowat.max(1) as usize) }.max(1);
                match block_on(t, nonblock, deadline, || self.try_recv_stream(io, flags, target, &mut r)) {
                    Ok(()) => {}
                    Err(_) if r.ret > 0 => {}
                    Err(e) => return Err(e),
                }
            }
            _ => {
                if self.kind == Kind::SeqPacket && conn != Conn::Connected {
                    return Err(ENOTCONN);
                }
                block_on(t, nonblock, deadline, || self.try_recv_dgram(io, flags, nonblock, &mut r))?;
            }
        }
        Ok(r)
    }

    /// One pass of a stream read: copies what is queued (up to the
    /// buffer), Done once `target` bytes are read or the read cannot grow.
    fn try_recv_stream(self: &Arc<Self>, io: &mut dyn Io, flags: u32, target: usize, r: &mut Received) -> Result<Step<()>, Errno> {
        let peek = flags & MSG_PEEK != 0;
        // A peek starts over each time; what an earlier pass found is
        // dropped after the lock.
        let _old = if peek { core::mem::take(r) } else { Received::default() };
        let mut garbage: Vec<Msg> = Vec::new();
        let cap = io.cap();
        let mut st = self.st.lock();
        let s = &mut *st;
        let passcred = s.opts.passcred;
        let mut consumed = false;
        let mut stop = false;
        let mut i = 0;
        while r.ret < cap {
            let idx = if peek { i } else { 0 };
            let Some(m) = s.rxq.get_mut(idx) else { break };
            if passcred {
                // Never glue data from different writers.
                match r.glue {
                    Some(c) if c != m.creds => {
                        stop = true;
                        break;
                    }
                    Some(_) => {}
                    None => {
                        r.glue = Some(m.creds);
                        r.creds = Some(m.creds.unwrap_or(Ucred::NOBODY));
                    }
                }
            }
            if !r.got_from {
                r.got_from = true;
                r.from = m.from.clone();
            }
            let n = m.remaining().min(cap - r.ret);
            if let Err(e) = io.put(r.ret, &m.data[m.off..m.off + n]) {
                if r.ret == 0 {
                    return Err(e);
                }
                stop = true;
                break;
            }
            r.ret += n;
            if peek {
                if !m.rights.is_empty() {
                    r.rights = m.rights.clone();
                    stop = true;
                    break;
                }
                i += 1;
                continue;
            }
            m.off += n;
            s.rx_bytes -= n;
            consumed = true;
            let had_rights = !m.rights.is_empty();
            if had_rights {
                r.rights = m.take_rights();
            }
            if m.remaining() == 0 {
                garbage.extend(s.rxq.pop_front());
            }
            if had_rights {
                stop = true;
                break;
            }
        }
        let step = if r.ret >= target || r.ret >= cap || stop {
            Ok(Step::Done(()))
        } else if s.err != 0 {
            if r.ret == 0 {
                let e = core::mem::take(&mut s.err);
                Err(Errno(e))
            } else {
                Ok(Step::Done(()))
            }
        } else if s.shutdown & RCV_SHUTDOWN != 0 {
            Ok(Step::Done(()))
        } else {
            Ok(Step::Block(self.clone()))
        };
        drop(st);
        drop(garbage);
        if consumed {
            self.notify();
        }
        step
    }

    /// One datagram/seqpacket read.
    fn try_recv_dgram(self: &Arc<Self>, io: &mut dyn Io, flags: u32, nonblock: bool, r: &mut Received) -> Result<Step<()>, Errno> {
        let peek = flags & MSG_PEEK != 0;
        let _old = core::mem::take(r);
        let mut garbage: Option<Msg> = None;
        let mut st = self.st.lock();
        if st.err != 0 {
            let e = core::mem::take(&mut st.err);
            return Err(Errno(e));
        }
        let s = &mut *st;
        let passcred = s.opts.passcred;
        if let Some(m) = s.rxq.front_mut() {
            let len = m.data.len();
            let n = len.min(io.cap());
            let res = io.put(0, &m.data[..n]);
            r.from = m.from.clone();
            if passcred {
                r.creds = Some(m.creds.unwrap_or(Ucred::NOBODY));
            }
            if peek {
                r.rights = m.rights.clone();
            } else {
                r.rights = m.take_rights();
                s.rx_bytes -= len;
                garbage = s.rxq.pop_front();
            }
            if len > n {
                r.flags |= MSG_TRUNC;
            }
            r.ret = if flags & MSG_TRUNC != 0 { len } else { n };
            drop(st);
            drop(garbage);
            if !peek {
                self.notify();
            }
            return res.map(Step::Done);
        }
        if s.shutdown & RCV_SHUTDOWN != 0 && (self.kind == Kind::SeqPacket || !nonblock) {
            return Ok(Step::Done(()));
        }
        Ok(Step::Block(self.clone()))
    }

    // ---- readiness, ioctl, options ----------------------------------------

    /// poll(2) readiness (Linux: unix_poll, unix_dgram_poll).
    pub fn poll(&self) -> u16 {
        const OUT: u16 = POLLOUT | POLLWRNORM | POLLWRBAND;
        let (mut mask, peer) = {
            let st = self.st.lock();
            let mut m = 0;
            if st.err != 0 {
                m |= POLLERR;
            }
            if st.shutdown == SHUTDOWN_MASK {
                m |= POLLHUP;
            }
            if st.shutdown & RCV_SHUTDOWN != 0 {
                m |= POLLRDHUP | POLLIN | POLLRDNORM;
            }
            if !st.rxq.is_empty() || !st.accept_q.is_empty() {
                m |= POLLIN | POLLRDNORM;
            }
            if self.kind != Kind::Dgram && st.conn == Conn::Unconnected {
                m |= POLLHUP;
            }
            let writable = st.conn != Conn::Listening && self.wmem.load(Ordering::Acquire).saturating_mul(4) <= st.opts.sndbuf;
            if writable {
                m |= OUT;
            }
            (m, if writable && self.kind != Kind::Stream { st.peer.clone() } else { None })
        };
        if let Some(p) = &peer {
            let ps = p.st.lock();
            let peer_is_me = ps.peer.as_ref().is_some_and(|x| self.is(x));
            if !peer_is_me && !self.is(p) && ps.rxq.len() > DGRAM_QLEN {
                mask &= !OUT;
            }
        }
        mask
    }

    /// FIONREAD/SIOCINQ: unread bytes (datagrams: the next one's size).
    pub fn inq(&self) -> Result<usize, Errno> {
        let st = self.st.lock();
        if st.conn == Conn::Listening {
            return Err(Errno::EINVAL);
        }
        Ok(match self.kind {
            Kind::Dgram => st.rxq.front().map_or(0, |m| m.data.len()),
            _ => st.rx_bytes,
        })
    }

    /// SIOCOUTQ: what this socket's unread messages cost it.
    pub fn outq(&self) -> usize {
        self.wmem.load(Ordering::Acquire)
    }

    /// getsockopt(SOL_SOCKET, name): the value's bytes.
    pub fn getsockopt(&self, name: i32) -> Result<Vec<u8>, Errno> {
        let int = |v: i32| Ok(Vec::from(v.to_le_bytes()));
        let mut st = self.st.lock();
        let o = st.opts;
        match name {
            SO_TYPE => int(self.kind.sock_type() as i32),
            SO_DOMAIN => int(i32::from(AF_UNIX)),
            SO_PROTOCOL => int(0),
            SO_ERROR => int(core::mem::take(&mut st.err)),
            SO_PEERCRED => {
                let c = if self.kind == Kind::Dgram && st.conn != Conn::Connected { None } else { st.peercred };
                Ok(Vec::from(c.unwrap_or(Ucred::NONE).to_bytes()))
            }
            SO_PASSCRED => int(i32::from(o.passcred)),
            SO_SNDBUF => int(o.sndbuf as i32),
            SO_RCVBUF => int(o.rcvbuf as i32),
            SO_ACCEPTCONN => int(i32::from(st.conn == Conn::Listening)),
            SO_REUSEADDR | SO_KEEPALIVE | SO_DEBUG | SO_DONTROUTE | SO_BROADCAST | SO_OOBINLINE => int(i32::from(o.flags & (1 << name) != 0)),
            SO_REUSEPORT => int(0),
            SO_RCVLOWAT => int(o.rcvlowat),
            SO_SNDLOWAT => int(1),
            SO_PRIORITY => int(o.priority),
            SO_LINGER => {
                let mut b = Vec::from(i32::from(o.linger.0).to_le_bytes());
                b.extend_from_slice(&o.linger.1.to_le_bytes());
                Ok(b)
            }
            SO_RCVTIMEO_OLD | SO_RCVTIMEO_NEW | SO_SNDTIMEO_OLD | SO_SNDTIMEO_NEW => {
                let t = if name == SO_RCVTIMEO_OLD || name == SO_RCVTIMEO_NEW { o.rcvtimeo } else { o.sndtimeo };
                let ns = t.unwrap_or(0);
                let mut b = Vec::from((ns / 1_000_000_000).to_le_bytes());
                b.extend_from_slice(&(ns % 1_000_000_000 / 1000).to_le_bytes());
                Ok(b)
            }
            SO_COOKIE => Ok(Vec::from(self.ino.to_le_bytes())),
            _ => Err(ENOPROTOOPT),
        }
    }

    /// setsockopt(SOL_SOCKET, name): `val` holds the first bytes of the
    /// value, `len` is optlen; `privileged` allows the *FORCE options.
    pub fn setsockopt(&self, name: i32, val: &[u8], len: usize, privileged: bool) -> Result<(), Errno> {
        let int = || -> Result<i32, Errno> {
            if len < 4 || val.len() < 4 {
                return Err(Errno::EINVAL);
            }
            Ok(i32::from_le_bytes([val[0], val[1], val[2], val[3]]))
        };
        let mut st = self.st.lock();
        let o = &mut st.opts;
        match name {
            SO_PASSCRED => o.passcred = int()? != 0,
            SO_SNDBUF | SO_SNDBUFFORCE | SO_RCVBUF | SO_RCVBUFFORCE => {
                let v = int()?;
                let force = name == SO_SNDBUFFORCE || name == SO_RCVBUFFORCE;
                if force && !privileged {
                    return Err(Errno::EPERM);
                }
                let max = if force { BUF_FORCE_MAX } else { BUF_MAX };
                let v = if force { (v.max(0) as usize).min(max) } else { (v as u32 as usize).min(max) };
                if name == SO_SNDBUF || name == SO_SNDBUFFORCE {
                    o.sndbuf = (v * 2).max(SNDBUF_MIN);
                } else {
                    o.rcvbuf = (v * 2).max(RCVBUF_MIN);
                }
            }
            SO_REUSEADDR | SO_KEEPALIVE | SO_DEBUG | SO_DONTROUTE | SO_BROADCAST | SO_OOBINLINE => {
                if int()? != 0 {
                    o.flags |= 1 << name;
                } else {
                    o.flags &= !(1 << name);
                }
            }
            SO_REUSEPORT => {
                if int()? != 0 {
                    return Err(Errno::EOPNOTSUPP);
                }
            }
            SO_RCVLOWAT => {
                let v = int()?;
                o.rcvlowat = if v < 0 { i32::MAX } else { v.max(1) };
            }
            SO_PRIORITY => {
                let v = int()?;
                if !(0..=6).contains(&v) && !privileged {
                    return Err(Errno::EPERM);
                }
                o.priority = v;
            }
            SO_LINGER => {
                if len < 8 || val.len() < 8 {
                    return Err(Errno::EINVAL);
                }
                let on = i32::from_le_bytes([val[0], val[1], val[2], val[3]]) != 0;
                if on {
                    o.linger = (true, i32::from_le_bytes([val[4], val[5], val[6], val[7]]));
                } else {
                    o.linger.0 = false;
                }
            }
            SO_RCVTIMEO_OLD | SO_RCVTIMEO_NEW | SO_SNDTIMEO_OLD | SO_SNDTIMEO_NEW => {
                if len < 16 || val.len() < 16 {
                    return Err(Errno::EINVAL);
                }
                let sec = i64::from_le_bytes([val[0], val[1], val[2], val[3], val[4], val[5], val[6], val[7]]);
                let usec = i64::from_le_bytes([val[8], val[9], val[10], val[11], val[12], val[13], val[14], val[15]]);
                if !(0..1_000_000).contains(&usec) {
                    return Err(EDOM);
                }
                let t = if sec < 0 {
                    Some(0)
                } else if sec == 0 && usec == 0 {
                    None
                } else {
                    Some((sec as u64).saturating_mul(1_000_000_000).saturating_add(usec as u64 * 1000))
                };
                if name == SO_RCVTIMEO_OLD || name == SO_RCVTIMEO_NEW {
                    o.rcvtimeo = t;
                } else {
                    o.sndtimeo = t;
                }
            }
            _ => return Err(ENOPROTOOPT),
        }
        drop(st);
        // A larger send buffer may let writers go on.
        self.notify();
        Ok(())
    }
}

/// An open unix socket: the file side of a `Sock`.
pub struct SocketFile {
    pub sock: Arc<Sock>,
    name: String,
}

impl SocketFile {
    /// Wraps `sock`; closing the last file releases it.
    pub fn new(sock: Arc<Sock>) -> SocketFile {
        let name = format!("socket:[{}]", sock.ino);
        SocketFile { sock, name }
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        self.sock.release(false);
    }
}

/// ioctl numbers.
const FIONREAD: u64 = 0x541b;
const SIOCOUTQ: u64 = 0x5411;

impl FileOps for SocketFile {
    fn read(&self, t: &Task, segs: &[UserSeg], off: Option<u64>, nonblock: bool) -> SysResult {
        if off.is_some() {
            return Err(Errno::ESPIPE);
        }
        let mut io = UserIo::new(t, segs);
        if io.cap() == 0 {
            return Ok(0);
        }
        // Files passed with the data are dropped (closed), as Linux.
        let r = self.sock.recv(t, &mut io, 0, nonblock)?;
        Ok(r.ret as u64)
    }

    fn write(&self, t: &Task, segs: &[UserSeg], off: Option<u64>, nonblock: bool) -> SysResult {
        if off.is_some() {
            return Err(Errno::ESPIPE);
        }
        let mut io = UserIo::new(t, segs);
        self.sock.send(t, &mut io, 0, nonblock, None, Vec::new(), None)
    }

    fn splice_read(&self, t: &Task, buf: &mut [u8], off: Option<u64>, nonblock: bool) -> SysResult {
        if off.is_some() {
            return Err(Errno::ESPIPE);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let r = self.sock.recv(t, &mut KernelDst(buf), 0, nonblock)?;
        Ok(r.ret as u64)
    }

    fn splice_write(&self, t: &Task, buf: &[u8], off: Option<u64>, nonblock: bool) -> SysResult {
        if off.is_some() {
            return Err(Errno::ESPIPE);
        }
        self.sock.send(t, &mut KernelSrc(buf), 0, nonblock, None, Vec::new(), None)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(Stat {
            st_mode: 0o140777,
            st_nlink: 1,
            st_blksize: 4096,
            st_ino: self.sock.ino,
            st_dev: 8,
            st_uid: self.sock.owner.0,
            st_gid: self.sock.owner.1,
            ..Stat::default()
        })
    }

    fn ioctl(&self, t: &Task, req: u64, arg: u64) -> SysResult {
        let v = match req {
            FIONREAD => self.sock.inq()?,
            SIOCOUTQ => self.sock.outq(),
            _ => return crate::net::host::iface_ioctl(t, req, arg).unwrap_or(Err(Errno::ENOTTY)),
        };
        let v = i32::try_from(v).unwrap_or(i32::MAX);
        t.mm.lock().write_obj(arg, &v).map(|()| 0)
    }

    fn path(&self) -> &str {
        &self.name
    }

    fn poll(&self, _events: u16) -> u16 {
        self.sock.poll()
    }

    fn as_any(&self) -> Option<&dyn core::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// An in-memory buffer.
    struct Buf(Vec<u8>);
    impl Io for Buf {
        fn cap(&self) -> usize {
            self.0.len()
        }
        fn put(&mut self, at: usize, data: &[u8]) -> Result<(), Errno> {
            self.0.get_mut(at..at + data.len()).ok_or(Errno::EFAULT)?.copy_from_slice(data);
            Ok(())
        }
        fn get(&mut self, at: usize, dst: &mut [u8]) -> Result<(), Errno> {
            dst.copy_from_slice(self.0.get(at..at + dst.len()).ok_or(Errno::EFAULT)?);
            Ok(())
        }
    }

    const ME: Ucred = Ucred { pid: 7, uid: 1000, gid: 100 };

    fn out(data: &[u8]) -> Option<Outgoing> {
        Some(Outgoing { data: data.to_vec(), rights: Vec::new(), creds: None, from: None, level: 0 })
    }

    fn send(a: &Arc<Sock>, b: &Arc<Sock>, data: &[u8]) -> Result<Step<usize>, Errno> {
        let mut o = out(data);
        if let Some(o) = o.as_mut() {
            o.from = a.st.lock().addr.clone();
        }
        match a.kind {
            Kind::Stream => a.try_send_stream(b, &mut o, BUF_DEFAULT, ME, false),
            _ => a.try_send_dgram(b, &mut o, BUF_DEFAULT, ME, false),
        }
    }

    fn recv(s: &Arc<Sock>, cap: usize, flags: u32) -> (Result<Step<()>, Errno>, Received, Vec<u8>) {
        let mut io = Buf(vec![0; cap]);
        let mut r = Received::default();
        let st = match s.kind {
            Kind::Stream => s.try_recv_stream(&mut io, flags, 1, &mut r),
            _ => s.try_recv_dgram(&mut io, flags, true, &mut r),
        };
        (st, r, io.0)
    }

    fn done<T>(r: Result<Step<T>, Errno>) -> T {
        match r {
            Ok(Step::Done(v)) => v,
            Ok(Step::Block(_)) => panic!("blocked"),
            Err(e) => panic!("error {e:?}"),
        }
    }

    fn blocked<T>(r: Result<Step<T>, Errno>) -> bool {
        matches!(r, Ok(Step::Block(_)))
    }

    #[test]
    fn parses_addresses() {
        let mut raw = Vec::from(AF_UNIX.to_le_bytes());
        assert_eq!(parse_sockaddr(&raw, "/"), Ok(SockAddr::Autobind));
        raw.extend_from_slice(b"\0ab\0");
        assert_eq!(parse_sockaddr(&raw, "/"), Ok(SockAddr::Named(Name::Abstract(b"ab\0".to_vec()))));
        let mut p = Vec::from(AF_UNIX.to_le_bytes());
        p.extend_from_slice(b"sock\0junk");
        assert_eq!(
            parse_sockaddr(&p, "/tmp/x/"),
            Ok(SockAddr::Named(Name::Path { given: b"sock".to_vec(), key: b"/tmp/x/sock".to_vec() }))
        );
        assert_eq!(parse_sockaddr(&[1], "/"), Err(Errno::EINVAL));
        assert_eq!(parse_sockaddr(&[2, 0, b'a'], "/"), Err(Errno::EINVAL));
        assert_eq!(parse_sockaddr(&[0, 0, b'a'], "/"), Ok(SockAddr::Unspec));
        let long = vec![1u8; SOCKADDR_UN_LEN + 1];
        assert_eq!(parse_sockaddr(&long, "/"), Err(Errno::EINVAL));
        assert_eq!(resolve_path("/a/b", b"../c/./d"), b"/a/c/d".to_vec());
        assert_eq!(resolve_path("/a", b"/x//y/.."), b"/x".to_vec());
        assert_eq!(resolve_path("/", b".."), b"/".to_vec());
        // Round trip through getsockname's encoding.
        assert_eq!(encode_name(Some(&Name::Abstract(b"q".to_vec()))), vec![1, 0, 0, b'q']);
        assert_eq!(encode_name(Some(&Name::Path { given: b"s".to_vec(), key: b"/s".to_vec() })), vec![1, 0, b's', 0]);
        assert_eq!(encode_name(None), vec![1, 0]);
    }

    #[test]
    fn stream_is_a_byte_stream() {
        let (a, b) = Sock::pair(Kind::Stream, ME);
        assert_eq!(done(send(&a, &b, b"hello ")), 6);
        assert_eq!(done(send(&a, &b, b"world")), 5);
        assert_eq!(b.inq(), Ok(11));
        let (s, r, buf) = recv(&b, 4, MSG_PEEK);
        done(s);
        assert_eq!((r.ret, &buf[..]), (4, &b"hell"[..]));
        let (s, r, buf) = recv(&b, 8, 0);
        done(s);
        assert_eq!((r.ret, &buf[..]), (8, &b"hello wo"[..]));
        let (s, r, buf) = recv(&b, 8, 0);
        done(s);
        assert_eq!(&buf[..r.ret], b"rld");
        assert!(blocked(recv(&b, 8, 0).0));
        // All messages freed: the sender is no longer charged.
        assert_eq!(a.outq(), 0);
        assert_eq!(a.poll() & POLLOUT, POLLOUT);
        assert_eq!(b.poll() & POLLIN, 0);
    }

    #[test]
    fn dgram_and_seqpacket_keep_boundaries_and_truncate() {
        for kind in [Kind::Dgram, Kind::SeqPacket] {
            let (a, b) = Sock::pair(kind, ME);
            done(send(&a, &b, b"one"));
            done(send(&a, &b, b"second"));
            done(send(&a, &b, b""));
            assert_eq!(b.poll() & POLLIN, POLLIN);
            let (s, r, buf) = recv(&b, 10, 0);
            done(s);
            assert_eq!(&buf[..r.ret], b"one");
            let (s, r, _) = recv(&b, 3, MSG_TRUNC | MSG_PEEK);
            done(s);
            assert_eq!((r.ret, r.flags), (6, MSG_TRUNC));
            let (s, r, buf) = recv(&b, 3, 0);
            done(s);
            assert_eq!((r.ret, r.flags, &buf[..]), (3, MSG_TRUNC, &b"sec"[..]));
            let (s, r, _) = recv(&b, 3, 0);
            done(s);
            assert_eq!(r.ret, 0);
            assert!(blocked(recv(&b, 3, 0).0));
        }
    }

    #[test]
    fn shutdown_and_close() {
        let (a, b) = Sock::pair(Kind::Stream, ME);
        a.shutdown(1).unwrap();
        assert_eq!(send(&a, &b, b"x").err(), Some(Errno::EPIPE));
        // The peer sees EOF, and can still write back.
        let (s, r, _) = recv(&b, 4, 0);
        done(s);
        assert_eq!(r.ret, 0);
        assert_eq!(b.poll() & (POLLIN | POLLRDHUP | POLLHUP), POLLIN | POLLRDHUP);
        done(send(&b, &a, b"y"));
        assert_eq!(a.shutdown(3), Err(Errno::EINVAL));
        // Closing hangs up the peer, which still reads what was queued.
        b.release(false);
        assert_eq!(a.poll() & (POLLHUP | POLLERR | POLLIN), POLLHUP | POLLIN);
        assert_eq!(recv(&a, 4, 0).1.ret, 1);
        assert_eq!(recv(&a, 4, 0).1.ret, 0);
        assert_eq!(send(&a, &b, b"x").err(), Some(Errno::EPIPE));
        // Closing with unread data resets the peer.
        let (e, f) = Sock::pair(Kind::Stream, ME);
        done(send(&e, &f, b"unread"));
        f.release(false);
        assert_eq!(e.poll() & (POLLHUP | POLLERR), POLLHUP | POLLERR);
        assert_eq!(recv(&e, 4, 0).0.err(), Some(ECONNRESET));
        assert_eq!(recv(&e, 4, 0).1.ret, 0);
        // The sender's charge went with the dropped data.
        assert_eq!(e.outq(), 0);

        let (c, d) = Sock::pair(Kind::Dgram, ME);
        d.release(false);
        assert_eq!(send(&c, &d, b"x").err(), Some(ECONNREFUSED));
        assert!(c.st.lock().peer.is_none());
    }

    #[test]
    fn send_buffer_bounds_the_queue() {
        let (a, b) = Sock::pair(Kind::Dgram, ME);
        let big = vec![7u8; 60_000];
        let mut n = 0;
        while let Ok(Step::Done(_)) = send(&a, &b, &big) {
            n += 1;
            assert!(n < 100);
        }
        assert!(n >= 3);
        assert_eq!(a.poll() & POLLOUT, 0);
        assert!(blocked(send(&a, &b, b"x")));
        done(recv(&b, 10, 0).0);
        assert_eq!(done(send(&a, &b, b"x")), 1);
    }

    #[test]
    fn names_bind_connect_accept() {
        let l = Sock::new(Kind::Stream, (0, 0));
        let name = Name::Abstract(b"rvisor-test-listener".to_vec());
        l.bind(SockAddr::Named(name.clone())).unwrap();
        assert_eq!(l.bind(SockAddr::Autobind), Ok(()));
        assert_eq!(l.bind(SockAddr::Named(Name::Abstract(b"other".to_vec()))), Err(Errno::EINVAL));
        let l2 = Sock::new(Kind::Stream, (0, 0));
        assert_eq!(l2.bind(SockAddr::Named(name.clone())), Err(EADDRINUSE));
        // Abstract names are per type; pathnames are not.
        let d = Sock::new(Kind::Dgram, (0, 0));
        assert_eq!(d.bind(SockAddr::Named(name.clone())), Ok(()));
        assert_eq!(lookup(Kind::Stream, &Name::Abstract(b"nope".to_vec())).err(), Some(ECONNREFUSED));
        let p = Name::Path { given: b"s".to_vec(), key: b"/rvisor-test/s".to_vec() };
        assert_eq!(lookup(Kind::Stream, &p).err(), Some(Errno::ENOENT));
        d.release(false);
        l2.bind(SockAddr::Named(p.clone())).unwrap();
        assert_eq!(lookup(Kind::Dgram, &p).err(), Some(EPROTOTYPE));
        l2.release(false);
        assert_eq!(lookup(Kind::Stream, &p).err(), Some(Errno::ENOENT));

        let target = lookup(Kind::Stream, &name).unwrap();
        let c = Sock::new(Kind::Stream, (0, 0));
        assert_eq!(c.try_connect(&target, ME).err(), Some(ECONNREFUSED));
        l.listen(0, Ucred { pid: 1, uid: 0, gid: 0 }).unwrap();
        done(c.try_connect(&target, ME));
        assert_eq!(c.try_connect(&target, ME).err(), Some(EISCONN));
        assert_eq!(l.poll() & POLLIN, POLLIN);
        // Backlog 0 admits one pending connection.
        let c2 = Sock::new(Kind::Stream, (0, 0));
        assert!(blocked(c2.try_connect(&target, ME)));
        let peer = c.st.lock().peer.clone().unwrap();
        done(send(&c, &peer, b"hi"));
        let e = l.st.lock().accept_q.pop_front().unwrap();
        assert!(Arc::ptr_eq(&e, &peer));
        assert_eq!(e.getsockopt(SO_PEERCRED).unwrap(), ME.to_bytes().to_vec());
        assert_eq!(c.getsockopt(SO_PEERCRED).unwrap(), Ucred { pid: 1, uid: 0, gid: 0 }.to_bytes().to_vec());
        assert_eq!(e.sock_name(), encode_name(Some(&name)));
        assert_eq!(c.peer_name().unwrap(), encode_name(Some(&name)));
        assert_eq!(e.peer_name().unwrap(), vec![1, 0]);
        let (s, r, buf) = recv(&e, 8, 0);
        done(s);
        assert_eq!(&buf[..r.ret], b"hi");
        // Closing the listener resets connections still queued.
        done(c2.try_connect(&target, ME));
        l.release(false);
        assert_eq!(c2.getsockopt(SO_ERROR).unwrap(), ECONNRESET.0.to_le_bytes().to_vec());
        assert_eq!(lookup(Kind::Stream, &name).err(), Some(ECONNREFUSED));
        e.release(false);
        c.release(false);
        c2.release(false);
    }

    #[test]
    fn dgram_by_name_and_queue_limit() {
        let r = Sock::new(Kind::Dgram, (0, 0));
        let n = Name::Abstract(b"rvisor-test-dgram".to_vec());
        r.bind(SockAddr::Named(n.clone())).unwrap();
        let s = Sock::new(Kind::Dgram, (0, 0));
        s.autobind().unwrap();
        let target = lookup(Kind::Dgram, &n).unwrap();
        for _ in 0..=DGRAM_QLEN {
            done(send(&s, &target, b"m"));
        }
        assert!(blocked(send(&s, &target, b"m")));
        let (st, rcv, _) = recv(&r, 4, 0);
        done(st);
        assert!(matches!(rcv.from, Some(Name::Abstract(ref a)) if a.len() == 5));
        // A receiver associated with someone else refuses.
        let other = Sock::new(Kind::Dgram, (0, 0));
        r.st.lock().peer = Some(other.clone());
        assert_eq!(send(&s, &target, b"m").err(), Some(Errno::EPERM));
        r.st.lock().peer = None;
        r.release(false);
        s.release(false);
        other.release(false);
    }

    #[test]
    fn credentials_and_options() {
        let (a, b) = Sock::pair(Kind::Stream, ME);
        b.setsockopt(SO_PASSCRED, &1i32.to_le_bytes(), 4, false).unwrap();
        let mut o = out(b"ab");
        done(a.try_send_stream(&b, &mut o, BUF_DEFAULT, ME, false));
        let other = Ucred { pid: 9, uid: 1, gid: 1 };
        let mut o = out(b"cd");
        done(a.try_send_stream(&b, &mut o, BUF_DEFAULT, other, false));
        // Data from different credentials is not glued together.
        let (s, r, buf) = recv(&b, 8, 0);
        done(s);
        assert_eq!((&buf[..r.ret], r.creds), (&b"ab"[..], Some(ME)));
        let (_, r, _) = recv(&b, 8, 0);
        assert_eq!(r.creds, Some(other));

        let v = |s: &Sock, n| i32::from_le_bytes(s.getsockopt(n).unwrap()[..4].try_into().unwrap());
        a.setsockopt(SO_SNDBUF, &1i32.to_le_bytes(), 4, false).unwrap();
        assert_eq!(v(&a, SO_SNDBUF), SNDBUF_MIN as i32);
        a.setsockopt(SO_SNDBUF, &(-1i32).to_le_bytes(), 4, false).unwrap();
        assert_eq!(v(&a, SO_SNDBUF), 2 * BUF_MAX as i32);
        a.setsockopt(SO_RCVBUF, &1000i32.to_le_bytes(), 4, false).unwrap();
        assert_eq!(v(&a, SO_RCVBUF), 2304);
        assert_eq!(a.setsockopt(SO_SNDBUF, &[1, 0], 2, false), Err(Errno::EINVAL));
        assert_eq!(a.setsockopt(SO_TYPE, &1i32.to_le_bytes(), 4, false), Err(ENOPROTOOPT));
        assert_eq!(v(&a, SO_TYPE), SOCK_STREAM as i32);
        assert_eq!(v(&a, SO_DOMAIN), 1);
        let mut tv = Vec::from(1i64.to_le_bytes());
        tv.extend_from_slice(&2_000_000i64.to_le_bytes());
        assert_eq!(a.setsockopt(SO_RCVTIMEO_OLD, &tv, 16, false), Err(EDOM));
        tv[8..].copy_from_slice(&500_000i64.to_le_bytes());
        a.setsockopt(SO_RCVTIMEO_OLD, &tv, 16, false).unwrap();
        assert_eq!(a.getsockopt(SO_RCVTIMEO_OLD).unwrap(), tv);
        let mut lg = Vec::from(1i32.to_le_bytes());
        lg.extend_from_slice(&7i32.to_le_bytes());
        a.setsockopt(SO_LINGER, &lg, 8, false).unwrap();
        lg[..4].copy_from_slice(&0i32.to_le_bytes());
        lg[4..].copy_from_slice(&3i32.to_le_bytes());
        a.setsockopt(SO_LINGER, &lg, 8, false).unwrap();
        assert_eq!(a.getsockopt(SO_LINGER).unwrap(), [0, 0, 0, 0, 7, 0, 0, 0].to_vec());
        assert_eq!(a.getsockopt(9999), Err(ENOPROTOOPT));
        let fresh = Sock::new(Kind::Stream, (0, 0));
        assert_eq!(fresh.getsockopt(SO_PEERCRED).unwrap(), Ucred::NONE.to_bytes().to_vec());
        assert_eq!(fresh.poll(), POLLOUT | POLLWRNORM | POLLWRBAND | POLLHUP);
        assert_eq!(fresh.listen(1, ME), Err(Errno::EINVAL));
    }

    #[test]
    fn inflight_sockets_are_released_with_their_queue() {
        let (a, b) = Sock::pair(Kind::Dgram, ME);
        let (c, d) = Sock::pair(Kind::Stream, ME);
        let cf = OpenFile::new(alloc::boxed::Box::new(SocketFile::new(c.clone())), 2);
        assert!(sock_of_file(&cf).is_some_and(|s| Arc::ptr_eq(s, &c)));
        let level = check_rights(core::slice::from_ref(&cf), u64::MAX).unwrap();
        assert_eq!(level, 1);
        let mut o = Some(Outgoing { data: b"f".to_vec(), rights: alloc::vec![cf], creds: None, from: None, level });
        done(a.try_send_dgram(&b, &mut o, BUF_DEFAULT, ME, false));
        assert_eq!(b.level.load(Ordering::Relaxed), 1);
        // Only the queued message holds c's file now: c is alive.
        assert_eq!(d.poll() & POLLHUP, 0);
        // Closing the receiver drops the message, its file, and so c.
        b.release(false);
        assert_eq!(d.poll() & POLLHUP, POLLHUP);
        assert!(c.st.lock().dead);
        assert_eq!(a.outq(), 0);
        // Sockets nested too deep cannot be sent.
        let deep = Sock::new(Kind::Stream, (0, 0));
        deep.level.store(MAX_RECURSION + 1, Ordering::Relaxed);
        let df = OpenFile::new(alloc::boxed::Box::new(SocketFile::new(deep)), 2);
        assert_eq!(check_rights(core::slice::from_ref(&df), u64::MAX), Err(ETOOMANYREFS));
        a.release(false);
        d.release(false);
    }

    #[test]
    fn charges_round_up() {
        assert_eq!(charge_of(0), MSG_OVERHEAD);
        assert_eq!(charge_of(2), 64 + MSG_OVERHEAD);
        assert_eq!(charge_of(64), 64 + MSG_OVERHEAD);
        assert_eq!(charge_of(65), 128 + MSG_OVERHEAD);
    }
}
