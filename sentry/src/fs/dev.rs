//! Character devices implemented in the sentry: null, zero, full, random
//! and urandom (the latter two from the sentry's CSPRNG, seeded by the host).

use abi::linux::Stat;
use alloc::vec;

use super::{FileOps, UserSeg};
use crate::errno::{Errno, SysResult};
use crate::kernel::task::Task;

/// Which device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dev {
    Null,
    Zero,
    Full,
    Random,
    Urandom,
}

impl Dev {
    /// The device at `path`, if it is one of ours.
    pub fn by_path(path: &str) -> Option<Dev> {
        Some(match path {
            "/dev/null" => Dev::Null,
            "/dev/zero" => Dev::Zero,
            "/dev/full" => Dev::Full,
            "/dev/random" => Dev::Random,
            "/dev/urandom" => Dev::Urandom,
            _ => return None,
        })
    }

    fn rdev(self) -> u64 {
        let (major, minor) = match self {
            Dev::Null => (1, 3),
            Dev::Zero => (1, 5),
            Dev::Full => (1, 7),
            Dev::Random => (1, 8),
            Dev::Urandom => (1, 9),
        };
        (major << 8) | minor
    }

    /// fstat of the device node.
    pub fn stat(self) -> Stat {
        Stat { st_mode: 0o20666, st_rdev: self.rdev(), st_nlink: 1, st_blksize: 4096, st_dev: 6, st_ino: self.rdev(), ..Stat::default() }
    }
}

/// An open device.
pub struct DevFile {
    pub dev: Dev,
    path: &'static str,
}

impl DevFile {
    /// Opens `dev`.
    pub fn new(dev: Dev) -> DevFile {
        let path = match dev {
            Dev::Null => "/dev/null",
            Dev::Zero => "/dev/zero",
            Dev::Full => "/dev/full",
            Dev::Random => "/dev/random",
            Dev::Urandom => "/dev/urandom",
        };
        DevFile { dev, path }
    }
}

impl FileOps for DevFile {
    fn read(&self, t: &Task, segs: &[UserSeg], _off: Option<u64>, _nonblock: bool) -> SysResult {
        if self.dev == Dev::Null {
            return Ok(0);
        }
        let mut total = 0u64;
        for &(addr, len) in segs {
            let mut done = 0;
            while done < len {
                let n = (len - done).min(4096);
                let mut buf = vec![0u8; n];
                if matches!(self.dev, Dev::Random | Dev::Urandom) {
                    crate::kernel::random::fill(&mut buf);
                }
                t.mm.lock().copy_out(addr + done as u64, &buf)?;
                done += n;
            }
            total += len as u64;
        }
        Ok(total)
    }

    fn write(&self, _t: &Task, segs: &[UserSeg], _off: Option<u64>, _nonblock: bool) -> SysResult {
        if self.dev == Dev::Full {
            return Err(Errno::ENOSPC);
        }
        Ok(segs.iter().map(|s| s.1 as u64).sum())
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.dev.stat())
    }

    fn seek(&self, _off: i64, _whence: u32) -> SysResult {
        Ok(0)
    }

    fn path(&self) -> &str {
        self.path
    }
}
