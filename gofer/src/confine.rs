//! Confining the gofer process before it serves.
//!
//! Linux analogue: what runsc's gofer does before serving (its own mount
//! namespace, `pivot_root` into the container root, capability drop) and
//! runc's safe preparation of mount points inside an untrusted rootfs.
//!
//! After [`confine`], the calling thread's mount namespace holds only the
//! root and the bind mounts under it, so no path (and no `..`) can name a host
//! file outside them, whatever bugs the server might have. Mount namespaces,
//! the current directory and capabilities are per thread until the thread
//! creates others: call [`confine`] from the thread that will serve, before
//! it starts any other, ideally first thing in the gofer process.
//!
//! The server reopens files through `/proc/self/fd`, which is gone after the
//! pivot: open a [`crate::ProcSelfFd`] *before* calling [`confine`] and pass it
//! in [`crate::Config::proc_self_fd`].

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::error::GoferError;
use crate::sys;

/// A host directory or file to show inside the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// Host path. Trusted: it comes from the sandbox's configuration.
    pub source: PathBuf,
    /// Absolute path inside the root, such as `/data`. Missing components are
    /// made (directories, and an empty file for a file source); none of the
    /// existing ones may be a symlink, since the root's contents are untrusted.
    pub dest: PathBuf,
    /// Mount it read-only (enforced by the kernel: `MS_RDONLY`).
    pub readonly: bool,
    /// Bring the mounts below `source` along (`MS_REC`): a sandbox over
    /// the host's whole `/` sees what the host sees under it. The
    /// read-only flag then covers only the top mount; the server's own
    /// `readonly` and the VMM's checks cover the rest.
    pub recursive: bool,
}

/// Linux capability numbers (linux/capability.h) used here.
pub mod cap {
    #![allow(missing_docs)]
    pub const CHOWN: u32 = 0;
    pub const DAC_OVERRIDE: u32 = 1;
    pub const DAC_READ_SEARCH: u32 = 2;
    pub const FOWNER: u32 = 3;
    pub const FSETID: u32 = 4;
    pub const SYS_CHROOT: u32 = 18;
    pub const SYS_ADMIN: u32 = 21;
    pub const MKNOD: u32 = 27;
}

/// The capabilities the confined gofer keeps, each with why. Everything
/// else leaves the effective, permitted, inheritable, ambient and bounding
/// sets. Notably dropped: `CAP_DAC_READ_SEARCH` (its `open_by_handle_at`
/// reaches any file of a mounted filesystem, the classic container escape),
/// `CAP_SYS_ADMIN` (mount/umount could undo the confinement),
/// `CAP_SYS_CHROOT` (the pivot is done before the drop and the gofer never
/// changes root again), `CAP_SETUID`/`CAP_SETGID`, `CAP_SETFCAP`.
pub const KEPT_CAPS: &[(u32, &str)] = &[
    (cap::CHOWN, "give new files the sandbox user's owner; SetAttr uid/gid"),
    (cap::DAC_OVERRIDE, "the sentry checks permissions itself; the gofer must reach every file of the root"),
    (cap::FOWNER, "chmod, utimes and xattrs on files the gofer's uid does not own"),
    (cap::FSETID, "keep set-id bits the sandbox sets on files of other owners"),
    (
        cap::MKNOD,
        "RENAME_WHITEOUT makes a 0:0 whiteout device; the server refuses device nodes and mounts are nodev",
    ),
];

/// The bit mask of [`KEPT_CAPS`].
pub fn kept_mask() -> u64 {
    KEPT_CAPS.iter().fold(0, |m, &(c, _)| m | (1u64 << c))
}

fn step(step: &'static str) -> impl FnOnce(io::Error) -> GoferError {
    move |source| GoferError::Confine { step, source }
}

fn cpath(p: &Path) -> Result<CString, GoferError> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| GoferError::Confine {
        step: "path with NUL",
        source: io::Error::from_raw_os_error(libc::EINVAL),
    })
}

/// `/proc/self/fd/N` of `fd`: a path that reaches exactly `fd`'s file
/// without resolving names, used as a mount target so that a symlink swapped
/// into the rootfs cannot redirect a mount.
fn proc_path(fd: BorrowedFd<'_>) -> CString {
    // A path made of ASCII digits and slashes has no NUL.
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

/// Confines the calling thread (see the module docs) and returns an `O_PATH`
/// fd of the new root.
///
/// Steps: `unshare(CLONE_NEWNS)`; make every mount private (`MS_REC |
/// MS_PRIVATE` on `/`) so nothing propagates either way; bind-mount `root`
/// on itself (not recursively: host mounts below it stay hidden) and remount
/// it `nosuid,nodev`; bind-mount each of `binds` (also `nosuid,nodev`, plus
/// `ro` when asked); `pivot_root` into the root and detach the old one;
/// `chdir("/")`; drop every capability but [`KEPT_CAPS`] and set
/// `no_new_privs`.
///
/// Needs `CAP_SYS_ADMIN` (to unshare and mount) and `CAP_SETPCAP` (to shrink
/// the bounding set); `/` must not be the initramfs rootfs, where
/// `pivot_root` fails.
pub fn confine(root: &Path, binds: &[Bind]) -> Result<OwnedFd, GoferError> {
    let root_c = cpath(root)?;
    private_namespace()?;
    // A bind of the root onto itself makes it a mount point, which
    // pivot_root needs, and gives it mount flags of its own.
    sys::mount(Some(&root_c), &root_c, None, libc::MS_BIND).map_err(step("bind-mount the root"))?;
    sys::mount(
        None,
        &root_c,
        None,
        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_NOSUID | libc::MS_NODEV,
    )
    .map_err(step("remount the root nosuid,nodev"))?;
    pivot(&root_c, binds)
}

/// Like [`confine`], with an empty in-memory root holding only `binds`:
/// for a sandbox whose root and volumes are separate host trees (`rvisor
/// do`), each bound at a directory of the gofer's own (`/root`, `/v0`…),
/// so nothing is made on the host to hold a mount point.
pub fn confine_tree(binds: &[Bind]) -> Result<OwnedFd, GoferError> {
    private_namespace()?;
    // The sources are held open first: the tmpfs below may hide them.
    let held = binds
        .iter()
        .map(|b| sys::open(&cpath(&b.source)?, libc::O_PATH | libc::O_CLOEXEC).map_err(step("open bind source")))
        .collect::<Result<Vec<_>, _>>()?;
    let by_fd: Vec<Bind> = binds
        .iter()
        .zip(&held)
        .map(|(b, fd)| Bind { source: PathBuf::from(std::ffi::OsStr::from_bytes(proc_path(fd.as_fd()).as_bytes())), ..b.clone() })
        .collect();
    // Any existing directory does as the mount point: the namespace is
    // private, so the host never sees this tmpfs.
    let at = c"/tmp";
    sys::mount(Some(c"rvisor-gofer"), at, Some(c"tmpfs"), libc::MS_NOSUID | libc::MS_NODEV)
        .map_err(step("mount the gofer's root tmpfs"))?;
    let root_fd = sys::open(at, libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC).map_err(step("open the root"))?;
    for (b, orig) in by_fd.iter().zip(binds) {
        bind(root_fd.as_fd(), b)?;
        // A recursive bind of a tree holding /tmp copies this tmpfs along:
        // detach the copy so the host's directory shows there again.
        if let Some(rel) = Path::new("/tmp").strip_prefix(&orig.source).ok().filter(|_| b.recursive) {
            let copy = Path::new("/tmp").join(b.dest.strip_prefix("/").unwrap_or(&b.dest)).join(rel);
            // Absent when the source does not contain it: nothing to undo.
            let _ = sys::umount2(&cpath(&copy)?, libc::MNT_DETACH);
        }
    }
    drop(held);
    pivot(at, &[])
}

/// Like [`confine`], for a root that already holds the sandbox's mounts
/// at their sandbox paths (an OCI container: the runtime built that tree in
/// the mount namespace the gofer inherits). The tree is bound recursively
/// onto itself, so the root is a mount of this namespace (in a user
/// namespace of its own the copied mounts are locked, and `pivot_root`
/// refuses a locked root) keeping every mount below it; its flags stay as
/// they are (a read-only root stays read-only; locked flags could not be
/// cleared) with `nosuid,nodev` added.
///
/// Call it after entering the user namespace, if any: the mount namespace
/// made here then belongs to it.
pub fn confine_in_place(root: &Path) -> Result<OwnedFd, GoferError> {
    let root_c = cpath(root)?;
    private_namespace()?;
    sys::mount(Some(&root_c), &root_c, None, libc::MS_BIND | libc::MS_REC).map_err(step("bind-mount the root"))?;
    let held = sys::open(&root_c, libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC).map_err(step("open the root"))?;
    let vfs = sys::fstatvfs(held.as_fd()).map_err(step("statvfs the root"))?;
    let mut flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_NOSUID | libc::MS_NODEV;
    for (st, ms) in [
        (libc::ST_RDONLY, libc::MS_RDONLY),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if vfs.f_flag & st != 0 {
            flags |= ms;
        }
    }
    sys::mount(None, &proc_path(held.as_fd()), None, flags).map_err(step("remount the root nosuid,nodev"))?;
    drop(held);
    pivot(&root_c, &[])
}

/// Leaves only the capabilities in `keep` (a bit mask) in every set of the
/// calling thread (threads it starts later inherit that) and sets
/// `no_new_privs`. For the VMM of an OCI container, once it no longer
/// needs to mount or open files.
pub fn limit_capabilities(keep: u64) -> Result<(), GoferError> {
    drop_caps_but(keep)?;
    sys::set_no_new_privs().map_err(step("set no_new_privs"))
}

/// A mount namespace of our own in which nothing propagates.
fn private_namespace() -> Result<(), GoferError> {
    sys::unshare(libc::CLONE_NEWNS).map_err(step("unshare(CLONE_NEWNS)"))?;
    sys::mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE).map_err(step("make mounts private"))
}

/// Binds `binds` below the mount point `root_c`, pivots into it and drops
/// capabilities.
fn pivot(root_c: &std::ffi::CStr, binds: &[Bind]) -> Result<OwnedFd, GoferError> {
    let root_fd = sys::open(root_c, libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .map_err(step("open the root"))?;
    for b in binds {
        bind(root_fd.as_fd(), b)?;
    }
    sys::fchdir(root_fd.as_fd()).map_err(step("chdir to the root"))?;
    // pivot_root(".", ".") stacks the old root on top of the new one; the
    // detach then leaves only the new root in this namespace.
    sys::pivot_root(c".", c".").map_err(step("pivot_root"))?;
    sys::umount2(c".", libc::MNT_DETACH).map_err(step("detach the old root"))?;
    sys::chdir(c"/").map_err(step("chdir /"))?;
    let new_root = sys::open(c"/", libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .map_err(step("open the new root"))?;
    drop_capabilities()?;
    sys::set_no_new_privs().map_err(step("set no_new_privs"))?;
    Ok(new_root)
}

/// The normal components of an absolute bind destination.
fn dest_components(dest: &Path) -> Result<Vec<CString>, GoferError> {
    let bad = || GoferError::BindDest(dest.to_path_buf());
    let mut comps = dest.components();
    if comps.next() != Some(Component::RootDir) {
        return Err(bad());
    }
    let names = comps
        .map(|c| match c {
            Component::Normal(n) => CString::new(n.as_bytes()).map_err(|_| bad()),
            _ => Err(bad()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if names.is_empty() {
        return Err(bad());
    }
    Ok(names)
}

/// Walks `comps` from `root` one component at a time without following
/// symlinks, making missing ones when `create` is set (directories, and the
/// last as a directory or empty file per `dir`).
fn walk_dest(
    root: BorrowedFd<'_>,
    comps: &[CString],
    dir: bool,
    create: bool,
    dest: &Path,
) -> Result<OwnedFd, GoferError> {
    const LOOKUP: libc::c_int = libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let mut cur = sys::openat(root, c".", LOOKUP, 0).map_err(step("open the root"))?;
    for (i, name) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let want_dir = !last || dir;
        let fd = match sys::openat(cur.as_fd(), name, LOOKUP, 0) {
            Err(e) if create && e.raw_os_error() == Some(libc::ENOENT) => {
                if want_dir {
                    sys::mkdirat(cur.as_fd(), name, 0o755)
                        .map_err(step("make bind mount point"))?;
                } else {
                    let flags = libc::O_WRONLY
                        | libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_NOFOLLOW
                        | libc::O_CLOEXEC;
                    drop(
                        sys::openat(cur.as_fd(), name, flags, 0o644)
                            .map_err(step("make bind mount point"))?,
                    );
                }
                sys::openat(cur.as_fd(), name, LOOKUP, 0)
            }
            r => r,
        }
        .map_err(step("look up bind destination"))?;
        let ftype = sys::fstat(fd.as_fd())
            .map_err(step("stat bind destination"))?
            .st_mode
            & libc::S_IFMT;
        let ok = if want_dir {
            ftype == libc::S_IFDIR
        } else {
            ftype == libc::S_IFREG
        };
        if !ok {
            // A symlink anywhere on the way is refused here too.
            return Err(GoferError::BindDestType(dest.to_path_buf()));
        }
        cur = fd;
    }
    Ok(cur)
}

fn bind(root: BorrowedFd<'_>, b: &Bind) -> Result<(), GoferError> {
    let comps = dest_components(&b.dest)?;
    let src = cpath(&b.source)?;
    let meta = std::fs::metadata(&b.source).map_err(step("stat bind source"))?;
    let target = walk_dest(root, &comps, meta.is_dir(), true, &b.dest)?;
    let rec = if b.recursive { libc::MS_REC } else { 0 };
    sys::mount(Some(&src), &proc_path(target.as_fd()), None, libc::MS_BIND | rec)
        .map_err(step("bind mount"))?;
    // The flags of a bind mount can only be set by a remount of the new
    // mount itself. Walking again crosses into it; check it is the source.
    let mounted = walk_dest(root, &comps, meta.is_dir(), false, &b.dest)?;
    let st = sys::fstat(mounted.as_fd()).map_err(step("stat bind mount"))?;
    if (st.st_dev, st.st_ino) != (meta.dev(), meta.ino()) {
        return Err(GoferError::Confine {
            step: "bind mount did not land",
            source: io::Error::from_raw_os_error(libc::EXDEV),
        });
    }
    let mut flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_NOSUID | libc::MS_NODEV;
    if b.readonly {
        flags |= libc::MS_RDONLY;
    }
    sys::mount(None, &proc_path(mounted.as_fd()), None, flags)
        .map_err(step("remount bind mount"))?;
    Ok(())
}

/// Leaves only [`KEPT_CAPS`] in every capability set of the calling thread.
fn drop_capabilities() -> Result<(), GoferError> {
    drop_caps_but(kept_mask())
}

fn drop_caps_but(keep: u64) -> Result<(), GoferError> {
    // The bounding set first: shrinking it needs CAP_SETPCAP, which capset
    // below removes.
    for c in 0..64u32 {
        if keep & (1u64 << c) != 0 {
            continue;
        }
        match sys::capbset_drop(c) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break, // past the kernel's last capability
            Err(e) => return Err(step("drop from the bounding set")(e)),
        }
    }
    match sys::clear_ambient_caps() {
        Err(e) if e.raw_os_error() != Some(libc::EINVAL) => {
            return Err(step("clear ambient capabilities")(e))
        }
        _ => {} // EINVAL: a kernel without ambient capabilities has none to clear
    }
    let (eff, perm, _) = sys::capget().map_err(step("capget"))?;
    sys::capset(eff & keep, perm & keep, 0).map_err(step("capset"))?;
    Ok(())
}

#[cfg(test)]
mod tests;
