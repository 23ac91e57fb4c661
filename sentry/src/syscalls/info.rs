//! System information: uname, sysinfo, getrandom.

use alloc::vec;
use alloc::vec::Vec;

use super::Args;
use crate::errno::{Errno, SysResult};
use crate::kernel::creds::CAP_SYS_ADMIN;
use crate::kernel::task::Task;

pub fn sys_uname(t: &mut Task, a: &Args) -> SysResult {
    let k = crate::kernel::get();
    let mut buf = [0u8; 65 * 6];
    let uts = crate::kernel::UTS.read();
    let fields: [&[u8]; 6] = [b"Linux", &uts.nodename, k.uts[1].as_bytes(), k.uts[2].as_bytes(), b"x86_64", &uts.domainname];
    for (i, f) in fields.iter().enumerate() {
        let n = f.len().min(64);
        buf[i * 65..i * 65 + n].copy_from_slice(&f[..n]);
    }
    drop(uts);
    t.mm.lock().copy_out(a.u64(0), &buf).map(|()| 0)
}

/// sethostname/setdomainname: privileged, at most 64 bytes, stored as
/// given (no NUL needed, any bytes allowed).
fn set_uts_name(t: &mut Task, a: &Args, field: fn(&mut crate::kernel::Uts) -> &mut Vec<u8>) -> SysResult {
    if !t.creds.capable(CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    let len = usize::try_from(a.i32(1)).map_err(|_| Errno::EINVAL)?;
    if len > crate::kernel::UTS_NAME_MAX {
        return Err(Errno::EINVAL);
    }
    let mut name = vec![0u8; len];
    t.mm.lock().copy_in(a.u64(0), &mut name)?;
    *field(&mut crate::kernel::UTS.write()) = name;
    Ok(0)
}

pub fn sys_sethostname(t: &mut Task, a: &Args) -> SysResult {
    set_uts_name(t, a, |u| &mut u.nodename)
}

pub fn sys_setdomainname(t: &mut Task, a: &Args) -> SysResult {
    set_uts_name(t, a, |u| &mut u.domainname)
}

pub fn sys_sysinfo(t: &mut Task, a: &Args) -> SysResult {
    let k = crate::kernel::get();
    let mut b = [0u8; 112];
    let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
    put(0, &(crate::kernel::clock::uptime_ns() / 1_000_000_000).to_le_bytes());
    put(32, &k.mem_size.to_le_bytes());
    put(40, &(crate::mm::frame::available() * 4096).to_le_bytes());
    put(80, &1u16.to_le_bytes()); // procs
    put(104, &1u32.to_le_bytes()); // mem_unit
    t.mm.lock().copy_out(a.u64(0), &b).map(|()| 0)
}

pub fn sys_getrandom(t: &mut Task, a: &Args) -> SysResult {
    const GRND_NONBLOCK: u32 = 1;
    const GRND_RANDOM: u32 = 2;
    const GRND_INSECURE: u32 = 4;
    let flags = a.u32(2);
    if flags & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0 || flags & (GRND_RANDOM | GRND_INSECURE) == (GRND_RANDOM | GRND_INSECURE) {
        return Err(Errno::EINVAL);
    }
    let len = a.usize(1).min(33_554_431);
    let mut done = 0;
    while done < len {
        let n = (len - done).min(4096);
        let mut buf = vec![0u8; n];
        crate::kernel::random::fill(&mut buf);
        t.mm.lock().copy_out(a.u64(0) + done as u64, &buf)?;
        done += n;
    }
    Ok(len as u64)
}
