#!/usr/bin/env bash
# Builds the Debian bookworm root file system that runsc-cli/tests/debian_root.rs
# and bench/fs.sh run under `rvisor do --root`: mmdebstrap's minbase (coreutils,
# tar, findutils, dash, bash) plus python3. Built once and cached: a stamp file
# marks a finished build, so later runs return at once (FORCE=1 rebuilds). The
# build goes to a temporary directory next to the root and is renamed into
# place, so an interrupted build never leaves a half-made root behind.
#
#   DEBIAN_ROOT  where the root goes (default /var/tmp/rvisor-debian-bookworm)
#   MIRROR       the Debian mirror (default http://deb.debian.org/debian)
set -euo pipefail

root=${DEBIAN_ROOT:-/var/tmp/rvisor-debian-bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}
# The stamp lives inside the root so the rename publishes both at once; it is
# under /etc so the tests' listings of /usr do not see it.
stamp=$root/etc/rvisor-root-stamp

if [[ -z ${FORCE:-} && -f $stamp ]]; then
	echo "debian-root: $root is built ($(cat "$stamp"))"
	exit 0
fi
if [[ $(id -u) != 0 ]]; then
	echo "debian-root: building $root needs root (mmdebstrap makes device nodes and chowns files)" >&2
	exit 1
fi
command -v mmdebstrap >/dev/null || { echo "debian-root: mmdebstrap is missing (apt-get install mmdebstrap)" >&2; exit 1; }

parent=$(dirname "$root")
mkdir -p "$parent"
tmp=$(mktemp -d "$parent/.rvisor-debian-bookworm.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "debian-root: mmdebstrap bookworm (minbase + python3) into $root (a few minutes)"
# The temporary directory exists and is empty; mmdebstrap fills it in place.
mmdebstrap --variant=minbase --include=python3 \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--aptopt='Acquire::Languages "none"' \
	--customize-hook='chroot "$1" apt-get clean' \
	--customize-hook='rm -rf "$1"/var/lib/apt/lists/*' \
	bookworm "$tmp/root" "$mirror"
echo "mmdebstrap minbase+python3 bookworm $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$tmp/root/etc/rvisor-root-stamp"
# mktemp made the directory 0700; the root's own mode is what mmdebstrap set.
if [[ -e $root ]]; then
	# FORCE=1, or a root without a stamp (an older, unfinished layout): swap it out.
	mv "$root" "$tmp/old"
fi
mv "$tmp/root" "$root"
echo "debian-root: built $root"
