//! `rvisor`: the command line. For now `rvisor do` (run one command in a
//! sandbox), `rvisor help syscalls` and `--version`; the OCI lifecycle
//! commands (runc's set) arrive with the OCI issue.
#![deny(unsafe_code)]

mod do_cmd;
mod features;
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
    let code = match cli.cmd {
        Some(Cmd::Do(args)) => do_cmd::run(args, cli.strace, cli.debug, cli.debug_sentry_panic),
        Some(Cmd::Spec(args)) => spec_cmd::run(&args),
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
