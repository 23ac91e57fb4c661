//! Host sockets for the sandbox (`Nr::Net`, see `abi::net`): the VMM opens
//! inet, inet6 and NETLINK_ROUTE sockets in its network namespace (the
//! container's) and performs the sentry's socket calls on them.
//!
//! Everything from the sentry is hostile input: families, types and
//! protocols are allowlisted (no module-autoloading protocols), socket
//! options too (no BPF filters, no TCP ULPs), socket addresses are bounded
//! and must match the socket's family, netlink requests may only read the
//! namespace's state, and no control messages cross (so no host fd can
//! reach the guest). Host sockets are non-blocking; the readiness table in
//! guest memory tells the sentry when waiting would end.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use abi::net::{Msg, NetOp, SockAddr, CONTROL_MAX, NET_DRAIN, NET_WAKE, PROC_NET, READY_ENTRIES, READY_GPA, SOCKADDR_MAX};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::memory::GuestMemory;

type HcResult = Result<u64, i32>;
/// Puts a new fd into the sandbox's handle table: its handle and the
/// table's reference.
pub(crate) type Insert<'a> = &'a dyn Fn(OwnedFd) -> Result<(u64, Arc<OwnedFd>), i32>;
/// Checks a guest iovec array and returns host iovecs.
pub(crate) type Iovecs<'a> = &'a dyn Fn(u64, u64) -> Result<Vec<libc::iovec>, i32>;

/// A socket the sandbox holds.
struct Sock {
    fd: Arc<OwnedFd>,
    domain: i32,
}

/// What the poller thread shares with the hypercall service.
struct Shared {
    epoll: OwnedFd,
    socks: Mutex<HashMap<u64, Sock>>,
    /// Serializes poll-and-store of readiness entries: whoever stores last
    /// polled last, and any later change raises a new epoll edge.
    ready: Mutex<()>,
    mem: Arc<GuestMemory>,
    wake: Arc<(Mutex<bool>, Condvar)>,
    /// Bumped by every drain: the watcher waits for it after a kick.
    drained: (Mutex<u64>, Condvar),
    /// vCPU 0 sleeps in a halt: the watcher must wake it at once.
    halted: std::sync::atomic::AtomicBool,
}

/// The sandbox's networking state.
pub(crate) struct Net {
    shared: Arc<Shared>,
    poller: OnceLock<()>,
    /// The files of /proc/self/net in `PROC_NET` (None: the host has
    /// none), opened at start: before the VMM pivots away from the host's
    /// /proc, and before its host seccomp filter, which has no openat.
    /// Each is a seq_file, so a read from offset 0 shows it anew.
    proc_files: Vec<Option<Mutex<std::fs::File>>>,
    /// Whether raw inet sockets may be made (the container holds
    /// CAP_NET_RAW).
    raw: bool,
    /// TCP congestion control algorithms the host has loaded: setting
    /// another would make the host kernel load a module.
    congestion: Vec<Vec<u8>>,
}

const AF_INET: i32 = libc::AF_INET;
const AF_INET6: i32 = libc::AF_INET6;
const AF_NETLINK: i32 = libc::AF_NETLINK;

impl Net {
    pub(crate) fn new(mem: Arc<GuestMemory>, wake: Arc<(Mutex<bool>, Condvar)>, raw: bool) -> Result<Net, i32> {
        // SAFETY: epoll_create1 returns a new fd or -1.
        let epoll = owned(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        let p = c"/proc/self/net";
        // SAFETY: a valid C string; open returns a new fd or -1.
        let proc_net = owned(unsafe { libc::open(p.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) }).ok();
        let proc_files = PROC_NET
            .iter()
            .map(|name| {
                let dir = proc_net.as_ref()?;
                let c = std::ffi::CString::new(*name).ok()?;
                // SAFETY: a valid C string relative to our directory fd.
                let fd = owned(unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) }).ok()?;
                Some(Mutex::new(std::fs::File::from(fd)))
            })
            .collect();
        let congestion = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_congestion_control")
            .map(|s| s.split_whitespace().map(|w| w.as_bytes().to_vec()).collect())
            .unwrap_or_default();
        Ok(Net {
            shared: Arc::new(Shared { epoll, socks: Mutex::new(HashMap::new()), ready: Mutex::new(()), mem, wake, drained: (Mutex::new(0), Condvar::new()), halted: std::sync::atomic::AtomicBool::new(false) }),
            poller: OnceLock::new(),
            proc_files,
            raw,
            congestion,
        })
    }

    /// Lets the sandbox make raw inet sockets.
    pub(crate) fn allow_raw(&mut self) {
        self.raw = true;
    }

    /// Forgets a closed handle.
    pub(crate) fn forget(&self, h: u64) {
        if let Some(s) = self.shared.lock().remove(&h) {
            // SAFETY: removing a watched fd from our epoll; failure is harmless.
            unsafe { libc::epoll_ctl(self.shared.epoll.as_raw_fd(), libc::EPOLL_CTL_DEL, s.fd.as_raw_fd(), std::ptr::null_mut()) };
            self.shared.store(h, 0);
        }
    }

    fn sock(&self, h: u64) -> Result<(Arc<OwnedFd>, i32), i32> {
        let m = self.shared.lock();
        let s = m.get(&h).ok_or(libc::ENOTSOCK)?;
        Ok((s.fd.clone(), s.domain))
    }

    fn mem(&self) -> &GuestMemory {
        &self.shared.mem
    }

    /// Takes a new host socket into the handle table, the socket map and
    /// the poller.
    fn adopt(&self, fd: OwnedFd, domain: i32, insert: Insert) -> HcResult {
        let (h, fd) = insert(fd)?;
        self.start_poller();
        let mut ev = libc::epoll_event { events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLPRI | libc::EPOLLET) as u32, u64: h };
        // SAFETY: the fd is open (held by the handle table); `ev` is ours.
        // A failure only means no wake-ups: every operation still refreshes
        // the socket's readiness.
        unsafe { libc::epoll_ctl(self.shared.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd.as_raw_fd(), &mut ev) };
        self.shared.lock().insert(h, Sock { fd: fd.clone(), domain });
        self.shared.refresh(h, &fd);
        Ok(h)
    }

    /// Around a halt: takes waiting host events; whether the table changed
    /// (the sentry then has waiters to wake instead of sleeping).
    pub(crate) fn drain_for_halt(&self) -> bool {
        if self.poller.get().is_none() {
            return false;
        }
        self.shared.halted.store(true, Ordering::SeqCst);
        let any = self.shared.drain();
        if any {
            self.shared.raise(NET_WAKE);
        }
        any
    }

    /// The halt is over.
    pub(crate) fn awake(&self) {
        self.shared.halted.store(false, Ordering::SeqCst);
    }

    fn start_poller(&self) {
        self.poller.get_or_init(|| {
            let shared = self.shared.clone();
            let _ = std::thread::Builder::new().name("rvisor-net".into()).spawn(move || poller(shared));
        });
    }

    /// Serves one `Nr::Net` request. `handles` inserts a new fd into the
    /// sandbox's handle table and returns its handle.
    pub(crate) fn op(&self, a: &[u64; 6], iovecs: Iovecs, insert: Insert) -> HcResult {
        let op = NetOp::from_u64(a[0]).ok_or(libc::EINVAL)?;
        let h = a[1];
        match op {
            NetOp::Socket => self.socket(a[2], a[3], a[4], insert),
            NetOp::ProcRead => self.proc_read(a[2], a[3], a[4], a[5]),
            NetOp::Drain => {
                self.shared.drain();
                Ok(0)
            }
            _ => {
                let (fd, domain) = self.sock(h)?;
                let r = self.sock_op(op, &fd, domain, a, iovecs, insert);
                self.shared.refresh(h, &fd);
                // What this operation did to other sockets (the peer of a
                // loopback connection) is taken now, not when the poller
                // thread and a halted vCPU get to it.
                if self.shared.drain() {
                    self.shared.raise(NET_WAKE);
                }
                r
            }
        }
    }

    fn socket(&self, domain: u64, ty: u64, proto: u64, insert: Insert) -> HcResult {
        let domain = i32::try_from(domain).map_err(|_| libc::EAFNOSUPPORT)?;
        let ty = i32::try_from(ty).map_err(|_| libc::EINVAL)?;
        let proto = i32::try_from(proto).map_err(|_| libc::EPROTONOSUPPORT)?;
        check_socket(domain, ty, proto, self.raw)?;
        // SAFETY: socket returns a new fd or -1.
        let fd = owned(unsafe { libc::socket(domain, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, proto) })?;
        self.adopt(fd, domain, insert)
    }

    fn sock_op(&self, op: NetOp, fd: &Arc<OwnedFd>, domain: i32, a: &[u64; 6], iovecs: Iovecs, insert: Insert) -> HcResult {
        let raw = fd.as_raw_fd();
        match op {
            NetOp::Bind | NetOp::Connect => {
                let sa = self.read_addr(a[2])?;
                check_addr(domain, &sa, op == NetOp::Connect)?;
                let p = sa.data.as_ptr().cast::<libc::sockaddr>();
                let len = sa.len as libc::socklen_t;
                // SAFETY: `p` points to `len` <= 128 readable bytes of `sa`.
                let r = unsafe { if op == NetOp::Bind { libc::bind(raw, p, len) } else { libc::connect(raw, p, len) } };
                check(r as i64)
            }
            NetOp::Listen => {
                let backlog = (a[2] as i64).clamp(0, 4096) as i32;
                // SAFETY: plain syscall on our fd.
                check(i64::from(unsafe { libc::listen(raw, backlog) }))
            }
            NetOp::Accept => {
                let mut sa = SockAddr::default();
                let mut len = SOCKADDR_MAX as libc::socklen_t;
                // SAFETY: `sa.data` has room for `len` bytes; accept4 writes at most that.
                let nfd = unsafe { libc::accept4(raw, sa.data.as_mut_ptr().cast(), &mut len, libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) };
                let nfd = owned(nfd)?;
                sa.len = len.min(SOCKADDR_MAX as u32);
                self.mem().write_obj(a[2], &sa).map_err(|_| libc::EFAULT)?;
                self.adopt(nfd, domain, insert)
            }
            NetOp::Shutdown => {
                let how = i32::try_from(a[2]).map_err(|_| libc::EINVAL)?;
                // SAFETY: plain syscall on our fd; the kernel checks `how`.
                check(i64::from(unsafe { libc::shutdown(raw, how) }))
            }
            NetOp::Name => {
                let mut sa = SockAddr::default();
                let mut len = SOCKADDR_MAX as libc::socklen_t;
                let p = sa.data.as_mut_ptr().cast();
                // SAFETY: `p` has room for `len` bytes.
                let r = unsafe { if a[2] == 0 { libc::getsockname(raw, p, &mut len) } else { libc::getpeername(raw, p, &mut len) } };
                check(r as i64)?;
                sa.len = len.min(SOCKADDR_MAX as u32);
                self.mem().write_obj(a[3], &sa).map_err(|_| libc::EFAULT)?;
                Ok(0)
            }
            NetOp::SetOpt => {
                let (level, name) = (a[2] as i32, a[3] as i32);
                if !opt_allowed(domain, level, name, true) {
                    return Err(libc::ENOPROTOOPT);
                }
                let len = a[5].min(256) as usize;
                let mut v = vec![0u8; len];
                if len > 0 {
                    self.mem().read(a[4], &mut v).map_err(|_| libc::EFAULT)?;
                }
                if level == libc::IPPROTO_TCP && name == libc::TCP_CONGESTION {
                    let want: Vec<u8> = v.iter().copied().take_while(|&b| b != 0).collect();
                    if !self.congestion.contains(&want) {
                        return Err(libc::ENOENT);
                    }
                }
                // SAFETY: `v` holds `len` readable bytes.
                check(i64::from(unsafe { libc::setsockopt(raw, level, name, v.as_ptr().cast(), len as libc::socklen_t) }))
            }
            NetOp::GetOpt => {
                let (level, name) = (a[2] as i32, a[3] as i32);
                if !opt_allowed(domain, level, name, false) {
                    return Err(libc::ENOPROTOOPT);
                }
                let mut v = vec![0u8; a[5].min(512) as usize];
                let mut len = v.len() as libc::socklen_t;
                // SAFETY: `v` has room for `len` bytes.
                check(i64::from(unsafe { libc::getsockopt(raw, level, name, v.as_mut_ptr().cast(), &mut len) }))?;
                let n = (len as usize).min(v.len());
                self.mem().write(a[4], &v[..n]).map_err(|_| libc::EFAULT)?;
                Ok(len as u64)
            }
            NetOp::Send => self.send(raw, domain, a[2], a[3], iovecs),
            NetOp::Recv => self.recv(raw, a[2], a[3], iovecs),
            NetOp::Ioctl => self.ioctl(raw, a[2], a[3], a[4]),
            NetOp::Socket | NetOp::ProcRead | NetOp::Drain => Err(libc::EINVAL),
        }
    }

    fn read_addr(&self, gpa: u64) -> Result<SockAddr, i32> {
        let sa: SockAddr = self.mem().read_obj(gpa).map_err(|_| libc::EFAULT)?;
        if sa.len as usize > SOCKADDR_MAX {
            return Err(libc::EINVAL);
        }
        Ok(sa)
    }

    fn send(&self, raw: i32, domain: i32, msg_gpa: u64, flags: u64, iovecs: Iovecs) -> HcResult {
        let allowed = (libc::MSG_OOB | libc::MSG_DONTROUTE | libc::MSG_EOR | libc::MSG_MORE | libc::MSG_CONFIRM) as u64;
        let m: Msg = self.mem().read_obj(msg_gpa).map_err(|_| libc::EFAULT)?;
        if m.addr.len as usize > SOCKADDR_MAX {
            return Err(libc::EINVAL);
        }
        if m.addr.len != 0 {
            check_addr(domain, &m.addr, true)?;
        }
        let iov = iovecs(m.iov_gpa, m.iov_count)?;
        if domain == AF_NETLINK {
            check_netlink_request(&iov)?;
        }
        if m.control_len > CONTROL_MAX {
            return Err(libc::ENOBUFS);
        }
        let mut control = vec![0u8; m.control_len as usize];
        if !control.is_empty() {
            self.mem().read(m.control_gpa, &mut control).map_err(|_| libc::EFAULT)?;
            check_send_control(&control)?;
        }
        let mut addr = m.addr;
        // SAFETY: all-zero is a valid msghdr.
        let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
        if addr.len != 0 {
            h.msg_name = addr.data.as_mut_ptr().cast();
            h.msg_namelen = addr.len;
        }
        h.msg_iov = iov.as_ptr().cast_mut();
        h.msg_iovlen = iov.len();
        if !control.is_empty() {
            h.msg_control = control.as_mut_ptr().cast();
            h.msg_controllen = control.len();
        }
        let f = (flags & allowed) as i32 | libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        // SAFETY: the msghdr points at our address and control copies and at
        // iovecs inside guest memory (checked by `iovecs`).
        check(unsafe { libc::sendmsg(raw, &h, f) } as i64)
    }

    fn recv(&self, raw: i32, msg_gpa: u64, flags: u64, iovecs: Iovecs) -> HcResult {
        let allowed = (libc::MSG_OOB | libc::MSG_PEEK | libc::MSG_TRUNC | libc::MSG_ERRQUEUE) as u64;
        let mut m: Msg = self.mem().read_obj(msg_gpa).map_err(|_| libc::EFAULT)?;
        let iov = iovecs(m.iov_gpa, m.iov_count)?;
        let mut addr = SockAddr::default();
        // SAFETY: all-zero is a valid msghdr.
        let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
        h.msg_name = addr.data.as_mut_ptr().cast();
        h.msg_namelen = SOCKADDR_MAX as u32;
        h.msg_iov = iov.as_ptr().cast_mut();
        h.msg_iovlen = iov.len();
        let mut control = vec![0u8; m.control_len.min(CONTROL_MAX) as usize];
        if !control.is_empty() {
            h.msg_control = control.as_mut_ptr().cast();
            h.msg_controllen = control.len();
        }
        let f = (flags & allowed) as i32 | libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC;
        // SAFETY: the msghdr points at our address and control buffers and
        // at iovecs inside guest memory (checked by `iovecs`).
        let n = check(unsafe { libc::recvmsg(raw, &mut h, f) } as i64)?;
        addr.len = h.msg_namelen.min(SOCKADDR_MAX as u32);
        m.addr = addr;
        m.flags = u64::from(h.msg_flags as u32);
        let got = h.msg_controllen.min(control.len());
        let used = recv_control(&mut control, got);
        if used > 0 {
            self.mem().write(m.control_gpa, &control[..used]).map_err(|_| libc::EFAULT)?;
        }
        m.control_len = used as u64;
        self.mem().write_obj(msg_gpa, &m).map_err(|_| libc::EFAULT)?;
        Ok(n)
    }

    fn ioctl(&self, raw: i32, req: u64, arg: u64, len: u64) -> HcResult {
        const SIOCGIFCONF: u64 = 0x8912;
        match req {
            // FIONREAD, SIOCOUTQ, SIOCATMARK, SIOCOUTQNSD: an int out.
            0x541b | 0x5411 | 0x8905 | 0x894b => {
                let mut v: libc::c_int = 0;
                // SAFETY: these requests write one int to our local.
                check(i64::from(unsafe { libc::ioctl(raw, req as _, &mut v) }))?;
                self.mem().write_obj(arg, &v).map_err(|_| libc::EFAULT)?;
                Ok(0)
            }
            SIOCGIFCONF => {
                let len = len.min(64 << 10) as usize;
                let mut buf = vec![0u8; len];
                #[repr(C)]
                struct IfConf {
                    len: libc::c_int,
                    buf: *mut u8,
                }
                let mut c = IfConf { len: len as libc::c_int, buf: if arg == 0 { std::ptr::null_mut() } else { buf.as_mut_ptr() } };
                // SAFETY: `c` describes `buf` (or NULL for a size query); the
                // kernel writes at most `len` bytes of ifreqs there.
                check(i64::from(unsafe { libc::ioctl(raw, req as _, &mut c) }))?;
                let used = (c.len.max(0) as usize).min(if arg == 0 { usize::MAX } else { len });
                if arg != 0 {
                    self.mem().write(arg, &buf[..used]).map_err(|_| libc::EFAULT)?;
                }
                Ok(used as u64)
            }
            // SIOCGIF{NAME,FLAGS,ADDR,DSTADDR,BRDADDR,NETMASK,METRIC,MTU,
            // HWADDR,INDEX,TXQLEN}: a struct ifreq in and out.
            0x8910 | 0x8913 | 0x8915 | 0x8917 | 0x8919 | 0x891b | 0x891d | 0x8921 | 0x8927 | 0x8933 | 0x8942 => {
                let mut ifr = [0u8; 40];
                self.mem().read(arg, &mut ifr).map_err(|_| libc::EFAULT)?;
                // SAFETY: these requests read and write one 40-byte ifreq.
                check(i64::from(unsafe { libc::ioctl(raw, req as _, ifr.as_mut_ptr()) }))?;
                self.mem().write(arg, &ifr).map_err(|_| libc::EFAULT)?;
                Ok(0)
            }
            _ => Err(libc::ENOTTY),
        }
    }

    fn proc_read(&self, which: u64, buf: u64, len: u64, off: u64) -> HcResult {
        let i = usize::try_from(which).ok().filter(|&i| i < PROC_NET.len()).ok_or(libc::EINVAL)?;
        let f = self.proc_files[i].as_ref().ok_or(libc::ENOENT)?;
        let f = f.lock().unwrap_or_else(|e| e.into_inner());
        let mut data = Vec::new();
        let mut chunk = vec![0u8; 64 << 10];
        use std::os::unix::fs::FileExt;
        // From offset 0 (the seq_file starts over) to the end, at most 4 MiB.
        while data.len() < 4 << 20 {
            let want = chunk.len().min((4 << 20) - data.len());
            let n = f.read_at(&mut chunk[..want], data.len() as u64).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
            if n == 0 {
                break;
            }
            data.extend_from_slice(&chunk[..n]);
        }
        drop(f);
        let start = usize::try_from(off).unwrap_or(usize::MAX).min(data.len());
        let n = (data.len() - start).min(usize::try_from(len).unwrap_or(usize::MAX)).min(1 << 20);
        self.mem().write(buf, &data[start..start + n]).map_err(|_| libc::EFAULT)?;
        Ok(n as u64)
    }

}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Sock>> {
        self.socks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn store(&self, h: u64, v: u16) {
        if h < READY_ENTRIES {
            let _ = self.mem.write_obj(READY_GPA + 2 * h, &v);
        }
    }

    /// Polls `fd` now and stores the result as `h`'s readiness.
    fn refresh(&self, h: u64, fd: &OwnedFd) {
        let _g = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN | libc::POLLOUT | libc::POLLPRI | libc::POLLRDHUP, revents: 0 };
        // SAFETY: one pollfd on our stack, zero timeout.
        let r = unsafe { libc::poll(&mut p, 1, 0) };
        self.store(h, if r < 0 { libc::POLLERR as u16 } else { p.revents as u16 });
    }

    /// Takes the waiting epoll events and refreshes those sockets'
    /// entries; whether there were any.
    fn drain(&self) -> bool {
        let mut any = false;
        loop {
            let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 64];
            // SAFETY: `evs` has room for 64 events; zero timeout.
            let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), evs.as_mut_ptr(), 64, 0) };
            if n <= 0 {
                break;
            }
            any = true;
            for ev in &evs[..n as usize] {
                let h = ev.u64;
                let fd = self.lock().get(&h).map(|s| s.fd.clone());
                if let Some(fd) = fd {
                    self.refresh(h, &fd);
                }
            }
            if n < 64 {
                break;
            }
        }
        let (m, cv) = &self.drained;
        *m.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        cv.notify_all();
        any
    }

    /// Sets bits of `Preempt::net` on vCPU 0 (atomically: the sentry
    /// takes them with a swap).
    fn raise(&self, bits: u64) {
        let gpa = abi::layout::vcpu_block(0) + abi::layout::vcpu::PREEMPT + std::mem::offset_of!(abi::hypercall::Preempt, net) as u64;
        if let Ok(p) = self.mem.host_ptr(gpa, 8) {
            if p as usize % 8 == 0 {
                // SAFETY: `p` is an aligned u64 inside guest memory, which
                // lives as long as `self.mem`; the sentry accesses it
                // atomically too.
                unsafe { AtomicU64::from_ptr(p.cast::<u64>()) }.fetch_or(bits, Ordering::SeqCst);
            }
        }
    }

    fn kick(&self) {
        self.raise(NET_DRAIN);
        let (m, cv) = &*self.wake;
        *m.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }
}

/// The watcher thread: when host events wait in the epoll set (which it
/// polls without taking them), it tells the sentry and wakes or
/// preempts it, then waits for a drain before looking again. Ends when
/// the sandbox is gone.
fn poller(shared: Arc<Shared>) {
    loop {
        let mut p = libc::pollfd { fd: shared.epoll.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one pollfd on our stack.
        let n = unsafe { libc::poll(&mut p, 1, 1000) };
        if Arc::strong_count(&shared) == 1 {
            return;
        }
        if n <= 0 {
            continue;
        }
        let (m, cv) = &shared.drained;
        let gen = *m.lock().unwrap_or_else(|e| e.into_inner());
        // A running sentry drains after its next socket call or before it
        // halts; give it a moment before interrupting it.
        if !shared.halted.load(Ordering::SeqCst) {
            let g = m.lock().unwrap_or_else(|e| e.into_inner());
            let (g, _) = cv.wait_timeout_while(g, std::time::Duration::from_millis(1), |g| *g == gen).unwrap_or_else(|e| e.into_inner());
            if *g != gen {
                continue;
            }
        }
        shared.kick();
        let g = m.lock().unwrap_or_else(|e| e.into_inner());
        let _ = cv.wait_timeout_while(g, std::time::Duration::from_millis(10), |g| *g == gen);
    }
}

/// Families, types and protocols the sandbox may open. Protocols that
/// would make the host load modules (SCTP, DCCP...) are refused.
fn check_socket(domain: i32, ty: i32, proto: i32, raw: bool) -> Result<(), i32> {
    match domain {
        AF_INET | AF_INET6 => match ty {
            libc::SOCK_STREAM if matches!(proto, 0 | libc::IPPROTO_TCP) => Ok(()),
            libc::SOCK_DGRAM if matches!(proto, 0 | libc::IPPROTO_UDP) => Ok(()),
            libc::SOCK_DGRAM if domain == AF_INET && proto == libc::IPPROTO_ICMP => Ok(()),
            libc::SOCK_DGRAM if domain == AF_INET6 && proto == libc::IPPROTO_ICMPV6 => Ok(()),
            libc::SOCK_RAW if !raw => Err(libc::EPERM),
            libc::SOCK_RAW if matches!(proto, libc::IPPROTO_ICMP | libc::IPPROTO_ICMPV6 | libc::IPPROTO_UDP | libc::IPPROTO_TCP | libc::IPPROTO_RAW) => Ok(()),
            libc::SOCK_STREAM | libc::SOCK_DGRAM | libc::SOCK_RAW => Err(libc::EPROTONOSUPPORT),
            _ => Err(libc::ESOCKTNOSUPPORT),
        },
        AF_NETLINK => match ty {
            libc::SOCK_RAW | libc::SOCK_DGRAM if proto == libc::NETLINK_ROUTE => Ok(()),
            libc::SOCK_RAW | libc::SOCK_DGRAM => Err(libc::EPROTONOSUPPORT),
            _ => Err(libc::ESOCKTNOSUPPORT),
        },
        _ => Err(libc::EAFNOSUPPORT),
    }
}

/// An address for bind/connect/sendto must be of the socket's family
/// (connect may name AF_UNSPEC to dissolve an association); netlink
/// sockets may only talk to the kernel.
fn check_addr(domain: i32, sa: &SockAddr, connect: bool) -> Result<(), i32> {
    if sa.len < 2 {
        return Err(libc::EINVAL);
    }
    let fam = i32::from(u16::from_ne_bytes([sa.data[0], sa.data[1]]));
    if connect && fam == libc::AF_UNSPEC {
        return Ok(());
    }
    if domain == AF_INET6 && fam == AF_INET && !connect {
        return Err(libc::EAFNOSUPPORT);
    }
    if fam != domain && !(domain == AF_INET6 && fam == AF_INET) {
        return Err(libc::EAFNOSUPPORT);
    }
    if domain == AF_NETLINK && connect && sa.len >= 8 && sa.data[4..8] != [0; 4] {
        return Err(libc::EPERM);
    }
    Ok(())
}

/// Socket options the sandbox may touch (`set`: setsockopt). Options
/// that load programs or modules into the host kernel are not here.
fn opt_allowed(domain: i32, level: i32, name: i32, set: bool) -> bool {
    use libc::*;
    let get_only = !set;
    match level {
        SOL_SOCKET => matches!(name, SO_REUSEADDR | SO_KEEPALIVE | SO_BROADCAST | SO_SNDBUF | SO_RCVBUF | SO_OOBINLINE | SO_LINGER | SO_REUSEPORT | SO_PRIORITY | SO_RCVLOWAT | SO_DONTROUTE | SO_PASSCRED | SO_TIMESTAMP | SO_TIMESTAMPNS | SO_NO_CHECK)
            || (get_only && matches!(name, SO_TYPE | SO_ERROR | SO_ACCEPTCONN | SO_PROTOCOL | SO_DOMAIN | SO_SNDLOWAT | SO_COOKIE)),
        IPPROTO_IP if domain != AF_NETLINK => matches!(name, IP_TOS | IP_TTL | IP_MTU_DISCOVER | IP_MULTICAST_IF | IP_MULTICAST_TTL | IP_MULTICAST_LOOP | IP_ADD_MEMBERSHIP | IP_DROP_MEMBERSHIP | IP_FREEBIND | IP_BIND_ADDRESS_NO_PORT | IP_RECVERR | IP_PKTINFO | IP_RECVTTL | IP_RECVTOS)
            || (get_only && name == IP_MTU),
        // On an inet socket the kernel refuses the level itself.
        IPPROTO_IPV6 if domain == AF_INET => true,
        IPPROTO_IPV6 if domain == AF_INET6 => matches!(name, IPV6_V6ONLY | IPV6_UNICAST_HOPS | IPV6_MULTICAST_IF | IPV6_MULTICAST_HOPS | IPV6_MULTICAST_LOOP | IPV6_ADD_MEMBERSHIP | IPV6_DROP_MEMBERSHIP | IPV6_TCLASS | IPV6_MTU_DISCOVER | IPV6_RECVERR | IPV6_RECVPKTINFO | IPV6_RECVHOPLIMIT | IPV6_RECVTCLASS)
            || (get_only && name == IPV6_MTU),
        IPPROTO_TCP if domain != AF_NETLINK => matches!(name, TCP_NODELAY | TCP_MAXSEG | TCP_CORK | TCP_KEEPIDLE | TCP_KEEPINTVL | TCP_KEEPCNT | TCP_SYNCNT | TCP_LINGER2 | TCP_DEFER_ACCEPT | TCP_WINDOW_CLAMP | TCP_QUICKACK | TCP_USER_TIMEOUT | TCP_NOTSENT_LOWAT | TCP_FASTOPEN | TCP_CONGESTION)
            || (get_only && name == TCP_INFO),
        IPPROTO_UDP if domain != AF_NETLINK => name == UDP_CORK,
        SOL_NETLINK if domain == AF_NETLINK => matches!(name, NETLINK_EXT_ACK | NETLINK_GET_STRICT_CHK | NETLINK_CAP_ACK | NETLINK_ADD_MEMBERSHIP | NETLINK_DROP_MEMBERSHIP),
        _ => false,
    }
}

/// Control messages a send may carry: IP-level packet info, TTL, TOS
/// (v4 and v6). Anything else — file descriptors above all — is EINVAL.
fn check_send_control(c: &[u8]) -> Result<(), i32> {
    let mut off = 0usize;
    while c.len() - off >= 16 {
        let len = u64::from_ne_bytes(c[off..off + 8].try_into().map_err(|_| libc::EINVAL)?) as usize;
        let level = i32::from_ne_bytes(c[off + 8..off + 12].try_into().map_err(|_| libc::EINVAL)?);
        let ty = i32::from_ne_bytes(c[off + 12..off + 16].try_into().map_err(|_| libc::EINVAL)?);
        if len < 16 || len > c.len() - off {
            return Err(libc::EINVAL);
        }
        let ok = matches!((level, ty), (libc::IPPROTO_IP, libc::IP_PKTINFO | libc::IP_TOS | libc::IP_TTL) | (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO | libc::IPV6_HOPLIMIT | libc::IPV6_TCLASS));
        if !ok {
            return Err(libc::EINVAL);
        }
        off += (len + 7) & !7;
        if off >= c.len() {
            break;
        }
    }
    Ok(())
}

/// Filters received control messages in place: file descriptors (which
/// inet and netlink sockets never carry, but a confused kernel must not
/// hand the guest) are closed and dropped. Returns the bytes kept.
fn recv_control(c: &mut [u8], used: usize) -> usize {
    let mut out = Vec::with_capacity(used);
    let mut off = 0usize;
    while used.saturating_sub(off) >= 16 {
        let len = u64::from_ne_bytes(c[off..off + 8].try_into().unwrap_or([0; 8])) as usize;
        let level = i32::from_ne_bytes(c[off + 8..off + 12].try_into().unwrap_or([0; 4]));
        let ty = i32::from_ne_bytes(c[off + 12..off + 16].try_into().unwrap_or([0; 4]));
        if len < 16 || len > used - off {
            break;
        }
        if level == libc::SOL_SOCKET && ty == libc::SCM_RIGHTS {
            for fd in c[off + 16..off + len].chunks_exact(4) {
                // SAFETY: the kernel just installed these fds in our table.
                drop(unsafe { OwnedFd::from_raw_fd(i32::from_ne_bytes([fd[0], fd[1], fd[2], fd[3]])) });
            }
        } else {
            let end = (off + ((len + 7) & !7)).min(used);
            out.extend_from_slice(&c[off..end]);
        }
        off += (len + 7) & !7;
    }
    c[..out.len()].copy_from_slice(&out);
    out.len()
}

/// Netlink requests may only read: every message the kernel would act on
/// must be a GET (or a no-op); anything that changes the namespace is
/// refused as Linux refuses it to a task without CAP_NET_ADMIN.
fn check_netlink_request(iov: &[libc::iovec]) -> Result<(), i32> {
    let mut data = Vec::new();
    for v in iov {
        // SAFETY: each iovec points into guest memory (checked by `iovecs`).
        data.extend_from_slice(unsafe { std::slice::from_raw_parts(v.iov_base as *const u8, v.iov_len) });
        if data.len() > 1 << 20 {
            return Err(libc::EMSGSIZE);
        }
    }
    check_netlink_bytes(&data)
}

fn check_netlink_bytes(data: &[u8]) -> Result<(), i32> {
    let mut off = 0usize;
    while data.len() - off >= 16 {
        let len = u32::from_ne_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]]) as usize;
        let ty = u16::from_ne_bytes([data[off + 4], data[off + 5]]);
        if len < 16 || len > data.len() - off {
            // The kernel stops at a malformed header too.
            break;
        }
        // Control messages (< RTM_BASE) do nothing; rtnetlink GETs are
        // type % 4 == 2 (RTM_GETLINK = 18, RTM_GETADDR = 22...).
        // Types past rtnetlink's range are refused by the kernel itself.
        let read_only = ty < 16 || ty % 4 == 2 || ty >= 256;
        if !read_only {
            return Err(libc::EPERM);
        }
        off += (len + 3) & !3;
        if off > data.len() {
            break;
        }
    }
    Ok(())
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

fn check(r: i64) -> HcResult {
    if r < 0 {
        Err(errno())
    } else {
        Ok(r as u64)
    }
}

fn owned(fd: i32) -> Result<OwnedFd, i32> {
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: `fd` was just returned by the kernel and belongs to nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(fam: i32, len: u32) -> SockAddr {
        let mut sa = SockAddr::default();
        sa.data[..2].copy_from_slice(&(fam as u16).to_ne_bytes());
        sa.len = len;
        sa
    }

    #[test]
    fn sockets_allowlisted() {
        assert_eq!(check_socket(AF_INET, libc::SOCK_STREAM, 0, false), Ok(()));
        assert_eq!(check_socket(AF_INET6, libc::SOCK_DGRAM, libc::IPPROTO_UDP, false), Ok(()));
        assert_eq!(check_socket(AF_INET, libc::SOCK_STREAM, libc::IPPROTO_UDP, false), Err(libc::EPROTONOSUPPORT));
        assert_eq!(check_socket(AF_INET, libc::SOCK_STREAM, 132, false), Err(libc::EPROTONOSUPPORT)); // SCTP
        assert_eq!(check_socket(AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP, false), Err(libc::EPERM));
        assert_eq!(check_socket(AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP, true), Ok(()));
        assert_eq!(check_socket(AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE, false), Ok(()));
        assert_eq!(check_socket(AF_NETLINK, libc::SOCK_RAW, 9, false), Err(libc::EPROTONOSUPPORT));
        assert_eq!(check_socket(17, libc::SOCK_RAW, 0, true), Err(libc::EAFNOSUPPORT));
        assert_eq!(check_socket(AF_INET, 10, 0, true), Err(libc::ESOCKTNOSUPPORT));
    }

    #[test]
    fn addresses_match_the_family() {
        assert_eq!(check_addr(AF_INET, &addr(AF_INET, 16), false), Ok(()));
        assert_eq!(check_addr(AF_INET, &addr(AF_INET6, 28), true), Err(libc::EAFNOSUPPORT));
        assert_eq!(check_addr(AF_INET, &addr(libc::AF_UNSPEC, 16), true), Ok(()));
        assert_eq!(check_addr(AF_INET, &addr(AF_INET, 1), false), Err(libc::EINVAL));
        let mut nl = addr(AF_NETLINK, 12);
        nl.data[4] = 7;
        assert_eq!(check_addr(AF_NETLINK, &nl, true), Err(libc::EPERM));
    }

    #[test]
    fn netlink_requests_read_only() {
        let msg = |ty: u16, len: u32| {
            let mut b = vec![0u8; len.max(16) as usize];
            b[..4].copy_from_slice(&len.to_ne_bytes());
            b[4..6].copy_from_slice(&ty.to_ne_bytes());
            b
        };
        assert_eq!(check_netlink_bytes(&msg(18, 32)), Ok(()));
        assert_eq!(check_netlink_bytes(&msg(22, 20)), Ok(()));
        assert_eq!(check_netlink_bytes(&msg(16, 32)), Err(libc::EPERM)); // RTM_NEWLINK
        assert_eq!(check_netlink_bytes(&msg(20, 32)), Err(libc::EPERM)); // RTM_NEWADDR
        assert_eq!(check_netlink_bytes(&msg(0x7ff, 32)), Ok(())); // unknown: the kernel says EOPNOTSUPP
        let mut two = msg(18, 16);
        two.extend(msg(24, 16)); // RTM_NEWROUTE after a GET
        assert_eq!(check_netlink_bytes(&two), Err(libc::EPERM));
        // Bad lengths stop the walk as the kernel's does.
        assert_eq!(check_netlink_bytes(&msg(16, 8)), Ok(()));
        assert_eq!(check_netlink_bytes(&msg(16, 1000)[..16]), Ok(()));
        assert_eq!(check_netlink_bytes(&[1, 2, 3]), Ok(()));
    }

    #[test]
    fn control_messages_filtered() {
        let cmsg = |level: i32, ty: i32, data: &[u8]| {
            let mut b = Vec::new();
            b.extend_from_slice(&((16 + data.len()) as u64).to_ne_bytes());
            b.extend_from_slice(&level.to_ne_bytes());
            b.extend_from_slice(&ty.to_ne_bytes());
            b.extend_from_slice(data);
            b.resize((b.len() + 7) & !7, 0);
            b
        };
        assert_eq!(check_send_control(&cmsg(libc::IPPROTO_IP, libc::IP_PKTINFO, &[0; 12])), Ok(()));
        assert_eq!(check_send_control(&cmsg(libc::SOL_SOCKET, libc::SCM_RIGHTS, &[0; 4])), Err(libc::EINVAL));
        let mut bad = cmsg(libc::IPPROTO_IP, libc::IP_TOS, &[0; 4]);
        bad[0] = 200;
        assert_eq!(check_send_control(&bad), Err(libc::EINVAL));
        // Received: anything but fds is kept.
        let mut c = cmsg(libc::IPPROTO_IP, libc::IP_TTL, &[64, 0, 0, 0]);
        let n = c.len();
        assert_eq!(recv_control(&mut c, n), n);
    }

    #[test]
    fn options_allowlisted() {
        assert!(opt_allowed(AF_INET, libc::SOL_SOCKET, libc::SO_REUSEADDR, true));
        assert!(!opt_allowed(AF_INET, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, true));
        assert!(!opt_allowed(AF_INET, libc::SOL_SOCKET, libc::SO_TYPE, true));
        assert!(opt_allowed(AF_INET, libc::SOL_SOCKET, libc::SO_TYPE, false));
        assert!(!opt_allowed(AF_INET, libc::IPPROTO_TCP, libc::TCP_ULP, true));
        assert!(!opt_allowed(AF_INET6, libc::IPPROTO_TCP, libc::TCP_ULP, false));
        assert!(opt_allowed(AF_INET6, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, true));
        assert!(!opt_allowed(AF_NETLINK, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, true));
    }
}
