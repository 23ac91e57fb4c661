//! Checks of config.json that runc makes before it touches the host
//! (libcontainer's config validator and its cgroup writers): a spec that
//! fails here leaves no state directory, cgroup or process behind.

use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxDeviceType, LinuxIdMapping, LinuxNamespaceType, Spec};

/// Every check; the first failure is the error `create` reports.
pub fn spec(spec: &Spec) -> Result<()> {
    if let Some(p) = spec.process() {
        for r in p.rlimits().iter().flatten() {
            if r.soft() > r.hard() {
                bail!("invalid rlimit {:?}: soft limit {} is above hard limit {}", r.typ(), r.soft(), r.hard());
            }
        }
    }
    let Some(linux) = spec.linux() else { return Ok(()) };
    if let Some(s) = linux.seccomp() {
        super::seccomp::profile(s)?;
    }
    let has_ns = |t: LinuxNamespaceType| linux.namespaces().iter().flatten().any(|n| n.typ() == t);
    if let Some(res) = linux.resources() {
        if let Some(m) = res.memory() {
            let limit = m.limit().unwrap_or(0);
            for (what, v) in [("memory limit", m.limit()), ("memory+swap limit", m.swap()), ("memory reservation", m.reservation())] {
                if let Some(v) = v.filter(|v| *v < -1) {
                    bail!("invalid {what} {v}: must be -1 (unlimited) or positive");
                }
            }
            if let Some(swap) = m.swap().filter(|s| *s > 0) {
                if limit > 0 && swap < limit {
                    bail!("memory+swap limit {swap} should be larger than memory limit {limit}");
                }
            }
        }
        if let Some(c) = res.cpu() {
            if let Some(q) = c.quota().filter(|q| *q < -1) {
                bail!("invalid cpu quota {q}: must be -1 (unlimited) or positive");
            }
        }
    }
    if has_ns(LinuxNamespaceType::User) {
        id_mappings("uid", linux.uid_mappings().as_deref().unwrap_or_default())?;
        id_mappings("gid", linux.gid_mappings().as_deref().unwrap_or_default())?;
    } else if linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty()) {
        bail!("user namespace mappings specified, but the user namespace isn't enabled in the config");
    }
    for (key, _) in linux.sysctl().iter().flatten() {
        sysctl(key, has_ns(LinuxNamespaceType::Network), has_ns(LinuxNamespaceType::Uts))?;
    }
    for d in linux.devices().iter().flatten() {
        let known = d.typ() == LinuxDeviceType::C && EMULATED.contains(&(d.major(), d.minor()));
        if !known {
            bail!(
                "device {} ({:?} {}:{}) cannot be provided in the sandbox: rvisor emulates only null, zero, full, random, urandom, tty, console and ptmx",
                d.path().display(),
                d.typ(),
                d.major(),
                d.minor()
            );
        }
    }
    Ok(())
}

/// (major, minor) of the character devices the sentry implements.
const EMULATED: [(i64, i64); 8] = [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2)];

/// One mapping list: ranges that fit in 32 bits and overlap neither on
/// the container side nor on the host side (the kernel refuses both when
/// the VMM writes uid_map; runc reports them before).
fn id_mappings(what: &str, maps: &[LinuxIdMapping]) -> Result<()> {
    if maps.is_empty() {
        bail!("user namespace enabled, but no {what} mappings found");
    }
    let end = |start: u32, size: u32| u64::from(start) + u64::from(size);
    for (i, m) in maps.iter().enumerate() {
        if m.size() == 0 {
            bail!("invalid {what} mapping {}:{}:0: empty range", m.container_id(), m.host_id());
        }
        for (id, side) in [(m.container_id(), "container"), (m.host_id(), "host")] {
            if end(id, m.size()) > 1 << 32 {
                bail!("invalid {what} mapping {}:{}:{}: {side} range passes 2^32", m.container_id(), m.host_id(), m.size());
            }
        }
        for o in &maps[..i] {
            let overlap = |a: u32, b: u32| u64::from(a) < end(b, o.size()) && u64::from(b) < end(a, m.size());
            if overlap(m.container_id(), o.container_id()) || overlap(m.host_id(), o.host_id()) {
                bail!(
                    "{what} mappings {}:{}:{} and {}:{}:{} overlap",
                    o.container_id(),
                    o.host_id(),
                    o.size(),
                    m.container_id(),
                    m.host_id(),
                    m.size()
                );
            }
        }
    }
    Ok(())
}

/// runc's rule: only sysctls of namespaces the container has of its own.
fn sysctl(key: &str, netns: bool, utsns: bool) -> Result<()> {
    const IPC: [&str; 8] =
        ["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        return Ok(());
    }
    if key.starts_with("net.") {
        if netns {
            return Ok(());
        }
        bail!("sysctl {key:?} not allowed in host network namespace");
    }
    if key == "kernel.domainname" || key == "kernel.hostname" {
        if utsns {
            return Ok(());
        }
        bail!("sysctl {key:?} is not allowed as it conflicts with the OCI \"hostname\" field");
    }
    bail!("sysctl {key:?} is not in a separate kernel namespace");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_of(linux: &str, process: &str) -> Spec {
        let s = format!(
            r#"{{"ociVersion":"1.0.2","process":{{"user":{{"uid":0,"gid":0}},"args":["true"],"cwd":"/"{process}}},"root":{{"path":"rootfs"}},"linux":{linux}}}"#
        );
        serde_json::from_str(&s).unwrap()
    }

    fn err(linux: &str, process: &str) -> String {
        spec(&spec_of(linux, process)).unwrap_err().to_string()
    }

    #[test]
    fn what_the_clients_send_passes() {
        for f in ["sample-config-docker.json", "sample-config-podman.json", "sample-config-containerd.json"] {
            let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/clients/baseline").join(f);
            let Ok(text) = std::fs::read_to_string(&p) else { continue };
            let s: Spec = serde_json::from_str(&text).unwrap();
            spec(&s).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
        let ok = r#"{"namespaces":[{"type":"user"},{"type":"network"}],"uidMappings":[{"containerID":0,"hostID":100000,"size":1000},{"containerID":1000,"hostID":1000,"size":1}],"gidMappings":[{"containerID":0,"hostID":100000,"size":65536}],"sysctl":{"net.ipv4.ping_group_range":"0 0","kernel.shmmax":"1000","fs.mqueue.msg_max":"20"},"resources":{"memory":{"limit":-1,"swap":-1},"pids":{"limit":-1}},"devices":[{"path":"/dev/null","type":"c","major":1,"minor":3}]}"#;
        spec(&spec_of(ok, "")).unwrap();
    }

    #[test]
    fn bad_limits_mappings_sysctls_devices() {
        assert!(err(r#"{"resources":{"memory":{"limit":-5}}}"#, "").contains("memory limit -5"));
        assert!(err(r#"{"resources":{"memory":{"limit":2000,"swap":1000}}}"#, "").contains("should be larger"));
        assert!(err(r#"{"resources":{"cpu":{"quota":-10}}}"#, "").contains("cpu quota"));
        let user = r#"{"namespaces":[{"type":"user"}],"gidMappings":[{"containerID":0,"hostID":1,"size":1}],"uidMappings":"#;
        assert!(err(&format!(r#"{user}[{{"containerID":0,"hostID":100000,"size":65536}},{{"containerID":10,"hostID":200000,"size":5}}]}}"#), "").contains("overlap"));
        assert!(err(&format!(r#"{user}[{{"containerID":0,"hostID":100000,"size":10}},{{"containerID":10,"hostID":100005,"size":5}}]}}"#), "").contains("overlap"));
        assert!(err(&format!(r#"{user}[{{"containerID":0,"hostID":4294967000,"size":65536}}]}}"#), "").contains("2^32"));
        assert!(err(&format!(r#"{user}[]}}"#), "").contains("no uid mappings"));
        assert!(err(r#"{"uidMappings":[{"containerID":0,"hostID":1,"size":1}]}"#, "").contains("isn't enabled"));
        assert!(err(r#"{"sysctl":{"kernel.nope":"1"}}"#, "").contains("not in a separate kernel namespace"));
        assert!(err(r#"{"sysctl":{"net.ipv4.ip_forward":"1"}}"#, "").contains("host network namespace"));
        assert!(err(r#"{"devices":[{"path":"/dev/sda","type":"b","major":8,"minor":0}]}"#, "").contains("/dev/sda"));
        assert!(err("{}", r#","rlimits":[{"type":"RLIMIT_NOFILE","hard":10,"soft":20}]"#).contains("soft limit 20"));
    }
}
