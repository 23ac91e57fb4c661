//! Confinement runs in a child process (this test binary, re-run with a
//! filter and an environment variable) so that the test process keeps its
//! mount namespace and capabilities.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::sync::Arc;

use super::*;
use crate::client::Client;
use crate::protocol::{Reply, Request, NO_ID};
use crate::testutil::TempDir;
use crate::{serve, Config, ProcSelfFd};

const CHILD_ENV: &str = "GOFER_CONFINE_TEST_DIR";
const THIS_TEST: &str = "confine::tests::confine_in_a_child_process";

#[test]
fn confine_in_a_child_process() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
        return;
    }
    let tmp = TempDir::new("confine");
    let t = tmp.path();
    fs::create_dir_all(t.join("root/dir")).expect("mkdir");
    fs::write(t.join("root/inside.txt"), b"inside").expect("write");
    fs::create_dir(t.join("outside")).expect("mkdir");
    fs::write(t.join("outside/secret.txt"), b"secret").expect("write");
    std::os::unix::fs::symlink(t.join("outside"), t.join("root/escape_abs")).expect("symlink");
    std::os::unix::fs::symlink("../outside", t.join("root/escape_rel")).expect("symlink");
    fs::create_dir(t.join("bind_ro")).expect("mkdir");
    fs::write(t.join("bind_ro/data.txt"), b"read only").expect("write");
    fs::create_dir(t.join("bind_rw")).expect("mkdir");
    fs::write(t.join("bind_file"), b"a file").expect("write");
    // A planted symlink where a bind destination goes must be refused.
    std::os::unix::fs::symlink(t.join("outside"), t.join("root/trap")).expect("symlink");

    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([THIS_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, t)
        .output()
        .expect("run child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Some(line) = stdout.lines().find(|l| l.starts_with("CONFINE-SKIP")) {
        eprintln!("skipping confine test: {line}");
        return;
    }
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("CONFINE-CHILD-OK"),
        "child did not run the scenario:\n{stdout}\n{stderr}"
    );
    // The parent's namespace saw none of it.
    let mounts = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mounts.contains(&*t.to_string_lossy()),
        "mounts leaked to the parent"
    );
    assert_eq!(
        fs::read(t.join("outside/secret.txt")).expect("read"),
        b"secret"
    );
    // The mount points were made inside the root, on the host.
    assert!(t.join("root/mnt/ro").is_dir() && t.join("root/etc/bound").is_file());
}

fn child(t: &Path) {
    let proc = Arc::new(ProcSelfFd::open().expect("open /proc/self/fd before confining"));
    let binds = [
        Bind {
            source: t.join("bind_ro"),
            dest: "/mnt/ro".into(),
            readonly: true,
            recursive: false,
        },
        Bind {
            source: t.join("bind_rw"),
            dest: "/mnt/rw".into(),
            readonly: false,
            recursive: false,
        },
        Bind {
            source: t.join("bind_file"),
            dest: "/etc/bound".into(),
            readonly: true,
            recursive: false,
        },
    ];
    // Refusals come first: they must not leave the namespace half made, and
    // each runs in this child only.
    for (dest, want) in [
        ("/trap/x", "type"),
        ("relative", "dest"),
        ("/a/../b", "dest"),
        ("/", "dest"),
    ] {
        let bad = [Bind {
            source: t.join("bind_rw"),
            dest: dest.into(),
            readonly: false,
            recursive: false,
        }];
        match (confine(&t.join("root"), &bad), want) {
            (Err(GoferError::BindDestType(_)), "type") | (Err(GoferError::BindDest(_)), "dest") => {
            }
            (Err(GoferError::Confine { source, .. }), _)
                if source.raw_os_error() == Some(libc::EPERM) =>
            {
                println!("CONFINE-SKIP: no permission to unshare/mount ({source})");
                return;
            }
            (r, _) => panic!("bind to {dest}: {r:?}"),
        }
    }
    assert!(
        !t.join("outside/x").exists(),
        "no mount point made through the planted symlink"
    );

    let (eff_before, _, _) = crate::sys::capget().expect("capget");
    let root_fd = confine(&t.join("root"), &binds).expect("confine");

    // The host path of the outside file no longer exists, by any route.
    for p in [
        t.join("outside/secret.txt"),
        "/escape_abs/secret.txt".into(),
        "/escape_rel/secret.txt".into(),
    ] {
        assert_eq!(
            fs::metadata(&p).map_err(|e| e.kind()).err(),
            Some(std::io::ErrorKind::NotFound),
            "{p:?}"
        );
    }
    // `..` of the root is the root.
    let root = fs::metadata("/").expect("stat /");
    for p in ["/..", "/../..", "/dir/../.."] {
        let m = fs::metadata(p).expect("stat");
        assert_eq!((m.dev(), m.ino()), (root.dev(), root.ino()), "{p}");
    }
    let rfd = crate::sys::fstat(root_fd.as_fd()).expect("fstat");
    assert_eq!((rfd.st_dev, rfd.st_ino), (root.dev(), root.ino()));
    let top: Vec<_> = fs::read_dir("/..")
        .expect("ls")
        .map(|e| e.expect("e").file_name())
        .collect();
    assert!(top.contains(&"inside.txt".into()));
    assert_eq!(fs::read("/inside.txt").expect("read"), b"inside");
    assert_eq!(std::env::current_dir().expect("cwd"), Path::new("/"));

    // Bind mounts: read-only enforced by the kernel, read-write writable.
    assert_eq!(fs::read("/mnt/ro/data.txt").expect("read"), b"read only");
    assert_eq!(
        fs::write("/mnt/ro/new", b"x").map_err(|e| e.raw_os_error()),
        Err(Some(libc::EROFS))
    );
    fs::write("/mnt/rw/new", b"x").expect("write through rw bind");
    assert_eq!(fs::read("/etc/bound").expect("read"), b"a file");
    assert_eq!(
        fs::write("/etc/bound", b"x").map_err(|e| e.raw_os_error()),
        Err(Some(libc::EROFS))
    );

    // Capabilities and no_new_privs.
    let (eff, perm, inh) = crate::sys::capget().expect("capget");
    assert_eq!((eff & !kept_mask(), perm & !kept_mask(), inh), (0, 0, 0));
    assert_eq!(
        eff,
        eff_before & kept_mask(),
        "the listed capabilities it had are kept"
    );
    for c in [cap::SYS_ADMIN, cap::DAC_READ_SEARCH, cap::SYS_CHROOT] {
        assert!(
            !crate::sys::capbset_read(c).expect("bounding set"),
            "cap {c} still in the bounding set"
        );
    }
    assert!(crate::sys::capbset_read(cap::CHOWN).expect("bounding set"));
    assert!(crate::sys::no_new_privs().expect("prctl"));
    let remount = crate::sys::mount(None, c"/", None, libc::MS_REC | libc::MS_SHARED);
    assert_eq!(
        remount.map_err(|e| e.raw_os_error()),
        Err(Some(libc::EPERM))
    );
    assert!(crate::sys::unshare(libc::CLONE_NEWNS).is_err());

    // /proc is gone, so the server needs the handle opened before confining.
    assert!(ProcSelfFd::open().is_err());
    // Serving the confined root works through that handle.
    let (a, b) = crate::seqpacket_pair().expect("socketpair");
    let config = Config {
        proc_self_fd: Some(proc),
        ..Config::default()
    };
    let server = std::thread::spawn(move || serve(b, root_fd, &config));
    let mut c = Client::new(a);
    let mut call = |req: Request| c.call(&req).expect("call");
    assert!(matches!(call(Request::Attach).reply, Reply::Attach { .. }));
    let r = call(Request::Walk {
        fid: 0,
        names: vec![b"inside.txt".to_vec()],
    });
    let Reply::Walk { fid, .. } = r.reply else {
        panic!("{:?}", r.reply)
    };
    let r = call(Request::Open { fid, flags: 0 });
    let mut s = String::new();
    fs::File::from(r.fd.expect("fd"))
        .read_to_string(&mut s)
        .expect("read");
    assert_eq!(s, "inside");
    let r = call(Request::Walk {
        fid: 0,
        names: vec![b"mnt".to_vec(), b"ro".to_vec()],
    });
    let Reply::Walk { fid: ro, .. } = r.reply else {
        panic!("{:?}", r.reply)
    };
    let create = Request::Create {
        dir: ro,
        name: b"x".to_vec(),
        flags: 1,
        mode: 0o600,
        uid: NO_ID,
        gid: NO_ID,
    };
    assert_eq!(call(create).reply, Reply::Error { errno: libc::EROFS });
    let r = call(Request::Walk {
        fid: 0,
        names: vec![b"escape_abs".to_vec(), b"secret.txt".to_vec()],
    });
    assert!(
        matches!(
            r.reply,
            Reply::Walk {
                stop: libc::ENOTDIR,
                ..
            }
        ),
        "{:?}",
        r.reply
    );
    drop(c);
    server.join().expect("server thread").expect("serve");
    println!("CONFINE-CHILD-OK");
}

const IN_PLACE_ENV: &str = "GOFER_CONFINE_IN_PLACE_DIR";
const IN_PLACE_TEST: &str = "confine::tests::confine_in_place_keeps_the_tree_and_its_flags";

/// An OCI runtime's tree: a read-only root holding a read-write and a
/// read-only bind mount, built in a namespace the child makes first (as
/// `rvisor boot` does), then confined in place.
#[test]
fn confine_in_place_keeps_the_tree_and_its_flags() {
    if let Some(dir) = std::env::var_os(IN_PLACE_ENV) {
        in_place_child(Path::new(&dir));
        return;
    }
    let tmp = TempDir::new("confine-in-place");
    let t = tmp.path();
    for d in ["root/mnt/rw", "root/mnt/ro", "vol_rw", "vol_ro", "outside"] {
        fs::create_dir_all(t.join(d)).expect("mkdir");
    }
    fs::write(t.join("root/inside.txt"), b"inside").expect("write");
    fs::write(t.join("vol_ro/data.txt"), b"ro data").expect("write");
    fs::write(t.join("outside/secret.txt"), b"secret").expect("write");
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([IN_PLACE_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(IN_PLACE_ENV, t)
        .output()
        .expect("run child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Some(line) = stdout.lines().find(|l| l.starts_with("CONFINE-SKIP")) {
        eprintln!("skipping confine test: {line}");
        return;
    }
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("IN-PLACE-CHILD-OK"), "child did not run the scenario:\n{stdout}\n{stderr}");
    // The write through the read-write bind reached the host.
    assert_eq!(fs::read(t.join("vol_rw/new")).expect("read"), b"x");
    assert!(!t.join("root/new").exists());
}

fn in_place_child(t: &Path) {
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).expect("path");
    let root = c(&t.join("root"));
    if let Err(e) = crate::sys::unshare(libc::CLONE_NEWNS) {
        println!("CONFINE-SKIP: no permission to unshare ({e})");
        return;
    }
    let mount = |src: Option<&std::ffi::CStr>, dst: &std::ffi::CStr, flags: libc::c_ulong| crate::sys::mount(src, dst, None, flags).expect("mount");
    mount(None, c"/", libc::MS_REC | libc::MS_PRIVATE);
    mount(Some(&root), &root, libc::MS_BIND | libc::MS_REC);
    mount(Some(&c(&t.join("vol_rw"))), &c(&t.join("root/mnt/rw")), libc::MS_BIND);
    let ro = c(&t.join("root/mnt/ro"));
    mount(Some(&c(&t.join("vol_ro"))), &ro, libc::MS_BIND);
    mount(None, &ro, libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY);
    mount(None, &root, libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY);

    confine_in_place(&t.join("root")).expect("confine in place");

    assert_eq!(fs::read("/inside.txt").expect("read"), b"inside");
    assert_eq!(fs::read("/mnt/ro/data.txt").expect("read"), b"ro data");
    let erofs = |p: &str| fs::write(p, b"x").map_err(|e| e.raw_os_error()).err();
    assert_eq!(erofs("/new"), Some(Some(libc::EROFS)), "the root stays read-only");
    assert_eq!(erofs("/mnt/ro/new"), Some(Some(libc::EROFS)));
    fs::write("/mnt/rw/new", b"x").expect("write through the rw bind");
    assert!(fs::metadata(t.join("outside/secret.txt")).is_err(), "the host's tree is gone");
    let m = fs::metadata("/..").expect("stat");
    let r = fs::metadata("/").expect("stat");
    assert_eq!((m.dev(), m.ino()), (r.dev(), r.ino()));
    let (eff, perm, _) = crate::sys::capget().expect("capget");
    assert_eq!((eff & !kept_mask(), perm & !kept_mask()), (0, 0));
    assert!(crate::sys::no_new_privs().expect("prctl"));
    println!("IN-PLACE-CHILD-OK");
}
