//! End-to-end workloads under `rvisor do`: busybox sh scripts and python3
//! programs exercising the process model (pipelines, job control, signals,
//! fork/wait, threads, subprocesses, multiprocessing, timers, sockets, file
//! work). Each runs natively and in the sandbox; both must print exactly the
//! expected output, so a wrong expectation shows up as a native failure and a
//! sandbox difference as an rvisor one.
//!
//! Timeouts are generous and only catch hangs; nothing asserts speed.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{assert_out, py, run, Out};

const RVISOR: &str = env!("CARGO_BIN_EXE_rvisor");
const PYTHON: &str = "/usr/bin/python3";
const BUSYBOX: &str = "/bin/busybox";
const TIMEOUT: Duration = common::TIMEOUT;

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

fn python(prog: &py::Py) {
    assert!(std::path::Path::new(PYTHON).exists(), "{PYTHON} is needed (scripts/setup.sh installs it)");
    let p = script(prog.name, prog.text);
    check(&[PYTHON, &p], prog.stdout, 0);
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
    python(&py::THREADS);
}

#[test]
fn python_subprocess_hundred_children() {
    python(&py::SUBPROCESS);
}

#[test]
fn python_multiprocessing_pool() {
    python(&py::MP_POOL);
}

#[test]
fn python_multiprocessing_forkserver() {
    python(&py::MP_FORKSERVER);
}

#[test]
fn python_unix_socket_paths_are_files() {
    python(&py::Py {
        name: "sockpath.py",
        text: r#"
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
        stdout: "listed ['s']\nis socket True\nmode 0o600\nrebind Address already in use\nafter unlink ok\n",
    });
}

#[test]
fn python_alarm_and_setitimer() {
    python(&py::ALARM);
}

#[test]
fn python_cpu_time_itimers() {
    // Spins for at most 30 s of wall time, so a timer that never fires
    // shows up as a count of 0 rather than a hang.
    python(&py::Py {
        name: "cputimers.py",
        text: r#"
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
        stdout: "virtual 3 True\nprof 3 True\n",
    });
}

#[test]
fn python_fork_and_waitpid() {
    python(&py::FORK);
}

#[test]
fn python_selectors_unix_sockets() {
    python(&py::Py {
        name: "selectors_unix.py",
        text: r#"
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
        stdout: "selector EpollSelector\naccepted 8\nechoed True 80000\nserver saw eof 8 1\n\
         EpollSelector True ['b'] b'ping' [('bw', True)] ['hup'] b''\n\
         PollSelector True ['b'] b'ping' [('bw', True)] ['hup'] b''\n\
         SelectSelector True ['b'] b'ping' [('bw', True)] ['hup'] b''\n\
         dgrams ['dgram 0', 'dgram 1', 'dgram 2', 'dgram 3', 'dgram 4']\n",
    });
}

#[test]
fn python_asyncio_unix_sockets() {
    python(&py::ASYNCIO);
}

#[test]
fn python_file_work() {
    python(&py::FILES);
}

#[test]
fn python_sendfile_splice_copy_file_range() {
    python(&py::ZERO_COPY);
}

/// busybox cat copies with sendfile, coreutils cp with copy_file_range.
#[test]
fn sh_cat_and_cp_copy_in_the_kernel() {
    sh(
        r#"
d=$(mktemp -d)
seq 1 200000 > $d/f
cat $d/f | md5sum
/usr/bin/cp $d/f $d/g && md5sum < $d/g
cat $d/f > $d/h && md5sum < $d/h
rm -r $d
"#,
        "0e10426a1d5bddffcef02f1345787128  -\n0e10426a1d5bddffcef02f1345787128  -\n0e10426a1d5bddffcef02f1345787128  -\n",
        0,
    );
}

// needs sentry ptys (branch pty)
#[test]
fn python_pty_spawn() {
    python(&py::PTY_SPAWN);
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
    python(&py::Py {
        name: "usersys.py",
        text: r#"
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
        stdout: "busy loop mostly user: True\nsyscalls add system time: True\nchild user and system: True True\n",
    });
}

#[test]
fn python_sysfs_xattr_tmpfile() {
    // os.cpu_count reads /sys (the sandbox's vCPUs, as the affinity mask
    // says); tempfile.TemporaryFile uses O_TMPFILE; xattrs on tmpfs.
    python(&py::Py {
        name: "sysfs_xattr_tmpfile.py",
        text: r#"
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
        stdout: "cpu_count True\nxattr b'v' ['user.k']\ntmpfile tmp ['named', 'x']\nTemporaryFile b'abc' 0\n",
    });
}
