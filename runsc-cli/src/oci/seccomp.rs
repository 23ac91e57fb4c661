//! The spec's `linux.seccomp` profile: checked as runc checks it, then
//! turned into the text the sentry's `kernel::seccomp` reads. runc hands
//! the profile to libseccomp; the rules below are the ones its
//! conversion applies (libcontainer/seccomp and specconv):
//!
//! - names this architecture lacks are skipped, not refused;
//! - a rule whose action (errno included) equals the default action is
//!   dropped as redundant;
//! - the conditions of a rule are ANDed, unless two of them test the same
//!   argument: then each condition becomes a rule of its own (ORed);
//! - SCMP_ACT_ERRNO and SCMP_ACT_TRACE without errnoRet mean EPERM;
//! - flags: TSYNC, LOG, SPEC_ALLOW and WAIT_KILLABLE_RECV are accepted,
//!   anything else is an error.

use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction};

/// Flags runc accepts. TSYNC is what runc always does; LOG and
/// SPEC_ALLOW change logging and a CPU mitigation, neither of which the
/// sentry's filter has; WAIT_KILLABLE_RECV concerns notify listeners.
const FLAGS: [&str; 4] =
    ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"];

const ACTIONS: [&str; 9] = [
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];

const OPERATORS: [&str; 7] =
    ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"];

/// Architectures libseccomp knows that the spec crate does not: valid,
/// and irrelevant to an x86-64 sandbox, so they are dropped before the
/// spec is read.
const OTHER_ARCHES: [&str; 5] = ["SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB"];
const ARCHES: [&str; 19] = [
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_NATIVE",
];

/// Checks the raw `linux.seccomp` of config.json before it is parsed, so
/// that an unknown flag, action, operator or architecture gets runc's
/// message rather than a parser's.
pub fn check_raw(raw: &mut serde_json::Value) -> Result<()> {
    let Some(s) = raw.pointer_mut("/linux/seccomp").filter(|s| s.is_object()) else { return Ok(()) };
    let strs = |v: Option<&serde_json::Value>| -> Vec<String> {
        v.and_then(|a| a.as_array()).into_iter().flatten().map(|x| x.as_str().map(String::from).unwrap_or_else(|| x.to_string())).collect()
    };
    for f in strs(s.get("flags")) {
        if !FLAGS.contains(&f.as_str()) {
            bail!("seccomp flag {f} is not known to runc");
        }
    }
    for a in strs(s.get("architectures")) {
        if !ARCHES.contains(&a.as_str()) && !OTHER_ARCHES.contains(&a.as_str()) {
            bail!("string {a} is not a valid arch for seccomp");
        }
    }
    if let Some(arches) = s.get_mut("architectures").and_then(|a| a.as_array_mut()) {
        arches.retain(|a| a.as_str().is_none_or(|a| !OTHER_ARCHES.contains(&a)));
    }
    let mut actions: Vec<String> = s.get("defaultAction").and_then(|a| a.as_str()).map(String::from).into_iter().collect();
    let mut ops = Vec::new();
    for rule in s.get("syscalls").and_then(|r| r.as_array()).into_iter().flatten() {
        actions.extend(rule.get("action").and_then(|a| a.as_str()).map(String::from));
        for arg in rule.get("args").and_then(|a| a.as_array()).into_iter().flatten() {
            ops.extend(arg.get("op").and_then(|o| o.as_str()).map(String::from));
        }
    }
    for a in actions {
        if !ACTIONS.contains(&a.as_str()) {
            bail!("string {a} is not a valid action for seccomp");
        }
    }
    for o in ops {
        if !OPERATORS.contains(&o.as_str()) {
            bail!("string {o} is not a valid operator for seccomp");
        }
    }
    Ok(())
}

/// The sentry's form of an action.
fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<String> {
    Ok(match a {
        LinuxSeccompAction::ScmpActAllow => "allow".into(),
        LinuxSeccompAction::ScmpActLog => "log".into(),
        LinuxSeccompAction::ScmpActTrap => "trap".into(),
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => "kill".into(),
        LinuxSeccompAction::ScmpActKillProcess => "killp".into(),
        // No tracer can attach in the sandbox: the kernel then fails the
        // call with ENOSYS whatever errno the rule carries.
        LinuxSeccompAction::ScmpActTrace => "errno:38".into(),
        LinuxSeccompAction::ScmpActErrno => format!("errno:{}", errno.unwrap_or(libc::EPERM as u32).min(4095)),
        LinuxSeccompAction::ScmpActNotify => {
            bail!("seccomp action SCMP_ACT_NOTIFY is not supported: the sandbox has no seccomp agent to notify")
        }
    })
}

/// The profile as the sentry reads it (`kernel::seccomp::parse`):
/// "default=A" then ";NR,A[,INDEX:OP:VALUE:VALUE2...]" per rule.
pub fn profile(s: &LinuxSeccomp) -> Result<String> {
    let default = action(s.default_action(), s.default_errno_ret())?;
    let mut out = format!("default={default}");
    for rule in s.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret())?;
        if act == default {
            continue;
        }
        let mut conds = Vec::new();
        let mut seen = [0u32; 6];
        for a in rule.args().iter().flatten() {
            if a.index() > 5 {
                bail!("seccomp argument index {} out of range", a.index());
            }
            seen[a.index()] += 1;
            conds.push(format!("{}:{}:{}:{}", a.index(), a.op() as u32, a.value(), a.value_two().unwrap_or(0)));
        }
        // One rule with every condition, or one rule per condition.
        let variants: Vec<String> =
            if seen.iter().any(|&n| n > 1) { conds.iter().map(|c| format!(",{c}")).collect() } else { vec![conds.iter().map(|c| format!(",{c}")).collect()] };
        for name in rule.names() {
            if let Some(nr) = sentry::syscalls::names::NAMES.iter().position(|n| !n.is_empty() && n == name) {
                for v in &variants {
                    out.push_str(&format!(";{nr},{act}{v}"));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(seccomp: &str) -> serde_json::Value {
        serde_json::from_str(&format!(r#"{{"linux":{{"seccomp":{seccomp}}}}}"#)).unwrap()
    }

    fn prof(seccomp: &str) -> String {
        let s: LinuxSeccomp = serde_json::from_str(seccomp).unwrap();
        profile(&s).unwrap()
    }

    #[test]
    fn flags_actions_operators_arches_as_runc() {
        for ok in [
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW","SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_RISCV64"]}"#,
        ] {
            let mut r = raw(ok);
            check_raw(&mut r).unwrap();
            // What remains parses.
            let _: LinuxSeccomp = serde_json::from_value(r["linux"]["seccomp"].clone()).unwrap();
        }
        let err = |s: &str| check_raw(&mut raw(s)).unwrap_err().to_string();
        assert_eq!(err(r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_BOGUS"]}"#), "seccomp flag SECCOMP_FILTER_FLAG_BOGUS is not known to runc");
        assert!(err(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#).contains("SCMP_ACT_NOPE is not a valid action"));
        assert!(err(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_WHAT"}]}"#).contains("SCMP_ACT_WHAT"));
        assert!(err(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_ABOUT"}]}]}"#)
            .contains("SCMP_CMP_ABOUT is not a valid operator"));
        assert!(err(r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_Z80"]}"#).contains("not a valid arch"));
        let notify: LinuxSeccomp = serde_json::from_str(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#).unwrap();
        assert!(profile(&notify).unwrap_err().to_string().contains("SCMP_ACT_NOTIFY is not supported"));
    }

    #[test]
    fn rules_convert_as_runc_does() {
        // Unknown names skipped; a rule like the default dropped; ERRNO
        // without errnoRet is EPERM; TRACE is ENOSYS.
        assert_eq!(
            prof(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","no_such_call"],"action":"SCMP_ACT_ALLOW"},{"names":["write"],"action":"SCMP_ACT_ERRNO"},{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":13},{"names":["getpid"],"action":"SCMP_ACT_TRACE"}]}"#),
            "default=errno:1;0,allow;83,errno:13;39,errno:38"
        );
        // Two conditions on different arguments: one rule; on the same
        // argument: one rule each (runc's "old behaviour").
        assert_eq!(
            prof(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["kill"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":9,"op":"SCMP_CMP_EQ"}]}]}"#),
            "default=allow;62,errno:1,0:4:1:0,1:4:9:0"
        );
        assert_eq!(
            prof(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["personality"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"},{"index":0,"value":4294967295,"op":"SCMP_CMP_EQ"}]}]}"#),
            "default=allow;135,errno:1,0:4:8:0;135,errno:1,0:4:4294967295:0"
        );
        assert_eq!(
            prof(r#"{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":5,"syscalls":[{"names":["clone"],"action":"SCMP_ACT_KILL_THREAD","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#),
            "default=allow;56,kill,0:7:2114060288:0"
        );
    }
}
