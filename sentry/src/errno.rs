//! Linux error numbers. Handlers return `Result<u64, Errno>`; the syscall
//! layer turns an `Errno` into `-errno` in `rax`.

/// A Linux errno value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

macro_rules! errnos {
    ($($name:ident = $v:expr),* $(,)?) => {
        impl Errno { $( pub const $name: Errno = Errno($v); )* }
        /// The symbolic name of an errno, for strace and logs.
        pub fn name(e: Errno) -> &'static str {
            match e.0 { $( $v => stringify!($name), )* _ => "E?" }
        }
    };
}

errnos! {
    EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, ENXIO = 6, E2BIG = 7,
    ENOEXEC = 8, EBADF = 9, ECHILD = 10, EAGAIN = 11, ENOMEM = 12, EACCES = 13,
    EFAULT = 14, EBUSY = 16, EEXIST = 17, EXDEV = 18, ENODEV = 19, ENOTDIR = 20,
    EISDIR = 21, EINVAL = 22, ENFILE = 23, EMFILE = 24, ENOTTY = 25, EFBIG = 27,
    ENOSPC = 28, ESPIPE = 29, EROFS = 30, EMLINK = 31, EPIPE = 32, ERANGE = 34,
    EDEADLK = 35, ENAMETOOLONG = 36, ENOSYS = 38, ENOTEMPTY = 39, ELOOP = 40,
    ENOLCK = 37, ENOMSG = 42, EIDRM = 43, ENODATA = 61, EOVERFLOW = 75, EMSGSIZE = 90, EOPNOTSUPP = 95, ETIMEDOUT = 110,
    ESTALE = 116,
}

/// Result of a syscall handler.
pub type SysResult = Result<u64, Errno>;

impl Errno {
    /// Maps a negative hypercall return to an errno (unknown values → EIO).
    pub fn from_host(ret: i64) -> Errno {
        match i32::try_from(-ret) {
            Ok(e) if (1..4096).contains(&e) => Errno(e),
            _ => Errno::EIO,
        }
    }
}
