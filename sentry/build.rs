//! Builds the vDSO (`vdso/`): a small shared object the sentry maps into
//! every process and names in AT_SYSINFO_EHDR. It is C compiled with the
//! system's C compiler (`CC`, default `cc`) and embedded in the sentry with
//! `include_bytes!` (kernel::vdso).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("vdso");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("vdso.so");
    for f in ["vdso.c", "vvar.h", "vdso.lds", "vdso.map"] {
        println!("cargo:rerun-if-changed={}", dir.join(f).display());
    }
    println!("cargo:rerun-if-env-changed=CC");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .current_dir(&dir)
        .args([
            "-std=gnu11",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            // Position-independent, self-contained code: no libc, no
            // stack protector (it would need one), no red-zone games with
            // the caller's stack, exported symbols only where marked.
            "-fPIC",
            "-ffreestanding",
            "-fno-stack-protector",
            "-fno-builtin",
            "-fvisibility=hidden",
            "-fcf-protection=none",
            "-mno-red-zone",
            // Debuggers and profilers unwind through the vDSO.
            "-fasynchronous-unwind-tables",
            "-shared",
            "-nostdlib",
            "-Wl,-soname=linux-vdso.so.1",
            "-Wl,--hash-style=both",
            "-Wl,--version-script=vdso.map",
            "-Wl,-T,vdso.lds",
            "-Wl,-Bsymbolic",
            "-Wl,-z,now",
            "-Wl,--no-undefined",
            "-Wl,--build-id=sha1",
            "-Wl,--eh-frame-hdr",
            "-Wl,-z,max-page-size=4096",
            "-Wl,-z,noexecstack",
            "-o",
        ])
        .arg(&out)
        .arg("vdso.c")
        .status()
        .unwrap_or_else(|e| panic!("running the C compiler `{cc}` for the vDSO: {e}"));
    assert!(status.success(), "building the vDSO (sentry/vdso) failed");
}
