//! `exec`: run another process in a running container. A small host
//! proxy asks the VMM for the process over the control socket (passing
//! its stdio, or a new pty's slave with `--console-socket`), waits for it
//! and exits with its status; with `--detach`, `--pid-file` gets the
//! proxy's pid, so the client (the shim, conmon) reaps it like runc's
//! exec'd process.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::Process;

use super::state::Dir;
use super::wire::{self, Reply, Request};
use super::Globals;

#[derive(clap::Args)]
pub struct ExecArgs {
    /// process.json with the process to run.
    #[arg(short, long)]
    process: Option<PathBuf>,
    /// Return once the process started.
    #[arg(short, long)]
    detach: bool,
    #[arg(long)]
    pid_file: Option<PathBuf>,
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Allocate a pseudo-terminal (needs --console-socket).
    #[arg(short, long)]
    tty: bool,
    #[arg(long)]
    cwd: Option<String>,
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// UID[:GID].
    #[arg(short, long)]
    user: Option<String>,
    /// Add a capability to the process's bounding, effective and
    /// permitted sets (and ambient, if it has inheritable ones), as runc.
    #[arg(short, long)]
    cap: Vec<String>,
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    #[arg(long)]
    no_new_privs: bool,
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    #[arg(long)]
    process_label: Option<String>,
    #[arg(long)]
    apparmor: Option<String>,
    #[arg(long)]
    ignore_paused: bool,
    #[arg(long)]
    pidfd_socket: Option<PathBuf>,
    /// Container id.
    id: String,
    /// Command and arguments (without --process).
    #[arg(trailing_var_arg = true)]
    command: Vec<String>,
}

/// What the proxy asks for, saved for a detached proxy to pick up.
#[derive(serde::Serialize, serde::Deserialize)]
struct Job {
    request: Request,
    terminal: bool,
    console_socket: Option<PathBuf>,
    console_size: Option<(u16, u16)>,
}

fn build_job(g: &Globals, a: &ExecArgs, dir: &Dir) -> Result<Job> {
    let st = dir.load()?;
    let spec = super::load_spec(Path::new(&st.bundle)).ok();
    let base = spec.as_ref().and_then(|s| s.process().clone());
    let _ = g;
    let p: Process = match &a.process {
        Some(f) => {
            let data = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
            serde_json::from_slice(&data).with_context(|| format!("{}: invalid process", f.display()))?
        }
        None => {
            if a.command.is_empty() {
                bail!("exec needs a command (or --process)");
            }
            let mut p = base.clone().unwrap_or_default();
            p.set_args(Some(a.command.clone()));
            p.set_terminal(Some(a.tty));
            p
        }
    };
    let args = p.args().clone().unwrap_or_default();
    if args.is_empty() {
        bail!("process.args must not be empty");
    }
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &a.env {
        let k = kv.split('=').next().unwrap_or("");
        env.retain(|e| e.split('=').next() != Some(k));
        env.push(kv.clone());
    }
    let cwd = a.cwd.clone().unwrap_or_else(|| p.cwd().to_string_lossy().into_owned());
    let (mut uid, mut gid) = (p.user().uid(), p.user().gid());
    if let Some(u) = &a.user {
        let (us, gs) = u.split_once(':').map(|(x, y)| (x, Some(y))).unwrap_or((u, None));
        uid = us.parse().map_err(|_| anyhow!("--user {u}: numeric uid[:gid] expected"))?;
        if let Some(gs) = gs {
            gid = gs.parse().map_err(|_| anyhow!("--user {u}: numeric uid[:gid] expected"))?;
        }
    }
    let passwd = std::fs::read_to_string(format!("/proc/{}/root/etc/passwd", st.pid)).ok();
    super::ensure_home(&mut env, uid, passwd.as_deref());
    let mut groups = p.user().additional_gids().clone().unwrap_or_default();
    groups.extend(&a.additional_gids);
    let mut settings = super::boot::process_settings(&with_caps(&p, &a.cap)?);
    if a.no_new_privs || p.no_new_privileges().unwrap_or(false) {
        settings.push("no_new_privs=1".into());
    }
    let terminal = a.tty || p.terminal().unwrap_or(false);
    if terminal && a.console_socket.is_none() && a.detach {
        bail!("cannot allocate tty if runc will detach without setting console socket");
    }
    Ok(Job {
        request: Request::Exec { args, env, cwd: if cwd.is_empty() { "/".into() } else { cwd }, uid, gid, groups, settings },
        terminal: terminal && a.console_socket.is_some(),
        console_socket: a.console_socket.clone(),
        console_size: p.console_size().as_ref().map(|b| (b.height() as u16, b.width() as u16)),
    })
}

/// `--cap` as runc applies it: each capability joins the bounding,
/// effective and permitted sets, and the ambient set when the process
/// has an inheritable set (ambient needs inheritable).
fn with_caps(p: &Process, caps: &[String]) -> Result<Process> {
    use oci_spec::runtime::Capability;
    if caps.is_empty() {
        return Ok(p.clone());
    }
    let mut c = p.capabilities().clone().unwrap_or_default();
    for name in caps {
        let cap: Capability = serde_json::from_value(serde_json::Value::String(name.clone()))
            .map_err(|_| anyhow!("unknown capability {name:?}"))?;
        let add = |set: &Option<oci_spec::runtime::Capabilities>| {
            let mut s = set.clone().unwrap_or_default();
            s.insert(cap);
            Some(s)
        };
        c.set_bounding(add(c.bounding()));
        c.set_effective(add(c.effective()));
        c.set_permitted(add(c.permitted()));
        if c.inheritable().is_some() {
            c.set_ambient(add(c.ambient()));
        }
    }
    let mut p = p.clone();
    p.set_capabilities(Some(c));
    Ok(p)
}

/// `exec`; returns the exit status (0 for --detach once started).
pub fn exec(g: &Globals, a: &ExecArgs) -> Result<i32> {
    let dir = Dir::new(&g.root, &a.id)?;
    let st = dir.load()?;
    if !st.alive() {
        bail!("cannot exec in a stopped container");
    }
    if st.current_status() == "paused" && !a.ignore_paused {
        bail!("cannot exec in a paused container (use --ignore-paused)");
    }
    let job = build_job(g, a, &dir)?;
    if !a.detach {
        let status = proxy(&dir, job, None)?;
        return Ok(status);
    }
    // Detached: a proxy process holds the connection for the process's
    // lifetime; we return once it has started.
    let job_file = dir.path.join(format!("exec-{}-{}.json", std::process::id(), nanos()));
    std::fs::write(&job_file, serde_json::to_vec(&job)?)?;
    let terminal = job.terminal;
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    nix::fcntl::fcntl(wr.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()))?;
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.args(&g.passthrough).arg("exec-proxy").arg("--state-dir").arg(&dir.path).arg("--job").arg(&job_file);
    cmd.arg("--sync-fd").arg(wr.as_raw_fd().to_string());
    if terminal {
        // As in `create`: the terminal is the process's stdio, and the
        // caller may wait for our own stdio to close.
        cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    }
    let child = cmd.spawn().context("starting the exec proxy")?;
    drop(wr);
    let mut msg = String::new();
    std::fs::File::from(rd).read_to_string(&mut msg)?;
    let _ = std::fs::remove_file(&job_file);
    if msg != "ok" {
        bail!("{}", msg.strip_prefix("error: ").unwrap_or("the exec proxy failed"));
    }
    if let Some(p) = &a.pid_file {
        super::write_pid_file(&super::absolute(p)?, child.id() as i32)?;
    }
    std::mem::forget(child);
    Ok(0)
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

#[derive(clap::Args)]
pub struct ProxyArgs {
    #[arg(long)]
    state_dir: PathBuf,
    #[arg(long)]
    job: PathBuf,
    #[arg(long)]
    sync_fd: i32,
}

/// `rvisor exec-proxy` (internal): the detached exec's host process.
pub fn proxy_main(a: &ProxyArgs) -> i32 {
    // SAFETY: `exec` passed us the write end of its pipe under this number.
    #[allow(unsafe_code)]
    let sync = unsafe { std::fs::File::from_raw_fd(a.sync_fd) };
    let job = std::fs::read(&a.job).ok().and_then(|d| serde_json::from_slice::<Job>(&d).ok());
    let Some(job) = job else {
        let _ = (&sync).write_all(b"error: exec request unreadable");
        return 125;
    };
    let dir = Dir { path: a.state_dir.clone() };
    match proxy(&dir, job, Some(sync)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rvisor: exec: {e:#}");
            125
        }
    }
}

/// Asks the VMM for the process and waits for it; returns its status as
/// a shell reports it (128+N when killed by signal N).
fn proxy(dir: &Dir, job: Job, mut sync: Option<std::fs::File>) -> Result<i32> {
    let mut report = |msg: &str| {
        if let Some(mut f) = sync.take() {
            let _ = f.write_all(msg.as_bytes());
        }
    };
    let stdio: [OwnedFd; 3] = if job.terminal {
        let sock = job.console_socket.as_ref().context("--tty needs --console-socket")?;
        match super::console::make_console(sock, job.console_size) {
            Ok(s) => {
                // Like the container's console: our own session, the pty
                // as its terminal, its signals passed on (^C in `exec -it`).
                let _ = nix::unistd::setsid();
                super::console::take_terminal(&s[0])?;
                s
            }
            Err(e) => {
                report(&format!("error: {e:#}"));
                return Err(e);
            }
        }
    } else {
        [
            std::io::stdin().as_fd().try_clone_to_owned()?,
            std::io::stdout().as_fd().try_clone_to_owned()?,
            std::io::stderr().as_fd().try_clone_to_owned()?,
        ]
    };
    let mut conn = match wire::connect(&dir.socket()) {
        Ok(c) => c,
        Err(e) => {
            report(&format!("error: {e:#}"));
            return Err(e);
        }
    };
    let raw: Vec<i32> = stdio.iter().map(|f| f.as_raw_fd()).collect();
    wire::send(&conn, &job.request, &raw)?;
    drop(stdio);
    let mut forward = super::console::block_forwarded(job.terminal)?;
    match wire::recv::<Reply>(&mut conn)? {
        Some((Reply::Started { pid }, _)) => {
            report("ok");
            // Signals the client sends us (the shim kills the exec by our
            // pid) or the terminal sends go to the process.
            let (sock, terminal) = (dir.socket(), job.terminal);
            if let Some(set) = forward.take() {
                std::thread::spawn(move || super::console::forward_to(&sock, set, pid, terminal));
            }
        }
        Some((Reply::Error { msg }, _)) => {
            report(&format!("error: {msg}"));
            bail!("{msg}");
        }
        other => {
            report("error: the sandbox did not start the process");
            bail!("unexpected answer {other:?}");
        }
    }
    match wire::recv::<Reply>(&mut conn)? {
        Some((Reply::Exited { status }, _)) => Ok(shell_status(status)),
        _ => Ok(137),
    }
}

/// A wait status as a shell's `$?`.
pub fn shell_status(ws: u32) -> i32 {
    if ws & 0x7f == 0 {
        ((ws >> 8) & 0xff) as i32
    } else {
        128 + (ws & 0x7f) as i32
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn statuses() {
        assert_eq!(super::shell_status(5 << 8), 5);
        assert_eq!(super::shell_status(9), 137);
        assert_eq!(super::shell_status(0), 0);
    }
}
