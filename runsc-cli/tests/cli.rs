//! The `rvisor` command as a user runs it.

use std::process::{Command, Output, Stdio};

fn rvisor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rvisor"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running rvisor")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn version_is_three_lines_like_runc() {
    let o = rvisor(&["--version"]);
    assert!(o.status.success());
    let s = stdout(&o);
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 3, "{s}");
    assert!(lines[0].starts_with("rvisor version "));
}

#[test]
fn help_syscalls_comes_from_the_table() {
    let o = rvisor(&["help", "syscalls"]);
    assert!(o.status.success());
    let s = stdout(&o);
    assert!(s.contains("openat") && s.contains("mmap") && s.contains("syscalls implemented"), "{s}");
}

#[test]
fn unknown_flags_are_named() {
    let o = rvisor(&["do", "--no-such-flag", "--", "/bin/true"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--no-such-flag"), "{}", stderr(&o));
}

#[test]
fn env_and_cwd_reach_the_program() {
    let o = rvisor(&["do", "--cwd", "/etc", "--env", "RVISOR_T=abc", "--", "/bin/busybox", "sh", "-c", "true"]);
    // sh needs fork for most things; `env` and `pwd` are simpler applets.
    let _ = o;
    let o = rvisor(&["do", "--env", "RVISOR_T=abc", "--", "/bin/busybox", "env"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).lines().any(|l| l == "RVISOR_T=abc"));
    let o = rvisor(&["do", "--cwd", "/etc", "--", "/bin/busybox", "pwd"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "/etc\n");
}

#[test]
fn bad_env_and_cwd_are_refused() {
    let o = rvisor(&["do", "--env", "NOEQUALS", "--", "/bin/busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    let o = rvisor(&["do", "--cwd", "/definitely/not/here", "--", "/bin/busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
}

#[test]
fn missing_commands_exit_127() {
    let o = rvisor(&["do", "--", "no-such-command-anywhere"]);
    assert_eq!(o.status.code(), Some(127));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    let o = rvisor(&["do", "--", "/no/such/file"]);
    assert_eq!(o.status.code(), Some(127));
}

#[test]
fn non_executables_exit_126() {
    // A directory and a non-executable file.
    let o = rvisor(&["do", "--", "/etc/passwd"]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

#[test]
fn a_sentry_panic_ends_the_sandbox_with_a_message() {
    let o = rvisor(&["--debug-sentry-panic", "do", "--", "/bin/busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    let e = stderr(&o);
    assert!(e.contains("sentry panic") && e.contains("--debug-sentry-panic"), "{e}");
    // The backtrace is symbolized from the embedded image.
    assert!(e.contains("kmain"), "{e}");
}

#[test]
fn strace_logs_syscalls() {
    let o = rvisor(&["--strace", "do", "--", "/bin/busybox", "true"]);
    assert!(o.status.success());
    let e = stderr(&o);
    assert!(e.contains("exit_group("), "{e}");
}

/// Random syscalls with hostile arguments (syscall-tests/fuzz/sysfuzz.c)
/// must never crash the sentry or hang the sandbox. Run only inside the
/// sandbox: natively it would throw random syscalls at the host. Calls
/// that block are made too and must give way to a signal (the fuzzer
/// exits 1 naming a call that does not); a sandbox that does not finish
/// at all is a hang.
#[test]
fn random_syscalls_do_not_break_the_sentry() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let bin = dir.join("sysfuzz");
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../syscall-tests/fuzz/sysfuzz.c");
    let st = Command::new("gcc").args(["-O1", "-static", "-o"]).arg(&bin).arg(src).status().expect("gcc is needed");
    assert!(st.success());
    // Each batch is a child with its own random sequence of 3000 rounds
    // (a call each, less the few calls the fuzzer never makes).
    let (rounds, batches) = (3000u64, 64u64);
    for seed in ["1", "7", "42", "1234", "5", "99", "2024", "31337"] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rvisor"));
        cmd.args(["do", "--", bin.to_str().unwrap(), seed, &rounds.to_string(), &batches.to_string()]);
        let o = common::run(cmd, &format!("sysfuzz seed {seed}"), std::time::Duration::from_secs(120));
        assert_eq!(o.code, 0, "seed {seed}: {}", o.stderr);
        assert!(!o.stderr.contains("sentry panic"), "seed {seed}: {}", o.stderr);
        // Random writes may reach stdout before the parent's last word.
        assert!(o.stdout.ends_with("survived\n"), "seed {seed}: {}", o.stdout);
        // "sysfuzz: seed S: B batches, C calls, I interrupted, ..."
        let summary = o.stderr.rsplit("sysfuzz: seed ").next().unwrap_or("");
        let count = |what: &str| -> u64 {
            let words: Vec<&str> = summary.split([' ', ',']).filter(|w| !w.is_empty()).collect();
            let at = words.iter().position(|w| *w == what).unwrap_or_else(|| panic!("seed {seed}: no summary: {}", o.stderr));
            words[at - 1].parse().unwrap_or_else(|_| panic!("seed {seed}: bad summary: {}", o.stderr))
        };
        eprintln!("sysfuzz: seed {}", summary.lines().next().unwrap_or(""));
        // Most calls ran, and some of them blocked and were interrupted.
        assert!(count("calls") > rounds * batches / 2, "seed {seed}: {}", o.stderr);
        assert!(count("interrupted") > 0, "seed {seed}: {}", o.stderr);
    }
}

/// A free TCP port on the host's loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// One HTTP GET with a plain TcpStream; the whole answer, or None.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn a_server_in_the_sandbox_serves_the_host() {
    // `rvisor do` shares the host's network: python's http.server in the
    // sandbox answers a client on the host.
    if !std::path::Path::new("/usr/bin/python3").exists() {
        eprintln!("python3 missing; skipped");
        return;
    }
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rvisor"))
        .args(["do", "--cwd", "/etc", "--", "/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rvisor do");
    let mut answer = None;
    for _ in 0..200 {
        answer = http_get(port, "/os-release");
        if answer.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let answer = answer.expect("no answer from the sandbox");
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    let host = std::fs::read_to_string("/etc/os-release").unwrap();
    assert!(answer.ends_with(&host), "{answer}");
}

#[test]
fn network_none_leaves_only_loopback() {
    let o = rvisor(&["--network", "none", "do", "--", "/bin/busybox", "ip", "-o", "link"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let links: Vec<String> = stdout(&o).lines().map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()).collect();
    assert_eq!(links, vec!["lo".to_string()], "{}", stdout(&o));
    // Loopback is up: a TCP round trip inside works.
    let o = rvisor(&["--network", "none", "do", "--", "/bin/busybox", "sh", "-c", "busybox nc -l -p 7777 > /tmp/got & sleep 0.3; echo ping | busybox nc 127.0.0.1 7777; wait; cat /tmp/got"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "ping\n");
}

mod common;
mod terminal;

/// `rvisor do` of an interactive shell in a terminal, as a person uses
/// it: the host terminal is the sandbox's /dev/pts/N, the sandbox makes
/// its own ptys beside it, ^C ends and ^Z stops the foreground job, not
/// the shell.
#[test]
fn an_interactive_shell_on_a_terminal() {
    use std::os::unix::process::CommandExt;
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let name = nix::unistd::ttyname(&pty.slave).expect("ttyname").to_string_lossy().into_owned();
    let host_n: u32 = name.strip_prefix("/dev/pts/").and_then(|n| n.parse().ok()).expect("a /dev/pts slave");
    let stdio = || Stdio::from(pty.slave.try_clone().unwrap());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rvisor"));
    cmd.args(["do", "--env", "PS1=$ ", "--", "/bin/busybox", "sh", "-i"]).stdin(stdio()).stdout(stdio()).stderr(stdio());
    // SAFETY: between fork and exec only async-signal-safe calls:
    // setsid and ioctl, on the child's own stdin.
    unsafe {
        cmd.pre_exec(|| {
            // The terminal's ^C goes to rvisor, as it would from a shell.
            nix::unistd::setsid()?;
            if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = terminal::Reaped(cmd.spawn().expect("running rvisor"));
    drop(pty.slave);
    let mut t = terminal::Term::new(pty.master);
    assert!(t.expect("$ "), "no prompt: {}", t.text());
    t.send("tty\n");
    assert!(t.expect(&format!("\n{name}\n")), "{}", t.text());
    // A sandbox pty takes the lowest number the host terminal leaves.
    t.send("exec 3<>/dev/ptmx; echo pts: $(ls /dev/pts); exec 3>&-; echo pts: $(ls /dev/pts)\n");
    let mut both = [host_n.to_string(), u32::from(host_n == 0).to_string(), "ptmx".to_string()];
    both.sort();
    assert!(t.expect(&format!("\npts: {}\npts: {host_n} ptmx\n", both.join(" "))), "{}", t.text());
    t.send("sh -c 'echo started; exec sleep 30'\n");
    assert!(t.expect("\nstarted\n"), "{}", t.text());
    t.send("\x03");
    t.send("echo rc=$?\n");
    assert!(t.expect("rc=130"), "^C did not end the foreground job: {}", t.text());
    t.send("sh -c 'echo started; exec sleep 30'\n");
    assert!(t.expect("\nstarted\n"), "{}", t.text());
    t.send("\x1a");
    assert!(t.expect("Stopped"), "^Z did not stop the foreground job: {}", t.text());
    // (A stopped job left behind would make `exit` below refuse.)
    t.send("kill -9 %1\n");
    // Nothing outside the sandbox took the terminal's signals (the gofer
    // still serves files).
    t.send("/bin/busybox echo files-$((2+2))\n");
    assert!(t.expect("\nfiles-4\n"), "{}", t.text());
    t.send("exit 5\n");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break st;
        }
        if started.elapsed() > std::time::Duration::from_secs(20) {
            panic!("the shell did not exit: {}", t.text());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(5), "{}", t.text());
}

/// A field of /proc/PID/status, such as "Seccomp".
fn status_field(pid: u32, name: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).unwrap_or("").trim().to_string()
}

/// The child processes of `pid` whose command line holds `word`.
fn children_with(pid: u32, word: &str) -> Vec<u32> {
    let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    kids.split_whitespace()
        .filter_map(|k| k.parse().ok())
        .filter(|k| std::fs::read_to_string(format!("/proc/{k}/cmdline")).unwrap_or_default().contains(word))
        .collect()
}

/// While a `rvisor do` sandbox runs, its VMM and (as root) its gofer are
/// under host seccomp filters (`Seccomp: 2`, filter mode); the debugging
/// escape hatch `--host-seccomp=off` leaves them without.
#[test]
fn the_vmm_and_the_gofer_run_under_host_seccomp_filters() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    for (flag, want) in [(None, "2"), (Some("--host-seccomp=off"), "0")] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rvisor"));
        cmd.args(flag).args(["do", "--", "sleep", "60"]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = terminal::Reaped(cmd.spawn().expect("running rvisor"));
        let vmm = child.0.id();
        // The vCPU threads start right after the filter goes on.
        let t = std::time::Instant::now();
        while !std::fs::read_dir(format!("/proc/{vmm}/task"))
            .map(|d| d.flatten().any(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.starts_with("vcpu"))))
            .unwrap_or(false)
        {
            assert!(t.elapsed() < std::time::Duration::from_secs(30), "no vCPU thread in {vmm}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(status_field(vmm, "Seccomp"), want, "the VMM with {flag:?}");
        if root {
            let gofers = children_with(vmm, "gofer");
            assert_eq!(gofers.len(), 1, "one gofer");
            assert_eq!(status_field(gofers[0], "Seccomp"), want, "the gofer with {flag:?}");
        }
        let _ = child.0.kill();
        let _ = child.0.wait();
    }
}
