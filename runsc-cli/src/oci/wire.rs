//! The control socket between the CLI and a container's VMM: frames of a
//! u32 little-endian length and a JSON body, the first one of a request
//! optionally carrying file descriptors (SCM_RIGHTS): an exec's stdio.

use std::io::{IoSlice, IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use anyhow::{bail, Context, Result};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{Deserialize, Serialize};

/// Largest frame accepted (an exec with a big environment fits).
const MAX_FRAME: usize = 4 << 20;

/// A request to the VMM.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    Start,
    /// `pid` 0 = the container's init.
    Signal { signal: i32, all: bool, pid: u32 },
    /// Start a process; its stdio comes as three fds with the frame.
    /// Answered with `started`, then `exited` when it ends.
    /// `settings`: the process's capabilities, rlimits and
    /// no_new_privs, as `boot::process_settings` writes them.
    Exec {
        args: Vec<String>,
        env: Vec<String>,
        cwd: String,
        uid: u32,
        gid: u32,
        groups: Vec<u32>,
        #[serde(default)]
        settings: Vec<String>,
    },
    Ps,
    Pause,
    Resume,
    /// A terminal's signal for the foreground group of the terminal that
    /// is process `pid`'s stdin.
    ConsoleSignal { signal: i32, pid: u32 },
    /// New limits the sentry keeps: the pids limit (0: none) if it
    /// changes, and `cg.KEY=VALUE` settings for the others.
    SetLimits { pids: Option<u64>, settings: Vec<String> },
}

/// One process of `ps`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub state: String,
    pub comm: String,
    pub args: String,
}

/// An answer from the VMM.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Ok,
    Error { msg: String },
    Started { pid: u32 },
    /// The wait status of an exec'd process.
    Exited { status: u32 },
    Ps { procs: Vec<ProcInfo> },
}

/// Sends one frame with `fds` attached.
pub fn send<T: Serialize>(s: &UnixStream, msg: &T, fds: &[RawFd]) -> Result<()> {
    let body = serde_json::to_vec(msg)?;
    let mut frame = (body.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&body);
    let mut sent = 0;
    while sent < frame.len() {
        let iov = [IoSlice::new(&frame[sent..])];
        let cmsg = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage] = if sent == 0 && !fds.is_empty() { &cmsg } else { &[] };
        let n = sendmsg::<()>(s.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None).context("control socket send")?;
        if n == 0 {
            bail!("control socket closed");
        }
        sent += n;
    }
    Ok(())
}

/// Receives one frame and the fds that came with it. `Ok(None)` at EOF.
#[allow(unsafe_code)]
pub fn recv<T: for<'de> Deserialize<'de>>(s: &mut UnixStream) -> Result<Option<(T, Vec<OwnedFd>)>> {
    let mut len = [0u8; 4];
    let mut fds = Vec::new();
    let mut got = 0;
    while got < 4 {
        let mut cbuf = nix::cmsg_space!([RawFd; 8]);
        let mut iov = [IoSliceMut::new(&mut len[got..])];
        let msg = recvmsg::<()>(s.as_raw_fd(), &mut iov, Some(&mut cbuf), MsgFlags::MSG_CMSG_CLOEXEC).context("control socket receive")?;
        let n = msg.bytes;
        for c in msg.cmsgs().context("control message")? {
            if let ControlMessageOwned::ScmRights(v) = c {
                // SAFETY: SCM_RIGHTS gave us these new descriptors; we own them.
                fds.extend(v.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            bail!("control socket closed mid-frame");
        }
        got += n;
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        bail!("control frame too large ({len} bytes)");
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).context("control socket receive")?;
    let v = serde_json::from_slice(&body).context("malformed control message")?;
    Ok(Some((v, fds)))
}

/// Connects to a VMM's control socket. The path may be longer than a
/// sockaddr allows, so it is reached through its directory's fd.
pub fn connect(path: &std::path::Path) -> Result<UnixStream> {
    let dir = path.parent().context("socket path")?;
    let name = path.file_name().context("socket path")?;
    let d = std::fs::File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let short = format!("/proc/self/fd/{}/{}", d.as_raw_fd(), name.to_string_lossy());
    UnixStream::connect(&short).with_context(|| format!("connecting to the sandbox at {}", path.display()))
}

/// Binds a VMM's control socket (see `connect`).
pub fn bind(path: &std::path::Path) -> Result<std::os::unix::net::UnixListener> {
    let dir = path.parent().context("socket path")?;
    let name = path.file_name().context("socket path")?;
    let d = std::fs::File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let short = format!("/proc/self/fd/{}/{}", d.as_raw_fd(), name.to_string_lossy());
    let _ = std::fs::remove_file(path);
    std::os::unix::net::UnixListener::bind(&short).with_context(|| format!("binding {}", path.display()))
}

/// One request, one answer.
pub fn call(path: &std::path::Path, req: &Request) -> Result<Reply> {
    let mut s = connect(path)?;
    send(&s, req, &[])?;
    match recv::<Reply>(&mut s)? {
        Some((r, _)) => Ok(r),
        None => bail!("the sandbox closed the control connection"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_with_fds() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let devnull = std::fs::File::open("/dev/null").unwrap();
        let req = Request::Exec {
            args: vec!["sh".into(), "-c".into(), "x".repeat(100_000)],
            env: vec!["A=b".into()],
            cwd: "/".into(),
            uid: 1,
            gid: 2,
            groups: vec![3],
            settings: vec!["cap_eff=0".into()],
        };
        send(&a, &req, &[devnull.as_raw_fd(); 3]).unwrap();
        let (got, fds) = recv::<Request>(&mut b).unwrap().unwrap();
        assert_eq!(fds.len(), 3);
        match got {
            Request::Exec { args, uid, .. } => {
                assert_eq!(args[2].len(), 100_000);
                assert_eq!(uid, 1);
            }
            other => panic!("{other:?}"),
        }
        drop(a);
        assert!(recv::<Request>(&mut b).unwrap().is_none());
    }

    #[test]
    fn garbage_is_an_error() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        use std::io::Write;
        a.write_all(&[5, 0, 0, 0, b'{', b'x', b'y', b'z', b'!']).unwrap();
        assert!(recv::<Request>(&mut b).is_err());
        a.write_all(&[0xff, 0xff, 0xff, 0xff]).unwrap();
        assert!(recv::<Request>(&mut b).is_err());
    }
}
