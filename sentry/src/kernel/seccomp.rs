//! Seccomp, both kinds: the container's profile (`linux.seccomp`) and
//! the filters applications install themselves (seccomp(2),
//! prctl(PR_SET_SECCOMP)). The sandbox's syscalls never reach the host,
//! so the sentry is where their answers (errno, kill, trap) come from.
//!
//! The profile is the oldest filter of every task (runc installs it
//! before the container's program runs). Its rules act as libseccomp
//! compiles them: the matching rule with the strongest action wins, else
//! the default action. The VMM passes it as text (see `parse`); the CLI
//! has already resolved names and rejected unknown actions.
//!
//! An application's filters are classic BPF programs over `seccomp_data`,
//! checked as Linux checks them (seccomp_check_filter) and run newest
//! first; the strongest action of all filters wins, the newest one among
//! equals (Linux: seccomp_run_filters).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
use spin::RwLock;

use super::super::syscalls::names::NR_SYSCALLS;
use super::task::Task;
use crate::errno::{Errno, SysResult};

/// What a rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Allow,
    Log,
    Errno(u16),
    Trap,
    KillThread,
    KillProcess,
}

impl Action {
    fn strength(self) -> u8 {
        match self {
            Action::Allow => 0,
            Action::Log => 1,
            Action::Errno(_) => 2,
            Action::Trap => 3,
            Action::KillThread => 4,
            Action::KillProcess => 5,
        }
    }

    /// The filter return value of this action (SECCOMP_RET_*).
    fn ret(self) -> u32 {
        match self {
            Action::Allow => RET_ALLOW,
            Action::Log => RET_LOG,
            Action::Errno(e) => RET_ERRNO | u32::from(e),
            Action::Trap => RET_TRAP,
            Action::KillThread => RET_KILL_THREAD,
            Action::KillProcess => RET_KILL_PROCESS,
        }
    }

    fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "allow" => Action::Allow,
            "log" => Action::Log,
            "trap" => Action::Trap,
            "kill" => Action::KillThread,
            "killp" => Action::KillProcess,
            _ => Action::Errno(s.strip_prefix("errno:")?.parse().ok()?),
        })
    }
}

/// A comparison of one argument (libseccomp's `SCMP_CMP_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ArgCmp {
    index: usize,
    op: u8,
    value: u64,
    value_two: u64,
}

impl ArgCmp {
    fn matches(&self, args: &[u64; 6]) -> bool {
        let a = args[self.index];
        match self.op {
            1 => a != self.value,
            2 => a < self.value,
            3 => a <= self.value,
            4 => a == self.value,
            5 => a >= self.value,
            6 => a > self.value,
            7 => a & self.value == self.value_two,
            _ => false,
        }
    }
}

#[derive(Clone, Debug)]
struct Rule {
    action: Action,
    args: Vec<ArgCmp>,
}

/// A parsed profile.
pub struct Filter {
    default: Action,
    rules: Vec<Vec<Rule>>,
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static FILTER: RwLock<Option<Filter>> = RwLock::new(None);

/// Parses "default=A;NR,A[,I:OP:V:V2...];..." where A is allow, log,
/// trap, kill, killp or errno:N. None if malformed.
pub fn parse(text: &str) -> Option<Filter> {
    let mut parts = text.split(';');
    let default = Action::parse(parts.next()?.strip_prefix("default=")?)?;
    let mut rules: Vec<Vec<Rule>> = (0..NR_SYSCALLS).map(|_| Vec::new()).collect();
    for p in parts.filter(|p| !p.is_empty()) {
        let mut f = p.split(',');
        let nr: usize = f.next()?.parse().ok()?;
        let action = Action::parse(f.next()?)?;
        let mut args = Vec::new();
        for c in f {
            let v: Vec<u64> = c.split(':').filter_map(|x| x.parse().ok()).collect();
            let [index, op, value, value_two] = v[..] else { return None };
            if index > 5 || !(1..=7).contains(&op) {
                return None;
            }
            args.push(ArgCmp { index: index as usize, op: op as u8, value, value_two });
        }
        rules.get_mut(nr)?.push(Rule { action, args });
    }
    Some(Filter { default, rules })
}

/// Installs the container's profile.
pub fn install(f: Filter) {
    *FILTER.write() = Some(f);
    ENABLED.store(true, Ordering::Release);
}

/// The container profile's answer as a filter return value.
fn profile_ret(nr: u64, args: &[u64; 6]) -> Option<u32> {
    if !ENABLED.load(Ordering::Acquire) {
        return None;
    }
    let g = FILTER.read();
    Some(decide(g.as_ref()?, nr, args).ret())
}

// Filter return values (Linux uapi seccomp.h): the action in the high
// 16 bits, its data (an errno) in the low ones.
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_KILL_THREAD: u32 = 0;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ACTION_FULL: u32 = 0xffff_0000;
const RET_DATA: u32 = 0xffff;

/// AUDIT_ARCH_X86_64: `seccomp_data.arch` and SIGSYS's si_arch.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// Most instructions of one program (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;
/// Most instructions on a task's filter stack, each filter counting 4
/// more (Linux: MAX_INSNS_PER_PATH).
const MAX_INSNS_PER_PATH: usize = 32768;
/// Size of `seccomp_data`: nr, arch, instruction_pointer, args[6].
const DATA_LEN: u32 = 64;

/// The order of actions: lower is stronger (Linux compares them as s32).
fn rank(ret: u32) -> i32 {
    (ret & RET_ACTION_FULL) as i32
}

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Clone, Copy, Debug)]
struct Insn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

// Classic BPF opcode parts.
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const STX: u16 = 0x03;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;
const W: u16 = 0x00;
const IMM: u16 = 0x00;
const ABS: u16 = 0x20;
const MEM: u16 = 0x60;
const LEN: u16 = 0x80;
const K: u16 = 0x00;
const X: u16 = 0x08;
const RET_A: u16 = 0x10;
const ADD: u16 = 0x00;
const SUB: u16 = 0x10;
const MUL: u16 = 0x20;
const DIV: u16 = 0x30;
const OR: u16 = 0x40;
const AND: u16 = 0x50;
const LSH: u16 = 0x60;
const RSH: u16 = 0x70;
const NEG: u16 = 0x80;
const XOR: u16 = 0xa0;
const JA: u16 = 0x00;
const JEQ: u16 = 0x10;
const JGT: u16 = 0x20;
const JGE: u16 = 0x30;
const JSET: u16 = 0x40;
const TAX: u16 = 0x00;
const TXA: u16 = 0x80;
/// Scratch memory words (BPF_MEMWORDS).
const MEMWORDS: u32 = 16;

/// Checks a program as Linux does (bpf_check_classic, then
/// seccomp_check_filter's opcode list); loads of the packet length become
/// loads of the constant `seccomp_data` size.
fn check_program(prog: &mut [Insn]) -> Result<(), Errno> {
    let n = prog.len();
    if n == 0 || n > MAX_INSNS {
        return Err(Errno::EINVAL);
    }
    for pc in 0..n {
        let i = &mut prog[pc];
        let c = i.code;
        let ok = match c {
            _ if c == LD | W | ABS => i.k % 4 == 0 && i.k < DATA_LEN,
            _ if c == LD | W | LEN || c == LDX | W | LEN => {
                // The program sees seccomp_data as its packet.
                i.code = (c & 0x07) | IMM;
                i.k = DATA_LEN;
                true
            }
            _ if c == RET | K || c == RET | RET_A => true,
            _ if c & 0x07 == ALU => {
                let op = c & 0xf0;
                if c == ALU | NEG {
                    true
                } else if c & !0xf8 != ALU || ![ADD, SUB, MUL, DIV, AND, OR, XOR, LSH, RSH].contains(&op) {
                    false
                } else if c & X == K {
                    !(op == DIV && i.k == 0) && !((op == LSH || op == RSH) && i.k >= 32)
                } else {
                    true
                }
            }
            _ if c == LD | IMM || c == LDX | IMM || c == MISC | TAX || c == MISC | TXA => true,
            _ if c == LD | MEM || c == LDX | MEM || c == ST || c == STX => i.k < MEMWORDS,
            _ if c == JMP | JA => (i.k as usize) < n - pc - 1,
            _ if c & 0x07 == JMP && [JEQ, JGT, JGE, JSET].contains(&(c & 0xf0)) && c & !0xf8 == JMP => {
                pc + usize::from(i.jt) + 1 < n && pc + usize::from(i.jf) + 1 < n
            }
            _ => false,
        };
        if !ok {
            return Err(Errno::EINVAL);
        }
    }
    if prog[n - 1].code & 0x07 != RET {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Runs a checked program on `data` (the 64 bytes of `seccomp_data`).
fn run_program(prog: &[Insn], data: &[u8; 64]) -> u32 {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; MEMWORDS as usize];
    let mut pc = 0;
    while let Some(i) = prog.get(pc) {
        pc += 1;
        let src = if i.code & X != 0 { x } else { i.k };
        match i.code & 0x07 {
            LD => {
                a = match i.code & 0xe0 {
                    ABS => {
                        let o = i.k as usize;
                        u32::from_le_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]])
                    }
                    MEM => mem[i.k as usize],
                    _ => i.k,
                }
            }
            LDX => x = if i.code & 0xe0 == MEM { mem[i.k as usize] } else { i.k },
            ST => mem[i.k as usize] = a,
            STX => mem[i.k as usize] = x,
            ALU => {
                a = match i.code & 0xf0 {
                    ADD => a.wrapping_add(src),
                    SUB => a.wrapping_sub(src),
                    MUL => a.wrapping_mul(src),
                    DIV => match a.checked_div(src) {
                        Some(v) => v,
                        // Classic BPF ends the program with 0 on a
                        // division by a zero X.
                        None => return 0,
                    },
                    OR => a | src,
                    AND => a & src,
                    LSH => a.checked_shl(src).unwrap_or(0),
                    RSH => a.checked_shr(src).unwrap_or(0),
                    XOR => a ^ src,
                    _ => a.wrapping_neg(),
                }
            }
            JMP => {
                let op = i.code & 0xf0;
                if op == JA {
                    pc += i.k as usize;
                } else {
                    let taken = match op {
                        JEQ => a == src,
                        JGT => a > src,
                        JGE => a >= src,
                        _ => a & src != 0,
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
            }
            RET => return if i.code & RET_A != 0 { a } else { i.k },
            _ => {
                if i.code & 0xf8 == TXA {
                    a = x;
                } else {
                    x = a;
                }
            }
        }
    }
    // Unreachable for a checked program (it ends with a return).
    RET_KILL_PROCESS
}

/// One installed program; filters form a chain shared by the tasks that
/// inherited them.
pub struct Node {
    prog: Vec<Insn>,
    prev: Option<Arc<Node>>,
    /// Instructions on the chain up to here, with the per-filter penalty.
    path_len: usize,
    count: u32,
}

/// A task's own seccomp state (inherited by fork and clone, kept by exec).
#[derive(Clone, Default)]
pub struct TaskSeccomp {
    strict: bool,
    top: Option<Arc<Node>>,
    /// The process's TSYNC generation this task has adopted.
    synced: u64,
}

/// Seccomp modes (PR_GET_SECCOMP, /proc/PID/status).
pub const MODE_DISABLED: u8 = 0;
pub const MODE_STRICT: u8 = 1;
pub const MODE_FILTER: u8 = 2;

impl TaskSeccomp {
    /// The task's mode: the container's profile counts as a filter, as
    /// runc's does.
    pub fn mode(&self) -> u8 {
        if self.strict {
            MODE_STRICT
        } else if self.top.is_some() || ENABLED.load(Ordering::Acquire) {
            MODE_FILTER
        } else {
            MODE_DISABLED
        }
    }

    /// Filters in effect (/proc/PID/status Seccomp_filters).
    pub fn filters(&self) -> u32 {
        self.top.as_ref().map_or(0, |n| n.count) + u32::from(ENABLED.load(Ordering::Acquire))
    }

    /// Whether `other` is this chain or extends it.
    fn is_ancestor_of(&self, other: &Option<Arc<Node>>) -> bool {
        let Some(mine) = &self.top else { return true };
        let mut cur = other.clone();
        while let Some(n) = cur {
            if Arc::ptr_eq(&n, mine) {
                return true;
            }
            cur = n.prev.clone();
        }
        false
    }
}

/// What a syscall's filters decided when it must not run normally.
pub enum Verdict {
    /// Skip the call; this is its result.
    Return(SysResult),
    /// Skip the call, send SIGSYS (SECCOMP_RET_TRAP) with this data.
    Trap(u16),
    /// End the thread (or the process) with SIGSYS.
    KillThread,
    KillProcess,
}

/// Syscalls strict mode allows: read, write, exit, rt_sigreturn.
const STRICT_ALLOWED: [u64; 4] = [0, 1, 60, 15];

/// The filters' verdict on syscall `nr`; None lets it run.
pub fn check(t: &mut Task, nr: u64, args: &[u64; 6]) -> Option<Verdict> {
    let gen = t.proc.seccomp_gen.load(Ordering::Acquire);
    if gen != t.seccomp.synced {
        adopt_tsync(t, gen);
    }
    if t.seccomp.strict {
        // Linux: do_exit(SIGKILL) of the thread.
        return (!STRICT_ALLOWED.contains(&nr)).then_some(Verdict::KillThread);
    }
    let mut ret = RET_ALLOW;
    if let Some(top) = &t.seccomp.top {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&(nr as u32).to_le_bytes());
        data[4..8].copy_from_slice(&AUDIT_ARCH_X86_64.to_le_bytes());
        data[8..16].copy_from_slice(&t.regs.rip.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let mut cur = Some(top);
        while let Some(n) = cur {
            let r = run_program(&n.prog, &data);
            if rank(r) < rank(ret) {
                ret = r;
            }
            cur = n.prev.as_ref();
        }
    }
    if let Some(r) = profile_ret(nr, args) {
        if rank(r) < rank(ret) {
            ret = r;
        }
    }
    let data = ret & RET_DATA;
    match ret & RET_ACTION_FULL {
        RET_ALLOW | RET_LOG => None,
        RET_ERRNO => Some(Verdict::Return(Err(Errno(data.min(4095) as i32)))),
        // No tracer and no listener can exist in the sandbox: Linux then
        // fails the call with ENOSYS.
        RET_TRACE | RET_USER_NOTIF => Some(Verdict::Return(Err(Errno::ENOSYS))),
        RET_TRAP => Some(Verdict::Trap(data as u16)),
        RET_KILL_THREAD => Some(Verdict::KillThread),
        _ => Some(Verdict::KillProcess),
    }
}

/// Takes the filters another thread synchronized the process to, if this
/// thread's own are among them (Linux refuses the TSYNC call otherwise).
fn adopt_tsync(t: &mut Task, gen: u64) {
    let slot = t.proc.seccomp_tsync.lock().clone();
    t.seccomp.synced = gen;
    if let Some(top) = slot {
        let top = Some(top);
        if !t.seccomp.strict && t.seccomp.is_ancestor_of(&top) {
            t.seccomp.top = top;
        }
    }
}

/// seccomp(2) operations and SECCOMP_SET_MODE_FILTER flags.
const SET_MODE_STRICT: u64 = 0;
const SET_MODE_FILTER: u64 = 1;
const GET_ACTION_AVAIL: u64 = 2;
const GET_NOTIF_SIZES: u64 = 3;
pub const FLAG_TSYNC: u64 = 1;
pub const FLAG_LOG: u64 = 2;
pub const FLAG_SPEC_ALLOW: u64 = 4;
pub const FLAG_NEW_LISTENER: u64 = 8;
pub const FLAG_TSYNC_ESRCH: u64 = 16;
pub const FLAG_WAIT_KILLABLE_RECV: u64 = 32;

/// seccomp(2); prctl(PR_SET_SECCOMP) comes here too.
pub fn set_mode(t: &mut Task, op: u64, flags: u64, uargs: u64) -> SysResult {
    match op {
        SET_MODE_STRICT => {
            if flags != 0 || uargs != 0 || t.seccomp.mode() == MODE_FILTER {
                return Err(Errno::EINVAL);
            }
            t.seccomp.strict = true;
            publish_mode(t);
            Ok(0)
        }
        SET_MODE_FILTER => set_filter(t, flags, uargs),
        GET_ACTION_AVAIL => {
            if flags != 0 {
                return Err(Errno::EINVAL);
            }
            let action: u32 = t.mm.lock().read_obj(uargs)?;
            // User notification needs a listener fd, which the sentry
            // does not provide.
            match action {
                RET_KILL_PROCESS | RET_KILL_THREAD | RET_TRAP | RET_ERRNO | RET_TRACE | RET_LOG | RET_ALLOW => Ok(0),
                _ => Err(Errno::EOPNOTSUPP),
            }
        }
        GET_NOTIF_SIZES => Err(Errno::EINVAL),
        _ => Err(Errno::EINVAL),
    }
}

fn set_filter(t: &mut Task, flags: u64, uargs: u64) -> SysResult {
    const KNOWN: u64 = FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_NEW_LISTENER | FLAG_TSYNC_ESRCH | FLAG_WAIT_KILLABLE_RECV;
    if flags & !KNOWN != 0 {
        return Err(Errno::EINVAL);
    }
    // A listener fd and a failing thread's id would share the return value.
    if flags & FLAG_TSYNC != 0 && flags & FLAG_NEW_LISTENER != 0 && flags & FLAG_TSYNC_ESRCH == 0 {
        return Err(Errno::EINVAL);
    }
    if flags & FLAG_WAIT_KILLABLE_RECV != 0 && flags & FLAG_NEW_LISTENER == 0 {
        return Err(Errno::EINVAL);
    }
    // struct sock_fprog: u16 len, then the instructions' address.
    let (len, filter) = {
        let mut mm = t.mm.lock();
        (mm.read_obj::<u16>(uargs)?, mm.read_obj::<u64>(uargs + 8)?)
    };
    let len = usize::from(len);
    if len == 0 || len > MAX_INSNS {
        return Err(Errno::EINVAL);
    }
    // Without no_new_privs a filter could make a set-id program misbehave.
    if !t.no_new_privs && !t.creds.capable(super::creds::CAP_SYS_ADMIN) {
        return Err(Errno::EACCES);
    }
    let mut raw = alloc::vec![0u8; len * 8];
    t.mm.lock().copy_in(filter, &mut raw)?;
    let mut prog: Vec<Insn> = raw
        .chunks_exact(8)
        .map(|c| Insn { code: u16::from_le_bytes([c[0], c[1]]), jt: c[2], jf: c[3], k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]) })
        .collect();
    check_program(&mut prog)?;
    if flags & FLAG_NEW_LISTENER != 0 {
        // No user-notification listener (see GET_ACTION_AVAIL).
        return Err(Errno::EOPNOTSUPP);
    }
    if t.seccomp.strict {
        return Err(Errno::EINVAL);
    }
    let prev = t.seccomp.top.clone();
    let path_len = prev.as_ref().map_or(0, |p| p.path_len) + len + 4;
    if path_len > MAX_INSNS_PER_PATH {
        return Err(Errno::ENOMEM);
    }
    let count = prev.as_ref().map_or(0, |p| p.count) + 1;
    let node = Arc::new(Node { prog, prev, path_len, count });
    t.seccomp.top = Some(node.clone());
    if flags & FLAG_TSYNC != 0 {
        // The other threads take the new chain at their next syscall.
        *t.proc.seccomp_tsync.lock() = Some(node);
        t.seccomp.synced = t.proc.seccomp_gen.fetch_add(1, Ordering::AcqRel) + 1;
    }
    publish_mode(t);
    Ok(0)
}

/// Shows the thread group leader's mode in /proc/PID/status.
fn publish_mode(t: &Task) {
    if t.tid == t.pid() {
        t.proc.view.lock().seccomp = t.seccomp.clone();
    }
}

pub fn sys_seccomp(t: &mut Task, a: &crate::syscalls::Args) -> SysResult {
    set_mode(t, a.u64(0), u64::from(a.u32(1)), a.u64(2))
}

fn decide(f: &Filter, nr: u64, args: &[u64; 6]) -> Action {
    let Some(rules) = f.rules.get(nr as usize) else { return f.default };
    let mut best: Option<Action> = None;
    for r in rules.iter().filter(|r| r.args.iter().all(|c| c.matches(args))) {
        if best.is_none_or(|b| r.action.strength() > b.strength()) {
            best = Some(r.action);
        }
    }
    best.unwrap_or(f.default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_and_defaults() {
        // Default errno 1; read allowed; mkdir (83) errno 13; personality
        // (135) allowed only for arg0 == 0; kill (62) with a weaker and a
        // stronger rule.
        let f = parse("default=errno:1;0,allow;83,errno:13;135,allow,0:4:0:0;62,allow;62,killp,1:4:9:0").unwrap();
        let a = |x: u64| [x, 0, 0, 0, 0, 0];
        assert_eq!(decide(&f, 0, &a(0)), Action::Allow);
        assert_eq!(decide(&f, 83, &a(0)), Action::Errno(13));
        assert_eq!(decide(&f, 1, &a(0)), Action::Errno(1));
        assert_eq!(decide(&f, 135, &a(0)), Action::Allow);
        assert_eq!(decide(&f, 135, &a(8)), Action::Errno(1));
        assert_eq!(decide(&f, 62, &[5, 15, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(decide(&f, 62, &[5, 9, 0, 0, 0, 0]), Action::KillProcess);
        assert_eq!(decide(&f, 100_000, &a(0)), Action::Errno(1));
        // Masked equality.
        let f = parse("default=allow;56,errno:1,0:7:65536:65536").unwrap();
        assert_eq!(decide(&f, 56, &a(0x10011)), Action::Errno(1));
        assert_eq!(decide(&f, 56, &a(0x11)), Action::Allow);
    }

    #[test]
    fn malformed_profiles_are_refused() {
        for bad in ["", "default=bogus", "allow;0,allow", "default=allow;x,allow", "default=allow;0,nope", "default=allow;0,allow,9:4:0:0", "default=allow;0,allow,0:9:0:0", "default=allow;99999,allow", "default=allow;0,allow,1:2"] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }

    fn ins(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }

    fn data(nr: u32, args: [u64; 6]) -> [u8; 64] {
        let mut d = [0u8; 64];
        d[0..4].copy_from_slice(&nr.to_le_bytes());
        d[4..8].copy_from_slice(&AUDIT_ARCH_X86_64.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            d[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        d
    }

    #[test]
    fn bpf_programs_run_like_linux() {
        // arch check, then getpid -> ERRNO(EPERM), high half of arg0 != 0
        // -> TRAP, else allow.
        let mut p = alloc::vec![
            ins(LD | W | ABS, 0, 0, 4),
            ins(JMP | JEQ | K, 1, 0, AUDIT_ARCH_X86_64),
            ins(RET | K, 0, 0, RET_KILL_PROCESS),
            ins(LD | W | ABS, 0, 0, 0),
            ins(JMP | JEQ | K, 0, 1, 39),
            ins(RET | K, 0, 0, RET_ERRNO | 1),
            ins(LD | W | ABS, 0, 0, 20),
            ins(JMP | JSET | K, 0, 1, 0xffff_ffff),
            ins(RET | K, 0, 0, RET_TRAP | 7),
            ins(LD | W | LEN, 0, 0, 0),
            ins(ALU | ADD | K, 0, 0, 1),
            ins(ST, 0, 0, 3),
            ins(LDX | MEM, 0, 0, 3),
            ins(MISC | TXA, 0, 0, 0),
            ins(JMP | JEQ | K, 0, 1, 65),
            ins(RET | K, 0, 0, RET_ALLOW),
            ins(RET | K, 0, 0, RET_KILL_THREAD),
        ];
        check_program(&mut p).unwrap();
        assert_eq!(run_program(&p, &data(39, [0; 6])), RET_ERRNO | 1);
        assert_eq!(run_program(&p, &data(1, [1 << 32, 0, 0, 0, 0, 0])), RET_TRAP | 7);
        assert_eq!(run_program(&p, &data(1, [0xffff_ffff, 0, 0, 0, 0, 0])), RET_ALLOW);
        let mut d = data(1, [0; 6]);
        d[4] = 0;
        assert_eq!(run_program(&p, &d), RET_KILL_PROCESS);
        // Division by a zero X ends the program with 0 (KILL_THREAD).
        let mut p = alloc::vec![ins(LD | IMM, 0, 0, 5), ins(LDX | IMM, 0, 0, 0), ins(ALU | DIV | X, 0, 0, 0), ins(RET | K, 0, 0, RET_ALLOW)];
        check_program(&mut p).unwrap();
        assert_eq!(run_program(&p, &data(0, [0; 6])), RET_KILL_THREAD);
        // Stronger actions win: lower as s32.
        assert!(rank(RET_KILL_PROCESS) < rank(RET_KILL_THREAD));
        assert!(rank(RET_TRAP) < rank(RET_ERRNO) && rank(RET_ERRNO) < rank(RET_TRACE) && rank(RET_LOG) < rank(RET_ALLOW));
    }

    #[test]
    fn bad_programs_are_refused() {
        let bad: [&[Insn]; 9] = [
            &[],
            &[ins(LD | W | ABS, 0, 0, 2), ins(RET | K, 0, 0, 0)],
            &[ins(LD | W | ABS, 0, 0, 64), ins(RET | K, 0, 0, 0)],
            &[ins(LD | IMM, 0, 0, 0)],
            &[ins(JMP | JEQ | K, 1, 0, 0), ins(RET | K, 0, 0, 0)],
            &[ins(JMP | JA, 0, 0, 1), ins(RET | K, 0, 0, 0)],
            &[ins(ALU | DIV | K, 0, 0, 0), ins(RET | K, 0, 0, 0)],
            &[ins(LD | MEM, 0, 0, 16), ins(RET | K, 0, 0, 0)],
            // BPF_MOD is classic BPF but not in seccomp's list.
            &[ins(ALU | 0x90 | K, 0, 0, 3), ins(RET | K, 0, 0, 0)],
        ];
        for b in bad {
            assert_eq!(check_program(&mut b.to_vec()), Err(Errno::EINVAL), "{b:?}");
        }
        assert_eq!(check_program(&mut alloc::vec![ins(RET | K, 0, 0, 0); MAX_INSNS + 1]), Err(Errno::EINVAL));
    }

    #[test]
    fn profile_actions_map_to_return_values() {
        assert_eq!(Action::Errno(13).ret(), RET_ERRNO | 13);
        assert_eq!(Action::KillProcess.ret(), RET_KILL_PROCESS);
        assert_eq!(Action::KillThread.ret(), RET_KILL_THREAD);
    }
}
