//! A gofer that dies while the sandbox runs: file calls that need it fail
//! with EIO, files already open keep working (the VMM holds their fds),
//! and the sandbox ends normally — it never hangs.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Pids of the processes whose parent is `parent`.
fn children(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // "pid (comm) state ppid ...": the comm may hold spaces.
        let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
        if after.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn a_dead_gofer_gives_eio_and_the_sandbox_still_ends() {
    let dir = std::env::temp_dir().join(format!("rvisor-goferdeath-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("root/bin")).unwrap();
    std::fs::create_dir_all(dir.join("root/etc")).unwrap();
    std::fs::copy("/bin/busybox", dir.join("root/bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", dir.join("root/bin/sh")).unwrap();
    std::fs::write(dir.join("root/etc/a"), "first\n").unwrap();
    std::fs::write(dir.join("root/etc/b"), "second\n").unwrap();
    // Not world-readable: each open of it is the gofer's (unchanging
    // world-readable files of the root are read from the sentry's page
    // cache, which needs no gofer once filled).
    std::fs::set_permissions(dir.join("root/etc/b"), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    // The shell keeps /etc/a open on fd 3 and opens /etc/b until that
    // fails (builtins only: no exec needs the gofer afterwards).
    let script = "exec 3</etc/a; echo ready; while read -r b </etc/b 2>/dev/null; do :; done; \
                  read -r a <&3; echo \"open file: $a\"; read -r b </etc/b; echo \"rc=$?\"";
    let mut child = Command::new(env!("CARGO_BIN_EXE_rvisor"))
        .args(["do", "--root", dir.join("root").to_str().unwrap(), "--", "/bin/sh", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rvisor = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 6];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    assert_eq!(&first, b"ready\n");
    let gofers: Vec<u32> = children(rvisor)
        .into_iter()
        .filter(|p| std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == b"gofer")))
        .collect();
    assert_eq!(gofers.len(), 1, "one gofer child of rvisor do");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(gofers[0] as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the sandbox hangs without its gofer");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(out, "open file: first\nrc=1\n", "{err}");
    assert!(err.contains("Input/output error"), "{err}");
    assert!(status.success() || status.code().is_some(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
