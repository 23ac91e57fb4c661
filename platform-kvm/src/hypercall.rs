//! The hypercall service: decodes a vCPU's mailbox, validates every field
//! as hostile input, performs the host operation and writes the result.
//!
//! Nothing the sentry sends is trusted: guest addresses are checked against
//! guest memory, lengths and counts are bounded, handles must be ones this
//! sandbox owns, flags are allowlisted. A bad request gets `-errno` back;
//! it never panics the VMM or touches anything outside the sandbox's
//! memory and handles.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use abi::hypercall::{self, ClockReading, IoVec, Mailbox, Nr};
use abi::linux::Stat;

use crate::image::Symbols;
use crate::memory::GuestMemory;

/// What the vCPU loop does after a hypercall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Resume the vCPU.
    Resume,
    /// The sandbox is over; exit with this status.
    Exit(i32),
}

/// Exit status of a sandbox whose sentry panicked.
pub const SENTRY_PANIC_STATUS: i32 = 125;

/// Most host handles one sandbox may hold.
const MAX_HANDLES: usize = 4096;

/// Console lines allowed per second before the VMM drops them.
const CONSOLE_LINES_PER_SEC: u32 = 200;

/// Host resources owned by a sandbox, named by small integers.
#[derive(Default)]
pub struct HandleTable {
    slots: Vec<Option<Arc<OwnedFd>>>,
}

impl HandleTable {
    /// Adds an fd, returning its handle.
    pub fn insert(&mut self, fd: OwnedFd) -> Result<u64, i32> {
        let fd = Some(Arc::new(fd));
        if let Some(i) = self.slots.iter().position(Option::is_none) {
            self.slots[i] = fd;
            return Ok(i as u64);
        }
        if self.slots.len() >= MAX_HANDLES {
            return Err(libc::EMFILE);
        }
        self.slots.push(fd);
        Ok(self.slots.len() as u64 - 1)
    }

    /// Looks a handle up.
    pub fn get(&self, h: u64) -> Result<Arc<OwnedFd>, i32> {
        usize::try_from(h)
            .ok()
            .and_then(|i| self.slots.get(i))
            .and_then(Clone::clone)
            .ok_or(libc::EBADF)
    }

    /// Removes a handle; the fd closes when the last user drops it.
    pub fn remove(&mut self, h: u64) -> Result<(), i32> {
        let slot = usize::try_from(h).ok().and_then(|i| self.slots.get_mut(i)).ok_or(libc::EBADF)?;
        slot.take().map(|_| ()).ok_or(libc::EBADF)
    }
}

struct ConsoleLimit {
    window: Instant,
    lines: u32,
    dropped: u64,
}

/// The vCPU whose mailbox is at `mailbox_gpa` (vCPU 0 for anything else:
/// only used to pick a wake-up flag).
fn vcpu_of(mailbox_gpa: u64) -> usize {
    let i = mailbox_gpa.saturating_sub(abi::layout::VCPU_BLOCKS_GPA) / abi::layout::VCPU_BLOCK_SIZE;
    usize::try_from(i).ok().filter(|&i| i < abi::layout::MAX_VCPUS as usize).unwrap_or(0)
}

/// Serves the hypercalls of one sandbox (shared by its vCPU threads).
pub struct Service {
    mem: Arc<GuestMemory>,
    handles: Mutex<HandleTable>,
    symbols: Symbols,
    image_base: u64,
    console: Mutex<ConsoleLimit>,
    /// Console lines per second before dropping (None: unlimited, when
    /// the user asked for --strace).
    console_rate: Option<u32>,
    wake: Arc<(Mutex<bool>, Condvar)>,
    /// Per-vCPU wake-ups (`Nr::Wake`), waited for under `wake`'s lock.
    woken: [AtomicBool; abi::layout::MAX_VCPUS as usize],
    /// Set when the sandbox ends: halts return and vCPU threads stop.
    stopping: AtomicBool,
    /// Host sockets (`Nr::Net`).
    net: crate::net::Net,
    /// Lifecycle events from the sentry (ready, control answers, exits).
    control: Arc<crate::control::ControlShared>,
    /// Whether the sentry may change any host file the gofer serves (OCI
    /// mode).
    allow_writes: bool,
    /// Trees the sentry may change even without `allow_writes`
    /// (read-write volumes of `rvisor do`), as path prefixes ending in '/'.
    writable: Vec<Vec<u8>>,
    /// The gofer, when one serves the sandbox's files: every path request
    /// goes to it instead of the VMM's own namespace.
    files: Option<crate::files::GoferFiles>,
    /// Hypercalls served, by number (`RVISOR_KVM_STATS=1` prints them).
    counts: [AtomicU64; 64],
}

type HcResult = Result<u64, i32>;

impl Service {
    /// A service over `mem`, with `handles` already holding the stdio fds.
    pub fn new(mem: Arc<GuestMemory>, handles: HandleTable, symbols: Symbols, image_base: u64) -> Self {
        let wake = Arc::new((Mutex::new(false), Condvar::new()));
        Service {
            mem: mem.clone(),
            handles: Mutex::new(handles),
            symbols,
            image_base,
            console: Mutex::new(ConsoleLimit { window: Instant::now(), lines: 0, dropped: 0 }),
            console_rate: Some(CONSOLE_LINES_PER_SEC),
            wake: wake.clone(),
            woken: [const { AtomicBool::new(false) }; abi::layout::MAX_VCPUS as usize],
            stopping: AtomicBool::new(false),
            net: crate::net::Net::new(mem.clone(), wake, false).expect("epoll_create1"),
            control: crate::control::ControlShared::new(),
            allow_writes: false,
            writable: Vec::new(),
            files: None,
            counts: [const { AtomicU64::new(0) }; 64],
        }
    }

    /// Hypercalls served so far: (number, count), non-zero ones.
    pub fn counts(&self) -> Vec<(u64, u64)> {
        self.counts.iter().enumerate().map(|(n, c)| (n as u64, c.load(Ordering::Relaxed))).filter(|(_, c)| *c != 0).collect()
    }

    /// Serves path requests through the gofer on the other end of `sock`.
    pub fn with_gofer(mut self, files: crate::files::GoferFiles) -> Self {
        self.files = Some(files);
        self
    }

    /// Lets the sentry change files below each of `dirs` (absolute).
    pub fn writable_trees(mut self, dirs: &[String]) -> Self {
        self.writable = dirs.iter().map(|d| format!("{}/", d.trim_end_matches('/')).into_bytes()).collect();
        self
    }

    /// Whether a change to `path` is allowed. Only through the gofer: the
    /// VMM never changes a host file by path itself (it resolves paths
    /// only for a sandbox without a gofer, read-only). `..` never reaches
    /// the gofer, which refuses it.
    fn may_write(&self, path: &[u8]) -> bool {
        self.files.is_some()
            && (self.allow_writes || (!path.split(|&b| b == b'/').any(|c| c == b"..") && self.writable.iter().any(|w| path.starts_with(w))))
    }

    /// Whether the attributes of `path` (mode, owner, times, size,
    /// xattrs) may change: as `may_write`, and also a writable tree's own
    /// directory (chmod or setfattr of a volume's root; it is a mount
    /// point, so it cannot be removed or renamed).
    fn may_change_attrs(&self, path: &[u8]) -> bool {
        self.may_write(path) || (self.files.is_some() && self.writable.iter().any(|w| path == &w[..w.len() - 1]))
    }

    /// Lets the sentry change any file the gofer serves.
    pub fn allow_writes(mut self) -> Self {
        self.allow_writes = true;
        self
    }

    /// Adds a host fd to the sandbox's handles.
    pub fn add_handle(&self, fd: OwnedFd) -> Result<u64, i32> {
        self.lock_handles().insert(fd)
    }

    pub(crate) fn control(&self) -> &Arc<crate::control::ControlShared> {
        &self.control
    }

    /// Lets the sandbox make raw inet sockets (the container holds
    /// CAP_NET_RAW).
    pub fn allow_raw_sockets(mut self) -> Self {
        self.net.allow_raw();
        self
    }

    /// Lets every console line through (the user asked for the trace).
    pub fn unlimited_console(mut self) -> Self {
        self.console_rate = None;
        self
    }

    /// Guest memory.
    pub fn mem(&self) -> &GuestMemory {
        &self.mem
    }

    /// Wakes a vCPU sleeping in `Halt`.
    pub fn kick(&self) {
        let (m, cv) = &*self.wake;
        *m.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }

    /// Ends every halt and tells the vCPU threads to stop (the sandbox
    /// ended on one of them).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.kick();
    }

    /// Whether the sandbox is ending.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Handles the request in the mailbox at `mailbox_gpa`.
    pub fn handle(&self, mailbox_gpa: u64) -> Control {
        let Ok(mb) = self.mem.read_obj::<Mailbox>(mailbox_gpa) else {
            return Control::Exit(SENTRY_PANIC_STATUS);
        };
        if mb.ret != hypercall::RET_PENDING {
            // Already answered: a repeated or spurious exit.
            return Control::Resume;
        }
        if let Some(c) = self.counts.get(mb.nr as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let (ret, ctl) = match Nr::from_u64(mb.nr) {
            None => (Err(libc::ENOSYS), Control::Resume),
            Some(Nr::Exit) => return Control::Exit((mb.args[0] & 0xff) as i32),
            Some(Nr::Panic) => {
                self.report_panic(&mb.args);
                return Control::Exit(SENTRY_PANIC_STATUS);
            }
            Some(nr) => (self.dispatch(nr, &mb.args, mailbox_gpa), Control::Resume),
        };
        let ret = match ret {
            Ok(v) => i64::try_from(v).unwrap_or(i64::MAX),
            Err(e) => -i64::from(e),
        };
        // The mailbox lies inside guest memory (read above), so this write
        // cannot fail; if it somehow did, the guest just sees a stale value.
        let _ = self.mem.write_obj(mailbox_gpa + 7 * 8, &ret);
        ctl
    }

    fn dispatch(&self, nr: Nr, a: &[u64; 6], mailbox: u64) -> HcResult {
        match nr {
            Nr::ConsoleWrite => self.console_write(a[0], a[1]),
            Nr::Clock => self.clock(a[0]),
            Nr::Halt => self.halt(vcpu_of(mailbox), a[0]),
            Nr::Wake => self.wake_vcpu(a[0]),
            Nr::Yield => {
                std::thread::yield_now();
                Ok(0)
            }
            Nr::OomKill => {
                self.control.note_oom_kill();
                Ok(0)
            }
            Nr::HostOpen => {
                self.close_batch(a[4], a[5])?;
                self.open(a[0], a[1], a[2], a[3])
            }
            Nr::HostClose => {
                self.close_batch(a[1], a[2])?;
                if a[0] == u64::MAX {
                    return Ok(0);
                }
                self.net.forget(a[0]);
                self.lock_handles().remove(a[0]).map(|()| 0)
            }
            Nr::HostRead => self.rw(a[0], a[1], a[2], a[3], false),
            Nr::HostWrite => self.rw(a[0], a[1], a[2], a[3], true),
            Nr::HostFstat => self.fstat(a[0], a[1]),
            Nr::HostFstatat => self.fstatat(a[0], a[1], a[2], a[3], a[4]),
            Nr::HostGetdents => self.getdents(a[0], a[1], a[2]),
            Nr::HostReadlink => self.readlink(a[0], a[1], a[2], a[3]),
            Nr::HostLseek => self.lseek(a[0], a[1], a[2]),
            Nr::HostIoctl => self.ioctl(a[0], a[1], a[2]),
            Nr::HostAccess => self.access(a[0], a[1], a[2]),
            Nr::HostPoll => self.poll(a[0], a[1], a[2]),
            Nr::Discard => self.mem.discard(a[0], a[1]).map(|()| 0).map_err(|_| libc::EINVAL),
            Nr::HostPathOp => self.path_op(a),
            Nr::HostHandleOp => self.handle_op(a[0], a[1], a[2], a[3]),
            Nr::HostStatfs => self.statfs(a[0], a[1], a[2]),
            Nr::HostXattr => self.xattr(a),
            Nr::HostWalkStat => self.walk_stat(a[0], a[1], a[2], a[3]),
            Nr::Net => {
                let iovecs = |gpa, n| self.iovecs(gpa, n);
                let insert = |fd| {
                    let mut t = self.lock_handles();
                    let h = t.insert(fd)?;
                    Ok((h, t.get(h)?))
                };
                self.net.op(a, &iovecs, &insert)
            }
            Nr::Ready => self.ready(a[0], a[1], a[2]),
            Nr::ControlDone => {
                self.control.set_done(a[0]);
                Ok(0)
            }
            Nr::ProcessExited => {
                let pid = u32::try_from(a[0]).map_err(|_| libc::EINVAL)?;
                self.control.set_exited(pid, (a[1] & 0xffff) as u32);
                Ok(0)
            }
            Nr::Exit | Nr::Panic => Err(libc::EINVAL),
        }
    }

    fn lock_handles(&self) -> std::sync::MutexGuard<'_, HandleTable> {
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fd(&self, h: u64) -> Result<Arc<OwnedFd>, i32> {
        self.lock_handles().get(h)
    }

    /// Closes the handles the sentry deferred (`Nr::HostOpen`): a count
    /// over the bound is refused whole; handles that are not open are
    /// skipped (each was the sentry's to close).
    fn close_batch(&self, gpa: u64, count: u64) -> Result<(), i32> {
        if count == 0 {
            return Ok(());
        }
        if count > hypercall::MAX_CLOSE_BATCH {
            return Err(libc::EINVAL);
        }
        let bytes = self.read_bytes(gpa, count * 8, hypercall::MAX_CLOSE_BATCH * 8)?;
        let list: Vec<u64> = bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0xff; 8]))).collect();
        for &h in &list {
            self.net.forget(h);
        }
        let mut handles = self.lock_handles();
        for h in list {
            let _ = handles.remove(h);
        }
        Ok(())
    }

    fn read_bytes(&self, gpa: u64, len: u64, max: u64) -> Result<Vec<u8>, i32> {
        if len > max {
            return Err(libc::ENAMETOOLONG);
        }
        let mut v = vec![0u8; len as usize];
        self.mem.read(gpa, &mut v).map_err(|_| libc::EFAULT)?;
        Ok(v)
    }

    /// Reads a path: absolute, no NUL, at most MAX_PATH bytes.
    fn read_path(&self, gpa: u64, len: u64) -> Result<std::ffi::CString, i32> {
        let v = self.read_bytes(gpa, len, hypercall::MAX_PATH)?;
        if v.first() != Some(&b'/') {
            return Err(libc::EINVAL);
        }
        std::ffi::CString::new(v).map_err(|_| libc::EINVAL)
    }

    fn console_write(&self, gpa: u64, len: u64) -> HcResult {
        let msg = self.read_bytes(gpa, len.min(hypercall::MAX_CONSOLE), hypercall::MAX_CONSOLE)?;
        let mut c = self.console.lock().unwrap_or_else(|e| e.into_inner());
        if c.window.elapsed() >= Duration::from_secs(1) {
            if c.dropped > 0 {
                eprintln!("[sentry] ({} log lines dropped)", c.dropped);
            }
            *c = ConsoleLimit { window: Instant::now(), lines: 0, dropped: 0 };
        }
        if self.console_rate.is_some_and(|r| c.lines >= r) {
            c.dropped += 1;
            return Ok(0);
        }
        c.lines += 1;
        let text = String::from_utf8_lossy(&msg);
        eprintln!("[sentry] {}", text.trim_end());
        Ok(len)
    }

    fn report_panic(&self, a: &[u64; 6]) {
        let msg = self.read_bytes(a[0], a[1].min(hypercall::MAX_CONSOLE), hypercall::MAX_CONSOLE).unwrap_or_default();
        eprintln!("rvisor: sentry panic: {}", String::from_utf8_lossy(&msg).trim_end());
        let n = a[3].min(hypercall::MAX_BACKTRACE);
        for k in 0..n {
            let Ok(addr) = self.mem.read_obj::<u64>(a[2].wrapping_add(k * 8)) else { break };
            let link = addr.wrapping_sub(self.image_base);
            match self.symbols.lookup(link) {
                Some((name, off)) => eprintln!("  #{k} {addr:#x} {name}+{off:#x}"),
                None => eprintln!("  #{k} {addr:#x}"),
            }
        }
    }

    fn clock(&self, out: u64) -> HcResult {
        let now = |id| {
            let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: clock_gettime writes one timespec into our local.
            unsafe { libc::clock_gettime(id, &mut ts) };
            (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
        };
        let r = ClockReading { realtime_ns: now(libc::CLOCK_REALTIME), monotonic_ns: now(libc::CLOCK_MONOTONIC) };
        self.mem.write_obj(out, &r).map_err(|_| libc::EFAULT)?;
        Ok(0)
    }

    fn halt(&self, vcpu: usize, timeout_ns: u64) -> HcResult {
        // Socket events that are already there end the halt at once.
        if self.net.drain_for_halt() {
            self.net.awake();
            return Ok(0);
        }
        let (m, cv) = &*self.wake;
        let mut woken = m.lock().unwrap_or_else(|e| e.into_inner());
        // An unbounded halt is capped so a confused guest still gets to run
        // again; the sentry re-halts if it has nothing to do.
        let limit = Duration::from_nanos(timeout_ns.min(10_000_000_000));
        let deadline = Instant::now() + limit;
        let mine = &self.woken[vcpu];
        while !*woken && !mine.load(Ordering::SeqCst) && !self.stopping() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            woken = cv.wait_timeout(woken, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        // A wake-up for this vCPU leaves the shared one for another.
        if !mine.swap(false, Ordering::SeqCst) {
            *woken = false;
        }
        drop(woken);
        self.net.drain_for_halt();
        self.net.awake();
        Ok(0)
    }

    /// Ends vCPU `index`'s halt, or its next one.
    fn wake_vcpu(&self, index: u64) -> HcResult {
        let flag = usize::try_from(index).ok().and_then(|i| self.woken.get(i)).ok_or(libc::EINVAL)?;
        let (m, cv) = &*self.wake;
        let _guard = m.lock().unwrap_or_else(|e| e.into_inner());
        flag.store(true, Ordering::SeqCst);
        cv.notify_all();
        Ok(0)
    }

    fn open(&self, path_gpa: u64, len: u64, flags: u64, mode: u64) -> HcResult {
        let path = self.read_path(path_gpa, len)?;
        let flags = i32::try_from(flags).map_err(|_| libc::EINVAL)?;
        let mut allowed = libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_PATH | libc::O_LARGEFILE;
        let writing = flags & libc::O_ACCMODE != libc::O_RDONLY;
        let may_write = self.may_write(path.as_bytes());
        if may_write {
            allowed |= libc::O_ACCMODE | libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_APPEND;
        } else if writing {
            return Err(libc::EROFS);
        }
        if flags & !allowed != 0 || flags & libc::O_ACCMODE == libc::O_ACCMODE {
            return Err(if may_write { libc::EINVAL } else { libc::EROFS });
        }
        let mode = (mode & 0o7777) as libc::c_uint;
        if let Some(files) = &self.files {
            let fd = files.open(path.as_bytes(), flags, mode)?;
            return self.lock_handles().insert(fd);
        }
        // SAFETY: `path` is a valid NUL-terminated string; open returns a new fd or -1.
        let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOCTTY, mode) };
        let fd = owned(fd)?;
        self.lock_handles().insert(fd)
    }

    /// Builds host iovecs for a guest IoVec array, all checked.
    fn iovecs(&self, iov_gpa: u64, count: u64) -> Result<Vec<libc::iovec>, i32> {
        if count > hypercall::MAX_IOVECS {
            return Err(libc::EINVAL);
        }
        let mut out = Vec::with_capacity(count as usize);
        let mut total = 0u64;
        for k in 0..count {
            let v: IoVec = self.mem.read_obj(iov_gpa.wrapping_add(k * 16)).map_err(|_| libc::EFAULT)?;
            total = total.checked_add(v.len).ok_or(libc::EINVAL)?;
            if total > hypercall::MAX_IO_BYTES {
                return Err(libc::EINVAL);
            }
            let p = self.mem.host_ptr(v.gpa, v.len).map_err(|_| libc::EFAULT)?;
            out.push(libc::iovec { iov_base: p.cast(), iov_len: v.len as usize });
        }
        Ok(out)
    }

    fn rw(&self, h: u64, iov_gpa: u64, count: u64, off: u64, write: bool) -> HcResult {
        let fd = self.fd(h)?;
        let iov = self.iovecs(iov_gpa, count)?;
        let n = iov.len() as libc::c_int;
        // SAFETY: every iovec points inside guest memory (checked by
        // `iovecs`); the host kernel reads or writes only those ranges. The
        // fd is kept open by our Arc for the duration of the call.
        let r = unsafe {
            match (write, off) {
                (false, u64::MAX) => libc::readv(fd.as_raw_fd(), iov.as_ptr(), n),
                (true, u64::MAX) => libc::writev(fd.as_raw_fd(), iov.as_ptr(), n),
                (false, o) => libc::preadv(fd.as_raw_fd(), iov.as_ptr(), n, to_off(o)?),
                (true, o) => libc::pwritev(fd.as_raw_fd(), iov.as_ptr(), n, to_off(o)?),
            }
        };
        check(r as i64)
    }

    fn put_stat(&self, st: &libc::stat, out: u64) -> HcResult {
        let s = stat_from_host(st);
        self.mem.write_obj(out, &s).map_err(|_| libc::EFAULT)?;
        Ok(0)
    }

    fn fstat(&self, h: u64, out: u64) -> HcResult {
        let fd = self.fd(h)?;
        // SAFETY: all-zero is a valid `stat`.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat fills our local struct; the fd is open.
        check(i64::from(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) }))?;
        self.put_stat(&st, out)
    }

    fn fstatat(&self, dirh: u64, path_gpa: u64, len: u64, flags: u64, out: u64) -> HcResult {
        let allowed = (libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH | libc::AT_NO_AUTOMOUNT) as u64;
        if flags & !allowed != 0 {
            return Err(libc::EINVAL);
        }
        let (dirfd, path, _keep) = if dirh == u64::MAX {
            let path = self.read_path(path_gpa, len)?;
            if let Some(files) = &self.files {
                // Symlinks are the sentry's to follow: the gofer answers lstat.
                let st = files.stat(path.as_bytes())?;
                self.mem.write_obj(out, &st).map_err(|_| libc::EFAULT)?;
                return Ok(0);
            }
            (libc::AT_FDCWD, path, None)
        } else {
            let fd = self.fd(dirh)?;
            let v = self.read_bytes(path_gpa, len, hypercall::MAX_PATH)?;
            // Relative lookups from a handle are only for AT_EMPTY_PATH.
            if !v.is_empty() {
                return Err(libc::EINVAL);
            }
            (fd.as_raw_fd(), std::ffi::CString::default(), Some(fd))
        };
        // SAFETY: all-zero is a valid `stat`.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid dirfd (kept open by `_keep`) or AT_FDCWD with an
        // absolute path, a NUL-terminated path and a local output struct.
        check(i64::from(unsafe { libc::fstatat(dirfd, path.as_ptr(), &mut st, flags as i32) }))?;
        self.put_stat(&st, out)
    }

    fn getdents(&self, h: u64, buf: u64, len: u64) -> HcResult {
        let fd = self.fd(h)?;
        let len = len.min(1 << 20);
        let p = self.mem.host_ptr(buf, len).map_err(|_| libc::EFAULT)?;
        // SAFETY: the buffer lies inside guest memory (checked); getdents64
        // writes at most `len` bytes there.
        check(unsafe { libc::syscall(libc::SYS_getdents64, fd.as_raw_fd(), p, len as usize) })
    }

    fn readlink(&self, path_gpa: u64, len: u64, buf: u64, buf_len: u64) -> HcResult {
        let path = self.read_path(path_gpa, len)?;
        let buf_len = buf_len.min(hypercall::MAX_PATH);
        if let Some(files) = &self.files {
            let target = files.readlink(path.as_bytes())?;
            let n = target.len().min(buf_len as usize);
            self.mem.write(buf, &target[..n]).map_err(|_| libc::EFAULT)?;
            return Ok(n as u64);
        }
        let p = self.mem.host_ptr(buf, buf_len).map_err(|_| libc::EFAULT)?;
        // SAFETY: NUL-terminated path; output inside guest memory (checked).
        check(unsafe { libc::readlink(path.as_ptr(), p.cast(), buf_len as usize) } as i64)
    }

    fn lseek(&self, h: u64, off: u64, whence: u64) -> HcResult {
        let fd = self.fd(h)?;
        if whence > 4 {
            return Err(libc::EINVAL);
        }
        // SAFETY: lseek on an open fd with plain integer arguments.
        check(unsafe { libc::lseek(fd.as_raw_fd(), off as i64, whence as i32) })
    }

    fn ioctl(&self, h: u64, req: u64, arg: u64) -> HcResult {
        const TCGETS: u64 = 0x5401;
        const TCSETS: u64 = 0x5402;
        const TCSETSW: u64 = 0x5403;
        const TCSETSF: u64 = 0x5404;
        const TIOCGPGRP: u64 = 0x540f;
        const TIOCGWINSZ: u64 = 0x5413;
        const TIOCSWINSZ: u64 = 0x5414;
        let size = match req {
            TCGETS | TCSETS | TCSETSW | TCSETSF => 36,
            TIOCGWINSZ | TIOCSWINSZ => 8,
            TIOCGPGRP => 4,
            _ => return Err(libc::ENOTTY),
        };
        let fd = self.fd(h)?;
        let mut buf = [0u8; 36];
        let buf = &mut buf[..size];
        self.mem.read(arg, buf).map_err(|_| libc::EFAULT)?;
        // SAFETY: an allowlisted terminal ioctl whose argument is a buffer
        // of exactly the size the request uses, owned by us.
        check(i64::from(unsafe { libc::ioctl(fd.as_raw_fd(), req as libc::c_ulong, buf.as_mut_ptr()) }))?;
        self.mem.write(arg, buf).map_err(|_| libc::EFAULT)?;
        Ok(0)
    }

    fn access(&self, path_gpa: u64, len: u64, mode: u64) -> HcResult {
        let path = self.read_path(path_gpa, len)?;
        if mode & !7 != 0 {
            return Err(libc::EINVAL);
        }
        if let Some(files) = &self.files {
            // Existence only: the sentry checks permissions itself.
            return files.stat(path.as_bytes()).map(|_| 0);
        }
        // SAFETY: NUL-terminated path, integer mode.
        check(i64::from(unsafe { libc::access(path.as_ptr(), mode as i32) }))
    }

    fn statfs(&self, path_gpa: u64, len: u64, out: u64) -> HcResult {
        let path = self.read_path(path_gpa, len)?;
        let [f_type, bsize, blocks, bfree, bavail, files, ffree, namelen, frsize] = match &self.files {
            Some(g) => g.statfs(path.as_bytes())?,
            None => {
                // SAFETY: all-zero is a valid `statfs`.
                let mut st: libc::statfs = unsafe { std::mem::zeroed() };
                // SAFETY: NUL-terminated path and a local output struct.
                check(i64::from(unsafe { libc::statfs(path.as_ptr(), &mut st) }))?;
                [st.f_type as i64, st.f_bsize as i64, st.f_blocks as i64, st.f_bfree as i64, st.f_bavail as i64, st.f_files as i64, st.f_ffree as i64, st.f_namelen as i64, st.f_frsize as i64]
            }
        };
        let fsid: [i32; 2] = [0, 0];
        let vals: [i64; 7] = [f_type, bsize, blocks, bfree, bavail, files, ffree];
        let mut b = [0u8; 120];
        for (i, v) in vals.iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        // The host's fsid would identify host devices: the sandbox gets 0.
        b[56..60].copy_from_slice(&fsid[0].to_le_bytes());
        b[60..64].copy_from_slice(&fsid[1].to_le_bytes());
        b[64..72].copy_from_slice(&namelen.to_le_bytes());
        b[72..80].copy_from_slice(&frsize.to_le_bytes());
        self.mem.write(out, &b).map_err(|_| libc::EFAULT)?;
        Ok(0)
    }

    /// The stats along a path, for the sentry's revalidating walks: one
    /// gofer walk instead of one per component. Only with a gofer (the
    /// sentry falls back to one lookup per component on ENOSYS).
    fn walk_stat(&self, path_gpa: u64, len: u64, out: u64, max: u64) -> HcResult {
        let path = self.read_path(path_gpa, len)?;
        let files = self.files.as_ref().ok_or(libc::ENOSYS)?;
        if max == 0 || max > hypercall::MAX_WALK_STATS as u64 {
            return Err(libc::EINVAL);
        }
        let (stats, stop) = files.walk_stat(path.as_bytes())?;
        // The array must hold a stat per component.
        if stats.len() as u64 > max {
            return Err(libc::EINVAL);
        }
        let size = std::mem::size_of::<Stat>() as u64;
        for (i, st) in stats.iter().enumerate() {
            self.mem.write_obj(out.wrapping_add(i as u64 * size), st).map_err(|_| libc::EFAULT)?;
        }
        Ok(stats.len() as u64 | (u64::from(stop.unsigned_abs()) << 16))
    }

    /// Host xattrs, only through the gofer (which serves `user.*` on
    /// files and directories): without one the sandbox's host files have
    /// none to show (EOPNOTSUPP, as a filesystem without xattrs). Changes
    /// need the same right as any other change of `path`.
    fn xattr(&self, a: &[u64; 6]) -> HcResult {
        use hypercall::XattrOp;
        const NAME_MAX: usize = 255;
        const SIZE_MAX: u64 = 65536;
        let op = XattrOp::from_u64(a[0]).ok_or(libc::EINVAL)?;
        let req = self.read_bytes(a[1], a[2], hypercall::MAX_PATH + 1 + NAME_MAX as u64)?;
        let (path, name) = match req.iter().position(|&b| b == 0) {
            Some(i) => (&req[..i], &req[i + 1..]),
            None => (&req[..], &[][..]),
        };
        if path.first() != Some(&b'/') || path.len() as u64 > hypercall::MAX_PATH || name.contains(&0) {
            return Err(libc::EINVAL);
        }
        match op {
            XattrOp::List if !name.is_empty() => return Err(libc::EINVAL),
            XattrOp::List => {}
            _ if name.is_empty() || name.len() > NAME_MAX => return Err(libc::ERANGE),
            _ => {}
        }
        let (buf, buf_len, flags) = (a[3], a[4], a[5]);
        let flags_ok = match op {
            XattrOp::Set => [0, libc::XATTR_CREATE, libc::XATTR_REPLACE].map(|f| f as u64).contains(&flags),
            _ => flags == 0,
        };
        if !flags_ok {
            return Err(libc::EINVAL);
        }
        let files = self.files.as_ref().ok_or(libc::EOPNOTSUPP)?;
        if matches!(op, XattrOp::Set | XattrOp::Remove) && !self.may_change_attrs(path) {
            return Err(libc::EROFS);
        }
        let out = |data: &[u8]| -> HcResult {
            if data.len() as u64 > buf_len {
                return Err(libc::ERANGE);
            }
            self.mem.write(buf, data).map_err(|_| libc::EFAULT)?;
            Ok(data.len() as u64)
        };
        match op {
            XattrOp::Get => out(&files.get_xattr(path, name)?),
            XattrOp::List => {
                let mut list = Vec::new();
                for n in files.list_xattr(path)? {
                    list.extend_from_slice(&n);
                    list.push(0);
                }
                out(&list)
            }
            XattrOp::Set => {
                if buf_len > SIZE_MAX {
                    return Err(libc::E2BIG);
                }
                let value = self.read_bytes(buf, buf_len, SIZE_MAX)?;
                files.change_xattr(path, name, Some(&value), flags as u32).map(|()| 0)
            }
            XattrOp::Remove => files.change_xattr(path, name, None, 0).map(|()| 0),
        }
    }

    fn ready(&self, ret: u64, msg_gpa: u64, msg_len: u64) -> HcResult {
        if ret == 0 {
            self.control.set_ready(Ok(()));
        } else {
            let msg = self.read_bytes(msg_gpa, msg_len.min(4096), 4096)?;
            self.control.set_ready(Err(String::from_utf8_lossy(&msg).into_owned()));
        }
        Ok(0)
    }

    fn path_op(&self, a: &[u64; 6]) -> HcResult {
        use hypercall::PathOp;
        if !self.allow_writes && self.writable.is_empty() {
            return Err(libc::EROFS);
        }
        let op = PathOp::from_u64(a[0]).ok_or(libc::EINVAL)?;
        let path = self.read_path(a[1], a[2])?;
        let second = || self.read_path(a[3], a[4]);
        let arg = a[5];
        let attrs_only = matches!(op, PathOp::Chmod | PathOp::Chown | PathOp::Utimens | PathOp::Truncate);
        let allowed = if attrs_only { self.may_change_attrs(path.as_bytes()) } else { self.may_write(path.as_bytes()) };
        if !allowed || (matches!(op, PathOp::Rename | PathOp::Link) && !self.may_write(second()?.as_bytes())) {
            return Err(libc::EROFS);
        }
        match op {
            PathOp::Unlink if arg & !(libc::AT_REMOVEDIR as u64) != 0 => return Err(libc::EINVAL),
            PathOp::Rename if arg & !3 != 0 => return Err(libc::EINVAL),
            _ => {}
        }
        // utimensat's (atime, mtime), as (seconds, nanoseconds) pairs.
        let times = if op == PathOp::Utimens {
            let mut ts = [0u8; 32];
            self.mem.read(arg, &mut ts).map_err(|_| libc::EFAULT)?;
            let get = |i: usize| i64::from_le_bytes(ts[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
            [(get(0), get(1)), (get(2), get(3))]
        } else {
            [(0, 0); 2]
        };
        // `may_write` held, so a gofer serves the sandbox.
        let files = self.files.as_ref().ok_or(libc::EROFS)?;
        self.gofer_path_op(files, op, &path, a, times).map(|()| 0)
    }

    /// `path_op` through the gofer; `path_op` has checked the flags and
    /// read the times.
    fn gofer_path_op(&self, files: &crate::files::GoferFiles, op: hypercall::PathOp, path: &std::ffi::CStr, a: &[u64; 6], times: [(i64, i64); 2]) -> Result<(), i32> {
        use hypercall::PathOp;
        let arg = a[5];
        let second = match op {
            PathOp::Rename | PathOp::Link => self.read_path(a[3], a[4])?.into_bytes(),
            PathOp::Symlink => self.read_bytes(a[3], a[4], hypercall::MAX_PATH)?,
            _ => Vec::new(),
        };
        match op {
            PathOp::Symlink if second.is_empty() || second.contains(&0) => return Err(libc::EINVAL),
            PathOp::Truncate => {
                to_off(arg)?;
            }
            _ => {}
        }
        let times = (op == PathOp::Utimens).then(|| times.map(|(sec, nsec)| gofer::protocol::Timespec { sec, nsec }));
        files.path_op(op, path.to_bytes(), &second, arg, times)
    }

    fn handle_op(&self, op: u64, h: u64, arg: u64, arg2: u64) -> HcResult {
        use hypercall::HandleOp;
        let op = HandleOp::from_u64(op).ok_or(libc::EINVAL)?;
        if !self.allow_writes && op != HandleOp::Sync {
            return Err(libc::EROFS);
        }
        let fd = self.fd(h)?;
        let raw = fd.as_raw_fd();
        let r = match op {
            // SAFETY: an open fd kept alive by `fd`, integer arguments.
            HandleOp::Truncate => unsafe { libc::ftruncate(raw, to_off(arg)?) },
            // SAFETY: as above.
            HandleOp::Sync if arg == 0 => unsafe { libc::fsync(raw) },
            // SAFETY: as above.
            HandleOp::Sync => unsafe { libc::fdatasync(raw) },
            // SAFETY: as above.
            HandleOp::Allocate => unsafe { libc::fallocate(raw, 0, to_off(arg)?, to_off(arg2)?) },
        };
        check(i64::from(r))
    }

    fn poll(&self, h: u64, events: u64, timeout_ns: u64) -> HcResult {
        let fd = self.fd(h)?;
        let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: (events & 0xffff) as i16, revents: 0 };
        let ms = if timeout_ns == u64::MAX { -1 } else { (timeout_ns / 1_000_000).min(i32::MAX as u64) as i32 };
        // SAFETY: one pollfd on our stack.
        check(i64::from(unsafe { libc::poll(&mut p, 1, ms) }))?;
        Ok(p.revents as u16 as u64)
    }
}

fn to_off(o: u64) -> Result<i64, i32> {
    i64::try_from(o).map_err(|_| libc::EINVAL)
}

fn check(r: i64) -> HcResult {
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
    } else {
        Ok(r as u64)
    }
}

fn owned(fd: i32) -> Result<OwnedFd, i32> {
    use std::os::fd::FromRawFd;
    if fd < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO));
    }
    // SAFETY: `fd` was just returned by the kernel and belongs to nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Converts the host's `struct stat` to the ABI's (same layout on x86-64,
/// copied field by field so no host padding leaks into the guest).
pub fn stat_from_host(st: &libc::stat) -> Stat {
    Stat {
        st_dev: st.st_dev,
        st_ino: st.st_ino,
        st_nlink: st.st_nlink,
        st_mode: st.st_mode,
        st_uid: st.st_uid,
        st_gid: st.st_gid,
        pad0: 0,
        st_rdev: st.st_rdev,
        st_size: st.st_size,
        st_blksize: st.st_blksize,
        st_blocks: st.st_blocks,
        st_atime: st.st_atime,
        st_atime_nsec: st.st_atime_nsec,
        st_mtime: st.st_mtime,
        st_mtime_nsec: st.st_mtime_nsec,
        st_ctime: st.st_ctime,
        st_ctime_nsec: st.st_ctime_nsec,
        unused: [0; 3],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 0x1000;

    fn service() -> Service {
        let mem = Arc::new(GuestMemory::new(16 << 20).unwrap());
        Service::new(mem, HandleTable::default(), Symbols::default(), 0)
    }

    fn call(s: &Service, nr: u64, args: [u64; 6]) -> i64 {
        s.mem.write_obj(MB, &Mailbox { nr, args, ret: hypercall::RET_PENDING }).unwrap();
        assert_eq!(s.handle(MB), Control::Resume);
        s.mem.read_obj::<Mailbox>(MB).unwrap().ret
    }

    /// Socket requests are hostile input like any other: unknown ops,
    /// handles that are not sockets, addresses outside guest memory,
    /// oversized lengths and forbidden families get errors, and a real
    /// loopback exchange works with the readiness table kept current.
    #[test]
    fn net_requests_are_checked() {
        use abi::net::{Msg, NetOp, SockAddr, READY_GPA};
        let s = service();
        let net = |op: NetOp, h: u64, a: [u64; 4]| call(&s, Nr::Net as u64, [op as u64, h, a[0], a[1], a[2], a[3]]);
        let e = |x: i32| -i64::from(x);
        assert_eq!(call(&s, Nr::Net as u64, [99, 0, 0, 0, 0, 0]), e(libc::EINVAL));
        assert_eq!(net(NetOp::Bind, 5, [0x2000, 0, 0, 0]), e(libc::ENOTSOCK));
        assert_eq!(net(NetOp::Socket, 0, [libc::AF_PACKET as u64, 3, 0, 0]), e(libc::EAFNOSUPPORT));
        assert_eq!(net(NetOp::Socket, 0, [libc::AF_INET as u64, 1, 132, 0]), e(libc::EPROTONOSUPPORT));
        assert_eq!(net(NetOp::Socket, 0, [libc::AF_INET as u64, libc::SOCK_RAW as u64, libc::IPPROTO_ICMP as u64, 0]), e(libc::EPERM));
        assert_eq!(net(NetOp::Socket, 0, [u64::MAX, 1, 0, 0]), e(libc::EAFNOSUPPORT));
        assert_eq!(net(NetOp::ProcRead, 0, [999, 0x3000, 100, 0]), e(libc::EINVAL));
        let srv = net(NetOp::Socket, 0, [libc::AF_INET as u64, libc::SOCK_STREAM as u64, 0, 0]);
        assert!(srv >= 0, "{srv}");
        let srv = srv as u64;
        // A sockaddr outside guest memory, a length past 128, the wrong family.
        assert_eq!(net(NetOp::Bind, srv, [u64::MAX - 8, 0, 0, 0]), e(libc::EFAULT));
        let mut sa = SockAddr { len: 200, ..SockAddr::default() };
        s.mem.write_obj(0x2000, &sa).unwrap();
        assert_eq!(net(NetOp::Bind, srv, [0x2000, 0, 0, 0]), e(libc::EINVAL));
        sa.len = 28;
        sa.data[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        s.mem.write_obj(0x2000, &sa).unwrap();
        assert_eq!(net(NetOp::Bind, srv, [0x2000, 0, 0, 0]), e(libc::EAFNOSUPPORT));
        // Forbidden options.
        assert_eq!(net(NetOp::SetOpt, srv, [libc::SOL_SOCKET as u64, libc::SO_ATTACH_FILTER as u64, 0x3000, 16]), e(libc::ENOPROTOOPT));
        assert_eq!(net(NetOp::SetOpt, srv, [libc::IPPROTO_TCP as u64, libc::TCP_ULP as u64, 0x3000, 4]), e(libc::ENOPROTOOPT));
        s.mem.write(0x3000, b"no-such-cc\0").unwrap();
        assert_eq!(net(NetOp::SetOpt, srv, [libc::IPPROTO_TCP as u64, libc::TCP_CONGESTION as u64, 0x3000, 11]), e(libc::ENOENT));
        assert_eq!(net(NetOp::Ioctl, srv, [0x8914, 0x3000, 0, 0]), e(libc::ENOTTY)); // SIOCSIFFLAGS
        // A loopback exchange: bind, listen, connect, accept, send, recv.
        sa = SockAddr { len: 16, ..SockAddr::default() };
        sa.data[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        sa.data[4..8].copy_from_slice(&[127, 0, 0, 1]);
        s.mem.write_obj(0x2000, &sa).unwrap();
        assert_eq!(net(NetOp::Bind, srv, [0x2000, 0, 0, 0]), 0);
        assert_eq!(net(NetOp::Listen, srv, [4, 0, 0, 0]), 0);
        assert_eq!(net(NetOp::Name, srv, [0, 0x2000, 0, 0]), 0);
        let cli = net(NetOp::Socket, 0, [libc::AF_INET as u64, libc::SOCK_STREAM as u64, 0, 0]) as u64;
        let r = net(NetOp::Connect, cli, [0x2000, 0, 0, 0]);
        assert!(r == 0 || r == e(libc::EINPROGRESS), "{r}");
        let ready = |h: u64| s.mem.read_obj::<u16>(READY_GPA + 2 * h).unwrap();
        for _ in 0..100 {
            if ready(srv) & libc::POLLIN as u16 != 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            net(NetOp::Drain, 0, [0; 4]);
        }
        assert_ne!(ready(srv) & libc::POLLIN as u16, 0, "the listener shows a pending connection");
        let acc = net(NetOp::Accept, srv, [0x2400, 0, 0, 0]);
        assert!(acc >= 0, "{acc}");
        let acc = acc as u64;
        s.mem.write(0x5000, b"hello").unwrap();
        s.mem.write_obj(0x4000, &IoVec { gpa: 0x5000, len: 5 }).unwrap();
        s.mem.write_obj(0x4100, &Msg { iov_gpa: 0x4000, iov_count: 1, ..Msg::default() }).unwrap();
        assert_eq!(net(NetOp::Send, cli, [0x4100, 0, 0, 0]), 5);
        // Loopback delivery is seen when the send returns.
        assert_ne!(ready(acc) & libc::POLLIN as u16, 0);
        s.mem.write_obj(0x4000, &IoVec { gpa: 0x6000, len: 64 }).unwrap();
        s.mem.write_obj(0x4100, &Msg { iov_gpa: 0x4000, iov_count: 1, ..Msg::default() }).unwrap();
        assert_eq!(net(NetOp::Recv, acc, [0x4100, 0, 0, 0]), 5);
        let mut got = [0u8; 5];
        s.mem.read(0x6000, &mut got).unwrap();
        assert_eq!(&got, b"hello");
        assert_eq!(ready(acc) & libc::POLLIN as u16, 0, "drained");
        // An iovec outside guest memory, control data that carries fds.
        s.mem.write_obj(0x4000, &IoVec { gpa: u64::MAX - 100, len: 64 }).unwrap();
        assert_eq!(net(NetOp::Send, cli, [0x4100, 0, 0, 0]), e(libc::EFAULT));
        s.mem.write_obj(0x4000, &IoVec { gpa: 0x5000, len: 5 }).unwrap();
        let mut cm = Vec::new();
        cm.extend_from_slice(&20u64.to_ne_bytes());
        cm.extend_from_slice(&libc::SOL_SOCKET.to_ne_bytes());
        cm.extend_from_slice(&libc::SCM_RIGHTS.to_ne_bytes());
        cm.extend_from_slice(&0i32.to_ne_bytes());
        s.mem.write(0x7000, &cm).unwrap();
        s.mem.write_obj(0x4100, &Msg { iov_gpa: 0x4000, iov_count: 1, control_gpa: 0x7000, control_len: 24, ..Msg::default() }).unwrap();
        assert_eq!(net(NetOp::Send, cli, [0x4100, 0, 0, 0]), e(libc::EINVAL));
        // Closing forgets the socket: its handle is no socket any more.
        assert_eq!(call(&s, Nr::HostClose as u64, [cli, 0, 0, 0, 0, 0]), 0);
        assert_eq!(net(NetOp::Shutdown, cli, [1, 0, 0, 0]), e(libc::ENOTSOCK));
    }

    /// Deferred closes ride on the next open (or a batch close): every
    /// listed handle is closed, bad entries are skipped, an oversized or
    /// unreadable list is refused before anything happens.
    #[test]
    fn closes_ride_on_open() {
        let s = service();
        s.mem.write(0x2000, b"/etc/passwd").unwrap();
        let open = |closes: u64, n: u64| call(&s, Nr::HostOpen as u64, [0x2000, 11, 0, 0, closes, n]);
        let (a, b) = (open(0, 0), open(0, 0));
        assert!(a >= 0 && b >= 0);
        let read = |h: i64| {
            s.mem.write_obj(0x3000, &IoVec { gpa: 0x4000, len: 4 }).unwrap();
            call(&s, Nr::HostRead as u64, [h as u64, 0x3000, 1, 0, 0, 0])
        };
        // Too many, or a list outside guest memory: nothing closed.
        assert_eq!(open(0x5000, hypercall::MAX_CLOSE_BATCH + 1), -i64::from(libc::EINVAL));
        assert_eq!(open(u64::MAX - 8, 2), -i64::from(libc::EFAULT));
        assert_eq!(read(a), 4);
        // `a` and two bad handles go with the next open.
        for (i, h) in [a as u64, 12345, u64::MAX].into_iter().enumerate() {
            s.mem.write_obj(0x5000 + 8 * i as u64, &h).unwrap();
        }
        let c = open(0x5000, 3);
        assert!(c >= 0);
        // The closes came first: `a`'s slot may be the new handle.
        if c != a {
            assert_eq!(read(a), -i64::from(libc::EBADF));
        }
        assert_eq!(read(b), 4);
        assert_eq!(read(c), 4);
        // A close with only a list.
        s.mem.write_obj(0x5000, &(b as u64)).unwrap();
        s.mem.write_obj(0x5008, &(c as u64)).unwrap();
        assert_eq!(call(&s, Nr::HostClose as u64, [u64::MAX, 0x5000, 2, 0, 0, 0]), 0);
        assert_eq!(read(b), -i64::from(libc::EBADF));
        assert_eq!(read(c), -i64::from(libc::EBADF));
    }

    #[test]
    fn unknown_numbers_and_bad_handles() {
        let s = service();
        assert_eq!(call(&s, 9999, [0; 6]), -i64::from(libc::ENOSYS));
        assert_eq!(call(&s, Nr::HostClose as u64, [77, 0, 0, 0, 0, 0]), -i64::from(libc::EBADF));
        assert_eq!(call(&s, Nr::HostFstat as u64, [u64::MAX, 0x2000, 0, 0, 0, 0]), -i64::from(libc::EBADF));
    }

    #[test]
    fn guest_addresses_are_checked() {
        let s = service();
        // Path outside guest memory.
        assert_eq!(call(&s, Nr::HostOpen as u64, [u64::MAX - 4, 10, 0, 0, 0, 0]), -i64::from(libc::EFAULT));
        // Over-long path.
        assert_eq!(call(&s, Nr::HostOpen as u64, [0x2000, 1 << 20, 0, 0, 0, 0]), -i64::from(libc::ENAMETOOLONG));
        // Relative path.
        s.mem.write(0x2000, b"etc/passwd").unwrap();
        assert_eq!(call(&s, Nr::HostOpen as u64, [0x2000, 10, 0, 0, 0, 0]), -i64::from(libc::EINVAL));
        // Write access refused: `do` sandboxes never change host files.
        s.mem.write(0x2000, b"/etc/passwd").unwrap();
        assert_eq!(call(&s, Nr::HostOpen as u64, [0x2000, 11, libc::O_RDWR as u64, 0, 0, 0]), -i64::from(libc::EROFS));
        assert_eq!(call(&s, Nr::HostPathOp as u64, [2, 0x2000, 11, 0, 0, 0]), -i64::from(libc::EROFS));
        assert_eq!(call(&s, Nr::HostHandleOp as u64, [1, 0, 0, 0, 0, 0]), -i64::from(libc::EROFS));
        let h = call(&s, Nr::HostOpen as u64, [0x2000, 11, 0, 0, 0, 0]);
        assert!(h >= 0);
        // An iovec pointing past guest memory.
        s.mem.write_obj(0x3000, &IoVec { gpa: (16 << 20) - 8, len: 64 }).unwrap();
        assert_eq!(call(&s, Nr::HostRead as u64, [h as u64, 0x3000, 1, 0, 0, 0]), -i64::from(libc::EFAULT));
        // Too many iovecs.
        assert_eq!(call(&s, Nr::HostRead as u64, [h as u64, 0x3000, 1 << 20, 0, 0, 0]), -i64::from(libc::EINVAL));
        // A good read.
        s.mem.write_obj(0x3000, &IoVec { gpa: 0x4000, len: 4 }).unwrap();
        assert_eq!(call(&s, Nr::HostRead as u64, [h as u64, 0x3000, 1, 0, 0, 0]), 4);
        assert_eq!(call(&s, Nr::HostClose as u64, [h as u64, 0, 0, 0, 0, 0]), 0);
        assert_eq!(call(&s, Nr::HostClose as u64, [h as u64, 0, 0, 0, 0, 0]), -i64::from(libc::EBADF));
    }

    #[test]
    fn writes_only_where_allowed() {
        let dir = std::env::temp_dir().join(format!("rvisor-hc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Without a gofer the VMM changes nothing by path, whatever it was told.
        let s = service().allow_writes();
        let host_path = format!("{}/d", dir.display());
        s.mem.write(0x2000, host_path.as_bytes()).unwrap();
        let len = host_path.len() as u64;
        assert_eq!(call(&s, Nr::HostPathOp as u64, [1, 0x2000, len, 0, 0, u64::from(libc::S_IFDIR | 0o755)]), -i64::from(libc::EROFS));
        assert_eq!(call(&s, Nr::HostOpen as u64, [0x2000, len, (libc::O_RDWR | libc::O_CREAT) as u64, 0o644, 0, 0]), -i64::from(libc::EROFS));
        assert!(!dir.join("d").exists());

        // Through a gofer serving `dir`, paths are the gofer's.
        let (vmm_end, gofer_end) = gofer::seqpacket_pair().unwrap();
        let root = std::os::fd::OwnedFd::from(std::fs::File::open(&dir).unwrap());
        let server = std::thread::spawn(move || gofer::serve(gofer_end, root, &gofer::Config::default()));
        let s = service().allow_writes().with_gofer(crate::files::GoferFiles::connect(vmm_end, None).unwrap());
        s.mem.write(0x2000, b"/d").unwrap();
        // mkdir, then unknown sub-operations and flags are refused.
        assert_eq!(call(&s, Nr::HostPathOp as u64, [1, 0x2000, 2, 0, 0, u64::from(libc::S_IFDIR | 0o755)]), 0);
        assert!(dir.join("d").is_dir());
        assert_eq!(call(&s, Nr::HostPathOp as u64, [99, 0x2000, 2, 0, 0, 0]), -i64::from(libc::EINVAL));
        assert_eq!(call(&s, Nr::HostPathOp as u64, [2, 0x2000, 2, 0, 0, 0x8000]), -i64::from(libc::EINVAL));
        // Device nodes are never made.
        assert_eq!(call(&s, Nr::HostPathOp as u64, [1, 0x2000, 2, 0, 0, u64::from(libc::S_IFCHR)]), -i64::from(libc::EPERM));
        // rmdir.
        assert_eq!(call(&s, Nr::HostPathOp as u64, [2, 0x2000, 2, 0, 0, libc::AT_REMOVEDIR as u64]), 0);
        assert!(!dir.join("d").exists());
        // Relative paths are refused here too.
        s.mem.write(0x2000, b"relative").unwrap();
        assert_eq!(call(&s, Nr::HostPathOp as u64, [2, 0x2000, 8, 0, 0, 0]), -i64::from(libc::EINVAL));
        drop(s);
        server.join().unwrap().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// HostWalkStat: the stats along a path in one gofer walk, where it
    /// stopped and why; bad arrays and paths are refused.
    #[test]
    fn walk_stat_reports_each_component() {
        let dir = std::env::temp_dir().join(format!("rvisor-hc-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("a/b/f"), b"12345").unwrap();
        std::os::unix::fs::symlink("/", dir.join("a/l")).unwrap();
        let e = |x: i32| -i64::from(x);
        let w = |s: &Service, path: &[u8], max: u64| {
            s.mem.write(0x2000, path).unwrap();
            call(s, Nr::HostWalkStat as u64, [0x2000, path.len() as u64, 0x4000, max, 0, 0])
        };
        assert_eq!(w(&service(), b"/a/b", 4), e(libc::ENOSYS), "no gofer: the sentry walks one lookup at a time");
        let (vmm_end, gofer_end) = gofer::seqpacket_pair().unwrap();
        let root = std::os::fd::OwnedFd::from(std::fs::File::open(&dir).unwrap());
        let server = std::thread::spawn(move || gofer::serve(gofer_end, root, &gofer::Config::default()));
        let s = service().with_gofer(crate::files::GoferFiles::connect(vmm_end, None).unwrap());
        let stat = |i: u64| s.mem.read_obj::<Stat>(0x4000 + i * std::mem::size_of::<Stat>() as u64).unwrap();
        assert_eq!(w(&s, b"/a/b/f", 3), 3);
        assert_eq!((stat(0).st_mode & libc::S_IFMT, stat(1).st_mode & libc::S_IFMT), (libc::S_IFDIR, libc::S_IFDIR));
        assert_eq!((stat(2).st_mode & libc::S_IFMT, stat(2).st_size), (libc::S_IFREG, 5));
        // Stopped at the third component, by ENOENT; through a file, ENOTDIR;
        // a symlink is a component, never followed.
        assert_eq!(w(&s, b"/a/b/nope/x", 4), 2 | i64::from(libc::ENOENT) << 16);
        assert_eq!(w(&s, b"/a/b/f/x", 4), 3 | i64::from(libc::ENOTDIR) << 16);
        assert_eq!(w(&s, b"/a/l", 4), 2);
        assert_eq!(stat(1).st_mode & libc::S_IFMT, libc::S_IFLNK);
        assert_eq!(w(&s, b"/a/l/etc", 4) & 0xffff, 2);
        assert_eq!(w(&s, b"/nope/a", 4), e(libc::ENOENT));
        // Arrays too small, empty or too large; bad paths and addresses.
        assert_eq!(w(&s, b"/a/b/f", 2), e(libc::EINVAL));
        assert_eq!(w(&s, b"/a", 0), e(libc::EINVAL));
        assert_eq!(w(&s, b"/a", 1 << 20), e(libc::EINVAL));
        assert_eq!(w(&s, b"/", 4), e(libc::EINVAL));
        assert_eq!(w(&s, b"a/b", 4), e(libc::EINVAL));
        assert_eq!(w(&s, b"/a/../a", 4), e(libc::EINVAL));
        assert_eq!(call(&s, Nr::HostWalkStat as u64, [0x2000, 2, u64::MAX - 8, 4, 0, 0]), e(libc::EFAULT));
        drop(s);
        server.join().unwrap().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Xattr requests: every field checked, changes only where writes
    /// are allowed, and a real round trip through a gofer.
    #[test]
    fn xattr_requests_are_checked() {
        use abi::hypercall::XattrOp;
        let dir = std::env::temp_dir().join(format!("rvisor-hc-xattr-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("w")).unwrap();
        std::fs::write(dir.join("w/f"), b"").unwrap();
        std::fs::write(dir.join("ro"), b"").unwrap();
        let e = |x: i32| -i64::from(x);
        let x = |s: &Service, op: u64, req: &[u8], buf: u64, len: u64, flags: u64| {
            s.mem.write(0x2000, req).unwrap();
            call(s, Nr::HostXattr as u64, [op, 0x2000, req.len() as u64, buf, len, flags])
        };
        // No gofer: host files have no xattrs to offer.
        let s = service();
        assert_eq!(x(&s, XattrOp::Get as u64, b"/w/f\0user.a", 0x3000, 64, 0), e(libc::EOPNOTSUPP));

        let (vmm_end, gofer_end) = gofer::seqpacket_pair().unwrap();
        let root = std::os::fd::OwnedFd::from(std::fs::File::open(&dir).unwrap());
        let server = std::thread::spawn(move || gofer::serve(gofer_end, root, &gofer::Config::default()));
        let s = service().writable_trees(&["/w".into()]).with_gofer(crate::files::GoferFiles::connect(vmm_end, None).unwrap());
        let (get, set, list, remove) = (XattrOp::Get as u64, XattrOp::Set as u64, XattrOp::List as u64, XattrOp::Remove as u64);
        s.mem.write(0x4000, b"blue").unwrap();
        let r = x(&s, set, b"/w/f\0user.color", 0x4000, 4, 0);
        if r == e(libc::EOPNOTSUPP) {
            eprintln!("skipping: {} has no user xattrs", dir.display());
        } else {
            assert_eq!(r, 0);
            assert_eq!(x(&s, get, b"/w/f\0user.color", 0x3000, 64, 0), 4);
            let mut v = [0u8; 4];
            s.mem.read(0x3000, &mut v).unwrap();
            assert_eq!(&v, b"blue");
            // Too small a buffer, one outside guest memory.
            assert_eq!(x(&s, get, b"/w/f\0user.color", 0x3000, 3, 0), e(libc::ERANGE));
            assert_eq!(x(&s, get, b"/w/f\0user.color", u64::MAX - 2, 64, 0), e(libc::EFAULT));
            assert_eq!(x(&s, list, b"/w/f", 0x3000, 64, 0), 11);
            let mut l = [0u8; 11];
            s.mem.read(0x3000, &mut l).unwrap();
            assert_eq!(&l, b"user.color\0");
            assert_eq!(x(&s, set, b"/w/f\0user.color", 0x4000, 4, libc::XATTR_CREATE as u64), e(libc::EEXIST));
            assert_eq!(x(&s, remove, b"/w/f\0user.color", 0, 0, 0), 0);
            assert_eq!(x(&s, get, b"/w/f\0user.color", 0x3000, 64, 0), e(libc::ENODATA));
            // The writable tree's own directory may change its attributes.
            assert_eq!(x(&s, set, b"/w\0user.d", 0x4000, 4, 0), 0);
            let (p, n) = (std::ffi::CString::new(dir.join("w").into_os_string().into_encoded_bytes()).unwrap(), c"user.d");
            let mut v = [0u8; 8];
            // SAFETY: NUL-terminated strings and a buffer of the length passed.
            let got = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
            assert_eq!((got, &v[..4]), (4, &b"blue"[..]), "the host directory holds the attribute");
        }
        // Outside the writable trees: reads only.
        assert_eq!(x(&s, set, b"/ro\0user.a", 0x4000, 4, 0), e(libc::EROFS));
        assert_eq!(x(&s, remove, b"/ro\0user.a", 0, 0, 0), e(libc::EROFS));
        assert_eq!(x(&s, set, b"/w/../ro\0user.a", 0x4000, 4, 0), e(libc::EROFS));
        // Malformed requests.
        assert_eq!(x(&s, 0, b"/w/f\0user.a", 0x3000, 64, 0), e(libc::EINVAL));
        assert_eq!(x(&s, 99, b"/w/f\0user.a", 0x3000, 64, 0), e(libc::EINVAL));
        assert_eq!(x(&s, get, b"w/f\0user.a", 0x3000, 64, 0), e(libc::EINVAL));
        assert_eq!(x(&s, get, b"/w/f", 0x3000, 64, 0), e(libc::ERANGE));
        assert_eq!(x(&s, get, b"/w/f\0", 0x3000, 64, 0), e(libc::ERANGE));
        assert_eq!(x(&s, list, b"/w/f\0user.a", 0x3000, 64, 0), e(libc::EINVAL));
        assert_eq!(x(&s, get, b"/w/f\0user.a\0b", 0x3000, 64, 0), e(libc::EINVAL));
        assert_eq!(x(&s, get, b"/w/f\0user.a", 0x3000, 64, 1), e(libc::EINVAL));
        assert_eq!(x(&s, set, b"/w/f\0user.a", 0x4000, 4, 3), e(libc::EINVAL));
        assert_eq!(x(&s, set, b"/w/f\0user.a", 0x4000, 65537, 0), e(libc::E2BIG));
        let long = [b"/w/f\0user.".as_slice(), &[b'n'; 251]].concat();
        assert_eq!(x(&s, get, &long, 0x3000, 64, 0), e(libc::ERANGE));
        assert_eq!(call(&s, Nr::HostXattr as u64, [get, 0x2000, 1 << 20, 0x3000, 64, 0]), e(libc::ENAMETOOLONG));
        assert_eq!(call(&s, Nr::HostXattr as u64, [get, u64::MAX - 2, 10, 0x3000, 64, 0]), e(libc::EFAULT));
        // The gofer's own rules: other namespaces, `..` in a path.
        assert_eq!(x(&s, get, b"/w/f\0trusted.a", 0x3000, 64, 0), e(libc::EOPNOTSUPP));
        assert_eq!(x(&s, get, b"/w/../w/f\0user.a", 0x3000, 64, 0), e(libc::EINVAL));
        drop(s);
        server.join().unwrap().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn clock_is_written() {
        let s = service();
        assert_eq!(call(&s, Nr::Clock as u64, [0x2000, 0, 0, 0, 0, 0]), 0);
        let r: ClockReading = s.mem.read_obj(0x2000).unwrap();
        assert!(r.realtime_ns > 1_600_000_000 * 1_000_000_000);
        assert!(r.monotonic_ns > 0);
        assert_eq!(call(&s, Nr::Clock as u64, [u64::MAX, 0, 0, 0, 0, 0]), -i64::from(libc::EFAULT));
    }

    #[test]
    fn ioctl_allowlist() {
        let s = service();
        assert_eq!(call(&s, Nr::HostIoctl as u64, [0, 0x5412, 0x2000, 0, 0, 0]), -i64::from(libc::ENOTTY));
    }

    #[test]
    fn exit_status() {
        let s = service();
        s.mem.write_obj(MB, &Mailbox { nr: Nr::Exit as u64, args: [0x1ff, 0, 0, 0, 0, 0], ret: hypercall::RET_PENDING }).unwrap();
        assert_eq!(s.handle(MB), Control::Exit(0xff));
    }

    #[test]
    fn answered_requests_are_not_repeated() {
        let s = service();
        s.mem.write(0x2000, b"/etc/passwd").unwrap();
        let h = call(&s, Nr::HostOpen as u64, [0x2000, 11, 0, 0, 0, 0]);
        assert!(h >= 0);
        // A second exit with the same (answered) mailbox does nothing.
        assert_eq!(s.handle(MB), Control::Resume);
        assert_eq!(s.mem.read_obj::<Mailbox>(MB).unwrap().ret, h);
        assert_eq!(call(&s, Nr::HostOpen as u64, [0x2000, 11, 0, 0, 0, 0]), h + 1);
    }
}
