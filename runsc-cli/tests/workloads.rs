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
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RVISOR: &str = env!("CARGO_BIN_EXE_rvisor");
const PYTHON: &str = "/usr/bin/python3";
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

/// Writes `text` to a script file the sandbox can see (the host's root is
/// its root) and returns the path.
fn script(name: &str, text: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("workloads");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

fn python(name: &str, text: &str, stdout: &str) {
    assert!(std::path::Path::new(PYTHON).exists(), "{PYTHON} is needed (scripts/setup.sh installs it)");
    let p = script(name, text);
    check(&[PYTHON, &p], stdout, 0);
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

// ---- python3 ------------------------------------------------------------

#[test]
fn python_threads_and_queue() {
    python(
        "threads.py",
        r#"
import threading, queue, hashlib, concurrent.futures
tasks, results = queue.Queue(), queue.Queue()
lock = threading.Lock()
counter = 0
names = set()
barrier = threading.Barrier(16)
def worker():
    global counter
    barrier.wait()
    while True:
        item = tasks.get()
        if item is None:
            tasks.task_done()
            break
        results.put((item, hashlib.sha256(str(item).encode()).hexdigest()[:8]))
        with lock:
            counter += 1
            names.add(threading.current_thread().name)
        tasks.task_done()
threads = [threading.Thread(target=worker, name=f"w{i}") for i in range(16)]
for t in threads:
    t.start()
for i in range(2000):
    tasks.put(i)
for _ in threads:
    tasks.put(None)
tasks.join()
for t in threads:
    t.join()
out = sorted(results.get() for _ in range(results.qsize()))
print(len(out), counter, out[0], out[-1])
print(hashlib.sha256(repr(out).encode()).hexdigest())
print("alive", sum(t.is_alive() for t in threads), "active", threading.active_count())
ev = threading.Event()
cond = threading.Condition()
box = []
def producer():
    for i in range(100):
        with cond:
            box.append(i)
            cond.notify()
    ev.set()
t = threading.Thread(target=producer)
t.start()
got = []
while len(got) < 100:
    with cond:
        cond.wait_for(lambda: box)
        got.extend(box)
        box.clear()
t.join()
print("cond", sum(got), ev.wait(10))
local = threading.local()
barrier2 = threading.Barrier(16)
res = [None] * 16
def tl(i):
    local.v = i
    barrier2.wait()
    res[i] = local.v
ts = [threading.Thread(target=tl, args=(i,)) for i in range(16)]
[x.start() for x in ts]
[x.join() for x in ts]
print("local", res == list(range(16)))
with concurrent.futures.ThreadPoolExecutor(16) as ex:
    print("executor", sum(ex.map(lambda x: x * x, range(1000))))
"#,
        "2000 2000 (0, '5feceb66') (1999, 'ce8457d5')\n\
         8eae876b5933d9fe2f30e8177a2f3afb4e9d28dfaf916a915c26729252a9ec97\n\
         alive 0 active 1\ncond 4950 True\nlocal True\nexecutor 332833500\n",
    );
}

#[test]
fn python_subprocess_hundred_children() {
    python(
        "subproc.py",
        r#"
import subprocess
ok = 0
for i in range(60):
    ok += subprocess.run(["/bin/true"]).returncode == 0
echoed = [subprocess.run(["/bin/echo", f"child {i}"], capture_output=True, text=True).stdout for i in range(40)]
print("true ok", ok)
print("echo", len(echoed), all(e == f"child {i}\n" for i, e in enumerate(echoed)))
print("false", subprocess.run(["/bin/false"]).returncode)
print("sh exit", subprocess.run(["/bin/sh", "-c", "exit 3"]).returncode)
print("killed", subprocess.run(["/bin/sh", "-c", "kill -9 $$"]).returncode)
r = subprocess.run(["/bin/cat"], input=b"x" * 200000, capture_output=True)
print("cat", len(r.stdout), r.stdout == b"x" * 200000)
r = subprocess.run("echo out; echo err >&2; exit 4", shell=True, capture_output=True, text=True)
print("shell", repr(r.stdout), repr(r.stderr), r.returncode)
print("check_output", subprocess.check_output(["/bin/busybox", "seq", "3"]).split())
try:
    subprocess.run(["/bin/sleep", "100"], timeout=0.5)
except subprocess.TimeoutExpired:
    print("timeout raised")
try:
    subprocess.run(["/no/such/program"])
except FileNotFoundError:
    print("enoent raised")
p = subprocess.Popen(["/bin/cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
out, _ = p.communicate(b"via popen\n")
print("popen", out, p.returncode)
procs = [subprocess.Popen(["/bin/sh", "-c", f"exit {i}"]) for i in range(10)]
print("parallel", [p.wait() for p in procs])
print("env", subprocess.run(["/usr/bin/env"], env={"ONLY": "this"}, capture_output=True, text=True).stdout.strip())
print("cwd", subprocess.run(["/bin/pwd"], cwd="/etc", capture_output=True, text=True).stdout.strip())
p1 = subprocess.Popen(["/bin/busybox", "seq", "1000"], stdout=subprocess.PIPE)
p2 = subprocess.Popen(["/bin/busybox", "wc", "-l"], stdin=p1.stdout, stdout=subprocess.PIPE)
p1.stdout.close()
print("pipeline", p2.communicate()[0].strip(), p1.wait(), p2.returncode)
"#,
        "true ok 60\necho 40 True\nfalse 1\nsh exit 3\nkilled -9\ncat 200000 True\nshell 'out\\n' 'err\\n' 4\n\
         check_output [b'1', b'2', b'3']\ntimeout raised\nenoent raised\npopen b'via popen\\n' 0\n\
         parallel [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\nenv ONLY=this\ncwd /etc\npipeline b'1000' 0 0\n",
    );
}

const MP_HELPERS: &str = r#"
import multiprocessing as mp, os
def square(x):
    return x * x
def whoami(_):
    return os.getpid()
def inc(v):
    for _ in range(1000):
        with v.get_lock():
            v.value += 1
def send_sum(c):
    c.send(sum(range(100)))
"#;

#[test]
fn python_multiprocessing_pool() {
    let text = format!(
        "{MP_HELPERS}{}",
        r#"
if __name__ == "__main__":
    with mp.Pool(4) as pool:
        print("map", sum(pool.map(square, range(1000))))
        print("chunks", pool.map(square, range(10), chunksize=3))
        print("async", pool.apply_async(square, (12,)).get(timeout=60))
        print("imap", sorted(pool.imap_unordered(square, range(5))))
        pids = set(pool.map(whoami, range(200)))
        print("workers", 1 <= len(pids) <= 4, os.getpid() not in pids)
    q = mp.Queue()
    p = mp.Process(target=q.put, args=("from child",))
    p.start()
    print("queue", q.get(timeout=60))
    p.join()
    print("exitcode", p.exitcode)
    p = mp.Process(target=os._exit, args=(7,))
    p.start()
    p.join()
    print("exitcode", p.exitcode)
    v = mp.Value("i", 0)
    ps = [mp.Process(target=inc, args=(v,)) for _ in range(4)]
    [p.start() for p in ps]
    [p.join() for p in ps]
    print("shared value", v.value)
    a, b = mp.Pipe()
    p = mp.Process(target=send_sum, args=(b,))
    p.start()
    print("pipe", a.recv())
    p.join()
    with mp.get_context("spawn").Pool(2) as pool:
        print("spawn", sum(pool.map(square, range(100))))
"#
    );
    python(
        "mp_pool.py",
        &text,
        "map 332833500\nchunks [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]\nasync 144\nimap [0, 1, 4, 9, 16]\nworkers True True\n\
         queue from child\nexitcode 0\nexitcode 7\nshared value 4000\npipe 4950\nspawn 328350\n",
    );
}

#[test]
fn python_multiprocessing_forkserver() {
    let text = format!(
        "{MP_HELPERS}{}",
        r#"
if __name__ == "__main__":
    with mp.get_context("forkserver").Pool(2) as pool:
        print("forkserver", sum(pool.map(square, range(100))))
"#
    );
    python("mp_forkserver.py", &text, "forkserver 328350\n");
}

#[test]
fn python_unix_socket_paths_are_files() {
    python(
        "sockpath.py",
        r#"
import socket, os, stat, tempfile, shutil
d = tempfile.mkdtemp()
p = os.path.join(d, "s")
s = socket.socket(socket.AF_UNIX)
s.bind(p)
print("listed", os.listdir(d))
print("is socket", stat.S_ISSOCK(os.stat(p).st_mode))
os.chmod(p, 0o600)
print("mode", oct(stat.S_IMODE(os.stat(p).st_mode)))
s.close()
try:
    socket.socket(socket.AF_UNIX).bind(p)
except OSError as e:
    print("rebind", e.strerror)
os.unlink(p)
socket.socket(socket.AF_UNIX).bind(p)
print("after unlink ok")
shutil.rmtree(d)
"#,
        "listed ['s']\nis socket True\nmode 0o600\nrebind Address already in use\nafter unlink ok\n",
    );
}

#[test]
fn python_alarm_and_setitimer() {
    python(
        "alarm.py",
        r#"
import signal, time, os
fired = []
signal.signal(signal.SIGALRM, lambda s, f: fired.append("alarm"))
print("alarm prev", signal.alarm(1))
print("alarm remaining", signal.alarm(1) in (0, 1))
signal.pause()
print("alarm", fired)
fired.clear()
signal.alarm(1)
time.sleep(3)   # PEP 475: the handler runs, the sleep resumes
print("sleep with alarm", fired)
print("cancel", signal.alarm(0))
ticks = []
def tick(s, f):
    ticks.append(s)
    if len(ticks) == 5:
        signal.setitimer(signal.ITIMER_REAL, 0)
signal.signal(signal.SIGALRM, tick)
signal.setitimer(signal.ITIMER_REAL, 0.05, 0.02)
while len(ticks) < 5:
    signal.pause()
print("real ticks", len(ticks), set(ticks) == {signal.SIGALRM})
print("disarmed", signal.getitimer(signal.ITIMER_REAL))
signal.setitimer(signal.ITIMER_REAL, 10)
left = signal.getitimer(signal.ITIMER_REAL)[0]
print("getitimer", 5 < left <= 10)
signal.setitimer(signal.ITIMER_REAL, 0)
class Boom(Exception):
    pass
def boom(s, f):
    raise Boom()
signal.signal(signal.SIGALRM, boom)
signal.setitimer(signal.ITIMER_REAL, 0.1)
try:
    while True:
        pass
except Boom:
    print("busy loop interrupted")
got = []
signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))
os.kill(os.getpid(), signal.SIGUSR1)
print("self kill", got == [signal.SIGUSR1])
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])
os.kill(os.getpid(), signal.SIGUSR2)
print("pending", signal.sigpending() == {signal.SIGUSR2})
print("sigwait", signal.sigwait([signal.SIGUSR2]) == signal.SIGUSR2)
"#,
        "alarm prev 0\nalarm remaining True\nalarm ['alarm']\nsleep with alarm ['alarm']\ncancel 0\nreal ticks 5 True\n\
         disarmed (0.0, 0.0)\ngetitimer True\nbusy loop interrupted\nself kill True\npending True\nsigwait True\n",
    );
}

#[test]
fn python_cpu_time_itimers() {
    // Spins for at most 30 s of wall time, so a timer that never fires
    // shows up as a count of 0 rather than a hang.
    python(
        "cputimers.py",
        r#"
import signal, time
for which, sig, name in ((signal.ITIMER_VIRTUAL, signal.SIGVTALRM, "virtual"), (signal.ITIMER_PROF, signal.SIGPROF, "prof")):
    n = []
    signal.signal(sig, lambda s, f: n.append(s))
    signal.setitimer(which, 0.05, 0.05)
    end = time.monotonic() + 30
    while len(n) < 3 and time.monotonic() < end:
        pass
    signal.setitimer(which, 0)
    print(name, min(len(n), 3), set(n) <= {sig})
"#,
        "virtual 3 True\nprof 3 True\n",
    );
}

#[test]
fn python_fork_and_waitpid() {
    python(
        "fork.py",
        r#"
import os, signal, time
def child(code):
    pid = os.fork()
    if pid == 0:
        os._exit(code)
    return pid
for code in (0, 1, 3, 255):
    pid, st = os.waitpid(child(code), 0)
    print("exit", code, os.WIFEXITED(st), os.WEXITSTATUS(st), os.waitstatus_to_exitcode(st))
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w)
    os.read(r, 1)      # blocks until the parent kills it
    os._exit(0)
os.close(r)
print("wnohang", os.waitpid(pid, os.WNOHANG))
os.kill(pid, signal.SIGKILL)
_, st = os.waitpid(pid, 0)
print("killed", os.WIFSIGNALED(st), os.WTERMSIG(st) == signal.SIGKILL, os.waitstatus_to_exitcode(st))
os.close(w)
pid = os.fork()
if pid == 0:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(100)
    os._exit(0)
_, st = os.waitpid(pid, 0)
print("self term", os.WIFSIGNALED(st), signal.Signals(os.WTERMSIG(st)).name)
pid = os.fork()
if pid == 0:
    os.abort()
_, st = os.waitpid(pid, 0)
print("abort", signal.Signals(os.WTERMSIG(st)).name)
pids = {child(i): i for i in range(20)}
seen = {}
while pids:
    pid, st = os.waitpid(-1, 0)
    seen[pids.pop(pid)] = os.WEXITSTATUS(st)
print("any", len(seen), all(k == v for k, v in seen.items()))
try:
    os.waitpid(-1, 0)
except ChildProcessError:
    print("echild")
pid = os.fork()
if pid == 0:
    gc = os.fork()
    if gc == 0:
        os._exit(9)
    _, st = os.waitpid(gc, 0)
    os._exit(os.WEXITSTATUS(st) + 1)
print("grandchild via child", os.WEXITSTATUS(os.waitpid(pid, 0)[1]))
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    os.write(w, b"data from child")
    os._exit(0)
os.close(w)
print(os.read(r, 100).decode())
os.close(r)
os.waitpid(pid, 0)
p = os.getpid()
pid = os.fork()
if pid == 0:
    os._exit(0 if os.getppid() == p else 1)
print("getppid", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
pid = os.fork()
if pid == 0:
    signal.pause()
    os._exit(0)
os.kill(pid, signal.SIGSTOP)
_, st = os.waitpid(pid, os.WUNTRACED)
print("stopped", os.WIFSTOPPED(st), signal.Signals(os.WSTOPSIG(st)).name)
os.kill(pid, signal.SIGCONT)
_, st = os.waitpid(pid, os.WCONTINUED)
print("continued", os.WIFCONTINUED(st))
os.kill(pid, signal.SIGTERM)
_, st = os.waitpid(pid, 0)
print("term", signal.Signals(os.WTERMSIG(st)).name)
"#,
        "exit 0 True 0 0\nexit 1 True 1 1\nexit 3 True 3 3\nexit 255 True 255 255\nwnohang (0, 0)\nkilled True True -9\n\
         self term True SIGTERM\nabort SIGABRT\nany 20 True\nechild\ngrandchild via child 10\ndata from child\ngetppid 0\n\
         stopped True SIGSTOP\ncontinued True\nterm SIGTERM\n",
    );
}

#[test]
fn python_selectors_unix_sockets() {
    python(
        "selectors_unix.py",
        r#"
import selectors, socket, os, tempfile, shutil
d = tempfile.mkdtemp()
path = os.path.join(d, "echo.sock")
sel = selectors.DefaultSelector()
print("selector", type(sel).__name__)
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(16)
srv.setblocking(False)
sel.register(srv, selectors.EVENT_READ, "accept")
N = 8
clients = []
for i in range(N):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(path)
    c.setblocking(False)
    clients.append(c)
    sel.register(c, selectors.EVENT_READ, ("client", i))
sent = {i: f"message {i} ".encode() * 1000 for i in range(N)}
got = {i: b"" for i in range(N)}
for i, c in enumerate(clients):
    c.sendall(sent[i])
accepted = 0
while any(len(got[i]) < len(sent[i]) for i in range(N)):
    for key, ev in sel.select(timeout=30):
        tag = key.data
        if tag == "accept":
            conn, _ = srv.accept()
            conn.setblocking(False)
            accepted += 1
            sel.register(conn, selectors.EVENT_READ, "conn")
        elif tag == "conn":
            data = key.fileobj.recv(65536)
            if data:
                key.fileobj.sendall(data)
        else:
            got[tag[1]] += key.fileobj.recv(65536)
print("accepted", accepted)
print("echoed", all(got[i] == sent[i] for i in range(N)), sum(map(len, got.values())))
for c in clients:
    sel.unregister(c)
    c.close()
closed = 0
while closed < N:
    for key, ev in sel.select(timeout=30):
        if key.data == "conn" and not key.fileobj.recv(65536):
            sel.unregister(key.fileobj)
            key.fileobj.close()
            closed += 1
print("server saw eof", closed, len(sel.get_map()))
sel.unregister(srv)
srv.close()
sel.close()
for cls in (selectors.EpollSelector, selectors.PollSelector, selectors.SelectSelector):
    sel = cls()
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    sel.register(b, selectors.EVENT_READ, "b")
    nothing = sel.select(timeout=0.05) == []
    a.send(b"ping")
    ready = [k.data for k, _ in sel.select(timeout=30)]
    data = b.recv(10)
    sel.modify(b, selectors.EVENT_WRITE, "bw")
    writable = [(k.data, m == selectors.EVENT_WRITE) for k, m in sel.select(timeout=30)]
    sel.modify(b, selectors.EVENT_READ, "hup")
    a.close()
    eof = [k.data for k, _ in sel.select(timeout=30)]
    print(cls.__name__, nothing, ready, data, writable, eof, b.recv(10))
    b.close()
    sel.close()
u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
u.bind(os.path.join(d, "dgram.sock"))
v = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for i in range(5):
    v.sendto(f"dgram {i}".encode(), os.path.join(d, "dgram.sock"))
print("dgrams", [u.recv(100).decode() for _ in range(5)])
shutil.rmtree(d)
"#,
        "selector EpollSelector\naccepted 8\nechoed True 80000\nserver saw eof 8 1\n\
         EpollSelector True ['b'] b'ping' [('bw', True)] ['hup'] b''\n\
         PollSelector True ['b'] b'ping' [('bw', True)] ['hup'] b''\n\
         SelectSelector True ['b'] b'ping' [('bw', True)] ['hup'] b''\n\
         dgrams ['dgram 0', 'dgram 1', 'dgram 2', 'dgram 3', 'dgram 4']\n",
    );
}

#[test]
fn python_asyncio_unix_sockets() {
    python(
        "asyncio_unix.py",
        r#"
import asyncio, os, socket, tempfile, shutil
d = tempfile.mkdtemp()
path = os.path.join(d, "aio.sock")
async def handle(reader, writer):
    while line := await reader.readline():
        writer.write(line.upper())
        await writer.drain()
    writer.close()
    await writer.wait_closed()
async def client(i):
    reader, writer = await asyncio.open_unix_connection(path)
    lines = []
    for j in range(20):
        writer.write(f"client {i} line {j}\n".encode())
        await writer.drain()
        lines.append(await reader.readline())
    writer.write_eof()
    rest = await reader.read()
    writer.close()
    await writer.wait_closed()
    return lines, rest
async def main():
    server = await asyncio.start_unix_server(handle, path)
    results = await asyncio.gather(*(client(i) for i in range(10)))
    print("clients", len(results), all(l == [f"CLIENT {i} LINE {j}\n".encode() for j in range(20)] and rest == b"" for i, (l, rest) in enumerate(results)))
    server.close()
    await server.wait_closed()
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    async def drain():
        n = 0
        while n < 300000:
            n += len(await loop.sock_recv(b, 65536))
        return n
    _, n = await asyncio.gather(loop.sock_sendall(a, b"x" * 300000), drain())
    print("socketpair", n)
    a.close()
    b.close()
    ra, wa = socket.socketpair()
    r1, w1 = await asyncio.open_unix_connection(sock=ra)
    r2, w2 = await asyncio.open_unix_connection(sock=wa)
    w1.write(b"over a socketpair\n")
    print("streams", await r2.readline())
    w1.close()
    w2.close()
    order = []
    async def sleeper(n):
        await asyncio.sleep(n / 10)
        order.append(n)
    await asyncio.gather(*(sleeper(n) for n in (5, 1, 3)))
    print("sleep order", order)
    try:
        await asyncio.wait_for(asyncio.sleep(100), 0.1)
    except asyncio.TimeoutError:
        print("wait_for timeout")
    fut = loop.create_future()
    loop.call_later(0.05, fut.set_result, "later")
    print("call_later", await fut)
    proc = await asyncio.create_subprocess_exec("/bin/echo", "from", "subprocess", stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    print("subprocess", out, proc.returncode)
    print("executor", await loop.run_in_executor(None, sum, range(1000)))
asyncio.run(main())
shutil.rmtree(d)
"#,
        "clients 10 True\nsocketpair 300000\nstreams b'over a socketpair\\n'\nsleep order [1, 3, 5]\nwait_for timeout\n\
         call_later later\nsubprocess b'from subprocess\\n' 0\nexecutor 499500\n",
    );
}

#[test]
fn python_file_work() {
    python(
        "files.py",
        r#"
import tempfile, shutil, sqlite3, json, hashlib, os, zipfile, gzip, glob
with tempfile.TemporaryDirectory() as d:
    src = os.path.join(d, "src")
    os.makedirs(os.path.join(src, "a", "b", "c"))
    for i in range(50):
        sub = ["", "a", "a/b", "a/b/c"][i % 4]
        with open(os.path.join(src, sub, f"file{i:02}.txt"), "w") as f:
            f.write(f"line {i}\n" * (i * 37))
    with open(os.path.join(src, "big.bin"), "wb") as f:
        for i in range(64):
            f.write(hashlib.sha256(str(i).encode()).digest() * 1024)
    def tree(root):
        h = hashlib.sha256()
        n = 0
        for dirpath, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                p = os.path.join(dirpath, name)
                h.update(os.path.relpath(p, root).encode())
                with open(p, "rb") as f:
                    h.update(hashlib.sha256(f.read()).digest())
                n += 1
        return n, h.hexdigest()
    print("src", tree(src))
    dst = shutil.copytree(src, os.path.join(d, "copy"))
    print("copytree", tree(dst) == tree(src))
    shutil.move(os.path.join(dst, "a", "b"), os.path.join(dst, "moved"))
    print("after move", sorted(os.listdir(dst))[:3], len(glob.glob(os.path.join(dst, "**", "*.txt"), recursive=True)))
    arch = shutil.make_archive(os.path.join(d, "arch"), "gztar", src)
    out = os.path.join(d, "unpacked")
    shutil.unpack_archive(arch, out)
    print("tar roundtrip", tree(out) == tree(src))
    with zipfile.ZipFile(os.path.join(d, "z.zip"), "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(glob.glob(os.path.join(src, "*.txt"))):
            z.write(p, os.path.basename(p))
    with zipfile.ZipFile(os.path.join(d, "z.zip")) as z:
        print("zip", len(z.namelist()), z.testzip())
    with gzip.open(os.path.join(d, "g.gz"), "wt") as g:
        g.write("gz " * 10000)
    with gzip.open(os.path.join(d, "g.gz"), "rt") as g:
        print("gzip", len(g.read()))
    shutil.rmtree(dst)
    print("rmtree", os.path.exists(dst))
    db = os.path.join(d, "t.db")
    con = sqlite3.connect(db)
    con.execute("pragma journal_mode=wal")
    con.execute("create table t (id integer primary key, name text, v real)")
    with con:
        con.executemany("insert into t (name, v) values (?, ?)", ((f"n{i % 10}", i * 0.5) for i in range(5000)))
    con.execute("create index ti on t(name)")
    print("sqlite", con.execute("select count(*), sum(v), count(distinct name) from t").fetchone())
    print("group", con.execute("select name, count(*) from t where name in ('n1', 'n7') group by name order by name").fetchall())
    con.close()
    con = sqlite3.connect(db)
    with con:
        con.execute("delete from t where id % 2 = 0")
    con.execute("vacuum")
    print("reopened", con.execute("select count(*) from t").fetchone(), con.execute("pragma integrity_check").fetchone())
    con.close()
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("pragma journal_mode=delete")
    con.execute("begin")
    con.execute("insert into t (name, v) values ('x', 1)")
    con.execute("rollback")
    print("rollback", con.execute("select count(*) from t where name = 'x'").fetchone())
    con.close()
    data = {"list": list(range(100)), "nested": {"k": [1.5, None, True, "s\u00e9"]}, "n": 2**40}
    jp = os.path.join(d, "d.json")
    with open(jp, "w") as f:
        json.dump(data, f, sort_keys=True, indent=1)
    with open(jp) as f:
        back = json.load(f)
    with open(jp, "rb") as f:
        print("json", back == data, hashlib.md5(f.read()).hexdigest())
    with open(os.path.join(src, "big.bin"), "rb") as f:
        print("hashlib", hashlib.file_digest(f, "sha256").hexdigest()[:16], hashlib.blake2b(b"x").hexdigest()[:16])
    with tempfile.NamedTemporaryFile("w+", dir=d, delete=False) as t:
        t.write("temp")
        name = t.name
    os.rename(name, name + ".renamed")
    os.symlink(name + ".renamed", os.path.join(d, "link"))
    with open(os.path.join(d, "link")) as f:
        print("symlink", f.read(), os.path.islink(os.path.join(d, "link")))
    os.truncate(name + ".renamed", 2)
    print("truncate", os.path.getsize(name + ".renamed"))
print("cleaned", not os.path.exists(d))
"#,
        "src (51, 'cbbba6cc1c53d0aa1b69f74873d6698ae04cfa496f80087f08c09278b5ceb433')\ncopytree True\n\
         after move ['a', 'big.bin', 'file00.txt'] 50\ntar roundtrip True\nzip 13 None\ngzip 30000\nrmtree False\n\
         sqlite (5000, 6248750.0, 10)\ngroup [('n1', 500), ('n7', 500)]\nreopened (2500,) ('ok',)\nrollback (0,)\n\
         json True 4b7b2f1d35b8a8d52659e81727477a5c\nhashlib 0171e7718efdca70 0909377ad35110ca\nsymlink temp True\n\
         truncate 2\ncleaned True\n",
    );
}

// needs sentry ptys (branch pty)
#[test]
fn python_pty_spawn() {
    // pty.spawn copies the child's terminal output to stdout (with the
    // terminal's \r\n) and returns its wait status.
    python(
        "pty_spawn.py",
        r#"
import pty, os, sys
chunks = []
def read(fd):
    data = os.read(fd, 1024)
    chunks.append(data)
    return data
status = pty.spawn(["/bin/busybox", "sh", "-c", "test -t 0 && echo stdin-tty; test -t 1 && echo stdout-tty; tty | grep -c /dev/pts/; echo done; exit 3"], read)
out = b"".join(chunks).replace(b"\r\n", b"\n").decode()
print("\nsummary", repr(out), os.waitstatus_to_exitcode(status))
"#,
        "stdin-tty\r\nstdout-tty\r\n1\r\ndone\r\n\nsummary 'stdin-tty\\nstdout-tty\\n1\\ndone\\n' 3\n",
    );
}

// ---- several vCPUs ------------------------------------------------------

/// Two CPU-bound processes: with two vCPUs each ends up on its own (the
/// sentry spreads work that keeps a vCPU busy for whole timeslices while
/// other tasks wait), with one they share vCPU 0. `sched_getcpu` (the
/// getcpu syscall) tells where a process runs; the affinity mask shows the
/// sandbox's vCPUs. Only the sandbox is checked: natively, where the two
/// run is the host scheduler's business.
#[test]
fn cpu_bound_processes_spread_over_vcpus() {
    let p = script(
        "spread.py",
        r#"
import ctypes, os, time
libc = ctypes.CDLL(None)
def spin():
    seen = set()
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        for _ in range(20000):
            pass
        seen.add(libc.sched_getcpu())
    return seen
r, w = os.pipe()
pids = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        os.write(w, (" ".join(map(str, spin())) + "\n").encode())
        os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
os.close(w)
cpus = sorted({int(c) for c in os.read(r, 4096).split()})
print(len(os.sched_getaffinity(0)), cpus)
"#,
    );
    for (n, want) in [("2", "2 [0, 1]\n"), ("1", "1 [0]\n")] {
        let mut cmd = Command::new(RVISOR);
        cmd.args(["do", "--cpus", n, "--cwd", "/", "--", PYTHON, &p]);
        environment(&mut cmd);
        assert_out(&run(cmd, &format!("rvisor do --cpus {n}"), TIMEOUT), &format!("rvisor do --cpus {n}"), want, 0);
    }
}

/// A signal reaches a process spinning in user mode on another vCPU (its
/// vCPU is asked to preempt it), and SIGKILL ends it.
#[test]
fn signals_reach_a_spinning_process_on_another_vcpu() {
    sh(
        "busybox sh -c 'trap \"echo got-usr1; exit 3\" USR1; while :; do :; done' & a=$!; \
         busybox sh -c 'while :; do :; done' & b=$!; \
         sleep 0.3; kill -USR1 $a; wait $a; echo a=$?; kill -9 $b; wait $b; echo b=$?",
        "got-usr1\na=3\nb=137\n",
        0,
    );
}

/// CPU time is split into user time (computing) and system time (in the
/// kernel, here the sentry): a busy loop is mostly user time, a loop of
/// syscalls adds system time, for the process and its reaped children.
#[test]
fn python_user_and_system_time() {
    python(
        "usersys.py",
        r#"
import os, resource
t0 = os.times()
x = 0
for i in range(3_000_000):
    x += i
t1 = os.times()
for _ in range(20000):
    os.stat("/")
t2 = os.times()
print("busy loop mostly user:", t1.user - t0.user > 2 * (t1.system - t0.system))
print("syscalls add system time:", t2.system > t1.system)
pid = os.fork()
if pid == 0:
    for _ in range(20000):
        os.stat("/")
    y = sum(range(2_000_000))
    os._exit(0)
os.waitpid(pid, 0)
c = resource.getrusage(resource.RUSAGE_CHILDREN)
print("child user and system:", c.ru_utime > 0, c.ru_stime > 0)
"#,
        "busy loop mostly user: True\nsyscalls add system time: True\nchild user and system: True True\n",
    );
}

#[test]
fn python_sysfs_xattr_tmpfile() {
    // os.cpu_count reads /sys (the sandbox's vCPUs, as the affinity mask
    // says); tempfile.TemporaryFile uses O_TMPFILE; xattrs on tmpfs.
    python(
        "sysfs_xattr_tmpfile.py",
        r#"
import os, shutil, tempfile
print("cpu_count", os.cpu_count() == len(os.sched_getaffinity(0)) == os.sysconf("SC_NPROCESSORS_CONF"))
d = tempfile.mkdtemp(dir="/dev/shm")
f = os.path.join(d, "x")
open(f, "w").close()
os.setxattr(f, "user.k", b"v")
print("xattr", os.getxattr(f, "user.k"), os.listxattr(f))
fd = os.open(d, os.O_TMPFILE | os.O_RDWR, 0o600)
os.write(fd, b"tmp")
# With a dir fd Python calls linkat (AT_SYMLINK_FOLLOW), not link.
dfd = os.open(d, os.O_RDONLY)
os.link(f"/proc/self/fd/{fd}", "named", dst_dir_fd=dfd, follow_symlinks=True)
print("tmpfile", open(os.path.join(d, "named")).read(), sorted(os.listdir(d)))
with tempfile.TemporaryFile(dir="/tmp") as t:
    t.write(b"abc"); t.seek(0)
    print("TemporaryFile", t.read(), os.fstat(t.fileno()).st_nlink)
shutil.rmtree(d)
"#,
        "cpu_count True\nxattr b'v' ['user.k']\ntmpfile tmp ['named', 'x']\nTemporaryFile b'abc' 0\n",
    );
}
