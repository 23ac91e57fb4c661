//! The container's seccomp profile (`linux.seccomp`), enforced by the
//! sentry on every application syscall: the sandbox's syscalls never reach
//! the host, so this is where the profile's answers (errno, kill, trap)
//! must come from. Rules as libseccomp applies them: the matching rule
//! with the strongest action wins (kill > trap > errno > log > allow),
//! else the default action.
//!
//! The VMM passes the profile as text (see `parse`); the CLI has already
//! resolved names and rejected unknown actions.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
use spin::RwLock;

use super::super::syscalls::names::NR_SYSCALLS;

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

/// The profile's answer for a syscall; None when it is allowed.
pub fn check(nr: u64, args: &[u64; 6]) -> Option<Action> {
    if !ENABLED.load(Ordering::Acquire) {
        return None;
    }
    let g = FILTER.read();
    let f = g.as_ref()?;
    let act = decide(f, nr, args);
    (act != Action::Allow && act != Action::Log).then_some(act)
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
}
