//! The sandbox's own pseudo-terminals (Linux: drivers/tty/pty.c, with
//! the parts of tty_io.c and tty_jobctrl.c a pty needs). Opening
//! /dev/ptmx makes a pair: the master (this file's `PtyMaster`) and a
//! slave /dev/pts/N (`PtySlave`), numbered in the same space as the host
//! terminals `fs::devpts` lists. Master writes are the slave's input and
//! go through the line discipline (`fs::tty`); slave writes, after output
//! processing, are what the master reads.
//!
//! Controlling terminals: a pair records the session it controls and
//! that session's foreground process group. A process's controlling
//! terminal is the pair whose session is the process's (Linux keeps a
//! pointer per process; this differs only for processes that TIOCNOTTY
//! without being the session leader, which keep the terminal here).
//! Terminal signals (ISIG characters, SIGWINCH, hangup) go to process
//! groups; background reads, and writes with TOSTOP, get SIGTTIN or
//! SIGTTOU as in Linux (at their default action, the job stops).
//!
//! Closing the master hangs the slave up: its reads return 0, its writes
//! and ioctls fail with EIO, the session leader gets SIGHUP and SIGCONT,
//! and the number goes free. Closing the last slave makes master reads
//! fail with EIO once the buffered output is read.
//!
//! Lock order: a pair's `state`, then process locks (`inner`, `sighand`).
//! Signals are sent after `state` is released.

use abi::linux::{KernelTermios, Stat, WinSize};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use spin::Mutex;

use super::tty::{self, Ldisc, ReadStep};
use super::{FileOps, OpenFile, UserSeg, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLPRI, POLLRDNORM, POLLWRNORM, POLL_WQ};
use crate::errno::{Errno, SysResult};
use crate::kernel::process::{self, Process};
use crate::kernel::signal::{self, SigInfo};
use crate::kernel::task::Task;
use crate::kernel::wait::{WaitQueue, ERESTARTSYS};

/// Most pairs at once (Linux: /proc/sys/kernel/pty/max).
pub const PTY_MAX: usize = 4096;
/// The slaves' major device number (Linux: UNIX98_PTY_SLAVE_MAJOR).
pub const PTS_MAJOR: u32 = 136;

const O_ACCMODE: u32 = 3;
const O_NOCTTY: u32 = 0o400;
const O_NONBLOCK: u32 = 0o4000;
const O_CLOEXEC: u32 = 0o2000000;

// ioctl requests.
const TCGETS: u64 = 0x5401;
const TCSETS: u64 = 0x5402;
const TCSETSW: u64 = 0x5403;
const TCSETSF: u64 = 0x5404;
const TCSBRK: u64 = 0x5409;
const TCXONC: u64 = 0x540a;
const TCFLSH: u64 = 0x540b;
const TIOCEXCL: u64 = 0x540c;
const TIOCNXCL: u64 = 0x540d;
const TIOCSCTTY: u64 = 0x540e;
const TIOCGPGRP: u64 = 0x540f;
const TIOCSPGRP: u64 = 0x5410;
const TIOCOUTQ: u64 = 0x5411;
const TIOCGWINSZ: u64 = 0x5413;
const TIOCSWINSZ: u64 = 0x5414;
const FIONREAD: u64 = 0x541b;
const TIOCPKT: u64 = 0x5420;
const TIOCNOTTY: u64 = 0x5422;
const TIOCSETD: u64 = 0x5423;
const TIOCGETD: u64 = 0x5424;
const TCSBRKP: u64 = 0x5425;
const TIOCSBRK: u64 = 0x5427;
const TIOCCBRK: u64 = 0x5428;
const TIOCGSID: u64 = 0x5429;
const TCGETS2: u64 = 0x802c_542a;
const TCSETS2: u64 = 0x402c_542b;
const TCSETSW2: u64 = 0x402c_542c;
const TCSETSF2: u64 = 0x402c_542d;
const TIOCGPTN: u64 = 0x8004_5430;
const TIOCSPTLCK: u64 = 0x4004_5431;
const TIOCSIG: u64 = 0x4004_5436;
const TIOCGPKT: u64 = 0x8004_5438;
const TIOCGPTLCK: u64 = 0x8004_5439;
const TIOCGPTPEER: u64 = 0x5441;

/// The c_cflag baud-rate field and its "other speed" code.
const CBAUD: u32 = 0o10017;
const BOTHER: u32 = 0o10000;

/// A pseudo-terminal pair.
pub struct Pty {
    /// Its /dev/pts number.
    pub index: u32,
    state: Mutex<PtyState>,
    /// Both ends' readers and writers: woken on every change.
    wq: WaitQueue,
}

struct PtyState {
    ld: Ldisc,
    winsize: WinSize,
    /// termios2 speeds (only BOTHER keeps them apart from c_cflag).
    speeds: (u32, u32),
    /// The session this is the controlling terminal of.
    session: Option<u32>,
    /// That session's foreground process group.
    pgrp: Option<u32>,
    /// TIOCSPTLCK: the slave cannot be opened until unlocked.
    locked: bool,
    /// False once the master is closed: the slave is hung up.
    master_open: bool,
    /// Open slave files (open file descriptions).
    slaves: usize,
    /// A slave was opened once: only then does its last close mean
    /// end of file for the master (Linux: TTY_OTHER_CLOSED).
    slave_opened: bool,
    /// The slave node's owner and mode (chown, chmod).
    uid: u32,
    gid: u32,
    mode: u32,
    /// Creation time of the slave node (realtime ns).
    born_ns: u64,
}

/// Sessions whose terminal hung up while they had a foreground group:
/// that group gets SIGHUP and SIGCONT when the session leader exits
/// (Linux: signal->tty_old_pgrp).
static OLD_PGRP: Mutex<BTreeMap<u32, u32>> = Mutex::new(BTreeMap::new());

/// The tty group (gid 5) owns slaves, as with devpts' usual gid=5 mount
/// option (systemd and container runtimes mount it so).
const TTY_GID: u32 = 5;

impl Pty {
    pub(super) fn new(index: u32) -> Pty {
        Pty {
            index,
            state: Mutex::new(PtyState {
                ld: Ldisc::new(),
                winsize: WinSize::default(),
                speeds: (38400, 38400),
                session: None,
                pgrp: None,
                locked: true,
                master_open: true,
                slaves: 0,
                slave_opened: false,
                uid: 0,
                gid: TTY_GID,
                mode: 0o620,
                born_ns: crate::kernel::clock::realtime_ns(),
            }),
            wq: WaitQueue::new(),
        }
    }

    /// stat of the slave node (/dev/pts/N).
    pub fn stat(&self) -> Stat {
        let s = self.state.lock();
        let secs = (s.born_ns / 1_000_000_000) as i64;
        let nsec = (s.born_ns % 1_000_000_000) as i64;
        Stat {
            st_dev: super::devpts::DEVPTS_DEV,
            st_ino: u64::from(self.index) + 3,
            st_nlink: 1,
            st_mode: 0o020000 | s.mode,
            st_uid: s.uid,
            st_gid: s.gid,
            st_rdev: super::devpts::make_dev(PTS_MAJOR, self.index),
            st_blksize: 1024,
            st_atime: secs,
            st_atime_nsec: nsec,
            st_mtime: secs,
            st_mtime_nsec: nsec,
            st_ctime: secs,
            st_ctime_nsec: nsec,
            ..Stat::default()
        }
    }

    /// chmod and chown of the slave node.
    pub fn set_owner(&self, mode: Option<u32>, uid: Option<u32>, gid: Option<u32>) {
        let mut s = self.state.lock();
        if let Some(m) = mode {
            s.mode = m & 0o7777;
        }
        if let Some(u) = uid {
            s.uid = u;
        }
        if let Some(g) = gid {
            s.gid = g;
        }
    }

    /// Whether the master is still open.
    pub fn alive(&self) -> bool {
        self.state.lock().master_open
    }

    /// The session this is the controlling terminal of.
    pub fn session(&self) -> Option<u32> {
        self.state.lock().session
    }

    fn wake(&self) {
        self.wq.wake_all();
        POLL_WQ.wake_all();
    }

    /// Moves a write's bytes into one side of the line discipline: `put`
    /// takes what fits of a piece (None: no room yet, so wait unless
    /// `nonblock`) and `moved` runs after each piece taken. Once some bytes
    /// moved, an error or a signal ends the write short.
    fn write_loop(
        &self,
        t: &Task,
        src: &mut Source,
        nonblock: bool,
        put: impl Fn(&mut PtyState, &[u8]) -> Option<Result<usize, Errno>>,
        moved: impl Fn(),
    ) -> SysResult {
        let mut written = 0;
        let pending = || t.proc.pending();
        loop {
            let data = match src.from(written) {
                Ok(d) => d,
                Err(_) if written > 0 => break,
                Err(e) => return Err(e),
            };
            let r = self.wq.wait(&t.shared, &pending, None, || {
                let r = put(&mut self.state.lock(), data);
                if r.is_none() && nonblock {
                    return Some(Err(Errno::EAGAIN));
                }
                r
            });
            match r {
                Ok(Ok(n)) => {
                    written += n;
                    moved();
                    if written >= src.total {
                        break;
                    }
                }
                Ok(Err(e)) | Err(e) => {
                    if written > 0 {
                        break;
                    }
                    return Err(e);
                }
            }
        }
        Ok(written as u64)
    }

    /// Lets the line discipline take waiting master input (after a read
    /// made room or termios changed) and delivers the signals it raises.
    fn receive(&self) {
        let (sigs, pgrp) = {
            let mut s = self.state.lock();
            (s.ld.receive(), s.pgrp)
        };
        if let Some(g) = pgrp {
            for sig in sigs {
                signal_group(g, sig);
            }
        }
    }
}

/// Sends `sig` from the kernel to every live process of group `pgid`.
pub(super) fn signal_group(pgid: u32, sig: u32) {
    for p in process::all_processes() {
        let hit = {
            let i = p.inner.lock();
            i.pgid == pgid && !i.zombie
        };
        if hit {
            signal::send_to_process(&p, sig, SigInfo::kernel());
        }
    }
}

/// (pid, pgid, sid) of the caller's process.
fn ids(p: &Process) -> (u32, u32, u32) {
    let i = p.inner.lock();
    (p.pid, i.pgid, i.sid)
}

/// The sandbox pty that is session `sid`'s controlling terminal.
pub fn session_tty(sid: u32) -> Option<Arc<Pty>> {
    super::devpts::sandbox_ptys().into_iter().find(|p| p.session() == Some(sid))
}

/// Whether session `sid` has a controlling terminal (a sandbox pty, or
/// the host terminal it was started on).
pub(super) fn has_ctty(sid: u32) -> bool {
    session_tty(sid).is_some() || super::devpts::console_of_session(sid).is_some()
}

/// Makes `pty` the controlling terminal of the caller's session, with
/// the caller's group in the foreground (Linux: __proc_set_tty).
fn set_ctty(pty: &Pty, sid: u32, pgid: u32) {
    let mut s = pty.state.lock();
    s.session = Some(sid);
    s.pgrp = Some(pgid);
    OLD_PGRP.lock().remove(&sid);
}

/// Opens /dev/ptmx: a new pair, slave locked, owned by the opener (see
/// `PtyMaster::opened`).
pub fn open_master() -> Result<Box<dyn FileOps>, Errno> {
    let pty = super::devpts::add_pty(|n| Arc::new(Pty::new(n)))?;
    Ok(Box::new(PtyMaster { pty }))
}

/// Opens the slave of `pty` (through /dev/pts/N, /dev/tty or
/// TIOCGPTPEER).
pub fn open_slave(pty: Arc<Pty>) -> Result<Box<dyn FileOps>, Errno> {
    {
        let mut s = pty.state.lock();
        if s.locked || !s.master_open {
            return Err(Errno::EIO);
        }
        s.slaves += 1;
        s.slave_opened = true;
    }
    pty.wake();
    let path = format!("/dev/pts/{}", pty.index);
    Ok(Box::new(PtySlave { pty, path }))
}

/// The session leader `sid` exited (Linux: disassociate_ctty(1)): the
/// foreground group of its terminal gets SIGHUP and the terminal is
/// free; if the terminal had hung up, the group it had then gets SIGHUP
/// and SIGCONT.
pub fn session_leader_exited(sid: u32) {
    if let Some(pty) = session_tty(sid) {
        let pgrp = {
            let mut s = pty.state.lock();
            s.session = None;
            s.pgrp.take()
        };
        if let Some(g) = pgrp {
            signal_group(g, signal::SIGHUP);
        }
        pty.wake();
    } else if let Some(g) = OLD_PGRP.lock().remove(&sid) {
        signal_group(g, signal::SIGHUP);
        signal_group(g, signal::SIGCONT);
    }
    super::devpts::forget_console_session(sid);
}

/// What the file may do while its process is in the background.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Reads: SIGTTIN.
    Read,
    /// Writes with TOSTOP, termios and foreground changes: SIGTTOU.
    Change,
}

/// Job control (Linux: __tty_check_change, job_control): a process of a
/// background group using its controlling terminal gets SIGTTIN or
/// SIGTTOU. Ignored or blocked: reads fail with EIO, changes go ahead.
/// An orphaned group gets EIO. Otherwise the whole group gets the signal
/// and the call restarts after it: once a handler ran, or once SIGCONT
/// resumed the group its default action stopped.
fn job_control(pty: &Pty, t: &Task, access: Access) -> Result<(), Errno> {
    let (_, pgid, sid) = ids(&t.proc);
    let sig = if access == Access::Read { signal::SIGTTIN } else { signal::SIGTTOU };
    let background = {
        let s = pty.state.lock();
        s.session == Some(sid) && s.master_open && s.pgrp.is_some_and(|g| g != pgid)
    };
    if !background {
        return Ok(());
    }
    let handler = t.proc.sighand.lock()[sig as usize - 1].handler;
    let blocked = t.shared.sigmask.load(Ordering::Relaxed) & signal::bit(sig) != 0;
    if blocked || handler == signal::SIG_IGN {
        return if access == Access::Read { Err(Errno::EIO) } else { Ok(()) };
    }
    if orphaned(pgid, sid) {
        return Err(Errno::EIO);
    }
    signal_group(pgid, sig);
    Err(ERESTARTSYS)
}

/// A process group is orphaned when no member has a parent in another
/// group of the same session (POSIX; Linux: will_become_orphaned_pgrp).
fn orphaned(pgid: u32, sid: u32) -> bool {
    let procs = process::all_processes();
    !procs.iter().any(|p| {
        let (ppid, g) = {
            let i = p.inner.lock();
            (i.ppid, i.pgid)
        };
        g == pgid
            && process::find_process(ppid).is_some_and(|parent| {
                let i = parent.inner.lock();
                i.pgid != pgid && i.sid == sid
            })
    })
}

fn total(segs: &[UserSeg]) -> usize {
    segs.iter().map(|s| s.1).sum()
}

/// The bytes of a write, taken from the caller a piece at a time: what a
/// write moves is bounded by the queues, not by the length asked for
/// (up to 2 GiB, more than the sentry's heap).
struct Source<'a> {
    t: &'a Task,
    segs: &'a [UserSeg],
    /// The length of the write; cut short where the caller's memory ends.
    total: usize,
    piece: Vec<u8>,
    /// The offset of `piece` in the write.
    at: usize,
    /// The bytes themselves when they come from the sentry (sendfile and
    /// splice to a terminal), not from the caller's memory.
    kernel: Option<&'a [u8]>,
}

impl<'a> Source<'a> {
    /// The largest piece copied at once (a queue's size).
    const PIECE: usize = 64 << 10;
    /// Linux copies a tty write in chunks this big: a fault ends the
    /// write after the last whole chunk (EFAULT if it is the first).
    const CHUNK: usize = 2048;

    fn new(t: &'a Task, segs: &'a [UserSeg]) -> Source<'a> {
        Source { t, segs, total: total(segs), piece: Vec::new(), at: 0, kernel: None }
    }

    /// A write of sentry bytes.
    fn kernel(t: &'a Task, buf: &'a [u8]) -> Source<'a> {
        Source { t, segs: &[], total: buf.len(), piece: Vec::new(), at: 0, kernel: Some(buf) }
    }

    /// Copies bytes [`off`, `off` + `buf.len()`) of the write.
    fn copy(&self, off: usize, buf: &mut [u8]) -> Result<(), Errno> {
        let mut mm = self.t.mm.lock();
        let (mut skip, mut got) = (off, 0);
        for &(addr, len) in self.segs {
            if got == buf.len() {
                break;
            }
            if skip >= len {
                skip -= len;
                continue;
            }
            let n = (len - skip).min(buf.len() - got);
            mm.copy_in(addr + skip as u64, &mut buf[got..got + n])?;
            got += n;
            skip = 0;
        }
        Ok(())
    }

    /// The bytes from offset `done` on: at least one unless all are done.
    fn from(&mut self, done: usize) -> Result<&[u8], Errno> {
        if let Some(buf) = self.kernel {
            return Ok(&buf[done.min(buf.len())..]);
        }
        if done < self.at || done >= self.at + self.piece.len() {
            let want = (self.total - done).min(Self::PIECE);
            let mut piece = alloc::vec![0u8; want];
            let mut have = 0;
            while have < want {
                let n = (want - have).min(Self::CHUNK);
                if let Err(e) = self.copy(done + have, &mut piece[have..have + n]) {
                    if have == 0 {
                        return Err(e);
                    }
                    self.total = done + have;
                    break;
                }
                have += n;
            }
            piece.truncate(have);
            self.piece = piece;
            self.at = done;
        }
        Ok(&self.piece[done - self.at..])
    }
}

fn copy_out(t: &Task, segs: &[UserSeg], data: &[u8]) -> Result<(), Errno> {
    let mut done = 0;
    let mut mm = t.mm.lock();
    for &(addr, len) in segs {
        if done >= data.len() {
            break;
        }
        let n = len.min(data.len() - done);
        mm.copy_out(addr, &data[done..done + n])?;
        done += n;
    }
    Ok(())
}

/// The speed a c_cflag baud code stands for.
fn baud(code: u32) -> u32 {
    const RATES: [u32; 16] = [0, 50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400];
    const HIGH: [u32; 15] = [57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000];
    if code & BOTHER == 0 {
        RATES[(code & 0xf) as usize]
    } else {
        // BOTHER alone (no code) names no rate.
        ((code & 0xf) as usize).checked_sub(1).and_then(|i| HIGH.get(i)).copied().unwrap_or(0)
    }
}

/// Ioctls both ends answer, on the pair. `master`: asked on the master.
fn common_ioctl(pty: &Arc<Pty>, t: &Task, master: bool, req: u64, arg: u64) -> SysResult {
    let (pid, pgid, sid) = ids(&t.proc);
    let mine = pty.session() == Some(sid);
    match req {
        TCGETS => {
            let tio = pty.state.lock().ld.termios;
            t.mm.lock().write_obj(arg, &tio).map(|()| 0)
        }
        TCGETS2 => {
            let (tio, speeds) = {
                let s = pty.state.lock();
                (s.ld.termios, s.speeds)
            };
            let mut mm = t.mm.lock();
            mm.write_obj(arg, &tio)?;
            mm.write_obj(arg + 36, &[speeds.1, speeds.0]).map(|()| 0)
        }
        TCSETS | TCSETSW | TCSETSF | TCSETS2 | TCSETSW2 | TCSETSF2 => {
            job_control(pty, t, Access::Change)?;
            let (tio, speeds): (KernelTermios, Option<[u32; 2]>) = {
                let mut mm = t.mm.lock();
                let tio = mm.read_obj(arg)?;
                let speeds = if matches!(req, TCSETS2 | TCSETSW2 | TCSETSF2) { Some(mm.read_obj(arg + 36)?) } else { None };
                (tio, speeds)
            };
            {
                let mut s = pty.state.lock();
                if matches!(req, TCSETSF | TCSETSF2) {
                    s.ld.flush_input();
                }
                s.ld.set_termios(tio);
                // c_ispeed then c_ospeed; the codes give the speeds
                // unless BOTHER asks for the numbers.
                let code = tio.c_cflag & CBAUD;
                s.speeds = match speeds {
                    Some([i, o]) if code == BOTHER => (o, i),
                    _ => (baud(code), baud(code)),
                };
            }
            pty.receive();
            pty.wake();
            Ok(0)
        }
        TIOCGWINSZ => {
            let ws = pty.state.lock().winsize;
            t.mm.lock().write_obj(arg, &ws).map(|()| 0)
        }
        TIOCSWINSZ => {
            let ws: WinSize = t.mm.lock().read_obj(arg)?;
            let pgrp = {
                let mut s = pty.state.lock();
                if s.winsize == ws {
                    return Ok(0);
                }
                s.winsize = ws;
                s.pgrp
            };
            if let Some(g) = pgrp {
                signal_group(g, signal::SIGWINCH);
            }
            Ok(0)
        }
        FIONREAD => {
            let n = {
                let s = pty.state.lock();
                if master {
                    s.ld.output_len()
                } else {
                    s.ld.inq()
                }
            };
            t.mm.lock().write_obj(arg, &(n as i32)).map(|()| 0)
        }
        // Linux's ptys keep no driver-side output queue.
        TIOCOUTQ => t.mm.lock().write_obj(arg, &0i32).map(|()| 0),
        TCFLSH => {
            job_control(pty, t, Access::Change)?;
            let which = arg as u32;
            if which > 2 {
                return Err(Errno::EINVAL);
            }
            {
                let mut s = pty.state.lock();
                if which != 1 {
                    if master {
                        s.ld.flush_output();
                    } else {
                        s.ld.flush_input();
                    }
                }
                if which != 0 && !master && s.ld.packet {
                    s.ld.pkt_status |= tty::TIOCPKT_FLUSHWRITE;
                }
            }
            pty.wake();
            Ok(0)
        }
        TCXONC => {
            job_control(pty, t, Access::Change)?;
            {
                let mut s = pty.state.lock();
                match arg {
                    0 => s.ld.stop(true),
                    1 => s.ld.start(),
                    2 | 3 => {
                        // TCIOFF/TCION send STOP/START down the line.
                        let c = s.ld.termios.c_cc[if arg == 2 { tty::VSTOP } else { tty::VSTART }];
                        if c != 0 {
                            let was = core::mem::replace(&mut s.ld.stopped, false);
                            s.ld.write_output(&[c]);
                            s.ld.stopped = was;
                        }
                    }
                    _ => return Err(Errno::EINVAL),
                }
            }
            pty.wake();
            Ok(0)
        }
        TCSBRK | TCSBRKP | TIOCSBRK | TIOCCBRK => {
            job_control(pty, t, Access::Change)?;
            Ok(0)
        }
        TIOCEXCL | TIOCNXCL => Ok(0),
        TIOCGETD => t.mm.lock().write_obj(arg, &0i32).map(|()| 0),
        TIOCSETD => {
            let d: i32 = t.mm.lock().read_obj(arg)?;
            if d == 0 {
                Ok(0)
            } else {
                Err(Errno::EINVAL)
            }
        }
        TIOCSCTTY => {
            if pid == sid && mine {
                return Ok(0);
            }
            if pid != sid || has_ctty(sid) {
                return Err(Errno::EPERM);
            }
            // Another session's terminal can only be stolen (arg 1) by
            // CAP_SYS_ADMIN; that session then has none.
            if pty.session().is_some() && (arg != 1 || !t.creds.capable(crate::kernel::creds::CAP_SYS_ADMIN)) {
                return Err(Errno::EPERM);
            }
            set_ctty(pty, sid, pgid);
            Ok(0)
        }
        TIOCNOTTY => {
            if master || !mine {
                return Err(Errno::ENOTTY);
            }
            if pid == sid {
                // The leader gives it up for the whole session (Linux:
                // disassociate_ctty(0)): the foreground group is told.
                let pgrp = {
                    let mut s = pty.state.lock();
                    s.session = None;
                    s.pgrp.take()
                };
                if let Some(g) = pgrp {
                    signal_group(g, signal::SIGHUP);
                    signal_group(g, signal::SIGCONT);
                }
                pty.wake();
            }
            Ok(0)
        }
        TIOCGPGRP => {
            if !master && !mine {
                return Err(Errno::ENOTTY);
            }
            let g = pty.state.lock().pgrp.unwrap_or(0);
            t.mm.lock().write_obj(arg, &g).map(|()| 0)
        }
        TIOCSPGRP => {
            match job_control(pty, t, Access::Change) {
                Err(Errno::EIO) => return Err(Errno::ENOTTY),
                r => r?,
            }
            let want: i32 = t.mm.lock().read_obj(arg)?;
            if want < 0 {
                return Err(Errno::EINVAL);
            }
            if !mine {
                return Err(Errno::ENOTTY);
            }
            let want = want as u32;
            // A group, or failing that a process, of the caller's session.
            let procs = process::all_processes();
            let in_group = procs.iter().find(|p| {
                let i = p.inner.lock();
                i.pgid == want && !i.zombie
            });
            let target = in_group.or_else(|| procs.iter().find(|p| p.pid == want)).ok_or(Errno::ESRCH)?;
            if target.inner.lock().sid != sid {
                return Err(Errno::EPERM);
            }
            pty.state.lock().pgrp = Some(want);
            pty.wake();
            Ok(0)
        }
        TIOCGSID => {
            if !master && !mine {
                return Err(Errno::ENOTTY);
            }
            let s = pty.session().ok_or(Errno::ENOTTY)?;
            t.mm.lock().write_obj(arg, &s).map(|()| 0)
        }
        _ => Err(Errno::ENOTTY),
    }
}

/// The master side of a pair.
pub struct PtyMaster {
    pty: Arc<Pty>,
}

impl Drop for PtyMaster {
    fn drop(&mut self) {
        let pty = &self.pty;
        let (session, pgrp) = {
            let mut s = pty.state.lock();
            s.master_open = false;
            (s.session.take(), s.pgrp.take())
        };
        super::devpts::remove_pty(pty.index);
        // The hangup (Linux: __tty_hangup): the session leader is told;
        // the foreground group hears when the leader exits.
        if let Some(sid) = session {
            if let Some(g) = pgrp {
                OLD_PGRP.lock().insert(sid, g);
            }
            if let Some(leader) = process::find_process(sid).filter(|p| !p.inner.lock().zombie) {
                signal::send_to_process(&leader, signal::SIGHUP, SigInfo::kernel());
                signal::send_to_process(&leader, signal::SIGCONT, SigInfo::kernel());
            }
        }
        pty.wake();
    }
}

impl PtyMaster {
    /// write(2) to the master: the bytes are the slave's input.
    fn write_from(&self, t: &Task, mut src: Source, off: Option<u64>, nonblock: bool) -> SysResult {
        if off.is_some() {
            return Err(Errno::ESPIPE);
        }
        if src.total == 0 {
            return Ok(0);
        }
        let pty = &self.pty;
        let put = |s: &mut PtyState, data: &[u8]| {
            let n = s.ld.write_input(data);
            (n > 0).then_some(Ok(n))
        };
        pty.write_loop(t, &mut src, nonblock, put, || {
            pty.receive();
            pty.wake();
        })
    }
}

impl FileOps for PtyMaster {
    fn read(&self, t: &Task, segs: &[UserSeg], off: Option<u64>, nonblock: bool) -> SysResult {
        if off.is_some() {
            return Err(Errno::ESPIPE);
        }
        let want = total(segs);
        if want == 0 {
            return Ok(0);
        }
        let pty = &self.pty;
        let pending = || t.proc.pending();
        let data = pty.wq.wait(&t.shared, &pending, None, || {
            let mut s = pty.state.lock();
            if s.ld.packet && s.ld.pkt_status != 0 {
                return Some(Ok(alloc::vec![core::mem::take(&mut s.ld.pkt_status)]));
            }
            if s.ld.output_len() > 0 {
                let mut v = Vec::new();
                let mut room = want;
                if s.ld.packet {
                    v.push(0);
                    room -= 1;
                }
                v.extend(s.ld.read_output(room));
                return Some(Ok(v));
            }
            if s.slave_opened && s.slaves == 0 {
                return Some(Err(Errno::EIO));
            }
            if nonblock {
                return Some(Err(Errno::EAGAIN));
            }
            None
        })??;
        pty.wake();
        copy_out(t, segs, &data)?;
        Ok(data.len() as u64)
    }

    fn write(&self, t: &Task, segs: &[UserSeg], off: Option<u64>, nonblock: bool) -> SysResult {
        self.write_from(t, Source::new(t, segs), off, nonblock)
    }

    fn splice_write(&self, t: &Task, buf: &[u8], off: Option<u64>, nonblock: bool) -> SysResult {
        self.write_from(t, Source::kernel(t, buf), off, nonblock)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(super::dev::ptmx_stat())
    }

    fn ioctl(&self, t: &Task, req: u64, arg: u64) -> SysResult {
        let pty = &self.pty;
        match req {
            TIOCGPTN => t.mm.lock().write_obj(arg, &pty.index).map(|()| 0),
            TIOCSPTLCK => {
                let v: i32 = t.mm.lock().read_obj(arg)?;
                pty.state.lock().locked = v != 0;
                Ok(0)
            }
            TIOCGPTLCK => {
                let v = i32::from(pty.state.lock().locked);
                t.mm.lock().write_obj(arg, &v).map(|()| 0)
            }
            TIOCPKT => {
                let v: i32 = t.mm.lock().read_obj(arg)?;
                let mut s = pty.state.lock();
                if v != 0 {
                    if !s.ld.packet {
                        s.ld.pkt_status = 0;
                        s.ld.packet = true;
                    }
                } else {
                    s.ld.packet = false;
                }
                Ok(0)
            }
            TIOCGPKT => {
                let v = i32::from(pty.state.lock().ld.packet);
                t.mm.lock().write_obj(arg, &v).map(|()| 0)
            }
            TIOCSIG => {
                let sig = arg as u32;
                if sig != tty::SIGINT && sig != tty::SIGQUIT && sig != tty::SIGTSTP {
                    return Err(Errno::EINVAL);
                }
                if let Some(g) = pty.state.lock().pgrp {
                    signal_group(g, sig);
                }
                Ok(0)
            }
            TIOCGPTPEER => {
                let flags = arg as u32;
                if flags & !(O_ACCMODE | O_NOCTTY | O_NONBLOCK | O_CLOEXEC) != 0 {
                    return Err(Errno::EINVAL);
                }
                let ops = open_slave(pty.clone())?;
                ops.opened(t, flags)?;
                let loc = crate::vfs::Location { inode: super::devpts::node(pty.index), path: format!("/dev/pts/{}", pty.index) };
                let file = OpenFile::at(ops, flags & !O_CLOEXEC, loc);
                let fd = t.fds.lock().install(file, flags & O_CLOEXEC != 0, 0)?;
                Ok(fd as u64)
            }
            _ => common_ioctl(pty, t, true, req, arg),
        }
    }

    fn path(&self) -> &str {
        "/dev/ptmx"
    }

    fn poll(&self, _events: u16) -> u16 {
        let s = self.pty.state.lock();
        let mut r = 0;
        if s.ld.output_len() > 0 {
            r |= POLLIN | POLLRDNORM;
        }
        if s.ld.packet && s.ld.pkt_status != 0 {
            r |= POLLPRI | POLLIN | POLLRDNORM;
        }
        if s.slave_opened && s.slaves == 0 {
            r |= POLLHUP;
        }
        if s.ld.input_room() > 0 {
            r |= POLLOUT | POLLWRNORM;
        }
        r
    }

    fn opened(&self, t: &Task, _flags: u32) -> Result<(), Errno> {
        // The slave belongs to whoever opened the master (Linux:
        // devpts_pty_new with the opener's fsuid and the tty group).
        self.pty.set_owner(None, Some(t.creds.fsuid), None);
        Ok(())
    }

    fn as_any(&self) -> Option<&dyn core::any::Any> {
        Some(self)
    }
}

/// The slave side of a pair.
pub struct PtySlave {
    pty: Arc<Pty>,
    path: alloc::string::String,
}

impl PtySlave {
    /// write(2) to the slave: the program's output, through the line
    /// discipline to the master.
    fn write_from(&self, t: &Task, mut src: Source, off: Option<u64>, nonblock: bool) -> SysResult {
        if off.is_some() {
            return Err(Errno::ESPIPE);
        }
        if self.hung_up() {
            return Err(Errno::EIO);
        }
        if self.pty.state.lock().ld.termios.c_lflag & tty::TOSTOP != 0 {
            job_control(&self.pty, t, Access::Change)?;
        }
        let put = |s: &mut PtyState, data: &[u8]| {
            if !s.master_open {
                return Some(Err(Errno::EIO));
            }
            let n = s.ld.write_output(data);
            // A write of nothing returns at once.
            (n > 0 || data.is_empty()).then_some(Ok(n))
        };
        self.pty.write_loop(t, &mut src, nonblock, put, || self.pty.wake())
    }

    /// Whether the master is gone (the slave is hung up).
    fn hung_up(&self) -> bool {
        !self.pty.alive()
    }
}

impl Drop for PtySlave {
    fn drop(&mut self) {
        self.pty.state.lock().slaves -= 1;
        self.pty.wake();
    }
}

impl FileOps for PtySlave {
    fn read(&self, t: &Task, segs: &[UserSeg], off: Option<u64>, nonblock: bool) -> SysResult {
        if off.is_some() {
            return Err(Errno::ESPIPE);
        }
        if self.hung_up() {
            return Ok(0);
        }
        job_control(&self.pty, t, Access::Read)?;
        let want = total(segs);
        if want == 0 {
            return Ok(0);
        }
        let pty = &self.pty;
        let (canon, minimum, inter_ns, mut deadline) = {
            let s = pty.state.lock();
            let cc = s.ld.termios.c_cc;
            let tenths = u64::from(cc[tty::VTIME]) * 100_000_000;
            if s.ld.icanon() {
                (true, 0, None, None)
            } else if cc[tty::VMIN] > 0 {
                // VMIN bytes, with VTIME as the gap allowed between them.
                (false, usize::from(cc[tty::VMIN]), (tenths > 0).then_some(tenths), None)
            } else {
                // One byte if it comes within VTIME (none: do not wait).
                (false, 1, None, Some(crate::kernel::clock::monotonic_ns() + tenths))
            }
        };
        let mut got: Vec<u8> = Vec::new();
        let pending = || t.proc.pending();
        loop {
            let step = pty.wq.wait(&t.shared, &pending, deadline, || {
                let mut s = pty.state.lock();
                if !s.master_open {
                    return Some(Ok(None));
                }
                if let ReadStep::Data(d) = s.ld.read_input(want - got.len()) {
                    return Some(Ok(Some(d)));
                }
                if deadline.is_some_and(|d| crate::kernel::clock::monotonic_ns() >= d) {
                    return Some(Ok(None));
                }
                if nonblock {
                    return Some(Err(Errno::EAGAIN));
                }
                None
            });
            let d = match step {
                Ok(Ok(Some(d))) => d,
                Ok(Ok(None)) | Err(Errno::ETIMEDOUT) => break,
                Ok(Err(e)) | Err(e) => {
                    if got.is_empty() {
                        return Err(e);
                    }
                    break;
                }
            };
            got.extend(d);
            // Room in the read buffer: waiting master input moves in.
            pty.receive();
            pty.wake();
            if canon || got.len() >= minimum || got.len() >= want {
                break;
            }
            if let Some(gap) = inter_ns {
                deadline = Some(crate::kernel::clock::monotonic_ns() + gap);
            }
        }
        copy_out(t, segs, &got)?;
        Ok(got.len() as u64)
    }

    fn write(&self, t: &Task, segs: &[UserSeg], off: Option<u64>, nonblock: bool) -> SysResult {
        self.write_from(t, Source::new(t, segs), off, nonblock)
    }

    fn splice_write(&self, t: &Task, buf: &[u8], off: Option<u64>, nonblock: bool) -> SysResult {
        self.write_from(t, Source::kernel(t, buf), off, nonblock)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.pty.stat())
    }

    fn ioctl(&self, t: &Task, req: u64, arg: u64) -> SysResult {
        if self.hung_up() {
            return Err(if req == TIOCSPGRP { Errno::ENOTTY } else { Errno::EIO });
        }
        match req {
            TIOCGPTN | TIOCSPTLCK | TIOCGPTLCK | TIOCPKT | TIOCGPKT | TIOCSIG | TIOCGPTPEER => Err(Errno::ENOTTY),
            _ => common_ioctl(&self.pty, t, false, req, arg),
        }
    }

    fn path(&self) -> &str {
        &self.path
    }

    fn poll(&self, _events: u16) -> u16 {
        if self.hung_up() {
            return POLLIN | POLLOUT | POLLERR | POLLHUP | POLLRDNORM | POLLWRNORM;
        }
        let s = self.pty.state.lock();
        let mut r = 0;
        if s.ld.readable(true) {
            r |= POLLIN | POLLRDNORM;
        }
        if s.ld.output_room() > 0 {
            r |= POLLOUT | POLLWRNORM;
        }
        r
    }

    fn opened(&self, t: &Task, flags: u32) -> Result<(), Errno> {
        // A session leader without a controlling terminal acquires the
        // first terminal it opens for reading without O_NOCTTY (Linux:
        // tty_open_proc_set_tty).
        let (pid, pgid, sid) = ids(&t.proc);
        let reads = flags & O_ACCMODE != 1;
        if flags & O_NOCTTY == 0 && reads && pid == sid && !has_ctty(sid) && self.pty.session().is_none() {
            set_ctty(&self.pty, sid, pgid);
        }
        Ok(())
    }

    fn as_any(&self) -> Option<&dyn core::any::Any> {
        Some(self)
    }
}
