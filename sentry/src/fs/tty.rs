//! The terminal line discipline (Linux: drivers/tty/n_tty.c) of the
//! sandbox's pseudo-terminals: input processing (ISTRIP, ICRNL, INLCR,
//! IGNCR, IXON, ISIG), canonical line editing (erase, word erase, kill,
//! literal next, reprint, EOF), echo, and output processing (OPOST).
//!
//! Plain data: no tasks, locks or waiting. `fs::pty` keeps one `Ldisc`
//! per pair under the pair's lock, blocks on its answers and sends the
//! signals `receive` asks for. The queues mirror Linux's: `input` is the
//! slave port's flip buffer (master writes not yet taken in), `rbuf` the
//! 4 KiB read buffer with a line-end flag per byte, `out` what the slave
//! wrote (after OPOST) and the echoes, waiting for the master.

use abi::linux::KernelTermios;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// The read buffer's size (Linux: N_TTY_BUF_SIZE); a canonical line holds
/// at most one byte less.
pub const N_TTY_BUF_SIZE: usize = 4096;
/// Bytes a queue between the two ends holds (Linux: the tty buffer's
/// 64 KiB memory limit); writers block beyond it.
pub const QUEUE_SIZE: usize = 64 << 10;

// c_iflag
pub const ISTRIP: u32 = 0o40;
pub const INLCR: u32 = 0o100;
pub const IGNCR: u32 = 0o200;
pub const ICRNL: u32 = 0o400;
pub const IUCLC: u32 = 0o1000;
pub const IXON: u32 = 0o2000;
pub const IXANY: u32 = 0o4000;
pub const IUTF8: u32 = 0o40000;
// c_oflag
pub const OPOST: u32 = 0o1;
pub const OLCUC: u32 = 0o2;
pub const ONLCR: u32 = 0o4;
pub const OCRNL: u32 = 0o10;
pub const ONOCR: u32 = 0o20;
pub const ONLRET: u32 = 0o40;
pub const TABDLY: u32 = 0o14000;
pub const XTABS: u32 = 0o14000;
// c_cflag
pub const B38400: u32 = 0o17;
pub const CSIZE: u32 = 0o60;
pub const CS8: u32 = 0o60;
pub const CREAD: u32 = 0o200;
pub const PARENB: u32 = 0o400;
// c_lflag
pub const ISIG: u32 = 0o1;
pub const ICANON: u32 = 0o2;
pub const ECHO: u32 = 0o10;
pub const ECHOE: u32 = 0o20;
pub const ECHOK: u32 = 0o40;
pub const ECHONL: u32 = 0o100;
pub const NOFLSH: u32 = 0o200;
pub const TOSTOP: u32 = 0o400;
pub const ECHOCTL: u32 = 0o1000;
pub const ECHOPRT: u32 = 0o2000;
pub const ECHOKE: u32 = 0o4000;
pub const IEXTEN: u32 = 0o100000;
// c_cc indices
pub const VINTR: usize = 0;
pub const VQUIT: usize = 1;
pub const VERASE: usize = 2;
pub const VKILL: usize = 3;
pub const VEOF: usize = 4;
pub const VTIME: usize = 5;
pub const VMIN: usize = 6;
pub const VSTART: usize = 8;
pub const VSTOP: usize = 9;
pub const VSUSP: usize = 10;
pub const VEOL: usize = 11;
pub const VREPRINT: usize = 12;
pub const VWERASE: usize = 14;
pub const VLNEXT: usize = 15;
pub const VEOL2: usize = 16;

// Packet-mode status bits (TIOCPKT).
pub const TIOCPKT_FLUSHREAD: u8 = 1;
pub const TIOCPKT_FLUSHWRITE: u8 = 2;
pub const TIOCPKT_STOP: u8 = 4;
pub const TIOCPKT_START: u8 = 8;
pub const TIOCPKT_NOSTOP: u8 = 16;
pub const TIOCPKT_DOSTOP: u8 = 32;

/// Signal numbers the line discipline raises.
pub const SIGINT: u32 = 2;
pub const SIGQUIT: u32 = 3;
pub const SIGTSTP: u32 = 20;

/// A disabled c_cc slot (_POSIX_VDISABLE) and the EOF marker kept in the
/// read buffer (Linux: __DISABLED_CHAR).
const DISABLED: u8 = 0;

/// The termios a new slave starts with (Linux: tty_std_termios as the
/// pts driver adjusts it).
pub fn default_termios() -> KernelTermios {
    let mut cc = [0u8; 19];
    cc[..17].copy_from_slice(&[3, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22, 0]);
    KernelTermios {
        c_iflag: ICRNL | IXON,
        c_oflag: OPOST | ONLCR,
        c_cflag: B38400 | CS8 | CREAD,
        c_lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
        c_line: 0,
        c_cc: cc,
    }
}

fn is_cntrl(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

fn is_alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

/// A pending echo (Linux keeps these in echo_buf and turns them into
/// output, with column bookkeeping, when there is room).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Echo {
    /// A byte, through output processing.
    Char(u8),
    /// A control character shown as `^X`.
    Ctl(u8),
    MoveBackCol,
    SetCanonCol,
    /// Back over a tab: columns used since the line start or the
    /// previous tab (mod 8), and whether it was a tab.
    EraseTab(u8, bool),
}

/// What a blocking read should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadStep {
    /// Nothing to read yet.
    Empty,
    /// These bytes (none: end of file in canonical mode).
    Data(Vec<u8>),
}

/// One terminal's line discipline and queues.
pub struct Ldisc {
    pub termios: KernelTermios,
    /// Master writes the line discipline has not taken in yet.
    input: VecDeque<u8>,
    /// The read buffer, with a line-end flag per byte.
    rbuf: VecDeque<(u8, bool)>,
    /// Bytes at the front of `rbuf` that belong to finished lines.
    canon_len: usize,
    /// The first byte after a finished line read or a termios push: Linux
    /// drops a pending EOF only after a line that was read to its end.
    lnext: bool,
    erasing: bool,
    echoes: VecDeque<Echo>,
    column: u32,
    canon_column: u32,
    /// The slave's output and the echoes, for the master to read.
    out: VecDeque<u8>,
    /// Output stopped by the STOP character (or TCOOFF when `tco`).
    pub stopped: bool,
    pub tco_stopped: bool,
    /// Packet mode (TIOCPKT) on the master, and the status it reports.
    pub packet: bool,
    pub pkt_status: u8,
}

impl Default for Ldisc {
    fn default() -> Ldisc {
        Ldisc::new()
    }
}

impl Ldisc {
    /// A fresh slave's line discipline.
    pub fn new() -> Ldisc {
        Ldisc {
            termios: default_termios(),
            input: VecDeque::new(),
            rbuf: VecDeque::new(),
            canon_len: 0,
            lnext: false,
            erasing: false,
            echoes: VecDeque::new(),
            column: 0,
            canon_column: 0,
            out: VecDeque::new(),
            stopped: false,
            tco_stopped: false,
            packet: false,
            pkt_status: 0,
        }
    }

    fn iflag(&self, f: u32) -> bool {
        self.termios.c_iflag & f != 0
    }
    fn oflag(&self, f: u32) -> bool {
        self.termios.c_oflag & f != 0
    }
    fn lflag(&self, f: u32) -> bool {
        self.termios.c_lflag & f != 0
    }
    fn cc(&self, i: usize) -> u8 {
        self.termios.c_cc[i]
    }

    /// Canonical mode (ICANON).
    pub fn icanon(&self) -> bool {
        self.lflag(ICANON)
    }

    // ----- Master side -----------------------------------------------

    /// Room for master writes.
    pub fn input_room(&self) -> usize {
        QUEUE_SIZE - self.input.len()
    }

    /// Takes what fits of a master write; `receive` processes it.
    pub fn write_input(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.input_room());
        self.input.extend(&data[..n]);
        n
    }

    /// Bytes the master can read.
    pub fn output_len(&self) -> usize {
        self.out.len()
    }

    /// Takes up to `max` bytes of output for the master.
    pub fn read_output(&mut self, max: usize) -> Vec<u8> {
        let n = max.min(self.out.len());
        self.out.drain(..n).collect()
    }

    /// Master TCIFLUSH: drops output the master has not read.
    pub fn flush_output(&mut self) {
        self.out.clear();
    }

    // ----- Slave side ------------------------------------------------

    /// Room for slave writes (Linux: pty_write_room; none while stopped).
    pub fn output_room(&self) -> usize {
        if self.stopped {
            0
        } else {
            QUEUE_SIZE.saturating_sub(self.out.len())
        }
    }

    /// A slave write: output processing into the master's queue. Returns
    /// how many of `data`'s bytes went (0: full or stopped).
    pub fn write_output(&mut self, data: &[u8]) -> usize {
        self.commit_echoes();
        if !self.oflag(OPOST) {
            let n = data.len().min(self.output_room());
            self.out.extend(&data[..n]);
            return n;
        }
        let mut done = 0;
        for &c in data {
            let space = self.output_room();
            if self.output_char(c, space).is_none() {
                break;
            }
            done += 1;
        }
        done
    }

    /// One byte with OPOST processing (Linux: do_output_char); None if it
    /// does not fit in `space`, else the bytes used.
    fn output_char(&mut self, c: u8, space: usize) -> Option<usize> {
        if space == 0 {
            return None;
        }
        let mut c = c;
        match c {
            b'\n' => {
                if self.oflag(ONLRET) {
                    self.column = 0;
                }
                if self.oflag(ONLCR) {
                    if space < 2 {
                        return None;
                    }
                    self.column = 0;
                    self.canon_column = 0;
                    self.out.extend(b"\r\n");
                    return Some(2);
                }
                self.canon_column = self.column;
            }
            b'\r' => {
                if self.oflag(ONOCR) && self.column == 0 {
                    return Some(0);
                }
                if self.oflag(OCRNL) {
                    c = b'\n';
                    if self.oflag(ONLRET) {
                        self.column = 0;
                        self.canon_column = 0;
                    }
                } else {
                    self.column = 0;
                    self.canon_column = 0;
                }
            }
            b'\t' => {
                let spaces = 8 - (self.column & 7);
                if self.termios.c_oflag & TABDLY == XTABS {
                    if space < spaces as usize {
                        return None;
                    }
                    self.column += spaces;
                    self.out.extend(core::iter::repeat_n(b' ', spaces as usize));
                    return Some(spaces as usize);
                }
                self.column += spaces;
            }
            8 => self.column = self.column.saturating_sub(1),
            _ => {
                if !is_cntrl(c) {
                    if self.oflag(OLCUC) {
                        c = c.to_ascii_uppercase();
                    }
                    if !self.is_continuation(c) {
                        self.column += 1;
                    }
                }
            }
        }
        self.out.push_back(c);
        Some(1)
    }

    fn is_continuation(&self, c: u8) -> bool {
        self.iflag(IUTF8) && c & 0xc0 == 0x80
    }

    /// Canonical reads see finished lines only; raw reads everything.
    fn available(&self) -> usize {
        if self.icanon() {
            self.canon_len
        } else {
            self.rbuf.len()
        }
    }

    /// Whether a read (or, with `poll`, poll's POLLIN) finds data: in raw
    /// mode poll waits for VMIN bytes when VTIME is 0 (Linux:
    /// input_available_p).
    pub fn readable(&self, poll: bool) -> bool {
        if self.icanon() {
            return self.canon_len > 0;
        }
        let (min, time) = (self.cc(VMIN) as usize, self.cc(VTIME));
        let amt = if poll && time == 0 && min > 0 { min } else { 1 };
        self.rbuf.len() >= amt
    }

    /// One copy step of a slave read of up to `max` bytes. Canonical: at
    /// most the front line, without an EOF marker; when the read stops
    /// right before an EOF marker, the marker is dropped (Linux:
    /// canon_skip_eof). Raw: what is there.
    pub fn read_input(&mut self, max: usize) -> ReadStep {
        if self.available() == 0 || max == 0 {
            return ReadStep::Empty;
        }
        let mut data = Vec::new();
        if self.icanon() {
            let mut taken = 0;
            while taken < self.canon_len && data.len() < max {
                let (c, end) = self.rbuf[taken];
                taken += 1;
                if end {
                    if c != DISABLED {
                        data.push(c);
                    }
                    break;
                }
                data.push(c);
            }
            if data.len() == max && taken < self.canon_len && self.rbuf[taken] == (DISABLED, true) {
                taken += 1;
            }
            self.rbuf.drain(..taken);
            self.canon_len -= taken;
        } else {
            let n = max.min(self.rbuf.len());
            data.extend(self.rbuf.drain(..n).map(|x| x.0));
        }
        ReadStep::Data(data)
    }

    /// FIONREAD on the slave: canonical counts finished lines without EOF
    /// markers (Linux: inq_canon).
    pub fn inq(&self) -> usize {
        if self.icanon() {
            self.rbuf.iter().take(self.canon_len).filter(|&&x| x != (DISABLED, true)).count()
        } else {
            self.rbuf.len()
        }
    }

    /// Slave TCIFLUSH (also TCSETSF, and ISIG without NOFLSH): drops the
    /// input not yet read.
    pub fn flush_input(&mut self) {
        self.input.clear();
        self.reset_read_buf();
    }

    fn reset_read_buf(&mut self) {
        self.rbuf.clear();
        self.canon_len = 0;
        self.erasing = false;
        if self.packet {
            self.pkt_status |= TIOCPKT_FLUSHREAD;
        }
    }

    /// TCSETS: a new termios. Switching canonical mode keeps the data: to
    /// raw, everything becomes readable; to canonical, what is there
    /// becomes one finished line (Linux's "EOF push" without a marker).
    pub fn set_termios(&mut self, mut new: KernelTermios) {
        // A pty has no hardware: character size and parity are fixed.
        new.c_cflag = (new.c_cflag & !(CSIZE | PARENB)) | CS8 | CREAD;
        let old = core::mem::replace(&mut self.termios, new);
        if (old.c_lflag ^ new.c_lflag) & ICANON != 0 {
            for x in self.rbuf.iter_mut() {
                x.1 = false;
            }
            if new.c_lflag & ICANON != 0 && !self.rbuf.is_empty() {
                if let Some(last) = self.rbuf.back_mut() {
                    last.1 = true;
                }
                self.canon_len = self.rbuf.len();
            } else {
                self.canon_len = 0;
            }
            self.erasing = false;
            self.lnext = false;
        }
        if self.packet {
            let flow = |t: &KernelTermios| t.c_iflag & IXON != 0 && t.c_cc[VSTOP] == 0o23 && t.c_cc[VSTART] == 0o21;
            let (was, now) = (flow(&old), flow(&new));
            if was != now {
                self.pkt_status &= !(TIOCPKT_DOSTOP | TIOCPKT_NOSTOP);
                self.pkt_status |= if now { TIOCPKT_DOSTOP } else { TIOCPKT_NOSTOP };
            }
        }
        if new.c_iflag & IXON == 0 && old.c_iflag & IXON != 0 && !self.tco_stopped {
            self.start();
        }
    }

    /// Stops output (STOP character; TCOOFF sets `tco` too).
    pub fn stop(&mut self, tco: bool) {
        if tco {
            self.tco_stopped = true;
        }
        if self.stopped {
            return;
        }
        self.stopped = true;
        if self.packet {
            self.pkt_status = (self.pkt_status & !TIOCPKT_START) | TIOCPKT_STOP;
        }
    }

    /// Restarts output (START character, TCOON).
    pub fn start(&mut self) {
        self.tco_stopped = false;
        if !self.stopped {
            return;
        }
        self.stopped = false;
        if self.packet {
            self.pkt_status = (self.pkt_status & !TIOCPKT_STOP) | TIOCPKT_START;
        }
        self.commit_echoes();
    }

    // ----- Input processing ------------------------------------------

    /// Takes master input into the read buffer while there is room, and
    /// returns the signals it raised for the foreground process group.
    pub fn receive(&mut self) -> Vec<u32> {
        let mut sigs = Vec::new();
        while let Some(&c) = self.input.front() {
            let room = N_TTY_BUF_SIZE as isize - self.rbuf.len() as isize - 1;
            if room <= 0 {
                // A canonical line with nothing finished before it keeps
                // taking input, each byte replacing the last, so that
                // erase and newline still work (Linux).
                if !(self.icanon() && self.canon_len == 0) {
                    break;
                }
                if room < 0 {
                    self.rbuf.pop_back();
                }
            }
            self.input.pop_front();
            self.receive_char(c, &mut sigs);
        }
        if self.lflag(ECHO) || self.lflag(ECHONL) {
            self.commit_echoes();
        }
        sigs
    }

    /// Linux's char_map: bytes that need more than echo-and-queue.
    fn special(&self, c: u8) -> bool {
        if c == DISABLED {
            return false;
        }
        let cc = |i| self.cc(i) == c;
        (c == b'\r' && (self.iflag(IGNCR) || self.iflag(ICRNL)))
            || (c == b'\n' && (self.iflag(INLCR) || self.icanon()))
            || (self.icanon() && (cc(VERASE) || cc(VKILL) || cc(VEOF) || cc(VEOL)))
            || (self.icanon() && self.lflag(IEXTEN) && (cc(VWERASE) || cc(VLNEXT) || cc(VEOL2) || (self.lflag(ECHO) && cc(VREPRINT))))
            || (self.iflag(IXON) && (cc(VSTART) || cc(VSTOP)))
            || (self.lflag(ISIG) && (cc(VINTR) || cc(VQUIT) || cc(VSUSP)))
    }

    fn receive_char(&mut self, c: u8, sigs: &mut Vec<u32>) {
        let mut c = c;
        if self.iflag(ISTRIP) {
            c &= 0x7f;
        }
        if self.iflag(IUCLC) && self.lflag(IEXTEN) {
            c = c.to_ascii_lowercase();
        }
        if self.lnext {
            self.lnext = false;
            self.receive_plain(c);
        } else if self.special(c) {
            self.receive_special(c, sigs);
        } else {
            self.receive_plain(c);
        }
    }

    fn put(&mut self, c: u8) {
        self.rbuf.push_back((c, false));
    }

    /// Echo and queue (Linux: n_tty_receive_char).
    fn receive_plain(&mut self, c: u8) {
        if self.stopped && !self.tco_stopped && self.iflag(IXON) && self.iflag(IXANY) {
            self.start();
        }
        if self.lflag(ECHO) {
            self.finish_erasing();
            if self.rbuf.len() == self.canon_len {
                self.echoes.push_back(Echo::SetCanonCol);
            }
            self.echo_char(c);
        }
        self.put(c);
    }

    fn receive_special(&mut self, c: u8, sigs: &mut Vec<u32>) {
        let mut c = c;
        if self.iflag(IXON) {
            if c == self.cc(VSTART) {
                self.start();
                return;
            }
            if c == self.cc(VSTOP) {
                self.stop(false);
                return;
            }
        }
        if self.lflag(ISIG) {
            for (i, sig) in [(VINTR, SIGINT), (VQUIT, SIGQUIT), (VSUSP, SIGTSTP)] {
                if c == self.cc(i) {
                    self.signal_char(c, sig, sigs);
                    return;
                }
            }
        }
        if self.stopped && !self.tco_stopped && self.iflag(IXON) && self.iflag(IXANY) {
            self.start();
        }
        if c == b'\r' {
            if self.iflag(IGNCR) {
                return;
            }
            if self.iflag(ICRNL) {
                c = b'\n';
            }
        } else if c == b'\n' && self.iflag(INLCR) {
            c = b'\r';
        }
        if self.icanon() {
            if c == self.cc(VERASE) || c == self.cc(VKILL) || (c == self.cc(VWERASE) && self.lflag(IEXTEN)) {
                self.eraser(c);
                return;
            }
            if c == self.cc(VLNEXT) && self.lflag(IEXTEN) {
                self.lnext = true;
                if self.lflag(ECHO) {
                    self.finish_erasing();
                    if self.lflag(ECHOCTL) {
                        self.echoes.push_back(Echo::Char(b'^'));
                        self.echoes.push_back(Echo::Char(8));
                    }
                }
                return;
            }
            if c == self.cc(VREPRINT) && self.lflag(ECHO) && self.lflag(IEXTEN) {
                self.finish_erasing();
                self.echo_char(c);
                self.echoes.push_back(Echo::Char(b'\n'));
                let line: Vec<u8> = self.rbuf.iter().skip(self.canon_len).map(|x| x.0).collect();
                for b in line {
                    self.echo_char(b);
                }
                return;
            }
            if c == b'\n' {
                if self.lflag(ECHO) || self.lflag(ECHONL) {
                    self.echoes.push_back(Echo::Char(b'\n'));
                }
                self.end_line(c);
                return;
            }
            if c == self.cc(VEOF) {
                self.end_line(DISABLED);
                return;
            }
            if c == self.cc(VEOL) || (c == self.cc(VEOL2) && self.lflag(IEXTEN)) {
                if self.lflag(ECHO) {
                    if self.rbuf.len() == self.canon_len {
                        self.echoes.push_back(Echo::SetCanonCol);
                    }
                    self.echo_char(c);
                }
                self.end_line(c);
                return;
            }
        }
        if self.lflag(ECHO) {
            self.finish_erasing();
            if c == b'\n' {
                self.echoes.push_back(Echo::Char(b'\n'));
            } else {
                if self.rbuf.len() == self.canon_len {
                    self.echoes.push_back(Echo::SetCanonCol);
                }
                self.echo_char(c);
            }
        }
        self.put(c);
    }

    fn end_line(&mut self, c: u8) {
        self.rbuf.push_back((c, true));
        self.canon_len = self.rbuf.len();
    }

    /// INTR, QUIT, SUSP: the signal, a flush unless NOFLSH (pending
    /// echoes and unread input go), output restarted, then the echo.
    fn signal_char(&mut self, c: u8, sig: u32, sigs: &mut Vec<u32>) {
        sigs.push(sig);
        if !self.lflag(NOFLSH) {
            self.echoes.clear();
            self.reset_read_buf();
        }
        if self.iflag(IXON) {
            self.start();
        }
        if self.lflag(ECHO) {
            self.echo_char(c);
        }
    }

    fn echo_char(&mut self, c: u8) {
        if self.lflag(ECHOCTL) && is_cntrl(c) && c != b'\t' {
            self.echoes.push_back(Echo::Ctl(c));
        } else {
            self.echoes.push_back(Echo::Char(c));
        }
    }

    fn finish_erasing(&mut self) {
        if self.erasing {
            self.echoes.push_back(Echo::Char(b'/'));
            self.erasing = false;
        }
    }

    /// ERASE, WERASE and KILL on the line being edited (Linux: eraser).
    fn eraser(&mut self, c: u8) {
        #[derive(PartialEq)]
        enum Kill {
            Erase,
            Word,
            Line,
        }
        if self.rbuf.len() == self.canon_len {
            return;
        }
        let kind = if c == self.cc(VERASE) {
            Kill::Erase
        } else if c == self.cc(VWERASE) {
            Kill::Word
        } else {
            if !self.lflag(ECHO) {
                self.rbuf.truncate(self.canon_len);
                return;
            }
            if !self.lflag(ECHOK) || !self.lflag(ECHOKE) || !self.lflag(ECHOE) {
                self.rbuf.truncate(self.canon_len);
                self.finish_erasing();
                self.echo_char(self.cc(VKILL));
                if self.lflag(ECHOK) {
                    self.echoes.push_back(Echo::Char(b'\n'));
                }
                return;
            }
            Kill::Line
        };
        let mut seen_alnums = 0;
        while self.rbuf.len() > self.canon_len {
            // One character, which in UTF-8 mode may be several bytes.
            let mut head = self.rbuf.len();
            let mut ch;
            loop {
                head -= 1;
                ch = self.rbuf[head].0;
                if !(self.is_continuation(ch) && head > self.canon_len) {
                    break;
                }
            }
            if self.is_continuation(ch) {
                break;
            }
            if kind == Kill::Word {
                if is_alnum(ch) || ch == b'_' {
                    seen_alnums += 1;
                } else if seen_alnums > 0 {
                    break;
                }
            }
            let erased: Vec<u8> = self.rbuf.drain(head..).map(|x| x.0).collect();
            if self.lflag(ECHO) {
                if self.lflag(ECHOPRT) {
                    if !self.erasing {
                        self.echoes.push_back(Echo::Char(b'\\'));
                        self.erasing = true;
                    }
                    self.echo_char(ch);
                    for &b in &erased[1..] {
                        self.echoes.push_back(Echo::Char(b));
                        self.echoes.push_back(Echo::MoveBackCol);
                    }
                } else if kind == Kill::Erase && !self.lflag(ECHOE) {
                    self.echo_char(self.cc(VERASE));
                } else if ch == b'\t' {
                    // Columns since the line start or the previous tab.
                    let mut cols = 0u32;
                    let mut after_tab = false;
                    for i in (self.canon_len..self.rbuf.len()).rev() {
                        let b = self.rbuf[i].0;
                        if b == b'\t' {
                            after_tab = true;
                            break;
                        } else if is_cntrl(b) {
                            if self.lflag(ECHOCTL) {
                                cols += 2;
                            }
                        } else if !self.is_continuation(b) {
                            cols += 1;
                        }
                    }
                    self.echoes.push_back(Echo::EraseTab((cols & 7) as u8, after_tab));
                } else {
                    let wipe = [Echo::Char(8), Echo::Char(b' '), Echo::Char(8)];
                    if is_cntrl(ch) && self.lflag(ECHOCTL) {
                        self.echoes.extend(wipe);
                    }
                    if !is_cntrl(ch) || self.lflag(ECHOCTL) {
                        self.echoes.extend(wipe);
                    }
                }
            }
            if kind == Kill::Erase {
                break;
            }
        }
        if self.rbuf.len() == self.canon_len && self.lflag(ECHO) {
            self.finish_erasing();
        }
    }

    /// Turns pending echoes into output while there is room (Linux:
    /// __process_echoes); what does not fit waits, within bounds.
    pub fn commit_echoes(&mut self) {
        while let Some(&e) = self.echoes.front() {
            let space = self.output_room();
            match e {
                Echo::Char(c) => {
                    let fits = if self.oflag(OPOST) {
                        self.output_char(c, space).is_some()
                    } else if space > 0 {
                        self.out.push_back(c);
                        true
                    } else {
                        false
                    };
                    if !fits {
                        break;
                    }
                }
                Echo::Ctl(c) => {
                    if space < 2 {
                        break;
                    }
                    self.out.extend([b'^', c ^ 0o100]);
                    self.column += 2;
                }
                Echo::MoveBackCol => self.column = self.column.saturating_sub(1),
                Echo::SetCanonCol => self.canon_column = self.column,
                Echo::EraseTab(cols, after_tab) => {
                    let mut n = u32::from(cols);
                    if !after_tab {
                        n += self.canon_column;
                    }
                    let bs = 8 - (n & 7);
                    if bs as usize > space {
                        break;
                    }
                    for _ in 0..bs {
                        self.out.push_back(8);
                        self.column = self.column.saturating_sub(1);
                    }
                }
            }
            self.echoes.pop_front();
        }
        // Linux's echo buffer is a 4 KiB ring: the oldest go first.
        while self.echoes.len() > N_TTY_BUF_SIZE {
            self.echoes.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(l: &mut Ldisc, s: &[u8]) -> Vec<u32> {
        assert_eq!(l.write_input(s), s.len());
        l.receive()
    }

    fn out(l: &mut Ldisc) -> Vec<u8> {
        l.read_output(usize::MAX)
    }

    fn read(l: &mut Ldisc, max: usize) -> Option<Vec<u8>> {
        match l.read_input(max) {
            ReadStep::Empty => None,
            ReadStep::Data(d) => Some(d),
        }
    }

    fn raw(l: &mut Ldisc) {
        let mut t = l.termios;
        t.c_lflag &= !(ICANON | ECHO);
        l.set_termios(t);
    }

    #[test]
    fn defaults_match_linux() {
        let t = default_termios();
        assert_eq!((t.c_iflag, t.c_oflag, t.c_cflag, t.c_lflag), (0x500, 0x5, 0xbf, 0x8a3b));
        assert_eq!(&t.c_cc[..8], &[3, 28, 127, 21, 4, 0, 1, 0]);
    }

    #[test]
    fn canonical_lines_and_echo() {
        let mut l = Ldisc::new();
        feed(&mut l, b"hello");
        assert!(!l.readable(false));
        assert_eq!(out(&mut l), b"hello");
        feed(&mut l, b"\r");
        assert_eq!(out(&mut l), b"\r\n");
        assert!(l.readable(false));
        assert_eq!(l.inq(), 6);
        assert_eq!(read(&mut l, 3).unwrap(), b"hel");
        assert_eq!(read(&mut l, 100).unwrap(), b"lo\n");
        assert_eq!(read(&mut l, 100), None);
    }

    #[test]
    fn one_line_per_read() {
        let mut l = Ldisc::new();
        feed(&mut l, b"a\nb\n");
        assert_eq!(read(&mut l, 100).unwrap(), b"a\n");
        assert_eq!(read(&mut l, 100).unwrap(), b"b\n");
    }

    #[test]
    fn eof_handling() {
        let mut l = Ldisc::new();
        // EOF on an empty line: a zero-length read.
        feed(&mut l, b"\x04");
        assert_eq!(read(&mut l, 10).unwrap(), b"");
        // EOF ends a line without a newline and is not delivered.
        feed(&mut l, b"abc\x04");
        assert_eq!(read(&mut l, 10).unwrap(), b"abc");
        // A read that fills the buffer right before an EOF eats it.
        feed(&mut l, b"ab\x04");
        assert_eq!(read(&mut l, 2).unwrap(), b"ab");
        assert_eq!(read(&mut l, 10), None);
        assert_eq!(out(&mut l), b"abcab");
    }

    #[test]
    fn erase_kill_and_tabs_echo_like_linux() {
        let mut l = Ldisc::new();
        feed(&mut l, b"ab\x04");
        read(&mut l, 2);
        out(&mut l);
        // Same sequence as a Linux 6.x run: column 2 after "ab".
        feed(&mut l, b"x\x7fy\x15z\tq\x7f\x7f\n");
        assert_eq!(out(&mut l), b"x\x08 \x08y\x08 \x08z\tq\x08 \x08\x08\x08\x08\x08\x08\r\n");
        assert_eq!(read(&mut l, 100).unwrap(), b"z\n");
    }

    #[test]
    fn kill_without_echoke_echoes_the_char() {
        let mut l = Ldisc::new();
        l.termios.c_lflag &= !ECHOKE;
        feed(&mut l, b"ab\x15c\n");
        assert_eq!(out(&mut l), b"ab^U\r\nc\r\n");
        assert_eq!(read(&mut l, 100).unwrap(), b"c\n");
    }

    #[test]
    fn word_erase_and_lnext() {
        let mut l = Ldisc::new();
        feed(&mut l, b"one two\x17three \x16\x03\n");
        assert_eq!(read(&mut l, 100).unwrap(), b"one three \x03\n");
    }

    #[test]
    fn isig_flushes_and_signals() {
        let mut l = Ldisc::new();
        feed(&mut l, b"line\n");
        out(&mut l);
        // Echoes pending in the same batch are dropped with the input.
        assert_eq!(feed(&mut l, b"abc\x03"), alloc::vec![SIGINT]);
        assert_eq!(out(&mut l), b"^C");
        assert_eq!(read(&mut l, 100), None);
        assert_eq!(feed(&mut l, b"\x1c\x1a"), alloc::vec![SIGQUIT, SIGTSTP]);
        l.termios.c_lflag |= NOFLSH;
        feed(&mut l, b"x\n");
        assert_eq!(feed(&mut l, b"\x03"), alloc::vec![SIGINT]);
        assert_eq!(read(&mut l, 100).unwrap(), b"x\n");
    }

    #[test]
    fn raw_mode_echo_shows_newline_as_control() {
        let mut l = Ldisc::new();
        let mut t = l.termios;
        t.c_lflag &= !ICANON;
        l.set_termios(t);
        feed(&mut l, b"k\nl\r");
        assert_eq!(out(&mut l), b"k^Jl\r\n");
        assert_eq!(read(&mut l, 100).unwrap(), b"k\nl\n");
    }

    #[test]
    fn mode_switch_keeps_data() {
        let mut l = Ldisc::new();
        raw(&mut l);
        feed(&mut l, b"pq");
        let mut t = l.termios;
        t.c_lflag |= ICANON;
        l.set_termios(t);
        assert!(l.readable(false));
        assert_eq!(read(&mut l, 100).unwrap(), b"pq");
        feed(&mut l, b"half");
        raw(&mut l);
        assert_eq!(read(&mut l, 100).unwrap(), b"half");
    }

    #[test]
    fn vmin_for_poll() {
        let mut l = Ldisc::new();
        let mut t = l.termios;
        t.c_lflag &= !(ICANON | ECHO);
        t.c_cc[VMIN] = 3;
        l.set_termios(t);
        feed(&mut l, b"ab");
        assert!(l.readable(false));
        assert!(!l.readable(true));
        feed(&mut l, b"c");
        assert!(l.readable(true));
    }

    #[test]
    fn output_processing() {
        let mut l = Ldisc::new();
        assert_eq!(l.write_output(b"a\nb"), 3);
        assert_eq!(out(&mut l), b"a\r\nb");
        let mut t = l.termios;
        t.c_oflag = OPOST | XTABS;
        l.set_termios(t);
        l.write_output(b"\tx");
        assert_eq!(out(&mut l), b"   \x20\x20\x20\x20x");
        t.c_oflag = 0;
        l.set_termios(t);
        l.write_output(b"\n");
        assert_eq!(out(&mut l), b"\n");
    }

    #[test]
    fn queues_are_bounded() {
        let mut l = Ldisc::new();
        raw(&mut l);
        let big = alloc::vec![b'x'; QUEUE_SIZE + 10];
        assert_eq!(l.write_input(&big), QUEUE_SIZE);
        l.receive();
        // The read buffer takes 4095 bytes; the rest waits its turn.
        assert_eq!(l.inq(), N_TTY_BUF_SIZE - 1);
        assert_eq!(l.input_room(), N_TTY_BUF_SIZE - 1);
        assert_eq!(l.write_output(&big), QUEUE_SIZE);
        assert_eq!(l.output_room(), 0);
    }

    #[test]
    fn long_canonical_line_keeps_accepting_edits() {
        let mut l = Ldisc::new();
        l.termios.c_lflag &= !ECHO;
        let long = alloc::vec![b'a'; 5000];
        feed(&mut l, &long);
        feed(&mut l, b"\x7fb\n");
        let line = read(&mut l, 10000).unwrap();
        assert_eq!(line.len(), N_TTY_BUF_SIZE);
        assert_eq!(&line[line.len() - 3..], b"ab\n");
    }

    #[test]
    fn flow_control() {
        let mut l = Ldisc::new();
        feed(&mut l, b"\x13");
        assert!(l.stopped);
        assert_eq!(l.write_output(b"x"), 0);
        feed(&mut l, b"\x11");
        assert!(!l.stopped);
        assert_eq!(l.write_output(b"x"), 1);
        assert_eq!(read(&mut l, 10), None);
    }

    #[test]
    fn packet_status() {
        let mut l = Ldisc::new();
        l.packet = true;
        feed(&mut l, b"\x13");
        assert_eq!(l.pkt_status, TIOCPKT_STOP);
        feed(&mut l, b"\x11");
        assert_eq!(l.pkt_status, TIOCPKT_START);
        l.pkt_status = 0;
        l.flush_input();
        assert_eq!(l.pkt_status, TIOCPKT_FLUSHREAD);
    }
}
