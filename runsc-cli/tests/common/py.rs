//! Python programs shared by workloads.rs (the host's python3 under `rvisor do`)
//! and debian_root.rs (the Debian root's python3 under `rvisor do --root`): each
//! prints only what is the same on every run, natively and in the sandbox.

/// One program and what it must print (exit status 0).
pub struct Py {
    /// File name of the script.
    pub name: &'static str,
    pub text: &'static str,
    pub stdout: &'static str,
}

pub const THREADS: Py = Py {
    name: "threads.py",
    text: r#"
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
    stdout: "2000 2000 (0, '5feceb66') (1999, 'ce8457d5')\n\
         8eae876b5933d9fe2f30e8177a2f3afb4e9d28dfaf916a915c26729252a9ec97\n\
         alive 0 active 1\ncond 4950 True\nlocal True\nexecutor 332833500\n",
};

pub const SUBPROCESS: Py = Py {
    name: "subproc.py",
    text: r#"
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
print("check_output", subprocess.check_output(["/usr/bin/seq", "3"]).split())
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
p1 = subprocess.Popen(["/usr/bin/seq", "1000"], stdout=subprocess.PIPE)
p2 = subprocess.Popen(["/usr/bin/wc", "-l"], stdin=p1.stdout, stdout=subprocess.PIPE)
p1.stdout.close()
print("pipeline", p2.communicate()[0].strip(), p1.wait(), p2.returncode)
"#,
    stdout: "true ok 60\necho 40 True\nfalse 1\nsh exit 3\nkilled -9\ncat 200000 True\nshell 'out\\n' 'err\\n' 4\n\
         check_output [b'1', b'2', b'3']\ntimeout raised\nenoent raised\npopen b'via popen\\n' 0\n\
         parallel [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\nenv ONLY=this\ncwd /etc\npipeline b'1000' 0 0\n",
};

pub const ALARM: Py = Py {
    name: "alarm.py",
    text: r#"
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
    stdout: "alarm prev 0\nalarm remaining True\nalarm ['alarm']\nsleep with alarm ['alarm']\ncancel 0\nreal ticks 5 True\n\
         disarmed (0.0, 0.0)\ngetitimer True\nbusy loop interrupted\nself kill True\npending True\nsigwait True\n",
};

pub const FORK: Py = Py {
    name: "fork.py",
    text: r#"
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
    stdout: "exit 0 True 0 0\nexit 1 True 1 1\nexit 3 True 3 3\nexit 255 True 255 255\nwnohang (0, 0)\nkilled True True -9\n\
         self term True SIGTERM\nabort SIGABRT\nany 20 True\nechild\ngrandchild via child 10\ndata from child\ngetppid 0\n\
         stopped True SIGSTOP\ncontinued True\nterm SIGTERM\n",
};

pub const ASYNCIO: Py = Py {
    name: "asyncio_unix.py",
    text: r#"
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
    stdout: "clients 10 True\nsocketpair 300000\nstreams b'over a socketpair\\n'\nsleep order [1, 3, 5]\nwait_for timeout\n\
         call_later later\nsubprocess b'from subprocess\\n' 0\nexecutor 499500\n",
};

pub const FILES: Py = Py {
    name: "files.py",
    text: r#"
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
    stdout: "src (51, 'cbbba6cc1c53d0aa1b69f74873d6698ae04cfa496f80087f08c09278b5ceb433')\ncopytree True\n\
         after move ['a', 'big.bin', 'file00.txt'] 50\ntar roundtrip True\nzip 13 None\ngzip 30000\nrmtree False\n\
         sqlite (5000, 6248750.0, 10)\ngroup [('n1', 500), ('n7', 500)]\nreopened (2500,) ('ok',)\nrollback (0,)\n\
         json True 4b7b2f1d35b8a8d52659e81727477a5c\nhashlib 0171e7718efdca70 0909377ad35110ca\nsymlink temp True\n\
         truncate 2\ncleaned True\n",
};

/// pty.spawn copies the child's terminal output to stdout (with the
/// terminal's \r\n) and returns its wait status.
pub const PTY_SPAWN: Py = Py {
    name: "pty_spawn.py",
    text: r#"
import pty, os, sys
chunks = []
def read(fd):
    data = os.read(fd, 1024)
    chunks.append(data)
    return data
status = pty.spawn(["/bin/sh", "-c", "test -t 0 && echo stdin-tty; test -t 1 && echo stdout-tty; tty | grep -c /dev/pts/; echo done; exit 3"], read)
out = b"".join(chunks).replace(b"\r\n", b"\n").decode()
print("\nsummary", repr(out), os.waitstatus_to_exitcode(status))
"#,
    stdout: "stdin-tty\r\nstdout-tty\r\n1\r\ndone\r\n\nsummary 'stdin-tty\\nstdout-tty\\n1\\ndone\\n' 3\n",
};

/// Functions the multiprocessing programs hand to their workers (module
/// level, so the spawn and forkserver start methods can import them).
macro_rules! mp_helpers {
    () => {
        r#"
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
"#
    };
}

pub const MP_POOL: Py = Py {
    name: "mp_pool.py",
    text: concat!(
        mp_helpers!(),
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
    ),
    stdout: "map 332833500\nchunks [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]\nasync 144\nimap [0, 1, 4, 9, 16]\nworkers True True\n\
         queue from child\nexitcode 0\nexitcode 7\nshared value 4000\npipe 4950\nspawn 328350\n",
};

pub const MP_FORKSERVER: Py = Py {
    name: "mp_forkserver.py",
    text: concat!(
        mp_helpers!(),
        r#"
if __name__ == "__main__":
    with mp.get_context("forkserver").Pool(2) as pool:
        print("forkserver", sum(pool.map(square, range(100))))
"#
    ),
    stdout: "forkserver 328350\n",
};

/// The zero-copy paths Python takes on Linux: shutil.copyfile (sendfile),
/// os.copy_file_range, os.splice, os.sendfile to a unix socket and
/// socket.sendfile over loopback TCP, each checked by digest.
pub const ZERO_COPY: Py = Py {
    name: "zero_copy.py",
    text: r#"
import hashlib, os, shutil, socket, tempfile, threading
def digest(p):
    with open(p, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]
with tempfile.TemporaryDirectory() as d:
    src = os.path.join(d, "src")
    with open(src, "wb") as f:
        for i in range(5 * 1024):
            f.write(hashlib.sha256(str(i).encode()).digest() * 32)
    want = digest(src)
    print("source", os.path.getsize(src), want)
    shutil.copyfile(src, os.path.join(d, "a"))
    print("shutil.copyfile", digest(os.path.join(d, "a")) == want)
    fi = os.open(src, os.O_RDONLY)
    fo = os.open(os.path.join(d, "b"), os.O_WRONLY | os.O_CREAT, 0o644)
    n = 0
    while (k := os.copy_file_range(fi, fo, 1 << 20)) > 0:
        n += k
    os.close(fo)
    print("copy_file_range", n, digest(os.path.join(d, "b")) == want)
    r, w = os.pipe()
    print("splice", os.splice(fi, w, 4096, offset_src=4096), os.read(r, 8192) == open(src, "rb").read()[4096:8192])
    def drain(s, out):
        buf = bytearray()
        while chunk := s.recv(1 << 16):
            buf += chunk
        out.append(hashlib.sha256(buf).hexdigest()[:16])
    a, b = socket.socketpair()
    got = []
    t = threading.Thread(target=drain, args=(b, got))
    t.start()
    off, size = 0, os.path.getsize(src)
    while off < size:
        off += os.sendfile(a.fileno(), fi, off, size - off)
    a.close()
    t.join()
    print("sendfile unix", got == [want])
    l = socket.create_server(("127.0.0.1", 0))
    c = socket.create_connection(l.getsockname())
    s, _ = l.accept()
    got = []
    t = threading.Thread(target=drain, args=(s, got))
    t.start()
    with open(src, "rb") as f:
        print("socket.sendfile tcp", c.sendfile(f))
    c.close()
    t.join()
    print("received", got == [want])
    for x in (s, l, b):
        x.close()
    os.close(fi)
"#,
    stdout: "source 5242880 74f8bd5475d3aa8d\nshutil.copyfile True\ncopy_file_range 5242880 True\nsplice 4096 True\n\
         sendfile unix True\nsocket.sendfile tcp 5242880\nreceived True\n",
};
