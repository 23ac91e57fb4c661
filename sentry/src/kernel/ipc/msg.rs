//! System V message queues (Linux: ipc/msg.c).
//!
//! A message sent while a matching receiver sleeps goes straight to it
//! (Linux's pipelined_send), receivers in the order they came; otherwise
//! it joins the queue, if the queue's byte and message budget
//! (`msg_qbytes`) allows, else the sender sleeps until a receive makes
//! room. MSG_COPY reads a message by position without taking it, as Linux
//! built with CONFIG_CHECKPOINT_RESTORE (the distributions' default).
#![forbid(unsafe_code)]

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write as _;
use spin::Mutex;

use super::{Ctx, Ids, IpcObject, Limits, Lookup, Out, Perm, PermSet, Waiter, IPC_INFO, IPC_NOWAIT, IPC_STAT};
use crate::errno::Errno;
use crate::kernel::creds::CAP_SYS_RESOURCE;

/// msgctl commands.
pub const MSG_STAT: i32 = 11;
pub const MSG_INFO: i32 = 12;
pub const MSG_STAT_ANY: i32 = 13;
/// msgrcv flags.
pub const MSG_NOERROR: i32 = 0o10000;
pub const MSG_EXCEPT: i32 = 0o20000;
pub const MSG_COPY: i32 = 0o40000;
/// msginfo constants (Linux: MSGSSZ, MSGSEG capped, MSGPOOL, MSGTQL, MSGMAP).
const MSGSSZ: i32 = 16;
const MSGSEG: u16 = 0xffff;
const MSGPOOL: i32 = 32000 * 16384 / 1024;
const MSGTQL: i32 = 16384;
const MSGMAP: i32 = 16384;

/// One message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub mtype: i64,
    pub text: Vec<u8>,
}

/// Which message msgrcv takes (Linux: the SEARCH_* modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Search {
    Any,
    Equal(i64),
    NotEqual(i64),
    /// The lowest type up to this one.
    LessEqual(i64),
    /// The message at this position (MSG_COPY).
    Number(i64),
}

impl Search {
    /// The mode for msgrcv's `msgtyp` and flags (Linux: convert_mode).
    pub fn new(msgtyp: i64, flags: i32) -> Search {
        if flags & MSG_COPY != 0 {
            Search::Number(msgtyp)
        } else if msgtyp == 0 {
            Search::Any
        } else if msgtyp < 0 {
            Search::LessEqual(msgtyp.checked_neg().unwrap_or(i64::MAX))
        } else if flags & MSG_EXCEPT != 0 {
            Search::NotEqual(msgtyp)
        } else {
            Search::Equal(msgtyp)
        }
    }

    fn matches(self, m: &Message) -> bool {
        match self {
            Search::Any | Search::Number(_) => true,
            Search::Equal(t) => m.mtype == t,
            Search::NotEqual(t) => m.mtype != t,
            Search::LessEqual(t) => m.mtype <= t,
        }
    }

    /// The position of the message to take (Linux: find_msg).
    fn find(self, msgs: &VecDeque<Message>) -> Option<usize> {
        match self {
            Search::Number(n) => usize::try_from(n).ok().filter(|n| *n < msgs.len()),
            Search::LessEqual(_) => {
                let mut best: Option<usize> = None;
                for (i, m) in msgs.iter().enumerate().filter(|(_, m)| self.matches(m)) {
                    if best.is_none_or(|b| m.mtype < msgs[b].mtype) {
                        best = Some(i);
                    }
                }
                best
            }
            _ => msgs.iter().position(|m| self.matches(m)),
        }
    }
}

/// How a sleeping receiver's wait ended: a message, or an error (EAGAIN:
/// look again, the queue's permissions changed).
pub type RecvEnd = Result<Message, Errno>;
/// How a sleeping sender's wait ended: Ok (try again) or EIDRM.
pub type SendEnd = Result<(), Errno>;

struct Receiver {
    waiter: Arc<Waiter<RecvEnd>>,
    search: Search,
    /// Largest message it takes (i32::MAX with MSG_NOERROR).
    max: u64,
    pid: u32,
}

struct Sender {
    waiter: Arc<Waiter<SendEnd>>,
    size: u64,
}

/// One queue (Linux: `msg_queue`).
pub struct MsgQueue {
    pub perm: Perm,
    stime: i64,
    rtime: i64,
    ctime: i64,
    cbytes: u64,
    qbytes: u64,
    lspid: u32,
    lrpid: u32,
    msgs: VecDeque<Message>,
    receivers: Vec<Receiver>,
    senders: Vec<Sender>,
}

impl IpcObject for MsgQueue {
    fn perm(&self) -> &Perm {
        &self.perm
    }
    fn perm_mut(&mut self) -> &mut Perm {
        &mut self.perm
    }
}

impl MsgQueue {
    fn fits(&self, size: u64) -> bool {
        size.saturating_add(self.cbytes) <= self.qbytes && (self.msgs.len() as u64) < self.qbytes
    }

    /// Gives `m` to the first sleeping receiver that wants it; receivers
    /// whose buffer is too small fail with E2BIG on the way. Returns the
    /// message back if nobody took it.
    fn pipelined_send(&mut self, m: Message, now: i64) -> Option<Message> {
        let mut i = 0;
        while i < self.receivers.len() {
            if !self.receivers[i].search.matches(&m) {
                i += 1;
                continue;
            }
            let r = self.receivers.remove(i);
            if r.max < m.text.len() as u64 {
                r.waiter.finish(Err(Errno::E2BIG));
                continue;
            }
            self.lrpid = r.pid;
            self.rtime = now;
            r.waiter.finish(Ok(m));
            return None;
        }
        Some(m)
    }

    /// Wakes the sleeping senders whose message now fits (they retry).
    fn wake_senders(&mut self) {
        let mut i = 0;
        while i < self.senders.len() {
            if self.fits(self.senders[i].size) {
                self.senders.remove(i).waiter.finish(Ok(()));
            } else {
                i += 1;
            }
        }
    }

    /// `struct msqid64_ds` (x86-64: 120 bytes).
    fn encode(&self) -> Vec<u8> {
        let mut o = Out::default();
        self.perm.encode(&mut o);
        o.i64(self.stime);
        o.i64(self.rtime);
        o.i64(self.ctime);
        o.u64(self.cbytes);
        o.u64(self.msgs.len() as u64);
        o.u64(self.qbytes);
        o.u32(self.lspid);
        o.u32(self.lrpid);
        o.u64(0);
        o.u64(0);
        o.0
    }
}

/// All message queues.
pub struct MsgState {
    ids: Ids<MsgQueue>,
}

static MSG: Mutex<MsgState> = Mutex::new(MsgState::new());

/// Runs `f` on the sandbox's message queues.
pub fn with<R>(f: impl FnOnce(&mut MsgState) -> R) -> R {
    f(&mut MSG.lock())
}

/// What a msgsnd did.
pub enum Send {
    Sent,
    /// The queue is full: the sender sleeps; its message comes back.
    Queued(Message),
}

/// What a msgrcv asks for.
#[derive(Clone, Copy, Debug)]
pub struct RecvReq {
    pub search: Search,
    /// What the caller's buffer holds.
    pub bufsz: u64,
    pub flags: i32,
    /// MSG_COPY copies at most this much (min(bufsz, msgmax)).
    pub copy_max: u64,
}

/// What a msgrcv did.
pub enum Recv {
    Got(Message),
    Queued,
}

impl MsgState {
    /// No queues.
    pub const fn new() -> MsgState {
        MsgState { ids: Ids::new() }
    }

    /// msgget.
    pub fn get(&mut self, key: i32, flags: i32, c: &Ctx, lim: &Limits) -> Result<i32, Errno> {
        match self.ids.lookup(key, flags, c.creds, |_| Ok(()))? {
            Lookup::Existing(id) => Ok(id),
            Lookup::Create => {
                let q = MsgQueue {
                    perm: Perm::new(key, flags),
                    stime: 0,
                    rtime: 0,
                    ctime: c.now,
                    cbytes: 0,
                    qbytes: u64::from(lim.msgmnb),
                    lspid: 0,
                    lrpid: 0,
                    msgs: VecDeque::new(),
                    receivers: Vec::new(),
                    senders: Vec::new(),
                };
                self.ids.add(q, lim.msgmni, c.creds)
            }
        }
    }

    /// msgsnd after the argument checks. `waiter` sleeps if the queue is
    /// full (without IPC_NOWAIT).
    pub fn send(&mut self, id: i32, m: Message, flags: i32, c: &Ctx, waiter: &Arc<Waiter<SendEnd>>) -> Result<Send, Errno> {
        let q = self.ids.get(id)?;
        q.perm.check(c.creds, 0o222)?;
        let size = m.text.len() as u64;
        if !q.fits(size) {
            if flags & IPC_NOWAIT != 0 {
                return Err(Errno::EAGAIN);
            }
            q.senders.push(Sender { waiter: waiter.clone(), size });
            return Ok(Send::Queued(m));
        }
        q.lspid = c.pid;
        q.stime = c.now;
        if let Some(m) = q.pipelined_send(m, c.now) {
            q.cbytes += size;
            q.msgs.push_back(m);
        }
        Ok(Send::Sent)
    }

    /// msgrcv after the argument checks.
    pub fn recv(&mut self, id: i32, req: &RecvReq, c: &Ctx, waiter: &Arc<Waiter<RecvEnd>>) -> Result<Recv, Errno> {
        let RecvReq { search, bufsz, flags, copy_max } = *req;
        let q = self.ids.get(id)?;
        q.perm.check(c.creds, 0o444)?;
        if let Some(i) = search.find(&q.msgs) {
            let len = q.msgs[i].text.len() as u64;
            if bufsz < len && flags & MSG_NOERROR == 0 {
                return Err(Errno::E2BIG);
            }
            if flags & MSG_COPY != 0 {
                // Linux copies into a message sized min(bufsz, msgmax).
                if len > bufsz.min(copy_max) {
                    return Err(Errno::EINVAL);
                }
                return Ok(Recv::Got(q.msgs[i].clone()));
            }
            let m = q.msgs.remove(i).ok_or(Errno::EINVAL)?;
            q.rtime = c.now;
            q.lrpid = c.pid;
            q.cbytes -= len;
            q.wake_senders();
            return Ok(Recv::Got(m));
        }
        if flags & IPC_NOWAIT != 0 {
            return Err(Errno::ENOMSG);
        }
        let max = if flags & MSG_NOERROR != 0 { i32::MAX as u64 } else { bufsz };
        q.receivers.push(Receiver { waiter: waiter.clone(), search, max, pid: c.pid });
        Ok(Recv::Queued)
    }

    /// A receiver stopped waiting (signal): leaves its queue, unless it
    /// was handed a result meanwhile, which is returned.
    pub fn cancel_recv(&mut self, id: i32, w: &Arc<Waiter<RecvEnd>>) -> Option<RecvEnd> {
        if let Some(r) = w.take() {
            return Some(r);
        }
        if let Ok(q) = self.ids.get(id) {
            q.receivers.retain(|r| !Arc::ptr_eq(&r.waiter, w));
        }
        None
    }

    /// A sender stopped waiting; as `cancel_recv`.
    pub fn cancel_send(&mut self, id: i32, w: &Arc<Waiter<SendEnd>>) -> Option<SendEnd> {
        if let Some(r) = w.take() {
            return Some(r);
        }
        if let Ok(q) = self.ids.get(id) {
            q.senders.retain(|s| !Arc::ptr_eq(&s.waiter, w));
        }
        None
    }

    /// IPC_STAT, MSG_STAT, MSG_STAT_ANY.
    pub fn stat(&mut self, id: i32, cmd: i32, c: &Ctx) -> Result<(Vec<u8>, u64), Errno> {
        let q = if cmd == IPC_STAT { self.ids.get(id)? } else { self.ids.get_by_index(id)? };
        if cmd != MSG_STAT_ANY {
            q.perm.check(c.creds, 0o444)?;
        }
        let ret = if cmd == IPC_STAT { 0 } else { u64::from(q.perm.id as u32) };
        Ok((q.encode(), ret))
    }

    /// IPC_SET: owner, mode and msg_qbytes (raising it past msgmnb needs
    /// CAP_SYS_RESOURCE). Sleepers look again.
    pub fn set(&mut self, id: i32, p: &PermSet, qbytes: u64, c: &Ctx, lim: &Limits) -> Result<(), Errno> {
        let q = self.ids.get(id)?;
        q.perm.may_control(c.creds)?;
        // Linux passes msg_qbytes on as an int.
        let qb = qbytes as u32 as i32;
        if i64::from(qb) > i64::from(lim.msgmnb) && !c.creds.capable(CAP_SYS_RESOURCE) {
            return Err(Errno::EPERM);
        }
        q.perm.update(p)?;
        q.qbytes = i64::from(qb) as u64;
        q.ctime = c.now;
        for r in core::mem::take(&mut q.receivers) {
            r.waiter.finish(Err(Errno::EAGAIN));
        }
        q.wake_senders();
        Ok(())
    }

    /// IPC_RMID: sleepers fail with EIDRM.
    pub fn rmid(&mut self, id: i32, c: &Ctx) -> Result<(), Errno> {
        self.ids.get(id)?.perm.may_control(c.creds)?;
        if let Some(q) = self.ids.remove(id) {
            for r in q.receivers {
                r.waiter.finish(Err(Errno::EIDRM));
            }
            for s in q.senders {
                s.waiter.finish(Err(Errno::EIDRM));
            }
        }
        Ok(())
    }

    /// IPC_INFO / MSG_INFO (`struct msginfo`), and the highest index.
    pub fn info(&self, cmd: i32, lim: &Limits) -> (Vec<u8>, u64) {
        let clamp = |v: u64| i32::try_from(v).unwrap_or(i32::MAX);
        let (pool, map, tql) = if cmd == IPC_INFO {
            (MSGPOOL, MSGMAP, MSGTQL)
        } else {
            let msgs: u64 = self.ids.iter().map(|q| q.msgs.len() as u64).sum();
            let bytes: u64 = self.ids.iter().map(|q| q.cbytes).sum();
            (self.ids.in_use() as i32, clamp(msgs), clamp(bytes))
        };
        let mut o = Out::default();
        // msgpool, msgmap, msgmax, msgmnb, msgmni, msgssz, msgtql, msgseg
        for v in [pool, map, clamp(u64::from(lim.msgmax)), clamp(u64::from(lim.msgmnb)), clamp(u64::from(lim.msgmni)), MSGSSZ, tql] {
            o.i32(v);
        }
        o.u16(MSGSEG);
        o.pad(2);
        (o.0, self.ids.max_idx())
    }
}

impl Default for MsgState {
    fn default() -> MsgState {
        MsgState::new()
    }
}

/// /proc/sysvipc/msg.
pub fn proc_text() -> String {
    let mut s = String::from("       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n");
    for q in MSG.lock().ids.iter() {
        let p = &q.perm;
        let _ = writeln!(
            s,
            "{:10} {:10}  {:4o}  {:10} {:10} {:5} {:5} {:5} {:5} {:5} {:5} {:10} {:10} {:10}",
            p.key,
            p.id,
            p.mode,
            q.cbytes,
            q.msgs.len(),
            q.lspid,
            q.lrpid,
            p.uid,
            p.gid,
            p.cuid,
            p.cgid,
            q.stime,
            q.rtime,
            q.ctime
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::creds::Creds;
    use crate::kernel::ipc::{DEFAULT_LIMITS, IPC_PRIVATE};

    fn msg(t: i64, text: &[u8]) -> Message {
        Message { mtype: t, text: text.to_vec() }
    }

    fn ctx(c: &Creds) -> Ctx<'_> {
        Ctx { creds: c, pid: 3, now: 50 }
    }

    fn send(s: &mut MsgState, id: i32, m: Message, c: &Ctx) -> Result<Send, Errno> {
        s.send(id, m, IPC_NOWAIT, c, &Waiter::new(None))
    }

    fn recv(s: &mut MsgState, id: i32, typ: i64, flags: i32, c: &Ctx) -> Result<Message, Errno> {
        let req = RecvReq { search: Search::new(typ, flags), bufsz: 100, flags: flags | IPC_NOWAIT, copy_max: 8192 };
        match s.recv(id, &req, c, &Waiter::new(None))? {
            Recv::Got(m) => Ok(m),
            Recv::Queued => Err(Errno::EINTR),
        }
    }

    #[test]
    fn type_selection() {
        let root = Creds::default();
        let c = ctx(&root);
        let mut s = MsgState::new();
        let id = s.get(IPC_PRIVATE, 0o600, &c, &DEFAULT_LIMITS).unwrap();
        for (t, x) in [(3, b"a"), (1, b"b"), (2, b"c"), (1, b"d"), (5, b"e")] {
            assert!(matches!(send(&mut s, id, msg(t, x), &c), Ok(Send::Sent)));
        }
        assert_eq!(recv(&mut s, id, 1, MSG_COPY, &c), Ok(msg(1, b"b")));
        assert_eq!(recv(&mut s, id, 9, MSG_COPY, &c), Err(Errno::ENOMSG));
        assert_eq!(recv(&mut s, id, 2, 0, &c), Ok(msg(2, b"c")));
        assert_eq!(recv(&mut s, id, 3, MSG_EXCEPT, &c), Ok(msg(1, b"b")));
        assert_eq!(recv(&mut s, id, -4, 0, &c), Ok(msg(1, b"d")));
        assert_eq!(recv(&mut s, id, -4, 0, &c), Ok(msg(3, b"a")));
        assert_eq!(recv(&mut s, id, -4, 0, &c), Err(Errno::ENOMSG));
        assert_eq!(recv(&mut s, id, i64::MIN, 0, &c), Ok(msg(5, b"e")));
        assert_eq!(recv(&mut s, id, 0, 0, &c), Err(Errno::ENOMSG));
    }

    #[test]
    fn sizes_and_budget() {
        let root = Creds::default();
        let c = ctx(&root);
        let mut s = MsgState::new();
        let id = s.get(IPC_PRIVATE, 0o600, &c, &DEFAULT_LIMITS).unwrap();
        send(&mut s, id, msg(1, &[7; 200]), &c).ok();
        let w = Waiter::new(None);
        assert_eq!(s.recv(id, &RecvReq { search: Search::Any, bufsz: 100, flags: IPC_NOWAIT, copy_max: 8192 }, &c, &w).err(), Some(Errno::E2BIG));
        let Ok(Recv::Got(m)) = s.recv(id, &RecvReq { search: Search::Any, bufsz: 100, flags: IPC_NOWAIT | MSG_NOERROR, copy_max: 8192 }, &c, &w) else { panic!() };
        assert_eq!(m.text.len(), 200);
        // The budget counts bytes and messages.
        s.set(id, &PermSet { uid: 0, gid: 0, mode: 0o600 }, 10, &c, &DEFAULT_LIMITS).unwrap();
        assert!(matches!(send(&mut s, id, msg(1, &[0; 10]), &c), Ok(Send::Sent)));
        assert_eq!(send(&mut s, id, msg(1, b"y"), &c).err(), Some(Errno::EAGAIN));
        let ws = Waiter::new(None);
        assert!(matches!(s.send(id, msg(1, b"x"), 0, &c, &ws), Ok(Send::Queued(_))));
        recv(&mut s, id, 0, 0, &c).unwrap();
        assert_eq!(ws.take(), Some(Ok(())));
        let user = Creds::new(5, 5, Vec::new());
        assert_eq!(s.set(id, &PermSet::default(), 10, &ctx(&user), &DEFAULT_LIMITS), Err(Errno::EPERM));
        let ok = Creds { cap_effective: 0, ..Creds::default() };
        assert_eq!(s.set(id, &PermSet::default(), 1 << 20, &ctx(&ok), &DEFAULT_LIMITS), Err(Errno::EPERM));
    }

    #[test]
    fn pipelined_and_removed() {
        let root = Creds::default();
        let c = ctx(&root);
        let mut s = MsgState::new();
        let id = s.get(IPC_PRIVATE, 0o600, &c, &DEFAULT_LIMITS).unwrap();
        let small = Waiter::new(None);
        let two = Waiter::new(None);
        let any = Waiter::new(None);
        assert!(matches!(s.recv(id, &RecvReq { search: Search::Any, bufsz: 1, flags: 0, copy_max: 8192 }, &c, &small), Ok(Recv::Queued)));
        assert!(matches!(s.recv(id, &RecvReq { search: Search::Equal(2), bufsz: 100, flags: 0, copy_max: 8192 }, &c, &two), Ok(Recv::Queued)));
        assert!(matches!(s.recv(id, &RecvReq { search: Search::Any, bufsz: 100, flags: 0, copy_max: 8192 }, &c, &any), Ok(Recv::Queued)));
        send(&mut s, id, msg(1, b"hello"), &c).ok();
        assert_eq!(small.take(), Some(Err(Errno::E2BIG)));
        assert_eq!(any.take(), Some(Ok(msg(1, b"hello"))));
        assert!(!two.is_done());
        s.rmid(id, &c).unwrap();
        assert_eq!(two.take(), Some(Err(Errno::EIDRM)));
        assert_eq!(s.stat(id, IPC_STAT, &c).err(), Some(Errno::EINVAL));
    }

    #[test]
    fn layouts() {
        let root = Creds::default();
        let c = ctx(&root);
        let mut s = MsgState::new();
        let id = s.get(IPC_PRIVATE, 0o600, &c, &DEFAULT_LIMITS).unwrap();
        assert_eq!(s.stat(id, IPC_STAT, &c).unwrap().0.len(), 120);
        assert_eq!(s.info(IPC_INFO, &DEFAULT_LIMITS).0.len(), 32);
    }
}
