//! The contract between the VMM (`platform-kvm`, host side) and the sentry
//! (guest kernel): where things live in guest-physical memory, what the VMM
//! hands the sentry at boot, and the hypercalls the sentry may make.
//!
//! Everything here is plain data (`#[repr(C)]`, fixed-width integers) so that
//! both sides agree on layout without sharing code. The VMM must treat every
//! value it reads back from guest memory as hostile; this crate only defines
//! shapes, never trust.
#![no_std]

pub mod boot;
pub mod control;
pub mod hypercall;
pub mod layout;
pub mod linux;
pub mod net;

/// Marker for types that are plain old data: any bit pattern is a valid
/// value and the layout has no padding that could leak host memory.
///
/// # Safety
/// Implementors must be `#[repr(C)]`, contain only integers (or arrays of
/// them) and have no implicit padding.
pub unsafe trait Pod: Copy + 'static {}

macro_rules! pod_ints {
    ($($t:ty),*) => {$(
        // SAFETY: integers are plain old data: any bit pattern is valid.
        unsafe impl Pod for $t {}
    )*};
}
pod_ints!(u8, u16, u32, u64, i8, i16, i32, i64);

// SAFETY: an array of plain old data is plain old data (no padding between elements).
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}
