//! Time, from the TSC: the VMM reports the TSC frequency at boot and one
//! host reading of CLOCK_REALTIME/MONOTONIC, paired with a TSC sample; all
//! later readings are computed in the guest without leaving it.
//!
//! The same parameters are published in the vvar page (`vdso`), where the
//! vDSO computes the same formula in user mode: a reading taken there and
//! one taken by a system call order the same way as the calls did.

use core::sync::atomic::{AtomicU64, Ordering};

static TSC_KHZ: AtomicU64 = AtomicU64::new(1_000_000);
static TSC0: AtomicU64 = AtomicU64::new(0);
static MONO0: AtomicU64 = AtomicU64::new(0);
static REAL0: AtomicU64 = AtomicU64::new(0);

/// What clock_getres reports for the *_COARSE clocks (a 250 Hz tick).
pub const COARSE_RES_NS: u64 = 4_000_000;

/// The clocks' calibration: at TSC value `tsc0` CLOCK_MONOTONIC read
/// `mono0` and CLOCK_REALTIME `real0`; the TSC runs at `tsc_khz` kHz.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub tsc0: u64,
    pub tsc_khz: u64,
    pub mono0: u64,
    pub real0: u64,
}

impl Params {
    /// Nanoseconds from `tsc0` to TSC value `tsc` (0 before `tsc0`): the
    /// vDSO (sentry/vdso/vdso.c) computes exactly this, with the same
    /// 128-bit product and floor division.
    pub fn elapsed_ns(&self, tsc: u64) -> u64 {
        let d = tsc.saturating_sub(self.tsc0);
        (u128::from(d) * 1_000_000 / u128::from(self.tsc_khz.max(1))) as u64
    }
}

/// Calibrates against the host clocks.
pub fn init(tsc_khz: u64) {
    let t0 = crate::arch::rdtsc();
    let r = crate::host::clock();
    let t1 = crate::arch::rdtsc();
    set(Params {
        tsc0: t0 / 2 + t1 / 2,
        tsc_khz: if tsc_khz != 0 { tsc_khz } else { TSC_KHZ.load(Ordering::Relaxed) },
        mono0: r.monotonic_ns,
        real0: r.realtime_ns,
    });
}

/// Sets the calibration: the only writer of the parameters, so the
/// sentry's copy and the vvar page's never differ.
fn set(p: Params) {
    TSC_KHZ.store(p.tsc_khz, Ordering::Relaxed);
    TSC0.store(p.tsc0, Ordering::Relaxed);
    MONO0.store(p.mono0, Ordering::Relaxed);
    REAL0.store(p.real0, Ordering::Relaxed);
    super::vdso::publish(&p);
}

/// The current calibration.
pub fn params() -> Params {
    Params {
        tsc0: TSC0.load(Ordering::Relaxed),
        tsc_khz: TSC_KHZ.load(Ordering::Relaxed),
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
