//! End-to-end workloads under `rvisor do`: busybox sh scripts and python3
//! programs exercising the process model (pipelines, job control, signals,
//! fork/wait, threads, subprocesses, multiprocessing, timers, sockets, file
//! work). Each runs natively and in the sandbox; both must print exactly the
//! expected output, so a wrong expectation shows up as a native failure and a
//! sandbox difference as an rvisor one.
//!
//! Timeouts are generous and only catch hangs; nothing asserts speed.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RVISOR: &str = env!("CARGO_BIN_EXE_rvisor");
const BUSYBOX: &str = "/bin/busybox";
/// Long enough for a loaded CI machine; only a hang gets near it.
const TIMEOUT: Duration = Duration::from_secs(240);

struct Out {
    /// The exit status, or 128+N for signal N (as `rvisor do` reports it).
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` with stdin from /dev/null in a process group of its own and
/// collects its output. On timeout, or once it has exited, the whole group
/// is killed (so a native script's stray background jobs cannot hold the
/// pipes open).
fn run(mut cmd: Command, what: &str, timeout: Duration) -> Out {
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

fn environment(cmd: &mut Command) {
    // The sandbox gets the caller's environment; make it the same for both.
    cmd.env("LC_ALL", "C").env_remove("PYTHONPATH").env_remove("PYTHONHOME").env("PYTHONDONTWRITEBYTECODE", "1");
}

fn native(argv: &[&str], timeout: Duration) -> Out {
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..]).current_dir("/");
    environment(&mut cmd);
    run(cmd, &format!("native {argv:?}"), timeout)
}

fn sandbox(argv: &[&str], timeout: Duration) -> Out {
    let mut cmd = Command::new(RVISOR);
    cmd.args(["do", "--cwd", "/", "--"]).args(argv);
    environment(&mut cmd);
    run(cmd, &format!("rvisor do {argv:?}"), timeout)
}

fn assert_out(o: &Out, where_: &str, stdout: &str, code: i32) {
    assert!(
        o.stdout == stdout && o.code == code,
        "{where_}: exit {} (want {code})\n--- stdout:\n{}--- want:\n{stdout}--- stderr:\n{}",
        o.code,
        o.stdout,
        o.stderr
    );
    assert!(!o.stderr.contains("sentry panic"), "{where_}: {}", o.stderr);
}

/// Runs `argv` natively and under `rvisor do`; both must print `stdout`
/// exactly and exit with `code`.
fn check_timeout(argv: &[&str], stdout: &str, code: i32, timeout: Duration) {
    assert_out(&native(argv, timeout), "native (the test's expectation is wrong)", stdout, code);
    assert_out(&sandbox(argv, timeout), "rvisor do", stdout, code);
}

fn check(argv: &[&str], stdout: &str, code: i32) {
    check_timeout(argv, stdout, code, TIMEOUT)
}

fn sh(script: &str, stdout: &str, code: i32) {
    check(&[BUSYBOX, "sh", "-c", script], stdout, code);
}

// ---- busybox sh ---------------------------------------------------------

#[test]
fn sh_pipelines() {
    sh(
        r#"
seq 1 100000 | grep 7 | wc -l
seq 1 100000 | awk '{ s += $1 } END { print s }'
seq 1 20000 | sort -rn | head -3 | tr '\n' ' '; echo
yes abc | head -c 1000000 | wc -c
seq 1 5000 | sed 's/$/ x/' | cut -d' ' -f1 | tail -1
head -c 300000 /dev/zero | tr '\0' 'z' | fold -w 1000 | wc -l
a=$(cat /etc/passwd | sha256sum | cut -c1-64); b=$(sha256sum < /etc/passwd | cut -c1-64)
[ "$a" = "$b" ] && echo same-digest
false | true; echo "last status $?"
set -o pipefail; true | false | true; echo "pipefail status $?"
"#,
        "40951\n5000050000\n20000 19999 19998 \n1000000\n5000\n299\nsame-digest\nlast status 0\npipefail status 1\n",
        0,
    );
}

#[test]
fn sh_redirections() {
    sh(
        r#"
d=$(mktemp -d) && cd "$d" || exit 1
echo one > f
echo two >> f
cat f
wc -l < f
{ echo out; echo err >&2; } > both 2>&1
cat both
ls /no-such-dir-xyz > o 2>&1; echo "ls status $?"; grep -c 'no-such-dir-xyz' o
echo to-stderr 2>/dev/null >&2 3>&1
cat <<EOF
here $((6*7)) doc
  indented
EOF
cat <<'EOF'
literal $HOME $(nope)
EOF
cat <<-EOF
	tabs stripped
	EOF
exec 3> fd3
echo via3 >&3
exec 3>&-
cat fd3
read a b < f; echo "read:$a:$b"
while read line; do echo "line:$line"; done < f
exec 4< f; read x <&4; read y <&4; exec 4<&-; echo "fd4:$x,$y"
: > f; wc -c < f
echo abc > g; cat < g > h; cat h
echo append >> h; cat h | wc -l
cd / && rm -rf "$d"
"#,
        "one\ntwo\n2\nout\nerr\nls status 1\n1\nhere 42 doc\n  indented\nliteral $HOME $(nope)\ntabs stripped\nvia3\n\
         read:one:\nline:one\nline:two\nfd4:one,two\n0\nabc\n2\n",
        0,
    );
}

#[test]
fn sh_subshells_and_command_substitution() {
    sh(
        r#"
x=1; (x=2; echo "in $x"); echo "out $x"
echo $(echo a $(echo b $(echo c)))
y=`echo back`; echo "$y"
(exit 3); echo "status $?"
(cd /etc && pwd); pwd
n=$(seq 1 10 | wc -l); echo $((n * 2))
f() { echo "func $1"; return 4; }; f x; echo "ret $?"
v=$(f y; echo more); echo "[$v]"
s=$(exit 9); echo "cmdsub status $?"
( echo a; ( echo b; ( echo c ) ) ) | tr '\n' ' '; echo
{ echo grouped; } | cat
test "$(echo $$)" = "$$" && echo "pid same in cmdsub"
echo "$(printf '%s\n' 1 2 3 | while read i; do echo $((i*i)); done | tr '\n' ,)"
out=$( (echo inner-out; echo inner-err >&2) 2>&1 ); echo "$out" | sort
(trap 'echo sub exit' EXIT; exit 2); echo "sub trap status $?"
"#,
        "in 2\nout 1\na b c\nback\nstatus 3\n/etc\n/\n20\nfunc x\nret 4\n[func y\nmore]\ncmdsub status 9\na b c \ngrouped\n\
         pid same in cmdsub\n1,4,9,\ninner-err\ninner-out\nsub exit\nsub trap status 2\n",
        0,
    );
}

#[test]
fn sh_background_jobs_wait_and_kill() {
    sh(
        r#"
sleep 0.2 & p1=$!
(exit 7) & p2=$!
wait $p1; echo "w1 $?"
wait $p2; echo "w2 $?"
sleep 100 & p3=$!
kill -0 $p3 && echo "p3 alive"
kill $p3; wait $p3; echo "w3 $?"
sleep 100 & p4=$!
kill -9 $p4; wait $p4; echo "w4 $?"
sleep 100 & p5=$!
kill -USR1 $p5; wait $p5; echo "w5 $?"
kill -0 $p3 2>/dev/null || echo "p3 gone"
{ for i in 1 2 3 4 5 6 7 8; do (echo "job $i") & done; wait; } | sort
sleep 100 & sleep 100 & kill $(jobs -p); wait; echo "all waited $?"
"#,
        "w1 0\nw2 7\np3 alive\nw3 143\nw4 137\nw5 138\np3 gone\njob 1\njob 2\njob 3\njob 4\njob 5\njob 6\njob 7\njob 8\nall waited 0\n",
        0,
    );
}

#[test]
fn sh_traps_on_exit_and_signals() {
    // A signal the shell sends itself, one from a subshell, one that
    // interrupts `wait` (re-sent until it lands, so no timing matters), an
    // ignored one, and a trapped TERM that exits through the EXIT trap.
    sh(
        r#"
trap 'echo "exit trap $?"' EXIT
trap 'echo got USR1' USR1
kill -USR1 $$
echo after-usr1
trap 'echo got USR2' USR2
(kill -USR2 $$)
echo after-usr2
trap 'n=$((n + 1))' USR1
n=0
sleep 100 & sp=$!
(while kill -USR1 $$; do sleep 0.2; done) 2>/dev/null & killer=$!
wait $sp; echo "wait interrupted $?"
trap '' USR1
kill $killer; wait $killer
[ $n -ge 1 ] && echo "usr1 trap ran"
kill $sp; wait $sp; echo "sleeper $?"
trap '' HUP
kill -HUP $$; echo "hup ignored"
trap 'echo got TERM; exit 5' TERM
kill $$
echo notreached
"#,
        "got USR1\nafter-usr1\ngot USR2\nafter-usr2\nwait interrupted 138\nusr1 trap ran\nsleeper 143\nhup ignored\ngot TERM\nexit trap 5\n",
        5,
    );
    // A child shell with traps, killed by its parent.
    sh(
        r#"
d=$(mktemp -d)
busybox sh -c 'trap "echo child exit trap" EXIT; trap "echo child got TERM; exit 2" TERM; echo ready; while :; do sleep 0.05; done' > $d/out &
c=$!
while ! grep -q ready $d/out 2>/dev/null; do sleep 0.05; done
kill -TERM $c; wait $c; echo "child status $?"
cat $d/out; rm -rf $d
"#,
        "child status 2\nready\nchild got TERM\nchild exit trap\n",
        0,
    );
}

#[test]
fn sh_fifty_background_sleeps() {
    // Less than the sleeps' 100 s: if `kill` does not end them, `wait` hangs
    // and this fails.
    let timeout = Duration::from_secs(90);
    // Counted by parent pid, so the host's other sleeps do not matter.
    check_timeout(
        &[
            BUSYBOX,
            "sh",
            "-c",
            r#"
pids=""
i=0
while [ $i -lt 50 ]; do sleep 100 & pids="$pids $!"; i=$((i + 1)); done
mine() { ps -o ppid,args | awk -v p=$$ '$1 == p && $2 == "sleep" && $3 == "100"' | wc -l; }
# A child shows as `sleep 100` once it has exec'd; give them time to.
n=0; while [ $(mine) -lt 50 ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n + 1)); done
echo "running $(mine)"
for p in $pids; do kill -0 $p || echo "missing $p"; done
kill $pids
codes=""
for p in $pids; do wait $p; codes="$codes $?"; done
echo $codes | tr ' ' '\n' | sort | uniq -c
echo "left $(mine)"
"#,
        ],
        "running 50\n     50 143\nleft 0\n",
        0,
        timeout,
    );
    // In the sandbox plain `ps` lists exactly these 50.
    let o = sandbox(
        &[
            BUSYBOX,
            "sh",
            "-c",
            r#"
i=0
while [ $i -lt 50 ]; do sleep 100 & i=$((i + 1)); done
mine() { ps -o args | grep -cx 'sleep 100'; }
n=0; while [ $(mine) -lt 50 ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n + 1)); done
mine
kill $(jobs -p)
wait
echo "left $(mine)"
"#,
        ],
        timeout,
    );
    assert_out(&o, "rvisor do", "50\nleft 0\n", 0);
}
