//! `--console-socket`: a new pseudo-terminal whose master goes to the
//! client over the unix socket (SCM_RIGHTS, the slave's name as payload,
//! as runc does) and whose slave becomes the process's stdio.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

/// Signals the terminal sends its session (^C, ^\\, ^Z, a new window
/// size, hangup of the master): they reach the VMM, which owns the host
/// side of the pty, and are passed to the sandbox's foreground group.
const FORWARDED: [nix::sys::signal::Signal; 5] = {
    use nix::sys::signal::Signal::*;
    [SIGINT, SIGQUIT, SIGTSTP, SIGWINCH, SIGHUP]
};

/// Makes `slave` the controlling terminal of our (new) session, with us
/// in the foreground, and blocks the terminal's signals in this thread
/// and the threads it starts (`forward_signals` takes them).
#[allow(unsafe_code)]
pub fn take_terminal(slave: &OwnedFd) -> Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal); the
    // fd is a pty slave we own.
    let r = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).context("making the console the controlling terminal");
    }
    let _ = nix::unistd::tcsetpgrp(slave, nix::unistd::getpgrp());
    let mut set = nix::sys::signal::SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(nix::sys::signal::Signal::SIGTTOU);
    set.add(nix::sys::signal::Signal::SIGTTIN);
    set.thread_block().context("blocking terminal signals")?;
    Ok(())
}

/// Signals an exec proxy passes on: the terminal's when it has one, and
/// the ones a client uses to stop a process.
const PROXY_FORWARDED: [nix::sys::signal::Signal; 6] = {
    use nix::sys::signal::Signal::*;
    [SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2]
};

/// Blocks the signals an exec proxy forwards (before any thread starts);
/// returns the set for `forward_to`.
pub fn block_forwarded(terminal: bool) -> Result<Option<nix::sys::signal::SigSet>> {
    let mut set = nix::sys::signal::SigSet::empty();
    for s in PROXY_FORWARDED {
        set.add(s);
    }
    if terminal {
        for s in FORWARDED {
            set.add(s);
        }
    }
    set.thread_block().context("blocking forwarded signals")?;
    Ok(Some(set))
}

/// Passes signals in `set` to sandbox process `pid` (to its terminal's
/// foreground group when `terminal`), until the proxy exits.
pub fn forward_to(sock: &Path, set: nix::sys::signal::SigSet, pid: u32, terminal: bool) {
    while let Ok(sig) = set.wait() {
        let req = super::wire::Request::Signal { signal: sig as i32, all: false, pid };
        let req = if terminal { super::wire::Request::ConsoleSignal { signal: sig as i32, pid } } else { req };
        let _ = super::wire::call(sock, &req);
    }
}

/// Blocks the terminal's signals in this thread and the threads it
/// starts, for `forward_signals` (`rvisor do` on a terminal).
pub fn block_terminal_signals() -> Result<()> {
    let mut set = nix::sys::signal::SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.thread_block().context("blocking terminal signals")
}

/// Passes terminal signals to the sandbox until it ends. `stop_self`:
/// a ^Z the sandbox's init would stop for at its default action stops
/// this process instead (`rvisor do`: the host's shell gets its job back
/// and `fg` resumes it).
pub fn forward_signals(ctl: &platform_kvm::Controller, stop_self: bool) {
    let mut set = nix::sys::signal::SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    while ctl.ended().is_none() {
        let Ok(sig) = set.wait() else { break };
        let ask = u64::from(stop_self && sig == nix::sys::signal::Signal::SIGTSTP);
        let r = ctl.request(abi::control::Kind::Signal, [sig as u64, 0, 2, ask, 0, 0, 0, 0], &[]);
        if matches!(r, Ok((1, _))) && ask == 1 {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGSTOP);
        }
    }
}

/// Makes the pty, hands the master to `socket` and returns the slave
/// three times (stdin, stdout, stderr). `size` is (rows, columns).
pub fn make_console(socket: &Path, size: Option<(u16, u16)>) -> Result<[OwnedFd; 3]> {
    let md = std::fs::metadata(socket).with_context(|| format!("console socket {}", socket.display()))?;
    if !std::os::unix::fs::FileTypeExt::is_socket(&md.file_type()) {
        bail!("console socket {} is not a socket", socket.display());
    }
    let ws = size.map(|(rows, cols)| nix::pty::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 });
    let pty = nix::pty::openpty(ws.as_ref(), None).context("opening a pseudo-terminal")?;
    let name = nix::unistd::ttyname(&pty.slave).map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| "/dev/ptmx".into());
    let conn = UnixStream::connect(socket).with_context(|| format!("connecting to console socket {}", socket.display()))?;
    let iov = [IoSlice::new(name.as_bytes())];
    let fds = [pty.master.as_raw_fd()];
    sendmsg::<()>(conn.as_raw_fd(), &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)
        .context("sending the terminal to the console socket")?;
    drop(pty.master);
    let a = pty.slave.try_clone()?;
    let b = pty.slave.try_clone()?;
    Ok([pty.slave, a, b])
}
