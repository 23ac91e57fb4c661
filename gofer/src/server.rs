//! Serving the protocol over one connection, beneath one root directory.
//!
//! Linux analogue: a 9P file server (gVisor's `runsc/fsgofer`).
//!
//! # Transport
//!
//! One `AF_UNIX` `SOCK_SEQPACKET` socket per connection ([`crate::seqpacket_pair`]
//! makes one). A packet is exactly one message, so no stream reassembly is
//! needed, a short or oversized packet is detected by the kernel's `MSG_TRUNC`
//! rather than by trusting a length field, and the donated fd of an `Open` or
//! `Create` reply is attached to the very packet it belongs to. The server
//! answers requests in order, one at a time; run one [`serve`] per connection
//! (each in its own thread) for concurrency. The server never accepts fds
//! from its client: it offers no control buffer, so the kernel closes any.
//!
//! # Path safety
//!
//! Each fid holds an `O_PATH` fd of a file beneath the root. Every lookup is
//! one component, checked by [`check_name`] (no `.`, `..`, `/`, NUL or empty
//! names), from a held directory fd, with `openat2(O_PATH | O_NOFOLLOW,
//! RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`, or plain
//! `openat(O_PATH | O_NOFOLLOW)` where openat2 is missing (`ENOSYS`). A
//! symlink therefore becomes a symlink fid and is never followed by the
//! gofer: the sentry reads it with `Readlink` and resolves it itself. Every
//! mutation is an `*at` call of one checked name in a held directory, of a
//! kind that does not follow a trailing symlink (`Create` is always
//! `O_CREAT | O_EXCL | O_NOFOLLOW`). A concurrent rename on the host can only
//! change *which* file beneath the root a name reaches, never lead outside.
//!
//! Reopening a fid for I/O (`Open`, truncation, xattrs, directory reads) goes
//! through `/proc/self/fd/N`; [`crate::ProcSelfFd`] explains why that cannot
//! escape. Operations that the kernel allows on `O_PATH` fds directly use
//! them with `AT_EMPTY_PATH` (stat, chown, utimes, statfs, readlink).
//!
//! Known limit, shared with every fd-based file server: if the host moves a
//! directory a fid refers to out from under the root, that fid follows it.
//! [`crate::confine::confine`] makes this moot by pivoting into the root, so
//! nothing outside it is reachable from the gofer's mount namespace.
//!
//! # Read-only
//!
//! With [`Config::readonly`] every mutating request and every open for
//! writing or truncation fails with `EROFS`, decided by the server before any
//! host call.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use libc::c_int;

use crate::error::{io_err, GoferError};
use crate::procfs::ProcSelfFd;
use crate::protocol::{
    attr, check_name, check_path, check_xattr_name, Dirent, Fid, Header, ProtoError, Reply,
    Request, SetAttr, Stat, StatFs, Timespec, MAX_DIRENTS_BYTES, MAX_MSG, NO_ID, PATH_MAX,
    ROOT_FID, XATTR_SIZE_MAX,
};
use crate::sys;

/// Default limit on live fids per connection.
pub const DEFAULT_MAX_FIDS: usize = 65536;

/// How single-component lookups are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lookup {
    /// `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
    /// RESOLVE_NO_MAGICLINKS`, falling back to `openat` on `ENOSYS`.
    #[default]
    Openat2,
    /// `openat(O_PATH | O_NOFOLLOW)` only; what old kernels get. Exists so the
    /// fallback path is tested too.
    Openat,
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Refuse every mutation and every open for writing with `EROFS`.
    pub readonly: bool,
    /// Most live fids per connection; one more fails with `EMFILE`.
    pub max_fids: usize,
    /// The `/proc/self/fd` handle to reopen fids through. `None` opens it at
    /// start, which fails once the process has pivoted into a root without
    /// procfs; a confined gofer opens it before [`crate::confine::confine`].
    pub proc_self_fd: Option<Arc<ProcSelfFd>>,
    /// Lookup method.
    pub lookup: Lookup,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            readonly: false,
            max_fids: DEFAULT_MAX_FIDS,
            proc_self_fd: None,
            lookup: Lookup::default(),
        }
    }
}

/// Serves one connection until the client hangs up.
///
/// * `conn`: a connected unix `SOCK_SEQPACKET` socket (anything else fails
///   with [`GoferError::NotSeqpacket`]); one message per packet.
/// * `root`: any fd of the directory to serve (an `O_PATH` one will do);
///   nothing outside it is ever reached.
/// * `config`: see [`Config`].
///
/// Sets the process umask to 0: the sentry applies the guest's umask and
/// sends final modes, which must not be masked again.
///
/// Returns `Ok(())` when the client closes the connection, and
/// [`GoferError::Frame`] after closing it over a packet that cannot be framed.
/// Malformed but framed requests get an error reply and serving goes on.
pub fn serve(conn: OwnedFd, root: OwnedFd, config: &Config) -> Result<(), GoferError> {
    match sys::socket_type(conn.as_fd()) {
        Ok(libc::SOCK_SEQPACKET) => {}
        Ok(_) => return Err(GoferError::NotSeqpacket),
        Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => return Err(GoferError::NotSeqpacket),
        Err(e) => return Err(io_err("getsockopt SO_TYPE")(e)),
    }
    let mut server = Server::new(root, config)?;
    // One byte more than the largest message, so that MSG_TRUNC tells us
    // about any packet over the limit.
    let mut buf = vec![0u8; MAX_MSG + 1];
    loop {
        let packet = match sys::recv_packet(conn.as_fd(), &mut buf, false) {
            Ok(p) => p,
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => return Ok(()),
            Err(e) => return Err(io_err("recvmsg")(e)),
        };
        if packet.len == 0 {
            return Ok(()); // peer closed (a zero-length packet could not be framed anyway)
        }
        if packet.truncated {
            return Err(GoferError::Frame(ProtoError::TooLarge(packet.len)));
        }
        let msg = &buf[..packet.len];
        let header = Header::parse(msg).map_err(GoferError::Frame)?;
        let (reply, fd) = server.handle_message(msg);
        let mut out = reply.encode(header.tag);
        let mut fd = fd;
        loop {
            match sys::send_packet(conn.as_fd(), &out, fd.as_ref().map(AsFd::as_fd)) {
                Ok(_) => break,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)) => {
                    return Ok(())
                }
                // A reply too large for the socket's send buffer: say so
                // rather than leave the client waiting.
                Err(e)
                    if e.raw_os_error() == Some(libc::EMSGSIZE)
                        && fd.is_none()
                        && out.len() > 64 =>
                {
                    out = Reply::Error {
                        errno: libc::EMSGSIZE,
                    }
                    .encode(header.tag);
                    fd = None;
                }
                Err(e) => return Err(io_err("sendmsg")(e)),
            }
        }
    }
}

/// A host errno, the server's internal error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Errno(i32);

impl From<io::Error> for Errno {
    fn from(e: io::Error) -> Errno {
        match e.raw_os_error() {
            Some(n) if (1..=4095).contains(&n) => Errno(n),
            _ => Errno(libc::EIO),
        }
    }
}

impl From<ProtoError> for Errno {
    fn from(e: ProtoError) -> Errno {
        Errno(e.errno())
    }
}

type R<T> = Result<T, Errno>;

const EBADF: Errno = Errno(libc::EBADF);
const EINVAL: Errno = Errno(libc::EINVAL);

/// What a fid holds.
#[derive(Debug)]
struct Node {
    /// `O_PATH` fd of the file.
    fd: OwnedFd,
    dev: u64,
    ino: u64,
    /// `mode & S_IFMT` at walk time (a file's type never changes).
    ftype: u32,
    /// Directory opened for reading, kept between `Getdents` calls.
    dir: Option<OwnedFd>,
}

/// The state of one connection: the root and the fid table.
///
/// [`serve`] wraps this in the socket loop; it is public so that the
/// request handling can be driven without a socket (fuzzing, in-process use).
#[derive(Debug)]
pub struct Server {
    root: OwnedFd,
    proc: Arc<ProcSelfFd>,
    readonly: bool,
    max_fids: usize,
    lookup: Lookup,
    /// Set once openat2 answered ENOSYS, to stop trying it.
    openat2_missing: std::cell::Cell<bool>,
    fids: HashMap<Fid, Node>,
    next_fid: Fid,
}

/// Open flags a client may pass to `Open`.
const OPEN_FLAGS: c_int = libc::O_ACCMODE
    | libc::O_APPEND
    | libc::O_NONBLOCK
    | libc::O_DSYNC
    | libc::O_SYNC
    | libc::O_DIRECT
    | libc::O_NOATIME
    | libc::O_TRUNC
    | libc::O_LARGEFILE
    | libc::O_DIRECTORY
    | libc::O_NOCTTY
    | libc::O_CLOEXEC
    | libc::O_NOFOLLOW;

/// Open flags a client may pass to `Create` (`O_CREAT | O_EXCL` are implied).
const CREATE_FLAGS: c_int = (OPEN_FLAGS & !libc::O_DIRECTORY) | libc::O_CREAT | libc::O_EXCL;

/// Flags for every lookup: a handle only, never following a final symlink.
const LOOKUP_FLAGS: c_int = libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC;

fn cname(name: &[u8]) -> R<CString> {
    check_name(name)?;
    CString::new(name).map_err(|_| EINVAL)
}

#[allow(clippy::useless_conversion)] // the field types differ between architectures
fn stat_of(st: &libc::stat) -> Stat {
    Stat {
        dev: st.st_dev,
        ino: st.st_ino,
        mode: st.st_mode,
        nlink: u64::from(st.st_nlink),
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev,
        size: st.st_size,
        blksize: i64::from(st.st_blksize),
        blocks: st.st_blocks,
        atime: Timespec {
            sec: st.st_atime,
            nsec: st.st_atime_nsec,
        },
        mtime: Timespec {
            sec: st.st_mtime,
            nsec: st.st_mtime_nsec,
        },
        ctime: Timespec {
            sec: st.st_ctime,
            nsec: st.st_ctime_nsec,
        },
    }
}

/// Stats an `O_PATH` fd and wraps it as a fid's node.
fn node_of(fd: OwnedFd) -> R<(Node, Stat)> {
    let st = sys::fstat(fd.as_fd())?;
    let node = Node {
        fd,
        dev: st.st_dev,
        ino: st.st_ino,
        ftype: st.st_mode & libc::S_IFMT,
        dir: None,
    };
    Ok((node, stat_of(&st)))
}

fn accmode(flags: c_int) -> c_int {
    flags & libc::O_ACCMODE
}

/// Reopens `node` for I/O through `/proc/self/fd` (see [`ProcSelfFd`]).
fn reopen(proc: &ProcSelfFd, node: &Node, flags: c_int) -> R<OwnedFd> {
    let mut flags = flags & !(libc::O_NOFOLLOW | libc::O_CREAT | libc::O_EXCL | libc::O_PATH);
    match node.ftype {
        // The kernel would also say ELOOP; refusing first keeps the gofer
        // from ever following the symlink's contents.
        libc::S_IFLNK => return Err(Errno(libc::ELOOP)),
        libc::S_IFSOCK => return Err(Errno(libc::ENXIO)),
        // Host devices are not the sandbox's to open.
        libc::S_IFCHR | libc::S_IFBLK => return Err(Errno(libc::EPERM)),
        // An open of a FIFO waits for the other end; the connection must not.
        libc::S_IFIFO => flags |= libc::O_NONBLOCK,
        libc::S_IFDIR if accmode(flags) != libc::O_RDONLY => return Err(Errno(libc::EISDIR)),
        _ => {}
    }
    if flags & libc::O_DIRECTORY != 0 && node.ftype != libc::S_IFDIR {
        return Err(Errno(libc::ENOTDIR));
    }
    let fd = proc.reopen(node.fd.as_fd(), flags)?;
    let st = sys::fstat(fd.as_fd())?;
    if (st.st_dev, st.st_ino) != (node.dev, node.ino) {
        // Cannot happen with a genuine /proc/self/fd; refuse rather than
        // hand out some other file.
        return Err(Errno(libc::ESTALE));
    }
    Ok(fd)
}

/// Only `user.*` xattrs are served. `trusted.*` and `security.*` belong to
/// the host (`security.capability` would even grant file capabilities on
/// the host), and `system.*` ACLs are host permissions.
fn check_user_xattr(name: &[u8]) -> R<CString> {
    check_xattr_name(name)?;
    if !name.starts_with(b"user.") {
        return Err(Errno(libc::EOPNOTSUPP));
    }
    CString::new(name).map_err(|_| EINVAL)
}

fn check_nsec(t: &Timespec) -> R<()> {
    if (0..1_000_000_000).contains(&t.nsec)
        || t.nsec == libc::UTIME_NOW
        || t.nsec == libc::UTIME_OMIT
    {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

impl Server {
    /// Makes a server for `root` (any fd of a directory). See [`serve`] for the
    /// umask side effect, which happens here.
    pub fn new(root: OwnedFd, config: &Config) -> Result<Server, GoferError> {
        let proc = match &config.proc_self_fd {
            Some(p) => Arc::clone(p),
            None => Arc::new(ProcSelfFd::open()?),
        };
        proc.check_owner()?;
        // A handle of our own, O_PATH whatever `root` was opened with.
        let root = sys::openat(
            root.as_fd(),
            c".",
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
        )
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOTDIR) => GoferError::RootNotDirectory,
            _ => io_err("open root")(e),
        })?;
        sys::umask(0);
        Ok(Server {
            root,
            proc,
            readonly: config.readonly,
            max_fids: config.max_fids.min(u32::MAX as usize - 1),
            lookup: config.lookup,
            openat2_missing: std::cell::Cell::new(false),
            fids: HashMap::new(),
            next_fid: ROOT_FID + 1,
        })
    }

    /// Number of live fids.
    pub fn fid_count(&self) -> usize {
        self.fids.len()
    }

    /// Decodes one framed message and handles it. Returns the reply and, for
    /// `Open`/`Create`, the fd to donate with it. Never panics on any input.
    pub fn handle_message(&mut self, msg: &[u8]) -> (Reply, Option<OwnedFd>) {
        match Request::decode(msg) {
            Ok((_, req)) => self.handle(req),
            Err(e) => (Reply::Error { errno: e.errno() }, None),
        }
    }

    /// Handles one decoded request.
    pub fn handle(&mut self, req: Request) -> (Reply, Option<OwnedFd>) {
        match self.dispatch(req) {
            Ok(r) => r,
            Err(Errno(errno)) => (Reply::Error { errno }, None),
        }
    }

    fn dispatch(&mut self, req: Request) -> R<(Reply, Option<OwnedFd>)> {
        let reply = match req {
            Request::Attach => self.attach()?,
            Request::Walk { fid, names } => self.walk(fid, &names)?,
            Request::WalkStat { fid, names } => self.walk_stat(fid, &names)?,
            Request::Stat { fid } => Reply::Stat {
                stat: stat_of(&sys::fstat(self.node(fid)?.fd.as_fd())?),
            },
            Request::Open { fid, flags } => {
                return self.open(fid, flags).map(|fd| (Reply::Open, Some(fd)))
            }
            Request::Create {
                dir,
                name,
                flags,
                mode,
                uid,
                gid,
            } => {
                return self
                    .create(dir, &name, flags, mode, uid, gid)
                    .map(|(r, fd)| (r, Some(fd)))
            }
            Request::Mkdir {
                dir,
                name,
                mode,
                uid,
                gid,
            } => self.mkdir(dir, &name, mode, uid, gid)?,
            Request::Mknod {
                dir,
                name,
                mode,
                rdev: _,
                uid,
                gid,
            } => self.mknod(dir, &name, mode, uid, gid)?,
            Request::Symlink {
                dir,
                name,
                target,
                uid,
                gid,
            } => self.symlink(dir, &name, &target, uid, gid)?,
            Request::Link { dir, name, target } => self.link(dir, &name, target)?,
            Request::Unlink { dir, name, flags } => self.unlink(dir, &name, flags)?,
            Request::Rename {
                old_dir,
                old_name,
                new_dir,
                new_name,
                flags,
            } => self.rename(old_dir, &old_name, new_dir, &new_name, flags)?,
            Request::Readlink { fid } => self.readlink(fid)?,
            Request::SetAttr { fid, attr } => self.set_attr(fid, &attr)?,
            Request::Getdents {
                fid,
                offset,
                max_bytes,
            } => self.getdents(fid, offset, max_bytes)?,
            Request::StatFs { fid } => self.statfs(fid)?,
            Request::GetXattr { fid, name } => self.get_xattr(fid, &name)?,
            Request::SetXattr {
                fid,
                name,
                value,
                flags,
            } => self.set_xattr(fid, &name, &value, flags)?,
            Request::ListXattr { fid } => self.list_xattr(fid)?,
            Request::RemoveXattr { fid, name } => self.remove_xattr(fid, &name)?,
            Request::Clunk { fid } => {
                self.fids.remove(&fid).ok_or(EBADF)?;
                Reply::Ok
            }
        };
        Ok((reply, None))
    }

    // --- fid table ---------------------------------------------------------

    fn node(&self, fid: Fid) -> R<&Node> {
        self.fids.get(&fid).ok_or(EBADF)
    }

    fn dir_node(&self, fid: Fid) -> R<&Node> {
        let n = self.node(fid)?;
        if n.ftype == libc::S_IFDIR {
            Ok(n)
        } else {
            Err(Errno(libc::ENOTDIR))
        }
    }

    /// Fails with EMFILE when no fid is left, checked before any side effect
    /// so that a create never happens without a fid to return.
    fn reserve(&self) -> R<()> {
        if self.fids.len() >= self.max_fids {
            Err(Errno(libc::EMFILE))
        } else {
            Ok(())
        }
    }

    fn insert(&mut self, node: Node) -> R<Fid> {
        self.reserve()?;
        // Terminates: fewer than u32::MAX - 1 fids are live.
        while self.next_fid == ROOT_FID || self.fids.contains_key(&self.next_fid) {
            self.next_fid = self.next_fid.wrapping_add(1);
        }
        let fid = self.next_fid;
        self.next_fid = self.next_fid.wrapping_add(1);
        self.fids.insert(fid, node);
        Ok(fid)
    }

    fn writable(&self) -> R<()> {
        if self.readonly {
            Err(Errno(libc::EROFS))
        } else {
            Ok(())
        }
    }

    // --- lookups -----------------------------------------------------------

    /// Opens one checked component of `dir` as an `O_PATH` handle, never
    /// following symlinks and never leaving `dir`.
    fn lookup(&self, dir: BorrowedFd<'_>, name: &[u8]) -> R<OwnedFd> {
        let c = cname(name)?;
        if self.lookup == Lookup::Openat2 && !self.openat2_missing.get() {
            let resolve =
                libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
            // EAGAIN is openat2's "a rename raced with the lookup, try again".
            for _ in 0..4 {
                match sys::openat2(dir, &c, LOOKUP_FLAGS, resolve) {
                    Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => continue,
                    Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                        self.openat2_missing.set(true);
                        break;
                    }
                    r => return Ok(r?),
                }
            }
            if !self.openat2_missing.get() {
                return Err(Errno(libc::EAGAIN));
            }
        }
        Ok(sys::openat(dir, &c, LOOKUP_FLAGS, 0)?)
    }

    fn attach(&mut self) -> R<Reply> {
        if !self.fids.contains_key(&ROOT_FID) {
            self.reserve()?;
        }
        let fd = self.root.try_clone()?;
        let (node, stat) = node_of(fd)?;
        self.fids.insert(ROOT_FID, node);
        Ok(Reply::Attach {
            fid: ROOT_FID,
            stat,
        })
    }

    /// Walks `names` from `fid`; returns the stats of the steps that worked,
    /// the handle of the last one, and the errno that stopped the walk (0 if
    /// none). Fails outright only if the very first step fails.
    fn walk_inner(&self, fid: Fid, names: &[Vec<u8>]) -> R<(Vec<Stat>, Option<OwnedFd>, i32)> {
        let start = self.node(fid)?;
        let mut cur: Option<OwnedFd> = None;
        let mut stats = Vec::with_capacity(names.len());
        for name in names {
            let dir = cur.as_ref().map_or(start.fd.as_fd(), AsFd::as_fd);
            let step = self
                .lookup(dir, name)
                .and_then(|fd| Ok((stat_of(&sys::fstat(fd.as_fd())?), fd)));
            match step {
                Ok((st, fd)) => {
                    stats.push(st);
                    cur = Some(fd);
                }
                Err(Errno(e)) if !stats.is_empty() => return Ok((stats, cur, e)),
                Err(e) => return Err(e),
            }
        }
        Ok((stats, cur, 0))
    }

    fn walk(&mut self, fid: Fid, names: &[Vec<u8>]) -> R<Reply> {
        self.node(fid)?;
        self.reserve()?;
        let (stats, cur, stop) = self.walk_inner(fid, names)?;
        let fd = match cur {
            Some(fd) => fd,
            None => self.node(fid)?.fd.try_clone()?, // empty walk: clone
        };
        let (node, _) = node_of(fd)?;
        let new = self.insert(node)?;
        Ok(Reply::Walk {
            fid: new,
            stats,
            stop,
        })
    }

    fn walk_stat(&self, fid: Fid, names: &[Vec<u8>]) -> R<Reply> {
        if names.is_empty() {
            let stat = stat_of(&sys::fstat(self.node(fid)?.fd.as_fd())?);
            return Ok(Reply::WalkStat {
                stats: vec![stat],
                stop: 0,
            });
        }
        let (stats, _, stop) = self.walk_inner(fid, names)?;
        Ok(Reply::WalkStat { stats, stop })
    }

    // --- opening -----------------------------------------------------------

    fn open(&self, fid: Fid, flags: u32) -> R<OwnedFd> {
        let flags = c_int::try_from(flags).map_err(|_| EINVAL)?;
        if flags & !OPEN_FLAGS != 0 || accmode(flags) == libc::O_ACCMODE {
            return Err(EINVAL);
        }
        if self.readonly && (accmode(flags) != libc::O_RDONLY || flags & libc::O_TRUNC != 0) {
            return Err(Errno(libc::EROFS));
        }
        reopen(&self.proc, self.node(fid)?, flags)
    }

    /// Gives a new entry the sandbox's owner. The gofer runs as root, so
    /// without this every file the sandbox makes would belong to root.
    fn chown_new(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> R<()> {
        if uid == NO_ID && gid == NO_ID {
            return Ok(());
        }
        Ok(sys::fchownat(
            fd,
            c"",
            uid,
            gid,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )?)
    }

    /// chown clears set-id bits on non-directories even for root; put back
    /// the mode the sandbox asked for.
    fn restore_setid(&self, node: &Node, mode: u32) -> R<()> {
        if mode & (libc::S_ISUID | libc::S_ISGID) != 0
            && node.ftype != libc::S_IFDIR
            && node.ftype != libc::S_IFLNK
        {
            sys::fchmodat(
                self.proc.dir(),
                &ProcSelfFd::entry(node.fd.as_fd()),
                mode & 0o7777,
            )?;
        }
        Ok(())
    }

    fn create(
        &mut self,
        dir: Fid,
        name: &[u8],
        flags: u32,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> R<(Reply, OwnedFd)> {
        self.writable()?;
        let flags = c_int::try_from(flags).map_err(|_| EINVAL)?;
        if flags & !CREATE_FLAGS != 0 || accmode(flags) == libc::O_ACCMODE || mode & !0o7777 != 0 {
            return Err(EINVAL);
        }
        let c = cname(name)?;
        self.reserve()?;
        let dir_fd = self.dir_node(dir)?.fd.try_clone()?;
        // O_EXCL | O_NOFOLLOW: never opens an existing file, never follows a
        // symlink planted under this name.
        let open_flags = flags | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let fd = sys::openat(dir_fd.as_fd(), &c, open_flags, mode)?;
        // The fid: an O_PATH handle on exactly the file just created, made
        // from the open fd through /proc/self/fd, so no second lookup by
        // name can be raced.
        let setup = || -> R<(Node, Stat)> {
            Self::chown_new(fd.as_fd(), uid, gid)?;
            let (node, _) = node_of(self.proc.reopen(fd.as_fd(), libc::O_PATH)?)?;
            self.restore_setid(&node, mode)?;
            node_of(node.fd)
        };
        match setup() {
            Ok((node, stat)) => {
                let fid = self.insert(node)?;
                Ok((Reply::Create { fid, stat }, fd))
            }
            Err(e) => {
                // Best effort: do not leave a half-made file behind.
                let _ = sys::unlinkat(dir_fd.as_fd(), &c, 0);
                Err(e)
            }
        }
    }

    /// Common tail of Mkdir/Mknod/Symlink: look the new entry up, give it
    /// its owner, and bind a fid; undo the creation if that fails.
    fn finish_entry(
        &mut self,
        dir_fd: &OwnedFd,
        c: &CString,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> R<Reply> {
        let setup = || -> R<(Node, Stat)> {
            let fd = self.lookup(dir_fd.as_fd(), name)?;
            Self::chown_new(fd.as_fd(), uid, gid)?;
            let (node, _) = node_of(fd)?;
            self.restore_setid(&node, mode)?;
            node_of(node.fd)
        };
        match setup() {
            Ok((node, stat)) => {
                let fid = self.insert(node)?;
                Ok(Reply::Entry { fid, stat })
            }
            Err(e) => {
                let flags = if mode & libc::S_IFMT == libc::S_IFDIR {
                    libc::AT_REMOVEDIR
                } else {
                    0
                };
                let _ = sys::unlinkat(dir_fd.as_fd(), c, flags);
                Err(e)
            }
        }
    }

    fn mkdir(&mut self, dir: Fid, name: &[u8], mode: u32, uid: u32, gid: u32) -> R<Reply> {
        self.writable()?;
        if mode & !0o7777 != 0 {
            return Err(EINVAL);
        }
        let c = cname(name)?;
        self.reserve()?;
        let dir_fd = self.dir_node(dir)?.fd.try_clone()?;
        sys::mkdirat(dir_fd.as_fd(), &c, mode)?;
        self.finish_entry(&dir_fd, &c, name, mode | libc::S_IFDIR, uid, gid)
    }

    fn mknod(&mut self, dir: Fid, name: &[u8], mode: u32, uid: u32, gid: u32) -> R<Reply> {
        self.writable()?;
        let perm = mode & !libc::S_IFMT;
        let ftype = match mode & libc::S_IFMT {
            0 | libc::S_IFREG => libc::S_IFREG,
            t @ (libc::S_IFIFO | libc::S_IFSOCK) => t,
            // Device nodes would give the sandbox host devices.
            libc::S_IFCHR | libc::S_IFBLK => return Err(Errno(libc::EPERM)),
            _ => return Err(EINVAL),
        };
        if perm & !0o7777 != 0 {
            return Err(EINVAL);
        }
        let c = cname(name)?;
        self.reserve()?;
        let dir_fd = self.dir_node(dir)?.fd.try_clone()?;
        sys::mknodat(dir_fd.as_fd(), &c, ftype | perm, 0)?;
        self.finish_entry(&dir_fd, &c, name, ftype | perm, uid, gid)
    }

    fn symlink(&mut self, dir: Fid, name: &[u8], target: &[u8], uid: u32, gid: u32) -> R<Reply> {
        self.writable()?;
        let c = cname(name)?;
        check_path(target)?;
        let t = CString::new(target).map_err(|_| EINVAL)?;
        self.reserve()?;
        let dir_fd = self.dir_node(dir)?.fd.try_clone()?;
        // The target is stored as data; the gofer never resolves it.
        sys::symlinkat(&t, dir_fd.as_fd(), &c)?;
        self.finish_entry(&dir_fd, &c, name, libc::S_IFLNK | 0o777, uid, gid)
    }

    fn link(&mut self, dir: Fid, name: &[u8], target: Fid) -> R<Reply> {
        self.writable()?;
        let c = cname(name)?;
        self.reserve()?;
        let dir_fd = self.dir_node(dir)?.fd.try_clone()?;
        let t = self.node(target)?;
        if t.ftype == libc::S_IFDIR {
            return Err(Errno(libc::EPERM));
        }
        // Linking the O_PATH fd with AT_EMPTY_PATH would need
        // CAP_DAC_READ_SEARCH, which the confined gofer drops (it also
        // grants open_by_handle_at). The magic link reaches the same inode.
        sys::linkat(
            self.proc.dir(),
            &ProcSelfFd::entry(t.fd.as_fd()),
            dir_fd.as_fd(),
            &c,
            libc::AT_SYMLINK_FOLLOW,
        )?;
        let fd = self.lookup(dir_fd.as_fd(), name)?;
        let (node, stat) = node_of(fd)?;
        let fid = self.insert(node)?;
        Ok(Reply::Entry { fid, stat })
    }

    fn unlink(&mut self, dir: Fid, name: &[u8], flags: u32) -> R<Reply> {
        self.writable()?;
        let flags = match c_int::try_from(flags) {
            Ok(f @ (0 | libc::AT_REMOVEDIR)) => f,
            _ => return Err(EINVAL),
        };
        let c = cname(name)?;
        sys::unlinkat(self.dir_node(dir)?.fd.as_fd(), &c, flags)?;
        Ok(Reply::Ok)
    }

    fn rename(
        &mut self,
        old_dir: Fid,
        old_name: &[u8],
        new_dir: Fid,
        new_name: &[u8],
        flags: u32,
    ) -> R<Reply> {
        self.writable()?;
        if flags & !(libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE | libc::RENAME_WHITEOUT) != 0 {
            return Err(EINVAL);
        }
        let (o, n) = (cname(old_name)?, cname(new_name)?);
        let od = self.dir_node(old_dir)?.fd.as_fd();
        let nd = self.dir_node(new_dir)?.fd.as_fd();
        sys::renameat2(od, &o, nd, &n, flags)?;
        Ok(Reply::Ok)
    }

    fn readlink(&self, fid: Fid) -> R<Reply> {
        let node = self.node(fid)?;
        if node.ftype != libc::S_IFLNK {
            return Err(EINVAL);
        }
        let mut buf = vec![0u8; PATH_MAX + 1];
        let n = sys::readlinkat(node.fd.as_fd(), c"", &mut buf)?;
        if n > PATH_MAX {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        buf.truncate(n);
        Ok(Reply::Readlink { target: buf })
    }

    // --- attributes --------------------------------------------------------

    /// Applies owner, mode, size, then times (each change of the others
    /// would bump the times). Not atomic: a failure part way leaves the
    /// earlier changes made, as with a sequence of Linux calls. Every field
    /// is validated before anything is changed.
    fn set_attr(&self, fid: Fid, a: &SetAttr) -> R<Reply> {
        if a.mask & !attr::ALL != 0 {
            return Err(EINVAL);
        }
        if a.mask == 0 {
            return Ok(Reply::Ok);
        }
        self.writable()?;
        let node = self.node(fid)?;
        let has = |bit: u32| a.mask & bit != 0;
        if has(attr::MODE) {
            if a.mode & !0o7777 != 0 {
                return Err(EINVAL);
            }
            if node.ftype == libc::S_IFLNK {
                return Err(Errno(libc::EOPNOTSUPP)); // Linux has no lchmod
            }
        }
        let size = if has(attr::SIZE) {
            match node.ftype {
                libc::S_IFDIR => return Err(Errno(libc::EISDIR)),
                libc::S_IFREG => i64::try_from(a.size).map_err(|_| Errno(libc::EFBIG))?,
                _ => return Err(EINVAL),
            }
        } else {
            0
        };
        let omit = Timespec {
            sec: 0,
            nsec: libc::UTIME_OMIT,
        };
        let atime = if has(attr::ATIME) { a.atime } else { omit };
        let mtime = if has(attr::MTIME) { a.mtime } else { omit };
        check_nsec(&atime)?;
        check_nsec(&mtime)?;

        if has(attr::UID) || has(attr::GID) {
            let uid = if has(attr::UID) { a.uid } else { NO_ID };
            let gid = if has(attr::GID) { a.gid } else { NO_ID };
            sys::fchownat(
                node.fd.as_fd(),
                c"",
                uid,
                gid,
                libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            )?;
        }
        if has(attr::MODE) {
            // fchmod refuses O_PATH fds; the magic link reaches the same
            // inode, and it is not a symlink (checked above).
            sys::fchmodat(self.proc.dir(), &ProcSelfFd::entry(node.fd.as_fd()), a.mode)?;
        }
        if has(attr::SIZE) {
            let fd = reopen(&self.proc, node, libc::O_WRONLY | libc::O_NONBLOCK)?;
            sys::ftruncate(fd.as_fd(), size)?;
        }
        if has(attr::ATIME) || has(attr::MTIME) {
            let ts = |t: &Timespec| libc::timespec {
                tv_sec: t.sec,
                tv_nsec: t.nsec,
            };
            let times = [ts(&atime), ts(&mtime)];
            sys::utimensat(
                node.fd.as_fd(),
                c"",
                &times,
                libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            )?;
        }
        Ok(Reply::Ok)
    }

    fn statfs(&self, fid: Fid) -> R<Reply> {
        let fd = self.node(fid)?.fd.as_fd();
        let s = sys::fstatfs(fd)?;
        // libc's `struct statfs` hides `f_flags`; statvfs carries the same ST_* bits.
        let v = sys::fstatvfs(fd)?;
        // The statfs field types differ between architectures and C
        // libraries; every value is a non-negative count or flag set.
        #[allow(clippy::unnecessary_cast, clippy::cast_sign_loss)]
        let statfs = StatFs {
            fs_type: s.f_type as u64,
            bsize: s.f_bsize as u64,
            blocks: s.f_blocks as u64,
            bfree: s.f_bfree as u64,
            bavail: s.f_bavail as u64,
            files: s.f_files as u64,
            ffree: s.f_ffree as u64,
            namelen: s.f_namelen as u64,
            frsize: s.f_frsize as u64,
            flags: v.f_flag as u64,
        };
        Ok(Reply::StatFs { statfs })
    }

    // --- directories -------------------------------------------------------

    fn getdents(&mut self, fid: Fid, offset: u64, max_bytes: u32) -> R<Reply> {
        let max = usize::try_from(max_bytes.min(MAX_DIRENTS_BYTES)).map_err(|_| EINVAL)?;
        let offset = i64::try_from(offset).map_err(|_| EINVAL)?;
        let node = self.fids.get_mut(&fid).ok_or(EBADF)?;
        if node.ftype != libc::S_IFDIR {
            return Err(Errno(libc::ENOTDIR));
        }
        if node.dir.is_none() {
            node.dir = Some(reopen(
                &self.proc,
                node,
                libc::O_RDONLY | libc::O_DIRECTORY,
            )?);
        }
        let dir = node.dir.as_ref().ok_or(Errno(libc::EIO))?.as_fd();
        sys::lseek(dir, offset, libc::SEEK_SET)?;
        let mut buf = vec![0u8; 32 * 1024];
        let mut entries = Vec::new();
        let mut used = 0usize;
        'read: loop {
            let n = sys::getdents64(dir, &mut buf)?;
            if n == 0 {
                break;
            }
            let mut pos = 0usize;
            while pos < n {
                let (ent, reclen) = parse_dirent(&buf[pos..n]).ok_or(Errno(libc::EIO))?;
                pos += reclen;
                let Some(ent) = ent else { continue };
                if used + ent.encoded_len() > max {
                    if entries.is_empty() {
                        return Err(EINVAL); // like getdents with a buffer too small
                    }
                    break 'read;
                }
                used += ent.encoded_len();
                entries.push(ent);
            }
        }
        Ok(Reply::Getdents { entries })
    }

    // --- xattrs ------------------------------------------------------------

    /// An fd that f*xattr accept (they refuse `O_PATH`), or the errno Linux
    /// gives for user xattrs on other file types.
    fn xattr_fd(&self, node: &Node, write: bool) -> R<Option<OwnedFd>> {
        match node.ftype {
            libc::S_IFREG => Ok(Some(reopen(
                &self.proc,
                node,
                libc::O_RDONLY | libc::O_NONBLOCK,
            )?)),
            libc::S_IFDIR => Ok(Some(reopen(
                &self.proc,
                node,
                libc::O_RDONLY | libc::O_DIRECTORY,
            )?)),
            _ if write => Err(Errno(libc::EPERM)),
            _ => Ok(None),
        }
    }

    fn get_xattr(&self, fid: Fid, name: &[u8]) -> R<Reply> {
        let c = check_user_xattr(name)?;
        let Some(fd) = self.xattr_fd(self.node(fid)?, false)? else {
            return Err(Errno(libc::ENODATA));
        };
        let mut buf = vec![0u8; XATTR_SIZE_MAX];
        let n = sys::fgetxattr(fd.as_fd(), &c, &mut buf).map_err(|e| match e.raw_os_error() {
            Some(libc::ERANGE) => Errno(libc::E2BIG),
            _ => Errno::from(e),
        })?;
        buf.truncate(n);
        Ok(Reply::GetXattr { value: buf })
    }

    fn set_xattr(&self, fid: Fid, name: &[u8], value: &[u8], flags: u32) -> R<Reply> {
        self.writable()?;
        let c = check_user_xattr(name)?;
        let flags = match c_int::try_from(flags) {
            Ok(f @ (0 | libc::XATTR_CREATE | libc::XATTR_REPLACE)) => f,
            _ => return Err(EINVAL),
        };
        if value.len() > XATTR_SIZE_MAX {
            return Err(Errno(libc::E2BIG));
        }
        let fd = self
            .xattr_fd(self.node(fid)?, true)?
            .ok_or(Errno(libc::EPERM))?;
        sys::fsetxattr(fd.as_fd(), &c, value, flags)?;
        Ok(Reply::Ok)
    }

    fn list_xattr(&self, fid: Fid) -> R<Reply> {
        let Some(fd) = self.xattr_fd(self.node(fid)?, false)? else {
            return Ok(Reply::ListXattr { names: Vec::new() });
        };
        let mut buf = vec![0u8; XATTR_SIZE_MAX];
        let n = sys::flistxattr(fd.as_fd(), &mut buf).map_err(|e| match e.raw_os_error() {
            Some(libc::ERANGE) => Errno(libc::E2BIG),
            _ => Errno::from(e),
        })?;
        let names = buf[..n]
            .split(|&b| b == 0)
            .filter(|n| n.starts_with(b"user.") && check_xattr_name(n).is_ok())
            .map(<[u8]>::to_vec)
            .collect();
        Ok(Reply::ListXattr { names })
    }

    fn remove_xattr(&self, fid: Fid, name: &[u8]) -> R<Reply> {
        self.writable()?;
        let c = check_user_xattr(name)?;
        let fd = self
            .xattr_fd(self.node(fid)?, true)?
            .ok_or(Errno(libc::EPERM))?;
        sys::fremovexattr(fd.as_fd(), &c)?;
        Ok(Reply::Ok)
    }
}

/// Parses one `struct linux_dirent64` at the start of `buf`. Returns the
/// entry (None for `.`, `..` and names the protocol cannot carry) and the
/// record length, or None if the record is malformed.
fn parse_dirent(buf: &[u8]) -> Option<(Option<Dirent>, usize)> {
    // d_ino: u64, d_off: i64, d_reclen: u16, d_type: u8, d_name: NUL-terminated.
    const NAME_AT: usize = 19;
    let ino = u64::from_ne_bytes(buf.get(0..8)?.try_into().ok()?);
    let next = u64::from_ne_bytes(buf.get(8..16)?.try_into().ok()?);
    let reclen = usize::from(u16::from_ne_bytes(buf.get(16..18)?.try_into().ok()?));
    let dtype = *buf.get(18)?;
    let rec = buf.get(NAME_AT..reclen)?;
    let name = &rec[..rec.iter().position(|&b| b == 0)?];
    let ent = check_name(name).ok().map(|()| Dirent {
        ino,
        next,
        dtype,
        name: name.to_vec(),
    });
    Some((ent, reclen))
}

#[cfg(test)]
mod tests;
