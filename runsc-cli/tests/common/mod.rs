//! What the end-to-end tests share: running a command with a time limit and
//! collecting its output, comparing it with what it must print, and the
//! python3 programs both the host's and the Debian root's python run.

#![allow(dead_code)] // each test crate uses its own part of this

pub mod py;

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Long enough for a loaded CI machine; only a hang gets near it.
pub const TIMEOUT: Duration = Duration::from_secs(240);

pub struct Out {
    /// The exit status, or 128+N for signal N (as `rvisor do` reports it).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` with stdin from /dev/null in a process group of its own and
/// collects its output. On timeout, or once it has exited, the whole group
/// is killed (so a native script's stray background jobs cannot hold the
/// pipes open).
pub fn run(mut cmd: Command, what: &str, timeout: Duration) -> Out {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let pid = child.id() as libc::pid_t;
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            String::from_utf8_lossy(&v).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let mut timed_out = false;
    loop {
        // WNOWAIT: the leader stays a zombie, so its group id cannot be
        // reused before the kill below.
        // SAFETY: siginfo_t is plain data; all zeroes is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid, writable siginfo_t.
        let r = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) };
        assert_eq!(r, 0, "{what}: waitid: {}", std::io::Error::last_os_error());
        // SAFETY: waitid filled `info` (si_pid stays 0 if nothing exited).
        if unsafe { info.si_pid() } != 0 {
            break;
        }
        if start.elapsed() > timeout {
            timed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill has no memory effects; the group is the child's own.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    let status = child.wait().expect("wait");
    let o = Out {
        code: status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    assert!(!timed_out, "{what}: still running after {timeout:?}\nstdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
    o
}

pub fn assert_out(o: &Out, where_: &str, stdout: &str, code: i32) {
    assert!(
        o.stdout == stdout && o.code == code,
        "{where_}: exit {} (want {code})\n--- stdout:\n{}--- want:\n{stdout}--- stderr:\n{}",
        o.code,
        o.stdout,
        o.stderr
    );
    assert!(!o.stderr.contains("sentry panic"), "{where_}: {}", o.stderr);
}

