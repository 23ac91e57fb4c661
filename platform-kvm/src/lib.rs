//! platform-kvm: rvisor's VMM. It owns the KVM VM of one sandbox — guest
//! memory, the sentry image, vCPU threads — and serves the sentry's
//! hypercalls. It is the only crate that talks to /dev/kvm, and it trusts
//! nothing the guest writes.

pub mod boot;
pub mod control;
pub mod files;
pub mod flavour;
pub mod hypercall;
pub mod image;
pub mod memory;
mod net;
pub mod sandbox;
pub mod seccomp;
pub mod stats;
pub mod vcpu;

pub use control::{ControlError, Controller};
pub use sandbox::{HostSeccomp, MountSpec, Sandbox, SandboxConfig};

/// Errors of the VMM.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open /dev/kvm")]
    OpenKvm(#[source] kvm_ioctls::Error),
    #[error("KVM ioctl {0} failed")]
    Kvm(&'static str, #[source] kvm_ioctls::Error),
    #[error("guest memory")]
    Memory(#[from] memory::MemoryError),
    #[error("loading the sentry image")]
    Image(#[from] image::ImageError),
    #[error("building the boot state")]
    Boot(#[from] boot::BootError),
    #[error("vCPU")]
    Vcpu(#[from] vcpu::VcpuError),
    #[error("starting a vCPU thread")]
    Thread(#[source] std::io::Error),
    #[error("sandbox setup: {0}")]
    Setup(&'static str),
    #[error("connecting to the gofer")]
    Gofer(#[from] files::GoferStartError),
    #[error("host seccomp")]
    Seccomp(#[from] gofer::seccomp::SeccompError),
}
