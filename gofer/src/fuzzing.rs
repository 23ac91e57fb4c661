//! The fuzz target of the protocol decoders, and the inputs it is fed
//! without a fuzzer.
//!
//! [`decode_target`] is what `gofer/fuzz` (cargo-fuzz, libFuzzer; needs a
//! nightly compiler or `RUSTC_BOOTSTRAP=1`) runs on every input it makes;
//! on stable Rust the tests run the same function over [`corpus`], a
//! deterministic pseudo-random set of inputs: every sample message
//! ([`seeds`]), mutations of them, truncations, forged lengths and
//! counts, and random bytes behind a plausible header. See
//! `docs/fuzzing.md`.

use crate::protocol::{
    attr, Dirent, Header, Reply, Request, SetAttr, Stat, StatFs, Timespec, HEADER_LEN, MAX_MSG,
    NAME_MAX, NO_ID, PATH_MAX, VERSION, XATTR_SIZE_MAX,
};

/// Feeds `data` to the header parser and to both message decoders. Panics
/// (a finding) if decoding panics, or if a message that decodes does not
/// encode back to exactly the bytes it came from: the format has one
/// encoding per message, so anything else means the decoder accepted
/// something it should not have, or lost a field. Returns how many of
/// the two decoders accepted `data`.
pub fn decode_target(data: &[u8]) -> usize {
    let header = Header::parse(data);
    let mut decoded = 0;
    if let Ok((tag, req)) = Request::decode(data) {
        assert_eq!(req.encode(tag), data, "{req:?} re-encodes differently");
        decoded += 1;
    }
    if let Ok((tag, reply)) = Reply::decode(data) {
        assert_eq!(reply.encode(tag), data, "{reply:?} re-encodes differently");
        decoded += 1;
    }
    if decoded > 0 {
        assert!(header.is_ok(), "a message decoded without a valid header");
    }
    decoded
}

/// xorshift64*: deterministic, seedable, good enough to make fuzz inputs.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator; equal seeds give equal sequences.
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Every sample request and reply, encoded: valid messages of every kind,
/// some at their limits. The starting points of mutation (and a seed
/// corpus for cargo-fuzz).
pub fn seeds() -> Vec<Vec<u8>> {
    let tag = 0x0102_0304;
    sample_requests()
        .iter()
        .map(|r| r.encode(tag))
        .chain(sample_replies().iter().map(|r| r.encode(tag)))
        .collect()
}

/// Sets the header's `len` to the message's length, so the body decoders
/// are reached.
fn fix_len(buf: &mut [u8]) {
    if buf.len() >= 4 {
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        buf[..4].copy_from_slice(&len.to_le_bytes());
    }
}

/// Values a forged length, count or fid likely takes.
const EDGES: [u32; 12] = [
    0,
    1,
    255,
    256,
    4095,
    4096,
    65536,
    65537,
    (MAX_MSG - HEADER_LEN) as u32,
    MAX_MSG as u32 + 1,
    0x8000_0000,
    u32::MAX,
];

/// `count` deterministic inputs from `seed` (see the module docs); the
/// same arguments always give the same inputs.
pub fn corpus(seed: u64, count: usize) -> impl Iterator<Item = Vec<u8>> {
    let seeds = seeds();
    let mut rng = Rng::new(seed);
    (0..count).map(move |i| {
        let mut buf = seeds[rng.below(seeds.len())].clone();
        match i % 8 {
            // The valid message itself.
            0 => {}
            // Every way of cutting it short, with and without a header
            // that agrees.
            1 => {
                buf.truncate(rng.below(buf.len() + 1));
                if rng.below(2) == 0 {
                    fix_len(&mut buf);
                }
            }
            // A few byte changes.
            2 => {
                for _ in 0..1 + rng.below(4) {
                    if buf.is_empty() {
                        break;
                    }
                    let at = rng.below(buf.len());
                    match rng.below(3) {
                        0 => buf[at] ^= 1 << rng.below(8),
                        1 => buf[at] = rng.next_u64() as u8,
                        _ => buf[at] = [0, b'/', b'.', 0xff][rng.below(4)],
                    }
                }
                if rng.below(4) != 0 {
                    fix_len(&mut buf);
                }
            }
            // A forged length, count or fid: an aligned u32 of the body.
            3 => {
                if buf.len() >= HEADER_LEN + 4 {
                    let at = HEADER_LEN + rng.below((buf.len() - HEADER_LEN) / 4) * 4;
                    buf[at..at + 4].copy_from_slice(&EDGES[rng.below(EDGES.len())].to_le_bytes());
                }
            }
            // A header that lies about the length, version or kind.
            4 => {
                let at = [0, 4, 6][rng.below(3)];
                let v = EDGES[rng.below(EDGES.len())].to_le_bytes();
                let n = if at == 0 { 4 } else { 2 };
                buf[at..at + n].copy_from_slice(&v[..n]);
            }
            // Bytes added at the end, or a second message glued on.
            5 => {
                if rng.below(2) == 0 {
                    let k = 1 + rng.below(16);
                    buf.extend(rng.bytes(k));
                } else {
                    let other = &seeds[rng.below(seeds.len())];
                    buf.extend_from_slice(&other[HEADER_LEN..]);
                }
                fix_len(&mut buf);
            }
            // Random bytes behind a plausible header of any kind.
            6 => {
                let len =
                    HEADER_LEN + [rng.below(16), rng.below(300), rng.below(5000)][rng.below(3)];
                buf = rng.bytes(len);
                buf[4..6].copy_from_slice(&VERSION.to_le_bytes());
                let kind = [rng.below(24) as u16, 0x8000 + rng.below(16) as u16][rng.below(2)];
                buf[6..8].copy_from_slice(&kind.to_le_bytes());
                fix_len(&mut buf);
            }
            // Sizes at and just over the limits: a value, list or message
            // as large as allowed, and one byte more.
            _ => {
                let over = rng.below(2);
                buf = match rng.below(4) {
                    0 => Request::SetXattr {
                        fid: 1,
                        name: b"user.big".to_vec(),
                        value: vec![0xAB; XATTR_SIZE_MAX + over],
                        flags: 0,
                    }
                    .encode(9),
                    1 => Reply::GetXattr {
                        value: vec![0xCD; XATTR_SIZE_MAX + over],
                    }
                    .encode(9),
                    2 => Reply::ListXattr {
                        names: vec![vec![b'u'; NAME_MAX]; XATTR_SIZE_MAX / (NAME_MAX + 1) + over],
                    }
                    .encode(9),
                    _ => {
                        let mut b = Reply::Readlink {
                            target: vec![b'x'; PATH_MAX],
                        }
                        .encode(9);
                        b.resize(MAX_MSG + over, 0);
                        fix_len(&mut b);
                        b
                    }
                };
            }
        }
        buf
    })
}

/// A stat with extreme field values, varied by `seed`.
fn stat(seed: u64) -> Stat {
    Stat {
        dev: seed,
        ino: seed.wrapping_mul(3),
        mode: libc::S_IFREG | 0o644,
        nlink: 2,
        uid: 1000,
        gid: 100,
        rdev: 7,
        size: -1,
        blksize: 4096,
        blocks: 8,
        atime: Timespec { sec: 1, nsec: 2 },
        mtime: Timespec {
            sec: -3,
            nsec: 999_999_999,
        },
        ctime: Timespec {
            sec: i64::MAX,
            nsec: i64::MIN,
        },
    }
}

fn n(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// One of every request kind, some at their limits.
#[must_use]
pub fn sample_requests() -> Vec<Request> {
    vec![
        Request::Attach,
        Request::Walk {
            fid: 0,
            names: vec![],
        },
        Request::Walk {
            fid: 7,
            names: vec![n("a"), vec![b'x'; NAME_MAX], n("...")],
        },
        Request::WalkStat {
            fid: 1,
            names: vec![n("etc"), n("passwd")],
        },
        Request::Stat { fid: u32::MAX },
        Request::Open { fid: 3, flags: 0o2 },
        Request::Create {
            dir: 0,
            name: n("f"),
            flags: 0o101,
            mode: 0o644,
            uid: 1,
            gid: 2,
        },
        Request::Mkdir {
            dir: 0,
            name: n("d"),
            mode: 0o755,
            uid: NO_ID,
            gid: NO_ID,
        },
        Request::Mknod {
            dir: 0,
            name: n("p"),
            mode: libc::S_IFIFO | 0o600,
            rdev: 0x0801,
            uid: 3,
            gid: 4,
        },
        Request::Symlink {
            dir: 2,
            name: n("l"),
            target: vec![b'/'; PATH_MAX],
            uid: 0,
            gid: 0,
        },
        Request::Link {
            dir: 2,
            name: n("h"),
            target: 9,
        },
        Request::Unlink {
            dir: 2,
            name: n("h"),
            flags: 0x200,
        },
        Request::Rename {
            old_dir: 1,
            old_name: n("a"),
            new_dir: 2,
            new_name: n("b"),
            flags: 2,
        },
        Request::Readlink { fid: 5 },
        Request::SetAttr {
            fid: 6,
            attr: SetAttr {
                mask: attr::ALL,
                mode: 0o4755,
                uid: 5,
                gid: 6,
                size: u64::MAX,
                atime: Timespec {
                    sec: 10,
                    nsec: libc::UTIME_NOW,
                },
                mtime: Timespec {
                    sec: 0,
                    nsec: libc::UTIME_OMIT,
                },
            },
        },
        Request::Getdents {
            fid: 8,
            offset: u64::MAX,
            max_bytes: 4096,
        },
        Request::StatFs { fid: 0 },
        Request::GetXattr {
            fid: 1,
            name: n("user.a/b"),
        },
        Request::SetXattr {
            fid: 1,
            name: n("user.x"),
            value: vec![0xAB; XATTR_SIZE_MAX],
            flags: 1,
        },
        Request::SetXattr {
            fid: 1,
            name: n("user.empty"),
            value: vec![],
            flags: 0,
        },
        Request::ListXattr { fid: 1 },
        Request::RemoveXattr {
            fid: 1,
            name: n("user.x"),
        },
        Request::Clunk { fid: 12 },
    ]
}

/// One of every reply kind.
pub fn sample_replies() -> Vec<Reply> {
    vec![
        Reply::Error {
            errno: libc::ENOENT,
        },
        Reply::Error { errno: 4095 },
        Reply::Attach {
            fid: 0,
            stat: stat(1),
        },
        Reply::Walk {
            fid: 4,
            stats: vec![stat(2), stat(3)],
            stop: 0,
        },
        Reply::Walk {
            fid: 4,
            stats: vec![stat(2)],
            stop: libc::ENOTDIR,
        },
        Reply::Walk {
            fid: 5,
            stats: vec![],
            stop: 0,
        },
        Reply::WalkStat {
            stats: vec![stat(4)],
            stop: libc::ENOENT,
        },
        Reply::Stat { stat: stat(5) },
        Reply::Open,
        Reply::Create {
            fid: 9,
            stat: stat(6),
        },
        Reply::Entry {
            fid: 10,
            stat: stat(7),
        },
        Reply::Ok,
        Reply::Readlink {
            target: n("../x/y"),
        },
        Reply::Getdents {
            entries: vec![
                Dirent {
                    ino: 1,
                    next: 2,
                    dtype: libc::DT_REG,
                    name: n("a"),
                },
                Dirent {
                    ino: 3,
                    next: u64::MAX,
                    dtype: libc::DT_DIR,
                    name: vec![b'z'; NAME_MAX],
                },
            ],
        },
        Reply::Getdents { entries: vec![] },
        Reply::StatFs {
            statfs: StatFs {
                fs_type: 0xEF53,
                bsize: 4096,
                blocks: 1,
                bfree: 2,
                bavail: 3,
                files: 4,
                ffree: 5,
                namelen: 255,
                frsize: 4096,
                flags: 1,
            },
        },
        Reply::GetXattr { value: n("v") },
        Reply::ListXattr {
            names: vec![n("user.a"), n("user.b")],
        },
        Reply::ListXattr { names: vec![] },
    ]
}
