//! Pieces only the freestanding image needs: the heap, the panic handler
//! and the C memory functions the compiler's output calls.

use core::alloc::{GlobalAlloc, Layout};
use core::panic::PanicInfo;
use core::ptr::NonNull;
use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: Heap = Heap { big: LockedHeap::empty(), small: spin::Mutex::new([None; CLASSES]) };

/// Small blocks come from per-size free lists in front of the first-fit
/// list allocator: its walk grows with the number of free fragments, and
/// the kernel's many small, short-lived objects (paths, names, nodes) made
/// it thousands of entries long, a syscall paying for it at every
/// allocation. A freed small block goes back on its class's list, so the
/// big heap only sees blocks of a few sizes and rarely.
struct Heap {
    big: LockedHeap,
    /// Heads of the free lists of classes 16, 32, … 2048 bytes; each free
    /// block holds the next one's address in its first word.
    small: spin::Mutex<[Option<NonNull<u8>>; CLASSES]>,
}

const CLASSES: usize = 8;
const MIN_CLASS: usize = 16;

// SAFETY: the free-list heads are raw pointers into the heap, only used
// under the mutex.
unsafe impl Sync for Heap {}
// SAFETY: as above.
unsafe impl Send for Heap {}

/// The class of a layout (size and alignment rounded up to a power of two
/// of at least 16), if small.
fn class(l: &Layout) -> Option<usize> {
    let n = l.size().max(l.align()).max(MIN_CLASS).next_power_of_two();
    let c = (n.trailing_zeros() - MIN_CLASS.trailing_zeros()) as usize;
    (c < CLASSES).then_some(c)
}

fn class_layout(c: usize) -> Layout {
    let n = MIN_CLASS << c;
    // A power of two is a valid size and alignment.
    Layout::from_size_align(n, n).unwrap_or(Layout::new::<u8>())
}

// SAFETY: blocks of a class are `class_layout(c)`-sized and aligned, so any
// layout of that class fits; a block is on a free list only while no one
// owns it, and the big heap upholds GlobalAlloc for the rest.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let Some(c) = class(&l) else {
            // SAFETY: forwarded with the caller's contract.
            return unsafe { self.big.alloc(l) };
        };
        let mut heads = self.small.lock();
        match heads[c] {
            Some(b) => {
                // SAFETY: a free block of this class stores the next free
                // block's address (or 0) in its first, aligned word.
                heads[c] = NonNull::new(unsafe { b.as_ptr().cast::<*mut u8>().read() });
                b.as_ptr()
            }
            None => {
                drop(heads);
                // SAFETY: a non-zero-sized layout.
                unsafe { self.big.alloc(class_layout(c)) }
            }
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        let Some(c) = class(&l) else {
            // SAFETY: forwarded with the caller's contract.
            return unsafe { self.big.dealloc(p, l) };
        };
        let mut heads = self.small.lock();
        let next = heads[c].map_or(core::ptr::null_mut(), NonNull::as_ptr);
        // SAFETY: `p` is a block of this class the caller no longer uses;
        // it is at least 16 bytes and 16-aligned, room for the link.
        unsafe { p.cast::<*mut u8>().write(next) };
        heads[c] = NonNull::new(p);
    }
}

/// Hands `[start, start+size)` (direct-map addresses) to the heap.
///
/// # Safety
/// The range must be unused memory, mapped writable, and this must be
/// called once before any allocation.
pub unsafe fn init_heap(start: u64, size: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe { HEAP.big.lock().init(start as *mut u8, size as usize) };
}

/// Bytes of the heap handed out (freed small blocks kept for reuse count
/// as used: they are still the sandbox's memory).
pub fn heap_used() -> u64 {
    HEAP.big.lock().used() as u64
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    let mut frames = [0u64; abi::hypercall::MAX_BACKTRACE as usize];
    let mut n = 0;
    let mut rbp: u64;
    // SAFETY: reading the frame pointer register has no side effects.
    unsafe { core::arch::asm!("mov {}, rbp", out(reg) rbp) };
    let lo = abi::layout::PHYS_OFFSET;
    while n < frames.len() && rbp >= lo && rbp % 8 == 0 && rbp < lo + (64 << 30) {
        // SAFETY: the sentry is built with frame pointers; `rbp` was checked
        // to lie in the direct map, which is always mapped.
        let (next, ret) = unsafe { (*(rbp as *const u64), *((rbp + 8) as *const u64)) };
        frames[n] = ret;
        n += 1;
        if next <= rbp {
            break;
        }
        rbp = next;
    }
    let mut msg = [0u8; 512];
    let len = {
        let mut w = Buf { b: &mut msg, n: 0 };
        let _ = core::fmt::write(&mut w, format_args!("{}", info));
        w.n
    };
    let text = core::str::from_utf8(&msg[..len]).unwrap_or("panic");
    crate::host::panic(text, &frames[..n])
}

/// A fixed buffer for formatting without the heap (it may be the problem).
struct Buf<'a> {
    b: &'a mut [u8],
    n: usize,
}

impl core::fmt::Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.b.len() - self.n;
        let k = s.len().min(room);
        self.b[self.n..self.n + k].copy_from_slice(&s.as_bytes()[..k]);
        self.n += k;
        Ok(())
    }
}

// The prebuilt `alloc` refers to these even with panic=abort.
#[no_mangle]
extern "C" fn rust_eh_personality() {}

#[no_mangle]
extern "C" fn _Unwind_Resume() -> ! {
    crate::arch::halt_forever()
}

/// # Safety
/// C `memcpy` contract.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller upholds memcpy's contract; rep movsb copies
    // exactly `n` bytes forwards.
    unsafe {
        core::arch::asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _,
            options(nostack, preserves_flags))
    };
    dst
}

/// # Safety
/// C `memmove` contract.
#[no_mangle]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize) <= (src as usize) || (dst as usize) >= (src as usize) + n {
        // SAFETY: non-overlapping or dst below src: forward copy is correct.
        return unsafe { memcpy(dst, src, n) };
    }
    // SAFETY: overlapping with dst above src: copy backwards (std, rep
    // movsb from the last byte), then restore the direction flag.
    unsafe {
        core::arch::asm!("std", "rep movsb", "cld",
            inout("rcx") n => _, inout("rdi") dst.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
            options(nostack))
    };
    dst
}

/// # Safety
/// C `memset` contract.
#[no_mangle]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller upholds memset's contract.
    unsafe {
        core::arch::asm!("rep stosb", inout("rcx") n => _, inout("rdi") dst => _, in("al") c as u8,
            options(nostack, preserves_flags))
    };
    dst
}

/// # Safety
/// C `memcmp` contract.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n and the caller guarantees n readable bytes; the
        // volatile reads keep LLVM from turning this loop into a memcmp call.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

/// # Safety
/// C `bcmp` contract.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}
