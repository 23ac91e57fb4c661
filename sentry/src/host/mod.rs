//! The hypercall client: the sentry's only way out of the guest.
//!
//! Each call fills this vCPU's mailbox and exits to the VMM (PVM: the halt
//! hypercall `int $0x1b`; hardware: `out` to the hypercall port). Costs
//! ~20 µs on PVM, so callers batch (scatter/gather lists, whole segments).

use abi::hypercall::{ClockReading, IoVec, Mailbox, Nr, RET_PENDING};
use abi::linux::Stat;
use core::sync::atomic::Ordering;

use crate::errno::Errno;
use crate::mm::phys;

/// Makes one hypercall through this vCPU's mailbox; returns the VMM's raw
/// result (`-errno` on failure).
pub fn call(nr: Nr, args: [u64; 6]) -> i64 {
    let block = crate::arch::percpu::block();
    if block == 0 {
        return -i64::from(Errno::ENOSYS.0);
    }
    let mb = (block + abi::layout::vcpu::MAILBOX) as *mut Mailbox;
    // SAFETY: the mailbox page is this vCPU's, mapped in the direct map,
    // and only this vCPU uses it; the VMM reads it only while we are exited.
    unsafe { mb.write_volatile(Mailbox { nr: nr as u64, args, ret: RET_PENDING }) };
    // The exit can be absorbed by the host kernel without reaching the VMM
    // (PVM treats it as a halt, and a pending event ends a halt early), so
    // repeat it until the VMM has answered.
    loop {
        exit_to_vmm();
        // SAFETY: as above; the VMM writes `ret` before resuming us.
        let ret = unsafe { core::ptr::addr_of!((*mb).ret).read_volatile() };
        if ret != RET_PENDING {
            return ret;
        }
    }
}


fn exit_to_vmm() {
    if crate::arch::is_pvm() {
        // SAFETY: PVM's halt hypercall exits to the VMM and resumes here;
        // it clobbers only the listed registers. rbx is reserved by LLVM,
        // so it is saved around the call by hand.
        unsafe {
            core::arch::asm!(
                "push rbx", "xor ebx, ebx", "int 0x1b", "pop rbx",
                inout("rax") abi::hypercall::PVM_HC_HALT => _,
                inout("rcx") 0u64 => _, inout("rdx") 0u64 => _,
            )
        };
    } else {
        // SAFETY: an `out` to the hypercall port exits to the VMM and
        // resumes at the next instruction.
        unsafe {
            core::arch::asm!("out dx, al", in("dx") abi::hypercall::HYPERCALL_PORT, in("al") 0u8,
                options(nostack, preserves_flags))
        };
    }
}

fn result(r: i64) -> Result<u64, Errno> {
    if r < 0 {
        Err(Errno::from_host(r))
    } else {
        Ok(r as u64)
    }
}

fn gpa_of<T: ?Sized>(p: *const T) -> u64 {
    phys::va_to_pa(p.cast::<u8>() as u64)
}

/// Writes a log line to the host's stderr (rate-limited by the VMM).
pub fn console(msg: &str) {
    call(Nr::ConsoleWrite, [gpa_of(msg.as_ptr()), msg.len() as u64, 0, 0, 0, 0]);
}

/// Ends the sandbox with `status`.
pub fn exit(status: i32) -> ! {
    call(Nr::Exit, [status as u64 & 0xff, 0, 0, 0, 0, 0]);
    crate::arch::halt_forever()
}

/// Reports a sentry panic with a backtrace of return addresses, ending the sandbox.
pub fn panic(msg: &str, backtrace: &[u64]) -> ! {
    call(
        Nr::Panic,
        [gpa_of(msg.as_ptr()), msg.len() as u64, gpa_of(backtrace.as_ptr()), backtrace.len() as u64, 0, 0],
    );
    crate::arch::halt_forever()
}

/// Reads the host's clocks.
pub fn clock() -> ClockReading {
    let mut r = ClockReading::default();
    // A mutable pointer: the VMM writes through it behind the compiler's back.
    let p: *mut ClockReading = &mut r;
    call(Nr::Clock, [gpa_of(p), 0, 0, 0, 0, 0]);
    // SAFETY: `p` points at the live local `r`; the volatile read forces a
    // reload of what the VMM wrote.
    unsafe { p.read_volatile() }
}

/// Sleeps until `timeout_ns` passes or the VMM wakes us.
pub fn halt(timeout_ns: u64) {
    call(Nr::Halt, [timeout_ns, 0, 0, 0, 0, 0]);
}

/// Lets the host run other threads for a moment.
pub fn yield_cpu() {
    call(Nr::Yield, [0; 6]);
}

/// Tells the VMM a process was killed because memory ran out (it
/// reports the OOM kill to the container runtime).
pub fn note_oom_kill() {
    call(Nr::OomKill, [0; 6]);
}

/// Ends vCPU `cpu`'s halt (or its next one, if it is not halted yet).
pub fn wake_cpu(cpu: usize) {
    call(Nr::Wake, [cpu as u64, 0, 0, 0, 0, 0]);
}

/// Opens a host file (skeleton; the gofer replaces this). Writes are
/// refused by the VMM unless the sandbox's host tree is writable.
pub fn open(path: &str, flags: u32) -> Result<u64, Errno> {
    open_mode(path, flags, 0)
}

/// Opens a host file, creating it with `mode` under O_CREAT. The
/// deferred closes go with it.
pub fn open_mode(path: &str, flags: u32, mode: u32) -> Result<u64, Errno> {
    let (closes, n) = take_deferred();
    let r = call(Nr::HostOpen, [gpa_of(path.as_ptr()), path.len() as u64, u64::from(flags), u64::from(mode), gpa_of(closes.as_ptr()), n]);
    core::hint::black_box(&closes);
    result(r)
}

const CLOSE_BATCH: usize = abi::hypercall::MAX_CLOSE_BATCH as usize;

/// Handles whose close waits for the next open (or a full batch): a
/// close is an exit of its own, and programs close each file they read.
static DEFERRED: spin::Mutex<([u64; CLOSE_BATCH], usize)> = spin::Mutex::new(([0; CLOSE_BATCH], 0));

fn take_deferred() -> ([u64; CLOSE_BATCH], u64) {
    let mut d = DEFERRED.lock();
    let n = core::mem::take(&mut d.1);
    (d.0, n as u64)
}

/// Closes a host handle some time soon: for files whose closing nobody
/// can observe (read-only regular files and directories), never for
/// pipes, sockets or terminals, whose peers see the close.
pub fn close_later(h: u64) {
    let full = {
        let mut d = DEFERRED.lock();
        if d.1 < CLOSE_BATCH {
            let n = d.1;
            d.0[n] = h;
            d.1 += 1;
            return;
        }
        let full = d.0;
        d.0[0] = h;
        d.1 = 1;
        full
    };
    call(Nr::HostClose, [u64::MAX, gpa_of(full.as_ptr()), CLOSE_BATCH as u64, 0, 0, 0]);
    core::hint::black_box(&full);
}

/// Changes the host tree at `path` (see `abi::hypercall::PathOp`).
pub fn path_op(op: abi::hypercall::PathOp, path: &str, path2: &str, arg: u64) -> Result<u64, Errno> {
    let r = call(
        Nr::HostPathOp,
        [op as u64, gpa_of(path.as_ptr()), path.len() as u64, gpa_of(path2.as_ptr()), path2.len() as u64, arg],
    );
    result(r)
}

/// Changes an open handle (see `abi::hypercall::HandleOp`).
pub fn handle_op(op: abi::hypercall::HandleOp, h: u64, arg: u64, arg2: u64) -> Result<u64, Errno> {
    result(call(Nr::HostHandleOp, [op as u64, h, arg, arg2, 0, 0]))
}

/// statfs of an absolute host path: Linux's 120-byte `struct statfs`.
pub fn statfs(path: &str) -> Result<[u8; 120], Errno> {
    let mut b = [0u8; 120];
    let r = call(Nr::HostStatfs, [gpa_of(path.as_ptr()), path.len() as u64, gpa_of(b.as_mut_ptr()), 0, 0, 0]);
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
    // SAFETY: `b` is a live local the VMM wrote through its address; the
    // volatile read makes the compiler reload it.
    let b = unsafe { core::ptr::read_volatile(&b) };
    result(r).map(|_| b)
}

/// An extended attribute of an absolute host path, never following a
/// final symlink (see `abi::hypercall::XattrOp`): `name` is empty for
/// `List`; `buf` receives the value or the NUL-terminated names, or holds
/// the value to set. Returns the bytes of value or list.
pub fn xattr(op: abi::hypercall::XattrOp, path: &str, name: &str, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
    let mut req = alloc::vec::Vec::with_capacity(path.len() + 1 + name.len());
    req.extend_from_slice(path.as_bytes());
    if !name.is_empty() {
        req.push(0);
        req.extend_from_slice(name.as_bytes());
    }
    let r = call(
        Nr::HostXattr,
        [op as u64, gpa_of(req.as_ptr()), req.len() as u64, gpa_of(buf.as_ptr()), buf.len() as u64, u64::from(flags)],
    );
    // The VMM wrote into `buf` (exclusively borrowed) through its address.
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
    core::hint::black_box(&req);
    result(r).map(|n| n as usize)
}

/// Tells the host the init program is loaded (or why it is not).
pub fn ready(r: Result<(), &str>) {
    match r {
        Ok(()) => call(Nr::Ready, [0, 0, 0, 0, 0, 0]),
        Err(msg) => call(Nr::Ready, [1, gpa_of(msg.as_ptr()), msg.len() as u64, 0, 0, 0]),
    };
}

/// The control request `seq` has its answer in the control block.
pub fn control_done(seq: u64) {
    call(Nr::ControlDone, [seq, 0, 0, 0, 0, 0]);
}

/// A process started by a control `Exec` ended with wait status `status`.
pub fn process_exited(pid: u32, status: u32) {
    call(Nr::ProcessExited, [u64::from(pid), u64::from(status), 0, 0, 0, 0]);
}

/// Closes a host handle.
pub fn close(h: u64) {
    call(Nr::HostClose, [h, 0, 0, 0, 0, 0]);
}

/// Reads into guest-physical buffers; `off = None` uses the handle's offset.
pub fn read(h: u64, iov: &[IoVec], off: Option<u64>) -> Result<u64, Errno> {
    result(call(Nr::HostRead, [h, gpa_of(iov.as_ptr()), iov.len() as u64, off.unwrap_or(u64::MAX), 0, 0]))
}

/// Writes from guest-physical buffers.
pub fn write(h: u64, iov: &[IoVec], off: Option<u64>) -> Result<u64, Errno> {
    result(call(Nr::HostWrite, [h, gpa_of(iov.as_ptr()), iov.len() as u64, off.unwrap_or(u64::MAX), 0, 0]))
}

fn stat_call(nr: Nr, args: [u64; 6], out: &mut Stat) -> Result<(), Errno> {
    let r = call(nr, args);
    // SAFETY: `out` is a live exclusive reference the VMM just wrote through
    // its guest-physical address; the volatile read makes the compiler see it.
    *out = unsafe { core::ptr::read_volatile(out) };
    result(r).map(|_| ())
}

/// fstat on a handle.
pub fn fstat(h: u64) -> Result<Stat, Errno> {
    let mut st = Stat::default();
    let out = gpa_of(&mut st as *mut Stat);
    stat_call(Nr::HostFstat, [h, out, 0, 0, 0, 0], &mut st)?;
    Ok(st)
}

/// stat/lstat of an absolute host path.
pub fn stat_path(path: &str, nofollow: bool) -> Result<Stat, Errno> {
    let mut st = Stat::default();
    let out = gpa_of(&mut st as *mut Stat);
    let flags = if nofollow { 0x100 } else { 0 };
    stat_call(Nr::HostFstatat, [u64::MAX, gpa_of(path.as_ptr()), path.len() as u64, flags, out, 0], &mut st)?;
    Ok(st)
}

/// lstat of every component of an absolute host path in one exit:
/// fills `out` from the start and returns how many components worked and
/// the errno that stopped the walk (None: all of them). A first
/// component that fails is an error.
pub fn walk_stat(path: &str, out: &mut [Stat]) -> Result<(usize, Option<Errno>), Errno> {
    let r = call(Nr::HostWalkStat, [gpa_of(path.as_ptr()), path.len() as u64, gpa_of(out.as_ptr()), out.len() as u64, 0, 0]);
    // The VMM wrote into `out` (exclusively borrowed) through its address.
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
    let r = result(r)?;
    let n = ((r & 0xffff) as usize).min(out.len());
    for st in out[..n].iter_mut() {
        // SAFETY: a live exclusive reference the VMM wrote through its
        // guest-physical address; the volatile read makes the compiler see it.
        *st = unsafe { core::ptr::read_volatile(st) };
    }
    let stop = (r >> 16) as i32;
    Ok((n, (stop != 0).then(|| Errno::from_host(-i64::from(stop)))))
}

/// getdents64 into a sentry buffer.
pub fn getdents(h: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    let r = result(call(Nr::HostGetdents, [h, gpa_of(buf.as_ptr()), buf.len() as u64, 0, 0, 0]))?;
    // SAFETY: the VMM wrote into `buf` (exclusively borrowed); the fence
    // keeps the compiler from using stale values.
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
    Ok(r as usize)
}

/// readlink of an absolute host path into a sentry buffer.
pub fn readlink(path: &str, buf: &mut [u8]) -> Result<usize, Errno> {
    let r = result(call(
        Nr::HostReadlink,
        [gpa_of(path.as_ptr()), path.len() as u64, gpa_of(buf.as_ptr()), buf.len() as u64, 0, 0],
    ))?;
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
    Ok(r as usize)
}

/// lseek on a handle.
pub fn lseek(h: u64, off: i64, whence: u32) -> Result<u64, Errno> {
    result(call(Nr::HostLseek, [h, off as u64, u64::from(whence), 0, 0, 0]))
}

/// A terminal ioctl on a handle; `arg` is a sentry buffer of the right size.
pub fn ioctl(h: u64, req: u64, arg: &mut [u8]) -> Result<u64, Errno> {
    let r = result(call(Nr::HostIoctl, [h, req, gpa_of(arg.as_ptr()), 0, 0, 0]));
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
    r
}

/// access(2) on an absolute host path.
pub fn access(path: &str, mode: u32) -> Result<(), Errno> {
    result(call(Nr::HostAccess, [gpa_of(path.as_ptr()), path.len() as u64, u64::from(mode), 0, 0, 0])).map(|_| ())
}

/// Readiness of a host handle right now (poll with a zero timeout).
pub fn poll(h: u64, events: u16) -> Result<u16, Errno> {
    result(call(Nr::HostPoll, [h, u64::from(events), 0, 0, 0, 0])).map(|r| r as u16)
}

/// Returns guest memory to the host.
pub fn discard(gpa: u64, len: u64) {
    call(Nr::Discard, [gpa, len, 0, 0, 0, 0]);
}

/// `log!`-style formatting to the host console.
#[macro_export]
macro_rules! klog {
    ($($t:tt)*) => {{
        let s = alloc::format!($($t)*);
        $crate::host::console(&s);
    }};
}

/// A socket operation on a host socket (`abi::net`): (op, handle, args).
pub fn net(op: abi::net::NetOp, h: u64, a: [u64; 4]) -> Result<u64, Errno> {
    result(call(Nr::Net, [op as u64, h, a[0], a[1], a[2], a[3]]))
}

/// The guest-physical address of a sentry object, for hypercall arguments.
pub fn gpa<T: ?Sized>(p: &T) -> u64 {
    gpa_of(p as *const T)
}

/// The current poll bits of host socket `h`, from the VMM's readiness
/// table (`abi::net::READY_GPA`): no exit.
pub fn net_ready(h: u64) -> u16 {
    if h >= abi::net::READY_ENTRIES {
        return 0;
    }
    let p = phys::pa_to_va(abi::net::READY_GPA + 2 * h) as *const u16;
    // SAFETY: the readiness table is reserved guest memory (abi::net),
    // mapped by the direct map and only written by the VMM; `h` is in range.
    unsafe { p.read_volatile() }
}
