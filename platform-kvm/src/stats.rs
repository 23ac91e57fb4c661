//! KVM's binary statistics (KVM_GET_STATS_FD) of a vCPU or VM: exits,
//! emulated instructions, shadow page faults... For performance work:
//! `RVISOR_KVM_STATS=1` prints a vCPU's non-zero counters when it stops.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const KVM_GET_STATS_FD: libc::c_ulong = 0xae_ce; // _IO(KVMIO, 0xce)

/// Reads all counters of the KVM object behind `fd` as (name, value).
pub fn read(fd: &impl AsRawFd) -> std::io::Result<Vec<(String, u64)>> {
    // SAFETY: KVM_GET_STATS_FD takes no argument and returns a new fd.
    let sfd = unsafe { libc::ioctl(fd.as_raw_fd(), KVM_GET_STATS_FD, 0) };
    if sfd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd owned by nobody else.
    let sfd = unsafe { OwnedFd::from_raw_fd(sfd) };
    let f = std::fs::File::from(sfd);
    use std::os::unix::fs::FileExt;
    let mut hdr = [0u8; 24];
    f.read_exact_at(&mut hdr, 0)?;
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or([0; 4]));
    let (name_size, num_desc, desc_off, data_off) =
        (u32_at(&hdr, 4) as usize, u32_at(&hdr, 8) as usize, u64::from(u32_at(&hdr, 16)), u64::from(u32_at(&hdr, 20)));
    // struct kvm_stats_desc: flags u32, exponent i16, size u16, offset u32, bucket_size u32, name[name_size]
    let dsz = 16 + name_size;
    let mut descs = vec![0u8; dsz * num_desc.min(4096)];
    f.read_exact_at(&mut descs, desc_off)?;
    let mut out = Vec::new();
    for d in descs.chunks(dsz) {
        let size = u16::from_le_bytes([d[6], d[7]]);
        let offset = u64::from(u32_at(d, 8));
        let name: String = d[16..].iter().take_while(|&&c| c != 0).map(|&c| c as char).collect();
        if size == 0 {
            continue;
        }
        let mut v = [0u8; 8];
        f.read_exact_at(&mut v, data_off + offset)?;
        out.push((name, u64::from_le_bytes(v)));
    }
    Ok(out)
}

/// Prints the non-zero counters of `fd` to stderr.
pub fn print(tag: &str, fd: &impl AsRawFd) {
    match read(fd) {
        Ok(v) => {
            let s: Vec<String> = v.into_iter().filter(|(_, x)| *x != 0).map(|(n, x)| format!("{n}={x}")).collect();
            eprintln!("[kvm {tag}] {}", s.join(" "));
        }
        Err(e) => eprintln!("[kvm {tag}] stats unavailable: {e}"),
    }
}
