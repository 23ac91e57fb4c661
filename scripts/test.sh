#!/usr/bin/env bash
# Runs every test: unit tests of all crates (the VMM's boot real guests on
# /dev/kvm), the syscall-tests ledger (programs run natively and under
# `rvisor do`, outputs compared) and the client suite (podman, containerd
# and Docker using rvisor as their runtime). Ends with one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --release --workspace 2>&1 | tee "$log" || status=$?
# The client suite: real podman, containerd and Docker (../shared/clients).
bash scripts/clients.sh 2>&1 | tee -a "$log" || status=$?
# Totals over libtest's "test result:" lines and the ledger's own line.
awk '
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
  /^[0-9]+ passed, [0-9]+ failed$/ { p += $1; f += $3 }
  END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
