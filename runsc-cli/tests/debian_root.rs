//! A Debian bookworm root file system (mmdebstrap minbase + python3, built
//! once by scripts/debian-root.sh, which scripts/setup.sh runs) under
//! `rvisor do --root`: its own dynamically linked coreutils, tar, findutils,
//! dash and python3, with its own glibc and ld.so, doing file work on the
//! sandbox's memory overlay. Each workload also runs natively, chrooted into
//! the same root, and the two must print the same (stdout, stderr and exit
//! status); most workloads also check what they print, so a native run that
//! does nothing cannot make a sandbox that does nothing pass.
//!
//! The cached root must never change: the sandbox writes to its memory
//! overlay, and the native run gets the same, an overlayfs over the root
//! with a tmpfs upper layer in a mount namespace of its own (so the test
//! runs as root, which `--root` needs anyway).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{py, run, Out, TIMEOUT};

const RVISOR: &str = env!("CARGO_BIN_EXE_rvisor");
/// Where scripts/debian-root.sh builds the root (its DEBIAN_ROOT default).
const ROOT: &str = "/var/tmp/rvisor-debian-bookworm";
/// Written last by scripts/debian-root.sh: the root is complete.
const STAMP: &str = "etc/rvisor-root-stamp";

/// The native side: in a private mount namespace (`unshare --mount`), a
/// tmpfs over the host's /tmp holds an overlayfs's upper layer over the
/// root; /proc and the host's /dev are mounted in it and the command runs
/// chrooted there. Everything goes away with the namespace.
const NATIVE_SETUP: &str = r#"
set -e
root=$1
shift
mount -t tmpfs tmpfs /tmp
mkdir /tmp/upper /tmp/work /tmp/merged
mount -t overlay overlay -o "lowerdir=$root,upperdir=/tmp/upper,workdir=/tmp/work" /tmp/merged
mount -t proc proc /tmp/merged/proc
mount --rbind /dev /tmp/merged/dev
exec chroot /tmp/merged "$@"
"#;

fn root() -> &'static str {
    assert!(
        Path::new(ROOT).join(STAMP).is_file(),
        "no Debian root at {ROOT} (or an unfinished one): `bash scripts/debian-root.sh` builds it (scripts/setup.sh runs it)"
    );
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "the Debian root tests need root (chroot, mounts, rvisor's gofer)");
    ROOT
}

/// The same environment natively and in the sandbox (which gets the
/// caller's): the root's own PATH, no host python settings.
fn environment(cmd: &mut Command) {
    cmd.env_clear()
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", "/root")
        .env("LC_ALL", "C")
        .env("PYTHONDONTWRITEBYTECODE", "1");
}

fn native(argv: &[&str], timeout: Duration) -> Out {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c", NATIVE_SETUP, "native-setup", root()])
        .args(argv)
        .current_dir("/");
    environment(&mut cmd);
    run(cmd, &format!("native chroot {argv:?}"), timeout)
}

fn sandbox(argv: &[&str], timeout: Duration) -> Out {
    let mut cmd = Command::new(RVISOR);
    cmd.args(["do", "--root", root(), "--cwd", "/", "--"]).args(argv).current_dir("/");
    environment(&mut cmd);
    run(cmd, &format!("rvisor do --root {ROOT} {argv:?}"), timeout)
}

/// Runs `argv` chrooted natively and under `rvisor do --root`; both must
/// exit 0 and print the same on stdout and stderr. Returns stdout.
fn same(argv: &[&str]) -> String {
    let n = native(argv, TIMEOUT);
    assert!(n.code == 0, "native run failed (the test is wrong): exit {}\n--- stdout:\n{}--- stderr:\n{}", n.code, n.stdout, n.stderr);
    let s = sandbox(argv, TIMEOUT);
    assert!(!s.stderr.contains("sentry panic"), "sentry panic:\n{}", s.stderr);
    if (s.code, &s.stdout, &s.stderr) != (n.code, &n.stdout, &n.stderr) {
        panic!(
            "rvisor do --root differs from native: exit {} (native {})\n{}{}",
            s.code,
            n.code,
            diff("stdout", &n.stdout, &s.stdout),
            diff("stderr", &n.stderr, &s.stderr)
        );
    }
    n.stdout
}

/// The lines that differ, in order, for the failure message.
fn diff(what: &str, native: &str, sandbox: &str) -> String {
    if native == sandbox {
        return String::new();
    }
    let (n, s): (Vec<_>, Vec<_>) = (native.lines().collect(), sandbox.lines().collect());
    let mut out = format!("--- {what}: {} lines native, {} in the sandbox; differing lines (native | sandbox):\n", n.len(), s.len());
    for i in 0..n.len().max(s.len()) {
        let (a, b) = (n.get(i).copied().unwrap_or("<none>"), s.get(i).copied().unwrap_or("<none>"));
        if a != b {
            out += &format!("{:5}: {a}\n     | {b}\n", i + 1);
        }
    }
    out
}

/// `sh -c SCRIPT` with the root's /bin/sh (dash).
fn sh(script: &str) -> String {
    same(&["/bin/sh", "-c", script])
}

/// Asserts `out` has each of `lines` as a whole line.
fn has_lines(out: &str, lines: &[&str]) {
    for l in lines {
        assert!(out.lines().any(|x| x == *l), "missing line {l:?} in:\n{out}");
    }
}

/// Writes the program into the run's own /tmp (the overlay, natively and in
/// the sandbox) and runs it with the root's python3, so multiprocessing's
/// spawn start method can import it again.
fn python(prog: &py::Py) {
    let script = format!("printf '%s' \"$1\" > /tmp/{0} && exec /usr/bin/python3 /tmp/{0}", prog.name);
    let out = same(&["/bin/sh", "-c", &script, "sh", prog.text]);
    assert_eq!(out, prog.stdout, "{}: both printed the same, but not what the program must print", prog.name);
}

#[test]
fn ls_dynamic_binary() {
    // Sizes, modes, link counts, owners and times of the root's own files,
    // read through the gofer, and ls itself loaded by the root's ld.so.
    let out = same(&["/bin/ls", "-la", "/usr/bin"]);
    assert!(out.lines().count() > 100, "{out}");
    assert!(out.lines().any(|l| l.ends_with(" python3 -> python3.11")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with(" ls")), "{out}");
    // Not "/" (nor "/etc/.."): its mount points (/proc, /dev) and times are each side's own.
    let out = same(&["/bin/ls", "-lAn", "--time-style=full-iso", "/etc", "/etc/apt", "/usr/lib/x86_64-linux-gnu/libc.so.6"]);
    assert!(out.contains("libc.so.6"), "{out}");
    // Load addresses are random; the sandbox has no vDSO (glibc falls
    // back to system calls), so ldd's vdso line is left out.
    let out = sh("ldd /usr/bin/python3 | grep -v linux-vdso | sed 's/ (0x[0-9a-f]*)$//'");
    assert!(out.contains("libc.so.6 =>"), "{out}");
}

#[test]
fn tree_copy_move_remove_find_tar() {
    let out = sh(r#"
set -e
mkdir -p /tmp/w/src && cd /tmp/w
i=0
while [ $i -lt 40 ]; do
  d=src/d$((i % 5))/e$((i % 3))
  mkdir -p $d
  seq 1 $((i * 50)) > $d/f$i.txt
  i=$((i + 1))
done
mkdir src/empty
ln -s d0/e0/f0.txt src/link
ln -s /nonexistent src/dangling
ln src/d1/e1/f1.txt src/hard
mkfifo src/fifo
chmod 600 src/d2/e2/f2.txt
chmod 750 src/d3
chown -R 1000:1000 src/d4
chown -h 1000:100 src/link
head -c 1000000 /dev/zero > src/zeros
find src -exec touch -h -d '2021-03-04 05:06:07.123456789' {} +
# Directory sizes are each file system's own; the rest must survive each copy.
list() { (cd "$1" && find . \( -type d -printf '%p %y %M %U:%G %n - %T+\n' \) -o -printf '%p %y %M %U:%G %n %s %T+ %l\n' | sort); }
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum); }
list src > src.list
wc -l < src.list
sums src
cp -a src copy
list copy | diff src.list - && echo "cp -a same"
mv copy moved
mv moved/d0 moved/d0x
mv moved/d0x moved/d1/
mv moved/zeros moved/zeros2
ls moved moved/d1
list moved | wc -l
tar --format=posix -C src -cf - . | (mkdir untar && tar -C untar -xpf -)
list untar | diff src.list - && echo "tar same"
sums untar
tar --format=posix -C src -czf src.tgz .
mkdir untgz && tar -C untgz -xzf src.tgz && list untgz | diff src.list - && echo "tgz same"
tar -tf src.tgz | sort | sha256sum
find src -name 'f1*' -type f | sort
find src -type d -empty
find src -size +5k | sort
find src -type f -links 2 | sort
find src -perm 600
find src -user 1000 | sort | head -3
find src -type l -printf '%p -> %l\n' | sort
find src -maxdepth 1 -mindepth 1 | sort
find src -name '*.txt' -exec grep -l '^77$' {} + | sort
rm -rf moved untar untgz
ls
rm -rf src
ls
cd / && rm -rf /tmp/w
ls /tmp
echo done
"#);
    has_lines(&out, &["67", "cp -a same", "tar same", "tgz same", "src/hard", "src/link -> d0/e0/f0.txt", "done"]);
}

#[test]
fn hundred_mib_file_sha256() {
    let out = sh(r#"
set -e
cd /tmp
yes 'rvisor debian root 0123456789 abcdefghijklmnopqrstuvwxyz' | head -c 104857600 > big
wc -c < big
sha256sum big
dd if=big bs=1M status=none | sha256sum
cp big big2 && cmp big big2 && echo cmp same
python3 -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' big2
tail -c 100 big | od -c | head -2
rm big big2
ls /tmp
"#);
    has_lines(&out, &["104857600", "cmp same"]);
}

#[test]
fn sh_redirections() {
    let out = sh(r#"
d=$(mktemp -d) && cd "$d" || exit 1
echo one > f
echo two >> f
cat f
wc -l < f
{ echo out; echo err >&2; } > both 2>&1
cat both
ls /no-such-dir-xyz > o 2>&1; echo "ls status $?"; grep -c 'no-such-dir-xyz' o
ls /no-such-dir-xyz 2>&1 >/dev/null | sed 's/^/piped: /'
echo to-stderr 2>/dev/null >&2 3>&1
echo through-dev-stderr > /dev/stderr
cat <<EOF
here $((6*7)) doc
EOF
cat <<'EOF'
literal $HOME $(nope)
EOF
exec 3> fd3
echo via3 >&3
exec 3>&-
cat fd3
exec 4< f; read x <&4; read y <&4; exec 4<&-; echo "fd4:$x,$y"
echo rw > rw; exec 5<> rw; read z <&5; echo more >&5; exec 5>&-; cat rw; echo "read:$z"
set -C; (echo clobber > f) 2>/dev/null || echo "noclobber refused"; echo forced >| f; set +C; cat f
: > f; wc -c < f
echo abc > g; cat < g > h; cat h
echo append >> h; wc -l < h
(echo closed >&-) 2>/dev/null || echo "write to closed fd failed"
exec 6>&1; exec > redirected; echo into-file; exec 1>&6 6>&-; cat redirected
cd / && rm -rf "$d"
"#);
    has_lines(&out, &["one", "two", "out", "err", "via3", "fd4:one,two", "noclobber refused", "forced", "into-file"]);
}

#[test]
fn python_file_work() {
    python(&py::FILES);
}

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
fn python_alarm_and_setitimer() {
    python(&py::ALARM);
}

#[test]
fn python_fork_and_waitpid() {
    python(&py::FORK);
}

#[test]
fn python_pty_spawn() {
    python(&py::PTY_SPAWN);
}

#[test]
fn python_asyncio_unix_sockets() {
    python(&py::ASYNCIO);
}

#[test]
fn root_stays_unchanged() {
    // Writes anywhere in the sandbox land in its memory overlay, never in
    // the cached root.
    let marker = Path::new(root()).join("rvisor-test-marker");
    let passwd = Path::new(root()).join("etc/passwd");
    let mtime = || std::fs::metadata(&passwd).unwrap().modified().unwrap();
    let before = mtime();
    let out = sandbox(&["/bin/sh", "-c", "echo x > /rvisor-test-marker && rm -rf /tmp && touch /etc/passwd && cat /rvisor-test-marker"], TIMEOUT);
    assert_eq!((out.code, out.stdout.as_str()), (0, "x\n"), "{}", out.stderr);
    assert!(!marker.exists(), "the sandbox wrote {}", marker.display());
    assert!(Path::new(root()).join("tmp").is_dir(), "the sandbox removed the root's /tmp");
    assert_eq!(mtime(), before, "the sandbox touched the root's /etc/passwd");
}
