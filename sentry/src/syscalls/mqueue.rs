//! POSIX message queue syscalls: mq_open, mq_unlink, mq_timedsend,
//! mq_timedreceive, mq_notify, mq_getsetattr. The queues live in
//! `kernel::ipc::mqueue`; a queue descriptor is an fd whose file is an
//! `fs::mqueue::MqFile`. Checks run in Linux's order (ipc/mqueue.c).
//!
//! Senders and receivers sleep on the queue's wait queue until it
//! changes, a signal arrives (ERESTARTSYS: restarted under SA_RESTART,
//! else EINTR) or the absolute CLOCK_REALTIME timeout passes (ETIMEDOUT).
#![forbid(unsafe_code)]

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use super::Args;
use crate::errno::{Errno, SysResult};
use crate::fs::mqueue::{queue_of, stat_of, MqFile};
use crate::fs::OpenFile;
use crate::kernel::creds::CAP_FOWNER;
use crate::kernel::ipc::mqueue::{self, MQueue, Notify, Opened, MQ_PRIO_MAX, SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD};
use crate::kernel::ipc::{le_u64, now_secs, Out};
use crate::kernel::signal::{self, SigInfo};
use crate::kernel::task::Task;
use crate::vfs::perm::{self, MAY_READ, MAY_WRITE};

const O_ACCMODE: u32 = 3;
const O_WRONLY: u32 = 1;
const O_RDWR: u32 = 2;
const O_CREAT: u32 = 0o100;
const O_EXCL: u32 = 0o200;
const O_NONBLOCK: u32 = 0o4000;
const PATH_MAX: usize = 4096;
/// `struct mq_attr`: flags, maxmsg, msgsize, curmsgs and 4 reserved longs.
const MQ_ATTR_SIZE: usize = 64;
/// `struct sigevent`.
const SIGEVENT_SIZE: usize = 64;
/// RLIMIT_MSGQUEUE's index.
const RLIMIT_MSGQUEUE: usize = 12;
/// si_code of a message queue notification.
const SI_MESGQ: i32 = -3;

/// A queue name argument (the C library has dropped its leading '/').
fn name_arg(t: &Task, va: u64) -> Result<String, Errno> {
    if va == 0 {
        return Err(Errno::EFAULT);
    }
    t.mm.lock().read_cstr(va, PATH_MAX - 1)
}

/// The open queue behind `fd` (EBADF for any other file).
fn queue_fd(t: &Task, fd: i32) -> Result<(Arc<OpenFile>, Arc<MQueue>), Errno> {
    let f = t.fds.lock().get(fd)?;
    let q = queue_of(&f).ok_or(Errno::EBADF)?;
    Ok((f, q))
}

/// An absolute CLOCK_REALTIME timeout (None: wait forever), as a
/// CLOCK_MONOTONIC deadline. EINVAL for a malformed timespec.
fn timeout_arg(t: &mut Task, va: u64) -> Result<Option<u64>, Errno> {
    super::futex::deadline(t, va, true, true)
}

pub fn sys_mq_open(t: &mut Task, a: &Args) -> SysResult {
    let (name_va, oflag, mode, attr_va) = (a.u64(0), a.u32(1), a.u32(2), a.u64(3));
    let attr = if attr_va != 0 {
        let mut b = [0u8; MQ_ATTR_SIZE];
        t.mm.lock().copy_in(attr_va, &mut b)?;
        Some((le_u64(&b, 8) as i64, le_u64(&b, 16) as i64))
    } else {
        None
    };
    let name = name_arg(t, name_va)?;
    let umask = t.fs.lock().umask;
    let creds = t.creds.clone();
    let create = mqueue::Create {
        creds: &creds,
        mode: mode & 0o777 & !umask,
        attr,
        limits: mqueue::limits(),
        rlimit: t.rlimits[RLIMIT_MSGQUEUE].0,
        now: now_secs(),
    };
    let q = match mqueue::open(&name, oflag & O_CREAT != 0, oflag & O_EXCL != 0, &create)? {
        Opened::Created(q) => q,
        Opened::Existing(q) => {
            let acc = match oflag & O_ACCMODE {
                0 => MAY_READ,
                O_WRONLY => MAY_WRITE,
                O_RDWR => MAY_READ | MAY_WRITE,
                _ => return Err(Errno::EINVAL),
            };
            perm::check(&stat_of(&q), &creds, acc)?;
            q
        }
    };
    let file = OpenFile::new(Box::new(MqFile::new(q, format!("/{name}"))), oflag & (O_ACCMODE | O_NONBLOCK));
    // Queue descriptors are always close-on-exec, as Linux makes them.
    t.fds.lock().install(file, true, 0).map(|fd| fd as u64)
}

pub fn sys_mq_unlink(t: &mut Task, a: &Args) -> SysResult {
    let name = name_arg(t, a.u64(0))?;
    let c = &t.creds;
    // The queue directory is sticky and world-writable: the queue's
    // owner, the directory's (root) or CAP_FOWNER may remove it.
    mqueue::unlink(&name, |q| {
        if q.owner().uid == c.fsuid || c.fsuid == 0 || c.capable(CAP_FOWNER) {
            Ok(())
        } else {
            Err(Errno::EPERM)
        }
    })
    .map(|()| 0)
}

pub fn sys_mq_timedsend(t: &mut Task, a: &Args) -> SysResult {
    let (fd, msg_va, len, prio) = (a.i32(0), a.u64(1), a.u64(2), a.u32(3));
    if prio >= MQ_PRIO_MAX {
        return Err(Errno::EINVAL);
    }
    let deadline = timeout_arg(t, a.u64(4))?;
    let (f, q) = queue_fd(t, fd)?;
    if f.flags() & O_ACCMODE != O_WRONLY && f.flags() & O_ACCMODE != O_RDWR {
        return Err(Errno::EBADF);
    }
    if len > q.msgsize as u64 {
        return Err(Errno::EMSGSIZE);
    }
    let mut data = alloc::vec![0u8; len as usize];
    t.mm.lock().copy_in(msg_va, &mut data)?;
    let pending = || t.proc.pending();
    let owed = q.wq.wait(&t.shared, &pending, deadline, || match q.try_send(prio, &data, now_secs()) {
        Some(owed) => Some(Ok(owed)),
        None if f.nonblock() => Some(Err(Errno::EAGAIN)),
        None => None,
    })??;
    if let Some(n) = owed {
        if let Some(p) = crate::kernel::process::find_process(n.pid) {
            let info = SigInfo { code: SI_MESGQ, pid: t.pid(), uid: t.creds.uid, addr: n.value, ..SigInfo::default() };
            signal::send_to_process(&p, n.signo, info);
        }
    }
    Ok(0)
}

pub fn sys_mq_timedreceive(t: &mut Task, a: &Args) -> SysResult {
    let (fd, msg_va, len, prio_va) = (a.i32(0), a.u64(1), a.u64(2), a.u64(3));
    let deadline = timeout_arg(t, a.u64(4))?;
    let (f, q) = queue_fd(t, fd)?;
    if f.flags() & O_ACCMODE == O_WRONLY || f.flags() & O_ACCMODE == O_ACCMODE {
        return Err(Errno::EBADF);
    }
    if len < q.msgsize as u64 {
        return Err(Errno::EMSGSIZE);
    }
    let pending = || t.proc.pending();
    // Counted as a synchronous receiver while it may sleep: a message
    // then goes to it rather than to a registered notification.
    q.receiver_waiting(true);
    let got = q.wq.wait(&t.shared, &pending, deadline, || match q.try_recv(now_secs()) {
        Some(m) => Some(Ok(m)),
        None if f.nonblock() => Some(Err(Errno::EAGAIN)),
        None => None,
    });
    q.receiver_waiting(false);
    let (prio, m) = got??;
    // Like Linux, a bad buffer loses the message.
    let mut mm = t.mm.lock();
    mm.copy_out(msg_va, &m)?;
    if prio_va != 0 {
        mm.write_obj(prio_va, &prio)?;
    }
    Ok(m.len() as u64)
}

pub fn sys_mq_notify(t: &mut Task, a: &Args) -> SysResult {
    let (fd, sev_va) = (a.i32(0), a.u64(1));
    let notify = if sev_va != 0 {
        let mut ev = [0u8; SIGEVENT_SIZE];
        t.mm.lock().copy_in(sev_va, &mut ev)?;
        let value = le_u64(&ev, 0);
        let signo = crate::kernel::ipc::le_u32(&ev, 8);
        let kind = crate::kernel::ipc::le_u32(&ev, 12) as i32;
        match kind {
            SIGEV_NONE => Some(Notify { pid: t.pid(), kind, signo: 0, value: 0 }),
            SIGEV_SIGNAL if signo <= 64 => Some(Notify { pid: t.pid(), kind, signo, value }),
            SIGEV_THREAD => {
                // The C library's SIGEV_THREAD passes a netlink socket
                // (sigev_signo) the kernel would write the notification
                // to; the sentry has no such sockets of its own.
                t.fds.lock().get(signo as i32)?;
                return Err(Errno::ENOSYS);
            }
            _ => return Err(Errno::EINVAL),
        }
    } else {
        None
    };
    let (_, q) = queue_fd(t, fd)?;
    q.set_notify(t.pid(), notify, now_secs()).map(|()| 0)
}

pub fn sys_mq_getsetattr(t: &mut Task, a: &Args) -> SysResult {
    let (fd, new_va, old_va) = (a.i32(0), a.u64(1), a.u64(2));
    let new_flags = if new_va != 0 {
        let mut b = [0u8; MQ_ATTR_SIZE];
        t.mm.lock().copy_in(new_va, &mut b)?;
        let flags = le_u64(&b, 0);
        if flags & !u64::from(O_NONBLOCK) != 0 {
            return Err(Errno::EINVAL);
        }
        Some(flags as u32)
    } else {
        None
    };
    let (f, q) = queue_fd(t, fd)?;
    let attr = q.attr();
    let mut o = Out::default();
    o.u64(u64::from(f.flags() & O_NONBLOCK));
    o.i64(attr.maxmsg);
    o.i64(attr.msgsize);
    o.i64(attr.curmsgs);
    o.pad(32);
    if let Some(flags) = new_flags {
        if flags & O_NONBLOCK != 0 {
            f.flags.fetch_or(O_NONBLOCK, Ordering::Relaxed);
        } else {
            f.flags.fetch_and(!O_NONBLOCK, Ordering::Relaxed);
        }
    }
    if old_va != 0 {
        t.mm.lock().copy_out(old_va, &o.0)?;
    }
    Ok(0)
}
