//! Arbitrary bytes into the gofer's header parser, request decoder and
//! reply decoder; whatever decodes must encode back to the same bytes.
//! The checks live in `gofer::fuzzing::decode_target`, which the stable
//! test `gofer/tests/fuzz_target.rs` also runs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gofer::fuzzing::decode_target(data);
});
