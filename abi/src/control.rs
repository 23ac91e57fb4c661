//! Control requests from the VMM to the running sentry (OCI `start`,
//! `kill`, `exec`, `ps`): one request at a time in the control block at
//! [`crate::layout::CONTROL_GPA`]. The VMM writes the request and its data,
//! bumps `seq`, sets `Preempt::control` and wakes or interrupts vCPU 0; the
//! sentry handles it at a safe point, writes the answer over the data, sets
//! `done = seq` and makes the `ControlDone` hypercall.
//!
//! The sentry treats everything here as input from a trusted-but-buggy
//! peer (bounds-checked); the VMM treats the answer as hostile.

/// Size of the control block, header included.
pub const CONTROL_SIZE: u64 = 0x8_0000;
/// Bytes of data after the header.
pub const CONTROL_DATA_MAX: u64 = CONTROL_SIZE - core::mem::size_of::<ControlHeader>() as u64;

/// Header of the control block.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ControlHeader {
    /// Request number, bumped by the VMM for each request.
    pub seq: u64,
    /// Set to `seq` by the sentry once answered.
    pub done: u64,
    /// [`Kind`] as u64.
    pub kind: u64,
    /// Request arguments (per kind).
    pub args: [u64; 8],
    /// Answer: >= 0 on success, -errno on failure.
    pub ret: i64,
    /// Bytes of data following the header (request, then answer).
    pub data_len: u64,
}
// SAFETY: repr(C), integers only, no padding (14 x 8 bytes).
unsafe impl crate::Pod for ControlHeader {}

/// Control request kinds.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Run the loaded init program.
    Start = 1,
    /// Send a signal: args[0] = signal, args[1] = pid (0 = init),
    /// args[2] = 1 to signal every process, 2 to signal the foreground
    /// group of the terminal that is pid's stdin (^C, ^Z, a resize).
    /// With args[2] = 2 and args[3] = 1, a stop signal that would stop
    /// pid at its default action is not sent: ret = 1 asks the caller
    /// to stop the sandbox as a whole (`rvisor do`'s ^Z).
    Signal = 2,
    /// Start a process. args: [argc, envc, uid, gid, stdin, stdout,
    /// stderr handles, ngroups]. Data: NUL-terminated cwd, argv, envp,
    /// then `ngroups` u32 supplementary groups (little-endian). Answer:
    /// ret = pid; on failure data holds a message.
    Exec = 3,
    /// List processes. Answer data: one line per process,
    /// "pid ppid uid state comm\targs".
    Ps = 4,
    /// The /proc files host tools read (see `sentry::fs::proc::snapshot`).
    ProcSnapshot = 5,
    /// New limits (OCI `update`): args[0] = pids limit (0: none) if
    /// args[1] bit 0 is set; data:
    /// `cg.KEY=VALUE` lines for the others (as at boot).
    SetLimits = 6,
}

impl Kind {
    /// Decodes a raw kind.
    pub fn from_u64(v: u64) -> Option<Kind> {
        Some(match v {
            1 => Kind::Start,
            2 => Kind::Signal,
            3 => Kind::Exec,
            4 => Kind::Ps,
            5 => Kind::ProcSnapshot,
            6 => Kind::SetLimits,
            _ => return None,
        })
    }
}
