//! `rvisor do`: run one command in a fresh sandbox, like `runsc do`. The
//! host's root is the sandbox's root (read-only for now), the caller's
//! stdio is the program's, and the exit status is the program's (128+N if
//! a signal N ended it).

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
    /// Guest memory in MiB.
    #[arg(long = "memory-mib", default_value_t = DEFAULT_MEMORY >> 20)]
    memory_mib: u64,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true)]
    command: Vec<String>,
}

/// Finds `cmd` like a shell: a path if it has a slash, else on `PATH`.
fn resolve(cmd: &str, cwd: &Path, path_var: Option<&str>) -> Option<PathBuf> {
    if cmd.contains('/') {
        let p = cwd.join(cmd);
        return p.exists().then_some(p);
    }
    let path_var = path_var.unwrap_or("/usr/local/bin:/usr/bin:/bin");
    path_var
        .split(':')
        .map(|d| cwd.join(if d.is_empty() { "." } else { d }).join(cmd))
        .find(|p| p.is_file())
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
    let cwd = match args.cwd.clone().map(Ok).unwrap_or_else(std::env::current_dir) {
        Ok(c) if c.is_absolute() => c,
        Ok(c) => match std::env::current_dir() {
            Ok(here) => here.join(c),
            Err(e) => return fail(&format!("current directory: {e}"), EXIT_RUNTIME),
        },
        Err(e) => return fail(&format!("current directory: {e}"), EXIT_RUNTIME),
    };
    if !cwd.is_dir() {
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
    let Some(exe) = resolve(cmd, &cwd, path_var) else {
        return fail(&format!("{cmd}: command not found"), 127);
    };
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
        mounts: SandboxConfig::do_mounts(),
        allow_writes: false,
        extra: vec![],
        net_raw: false,
    };
    if no_network {
        if let Err(e) = crate::netns::isolate() {
            return fail(&format!("--network none: {e:#}"), EXIT_RUNTIME);
        }
    }
    match Sandbox::new(cfg).and_then(Sandbox::run) {
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
        assert_eq!(resolve("sh", root, Some("/nonexistent:/bin")), Some(PathBuf::from("/bin/sh")));
        assert_eq!(resolve("definitely-not-a-command-xyz", root, None), None);
        assert_eq!(resolve("/bin/sh", root, None), Some(PathBuf::from("/bin/sh")));
        assert_eq!(resolve("./bin/sh", root, None), Some(PathBuf::from("/./bin/sh")));
    }
}
