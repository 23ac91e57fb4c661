//! Builds the sentry as a freestanding kernel image (a separate cargo
//! invocation with its own target dir and link flags) and hands its path
//! to the `rvisor` binary, which embeds it.
//!
//! The explicit `--target` matters: with it, RUSTFLAGS apply only to the
//! image, and build scripts of its dependencies stay normal host programs.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.parent().expect("runsc-cli lives in the workspace").to_path_buf();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_dir = std::env::var("RVISOR_SENTRY_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target").join("sentry-image"));
    let linker_script = root.join("sentry").join("linker.ld");
    let rustflags = [
        "-C relocation-model=pie",
        "-C link-arg=-nostartfiles",
        "-C link-arg=-nostdlib",
        "-C link-arg=-static-pie",
        "-C link-arg=-Wl,--no-dynamic-linker",
        &format!("-C link-arg=-Wl,-T,{}", linker_script.display()),
        "-C force-frame-pointers=yes",
        "-C no-redzone=yes",
    ]
    .join(" ");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--release", "-p", "sentry", "--bin", "sentry", "--features", "image"])
        .args(["--target", "x86_64-unknown-linux-gnu", "--target-dir"])
        .arg(&target_dir)
        .env("RUSTFLAGS", rustflags);
    for v in ["CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR", "RUSTC_WORKSPACE_WRAPPER", "CARGO_BUILD_RUSTFLAGS"] {
        cmd.env_remove(v);
    }
    let status = cmd.status().expect("running cargo for the sentry image");
    assert!(status.success(), "building the sentry image failed");
    let image = target_dir.join("x86_64-unknown-linux-gnu").join("release").join("sentry");
    std::fs::copy(&image, out.join("sentry.elf")).expect("copying the sentry image");

    for p in ["sentry/src", "sentry/Cargo.toml", "sentry/linker.ld", "sentry/build.rs", "sentry/vdso", "abi/src", "abi/Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }
    let commit = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(&root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=RVISOR_COMMIT={commit}");
    println!("cargo:rerun-if-changed={}", root.join(".git/HEAD").display());
}
