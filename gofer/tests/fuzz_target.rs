//! The cargo-fuzz target's function (`gofer::fuzzing::decode_target`, the
//! one `gofer/fuzz` runs under libFuzzer) over a deterministic corpus, so
//! that stable Rust and CI exercise it without a fuzzer: valid messages
//! of every kind, their mutations and truncations, forged lengths and
//! counts, random bodies, and sizes at and over every limit.

use gofer::fuzzing::{corpus, decode_target, seeds};
use gofer::protocol::{ProtoError, Reply, Request, XATTR_SIZE_MAX};

#[test]
fn every_seed_decodes_and_round_trips() {
    for s in seeds() {
        assert_eq!(
            decode_target(&s),
            1,
            "a seed decodes as exactly one of request or reply"
        );
    }
}

#[test]
fn the_target_survives_the_corpus() {
    let mut inputs = 0;
    let mut decoded = 0;
    let mut refused = 0;
    for input in corpus(0x5eed_f422, 200_000) {
        inputs += 1;
        match decode_target(&input) {
            0 => refused += 1,
            n => decoded += n,
        }
    }
    assert_eq!(inputs, 200_000);
    // The corpus reaches both sides of the decoders: it must not be all
    // garbage, nor all valid.
    assert!(
        decoded > 20_000 && refused > 20_000,
        "decoded {decoded}, refused {refused}"
    );
}

#[test]
fn the_corpus_is_deterministic() {
    let a: Vec<Vec<u8>> = corpus(7, 500).collect();
    let b: Vec<Vec<u8>> = corpus(7, 500).collect();
    assert_eq!(a, b);
    assert_ne!(a, corpus(8, 500).collect::<Vec<_>>());
}

/// The limits the corpus aims at are the decoders' (value, list, message).
#[test]
fn sizes_just_over_the_limits_are_refused() {
    let value = |n| {
        Request::SetXattr {
            fid: 1,
            name: b"user.v".to_vec(),
            value: vec![1; n],
            flags: 0,
        }
        .encode(1)
    };
    assert!(Request::decode(&value(XATTR_SIZE_MAX)).is_ok());
    assert_eq!(
        Request::decode(&value(XATTR_SIZE_MAX + 1)),
        Err(ProtoError::TooBig("xattr value"))
    );
    // 256 names of 255 bytes and a NUL each are 64 KiB exactly.
    let list = |n| {
        Reply::ListXattr {
            names: vec![vec![b'u'; 255]; n],
        }
        .encode(1)
    };
    assert!(Reply::decode(&list(256)).is_ok());
    assert_eq!(
        Reply::decode(&list(257)),
        Err(ProtoError::TooBig("xattr list"))
    );
    assert_eq!(decode_target(&list(257)), 0);
}
