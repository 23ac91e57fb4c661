//! The sentry image's entry point. The VMM starts every vCPU here with RSP on
//! the vCPU's boot stack, RDI = the BootInfo's address (direct map) and
//! RSI = the vCPU index.
#![no_std]
#![no_main]

use abi::boot::BootInfo;
use abi::layout::PHYS_OFFSET;

core::arch::global_asm!(
    ".globl _start",
    "_start:",
    "and rsp, -16",
    "xor ebp, ebp",
    "call {main}",
    "ud2",
    main = sym sentry_main,
);

extern "C" fn sentry_main(info: &BootInfo, vcpu: u64) -> ! {
    if vcpu != 0 {
        // SAFETY: each vCPU starts here once, with its own index.
        unsafe { sentry::ap_main(info, vcpu as u32) }
    }
    let image_end = info.image_end;
    let heap_start = image_end.div_ceil(2 << 20) * (2 << 20);
    let heap_end = heap_start + sentry::HEAP_SIZE;
    // SAFETY: the heap range lies after the image in guest memory (the VMM
    // sized guest memory for it), is mapped by the direct map, and nothing
    // else uses it; this runs once, before any allocation.
    unsafe { sentry::image::init_heap(PHYS_OFFSET + heap_start, sentry::HEAP_SIZE) };
    // SAFETY: first and only call, on vCPU 0, with the VMM's boot state.
    unsafe { sentry::kmain(info, heap_end) }
}
