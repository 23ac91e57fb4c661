//! Processes (Linux: the thread group, `signal_struct`) and the pid and
//! tid tables. A process owns its children (reaped by wait), names its
//! parent by pid, and lists its live threads.
//!
//! Lock order: PROCS / TASKS, then a Process's `inner`, then SCHED.

use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use spin::Mutex;

use super::sched::TaskShared;
use super::task::ExitReason;
use super::signal::SigHandlers;
use super::wait::WaitQueue;

/// Linux's default pid_max.
const PID_MAX: u32 = 4_194_304;

/// A thread group.
pub struct Process {
    pub pid: u32,
    pub inner: Mutex<ProcInner>,
    /// Woken when a child changes state (exits, stops, continues).
    pub child_events: WaitQueue,
    /// Threads parked by a group stop wait here for SIGCONT.
    pub stop_wq: WaitQueue,
    /// CPU time (ns) of the process's threads that have exited.
    pub cpu_gone: AtomicU64,
    /// CPU time (ns) of reaped children and their own reaped children
    /// (RUSAGE_CHILDREN, times' cutime).
    pub cpu_children: AtomicU64,
    /// The system-time parts of `cpu_gone` and `cpu_children`.
    pub sys_gone: AtomicU64,
    pub sys_children: AtomicU64,
    /// Signals sent to the process as a whole (bit N-1 = signal N).
    pub pending: AtomicU64,
    /// Signal dispositions, shared by the process's threads.
    pub sighand: Mutex<SigHandlers>,
    /// siginfo of the pending process-directed signals.
    pub info: Mutex<super::signal::InfoSlots>,
    /// ITIMER_REAL (alarm, setitimer).
    pub itimer_real: Mutex<super::itimer::ITimer>,
    /// ITIMER_VIRTUAL and ITIMER_PROF, on the process's CPU time.
    pub cpu_itimers: Mutex<[super::itimer::CpuTimer; 2]>,
    /// Whether one of `cpu_itimers` is armed (checked without the lock at
    /// every syscall and preemption).
    pub cpu_itimers_armed: core::sync::atomic::AtomicBool,
    /// POSIX timers (timer_create); deleted by exec and exit.
    pub posix_timers: Mutex<super::posix_timer::PosixTimers>,
    /// What /proc shows of the process (kept current by clone and exec).
    pub view: Mutex<ProcView>,
    /// The filter chain a SECCOMP_FILTER_FLAG_TSYNC call gave every
    /// thread, and how many such calls there were (threads compare it
    /// with theirs at each syscall).
    pub seccomp_tsync: Mutex<Option<Arc<super::seccomp::Node>>>,
    pub seccomp_gen: AtomicU64,
}

/// The parts of a process /proc reads, shared with its threads' state.
#[derive(Default)]
pub struct ProcView {
    pub exe: alloc::string::String,
    /// argv, NUL-separated (/proc/PID/cmdline).
    pub cmdline: Vec<u8>,
    /// envp, NUL-separated (/proc/PID/environ).
    pub environ: Vec<u8>,
    pub comm: [u8; 16],
    /// The credentials of the thread group leader (as Linux's
    /// /proc/PID/status shows them).
    pub creds: Arc<super::creds::Creds>,
    pub mm: Option<Arc<Mutex<crate::mm::MemoryManager>>>,
    pub fds: Option<Arc<Mutex<crate::fs::FdTable>>>,
    pub fs: Option<Arc<Mutex<super::task::FsState>>>,
    /// CLOCK_MONOTONIC start time (ns).
    pub start_ns: u64,
    /// The leader's seccomp state and no_new_privs (/proc/PID/status).
    pub seccomp: super::seccomp::TaskSeccomp,
    pub no_new_privs: bool,
}

/// A total and its system part as user and system time.
fn split(total: u64, sys: u64) -> super::sched::CpuTimes {
    let sys = sys.min(total);
    super::sched::CpuTimes { user: total - sys, sys }
}

impl Process {
    /// CPU time (ns) of the process: its live threads and those gone.
    pub fn cpu_time(&self) -> u64 {
        self.cpu_times().total()
    }

    /// `cpu_time` split into user and system time.
    pub fn cpu_times(&self) -> super::sched::CpuTimes {
        let live = self.inner.lock().threads.iter().map(super::sched::cpu_times).fold(super::sched::CpuTimes::default(), |a, b| a + b);
        live + split(self.cpu_gone.load(Ordering::Relaxed), self.sys_gone.load(Ordering::Relaxed))
    }

    /// CPU time of the reaped children (RUSAGE_CHILDREN).
    pub fn children_times(&self) -> super::sched::CpuTimes {
        split(self.cpu_children.load(Ordering::Relaxed), self.sys_children.load(Ordering::Relaxed))
    }

    /// Refreshes the /proc view from a task of the process.
    pub fn update_view(&self, t: &super::task::Task, argv: Option<&[alloc::string::String]>, envp: Option<&[alloc::string::String]>) {
        let mut v = self.view.lock();
        v.exe = t.exe.clone();
        v.comm = t.comm;
        v.creds = t.creds.clone();
        v.mm = Some(t.mm.clone());
        v.fds = Some(t.fds.clone());
        v.fs = Some(t.fs.clone());
        v.seccomp = t.seccomp.clone();
        v.no_new_privs = t.no_new_privs;
        let join = |a: &[alloc::string::String]| {
            let mut b = Vec::new();
            for s in a {
                b.extend_from_slice(s.as_bytes());
                b.push(0);
            }
            b
        };
        if let Some(a) = argv {
            v.cmdline = join(a);
        }
        if let Some(e) = envp {
            v.environ = join(e);
        }
        if v.start_ns == 0 {
            v.start_ns = super::clock::monotonic_ns().max(1);
        }
    }
}

/// A process's mutable state.
pub struct ProcInner {
    pub ppid: u32,
    pub pgid: u32,
    pub sid: u32,
    pub children: Vec<Arc<Process>>,
    pub threads: Vec<Arc<TaskShared>>,
    /// How the group is ending (first exit_group or fatal signal wins).
    pub exit: Option<ExitReason>,
    /// All threads are gone; waiting to be reaped by the parent.
    pub zombie: bool,
    /// Signal sent to the parent on exit (SIGCHLD usually; 0 for none).
    pub exit_signal: u32,
    /// Group stop in force: the signal that stopped the process.
    pub stopped: Option<u32>,
    /// A stop or continue the parent's wait has not reported yet.
    pub stop_report: Option<StopReport>,
    /// Threads parked by the current group stop; the stop is complete
    /// (and reported to the parent) when all are.
    pub parked: usize,
    /// The current group stop was reported to the parent.
    pub stop_done: bool,
}

/// What wait(WUNTRACED/WCONTINUED) reports about a live child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReport {
    Stopped(u32),
    Continued,
}

static PROCS: Mutex<BTreeMap<u32, Weak<Process>>> = Mutex::new(BTreeMap::new());
static TASKS: Mutex<BTreeMap<u32, Weak<TaskShared>>> = Mutex::new(BTreeMap::new());
static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// The container's pids limit (its cgroup's pids.max): threads and
/// processes of the sandbox are not host tasks, so the sentry counts
/// them. 0: no limit.
pub static PIDS_MAX: AtomicU32 = AtomicU32::new(0);

/// Live threads in the sandbox.
pub fn task_count() -> usize {
    TASKS.lock().values().filter(|w| w.strong_count() > 0).count()
}

/// Tasks of processes whose real uid is `uid`, zombies included (what
/// RLIMIT_NPROC counts; a process's threads share its leader's ids here).
pub fn tasks_of_user(uid: u32) -> usize {
    let procs: Vec<Arc<Process>> = PROCS.lock().values().filter_map(Weak::upgrade).collect();
    procs.iter().filter(|p| p.view.lock().creds.uid == uid).map(|p| p.inner.lock().threads.len().max(1)).sum()
}

/// Allocates a free thread/process id.
pub fn alloc_id() -> u32 {
    let tasks = TASKS.lock();
    let procs = PROCS.lock();
    loop {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        if id >= PID_MAX {
            NEXT_ID.store(2, Ordering::Relaxed);
            continue;
        }
        if !tasks.contains_key(&id) && !procs.contains_key(&id) {
            return id;
        }
    }
}

impl Process {
    /// Creates and registers a process.
    pub fn new(pid: u32, ppid: u32, pgid: u32, sid: u32, exit_signal: u32, sighand: SigHandlers) -> Arc<Process> {
        let p = Arc::new(Process {
            pid,
            inner: Mutex::new(ProcInner { ppid, pgid, sid, children: Vec::new(), threads: Vec::new(), exit: None, zombie: false, exit_signal, stopped: None, stop_report: None, parked: 0, stop_done: false }),
            child_events: WaitQueue::new(),
            cpu_gone: AtomicU64::new(0),
            cpu_children: AtomicU64::new(0),
            sys_gone: AtomicU64::new(0),
            sys_children: AtomicU64::new(0),
            stop_wq: WaitQueue::new(),
            pending: AtomicU64::new(0),
            sighand: Mutex::new(sighand),
            itimer_real: Mutex::new(super::itimer::ITimer::default()),
            cpu_itimers: Mutex::new([super::itimer::CpuTimer::default(); 2]),
            cpu_itimers_armed: core::sync::atomic::AtomicBool::new(false),
            posix_timers: Mutex::new(super::posix_timer::PosixTimers::default()),
            info: Mutex::new(super::signal::InfoSlots::new()),
            view: Mutex::new(ProcView::default()),
            seccomp_tsync: Mutex::new(None),
            seccomp_gen: AtomicU64::new(0),
        });
        PROCS.lock().insert(pid, Arc::downgrade(&p));
        p
    }

    /// Pending process-directed signals.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }
}

/// Registers a thread.
pub fn register_task(t: &Arc<TaskShared>) {
    TASKS.lock().insert(t.tid, Arc::downgrade(t));
}

/// Forgets a thread.
pub fn unregister_task(tid: u32) {
    TASKS.lock().remove(&tid);
}

/// Forgets a reaped process.
pub fn unregister_process(pid: u32) {
    PROCS.lock().remove(&pid);
}

/// Looks a process up.
pub fn find_process(pid: u32) -> Option<Arc<Process>> {
    PROCS.lock().get(&pid).and_then(Weak::upgrade)
}

/// Looks a thread up.
pub fn find_task(tid: u32) -> Option<Arc<TaskShared>> {
    TASKS.lock().get(&tid).and_then(Weak::upgrade)
}

/// All live processes.
pub fn all_processes() -> Vec<Arc<Process>> {
    PROCS.lock().values().filter_map(Weak::upgrade).collect()
}
