//! Volumes (`rvisor do --volume`) are live host trees: extended attributes
//! set in the sandbox are the host file's (and the other way round), and
//! what the host changes while the sandbox runs — files made, removed,
//! renamed, rewritten, a directory replaced by a file or a symlink — is
//! what the sandbox sees at its next lookup. Xattr calls never reach a
//! host file outside the sandbox's root and volumes.

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{run, TIMEOUT};

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        // Under /tmp: the tests need a filesystem with user xattrs (ext4,
        // tmpfs and btrfs have them).
        let d = std::env::temp_dir().join(format!("rvisor-live-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// The host's lgetxattr.
fn host_get(p: &Path, name: &str) -> Option<Vec<u8>> {
    let (p, n) = (cpath(p), CString::new(name).unwrap());
    let mut buf = vec![0u8; 65536];
    // SAFETY: NUL-terminated strings and a buffer of the length passed.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return None;
    }
    buf.truncate(r as usize);
    Some(buf)
}

/// The host's lsetxattr; false where the filesystem has no user xattrs.
fn host_set(p: &Path, name: &str, value: &[u8]) -> bool {
    let (p, n) = (cpath(p), CString::new(name).unwrap());
    // SAFETY: NUL-terminated strings and a value of the length passed.
    unsafe { libc::lsetxattr(p.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) == 0 }
}

/// The host's llistxattr, sorted.
fn host_list(p: &Path) -> Vec<String> {
    let p = cpath(p);
    let mut buf = vec![0u8; 65536];
    // SAFETY: a NUL-terminated path and a buffer of the length passed.
    let r = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert!(r >= 0, "llistxattr: {}", std::io::Error::last_os_error());
    let mut v: Vec<String> = buf[..r as usize].split(|&b| b == 0).filter(|n| !n.is_empty()).map(|n| String::from_utf8_lossy(n).into_owned()).collect();
    v.sort();
    v
}

fn rvisor(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rvisor"));
    c.args(args);
    c
}

const XATTR_SCRIPT: &str = r#"
import errno, os
def err(f):
    try:
        f()
        print("no error")
    except OSError as e:
        print(errno.errorcode[e.errno])
p = "/vol/file"
print(os.getxattr(p, "user.from_host"))
os.setxattr(p, "user.from_sandbox", b"sandbox-value")
os.setxattr("/vol", "user.on_dir", b"dir-value")
os.setxattr(p, "user.replaced", b"old")
os.setxattr(p, "user.replaced", b"new", os.XATTR_REPLACE)
err(lambda: os.setxattr(p, "user.from_host", b"x", os.XATTR_CREATE))
err(lambda: os.setxattr(p, "user.missing", b"x", os.XATTR_REPLACE))
err(lambda: os.getxattr(p, "user.missing"))
err(lambda: os.removexattr(p, "user.missing"))
os.setxattr(p, "user.big", b"v" * 4000)
print(len(os.getxattr(p, "user.big")))
err(lambda: os.setxattr(p, "user.too-big", b"v" * 65537))
err(lambda: os.setxattr(p, "user." + "n" * 251, b"x"))
err(lambda: os.setxattr(p, "trusted.x", b"x"))
err(lambda: os.getxattr(p, "security.capability"))
err(lambda: os.setxattr(p, "security.capability", b"x"))
print(sorted(os.listxattr(p)))
os.removexattr(p, "user.big")
print(sorted(os.listxattr(p)))
# Through an open fd, too.
fd = os.open(p, os.O_RDONLY)
print(os.getxattr(fd, "user.replaced"))
os.close(fd)
# A read-only volume: reads work, changes are EROFS.
print(os.getxattr("/ro/file", "user.ro"))
err(lambda: os.setxattr("/ro/file", "user.x", b"1"))
err(lambda: os.removexattr("/ro/file", "user.ro"))
# Symlinks hold no user xattrs (l* calls name the link itself).
err(lambda: os.getxattr("/vol/link", "user.a", follow_symlinks=False))
err(lambda: os.setxattr("/vol/link", "user.a", b"1", follow_symlinks=False))
print(os.getxattr("/vol/link", "user.from_host"))
"#;

const XATTR_OUT: &str = "b'host-value'
EEXIST
ENODATA
ENODATA
ENODATA
4000
E2BIG
ERANGE
EPERM
ENODATA
ENOTSUP
['user.big', 'user.from_host', 'user.from_sandbox', 'user.replaced']
['user.from_host', 'user.from_sandbox', 'user.replaced']
b'new'
b'ro-value'
EROFS
EROFS
ENODATA
EPERM
b'host-value'
";

#[test]
fn xattrs_of_volume_files_are_the_hosts() {
    let d = Dir::new("xattr");
    std::fs::create_dir_all(d.p("vol")).unwrap();
    std::fs::create_dir_all(d.p("volro")).unwrap();
    std::fs::write(d.p("vol/file"), "data").unwrap();
    std::fs::write(d.p("volro/file"), "data").unwrap();
    std::os::unix::fs::symlink("file", d.p("vol/link")).unwrap();
    if !host_set(&d.p("vol/file"), "user.from_host", b"host-value") {
        eprintln!("skipping: {} has no user xattrs", d.0.display());
        return;
    }
    assert!(host_set(&d.p("volro/file"), "user.ro", b"ro-value"));
    let vol = format!("{}:/vol", d.p("vol").display());
    let volro = format!("{}:/ro:ro", d.p("volro").display());
    let o = run(rvisor(&["do", "--volume", &vol, "--volume", &volro, "--", "/usr/bin/python3", "-c", XATTR_SCRIPT]), "xattrs", TIMEOUT);
    common::assert_out(&o, "sandbox", XATTR_OUT, 0);
    // The host sees what the sandbox set and removed.
    assert_eq!(host_get(&d.p("vol/file"), "user.from_sandbox").as_deref(), Some(&b"sandbox-value"[..]));
    assert_eq!(host_get(&d.p("vol/file"), "user.replaced").as_deref(), Some(&b"new"[..]));
    assert_eq!(host_get(&d.p("vol"), "user.on_dir").as_deref(), Some(&b"dir-value"[..]));
    assert_eq!(host_list(&d.p("vol/file")), ["user.from_host", "user.from_sandbox", "user.replaced"]);
    assert_eq!(host_list(&d.p("volro/file")), ["user.ro"]);
}

#[test]
fn xattr_calls_stay_inside_the_root_and_volumes() {
    let d = Dir::new("xattr-escape");
    // A root of symlinks into a read-only /usr volume (merged-/usr hosts),
    // so python runs while nothing else of the host is in the sandbox.
    std::fs::create_dir_all(d.p("root/tmp")).unwrap();
    for l in ["bin", "lib", "lib64", "sbin"] {
        std::os::unix::fs::symlink(format!("usr/{l}"), d.p(&format!("root/{l}"))).unwrap();
    }
    std::fs::create_dir_all(d.p("root/usr")).unwrap();
    std::fs::create_dir_all(d.p("vol")).unwrap();
    std::fs::create_dir_all(d.p("outside")).unwrap();
    let secret = d.p("outside/secret");
    std::fs::write(&secret, "secret").unwrap();
    if !host_set(&secret, "user.secret", b"host-secret-value") {
        eprintln!("skipping: {} has no user xattrs", d.0.display());
        return;
    }
    std::os::unix::fs::symlink(&secret, d.p("vol/abs-link")).unwrap();
    std::os::unix::fs::symlink("../outside/secret", d.p("vol/up-link")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../../..".to_string() + secret.to_str().unwrap(), d.p("vol/deep-link")).unwrap();
    std::os::unix::fs::symlink(d.p("outside"), d.p("vol/dir-link")).unwrap();
    let script = r#"
import errno, os
def err(f):
    try:
        r = f()
        print("reached", r)
    except OSError as e:
        print(errno.errorcode[e.errno])
for l in ["/vol/abs-link", "/vol/up-link", "/vol/deep-link", "/vol/dir-link/secret", "/vol/../outside/secret"]:
    err(lambda: os.getxattr(l, "user.secret"))
    err(lambda: os.listxattr(l))
    err(lambda: os.setxattr(l, "user.planted", b"x"))
    err(lambda: os.removexattr(l, "user.secret"))
    err(lambda: os.setxattr(l, "user.planted", b"x", follow_symlinks=False))
    err(lambda: os.removexattr(l, "user.secret", follow_symlinks=False))
"#;
    let root = d.p("root");
    let vol = format!("{}:/vol", d.p("vol").display());
    let o = run(
        rvisor(&["do", "--root", root.to_str().unwrap(), "--volume", "/usr:/usr:ro", "--volume", &vol, "--", "/usr/bin/python3", "-c", script]),
        "xattr escape",
        TIMEOUT,
    );
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    assert!(!o.stdout.contains("reached") && !o.stdout.contains("host-secret"), "an xattr call reached the host file:\n{}", o.stdout);
    // The links themselves: l* calls see a symlink (no user xattrs); the
    // followed ones find nothing at the target inside the sandbox.
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 30, "{}", o.stdout);
    assert_eq!(&lines[..6], ["ENOENT", "ENOENT", "ENOENT", "ENOENT", "EPERM", "EPERM"], "{}", o.stdout);
    assert_eq!(host_list(&secret), ["user.secret"]);
    assert_eq!(host_get(&secret, "user.secret").as_deref(), Some(&b"host-secret-value"[..]));
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret");
}

/// Waits for the sandbox to make `p` (in the volume).
fn wait_for(p: &Path) {
    let start = Instant::now();
    while !p.exists() {
        assert!(start.elapsed() < TIMEOUT, "the sandbox never made {}", p.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

const LIVE_SCRIPT: &str = r#"
import os, time
def wait(p):
    while not os.path.exists(p):
        time.sleep(0.02)
def kind(p):
    if os.path.islink(p): return "link"
    if os.path.isdir(p): return "dir"
    if os.path.isfile(p): return "file"
    return "absent"
def show(step):
    st = os.stat("/vol/f")
    print(step, sorted(os.listdir("/vol")), [kind("/vol/" + n) for n in ["d", "s", "ren", "ren2", "later", "gone"]],
          st.st_size, st.st_mtime_ns == 1_000_000_000 * 10**9)
# Look everything up, so that any cache would hold it.
show(1)
os.stat("/vol/d/inner"); os.listdir("/vol/ren"); os.stat("/vol/s/x"); os.stat("/vol/gone")
fd = os.open("/vol/f", os.O_RDONLY)
print(os.pread(fd, 100, 0))
open("/vol/ready", "w").close()
wait("/vol/go")
show(2)
print(open("/vol/d").read(), open("/vol/s/y").read(), open("/vol/later").read(), sorted(os.listdir("/vol/ren2")))
print(os.pread(fd, 100, 0), open("/vol/f").read())
"#;

const LIVE_OUT: &str = "1 ['d', 'f', 'gone', 'ren', 's', 'target'] ['dir', 'dir', 'dir', 'absent', 'absent', 'file'] 5 False
b'first'
2 ['d', 'f', 'go', 'later', 'ready', 'ren2', 's', 's.old', 'target'] ['file', 'link', 'absent', 'dir', 'file', 'absent'] 18 True
now a file in target made later ['inner2']
b'second, and longer' second, and longer
";

#[test]
fn host_changes_to_a_volume_are_seen_while_the_sandbox_runs() {
    let d = Dir::new("changes");
    let v = d.p("vol");
    for dir in ["vol/d", "vol/s", "vol/ren", "vol/target"] {
        std::fs::create_dir_all(d.p(dir)).unwrap();
    }
    std::fs::write(v.join("d/inner"), "").unwrap();
    std::fs::write(v.join("s/x"), "").unwrap();
    std::fs::write(v.join("ren/inner2"), "").unwrap();
    std::fs::write(v.join("target/y"), "in target").unwrap();
    std::fs::write(v.join("gone"), "").unwrap();
    std::fs::write(v.join("f"), "first").unwrap();
    let changer = {
        let v = v.clone();
        std::thread::spawn(move || {
            wait_for(&v.join("ready"));
            // A directory becomes a file, another a symlink; a rename, a
            // new file, a removed one; a file rewritten in place with a
            // new size and mtime.
            std::fs::remove_dir_all(v.join("d")).unwrap();
            std::fs::write(v.join("d"), "now a file").unwrap();
            std::fs::rename(v.join("s"), v.join("s.old")).unwrap();
            std::os::unix::fs::symlink("target", v.join("s")).unwrap();
            std::fs::rename(v.join("ren"), v.join("ren2")).unwrap();
            std::fs::write(v.join("later"), "made later").unwrap();
            std::fs::remove_file(v.join("gone")).unwrap();
            let f = std::fs::OpenOptions::new().write(true).open(v.join("f")).unwrap();
            use std::io::Write;
            (&f).write_all(b"second, and longer").unwrap();
            f.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000)).unwrap();
            drop(f);
            std::fs::write(v.join("go"), "").unwrap();
        })
    };
    let vol = format!("{}:/vol", v.display());
    let o = run(rvisor(&["do", "--volume", &vol, "--", "/usr/bin/python3", "-c", LIVE_SCRIPT]), "live volume", TIMEOUT);
    changer.join().unwrap();
    common::assert_out(&o, "sandbox", LIVE_OUT, 0);
}
