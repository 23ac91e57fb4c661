//! The server over a real socketpair against temporary directories.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::*;
use crate::client::{Client, ClientError, Response};
use crate::protocol::{kind, Request as Q, HEADER_LEN, VERSION};
use crate::testutil::{Rng, TempDir};

/// A server thread serving `<tmp>/root`, next to `<tmp>/outside`, which no
/// request may ever reach.
struct Fixture {
    tmp: TempDir,
    client: Option<Client>,
    thread: Option<JoinHandle<Result<(), GoferError>>>,
}

const SECRET: &[u8] = b"outside the root\n";

impl Fixture {
    fn new(config: Config) -> Fixture {
        let tmp = TempDir::new("server");
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        fs::create_dir(&root).expect("mkdir root");
        fs::create_dir(&outside).expect("mkdir outside");
        fs::write(outside.join("secret"), SECRET).expect("write secret");
        Fixture::serve(tmp, config)
    }

    fn serve(tmp: TempDir, config: Config) -> Fixture {
        let root_fd = OwnedFd::from(fs::File::open(tmp.path().join("root")).expect("open root"));
        let (a, b) = crate::seqpacket_pair().expect("socketpair");
        let thread = std::thread::spawn(move || serve(b, root_fd, &config));
        Fixture {
            tmp,
            client: Some(Client::new(a)),
            thread: Some(thread),
        }
    }

    fn root(&self) -> PathBuf {
        self.tmp.path().join("root")
    }

    fn outside(&self) -> PathBuf {
        self.tmp.path().join("outside")
    }

    fn call(&mut self, req: &Q) -> Response {
        self.client
            .as_mut()
            .expect("client")
            .call(req)
            .expect("call")
    }

    fn ok(&mut self, req: &Q) -> Reply {
        let r = self.call(req);
        assert!(
            !matches!(r.reply, Reply::Error { .. }),
            "{req:?} -> {:?}",
            r.reply
        );
        r.reply
    }

    fn err(&mut self, req: &Q) -> i32 {
        match self.call(req).reply {
            Reply::Error { errno } => errno,
            other => panic!("{req:?} succeeded: {other:?}"),
        }
    }

    fn attach(&mut self) -> Stat {
        match self.ok(&Q::Attach) {
            Reply::Attach { fid: 0, stat } => stat,
            r => panic!("{r:?}"),
        }
    }

    /// Walks a '/'-separated path from the root; all of it must exist.
    fn walk(&mut self, path: &str) -> (Fid, Stat) {
        match self.ok(&Q::Walk {
            fid: 0,
            names: names(path),
        }) {
            Reply::Walk {
                fid,
                stats,
                stop: 0,
            } => (fid, *stats.last().expect("non-empty walk")),
            r => panic!("walk {path}: {r:?}"),
        }
    }

    fn open(&mut self, fid: Fid, flags: c_int) -> fs::File {
        let r = self.call(&Q::Open {
            fid,
            flags: u32::try_from(flags).expect("flags"),
        });
        assert_eq!(r.reply, Reply::Open);
        fs::File::from(r.fd.expect("donated fd"))
    }

    fn finish(mut self) -> Result<(), GoferError> {
        drop(self.client.take());
        self.thread
            .take()
            .expect("thread")
            .join()
            .expect("server thread must not panic")
    }

    /// Asserts nothing outside the root changed.
    fn assert_outside_untouched(&self) {
        let names: Vec<_> = fs::read_dir(self.outside())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("secret")]);
        assert_eq!(
            fs::read(self.outside().join("secret")).expect("read"),
            SECRET
        );
        let parent: BTreeSet<_> = fs::read_dir(self.tmp.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        let expected: BTreeSet<_> = ["root", "outside"]
            .into_iter()
            .map(std::ffi::OsString::from)
            .collect();
        assert_eq!(parent, expected);
    }
}

fn names(path: &str) -> Vec<Vec<u8>> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.as_bytes().to_vec())
        .collect()
}

fn n(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn dev_ino(p: &Path) -> (u64, u64) {
    let m = fs::symlink_metadata(p).expect("stat");
    (m.dev(), m.ino())
}

fn uid() -> u32 {
    fs::metadata("/proc/self").expect("stat").uid()
}

#[test]
fn attach_walk_stat() {
    let mut f = Fixture::new(Config::default());
    fs::create_dir_all(f.root().join("a/b")).expect("mkdir");
    fs::write(f.root().join("a/b/file"), b"hello").expect("write");
    let root_stat = f.attach();
    assert_eq!((root_stat.dev, root_stat.ino), dev_ino(&f.root()));
    assert_eq!(root_stat.file_type(), libc::S_IFDIR);

    match f.ok(&Q::Walk {
        fid: 0,
        names: names("a/b/file"),
    }) {
        Reply::Walk { fid, stats, stop } => {
            assert_eq!(stop, 0);
            assert_eq!(stats.len(), 3);
            assert_eq!((stats[0].dev, stats[0].ino), dev_ino(&f.root().join("a")));
            assert_eq!(
                (stats[2].dev, stats[2].ino),
                dev_ino(&f.root().join("a/b/file"))
            );
            assert_eq!(stats[2].size, 5);
            assert_eq!(f.ok(&Q::Stat { fid }), Reply::Stat { stat: stats[2] });
        }
        r => panic!("{r:?}"),
    }
    // Partial walk: stops at the first missing component, with a fid for the last found.
    match f.ok(&Q::Walk {
        fid: 0,
        names: names("a/missing/x"),
    }) {
        Reply::Walk { fid, stats, stop } => {
            assert_eq!((stats.len(), stop), (1, libc::ENOENT));
            match f.ok(&Q::Stat { fid }) {
                Reply::Stat { stat } => {
                    assert_eq!((stat.dev, stat.ino), dev_ino(&f.root().join("a")))
                }
                r => panic!("{r:?}"),
            }
        }
        r => panic!("{r:?}"),
    }
    // Walking through a file stops with ENOTDIR.
    match f.ok(&Q::Walk {
        fid: 0,
        names: names("a/b/file/x"),
    }) {
        Reply::Walk { stats, stop, .. } => assert_eq!((stats.len(), stop), (3, libc::ENOTDIR)),
        r => panic!("{r:?}"),
    }
    // First component missing: an error, no fid.
    assert_eq!(
        f.err(&Q::Walk {
            fid: 0,
            names: names("nope/x")
        }),
        libc::ENOENT
    );
    // Empty walk clones.
    match f.ok(&Q::Walk {
        fid: 0,
        names: vec![],
    }) {
        Reply::Walk {
            fid,
            stats,
            stop: 0,
        } => {
            assert!(stats.is_empty());
            assert_ne!(fid, 0);
            assert_eq!(f.ok(&Q::Stat { fid }), Reply::Stat { stat: root_stat });
        }
        r => panic!("{r:?}"),
    }
    // WalkStat: stats only.
    match f.ok(&Q::WalkStat {
        fid: 0,
        names: names("a/b/nope"),
    }) {
        Reply::WalkStat { stats, stop } => assert_eq!((stats.len(), stop), (2, libc::ENOENT)),
        r => panic!("{r:?}"),
    }
    assert_eq!(
        f.ok(&Q::WalkStat {
            fid: 0,
            names: vec![]
        }),
        Reply::WalkStat {
            stats: vec![root_stat],
            stop: 0
        }
    );
    let (b, _) = f.walk("a/b");
    match f.ok(&Q::WalkStat {
        fid: b,
        names: names("file"),
    }) {
        Reply::WalkStat { stats, stop: 0 } => assert_eq!(stats[0].size, 5),
        r => panic!("{r:?}"),
    }
    f.finish().expect("clean shutdown");
}

#[test]
fn open_donates_the_file() {
    let mut f = Fixture::new(Config::default());
    fs::write(f.root().join("data"), b"contents").expect("write");
    fs::create_dir(f.root().join("dir")).expect("mkdir");
    f.attach();
    let (fid, st) = f.walk("data");
    let mut file = f.open(fid, libc::O_RDONLY);
    let mut s = String::new();
    file.read_to_string(&mut s).expect("read");
    assert_eq!(s, "contents");
    let m = file.metadata().expect("fstat");
    assert_eq!((m.dev(), m.ino()), (st.dev, st.ino));

    let mut w = f.open(fid, libc::O_WRONLY | libc::O_TRUNC);
    w.write_all(b"new").expect("write");
    drop(w);
    assert_eq!(fs::read(f.root().join("data")).expect("read"), b"new");
    let mut a = f.open(fid, libc::O_WRONLY | libc::O_APPEND);
    a.write_all(b"+").expect("append");
    assert_eq!(fs::read(f.root().join("data")).expect("read"), b"new+");

    let (dir, _) = f.walk("dir");
    let d = f.open(dir, libc::O_RDONLY | libc::O_DIRECTORY);
    assert!(d.metadata().expect("fstat").is_dir());
    assert_eq!(f.err(&Q::Open { fid: dir, flags: 2 }), libc::EISDIR);
    assert_eq!(
        f.err(&Q::Open {
            fid,
            flags: (libc::O_RDONLY | libc::O_DIRECTORY) as u32
        }),
        libc::ENOTDIR
    );
    // Flags the protocol does not allow.
    for bad in [
        libc::O_CREAT,
        libc::O_PATH,
        libc::O_TMPFILE,
        libc::O_ACCMODE,
        -1,
    ] {
        assert_eq!(
            f.err(&Q::Open {
                fid,
                flags: bad as u32
            }),
            libc::EINVAL,
            "{bad:#x}"
        );
    }
    f.finish().expect("clean shutdown");
}

#[test]
fn create_and_make_entries() {
    let mut f = Fixture::new(Config::default());
    f.attach();
    let me = uid();
    // Create: exact mode (umask 0), owner, and an fd open for writing.
    let r = f.call(&Q::Create {
        dir: 0,
        name: n("new"),
        flags: 2,
        mode: 0o640,
        uid: 1234,
        gid: 4321,
    });
    let Reply::Create { fid, stat } = r.reply else {
        panic!("{:?}", r.reply)
    };
    let mut file = fs::File::from(r.fd.expect("fd"));
    file.write_all(b"written through the donated fd")
        .expect("write");
    let m = fs::metadata(f.root().join("new")).expect("stat");
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o640, 1234, 4321));
    assert_eq!((stat.dev, stat.ino, stat.uid), (m.dev(), m.ino(), 1234));
    assert_eq!(
        fs::read(f.root().join("new")).expect("read"),
        b"written through the donated fd"
    );
    let Reply::Stat { stat: now } = f.ok(&Q::Stat { fid }) else {
        panic!()
    };
    assert_eq!(
        (now.ino, now.size, now.mode, now.uid, now.gid),
        (stat.ino, 30, libc::S_IFREG | 0o640, 1234, 4321)
    );
    // Exclusive: an existing name fails.
    assert_eq!(
        f.err(&Q::Create {
            dir: 0,
            name: n("new"),
            flags: 2,
            mode: 0o600,
            uid: me,
            gid: 0
        }),
        libc::EEXIST
    );
    // Set-id bits survive the chown.
    let r = f.call(&Q::Create {
        dir: 0,
        name: n("suid"),
        flags: 1,
        mode: 0o4755,
        uid: 1,
        gid: 1,
    });
    assert!(matches!(r.reply, Reply::Create { .. }));
    assert_eq!(
        fs::metadata(f.root().join("suid")).expect("stat").mode() & 0o7777,
        0o4755
    );

    // Mkdir.
    let Reply::Entry { fid: d, stat } = f.ok(&Q::Mkdir {
        dir: 0,
        name: n("d"),
        mode: 0o750,
        uid: 7,
        gid: 8,
    }) else {
        panic!()
    };
    let m = fs::metadata(f.root().join("d")).expect("stat");
    assert!(m.is_dir());
    assert_eq!(
        (m.mode() & 0o7777, m.uid(), m.gid(), m.ino()),
        (0o750, 7, 8, stat.ino)
    );
    assert_eq!(
        f.err(&Q::Mkdir {
            dir: 0,
            name: n("d"),
            mode: 0o700,
            uid: NO_ID,
            gid: NO_ID
        }),
        libc::EEXIST
    );
    // Entries in the new directory via its fid.
    assert!(matches!(
        f.ok(&Q::Mkdir {
            dir: d,
            name: n("sub"),
            mode: 0o700,
            uid: NO_ID,
            gid: NO_ID
        }),
        Reply::Entry { .. }
    ));
    assert!(f.root().join("d/sub").is_dir());

    // Mknod: regular, fifo, socket; devices refused; directories are not mknod's.
    for (name, mode, check) in [
        ("reg", libc::S_IFREG | 0o600, 0u8),
        ("plain", 0o600, 0),
        ("fifo", libc::S_IFIFO | 0o600, 1),
        ("sock", libc::S_IFSOCK | 0o600, 2),
    ] {
        let r = f.ok(&Q::Mknod {
            dir: 0,
            name: n(name),
            mode,
            rdev: 0,
            uid: 5,
            gid: 6,
        });
        assert!(matches!(r, Reply::Entry { .. }));
        let ft = fs::symlink_metadata(f.root().join(name))
            .expect("stat")
            .file_type();
        assert!(
            [ft.is_file(), ft.is_fifo(), ft.is_socket()][usize::from(check)],
            "{name}"
        );
        assert_eq!(
            fs::symlink_metadata(f.root().join(name))
                .expect("stat")
                .uid(),
            5
        );
    }
    for mode in [libc::S_IFCHR | 0o600, libc::S_IFBLK | 0o600] {
        assert_eq!(
            f.err(&Q::Mknod {
                dir: 0,
                name: n("dev"),
                mode,
                rdev: 0x0103,
                uid: 0,
                gid: 0
            }),
            libc::EPERM
        );
    }
    assert_eq!(
        f.err(&Q::Mknod {
            dir: 0,
            name: n("dev"),
            mode: libc::S_IFDIR | 0o700,
            rdev: 0,
            uid: 0,
            gid: 0
        }),
        libc::EINVAL
    );
    assert!(!f.root().join("dev").exists());
    // Opening the fifo does not block the connection; opening the socket fails.
    let (fifo, _) = f.walk("fifo");
    let _reader = f.open(fifo, libc::O_RDONLY);
    let (sock, _) = f.walk("sock");
    assert_eq!(
        f.err(&Q::Open {
            fid: sock,
            flags: 0
        }),
        libc::ENXIO
    );

    // Symlink: stored as given, owned as asked, never followed.
    let Reply::Entry { fid: l, stat } = f.ok(&Q::Symlink {
        dir: 0,
        name: n("l"),
        target: n("../outside/secret"),
        uid: 9,
        gid: 9,
    }) else {
        panic!()
    };
    assert_eq!(stat.file_type(), libc::S_IFLNK);
    assert_eq!(
        fs::read_link(f.root().join("l")).expect("readlink"),
        Path::new("../outside/secret")
    );
    assert_eq!(
        fs::symlink_metadata(f.root().join("l"))
            .expect("lstat")
            .uid(),
        9
    );
    assert_eq!(
        f.ok(&Q::Readlink { fid: l }),
        Reply::Readlink {
            target: n("../outside/secret")
        }
    );
    assert_eq!(f.err(&Q::Readlink { fid: 0 }), libc::EINVAL);

    // Link: a file, and a symlink (linking the symlink itself, not its target).
    let (data, _) = f.walk("reg");
    let Reply::Entry { stat, .. } = f.ok(&Q::Link {
        dir: d,
        name: n("hard"),
        target: data,
    }) else {
        panic!()
    };
    assert_eq!(stat.nlink, 2);
    assert_eq!(
        dev_ino(&f.root().join("d/hard")),
        dev_ino(&f.root().join("reg"))
    );
    let Reply::Entry { stat, .. } = f.ok(&Q::Link {
        dir: 0,
        name: n("l2"),
        target: l,
    }) else {
        panic!()
    };
    assert_eq!(stat.file_type(), libc::S_IFLNK);
    assert_eq!(dev_ino(&f.root().join("l2")), dev_ino(&f.root().join("l")));
    assert_eq!(
        f.err(&Q::Link {
            dir: 0,
            name: n("dlink"),
            target: d
        }),
        libc::EPERM
    );
    f.assert_outside_untouched();
    f.finish().expect("clean shutdown");
}

#[test]
fn unlink_and_rename() {
    let mut f = Fixture::new(Config::default());
    fs::write(f.root().join("a"), b"A").expect("write");
    fs::write(f.root().join("b"), b"B").expect("write");
    fs::create_dir(f.root().join("dir")).expect("mkdir");
    fs::create_dir(f.root().join("dir2")).expect("mkdir");
    f.attach();
    let (dir, _) = f.walk("dir");
    assert_eq!(
        f.ok(&Q::Rename {
            old_dir: 0,
            old_name: n("a"),
            new_dir: dir,
            new_name: n("a2"),
            flags: 0
        }),
        Reply::Ok
    );
    assert_eq!(fs::read(f.root().join("dir/a2")).expect("read"), b"A");
    let noreplace = libc::RENAME_NOREPLACE;
    assert_eq!(
        f.err(&Q::Rename {
            old_dir: dir,
            old_name: n("a2"),
            new_dir: 0,
            new_name: n("b"),
            flags: noreplace
        }),
        libc::EEXIST
    );
    let exchange = libc::RENAME_EXCHANGE;
    assert_eq!(
        f.ok(&Q::Rename {
            old_dir: dir,
            old_name: n("a2"),
            new_dir: 0,
            new_name: n("b"),
            flags: exchange
        }),
        Reply::Ok
    );
    assert_eq!(fs::read(f.root().join("b")).expect("read"), b"A");
    assert_eq!(fs::read(f.root().join("dir/a2")).expect("read"), b"B");
    assert_eq!(
        f.err(&Q::Rename {
            old_dir: 0,
            old_name: n("b"),
            new_dir: 0,
            new_name: n("c"),
            flags: 0x80
        }),
        libc::EINVAL
    );
    // RENAME_WHITEOUT passes through: the old name becomes a 0:0 whiteout device.
    let whiteout = libc::RENAME_WHITEOUT;
    match f
        .call(&Q::Rename {
            old_dir: 0,
            old_name: n("b"),
            new_dir: 0,
            new_name: n("c"),
            flags: whiteout,
        })
        .reply
    {
        Reply::Ok => {
            let m = fs::symlink_metadata(f.root().join("b")).expect("whiteout");
            assert!(m.file_type().is_char_device() && m.rdev() == 0);
            assert_eq!(fs::read(f.root().join("c")).expect("read"), b"A");
            // The server still refuses to open it.
            let (w, _) = f.walk("b");
            assert_eq!(f.err(&Q::Open { fid: w, flags: 0 }), libc::EPERM);
            assert_eq!(
                f.ok(&Q::Unlink {
                    dir: 0,
                    name: n("b"),
                    flags: 0
                }),
                Reply::Ok
            );
            assert_eq!(
                f.ok(&Q::Rename {
                    old_dir: 0,
                    old_name: n("c"),
                    new_dir: 0,
                    new_name: n("b"),
                    flags: 0
                }),
                Reply::Ok
            );
        }
        Reply::Error { errno } => {
            eprintln!("RENAME_WHITEOUT not supported here (errno {errno}); pass-through unchecked")
        }
        r => panic!("{r:?}"),
    }

    assert_eq!(
        f.err(&Q::Unlink {
            dir: 0,
            name: n("dir2"),
            flags: 0
        }),
        libc::EISDIR
    );
    assert_eq!(
        f.ok(&Q::Unlink {
            dir: 0,
            name: n("dir2"),
            flags: libc::AT_REMOVEDIR as u32
        }),
        Reply::Ok
    );
    assert!(!f.root().join("dir2").exists());
    assert_eq!(
        f.ok(&Q::Unlink {
            dir,
            name: n("a2"),
            flags: 0
        }),
        Reply::Ok
    );
    assert!(!f.root().join("dir/a2").exists());
    assert_eq!(
        f.err(&Q::Unlink {
            dir: 0,
            name: n("b"),
            flags: 1
        }),
        libc::EINVAL
    );
    assert_eq!(
        f.err(&Q::Unlink {
            dir: 0,
            name: n("missing"),
            flags: 0
        }),
        libc::ENOENT
    );
    let (b, _) = f.walk("b");
    assert_eq!(
        f.err(&Q::Unlink {
            dir: b,
            name: n("x"),
            flags: 0
        }),
        libc::ENOTDIR
    );
    f.assert_outside_untouched();
    f.finish().expect("clean shutdown");
}

#[test]
fn set_attr() {
    let mut f = Fixture::new(Config::default());
    fs::write(f.root().join("file"), b"0123456789").expect("write");
    std::os::unix::fs::symlink(f.outside().join("secret"), f.root().join("link")).expect("symlink");
    f.attach();
    let (fid, _) = f.walk("file");
    let set = |mask, a: SetAttr| Q::SetAttr {
        fid,
        attr: SetAttr { mask, ..a },
    };
    let base = SetAttr::default();
    let path = f.root().join("file");

    assert_eq!(
        f.ok(&set(
            attr::MODE,
            SetAttr {
                mode: 0o4711,
                ..base
            }
        )),
        Reply::Ok
    );
    assert_eq!(fs::metadata(&path).expect("stat").mode() & 0o7777, 0o4711);
    assert_eq!(
        f.ok(&set(
            attr::UID | attr::GID,
            SetAttr {
                uid: 42,
                gid: 43,
                ..base
            }
        )),
        Reply::Ok
    );
    let m = fs::metadata(&path).expect("stat");
    assert_eq!((m.uid(), m.gid()), (42, 43));
    assert_eq!(
        f.ok(&set(
            attr::GID,
            SetAttr {
                uid: 1,
                gid: 44,
                ..base
            }
        )),
        Reply::Ok
    );
    let m = fs::metadata(&path).expect("stat");
    assert_eq!(
        (m.uid(), m.gid()),
        (42, 44),
        "uid untouched when not in the mask"
    );
    assert_eq!(
        f.ok(&set(attr::SIZE, SetAttr { size: 4, ..base })),
        Reply::Ok
    );
    assert_eq!(fs::read(&path).expect("read"), b"0123");
    assert_eq!(
        f.ok(&set(attr::SIZE, SetAttr { size: 6, ..base })),
        Reply::Ok
    );
    assert_eq!(fs::read(&path).expect("read"), b"0123\0\0");

    let t = |sec, nsec| Timespec { sec, nsec };
    let times = SetAttr {
        atime: t(1_000_000, 5),
        mtime: t(2_000_000, 7),
        ..base
    };
    assert_eq!(f.ok(&set(attr::ATIME | attr::MTIME, times)), Reply::Ok);
    let m = fs::metadata(&path).expect("stat");
    assert_eq!(
        (m.atime(), m.atime_nsec(), m.mtime(), m.mtime_nsec()),
        (1_000_000, 5, 2_000_000, 7)
    );
    // UTIME_OMIT leaves atime; only mtime in the mask leaves atime too.
    let omit = SetAttr {
        atime: t(0, libc::UTIME_OMIT),
        mtime: t(3_000_000, 0),
        ..base
    };
    assert_eq!(f.ok(&set(attr::ATIME | attr::MTIME, omit)), Reply::Ok);
    let m = fs::metadata(&path).expect("stat");
    assert_eq!((m.atime(), m.mtime()), (1_000_000, 3_000_000));
    assert_eq!(
        f.ok(&set(
            attr::MTIME,
            SetAttr {
                atime: t(9, 9),
                mtime: t(4_000_000, 0),
                ..base
            }
        )),
        Reply::Ok
    );
    let m = fs::metadata(&path).expect("stat");
    assert_eq!((m.atime(), m.mtime()), (1_000_000, 4_000_000));
    // UTIME_NOW.
    assert_eq!(
        f.ok(&set(
            attr::MTIME,
            SetAttr {
                mtime: t(0, libc::UTIME_NOW),
                ..base
            }
        )),
        Reply::Ok
    );
    assert!(fs::metadata(&path).expect("stat").mtime() > 1_600_000_000);

    // Validation happens before any change.
    assert_eq!(
        f.err(&set(
            attr::MODE | attr::SIZE,
            SetAttr {
                mode: libc::S_IFDIR | 0o777,
                size: 0,
                ..base
            }
        )),
        libc::EINVAL
    );
    assert_eq!(
        f.err(&set(
            attr::MTIME | attr::SIZE,
            SetAttr {
                mtime: t(0, 1_000_000_000),
                size: 0,
                ..base
            }
        )),
        libc::EINVAL
    );
    assert_eq!(fs::metadata(&path).expect("stat").len(), 6);
    assert_eq!(f.err(&set(1 << 9, base)), libc::EINVAL);
    assert_eq!(
        f.err(&set(
            attr::SIZE,
            SetAttr {
                size: u64::MAX,
                ..base
            }
        )),
        libc::EFBIG
    );
    assert_eq!(f.ok(&set(0, base)), Reply::Ok);
    assert_eq!(
        f.err(&Q::SetAttr {
            fid: 0,
            attr: SetAttr {
                mask: attr::SIZE,
                ..base
            }
        }),
        libc::EISDIR
    );

    // A symlink fid changes the link, never its target outside the root.
    let (link, st) = f.walk("link");
    assert_eq!(st.file_type(), libc::S_IFLNK);
    let secret = f.outside().join("secret");
    let before = fs::metadata(&secret).expect("stat");
    let on_link = |mask, a: SetAttr| Q::SetAttr {
        fid: link,
        attr: SetAttr { mask, ..a },
    };
    assert_eq!(
        f.err(&on_link(
            attr::MODE,
            SetAttr {
                mode: 0o777,
                ..base
            }
        )),
        libc::EOPNOTSUPP
    );
    assert_eq!(
        f.err(&on_link(attr::SIZE, SetAttr { size: 0, ..base })),
        libc::EINVAL
    );
    assert_eq!(
        f.ok(&on_link(attr::UID, SetAttr { uid: 77, ..base })),
        Reply::Ok
    );
    assert_eq!(
        f.ok(&on_link(
            attr::MTIME,
            SetAttr {
                mtime: t(5, 0),
                ..base
            }
        )),
        Reply::Ok
    );
    let lm = fs::symlink_metadata(f.root().join("link")).expect("lstat");
    assert_eq!((lm.uid(), lm.mtime()), (77, 5));
    let after = fs::metadata(&secret).expect("stat");
    assert_eq!(
        (after.uid(), after.mode(), after.mtime(), after.len()),
        (before.uid(), before.mode(), before.mtime(), before.len())
    );
    f.assert_outside_untouched();
    f.finish().expect("clean shutdown");
}

#[test]
fn getdents_pages_through_a_directory() {
    let mut f = Fixture::new(Config::default());
    let mut expected = BTreeSet::new();
    for i in 0..300 {
        let name = format!("entry-{i:04}-{}", "x".repeat(i % 40));
        if i % 3 == 0 {
            fs::create_dir(f.root().join(&name)).expect("mkdir");
        } else {
            fs::write(f.root().join(&name), b"").expect("write");
        }
        expected.insert(name);
    }
    f.attach();
    let mut got = BTreeSet::new();
    let mut offset = 0;
    let mut calls = 0;
    loop {
        let Reply::Getdents { entries } = f.ok(&Q::Getdents {
            fid: 0,
            offset,
            max_bytes: 300,
        }) else {
            panic!()
        };
        calls += 1;
        if entries.is_empty() {
            break;
        }
        assert!(entries.iter().map(Dirent::encoded_len).sum::<usize>() <= 300);
        for e in &entries {
            let name = String::from_utf8(e.name.clone()).expect("utf8");
            let m = fs::symlink_metadata(f.root().join(&name)).expect("stat");
            assert_eq!(e.ino, m.ino());
            assert_eq!(
                e.dtype,
                if m.is_dir() {
                    libc::DT_DIR
                } else {
                    libc::DT_REG
                }
            );
            assert!(got.insert(name), "no duplicates");
        }
        offset = entries.last().expect("non-empty").next;
    }
    assert_eq!(got, expected, "every entry exactly once, no '.' or '..'");
    assert!(calls > 20, "small max_bytes pages ({calls} calls)");
    // One big read gets them all; restarting at 0 works.
    let Reply::Getdents { entries } = f.ok(&Q::Getdents {
        fid: 0,
        offset: 0,
        max_bytes: u32::MAX,
    }) else {
        panic!()
    };
    assert_eq!(entries.len(), 300);
    // Too small for one entry.
    assert_eq!(
        f.err(&Q::Getdents {
            fid: 0,
            offset: 0,
            max_bytes: 10
        }),
        libc::EINVAL
    );
    let (file, _) = f.walk("entry-0001-x");
    assert_eq!(
        f.err(&Q::Getdents {
            fid: file,
            offset: 0,
            max_bytes: 4096
        }),
        libc::ENOTDIR
    );
    assert_eq!(
        f.err(&Q::Getdents {
            fid: 0,
            offset: u64::MAX,
            max_bytes: 4096
        }),
        libc::EINVAL
    );
    f.finish().expect("clean shutdown");
}

#[test]
fn statfs() {
    let mut f = Fixture::new(Config::default());
    f.attach();
    let Reply::StatFs { statfs } = f.ok(&Q::StatFs { fid: 0 }) else {
        panic!()
    };
    let st = sys::fstatfs(fs::File::open(f.root()).expect("open").as_fd()).expect("statfs");
    assert_eq!(statfs.fs_type, st.f_type as u64);
    assert_eq!(statfs.blocks, st.f_blocks);
    assert!(statfs.bsize > 0);
    assert_eq!(statfs.namelen, 255);
    f.finish().expect("clean shutdown");
}

#[test]
fn xattrs() {
    let mut f = Fixture::new(Config::default());
    fs::write(f.root().join("file"), b"").expect("write");
    std::os::unix::fs::symlink("file", f.root().join("link")).expect("symlink");
    f.attach();
    let (fid, _) = f.walk("file");
    let set = Q::SetXattr {
        fid,
        name: n("user.color"),
        value: n("blue"),
        flags: 0,
    };
    match f.call(&set).reply {
        Reply::Error { errno } if errno == libc::EOPNOTSUPP => {
            eprintln!(
                "skipping xattr test: {} does not support user.* xattrs (EOPNOTSUPP)",
                f.root().display()
            );
            return;
        }
        r => assert_eq!(r, Reply::Ok),
    }
    assert_eq!(
        f.ok(&Q::GetXattr {
            fid,
            name: n("user.color")
        }),
        Reply::GetXattr { value: n("blue") }
    );
    let big = vec![7u8; 4000];
    assert_eq!(
        f.ok(&Q::SetXattr {
            fid: 0,
            name: n("user.dir"),
            value: big.clone(),
            flags: 0
        }),
        Reply::Ok
    );
    assert_eq!(
        f.ok(&Q::GetXattr {
            fid: 0,
            name: n("user.dir")
        }),
        Reply::GetXattr { value: big }
    );
    let flags = libc::XATTR_CREATE as u32;
    assert_eq!(
        f.err(&Q::SetXattr {
            fid,
            name: n("user.color"),
            value: n("red"),
            flags
        }),
        libc::EEXIST
    );
    let flags = libc::XATTR_REPLACE as u32;
    assert_eq!(
        f.err(&Q::SetXattr {
            fid,
            name: n("user.none"),
            value: n("red"),
            flags
        }),
        libc::ENODATA
    );
    assert_eq!(
        f.err(&Q::SetXattr {
            fid,
            name: n("user.x"),
            value: n("red"),
            flags: 4
        }),
        libc::EINVAL
    );
    assert_eq!(
        f.ok(&Q::SetXattr {
            fid,
            name: n("user.shape"),
            value: vec![],
            flags: 0
        }),
        Reply::Ok
    );
    let Reply::ListXattr { names } = f.ok(&Q::ListXattr { fid }) else {
        panic!()
    };
    let names: BTreeSet<_> = names.into_iter().collect();
    assert_eq!(
        names,
        [n("user.color"), n("user.shape")].into_iter().collect()
    );
    assert_eq!(
        f.ok(&Q::RemoveXattr {
            fid,
            name: n("user.color")
        }),
        Reply::Ok
    );
    assert_eq!(
        f.err(&Q::GetXattr {
            fid,
            name: n("user.color")
        }),
        libc::ENODATA
    );
    assert_eq!(
        f.err(&Q::RemoveXattr {
            fid,
            name: n("user.color")
        }),
        libc::ENODATA
    );
    // Host namespaces are not the sandbox's.
    for name in [
        "trusted.x",
        "security.capability",
        "system.posix_acl_access",
    ] {
        assert_eq!(
            f.err(&Q::GetXattr { fid, name: n(name) }),
            libc::EOPNOTSUPP,
            "{name}"
        );
        let set = Q::SetXattr {
            fid,
            name: n(name),
            value: n("v"),
            flags: 0,
        };
        assert_eq!(f.err(&set), libc::EOPNOTSUPP, "{name}");
    }
    // Symlinks hold no user xattrs (Linux's answers).
    let (link, _) = f.walk("link");
    assert_eq!(
        f.err(&Q::SetXattr {
            fid: link,
            name: n("user.a"),
            value: n("v"),
            flags: 0
        }),
        libc::EPERM
    );
    assert_eq!(
        f.err(&Q::GetXattr {
            fid: link,
            name: n("user.a")
        }),
        libc::ENODATA
    );
    assert_eq!(
        f.ok(&Q::ListXattr { fid: link }),
        Reply::ListXattr { names: vec![] }
    );
    f.finish().expect("clean shutdown");
}

/// Escape attempts through a symlink planted in the root.
#[test]
fn symlinks_are_never_followed() {
    let mut f = Fixture::new(Config::default());
    std::os::unix::fs::symlink("/etc", f.root().join("etc_link")).expect("symlink");
    std::os::unix::fs::symlink(f.outside(), f.root().join("out_abs")).expect("symlink");
    std::os::unix::fs::symlink("../outside", f.root().join("out_rel")).expect("symlink");
    std::os::unix::fs::symlink(f.outside().join("secret"), f.root().join("secret_link"))
        .expect("symlink");
    std::os::unix::fs::symlink(f.outside().join("planted"), f.root().join("dangling"))
        .expect("symlink");
    f.attach();
    let etc = dev_ino(Path::new("/etc"));
    let outside = dev_ino(&f.outside());
    let secret = dev_ino(&f.outside().join("secret"));
    for (link, through) in [
        ("etc_link", "passwd"),
        ("out_abs", "secret"),
        ("out_rel", "secret"),
    ] {
        // The link itself is a symlink fid.
        let (fid, st) = f.walk(link);
        assert_eq!(st.file_type(), libc::S_IFLNK);
        for bad in [etc, outside, secret] {
            assert_ne!((st.dev, st.ino), bad);
        }
        assert_eq!(f.err(&Q::Open { fid, flags: 0 }), libc::ELOOP);
        assert_eq!(
            f.err(&Q::Open {
                fid,
                flags: libc::O_DIRECTORY as u32
            }),
            libc::ELOOP
        );
        assert_eq!(
            f.err(&Q::Getdents {
                fid,
                offset: 0,
                max_bytes: 4096
            }),
            libc::ENOTDIR
        );
        assert_eq!(
            f.err(&Q::Walk {
                fid,
                names: names(through)
            }),
            libc::ENOTDIR
        );
        assert_eq!(
            f.err(&Q::Mkdir {
                dir: fid,
                name: n("x"),
                mode: 0o700,
                uid: NO_ID,
                gid: NO_ID
            }),
            libc::ENOTDIR
        );
        assert_eq!(
            f.err(&Q::Create {
                dir: fid,
                name: n("x"),
                flags: 1,
                mode: 0o600,
                uid: NO_ID,
                gid: NO_ID
            }),
            libc::ENOTDIR
        );
        // Walking through it stops at the link.
        match f.ok(&Q::Walk {
            fid: 0,
            names: names(&format!("{link}/{through}")),
        }) {
            Reply::Walk { stats, stop, .. } => {
                assert_eq!((stats.len(), stop), (1, libc::ENOTDIR));
                assert_eq!(stats[0].file_type(), libc::S_IFLNK);
            }
            r => panic!("{r:?}"),
        }
        assert!(matches!(f.ok(&Q::Readlink { fid }), Reply::Readlink { .. }));
    }
    let (fid, _) = f.walk("secret_link");
    assert_eq!(f.err(&Q::Open { fid, flags: 0 }), libc::ELOOP);
    assert_eq!(f.err(&Q::Open { fid, flags: 2 }), libc::ELOOP);
    assert_eq!(
        f.err(&Q::GetXattr {
            fid,
            name: n("user.x")
        }),
        libc::ENODATA
    );
    // Creating over a symlink never creates at its target.
    let (d, _) = f.walk("dangling");
    assert_eq!(
        f.err(&Q::Create {
            dir: 0,
            name: n("dangling"),
            flags: 1,
            mode: 0o600,
            uid: NO_ID,
            gid: NO_ID
        }),
        libc::EEXIST
    );
    assert_eq!(
        f.err(&Q::Mkdir {
            dir: 0,
            name: n("dangling"),
            mode: 0o700,
            uid: NO_ID,
            gid: NO_ID
        }),
        libc::EEXIST
    );
    assert_eq!(
        f.err(&Q::Mknod {
            dir: 0,
            name: n("dangling"),
            mode: 0o600,
            rdev: 0,
            uid: NO_ID,
            gid: NO_ID
        }),
        libc::EEXIST
    );
    assert_eq!(
        f.err(&Q::Open {
            fid: d,
            flags: (libc::O_WRONLY | libc::O_TRUNC) as u32
        }),
        libc::ELOOP
    );
    // Hard-linking a symlink links the symlink.
    let Reply::Entry { stat, .. } = f.ok(&Q::Link {
        dir: 0,
        name: n("hl"),
        target: fid,
    }) else {
        panic!()
    };
    assert_eq!(stat.file_type(), libc::S_IFLNK);
    // Renaming the link around stays inside.
    assert_eq!(
        f.ok(&Q::Rename {
            old_dir: 0,
            old_name: n("hl"),
            new_dir: 0,
            new_name: n("hl2"),
            flags: 0
        }),
        Reply::Ok
    );
    assert_eq!(
        f.ok(&Q::Unlink {
            dir: 0,
            name: n("hl2"),
            flags: 0
        }),
        Reply::Ok
    );
    f.assert_outside_untouched();
    assert!(!f.outside().join("planted").exists());
    f.finish().expect("clean shutdown");
}

/// Names that are not exactly one component are refused, in every request
/// that carries a name, and nothing happens outside the root.
#[test]
fn bad_names_are_refused() {
    let mut f = Fixture::new(Config::default());
    fs::write(f.root().join("file"), b"x").expect("write");
    f.attach();
    let (file, _) = f.walk("file");
    let long = "n".repeat(256);
    let bad: [(&[u8], i32); 8] = [
        (b"..", libc::EINVAL),
        (b".", libc::EINVAL),
        (b"", libc::EINVAL),
        (b"a/b", libc::EINVAL),
        (b"../outside", libc::EINVAL),
        (b"/etc", libc::EINVAL),
        (b"a\0b", libc::EINVAL),
        (long.as_bytes(), libc::ENAMETOOLONG),
    ];
    for (name, errno) in bad {
        let name = name.to_vec();
        let reqs = [
            Q::Walk {
                fid: 0,
                names: vec![name.clone()],
            },
            Q::Walk {
                fid: 0,
                names: vec![b"file".to_vec(), name.clone()],
            },
            Q::WalkStat {
                fid: 0,
                names: vec![name.clone()],
            },
            Q::Create {
                dir: 0,
                name: name.clone(),
                flags: 1,
                mode: 0o600,
                uid: NO_ID,
                gid: NO_ID,
            },
            Q::Mkdir {
                dir: 0,
                name: name.clone(),
                mode: 0o700,
                uid: NO_ID,
                gid: NO_ID,
            },
            Q::Mknod {
                dir: 0,
                name: name.clone(),
                mode: 0o600,
                rdev: 0,
                uid: NO_ID,
                gid: NO_ID,
            },
            Q::Symlink {
                dir: 0,
                name: name.clone(),
                target: n("/"),
                uid: NO_ID,
                gid: NO_ID,
            },
            Q::Link {
                dir: 0,
                name: name.clone(),
                target: file,
            },
            Q::Unlink {
                dir: 0,
                name: name.clone(),
                flags: 0,
            },
            Q::Unlink {
                dir: 0,
                name: name.clone(),
                flags: libc::AT_REMOVEDIR as u32,
            },
            Q::Rename {
                old_dir: 0,
                old_name: n("file"),
                new_dir: 0,
                new_name: name.clone(),
                flags: 0,
            },
            Q::Rename {
                old_dir: 0,
                old_name: name.clone(),
                new_dir: 0,
                new_name: n("x"),
                flags: 0,
            },
        ];
        for req in reqs {
            assert_eq!(f.err(&req), errno, "{req:?}");
        }
    }
    assert!(f.root().join("file").exists());
    f.assert_outside_untouched();
    // The server's own check, behind the decoder's.
    assert_eq!(cname(b".."), Err(EINVAL));
    assert_eq!(cname(b"a/b"), Err(EINVAL));
    assert_eq!(cname(long.as_bytes()), Err(Errno(libc::ENAMETOOLONG)));
    f.finish().expect("clean shutdown");
}

/// Swaps a directory and a symlink to / (RENAME_EXCHANGE, so the name always
/// exists) while walking through the name. Every fid and stat handed out
/// must be beneath the root.
fn rename_race(lookup: Lookup) {
    let mut f = Fixture::new(Config {
        lookup,
        ..Config::default()
    });
    fs::create_dir_all(f.root().join("d/etc")).expect("mkdir");
    fs::write(f.root().join("d/etc/passwd"), b"inside").expect("write");
    std::os::unix::fs::symlink("/", f.root().join("l")).expect("symlink");
    f.attach();
    let forbidden = [
        dev_ino(Path::new("/")),
        dev_ino(Path::new("/etc")),
        dev_ino(Path::new("/etc/passwd")),
    ];
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = Arc::clone(&stop);
        let root = fs::File::open(f.root()).expect("open root");
        std::thread::spawn(move || {
            let mut swaps = 0u32;
            while !stop.load(Ordering::Relaxed) && swaps < 1_000_000 {
                if sys::renameat2(
                    root.as_fd(),
                    c"d",
                    root.as_fd(),
                    c"l",
                    libc::RENAME_EXCHANGE,
                )
                .is_err()
                {
                    break;
                }
                swaps += 1;
            }
            swaps
        })
    };
    // Stops the swapper even if an assertion fails, before the directory goes.
    let mut swapper = StopOnDrop(stop, Some(swapper));
    let mut seen = [0u32; 3]; // full walks, stopped at a symlink, failed
    for i in 0..2000 {
        let path = if i % 2 == 0 { "d/etc/passwd" } else { "l/etc" };
        let reply = f
            .call(&Q::Walk {
                fid: 0,
                names: names(path),
            })
            .reply;
        match reply {
            Reply::Walk { fid, stats, stop } => {
                for s in &stats {
                    assert!(
                        !forbidden.contains(&(s.dev, s.ino)),
                        "walk {path} reached outside: {s:?}"
                    );
                }
                let Reply::Stat { stat } = f.ok(&Q::Stat { fid }) else {
                    panic!()
                };
                assert!(
                    !forbidden.contains(&(stat.dev, stat.ino)),
                    "fid outside the root"
                );
                if stop == 0 {
                    seen[0] += 1;
                    if stat.file_type() == libc::S_IFREG {
                        let mut s = String::new();
                        f.open(fid, 0).read_to_string(&mut s).expect("read");
                        assert_eq!(s, "inside");
                    }
                } else {
                    seen[1] += 1;
                }
                assert_eq!(f.ok(&Q::Clunk { fid }), Reply::Ok);
            }
            Reply::Error { .. } => seen[2] += 1,
            r => panic!("{r:?}"),
        }
        // Also step by step from a held directory fid.
        if let Reply::Walk { fid: d, stats, .. } = f
            .call(&Q::Walk {
                fid: 0,
                names: names("d"),
            })
            .reply
        {
            if stats[0].file_type() == libc::S_IFDIR {
                if let Reply::Walk { fid, stats, .. } = f
                    .call(&Q::Walk {
                        fid: d,
                        names: names("etc"),
                    })
                    .reply
                {
                    assert!(!forbidden.contains(&(stats[0].dev, stats[0].ino)));
                    f.ok(&Q::Clunk { fid });
                }
            }
            f.ok(&Q::Clunk { fid: d });
        }
    }
    let swaps = swapper.stop();
    eprintln!("rename race ({lookup:?}): {swaps} swaps; walks full/stopped/failed = {seen:?}");
    assert!(swaps > 0);
    f.finish().expect("clean shutdown");
}

struct StopOnDrop(Arc<AtomicBool>, Option<JoinHandle<u32>>);

impl StopOnDrop {
    fn stop(&mut self) -> u32 {
        self.0.store(true, Ordering::Relaxed);
        self.1.take().map_or(0, |t| t.join().expect("swapper"))
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        if let Some(t) = self.1.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn rename_race_openat2() {
    rename_race(Lookup::Openat2);
}

#[test]
fn rename_race_openat_fallback() {
    rename_race(Lookup::Openat);
}

#[test]
fn readonly_refuses_every_mutation() {
    let mut f = Fixture::new(Config {
        readonly: true,
        ..Config::default()
    });
    fs::write(f.root().join("file"), b"keep").expect("write");
    fs::create_dir(f.root().join("dir")).expect("mkdir");
    f.attach();
    let (file, _) = f.walk("file");
    let (dir, _) = f.walk("dir");
    let all = SetAttr {
        mode: 0o777,
        uid: 1,
        gid: 1,
        size: 0,
        atime: Timespec { sec: 1, nsec: 0 },
        mtime: Timespec { sec: 1, nsec: 0 },
        mask: 0,
    };
    let mut reqs = vec![
        Q::Create {
            dir: 0,
            name: n("new"),
            flags: 1,
            mode: 0o600,
            uid: NO_ID,
            gid: NO_ID,
        },
        Q::Create {
            dir: 0,
            name: n("new"),
            flags: 0,
            mode: 0o600,
            uid: NO_ID,
            gid: NO_ID,
        },
        Q::Mkdir {
            dir: 0,
            name: n("new"),
            mode: 0o700,
            uid: NO_ID,
            gid: NO_ID,
        },
        Q::Mknod {
            dir: 0,
            name: n("new"),
            mode: libc::S_IFIFO | 0o600,
            rdev: 0,
            uid: NO_ID,
            gid: NO_ID,
        },
        Q::Symlink {
            dir: 0,
            name: n("new"),
            target: n("file"),
            uid: NO_ID,
            gid: NO_ID,
        },
        Q::Link {
            dir: 0,
            name: n("new"),
            target: file,
        },
        Q::Unlink {
            dir: 0,
            name: n("file"),
            flags: 0,
        },
        Q::Unlink {
            dir: 0,
            name: n("dir"),
            flags: libc::AT_REMOVEDIR as u32,
        },
        Q::Rename {
            old_dir: 0,
            old_name: n("file"),
            new_dir: dir,
            new_name: n("moved"),
            flags: 0,
        },
        Q::Rename {
            old_dir: 0,
            old_name: n("file"),
            new_dir: 0,
            new_name: n("dir"),
            flags: libc::RENAME_EXCHANGE,
        },
        Q::SetXattr {
            fid: file,
            name: n("user.a"),
            value: n("v"),
            flags: 0,
        },
        Q::RemoveXattr {
            fid: file,
            name: n("user.a"),
        },
        Q::Open {
            fid: file,
            flags: libc::O_WRONLY as u32,
        },
        Q::Open {
            fid: file,
            flags: libc::O_RDWR as u32,
        },
        Q::Open {
            fid: file,
            flags: (libc::O_RDONLY | libc::O_TRUNC) as u32,
        },
        Q::Open {
            fid: file,
            flags: (libc::O_WRONLY | libc::O_APPEND) as u32,
        },
    ];
    for mask in [
        attr::MODE,
        attr::UID,
        attr::GID,
        attr::SIZE,
        attr::ATIME,
        attr::MTIME,
        attr::ALL,
    ] {
        reqs.push(Q::SetAttr {
            fid: file,
            attr: SetAttr { mask, ..all },
        });
        reqs.push(Q::SetAttr {
            fid: 0,
            attr: SetAttr { mask, ..all },
        });
    }
    let before = fs::metadata(f.root().join("file")).expect("stat");
    for req in &reqs {
        assert_eq!(f.err(req), libc::EROFS, "{req:?}");
    }
    // Reading still works.
    let mut s = String::new();
    f.open(file, libc::O_RDONLY)
        .read_to_string(&mut s)
        .expect("read");
    assert_eq!(s, "keep");
    assert!(matches!(
        f.ok(&Q::Getdents {
            fid: 0,
            offset: 0,
            max_bytes: 4096
        }),
        Reply::Getdents { .. }
    ));
    assert!(matches!(
        f.ok(&Q::ListXattr { fid: file }),
        Reply::ListXattr { .. }
    ));
    assert!(matches!(f.ok(&Q::StatFs { fid: 0 }), Reply::StatFs { .. }));
    // Nothing changed.
    let after = fs::metadata(f.root().join("file")).expect("stat");
    assert_eq!(
        (after.mode(), after.uid(), after.len(), after.mtime()),
        (before.mode(), before.uid(), before.len(), before.mtime())
    );
    let entries: BTreeSet<_> = fs::read_dir(f.root())
        .expect("ls")
        .map(|e| e.expect("e").file_name())
        .collect();
    assert_eq!(
        entries,
        ["file", "dir"]
            .into_iter()
            .map(std::ffi::OsString::from)
            .collect()
    );
    assert_eq!(fs::read_dir(f.root().join("dir")).expect("ls").count(), 0);
    f.finish().expect("clean shutdown");
}

#[test]
fn fid_limit() {
    let mut f = Fixture::new(Config {
        max_fids: 16,
        ..Config::default()
    });
    fs::write(f.root().join("file"), b"x").expect("write");
    f.attach();
    let mut fids = Vec::new();
    for _ in 0..15 {
        let Reply::Walk { fid, .. } = f.ok(&Q::Walk {
            fid: 0,
            names: vec![],
        }) else {
            panic!()
        };
        fids.push(fid);
    }
    assert_eq!(
        f.err(&Q::Walk {
            fid: 0,
            names: vec![]
        }),
        libc::EMFILE
    );
    assert_eq!(
        f.err(&Q::Walk {
            fid: 0,
            names: names("file")
        }),
        libc::EMFILE
    );
    // At the limit nothing is created without a fid to return.
    assert_eq!(
        f.err(&Q::Mkdir {
            dir: 0,
            name: n("d"),
            mode: 0o700,
            uid: NO_ID,
            gid: NO_ID
        }),
        libc::EMFILE
    );
    assert_eq!(
        f.err(&Q::Create {
            dir: 0,
            name: n("c"),
            flags: 1,
            mode: 0o600,
            uid: NO_ID,
            gid: NO_ID
        }),
        libc::EMFILE
    );
    assert!(!f.root().join("d").exists() && !f.root().join("c").exists());
    // WalkStat needs no fid.
    assert!(matches!(
        f.ok(&Q::WalkStat {
            fid: 0,
            names: names("file")
        }),
        Reply::WalkStat { .. }
    ));
    assert_eq!(f.ok(&Q::Clunk { fid: fids[3] }), Reply::Ok);
    let Reply::Walk { fid, .. } = f.ok(&Q::Walk {
        fid: 0,
        names: names("file"),
    }) else {
        panic!()
    };
    assert!(!fids.contains(&fid) || fid == fids[3]);
    assert_eq!(
        f.err(&Q::Walk {
            fid: 0,
            names: vec![]
        }),
        libc::EMFILE
    );
    // Fids are distinct and never 0.
    let set: BTreeSet<_> = fids.iter().collect();
    assert_eq!(set.len(), fids.len());
    assert!(!set.contains(&0));
    f.finish().expect("clean shutdown");
}

#[test]
fn unknown_fids_are_ebadf() {
    let mut f = Fixture::new(Config::default());
    fs::write(f.root().join("file"), b"x").expect("write");
    // Before Attach even fid 0 is unknown.
    assert_eq!(
        f.err(&Q::Walk {
            fid: 0,
            names: names("file")
        }),
        libc::EBADF
    );
    assert_eq!(f.err(&Q::Stat { fid: 0 }), libc::EBADF);
    f.attach();
    let bad = 0xbad;
    let a = SetAttr {
        mask: attr::MODE,
        mode: 0o600,
        ..SetAttr::default()
    };
    let reqs = [
        Q::Walk {
            fid: bad,
            names: vec![],
        },
        Q::Walk {
            fid: bad,
            names: names("file"),
        },
        Q::WalkStat {
            fid: bad,
            names: vec![],
        },
        Q::Stat { fid: bad },
        Q::Open { fid: bad, flags: 0 },
        Q::Create {
            dir: bad,
            name: n("x"),
            flags: 1,
            mode: 0o600,
            uid: NO_ID,
            gid: NO_ID,
        },
        Q::Mkdir {
            dir: bad,
            name: n("x"),
            mode: 0o700,
            uid: NO_ID,
            gid: NO_ID,
        },
        Q::Mknod {
            dir: bad,
            name: n("x"),
            mode: 0o600,
            rdev: 0,
            uid: NO_ID,
            gid: NO_ID,
        },
        Q::Symlink {
            dir: bad,
            name: n("x"),
            target: n("y"),
            uid: NO_ID,
            gid: NO_ID,
        },
        Q::Link {
            dir: bad,
            name: n("x"),
            target: 0,
        },
        Q::Link {
            dir: 0,
            name: n("x"),
            target: bad,
        },
        Q::Unlink {
            dir: bad,
            name: n("file"),
            flags: 0,
        },
        Q::Rename {
            old_dir: bad,
            old_name: n("file"),
            new_dir: 0,
            new_name: n("x"),
            flags: 0,
        },
        Q::Rename {
            old_dir: 0,
            old_name: n("file"),
            new_dir: bad,
            new_name: n("x"),
            flags: 0,
        },
        Q::Readlink { fid: bad },
        Q::SetAttr { fid: bad, attr: a },
        Q::Getdents {
            fid: bad,
            offset: 0,
            max_bytes: 4096,
        },
        Q::StatFs { fid: bad },
        Q::GetXattr {
            fid: bad,
            name: n("user.a"),
        },
        Q::SetXattr {
            fid: bad,
            name: n("user.a"),
            value: n("v"),
            flags: 0,
        },
        Q::ListXattr { fid: bad },
        Q::RemoveXattr {
            fid: bad,
            name: n("user.a"),
        },
        Q::Clunk { fid: bad },
    ];
    for req in reqs {
        assert_eq!(f.err(&req), libc::EBADF, "{req:?}");
    }
    assert!(f.root().join("file").exists() && !f.root().join("x").exists());
    // A clunked fid is unknown afterwards.
    let (fid, _) = f.walk("file");
    assert_eq!(f.ok(&Q::Clunk { fid }), Reply::Ok);
    assert_eq!(f.err(&Q::Stat { fid }), libc::EBADF);
    assert_eq!(f.err(&Q::Clunk { fid }), libc::EBADF);
    f.finish().expect("clean shutdown");
}

fn raw(kind: u16, version: u16, tag: u32, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(
        &u32::try_from(HEADER_LEN + body.len())
            .expect("small")
            .to_le_bytes(),
    );
    v.extend_from_slice(&version.to_le_bytes());
    v.extend_from_slice(&kind.to_le_bytes());
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(body);
    v
}

#[test]
fn malformed_requests_get_error_replies() {
    let mut f = Fixture::new(Config::default());
    f.attach();
    let c = f.client.as_mut().expect("client");
    let cases: [(Vec<u8>, i32); 6] = [
        (raw(99, VERSION, 5, b""), libc::ENOSYS),
        (raw(kind::R_OK, VERSION, 5, b""), libc::ENOSYS),
        (raw(kind::ATTACH, 2, 5, b""), libc::EPROTONOSUPPORT),
        (raw(kind::STAT, VERSION, 5, b"\0\0"), libc::EINVAL),
        (raw(kind::STAT, VERSION, 5, b"\0\0\0\0\0"), libc::EINVAL),
        (
            raw(kind::WALK, VERSION, 5, &[0, 0, 0, 0, 255, 255, 255, 255]),
            libc::E2BIG,
        ),
    ];
    for (msg, errno) in cases {
        let (tag, r) = c.call_raw(&msg).expect("reply");
        assert_eq!((tag, r.reply), (5, Reply::Error { errno }), "{msg:?}");
    }
    // The connection is still good.
    assert!(matches!(f.ok(&Q::Stat { fid: 0 }), Reply::Stat { .. }));
    f.finish().expect("clean shutdown");
}

#[test]
fn broken_framing_closes_the_connection() {
    for msg in [
        vec![1u8, 2, 3],                                   // shorter than a header
        raw(kind::ATTACH, VERSION, 1, b"")[..11].to_vec(), // one byte short
        {
            let mut m = raw(kind::STAT, VERSION, 1, &[0; 4]);
            m[0] = 40; // length field disagrees with the packet
            m
        },
    ] {
        let mut f = Fixture::new(Config::default());
        let c = f.client.as_mut().expect("client");
        c.send_raw(&msg).expect("send");
        assert!(matches!(c.recv(), Err(ClientError::Closed)));
        let thread = f.thread.take().expect("thread");
        assert!(matches!(
            thread.join().expect("no panic"),
            Err(GoferError::Frame(_))
        ));
    }
    // An oversized packet, where the socket buffer allows sending one.
    let mut f = Fixture::new(Config::default());
    let big = raw(
        kind::ATTACH,
        VERSION,
        1,
        &vec![0u8; crate::protocol::MAX_BODY + 1],
    );
    let c = f.client.as_mut().expect("client");
    match c.send_raw(&big) {
        Ok(()) => {
            assert!(matches!(c.recv(), Err(ClientError::Closed)));
            let thread = f.thread.take().expect("thread");
            assert!(matches!(
                thread.join().expect("no panic"),
                Err(GoferError::Frame(ProtoError::TooLarge(_)))
            ));
        }
        Err(ClientError::Io(e)) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
            eprintln!(
                "oversized packet not sent: the socket send buffer is smaller than {} bytes",
                big.len()
            );
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn fds_sent_by_the_client_are_dropped() {
    let tmp = TempDir::new("fds");
    let file = fs::File::open("/proc/self/cmdline").expect("open");
    let (a, b) = crate::seqpacket_pair().expect("pair");
    let root_fd = OwnedFd::from(fs::File::open(tmp.path()).expect("root"));
    let t = std::thread::spawn(move || serve(b, root_fd, &Config::default()));
    // A request with an fd attached: answered normally, the fd discarded.
    sys::send_packet(a.as_fd(), &Q::Attach.encode(3), Some(file.as_fd())).expect("send");
    let mut c = Client::new(a);
    let (tag, r) = c.recv().expect("reply");
    assert_eq!(tag, 3);
    assert!(matches!(r.reply, Reply::Attach { .. }));
    drop(c);
    t.join().expect("no panic").expect("clean");
}

#[test]
fn serve_checks_its_arguments() {
    let tmp = TempDir::new("args");
    let root = || OwnedFd::from(fs::File::open(tmp.path()).expect("open"));
    let (a, _b) = std::os::unix::net::UnixStream::pair().expect("pair");
    assert!(matches!(
        serve(a.into(), root(), &Config::default()),
        Err(GoferError::NotSeqpacket)
    ));
    let file = OwnedFd::from(fs::File::open("/proc/self/cmdline").expect("open"));
    assert!(matches!(
        serve(file, root(), &Config::default()),
        Err(GoferError::NotSeqpacket)
    ));
    fs::write(tmp.path().join("f"), b"").expect("write");
    let (a, _b) = crate::seqpacket_pair().expect("pair");
    let not_dir = OwnedFd::from(fs::File::open(tmp.path().join("f")).expect("open"));
    assert!(matches!(
        serve(a, not_dir, &Config::default()),
        Err(GoferError::RootNotDirectory)
    ));
}

/// Random and mutated requests against a live server: no panic, no effect
/// outside the root, and the server keeps answering.
#[test]
fn fuzzed_requests_stay_inside() {
    let mut f = Fixture::new(Config {
        max_fids: 256,
        ..Config::default()
    });
    fs::create_dir_all(f.root().join("a/b")).expect("mkdir");
    fs::write(f.root().join("a/file"), b"data").expect("write");
    std::os::unix::fs::symlink(f.outside(), f.root().join("out")).expect("symlink");
    std::os::unix::fs::symlink("/", f.root().join("slash")).expect("symlink");
    f.attach();
    let seeds: Vec<Vec<u8>> = crate::fuzzing::sample_requests()
        .into_iter()
        .chain([
            Q::Walk {
                fid: 0,
                names: names("a/b"),
            },
            Q::Walk {
                fid: 0,
                names: names("out/secret"),
            },
            Q::Walk {
                fid: 0,
                names: names("slash/etc"),
            },
            Q::Create {
                dir: 1,
                name: n("c"),
                flags: 2,
                mode: 0o600,
                uid: NO_ID,
                gid: NO_ID,
            },
            Q::Symlink {
                dir: 2,
                name: n("s"),
                target: n("../../.."),
                uid: NO_ID,
                gid: NO_ID,
            },
            Q::Rename {
                old_dir: 0,
                old_name: n("a"),
                new_dir: 1,
                new_name: n("z"),
                flags: 0,
            },
        ])
        .map(|r| r.encode(1))
        .collect();
    let mut rng = Rng::new(0x5eed_0003);
    let mut fds = 0;
    for i in 0..20_000u32 {
        let mut msg = seeds[rng.below(seeds.len())].clone();
        for _ in 0..rng.below(3) {
            match rng.below(4) {
                0 => {
                    let at = HEADER_LEN + rng.below(msg.len().saturating_sub(HEADER_LEN).max(1));
                    if at < msg.len() {
                        msg[at] = rng.next_u64() as u8;
                    }
                }
                1 if msg.len() >= HEADER_LEN + 4 => {
                    // Aim at fids: small numbers hit live ones.
                    let v = u32::try_from(rng.below(40)).expect("small");
                    msg[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&v.to_le_bytes());
                }
                2 => msg.truncate(HEADER_LEN + rng.below(msg.len() + 1 - HEADER_LEN)),
                _ => {
                    let k = rng.below(8);
                    msg.extend(rng.bytes(k));
                }
            }
        }
        let len = u32::try_from(msg.len()).expect("small");
        msg[..4].copy_from_slice(&len.to_le_bytes());
        msg[8..12].copy_from_slice(&i.to_le_bytes());
        let (tag, r) = f
            .client
            .as_mut()
            .expect("client")
            .call_raw(&msg)
            .expect("server keeps answering");
        assert_eq!(tag, i);
        if r.fd.is_some() {
            fds += 1;
        }
        // Keep the fid table from filling up.
        if i % 64 == 0 {
            for fid in 1..300 {
                f.call(&Q::Clunk { fid });
            }
        }
    }
    eprintln!("fuzz: {fds} fds donated");
    f.assert_outside_untouched();
    f.finish().expect("clean shutdown");
}

#[test]
fn server_without_socket() {
    let tmp = TempDir::new("direct");
    fs::write(tmp.path().join("f"), b"x").expect("write");
    let mut s = Server::new(
        OwnedFd::from(fs::File::open(tmp.path()).expect("open")),
        &Config::default(),
    )
    .expect("server");
    assert!(matches!(
        s.handle(Q::Attach),
        (Reply::Attach { fid: 0, .. }, None)
    ));
    let (r, fd) = s.handle_message(
        &Q::Walk {
            fid: 0,
            names: names("f"),
        }
        .encode(1),
    );
    assert!(matches!(r, Reply::Walk { stop: 0, .. }) && fd.is_none());
    assert_eq!(s.fid_count(), 2);
    assert_eq!(
        s.handle_message(b"garbage").0,
        Reply::Error {
            errno: libc::EINVAL
        }
    );
    let foreign = ProcSelfFd::open_as(1);
    let config = Config {
        proc_self_fd: Some(Arc::new(foreign)),
        ..Config::default()
    };
    let root = OwnedFd::from(fs::File::open(tmp.path()).expect("open"));
    assert!(matches!(
        Server::new(root, &config),
        Err(GoferError::ForeignProcFd { opened_by: 1 })
    ));
}

#[test]
fn dirent_parser_rejects_malformed_records() {
    assert!(parse_dirent(&[]).is_none());
    let mut rec = vec![0u8; 24];
    rec[16..18].copy_from_slice(&24u16.to_ne_bytes());
    rec[19] = b'a';
    let (e, len) = parse_dirent(&rec).expect("valid");
    assert_eq!((e.expect("entry").name, len), (b"a".to_vec(), 24));
    rec[16..18].copy_from_slice(&200u16.to_ne_bytes());
    assert!(parse_dirent(&rec).is_none(), "reclen past the buffer");
    rec[16..18].copy_from_slice(&10u16.to_ne_bytes());
    assert!(parse_dirent(&rec).is_none(), "reclen inside the header");
    let mut dots = vec![0u8; 24];
    dots[16..18].copy_from_slice(&24u16.to_ne_bytes());
    dots[19] = b'.';
    assert!(
        parse_dirent(&dots).expect("valid").0.is_none(),
        "'.' is skipped"
    );
}
