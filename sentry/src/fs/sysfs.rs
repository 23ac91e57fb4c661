//! sysfs (Linux: fs/sysfs, drivers/base/cpu.c): the few files programs
//! read to size themselves, describing the sandbox rather than the host.
//! glibc's sysconf(_SC_NPROCESSORS_ONLN/CONF), nproc, Python's
//! os.cpu_count and libnuma read the CPU and node lists; the CPU list
//! comes from the sentry's vCPU count. /sys/class/net lists the network
//! namespace's interfaces when read (a container's may be set up after
//! the sandbox boots), with the attributes tools read, asked of the host
//! through the interface ioctls. /sys/fs/cgroup is only a mount point
//! (the cgroup mount goes there). Everything is read-only; the rest of
//! the tree is built once, at mount time.

use abi::linux::Stat;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use super::{DirFile, FileOps};
use crate::errno::Errno;
use crate::vfs::{DirEntry, Inode, Kind};

/// Device number of the sysfs mount.
const SYSFS_DEV: u64 = 0x17;
const SYSFS_MAGIC: u64 = 0x6265_6572;

enum Body {
    Dir(BTreeMap<String, Arc<SysNode>>),
    File(String),
    /// /sys/class/net: the network namespace's interfaces, listed when read.
    NetClass,
    /// /sys/class/net/IFACE (or its statistics/ directory when `stats`).
    NetIface { name: String, stats: bool },
    /// An attribute of an interface, read from the host when opened.
    NetAttr { name: String, attr: &'static str },
}

/// Attributes of /sys/class/net/IFACE.
const NET_ATTRS: &[&str] = &["address", "addr_len", "broadcast", "carrier", "flags", "ifindex", "iflink", "mtu", "operstate", "tx_queue_len", "type", "uevent"];
/// Its statistics/, in /proc/net/dev's column order.
const NET_STATS: &[&str] = &[
    "rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "rx_fifo_errors", "rx_frame_errors", "rx_compressed", "multicast",
    "tx_bytes", "tx_packets", "tx_errors", "tx_dropped", "tx_fifo_errors", "collisions", "tx_carrier_errors", "tx_compressed",
];

/// The interfaces of the sandbox's network namespace with their
/// /proc/net/dev counters.
fn interfaces() -> Vec<(String, Vec<u64>)> {
    let dev = super::proc::net_file("dev").unwrap_or_default();
    let text = String::from_utf8_lossy(&dev);
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let name = name.trim();
            if name.is_empty() || name.len() >= 16 || name.contains('/') {
                return None;
            }
            Some((String::from(name), rest.split_whitespace().filter_map(|v| v.parse().ok()).collect()))
        })
        .collect()
}

/// A stable inode number for a generated node (FNV-1a of its path).
fn ino_of(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(core::iter::once(b'/')) {
            h = (h ^ u64::from(b)).wrapping_mul(0x1000_0000_01b3);
        }
    }
    (h >> 1) | 1 << 62
}

fn mac(b: &[u8]) -> String {
    let mut s = String::new();
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// An attribute's content, as Linux's net-sysfs prints it.
fn net_attr(name: &str, attr: &str) -> Result<String, Errno> {
    use crate::net::host::iface_query;
    let i32_at = |b: &[u8; 40]| i32::from_le_bytes([b[16], b[17], b[18], b[19]]);
    let flags = || iface_query(0x8913, name).map(|b| u16::from_le_bytes([b[16], b[17]]));
    let hw = || iface_query(0x8927, name).map(|b| (u16::from_le_bytes([b[16], b[17]]), [b[18], b[19], b[20], b[21], b[22], b[23]]));
    const IFF_UP: u16 = 1;
    const IFF_LOOPBACK: u16 = 8;
    const IFF_RUNNING: u16 = 0x40;
    Ok(match attr {
        "address" => format!("{}\n", mac(&hw()?.1)),
        "addr_len" => "6\n".into(),
        "broadcast" => {
            let loopback = hw()?.0 == 772;
            format!("{}\n", if loopback { "00:00:00:00:00:00" } else { "ff:ff:ff:ff:ff:ff" })
        }
        "carrier" => {
            let f = flags()?;
            if f & IFF_UP == 0 {
                return Err(Errno::EINVAL);
            }
            format!("{}\n", u8::from(f & IFF_RUNNING != 0))
        }
        // The device flags, without the link state SIOCGIFFLAGS adds.
        "flags" => format!("{:#x}\n", flags()? & !IFF_RUNNING),
        "ifindex" | "iflink" => format!("{}\n", i32_at(&iface_query(0x8933, name)?)),
        "mtu" => format!("{}\n", i32_at(&iface_query(0x8921, name)?)),
        "tx_queue_len" => format!("{}\n", i32_at(&iface_query(0x8942, name)?)),
        "type" => format!("{}\n", hw()?.0),
        "operstate" => {
            let f = flags()?;
            // Loopback has no carrier detection: Linux says "unknown".
            let s = if f & IFF_LOOPBACK != 0 && f & IFF_UP != 0 {
                "unknown"
            } else if f & IFF_UP != 0 && f & IFF_RUNNING != 0 {
                "up"
            } else {
                "down"
            };
            format!("{s}\n")
        }
        "uevent" => format!("INTERFACE={name}
IFINDEX={}
", i32_at(&iface_query(0x8933, name)?)),
        stat => {
            let col = NET_STATS.iter().position(|s| *s == stat).ok_or(Errno::ENOENT)?;
            let v = interfaces().into_iter().find(|(n, _)| n == name).ok_or(Errno::ENODEV)?.1;
            format!("{}\n", v.get(col).copied().unwrap_or(0))
        }
    })
}

/// One sysfs node.
pub struct SysNode {
    ino: u64,
    body: Body,
}

static NEXT_INO: AtomicU64 = AtomicU64::new(1);

fn dir(children: Vec<(&str, Arc<SysNode>)>) -> Arc<SysNode> {
    let map = children.into_iter().map(|(n, c)| (String::from(n), c)).collect();
    Arc::new(SysNode { ino: NEXT_INO.fetch_add(1, Ordering::Relaxed), body: Body::Dir(map) })
}

fn file(content: String) -> Arc<SysNode> {
    Arc::new(SysNode { ino: NEXT_INO.fetch_add(1, Ordering::Relaxed), body: Body::File(content) })
}

/// A CPU list as the kernel prints it ("0", "0-3").
fn cpu_list(n: u32) -> String {
    if n <= 1 {
        "0\n".into()
    } else {
        format!("0-{}\n", n - 1)
    }
}

/// The root of a sysfs for a sandbox with `cpus` vCPUs.
pub fn root(cpus: u32) -> Arc<dyn Inode> {
    let cpus = cpus.max(1);
    let list = cpu_list(cpus);
    let mut cpu: Vec<(String, Arc<SysNode>)> = Vec::new();
    for i in 0..cpus {
        // One package, one thread per core.
        let topology = dir(alloc::vec![
            ("core_id", file(format!("{i}\n"))),
            ("physical_package_id", file("0\n".into())),
            ("die_id", file("0\n".into())),
            ("core_siblings_list", file(list.clone())),
            ("thread_siblings_list", file(format!("{i}\n"))),
        ]);
        let mut entries = alloc::vec![("topology", topology)];
        // As on x86, the boot CPU cannot be taken offline: no `online`.
        if i != 0 {
            entries.push(("online", file("1\n".into())));
        }
        cpu.push((format!("cpu{i}"), dir(entries)));
    }
    let mut cpu_dir: Vec<(&str, Arc<SysNode>)> = cpu.iter().map(|(n, c)| (n.as_str(), c.clone())).collect();
    cpu_dir.extend([
        ("online", file(list.clone())),
        ("possible", file(list.clone())),
        ("present", file(list.clone())),
        ("offline", file("\n".into())),
        ("kernel_max", file("8191\n".into())),
    ]);
    let node = dir(alloc::vec![
        ("online", file("0\n".into())),
        ("possible", file("0\n".into())),
        ("has_cpu", file("0\n".into())),
        ("node0", dir(alloc::vec![("cpulist", file(list.clone()))])),
    ]);
    let system = dir(alloc::vec![("cpu", dir(cpu_dir)), ("node", node)]);
    // The sentry backs memory with small pages only.
    let thp = dir(alloc::vec![
        ("enabled", file("always madvise [never]\n".into())),
        ("defrag", file("always defer defer+madvise madvise [never]\n".into())),
    ]);
    let kernel = dir(alloc::vec![("mm", dir(alloc::vec![("transparent_hugepage", thp)]))]);
    dir(alloc::vec![
        ("devices", dir(alloc::vec![("system", system)])),
        ("kernel", kernel),
        ("fs", dir(alloc::vec![("cgroup", dir(Vec::new()))])),
        ("class", dir(alloc::vec![("net", Arc::new(SysNode { ino: NEXT_INO.fetch_add(1, Ordering::Relaxed), body: Body::NetClass }))])),
        ("bus", dir(Vec::new())),
        ("block", dir(Vec::new())),
        ("dev", dir(Vec::new())),
        ("module", dir(Vec::new())),
    ])
}

impl SysNode {
    fn kind_of(&self) -> Kind {
        match self.body {
            Body::Dir(_) | Body::NetClass | Body::NetIface { .. } => Kind::Dir,
            Body::File(_) | Body::NetAttr { .. } => Kind::File,
        }
    }

    fn generated(parts: &[&str], body: Body) -> Arc<SysNode> {
        Arc::new(SysNode { ino: ino_of(parts), body })
    }

    /// Children of a generated directory.
    fn generated_children(&self) -> Vec<(String, Arc<SysNode>)> {
        match &self.body {
            Body::NetClass => interfaces()
                .into_iter()
                .map(|(n, _)| {
                    let node = Self::generated(&["net", &n], Body::NetIface { name: n.clone(), stats: false });
                    (n, node)
                })
                .collect(),
            Body::NetIface { name, stats: false } => {
                let mut v: Vec<(String, Arc<SysNode>)> = NET_ATTRS
                    .iter()
                    .map(|a| ((*a).into(), Self::generated(&["net", name, a], Body::NetAttr { name: name.clone(), attr: a })))
                    .collect();
                v.push(("statistics".into(), Self::generated(&["net", name, "statistics"], Body::NetIface { name: name.clone(), stats: true })));
                v
            }
            Body::NetIface { name, stats: true } => NET_STATS
                .iter()
                .map(|a| ((*a).into(), Self::generated(&["net", name, "statistics", a], Body::NetAttr { name: name.clone(), attr: a })))
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl Inode for SysNode {
    fn stat(&self) -> Result<Stat, Errno> {
        let (mode, nlink, size) = match &self.body {
            Body::Dir(c) => (crate::vfs::S_IFDIR | 0o755, 2 + c.values().filter(|n| n.kind_of() == Kind::Dir).count() as u64, 0),
            // sysfs attributes report a page whatever they hold.
            Body::File(_) | Body::NetAttr { .. } => (crate::vfs::S_IFREG | 0o444, 1, 4096),
            _ => (crate::vfs::S_IFDIR | 0o755, 2, 0),
        };
        Ok(Stat { st_dev: SYSFS_DEV, st_ino: self.ino, st_mode: mode, st_nlink: nlink, st_size: size, st_blksize: 4096, ..Stat::default() })
    }

    fn kind(&self) -> Kind {
        self.kind_of()
    }

    fn lookup(&self, name: &str) -> Result<Arc<dyn Inode>, Errno> {
        match &self.body {
            Body::Dir(c) => c.get(name).map(|n| n.clone() as Arc<dyn Inode>).ok_or(Errno::ENOENT),
            Body::File(_) | Body::NetAttr { .. } => Err(Errno::ENOTDIR),
            _ => self.generated_children().into_iter().find(|(n, _)| n == name).map(|(_, c)| c as Arc<dyn Inode>).ok_or(Errno::ENOENT),
        }
    }

    fn open(&self, flags: u32) -> Result<Box<dyn FileOps>, Errno> {
        match &self.body {
            Body::Dir(_) => Ok(Box::new(DirFile::new(self.readdir()?, self.stat()?, "/sys"))),
            _ if flags & 3 != 0 => Err(Errno::EACCES),
            Body::File(s) => Ok(super::proc::content_file(s.clone().into_bytes(), self.stat()?)),
            Body::NetAttr { name, attr } => Ok(super::proc::content_file(net_attr(name, attr)?.into_bytes(), self.stat()?)),
            _ => Ok(Box::new(DirFile::new(self.readdir()?, self.stat()?, "/sys"))),
        }
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        match &self.body {
            Body::Dir(c) => Ok(c.iter().map(|(n, c)| DirEntry { name: n.clone(), ino: c.ino, kind: c.kind_of() }).collect()),
            Body::File(_) | Body::NetAttr { .. } => Err(Errno::ENOTDIR),
            _ => Ok(self.generated_children().into_iter().map(|(n, c)| DirEntry { name: n, ino: c.ino, kind: c.kind_of() }).collect()),
        }
    }

    fn statfs(&self) -> Option<[u8; 120]> {
        // nosuid, nodev, noexec, relatime: how Linux mounts it.
        Some(super::pseudo_statfs(SYSFS_MAGIC, 2 | 4 | 8 | 4096))
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(root: &Arc<dyn Inode>, path: &str) -> String {
        let mut n = root.clone();
        for c in path.split('/') {
            n = n.lookup(c).unwrap();
        }
        let f = n.open(0).unwrap();
        let mut buf = [0u8; 64];
        let len = f.read_kernel(&mut buf, 0).unwrap();
        String::from_utf8(buf[..len].to_vec()).unwrap()
    }

    #[test]
    fn cpu_lists() {
        let r = root(4);
        assert_eq!(read(&r, "devices/system/cpu/online"), "0-3\n");
        assert_eq!(read(&r, "devices/system/cpu/possible"), "0-3\n");
        assert!(r.lookup("devices").unwrap().lookup("system").unwrap().lookup("cpu").unwrap().lookup("cpu3").is_ok());
        assert!(r.lookup("devices").unwrap().lookup("system").unwrap().lookup("cpu").unwrap().lookup("cpu4").is_err());
        let one = root(1);
        assert_eq!(read(&one, "devices/system/cpu/present"), "0\n");
        assert_eq!(r.lookup("fs").unwrap().lookup("cgroup").unwrap().kind(), Kind::Dir);
        let f = r.lookup("kernel").unwrap().lookup("mm").unwrap().lookup("transparent_hugepage").unwrap().lookup("enabled").unwrap();
        assert_eq!(f.open(1).err(), Some(Errno::EACCES));
    }
}
