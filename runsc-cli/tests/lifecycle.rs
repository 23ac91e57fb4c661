//! The OCI lifecycle as runc's clients drive it: create, start, state,
//! kill, exec, ps, pause/resume, delete, run — on a busybox bundle, with
//! real sandboxes. And bad input: each gets a runc-style error and leaves
//! nothing behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Env {
    dir: PathBuf,
    root: PathBuf,
}

impl Env {
    fn new(name: &str) -> Env {
        let dir = std::env::temp_dir().join(format!("rvisor-lc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let rootfs = dir.join("bundle/rootfs");
        for d in ["bin", "etc", "tmp", "proc", "dev", "root"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for a in ["sh", "echo", "cat", "sleep", "id", "hostname", "ls", "trap", "true", "false"] {
            let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a));
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        Env { root: dir.join("state"), dir }
    }

    fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }

    fn config(&self, args: &[&str], extra: &str) {
        self.config_mounts(args, "", extra);
    }

    /// `config` with more mounts (JSON objects, each after a comma).
    fn config_mounts(&self, args: &[&str], mounts: &str, extra: &str) {
        let args = serde_json::to_string(args).unwrap();
        let cfg = format!(
            r#"{{"ociVersion":"1.0.2","process":{{"terminal":false,"user":{{"uid":0,"gid":0}},"args":{args},"env":["PATH=/bin"],"cwd":"/"}},"root":{{"path":"rootfs"}},"hostname":"lc","mounts":[{{"destination":"/proc","type":"proc","source":"proc"}},{{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["mode=755"]}}{mounts}]{extra}}}"#
        );
        std::fs::write(self.bundle().join("config.json"), cfg).unwrap();
    }

    /// Runs rvisor with stdio on files (a VMM inherits them; pipes would
    /// keep a reader waiting for the sandbox's end). Returns (status, stdout, stderr).
    fn rv(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.dir.join(format!("out-{}", args.join("_").replace('/', "")));
        let err = out.with_extension("err");
        let st = Command::new(env!("CARGO_BIN_EXE_rvisor"))
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .unwrap();
        (st.code().unwrap_or(-1), std::fs::read_to_string(&out).unwrap_or_default(), std::fs::read_to_string(&err).unwrap_or_default())
    }

    fn status(&self, id: &str) -> String {
        let (_, out, _) = self.rv(&["state", id]);
        serde_json::from_str::<serde_json::Value>(&out).ok().and_then(|v| v["status"].as_str().map(String::from)).unwrap_or_default()
    }

    fn wait_status(&self, id: &str, want: &str) -> bool {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if self.status(id) == want {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(&self.root) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.rv(&["delete", "--force", &id]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn bundle_arg(e: &Env) -> String {
    e.bundle().to_string_lossy().into_owned()
}

#[test]
fn create_start_state_delete() {
    let e = Env::new("basic");
    e.config(&["sh", "-c", "echo hello from $(hostname) > /tmp/out; id -u >> /tmp/out"], "");
    let pidfile = e.dir.join("pid");
    let (code, _, err) = e.rv(&["create", "--bundle", &bundle_arg(&e), "--pid-file", pidfile.to_str().unwrap(), "c1"]);
    assert_eq!(code, 0, "{err}");
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(e.status("c1"), "created");
    // A second container with the same id is refused.
    let (code, _, err) = e.rv(&["create", "--bundle", &bundle_arg(&e), "c1"]);
    assert_eq!(code, 1);
    assert!(err.contains("exists"), "{err}");
    let (code, _, err) = e.rv(&["start", "c1"]);
    assert_eq!(code, 0, "{err}");
    assert!(e.wait_status("c1", "stopped"));
    // Writes went through to the bundle's root filesystem.
    let out = std::fs::read_to_string(e.bundle().join("rootfs/tmp/out")).unwrap();
    assert_eq!(out, "hello from lc\n0\n");
    let (code, _, err) = e.rv(&["start", "c1"]);
    assert_eq!(code, 1);
    assert!(err.contains("stopped"), "{err}");
    let (code, _, err) = e.rv(&["kill", "c1", "TERM"]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = e.rv(&["delete", "c1"]);
    assert_eq!(code, 0, "{err}");
    assert!(!e.root.join("c1").exists());
    let (code, _, _) = e.rv(&["state", "c1"]);
    assert_eq!(code, 1);
    // --force on a missing container is not an error (runc's behaviour).
    assert_eq!(e.rv(&["delete", "--force", "c1"]).0, 0);
}

#[test]
fn run_returns_the_exit_status() {
    let e = Env::new("run");
    e.config(&["sh", "-c", "exit 7"], "");
    let (code, _, err) = e.rv(&["run", "--bundle", &bundle_arg(&e), "r1"]);
    assert_eq!(code, 7, "{err}");
    e.config(&["sh", "-c", "kill -9 $$"], "");
    let (code, _, err) = e.rv(&["run", "--bundle", &bundle_arg(&e), "r2"]);
    assert_eq!(code, 137, "{err}");
    e.config(&["/no/such/program"], "");
    let (code, _, err) = e.rv(&["run", "--bundle", &bundle_arg(&e), "r3"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no/such/program"), "{err}");
    assert!(!e.root.join("r3").exists());
}

#[test]
fn kill_exec_ps_pause() {
    let e = Env::new("kill");
    e.config(&["sh", "-c", "trap 'echo got-usr1 >> /tmp/log' USR1; while :; do sleep 0.05; done"], "");
    assert_eq!(e.rv(&["create", "--bundle", &bundle_arg(&e), "k1"]).0, 0);
    assert_eq!(e.rv(&["start", "k1"]).0, 0);
    assert_eq!(e.status("k1"), "running");
    let (code, _, err) = e.rv(&["kill", "k1", "USR1"]);
    assert_eq!(code, 0, "{err}");
    let log = e.bundle().join("rootfs/tmp/log");
    let t = Instant::now();
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("got-usr1") && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(std::fs::read_to_string(&log).unwrap_or_default().contains("got-usr1"));
    // exec: output, exit status, the container's processes visible.
    let (code, out, err) = e.rv(&["exec", "k1", "sh", "-c", "echo in-exec; cat /proc/1/cmdline; exit 5"]);
    assert_eq!(code, 5, "{err}");
    assert!(out.starts_with("in-exec\nsh\0-c"), "{out:?}");
    let (code, out, err) = e.rv(&["ps", "--format", "json", "k1"]);
    assert_eq!(code, 0, "{err}");
    let pids: Vec<u32> = serde_json::from_str(&out).unwrap();
    assert!(pids.contains(&1), "{out}");
    // pause / resume.
    assert_eq!(e.rv(&["pause", "k1"]).0, 0);
    assert_eq!(e.status("k1"), "paused");
    assert_eq!(e.rv(&["pause", "k1"]).0, 1);
    assert_eq!(e.rv(&["resume", "k1"]).0, 0);
    assert_eq!(e.status("k1"), "running");
    // events --stats and update, against the container's cgroup.
    let (code, out, err) = e.rv(&["events", "--stats", "k1"]);
    assert_eq!(code, 0, "{err}");
    let ev: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(ev["type"], "stats");
    assert!(ev["data"]["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0 || !Path::new("/sys/fs/cgroup/memory").exists(), "{out}");
    let (code, _, err) = e.rv(&["update", "--memory", "100003840", "--pids-limit", "50", "k1"]);
    assert_eq!(code, 0, "{err}");
    let limit = Path::new("/sys/fs/cgroup/memory/rvisor/k1/memory.limit_in_bytes");
    if limit.exists() {
        assert_eq!(std::fs::read_to_string(limit).unwrap().trim(), "100003840");
    }
    let (code, out, _) = e.rv(&["list", "-q"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "k1");
    // A running container needs --force to go.
    assert_eq!(e.rv(&["delete", "k1"]).0, 1);
    assert_eq!(e.rv(&["kill", "k1", "KILL"]).0, 0);
    assert!(e.wait_status("k1", "stopped"));
    assert_eq!(e.rv(&["delete", "k1"]).0, 0);
}

#[test]
fn bad_input_gets_runc_style_errors() {
    let e = Env::new("bad");
    let log = e.dir.join("log.json");
    std::fs::create_dir_all(e.bundle()).unwrap();
    std::fs::write(e.bundle().join("config.json"), "{\"ociVersion\": \"1.0.2\", \"process\": ").unwrap();
    let (code, _, err) =
        e.rv(&["--log", log.to_str().unwrap(), "--log-format", "json", "create", "--bundle", &bundle_arg(&e), "b1"]);
    assert_eq!(code, 1);
    assert!(err.contains("malformed"), "{err}");
    let line = std::fs::read_to_string(&log).unwrap();
    let v: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert_eq!(v["level"], "error");
    assert!(!e.root.join("b1").exists());
    e.config(&["true"], "");
    let cfg = std::fs::read_to_string(e.bundle().join("config.json")).unwrap();
    std::fs::write(e.bundle().join("config.json"), cfg.replace("1.0.2", "2.0.0")).unwrap();
    assert!(e.rv(&["create", "--bundle", &bundle_arg(&e), "b2"]).2.contains("ociVersion"));
    e.config(&["true"], "");
    for id in ["a/b", "..", "x y"] {
        let (code, _, err) = e.rv(&["create", "--bundle", &bundle_arg(&e), id]);
        assert_eq!(code, 1, "{id}");
        assert!(err.contains("invalid container id"), "{err}");
    }
    std::fs::rename(e.bundle().join("rootfs"), e.bundle().join("gone")).unwrap();
    let (code, _, err) = e.rv(&["create", "--bundle", &bundle_arg(&e), "b3"]);
    assert_eq!(code, 1);
    assert!(err.contains("rootfs"), "{err}");
    std::fs::rename(e.bundle().join("gone"), e.bundle().join("rootfs")).unwrap();
    let sock = e.dir.join("not-a-socket");
    std::fs::write(&sock, "").unwrap();
    e.config(&["true"], "");
    let cfg = std::fs::read_to_string(e.bundle().join("config.json")).unwrap();
    std::fs::write(e.bundle().join("config.json"), cfg.replace("\"terminal\":false", "\"terminal\":true")).unwrap();
    let (code, _, err) = e.rv(&["create", "--bundle", &bundle_arg(&e), "--console-socket", sock.to_str().unwrap(), "b4"]);
    assert_eq!(code, 1);
    assert!(err.contains("not a socket"), "{err}");
    assert!(!e.root.join("b4").exists());
    assert_eq!(e.rv(&["kill", "nope", "9"]).0, 1);
    assert_eq!(e.rv(&["start", "nope"]).0, 1);
    assert_eq!(e.rv(&["kill", "b1", "NOTASIGNAL"]).0, 1);
    let (code, _, err) = e.rv(&["create", "--no-such-flag", "b5"]);
    assert_ne!(code, 0);
    assert!(err.contains("--no-such-flag"), "{err}");
    // Limits runc refuses, before or while touching the host: an error
    // naming them, and no state directory or cgroup left behind.
    let cases = [
        (r#","linux":{"resources":{"memory":{"limit":-5}}}"#, "memory limit -5"),
        (r#","linux":{"sysctl":{"kernel.nope":"1"}}"#, "kernel.nope"),
        (r#","linux":{"namespaces":[{"type":"user"}],"uidMappings":[{"containerID":0,"hostID":4294967000,"size":65536}],"gidMappings":[{"containerID":0,"hostID":1,"size":1}]}"#, "2^32"),
        (r#","linux":{"resources":{"cpu":{"period":5}}}"#, "cfs_period_us"),
    ];
    for (n, (extra, want)) in cases.iter().enumerate() {
        e.config(&["true"], extra);
        let id = format!("lim{n}");
        let (code, _, err) = e.rv(&["create", "--bundle", &bundle_arg(&e), &id]);
        assert_eq!(code, 1, "{extra}");
        assert!(err.contains(want), "{extra}: {err}");
        assert!(!e.root.join(&id).exists());
        for h in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
            assert!(!h.path().join("rvisor").join(&id).exists(), "{extra}: cgroup left in {}", h.path().display());
        }
    }
}

#[test]
fn a_reader_of_stdin_does_not_stall_the_sandbox() {
    // init waits for a line that never comes; exec and kill must still work.
    let e = Env::new("stdin");
    e.config(&["sh", "-c", "trap 'exit 3' TERM; read x; echo got $x"], "");
    let mut create = Command::new(env!("CARGO_BIN_EXE_rvisor"))
        .arg("--root")
        .arg(&e.root)
        .args(["create", "--bundle", &bundle_arg(&e), "s1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let held = create.stdin.take();
    assert!(create.wait().unwrap().success());
    assert_eq!(e.rv(&["start", "s1"]).0, 0);
    std::thread::sleep(Duration::from_millis(200));
    let (code, out, err) = e.rv(&["exec", "s1", "echo", "exec-ran"]);
    assert_eq!((code, out.as_str()), (0, "exec-ran\n"), "{err}");
    assert_eq!(e.rv(&["kill", "s1", "TERM"]).0, 0);
    assert!(e.wait_status("s1", "stopped"));
    drop(held);
}

#[test]
fn init_ignores_signals_it_does_not_handle() {
    // Like the init of a pid namespace: SIGTERM without a handler does
    // nothing (docker stop then waits and kills), SIGKILL ends it.
    let e = Env::new("init");
    e.config(&["sleep", "100"], "");
    assert_eq!(e.rv(&["create", "--bundle", &bundle_arg(&e), "i1"]).0, 0);
    assert_eq!(e.rv(&["start", "i1"]).0, 0);
    assert_eq!(e.rv(&["kill", "i1", "TERM"]).0, 0);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(e.status("i1"), "running");
    assert_eq!(e.rv(&["kill", "i1", "KILL"]).0, 0);
    assert!(e.wait_status("i1", "stopped"));
}

#[test]
fn overlay2_keeps_writes_in_the_sandbox() {
    let e = Env::new("ovl");
    e.config(&["sh", "-c", "echo in > /tmp/ovl; cat /tmp/ovl"], "");
    let (code, out, err) = e.rv(&["--overlay2", "root:memory", "run", "--bundle", &bundle_arg(&e), "v1"]);
    assert_eq!((code, out.as_str()), (0, "in\n"), "{err}");
    assert!(!e.bundle().join("rootfs/tmp/ovl").exists());
    let (code, _, err) = e.rv(&["run", "--bundle", &bundle_arg(&e), "v2"]);
    assert_eq!(code, 0, "{err}");
    assert!(e.bundle().join("rootfs/tmp/ovl").exists());
}

#[test]
fn mqueue_mount_lists_queues_and_sysctls_apply() {
    let e = Env::new("mq");
    // Creating a file in the mqueue filesystem makes a queue with the
    // default sizes; reading it gives its status line; rm removes it.
    let script = "cat /proc/sys/fs/mqueue/msg_max /proc/sys/fs/mqueue/queues_max; \
                  touch /dev/mqueue/q1 /dev/mqueue/q2; ls /dev/mqueue; cat /dev/mqueue/q1; \
                  ls -l /dev/mqueue/q2 | cut -c1-10; rm /dev/mqueue/q1; ls /dev/mqueue; mkdir /dev/mqueue/d || echo no dirs";
    e.config_mounts(
        &["sh", "-c", script],
        r#",{"destination":"/dev/mqueue","type":"mqueue","source":"mqueue"}"#,
        r#","linux":{"namespaces":[{"type":"ipc"},{"type":"mount"}],"sysctl":{"fs.mqueue.msg_max":"20"}}"#,
    );
    let (code, out, err) = e.rv(&["run", "--bundle", &bundle_arg(&e), "mq1"]);
    assert_eq!(code, 0, "{err}");
    let want = "20\n256\nq1\nq2\nQSIZE:0          NOTIFY:0     SIGNO:0     NOTIFY_PID:0     \n-rw-r--r--\nq2\nno dirs\n";
    assert_eq!(out, want, "{err}");
}

#[test]
fn signals_to_a_detached_exec_reach_its_process() {
    // The shim stops an exec by signalling the pid in --pid-file (our proxy).
    let e = Env::new("execsig");
    e.config(&["sh", "-c", "while :; do sleep 0.05; done"], "");
    assert_eq!(e.rv(&["create", "--bundle", &bundle_arg(&e), "x1"]).0, 0);
    assert_eq!(e.rv(&["start", "x1"]).0, 0);
    let pidfile = e.dir.join("exec.pid");
    let script = "trap 'echo got-term > /tmp/t; exit 0' TERM; touch /tmp/ready; while :; do sleep 0.05; done";
    let (code, _, err) = e.rv(&["exec", "--detach", "--pid-file", pidfile.to_str().unwrap(), "x1", "sh", "-c", script]);
    assert_eq!(code, 0, "{err}");
    let proxy: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    // The trap must be set before the signal comes (a loaded machine may
    // take long to get there).
    let ready = e.bundle().join("rootfs/tmp/ready");
    let start = Instant::now();
    while !ready.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(proxy), nix::sys::signal::Signal::SIGTERM).unwrap();
    let t = e.bundle().join("rootfs/tmp/t");
    let start = Instant::now();
    while !t.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(std::fs::read_to_string(&t).unwrap_or_default(), "got-term\n");
}

#[test]
fn the_seccomp_profile_is_enforced() {
    let e = Env::new("seccomp");
    // mkdir (83) fails with EACCES, chdir with arg checks is allowed, the
    // default allows the rest; then a profile whose default denies.
    let profile = r#","linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13},{"names":["no_such_syscall"],"action":"SCMP_ACT_ERRNO"}]}}"#;
    e.config(&["sh", "-c", "mkdir /tmp/d 2>&1; echo rc=$?; echo ok > /tmp/f && cat /tmp/f"], profile);
    let (code, out, err) = e.rv(&["run", "--bundle", &bundle_arg(&e), "s1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "mkdir: can't create directory '/tmp/d': Permission denied\nrc=1\nok\n");
    let kill = r#","linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_KILL_PROCESS"}]}}"#;
    e.config(&["sh", "-c", "echo $PPID"], kill);
    let (code, _, err) = e.rv(&["run", "--bundle", &bundle_arg(&e), "s2"]);
    assert_eq!(code, 128 + 31, "{err}");
    let bad = r#","linux":{"seccomp":{"defaultAction":"SCMP_ACT_BOGUS"}}"#;
    e.config(&["true"], bad);
    let (code, _, err) = e.rv(&["run", "--bundle", &bundle_arg(&e), "s3"]);
    assert_eq!(code, 1);
    assert!(err.contains("config.json"), "{err}");
    assert!(!e.root.join("s3").exists());
}

/// runc's conversion of the profile: its flags are accepted, an unknown
/// one is refused with runc's message and nothing is left; two
/// conditions on the same argument are alternatives (runc adds one rule
/// per condition), on different arguments both must hold.
#[test]
fn seccomp_flags_and_conditions_as_runc() {
    let e = Env::new("scflags");
    let or = r#","linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW","SECCOMP_FILTER_FLAG_TSYNC"],"syscalls":[{"names":["kill"],"action":"SCMP_ACT_ERRNO","args":[{"index":1,"value":0,"op":"SCMP_CMP_EQ"},{"index":1,"value":10,"op":"SCMP_CMP_EQ"}]},{"names":["kill"],"action":"SCMP_ACT_ERRNO","errnoRet":22,"args":[{"index":1,"value":12,"op":"SCMP_CMP_EQ"},{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]}]}}"#;
    let script = "trap '' USR1 USR2; kill -0 $$ 2>/dev/null; echo zero=$?; kill -USR1 $$ 2>/dev/null; echo usr1=$?; sleep 5 & kill -USR2 $! 2>/dev/null; echo usr2-child=$?; kill -USR2 $$ 2>/dev/null; echo usr2-self=$?";
    e.config(&["sh", "-c", script], or);
    let (code, out, err) = e.rv(&["run", "--bundle", &bundle_arg(&e), "f1"]);
    assert_eq!(code, 0, "{err}");
    // USR2 to pid 1 is refused because both conditions hold ($$ is 1).
    assert_eq!(out, "zero=1\nusr1=1\nusr2-child=0\nusr2-self=1\n");
    let bogus = r#","linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_BOGUS"]}}"#;
    e.config(&["true"], bogus);
    let (code, _, err) = e.rv(&["create", "--bundle", &bundle_arg(&e), "f2"]);
    assert_eq!(code, 1);
    assert!(err.contains("seccomp flag SECCOMP_FILTER_FLAG_BOGUS is not known to runc"), "{err}");
    assert!(!e.root.join("f2").exists());
    let notify = r#","linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_NOTIFY"}]}}"#;
    e.config(&["true"], notify);
    let (code, _, err) = e.rv(&["create", "--bundle", &bundle_arg(&e), "f3"]);
    assert_eq!(code, 1);
    assert!(err.contains("SCMP_ACT_NOTIFY is not supported"), "{err}");
    assert!(!e.root.join("f3").exists());
}

/// The five capability sets as runc leaves them before the program's
/// exec: `--cap-drop all` leaves nothing (chown refused), a bounding set
/// of NET_ADMIN shows as 0x1000, and a non-root user keeps capabilities
/// only through the ambient set.
#[test]
fn capabilities_as_runc_sets_them() {
    let e = Env::new("caps");
    let caps = |uid: u32, set: &str, ambient: &str| {
        format!(r#""user":{{"uid":{uid},"gid":{uid}}},"capabilities":{{"bounding":{set},"effective":{set},"permitted":{set},"inheritable":{set},"ambient":{ambient}}},"#)
    };
    let status = "cat /proc/self/status | /bin/busybox grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' | /bin/busybox tr '\\n\\t' '  '; echo; /bin/busybox chown 5 /tmp 2>/dev/null; echo chown=$?";
    let run = |id: &str, c: String| {
        e.config(&["sh", "-c", status], "");
        let cfg = std::fs::read_to_string(e.bundle().join("config.json")).unwrap().replace(r#""user":{"uid":0,"gid":0},"#, &c);
        std::fs::write(e.bundle().join("config.json"), cfg).unwrap();
        let (code, out, err) = e.rv(&["run", "--bundle", &bundle_arg(&e), id]);
        assert_eq!(code, 0, "{err}");
        out
    };
    assert_eq!(
        run("c1", caps(0, "[]", "[]")),
        "CapInh: 0000000000000000 CapPrm: 0000000000000000 CapEff: 0000000000000000 CapBnd: 0000000000000000 CapAmb: 0000000000000000 \nchown=1\n"
    );
    assert_eq!(
        run("c2", caps(0, r#"["CAP_NET_ADMIN","CAP_CHOWN"]"#, "[]")),
        "CapInh: 0000000000001001 CapPrm: 0000000000001001 CapEff: 0000000000001001 CapBnd: 0000000000001001 CapAmb: 0000000000000000 \nchown=0\n"
    );
    assert_eq!(
        run("c3", caps(1000, r#"["CAP_NET_BIND_SERVICE","CAP_CHOWN"]"#, r#"["CAP_NET_BIND_SERVICE"]"#)),
        "CapInh: 0000000000000401 CapPrm: 0000000000000400 CapEff: 0000000000000400 CapBnd: 0000000000000401 CapAmb: 0000000000000400 \nchown=1\n"
    );
    assert_eq!(
        run("c4", caps(1000, r#"["CAP_CHOWN"]"#, "[]")),
        "CapInh: 0000000000000001 CapPrm: 0000000000000000 CapEff: 0000000000000000 CapBnd: 0000000000000001 CapAmb: 0000000000000000 \nchown=1\n"
    );
}

/// An exec'd process gets the container process's capabilities, rlimits
/// and no_new_privs (runc execs with the same process settings), and
/// `exec --cap` adds to them as runc's does.
#[test]
fn exec_keeps_the_process_limits() {
    let e = Env::new("execcaps");
    e.config(&["sleep", "30"], "");
    let extra = r#""user":{"uid":0,"gid":0},"capabilities":{"bounding":["CAP_KILL"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"]},"rlimits":[{"type":"RLIMIT_NOFILE","hard":200,"soft":100}],"noNewPrivileges":true,"#;
    let cfg = std::fs::read_to_string(e.bundle().join("config.json")).unwrap().replace(r#""user":{"uid":0,"gid":0},"#, extra);
    std::fs::write(e.bundle().join("config.json"), cfg).unwrap();
    assert_eq!(e.rv(&["create", "--bundle", &bundle_arg(&e), "x1"]).0, 0);
    assert_eq!(e.rv(&["start", "x1"]).0, 0);
    let show = "/bin/busybox grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status | /bin/busybox tr '\\n\\t' '  '; ulimit -n";
    let (code, out, err) = e.rv(&["exec", "x1", "sh", "-c", show]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "CapEff: 0000000000000020 CapBnd: 0000000000000020 NoNewPrivs: 1 100\n");
    let (code, out, err) = e.rv(&["exec", "--cap", "CAP_NET_ADMIN", "x1", "sh", "-c", show]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "CapEff: 0000000000001020 CapBnd: 0000000000001020 NoNewPrivs: 1 100\n");
    let (code, _, err) = e.rv(&["exec", "--cap", "CAP_BOGUS", "x1", "true"]);
    assert_eq!(code, 1);
    assert!(err.contains("CAP_BOGUS"), "{err}");
    let _ = e.rv(&["kill", "x1", "KILL"]);
}

/// A pids limit smaller than the VMM's own thread count still starts the
/// sandbox (the host cgroup leaves the VMM room), and the sentry refuses
/// the fork past the limit.
#[test]
fn a_tiny_pids_limit_is_enforced_inside() {
    let e = Env::new("pids3");
    e.config(&["sh", "-c", "sleep 1 & echo one; sleep 1 & echo two; sleep 1 & echo three; wait"], r#","linux":{"resources":{"pids":{"limit":3}}}"#);
    let (code, out, err) = e.rv(&["run", "--bundle", &bundle_arg(&e), "p1"]);
    assert_eq!(out, "one\ntwo\n", "{err}");
    assert!(err.contains("can't fork"), "{err}");
    assert_eq!(code, 2, "{err}");
}

/// /sys/fs/cgroup inside shows the spec's limits and the sandbox's own
/// usage (not the host cgroup's, which holds the VMM), `update` changes
/// them live, and a process allocating past the memory limit is killed
/// alone — its shell goes on and sees the OOM kill counted — as under runc.
#[test]
fn the_cgroup_view_and_the_memory_limit() {
    let e = Env::new("cgview");
    let mounts = r#",{"destination":"/sys","type":"sysfs","source":"sysfs","options":["ro"]},{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["ro"]}"#;
    let v1 = Path::new("/sys/fs/cgroup/memory").is_dir();
    let (mem, pids, quota) = if v1 {
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/pids/pids", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
    } else {
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/cpu.max")
    };
    let oom = if v1 { "/sys/fs/cgroup/memory/memory.oom_control" } else { "/sys/fs/cgroup/memory.events" };
    let script = format!(
        "cat {mem} {pids}.max {quota}; sleep 1 & cat {pids}.current; wait; \
         sh -c 'x=$(head -c 200000000 /dev/zero | tr \\\\0 a); echo survived'; echo hog=$?; grep '^oom_kill ' {oom}; \
         touch /sys/fs/cgroup/x 2>/dev/null || echo read-only; sleep 30"
    );
    e.config_mounts(&["sh", "-c", &script], mounts, r#","linux":{"resources":{"memory":{"limit":67108864,"swap":67108864},"pids":{"limit":40},"cpu":{"quota":50000,"period":100000}}}"#);
    assert_eq!(e.rv(&["create", "--bundle", &bundle_arg(&e), "cg1"]).0, 0);
    assert_eq!(e.rv(&["start", "cg1"]).0, 0);
    // The container's stdout is create's (the VMM inherits it).
    let out_file = e.dir.join(format!("out-create_--bundle_{}_cg1", bundle_arg(&e).replace('/', "")));
    let mut out = String::new();
    for _ in 0..300 {
        out = std::fs::read_to_string(&out_file).unwrap_or_default();
        if out.contains("read-only") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let want_quota = if v1 { "50000" } else { "50000 100000" };
    // pids.current: the shell, the sleep and cat — no VMM threads.
    assert_eq!(out, format!("67108864\n40\n{want_quota}\n3\nhog=137\noom_kill 1\nread-only\n"));
    // The gofer works for the container: it is in its cgroups too.
    let procs = Path::new("/sys/fs/cgroup/pids/rvisor/cg1/cgroup.procs");
    if procs.exists() {
        let pids = std::fs::read_to_string(procs).unwrap();
        let cmdlines: Vec<String> = pids.lines().filter_map(|p| std::fs::read(format!("/proc/{p}/cmdline")).ok()).map(|c| String::from_utf8_lossy(&c).replace('\0', " ")).collect();
        assert!(cmdlines.iter().any(|c| c.contains(" gofer ")), "{cmdlines:?}");
    }
    // The runtimes hear of OOM kills from the host cgroup only: the
    // reporter makes one there (this machine has no swap, so it may).
    let host = Path::new("/sys/fs/cgroup/memory/rvisor/cg1/memory.oom_control");
    if host.exists() {
        let mut seen = String::new();
        for _ in 0..50 {
            seen = std::fs::read_to_string(host).unwrap_or_default();
            if seen.contains("oom_kill 1") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(seen.contains("oom_kill 1"), "{seen}");
    }
    let (code, _, err) = e.rv(&["update", "--memory", "100003840", "--memory-swap", "100003840", "--pids-limit", "50", "cg1"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = e.rv(&["exec", "cg1", "cat", mem, &format!("{pids}.max")]);
    assert_eq!((code, out.as_str()), (0, "100003840\n50\n"), "{err}");
    let _ = e.rv(&["kill", "cg1", "KILL"]);
}

mod terminal;

/// Receives the console master from `--console-socket`, as a runtime's
/// client does: the master and the slave's name.
fn accept_console(listener: std::os::unix::net::UnixListener) -> (std::os::fd::OwnedFd, String) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd};
    let (conn, _) = listener.accept().expect("console socket connection");
    let mut name = [0u8; 128];
    let mut iov = [std::io::IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).expect("recvmsg");
    let fd = msg
        .cmsgs()
        .expect("control messages")
        .find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })
        .expect("a master fd");
    let len = msg.bytes;
    // SAFETY: SCM_RIGHTS just gave us this descriptor; nothing else owns it.
    let master = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    (master, String::from_utf8_lossy(&name[..len]).into_owned())
}

/// terminal:true: the console is the container's /dev/pts/N (`tty` says
/// the name the client got), ptys made inside share its number space,
/// and ^C reaches the shell's foreground job.
#[test]
fn a_console_is_the_containers_terminal() {
    let e = Env::new("console");
    e.config(&["/bin/busybox", "env", "PS1=$ ", "/bin/sh", "-i"], "");
    let cfg = std::fs::read_to_string(e.bundle().join("config.json")).unwrap();
    std::fs::write(e.bundle().join("config.json"), cfg.replace("\"terminal\":false", "\"terminal\":true")).unwrap();
    let sock = e.dir.join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let console = std::thread::spawn(move || accept_console(listener));
    let mut run = terminal::Reaped(Command::new(env!("CARGO_BIN_EXE_rvisor"))
        .arg("--root")
        .arg(&e.root)
        .args(["run", "--bundle", &bundle_arg(&e), "--console-socket", sock.to_str().unwrap(), "c1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let (master, name) = console.join().unwrap();
    let host_n: u32 = name.strip_prefix("/dev/pts/").and_then(|n| n.parse().ok()).expect("a /dev/pts slave");
    let mut t = terminal::Term::new(master);
    assert!(t.expect("$ "), "no prompt: {}", t.text());
    t.send("tty\n");
    assert!(t.expect(&format!("\n{name}\n")), "{}", t.text());
    t.send("exec 3<>/dev/ptmx; echo pts: $(ls /dev/pts); exec 3>&-; echo pts: $(ls /dev/pts)\n");
    let mut both = [host_n.to_string(), u32::from(host_n == 0).to_string(), "ptmx".to_string()];
    both.sort();
    assert!(t.expect(&format!("\npts: {}\npts: {host_n} ptmx\n", both.join(" "))), "{}", t.text());
    t.send("sh -c 'echo started; exec sleep 30'\n");
    assert!(t.expect("\nstarted\n"), "{}", t.text());
    t.send("\x03");
    t.send("echo rc=$?\n");
    assert!(t.expect("rc=130"), "^C did not end the foreground job: {}", t.text());
    // The terminal's ^C was the sandbox's alone: the gofer still serves.
    t.send("cat /etc/passwd\n");
    assert!(t.expect("\nroot:x:0:0:root:/root:/bin/sh\n"), "{}", t.text());
    t.send("exit 6\n");
    let started = Instant::now();
    let status = loop {
        if let Some(st) = run.0.try_wait().unwrap() {
            break st;
        }
        if started.elapsed() > Duration::from_secs(20) {
            panic!("the container did not exit: {}", t.text());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(6), "{}", t.text());
}

/// A config whose mounts are /proc, /dev and `binds` (destination, host
/// source, read-only), plus `linux` when given.
fn config_with_binds(e: &Env, args: &[&str], binds: &[(&str, &Path, bool)], linux: &str) {
    let mut mounts = vec![
        serde_json::json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        serde_json::json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]}),
    ];
    for (dest, src, ro) in binds {
        mounts.push(serde_json::json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind", if *ro { "ro" } else { "rw" }]}));
    }
    let mut cfg = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": args, "env": ["PATH=/bin"], "cwd": "/"},
        "root": {"path": "rootfs"},
        "hostname": "lc",
        "mounts": mounts,
    });
    if !linux.is_empty() {
        cfg["linux"] = serde_json::from_str(linux).unwrap();
    }
    std::fs::write(e.bundle().join("config.json"), cfg.to_string()).unwrap();
}

/// The processes whose parent is `pid`.
fn children(pid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|d| d.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            // "pid (comm) state ppid ...": comm may hold spaces, not ')'.
            stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok()) == Some(pid)
        })
        .collect()
}

/// A field of /proc/PID/status, such as "CapEff".
fn status_field(pid: i32, name: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).unwrap_or("").trim().to_string()
}

/// Waits for the gofer `pid` to end (it ends with its VMM).
fn wait_gone(pid: i32) {
    let t = Instant::now();
    while std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z")) {
        assert!(t.elapsed() < Duration::from_secs(10), "the gofer outlived its VMM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts container `id` running `sleep` and returns the VMM's pid.
fn start_sleeper(e: &Env, id: &str) -> i32 {
    let pidfile = e.dir.join(format!("{id}.pid"));
    let (code, _, err) = e.rv(&["create", "--bundle", &bundle_arg(e), "--pid-file", pidfile.to_str().unwrap(), id]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(e.rv(&["start", id]).0, 0);
    std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap()
}

#[test]
fn the_containers_files_come_through_the_gofer() {
    let e = Env::new("gofer");
    let vol = e.dir.join("vol");
    let rovol = e.dir.join("rovol");
    let secret = e.dir.join("secret");
    for d in [&vol, &rovol, &secret] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(secret.join("s"), "topsecret\n").unwrap();
    std::fs::write(rovol.join("f"), "ro-file\n").unwrap();
    std::fs::write(e.bundle().join("rootfs/etc/motd"), "from-rootfs\n").unwrap();
    // Symlinks in a volume that lead outside it on the host: the container
    // resolves them in its own tree, never on the host.
    std::os::unix::fs::symlink(&secret, vol.join("abs")).unwrap();
    std::os::unix::fs::symlink("../secret/s", vol.join("rel")).unwrap();
    std::fs::copy("/bin/busybox", vol.join("bb")).unwrap();
    std::os::unix::fs::symlink("bb", vol.join("echo")).unwrap();
    config_with_binds(&e, &["sleep", "1000"], &[("/data", &vol, false), ("/rodata", &rovol, true)], "");
    let vmm = start_sleeper(&e, "g1");

    // The VMM's root is its /proc mirror: none of the container's files.
    let root = PathBuf::from(format!("/proc/{vmm}/root"));
    assert!(root.join("cpuinfo").exists());
    for f in ["bin", "etc", "data", "rodata"] {
        assert!(!root.join(f).exists(), "{f} in the VMM's root");
    }
    // No capability to reach past file permissions, mount or chroot.
    let caps = u64::from_str_radix(&status_field(vmm, "CapEff"), 16).unwrap();
    for (cap, name) in [(1, "DAC_OVERRIDE"), (2, "DAC_READ_SEARCH"), (18, "SYS_CHROOT"), (19, "SYS_PTRACE"), (21, "SYS_ADMIN")] {
        assert_eq!(caps & (1 << cap), 0, "the VMM keeps CAP_{name}");
    }
    assert_eq!(status_field(vmm, "CapBnd"), status_field(vmm, "CapEff"));
    // The gofer serves the container's tree, volumes included.
    let gofers: Vec<i32> = children(vmm)
        .into_iter()
        .filter(|p| std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default().contains("gofer"))
        .collect();
    assert_eq!(gofers.len(), 1, "one gofer per container");
    // Both run under their host seccomp filters (filter mode); the execs
    // below show the VMM still serves the control socket under it.
    assert_eq!(status_field(vmm, "Seccomp"), "2", "the VMM's host seccomp");
    assert_eq!(status_field(gofers[0], "Seccomp"), "2", "the gofer's host seccomp");
    let groot = PathBuf::from(format!("/proc/{}/root", gofers[0]));
    assert_eq!(std::fs::read_to_string(groot.join("etc/motd")).unwrap(), "from-rootfs\n");
    assert!(groot.join("rodata/f").exists());

    let script = "cat /etc/motd; echo new > /data/new && echo rw-ok; echo x > /rodata/f || echo ro-refused; cat /rodata/f; \
                  cat /data/abs/s || echo abs-refused; cat /data/rel || echo rel-refused; echo w > /tmp/w && cat /tmp/w";
    let (code, out, err) = e.rv(&["exec", "g1", "sh", "-c", script]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "from-rootfs\nrw-ok\nro-refused\nro-file\nabs-refused\nrel-refused\nw\n", "{err}");
    assert!(!err.contains("topsecret") && !out.contains("topsecret"));
    assert!(err.contains("Read-only file system"), "{err}");
    // Writes went through to the host: the volume and the rootfs.
    assert_eq!(std::fs::read_to_string(vol.join("new")).unwrap(), "new\n");
    assert_eq!(std::fs::read_to_string(rovol.join("f")).unwrap(), "ro-file\n");
    assert_eq!(std::fs::read_to_string(e.bundle().join("rootfs/tmp/w")).unwrap(), "w\n");
    // exec of a program that only a volume holds: found through the gofer.
    let (code, out, err) = e.rv(&["exec", "g1", "/data/echo", "from-volume"]);
    assert_eq!((code, out.as_str()), (0, "from-volume\n"), "{err}");
    assert_eq!(e.rv(&["kill", "g1", "KILL"]).0, 0);
    assert!(e.wait_status("g1", "stopped"));
    wait_gone(gofers[0]);

    // A read-only root stays read-only through the gofer.
    let cfg = std::fs::read_to_string(e.bundle().join("config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    v["root"]["readonly"] = serde_json::json!(true);
    v["process"]["args"] = serde_json::json!(["sh", "-c", "cat /etc/motd; echo x > /etc/motd || echo root-ro; echo y > /data/y && echo vol-rw"]);
    std::fs::write(e.bundle().join("config.json"), v.to_string()).unwrap();
    let (code, out, err) = e.rv(&["run", "--bundle", &bundle_arg(&e), "g2"]);
    assert_eq!((code, out.as_str()), (0, "from-rootfs\nroot-ro\nvol-rw\n"), "{err}");
    assert_eq!(std::fs::read_to_string(e.bundle().join("rootfs/etc/motd")).unwrap(), "from-rootfs\n");
}

/// A bind mount is the host's live tree: what the host changes while the
/// container runs is what the container's next lookup finds (the root,
/// the container's own, may keep the sentry's caches).
#[test]
fn host_changes_to_a_bind_mount_are_seen() {
    let e = Env::new("livebind");
    let vol = e.dir.join("vol");
    std::fs::create_dir_all(vol.join("d")).unwrap();
    std::fs::create_dir_all(vol.join("ren")).unwrap();
    std::fs::write(vol.join("d/x"), "in-dir\n").unwrap();
    std::fs::write(vol.join("f"), "one\n").unwrap();
    config_with_binds(&e, &["sleep", "1000"], &[("/data", &vol, false)], "");
    start_sleeper(&e, "lb");
    // Every name is looked up once, so a cache would hold it.
    let (code, out, err) = e.rv(&["exec", "lb", "sh", "-c", "ls /data; cat /data/d/x /data/f; ls /data/ren; [ -e /data/later ] || echo no-later"]);
    assert_eq!((code, out.as_str()), (0, "d\nf\nren\nin-dir\none\nno-later\n"), "{err}");
    std::fs::remove_dir_all(vol.join("d")).unwrap();
    std::fs::write(vol.join("d"), "now-a-file\n").unwrap();
    std::fs::rename(vol.join("ren"), vol.join("ren2")).unwrap();
    std::fs::write(vol.join("later"), "later\n").unwrap();
    std::fs::write(vol.join("f"), "two, longer\n").unwrap();
    let (code, out, err) = e.rv(&["exec", "lb", "sh", "-c", "ls /data; cat /data/d /data/later /data/f; [ -e /data/ren ] || echo ren-gone; stat -c %s /data/f"]);
    assert_eq!((code, out.as_str()), (0, "d\nf\nlater\nren2\nnow-a-file\nlater\ntwo, longer\nren-gone\n12\n"), "{err}");
    assert_eq!(e.rv(&["kill", "lb", "KILL"]).0, 0);
    assert!(e.wait_status("lb", "stopped"));
}

#[test]
fn a_user_namespace_maps_the_gofers_ids() {
    let e = Env::new("userns");
    let vol = e.dir.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    // A host root's file in the volume: not the container's to write.
    std::fs::write(vol.join("hosts-own"), "host\n").unwrap();
    let chown = |p: &Path, id: u32| std::os::unix::fs::lchown(p, Some(id), Some(id)).unwrap();
    fn walk(p: &Path, f: &dyn Fn(&Path)) {
        f(p);
        if p.is_dir() && !p.is_symlink() {
            for d in std::fs::read_dir(p).unwrap().flatten() {
                walk(&d.path(), f);
            }
        }
    }
    walk(&e.bundle().join("rootfs"), &|p| chown(p, 100_000));
    chown(&vol, 100_000);
    let linux = r#"{"namespaces":[{"type":"pid"},{"type":"mount"},{"type":"user"}],
        "uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
        "gidMappings":[{"containerID":0,"hostID":100000,"size":65536}]}"#;
    config_with_binds(&e, &["sleep", "1000"], &[("/data", &vol, false)], linux);
    let vmm = start_sleeper(&e, "u1");
    let gofer = children(vmm)
        .into_iter()
        .find(|p| std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default().contains("gofer"))
        .expect("a gofer");
    // The gofer is the container's root, mapped: host uid 100000.
    let map: Vec<String> = std::fs::read_to_string(format!("/proc/{gofer}/uid_map")).unwrap().split_whitespace().map(String::from).collect();
    assert_eq!(map, ["0", "100000", "65536"]);
    assert!(status_field(gofer, "Uid").starts_with("100000\t"), "{}", status_field(gofer, "Uid"));
    let script = "echo a > /data/mine && echo made; mkdir /tmp/d && chown 1000:1000 /tmp/d && echo chowned; \
                  echo b >> /data/hosts-own || echo host-file-refused; ls -ln /data/hosts-own";
    let (code, out, err) = e.rv(&["exec", "u1", "sh", "-c", script]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("made\nchowned\nhost-file-refused\n"), "{out}{err}");
    // The host file's owner is not in the map: the container sees nobody.
    assert!(out.contains(" 65534 "), "{out}");
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(vol.join("mine")).unwrap();
    assert_eq!((m.uid(), m.gid()), (100_000, 100_000));
    let m = std::fs::metadata(e.bundle().join("rootfs/tmp/d")).unwrap();
    assert_eq!((m.uid(), m.gid()), (101_000, 101_000));
    assert_eq!(std::fs::read_to_string(vol.join("hosts-own")).unwrap(), "host\n");
    assert_eq!(e.rv(&["kill", "u1", "KILL"]).0, 0);
    assert!(e.wait_status("u1", "stopped"));
    wait_gone(gofer);
}
