//! POSIX message queues (Linux: ipc/mqueue.c). The sandbox is one IPC
//! namespace with one queue directory: `mq_open` names a queue in it
//! directly (whether or not /dev/mqueue is mounted), and the mqueue
//! filesystem (`fs::mqueue`) shows the same queues as files.
//!
//! A queue lives while it has a name or an open descriptor: `unlink`
//! only forgets the name. Its messages are kept per priority, each
//! priority's in arrival order, so a receive takes the oldest message of
//! the highest priority.
//!
//! Senders and receivers sleep on the queue's wait queue and look again
//! when woken (a message taken or added); pollers are woken through
//! `POLL_WQ`. Lock order: REGISTRY, then ALL or a queue's `inner`;
//! USAGE is a leaf. No lock is held while a queue may be dropped (its
//! drop takes USAGE).
#![forbid(unsafe_code)]

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use spin::Mutex;

use super::super::creds::{Creds, CAP_SYS_RESOURCE};
use super::super::wait::WaitQueue;
use crate::errno::Errno;

/// Priorities are below this (Linux: MQ_PRIO_MAX).
pub const MQ_PRIO_MAX: u32 = 32768;
/// What even CAP_SYS_RESOURCE may ask for (Linux: HARD_MSGMAX,
/// HARD_MSGSIZEMAX).
const HARD_MSGMAX: i64 = 65536;
const HARD_MSGSIZEMAX: i64 = 16 << 20;
/// Longest queue name (NAME_MAX).
pub const NAME_MAX: usize = 255;
/// Kernel bookkeeping charged to RLIMIT_MSGQUEUE per message slot and
/// per priority level (Linux: sizeof(struct msg_msg) and
/// sizeof(struct posix_msg_tree_node) on x86-64).
const MSG_OVERHEAD: u64 = 48;
const NODE_OVERHEAD: u64 = 48;

/// mq_notify's kinds (struct sigevent's sigev_notify).
pub const SIGEV_SIGNAL: i32 = 0;
pub const SIGEV_NONE: i32 = 1;
pub const SIGEV_THREAD: i32 = 2;

/// The fs.mqueue sysctls.
#[derive(Clone, Copy, Debug)]
pub struct MqLimits {
    pub msg_max: i64,
    pub msgsize_max: i64,
    pub queues_max: u32,
    pub msg_default: i64,
    pub msgsize_default: i64,
}

/// Linux's defaults (ipc/mq_sysctl.c, include/linux/ipc_namespace.h).
pub const DEFAULT_MQ_LIMITS: MqLimits = MqLimits { msg_max: 10, msgsize_max: 8192, queues_max: 256, msg_default: 10, msgsize_default: 8192 };

/// The current limits: the container's `fs.mqueue.*` sysctls, else the
/// defaults.
pub fn limits() -> MqLimits {
    use crate::fs::proc::{sysctl_u32, sysctl_u64};
    let d = DEFAULT_MQ_LIMITS;
    let long = |name: &str, dflt: i64| i64::try_from(sysctl_u64(name, dflt as u64)).unwrap_or(dflt);
    MqLimits {
        msg_max: long("fs.mqueue.msg_max", d.msg_max),
        msgsize_max: long("fs.mqueue.msgsize_max", d.msgsize_max),
        queues_max: sysctl_u32("fs.mqueue.queues_max", d.queues_max),
        msg_default: long("fs.mqueue.msg_default", d.msg_default),
        msgsize_default: long("fs.mqueue.msgsize_default", d.msgsize_default),
    }
}

/// A registered notification (mq_notify).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notify {
    /// The registering process.
    pub pid: u32,
    /// SIGEV_SIGNAL or SIGEV_NONE.
    pub kind: i32,
    pub signo: u32,
    pub value: u64,
}

/// What a send that added a message to an empty queue owes its
/// registered process (the queue forgets the registration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notified {
    pub pid: u32,
    pub signo: u32,
    pub value: u64,
}

struct Inner {
    /// Messages by priority, oldest first.
    msgs: BTreeMap<u32, VecDeque<Vec<u8>>>,
    curmsgs: i64,
    /// Bytes of all messages (what reading the queue file shows).
    qsize: u64,
    notify: Option<Notify>,
    /// Receivers asleep on the queue: a message then goes to them, not
    /// to the registered notification (Linux notifies only when nobody
    /// waits synchronously).
    receivers: u32,
    /// Times of the queue file (CLOCK_REALTIME seconds).
    atime: i64,
    mtime: i64,
    ctime: i64,
    /// Permission bits, owner and group (chmod and chown through the
    /// mqueue filesystem).
    mode: u32,
    uid: u32,
    gid: u32,
}

/// One message queue.
pub struct MQueue {
    pub maxmsg: i64,
    pub msgsize: i64,
    /// Inode number in the mqueue filesystem.
    pub ino: u64,
    /// Bytes charged to the creator's RLIMIT_MSGQUEUE, given back when
    /// the queue goes away.
    charged: u64,
    charged_uid: u32,
    inner: Mutex<Inner>,
    /// Senders and receivers waiting for room or a message.
    pub wq: WaitQueue,
}

/// Attributes as `struct mq_attr` reports them (plus the file flags the
/// caller fills in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    pub maxmsg: i64,
    pub msgsize: i64,
    pub curmsgs: i64,
}

/// Owner and permissions of a queue, as stat shows them.
#[derive(Clone, Copy, Debug)]
pub struct Owner {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub atime: i64,
    pub mtime: i64,
    pub ctime: i64,
}

impl MQueue {
    /// The queue's attributes.
    pub fn attr(&self) -> Attr {
        Attr { maxmsg: self.maxmsg, msgsize: self.msgsize, curmsgs: self.inner.lock().curmsgs }
    }

    /// Owner, mode and times.
    pub fn owner(&self) -> Owner {
        let i = self.inner.lock();
        Owner { mode: i.mode, uid: i.uid, gid: i.gid, atime: i.atime, mtime: i.mtime, ctime: i.ctime }
    }

    /// chmod/chown of the queue file.
    pub fn set_owner(&self, mode: Option<u32>, uid: Option<u32>, gid: Option<u32>, now: i64) {
        let mut i = self.inner.lock();
        if let Some(m) = mode {
            i.mode = m & 0o7777;
        }
        if let Some(u) = uid {
            i.uid = u;
        }
        if let Some(g) = gid {
            i.gid = g;
        }
        i.ctime = now;
    }

    /// Adds a message unless the queue is full (None: the caller sleeps
    /// or fails with EAGAIN). On success, the notification owed, if the
    /// queue was empty, nobody was waiting, and one was registered.
    pub fn try_send(&self, prio: u32, data: &[u8], now: i64) -> Option<Option<Notified>> {
        let mut i = self.inner.lock();
        if i.curmsgs >= self.maxmsg {
            return None;
        }
        i.qsize += data.len() as u64;
        i.msgs.entry(prio).or_default().push_back(data.to_vec());
        i.curmsgs += 1;
        i.mtime = now;
        i.ctime = now;
        let mut owed = None;
        if i.curmsgs == 1 && i.receivers == 0 {
            if let Some(n) = i.notify.take() {
                if n.kind == SIGEV_SIGNAL && n.signo != 0 {
                    owed = Some(Notified { pid: n.pid, signo: n.signo, value: n.value });
                }
            }
        }
        drop(i);
        self.changed();
        Some(owed)
    }

    /// Takes the oldest message of the highest priority, if any.
    pub fn try_recv(&self, now: i64) -> Option<(u32, Vec<u8>)> {
        let mut i = self.inner.lock();
        let mut e = i.msgs.last_entry()?;
        let prio = *e.key();
        let m = e.get_mut().pop_front()?;
        if e.get().is_empty() {
            e.remove();
        }
        i.curmsgs -= 1;
        i.qsize -= m.len() as u64;
        i.atime = now;
        i.ctime = now;
        drop(i);
        self.changed();
        Some((prio, m))
    }

    /// Counts a receiver going to sleep (`+1`) or waking (`-1`).
    pub fn receiver_waiting(&self, asleep: bool) {
        let mut i = self.inner.lock();
        if asleep {
            i.receivers += 1;
        } else {
            i.receivers = i.receivers.saturating_sub(1);
        }
    }

    /// Whether a message is queued / there is room for one (poll).
    pub fn readiness(&self) -> (bool, bool) {
        let i = self.inner.lock();
        (i.curmsgs > 0, i.curmsgs < self.maxmsg)
    }

    /// mq_notify: registers `n`, or with None removes the caller's own
    /// registration. EBUSY when some process is registered already.
    pub fn set_notify(&self, pid: u32, n: Option<Notify>, now: i64) -> Result<(), Errno> {
        let mut i = self.inner.lock();
        match n {
            None => {
                if i.notify.is_some_and(|cur| cur.pid == pid) {
                    i.notify = None;
                    i.atime = now;
                    i.ctime = now;
                }
            }
            Some(_) if i.notify.is_some() => return Err(Errno::EBUSY),
            Some(n) => {
                i.notify = Some(n);
                i.atime = now;
                i.ctime = now;
            }
        }
        Ok(())
    }

    /// A descriptor of the queue was closed by process `pid`: its
    /// registration goes (Linux: mqueue_flush_file).
    pub fn closed_by(&self, pid: u32) {
        let mut i = self.inner.lock();
        if i.notify.is_some_and(|n| n.pid == pid) {
            i.notify = None;
        }
    }

    /// The line reading the queue file gives.
    pub fn status_line(&self) -> String {
        let i = self.inner.lock();
        let (kind, signo, pid) = match i.notify {
            Some(n) => (n.kind, if n.kind == SIGEV_SIGNAL { n.signo } else { 0 }, n.pid),
            None => (0, 0, 0),
        };
        alloc::format!("QSIZE:{:<10} NOTIFY:{:<5} SIGNO:{:<5} NOTIFY_PID:{:<6}\n", i.qsize, kind, signo, pid)
    }

    /// The queue changed: sleepers and pollers look again.
    fn changed(&self) {
        self.wq.wake_all();
        crate::fs::POLL_WQ.wake_all();
    }
}

impl Drop for MQueue {
    fn drop(&mut self) {
        QUEUES.fetch_sub(1, Ordering::Relaxed);
        let mut u = USAGE.lock();
        if let Some(b) = u.get_mut(&self.charged_uid) {
            *b = b.saturating_sub(self.charged);
        }
    }
}

/// Queue names (without the leading '/').
static REGISTRY: Mutex<BTreeMap<String, Arc<MQueue>>> = Mutex::new(BTreeMap::new());
/// Queues that exist, named or not (Linux: mq_queues_count).
static QUEUES: AtomicU32 = AtomicU32::new(0);
/// Every queue, named or not: a process's exit drops its notifications.
static ALL: Mutex<Vec<Weak<MQueue>>> = Mutex::new(Vec::new());
/// Bytes charged per user against RLIMIT_MSGQUEUE (Linux: user->mq_bytes).
static USAGE: Mutex<BTreeMap<u32, u64>> = Mutex::new(BTreeMap::new());

/// Checks a queue name as the kernel gets it (the C library strips the
/// leading '/'): Linux's lookup_one_len rules, then NAME_MAX.
pub fn check_name(name: &str) -> Result<(), Errno> {
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    if name == "." || name == ".." || name.contains('/') {
        return Err(Errno::EACCES);
    }
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

/// What creating a queue needs to know.
pub struct Create<'a> {
    pub creds: &'a Creds,
    /// Permission bits after the umask.
    pub mode: u32,
    /// mq_maxmsg and mq_msgsize asked for (None: the defaults).
    pub attr: Option<(i64, i64)>,
    pub limits: MqLimits,
    /// RLIMIT_MSGQUEUE's soft limit.
    pub rlimit: u64,
    pub now: i64,
}

/// Makes a queue (Linux: mqueue_create_attr + mqueue_get_inode), in
/// Linux's order of checks: ENOSPC, EINVAL, EOVERFLOW, EMFILE.
fn new_queue(c: &Create) -> Result<Arc<MQueue>, Errno> {
    let privileged = c.creds.capable(CAP_SYS_RESOURCE);
    let queues = QUEUES.load(Ordering::Relaxed);
    if queues >= c.limits.queues_max && !privileged {
        return Err(Errno::ENOSPC);
    }
    let (maxmsg, msgsize) = c.attr.unwrap_or((c.limits.msg_default, c.limits.msgsize_default));
    if maxmsg <= 0 || msgsize <= 0 {
        return Err(Errno::EINVAL);
    }
    let (most_msgs, most_size) = if privileged { (HARD_MSGMAX, HARD_MSGSIZEMAX) } else { (c.limits.msg_max, c.limits.msgsize_max) };
    if maxmsg > most_msgs || msgsize > most_size {
        return Err(Errno::EINVAL);
    }
    let (m, s) = (maxmsg as u64, msgsize as u64);
    let data = m.checked_mul(s).ok_or(Errno::EOVERFLOW)?;
    let tree = m * MSG_OVERHEAD + m.min(u64::from(MQ_PRIO_MAX)) * NODE_OVERHEAD;
    let bytes = data.checked_add(tree).ok_or(Errno::EOVERFLOW)?;
    let uid = c.creds.euid;
    {
        let mut u = USAGE.lock();
        let used = u.get(&uid).copied().unwrap_or(0);
        match used.checked_add(bytes) {
            Some(total) if total <= c.rlimit => {
                u.insert(uid, total);
            }
            _ => return Err(Errno::EMFILE),
        }
    }
    QUEUES.fetch_add(1, Ordering::Relaxed);
    let inner = Inner {
        msgs: BTreeMap::new(),
        curmsgs: 0,
        qsize: 0,
        notify: None,
        receivers: 0,
        atime: c.now,
        mtime: c.now,
        ctime: c.now,
        mode: c.mode & 0o777,
        uid: c.creds.fsuid,
        gid: c.creds.fsgid,
    };
    let q = Arc::new(MQueue {
        maxmsg,
        msgsize,
        ino: crate::fs::anon::next_ino(),
        charged: bytes,
        charged_uid: uid,
        inner: Mutex::new(inner),
        wq: WaitQueue::new(),
    });
    let mut all = ALL.lock();
    all.retain(|w| w.strong_count() > 0);
    all.push(Arc::downgrade(&q));
    Ok(q)
}

/// Process `pid` has ended: it no longer holds any notification.
pub fn process_exited(pid: u32) {
    let live: Vec<Arc<MQueue>> = ALL.lock().iter().filter_map(Weak::upgrade).collect();
    for q in &live {
        q.closed_by(pid);
    }
    // The queues are dropped here, outside ALL's lock (a drop takes USAGE).
    drop(live);
}

/// How `open` found its queue.
pub enum Opened {
    Created(Arc<MQueue>),
    Existing(Arc<MQueue>),
}

/// mq_open's lookup (Linux: prepare_open): the queue `name`, made with
/// `create` if absent and O_CREAT was given. `excl` is O_CREAT|O_EXCL.
/// The caller checks access to an existing queue.
pub fn open(name: &str, creat: bool, excl: bool, create: &Create) -> Result<Opened, Errno> {
    check_name(name)?;
    let mut reg = REGISTRY.lock();
    if let Some(q) = reg.get(name) {
        if creat && excl {
            return Err(Errno::EEXIST);
        }
        return Ok(Opened::Existing(q.clone()));
    }
    if !creat {
        return Err(Errno::ENOENT);
    }
    let q = new_queue(create)?;
    reg.insert(name.into(), q.clone());
    Ok(Opened::Created(q))
}

/// The queue called `name`.
pub fn lookup(name: &str) -> Result<Arc<MQueue>, Errno> {
    REGISTRY.lock().get(name).cloned().ok_or(Errno::ENOENT)
}

/// Forgets `name`; the queue lives on while descriptors hold it.
/// `allowed` decides whether the caller may remove it.
pub fn unlink(name: &str, allowed: impl FnOnce(&MQueue) -> Result<(), Errno>) -> Result<(), Errno> {
    check_name(name)?;
    let gone = {
        let mut reg = REGISTRY.lock();
        let q = reg.get(name).ok_or(Errno::ENOENT)?;
        allowed(q)?;
        reg.remove(name)
    };
    // Dropped here, outside the registry lock.
    drop(gone);
    Ok(())
}

/// The names and inode numbers of all queues (the mqueue directory).
pub fn list() -> Vec<(String, u64)> {
    REGISTRY.lock().iter().map(|(n, q)| (n.clone(), q.ino)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(c: &Creds, attr: Option<(i64, i64)>) -> Create<'_> {
        Create { creds: c, mode: 0o600, attr, limits: DEFAULT_MQ_LIMITS, rlimit: 819200, now: 1 }
    }

    #[test]
    fn priorities_then_fifo() {
        let root = Creds::default();
        let q = new_queue(&create(&root, Some((5, 16)))).unwrap();
        for (p, m) in [(1, b"a"), (5, b"b"), (1, b"c"), (5, b"d"), (0, b"e")] {
            assert_eq!(q.try_send(p, m, 2), Some(None));
        }
        assert_eq!(q.try_send(9, b"x", 2), None);
        assert_eq!(q.attr().curmsgs, 5);
        let order: Vec<(u32, Vec<u8>)> = core::iter::from_fn(|| q.try_recv(3)).collect();
        let want: Vec<(u32, Vec<u8>)> = [(5, b"b"), (5, b"d"), (1, b"a"), (1, b"c"), (0, b"e")].iter().map(|(p, m)| (*p, m.to_vec())).collect();
        assert_eq!(order, want);
        assert_eq!(q.readiness(), (false, true));
    }

    #[test]
    fn notification_fires_once_on_empty_to_nonempty() {
        let root = Creds::default();
        let q = new_queue(&create(&root, Some((5, 16)))).unwrap();
        let n = Notify { pid: 7, kind: SIGEV_SIGNAL, signo: 10, value: 42 };
        q.set_notify(7, Some(n), 1).unwrap();
        assert_eq!(q.set_notify(7, Some(n), 1), Err(Errno::EBUSY));
        assert!(q.status_line().starts_with("QSIZE:0          NOTIFY:0     SIGNO:10    NOTIFY_PID:7"));
        assert_eq!(q.try_send(0, b"hi", 2), Some(Some(Notified { pid: 7, signo: 10, value: 42 })));
        assert_eq!(q.try_send(0, b"hi", 2), Some(None));
        assert_eq!(q.status_line(), "QSIZE:4          NOTIFY:0     SIGNO:0     NOTIFY_PID:0     \n");
        // Someone else's removal does nothing; a waiting receiver gets
        // the message instead of the notification.
        while q.try_recv(3).is_some() {}
        q.set_notify(7, Some(n), 1).unwrap();
        q.set_notify(8, None, 1).unwrap();
        q.receiver_waiting(true);
        assert_eq!(q.try_send(0, b"x", 2), Some(None));
        q.closed_by(7);
        assert!(q.status_line().ends_with("NOTIFY_PID:0     \n"));
    }

    #[test]
    fn attribute_limits() {
        let root = Creds::default();
        let user = Creds::new(5, 5, Vec::new());
        assert!(matches!(new_queue(&create(&user, Some((0, 1)))), Err(Errno::EINVAL)));
        assert!(matches!(new_queue(&create(&user, Some((1, -1)))), Err(Errno::EINVAL)));
        assert!(matches!(new_queue(&create(&user, Some((11, 1)))), Err(Errno::EINVAL)));
        assert!(new_queue(&create(&root, Some((11, 1)))).is_ok());
        assert!(matches!(new_queue(&create(&root, Some((HARD_MSGMAX + 1, 1)))), Err(Errno::EINVAL)));
        let mut big = create(&user, Some((10, 8192)));
        big.rlimit = 1000;
        assert!(matches!(new_queue(&big), Err(Errno::EMFILE)));
        assert_eq!(check_name("a/b"), Err(Errno::EACCES));
        assert_eq!(check_name(".."), Err(Errno::EACCES));
        assert_eq!(check_name(""), Err(Errno::ENOENT));
        assert_eq!(check_name(&"x".repeat(256)), Err(Errno::ENAMETOOLONG));
    }
}
