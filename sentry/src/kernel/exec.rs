//! Loading a program into a task (Linux: `execve` / binfmt_elf). The file
//! is read through the host in a few large requests straight into the
//! frames that will hold it.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::task::Task;
use crate::errno::Errno;
use crate::host;
use crate::loader::elf::{self, ElfError};
use crate::loader::stack::{self, *};
use crate::mm::pagetable::PageTable;
use crate::mm::vma::{Backing, Vma, PROT_READ, PROT_WRITE};
use crate::mm::{self, page_down, page_up, MemoryManager, STACK_SIZE, STACK_TOP};
use abi::hypercall::IoVec;
use alloc::sync::Arc;
use spin::Mutex;
use abi::layout::PAGE_SIZE;

/// Why exec failed.
#[derive(Debug)]
pub enum ExecError {
    /// The file could not be opened or read.
    Io(Errno),
    /// The file is not a program we can run.
    Elf(ElfError),
    /// Out of memory or address space.
    NoMem,
    /// The ELF interpreter could not be opened.
    Interp(String, Errno),
}

impl ExecError {
    /// The errno execve returns for this error.
    pub fn errno(&self) -> Errno {
        match self {
            ExecError::Io(e) | ExecError::Interp(_, e) => *e,
            ExecError::Elf(_) => Errno::ENOEXEC,
            ExecError::NoMem => Errno::ENOMEM,
        }
    }
}

impl From<Errno> for ExecError {
    fn from(e: Errno) -> Self {
        if e == Errno::ENOMEM {
            ExecError::NoMem
        } else {
            ExecError::Io(e)
        }
    }
}

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;

/// Reads `len` bytes at `off` of a host file into a sentry buffer.
fn read_exact(h: u64, off: u64, len: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; len];
    // The hypercall's asm may write any memory whose address escaped, as
    // `buf`'s did through the IoVec, so the compiler re-reads it after.
    let iov = [IoVec { gpa: mm::phys::va_to_pa(buf.as_mut_ptr() as u64), len: len as u64 }];
    let n = host::read(h, &iov, Some(off))?;
    buf.truncate(n as usize);
    Ok(buf)
}

/// Copies file bytes `[off, off+len)` into freshly mapped frames at `va`.
fn populate(mm: &mut MemoryManager, h: u64, va: u64, off: u64, len: u64) -> Result<(), Errno> {
    // Whole pages from the file, as Linux maps them: start at the page
    // boundary below both the address and (congruent) file offset.
    let lead = va % PAGE_SIZE;
    let (va0, off0, len0) = (va - lead, off - lead, len + lead);
    let mut iov: Vec<IoVec> = Vec::new();
    let mut file_pos = off0;
    let mut p = va0;
    let end = va0 + len0;
    while p < end {
        let pa = PageTable::frame_of(mm.page_table().lookup(p)).ok_or(Errno::EFAULT)?;
        let n = (end - p).min(PAGE_SIZE);
        iov.push(IoVec { gpa: pa, len: n });
        p += PAGE_SIZE;
        if iov.len() as u64 == abi::hypercall::MAX_IOVECS || p >= end {
            let want: u64 = iov.iter().map(|v| v.len).sum();
            let got = host::read(h, &iov, Some(file_pos))?;
            if got != want {
                return Err(Errno::EIO);
            }
            file_pos += want;
            iov.clear();
        }
    }
    Ok(())
}

/// Replaces `t`'s program with the file at `path`.
pub fn exec(t: &mut Task, path: &str, argv: &[String], envp: &[String], hwcap: u64, minsigstksz: u64) -> Result<(), ExecError> {
    let mut path = String::from(path);
    let mut argv = argv.to_vec();
    // `#!` scripts name an interpreter, which may itself be a script (Linux
    // allows a few levels).
    for _ in 0..5 {
        let h = host::open(&path, 0)?;
        let r = match script_interpreter(h) {
            Ok(Some((interp, arg))) => {
                let mut new = alloc::vec![interp.clone()];
                new.extend(arg);
                new.push(path.clone());
                new.extend(argv.iter().skip(1).cloned());
                argv = new;
                path = interp;
                host::close(h);
                continue;
            }
            Ok(None) => exec_handle(t, h, &path, &argv, envp, hwcap, minsigstksz),
            Err(e) => Err(e),
        };
        host::close(h);
        return r;
    }
    Err(ExecError::Io(Errno::ELOOP))
}

/// If the file starts with `#!`, its interpreter and optional argument
/// (Linux: binfmt_script, the first line up to 255 bytes).
fn script_interpreter(h: u64) -> Result<Option<(String, Option<String>)>, ExecError> {
    let st = host::fstat(h)?;
    if st.st_mode & S_IFMT != S_IFREG || st.st_mode & 0o111 == 0 {
        return Err(ExecError::Io(Errno::EACCES));
    }
    let head = read_exact(h, 0, 256)?;
    if !head.starts_with(b"#!") {
        return Ok(None);
    }
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let line = core::str::from_utf8(&head[2..line_end]).map_err(|_| ExecError::Io(Errno::ENOEXEC))?;
    let line = line.trim_matches(|c| c == ' ' || c == '\t');
    let (interp, rest) = match line.find([' ', '\t']) {
        Some(i) => (&line[..i], line[i..].trim_matches(|c| c == ' ' || c == '\t')),
        None => (line, ""),
    };
    if interp.is_empty() {
        return Err(ExecError::Io(Errno::ENOEXEC));
    }
    Ok(Some((interp.into(), (!rest.is_empty()).then(|| rest.into()))))
}

/// Reads the start of an ELF file (header and program headers) and plans it.
fn read_plan(h: u64) -> Result<(elf::Plan, Vec<u8>), ExecError> {
    let st = host::fstat(h)?;
    if st.st_mode & S_IFMT != S_IFREG || st.st_mode & 0o111 == 0 {
        return Err(ExecError::Io(Errno::EACCES));
    }
    let size = u64::try_from(st.st_size).map_err(|_| ExecError::Elf(ElfError::Truncated))?;
    let head = read_exact(h, 0, size.min(4096) as usize)?;
    let need = elf::header_len(&head).map_err(ExecError::Elf)?;
    let head = if need > head.len() {
        if need as u64 > size || need > (1 << 20) {
            return Err(ExecError::Elf(ElfError::Truncated));
        }
        read_exact(h, 0, need)?
    } else {
        head
    };
    let plan = elf::plan(&head, size).map_err(ExecError::Elf)?;
    Ok((plan, head))
}

/// Maps a planned program's areas and fills them from its file.
fn load_plan(m: &mut MemoryManager, h: u64, path: &str, plan: &elf::Plan) -> Result<(), Errno> {
    for s in &plan.segments {
        m.map_fixed(Vma { start: s.start, end: s.end, prot: s.prot, shared: false, backing: Backing::File { path: path.into(), offset: s.file_off - (s.file_va - s.start) } })?;
    }
    for s in &plan.segments {
        if s.file_len > 0 {
            populate_segment(m, h, s)?;
        }
    }
    Ok(())
}

/// An opened and planned interpreter (the dynamic linker).
struct Interp {
    handle: u64,
    path: String,
    plan: elf::Plan,
}

impl Drop for Interp {
    fn drop(&mut self) {
        host::close(self.handle);
    }
}

fn open_interp(h: u64, plan: &elf::Plan, head: &[u8]) -> Result<Option<Interp>, ExecError> {
    let Some((off, len)) = plan.interp else { return Ok(None) };
    let bytes = match head.get(off as usize..(off + len) as usize) {
        Some(b) => b.to_vec(),
        None => read_exact(h, off, len as usize)?,
    };
    let path = elf::interp_path(&bytes).map_err(ExecError::Elf)?;
    let handle = host::open(&path, 0).map_err(|e| ExecError::Interp(path.clone(), e))?;
    let mut it = Interp { handle, path, plan: elf::Plan { entry: 0, bias: 0, segments: Vec::new(), phdr: 0, phnum: 0, end: 0, interp: None, lo: 0 } };
    let (ip, _) = read_plan(handle)?;
    if ip.interp.is_some() || ip.bias == 0 {
        return Err(ExecError::Elf(ElfError::BadInterpreterKind));
    }
    it.plan = ip;
    Ok(Some(it))
}

fn exec_handle(t: &mut Task, h: u64, path: &str, argv: &[String], envp: &[String], hwcap: u64, minsigstksz: u64) -> Result<(), ExecError> {
    let (plan, head) = read_plan(h)?;
    let interp = open_interp(h, &plan, &head)?;

    // Build the new address space completely; the old one stays intact
    // until it is ready, so a failure returns an error to the caller.
    let template = PageTable::adopt(abi::layout::BOOT_PML4_GPA);
    let mut m = MemoryManager::new(PageTable::new_from(&template)?);
    load_plan(&mut m, h, path, &plan)?;
    m.set_brk_start(page_up(plan.end).ok_or(ExecError::NoMem)?);
    m.map_fixed(Vma { start: STACK_TOP - STACK_SIZE, end: STACK_TOP, prot: PROT_READ | PROT_WRITE, shared: false, backing: Backing::Stack })?;
    let (entry, base) = match interp {
        Some(mut it) => {
            let span = it.plan.span();
            let at = m.find_free(span).ok_or(ExecError::NoMem)?;
            it.plan.rebase(at.wrapping_sub(it.plan.lo));
            load_plan(&mut m, it.handle, &it.path, &it.plan)?;
            (it.plan.entry, it.plan.bias)
        }
        None => (plan.entry, 0),
    };

    let mut random = [0u8; 16];
    super::random::fill(&mut random);
    let aux = [
        (AT_HWCAP, hwcap),
        (AT_PAGESZ, PAGE_SIZE),
        (AT_CLKTCK, 100),
        (AT_PHDR, plan.phdr),
        (AT_PHENT, 56),
        (AT_PHNUM, plan.phnum),
        (AT_BASE, base),
        (AT_FLAGS, 0),
        (AT_ENTRY, plan.entry),
        (AT_UID, u64::from(t.creds.uid)),
        (AT_EUID, u64::from(t.creds.uid)),
        (AT_GID, u64::from(t.creds.gid)),
        (AT_EGID, u64::from(t.creds.gid)),
        (AT_SECURE, 0),
        (AT_HWCAP2, 2), // HWCAP2_FSGSBASE: user-mode FSGSBASE is enabled
        (AT_MINSIGSTKSZ, minsigstksz),
    ];
    let argv_b: Vec<&[u8]> = argv.iter().map(|s| s.as_bytes()).collect();
    let envp_b: Vec<&[u8]> = envp.iter().map(|s| s.as_bytes()).collect();
    let img = stack::build(STACK_TOP, &argv_b, &envp_b, path.as_bytes(), random, &aux)?;
    m.copy_out(img.sp, &img.bytes)?;

    // Commit: switch to the new address space, then let the old one go.
    let root = m.page_table().root();
    let old = core::mem::replace(&mut t.mm, Arc::new(Mutex::new(m)));
    super::sched::set_cr3(&t.shared, root);
    drop(old);
    // Files are unshared and close-on-exec ones closed; handled signals
    // go back to their defaults; the alternate stack is gone.
    let fds = t.fds.lock().clone();
    t.fds = Arc::new(Mutex::new(fds));
    t.fds.lock().close_on_exec();
    for a in t.proc.sighand.lock().iter_mut() {
        if a.handler != super::signal::SIG_IGN {
            *a = super::signal::SigAction::default();
        }
    }
    t.altstack = super::signal::ALTSTACK_DISABLED;
    super::exit::release_vfork(t);
    t.regs = super::task::UserRegs::new_user(entry, img.sp);
    t.fpu.reset();
    t.fs_base = 0;
    t.exe = path.into();
    t.comm = comm_of(path);
    Ok(())
}

/// The thread name Linux gives a program: its file name, cut to 15 bytes.
pub fn comm_of(path: &str) -> [u8; 16] {
    let name = path.rsplit('/').next().unwrap_or(path).as_bytes();
    let mut c = [0u8; 16];
    let n = name.len().min(15);
    c[..n].copy_from_slice(&name[..n]);
    c
}

/// Maps and fills one segment's file-backed pages.
fn populate_segment(m: &mut MemoryManager, h: u64, s: &elf::Segment) -> Result<(), Errno> {
    // Fault the file-backed pages in (writable access is not needed: the
    // frames are filled through their physical addresses).
    let first = page_down(s.file_va);
    let last = page_up(s.file_va + s.file_len).ok_or(Errno::ENOMEM)?;
    let mut p = first;
    while p < last {
        m.populate_page(p)?;
        p += PAGE_SIZE;
    }
    populate(m, h, s.file_va, s.file_off, s.file_len)
}
