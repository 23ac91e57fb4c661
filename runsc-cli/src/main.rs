//! `rvisor`: the command line. `rvisor do` (run one command in a
//! sandbox), the OCI runtime commands (runc's set, see `oci`),
//! `rvisor help syscalls` and `--version`.
#![deny(unsafe_code)]

mod do_cmd;
mod features;
mod gofer_cmd;
mod host_seccomp;
mod netns;
mod oci;
mod spec_cmd;

use clap::{Parser, Subcommand};

/// The sentry image, built by build.rs.
pub static SENTRY_IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sentry.elf"));

/// OCI runtime spec version this runtime implements.
const OCI_SPEC_VERSION: &str = "1.2.0";

#[derive(Parser)]
#[command(name = "rvisor", disable_help_subcommand = true, disable_version_flag = true)]
#[command(about = "rvisor: an application-kernel sandbox for Linux programs (KVM, no guest Linux)")]
struct Cli {
    /// Print the version.
    #[arg(short = 'v', long = "version", global = true)]
    version: bool,
    /// Log every syscall the sandboxed program makes to stderr.
    #[arg(long, global = true)]
    strace: bool,
    /// Verbose logging.
    #[arg(long, global = true)]
    debug: bool,
    /// Make the sentry panic right after boot (tests the panic path).
    #[arg(long, global = true, hide = true)]
    debug_sentry_panic: bool,
    /// Directory for container state (runc's --root).
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<std::path::PathBuf>,
    /// Log file for errors and debug output.
    #[arg(long, global = true, value_name = "FILE")]
    log: Option<std::path::PathBuf>,
    /// Format of --log: text or json.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Accepted for runc compatibility (cgroups are managed with cgroupfs).
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Rootless mode (true, false or auto); `spec --rootless` makes a
    /// rootless configuration.
    #[arg(long, global = true, value_name = "VALUE", num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    /// Accepted for runc compatibility (checkpointing is not supported).
    #[arg(long, global = true, value_name = "PATH")]
    criu: Option<String>,
    /// runsc: the platform (only kvm).
    #[arg(long, global = true, value_name = "NAME", value_parser = ["kvm"])]
    platform: Option<String>,
    /// runsc: networking mode (sandbox, host or none).
    #[arg(long, global = true, value_name = "MODE", value_parser = ["sandbox", "host", "none"])]
    network: Option<String>,
    /// runsc: debug log file (accepted; --log is used).
    #[arg(long, global = true, value_name = "PATH")]
    debug_log: Option<String>,
    /// runsc: root overlay medium: `none` (default: writes go to the
    /// client's root filesystem) or `root:memory` (a memory layer over it;
    /// writes stay in the sandbox).
    #[arg(long, global = true, value_name = "MEDIUM", value_parser = ["none", "root:memory", "root:self", "all:memory"])]
    overlay2: Option<String>,
    /// What a syscall off the host seccomp filters of the VMM and the
    /// gofer does: kill the process (default), trap (fail with ENOSYS and
    /// say which on stderr), log (run, logged by the kernel in dmesg) or
    /// off. For debugging; also RVISOR_HOST_SECCOMP.
    #[arg(long, global = true, value_name = "MODE", value_parser = ["kill", "trap", "log", "off"])]
    host_seccomp: Option<String>,
    /// runsc: file access mode (accepted).
    #[arg(long, global = true, value_name = "MODE")]
    file_access: Option<String>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a command in a new sandbox, with the host's root filesystem
    /// visible read-only and the caller's stdin/stdout/stderr.
    Do(do_cmd::DoArgs),
    /// Write a starter OCI config.json into a bundle, like `runc spec`.
    Spec(spec_cmd::SpecArgs),
    /// Print the OCI runtime features JSON (runtime-spec features.md).
    Features,
    /// Help on a topic: `rvisor help syscalls` lists syscall support.
    Help {
        /// Topic (`syscalls`).
        topic: Option<String>,
    },
    /// Create a container from a bundle (init loaded, waiting for start).
    Create(oci::CreateArgs),
    /// Run the created container's init program.
    Start { id: String },
    /// Print a container's state as JSON.
    State { id: String },
    /// Send a signal to the container's init (or all its processes).
    Kill {
        /// Signal every process of the container.
        #[arg(short, long)]
        all: bool,
        id: String,
        /// Signal number or name (default SIGTERM).
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container (--force: even if it runs).
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Create and start a container; wait for it unless --detach.
    Run(oci::CreateArgs),
    /// Run a process in a running container.
    Exec(oci::exec::ExecArgs),
    /// List a container's processes.
    Ps {
        #[arg(short, long, default_value = "table")]
        format: String,
        id: String,
        /// Accepted for runc compatibility (ps options).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Suspend every process of a container.
    Pause { id: String },
    /// Resume a paused container.
    Resume { id: String },
    /// List containers.
    #[command(alias = "ls")]
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Change a running container's resource limits.
    Update(oci::UpdateArgs),
    /// Print a container's resource usage (runc's events JSON).
    Events {
        /// One stats event, then exit.
        #[arg(long)]
        stats: bool,
        /// Time between stats events.
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Internal: the VMM process of a container.
    #[command(hide = true)]
    Boot(oci::boot::BootArgs),
    /// Internal: the host process of a detached exec.
    #[command(hide = true)]
    ExecProxy(oci::exec::ProxyArgs),
    /// Internal: the file server of a sandbox.
    #[command(hide = true)]
    Gofer(gofer_cmd::GoferArgs),
    /// Internal: reports the sentry's OOM kills to the host cgroup.
    #[command(hide = true)]
    OomReporter(oci::oom::ReporterArgs),
}

/// Reports an error like runc: on stderr, and as a line in --log.
fn report_error(cli: &Cli, msg: &str) {
    eprintln!("rvisor: {msg}");
    if let Some(path) = &cli.log {
        let line = if cli.log_format == "json" {
            serde_json::json!({"level": "error", "msg": msg, "time": oci::state::now_rfc3339()}).to_string()
        } else {
            format!("time=\"{}\" level=error msg={:?}", oci::state::now_rfc3339(), msg)
        };
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            use std::io::Write;
            let _ = writeln!(f, "{line}");
        }
    }
}

fn globals(cli: &Cli) -> oci::Globals {
    let mut flags = 0;
    let mut passthrough = Vec::new();
    if cli.strace {
        flags |= abi::boot::flags::STRACE;
        passthrough.push("--strace".to_string());
    }
    if cli.debug {
        flags |= abi::boot::flags::DEBUG;
        passthrough.push("--debug".to_string());
    }
    if let Some(l) = &cli.log {
        passthrough.push("--log".into());
        passthrough.push(l.to_string_lossy().into_owned());
        passthrough.push("--log-format".into());
        passthrough.push(cli.log_format.clone());
    }
    let overlay_root = cli.overlay2.as_deref().is_some_and(|m| m != "none");
    if let Some(m) = &cli.overlay2 {
        passthrough.push("--overlay2".into());
        passthrough.push(m.clone());
    }
    let root = cli.root.clone().unwrap_or_else(|| oci::state::DEFAULT_ROOT.into());
    let root = if root.is_absolute() { root } else { std::env::current_dir().map(|d| d.join(&root)).unwrap_or(root) };
    passthrough.push("--root".into());
    passthrough.push(root.to_string_lossy().into_owned());
    let network = cli.network.clone().unwrap_or_else(|| "sandbox".into());
    passthrough.push("--network".into());
    passthrough.push(network.clone());
    oci::Globals { root, flags, passthrough, overlay_root, network }
}

/// Runs an OCI command; errors become exit status 1 (runc's).
fn oci_command(cli: &Cli, f: impl FnOnce(&oci::Globals) -> anyhow::Result<i32>) -> i32 {
    match f(&globals(cli)) {
        Ok(code) => code,
        Err(e) => {
            report_error(cli, &format!("{e:#}"));
            1
        }
    }
}

fn version() -> String {
    format!(
        "rvisor version {}\ncommit: {}\nspec: {}",
        env!("CARGO_PKG_VERSION"),
        env!("RVISOR_COMMIT"),
        OCI_SPEC_VERSION
    )
}

fn help_syscalls() -> String {
    use sentry::syscalls::table::{Support, ROWS};
    let mut s = String::from("NR   NAME                    SUPPORT\n");
    for r in ROWS {
        let sup = match r.support {
            Support::Full => "full".to_string(),
            Support::Partial(note) => format!("partial: {note}"),
        };
        s.push_str(&format!("{:<4} {:<23} {}\n", r.nr, r.name, sup));
    }
    s.push_str(&format!(
        "\n{} of {} syscalls implemented; the others return ENOSYS (logged once).\n",
        ROWS.len(),
        sentry::syscalls::names::NAMES.iter().filter(|n| !n.is_empty()).count()
    ));
    s
}

/// docs/compatibility.md, generated from the syscall table.
#[cfg(test)]
fn compat_markdown() -> String {
    use sentry::syscalls::names::NAMES;
    use sentry::syscalls::table::{Support, ROWS};
    let mut s = String::from(
        "# Syscall compatibility\n\nGenerated from `sentry/src/syscalls/table.rs` (the table that also drives dispatch,\n`--strace` and `rvisor help syscalls`); `cargo test -p runsc-cli` fails when this file is stale,\n`RVISOR_BLESS=1 cargo test -p runsc-cli compat` rewrites it. Syscalls not listed return `ENOSYS`.\n\n| nr | name | support | note |\n|---:|---|---|---|\n",
    );
    for r in ROWS {
        let (level, note) = match r.support {
            Support::Full => ("full", ""),
            Support::Partial(n) => ("partial", n),
        };
        s.push_str(&format!("| {} | {} | {} | {} |\n", r.nr, r.name, level, note));
    }
    let known = NAMES.iter().filter(|n| !n.is_empty()).count();
    s.push_str(&format!("\n{} of {} x86-64 syscalls implemented.\n", ROWS.len(), known));
    s
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if cli.version {
        println!("{}", version());
        return;
    }
    if let Some(m) = &cli.host_seccomp {
        // Still one thread: the VMM and gofer this starts read it.
        std::env::set_var(gofer::seccomp::MODE_ENV, m);
    }
    let code = match &cli.cmd {
        Some(Cmd::Create(a)) => oci_command(&cli, |g| oci::create(g, a).map(|()| 0)),
        Some(Cmd::Start { id }) => oci_command(&cli, |g| oci::start(g, id).map(|()| 0)),
        Some(Cmd::State { id }) => oci_command(&cli, |g| oci::state(g, id).map(|()| 0)),
        Some(Cmd::Kill { all, id, signal }) => oci_command(&cli, |g| oci::kill(g, id, signal, *all).map(|()| 0)),
        Some(Cmd::Delete { force, id }) => oci_command(&cli, |g| oci::delete(g, id, *force).map(|()| 0)),
        Some(Cmd::Run(a)) => oci_command(&cli, |g| oci::run(g, a)),
        Some(Cmd::Exec(a)) => oci_command(&cli, |g| oci::exec::exec(g, a)),
        Some(Cmd::Ps { format, id, .. }) => oci_command(&cli, |g| oci::ps(g, id, format).map(|()| 0)),
        Some(Cmd::Pause { id }) => oci_command(&cli, |g| oci::pause(g, id, true).map(|()| 0)),
        Some(Cmd::Resume { id }) => oci_command(&cli, |g| oci::pause(g, id, false).map(|()| 0)),
        Some(Cmd::List { format, quiet }) => oci_command(&cli, |g| oci::list(g, format, *quiet).map(|()| 0)),
        Some(Cmd::Update(a)) => oci_command(&cli, |g| oci::update(g, a).map(|()| 0)),
        Some(Cmd::Events { stats, interval, id }) => oci_command(&cli, |g| oci::events(g, id, *stats, interval).map(|()| 0)),
        Some(Cmd::Boot(a)) => oci::boot::run(a, &globals(&cli)),
        Some(Cmd::ExecProxy(a)) => oci::exec::proxy_main(a),
        Some(Cmd::Gofer(a)) => gofer_cmd::run(a),
        Some(Cmd::OomReporter(a)) => oci::oom::reporter_main(a),
        Some(Cmd::Do(_)) => {
            let Some(Cmd::Do(args)) = cli.cmd else { unreachable!() };
            do_cmd::run(args, cli.strace, cli.debug, cli.debug_sentry_panic, cli.network.as_deref() == Some("none"))
        }
        Some(Cmd::Spec(args)) => spec_cmd::run(args, cli.rootless.as_deref().is_some_and(|v| v == "true")),
        Some(Cmd::Features) => features::run(),
        Some(Cmd::Help { topic: Some(t) }) if t == "syscalls" => {
            print!("{}", help_syscalls());
            0
        }
        Some(Cmd::Help { topic: Some(t) }) => {
            eprintln!("rvisor: no help on {t:?}; topics: syscalls");
            2
        }
        Some(Cmd::Help { topic: None }) | None => {
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            if cli.cmd.is_none() { 2 } else { 0 }
        }
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sentry saves only XMM0-15 on entry (arch/entry.rs: the rest of
    /// the application's FPU state stays in the registers), which holds
    /// only while the sentry itself touches nothing else: no VEX/EVEX
    /// (AVX) code, x87, MMX, MXCSR or PKRU writes. Checked on the image
    /// that ships, as built.
    #[test]
    fn the_sentry_touches_no_fpu_state_but_xmm() {
        let path = std::env::temp_dir().join(format!("rvisor-sentry-{}.elf", std::process::id()));
        std::fs::write(&path, SENTRY_IMAGE).unwrap();
        let out = std::process::Command::new("objdump").args(["-d", "--no-show-raw-insn"]).arg(&path).output().expect("objdump (binutils) is needed");
        let _ = std::fs::remove_file(&path);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let mut bad = Vec::new();
        let mut insns = 0;
        for line in text.lines() {
            let mut f = line.split('\t');
            let (Some(addr), Some(insn)) = (f.next(), f.next()) else { continue };
            if !addr.trim_end().ends_with(':') {
                continue;
            }
            insns += 1;
            let mnemonic = insn.split_whitespace().next().unwrap_or("");
            let regs = ["%ymm", "%zmm", "%st", "%k0", "%k1"].iter().any(|r| insn.contains(r))
                || insn.match_indices("%mm").any(|(i, _)| !insn[..i].ends_with('x'));
            let x87 = mnemonic.starts_with('f') && !mnemonic.starts_with("fxsave") && !mnemonic.starts_with("fxrstor");
            let vex = mnemonic.starts_with('v') && !matches!(mnemonic, "verr" | "verw");
            if regs || x87 || vex || matches!(mnemonic, "ldmxcsr" | "wrpkru" | "emms" | "fldcw") {
                bad.push(line.to_string());
            }
        }
        assert!(insns > 10_000, "objdump listed only {insns} instructions");
        assert!(bad.is_empty(), "the sentry uses FPU state beyond XMM0-15:\n{}", bad[..bad.len().min(20)].join("\n"));
    }

    #[test]
    fn version_has_three_lines() {
        let v = version();
        let lines: Vec<&str> = v.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("rvisor version "));
        assert!(lines[1].starts_with("commit: "));
        assert!(lines[2].starts_with("spec: 1."));
    }

    #[test]
    fn help_lists_the_table() {
        let h = help_syscalls();
        assert!(h.contains("openat"));
        assert!(h.contains("partial: "));
    }

    #[test]
    fn compat_doc_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/compatibility.md");
        let want = compat_markdown();
        if std::env::var_os("RVISOR_BLESS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(have == want, "docs/compatibility.md is stale: run RVISOR_BLESS=1 cargo test -p runsc-cli compat");
    }

    #[test]
    fn image_is_embedded() {
        assert_eq!(&SENTRY_IMAGE[..4], b"\x7fELF");
    }
}
