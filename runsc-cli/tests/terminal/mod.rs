//! A person at a terminal: types into a pty master and waits for what
//! the program on the slave prints (shared by the test files).

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A child killed when the test ends early (a failed check).
pub struct Reaped(pub std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Term {
    master: std::fs::File,
    out: Arc<Mutex<Vec<u8>>>,
    /// How far `expect` has matched.
    seen: usize,
}

impl Term {
    /// Starts collecting what `master` reads (until the slave side is
    /// closed everywhere).
    pub fn new(master: OwnedFd) -> Term {
        let master = std::fs::File::from(master);
        let mut reader = master.try_clone().expect("dup of the master");
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut b = [0u8; 4096];
            while let Ok(n) = reader.read(&mut b) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&b[..n]);
            }
        });
        Term { master, out, seen: 0 }
    }

    pub fn send(&mut self, s: &str) {
        self.master.write_all(s.as_bytes()).expect("writing to the master");
    }

    /// Everything read so far, without the line discipline's CRs.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).replace('\r', "")
    }

    /// Waits until `want` shows up after the previous match.
    pub fn expect(&mut self, want: &str) -> bool {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            let text = self.text();
            if let Some(i) = text.get(self.seen..).and_then(|rest| rest.find(want)) {
                self.seen += i + want.len();
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}
