//! `rvisor do`: run one command in a fresh sandbox, like `runsc do`. The
//! host's root (or `--root DIR`) is the sandbox's root under an in-memory
//! overlay, so writes stay in the sandbox; `--volume` shows host trees
//! written through. The caller's stdio is the program's, and the exit
//! status is the program's (128+N if a signal N ended it).
//!
//! Run as root, host files are served by a gofer process (`rvisor gofer`)
//! confined to the root and the volumes; otherwise (no right to make a
//! mount namespace) the VMM reads the host's root itself, read-only, and
//! `--root`/`--volume` are refused.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use platform_kvm::{Sandbox, SandboxConfig};

/// Exit status when rvisor itself fails before the program runs.
const EXIT_RUNTIME: i32 = 125;
/// Guest memory of a `do` sandbox (touched lazily; unused memory costs nothing).
const DEFAULT_MEMORY: u64 = 8 << 30;

#[derive(clap::Args)]
pub struct DoArgs {
    /// Working directory of the command (default: the current one).
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE); may be repeated.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Host directory to use as the sandbox's root (default: the host's /).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Show host directory SRC at DST (default: the same path) in the
    /// sandbox, written through unless `:ro`; may be repeated.
    #[arg(long = "volume", short = 'v', value_name = "SRC[:DST][:ro]")]
    volumes: Vec<String>,
    /// Guest memory in MiB.
    #[arg(long = "memory-mib", default_value_t = DEFAULT_MEMORY >> 20)]
    memory_mib: u64,
    /// vCPUs of the sandbox (default: one per host CPU, at most 16).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(abi::layout::MAX_VCPUS)))]
    cpus: Option<u32>,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true)]
    command: Vec<String>,
}

/// Finds `cmd` like a shell: a path if it has a slash, else on `PATH`.
/// `cwd`, `PATH` and the answer are the sandbox's paths; `host` says where
/// the host sees one (under the root, or in a volume).
fn resolve(cmd: &str, cwd: &Path, path_var: Option<&str>, host: impl Fn(&Path) -> PathBuf) -> Option<PathBuf> {
    if cmd.contains('/') {
        let p = cwd.join(cmd);
        return host(&p).exists().then_some(p);
    }
    let path_var = path_var.unwrap_or("/usr/local/bin:/usr/bin:/bin");
    path_var
        .split(':')
        .map(|d| cwd.join(if d.is_empty() { "." } else { d }).join(cmd))
        .find(|p| host(p).is_file())
}

/// One `--volume`.
#[derive(Debug, PartialEq, Eq)]
struct Volume {
    source: PathBuf,
    dest: String,
    readonly: bool,
}

fn parse_volume(v: &str) -> Result<Volume, String> {
    let (spec, readonly) = match v.strip_suffix(":ro") {
        Some(s) => (s, true),
        None => (v.strip_suffix(":rw").unwrap_or(v), false),
    };
    let (src, dest) = match spec.split_once(':') {
        Some((s, d)) => (s, d.to_string()),
        None => (spec, String::new()),
    };
    let source = std::fs::canonicalize(src).map_err(|e| format!("--volume {v}: {src}: {e}"))?;
    if !source.is_dir() {
        return Err(format!("--volume {v}: {src} is not a directory"));
    }
    let dest = if dest.is_empty() { source.to_string_lossy().into_owned() } else { dest };
    if !dest.starts_with('/') || dest.split('/').any(|c| c == ".." || c == ".") || dest.contains('\0') || dest == "/" {
        return Err(format!("--volume {v}: the destination must be an absolute path other than / without . or .."));
    }
    Ok(Volume { source, dest: dest.trim_end_matches('/').to_string(), readonly })
}

/// A sandbox path's file on the host: in the volume mounted over it (the
/// deepest), else under `root` (for finding the command).
fn host_path(root: &Path, volumes: &[Volume], p: &Path) -> PathBuf {
    let inside = volumes
        .iter()
        .filter_map(|v| p.strip_prefix(&v.dest).ok().map(|rest| (v, rest)))
        .max_by_key(|(v, _)| v.dest.len());
    match inside {
        Some((v, rest)) => v.source.join(rest),
        None => host_of(root, p),
    }
}

/// A sandbox path's file on the host, under `root`.
fn host_of(root: &Path, p: &Path) -> PathBuf {
    root.join(p.strip_prefix("/").unwrap_or(p))
}

/// Starts `rvisor gofer` serving `root` and `volumes`; returns the VMM's
/// end of its socket.
fn start_gofer(root: &Path, volumes: &[Volume]) -> std::io::Result<OwnedFd> {
    let mut args: Vec<std::ffi::OsString> = vec!["--root".into(), root.into()];
    for v in volumes {
        let mut a = v.source.clone().into_os_string();
        if v.readonly {
            a.push(":ro");
        }
        args.extend(["--volume".into(), a]);
    }
    // Single-threaded here: the gofer's end, made inheritable, reaches no
    // other child.
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    Ok(crate::gofer_cmd::spawn(&args, &[])?.0)
}

fn dup_stdio() -> std::io::Result<[OwnedFd; 3]> {
    use std::os::fd::AsFd;
    Ok([
        std::io::stdin().as_fd().try_clone_to_owned()?,
        std::io::stdout().as_fd().try_clone_to_owned()?,
        std::io::stderr().as_fd().try_clone_to_owned()?,
    ])
}

/// Runs `rvisor do`; returns the exit status.
pub fn run(args: DoArgs, strace: bool, debug: bool, test_panic: bool, no_network: bool) -> i32 {
    let root = match args.root.as_deref().map(std::fs::canonicalize).unwrap_or_else(|| Ok(PathBuf::from("/"))) {
        Ok(r) if r.is_dir() => r,
        Ok(r) => return fail(&format!("--root {}: not a directory", r.display()), EXIT_RUNTIME),
        Err(e) => return fail(&format!("--root: {e}"), EXIT_RUNTIME),
    };
    let mut volumes = Vec::new();
    for v in &args.volumes {
        match parse_volume(v) {
            Ok(v) => volumes.push(v),
            Err(e) => return fail(&e, EXIT_RUNTIME),
        }
    }
    // Inside another root, the caller's directory means nothing.
    let default_cwd = || if args.root.is_some() { Ok(PathBuf::from("/")) } else { std::env::current_dir() };
    let cwd = match args.cwd.clone().map(Ok).unwrap_or_else(default_cwd) {
        Ok(c) if c.is_absolute() => c,
        Ok(c) => match std::env::current_dir() {
            Ok(here) => here.join(c),
            Err(e) => return fail(&format!("current directory: {e}"), EXIT_RUNTIME),
        },
        Err(e) => return fail(&format!("current directory: {e}"), EXIT_RUNTIME),
    };
    if !host_path(&root, &volumes, &cwd).is_dir() {
        return fail(&format!("--cwd {}: not a directory", cwd.display()), EXIT_RUNTIME);
    }
    let mut env: Vec<String> = std::env::vars_os()
        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
        .collect();
    for kv in &args.env {
        let Some((k, _)) = kv.split_once('=') else {
            return fail(&format!("--env {kv:?}: expected KEY=VALUE"), EXIT_RUNTIME);
        };
        env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k));
        env.push(kv.clone());
    }
    let path_var = env.iter().rev().find_map(|e| e.strip_prefix("PATH="));
    let cmd = &args.command[0];
    let Some(exe) = resolve(cmd, &cwd, path_var, |p| host_path(&root, &volumes, p)) else {
        return fail(&format!("{cmd}: command not found"), 127);
    };
    // A gofer needs a mount namespace of its own: root's privilege.
    let gofer = if nix::unistd::geteuid().is_root() {
        match start_gofer(&root, &volumes) {
            Ok(s) => Some(s),
            Err(e) => return fail(&format!("starting the gofer: {e}"), EXIT_RUNTIME),
        }
    } else if args.root.is_some() || !volumes.is_empty() {
        // Without a gofer the VMM would resolve paths itself, and a
        // symlink swapped in on the host could lead it out of DIR.
        return fail("--root and --volume need root: their files are served by a gofer confined to them", EXIT_RUNTIME);
    } else {
        None
    };
    let m = |kind: &str, dest: &str, source: &str, options: &str| platform_kvm::sandbox::MountSpec {
        kind: kind.into(),
        dest: dest.into(),
        source: source.into(),
        options: options.into(),
    };
    // Without a gofer the root is the host's / (checked above), as in
    // `do_mounts`; with one, paths are the gofer's.
    let mut mounts = SandboxConfig::do_mounts();
    // The sentry's own /sys: the host's would describe the host's CPUs,
    // not the sandbox's vCPUs.
    mounts.push(m("sysfs", "/sys", "", ""));
    let mut writable = Vec::new();
    if gofer.is_some() {
        mounts[0].source = crate::gofer_cmd::ROOT_DIR.into();
    }
    // Volumes come only with a gofer (checked above).
    for (i, v) in volumes.iter().enumerate() {
        let source = crate::gofer_cmd::volume_dir(i);
        if !v.readonly {
            writable.push(source.clone());
        }
        // The host may change a volume while the sandbox runs: the
        // sentry revalidates its lookups (the root keeps its caches).
        mounts.push(m("host", &v.dest, &source, if v.readonly { "ro,revalidate" } else { "revalidate" }));
    }
    let stdio = match dup_stdio() {
        Ok(s) => s,
        Err(e) => return fail(&format!("stdio: {e}"), EXIT_RUNTIME),
    };
    let mut flags = 0;
    if strace {
        flags |= abi::boot::flags::STRACE;
    }
    if debug {
        flags |= abi::boot::flags::DEBUG;
    }
    if test_panic {
        flags |= abi::boot::flags::TEST_PANIC;
    }
    let host_seccomp = match crate::host_seccomp::vmm(gofer.is_none(), false) {
        Ok(f) => Some(f),
        Err(e) => return fail(&format!("{e:#}"), EXIT_RUNTIME),
    };
    let cfg = SandboxConfig {
        image: crate::SENTRY_IMAGE,
        mem_size: args.memory_mib.saturating_mul(1 << 20),
        exe: exe.to_string_lossy().into_owned(),
        cwd: cwd.to_string_lossy().into_owned(),
        argv: args.command.clone(),
        envp: env,
        stdio,
        flags,
        uid: nix_uid(),
        gid: nix_gid(),
        groups: vec![],
        umask: 0o022,
        hostname: None,
        domainname: String::new(),
        mounts,
        allow_writes: false,
        extra: vec![],
        net_raw: false,
        gofer,
        writable,
        num_vcpus: args.cpus.unwrap_or(0),
        gofer_id_maps: None,
        host_seccomp,
    };
    if no_network {
        if let Err(e) = crate::netns::isolate() {
            return fail(&format!("--network none: {e:#}"), EXIT_RUNTIME);
        }
    }
    // On a terminal, ^C, ^\, ^Z, resizes and hangup are the sandbox's:
    // its foreground job gets them (an interactive shell survives ^C).
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdin());
    if terminal {
        if let Err(e) = crate::oci::console::block_terminal_signals() {
            return fail(&format!("{e:#}"), EXIT_RUNTIME);
        }
    }
    let sandbox = match Sandbox::new(cfg) {
        Ok(s) => s,
        Err(e) => return fail(&error_chain(&e), EXIT_RUNTIME),
    };
    if terminal {
        let ctl = sandbox.controller();
        std::thread::spawn(move || crate::oci::console::forward_signals(&ctl, true));
    }
    match sandbox.run() {
        Ok(status) => status,
        Err(e) => fail(&error_chain(&e), EXIT_RUNTIME),
    }
}

fn nix_uid() -> u32 {
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap_or(0)
}

fn nix_gid() -> u32 {
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::gid(&m)).unwrap_or(0)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

fn fail(msg: &str, code: i32) -> i32 {
    eprintln!("rvisor: {msg}");
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_a_shell() {
        let root = Path::new("/");
        let host = |p: &Path| p.to_path_buf();
        assert_eq!(resolve("sh", root, Some("/nonexistent:/bin"), host), Some(PathBuf::from("/bin/sh")));
        assert_eq!(resolve("definitely-not-a-command-xyz", root, None, host), None);
        assert_eq!(resolve("/bin/sh", root, None, host), Some(PathBuf::from("/bin/sh")));
        assert_eq!(resolve("./bin/sh", root, None, host), Some(PathBuf::from("/./bin/sh")));
    }

    #[test]
    fn commands_are_found_in_volumes() {
        // A root with no /bin/sh, a volume at /tools holding one: the
        // command is found at its sandbox path, through the volume.
        let root = tempfile::tempdir().unwrap();
        let vol = tempfile::tempdir().unwrap();
        std::fs::write(vol.path().join("tool"), "").unwrap();
        std::fs::create_dir(vol.path().join("sub")).unwrap();
        let volumes = [Volume { source: vol.path().to_path_buf(), dest: "/tools".into(), readonly: true }];
        let host = |p: &Path| host_path(root.path(), &volumes, p);
        assert_eq!(resolve("/tools/tool", Path::new("/"), None, host), Some(PathBuf::from("/tools/tool")));
        assert_eq!(resolve("tool", Path::new("/"), Some("/bin:/tools"), host), Some(PathBuf::from("/tools/tool")));
        assert_eq!(resolve("../tool", Path::new("/tools/sub"), None, host), Some(PathBuf::from("/tools/sub/../tool")));
        assert_eq!(resolve("/bin/sh", Path::new("/"), None, host), None);
        assert_eq!(host_path(root.path(), &volumes, Path::new("/toolsx/a")), root.path().join("toolsx/a"));
    }
}
