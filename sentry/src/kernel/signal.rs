//! Signal state (Linux: `sighand_struct` + the task's masks). The skeleton
//! records dispositions and masks so programs that install handlers work;
//! delivery of handled signals arrives with the process issue. Faults
//! whose disposition is the default end the process, as in Linux.

/// Signal numbers used by the sentry.
pub const SIGILL: u32 = 4;
pub const SIGTRAP: u32 = 5;
pub const SIGBUS: u32 = 7;
pub const SIGFPE: u32 = 8;
pub const SIGKILL: u32 = 9;
pub const SIGSEGV: u32 = 11;
pub const SIGSTOP: u32 = 19;
/// Highest signal number.
pub const NSIG: u32 = 64;

/// `struct sigaction` as rt_sigaction passes it (kernel layout).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}
// SAFETY: repr(C), four u64, no padding.
unsafe impl abi::Pod for SigAction {}

/// `stack_t`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAltStack {
    pub sp: u64,
    pub flags: u32,
    pub pad: u32,
    pub size: u64,
}
// SAFETY: repr(C), explicit padding field.
unsafe impl abi::Pod for SigAltStack {}

/// Per-task signal state.
#[derive(Clone, Debug)]
pub struct SignalState {
    pub actions: [SigAction; NSIG as usize],
    pub mask: u64,
    pub altstack: SigAltStack,
}

impl Default for SignalState {
    fn default() -> Self {
        SignalState { actions: [SigAction::default(); NSIG as usize], mask: 0, altstack: SigAltStack { flags: 2, ..Default::default() } }
    }
}
