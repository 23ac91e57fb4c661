//! The initial stack of a new program, laid out as Linux does
//! (fs/binfmt_elf.c `create_elf_tables`): from the top, 8 zero bytes, the
//! executable's name (AT_EXECFN), the argv and envp strings, the platform
//! string, 16 random bytes; then, 16-byte aligned, argc, argv[], NULL,
//! envp[], NULL and the auxiliary vector.

use alloc::vec;
use alloc::vec::Vec;

use crate::errno::Errno;

pub const AT_NULL: u64 = 0;
pub const AT_PHDR: u64 = 3;
pub const AT_PHENT: u64 = 4;
pub const AT_PHNUM: u64 = 5;
pub const AT_PAGESZ: u64 = 6;
pub const AT_BASE: u64 = 7;
pub const AT_FLAGS: u64 = 8;
pub const AT_ENTRY: u64 = 9;
pub const AT_UID: u64 = 11;
pub const AT_EUID: u64 = 12;
pub const AT_GID: u64 = 13;
pub const AT_EGID: u64 = 14;
pub const AT_PLATFORM: u64 = 15;
pub const AT_HWCAP: u64 = 16;
pub const AT_CLKTCK: u64 = 17;
pub const AT_SECURE: u64 = 23;
pub const AT_RANDOM: u64 = 25;
pub const AT_HWCAP2: u64 = 26;
pub const AT_EXECFN: u64 = 31;
pub const AT_SYSINFO_EHDR: u64 = 33;
pub const AT_MINSIGSTKSZ: u64 = 51;

/// Linux's limit on argument plus environment strings (ARG_MAX-ish: a
/// quarter of the default 8 MiB stack).
pub const MAX_ARG_BYTES: usize = 2 << 20;

/// The initial stack: `bytes` go at `[sp, top)`.
#[derive(Debug)]
pub struct StackImage {
    pub sp: u64,
    pub bytes: Vec<u8>,
}

/// Builds the stack image below `top`. `aux` must not contain AT_RANDOM,
/// AT_EXECFN or AT_PLATFORM: those point into the image and are added here.
pub fn build(top: u64, argv: &[&[u8]], envp: &[&[u8]], execfn: &[u8], random: [u8; 16], aux: &[(u64, u64)]) -> Result<StackImage, Errno> {
    let strings: usize = argv.iter().chain(envp).map(|s| s.len() + 1).sum();
    if strings + execfn.len() + 1 > MAX_ARG_BYTES {
        return Err(Errno::E2BIG);
    }
    // Addresses, top down.
    let mut p = top - 8;
    p -= execfn.len() as u64 + 1;
    let execfn_at = p;
    p -= strings as u64;
    let strings_at = p;
    let platform = b"x86_64\0";
    p -= platform.len() as u64;
    let platform_at = p;
    p -= 16;
    let random_at = p;
    p &= !15;
    let mut aux_all: Vec<(u64, u64)> = aux.to_vec();
    aux_all.push((AT_RANDOM, random_at));
    aux_all.push((AT_EXECFN, execfn_at));
    aux_all.push((AT_PLATFORM, platform_at));
    aux_all.push((AT_NULL, 0));
    let words = 1 + argv.len() + 1 + envp.len() + 1 + 2 * aux_all.len();
    let sp = (p - 8 * words as u64) & !15;

    let mut bytes = vec![0u8; (top - sp) as usize];
    let at = |addr: u64| (addr - sp) as usize;
    let put = |bytes: &mut Vec<u8>, addr: u64, data: &[u8]| {
        let o = at(addr);
        bytes[o..o + data.len()].copy_from_slice(data);
    };
    put(&mut bytes, execfn_at, execfn);
    let mut s = strings_at;
    let mut ptrs = Vec::with_capacity(argv.len() + envp.len());
    for str in argv.iter().chain(envp) {
        ptrs.push(s);
        put(&mut bytes, s, str);
        s += str.len() as u64 + 1;
    }
    put(&mut bytes, platform_at, platform);
    put(&mut bytes, random_at, &random);
    let mut w = sp;
    let mut word = |bytes: &mut Vec<u8>, v: u64| {
        put(bytes, w, &v.to_le_bytes());
        w += 8;
    };
    word(&mut bytes, argv.len() as u64);
    for &ptr in &ptrs[..argv.len()] {
        word(&mut bytes, ptr);
    }
    word(&mut bytes, 0);
    for &ptr in &ptrs[argv.len()..] {
        word(&mut bytes, ptr);
    }
    word(&mut bytes, 0);
    for (k, v) in aux_all {
        word(&mut bytes, k);
        word(&mut bytes, v);
    }
    Ok(StackImage { sp, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u64_at(img: &StackImage, addr: u64) -> u64 {
        let o = (addr - img.sp) as usize;
        u64::from_le_bytes(img.bytes[o..o + 8].try_into().unwrap())
    }

    fn cstr_at(img: &StackImage, addr: u64) -> Vec<u8> {
        let o = (addr - img.sp) as usize;
        img.bytes[o..].iter().take_while(|&&b| b != 0).copied().collect()
    }

    #[test]
    fn layout_matches_linux() {
        let top = 0x7fff_ffff_f000;
        let img = build(top, &[b"prog", b"-x"], &[b"A=1"], b"/bin/prog", [7; 16], &[(AT_PAGESZ, 4096)]).unwrap();
        assert_eq!(img.sp % 16, 0);
        assert_eq!(u64_at(&img, img.sp), 2);
        assert_eq!(cstr_at(&img, u64_at(&img, img.sp + 8)), b"prog");
        assert_eq!(cstr_at(&img, u64_at(&img, img.sp + 16)), b"-x");
        assert_eq!(u64_at(&img, img.sp + 24), 0);
        assert_eq!(cstr_at(&img, u64_at(&img, img.sp + 32)), b"A=1");
        assert_eq!(u64_at(&img, img.sp + 40), 0);
        // auxv
        let mut a = img.sp + 48;
        let mut found = std::collections::HashMap::new();
        loop {
            let (k, v) = (u64_at(&img, a), u64_at(&img, a + 8));
            if k == AT_NULL {
                break;
            }
            found.insert(k, v);
            a += 16;
        }
        assert_eq!(found[&AT_PAGESZ], 4096);
        assert_eq!(cstr_at(&img, found[&AT_EXECFN]), b"/bin/prog");
        assert_eq!(cstr_at(&img, found[&AT_PLATFORM]), b"x86_64");
        let r = (found[&AT_RANDOM] - img.sp) as usize;
        assert_eq!(&img.bytes[r..r + 16], &[7; 16]);
        // The top 8 bytes are zero.
        assert_eq!(u64_at(&img, top - 8), 0);
    }

    #[test]
    fn too_many_args() {
        let big = vec![b'a'; MAX_ARG_BYTES];
        assert_eq!(build(0x7fff_ffff_f000, &[&big], &[], b"x", [0; 16], &[]).unwrap_err(), Errno::E2BIG);
    }
}
