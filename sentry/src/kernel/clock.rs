//! Time, from the TSC: the VMM reports the TSC frequency at boot and one
//! host reading of CLOCK_REALTIME/MONOTONIC, paired with a TSC sample; all
//! later readings are computed in the guest without leaving it.

use core::sync::atomic::{AtomicU64, Ordering};

static TSC_KHZ: AtomicU64 = AtomicU64::new(1_000_000);
static TSC0: AtomicU64 = AtomicU64::new(0);
static MONO0: AtomicU64 = AtomicU64::new(0);
static REAL0: AtomicU64 = AtomicU64::new(0);

/// Calibrates against the host clocks.
pub fn init(tsc_khz: u64) {
    if tsc_khz != 0 {
        TSC_KHZ.store(tsc_khz, Ordering::Relaxed);
    }
    let t0 = crate::arch::rdtsc();
    let r = crate::host::clock();
    let t1 = crate::arch::rdtsc();
    TSC0.store(t0 / 2 + t1 / 2, Ordering::Relaxed);
    MONO0.store(r.monotonic_ns, Ordering::Relaxed);
    REAL0.store(r.realtime_ns, Ordering::Relaxed);
}

fn elapsed_ns() -> u64 {
    let d = crate::arch::rdtsc().saturating_sub(TSC0.load(Ordering::Relaxed));
    (u128::from(d) * 1_000_000 / u128::from(TSC_KHZ.load(Ordering::Relaxed))) as u64
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn monotonic_ns() -> u64 {
    MONO0.load(Ordering::Relaxed) + elapsed_ns()
}

/// CLOCK_REALTIME in nanoseconds.
pub fn realtime_ns() -> u64 {
    REAL0.load(Ordering::Relaxed) + elapsed_ns()
}

/// Nanoseconds since the sandbox booted (CLOCK_BOOTTIME-ish uptime).
pub fn uptime_ns() -> u64 {
    elapsed_ns()
}
