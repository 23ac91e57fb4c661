#!/usr/bin/env bash
# Sets up a fresh machine for rvisor and builds it: installs what the build
# and the tests need (gcc, busybox-static, python3, mmdebstrap), checks
# /dev/kvm, builds the Debian root the tests use with `rvisor do --root`
# (once; cached under /var/tmp), builds release.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
# The tests need a *static* busybox (ldd fails on static binaries).
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
  need+=(busybox-static)
fi
# The workload tests (runsc-cli/tests/workloads.rs) run the host's python3.
[ -x /usr/bin/python3 ] || need+=(python3)
# The Debian root (runsc-cli/tests/debian_root.rs) is built with mmdebstrap.
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -c /dev/kvm ] || [ ! -r /dev/kvm ]; then
  echo "setup: /dev/kvm is missing or not readable; rvisor needs KVM (PVM or VMX/SVM)" >&2
  exit 1
fi
# The Debian root for runsc-cli/tests/debian_root.rs (built once, cached;
# mmdebstrap and the tests need root, as CI runs).
if [ "$(id -u)" = 0 ]; then
  bash scripts/debian-root.sh
else
  echo "setup: not root: the Debian root (scripts/debian-root.sh) is not built; its tests need root anyway"
fi
cargo build --release --workspace
