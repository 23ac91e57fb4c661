//! `rvisor do --root DIR --volume SRC:DST[:ro]`: the sandbox's files come
//! from the gofer, and nothing the sandbox does reaches a host file outside
//! its root and volumes — symlinks, `..`, /proc/self/root, read-only
//! volumes, and a host that swaps a symlink in during a walk.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const SECRET: &str = "host-secret-7f3a";

struct Tree {
    dir: PathBuf,
}

impl Tree {
    /// root/ (busybox), vol/, volro/, and outside/secret next to them.
    fn new(name: &str) -> Tree {
        let dir = std::env::temp_dir().join(format!("rvisor-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["root/bin", "root/etc", "root/tmp", "vol", "volro", "outside"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", dir.join("root/bin/busybox")).unwrap();
        std::os::unix::fs::symlink("busybox", dir.join("root/bin/sh")).unwrap();
        std::fs::write(dir.join("root/etc/hostname"), "in-the-root\n").unwrap();
        std::fs::write(dir.join("outside/secret"), SECRET).unwrap();
        std::fs::write(dir.join("volro/file"), "read-only volume\n").unwrap();
        // Ways out a hostile image or volume might try.
        let secret = dir.join("outside/secret");
        std::os::unix::fs::symlink(&secret, dir.join("root/abs-link")).unwrap();
        std::os::unix::fs::symlink("../../../../../../../../../../..".to_string() + secret.to_str().unwrap(), dir.join("root/rel-link")).unwrap();
        std::os::unix::fs::symlink(&secret, dir.join("vol/abs-link")).unwrap();
        std::os::unix::fs::symlink("../outside/secret", dir.join("vol/up-link")).unwrap();
        Tree { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.join(p)
    }

    fn run(&self, script: &str) -> Output {
        let root = self.path("root");
        let vol = format!("{}:/data", self.path("vol").display());
        let volro = format!("{}:/ro:ro", self.path("volro").display());
        Command::new(env!("CARGO_BIN_EXE_rvisor"))
            .args(["do", "--root", root.to_str().unwrap(), "--volume", &vol, "--volume", &volro, "--", "/bin/sh", "-c", script])
            .stdin(Stdio::null())
            .output()
            .expect("running rvisor")
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn root_and_volumes_are_what_the_sandbox_sees() {
    let t = Tree::new("view");
    let o = t.run("cat /etc/hostname; cat /ro/file; pwd; ls /; echo made > /data/new; mkdir /data/d; mv /data/new /data/d/moved; echo stays > /etc/added; cat /etc/added");
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("in-the-root") && out.contains("read-only volume") && out.contains("stays"), "{out}");
    // Writes to a volume reach the host; writes to the root stay inside.
    assert_eq!(std::fs::read_to_string(t.path("vol/d/moved")).unwrap(), "made\n");
    assert!(!t.path("root/etc/added").exists());
    // The root of the sandbox lists the image, not the host.
    assert!(!out.contains("outside") && out.contains("abs-link"), "{out}");
}

#[test]
fn nothing_escapes_the_root_and_volumes() {
    let t = Tree::new("escape");
    let o = t.run(
        "cat /abs-link /rel-link /data/abs-link /data/up-link; \
         cat /data/../../../../outside/secret /../../outside/secret; \
         cat /proc/self/root/../../outside/secret /proc/1/root/../outside/secret; \
         ln -s /../../../outside/secret /data/made-link; cat /data/made-link; \
         echo x > /ro/new; echo y >> /ro/file; rm /ro/file; mkdir /ro/d; \
         cat /ro/file",
    );
    let out = text(&o);
    assert!(!out.contains(SECRET), "a host file outside the sandbox was read:\n{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("read-only volume"), "the read-only volume changed:\n{out}");
    assert_eq!(std::fs::read_to_string(t.path("volro/file")).unwrap(), "read-only volume\n");
    assert!(!t.path("volro/new").exists() && !t.path("volro/d").exists());
    assert_eq!(std::fs::read_to_string(t.path("outside/secret")).unwrap(), SECRET);
}

#[test]
fn a_symlink_swapped_in_during_walks_is_not_followed() {
    let t = Tree::new("race");
    // The host keeps making directories dN holding a harmless file and,
    // a moment later, swaps each for a symlink to the directory holding
    // the secret, while the sandbox walks through whatever dN it finds.
    // (New names, so the sentry's cache of kinds never answers for them.)
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (stop, vol, outside) = (stop.clone(), t.path("vol"), t.path("outside"));
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let d = vol.join(format!("d{n}"));
                let _ = std::fs::create_dir(&d);
                let _ = std::fs::write(d.join("secret"), "harmless");
                // Long enough for walks to get through on a loaded
                // machine; the symlink's moment below is shorter.
                std::thread::sleep(std::time::Duration::from_millis(20));
                let gone = vol.join(format!("gone{n}"));
                let _ = std::fs::rename(&d, &gone);
                let _ = std::os::unix::fs::symlink(&outside, &d);
                std::thread::sleep(std::time::Duration::from_millis(2));
                let _ = std::fs::remove_file(&d);
                let _ = std::fs::remove_dir_all(&gone);
                n += 1;
            }
        })
    };
    let o = t.run("i=0; while [ $i -lt 200 ]; do for d in /data/d*; do cat $d/secret 2>/dev/null; echo; done; i=$((i+1)); done");
    stop.store(true, Ordering::Relaxed);
    flipper.join().unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{}", &out[..out.len().min(400)]);
    assert!(out.contains("harmless"), "the walk never succeeded:\n{}", &out[..out.len().min(400)]);
    assert!(!out.contains(SECRET), "a swapped-in symlink was followed to the host");
}

#[test]
fn bad_roots_and_volumes_are_refused() {
    let t = Tree::new("bad");
    let rv = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_rvisor")).args(args).stdin(Stdio::null()).output().unwrap();
    let root = t.path("root");
    let root = root.to_str().unwrap();
    let o = rv(&["do", "--root", "/nonexistent-root", "--", "/bin/sh", "-c", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    let vol = t.path("vol");
    for (v, want) in [
        ("/nonexistent-vol:/x".to_string(), "nonexistent-vol"),
        (format!("{}:relative", vol.display()), "destination"),
        (format!("{}:/a/../b", vol.display()), "destination"),
        (format!("{}:/", vol.display()), "destination"),
    ] {
        let o = rv(&["do", "--root", root, "--volume", &v, "--", "/bin/sh", "-c", "true"]);
        assert_eq!(o.status.code(), Some(125), "{v}: {}", text(&o));
        assert!(text(&o).contains(want), "{v}: {}", text(&o));
    }
    // The command is looked up in the root, not on the host.
    let o = rv(&["do", "--root", root, "--", "python3", "-c", "pass"]);
    assert_eq!(o.status.code(), Some(127), "{}", text(&o));
    assert!(Path::new(root).join("bin/busybox").exists());
}
