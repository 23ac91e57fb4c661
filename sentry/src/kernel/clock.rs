//! Time, from the TSC: the VMM reports the TSC frequency at boot and one
//! host reading of CLOCK_REALTIME/MONOTONIC, paired with a TSC sample; all
//! later readings are computed in the guest without leaving it.
//!
//! The same parameters are published in the vvar page (`vdso`), where the
//! vDSO computes the same formula in user mode: a reading taken there and
//! one taken by a system call order the same way as the calls did.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

static TSC0: AtomicU64 = AtomicU64::new(0);
/// TSC ticks to nanoseconds: `ticks * MULT >> SHIFT` (1 GHz until calibrated).
static MULT: AtomicU64 = AtomicU64::new(1 << 32);
static SHIFT: AtomicU32 = AtomicU32::new(32);
static MONO0: AtomicU64 = AtomicU64::new(0);
static REAL0: AtomicU64 = AtomicU64::new(0);

/// What clock_getres reports for the *_COARSE clocks (a 250 Hz tick).
pub const COARSE_RES_NS: u64 = 4_000_000;

/// The clocks' calibration: at TSC value `tsc0` CLOCK_MONOTONIC read
/// `mono0` and CLOCK_REALTIME `real0`; `mult` and `shift` scale TSC ticks
/// to nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub tsc0: u64,
    pub mult: u64,
    pub shift: u32,
    pub mono0: u64,
    pub real0: u64,
}

impl Params {
    /// The calibration for a TSC of `tsc_khz` kHz. `mult / 2^shift` is
    /// 1e6 / `tsc_khz` with the largest shift that keeps `mult` in 64
    /// bits: a relative error below 2^-63 (nanoseconds per century), and
    /// a reading costs one multiplication, no division.
    pub fn new(tsc0: u64, tsc_khz: u64, mono0: u64, real0: u64) -> Params {
        let khz = u128::from(tsc_khz.max(1));
        let mut shift = 96;
        while shift > 0 && (1_000_000u128 << shift) / khz > u128::from(u64::MAX) {
            shift -= 1;
        }
        // A TSC slower than 1e6 * 2^-64 ... kHz is not a TSC; 1 ns a tick.
        let mult = u64::try_from((1_000_000u128 << shift) / khz).unwrap_or(1);
        Params { tsc0, mult, shift, mono0, real0 }
    }

    /// Nanoseconds from `tsc0` to TSC value `tsc` (0 before `tsc0`): the
    /// vDSO (sentry/vdso/vdso.c) computes exactly this, with the same
    /// 128-bit product and shift.
    pub fn elapsed_ns(&self, tsc: u64) -> u64 {
        let d = tsc.saturating_sub(self.tsc0);
        ((u128::from(d) * u128::from(self.mult)) >> self.shift.min(127)) as u64
    }
}

/// Calibrates against the host clocks. `tsc_khz` 0: unknown, 1 GHz.
pub fn init(tsc_khz: u64) {
    let t0 = crate::arch::rdtsc();
    let r = crate::host::clock();
    let t1 = crate::arch::rdtsc();
    let khz = if tsc_khz != 0 { tsc_khz } else { 1_000_000 };
    set(Params::new(t0 / 2 + t1 / 2, khz, r.monotonic_ns, r.realtime_ns));
}

/// Sets the calibration: the only writer of the parameters, so the
/// sentry's copy and the vvar page's never differ.
fn set(p: Params) {
    TSC0.store(p.tsc0, Ordering::Relaxed);
    MULT.store(p.mult, Ordering::Relaxed);
    SHIFT.store(p.shift, Ordering::Relaxed);
    MONO0.store(p.mono0, Ordering::Relaxed);
    REAL0.store(p.real0, Ordering::Relaxed);
    super::vdso::publish(&p);
}

/// The current calibration.
pub fn params() -> Params {
    Params {
        tsc0: TSC0.load(Ordering::Relaxed),
        mult: MULT.load(Ordering::Relaxed),
        shift: SHIFT.load(Ordering::Relaxed),
        mono0: MONO0.load(Ordering::Relaxed),
        real0: REAL0.load(Ordering::Relaxed),
    }
}

fn elapsed_ns() -> u64 {
    let tsc = crate::arch::rdtsc();
    params().elapsed_ns(tsc)
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn monotonic_ns() -> u64 {
    MONO0.load(Ordering::Relaxed).wrapping_add(elapsed_ns())
}

/// CLOCK_REALTIME in nanoseconds.
pub fn realtime_ns() -> u64 {
    REAL0.load(Ordering::Relaxed).wrapping_add(elapsed_ns())
}

/// Nanoseconds since the sandbox booted (CLOCK_BOOTTIME-ish uptime).
pub fn uptime_ns() -> u64 {
    elapsed_ns()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_matches_the_exact_quotient() {
        for khz in [1u64, 999, 1_000_000, 2_099_998, 2_500_000, 3_600_123, 5_000_000] {
            let p = Params::new(1000, khz, 0, 0);
            assert!(p.mult >> 63 == 1 || p.shift == 96, "{khz} kHz: full precision");
            for d in [0u64, 1, 12_345, 2_500_000_000, 86_400 * 3_600_000_000_000, 1 << 62] {
                let exact = u128::from(d) * 1_000_000 / u128::from(khz);
                if exact > u128::from(u64::MAX) {
                    continue;
                }
                let got = u128::from(p.elapsed_ns(1000 + d));
                // Off by at most one nanosecond per 2^63 (rounding of mult).
                let slack = exact >> 62;
                assert!(got <= exact && got + 1 + slack >= exact, "{khz} kHz, {d} ticks: {got} vs {exact}");
            }
        }
        assert_eq!(Params::new(500, 1_000_000, 0, 0).elapsed_ns(100), 0, "before tsc0");
    }
}
