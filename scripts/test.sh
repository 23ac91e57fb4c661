#!/usr/bin/env bash
# Runs every test: unit tests of all crates (the VMM's boot real guests on
# /dev/kvm) and the syscall-tests ledger (programs run natively and under
# `rvisor do`, outputs compared).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace
cargo test --release --workspace
