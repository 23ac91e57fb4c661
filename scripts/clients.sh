#!/usr/bin/env bash
# Runs the client suite (real podman, containerd and Docker driving
# target/release/rvisor; ../shared/clients, the contract) and prints its
# "N passed, M failed" line. Installs the clients first (idempotent).
# SKIP=REGEX skips scenarios by name.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
suite=""
for c in "${RVISOR_CLIENTS:-}" "$repo/../shared/clients" /work/shared/clients; do
    if [ -n "$c" ] && [ -x "$c/run-clients.sh" ]; then
        suite=$(cd "$c" && pwd)
        break
    fi
done
if [ -z "$suite" ]; then
    echo "client suite not found (set RVISOR_CLIENTS=DIR/clients); skipped" >&2
    exit 0
fi
bash "$suite/install-deps.sh" >/tmp/rvisor-install-deps.log 2>&1 || {
    tail -20 /tmp/rvisor-install-deps.log >&2
    exit 1
}
cd "$suite"
SKIP=${SKIP-} ./run-clients.sh "$repo/target/release/rvisor" all
