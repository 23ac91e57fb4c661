//! The gofer: rvisor's file server, the only process that opens host files.
//!
//! Empty until the gofer/VFS issue: in the walking skeleton the VMM opens
//! host files read-only on the sentry's behalf (see `abi::hypercall::Nr::HostOpen`).
#![deny(unsafe_code)]
