//! Loading a program into a task (Linux: `execve` / binfmt_elf). The file
//! is read through the host in a few large requests straight into the
//! frames that will hold it.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::creds::Creds;
use super::task::Task;
use crate::errno::Errno;
use crate::fs::{FileOps, OpenFile};
use crate::vfs::{perm, walk, Location};
use alloc::boxed::Box;
use crate::loader::elf::{self, ElfError};
use crate::loader::stack::{self, *};
use crate::mm::pagetable::PageTable;
use crate::mm::vma::{Backing, Vma, PROT_READ, PROT_WRITE};
use crate::mm::{page_down, page_up, MemoryManager, STACK_SIZE, STACK_TOP};
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

/// Reads `len` bytes at `off` of an executable into a sentry buffer.
fn read_exact(f: &dyn FileOps, off: u64, len: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; len];
    let n = f.read_kernel(&mut buf, off)?;
    buf.truncate(n);
    Ok(buf)
}

/// Copies file bytes `[off, off+len)` to `va` in already-mapped pages.
fn populate(mm: &mut MemoryManager, f: &dyn FileOps, va: u64, off: u64, len: u64) -> Result<(), Errno> {
    // Whole pages from the file, as Linux maps them: start at the page
    // boundary below both the address and (congruent) file offset.
    let lead = va % PAGE_SIZE;
    let (va0, off0, len0) = (va - lead, off - lead, len + lead);
    const CHUNK: u64 = 1 << 20;
    let mut buf = vec![0u8; CHUNK.min(len0) as usize];
    let mut done = 0;
    while done < len0 {
        let n = (len0 - done).min(CHUNK) as usize;
        let got = f.read_kernel(&mut buf[..n], off0 + done)?;
        if got != n {
            return Err(Errno::EIO);
        }
        mm.poke(va0 + done, &buf[..n])?;
        done += n as u64;
    }
    Ok(())
}

/// Replaces `t`'s program with the file at `path` (resolved from the
/// task's cwd in the sandbox's namespace).
pub fn exec(t: &mut Task, path: &str, argv: &[String], envp: &[String], hwcap: u64, minsigstksz: u64) -> Result<(), ExecError> {
    let mut path = String::from(path);
    let mut argv = argv.to_vec();
    let cwd = t.fs.lock().cwd.clone();
    let creds = t.creds.clone();
    // `#!` scripts name an interpreter, which may itself be a script (Linux
    // allows a few levels).
    for _ in 0..5 {
        let (loc, h) = open_exec(&path, &cwd, &creds)?;
        match script_interpreter(h.as_ref())? {
            Some((interp, arg)) => {
                let mut new = alloc::vec![interp.clone()];
                new.extend(arg);
                new.push(path.clone());
                new.extend(argv.iter().skip(1).cloned());
                argv = new;
                path = interp;
            }
            None => return exec_handle(t, h, &path, &loc.path, &argv, envp, hwcap, minsigstksz),
        }
    }
    Err(ExecError::Io(Errno::ELOOP))
}

/// If the file starts with `#!`, its interpreter and optional argument
/// (Linux: binfmt_script, the first line up to 255 bytes).
fn script_interpreter(h: &dyn FileOps) -> Result<Option<(String, Option<String>)>, ExecError> {
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
fn read_plan(h: &dyn FileOps) -> Result<(elf::Plan, Vec<u8>), ExecError> {
    let st = h.stat()?;
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

/// Maps a planned program's areas: from its page cache `map` (pages read
/// when touched) if it has one, else filled from the file now.
fn load_plan(m: &mut MemoryManager, file: &Arc<OpenFile>, path: &str, plan: &elf::Plan) -> Result<(), Errno> {
    let map = crate::fs::file_map(file)?;
    for s in &plan.segments {
        let offset = s.file_off - (s.file_va - s.start);
        let file_end = page_up(s.file_va + s.file_len).ok_or(Errno::ENOMEM)?.min(s.end);
        match &map {
            // The file's pages, then anonymous zero pages (the bss past
            // the page of the last file byte, as Linux maps it).
            Some(map) if s.file_len > 0 => {
                let backing = Backing::File { path: path.into(), offset, map: Some(map.clone()) };
                m.map_fixed(Vma { start: s.start, end: file_end, prot: s.prot, shared: false, backing })?;
                if file_end < s.end {
                    m.map_fixed(Vma { start: file_end, end: s.end, prot: s.prot, shared: false, backing: Backing::Anon })?;
                }
            }
            _ => {
                let backing = Backing::File { path: path.into(), offset, map: None };
                m.map_fixed(Vma { start: s.start, end: s.end, prot: s.prot, shared: false, backing })?;
            }
        }
    }
    for s in &plan.segments {
        if s.file_len == 0 {
            continue;
        }
        if map.is_none() {
            populate_segment(m, &*file.ops, s)?;
            continue;
        }
        // The rest of the last file page is zero when the segment goes on
        // (its bss starts there): that page is the process's own copy.
        let tail = s.file_va + s.file_len;
        let tail_end = page_up(tail).ok_or(Errno::ENOMEM)?.min(s.end);
        if tail % PAGE_SIZE != 0 && tail < tail_end {
            m.private_page(tail)?;
            m.poke(tail, &[0u8; PAGE_SIZE as usize][..(tail_end - tail) as usize])?;
        }
    }
    Ok(())
}

/// An opened and planned interpreter (the dynamic linker).
struct Interp {
    file: Box<dyn FileOps>,
    path: String,
    plan: elf::Plan,
}

/// Opens an executable for reading (by path in the sandbox's namespace):
/// a regular file the caller may execute (Linux: do_open_execat; reading
/// it is not required, the kernel reads it on the caller's behalf).
fn open_exec(path: &str, cwd: &Location, creds: &Creds) -> Result<(Location, Box<dyn FileOps>), Errno> {
    let loc = walk::resolve(cwd, path, true, creds)?;
    if loc.inode.kind() != crate::vfs::Kind::File {
        return Err(Errno::EACCES);
    }
    let st = loc.inode.stat()?;
    if st.st_mode & S_IFMT != S_IFREG {
        return Err(Errno::EACCES);
    }
    perm::check(&st, creds, perm::MAY_EXEC)?;
    let f = loc.inode.open(0)?;
    Ok((loc, f))
}

fn open_interp(h: &dyn FileOps, plan: &elf::Plan, head: &[u8], cwd: &Location, creds: &Creds) -> Result<Option<Interp>, ExecError> {
    let Some((off, len)) = plan.interp else { return Ok(None) };
    let bytes = match head.get(off as usize..(off + len) as usize) {
        Some(b) => b.to_vec(),
        None => read_exact(h, off, len as usize)?,
    };
    let path = elf::interp_path(&bytes).map_err(ExecError::Elf)?;
    let (_, file) = open_exec(&path, cwd, creds).map_err(|e| ExecError::Interp(path.clone(), e))?;
    let (ip, _) = read_plan(file.as_ref())?;
    let mut it = Interp { file, path, plan: elf::Plan { entry: 0, bias: 0, segments: Vec::new(), phdr: 0, phnum: 0, end: 0, interp: None, lo: 0 } };
    if ip.interp.is_some() || ip.bias == 0 {
        return Err(ExecError::Elf(ElfError::BadInterpreterKind));
    }
    it.plan = ip;
    Ok(Some(it))
}

/// `path` is the name exec was given (AT_EXECFN); `real` the resolved one
/// (/proc/self/exe, the mappings' names).
#[allow(clippy::too_many_arguments)]
fn exec_handle(t: &mut Task, h: Box<dyn FileOps>, path: &str, real: &str, argv: &[String], envp: &[String], hwcap: u64, minsigstksz: u64) -> Result<(), ExecError> {
    // Held by the mappings (as Linux's vm_file) while they read from it.
    let file = OpenFile::new(h, 0);
    let h: &dyn FileOps = &*file.ops;
    let cwd = t.fs.lock().cwd.clone();
    let (plan, head) = read_plan(h)?;
    let interp = open_interp(h, &plan, &head, &cwd, &t.creds)?;
    // The program's set-id bits decide the new identity (a script's
    // interpreter's bits, as Linux: the script's own are ignored).
    let st = h.stat()?;
    let creds = t.creds.for_exec(st.st_mode, (st.st_uid, st.st_gid), t.no_new_privs);

    // Build the new address space completely; the old one stays intact
    // until it is ready, so a failure returns an error to the caller.
    let template = PageTable::adopt(abi::layout::BOOT_PML4_GPA);
    let mut m = MemoryManager::new(PageTable::new_from(&template)?);
    load_plan(&mut m, &file, real, &plan)?;
    m.set_brk_start(page_up(plan.end).ok_or(ExecError::NoMem)?);
    m.map_fixed(Vma { start: STACK_TOP - STACK_SIZE, end: STACK_TOP, prot: PROT_READ | PROT_WRITE, shared: false, backing: Backing::Stack })?;
    let (entry, base) = match interp {
        Some(mut it) => {
            let span = it.plan.span();
            let at = m.find_free(span).ok_or(ExecError::NoMem)?;
            it.plan.rebase(at.wrapping_sub(it.plan.lo));
            load_plan(&mut m, &OpenFile::new(it.file, 0), &it.path, &it.plan)?;
            (it.plan.entry, it.plan.bias)
        }
        None => (plan.entry, 0),
    };
    let vdso = super::vdso::map(&mut m)?;

    let mut random = [0u8; 16];
    super::random::fill(&mut random);
    let mut aux = Vec::with_capacity(17);
    // First, as Linux's ARCH_DLINFO puts it.
    if let Some(at) = vdso {
        aux.push((AT_SYSINFO_EHDR, at));
    }
    aux.extend_from_slice(&[
        (AT_HWCAP, hwcap),
        (AT_PAGESZ, PAGE_SIZE),
        (AT_CLKTCK, 100),
        (AT_PHDR, plan.phdr),
        (AT_PHENT, 56),
        (AT_PHNUM, plan.phnum),
        (AT_BASE, base),
        (AT_FLAGS, 0),
        (AT_ENTRY, plan.entry),
        (AT_UID, u64::from(creds.uid)),
        (AT_EUID, u64::from(creds.euid)),
        (AT_GID, u64::from(creds.gid)),
        (AT_EGID, u64::from(creds.egid)),
        (AT_SECURE, u64::from(creds.secure_exec())),
        (AT_HWCAP2, 2), // HWCAP2_FSGSBASE: user-mode FSGSBASE is enabled
        (AT_MINSIGSTKSZ, minsigstksz),
    ]);
    let argv_b: Vec<&[u8]> = argv.iter().map(|s| s.as_bytes()).collect();
    let envp_b: Vec<&[u8]> = envp.iter().map(|s| s.as_bytes()).collect();
    let img = stack::build(STACK_TOP, &argv_b, &envp_b, path.as_bytes(), random, &aux)?;
    m.copy_out(img.sp, &img.bytes)?;

    // Commit: the old image's robust and PI futexes are released as at
    // exit (Linux: futex_exec_release) and its robust list forgotten, as
    // its addresses mean nothing in the new image. Then switch to the new
    // address space and let the old one go.
    crate::syscalls::futex::exit_futexes(t);
    t.robust_list = (0, 0);
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
    // POSIX timers do not survive exec (Linux: exit_itimers in begin_new_exec).
    t.proc.posix_timers.lock().clear();
    super::exit::release_vfork(t);
    t.regs = super::task::UserRegs::new_user(entry, img.sp);
    t.fpu.reset();
    t.fs_base = 0;
    t.exe = real.into();
    t.comm = comm_of(path);
    if creds != *t.creds {
        t.creds = Arc::new(creds);
    }
    let proc = t.proc.clone();
    proc.update_view(t, Some(argv), Some(envp));
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
fn populate_segment(m: &mut MemoryManager, h: &dyn FileOps, s: &elf::Segment) -> Result<(), Errno> {
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
