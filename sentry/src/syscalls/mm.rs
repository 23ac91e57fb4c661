//! Memory syscalls: mmap, munmap, mprotect, mremap, madvise, brk.

use super::Args;
use crate::errno::{Errno, SysResult};
use crate::kernel::task::Task;
use crate::mm::vma::{Backing, PROT_EXEC, PROT_READ, PROT_WRITE};
use abi::layout::PAGE_SIZE;

const MAP_PRIVATE: u32 = 2;
const MAP_SHARED_VALIDATE: u32 = 3;
const MAP_FIXED: u32 = 0x10;
const MAP_ANONYMOUS: u32 = 0x20;
const MAP_FIXED_NOREPLACE: u32 = 0x10_0000;
const PROT_GROWSDOWN: u32 = 0x0100_0000;
const PROT_GROWSUP: u32 = 0x0200_0000;
/// Flags Linux accepts for MAP_SHARED_VALIDATE (and ignores here or honours).
const KNOWN_FLAGS: u32 = 0x3 | 0x10 | 0x20 | 0x40 | 0x100 | 0x800 | 0x1000 | 0x2000 | 0x4000 | 0x8000 | 0x1_0000 | 0x2_0000 | 0x4_0000 | 0x8_0000 | 0x10_0000 | 0xfc00_0000;

fn check_prot(prot: u32) -> Result<u32, Errno> {
    if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_GROWSDOWN | PROT_GROWSUP) != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(prot & (PROT_READ | PROT_WRITE | PROT_EXEC))
}

/// RLIMIT_AS's index.
const RLIMIT_AS: usize = 9;

/// Whether the address space may grow by `grow` bytes under RLIMIT_AS
/// (Linux: may_expand_vm); ENOMEM if not.
fn may_expand(t: &Task, grow: u64) -> Result<(), Errno> {
    let limit = t.rlimits[RLIMIT_AS].0;
    if limit == u64::MAX || grow == 0 {
        return Ok(());
    }
    let used: u64 = t.mm.lock().vmas().iter().map(|v| v.end - v.start).sum();
    match used.checked_add(crate::mm::page_up(grow).ok_or(Errno::ENOMEM)?) {
        Some(n) if n <= limit => Ok(()),
        _ => Err(Errno::ENOMEM),
    }
}

pub fn sys_mmap(t: &mut Task, a: &Args) -> SysResult {
    let (addr, len, flags, fd, off) = (a.u64(0), a.u64(1), a.u32(3), a.fd(4), a.u64(5));
    let prot = check_prot(a.u32(2))?;
    may_expand(t, len)?;
    let kind = flags & 3;
    if kind == 0 || (kind == MAP_SHARED_VALIDATE && flags & !KNOWN_FLAGS != 0) {
        return Err(Errno::EINVAL);
    }
    if len == 0 || off % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
    let noreplace = flags & MAP_FIXED_NOREPLACE != 0 && flags & MAP_FIXED == 0;
    let shared = kind != MAP_PRIVATE;
    if flags & MAP_ANONYMOUS != 0 {
        let backing = if shared {
            let size = crate::mm::page_up(len).ok_or(Errno::ENOMEM)?;
            Backing::Shared { obj: crate::mm::shared::SharedRef(crate::mm::shared::SharedMem::new(size)), offset: 0 }
        } else {
            Backing::Anon
        };
        return t.mm.lock().mmap(addr, len, prot, fixed, noreplace, shared, backing);
    }
    let file = t.fds.lock().get(fd)?;
    let mode = file.flags() & 3;
    if mode == 1 || file.flags() & 0o10000000 != 0 {
        return Err(Errno::EACCES);
    }
    if file.ops.is_dir() {
        return Err(Errno::ENODEV);
    }
    if shared && prot & PROT_WRITE != 0 && mode == 0 {
        return Err(Errno::EACCES);
    }
    if shared {
        // Files whose pages live in the sentry map those very pages.
        if let Some(obj) = file.ops.shared_mem() {
            let backing = Backing::Shared { obj: crate::mm::shared::SharedRef(obj), offset: off };
            return t.mm.lock().mmap(addr, len, prot, fixed, noreplace, shared, backing);
        }
        if prot & PROT_WRITE != 0 {
            // Host files would need a page cache shared with the host.
            return Err(Errno::ENODEV);
        }
    }
    if !shared {
        if let Some(map) = crate::fs::file_map(&file)? {
            // Pages come from the file when touched.
            let backing = Backing::File { path: file.ops.path().into(), offset: off, map: Some(map) };
            return t.mm.lock().mmap(addr, len, prot, fixed, noreplace, shared, backing);
        }
    }
    let backing = Backing::File { path: file.ops.path().into(), offset: off, map: None };
    // Private copy of the file: map writable, fill, then apply `prot`.
    let at = t.mm.lock().mmap(addr, len, PROT_READ | PROT_WRITE, fixed, noreplace, shared, backing)?;
    let n = crate::mm::page_up(len).ok_or(Errno::ENOMEM)?;
    // Through the file's operations: mapping is not an inotify read.
    let r = file.ops.read(t, &[(at, n as usize)], Some(off), false);
    let r = r.and_then(|_| t.mm.lock().mprotect(at, n, prot));
    if let Err(e) = r {
        let _ = t.mm.lock().munmap(at, n);
        return Err(e);
    }
    Ok(at)
}

pub fn sys_munmap(t: &mut Task, a: &Args) -> SysResult {
    t.mm.lock().munmap(a.u64(0), a.u64(1)).map(|()| 0)
}

pub fn sys_mprotect(t: &mut Task, a: &Args) -> SysResult {
    let prot = check_prot(a.u32(2))?;
    t.mm.lock().mprotect(a.u64(0), a.u64(1), prot).map(|()| 0)
}

pub fn sys_mremap(t: &mut Task, a: &Args) -> SysResult {
    may_expand(t, a.u64(2).saturating_sub(a.u64(1)))?;
    t.mm.lock().mremap(a.u64(0), a.u64(1), a.u64(2), a.u32(3), a.u64(4))
}

pub fn sys_madvise(t: &mut Task, a: &Args) -> SysResult {
    t.mm.lock().madvise(a.u64(0), a.u64(1), a.u32(2)).map(|()| 0)
}

pub fn sys_brk(t: &mut Task, a: &Args) -> SysResult {
    // A refused growth leaves the break where it is (brk's failure).
    let cur = t.mm.lock().brk(0);
    if a.u64(0) > cur && may_expand(t, a.u64(0) - cur).is_err() {
        return Ok(cur);
    }
    Ok(t.mm.lock().brk(a.u64(0)))
}

pub fn sys_memfd_create(t: &mut Task, a: &Args) -> SysResult {
    const MFD_CLOEXEC: u32 = 1;
    const MFD_ALLOW_SEALING: u32 = 2;
    const MFD_NOEXEC_SEAL: u32 = 8;
    const MFD_EXEC: u32 = 0x10;
    let flags = a.u32(1);
    if flags & !(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL | MFD_EXEC) != 0 {
        // Unknown bits, and huge pages (MFD_HUGETLB and its size bits):
        // not offered.
        return Err(Errno::EINVAL);
    }
    if flags & MFD_NOEXEC_SEAL != 0 && flags & MFD_EXEC != 0 {
        return Err(Errno::EINVAL);
    }
    // NAME_MAX less the "memfd:" prefix, as Linux counts it.
    let name = t.mm.lock().read_cstr(a.u64(0), 249).map_err(|e| if e == Errno::ENAMETOOLONG { Errno::EINVAL } else { e })?;
    let who = crate::vfs::Creator { uid: t.creds.fsuid, gid: t.creds.fsgid };
    let (node, file) = crate::fs::tmpfs::memfd(&name, who, flags & (MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL) != 0)?;
    if flags & MFD_NOEXEC_SEAL != 0 {
        crate::vfs::Inode::setattr(&*node, &crate::vfs::SetAttr { mode: Some(0o666), ..Default::default() })?;
        node.seals(crate::fs::tmpfs::F_SEAL_EXEC)?;
    }
    let path = alloc::string::String::from(crate::fs::FileOps::path(&file));
    let loc = crate::vfs::Location { inode: node, path };
    let f = crate::fs::OpenFile::at(alloc::boxed::Box::new(file), 2, loc);
    t.fds.lock().install(f, flags & MFD_CLOEXEC != 0, 0).map(|fd| fd as u64)
}

pub fn sys_mincore(t: &mut Task, a: &Args) -> SysResult {
    use abi::layout::TASK_SIZE;
    let (start, len, vec) = (a.u64(0), a.u64(1), a.u64(2));
    if start % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    if start.checked_add(len).is_none_or(|end| end > TASK_SIZE) {
        return Err(Errno::ENOMEM);
    }
    let pages = len.div_ceil(PAGE_SIZE);
    if vec.checked_add(pages).is_none_or(|end| end > TASK_SIZE) {
        return Err(Errno::EFAULT);
    }
    // A page of answers at a time, as Linux: a huge range needs no huge
    // sentry buffer.
    let mut done = 0;
    while done < pages {
        let n = (pages - done).min(PAGE_SIZE);
        let (bytes, err) = t.mm.lock().mincore(start + done * PAGE_SIZE, n);
        t.mm.lock().copy_out(vec + done, &bytes)?;
        if let Some(e) = err {
            return Err(e);
        }
        done += n;
    }
    Ok(0)
}
