//! The compatibility ledger runner.
//!
//! Compiles every `c/*.c` as `-static` and `-static-pie`, runs each binary natively and
//! under `rvisor do -- BINARY ARGS`, and compares stdout bytes and exit status. Also
//! compares busybox applets and checks that bad inputs are rejected with the right exit
//! code and a one-line error.
//!
//! Run with `cargo test -p syscall-tests` (after `cargo build --release`). Extra arguments
//! after `--` are substring filters on case names, e.g. `cargo test -p syscall-tests -- mman`.
//!
//! Environment:
//! - `RVISOR`: the rvisor binary (default `<workspace>/target/release/rvisor`, then
//!   `<workspace>/target/debug/rvisor`).
//! - `SYSCALL_TESTS_OUT`: build/output directory (default `<workspace>/target/syscall-tests`).
//! - `SYSCALL_TESTS_JOBS`: parallel workers (default: number of CPUs).
//! - `SYSCALL_TESTS_TIMEOUT`: per-run timeout in seconds (default 60).
//!
//! Case names: `static/NAME`, `static-pie/NAME` (from `c/NAME.c`), `busybox/APPLET...`,
//! `bad/...`. Cases listed in `known-failures.txt` are reported as `XFAIL` and do not fail
//! the test.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

const BUSYBOX: &str = "/bin/busybox";
/// Bad-input runs must fail fast; anything slower counts as a hang.
const BAD_INPUT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long to wait for stdout/stderr to close after the child exited.
const PIPE_GRACE: Duration = Duration::from_secs(3);

/// Arguments given to specific C programs (both natively and in the sandbox).
fn c_args(name: &str, fixture: &Path) -> Vec<OsString> {
    match name {
        "args" => ["one", "two words", "", "ünïcödé", "--flag=x"]
            .iter()
            .map(OsString::from)
            .collect(),
        "files" => vec![fixture.into()],
        _ => Vec::new(),
    }
}

/// The fixture file used by `files.c` and the busybox applets. At least 12 bytes, < 64 KiB.
const FIXTURE: &str = "Hello, world! This is the rvisor syscall-tests fixture.\n\
second line\n\
third line with\ttab\n\
last line\n";

// ---------------------------------------------------------------------------------------
// Process running with a timeout.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal. For a native run this compares as 128+N (what rvisor reports
    /// as its own exit code); for the rvisor process itself it means rvisor crashed.
    Signal(i32),
    TimedOut,
    SpawnError(String),
}

impl Status {
    /// The status as a shell would report it: code, or 128+signal.
    fn shell_code(&self) -> Option<i32> {
        match self {
            Status::Code(c) => Some(*c),
            Status::Signal(s) => Some(128 + s),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Status::Code(c) => format!("exit {c}"),
            Status::Signal(s) => format!("killed by signal {s} ({})", 128 + s),
            Status::TimedOut => "timed out".into(),
            Status::SpawnError(e) => format!("spawn error: {e}"),
        }
    }
}

struct RunResult {
    status: Status,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    elapsed: Duration,
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

fn kill_group(pgid: u32) {
    const SIGKILL: i32 = 9;
    let Ok(pgid) = i32::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) has no memory-safety preconditions; a negative pid addresses the
    // process group we created for the child (process_group(0) below), never our own.
    unsafe {
        kill(-pgid, SIGKILL);
    }
}

fn spawn_reader(mut r: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// Runs `argv` with a cleared environment plus `env`, cwd `cwd`, stdin null, in its own
/// process group; the whole group is killed on timeout.
fn run(argv: &[OsString], env: &[(String, String)], cwd: &Path, timeout: Duration) -> RunResult {
    let start = Instant::now();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return RunResult {
                status: Status::SpawnError(e.to_string()),
                stdout: Vec::new(),
                stderr: Vec::new(),
                elapsed: start.elapsed(),
            }
        }
    };
    let pid = child.id();
    let out_rx = spawn_reader(child.stdout.take().expect("piped stdout"));
    let err_rx = spawn_reader(child.stderr.take().expect("piped stderr"));

    let deadline = start + timeout;
    let mut nap = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                break match (st.code(), st.signal()) {
                    (Some(c), _) => Status::Code(c),
                    (None, Some(s)) => Status::Signal(s),
                    _ => Status::SpawnError(format!("unknown status {st:?}")),
                }
            }
            Ok(None) => {}
            Err(e) => break Status::SpawnError(format!("wait: {e}")),
        }
        if Instant::now() >= deadline {
            kill_group(pid);
            let _ = child.kill();
            let _ = child.wait();
            break Status::TimedOut;
        }
        thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    };
    let elapsed = start.elapsed();

    // Leftover members of the group (e.g. a helper rvisor started) may hold the pipes.
    let get = |rx: &mpsc::Receiver<Vec<u8>>| match rx.recv_timeout(PIPE_GRACE) {
        Ok(b) => b,
        Err(_) => {
            kill_group(pid);
            rx.recv_timeout(PIPE_GRACE).unwrap_or_default()
        }
    };
    let stdout = get(&out_rx);
    let stderr = get(&err_rx);
    RunResult {
        status,
        stdout,
        stderr,
        elapsed,
    }
}

// ---------------------------------------------------------------------------------------
// Cases.

enum Kind {
    /// Run natively and under rvisor; compare stdout and status.
    Compare { argv: Vec<OsString> },
    /// Run only under rvisor; expect this exit code and a one-line stderr.
    BadInput { path: PathBuf, expect: i32 },
    /// Could not even be set up (compile error, missing tool, ...).
    Broken { reason: String },
}

struct Case {
    name: String,
    kind: Kind,
}

enum Outcome {
    Pass,
    Fail {
        reason: String,
        details: Vec<String>,
    },
}

struct Ctx {
    rvisor: PathBuf,
    env: Vec<(String, String)>,
    cwd: PathBuf,
    timeout: Duration,
}

fn show_bytes(b: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(b);
    let mut out: String = s.chars().take(max).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    format!("{out:?}")
}

fn tail_lines(b: &[u8], n: usize) -> Vec<String> {
    let s = String::from_utf8_lossy(b);
    let lines: Vec<&str> = s.lines().collect();
    let skip = lines.len().saturating_sub(n);
    lines[skip..]
        .iter()
        .map(|l| {
            let l: String = l.chars().take(200).collect();
            l
        })
        .collect()
}

/// One-line description of the first difference between two outputs.
fn diff_excerpt(native: &[u8], sandboxed: &[u8]) -> String {
    let a: Vec<&[u8]> = native.split_inclusive(|&c| c == b'\n').collect();
    let b: Vec<&[u8]> = sandboxed.split_inclusive(|&c| c == b'\n').collect();
    let i = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let na = a.get(i).copied().unwrap_or(b"<EOF>");
    let nb = b.get(i).copied().unwrap_or(b"<EOF>");
    format!(
        "stdout line {}: native {} vs rvisor {}; {} vs {} bytes total",
        i + 1,
        show_bytes(na, 100),
        show_bytes(nb, 100),
        native.len(),
        sandboxed.len()
    )
}

fn rvisor_argv(ctx: &Ctx, argv: &[OsString]) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec![ctx.rvisor.clone().into(), "do".into(), "--".into()];
    v.extend(argv.iter().cloned());
    v
}

fn run_case(ctx: &Ctx, case: &Case) -> Outcome {
    match &case.kind {
        Kind::Broken { reason } => Outcome::Fail {
            reason: reason.clone(),
            details: Vec::new(),
        },
        Kind::Compare { argv } => {
            let native = run(argv, &ctx.env, &ctx.cwd, ctx.timeout);
            if native.status.shell_code().is_none() {
                return Outcome::Fail {
                    reason: format!("native run {} (test bug?)", native.status.describe()),
                    details: tail_lines(&native.stderr, 5),
                };
            }
            let sb = run(&rvisor_argv(ctx, argv), &ctx.env, &ctx.cwd, ctx.timeout);
            let mut details: Vec<String> = tail_lines(&sb.stderr, 6)
                .into_iter()
                .map(|l| format!("rvisor stderr: {l}"))
                .collect();
            let reason = match &sb.status {
                Status::TimedOut => Some(format!(
                    "rvisor timed out after {:.0?}; stdout so far {}",
                    sb.elapsed,
                    show_bytes(&sb.stdout, 100)
                )),
                Status::SpawnError(e) => Some(format!("cannot spawn rvisor: {e}")),
                Status::Signal(s) => Some(format!("rvisor itself was killed by signal {s}")),
                Status::Code(code) => {
                    let want = native.status.shell_code().unwrap_or(-1);
                    match (native.stdout == sb.stdout, *code == want) {
                        (true, true) => None,
                        (true, false) => Some(format!(
                            "exit status: native {want}, rvisor {code} (stdout identical)"
                        )),
                        (false, same) => {
                            if !same {
                                details.insert(
                                    0,
                                    format!("exit status: native {want}, rvisor {code}"),
                                );
                            }
                            Some(diff_excerpt(&native.stdout, &sb.stdout))
                        }
                    }
                }
            };
            match reason {
                None => Outcome::Pass,
                Some(reason) => Outcome::Fail { reason, details },
            }
        }
        Kind::BadInput { path, expect } => {
            let sb = run(
                &rvisor_argv(ctx, &[path.clone().into()]),
                &ctx.env,
                &ctx.cwd,
                BAD_INPUT_TIMEOUT.min(ctx.timeout),
            );
            let err = String::from_utf8_lossy(&sb.stderr);
            let err_trim = err.trim_end_matches('\n');
            let mut problems = Vec::new();
            match &sb.status {
                Status::Code(c) if c == expect => {}
                st => problems.push(format!("expected exit {expect}, got {}", st.describe())),
            }
            if err_trim.trim().is_empty() {
                problems.push("stderr is empty (want a one-line error)".to_string());
            } else if err_trim.contains('\n') {
                problems.push(format!(
                    "stderr has {} lines (want exactly one)",
                    err_trim.lines().count()
                ));
            }
            if problems.is_empty() {
                Outcome::Pass
            } else {
                let mut details: Vec<String> = tail_lines(&sb.stderr, 6)
                    .into_iter()
                    .map(|l| format!("rvisor stderr: {l}"))
                    .collect();
                if !sb.stdout.is_empty() {
                    details.push(format!("rvisor stdout: {}", show_bytes(&sb.stdout, 200)));
                }
                Outcome::Fail {
                    reason: problems.join("; "),
                    details,
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Setup: locating tools, compiling, fixtures.

fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("syscall-tests lives inside the workspace")
        .to_path_buf()
}

fn find_rvisor(ws: &Path) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("RVISOR") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("RVISOR={} does not exist", p.display()))
        };
    }
    let candidates = [
        ws.join("target/release/rvisor"),
        ws.join("target/debug/rvisor"),
    ];
    for c in &candidates {
        if c.is_file() {
            return Ok(c.clone());
        }
    }
    Err(format!(
        "no rvisor binary at {} or {} (and RVISOR is not set); run `cargo build --release` \
         in {} first",
        candidates[0].display(),
        candidates[1].display(),
        ws.display()
    ))
}

#[derive(Clone, Copy)]
struct Variant {
    name: &'static str,
    flags: &'static [&'static str],
}

const VARIANTS: [Variant; 3] = [
    Variant {
        name: "static",
        flags: &["-O1", "-static"],
    },
    Variant {
        name: "static-pie",
        flags: &["-O1", "-static-pie"],
    },
    // Dynamically linked: the sandbox loads ld.so and the libraries from
    // the host's root.
    Variant {
        name: "dynamic",
        flags: &["-O1"],
    },
];

fn gcc(flags: &[&str], src: &Path, out: &Path) -> Result<(), String> {
    let res = Command::new("gcc")
        .args(flags)
        .arg("-o")
        .arg(out)
        .arg(src)
        .stdin(Stdio::null())
        .output();
    match res {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            let first = err
                .lines()
                .find(|l| l.contains("error"))
                .or(err.lines().next());
            Err(format!(
                "gcc {} {} failed: {}",
                flags.join(" "),
                src.display(),
                first.unwrap_or("(no output)")
            ))
        }
        Err(e) => Err(format!("cannot run gcc: {e}")),
    }
}

/// Runs `jobs` in parallel on `workers` threads, returning results in input order.
fn parallel_map<T: Send + Sync + 'static, R: Send + 'static>(
    items: Vec<T>,
    workers: usize,
    f: impl Fn(&T) -> R + Send + Sync + 'static,
    mut on_ready: impl FnMut(usize, &R),
) -> Vec<R> {
    let n = items.len();
    let items = Arc::new(items);
    let f = Arc::new(f);
    let next = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<(usize, R)>();
    let mut handles = Vec::new();
    for _ in 0..workers.max(1).min(n.max(1)) {
        let (items, f, next, tx) = (items.clone(), f.clone(), next.clone(), tx.clone());
        handles.push(thread::spawn(move || loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            if i >= items.len() {
                break;
            }
            let r = f(&items[i]);
            if tx.send((i, r)).is_err() {
                break;
            }
        }));
    }
    drop(tx);
    // Report results in input order as soon as the prefix is complete.
    let mut slots: Vec<Option<R>> = (0..n).map(|_| None).collect();
    let mut printed = 0;
    for (i, r) in rx {
        slots[i] = Some(r);
        while printed < n {
            match &slots[printed] {
                Some(r) => on_ready(printed, r),
                None => break,
            }
            printed += 1;
        }
    }
    for h in handles {
        let _ = h.join();
    }
    slots
        .into_iter()
        .map(|s| s.expect("worker thread died"))
        .collect()
}

fn write_executable(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let _ = fs::remove_file(path);
    fs::write(path, bytes)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
}

fn rd_u16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}
fn rd_u64(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}
fn wr_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// Offset of the first PT_LOAD program header in an ELF64 little-endian image.
fn first_load_phdr(elf: &[u8]) -> Option<usize> {
    if elf.get(..4)? != b"\x7fELF" || elf[4] != 2 || elf[5] != 1 {
        return None;
    }
    let phoff = usize::try_from(rd_u64(elf, 32)?).ok()?;
    let phentsize = usize::from(rd_u16(elf, 54)?);
    let phnum = usize::from(rd_u16(elf, 56)?);
    (0..phnum)
        .map(|i| phoff + i * phentsize)
        .find(|&off| elf.get(off..off + 4) == Some(&1u32.to_le_bytes()[..]))
}

/// Builds the bad-input fixtures from a good static binary. Returns (name, path, expected
/// exit code) or a setup error per case.
fn bad_inputs(dir: &Path, good: Option<&Path>, hello_src: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |name: &str, r: Result<PathBuf, String>, expect: i32| {
        cases.push(Case {
            name: format!("bad/{name}"),
            kind: match r {
                Ok(path) => Kind::BadInput { path, expect },
                Err(reason) => Kind::Broken { reason },
            },
        })
    };
    let _ = fs::create_dir_all(dir);

    let missing = dir.join("no-such-file");
    let _ = fs::remove_file(&missing);
    add("missing-file", Ok(missing), 127);

    let text = dir.join("not-elf.txt");
    add(
        "not-elf",
        write_executable(&text, b"this is a text file, not a program\n")
            .map(|_| text)
            .map_err(|e| format!("cannot write fixture: {e}")),
        126,
    );

    let good_bytes = match good {
        Some(p) => fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display())),
        None => Err("needs static/hello, which did not compile".to_string()),
    };
    let derive = |file: &str, patch: &dyn Fn(&mut Vec<u8>) -> Result<(), String>| {
        let mut b = good_bytes.clone()?;
        patch(&mut b)?;
        let p = dir.join(file);
        write_executable(&p, &b).map_err(|e| format!("cannot write fixture: {e}"))?;
        Ok(p)
    };

    // e_machine (u16 at offset 18) = 183 (EM_AARCH64).
    add(
        "wrong-arch-aarch64",
        derive("hello-aarch64", &|b| {
            b[18..20].copy_from_slice(&183u16.to_le_bytes());
            Ok(())
        }),
        126,
    );

    // A dynamic program whose interpreter (PT_INTERP) does not exist: Linux's
    // execve fails with ENOENT, which shells report as 127.
    let dynamic = dir.join("hello-dynamic");
    let nointerp = dir.join("hello-nointerp");
    add(
        "missing-interpreter",
        gcc(&["-O1"], hello_src, &dynamic).and_then(|_| {
            let mut b = fs::read(&dynamic).map_err(|e| format!("cannot read {}: {e}", dynamic.display()))?;
            let at = b
                .windows(11)
                .position(|w| w == b"/lib64/ld-l")
                .ok_or("dynamic binary has no /lib64/ld-l string")?;
            b[at + 1..at + 6].copy_from_slice(b"nolib");
            write_executable(&nointerp, &b).map_err(|e| format!("cannot write fixture: {e}"))?;
            Ok(nointerp.clone())
        }),
        127,
    );

    add(
        "truncated-elf",
        derive("hello-truncated", &|b| {
            b.truncate(200);
            Ok(())
        }),
        126,
    );

    // First PT_LOAD claims an absurd p_memsz (vaddr + memsz overflows the address space).
    add(
        "hostile-huge-memsz",
        derive("hello-huge-memsz", &|b| {
            let ph = first_load_phdr(b).ok_or("no PT_LOAD in static/hello")?;
            wr_u64(b, ph + 40, 0xffff_ffff_ffff_0000);
            Ok(())
        }),
        126,
    );

    // First PT_LOAD's file data lies far beyond the end of the file (alignment kept).
    add(
        "hostile-offset-past-eof",
        derive("hello-offset-past-eof", &|b| {
            let ph = first_load_phdr(b).ok_or("no PT_LOAD in static/hello")?;
            let off = rd_u64(b, ph + 8).ok_or("short phdr")?;
            wr_u64(b, ph + 8, off + 0x10_0000_0000);
            Ok(())
        }),
        126,
    );

    // Program header table itself lies beyond the end of the file.
    add(
        "hostile-phoff-past-eof",
        derive("hello-phoff-past-eof", &|b| {
            let len = b.len() as u64;
            wr_u64(b, 32, len + 4096);
            Ok(())
        }),
        126,
    );

    cases
}

/// A small directory tree for `ls -la`, recreated on every run (its parent too, so `..`
/// does not change while the cases run).
fn make_ls_fixture(dir: &Path) -> io::Result<()> {
    let parent = dir.parent().expect("fixture dir has a parent");
    if parent.exists() {
        fs::remove_dir_all(parent)?;
    }
    fs::create_dir_all(dir.join("subdir"))?;
    fs::write(dir.join("file.txt"), FIXTURE)?;
    fs::write(dir.join(".hidden"), "")?;
    write_executable(&dir.join("script.sh"), b"#!/bin/sh\necho hi\n")?;
    std::os::unix::fs::symlink("file.txt", dir.join("link"))?;
    Ok(())
}

fn load_known_failures(path: &Path) -> HashMap<String, String> {
    let Ok(text) = fs::read_to_string(path) else {
        return HashMap::new();
    };
    text.lines()
        .filter_map(|line| {
            let (name, reason) = match line.split_once('#') {
                Some((n, r)) => (n.trim(), r.trim()),
                None => (line.trim(), ""),
            };
            (!name.is_empty()).then(|| (name.to_string(), reason.to_string()))
        })
        .collect()
}

fn main() -> ExitCode {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let selected = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));

    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let ws = workspace_dir();
    let rvisor = match find_rvisor(&ws) {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("error: {msg}");
            println!("FAIL setup/rvisor: {msg}");
            println!("0 passed, 1 failed");
            return ExitCode::FAILURE;
        }
    };
    let rvisor = fs::canonicalize(&rvisor).unwrap_or(rvisor);
    let out = std::env::var_os("SYSCALL_TESTS_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.join("target/syscall-tests"));
    if let Err(e) = fs::create_dir_all(&out) {
        println!("FAIL setup/out-dir: cannot create {}: {e}", out.display());
        println!("0 passed, 1 failed");
        return ExitCode::FAILURE;
    }
    let out = fs::canonicalize(&out).unwrap_or(out);
    let workers = std::env::var("SYSCALL_TESTS_JOBS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| thread::available_parallelism().map_or(2, |n| n.get()));
    let timeout = Duration::from_secs(
        std::env::var("SYSCALL_TESTS_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    println!("# rvisor: {}", rvisor.display());
    println!("# output: {}", out.display());

    let fixture = out.join("fixture.txt");
    if let Err(e) = fs::write(&fixture, FIXTURE) {
        println!(
            "FAIL setup/fixture: cannot write {}: {e}",
            fixture.display()
        );
        println!("0 passed, 1 failed");
        return ExitCode::FAILURE;
    }

    let ls_dir = out.join("ls-fixture/dir");
    if let Err(e) = make_ls_fixture(&ls_dir) {
        println!(
            "FAIL setup/fixture: cannot create {}: {e}",
            ls_dir.display()
        );
        println!("0 passed, 1 failed");
        return ExitCode::FAILURE;
    }

    // ---- Compile the C programs.
    let c_dir = manifest.join("c");
    let mut sources: Vec<PathBuf> = fs::read_dir(&c_dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "c"))
                .collect()
        })
        .unwrap_or_default();
    sources.sort();
    let hello_src = c_dir.join("hello.c");

    // Probe which variants this gcc can produce at all.
    let probe_dir = out.join("probe");
    let _ = fs::create_dir_all(&probe_dir);
    let variants: Vec<Variant> = VARIANTS
        .iter()
        .copied()
        .filter(
            |v| match gcc(v.flags, &hello_src, &probe_dir.join(v.name)) {
                Ok(()) => true,
                Err(e) => {
                    eprintln!(
                        "warning: skipping the {} variant: gcc cannot build it: {e}",
                        v.name
                    );
                    println!("# skipped variant {}: gcc cannot build it", v.name);
                    false
                }
            },
        )
        .collect();

    // Everything is compiled even when filtering: it is cheap, and the bad-input fixtures
    // are derived from static/hello.
    let mut jobs = Vec::new();
    for v in &variants {
        let _ = fs::create_dir_all(out.join(v.name));
        for src in &sources {
            let stem = src.file_stem().unwrap().to_string_lossy().into_owned();
            let bin = out.join(v.name).join(&stem);
            jobs.push((*v, stem, src.clone(), bin));
        }
    }
    let compiled = parallel_map(
        jobs.clone(),
        workers,
        |(v, _, src, bin)| gcc(v.flags, src, bin),
        |_, _| {},
    );

    let mut cases = Vec::new();
    let mut static_hello = None;
    for ((v, stem, _, bin), res) in jobs.into_iter().zip(compiled) {
        if res.is_ok() && stem == "hello" && v.name == "static" {
            static_hello = Some(bin.clone());
        }
        let kind = match res {
            Ok(()) => {
                let mut argv: Vec<OsString> = vec![bin.into()];
                argv.extend(c_args(&stem, &fixture));
                Kind::Compare { argv }
            }
            Err(reason) => Kind::Broken { reason },
        };
        cases.push(Case {
            name: format!("{}/{stem}", v.name),
            kind,
        });
    }

    if sources.is_empty() {
        cases.push(Case {
            name: "setup/c-sources".into(),
            kind: Kind::Broken {
                reason: format!("no *.c files in {}", c_dir.display()),
            },
        });
    }
    if variants.is_empty() {
        cases.push(Case {
            name: "setup/gcc".into(),
            kind: Kind::Broken {
                reason: "gcc can build neither -static nor -static-pie binaries \
                         (install gcc and libc6-dev)"
                    .into(),
            },
        });
    }

    // ---- Busybox applets.
    let bb_cases: Vec<(&str, Vec<OsString>)> = vec![
        ("echo", vec!["echo".into(), "hello".into(), "world".into()]),
        ("true", vec!["true".into()]),
        ("false", vec!["false".into()]),
        ("cat", vec!["cat".into(), fixture.clone().into()]),
        // `ls -la /` itself is not reproducible even natively: the link count of /proc is
        // the number of processes. So: names only for /, the long format on a fixture dir.
        ("ls-a-root", vec!["ls".into(), "-a".into(), "/".into()]),
        (
            "ls-la-dir",
            vec!["ls".into(), "-la".into(), ls_dir.clone().into()],
        ),
        (
            "wc-l",
            vec!["wc".into(), "-l".into(), fixture.clone().into()],
        ),
        ("md5sum", vec!["md5sum".into(), fixture.clone().into()]),
        ("uname-a", vec!["uname".into(), "-a".into()]),
        ("env", vec!["env".into()]),
    ];
    let have_busybox = Path::new(BUSYBOX).is_file();
    for (name, args) in bb_cases {
        let name = format!("busybox/{name}");
        let kind = if have_busybox {
            let mut argv: Vec<OsString> = vec![BUSYBOX.into()];
            argv.extend(args);
            Kind::Compare { argv }
        } else {
            Kind::Broken {
                reason: format!(
                    "{BUSYBOX} is missing; install it with `apt-get install busybox-static`"
                ),
            }
        };
        cases.push(Case { name, kind });
    }

    // ---- Bad inputs.
    cases.extend(bad_inputs(
        &out.join("bad"),
        static_hello.as_deref(),
        &hello_src,
    ));
    cases.retain(|c| selected(&c.name));

    // ---- Run.
    let known_path = manifest.join("known-failures.txt");
    let known = load_known_failures(&known_path);
    let ctx = Arc::new(Ctx {
        rvisor,
        env: vec![
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("HOME".into(), "/root".into()),
            ("LANG".into(), "C".into()),
            ("RVTEST_A".into(), "alpha".into()),
            ("RVTEST_B".into(), "beta gamma=delta".into()),
            ("RVTEST_CWD".into(), out.to_string_lossy().into_owned()),
        ],
        cwd: out.clone(),
        timeout,
    });
    let names: Vec<String> = cases.iter().map(|c| c.name.clone()).collect();
    let (mut passed, mut failed, mut xfailed) = (0usize, 0usize, 0usize);
    let mut unexpected = Vec::new();
    let started = Instant::now();
    let ctx2 = ctx.clone();
    parallel_map(
        cases,
        workers,
        move |case| run_case(&ctx2, case),
        |i, outcome| {
            let name = &names[i];
            let listed = known.get(name);
            let mut line = String::new();
            match (outcome, listed) {
                (Outcome::Pass, None) => {
                    passed += 1;
                    let _ = write!(line, "PASS {name}");
                }
                (Outcome::Pass, Some(_)) => {
                    passed += 1;
                    let _ = write!(
                        line,
                        "PASS {name} (note: listed in known-failures.txt but now passes; \
                         remove it from the list)"
                    );
                }
                (Outcome::Fail { reason, details }, listed) => {
                    if let Some(why) = listed {
                        xfailed += 1;
                        let _ = write!(line, "XFAIL {name}: {reason} (known failure: {why})");
                    } else {
                        failed += 1;
                        unexpected.push(name.clone());
                        let _ = write!(line, "FAIL {name}: {reason}");
                        for d in details {
                            let _ = write!(line, "\n    {d}");
                        }
                    }
                }
            }
            println!("{line}");
        },
    );

    if filters.is_empty() {
        let all: BTreeSet<&String> = names.iter().collect();
        let mut stale: Vec<&String> = known.keys().filter(|k| !all.contains(k)).collect();
        stale.sort();
        for s in stale {
            println!("# note: known-failures.txt lists {s}, which is not a case");
        }
    }
    println!(
        "# {} cases in {:.1?}; {xfailed} expected failures (known-failures.txt)",
        names.len(),
        started.elapsed()
    );
    if !unexpected.is_empty() {
        println!("# failed: {}", unexpected.join(" "));
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
