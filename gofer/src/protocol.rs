//! The gofer wire protocol, version 1.
//!
//! Linux analogue: 9P2000.L and gVisor's lisafs. A client (the VMM, on the
//! sentry's behalf) names files by *fids*: small integers the server keeps for
//! files it has walked to. Fid 0 is the root once `Attach` has been answered.
//!
//! # Framing
//!
//! Every message is one `SOCK_SEQPACKET` packet (see [`crate::server`] for why):
//!
//! ```text
//! offset 0  len:     u32  whole message, header included
//!        4  version: u16  = VERSION (1)
//!        6  kind:    u16  request kinds 1..=21, reply kinds 0x8000..
//!        8  tag:     u32  chosen by the client, echoed in the reply
//!       12  body
//! ```
//!
//! All integers are little endian. Inside bodies, byte strings (names, paths,
//! xattr values) are a `u32` length followed by the bytes, and lists are a `u32`
//! count followed by the elements. The encoder writes whatever it is given;
//! the decoder is where the limits live, so that a test can send a bad name
//! over the wire and see the server refuse it.
//!
//! # Limits checked by every decode
//!
//! * a message is at most [`MAX_MSG`] bytes (1 MiB of body plus the header) and
//!   its `len` field must equal the bytes received;
//! * names are 1..=[`NAME_MAX`] bytes, contain no `/` or NUL, and are not `.`
//!   or `..` (the sentry resolves `..` itself);
//! * symlink targets are 1..=[`PATH_MAX`] bytes without NUL;
//! * xattr names are 1..=[`NAME_MAX`] bytes without NUL, values at most
//!   [`XATTR_SIZE_MAX`] bytes, and a list of names at most
//!   [`XATTR_SIZE_MAX`] bytes as `listxattr(2)` would return it;
//! * a walk has at most [`MAX_WALK`] names;
//! * counts are also bounded by the bytes left, so a forged count cannot make
//!   the decoder allocate more than the message holds;
//! * nothing may follow the last field.
//!
//! A file descriptor never appears in a message: `Open` and `Create` replies
//! carry the opened host fd as `SCM_RIGHTS` ancillary data of the same packet
//! ([`Reply::carries_fd`]).

use thiserror::Error;

/// The only protocol version this crate speaks.
pub const VERSION: u16 = 1;
/// Bytes in the fixed header.
pub const HEADER_LEN: usize = 12;
/// Largest body accepted.
pub const MAX_BODY: usize = 1 << 20;
/// Largest message accepted, header included.
pub const MAX_MSG: usize = HEADER_LEN + MAX_BODY;
/// Longest file or xattr name (Linux `NAME_MAX`, `XATTR_NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// Longest symlink target: Linux `PATH_MAX` less the terminating NUL.
pub const PATH_MAX: usize = 4095;
/// Largest xattr value (Linux `XATTR_SIZE_MAX`).
pub const XATTR_SIZE_MAX: usize = 65536;
/// Most names in one `Walk` or `WalkStat`.
pub const MAX_WALK: usize = 256;
/// Largest `Getdents` reply body the server builds; bigger requests are clamped.
pub const MAX_DIRENTS_BYTES: u32 = 65536;

/// A file handle kept by the server.
pub type Fid = u32;
/// The fid `Attach` binds to the root directory.
pub const ROOT_FID: Fid = 0;
/// Passed as `uid` or `gid` to leave the owner unchanged (like `chown(-1)`).
pub const NO_ID: u32 = u32::MAX;

/// `SetAttr` mask bits: which fields of [`SetAttr`] to apply.
pub mod attr {
    /// Apply `mode` (permission bits only).
    pub const MODE: u32 = 1 << 0;
    /// Apply `uid`.
    pub const UID: u32 = 1 << 1;
    /// Apply `gid`.
    pub const GID: u32 = 1 << 2;
    /// Apply `size` (truncate or extend).
    pub const SIZE: u32 = 1 << 3;
    /// Apply `atime` (`nsec` may be `UTIME_NOW` or `UTIME_OMIT`).
    pub const ATIME: u32 = 1 << 4;
    /// Apply `mtime` (`nsec` may be `UTIME_NOW` or `UTIME_OMIT`).
    pub const MTIME: u32 = 1 << 5;
    /// Every defined bit.
    pub const ALL: u32 = MODE | UID | GID | SIZE | ATIME | MTIME;
}

/// Message kinds as they appear in the header.
pub mod kind {
    #![allow(missing_docs)]
    pub const ATTACH: u16 = 1;
    pub const WALK: u16 = 2;
    pub const WALK_STAT: u16 = 3;
    pub const STAT: u16 = 4;
    pub const OPEN: u16 = 5;
    pub const CREATE: u16 = 6;
    pub const MKDIR: u16 = 7;
    pub const MKNOD: u16 = 8;
    pub const SYMLINK: u16 = 9;
    pub const LINK: u16 = 10;
    pub const UNLINK: u16 = 11;
    pub const RENAME: u16 = 12;
    pub const READLINK: u16 = 13;
    pub const SET_ATTR: u16 = 14;
    pub const GETDENTS: u16 = 15;
    pub const STAT_FS: u16 = 16;
    pub const GET_XATTR: u16 = 17;
    pub const SET_XATTR: u16 = 18;
    pub const LIST_XATTR: u16 = 19;
    pub const REMOVE_XATTR: u16 = 20;
    pub const CLUNK: u16 = 21;

    pub const R_ERROR: u16 = 0x8000;
    pub const R_ATTACH: u16 = 0x8001;
    pub const R_WALK: u16 = 0x8002;
    pub const R_WALK_STAT: u16 = 0x8003;
    pub const R_STAT: u16 = 0x8004;
    pub const R_OPEN: u16 = 0x8005;
    pub const R_CREATE: u16 = 0x8006;
    pub const R_ENTRY: u16 = 0x8007;
    pub const R_OK: u16 = 0x8008;
    pub const R_READLINK: u16 = 0x8009;
    pub const R_GETDENTS: u16 = 0x800a;
    pub const R_STAT_FS: u16 = 0x800b;
    pub const R_GET_XATTR: u16 = 0x800c;
    pub const R_LIST_XATTR: u16 = 0x800d;
}

/// Why a message could not be decoded. Each maps to the errno the server
/// answers with ([`ProtoError::errno`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtoError {
    /// The message ends before a field does.
    #[error("message truncated")]
    Truncated,
    /// The message is larger than [`MAX_MSG`].
    #[error("message of {0} bytes is over the limit")]
    TooLarge(usize),
    /// The header's `len` disagrees with the bytes received.
    #[error("header says {header} bytes, packet has {actual}")]
    LengthMismatch {
        /// The `len` field.
        header: usize,
        /// Bytes actually received.
        actual: usize,
    },
    /// The header's version is not [`VERSION`].
    #[error("unsupported protocol version {0}")]
    BadVersion(u16),
    /// The header's kind is not one this decoder knows.
    #[error("unknown message kind {0:#x}")]
    UnknownKind(u16),
    /// Bytes remain after the last field.
    #[error("{0} bytes after the last field")]
    TrailingBytes(usize),
    /// A name is empty, `.`, `..`, or holds `/` or NUL.
    #[error("invalid name")]
    BadName,
    /// A name is longer than [`NAME_MAX`].
    #[error("name too long")]
    NameTooLong,
    /// A path is longer than [`PATH_MAX`].
    #[error("path too long")]
    PathTooLong,
    /// A value or list is longer than its limit.
    #[error("{0} too large")]
    TooBig(&'static str),
    /// A field holds a value outside its domain.
    #[error("invalid {0}")]
    BadValue(&'static str),
}

impl ProtoError {
    /// The Linux errno the server replies with for this decode failure.
    pub fn errno(&self) -> i32 {
        match self {
            ProtoError::NameTooLong | ProtoError::PathTooLong => libc::ENAMETOOLONG,
            ProtoError::UnknownKind(_) => libc::ENOSYS,
            ProtoError::BadVersion(_) => libc::EPROTONOSUPPORT,
            ProtoError::TooBig(_) | ProtoError::TooLarge(_) => libc::E2BIG,
            _ => libc::EINVAL,
        }
    }
}

/// The fixed message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Whole message length, header included.
    pub len: u32,
    /// Protocol version.
    pub version: u16,
    /// Message kind (see [`kind`]).
    pub kind: u16,
    /// Client-chosen tag, echoed by the reply.
    pub tag: u32,
}

impl Header {
    /// Checks the framing of one received packet and returns its header.
    ///
    /// Only the length rules are checked here (the packet holds a header, the
    /// `len` field matches, the size is within [`MAX_MSG`]): a packet that
    /// fails them cannot be answered, because its tag cannot be trusted. The
    /// version and kind are checked by [`Request::decode`] and
    /// [`Reply::decode`], which the server answers with an error reply.
    pub fn parse(buf: &[u8]) -> Result<Header, ProtoError> {
        if buf.len() > MAX_MSG {
            return Err(ProtoError::TooLarge(buf.len()));
        }
        let mut r = Reader::new(buf);
        let h = Header {
            len: r.u32()?,
            version: r.u16()?,
            kind: r.u16()?,
            tag: r.u32()?,
        };
        // Lossless: usize is at least 32 bits on every Linux target.
        let len = h.len as usize;
        if len != buf.len() {
            return Err(ProtoError::LengthMismatch {
                header: len,
                actual: buf.len(),
            });
        }
        Ok(h)
    }
}

/// Linux `struct timespec`, as used by `SetAttr` and [`Stat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timespec {
    /// Seconds.
    pub sec: i64,
    /// Nanoseconds, or `libc::UTIME_NOW` / `libc::UTIME_OMIT` in `SetAttr`.
    pub nsec: i64,
}

/// The fields of Linux `struct stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: i64,
    pub blksize: i64,
    pub blocks: i64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
}

impl Stat {
    /// The file type bits (`mode & S_IFMT`).
    pub fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }
}

/// The fields of Linux `struct statfs` the sandbox needs. The host `f_fsid` is
/// left out on purpose: it identifies the host device and the sentry can make
/// up its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct StatFs {
    pub fs_type: u64,
    pub bsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub namelen: u64,
    pub frsize: u64,
    pub flags: u64,
}

/// One directory entry of a `Getdents` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirent {
    /// Host inode number.
    pub ino: u64,
    /// Cookie to pass as `offset` to continue after this entry.
    pub next: u64,
    /// `DT_*` type.
    pub dtype: u8,
    /// Entry name (never `.` or `..`, which the sentry makes up itself).
    pub name: Vec<u8>,
}

impl Dirent {
    /// Bytes this entry takes in an encoded reply; `Getdents::max_bytes`
    /// counts these.
    pub fn encoded_len(&self) -> usize {
        8 + 8 + 1 + 4 + self.name.len()
    }
}

/// The attributes `SetAttr` may change; `mask` (bits from [`attr`]) says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct SetAttr {
    pub mask: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
}

/// A request from the client. Names are raw bytes: see the module docs for
/// the rules the decoder enforces. (Fields are described by their variant.)
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Request {
    /// Bind fid 0 to the root directory. Answered by [`Reply::Attach`].
    Attach,
    /// Walk `names` from `fid`, one component at a time, and bind the last
    /// file reached to a new fid. Empty `names` clones `fid`. Stops at the
    /// first component that fails, like 9P's Twalk. Answered by [`Reply::Walk`].
    Walk { fid: Fid, names: Vec<Vec<u8>> },
    /// Like `Walk` but only returns the stats; no fid is made. Empty `names`
    /// returns the stat of `fid` itself. Answered by [`Reply::WalkStat`].
    WalkStat { fid: Fid, names: Vec<Vec<u8>> },
    /// Stat `fid`. Answered by [`Reply::Stat`].
    Stat { fid: Fid },
    /// Open `fid` for I/O with Linux open `flags` (no `O_CREAT`). Answered by
    /// [`Reply::Open`] with the host fd attached.
    Open { fid: Fid, flags: u32 },
    /// Create and open the regular file `name` in `dir` (always exclusive).
    /// Answered by [`Reply::Create`] with the host fd attached.
    Create {
        dir: Fid,
        name: Vec<u8>,
        flags: u32,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// Make directory `name` in `dir`. Answered by [`Reply::Entry`].
    Mkdir {
        dir: Fid,
        name: Vec<u8>,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// Make a regular file, FIFO or socket node; device nodes are refused with
    /// EPERM. Answered by [`Reply::Entry`].
    Mknod {
        dir: Fid,
        name: Vec<u8>,
        mode: u32,
        rdev: u64,
        uid: u32,
        gid: u32,
    },
    /// Make symlink `name` in `dir` holding `target`. Answered by [`Reply::Entry`].
    Symlink {
        dir: Fid,
        name: Vec<u8>,
        target: Vec<u8>,
        uid: u32,
        gid: u32,
    },
    /// Hard-link the file of fid `target` as `name` in `dir`. Answered by
    /// [`Reply::Entry`].
    Link {
        dir: Fid,
        name: Vec<u8>,
        target: Fid,
    },
    /// Remove `name` from `dir`; `flags` is 0 or `AT_REMOVEDIR`. Answered by
    /// [`Reply::Ok`].
    Unlink { dir: Fid, name: Vec<u8>, flags: u32 },
    /// `renameat2`; `flags` ⊆ `RENAME_NOREPLACE | RENAME_EXCHANGE |
    /// RENAME_WHITEOUT`. Answered by [`Reply::Ok`].
    Rename {
        old_dir: Fid,
        old_name: Vec<u8>,
        new_dir: Fid,
        new_name: Vec<u8>,
        flags: u32,
    },
    /// Read the target of a symlink fid. Answered by [`Reply::Readlink`].
    Readlink { fid: Fid },
    /// Change attributes. Answered by [`Reply::Ok`].
    SetAttr { fid: Fid, attr: SetAttr },
    /// Read directory entries starting at cookie `offset` (0 = start), at
    /// most `max_bytes` of encoded entries. Answered by [`Reply::Getdents`];
    /// an empty list means the end.
    Getdents {
        fid: Fid,
        offset: u64,
        max_bytes: u32,
    },
    /// `fstatfs`. Answered by [`Reply::StatFs`].
    StatFs { fid: Fid },
    /// Read an xattr. Answered by [`Reply::GetXattr`].
    GetXattr { fid: Fid, name: Vec<u8> },
    /// Write an xattr; `flags` is 0, `XATTR_CREATE` or `XATTR_REPLACE`.
    /// Answered by [`Reply::Ok`].
    SetXattr {
        fid: Fid,
        name: Vec<u8>,
        value: Vec<u8>,
        flags: u32,
    },
    /// List xattr names. Answered by [`Reply::ListXattr`].
    ListXattr { fid: Fid },
    /// Remove an xattr. Answered by [`Reply::Ok`].
    RemoveXattr { fid: Fid, name: Vec<u8> },
    /// Release a fid. Answered by [`Reply::Ok`].
    Clunk { fid: Fid },
}

/// A reply from the server. Its tag equals the request's. (Fields are
/// described by their variant.)
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Reply {
    /// The request failed with this Linux errno (1..=4095).
    Error { errno: i32 },
    /// `Attach` succeeded: `fid` (always 0) is the root.
    Attach { fid: Fid, stat: Stat },
    /// `Walk`: `stats.len()` components succeeded and `fid` names the last
    /// one (or the clone, for an empty walk). `stop` is 0 when every name was
    /// walked, else the errno that stopped the walk. A walk whose first
    /// component fails is answered with `Error` instead and makes no fid.
    Walk {
        fid: Fid,
        stats: Vec<Stat>,
        stop: i32,
    },
    /// `WalkStat`: like `Walk` without the fid.
    WalkStat { stats: Vec<Stat>, stop: i32 },
    /// `Stat`.
    Stat { stat: Stat },
    /// `Open`: the host fd rides along as `SCM_RIGHTS`.
    Open,
    /// `Create`: the new file's fid and stat; its open host fd rides along.
    Create { fid: Fid, stat: Stat },
    /// `Mkdir`, `Mknod`, `Symlink`, `Link`: the new entry's fid and stat.
    Entry { fid: Fid, stat: Stat },
    /// Success with nothing to say.
    Ok,
    /// `Readlink`.
    Readlink { target: Vec<u8> },
    /// `Getdents`.
    Getdents { entries: Vec<Dirent> },
    /// `StatFs`.
    StatFs { statfs: StatFs },
    /// `GetXattr`.
    GetXattr { value: Vec<u8> },
    /// `ListXattr`.
    ListXattr { names: Vec<Vec<u8>> },
}

impl Reply {
    /// Whether this reply travels with exactly one donated fd.
    pub fn carries_fd(&self) -> bool {
        matches!(self, Reply::Open | Reply::Create { .. })
    }
}

/// Checks a file name: 1..=255 bytes, no `/` or NUL, not `.` or `..`.
///
/// The server calls this again before every `*at` call, so a name that
/// reaches the host is always exactly one component below a held directory.
pub fn check_name(name: &[u8]) -> Result<(), ProtoError> {
    if name.len() > NAME_MAX {
        return Err(ProtoError::NameTooLong);
    }
    if name.is_empty() || name == b"." || name == b".." || name.iter().any(|&b| b == b'/' || b == 0)
    {
        return Err(ProtoError::BadName);
    }
    Ok(())
}

/// Checks a symlink target: 1..=[`PATH_MAX`] bytes without NUL.
pub fn check_path(path: &[u8]) -> Result<(), ProtoError> {
    if path.len() > PATH_MAX {
        return Err(ProtoError::PathTooLong);
    }
    if path.is_empty() || path.contains(&0) {
        return Err(ProtoError::BadValue("path"));
    }
    Ok(())
}

/// Checks an xattr name: 1..=255 bytes without NUL.
pub fn check_xattr_name(name: &[u8]) -> Result<(), ProtoError> {
    if name.len() > NAME_MAX {
        return Err(ProtoError::NameTooLong);
    }
    if name.is_empty() || name.contains(&0) {
        return Err(ProtoError::BadName);
    }
    Ok(())
}

fn check_errno(errno: i32) -> Result<i32, ProtoError> {
    if (1..=4095).contains(&errno) {
        Ok(errno)
    } else {
        Err(ProtoError::BadValue("errno"))
    }
}

// ---------------------------------------------------------------------------
// Encoding.

struct Writer(Vec<u8>);

impl Writer {
    fn new(kind: u16, tag: u32) -> Writer {
        let mut w = Writer(Vec::with_capacity(64));
        w.u32(0); // length, patched by finish()
        w.u16(VERSION);
        w.u16(kind);
        w.u32(tag);
        w
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// A length that does not fit 32 bits is written as `u32::MAX`; the
    /// decoder then rejects the message, which is all such a value deserves.
    fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }
    fn list(&mut self, items: &[Vec<u8>]) {
        self.len(items.len());
        for i in items {
            self.bytes(i);
        }
    }
    fn ts(&mut self, t: &Timespec) {
        self.i64(t.sec);
        self.i64(t.nsec);
    }
    fn stat(&mut self, s: &Stat) {
        self.u64(s.dev);
        self.u64(s.ino);
        self.u32(s.mode);
        self.u64(s.nlink);
        self.u32(s.uid);
        self.u32(s.gid);
        self.u64(s.rdev);
        self.i64(s.size);
        self.i64(s.blksize);
        self.i64(s.blocks);
        self.ts(&s.atime);
        self.ts(&s.mtime);
        self.ts(&s.ctime);
    }
    fn finish(mut self) -> Vec<u8> {
        let len = u32::try_from(self.0.len()).unwrap_or(u32::MAX);
        self.0[..4].copy_from_slice(&len.to_le_bytes());
        self.0
    }
}

const STAT_LEN: usize = 8 + 8 + 4 + 8 + 4 + 4 + 8 + 8 + 8 + 8 + 3 * 16;
const DIRENT_MIN_LEN: usize = 8 + 8 + 1 + 4 + 1;

// ---------------------------------------------------------------------------
// Decoding.

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        if n > self.remaining() {
            return Err(ProtoError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtoError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, ProtoError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, ProtoError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, ProtoError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, ProtoError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32, ProtoError> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, ProtoError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    /// A length-prefixed byte string of at most `max` bytes; a longer one
    /// fails with `too_long` before anything is read or allocated.
    fn bytes(&mut self, max: usize, too_long: ProtoError) -> Result<Vec<u8>, ProtoError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(too_long);
        }
        Ok(self.take(n)?.to_vec())
    }
    fn name(&mut self) -> Result<Vec<u8>, ProtoError> {
        let n = self.bytes(NAME_MAX, ProtoError::NameTooLong)?;
        check_name(&n)?;
        Ok(n)
    }
    fn xattr_name(&mut self) -> Result<Vec<u8>, ProtoError> {
        let n = self.bytes(NAME_MAX, ProtoError::NameTooLong)?;
        check_xattr_name(&n)?;
        Ok(n)
    }
    fn path(&mut self) -> Result<Vec<u8>, ProtoError> {
        let p = self.bytes(PATH_MAX, ProtoError::PathTooLong)?;
        check_path(&p)?;
        Ok(p)
    }
    /// A list count of at most `max`, also bounded by the bytes left given
    /// that each element takes at least `min_elem` bytes.
    fn count(
        &mut self,
        max: usize,
        min_elem: usize,
        what: &'static str,
    ) -> Result<usize, ProtoError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(ProtoError::TooBig(what));
        }
        if n.saturating_mul(min_elem) > self.remaining() {
            return Err(ProtoError::Truncated);
        }
        Ok(n)
    }
    fn names(&mut self) -> Result<Vec<Vec<u8>>, ProtoError> {
        let n = self.count(MAX_WALK, 4, "walk")?;
        (0..n).map(|_| self.name()).collect()
    }
    fn ts(&mut self) -> Result<Timespec, ProtoError> {
        Ok(Timespec {
            sec: self.i64()?,
            nsec: self.i64()?,
        })
    }
    fn stat(&mut self) -> Result<Stat, ProtoError> {
        Ok(Stat {
            dev: self.u64()?,
            ino: self.u64()?,
            mode: self.u32()?,
            nlink: self.u64()?,
            uid: self.u32()?,
            gid: self.u32()?,
            rdev: self.u64()?,
            size: self.i64()?,
            blksize: self.i64()?,
            blocks: self.i64()?,
            atime: self.ts()?,
            mtime: self.ts()?,
            ctime: self.ts()?,
        })
    }
    fn finish(&self) -> Result<(), ProtoError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(ProtoError::TrailingBytes(n)),
        }
    }
}

/// Parses the frame and version, returning the header and a reader over the body.
fn open_message(buf: &[u8]) -> Result<(Header, Reader<'_>), ProtoError> {
    let h = Header::parse(buf)?;
    if h.version != VERSION {
        return Err(ProtoError::BadVersion(h.version));
    }
    Ok((h, Reader::new(&buf[HEADER_LEN..])))
}

impl Request {
    /// The header kind of this request.
    pub fn kind(&self) -> u16 {
        use kind::*;
        match self {
            Request::Attach => ATTACH,
            Request::Walk { .. } => WALK,
            Request::WalkStat { .. } => WALK_STAT,
            Request::Stat { .. } => STAT,
            Request::Open { .. } => OPEN,
            Request::Create { .. } => CREATE,
            Request::Mkdir { .. } => MKDIR,
            Request::Mknod { .. } => MKNOD,
            Request::Symlink { .. } => SYMLINK,
            Request::Link { .. } => LINK,
            Request::Unlink { .. } => UNLINK,
            Request::Rename { .. } => RENAME,
            Request::Readlink { .. } => READLINK,
            Request::SetAttr { .. } => SET_ATTR,
            Request::Getdents { .. } => GETDENTS,
            Request::StatFs { .. } => STAT_FS,
            Request::GetXattr { .. } => GET_XATTR,
            Request::SetXattr { .. } => SET_XATTR,
            Request::ListXattr { .. } => LIST_XATTR,
            Request::RemoveXattr { .. } => REMOVE_XATTR,
            Request::Clunk { .. } => CLUNK,
        }
    }

    /// Encodes the request as one message with `tag`. Never fails and never
    /// checks the limits: that is the decoder's job.
    pub fn encode(&self, tag: u32) -> Vec<u8> {
        let mut w = Writer::new(self.kind(), tag);
        match self {
            Request::Attach => {}
            Request::Walk { fid, names } | Request::WalkStat { fid, names } => {
                w.u32(*fid);
                w.list(names);
            }
            Request::Stat { fid }
            | Request::Readlink { fid }
            | Request::StatFs { fid }
            | Request::ListXattr { fid }
            | Request::Clunk { fid } => w.u32(*fid),
            Request::Open { fid, flags } => {
                w.u32(*fid);
                w.u32(*flags);
            }
            Request::Create {
                dir,
                name,
                flags,
                mode,
                uid,
                gid,
            } => {
                w.u32(*dir);
                w.bytes(name);
                w.u32(*flags);
                w.u32(*mode);
                w.u32(*uid);
                w.u32(*gid);
            }
            Request::Mkdir {
                dir,
                name,
                mode,
                uid,
                gid,
            } => {
                w.u32(*dir);
                w.bytes(name);
                w.u32(*mode);
                w.u32(*uid);
                w.u32(*gid);
            }
            Request::Mknod {
                dir,
                name,
                mode,
                rdev,
                uid,
                gid,
            } => {
                w.u32(*dir);
                w.bytes(name);
                w.u32(*mode);
                w.u64(*rdev);
                w.u32(*uid);
                w.u32(*gid);
            }
            Request::Symlink {
                dir,
                name,
                target,
                uid,
                gid,
            } => {
                w.u32(*dir);
                w.bytes(name);
                w.bytes(target);
                w.u32(*uid);
                w.u32(*gid);
            }
            Request::Link { dir, name, target } => {
                w.u32(*dir);
                w.bytes(name);
                w.u32(*target);
            }
            Request::Unlink { dir, name, flags } => {
                w.u32(*dir);
                w.bytes(name);
                w.u32(*flags);
            }
            Request::Rename {
                old_dir,
                old_name,
                new_dir,
                new_name,
                flags,
            } => {
                w.u32(*old_dir);
                w.bytes(old_name);
                w.u32(*new_dir);
                w.bytes(new_name);
                w.u32(*flags);
            }
            Request::SetAttr { fid, attr } => {
                w.u32(*fid);
                w.u32(attr.mask);
                w.u32(attr.mode);
                w.u32(attr.uid);
                w.u32(attr.gid);
                w.u64(attr.size);
                w.ts(&attr.atime);
                w.ts(&attr.mtime);
            }
            Request::Getdents {
                fid,
                offset,
                max_bytes,
            } => {
                w.u32(*fid);
                w.u64(*offset);
                w.u32(*max_bytes);
            }
            Request::GetXattr { fid, name } | Request::RemoveXattr { fid, name } => {
                w.u32(*fid);
                w.bytes(name);
            }
            Request::SetXattr {
                fid,
                name,
                value,
                flags,
            } => {
                w.u32(*fid);
                w.bytes(name);
                w.bytes(value);
                w.u32(*flags);
            }
        }
        w.finish()
    }

    /// Decodes one whole message, returning its tag and the request.
    pub fn decode(buf: &[u8]) -> Result<(u32, Request), ProtoError> {
        let (h, mut r) = open_message(buf)?;
        let req = match h.kind {
            kind::ATTACH => Request::Attach,
            kind::WALK => Request::Walk {
                fid: r.u32()?,
                names: r.names()?,
            },
            kind::WALK_STAT => Request::WalkStat {
                fid: r.u32()?,
                names: r.names()?,
            },
            kind::STAT => Request::Stat { fid: r.u32()? },
            kind::OPEN => Request::Open {
                fid: r.u32()?,
                flags: r.u32()?,
            },
            kind::CREATE => Request::Create {
                dir: r.u32()?,
                name: r.name()?,
                flags: r.u32()?,
                mode: r.u32()?,
                uid: r.u32()?,
                gid: r.u32()?,
            },
            kind::MKDIR => Request::Mkdir {
                dir: r.u32()?,
                name: r.name()?,
                mode: r.u32()?,
                uid: r.u32()?,
                gid: r.u32()?,
            },
            kind::MKNOD => Request::Mknod {
                dir: r.u32()?,
                name: r.name()?,
                mode: r.u32()?,
                rdev: r.u64()?,
                uid: r.u32()?,
                gid: r.u32()?,
            },
            kind::SYMLINK => Request::Symlink {
                dir: r.u32()?,
                name: r.name()?,
                target: r.path()?,
                uid: r.u32()?,
                gid: r.u32()?,
            },
            kind::LINK => Request::Link {
                dir: r.u32()?,
                name: r.name()?,
                target: r.u32()?,
            },
            kind::UNLINK => Request::Unlink {
                dir: r.u32()?,
                name: r.name()?,
                flags: r.u32()?,
            },
            kind::RENAME => Request::Rename {
                old_dir: r.u32()?,
                old_name: r.name()?,
                new_dir: r.u32()?,
                new_name: r.name()?,
                flags: r.u32()?,
            },
            kind::READLINK => Request::Readlink { fid: r.u32()? },
            kind::SET_ATTR => Request::SetAttr {
                fid: r.u32()?,
                attr: SetAttr {
                    mask: r.u32()?,
                    mode: r.u32()?,
                    uid: r.u32()?,
                    gid: r.u32()?,
                    size: r.u64()?,
                    atime: r.ts()?,
                    mtime: r.ts()?,
                },
            },
            kind::GETDENTS => Request::Getdents {
                fid: r.u32()?,
                offset: r.u64()?,
                max_bytes: r.u32()?,
            },
            kind::STAT_FS => Request::StatFs { fid: r.u32()? },
            kind::GET_XATTR => Request::GetXattr {
                fid: r.u32()?,
                name: r.xattr_name()?,
            },
            kind::SET_XATTR => Request::SetXattr {
                fid: r.u32()?,
                name: r.xattr_name()?,
                value: r.bytes(XATTR_SIZE_MAX, ProtoError::TooBig("xattr value"))?,
                flags: r.u32()?,
            },
            kind::LIST_XATTR => Request::ListXattr { fid: r.u32()? },
            kind::REMOVE_XATTR => Request::RemoveXattr {
                fid: r.u32()?,
                name: r.xattr_name()?,
            },
            kind::CLUNK => Request::Clunk { fid: r.u32()? },
            k => return Err(ProtoError::UnknownKind(k)),
        };
        r.finish()?;
        Ok((h.tag, req))
    }
}

impl Reply {
    /// The header kind of this reply.
    pub fn kind(&self) -> u16 {
        use kind::*;
        match self {
            Reply::Error { .. } => R_ERROR,
            Reply::Attach { .. } => R_ATTACH,
            Reply::Walk { .. } => R_WALK,
            Reply::WalkStat { .. } => R_WALK_STAT,
            Reply::Stat { .. } => R_STAT,
            Reply::Open => R_OPEN,
            Reply::Create { .. } => R_CREATE,
            Reply::Entry { .. } => R_ENTRY,
            Reply::Ok => R_OK,
            Reply::Readlink { .. } => R_READLINK,
            Reply::Getdents { .. } => R_GETDENTS,
            Reply::StatFs { .. } => R_STAT_FS,
            Reply::GetXattr { .. } => R_GET_XATTR,
            Reply::ListXattr { .. } => R_LIST_XATTR,
        }
    }

    /// Encodes the reply as one message with `tag`.
    pub fn encode(&self, tag: u32) -> Vec<u8> {
        let mut w = Writer::new(self.kind(), tag);
        match self {
            Reply::Error { errno } => w.i32(*errno),
            Reply::Attach { fid, stat }
            | Reply::Create { fid, stat }
            | Reply::Entry { fid, stat } => {
                w.u32(*fid);
                w.stat(stat);
            }
            Reply::Walk { fid, stats, stop } => {
                w.u32(*fid);
                w.len(stats.len());
                stats.iter().for_each(|s| w.stat(s));
                w.i32(*stop);
            }
            Reply::WalkStat { stats, stop } => {
                w.len(stats.len());
                stats.iter().for_each(|s| w.stat(s));
                w.i32(*stop);
            }
            Reply::Stat { stat } => w.stat(stat),
            Reply::Open | Reply::Ok => {}
            Reply::Readlink { target } => w.bytes(target),
            Reply::Getdents { entries } => {
                w.len(entries.len());
                for e in entries {
                    w.u64(e.ino);
                    w.u64(e.next);
                    w.u8(e.dtype);
                    w.bytes(&e.name);
                }
            }
            Reply::StatFs { statfs: s } => {
                for v in [
                    s.fs_type, s.bsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.namelen,
                    s.frsize, s.flags,
                ] {
                    w.u64(v);
                }
            }
            Reply::GetXattr { value } => w.bytes(value),
            Reply::ListXattr { names } => w.list(names),
        }
        w.finish()
    }

    /// Decodes one whole message, returning its tag and the reply.
    pub fn decode(buf: &[u8]) -> Result<(u32, Reply), ProtoError> {
        let (h, mut r) = open_message(buf)?;
        let stats = |r: &mut Reader<'_>| -> Result<Vec<Stat>, ProtoError> {
            let n = r.count(MAX_WALK, STAT_LEN, "walk")?;
            (0..n).map(|_| r.stat()).collect()
        };
        let stop = |r: &mut Reader<'_>| -> Result<i32, ProtoError> {
            match r.i32()? {
                0 => Ok(0),
                e => check_errno(e),
            }
        };
        let reply = match h.kind {
            kind::R_ERROR => Reply::Error {
                errno: check_errno(r.i32()?)?,
            },
            kind::R_ATTACH => Reply::Attach {
                fid: r.u32()?,
                stat: r.stat()?,
            },
            kind::R_WALK => Reply::Walk {
                fid: r.u32()?,
                stats: stats(&mut r)?,
                stop: stop(&mut r)?,
            },
            kind::R_WALK_STAT => Reply::WalkStat {
                stats: stats(&mut r)?,
                stop: stop(&mut r)?,
            },
            kind::R_STAT => Reply::Stat { stat: r.stat()? },
            kind::R_OPEN => Reply::Open,
            kind::R_CREATE => Reply::Create {
                fid: r.u32()?,
                stat: r.stat()?,
            },
            kind::R_ENTRY => Reply::Entry {
                fid: r.u32()?,
                stat: r.stat()?,
            },
            kind::R_OK => Reply::Ok,
            kind::R_READLINK => Reply::Readlink { target: r.path()? },
            kind::R_GETDENTS => {
                let n = r.count(usize::MAX, DIRENT_MIN_LEN, "dirents")?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    entries.push(Dirent {
                        ino: r.u64()?,
                        next: r.u64()?,
                        dtype: r.u8()?,
                        name: r.name()?,
                    });
                }
                Reply::Getdents { entries }
            }
            kind::R_STAT_FS => Reply::StatFs {
                statfs: StatFs {
                    fs_type: r.u64()?,
                    bsize: r.u64()?,
                    blocks: r.u64()?,
                    bfree: r.u64()?,
                    bavail: r.u64()?,
                    files: r.u64()?,
                    ffree: r.u64()?,
                    namelen: r.u64()?,
                    frsize: r.u64()?,
                    flags: r.u64()?,
                },
            },
            kind::R_GET_XATTR => Reply::GetXattr {
                value: r.bytes(XATTR_SIZE_MAX, ProtoError::TooBig("xattr value"))?,
            },
            kind::R_LIST_XATTR => {
                let n = r.count(XATTR_SIZE_MAX, 4, "xattr list")?;
                let names: Vec<Vec<u8>> =
                    (0..n).map(|_| r.xattr_name()).collect::<Result<_, _>>()?;
                // As listxattr(2) returns them: each name and its NUL.
                if names.iter().map(|n| n.len() + 1).sum::<usize>() > XATTR_SIZE_MAX {
                    return Err(ProtoError::TooBig("xattr list"));
                }
                Reply::ListXattr { names }
            }
            k => return Err(ProtoError::UnknownKind(k)),
        };
        r.finish()?;
        Ok((h.tag, reply))
    }
}

#[cfg(test)]
pub(crate) mod tests;
