//! `rvisor features`: the OCI runtime features document (runtime-spec
//! `features.md`), the answer to `runc features`. containerd and Docker read
//! it to decide which config.json fields they may hand us, so every list
//! here is a promise the OCI layer has to keep; the lists are public so that
//! the config parser can check itself against the same data.

use std::collections::HashMap;

use oci_spec::runtime::{
    ApparmorBuilder, Arch, CgroupBuilder, Features, FeaturesBuilder, IDMapBuilder, IntelRdtBuilder,
    LinuxFeatureBuilder, LinuxNamespaceType, LinuxSeccompAction, MountExtensionsBuilder, SeccompBuilder,
    SelinuxBuilder,
};
use serde_json::Value;

/// Oldest runtime-spec version whose config.json we accept.
pub const OCI_VERSION_MIN: &str = "1.0.0";

/// Annotation carrying the rvisor version, in the spirit of runc's
/// `org.opencontainers.runc.version`.
pub const ANNOTATION_VERSION: &str = "io.github.rvisor.version";

/// Hook names accepted in config.json, in lifecycle order.
pub const HOOKS: &[&str] = &["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"];

/// Mount options accepted in config.json, sorted: runc's mount(2) flags,
/// propagation modes, their recursive (mount_setattr) forms and
/// `tmpcopyup`. Filesystem-specific data (`mode=755`, `size=…`) is not
/// listed, as features.md asks.
pub const MOUNT_OPTIONS: &[&str] = &[
    "acl",
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noacl",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// Every Linux capability, indexed by its number (CAP_CHOWN = 0 through
/// CAP_CHECKPOINT_RESTORE = 40), so the list doubles as a number-to-name map.
pub const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Namespace types, sorted by name as runc prints them. The time namespace
/// is left out: nothing in the sentry gives a container its own clocks yet.
const NAMESPACES: &[LinuxNamespaceType] = &[
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::User,
    LinuxNamespaceType::Uts,
];

/// Seccomp actions. SCMP_ACT_NOTIFY is absent: it hands a listener fd to a
/// supervisor on the host, and a filter that lives inside the sentry has no
/// such fd to give.
const SECCOMP_ACTIONS: &[LinuxSeccompAction] = &[
    LinuxSeccompAction::ScmpActAllow,
    LinuxSeccompAction::ScmpActErrno,
    LinuxSeccompAction::ScmpActKill,
    LinuxSeccompAction::ScmpActKillProcess,
    LinuxSeccompAction::ScmpActKillThread,
    LinuxSeccompAction::ScmpActLog,
    LinuxSeccompAction::ScmpActTrace,
    LinuxSeccompAction::ScmpActTrap,
];

const SECCOMP_OPERATORS: &[&str] =
    &["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"];

/// The sentry runs x86-64 code only, so a rule for any other architecture
/// could never match; these are the three an amd64 Docker profile names.
const SECCOMP_ARCHS: &[Arch] = &[Arch::ScmpArchX86, Arch::ScmpArchX86_64, Arch::ScmpArchX32];

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

/// The features document as oci-spec's types, so that a field the crate
/// does not know cannot be emitted.
pub fn features() -> Features {
    let build = "every builder field is optional, so build() cannot fail";
    let linux = LinuxFeatureBuilder::default()
        .namespaces(NAMESPACES.to_vec())
        .capabilities(strings(CAPABILITIES))
        .cgroup(
            CgroupBuilder::default()
                .v1(true)
                .v2(true)
                .systemd(false)
                .systemd_user(false)
                .rdma(false)
                .build()
                .expect(build),
        )
        .seccomp(
            SeccompBuilder::default()
                .enabled(true)
                .actions(SECCOMP_ACTIONS.to_vec())
                .operators(strings(SECCOMP_OPERATORS))
                .archs(SECCOMP_ARCHS.to_vec())
                .build()
                .expect(build),
        )
        .apparmor(ApparmorBuilder::default().enabled(false).build().expect(build))
        .selinux(SelinuxBuilder::default().enabled(false).build().expect(build))
        .intel_rdt(IntelRdtBuilder::default().enabled(false).build().expect(build))
        .mount_extensions(
            MountExtensionsBuilder::default()
                .idmap(IDMapBuilder::default().enabled(false).build().expect(build))
                .build()
                .expect(build),
        )
        .build()
        .expect(build);
    FeaturesBuilder::default()
        .oci_version_min(OCI_VERSION_MIN)
        .oci_version_max(crate::OCI_SPEC_VERSION)
        .hooks(strings(HOOKS))
        .mount_options(strings(MOUNT_OPTIONS))
        .linux(linux)
        .annotations(HashMap::from([(ANNOTATION_VERSION.to_string(), env!("CARGO_PKG_VERSION").to_string())]))
        .build()
        .expect(build)
}

/// Drops `null` members: oci-spec writes an unset Option as null, while Go's
/// `omitempty` (runc) leaves the key out, and "absent" is what features.md
/// defines as "unknown".
fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, x| !x.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// The document as `runc features` prints it: four-space indent, trailing newline.
pub fn features_json() -> String {
    let mut v = serde_json::to_value(features()).expect("Features holds only strings, bools and lists");
    drop_nulls(&mut v);
    let mut out = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, serde_json::ser::PrettyFormatter::with_indent(b"    "));
    serde::Serialize::serialize(&v, &mut ser).expect("writing JSON to a Vec cannot fail");
    let mut s = String::from_utf8(out).expect("serde_json writes UTF-8");
    s.push('\n');
    s
}

/// Runs `rvisor features`; returns the exit status.
pub fn run() -> i32 {
    use std::io::Write;
    match std::io::stdout().write_all(features_json().as_bytes()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rvisor: writing features: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted_unique(list: &[&str]) -> bool {
        list.windows(2).all(|w| w[0] < w[1])
    }

    #[test]
    fn output_round_trips_through_oci_spec() {
        let parsed: Features = serde_json::from_str(&features_json()).expect("features JSON parses as Features");
        assert_eq!(parsed, features());
        assert_eq!(parsed.oci_version_max(), crate::OCI_SPEC_VERSION);
        assert_eq!(parsed.oci_version_min(), OCI_VERSION_MIN);
    }

    #[test]
    fn output_has_no_nulls_and_runc_layout() {
        let s = features_json();
        assert!(!s.contains("null"), "{s}");
        assert!(s.starts_with("{\n    \"ociVersionMin\": \"1.0.0\",\n    \"ociVersionMax\": "), "{s}");
        assert!(s.ends_with("}\n"));
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["linux"]["cgroup"]["v2"], true);
        assert_eq!(v["linux"]["cgroup"]["systemd"], false);
        assert_eq!(v["linux"]["seccomp"]["enabled"], true);
        assert_eq!(v["linux"]["apparmor"]["enabled"], false);
        assert_eq!(v["linux"]["selinux"]["enabled"], false);
        assert_eq!(v["linux"]["intelRdt"]["enabled"], false);
        assert_eq!(
            v["linux"]["namespaces"],
            serde_json::json!(["cgroup", "ipc", "mount", "network", "pid", "user", "uts"])
        );
        assert_eq!(v["annotations"][ANNOTATION_VERSION], env!("CARGO_PKG_VERSION"));
        assert!(v["linux"]["seccomp"]["archs"].as_array().unwrap().contains(&"SCMP_ARCH_X86_64".into()));
    }

    #[test]
    fn mount_options_are_sorted_and_cover_runc_basics() {
        assert!(sorted_unique(MOUNT_OPTIONS));
        for o in [
            "ro",
            "rw",
            "bind",
            "rbind",
            "nosuid",
            "nodev",
            "noexec",
            "relatime",
            "private",
            "rprivate",
            "shared",
            "rshared",
            "slave",
            "rslave",
            "tmpcopyup",
            "rro",
        ] {
            assert!(MOUNT_OPTIONS.contains(&o), "{o}");
        }
        assert!(!MOUNT_OPTIONS.iter().any(|o| o.contains('=')));
    }

    #[test]
    fn capabilities_are_every_linux_capability() {
        assert_eq!(CAPABILITIES.len(), 41);
        assert_eq!(CAPABILITIES[0], "CAP_CHOWN");
        assert_eq!(CAPABILITIES[21], "CAP_SYS_ADMIN");
        assert_eq!(CAPABILITIES[40], "CAP_CHECKPOINT_RESTORE");
        let mut seen = CAPABILITIES.to_vec();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), CAPABILITIES.len());
        for c in CAPABILITIES {
            let parsed: Result<oci_spec::runtime::Capability, _> = serde_json::from_value(Value::from(*c));
            assert!(parsed.is_ok(), "oci-spec does not know {c}");
        }
    }

    #[test]
    fn hooks_are_the_spec_six() {
        assert_eq!(HOOKS.len(), 6);
        assert!(sorted_unique(SECCOMP_OPERATORS));
    }
}
