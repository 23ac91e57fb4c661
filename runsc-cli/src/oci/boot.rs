//! `rvisor boot` (internal): the VMM process of an OCI container. Started
//! by `create`, it builds the VM, puts the container's root and bind
//! mounts into a mount namespace of its own (so host tools that enter it,
//! like `podman cp`, see the container's files, and the sentry's host
//! file requests can reach nothing else), reports to `create` once the
//! init program is loaded, serves the control socket, and exits with the
//! container's status.

use std::io::Write;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::Spec;
use platform_kvm::{Controller, MountSpec, Sandbox, SandboxConfig};

use super::wire::{self, ProcInfo, Reply, Request};

/// Guest memory of a container sandbox (touched lazily).
const MEMORY: u64 = 8 << 30;

#[derive(clap::Args)]
pub struct BootArgs {
    #[arg(long)]
    bundle: PathBuf,
    #[arg(long)]
    state_dir: PathBuf,
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Where to report "ok" or the error to `create`.
    #[arg(long)]
    sync_fd: i32,
    id: String,
}

/// Runs the VMM; returns the container's exit status.
pub fn run(args: &BootArgs, g: &super::Globals) -> i32 {
    // SAFETY: `create` passed us the write end of its pipe under this
    // number and nothing else in this process uses it.
    #[allow(unsafe_code)]
    let sync = unsafe { std::fs::File::from_raw_fd(args.sync_fd) };
    // `create` reads it to the end: no process we start (the gofer) may
    // keep it open.
    let _ = nix::fcntl::fcntl(args.sync_fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
    let mut sync = Some(sync);
    let report = |sync: &mut Option<std::fs::File>, msg: &str| {
        if let Some(mut f) = sync.take() {
            let _ = f.write_all(msg.as_bytes());
        }
    };
    let (sandbox, listener, proc_root, oom_reporter, memory_usage, memory_limit) = match prepare(args, g) {
        Ok(x) => x,
        Err(e) => {
            report(&mut sync, &format!("error: {}", super::chain(&e)));
            return 1;
        }
    };
    let ctl = sandbox.controller();
    let vcpus = std::thread::spawn(move || sandbox.run());
    if let Err(msg) = ctl.wait_ready() {
        report(&mut sync, &format!("error: {msg}"));
        return vcpus.join().ok().and_then(Result::ok).unwrap_or(1);
    }
    // What the host charges besides the sandbox's own pages (the VMM, the
    // gofer, the hypervisor's tables), measured now that everything is
    // up, with room to grow: the sentry keeps its processes that far
    // below the memory limit so that the host never has to kill the VMM.
    let used = memory_usage.and_then(|f| {
        let mut b = [0u8; 32];
        let n = std::os::unix::fs::FileExt::read_at(&f, &mut b, 0).ok()?;
        std::str::from_utf8(&b[..n]).ok()?.trim().parse::<u64>().ok()
    });
    if let Some(used) = memory_limit.and(used) {
        let reserve = used + (8 << 20) + memory_limit.unwrap_or(0) / 32;
        let _ = ctl.request(abi::control::Kind::SetLimits, [0; 8], format!("cg.reserve={reserve}").as_bytes());
    }
    report(&mut sync, "ok");
    {
        let ctl = ctl.clone();
        std::thread::spawn(move || serve(listener, ctl));
    }
    {
        let ctl = ctl.clone();
        std::thread::spawn(move || mirror_proc(&ctl, &proc_root));
    }
    if args.console_socket.is_some() {
        let ctl = ctl.clone();
        std::thread::spawn(move || super::console::forward_signals(&ctl, false));
    }
    let oom_reporter = std::sync::Arc::new(std::sync::Mutex::new(oom_reporter));
    let report_oom = {
        let (ctl, r) = (ctl.clone(), oom_reporter.clone());
        move || {
            if ctl.oom_kills() > 0 {
                if let Some(r) = r.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    r.report();
                }
            }
        }
    };
    {
        let (ctl, report_oom) = (ctl.clone(), report_oom.clone());
        std::thread::spawn(move || {
            while ctl.ended().is_none() {
                report_oom();
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        });
    }
    let result = vcpus.join();
    // An OOM kill that ended the sandbox (its init was the victim) is
    // reported before the runtime sees the exit.
    report_oom();
    match result {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => {
            eprintln!("rvisor: sandbox failed: {}", super::chain(&e));
            125
        }
        Err(_) => 125,
    }
}

/// The sandbox, its control socket, the /proc mirror, the OOM reporter,
/// the memory cgroup's usage file and the memory limit.
type Prepared = (Sandbox, std::os::unix::net::UnixListener, PathBuf, Option<super::oom::Reporter>, Option<std::fs::File>, Option<u64>);

fn prepare(args: &BootArgs, g: &super::Globals) -> Result<Prepared> {
    let flags = g.flags;
    let spec = super::load_spec(&args.bundle)?;
    let rootfs = super::rootfs_of(&spec, &args.bundle)?;
    let process = spec.process().as_ref().context("config.json has no process")?;
    // A session of our own: the client's terminal and signals stay out,
    // and the console can become our controlling terminal.
    let _ = nix::unistd::setsid();
    let stdio = match &args.console_socket {
        Some(sock) => {
            let s = super::console::make_console(sock, process.console_size().as_ref().map(|b| (b.height() as u16, b.width() as u16)))?;
            super::console::take_terminal(&s[0])?;
            s
        }
        None => dup_stdio()?,
    };
    match g.network.as_str() {
        "host" => {}
        "none" => crate::netns::isolate()?,
        _ => enter_network_namespace(&spec)?,
    }
    let args_v = process.args().clone().unwrap_or_default();
    if args_v.is_empty() {
        bail!("process.args must not be empty");
    }
    let cgroups: super::cgroup::Cgroups = std::fs::read(args.state_dir.join("cgroups.json"))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_default();
    // `create` moves this process into the container's cgroups once it
    // has started it; joining now as well puts the processes started
    // here (the gofer, the OOM reporter) and the memory touched while
    // preparing there too, whichever comes first.
    let _ = cgroups.join(std::process::id() as i32);
    let mut extra = process_settings(process);
    if let Some(n) = super::cgroup::Cgroups::pids_limit(&spec) {
        extra.push(format!("pids_max={n}"));
    }
    if let Some(res) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
        extra.extend(super::cgroup::sentry_settings(res));
    }
    if process.no_new_privileges().unwrap_or(false) {
        extra.push("no_new_privs=1".into());
    }
    if let Some(s) = spec.linux().as_ref().and_then(|l| l.seccomp().clone()) {
        extra.push(format!("seccomp={}", super::seccomp::profile(&s)?));
    }
    if let Some(linux) = spec.linux() {
        for (k, v) in linux.sysctl().iter().flatten() {
            if !k.contains('=') && !v.contains('\0') {
                extra.push(format!("sysctl={k}={v}"));
            }
        }
        let maps = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
            m.iter().flatten().map(|x| format!("{} {} {}", x.container_id(), x.host_id(), x.size())).collect::<Vec<_>>().join(",")
        };
        if linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty()) {
            extra.push(format!("id_maps={};{}", maps(linux.uid_mappings()), maps(linux.gid_mappings())));
        }
    }
    let user = process.user();
    let mut envp = process.env().clone().unwrap_or_default();
    let passwd = secure_join(&rootfs, Path::new("/etc/passwd")).ok().and_then(|p| std::fs::read_to_string(p).ok());
    super::ensure_home(&mut envp, user.uid(), passwd.as_deref());
    let mut cfg = SandboxConfig {
        image: crate::SENTRY_IMAGE,
        mem_size: MEMORY,
        exe: args_v[0].clone(),
        cwd: process.cwd().to_string_lossy().into_owned(),
        argv: args_v,
        envp,
        stdio,
        flags: flags | abi::boot::flags::WAIT_START,
        uid: user.uid(),
        gid: user.gid(),
        groups: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask().unwrap_or(0o022),
        hostname: spec.hostname().clone(),
        domainname: spec.domainname().clone().unwrap_or_default(),
        mounts: {
            let mut m = sentry_mounts(&spec, &cgroups);
            if g.overlay_root {
                m[0].kind = "overlay".into();
            }
            m
        },
        allow_writes: true,
        extra,
        net_raw: process
            .capabilities()
            .as_ref()
            .and_then(|c| c.bounding().as_ref())
            .is_some_and(|b| b.contains(&oci_spec::runtime::Capability::NetRaw)),
        gofer: None,
        writable: vec![],
        num_vcpus: super::cpus::allowance(&spec),
        gofer_id_maps: None,
        host_seccomp: Some(crate::host_seccomp::vmm(false, true)?),
    };
    // The container's tree, in a mount namespace of our own that still
    // reaches the host's files until `enter_tree`.
    // Before the VMM's mount namespace: the reporter keeps the host's.
    let oom_reporter = super::oom::Reporter::start(&cgroups)?;
    let memory_usage = cgroups.memory_usage_file();
    build_tree(&spec, &rootfs)?;
    let maps = gofer_id_maps(&spec);
    cfg.gofer = Some(start_gofer(&rootfs, maps.as_ref())?);
    cfg.gofer_id_maps = maps;
    // This attaches to the gofer, which answers once it has its own copy
    // of the tree: only then may this namespace change under it.
    let sandbox = Sandbox::new(cfg).map_err(|e| anyhow!("{}", super::chain(&e)))?;
    let listener = wire::bind(&args.state_dir.join("control.sock"))?;
    let proc_root = enter_tree(&rootfs)?;
    let memory_limit = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.limit())
        .filter(|l| *l > 0)
        .map(|l| l as u64);
    Ok((sandbox, listener, proc_root, oom_reporter, memory_usage, memory_limit))
}

/// The spec's user namespace id maps, when it has a user namespace with
/// some: the gofer then runs in one with these maps.
fn gofer_id_maps(spec: &Spec) -> Option<platform_kvm::files::IdMaps> {
    use oci_spec::runtime::LinuxNamespaceType;
    let linux = spec.linux().as_ref()?;
    linux.namespaces().as_ref()?.iter().find(|n| n.typ() == LinuxNamespaceType::User)?;
    let ranges = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| -> Vec<(u32, u32, u32)> {
        m.iter().flatten().map(|x| (x.container_id(), x.host_id(), x.size())).collect()
    };
    let maps = platform_kvm::files::IdMaps { uid: ranges(linux.uid_mappings()), gid: ranges(linux.gid_mappings()) };
    (!maps.uid.is_empty() && !maps.gid.is_empty()).then_some(maps)
}

/// Starts `rvisor gofer --in-place` serving the tree at `rootfs` (built in
/// our mount namespace, which the gofer copies); returns our end of its
/// socket. With `maps`, the gofer enters a user namespace and this writes
/// its id maps.
fn start_gofer(rootfs: &Path, maps: Option<&platform_kvm::files::IdMaps>) -> Result<OwnedFd> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let mut args = vec![std::ffi::OsStr::new("--root"), rootfs.as_os_str(), std::ffi::OsStr::new("--in-place")];
    let sync = match maps {
        Some(_) => Some(std::os::unix::net::UnixStream::pair().context("gofer sync socket")?),
        None => None,
    };
    let sync_arg = sync.as_ref().map(|(_, theirs)| theirs.as_raw_fd().to_string());
    if let Some(n) = &sync_arg {
        args.extend([std::ffi::OsStr::new("--userns-sync"), std::ffi::OsStr::new(n)]);
    }
    let inherit: Vec<_> = sync.iter().map(|(_, theirs)| theirs.as_fd()).collect();
    // Called on the thread that lives as long as the VMM (see `spawn`).
    let (vmm_end, child) = crate::gofer_cmd::spawn(&args, &inherit).context("starting the gofer")?;
    if let (Some((mut ours, theirs)), Some(maps)) = (sync, maps) {
        drop(theirs);
        let mut b = [0u8; 1];
        ours.read_exact(&mut b).context("the gofer did not make its user namespace")?;
        let lines = |m: &[(u32, u32, u32)]| m.iter().map(|(c, h, n)| format!("{c} {h} {n}\n")).collect::<String>();
        let pid = child.id();
        std::fs::write(format!("/proc/{pid}/gid_map"), lines(&maps.gid)).context("writing the gofer's gid_map")?;
        std::fs::write(format!("/proc/{pid}/uid_map"), lines(&maps.uid)).context("writing the gofer's uid_map")?;
        std::io::Write::write_all(&mut ours, b"m").context("gofer sync")?;
    }
    Ok(vmm_end)
}

/// The spec's capabilities and rlimits as the sentry's boot settings.
pub fn process_settings(p: &oci_spec::runtime::Process) -> Vec<String> {
    let mut out = Vec::new();
    let mask = |set: &Option<oci_spec::runtime::Capabilities>| -> u64 {
        set.iter()
            .flatten()
            .filter_map(|c| serde_json::to_value(c).ok()?.as_str().map(String::from))
            .filter_map(|name| crate::features::CAPABILITIES.iter().position(|n| *n == name))
            .fold(0u64, |m, i| m | 1 << i)
    };
    if let Some(c) = p.capabilities() {
        out.push(format!("cap_eff={:x}", mask(c.effective())));
        out.push(format!("cap_prm={:x}", mask(c.permitted())));
        out.push(format!("cap_bnd={:x}", mask(c.bounding())));
        out.push(format!("cap_inh={:x}", mask(c.inheritable())));
        out.push(format!("cap_amb={:x}", mask(c.ambient())));
    }
    const RLIMITS: [&str; 16] = [
        "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS", "RLIMIT_NPROC",
        "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE",
        "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
    ];
    for r in p.rlimits().iter().flatten() {
        let name = serde_json::to_value(r.typ()).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        if let Some(i) = RLIMITS.iter().position(|n| *n == name) {
            out.push(format!("rlimit={i},{},{}", r.soft(), r.hard()));
        }
    }
    out
}

fn dup_stdio() -> Result<[OwnedFd; 3]> {
    Ok([
        std::io::stdin().as_fd().try_clone_to_owned()?,
        std::io::stdout().as_fd().try_clone_to_owned()?,
        std::io::stderr().as_fd().try_clone_to_owned()?,
    ])
}

/// Joins the spec's network namespace, or makes a new one when it asks
/// for one without a path (Docker then configures it from its hook), so
/// the VMM never lends the host's network to the container by accident.
fn enter_network_namespace(spec: &Spec) -> Result<()> {
    use oci_spec::runtime::LinuxNamespaceType;
    let Some(ns) = spec.linux().as_ref().and_then(|l| l.namespaces().clone()) else { return Ok(()) };
    let Some(net) = ns.iter().find(|n| n.typ() == LinuxNamespaceType::Network) else { return Ok(()) };
    match net.path() {
        Some(p) => {
            let f = std::fs::File::open(p).with_context(|| format!("network namespace {}", p.display()))?;
            nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).with_context(|| format!("joining {}", p.display()))?;
        }
        // A new namespace gets its loopback up, as runc does.
        None => crate::netns::isolate()?,
    }
    Ok(())
}

/// Bytes of a tmpfs `size=` option (k, m, g suffixes, or a plain number).
fn parse_size(v: &str) -> Option<u64> {
    let (num, mult) = match v.chars().last()? {
        'k' | 'K' => (&v[..v.len() - 1], 1u64 << 10),
        'm' | 'M' => (&v[..v.len() - 1], 1 << 20),
        'g' | 'G' => (&v[..v.len() - 1], 1 << 30),
        _ => (v, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn is_bind(m: &oci_spec::runtime::Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options().as_ref().is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
}

/// The sentry's mount table for a spec: the root and bind mounts are the
/// host files at the same paths in the VMM's namespace (written through;
/// `ro` refused); the rest are the sentry's own filesystems.
pub fn sentry_mounts(spec: &Spec, cgroups: &super::cgroup::Cgroups) -> Vec<MountSpec> {
    let readonly_root = spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false);
    let mut out = vec![MountSpec {
        kind: "host".into(),
        dest: "/".into(),
        source: "/".into(),
        options: if readonly_root { "ro".into() } else { String::new() },
    }];
    let mut has_dev = false;
    let mut has_pts = false;
    for m in spec.mounts().clone().unwrap_or_default() {
        let dest = m.destination().to_string_lossy().into_owned();
        let opts = m.options().clone().unwrap_or_default();
        let ro = opts.iter().any(|o| o == "ro");
        let typ = m.typ().clone().unwrap_or_default();
        let (kind, options) = if is_bind(&m) {
            // Bind mounts are shared with the host (runsc's default for
            // mounts): lookups are revalidated. The root is the
            // container's own and keeps the sentry's caches.
            ("host", if ro { "ro,revalidate".to_string() } else { "revalidate".to_string() })
        } else {
            match typ.as_str() {
                "tmpfs" if dest == "/dev" => ("dev", String::new()),
                "tmpfs" => {
                    let mut o = Vec::new();
                    for x in &opts {
                        if let Some(v) = x.strip_prefix("size=") {
                            if let Some(b) = parse_size(v) {
                                o.push(format!("size={b}"));
                            }
                        } else if x.starts_with("mode=") || x.starts_with("uid=") || x.starts_with("gid=") {
                            o.push(x.clone());
                        }
                    }
                    if ro {
                        o.push("ro".into());
                    }
                    ("tmpfs", o.join(","))
                }
                "proc" => ("proc", String::new()),
                "sysfs" => ("sysfs", String::new()),
                "devpts" => ("devpts", String::new()),
                "mqueue" => ("mqueue", String::new()),
                // The sentry's view of the container's cgroups, laid out
                // like the host's: v1 hierarchies (a hybrid's v2 one too)
                // or v2 alone.
                "cgroup" | "cgroup2" => ("cgroup", cgroups.sentry_layout()),
                _ => continue,
            }
        };
        has_dev |= dest == "/dev";
        has_pts |= dest == "/dev/pts";
        out.push(MountSpec { kind: kind.into(), dest, source: m.destination().to_string_lossy().into_owned(), options });
    }
    let sentry_fs = |kind: &str, dest: &str| MountSpec { kind: kind.into(), dest: dest.into(), source: String::new(), options: String::new() };
    if !has_dev {
        out.insert(1, sentry_fs("dev", "/dev"));
    }
    // Terminals of the sandbox are listed there (ttyname needs it).
    if !has_pts {
        let at = out.iter().position(|m| m.dest == "/dev").map_or(1, |i| i + 1);
        out.insert(at, sentry_fs("devpts", "/dev/pts"));
    }
    out
}

/// Resolves `path` inside `root` the way the container would see it:
/// symlinks are followed relative to `root` and `..` stops at it, so a
/// hostile image cannot point a mount outside its root.
pub fn secure_join(root: &Path, path: &Path) -> Result<PathBuf> {
    let mut parts: Vec<std::ffi::OsString> = Vec::new();
    let mut todo: Vec<std::ffi::OsString> =
        path.components().rev().filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n.to_os_string()),
            std::path::Component::ParentDir => Some("..".into()),
            _ => None,
        }).collect();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            parts.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&parts);
        candidate.push(&c);
        match std::fs::symlink_metadata(&candidate) {
            Ok(md) if md.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    bail!("too many symlinks in {}", path.display());
                }
                let target = std::fs::read_link(&candidate)?;
                if target.is_absolute() {
                    parts.clear();
                }
                for tc in target.components().rev() {
                    match tc {
                        std::path::Component::Normal(n) => todo.push(n.to_os_string()),
                        std::path::Component::ParentDir => todo.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => parts.push(c),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&parts);
    Ok(out)
}

/// Gives the VMM a mount namespace holding the container's root and bind
/// mounts at their container paths (like runc's) at `rootfs`; the host's
/// tree stays until `enter_tree`.
fn build_tree(spec: &Spec, rootfs: &Path) -> Result<()> {
    use nix::sched::{unshare, CloneFlags};
    unshare(CloneFlags::CLONE_NEWNS).context("new mount namespace")?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>).context("making mounts private")?;
    mount(Some(rootfs), rootfs, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .with_context(|| format!("binding the root {}", rootfs.display()))?;
    for m in spec.mounts().clone().unwrap_or_default() {
        let dest = secure_join(rootfs, m.destination())?;
        let opts = m.options().clone().unwrap_or_default();
        if is_bind(&m) {
            let src = m.source().clone().context("bind mount without a source")?;
            let src_md = std::fs::metadata(&src).with_context(|| format!("bind mount source {}", src.display()))?;
            make_mountpoint(&dest, src_md.is_dir())?;
            let mut fl = MsFlags::MS_BIND;
            if opts.iter().any(|o| o == "rbind") {
                fl |= MsFlags::MS_REC;
            }
            mount(Some(&src), &dest, None::<&str>, fl, None::<&str>)
                .with_context(|| format!("bind mounting {} on {}", src.display(), m.destination().display()))?;
            let mut re = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
            for (o, f) in [("ro", MsFlags::MS_RDONLY), ("nosuid", MsFlags::MS_NOSUID), ("nodev", MsFlags::MS_NODEV), ("noexec", MsFlags::MS_NOEXEC)] {
                if opts.iter().any(|x| x == o) {
                    re |= f;
                }
            }
            if re != MsFlags::MS_BIND | MsFlags::MS_REMOUNT {
                mount(None::<&str>, &dest, None::<&str>, re, None::<&str>)
                    .with_context(|| format!("remounting {}", m.destination().display()))?;
            }
        } else if m.typ().as_deref() == Some("tmpfs") {
            // A host tmpfs holds the mount points of nested mounts (e.g.
            // /dev/shm under /dev) without writing into the image.
            if make_mountpoint(&dest, true).is_ok() {
                let data: Vec<&str> = opts.iter().filter(|o| o.starts_with("size=") || o.starts_with("mode=")).map(String::as_str).collect();
                let _ = mount(Some("tmpfs"), &dest, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(data.join(",").as_str()));
            }
        } else if m.typ().as_deref() == Some("sysfs") {
            // Only a holder for the cgroup mount points below it: the
            // sandbox's /sys is the sentry's.
            if make_mountpoint(&dest, true).is_ok() {
                let _ = mount(Some("sysfs-holder"), &dest, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, Some("mode=755,size=1m"));
            }
        } else {
            let _ = make_mountpoint(&dest, true);
        }
    }
    // /proc here shows the sandbox's processes (mirrored by `mirror_proc`),
    // for host tools that read it in this namespace (podman top).
    let cpuinfo = std::fs::read("/proc/cpuinfo").unwrap_or_default();
    let proc_dir = rootfs.join("proc");
    if proc_dir.is_dir()
        && mount(Some("proc-mirror"), &proc_dir, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, Some("mode=755,size=16m")).is_ok()
    {
        let _ = std::fs::write(proc_dir.join("cpuinfo"), cpuinfo);
    }
    if spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        mount(None::<&str>, rootfs, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None::<&str>)
            .context("making the root read-only")?;
    }
    Ok(())
}

/// Capabilities the VMM keeps once the sandbox runs, each with why. The
/// container's files are the gofer's, so the file capabilities go
/// (DAC_OVERRIDE, DAC_READ_SEARCH, CHOWN, FOWNER...), and so do mount,
/// chroot, ptrace and the rest: a VMM taken over by the guest holds none.
const VMM_CAPS: &[(u32, &str)] = &[
    (10, "CAP_NET_BIND_SERVICE: the sandbox's sockets bind ports below 1024 in the container's network namespace"),
    (11, "CAP_NET_BROADCAST: broadcast and multicast on its sockets"),
    (12, "CAP_NET_ADMIN: socket options and NETLINK_ROUTE changes of the container's own network namespace"),
    (13, "CAP_NET_RAW: raw sockets, when the container's capabilities hold it (checked by the VMM)"),
];

/// Puts the VMM into the tree `build_tree` made: pivots into it (the
/// host's tree leaves this namespace), then, since the container's files
/// are the gofer's, confines the VMM to the /proc mirror (a tmpfs of its
/// own) with `chroot` and drops the capabilities it no longer needs. The
/// namespace stays the container's tree, which host tools that join it
/// (`podman cp`, `podman top`) read. Returns where the /proc mirror now
/// is for the VMM.
fn enter_tree(rootfs: &Path) -> Result<PathBuf> {
    std::env::set_current_dir(rootfs)?;
    nix::unistd::pivot_root(".", ".").context("pivot_root")?;
    umount2(".", MntFlags::MNT_DETACH).context("detaching the old root")?;
    std::env::set_current_dir("/")?;
    let mirror = nix::sys::statfs::statfs("/proc").is_ok_and(|f| f.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
        && Path::new("/proc/cpuinfo").exists();
    let proc_root = if mirror {
        nix::unistd::chroot("/proc").context("chroot into the /proc mirror")?;
        std::env::set_current_dir("/")?;
        PathBuf::from("/")
    } else {
        // No /proc in the image to hold the mirror (and none could be
        // made): the VMM keeps the container's tree as its root, without
        // the capabilities to reach past the files' permissions.
        log::warn!("no /proc mirror: the VMM is not confined to an empty root");
        PathBuf::from("/proc")
    };
    let keep = VMM_CAPS.iter().fold(0u64, |m, &(c, _)| m | 1 << c);
    gofer::confine::limit_capabilities(keep).context("dropping the VMM's capabilities")?;
    // Other processes of our uid without CAP_SYS_PTRACE (another
    // container's VMM, as taken over as this one) cannot then reach our
    // fds or root through /proc; the runtime's clients (root) still can.
    nix::sys::prctl::set_dumpable(false).context("PR_SET_DUMPABLE")?;
    Ok(proc_root)
}

fn make_mountpoint(p: &Path, dir: bool) -> Result<()> {
    if p.exists() {
        return Ok(());
    }
    if dir {
        std::fs::create_dir_all(p).with_context(|| format!("creating mount point {}", p.display()))?;
    } else {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(p)
            .with_context(|| format!("creating mount point {}", p.display()))?;
    }
    Ok(())
}

/// Keeps /proc of the VMM's namespace in step with the sandbox: the
/// process files `podman top` (psgo) reads, refreshed every second while
/// the sandbox runs.
fn mirror_proc(ctl: &Controller, root: &Path) {
    if !root.join("cpuinfo").exists() {
        return;
    }
    let mut known: std::collections::BTreeSet<String> = Default::default();
    while ctl.ended().is_none() {
        if !ctl.is_paused() {
            if let Ok((_, data)) = ctl.request(abi::control::Kind::ProcSnapshot, [0; 8], &[]) {
                known = write_snapshot(root, &data, &known);
            }
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// Writes a `ProcSnapshot` answer under `root`; removes pid directories
/// that are gone. Returns the pid directories written.
fn write_snapshot(root: &Path, mut data: &[u8], old: &std::collections::BTreeSet<String>) -> std::collections::BTreeSet<String> {
    let mut pids = std::collections::BTreeSet::new();
    while let Some(nul) = data.iter().position(|&b| b == 0) {
        let path = String::from_utf8_lossy(&data[..nul]).into_owned();
        let rest = &data[nul + 1..];
        if rest.len() < 4 {
            break;
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let Some(body) = rest.get(4..4 + len) else { break };
        data = &rest[4 + len..];
        // Only "name" or "<pid>/name" with plain names: the answer is untrusted.
        let parts: Vec<&str> = path.split('/').collect();
        let ok = match parts.as_slice() {
            [f] => f.chars().all(|c| c.is_ascii_alphanumeric()),
            [pid, f] => pid.chars().all(|c| c.is_ascii_digit()) && f.chars().all(|c| c.is_ascii_alphanumeric()),
            _ => false,
        };
        if !ok {
            continue;
        }
        if parts.len() == 2 && pids.insert(parts[0].to_string()) {
            let dir = root.join(parts[0]);
            let _ = std::fs::create_dir_all(dir.join("ns"));
            let _ = std::fs::create_dir_all(dir.join("attr"));
            let _ = std::os::unix::fs::symlink("pid:[4026531836]", dir.join("ns/pid"));
            let _ = std::fs::write(dir.join("attr/current"), "unconfined");
        }
        let tmp = root.join(format!(".{}.tmp", path.replace('/', "_")));
        if std::fs::write(&tmp, body).is_ok() {
            let _ = std::fs::rename(&tmp, root.join(&path));
        }
    }
    for gone in old.difference(&pids) {
        let _ = std::fs::remove_dir_all(root.join(gone));
    }
    pids
}

/// Serves the control socket until the process exits.
fn serve(listener: std::os::unix::net::UnixListener, ctl: Controller) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        // Only root (the CLI) may drive the sandbox.
        let cred = nix::sys::socket::getsockopt(&conn, nix::sys::socket::sockopt::PeerCredentials);
        if !cred.is_ok_and(|c| c.uid() == 0 || c.uid() == nix::unistd::geteuid().as_raw()) {
            continue;
        }
        let ctl = ctl.clone();
        std::thread::spawn(move || {
            let _ = handle(conn, &ctl);
        });
    }
}

fn err(msg: impl std::fmt::Display) -> Reply {
    Reply::Error { msg: msg.to_string() }
}

fn handle(mut conn: std::os::unix::net::UnixStream, ctl: &Controller) -> Result<()> {
    use abi::control::Kind;
    let Some((req, fds)) = wire::recv::<Request>(&mut conn)? else { return Ok(()) };
    let reply = match req {
        Request::Start => match ctl.request(Kind::Start, [0; 8], &[]) {
            Ok((0, _)) => Reply::Ok,
            Ok((_, msg)) => err(String::from_utf8_lossy(&msg)),
            Err(e) => err(e),
        },
        Request::Signal { signal, all, pid } => {
            match ctl.request(Kind::Signal, [signal as u64, u64::from(pid), u64::from(all), 0, 0, 0, 0, 0], &[]) {
                Ok((0, _)) => Reply::Ok,
                Ok((r, _)) => err(format!("signal {signal}: {}", std::io::Error::from_raw_os_error(-r as i32))),
                Err(e) => err(e),
            }
        }
        Request::ConsoleSignal { signal, pid } => {
            match ctl.request(Kind::Signal, [signal as u64, u64::from(pid), 2, 0, 0, 0, 0, 0], &[]) {
                Ok(_) => Reply::Ok,
                Err(e) => err(e),
            }
        }
        Request::SetLimits { pids, settings } => match ctl.request(Kind::SetLimits, [pids.unwrap_or(0), u64::from(pids.is_some()), 0, 0, 0, 0, 0, 0], settings.join("\n").as_bytes()) {
            Ok(_) => Reply::Ok,
            Err(e) => err(e),
        },
        Request::Pause => {
            ctl.set_paused(true);
            Reply::Ok
        }
        Request::Resume => {
            ctl.set_paused(false);
            Reply::Ok
        }
        Request::Ps => match ctl.request(Kind::Ps, [0; 8], &[]) {
            Ok((_, data)) => Reply::Ps { procs: parse_ps(&String::from_utf8_lossy(&data)) },
            Err(e) => err(e),
        },
        Request::Exec { args, env, cwd, uid, gid, groups, settings } => {
            return exec(conn, ctl, fds, args, env, cwd, (uid, gid, groups), &settings);
        }
    };
    wire::send(&conn, &reply, &[])
}

#[allow(clippy::too_many_arguments)]
fn exec(
    conn: std::os::unix::net::UnixStream,
    ctl: &Controller,
    fds: Vec<OwnedFd>,
    args: Vec<String>,
    env: Vec<String>,
    cwd: String,
    (uid, gid, groups): (u32, u32, Vec<u32>),
    settings: &[String],
) -> Result<()> {
    use abi::control::Kind;
    if fds.len() != 3 || args.is_empty() {
        return wire::send(&conn, &err("exec needs a command and three stdio descriptors"), &[]);
    }
    let mut handles = [0u64; 3];
    for (h, fd) in handles.iter_mut().zip(fds) {
        *h = ctl.add_handle(fd).map_err(|e| anyhow!("{e}"))?;
    }
    let mut data = Vec::new();
    for s in std::iter::once(&cwd).chain(&args).chain(&env) {
        if s.contains('\0') {
            return wire::send(&conn, &err("NUL byte in exec arguments"), &[]);
        }
        data.extend_from_slice(s.as_bytes());
        data.push(0);
    }
    for g in &groups {
        data.extend_from_slice(&g.to_le_bytes());
    }
    // The settings follow the groups, NUL-terminated, to the end.
    for s in settings {
        if s.contains('\0') {
            return wire::send(&conn, &err("NUL byte in exec settings"), &[]);
        }
        data.extend_from_slice(s.as_bytes());
        data.push(0);
    }
    let a = [args.len() as u64, env.len() as u64, u64::from(uid), u64::from(gid), handles[0], handles[1], handles[2], groups.len() as u64];
    let pid = match ctl.request(Kind::Exec, a, &data) {
        Ok((pid, _)) if pid > 0 => pid as u32,
        Ok((_, msg)) => return wire::send(&conn, &err(String::from_utf8_lossy(&msg)), &[]),
        Err(e) => return wire::send(&conn, &err(e), &[]),
    };
    wire::send(&conn, &Reply::Started { pid }, &[])?;
    let status = match ctl.wait_exit(pid) {
        Ok(s) => s,
        // The sandbox ended first: the process died with it.
        Err(_) => 9,
    };
    wire::send(&conn, &Reply::Exited { status }, &[])
}

fn parse_ps(text: &str) -> Vec<ProcInfo> {
    text.lines()
        .filter_map(|l| {
            let (head, args) = l.split_once('\t')?;
            let f: Vec<&str> = head.splitn(5, ' ').collect();
            Some(ProcInfo {
                pid: f.first()?.parse().ok()?,
                ppid: f.get(1)?.parse().ok()?,
                uid: f.get(2)?.parse().ok()?,
                state: f.get(3)?.to_string(),
                comm: f.get(4).unwrap_or(&"").to_string(),
                args: args.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536k"), Some(64 << 20));
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn ps_lines() {
        let p = parse_ps("1 0 0 S sh\tsh -c sleep 5\n7 1 1000 Z sleep\t\ngarbage\n");
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].pid, 7);
        assert_eq!(p[1].uid, 1000);
        assert_eq!(p[0].args, "sh -c sleep 5");
    }

    /// Bind mounts are revalidated (the host may change them), the root
    /// keeps the sentry's caches.
    #[test]
    fn bind_mounts_revalidate_and_the_root_does_not() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs", "readonly": true},
            "mounts": [
                {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "rw"]},
                {"destination": "/conf", "type": "none", "source": "/srv/conf", "options": ["bind", "ro"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}
            ]
        }))
        .unwrap();
        let m = sentry_mounts(&spec, &super::super::cgroup::Cgroups::default());
        let opts = |dest: &str| m.iter().find(|x| x.dest == dest).map(|x| (x.kind.as_str(), x.options.as_str()));
        assert_eq!(opts("/"), Some(("host", "ro")));
        assert_eq!(opts("/data"), Some(("host", "revalidate")));
        assert_eq!(opts("/conf"), Some(("host", "ro,revalidate")));
        assert_eq!(opts("/tmp"), Some(("tmpfs", "size=1048576")));
    }

    #[test]
    fn secure_join_stays_inside() {
        let d = std::env::temp_dir().join(format!("rvisor-sj-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("etc")).unwrap();
        std::os::unix::fs::symlink("/../../../../etc", d.join("up")).unwrap();
        std::os::unix::fs::symlink("../../..", d.join("etc/rel")).unwrap();
        assert_eq!(secure_join(&d, Path::new("/up/passwd")).unwrap(), d.join("etc/passwd"));
        assert_eq!(secure_join(&d, Path::new("/etc/rel/x")).unwrap(), d.join("x"));
        assert_eq!(secure_join(&d, Path::new("/../../a")).unwrap(), d.join("a"));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
