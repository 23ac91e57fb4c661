#!/usr/bin/env bash
# Micro-benchmarks: native vs `rvisor do`. Usage: bench/run.sh [path/to/rvisor]
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
rvisor=${1:-$root/target/release/rvisor}
busybox=/bin/busybox
runs=20 # runs of `busybox true` (median wall time)
reps=3  # runs of each in-program benchmark (median of what it prints)

if [[ ! -x $rvisor ]]; then
	echo "error: no rvisor binary at $rvisor (run \`cargo build --release\` or pass its path)" >&2
	exit 1
fi
[[ -x $busybox ]] || { echo "error: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for src in "$here"/*.c; do
	gcc -O2 -static -o "$tmp/$(basename "${src%.c}")" "$src" || exit 1
done

# median: of the numbers on stdin, or "error" if any line is not a number.
median() {
	sort -g | awk '
		!/^[0-9.eE+-]+$/ { bad = 1 }
		{ v[NR] = $1 }
		END {
			if (bad || NR == 0) print "error"
			else {
				m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
				printf (m >= 100 ? "%.0f\n" : "%.3f\n"), m
			}
		}'
}

# prog_median PROG [sandboxed]: median of the number the program prints over $reps runs.
prog_median() {
	local prog=$tmp/$1 i
	for ((i = 0; i < reps; i++)); do
		if [[ ${2:-} == sandboxed ]]; then
			"$rvisor" do -- "$prog" 2>/dev/null || echo error
		else
			"$prog" || echo error
		fi
	done | median
}

# wall_ms CMD...: median wall-clock time of $runs runs, in milliseconds.
wall_ms() {
	local i t0 t1
	for ((i = 0; i < runs; i++)); do
		t0=$(date +%s%N)
		if "$@" >/dev/null 2>&1; then
			t1=$(date +%s%N)
			awk -v d=$((t1 - t0)) 'BEGIN { printf "%.3f\n", d / 1e6 }'
		else
			echo error
		fi
	done | median
}

# slowdown NATIVE SANDBOXED HIGHER_IS_BETTER: how many times slower rvisor is.
slowdown() {
	awk -v n="$1" -v s="$2" -v hib="$3" 'BEGIN {
		if (n !~ /^[0-9.eE+-]+$/ || s !~ /^[0-9.eE+-]+$/ || n + 0 == 0 || s + 0 == 0) { print "-"; exit }
		printf "%.1fx\n", hib ? n / s : s / n
	}'
}

row() { printf "%-32s %14s %14s %10s\n" "$@"; }

echo "rvisor: $rvisor"
row "benchmark" "native" "rvisor" "slowdown"
n=$(prog_median getpid); s=$(prog_median getpid sandboxed)
row "getpid syscall (ns/call)" "$n" "$s" "$(slowdown "$n" "$s" 0)"
n=$(prog_median clock_gettime); s=$(prog_median clock_gettime sandboxed)
row "clock_gettime, vDSO (ns/call)" "$n" "$s" "$(slowdown "$n" "$s" 0)"
n=$(prog_median pagetouch); s=$(prog_median pagetouch sandboxed)
row "page touch 256 MiB (pages/s)" "$n" "$s" "$(slowdown "$n" "$s" 1)"
n=$(wall_ms "$busybox" true); s=$(wall_ms "$rvisor" do -- "$busybox" true)
row "busybox true (ms, median of $runs)" "$n" "$s" "$(slowdown "$n" "$s" 0)"
