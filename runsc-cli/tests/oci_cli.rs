//! `rvisor spec` and `rvisor features` as runc users and container engines
//! call them.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use oci_spec::runtime::{Features, LinuxNamespaceType, Spec};

fn rvisor_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rvisor"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("running rvisor")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn spec_writes_a_loadable_config_in_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    let o = rvisor_in(dir.path(), &["spec"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let spec = Spec::load(dir.path().join("config.json")).expect("oci-spec loads config.json");
    assert_eq!(spec.version(), "1.2.0");
    assert_eq!(spec.hostname().as_deref(), Some("rvisor"));
    assert_eq!(spec.root().as_ref().unwrap().path(), Path::new("rootfs"));
    let p = spec.process().as_ref().unwrap();
    assert_eq!(p.args().as_deref(), Some(&["sh".to_string()][..]));
    assert_eq!(p.terminal(), Some(true));
    assert_eq!(spec.mounts().as_ref().unwrap().len(), 7);
    let linux = spec.linux().as_ref().unwrap();
    assert_eq!(linux.namespaces().as_ref().unwrap().len(), 6);
    assert!(linux.uid_mappings().is_none());
}

#[test]
fn spec_refuses_to_overwrite_like_runc() {
    let dir = tempfile::tempdir().unwrap();
    assert!(rvisor_in(dir.path(), &["spec"]).status.success());
    std::fs::write(dir.path().join("config.json"), "mine").unwrap();
    let o = rvisor_in(dir.path(), &["spec"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("File config.json exists. Remove it first."), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(dir.path().join("config.json")).unwrap(), "mine");
}

#[test]
fn spec_bundle_flag_and_rootless() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b");
    std::fs::create_dir(&bundle).unwrap();
    let o = rvisor_in(dir.path(), &["spec", "--rootless", "--bundle", "b"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!dir.path().join("config.json").exists());
    let spec = Spec::load(bundle.join("config.json")).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    let ns: Vec<_> = linux.namespaces().as_ref().unwrap().iter().map(|n| n.typ()).collect();
    assert!(ns.contains(&LinuxNamespaceType::User) && !ns.contains(&LinuxNamespaceType::Network), "{ns:?}");
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let euid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|r| r.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert_eq!(linux.uid_mappings().as_ref().unwrap()[0].host_id(), euid);
    assert!(linux.resources().is_none());

    let o = rvisor_in(dir.path(), &["spec", "-b", "b"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn spec_names_a_missing_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let o = rvisor_in(dir.path(), &["spec", "--bundle", "/nonexistent/rvisor-bundle"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("/nonexistent/rvisor-bundle") && e.contains("No such file"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn features_is_json_that_engines_parse() {
    let dir = tempfile::tempdir().unwrap();
    let o = rvisor_in(dir.path(), &["features"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("features prints JSON");
    assert_eq!(v["ociVersionMax"], "1.2.0");
    assert_eq!(v["ociVersionMin"], "1.0.0");
    let f: Features = serde_json::from_slice(&o.stdout).expect("oci-spec parses features");
    let linux = f.linux().as_ref().unwrap();
    assert!(linux.capabilities().as_ref().unwrap().iter().any(|c| c == "CAP_SYS_ADMIN"));
    assert_eq!(linux.namespaces().as_ref().unwrap().len(), 7);
    assert!(f.hooks().as_ref().unwrap().iter().any(|h| h == "createRuntime"));
    assert!(f.mount_options().as_ref().unwrap().iter().any(|m| m == "rbind"));
}

#[test]
fn features_takes_no_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let o = rvisor_in(dir.path(), &["features", "extra"]);
    assert_eq!(o.status.code(), Some(2));
}
