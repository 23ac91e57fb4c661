//! The mqueue filesystem (Linux: ipc/mqueue.c's mqueue_fs_type): one flat
//! directory of the sandbox's POSIX message queues (`kernel::ipc::mqueue`).
//! Listing /dev/mqueue shows the queues, unlinking a file removes its
//! queue, opening (or creating) one gives the same kind of descriptor as
//! mq_open: reading it gives the queue's status line, poll tells whether
//! a message is queued (POLLIN) and whether one fits (POLLOUT).
#![forbid(unsafe_code)]

use abi::linux::Stat;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::Mutex;

use super::{anon, FileOps, UserSeg, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use crate::errno::{Errno, SysResult};
use crate::kernel::creds::Creds;
use crate::kernel::ipc::mqueue::{self, MQueue};
use crate::kernel::ipc::now_secs;
use crate::kernel::task::Task;
use crate::vfs::{Creator, DirEntry, Inode, Kind, SetAttr};

/// Device number of the mqueue filesystem.
const MQUEUE_DEV: u64 = 0x23;
/// The directory's inode number.
const ROOT_INO: u64 = 1;
/// st_size of a queue file (Linux: FILENT_SIZE).
const FILENT_SIZE: i64 = 80;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;

/// An open queue: from mq_open or open(2) of a file in the mqueue
/// filesystem.
pub struct MqFile {
    pub queue: Arc<MQueue>,
    path: String,
    /// Where reads of the status line are (a file position).
    pos: Mutex<u64>,
}

impl MqFile {
    /// A descriptor's file for `queue`, known as `path`.
    pub fn new(queue: Arc<MQueue>, path: String) -> MqFile {
        MqFile { queue, path, pos: Mutex::new(0) }
    }
}

/// The queue behind an open file, if it is one (else the mq_* calls fail
/// with EBADF).
pub fn queue_of(f: &super::OpenFile) -> Option<Arc<MQueue>> {
    f.ops.as_any()?.downcast_ref::<MqFile>().map(|m| m.queue.clone())
}

/// What stat shows for a queue file.
pub fn stat_of(q: &MQueue) -> Stat {
    let o = q.owner();
    Stat {
        st_dev: MQUEUE_DEV,
        st_ino: q.ino,
        st_nlink: 1,
        st_mode: S_IFREG | o.mode,
        st_uid: o.uid,
        st_gid: o.gid,
        st_size: FILENT_SIZE,
        st_blksize: 4096,
        st_atime: o.atime,
        st_mtime: o.mtime,
        st_ctime: o.ctime,
        ..Stat::default()
    }
}

impl FileOps for MqFile {
    fn read(&self, t: &Task, segs: &[UserSeg], off: Option<u64>, _nonblock: bool) -> SysResult {
        let line = self.queue.status_line();
        let mut pos = self.pos.lock();
        let at = off.unwrap_or(*pos);
        let Some(rest) = usize::try_from(at).ok().and_then(|a| line.as_bytes().get(a..)) else { return Ok(0) };
        let n = rest.len().min(anon::total(segs));
        anon::copy_to_segs(t, segs, &rest[..n])?;
        if off.is_none() {
            *pos += n as u64;
        }
        Ok(n as u64)
    }

    fn seek(&self, off: i64, whence: u32) -> SysResult {
        let mut pos = self.pos.lock();
        let base = match whence {
            0 => 0,
            1 => *pos as i64,
            _ => return Err(Errno::EINVAL),
        };
        let new = base.checked_add(off).filter(|v| *v >= 0).ok_or(Errno::EINVAL)?;
        *pos = new as u64;
        Ok(new as u64)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(stat_of(&self.queue))
    }

    fn path(&self) -> &str {
        &self.path
    }

    /// A queue file is a regular file that polls (Linux gives it a poll
    /// method), so epoll takes it.
    fn can_poll(&self) -> bool {
        true
    }

    fn poll(&self, _events: u16) -> u16 {
        let (has_msg, has_room) = self.queue.readiness();
        let mut r = 0;
        if has_msg {
            r |= POLLIN | POLLRDNORM;
        }
        if has_room {
            r |= POLLOUT | POLLWRNORM;
        }
        r
    }

    fn as_any(&self) -> Option<&dyn core::any::Any> {
        Some(self)
    }
}

impl Drop for MqFile {
    fn drop(&mut self) {
        // The closing process gives up its notification (Linux does it on
        // every close; here the last close of this description does).
        self.queue.closed_by(crate::kernel::ipc::current_pid());
    }
}

/// The filesystem's directory.
pub struct MqDir;

/// A queue as a file of the directory.
pub struct MqNode {
    name: String,
    queue: Arc<MQueue>,
}

/// The root of a new mqueue mount (all mounts show the same queues).
pub fn root() -> Arc<dyn Inode> {
    Arc::new(MqDir)
}

impl Inode for MqDir {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(Stat { st_dev: MQUEUE_DEV, st_ino: ROOT_INO, st_nlink: 2, st_mode: S_IFDIR | 0o1777, st_blksize: 4096, ..Stat::default() })
    }

    fn kind(&self) -> Kind {
        Kind::Dir
    }

    fn lookup(&self, name: &str) -> Result<Arc<dyn Inode>, Errno> {
        let queue = mqueue::lookup(name)?;
        Ok(Arc::new(MqNode { name: name.into(), queue }))
    }

    fn open(&self, _flags: u32) -> Result<Box<dyn FileOps>, Errno> {
        Ok(Box::new(super::DirFile::new(self.readdir()?, self.stat()?, "/dev/mqueue")))
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        Ok(mqueue::list().into_iter().map(|(name, ino)| DirEntry { name, ino, kind: Kind::File }).collect())
    }

    /// open(O_CREAT) in the directory: a queue with the default sizes.
    fn create(&self, name: &str, kind: Kind, mode: u32, _rdev: u64, who: Creator) -> Result<Arc<dyn Inode>, Errno> {
        if kind != Kind::File {
            return Err(Errno::EPERM);
        }
        let creds = Creds::new(who.uid, who.gid, Vec::new());
        let c = mqueue::Create { creds: &creds, mode, attr: None, limits: mqueue::limits(), rlimit: u64::MAX, now: now_secs() };
        match mqueue::open(name, true, true, &c)? {
            mqueue::Opened::Created(queue) | mqueue::Opened::Existing(queue) => Ok(Arc::new(MqNode { name: name.into(), queue })),
        }
    }

    fn unlink(&self, name: &str, dir: bool) -> Result<(), Errno> {
        if dir {
            return Err(Errno::ENOTDIR);
        }
        mqueue::unlink(name, |_| Ok(()))
    }

    fn statfs(&self) -> Option<[u8; 120]> {
        // f_type MQUEUE_MAGIC, f_bsize 4096, f_namelen NAME_MAX.
        let mut b = [0u8; 120];
        b[0..8].copy_from_slice(&0x1980_0202u64.to_le_bytes());
        b[8..16].copy_from_slice(&4096u64.to_le_bytes());
        b[64..72].copy_from_slice(&(mqueue::NAME_MAX as u64).to_le_bytes());
        b[72..80].copy_from_slice(&4096u64.to_le_bytes());
        Some(b)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

impl Inode for MqNode {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(stat_of(&self.queue))
    }

    fn kind(&self) -> Kind {
        Kind::File
    }

    fn open(&self, _flags: u32) -> Result<Box<dyn FileOps>, Errno> {
        Ok(Box::new(MqFile::new(self.queue.clone(), alloc::format!("/{}", self.name))))
    }

    fn setattr(&self, a: &SetAttr) -> Result<(), Errno> {
        if a.size.is_some() {
            return Err(Errno::EINVAL);
        }
        self.queue.set_owner(a.mode, a.uid, a.gid, now_secs());
        Ok(())
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}
