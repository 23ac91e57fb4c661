//! sysfs (Linux: fs/sysfs, drivers/base/cpu.c): the few files programs
//! read to size themselves, describing the sandbox rather than the host.
//! glibc's sysconf(_SC_NPROCESSORS_ONLN/CONF), nproc, Python's
//! os.cpu_count and libnuma read the CPU and node lists; the CPU list
//! comes from the sentry's vCPU count. /sys/fs/cgroup is only a mount
//! point (the cgroup mount goes there). Everything is read-only; the
//! tree is built once, at mount time.

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
        ("class", dir(Vec::new())),
        ("bus", dir(Vec::new())),
        ("block", dir(Vec::new())),
        ("dev", dir(Vec::new())),
        ("module", dir(Vec::new())),
    ])
}

impl SysNode {
    fn kind_of(&self) -> Kind {
        match self.body {
            Body::Dir(_) => Kind::Dir,
            Body::File(_) => Kind::File,
        }
    }
}

impl Inode for SysNode {
    fn stat(&self) -> Result<Stat, Errno> {
        let (mode, nlink, size) = match &self.body {
            Body::Dir(c) => (crate::vfs::S_IFDIR | 0o755, 2 + c.values().filter(|n| n.kind_of() == Kind::Dir).count() as u64, 0),
            // sysfs attributes report a page whatever they hold.
            Body::File(_) => (crate::vfs::S_IFREG | 0o444, 1, 4096),
        };
        Ok(Stat { st_dev: SYSFS_DEV, st_ino: self.ino, st_mode: mode, st_nlink: nlink, st_size: size, st_blksize: 4096, ..Stat::default() })
    }

    fn kind(&self) -> Kind {
        self.kind_of()
    }

    fn lookup(&self, name: &str) -> Result<Arc<dyn Inode>, Errno> {
        match &self.body {
            Body::Dir(c) => c.get(name).map(|n| n.clone() as Arc<dyn Inode>).ok_or(Errno::ENOENT),
            Body::File(_) => Err(Errno::ENOTDIR),
        }
    }

    fn open(&self, flags: u32) -> Result<Box<dyn FileOps>, Errno> {
        match &self.body {
            Body::Dir(_) => Ok(Box::new(DirFile::new(self.readdir()?, self.stat()?, "/sys"))),
            _ if flags & 3 != 0 => Err(Errno::EACCES),
            Body::File(s) => Ok(super::proc::content_file(s.clone().into_bytes(), self.stat()?)),
        }
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        match &self.body {
            Body::Dir(c) => Ok(c.iter().map(|(n, c)| DirEntry { name: n.clone(), ino: c.ino, kind: c.kind_of() }).collect()),
            Body::File(_) => Err(Errno::ENOTDIR),
        }
    }

    fn statfs(&self) -> Option<[u8; 120]> {
        let mut b = [0u8; 120];
        b[0..8].copy_from_slice(&SYSFS_MAGIC.to_le_bytes());
        b[8..16].copy_from_slice(&4096u64.to_le_bytes());
        b[72..80].copy_from_slice(&255u64.to_le_bytes());
        b[80..88].copy_from_slice(&4096u64.to_le_bytes());
        Some(b)
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
