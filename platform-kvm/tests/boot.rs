//! Boots tiny hand-written guests on /dev/kvm through the public API: the
//! image loader (with relocations), the boot state, the vCPU loop and the
//! hypercall service, end to end. The guests are assembled with gcc at
//! test time as static-PIE images, the same shape as the sentry.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Command;

use platform_kvm::{Sandbox, SandboxConfig};

/// Exit hypercall with status `\code`, repeated until it takes effect.
const EXIT_MACRO: &str = r#"
    .macro hc_exit code
    movabs $0xffff888000100000, %rbx   /* vCPU 0 mailbox in the direct map */
    movq $2, (%rbx)                    /* Nr::Exit */
    movq \code, 8(%rbx)
    movabs $0x8000000000000000, %rax
    movq %rax, 56(%rbx)                /* ret = RET_PENDING */
99: mov $0x1009, %eax
    xor %ebx, %ebx
    xor %ecx, %ecx
    xor %edx, %edx
    int $0x1b
    jmp 99b
    .endm
"#;

fn build_guest(name: &str, body: &str) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("guests");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join(format!("{name}.S"));
    let out = dir.join(name);
    std::fs::write(&src, format!("{EXIT_MACRO}\n.text\n.globl _start\n_start:\n{body}\n")).unwrap();
    let st = Command::new("gcc")
        .args(["-nostdlib", "-static-pie", "-Wl,--no-dynamic-linker", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("gcc is needed to assemble test guests");
    assert!(st.success(), "assembling {name}");
    std::fs::read(out).unwrap()
}

fn devnull() -> [OwnedFd; 3] {
    let f = || OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
    [f(), f(), f()]
}

fn run(image: Vec<u8>) -> Result<i32, platform_kvm::Error> {
    assert!(std::path::Path::new("/dev/kvm").exists(), "these tests need /dev/kvm");
    let cfg = SandboxConfig {
        image: Box::leak(image.into_boxed_slice()),
        mem_size: 256 << 20,
        exe: "/x".into(),
        cwd: "/".into(),
        argv: vec!["x".into()],
        envp: vec![],
        stdio: devnull(),
        flags: 0,
        uid: 0,
        gid: 0,
        groups: vec![],
        umask: 0o022,
        hostname: None,
        domainname: String::new(),
        mounts: SandboxConfig::do_mounts(),
        allow_writes: false,
        extra: vec![],
        net_raw: false,
        gofer: None,
        writable: vec![],
        num_vcpus: 1,
        gofer_id_maps: None,
        host_seccomp: None,
    };
    Sandbox::new(cfg)?.run()
}

#[test]
fn guest_exits_through_a_hypercall() {
    let img = build_guest("exit", "hc_exit $42");
    assert_eq!(run(img).unwrap(), 42);
}

#[test]
fn relocations_are_applied() {
    // `ptr` holds the link-time address of `msg`; after relocation it must
    // equal msg's run-time address.
    let body = r#"
    lea msg(%rip), %rax
    cmp ptr(%rip), %rax
    jne 1f
    hc_exit $7
1:  hc_exit $1
    .data
msg: .ascii "hi"
    .balign 8
ptr: .quad msg
"#;
    assert_eq!(run(build_guest("reloc", body)).unwrap(), 7);
}

#[test]
fn guest_sees_its_boot_info() {
    // rdi = BootInfo; its magic must be there and argc == 1.
    let body = r#"
    movabs $0x727669736f720001, %rax
    cmp (%rdi), %rax
    jne 1f
    cmpl $1, 72(%rdi)           /* BootInfo::argc */
    jne 1f
    hc_exit $9
1:  hc_exit $1
"#;
    assert_eq!(run(build_guest("bootinfo", body)).unwrap(), 9);
}

#[test]
fn a_crashing_guest_does_not_take_the_vmm_down() {
    // No IDT gates: #UD becomes a triple fault; the VMM reports it.
    let status = run(build_guest("crash", "ud2")).unwrap();
    assert_eq!(status, platform_kvm::hypercall::SENTRY_PANIC_STATUS);
}

#[test]
fn a_hostile_hypercall_is_refused_not_obeyed() {
    // ConsoleWrite from an address far outside guest memory, then exit
    // with the returned value's sign.
    let body = r#"
    movabs $0xffff888000100000, %rbx
    movq $1, (%rbx)
    movabs $0x7fffffffffff0000, %rax
    movq %rax, 8(%rbx)
    movq $100, 16(%rbx)
    movabs $0x8000000000000000, %rax
    movq %rax, 56(%rbx)
2:  mov $0x1009, %eax
    xor %ecx, %ecx
    xor %edx, %edx
    push %rbx
    xor %ebx, %ebx
    int $0x1b
    pop %rbx
    movabs $0x8000000000000000, %rax
    cmp 56(%rbx), %rax
    je 2b
    cmpq $-14, 56(%rbx)      /* -EFAULT */
    jne 1f
    hc_exit $3
1:  hc_exit $1
"#;
    assert_eq!(run(build_guest("hostile", body)).unwrap(), 3);
}

#[test]
fn garbage_images_are_rejected() {
    let err = run(b"not an elf at all".to_vec()).unwrap_err();
    assert!(matches!(err, platform_kvm::Error::Image(_)), "{err}");
}
