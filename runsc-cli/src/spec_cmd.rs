//! `rvisor spec`: writes a starter `config.json` into a bundle, the answer to
//! `runc spec`. The content is runc's example (runc's
//! `libcontainer/specconv`), with rvisor's hostname and spec version, so
//! tutorials written against runc work unchanged; `--rootless` applies
//! runc's rootless conversion.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

/// Name of the bundle's configuration file (runtime-spec `bundle.md`).
pub const CONFIG_FILE: &str = "config.json";

/// Flags of `rvisor spec` (runc's `--bundle`/`-b` and `--rootless`).
#[derive(clap::Args)]
pub struct SpecArgs {
    /// Bundle directory to write config.json into (default: the current directory).
    #[arg(short, long, value_name = "DIR")]
    bundle: Option<PathBuf>,
}

/// Why `rvisor spec` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// config.json is already there. The wording is runc's: scripts match on it.
    #[error("File {CONFIG_FILE} exists. Remove it first.")]
    Exists,
    /// The bundle path names something other than a directory.
    #[error("bundle {0}: not a directory")]
    NotADirectory(PathBuf),
    /// The bundle directory cannot be examined (usually: it does not exist).
    #[error("bundle {path}")]
    Bundle {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// config.json could not be created or written.
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `--rootless` needs the effective ids, and /proc did not give them.
    #[error("reading the caller's uid and gid from /proc/self/status")]
    Ids(#[source] Option<std::io::Error>),
}

/// runc's example spec (what `runc spec` writes), as a JSON value whose key
/// order is the order runc prints.
pub fn example() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": crate::OCI_SPEC_VERSION,
        "process": {
            "terminal": true,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": { "bounding": caps, "effective": caps, "permitted": caps },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "rvisor",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            {
                "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]
            },
            {
                "destination": "/dev/pts", "type": "devpts", "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
            },
            {
                "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
            },
            {
                "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"]
            },
            {
                "destination": "/sys", "type": "sysfs", "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"]
            },
            {
                "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]
            }
        ],
        "linux": {
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            // runc adds the cgroup namespace only on cgroup v2 hosts; the
            // sentry's cgroupfs does not depend on the host's, so always.
            "namespaces": [
                { "type": "pid" },
                { "type": "network" },
                { "type": "ipc" },
                { "type": "uts" },
                { "type": "mount" },
                { "type": "cgroup" }
            ],
            "maskedPaths": [
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi",
                "/sys/devices/virtual/tpm"
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// runc's rootless conversion: a user namespace mapping container root to
/// `uid`/`gid` replaces the network namespace (an unprivileged user could not
/// configure one), /sys becomes a read-only rbind (sysfs cannot be mounted
/// without owning the network namespace), `uid=`/`gid=` mount options go
/// (those ids are not mapped), and cgroup resources go (the caller may not
/// own a cgroup to write them to).
pub fn to_rootless(spec: &mut Value, uid: u32, gid: u32) {
    let Some(linux) = spec.get_mut("linux").and_then(Value::as_object_mut) else {
        return;
    };
    let mut namespaces: Vec<Value> = linux
        .get("namespaces")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|ns| !matches!(ns["type"].as_str(), Some("network" | "user")))
        .cloned()
        .collect();
    namespaces.push(json!({ "type": "user" }));

    // The mappings lead the object because runc's Linux struct declares
    // them first, and the output should read like runc's.
    let mut rebuilt = Map::new();
    rebuilt.insert("uidMappings".into(), json!([{ "containerID": 0, "hostID": uid, "size": 1 }]));
    rebuilt.insert("gidMappings".into(), json!([{ "containerID": 0, "hostID": gid, "size": 1 }]));
    for (k, v) in std::mem::take(linux) {
        match k.as_str() {
            "resources" | "uidMappings" | "gidMappings" => {}
            "namespaces" => {
                rebuilt.insert(k, Value::Array(std::mem::take(&mut namespaces)));
            }
            _ => {
                rebuilt.insert(k, v);
            }
        }
    }
    *linux = rebuilt;

    let Some(mounts) = spec.get_mut("mounts").and_then(Value::as_array_mut) else {
        return;
    };
    for m in mounts.iter_mut() {
        // Path equality compares components, so "/sys/" counts as /sys too.
        if m["destination"].as_str().is_some_and(|d| Path::new(d) == Path::new("/sys")) {
            *m = json!({
                "destination": "/sys", "type": "none", "source": "/sys",
                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]
            });
            continue;
        }
        let Some(obj) = m.as_object_mut() else { continue };
        if let Some(Value::Array(opts)) = obj.get_mut("options") {
            opts.retain(|o| !o.as_str().is_some_and(|o| o.starts_with("uid=") || o.starts_with("gid=")));
            if opts.is_empty() {
                obj.shift_remove("options");
            }
        }
    }
}

/// Effective uid and gid from the text of /proc/self/status (the second
/// column of its `Uid:` and `Gid:` lines). runc maps the effective ids, and
/// reading them here spares the crate an `unsafe` libc call.
pub fn effective_ids(status: &str) -> Option<(u32, u32)> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
    };
    Some((field("Uid:")?, field("Gid:")?))
}

/// runc writes `json.MarshalIndent(spec, "", "\t")`: tab indent, no final newline.
fn render(spec: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, serde_json::ser::PrettyFormatter::with_indent(b"\t"));
    serde::Serialize::serialize(spec, &mut ser).expect("writing JSON to a Vec cannot fail");
    out
}

/// Writes the spec into `bundle`, never replacing an existing config.json.
pub fn write_spec(bundle: &Path, rootless: bool) -> Result<PathBuf, SpecError> {
    let meta = std::fs::metadata(bundle).map_err(|source| SpecError::Bundle { path: bundle.into(), source })?;
    if !meta.is_dir() {
        return Err(SpecError::NotADirectory(bundle.into()));
    }
    let mut spec = example();
    if rootless {
        let status = std::fs::read_to_string("/proc/self/status").map_err(|e| SpecError::Ids(Some(e)))?;
        let (uid, gid) = effective_ids(&status).ok_or(SpecError::Ids(None))?;
        to_rootless(&mut spec, uid, gid);
    }
    let path = bundle.join(CONFIG_FILE);
    // create_new makes the existence check and the creation one step, so a
    // config.json appearing in between is never overwritten.
    let mut file = OpenOptions::new().write(true).create_new(true).open(&path).map_err(|source| {
        if source.kind() == ErrorKind::AlreadyExists {
            SpecError::Exists
        } else {
            SpecError::Write { path: path.clone(), source }
        }
    })?;
    file.write_all(&render(&spec)).map_err(|source| SpecError::Write { path: path.clone(), source })?;
    Ok(path)
}

/// Runs `rvisor spec`; returns the exit status (1 on error, as runc).
/// `rootless`: the global `--rootless` flag (runc takes it before or
/// after the subcommand).
pub fn run(args: &SpecArgs, rootless: bool) -> i32 {
    let bundle = args.bundle.clone().unwrap_or_else(|| PathBuf::from("."));
    match write_spec(&bundle, rootless) {
        Ok(_) => 0,
        Err(e) => {
            let mut msg = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                msg.push_str(&format!(": {c}"));
                cause = c.source();
            }
            eprintln!("rvisor: {msg}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{Capability, LinuxNamespaceType, Spec};

    fn parse(v: &Value) -> Spec {
        serde_json::from_slice(&render(v)).expect("oci-spec parses the spec")
    }

    #[test]
    fn example_matches_runc() {
        let spec = parse(&example());
        assert_eq!(spec.version(), crate::OCI_SPEC_VERSION);
        assert_eq!(spec.hostname().as_deref(), Some("rvisor"));
        let root = spec.root().as_ref().unwrap();
        assert_eq!(root.path(), Path::new("rootfs"));
        assert_eq!(root.readonly(), Some(true));

        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.terminal(), Some(true));
        assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
        assert_eq!(p.args().as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(p.cwd(), Path::new("/"));
        assert_eq!(p.no_new_privileges(), Some(true));
        let caps = p.capabilities().as_ref().unwrap();
        let want = [Capability::AuditWrite, Capability::Kill, Capability::NetBindService].into_iter().collect();
        assert_eq!(caps.bounding().as_ref(), Some(&want));
        assert_eq!(caps.effective().as_ref(), Some(&want));
        assert_eq!(caps.permitted().as_ref(), Some(&want));
        assert!(caps.inheritable().is_none() && caps.ambient().is_none());
        let rl = &p.rlimits().as_ref().unwrap()[0];
        assert_eq!((rl.hard(), rl.soft()), (1024, 1024));

        let dests: Vec<_> = spec.mounts().as_ref().unwrap().iter().map(|m| m.destination().clone()).collect();
        let want: Vec<PathBuf> = ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(dests, want);

        let linux = spec.linux().as_ref().unwrap();
        let dev = &linux.resources().as_ref().unwrap().devices().as_ref().unwrap()[0];
        assert!(!dev.allow());
        assert_eq!(dev.access().as_deref(), Some("rwm"));
        let ns: Vec<_> = linux.namespaces().as_ref().unwrap().iter().map(|n| n.typ()).collect();
        use LinuxNamespaceType::*;
        assert_eq!(ns, [Pid, Network, Ipc, Uts, Mount, Cgroup]);
        assert!(linux.masked_paths().as_ref().unwrap().contains(&"/proc/kcore".to_string()));
        assert!(linux.readonly_paths().as_ref().unwrap().contains(&"/proc/sys".to_string()));
        assert!(linux.uid_mappings().is_none());
    }

    #[test]
    fn rendering_is_runc_layout() {
        let s = String::from_utf8(render(&example())).unwrap();
        assert!(s.starts_with("{\n\t\"ociVersion\": \"1.2.0\",\n\t\"process\": {\n\t\t\"terminal\": true,"), "{s}");
        assert!(s.ends_with('}'));
    }

    #[test]
    fn rootless_follows_runc() {
        let mut v = example();
        to_rootless(&mut v, 1000, 100);
        let keys: Vec<_> = v["linux"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["uidMappings", "gidMappings", "namespaces", "maskedPaths", "readonlyPaths"]);
        let spec = parse(&v);
        let linux = spec.linux().as_ref().unwrap();
        let ns: Vec<_> = linux.namespaces().as_ref().unwrap().iter().map(|n| n.typ()).collect();
        use LinuxNamespaceType::*;
        assert_eq!(ns, [Pid, Ipc, Uts, Mount, Cgroup, User]);
        let u = linux.uid_mappings().as_ref().unwrap();
        assert_eq!((u[0].container_id(), u[0].host_id(), u[0].size()), (0, 1000, 1));
        let g = linux.gid_mappings().as_ref().unwrap();
        assert_eq!((g[0].container_id(), g[0].host_id(), g[0].size()), (0, 100, 1));
        assert!(linux.resources().is_none());

        let mounts = spec.mounts().as_ref().unwrap();
        let sys = mounts.iter().find(|m| m.destination() == Path::new("/sys")).unwrap();
        assert_eq!(sys.typ().as_deref(), Some("none"));
        assert_eq!(sys.source().as_deref(), Some(Path::new("/sys")));
        assert!(sys.options().as_ref().unwrap().contains(&"rbind".to_string()));
        let pts = mounts.iter().find(|m| m.destination() == Path::new("/dev/pts")).unwrap();
        assert!(!pts.options().as_ref().unwrap().iter().any(|o| o.starts_with("gid=")));
        assert_eq!(mounts.len(), 7);
    }

    #[test]
    fn rootless_is_idempotent_on_namespaces() {
        let mut v = example();
        to_rootless(&mut v, 1, 1);
        to_rootless(&mut v, 2, 2);
        let users = v["linux"]["namespaces"].as_array().unwrap().iter().filter(|n| n["type"] == "user").count();
        assert_eq!(users, 1);
        assert_eq!(v["linux"]["uidMappings"][0]["hostID"], 2);
    }

    #[test]
    fn effective_ids_take_the_second_column() {
        let status = "Name:\tcat\nUid:\t1000\t1001\t1002\t1003\nGid:\t100\t101\t102\t103\n";
        assert_eq!(effective_ids(status), Some((1001, 101)));
        assert_eq!(effective_ids("Uid:\t1\n"), None);
        let real = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(effective_ids(&real).is_some());
    }

    #[test]
    fn refuses_to_overwrite_and_checks_the_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_spec(dir.path(), false).unwrap();
        assert!(Spec::load(&path).is_ok());
        let err = write_spec(dir.path(), false).unwrap_err();
        assert_eq!(err.to_string(), "File config.json exists. Remove it first.");

        let missing = dir.path().join("missing");
        assert!(matches!(write_spec(&missing, false), Err(SpecError::Bundle { .. })));
        assert!(matches!(write_spec(&path, false), Err(SpecError::NotADirectory(_))));
    }
}
