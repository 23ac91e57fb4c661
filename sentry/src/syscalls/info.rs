//! System information: uname, sysinfo, getrandom.

use alloc::vec;

use super::Args;
use crate::errno::{Errno, SysResult};
use crate::kernel::task::Task;

pub fn sys_uname(t: &mut Task, a: &Args) -> SysResult {
    let k = crate::kernel::get();
    let mut buf = [0u8; 65 * 6];
    let fields: [&str; 6] = ["Linux", &k.uts[0], &k.uts[1], &k.uts[2], "x86_64", "(none)"];
    for (i, f) in fields.iter().enumerate() {
        let b = f.as_bytes();
        let n = b.len().min(64);
        buf[i * 65..i * 65 + n].copy_from_slice(&b[..n]);
    }
    t.mm.lock().copy_out(a.u64(0), &buf).map(|()| 0)
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
