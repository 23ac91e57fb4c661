//! Linux structures that cross the host/guest boundary unchanged.

/// x86-64 `struct stat` (as `fstat`/`newfstatat` fill it).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub st_dev: u64,
    pub st_ino: u64,
    pub st_nlink: u64,
    pub st_mode: u32,
    pub st_uid: u32,
    pub st_gid: u32,
    pub pad0: u32,
    pub st_rdev: u64,
    pub st_size: i64,
    pub st_blksize: i64,
    pub st_blocks: i64,
    pub st_atime: i64,
    pub st_atime_nsec: i64,
    pub st_mtime: i64,
    pub st_mtime_nsec: i64,
    pub st_ctime: i64,
    pub st_ctime_nsec: i64,
    pub unused: [i64; 3],
}
// SAFETY: repr(C) matching the kernel's layout; explicit pad0, no implicit padding.
unsafe impl crate::Pod for Stat {}
const _: () = assert!(core::mem::size_of::<Stat>() == 144);

/// `struct winsize`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WinSize {
    pub ws_row: u16,
    pub ws_col: u16,
    pub ws_xpixel: u16,
    pub ws_ypixel: u16,
}
// SAFETY: repr(C), four u16, no padding.
unsafe impl crate::Pod for WinSize {}

/// `struct termios` as the TCGETS ioctl uses it (kernel layout, 36 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelTermios {
    pub c_iflag: u32,
    pub c_oflag: u32,
    pub c_cflag: u32,
    pub c_lflag: u32,
    pub c_line: u8,
    pub c_cc: [u8; 19],
}
// SAFETY: repr(C): 4 x u32 then 20 bytes, size 36, no padding.
unsafe impl crate::Pod for KernelTermios {}
const _: () = assert!(core::mem::size_of::<KernelTermios>() == 36);
