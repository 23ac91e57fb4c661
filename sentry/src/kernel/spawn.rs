//! Processes made from outside the sandbox: the init program at boot and
//! the processes of OCI `exec`. Both start with no parent in the sandbox
//! (ppid 0), a fresh address space, stdio on host handles, and the
//! program looked up on `PATH` like execvp.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::Mutex;

use super::exec::ExecError;
use super::task::{Creds, FpuArea, Task, UserRegs};
use crate::errno::Errno;
use crate::fs::host::HostFile;
use crate::fs::{FdTable, OpenFile};
use crate::vfs::{self, Kind, Location};

/// What to run.
pub struct ProcSpec {
    /// The program: a path, or a name looked up on the `PATH` of `envp`.
    pub exe: String,
    pub argv: Vec<String>,
    pub envp: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub umask: u32,
    /// Host handles for fds 0, 1, 2.
    pub stdio: [u64; 3],
    pub settings: Settings,
}

/// The five capability sets as runc leaves them before it execs the
/// container's program (the exec then applies Linux's rules to them).
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapSets {
    pub effective: u64,
    pub permitted: u64,
    pub bounding: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// Process settings from the container spec.
#[derive(Default, Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The spec's capability sets; None: Linux's default for the uid
    /// (all for root).
    pub caps: Option<CapSets>,
    /// (resource, soft, hard).
    pub rlimits: Vec<(usize, u64, u64)>,
    /// The container's pids limit (boot only).
    pub pids_max: Option<u32>,
    /// The container's seccomp profile, as `seccomp::parse` reads it.
    pub seccomp: Option<String>,
    /// process.noNewPrivileges.
    pub no_new_privs: bool,
    /// `linux.sysctl` entries (boot only).
    pub sysctls: Vec<(String, String)>,
    /// The user namespace's (uid, gid) maps, "c h n" triples joined by
    /// commas (boot only).
    pub id_maps: Option<(String, String)>,
}

impl Settings {
    /// From `key=value` strings; unknown or malformed ones are ignored
    /// (the VMM built them; a bad one must not stop the boot).
    pub fn parse(items: &[String]) -> Settings {
        let mut s = Settings::default();
        let (mut eff, mut prm, mut bnd, mut inh, mut amb) = (None, None, None, None, None);
        for it in items {
            let Some((k, v)) = it.split_once('=') else { continue };
            match k {
                "cap_eff" => eff = u64::from_str_radix(v, 16).ok(),
                "cap_prm" => prm = u64::from_str_radix(v, 16).ok(),
                "cap_bnd" => bnd = u64::from_str_radix(v, 16).ok(),
                "cap_inh" => inh = u64::from_str_radix(v, 16).ok(),
                "cap_amb" => amb = u64::from_str_radix(v, 16).ok(),
                "pids_max" => s.pids_max = v.parse().ok(),
                "no_new_privs" => s.no_new_privs = v == "1",
                "seccomp" => s.seccomp = Some(v.into()),
                "sysctl" => {
                    if let Some((n, val)) = v.split_once('=') {
                        s.sysctls.push((n.into(), val.into()));
                    }
                }
                "id_maps" => {
                    if let Some((u, g)) = v.split_once(';') {
                        s.id_maps = Some((u.into(), g.into()));
                    }
                }
                "rlimit" => {
                    let f: Vec<u64> = v.split(',').filter_map(|x| x.parse().ok()).collect();
                    if let [r, soft, hard] = f[..] {
                        if r < 16 && soft <= hard {
                            s.rlimits.push((r as usize, soft, hard));
                        }
                    }
                }
                _ => {}
            }
        }
        if let (Some(e), Some(p)) = (eff, prm) {
            // runc's order: the bounding set first, then capset (which
            // cannot raise inheritable bits outside it), then each ambient
            // raise (refused, and skipped, unless permitted and inheritable).
            let b = bnd.unwrap_or(p);
            let i = inh.unwrap_or(0) & b;
            s.caps = Some(CapSets { effective: e & p, permitted: p, bounding: b, inheritable: i, ambient: amb.unwrap_or(0) & p & i });
        }
        s
    }
}

/// Why a process could not be made: the exit status a shell would report
/// (126/127) and a message for the user.
pub struct SpawnError {
    pub status: i32,
    pub msg: String,
}

fn fail(status: i32, msg: String) -> SpawnError {
    SpawnError { status, msg }
}

/// Looks `name` up like execvp: a name with a slash is a path; otherwise
/// each `PATH` directory is tried for an executable regular file.
pub fn find_program(root: &Location, cwd: &Location, name: &str, envp: &[String], creds: &Creds) -> Result<String, SpawnError> {
    if name.is_empty() {
        return Err(fail(127, "empty program name".into()));
    }
    if name.contains('/') {
        return Ok(name.into());
    }
    let path = envp
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut found_dir_or_noexec = false;
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = if dir.ends_with('/') { format!("{dir}{name}") } else { format!("{dir}/{name}") };
        let start = if candidate.starts_with('/') { root } else { cwd };
        if let Ok(loc) = vfs::walk::resolve(start, &candidate, true, creds) {
            if loc.inode.kind() == Kind::File {
                if loc.inode.stat().map(|s| s.st_mode & 0o111 != 0).unwrap_or(false) {
                    return Ok(candidate);
                }
            }
            found_dir_or_noexec = true;
        }
    }
    if found_dir_or_noexec {
        return Err(fail(126, format!("{name}: permission denied")));
    }
    Err(fail(127, format!("{name}: executable file not found in $PATH")))
}

/// Builds a process running `spec` (not yet scheduled).
pub fn create(spec: &ProcSpec) -> Result<Box<Task>, SpawnError> {
    let root = vfs::walk::root().map_err(|_| fail(125, "no root filesystem".into()))?;
    let mut c = Creds::new(spec.uid, spec.gid, spec.groups.clone());
    if let Some(cs) = spec.settings.caps {
        c.cap_effective = cs.effective;
        c.cap_permitted = cs.permitted;
        c.cap_bounding = cs.bounding;
        c.cap_inheritable = cs.inheritable;
        c.cap_ambient = cs.ambient;
    }
    let creds = Arc::new(c);
    let cwd_loc = match vfs::walk::resolve(&root, &spec.cwd, true, &creds) {
        Ok(l) if l.inode.kind() == Kind::Dir => l,
        _ => return Err(fail(125, format!("working directory {}: not found in the sandbox", spec.cwd))),
    };
    let exe = find_program(&root, &cwd_loc, &spec.exe, &spec.envp, &creds)?;
    let fds = FdTable::new();
    let template = crate::mm::pagetable::PageTable::adopt(abi::layout::BOOT_PML4_GPA);
    let pt = crate::mm::pagetable::PageTable::new_from(&template).map_err(|_| fail(125, "out of memory".into()))?;
    let k = super::get();
    let pid = super::process::alloc_id();
    let proc = super::process::Process::new(pid, 0, pid, pid, 0, [super::signal::SigAction::default(); super::signal::NSIG as usize]);
    let shared = super::sched::TaskShared::new(pid, pt.root(), 0);
    super::process::register_task(&shared);
    proc.inner.lock().threads.push(shared.clone());
    let mut task = Box::new(Task {
        regs: UserRegs::default(),
        fpu: FpuArea::new(k.xsave_size),
        fs_base: 0,
        tid: pid,
        shared,
        proc,
        mm: Arc::new(Mutex::new(crate::mm::MemoryManager::new(pt))),
        fds: Arc::new(Mutex::new(fds)),
        fs: Arc::new(Mutex::new(super::task::FsState { cwd: cwd_loc, umask: spec.umask & 0o777 })),
        altstack: super::signal::ALTSTACK_DISABLED,
        restart: false,
        restart_nohand: false,
        restart_nointr: false,
        handler_running: false,
        keep_regs: false,
        saved_mask: None,
        creds,
        clear_child_tid: 0,
        robust_list: (0, 0),
        exit: None,
        comm: super::exec::comm_of(&exe),
        pdeathsig: 0,
        dumpable: true,
        no_new_privs: spec.settings.no_new_privs,
        seccomp: super::seccomp::TaskSeccomp::default(),
        subreaper: false,
        rlimits: crate::syscalls::process::default_rlimits(),
        exe: exe.clone(),
        vfork_parent: None,
    });
    for &(r, soft, hard) in &spec.settings.rlimits {
        task.rlimits[r] = (soft, hard);
        if r == 7 {
            task.fds.lock().set_limit(soft.min(crate::fs::NOFILE_MAX as u64) as usize);
        }
    }
    super::sched::set_cr3(&task.shared, task.mm.lock().page_table().root());
    if let Err(e) = super::exec::exec(&mut task, &exe, &spec.argv, &spec.envp, k.hwcap, k.minsigstksz) {
        // The half-built process must not linger in the pid table.
        task.exit = Some(super::task::ExitReason::Exited(127));
        discard(task);
        let (status, why) = match e {
            ExecError::Io(Errno::ENOENT) => (127, "no such file or directory".into()),
            ExecError::Io(Errno::EACCES) => (126, "permission denied".into()),
            ExecError::Io(Errno::ENOTDIR) => (127, "not a directory".into()),
            ExecError::Io(_) => (126, "cannot read the program".into()),
            ExecError::Elf(ref el) => (126, String::from(el.describe())),
            ExecError::NoMem => (126, "not enough memory to load the program".into()),
            ExecError::Interp(ref p, Errno::ENOENT) => (127, format!("interpreter {p}: no such file or directory")),
            ExecError::Interp(ref p, _) => (126, format!("interpreter {p}: cannot be opened")),
        };
        return Err(fail(status, format!("{exe}: {why}")));
    }
    // Stdio goes in last: on failure the handles stay with the caller,
    // who still reports errors through them.
    {
        let mut fds = task.fds.lock();
        for (i, name) in ["stdin", "stdout", "stderr"].iter().enumerate() {
            let f = OpenFile::new(Box::new(HostFile::stdio(spec.stdio[i], name)), 2);
            if let Some(n) = crate::fs::devpts::number_of(&f.path()) {
                // Started on a terminal: it is the new session's
                // controlling terminal (runc makes it so).
                crate::fs::devpts::note_console_session(pid, n);
            }
            let _ = fds.install_at(i, f, false);
        }
    }
    let proc = task.proc.clone();
    proc.update_view(&task, None, None);
    Ok(task)
}

/// Drops a process that never ran.
fn discard(task: Box<Task>) {
    let pid = task.pid();
    super::process::unregister_task(task.tid);
    super::process::unregister_process(pid);
    drop(task);
}
