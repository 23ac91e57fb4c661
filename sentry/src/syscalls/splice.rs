//! Moving data between files without a user buffer: sendfile, splice,
//! tee, vmsplice, copy_file_range (Linux: fs/splice.c, fs/read_write.c).
//!
//! Data goes through a sentry buffer of up to `CHUNK` bytes with each
//! file's `splice_read`/`splice_write` (a host-backed file fills it and
//! empties it with one host call per chunk). Pipes take part through their
//! own primitives (`PipeEnd::wait_data`, `wait_room`, `peek`, `consume`,
//! `push`), so a splice leaves bytes that did not go out in the pipe.

use alloc::vec::Vec;

use super::file::{file_for, fsize_room, kind_of, positional, read_iovecs};
use super::Args;
use crate::errno::{Errno, SysResult};
use crate::fs::inotify::{IN_ACCESS, IN_MODIFY};
use crate::fs::pipe::{pipe_of, PipeEnd};
use crate::fs::OpenFile;
use crate::kernel::task::Task;
use crate::vfs::Kind;

/// Linux caps one transfer at this many bytes (MAX_RW_COUNT).
const MAX_RW: usize = 0x7fff_f000;
/// The sentry buffer a transfer goes through: big enough that a copy
/// between host files takes few host round trips.
const CHUNK: usize = 1 << 20;

const SPLICE_F_NONBLOCK: u32 = 0x2;
/// MOVE, NONBLOCK, MORE, GIFT: MOVE and GIFT are hints (pages are always
/// copied), MORE only matters to a socket's batching.
const SPLICE_F_ALL: u32 = 0xf;

const O_APPEND: u32 = 0o2000;
const SEEK_SET: u32 = 0;
const SEEK_CUR: u32 = 1;

/// A zeroed buffer of `n` bytes, or ENOMEM if the sentry heap cannot hold it.
fn buffer(n: usize) -> Result<Vec<u8>, Errno> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Errno::ENOMEM)?;
    v.resize(n, 0);
    Ok(v)
}

/// Linux's rw_verify_area for an offset a transfer of `len` starts at.
fn check_range(off: i64, len: usize) -> Result<(), Errno> {
    if isize::try_from(len).is_err() || off < 0 || off.checked_add(len as i64).is_none() {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// The offset behind a user `loff_t *` (0: none).
fn read_off(t: &Task, va: u64) -> Result<Option<i64>, Errno> {
    if va == 0 {
        return Ok(None);
    }
    t.mm.lock().read_obj::<i64>(va).map(Some)
}

fn write_off(t: &Task, va: u64, v: Option<i64>) -> Result<(), Errno> {
    match v {
        Some(v) if va != 0 => t.mm.lock().write_obj(va, &v),
        _ => Ok(()),
    }
}

/// `r`, or the bytes already moved if there are some (a transfer stopped
/// by an error or a signal reports what it did).
fn partial(done: usize, r: Errno) -> SysResult {
    if done > 0 {
        Ok(done as u64)
    } else {
        Err(r)
    }
}

/// Writes `data` to `out` at `*off` (None: at its position), as much as it
/// takes within RLIMIT_FSIZE: the bytes written, and the error that
/// stopped it short if one did.
fn write_out(t: &Task, out: &OpenFile, data: &[u8], off: &mut Option<u64>) -> (usize, Option<Errno>) {
    let mut done = 0;
    while done < data.len() {
        let left = data.len() - done;
        let room = match fsize_room(t, out, left, *off) {
            Ok(r) => r,
            Err(e) => return (done, Some(e)),
        };
        match out.ops.splice_write(t, &data[done..done + room], *off, out.nonblock()) {
            Ok(0) => break,
            Ok(n) => {
                let n = (n as usize).min(room);
                done += n;
                if let Some(o) = off {
                    *o += n as u64;
                }
                // Cut short by the limit: the next call gets EFBIG.
                if room < left && n == room {
                    break;
                }
            }
            Err(e) => return (done, Some(e)),
        }
    }
    (done, None)
}

/// Copies up to `len` bytes from `inf` to `out`, neither of them a pipe
/// (Linux: do_splice_direct). `in_off`/`out_off` None use and advance the
/// files' positions; an input position moves only past bytes that went
/// out, as Linux's.
fn direct(t: &Task, inf: &OpenFile, in_off: &mut Option<u64>, out: &OpenFile, out_off: &mut Option<u64>, len: usize) -> SysResult {
    let mut buf = buffer(len.min(CHUNK))?;
    let mut done = 0usize;
    while done < len {
        if done > 0 && t.shared.killed.load(core::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let want = (len - done).min(buf.len());
        let n = match inf.ops.splice_read(t, &mut buf[..want], *in_off, false) {
            Ok(n) => (n as usize).min(want),
            Err(e) => return partial(done, e),
        };
        if n == 0 {
            break;
        }
        let (w, err) = write_out(t, out, &buf[..n], out_off);
        match in_off {
            Some(o) => *o += w as u64,
            // The unwritten rest is read again next time.
            None if w < n => {
                let _ = inf.ops.seek(-((n - w) as i64), SEEK_CUR);
            }
            None => {}
        }
        done += w;
        if let Some(e) = err {
            return partial(done, e);
        }
        if w < n {
            break;
        }
    }
    Ok(done as u64)
}

/// Moves up to `len` bytes from `inf` into `pipe`: waits for room once
/// (`nonblock`: EAGAIN instead), then reads as much as fits, waiting for
/// input unless `in_nonblock` (Linux: splice_file_to_pipe).
fn to_pipe(t: &Task, inf: &OpenFile, in_off: &mut Option<u64>, pipe: &PipeEnd, len: usize, nonblock: bool, in_nonblock: bool) -> SysResult {
    let room = pipe.wait_room(t, nonblock)?;
    let mut buf = buffer(len.min(room).min(CHUNK))?;
    if buf.is_empty() {
        return Ok(0);
    }
    let n = (inf.ops.splice_read(t, &mut buf, *in_off, in_nonblock)? as usize).min(buf.len());
    pipe.push(&buf[..n]);
    if let Some(o) = in_off {
        *o += n as u64;
    }
    Ok(n as u64)
}

/// Moves up to `len` bytes from `pipe` to `out`: waits for data once, then
/// writes what the pipe holds; bytes `out` did not take stay in the pipe
/// (Linux: splice_from_pipe).
fn from_pipe(t: &Task, pipe: &PipeEnd, out: &OpenFile, out_off: &mut Option<u64>, len: usize, nonblock: bool) -> SysResult {
    if !pipe.wait_data(t, nonblock)? {
        return Ok(0);
    }
    let mut done = 0usize;
    while done < len {
        let data = pipe.peek((len - done).min(CHUNK));
        if data.is_empty() {
            break;
        }
        let (w, err) = write_out(t, out, &data, out_off);
        pipe.consume(w);
        done += w;
        if let Some(e) = err {
            return partial(done, e);
        }
        if w < data.len() {
            break;
        }
    }
    Ok(done as u64)
}

/// Moves up to `len` bytes between two pipes, or copies them (`keep`: tee)
/// (Linux: splice_pipe_to_pipe, link_pipe).
fn pipe_to_pipe(t: &Task, from: &PipeEnd, to: &PipeEnd, len: usize, nonblock: bool, keep: bool) -> SysResult {
    if !from.wait_data(t, nonblock)? {
        return Ok(0);
    }
    let room = to.wait_room(t, nonblock)?;
    let data = from.peek(len.min(room));
    to.push(&data);
    if !keep {
        from.consume(data.len());
    }
    Ok(data.len() as u64)
}

/// The position of `f`, for a transfer that names none.
fn position(f: &OpenFile) -> Result<u64, Errno> {
    f.ops.seek(0, SEEK_CUR)
}

pub fn sys_sendfile(t: &mut Task, a: &Args) -> SysResult {
    let (out_fd, in_fd, off_va, count) = (a.fd(0), a.fd(1), a.u64(2), a.usize(3));
    let mut pos = read_off(t, off_va)?;
    let r = sendfile(t, out_fd, in_fd, &mut pos, count);
    // Linux stores the offset back whatever happened.
    write_off(t, off_va, pos)?;
    r
}

fn sendfile(t: &Task, out_fd: i32, in_fd: i32, pos: &mut Option<i64>, count: usize) -> SysResult {
    let inf = file_for(t, in_fd, false)?;
    if let Some(p) = *pos {
        if !positional(&inf) {
            return Err(Errno::ESPIPE);
        }
        check_range(p, count)?;
    } else if isize::try_from(count).is_err() {
        return Err(Errno::EINVAL);
    }
    let count = count.min(MAX_RW);
    let out = file_for(t, out_fd, true)?;
    // Directories have no splice_read.
    if kind_of(&inf)? == Kind::Dir {
        return Err(Errno::EINVAL);
    }
    let mut in_off = pos.map(|p| p as u64);
    let r = if let Some(pipe) = pipe_of(&out) {
        to_pipe(t, &inf, &mut in_off, pipe, count, out.nonblock(), inf.nonblock())
    } else {
        if out.flags() & O_APPEND != 0 {
            return Err(Errno::EINVAL);
        }
        // The input must be seekable, so bytes read but not written can
        // be read again (Linux: splice_direct_to_actor).
        if kind_of(&inf)? != Kind::File {
            return Err(Errno::EINVAL);
        }
        direct(t, &inf, &mut in_off, &out, &mut None, count)
    };
    if let (Some(p), Some(o)) = (pos.as_mut(), in_off) {
        *p = o as i64;
    }
    if matches!(r, Ok(1..)) {
        inf.notify(&r, IN_ACCESS);
        out.notify(&r, IN_MODIFY);
    }
    r
}

pub fn sys_splice(t: &mut Task, a: &Args) -> SysResult {
    let (in_fd, off_in_va, out_fd, off_out_va, len, flags) = (a.fd(0), a.u64(1), a.fd(2), a.u64(3), a.usize(4), a.u32(5));
    if len == 0 {
        return Ok(0);
    }
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    let inf = t.fds.lock().get(in_fd)?;
    let out = t.fds.lock().get(out_fd)?;
    const O_PATH: u32 = 0o10000000;
    if (inf.flags() | out.flags()) & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    let (ipipe, opipe) = (pipe_of(&inf), pipe_of(&out));
    if (ipipe.is_some() && off_in_va != 0) || (opipe.is_some() && off_out_va != 0) {
        return Err(Errno::ESPIPE);
    }
    let mut off_in = read_off(t, off_in_va)?;
    let mut off_out = read_off(t, off_out_va)?;
    let (inf, out) = (file_for(t, in_fd, false)?, file_for(t, out_fd, true)?);
    let nonblock = flags & SPLICE_F_NONBLOCK != 0;
    let r = match (ipipe, opipe) {
        (Some(i), Some(o)) => {
            if i.same_pipe(o) {
                return Err(Errno::EINVAL);
            }
            pipe_to_pipe(t, i, o, len, nonblock || inf.nonblock() || out.nonblock(), false)
        }
        (Some(i), None) => {
            if let Some(o) = off_out {
                if !positional(&out) {
                    return Err(Errno::EINVAL);
                }
                check_range(o, len)?;
            }
            if out.flags() & O_APPEND != 0 {
                return Err(Errno::EINVAL);
            }
            let mut o = off_out.map(|o| o as u64);
            let r = from_pipe(t, i, &out, &mut o, len, nonblock || inf.nonblock());
            off_out = o.map(|o| o as i64);
            r
        }
        (None, Some(o)) => {
            if let Some(p) = off_in {
                if !positional(&inf) {
                    return Err(Errno::EINVAL);
                }
                check_range(p, len)?;
            }
            if kind_of(&inf)? == Kind::Dir {
                return Err(Errno::EINVAL);
            }
            let mut i = off_in.map(|p| p as u64);
            let r = to_pipe(t, &inf, &mut i, o, len, nonblock || out.nonblock(), nonblock || inf.nonblock());
            off_in = i.map(|p| p as i64);
            r
        }
        (None, None) => return Err(Errno::EINVAL),
    };
    let n = r?;
    if n > 0 {
        inf.notify(&r, IN_ACCESS);
        out.notify(&r, IN_MODIFY);
    }
    write_off(t, off_in_va, off_in)?;
    write_off(t, off_out_va, off_out)?;
    Ok(n)
}

pub fn sys_tee(t: &mut Task, a: &Args) -> SysResult {
    let (in_fd, out_fd, len, flags) = (a.fd(0), a.fd(1), a.usize(2), a.u32(3));
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let inf = file_for(t, in_fd, false)?;
    let out = file_for(t, out_fd, true)?;
    match (pipe_of(&inf), pipe_of(&out)) {
        (Some(i), Some(o)) if !i.same_pipe(o) => {
            let nonblock = flags & SPLICE_F_NONBLOCK != 0 || inf.nonblock() || out.nonblock();
            pipe_to_pipe(t, i, o, len, nonblock, true)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_vmsplice(t: &mut Task, a: &Args) -> SysResult {
    const O_ACCMODE: u32 = 3;
    const O_PATH: u32 = 0o10000000;
    let (fd, iov, cnt, flags) = (a.fd(0), a.u64(1), a.u64(2), a.u32(3));
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    let f = t.fds.lock().get(fd)?;
    if f.flags() & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    // A writable end (an O_RDWR FIFO too) takes the user's bytes, a read
    // end gives them.
    let into_pipe = match f.flags() & O_ACCMODE {
        1 | 2 => true,
        0 => false,
        _ => return Err(Errno::EBADF),
    };
    let segs = read_iovecs(t, iov, cnt)?;
    let total = segs.iter().map(|s| s.1).sum::<usize>();
    if total == 0 {
        return Ok(0);
    }
    let pipe = pipe_of(&f).ok_or(Errno::EBADF)?;
    let nonblock = flags & SPLICE_F_NONBLOCK != 0;
    let n = if into_pipe {
        let room = pipe.wait_room(t, nonblock)?;
        let mut data = buffer(total.min(room))?;
        let mut got = 0;
        {
            let mut mm = t.mm.lock();
            for &(addr, len) in &segs {
                let n = len.min(data.len() - got);
                if n == 0 {
                    break;
                }
                if let Err(e) = mm.copy_in(addr, &mut data[got..got + n]) {
                    if got == 0 {
                        return Err(e);
                    }
                    break;
                }
                got += n;
            }
        }
        pipe.push(&data[..got]);
        got
    } else {
        if !pipe.wait_data(t, nonblock)? {
            return Ok(0);
        }
        let data = pipe.peek(total);
        let mut put = 0;
        {
            let mut mm = t.mm.lock();
            for &(addr, len) in &segs {
                let n = len.min(data.len() - put);
                if n == 0 {
                    break;
                }
                if let Err(e) = mm.copy_out(addr, &data[put..put + n]) {
                    if put == 0 {
                        return Err(e);
                    }
                    break;
                }
                put += n;
            }
        }
        pipe.consume(put);
        put
    };
    let r = Ok(n as u64);
    f.notify(&r, if into_pipe { IN_MODIFY } else { IN_ACCESS });
    r
}

pub fn sys_copy_file_range(t: &mut Task, a: &Args) -> SysResult {
    let (in_fd, off_in_va, out_fd, off_out_va, len, flags) = (a.fd(0), a.u64(1), a.fd(2), a.u64(3), a.usize(4), a.u32(5));
    const O_PATH: u32 = 0o10000000;
    let inf = t.fds.lock().get(in_fd)?;
    let out = t.fds.lock().get(out_fd)?;
    if (inf.flags() | out.flags()) & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    let off_in = read_off(t, off_in_va)?;
    let off_out = read_off(t, off_out_va)?;
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let (kin, kout) = (kind_of(&inf)?, kind_of(&out)?);
    if kin == Kind::Dir || kout == Kind::Dir {
        return Err(Errno::EISDIR);
    }
    if kin != Kind::File || kout != Kind::File {
        return Err(Errno::EINVAL);
    }
    if file_for(t, in_fd, false).is_err() || file_for(t, out_fd, true).is_err() || out.flags() & O_APPEND != 0 {
        return Err(Errno::EBADF);
    }
    let pos_in = match off_in {
        Some(p) => p,
        None => position(&inf)? as i64,
    };
    let pos_out = match off_out {
        Some(p) => p,
        None => position(&out)? as i64,
    };
    // Linux compares as unsigned: only a sum past 2^64 overflows.
    if (pos_in as u64).checked_add(len as u64).is_none() || (pos_out as u64).checked_add(len as u64).is_none() {
        return Err(Errno::EOVERFLOW);
    }
    // Shortened to the end of the input.
    // (In i128: a negative offset fails below, but must not overflow here.)
    let size_in = inf.ops.stat()?.st_size;
    let avail = (i128::from(size_in) - i128::from(pos_in)).max(0);
    let mut count = if pos_in >= size_in { 0 } else { len.min(usize::try_from(avail).unwrap_or(usize::MAX)) };
    if pos_out >= 0 && count > 0 {
        count = fsize_room(t, &out, count, Some(pos_out as u64))?;
    }
    let same = match (&inf.loc, &out.loc) {
        (Some(a), Some(b)) => a.inode.id() == b.inode.id(),
        _ => false,
    };
    let (pi, po, c) = (i128::from(pos_in), i128::from(pos_out), count as i128);
    if same && po + c > pi && pi + c > po {
        return Err(Errno::EINVAL);
    }
    check_range(pos_in, count)?;
    check_range(pos_out, count)?;
    if count == 0 {
        return Ok(0);
    }
    let (mut i, mut o) = (Some(pos_in as u64), Some(pos_out as u64));
    let r = direct(t, &inf, &mut i, &out, &mut o, count.min(MAX_RW));
    let n = r?;
    if n > 0 {
        inf.notify(&r, IN_ACCESS);
        out.notify(&r, IN_MODIFY);
        let (new_in, new_out) = (pos_in + n as i64, pos_out + n as i64);
        match off_in {
            Some(_) => write_off(t, off_in_va, Some(new_in))?,
            None => {
                inf.ops.seek(new_in, SEEK_SET)?;
            }
        }
        match off_out {
            Some(_) => write_off(t, off_out_va, Some(new_out))?,
            None => {
                out.ops.seek(new_out, SEEK_SET)?;
            }
        }
    }
    Ok(n)
}
