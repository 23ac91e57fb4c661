#!/usr/bin/env bash
# OCI lifecycle benchmark: rvisor vs runc vs crun. Usage (as root): bench/oci.sh [path/to/rvisor]
#
# 1. Lifecycle latency: create + start + wait-until-stopped + delete of busybox `true`, $iters
#    timed runs per runtime after one untimed warm-up. Method: `state` polling. After `start`
#    we call `<runtime> state ID` back to back (no sleep) until it reports "stopped", so each
#    time includes the cost of the runtime's own `state` command, as an orchestrator would see
#    it. Runs are interleaved and the order rotates every round, so the noise of this shared
#    machine hits all three runtimes alike.
# 2. Idle memory: a `sleep 30` container under rvisor and runc; after 1 s, VmRSS (and Pss from
#    smaps_rollup) of the pid in --pid-file: rvisor's VMM process, runc's container init.
# Like run.sh it only prints numbers; nothing is asserted. It exits 1 only if a runtime fails.
set -uo pipefail
export LC_ALL=C # EPOCHREALTIME must use a '.' decimal point

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
declare -A bin=([rvisor]=${1:-$(dirname "$here")/target/release/rvisor}
	[runc]=${RUNC:-/usr/sbin/runc} [crun]=${CRUN:-/usr/bin/crun})
names=(rvisor runc crun)
busybox=/bin/busybox
iters=20
poll_limit_us=20000000 # a container not stopped after 20 s counts as a failure

[[ $(id -u) == 0 ]] || { echo "error: run as root (runc and crun need it)" >&2; exit 1; }
for n in "${names[@]}"; do
	[[ -x ${bin[$n]} ]] || { echo "error: $n not found at ${bin[$n]}" >&2; exit 1; }
done
[[ -x $busybox ]] || { echo "error: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }
command -v jq >/dev/null || { echo "error: jq missing" >&2; exit 1; }

tmp=$(mktemp -d /tmp/rvisor-oci-bench.XXXXXX)
log=$tmp/runtime.log # runtimes' stdout/stderr: a file, as the sandbox inherits these fds
id=ocib$$            # runc/crun name cgroups after the container id: keep ids unique per run

# rt NAME ARGS...: run a runtime with its own state dir.
rt() { local n=$1; shift; "${bin[$n]}" --root "$tmp/state-$n" "$@"; }

# Delete every container left in our state dirs (delete -f also kills it), then the temp dir.
cleanup() {
	local n c
	for n in "${names[@]}"; do
		for c in "$tmp/state-$n"/*/; do
			[[ -d $c ]] && rt "$n" delete -f "$(basename "$c")" >>"$log" 2>&1 </dev/null
		done
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

fail() {
	echo "FAILED: $*" >&2
	echo "--- last lines of runtime output ---" >&2
	tail -n 20 "$log" >&2
	exit 1
}

# Bundle: rootfs = static busybox + applet symlinks; config from `runc spec`, without a network
# namespace (no host networking setup needed). All runtimes get the very same config.json.
mkdir -p "$tmp/rootfs/bin" "$tmp/true" "$tmp/sleep" "${names[@]/#/$tmp/state-}"
cp "$busybox" "$tmp/rootfs/bin/busybox"
for a in $("$busybox" --list); do
	[[ $a == busybox ]] || ln -s busybox "$tmp/rootfs/bin/$a"
done
(cd "$tmp" && "${bin[runc]}" spec) || fail "runc spec"
for b in true sleep; do
	args='["true"]'; [[ $b == sleep ]] && args='["sleep","30"]'
	jq --arg root "$tmp/rootfs" --argjson args "$args" '.process.terminal = false
		| .process.args = $args | .root = {path: $root, readonly: false}
		| .linux.namespaces |= map(select(.type != "network"))' \
		"$tmp/config.json" >"$tmp/$b/config.json" || fail "jq"
done

# wait_stopped NAME ID: poll `state` until the container has stopped.
wait_stopped() {
	local t0=${EPOCHREALTIME/./} s
	until s=$(rt "$1" state "$2" 2>>"$log") && [[ $s =~ \"status\":\ *\"stopped\" ]]; do
		((${EPOCHREALTIME/./} - t0 < poll_limit_us)) || fail "$1: $2 did not stop (state: ${s:-none})"
	done
}

# lifecycle NAME ID: one create/start/wait/delete; sets $us to the wall time in microseconds.
lifecycle() {
	local t0=${EPOCHREALTIME/./}
	rt "$1" create --bundle "$tmp/true" "$2" >>"$log" 2>&1 </dev/null || fail "$1 create $2"
	rt "$1" start "$2" >>"$log" 2>&1 </dev/null || fail "$1 start $2"
	wait_stopped "$1" "$2"
	rt "$1" delete "$2" >>"$log" 2>&1 </dev/null || fail "$1 delete $2"
	us=$((${EPOCHREALTIME/./} - t0))
}

declare -A samples
for n in "${names[@]}"; do lifecycle "$n" "$id-warmup"; done # page cache, sanity check
for ((i = 0; i < iters; i++)); do
	for ((k = 0; k < ${#names[@]}; k++)); do
		n=${names[(i + k) % ${#names[@]}]}
		lifecycle "$n" "$id-$i"
		samples[$n]+="$us "
	done
done

# stats: "median p90" in ms of the microsecond values in $1 (p90 = nearest rank).
stats() {
	tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END {
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		r = int(0.9 * NR); if (r < 0.9 * NR) r++
		printf "%.1f %.1f\n", m / 1000, v[r] / 1000 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }

echo "rvisor: ${bin[rvisor]}"
echo "lifecycle of busybox true: create+start+state-poll-until-stopped+delete, $iters runs each"
printf "%-8s %12s %12s\n" runtime "median ms" "p90 ms"
declare -A med p90
for n in "${names[@]}"; do
	read -r med[$n] p90[$n] < <(stats "${samples[$n]}")
	printf "%-8s %12s %12s\n" "$n" "${med[$n]}" "${p90[$n]}"
done
echo "rvisor/runc: median $(ratio "${med[rvisor]}" "${med[runc]}"), p90 $(ratio "${p90[rvisor]}" "${p90[runc]}")"
echo "rvisor/crun: median $(ratio "${med[rvisor]}" "${med[crun]}"), p90 $(ratio "${p90[rvisor]}" "${p90[crun]}")"

# Idle memory of a started `sleep 30` container.
mem=(rvisor runc)
for n in "${mem[@]}"; do
	rt "$n" create --bundle "$tmp/sleep" --pid-file "$tmp/pid-$n" "$id-mem" >>"$log" 2>&1 </dev/null ||
		fail "$n create $id-mem"
	rt "$n" start "$id-mem" >>"$log" 2>&1 </dev/null || fail "$n start $id-mem"
done
sleep 1
echo
echo "idle sandbox memory (busybox sleep 30, 1 s after start):"
printf "%-8s %8s %12s %12s  %s\n" runtime pid "VmRSS KiB" "Pss KiB" process
for n in "${mem[@]}"; do
	pid=$(<"$tmp/pid-$n")
	[[ -r /proc/$pid/status ]] || fail "$n: pid $pid from --pid-file is gone"
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
	pss=-
	[[ -r /proc/$pid/smaps_rollup ]] && pss=$(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup")
	what="container init ($(<"/proc/$pid/comm"))"
	[[ $n == rvisor ]] && what="VMM process (includes guest memory touched so far)"
	printf "%-8s %8s %12s %12s  %s\n" "$n" "$pid" "$rss" "$pss" "$what"
done
echo "note: rvisor's VMM RSS counts the guest memory the sandbox has touched plus the"
echo "      application kernel; runc's counts only the container process (runc has exited)."
for n in "${mem[@]}"; do
	rt "$n" kill "$id-mem" KILL >>"$log" 2>&1 </dev/null || fail "$n kill $id-mem"
	wait_stopped "$n" "$id-mem"
	rt "$n" delete "$id-mem" >>"$log" 2>&1 </dev/null || fail "$n delete $id-mem"
done
