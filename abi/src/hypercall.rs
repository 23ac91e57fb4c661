//! Hypercalls: how the sentry asks the VMM for host work.
//!
//! The sentry fills its vCPU's [`Mailbox`] and exits (PVM: `int $0x1b` with
//! `rax = PVM_HC_HALT`, seen by the VMM as `KVM_EXIT_HLT`; native: `out` to
//! [`HYPERCALL_PORT`]). The VMM validates the request, performs it and
//! stores the result in `Mailbox::ret`: `>= 0` on success, `-errno` (Linux
//! numbers) on failure. The sentry writes `ret = RET_PENDING` with each
//! request and repeats the exit until `ret` changes: on PVM the host kernel
//! may absorb a halt exit without reaching the VMM. The VMM serves a
//! mailbox only while it is pending, so a repeated exit never repeats a
//! request. Guest memory is named by guest-physical address;
//! scatter/gather buffers are arrays of [`IoVec`].

/// PVM hypercall number that exits to the VMM as `KVM_EXIT_HLT`.
pub const PVM_HC_HALT: u64 = 0x1009;
/// PVM in-kernel hypercall: flush the TLB.
pub const PVM_HC_TLB_FLUSH: u64 = 0x1007;
/// PVM in-kernel hypercall: load CR3.
pub const PVM_HC_LOAD_CR3: u64 = 0x1001;
/// Native flavour: the I/O port the sentry writes to make a hypercall.
pub const HYPERCALL_PORT: u16 = 0xf4;

/// Most `IoVec`s in one request.
pub const MAX_IOVECS: u64 = 1024;
/// Most bytes moved by one I/O request.
pub const MAX_IO_BYTES: u64 = 64 << 20;
/// Longest path accepted.
pub const MAX_PATH: u64 = 4096;
/// Longest console message.
pub const MAX_CONSOLE: u64 = 64 << 10;
/// Most handles closed along with one `HostOpen` or `HostClose`.
pub const MAX_CLOSE_BATCH: u64 = 32;
/// Most components (so stats) of one [`Nr::HostWalkStat`].
pub const MAX_WALK_STATS: usize = 256;
/// Most return addresses in a panic backtrace.
pub const MAX_BACKTRACE: u64 = 64;

/// `Mailbox::ret` of a request the VMM has not answered yet.
pub const RET_PENDING: i64 = i64::MIN;

/// The per-vCPU mailbox page.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Mailbox {
    pub nr: u64,
    pub args: [u64; 6],
    pub ret: i64,
}
// SAFETY: repr(C), integers only, no padding (8 x u64).
unsafe impl crate::Pod for Mailbox {}

/// Preemption handshake (per vCPU, at `layout::vcpu::PREEMPT`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Preempt {
    /// Set by the sentry when other tasks wait for this vCPU: the VMM's
    /// ticker may then interrupt the application.
    pub wanted: u64,
    /// Written by the VMM: the application's RIP when it was redirected
    /// to the trampoline.
    pub saved_rip: u64,
    /// Times the VMM preempted (diagnostics).
    pub count: u64,
    /// Set by the VMM when a control request waits in the control block
    /// (see [`crate::control`]); cleared by the sentry when it takes it.
    pub control: u64,
    /// Set by the VMM when the network readiness table changed
    /// ([`crate::net`]); cleared by the sentry before it looks.
    pub net: u64,
}
// SAFETY: repr(C), five u64, no padding.
unsafe impl crate::Pod for Preempt {}

/// How often the VMM checks whether a vCPU should be preempted.
pub const PREEMPT_TICK_NS: u64 = 10_000_000;

/// A guest-physical buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoVec {
    pub gpa: u64,
    pub len: u64,
}
// SAFETY: repr(C), two u64, no padding.
unsafe impl crate::Pod for IoVec {}

/// Host clock reading, for [`Nr::Clock`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ClockReading {
    pub realtime_ns: u64,
    pub monotonic_ns: u64,
}
// SAFETY: repr(C), two u64, no padding.
unsafe impl crate::Pod for ClockReading {}

macro_rules! numbers {
    ($( $(#[$m:meta])* $name:ident = $val:expr, )*) => {
        /// Hypercall numbers. Arguments are listed as `args[0], args[1], ...`.
        #[repr(u64)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Nr { $( $(#[$m])* $name = $val, )* }
        impl Nr {
            /// Decodes a raw number; `None` for unknown ones.
            pub fn from_u64(v: u64) -> Option<Nr> {
                match v { $( $val => Some(Nr::$name), )* _ => None }
            }
        }
    };
}

numbers! {
    /// Log: (gpa, len). Rate-limited by the VMM.
    ConsoleWrite = 1,
    /// End the sandbox with an exit status: (status).
    Exit = 2,
    /// Sentry panic: (msg_gpa, msg_len, backtrace_gpa, backtrace_count);
    /// the backtrace is an array of u64 return addresses.
    Panic = 3,
    /// Host clocks: (out_gpa of ClockReading).
    Clock = 4,
    /// Sleep until a host event or timeout: (timeout_ns, u64::MAX = none).
    Halt = 5,
    /// End the `Halt` of another vCPU (work is waiting for it): (vCPU index).
    Wake = 6,
    /// Let the host run other threads (a vCPU waiting for a sentry lock
    /// whose holder's thread may not be running): no arguments.
    Yield = 7,
    /// The sentry killed a process because memory ran out: no arguments.
    OomKill = 8,
    /// Open a host file: (path_gpa, path_len, linux open flags, mode,
    /// closes_gpa, closes_count). Returns a handle. The handles in the
    /// array of `closes_count` u64s at `closes_gpa` (at most
    /// [`MAX_CLOSE_BATCH`]; bad ones ignored) are closed first: the
    /// sentry defers closing read-only files to save their exits.
    HostOpen = 16,
    /// Close a handle: (handle, closes_gpa, closes_count), the latter
    /// two as for `HostOpen`; handle u64::MAX closes only the array.
    HostClose = 17,
    /// Read into guest memory: (handle, iov_gpa, iov_count, offset;
    /// u64::MAX = use and advance the handle's own offset).
    HostRead = 18,
    /// Write from guest memory: (handle, iov_gpa, iov_count, offset or u64::MAX).
    HostWrite = 19,
    /// fstat: (handle, out_gpa of linux::Stat).
    HostFstat = 20,
    /// fstatat: (dir handle or u64::MAX for absolute, path_gpa, path_len,
    /// AT_ flags (AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH), out_gpa).
    HostFstatat = 21,
    /// getdents64 into guest memory: (handle, buf_gpa, buf_len).
    HostGetdents = 22,
    /// readlink: (path_gpa, path_len, buf_gpa, buf_len).
    HostReadlink = 23,
    /// lseek: (handle, offset as i64, whence).
    HostLseek = 24,
    /// Terminal ioctls on a handle: (handle, request, arg_gpa). Only
    /// TCGETS, TCSETS*, TIOCGWINSZ, TIOCSWINZ, TIOCGPGRP are accepted.
    HostIoctl = 25,
    /// access: (path_gpa, path_len, mode).
    HostAccess = 26,
    /// Poll one handle for readiness: (handle, events, timeout_ns).
    HostPoll = 27,
    /// Give guest memory back to the host: (gpa, len), page aligned.
    Discard = 32,
    /// Change the host tree (only where the VMM allows writes):
    /// (op as [`PathOp`], path_gpa, path_len, path2_gpa, path2_len, arg).
    HostPathOp = 33,
    /// Change an open handle: (op as [`HandleOp`], handle, arg, arg2).
    HostHandleOp = 34,
    /// statfs of an absolute host path: (path_gpa, path_len, out_gpa of
    /// 120 bytes, Linux's `struct statfs` on x86-64).
    HostStatfs = 35,
    /// A socket operation: (op as [`crate::net::NetOp`], handle, a, b, c, d).
    Net = 36,
    /// An extended attribute of an absolute host path, not following a
    /// final symlink: (op as [`XattrOp`], req_gpa, req_len, buf_gpa,
    /// buf_len, flags). The request is the path, a NUL and the attribute
    /// name (no name for `List`); the buffer receives the value or the
    /// NUL-terminated names (ERANGE if too small), or holds the value to
    /// set. Returns the bytes of value or list.
    HostXattr = 37,
    /// lstat of every component of an absolute host path, one walk:
    /// (path_gpa, path_len, out_gpa of an array of linux::Stat, its
    /// length). Returns `n | stop << 16`: the first `n` components'
    /// stats were written, and `stop` is 0 if all of them were, else the
    /// errno of component `n` (a failing first component is `-errno`).
    HostWalkStat = 38,
    /// The init program is loaded; the sandbox waits for `start`: (0 or
    /// -errno, msg_gpa, msg_len). Non-blocking.
    Ready = 40,
    /// The control request in the control block was answered: (seq).
    ControlDone = 41,
    /// A process started by a control `Exec` ended: (pid, wait status).
    ProcessExited = 42,
}

/// Sub-operations of [`Nr::HostPathOp`]. Paths are absolute.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathOp {
    /// mknod/mkdir/creat-exclusive: path, arg = mode incl. S_IFMT (S_IFREG, S_IFDIR, S_IFIFO, S_IFSOCK).
    Create = 1,
    /// unlink (arg 0) or rmdir (arg = AT_REMOVEDIR).
    Unlink = 2,
    /// rename path → path2, arg = RENAME_* flags.
    Rename = 3,
    /// symlink: path2 is the target text, path the new link.
    Symlink = 4,
    /// link: path → path2.
    Link = 5,
    /// chmod (no follow): arg = mode.
    Chmod = 6,
    /// lchown: arg = uid | gid << 32 (u32::MAX = unchanged).
    Chown = 7,
    /// utimensat (no follow): arg = gpa of two linux timespecs.
    Utimens = 8,
    /// truncate: arg = size.
    Truncate = 9,
}

impl PathOp {
    /// Decodes a raw value.
    pub fn from_u64(v: u64) -> Option<PathOp> {
        Some(match v {
            1 => PathOp::Create,
            2 => PathOp::Unlink,
            3 => PathOp::Rename,
            4 => PathOp::Symlink,
            5 => PathOp::Link,
            6 => PathOp::Chmod,
            7 => PathOp::Chown,
            8 => PathOp::Utimens,
            9 => PathOp::Truncate,
            _ => return None,
        })
    }
}

/// Sub-operations of [`Nr::HostXattr`].
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XattrOp {
    /// lgetxattr into the buffer.
    Get = 1,
    /// lsetxattr from the buffer; flags = 0, XATTR_CREATE or XATTR_REPLACE.
    Set = 2,
    /// llistxattr into the buffer.
    List = 3,
    /// lremovexattr.
    Remove = 4,
}

impl XattrOp {
    /// Decodes a raw value.
    pub fn from_u64(v: u64) -> Option<XattrOp> {
        Some(match v {
            1 => XattrOp::Get,
            2 => XattrOp::Set,
            3 => XattrOp::List,
            4 => XattrOp::Remove,
            _ => return None,
        })
    }
}

/// Sub-operations of [`Nr::HostHandleOp`].
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandleOp {
    /// ftruncate: arg = size.
    Truncate = 1,
    /// fsync (arg 0) or fdatasync (arg 1).
    Sync = 2,
    /// fallocate: arg = offset, arg2 = length (mode 0).
    Allocate = 3,
}

impl HandleOp {
    /// Decodes a raw value.
    pub fn from_u64(v: u64) -> Option<HandleOp> {
        Some(match v {
            1 => HandleOp::Truncate,
            2 => HandleOp::Sync,
            3 => HandleOp::Allocate,
            _ => return None,
        })
    }
}
