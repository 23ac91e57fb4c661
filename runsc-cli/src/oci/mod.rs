//! The OCI runtime commands, as runc and runsc take them: `create`,
//! `start`, `state`, `kill`, `delete`, `run`, `exec`, `ps`, `pause`,
//! `resume`, `list`, `events`, `update`. See ../../docs/architecture.md
//! ("OCI lifecycle") for the processes involved.

pub mod boot;
pub mod cgroup;
pub mod console;
pub mod cpus;
pub mod exec;
pub mod hooks;
pub mod oom;
pub mod seccomp;
pub mod state;
pub mod validate;
pub mod wire;

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::Spec;

use state::{Dir, State};
use wire::{Reply, Request};

/// runc's global options that matter to the commands.
pub struct Globals {
    pub root: PathBuf,
    /// Boot flags for the sentry (strace, debug).
    pub flags: u64,
    /// Arguments to pass on to `rvisor boot` and `exec` helpers.
    pub passthrough: Vec<String>,
    /// `--overlay2 root:memory`: the container's root under a memory
    /// layer (writes stay in the sandbox) instead of written through.
    pub overlay_root: bool,
    /// `--network`: `sandbox` (the spec's namespace), `host` or `none`.
    pub network: String,
}

/// "a: b: c" from an error and its causes.
pub fn chain(e: &dyn std::fmt::Display) -> String {
    e.to_string()
}

/// Loads and checks `config.json`.
pub fn load_spec(bundle: &Path) -> Result<Spec> {
    let p = bundle.join("config.json");
    let data = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
    let mut raw: serde_json::Value = serde_json::from_slice(&data).with_context(|| format!("{}: malformed JSON", p.display()))?;
    let version = raw.get("ociVersion").and_then(|v| v.as_str()).ok_or_else(|| anyhow!("{}: no ociVersion", p.display()))?;
    if !version.starts_with("1.") {
        bail!("{}: unsupported ociVersion {version:?} (1.x supported)", p.display());
    }
    seccomp::check_raw(&mut raw).with_context(|| format!("{}: invalid runtime spec", p.display()))?;
    let spec: Spec = serde_json::from_value(raw).with_context(|| format!("{}: invalid runtime spec", p.display()))?;
    Ok(spec)
}

/// The absolute root filesystem directory of a spec.
pub fn rootfs_of(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    let root = spec.root().as_ref().context("config.json has no root")?;
    let p = if root.path().is_absolute() { root.path().clone() } else { bundle.join(root.path()) };
    if !p.is_dir() {
        bail!("rootfs {} does not exist or is not a directory", p.display());
    }
    Ok(p)
}

/// runc's rule: a process without HOME gets its user's home directory
/// from the container's /etc/passwd ("/" if there is none).
pub fn ensure_home(env: &mut Vec<String>, uid: u32, passwd: Option<&str>) {
    if env.iter().any(|e| e.starts_with("HOME=")) {
        return;
    }
    let home = passwd
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
            })
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".into());
    env.push(format!("HOME={home}"));
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir()?.join(p))
    }
}

#[derive(clap::Args)]
pub struct CreateArgs {
    /// Bundle directory (holds config.json).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// File to write the container's pid (the VMM process) to.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is set.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility (the sandbox never pivots on the host).
    #[arg(long)]
    no_pivot: bool,
    /// Accepted for runc compatibility.
    #[arg(long)]
    no_new_keyring: bool,
    /// Extra fds to pass (accepted; only stdio reaches the sandbox for now).
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// Accepted for runc compatibility.
    #[arg(long)]
    pidfd_socket: Option<PathBuf>,
    /// Run in the background (`run` only).
    #[arg(short, long)]
    detach: bool,
    /// Container id.
    id: String,
}

fn write_pid_file(p: &Path, pid: i32) -> Result<()> {
    let tmp = p.with_extension("rvisor-tmp");
    std::fs::write(&tmp, pid.to_string()).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, p).with_context(|| format!("writing {}", p.display()))?;
    Ok(())
}

/// `create`: start the VMM, wait until init is loaded, record the state.
pub fn create(g: &Globals, a: &CreateArgs) -> Result<()> {
    let dir = Dir::new(&g.root, &a.id)?;
    let bundle = absolute(&a.bundle)?;
    let spec = load_spec(&bundle)?;
    let rootfs = rootfs_of(&spec, &bundle)?;
    let process = spec.process().as_ref().context("config.json has no process")?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("process.args must not be empty");
    }
    if process.terminal().unwrap_or(false) && a.console_socket.is_none() {
        bail!("cannot allocate tty if runc will detach without setting console socket");
    }
    validate::spec(&spec)?;
    dir.create()?;
    let r = create_in(g, a, &dir, &bundle, &rootfs, &spec);
    if r.is_err() {
        let _ = std::fs::remove_dir_all(&dir.path);
    }
    r
}

fn create_in(g: &Globals, a: &CreateArgs, dir: &Dir, bundle: &Path, rootfs: &Path, spec: &Spec) -> Result<()> {
    let _lock = dir.lock()?;
    let cgroups = cgroup::create(spec, &a.id)?;
    std::fs::write(dir.path.join("cgroups.json"), serde_json::to_vec(&cgroups)?)?;
    let r = spawn_vmm(g, a, dir, bundle, rootfs, spec, &cgroups);
    if r.is_err() {
        cgroups.remove();
    }
    r
}

fn spawn_vmm(g: &Globals, a: &CreateArgs, dir: &Dir, bundle: &Path, rootfs: &Path, spec: &Spec, cgroups: &cgroup::Cgroups) -> Result<()> {
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    // The write end must survive exec into `rvisor boot`.
    nix::fcntl::fcntl(wr.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()))?;
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.args(&g.passthrough).arg("boot").arg("--bundle").arg(bundle).arg("--state-dir").arg(&dir.path);
    cmd.arg("--sync-fd").arg(wr.as_raw_fd().to_string());
    if let Some(c) = &a.console_socket {
        cmd.arg("--console-socket").arg(absolute(c)?);
        // The terminal is the container's stdio; our own stdio may be a
        // pipe the caller drains until every writer is gone (the shim
        // does), so the VMM must not keep it.
        cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    }
    cmd.arg(&a.id);
    let mut child = cmd.spawn().context("starting the sandbox")?;
    drop(wr);
    let mut msg = String::new();
    std::fs::File::from(rd).read_to_string(&mut msg).context("waiting for the sandbox")?;
    if msg != "ok" {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
        let why = msg.strip_prefix("error: ").unwrap_or(if msg.is_empty() { "the sandbox exited during start-up" } else { &msg });
        bail!("{why}");
    }
    let pid = child.id() as i32;
    // The VMM joins the container's cgroup before the sandbox runs (it
    // waits for `start`); its memory so far is charged where it was.
    cgroups.join(pid).map_err(|e| {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
        e
    })?;
    let st = State {
        id: a.id.clone(),
        pid,
        pid_start: state::start_time(pid).unwrap_or(0),
        bundle: bundle.to_string_lossy().into_owned(),
        rootfs: rootfs.to_string_lossy().into_owned(),
        status: "created".into(),
        created: state::now_rfc3339(),
        annotations: spec.annotations().clone().unwrap_or_default().into_iter().collect(),
        owner: String::new(),
    };
    dir.save(&st)?;
    let fail = |e: anyhow::Error| {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        e
    };
    if let Some(h) = spec.hooks() {
        hooks::run_all(h.prestart(), &st).map_err(fail)?;
        hooks::run_all(h.create_runtime(), &st).map_err(fail)?;
        hooks::run_all(h.create_container(), &st).map_err(fail)?;
    }
    if let Some(p) = &a.pid_file {
        write_pid_file(&absolute(p)?, pid).map_err(fail)?;
    }
    // The VMM outlives us; whoever reaps orphans (conmon, the shim) gets
    // its exit status.
    std::mem::forget(child);
    Ok(())
}

fn load_alive(g: &Globals, id: &str) -> Result<(Dir, State)> {
    let dir = Dir::new(&g.root, id)?;
    let st = dir.load()?;
    Ok((dir, st))
}

fn expect_ok(r: Reply) -> Result<()> {
    match r {
        Reply::Ok => Ok(()),
        Reply::Error { msg } => bail!("{msg}"),
        other => bail!("unexpected answer from the sandbox: {other:?}"),
    }
}

/// `start`: run the loaded init program.
pub fn start(g: &Globals, id: &str) -> Result<()> {
    let (dir, _) = load_alive(g, id)?;
    let _lock = dir.lock()?;
    let mut st = dir.load()?;
    match st.current_status().as_str() {
        "created" => {}
        "stopped" => bail!("cannot start a container that has stopped"),
        s => bail!("cannot start an already {s} container"),
    }
    expect_ok(wire::call(&dir.socket(), &Request::Start)?)?;
    st.status = "running".into();
    dir.save(&st)?;
    let spec = load_spec(Path::new(&st.bundle)).ok();
    if let Some(h) = spec.as_ref().and_then(|s| s.hooks().clone()) {
        if let Err(e) = hooks::run_all(h.start_container(), &st).and_then(|()| hooks::run_all(h.poststart(), &st)) {
            eprintln!("rvisor: poststart hook: {e:#}");
        }
    }
    Ok(())
}

/// `state`: runc's JSON.
pub fn state(g: &Globals, id: &str) -> Result<()> {
    let (_, st) = load_alive(g, id)?;
    println!("{}", serde_json::to_string_pretty(&st.to_oci())?);
    Ok(())
}

/// Signal number from "9", "KILL" or "SIGKILL".
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        bail!("invalid signal {s:?}");
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let full = format!("SIG{name}");
    full.parse::<nix::sys::signal::Signal>().map(|s| s as i32).map_err(|_| anyhow!("invalid signal {s:?}"))
}

fn kill_vmm(st: &State, sig: i32) -> Result<()> {
    let sig = nix::sys::signal::Signal::try_from(sig).map_err(|_| anyhow!("invalid signal {sig}"))?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(st.pid), sig).context("signalling the sandbox")
}

/// `kill`: signal the init process (or every process with --all).
pub fn kill(g: &Globals, id: &str, signal: &str, all: bool) -> Result<()> {
    let sig = parse_signal(signal)?;
    let (dir, st) = load_alive(g, id)?;
    if !st.alive() {
        bail!("container not running");
    }
    // SIGKILL ends the whole sandbox at once (also when paused), and a
    // container that never started has no init to signal: the VMM takes
    // the signal itself, so its exit status is the signal's, as for runc.
    if sig == libc::SIGKILL || st.current_status() == "created" {
        return kill_vmm(&st, sig);
    }
    expect_ok(wire::call(&dir.socket(), &Request::Signal { signal: sig, all, pid: 0 })?)
}

/// `delete`: remove a stopped container (or any with --force).
pub fn delete(g: &Globals, id: &str, force: bool) -> Result<()> {
    let dir = Dir::new(&g.root, id)?;
    if !dir.path.exists() {
        if force {
            return Ok(());
        }
        bail!("container {id} does not exist");
    }
    let st = match dir.load() {
        Ok(s) => s,
        Err(_) if force => {
            remove_cgroups(&dir);
            std::fs::remove_dir_all(&dir.path)?;
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let status = st.current_status();
    if st.alive() {
        if !force && status != "created" {
            bail!("cannot delete container {id} that is not stopped: {status}");
        }
        let _ = kill_vmm(&st, libc::SIGKILL);
        for _ in 0..500 {
            if !st.alive() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    if let Some(h) = load_spec(Path::new(&st.bundle)).ok().and_then(|s| s.hooks().clone()) {
        let mut stopped = st.clone();
        stopped.status = "stopped".into();
        if let Err(e) = hooks::run_all(h.poststop(), &stopped) {
            eprintln!("rvisor: poststop hook: {e:#}");
        }
    }
    remove_cgroups(&dir);
    std::fs::remove_dir_all(&dir.path).with_context(|| format!("removing {}", dir.path.display()))?;
    Ok(())
}

fn remove_cgroups(dir: &Dir) {
    if let Some(c) = std::fs::read(dir.path.join("cgroups.json")).ok().and_then(|d| serde_json::from_slice::<cgroup::Cgroups>(&d).ok()) {
        c.remove();
    }
}

/// `pause` / `resume`.
pub fn pause(g: &Globals, id: &str, pause: bool) -> Result<()> {
    let (dir, _) = load_alive(g, id)?;
    let _lock = dir.lock()?;
    let mut st = dir.load()?;
    let cur = st.current_status();
    match (pause, cur.as_str()) {
        (true, "running") | (false, "paused") => {}
        (true, s) => bail!("container not running ({s})"),
        (false, s) => bail!("container not paused ({s})"),
    }
    expect_ok(wire::call(&dir.socket(), if pause { &Request::Pause } else { &Request::Resume })?)?;
    st.status = if pause { "paused" } else { "running" }.into();
    dir.save(&st)
}

/// `ps`: the sandbox's processes.
pub fn ps(g: &Globals, id: &str, format: &str) -> Result<()> {
    let (dir, st) = load_alive(g, id)?;
    if !st.alive() {
        if format == "json" {
            println!("[]");
            return Ok(());
        }
        bail!("container not running");
    }
    let procs = match wire::call(&dir.socket(), &Request::Ps)? {
        Reply::Ps { procs } => procs,
        Reply::Error { msg } => bail!("{msg}"),
        other => bail!("unexpected answer from the sandbox: {other:?}"),
    };
    match format {
        "json" => println!("{}", serde_json::to_string(&procs.iter().map(|p| p.pid).collect::<Vec<_>>())?),
        "table" => {
            println!("UID        PID   PPID  STAT  CMD");
            for p in procs {
                let cmd = if p.args.is_empty() { format!("[{}]", p.comm) } else { p.args };
                println!("{:<10} {:<5} {:<5} {:<5} {}", p.uid, p.pid, p.ppid, p.state, cmd);
            }
        }
        f => bail!("invalid format option {f:?}"),
    }
    Ok(())
}

/// `list`.
pub fn list(g: &Globals, format: &str, quiet: bool) -> Result<()> {
    let mut states = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&g.root) {
        for e in rd.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if let Ok(d) = Dir::new(&g.root, &id) {
                if let Ok(s) = d.load() {
                    states.push(s);
                }
            }
        }
    }
    states.sort_by(|a, b| a.id.cmp(&b.id));
    if quiet {
        for s in &states {
            println!("{}", s.id);
        }
        return Ok(());
    }
    match format {
        "json" => {
            let v: Vec<_> = states.iter().map(State::to_oci).collect();
            println!("{}", serde_json::to_string(&v)?);
        }
        "table" => {
            println!("{:<20} {:<8} {:<10} {:<40} {:<31} OWNER", "ID", "PID", "STATUS", "BUNDLE", "CREATED");
            for s in &states {
                let alive = s.alive();
                println!("{:<20} {:<8} {:<10} {:<40} {:<31} root", s.id, if alive { s.pid } else { 0 }, s.current_status(), s.bundle, s.created);
            }
        }
        f => bail!("invalid format option {f:?}"),
    }
    Ok(())
}

fn load_cgroups(dir: &Dir) -> Result<cgroup::Cgroups> {
    let d = std::fs::read(dir.path.join("cgroups.json")).context("the container has no cgroup record")?;
    serde_json::from_slice(&d).context("corrupt cgroups.json")
}

#[derive(clap::Args)]
pub struct UpdateArgs {
    /// JSON file with linux.resources (`-` for stdin).
    #[arg(short, long)]
    resources: Option<PathBuf>,
    /// Memory limit in bytes.
    #[arg(long)]
    memory: Option<i64>,
    /// Memory plus swap limit in bytes.
    #[arg(long)]
    memory_swap: Option<i64>,
    #[arg(long)]
    pids_limit: Option<i64>,
    #[arg(long)]
    cpu_quota: Option<i64>,
    #[arg(long)]
    cpu_period: Option<u64>,
    #[arg(long)]
    cpu_share: Option<u64>,
    /// Container id.
    id: String,
}

/// `update`: new resource limits for a running container.
pub fn update(g: &Globals, a: &UpdateArgs) -> Result<()> {
    let (dir, st) = load_alive(g, &a.id)?;
    if !st.alive() {
        bail!("container not running");
    }
    let res: oci_spec::runtime::LinuxResources = match &a.resources {
        Some(p) => {
            let data = if p.as_os_str() == "-" {
                let mut v = Vec::new();
                std::io::stdin().read_to_end(&mut v)?;
                v
            } else {
                std::fs::read(p).with_context(|| format!("reading {}", p.display()))?
            };
            serde_json::from_slice(&data).context("invalid resources JSON")?
        }
        None => {
            let mut v = serde_json::json!({});
            if a.memory.is_some() || a.memory_swap.is_some() {
                v["memory"] = serde_json::json!({"limit": a.memory, "swap": a.memory_swap});
            }
            if let Some(p) = a.pids_limit {
                v["pids"] = serde_json::json!({"limit": p});
            }
            if a.cpu_quota.is_some() || a.cpu_period.is_some() || a.cpu_share.is_some() {
                v["cpu"] = serde_json::json!({"quota": a.cpu_quota, "period": a.cpu_period, "shares": a.cpu_share});
            }
            serde_json::from_value(v)?
        }
    };
    load_cgroups(&dir)?.apply(&res)?;
    let pids = res.pids().as_ref().map(|p| p.limit().max(0) as u64);
    let settings = cgroup::sentry_settings(&res);
    if pids.is_some() || !settings.is_empty() {
        expect_ok(wire::call(&dir.socket(), &Request::SetLimits { pids, settings })?)?;
    }
    Ok(())
}

/// "5s", "500ms", "1m" or plain seconds.
fn parse_interval(s: &str) -> Result<std::time::Duration> {
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit() && c != '.').map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num.parse().map_err(|_| anyhow!("invalid interval {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => bail!("invalid interval {s:?}"),
    };
    if !(secs > 0.0 && secs < 1e6) {
        bail!("invalid interval {s:?}");
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// `events`: stats of a container as runc's JSON lines; once with
/// --stats, else every interval until it stops.
pub fn events(g: &Globals, id: &str, stats: bool, interval: &str) -> Result<()> {
    let every = parse_interval(interval)?;
    let (dir, st) = load_alive(g, id)?;
    if !st.alive() {
        bail!("container not running");
    }
    let cg = load_cgroups(&dir)?;
    loop {
        let ev = serde_json::json!({"type": "stats", "id": id, "data": cg.stats()});
        println!("{ev}");
        if stats || !st.alive() {
            return Ok(());
        }
        std::thread::sleep(every);
    }
}

/// `run`: create + start; in the foreground, wait and return the status.
pub fn run(g: &Globals, a: &CreateArgs) -> Result<i32> {
    create(g, a)?;
    start(g, &a.id)?;
    if a.detach {
        return Ok(0);
    }
    let (dir, st) = load_alive(g, &a.id)?;
    while st.alive() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // We are the VMM's parent here: its status is ours to collect.
    let status = match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(st.pid), None) {
        Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => c,
        Ok(nix::sys::wait::WaitStatus::Signaled(_, s, _)) => 128 + s as i32,
        _ => 0,
    };
    remove_cgroups(&dir);
    let _ = std::fs::remove_dir_all(&dir.path);
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_from_passwd() {
        let pw = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\nbad line\n";
        let mut env = vec!["A=b".to_string()];
        ensure_home(&mut env, 1000, Some(pw));
        assert_eq!(env.last().unwrap(), "HOME=/home/user");
        let mut env = vec![];
        ensure_home(&mut env, 42, Some(pw));
        assert_eq!(env, ["HOME=/"]);
        let mut env = vec!["HOME=/x".to_string()];
        ensure_home(&mut env, 0, None);
        assert_eq!(env, ["HOME=/x"]);
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5s").unwrap(), std::time::Duration::from_secs(5));
        assert_eq!(parse_interval("250ms").unwrap(), std::time::Duration::from_millis(250));
        assert_eq!(parse_interval("2").unwrap(), std::time::Duration::from_secs(2));
        for bad in ["", "0s", "x", "5h", "-1s"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("usr1").unwrap(), 10);
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("65").is_err());
    }
}
