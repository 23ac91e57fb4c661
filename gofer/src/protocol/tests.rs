use super::*;
use crate::fuzzing::{decode_target, sample_replies, sample_requests, Rng};

#[test]
fn every_request_round_trips() {
    let samples = sample_requests();
    let mut kinds: Vec<u16> = samples.iter().map(Request::kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(
        kinds,
        (kind::ATTACH..=kind::CLUNK).collect::<Vec<_>>(),
        "a sample per request kind"
    );
    for (i, req) in samples.into_iter().enumerate() {
        let tag = 0xdead_0000 + u32::try_from(i).expect("small");
        let buf = req.encode(tag);
        let h = Header::parse(&buf).expect("header");
        assert_eq!(
            (h.len as usize, h.version, h.kind, h.tag),
            (buf.len(), VERSION, req.kind(), tag)
        );
        assert_eq!(Request::decode(&buf), Ok((tag, req)));
    }
}

#[test]
fn every_reply_round_trips() {
    let samples = sample_replies();
    let mut kinds: Vec<u16> = samples.iter().map(Reply::kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(
        kinds,
        (kind::R_ERROR..=kind::R_LIST_XATTR).collect::<Vec<_>>(),
        "a sample per reply kind"
    );
    for (i, reply) in samples.into_iter().enumerate() {
        let tag = u32::try_from(i).expect("small");
        let buf = reply.encode(tag);
        assert_eq!(Reply::decode(&buf), Ok((tag, reply)));
    }
}

#[test]
fn header_layout_is_little_endian() {
    let buf = Request::Clunk { fid: 0x0403_0201 }.encode(0x0807_0605);
    assert_eq!(buf, [16, 0, 0, 0, 1, 0, 21, 0, 5, 6, 7, 8, 1, 2, 3, 4]);
}

#[test]
fn requests_and_replies_do_not_decode_as_each_other() {
    for req in sample_requests() {
        assert!(matches!(
            Reply::decode(&req.encode(1)),
            Err(ProtoError::UnknownKind(_))
        ));
    }
    for reply in sample_replies() {
        assert!(matches!(
            Request::decode(&reply.encode(1)),
            Err(ProtoError::UnknownKind(_))
        ));
    }
}

#[test]
fn every_truncation_is_an_error() {
    for req in sample_requests() {
        let buf = req.encode(1);
        for cut in 0..buf.len() {
            assert!(
                Request::decode(&buf[..cut]).is_err(),
                "{req:?} cut at {cut}"
            );
            // Also with the length field patched to match, so the body check is what fails.
            if cut >= HEADER_LEN {
                let mut short = buf[..cut].to_vec();
                short[..4].copy_from_slice(&u32::try_from(cut).expect("small").to_le_bytes());
                if cut < buf.len() {
                    assert!(
                        Request::decode(&short).is_err(),
                        "{req:?} patched cut at {cut}"
                    );
                }
            }
        }
    }
    for reply in sample_replies() {
        let buf = reply.encode(1);
        for cut in HEADER_LEN..buf.len() {
            let mut short = buf[..cut].to_vec();
            short[..4].copy_from_slice(&u32::try_from(cut).expect("small").to_le_bytes());
            assert!(
                Reply::decode(&short).is_err(),
                "{reply:?} patched cut at {cut}"
            );
        }
    }
}

fn with_len(mut buf: Vec<u8>) -> Vec<u8> {
    let len = u32::try_from(buf.len()).expect("fits");
    buf[..4].copy_from_slice(&len.to_le_bytes());
    buf
}

#[test]
fn framing_errors() {
    assert_eq!(Header::parse(&[]), Err(ProtoError::Truncated));
    assert_eq!(
        Header::parse(&[12, 0, 0, 0, 1, 0, 1]),
        Err(ProtoError::Truncated)
    );
    let mut buf = Request::Attach.encode(1);
    buf[0] = 13;
    assert_eq!(
        Request::decode(&buf),
        Err(ProtoError::LengthMismatch {
            header: 13,
            actual: 12
        })
    );
    let big = with_len(vec![0u8; MAX_MSG + 1]);
    assert_eq!(
        Request::decode(&big),
        Err(ProtoError::TooLarge(MAX_MSG + 1))
    );
    let mut buf = Request::Attach.encode(1);
    buf[4] = 2;
    assert_eq!(Request::decode(&buf), Err(ProtoError::BadVersion(2)));
    let mut buf = Request::Attach.encode(1);
    buf[6] = 99;
    assert_eq!(Request::decode(&buf), Err(ProtoError::UnknownKind(99)));
    let mut buf = Request::Attach.encode(1);
    buf.push(0);
    assert_eq!(
        Request::decode(&with_len(buf)),
        Err(ProtoError::TrailingBytes(1))
    );
}

#[test]
fn name_rules() {
    let walk = |name: Vec<u8>| {
        Request::decode(
            &Request::Walk {
                fid: 0,
                names: vec![name],
            }
            .encode(1),
        )
    };
    for bad in [&b""[..], b".", b"..", b"a/b", b"/", b"a\0b", b"\0"] {
        assert_eq!(walk(bad.to_vec()), Err(ProtoError::BadName), "{bad:?}");
    }
    assert_eq!(walk(vec![b'a'; NAME_MAX + 1]), Err(ProtoError::NameTooLong));
    assert!(walk(vec![b'a'; NAME_MAX]).is_ok());
    assert!(walk(b"...".to_vec()).is_ok());
    assert!(walk(b".hidden".to_vec()).is_ok());
    // Every name-carrying request checks its names.
    let bad = b"..".to_vec();
    for req in [
        Request::Create {
            dir: 0,
            name: bad.clone(),
            flags: 0,
            mode: 0,
            uid: 0,
            gid: 0,
        },
        Request::Mkdir {
            dir: 0,
            name: bad.clone(),
            mode: 0,
            uid: 0,
            gid: 0,
        },
        Request::Mknod {
            dir: 0,
            name: bad.clone(),
            mode: 0,
            rdev: 0,
            uid: 0,
            gid: 0,
        },
        Request::Symlink {
            dir: 0,
            name: bad.clone(),
            target: b"x".to_vec(),
            uid: 0,
            gid: 0,
        },
        Request::Link {
            dir: 0,
            name: bad.clone(),
            target: 1,
        },
        Request::Unlink {
            dir: 0,
            name: bad.clone(),
            flags: 0,
        },
        Request::Rename {
            old_dir: 0,
            old_name: b"a".to_vec(),
            new_dir: 0,
            new_name: bad.clone(),
            flags: 0,
        },
        Request::Rename {
            old_dir: 0,
            old_name: bad.clone(),
            new_dir: 0,
            new_name: b"a".to_vec(),
            flags: 0,
        },
        Request::WalkStat {
            fid: 0,
            names: vec![b"a".to_vec(), bad.clone()],
        },
    ] {
        assert_eq!(
            Request::decode(&req.encode(1)),
            Err(ProtoError::BadName),
            "{req:?}"
        );
    }
    // Symlink targets: paths, not names.
    let sym = |target: Vec<u8>| {
        Request::decode(
            &Request::Symlink {
                dir: 0,
                name: b"l".to_vec(),
                target,
                uid: 0,
                gid: 0,
            }
            .encode(1),
        )
    };
    assert!(sym(b"../../etc/passwd".to_vec()).is_ok());
    assert_eq!(sym(vec![b'a'; PATH_MAX + 1]), Err(ProtoError::PathTooLong));
    assert_eq!(sym(vec![]), Err(ProtoError::BadValue("path")));
    assert_eq!(sym(b"a\0".to_vec()), Err(ProtoError::BadValue("path")));
    // Xattr names may hold '/', not NUL.
    let getx = |name: Vec<u8>| Request::decode(&Request::GetXattr { fid: 0, name }.encode(1));
    assert!(getx(b"user.a/b".to_vec()).is_ok());
    assert_eq!(getx(b"user.\0".to_vec()), Err(ProtoError::BadName));
    assert_eq!(getx(vec![]), Err(ProtoError::BadName));
    assert_eq!(getx(vec![b'u'; NAME_MAX + 1]), Err(ProtoError::NameTooLong));
    let setx = |len: usize| {
        Request::decode(
            &Request::SetXattr {
                fid: 0,
                name: b"user.v".to_vec(),
                value: vec![1; len],
                flags: 0,
            }
            .encode(1),
        )
    };
    assert!(setx(XATTR_SIZE_MAX).is_ok());
    assert_eq!(
        setx(XATTR_SIZE_MAX + 1),
        Err(ProtoError::TooBig("xattr value"))
    );
}

#[test]
fn walk_count_limits() {
    let names = vec![b"a".to_vec(); MAX_WALK];
    assert!(Request::decode(&Request::Walk { fid: 0, names }.encode(1)).is_ok());
    let names = vec![b"a".to_vec(); MAX_WALK + 1];
    assert_eq!(
        Request::decode(&Request::Walk { fid: 0, names }.encode(1)),
        Err(ProtoError::TooBig("walk"))
    );
    // A forged count with nothing behind it is refused before allocation.
    let mut buf = Request::Walk {
        fid: 0,
        names: vec![],
    }
    .encode(1);
    buf[16..20].copy_from_slice(&200u32.to_le_bytes());
    assert_eq!(Request::decode(&buf), Err(ProtoError::Truncated));
    let mut buf = Reply::Getdents { entries: vec![] }.encode(1);
    buf[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(Reply::decode(&buf), Err(ProtoError::Truncated));
    let mut buf = Request::GetXattr {
        fid: 0,
        name: b"user.a".to_vec(),
    }
    .encode(1);
    buf[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(Request::decode(&buf), Err(ProtoError::NameTooLong));
}

#[test]
fn reply_values_are_checked() {
    for errno in [0, -1, 4096, i32::MIN] {
        let buf = Reply::Error { errno }.encode(1);
        assert_eq!(
            Reply::decode(&buf),
            Err(ProtoError::BadValue("errno")),
            "{errno}"
        );
    }
    let buf = Reply::Walk {
        fid: 1,
        stats: vec![],
        stop: -5,
    }
    .encode(1);
    assert_eq!(Reply::decode(&buf), Err(ProtoError::BadValue("errno")));
    let bad_dirent = Reply::Getdents {
        entries: vec![Dirent {
            ino: 1,
            next: 1,
            dtype: 0,
            name: b"..".to_vec(),
        }],
    };
    assert_eq!(
        Reply::decode(&bad_dirent.encode(1)),
        Err(ProtoError::BadName)
    );
    let bad_link = Reply::Readlink {
        target: vec![b'a'; PATH_MAX + 1],
    };
    assert_eq!(
        Reply::decode(&bad_link.encode(1)),
        Err(ProtoError::PathTooLong)
    );
}

#[test]
fn errnos_for_decode_errors() {
    assert_eq!(ProtoError::NameTooLong.errno(), libc::ENAMETOOLONG);
    assert_eq!(ProtoError::BadName.errno(), libc::EINVAL);
    assert_eq!(ProtoError::UnknownKind(3).errno(), libc::ENOSYS);
    assert_eq!(ProtoError::TooBig("x").errno(), libc::E2BIG);
}

#[test]
fn random_buffers_never_panic() {
    let mut rng = Rng::new(0x5eed_0001);
    for i in 0..100_000 {
        let len = match i % 4 {
            0 => rng.below(HEADER_LEN + 1),
            1 => rng.below(64),
            2 => rng.below(600),
            _ => rng.below(5000),
        };
        let mut buf = rng.bytes(len);
        // Half of them get a plausible header so the body decoders are reached.
        if i % 2 == 0 && buf.len() >= HEADER_LEN {
            let l = u32::try_from(buf.len()).expect("small");
            buf[..4].copy_from_slice(&l.to_le_bytes());
            buf[4..6].copy_from_slice(&VERSION.to_le_bytes());
            let kinds = [rng.below(23) as u16, 0x8000 + rng.below(15) as u16];
            buf[6..8].copy_from_slice(&kinds[i / 2 % 2].to_le_bytes());
        }
        decode_target(&buf);
    }
}

#[test]
fn mutated_messages_never_panic() {
    let mut rng = Rng::new(0x5eed_0002);
    let seeds: Vec<Vec<u8>> = sample_requests()
        .iter()
        .map(|r| r.encode(7))
        .chain(sample_replies().iter().map(|r| r.encode(7)))
        .collect();
    let mut decoded = 0;
    for i in 0..100_000 {
        let mut buf = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(4) {
            if buf.is_empty() {
                break;
            }
            match rng.below(6) {
                0 => {
                    let at = rng.below(buf.len());
                    buf[at] ^= 1 << rng.below(8);
                }
                1 => {
                    let at = rng.below(buf.len());
                    buf[at] = rng.next_u64() as u8;
                }
                2 => buf.truncate(rng.below(buf.len() + 1)),
                3 => {
                    let k = rng.below(16);
                    buf.extend(rng.bytes(k));
                }
                4 if buf.len() >= 4 => {
                    // Overwrite an aligned u32, likely a length, count or fid.
                    let at = rng.below(buf.len() / 4) * 4;
                    let v = [0, 1, 255, 256, 4096, u32::MAX, rng.next_u64() as u32][rng.below(7)];
                    let end = (at + 4).min(buf.len());
                    buf[at..end].copy_from_slice(&v.to_le_bytes()[..end - at]);
                }
                _ => {}
            }
        }
        // Keep the length field right most of the time so bodies are parsed.
        if i % 4 != 0 && buf.len() >= 4 {
            buf = with_len(buf);
        }
        decoded += decode_target(&buf);
    }
    assert!(
        decoded > 1000,
        "mutations should often stay decodable ({decoded})"
    );
}
