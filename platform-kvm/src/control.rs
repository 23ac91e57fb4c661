//! Talking to a running sentry from the host: the OCI commands (`start`,
//! `kill`, `exec`, `ps`, `pause`) reach the VMM over its control socket
//! and come here. Requests go through the control block in guest memory
//! (`abi::control`), one at a time; the sentry answers at its next safe
//! point (idle, or the preemption trampoline the ticker sends it to).
//!
//! The sentry's answers are untrusted: lengths are bounded by the block.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use abi::control::{ControlHeader, Kind, CONTROL_DATA_MAX};
use abi::hypercall::Preempt;
use abi::layout;

use crate::memory::GuestMemory;

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("the sandbox has ended")]
    Ended,
    #[error("request too large ({0} bytes)")]
    TooLarge(usize),
    #[error("the sandbox did not answer in time")]
    Timeout,
    #[error("guest memory")]
    Memory,
}

#[derive(Default)]
struct State {
    /// The sentry's boot verdict: `Some(Ok)` once the init program is loaded.
    ready: Option<Result<(), String>>,
    /// Last request the sentry answered.
    done: u64,
    /// Wait statuses of exec'd processes that ended, by pid.
    exited: HashMap<u32, u32>,
    /// The sandbox is over (its exit status).
    ended: Option<i32>,
    paused: bool,
    /// Processes the sentry killed because memory ran out.
    oom_kills: u64,
}

/// Shared between the hypercall service, the vCPU threads and the
/// control socket's threads.
pub struct ControlShared {
    state: Mutex<State>,
    cv: Condvar,
    /// Serializes requests (the block holds one).
    request: Mutex<u64>,
}

impl ControlShared {
    pub(crate) fn new() -> Arc<ControlShared> {
        Arc::new(ControlShared { state: Mutex::new(State::default()), cv: Condvar::new(), request: Mutex::new(0) })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
        self.cv.notify_all();
    }

    pub(crate) fn set_ready(&self, r: Result<(), String>) {
        self.update(|s| {
            s.ready.get_or_insert(r);
        });
    }

    pub(crate) fn set_done(&self, seq: u64) {
        self.update(|s| s.done = s.done.max(seq));
    }

    pub(crate) fn set_exited(&self, pid: u32, status: u32) {
        self.update(|s| {
            // Bounded: statuses nobody collects are dropped oldest-first-ish.
            if s.exited.len() >= 4096 {
                s.exited.clear();
            }
            s.exited.insert(pid, status);
        });
    }

    pub(crate) fn set_ended(&self, status: i32) {
        self.update(|s| {
            s.ended.get_or_insert(status);
            s.ready.get_or_insert(Err(format!("the sandbox ended with status {status} before it was ready")));
        });
    }

    pub(crate) fn note_oom_kill(&self) {
        self.update(|s| s.oom_kills += 1);
    }

    /// Blocks while the sandbox is paused (called by vCPU threads).
    pub(crate) fn wait_while_paused(&self) {
        let mut s = self.lock();
        while s.paused && s.ended.is_none() {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub(crate) fn paused(&self) -> bool {
        self.lock().paused
    }
}

/// A handle on a sandbox for the control socket's threads.
#[derive(Clone)]
pub struct Controller {
    pub(crate) shared: Arc<ControlShared>,
    pub(crate) mem: Arc<GuestMemory>,
    pub(crate) service: Arc<crate::hypercall::Service>,
}

impl Controller {
    fn kick(&self) {
        self.service.kick();
    }

    /// Gives the sandbox a host fd (an exec's stdio); returns its handle.
    pub fn add_handle(&self, fd: std::os::fd::OwnedFd) -> Result<u64, ControlError> {
        self.service.add_handle(fd).map_err(|_| ControlError::TooLarge(0))
    }

    /// Waits until the sentry has loaded the init program (or failed to).
    pub fn wait_ready(&self) -> Result<(), String> {
        let mut s = self.shared.lock();
        loop {
            if let Some(r) = &s.ready {
                return r.clone();
            }
            s = self.shared.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The exit status once the sandbox has ended.
    pub fn ended(&self) -> Option<i32> {
        self.shared.lock().ended
    }

    /// Processes the sentry has killed because memory ran out.
    pub fn oom_kills(&self) -> u64 {
        self.shared.lock().oom_kills
    }

    /// Sends one request and waits for the answer: (ret, answer data).
    pub fn request(&self, kind: Kind, args: [u64; 8], data: &[u8]) -> Result<(i64, Vec<u8>), ControlError> {
        if data.len() as u64 > CONTROL_DATA_MAX {
            return Err(ControlError::TooLarge(data.len()));
        }
        let mut seq = self.shared.request.lock().unwrap_or_else(|e| e.into_inner());
        if self.ended().is_some() {
            return Err(ControlError::Ended);
        }
        *seq += 1;
        let hdr_size = std::mem::size_of::<ControlHeader>() as u64;
        let hdr = ControlHeader {
            seq: *seq,
            done: self.shared.lock().done,
            kind: kind as u64,
            args,
            ret: 0,
            data_len: data.len() as u64,
        };
        self.mem.write(layout::CONTROL_GPA + hdr_size, data).map_err(|_| ControlError::Memory)?;
        self.mem.write_obj(layout::CONTROL_GPA, &hdr).map_err(|_| ControlError::Memory)?;
        let flag = layout::vcpu_block(0) + layout::vcpu::PREEMPT + std::mem::offset_of!(Preempt, control) as u64;
        self.mem.write_obj(flag, &1u64).map_err(|_| ControlError::Memory)?;
        self.kick();
        let mut s = self.shared.lock();
        let mut waited = Duration::ZERO;
        let step = Duration::from_millis(100);
        while s.done < *seq {
            if s.ended.is_some() {
                return Err(ControlError::Ended);
            }
            // A paused sandbox answers after resume; otherwise a minute is
            // far beyond any sane answer time.
            if !s.paused {
                waited += step;
                if waited > Duration::from_secs(60) {
                    return Err(ControlError::Timeout);
                }
            }
            s = self.shared.cv.wait_timeout(s, step).unwrap_or_else(|e| e.into_inner()).0;
        }
        drop(s);
        let back: ControlHeader = self.mem.read_obj(layout::CONTROL_GPA).map_err(|_| ControlError::Memory)?;
        let len = back.data_len.min(CONTROL_DATA_MAX) as usize;
        let mut out = vec![0u8; len];
        self.mem.read(layout::CONTROL_GPA + hdr_size, &mut out).map_err(|_| ControlError::Memory)?;
        Ok((back.ret, out))
    }

    /// Waits for an exec'd process to end; its wait status.
    pub fn wait_exit(&self, pid: u32) -> Result<u32, ControlError> {
        let mut s = self.shared.lock();
        loop {
            if let Some(st) = s.exited.remove(&pid) {
                return Ok(st);
            }
            if s.ended.is_some() {
                return Err(ControlError::Ended);
            }
            s = self.shared.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Stops (true) or resumes (false) every vCPU.
    pub fn set_paused(&self, paused: bool) {
        self.shared.update(|s| s.paused = paused);
        self.kick();
    }

    /// Whether the vCPUs are stopped.
    pub fn is_paused(&self) -> bool {
        self.shared.paused()
    }
}
