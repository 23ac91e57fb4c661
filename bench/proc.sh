#!/usr/bin/env bash
# Process benchmark: native vs `rvisor do` vs runsc. Usage: bench/proc.sh [path/to/rvisor]
#
# Each program runs whole inside one sandbox and times itself, so sandbox start-up is not counted:
# - spawn.c: fork + execvp + waitpid of /bin/true (dynamic, glibc), SPAWN_COUNT times (default
#   200), microseconds per op;
# - pipe: `head -c PIPE_MIB MiB /dev/zero | cat >/dev/null` (default 1024 MiB) under spawn.c,
#   MB/s (10^6 bytes per second, start of sh, head and cat included);
# - futex_pp.c: two threads handing a turn back and forth with FUTEX_WAIT/FUTEX_WAKE,
#   FUTEX_COUNT round trips (default 50000), round trips per second;
# - unix_rr.c: 1-byte ping-pong over socketpair(AF_UNIX, SOCK_STREAM) with a forked child,
#   UNIX_RR_COUNT round trips (default 20000), microseconds per round trip.
# Median of REPS (default 3) runs each, natively, under `rvisor do` and, as root with jq, under
# runsc if installed (RUNSC=path overrides; its default platform; the bundle is the host's / with
# `--overlay2=root:memory`, runsc's equivalent of `rvisor do`; `--network=none`). The
# environments are interleaved so that the noise of the shared machine hits all alike.
#
# Targets (printed next to the ratios, not asserted): fork+exec+wait at most 5x native, pipe
# throughput at least 30% of native. Every run is bounded by LIMIT seconds (default 300); a run
# that fails prints "error", one that hits the limit "timeout". Nothing is asserted.
set -uo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
rvisor=${1:-$root/target/release/rvisor}
runsc_bin=${RUNSC:-$(command -v runsc || true)}
spawn_count=${SPAWN_COUNT:-200}
pipe_mib=${PIPE_MIB:-1024}
futex_count=${FUTEX_COUNT:-50000}
unix_rr_count=${UNIX_RR_COUNT:-20000}
reps=${REPS:-3}
limit=${LIMIT:-300} # seconds allowed for any single run

if [[ ! -x $rvisor ]]; then
	echo "error: no rvisor binary at $rvisor (run \`cargo build --release\` or pass its path)" >&2
	exit 1
fi
command -v gcc >/dev/null || { echo "error: gcc missing" >&2; exit 1; }
envs=(native rvisor)
if [[ -z $runsc_bin ]]; then
	echo "note: runsc not installed: skipped" >&2
elif [[ $(id -u) != 0 ]]; then
	echo "note: not root: runsc is skipped" >&2
elif ! command -v jq >/dev/null; then
	echo "note: jq missing: runsc is skipped" >&2
elif [[ $("$runsc_bin" flags 2>&1) != *-overlay2* ]]; then
	echo "note: $runsc_bin has no --overlay2 (needed to keep the host's / unwritten): skipped" >&2
else
	envs+=(runsc)
fi

tmp=$(mktemp -d /tmp/rvisor-proc-bench.XXXXXX)
log=$tmp/log # stderr of the programs, sandboxes and runtimes
failed_any=0
cleanup() {
	local c
	for c in "$tmp/state"/*/; do
		[[ -d $c ]] && timeout 20 "$runsc_bin" --root "$tmp/state" delete -f "$(basename "$c")" >>"$log" 2>&1 </dev/null
	done
	if grep -qs . "$log" && [[ $failed_any == 1 ]]; then
		cp "$log" /tmp/rvisor-proc-bench.log && echo "note: some runs failed; stderr of all runs: /tmp/rvisor-proc-bench.log" >&2
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

bin=$tmp/bin
mkdir -p "$bin"
for p in spawn futex_pp unix_rr; do
	gcc -O2 -static -o "$bin/$p" "$here/$p.c" || exit 1
done

# runsc: one bundle whose config.json is rewritten per run with that run's arguments. The root is
# the host's / under an in-memory overlay (written files stay in the sandbox, as with `rvisor do`).
if [[ " ${envs[*]} " == *" runsc "* ]]; then
	mkdir -p "$tmp/bundle"
	if ! (cd "$tmp" && "$runsc_bin" spec) >>"$log" 2>&1; then
		echo "note: \`runsc spec\` failed: runsc is skipped" >&2
		envs=(native rvisor)
	fi
fi

# run ENV CMD...: one run; prints the numbers CMD printed on stdout (lines joined by spaces), or
# "error" / "timeout".
run() {
	local env=$1 out rc id=procb$$-${EPOCHREALTIME/./}
	shift
	case $env in
	native) out=$(timeout "$limit" "$@" 2>>"$log" </dev/null) ;;
	rvisor) out=$(timeout "$limit" "$rvisor" do -- "$@" 2>>"$log" </dev/null) ;;
	runsc)
		printf '%s\n' "$@" | jq -R . | jq -s . >"$tmp/args.json" # (no newlines in arguments)
		jq --slurpfile args "$tmp/args.json" '.process.terminal = false | .process.args = $args[0]
			| .root = {path: "/", readonly: false}' "$tmp/config.json" >"$tmp/bundle/config.json"
		out=$(timeout "$limit" "$runsc_bin" --root "$tmp/state" --network=none --overlay2=root:memory \
			run --bundle "$tmp/bundle" "$id" 2>>"$log" </dev/null)
		;;
	esac
	rc=$?
	out=$(tr -d '\r' <<<"$out" | tr '\n' ' ' | sed 's/ *$//')
	if ((rc == 124)); then
		echo timeout
	elif ((rc == 0)) && [[ $out =~ ^[0-9.]+( [0-9.]+)*$ ]]; then
		echo "$out"
	else
		echo error
	fi
}

# median: of the numbers on stdin; "timeout" if a run timed out, "error" if another failed.
median() {
	sort -g | awk '
		/^timeout$/ { to = 1 }
		!/^[0-9.eE+-]+$/ { bad = 1 }
		{ v[NR] = $1 }
		END {
			if (to) print "timeout"
			else if (bad || NR == 0) print "error"
			else {
				m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
				printf (m >= 100 ? "%.0f\n" : "%.2f\n"), m
			}
		}'
}

# ratio A B HIGHER_IS_BETTER: how many times slower A is than B ("-" if either is not a number).
ratio() {
	awk -v a="$1" -v b="$2" -v hib="$3" 'BEGIN {
		if (a !~ /^[0-9.eE+-]+$/ || b !~ /^[0-9.eE+-]+$/ || a + 0 == 0 || b + 0 == 0) { print "-"; exit }
		printf "%.2fx\n", hib ? b / a : a / b
	}'
}

# percent A B: A as a percentage of B.
percent() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a !~ /^[0-9.eE+-]+$/ || b !~ /^[0-9.eE+-]+$/ || b + 0 == 0) { print "-"; exit }
		printf "%.0f%%\n", 100 * a / b
	}'
}

# verdict VALUE OP LIMIT: "met" or "NOT MET" (VALUE may end in x or %), "-" if not a number.
verdict() {
	awk -v v="${1%[x%]}" -v op="$2" -v l="$3" 'BEGIN {
		if (v !~ /^[0-9.eE+-]+$/) { print "-"; exit }
		ok = op == "<=" ? v + 0 <= l + 0 : v + 0 >= l + 0
		print ok ? "met" : "NOT MET"
	}'
}

# bench NAME CMD...: REPS interleaved runs of CMD in every environment; res[NAME,ENV] = median.
declare -A res
bench() {
	local name=$1 i env
	shift
	declare -A samples=()
	for ((i = 0; i < reps; i++)); do
		for env in "${envs[@]}"; do
			samples[$env]+="$(run "$env" "$@")"$'\n'
		done
	done
	for env in "${envs[@]}"; do
		res[$name,$env]=$(printf '%s' "${samples[$env]}" | grep . | median)
		[[ ${res[$name,$env]} =~ ^[0-9] ]] || failed_any=1
	done
}

bench spawn "$bin/spawn" "$spawn_count" /bin/true
bench pipe "$bin/spawn" 1 /bin/sh -c "head -c ${pipe_mib}M /dev/zero | cat >/dev/null"
bench futex "$bin/futex_pp" "$futex_count"
bench unix_rr "$bin/unix_rr" "$unix_rr_count"
# pipe: microseconds for the whole pipeline -> MB/s.
for env in "${envs[@]}"; do
	v=${res[pipe,$env]}
	[[ $v =~ ^[0-9.]+$ ]] && res[pipe,$env]=$(awk -v us="$v" -v mib="$pipe_mib" 'BEGIN { printf "%.0f", mib * 1048576 / us }')
done

echo "rvisor: $rvisor"
if [[ " ${envs[*]} " == *" runsc "* ]]; then
	echo "runsc: $("$runsc_bin" --version 2>/dev/null | head -n 1), default platform, --overlay2=root:memory over the host's /"
fi
row() {
	local label=$1 name=$2 env
	printf "%-44s" "$label"
	for env in "${envs[@]}"; do printf " %10s" "${res[$name,$env]}"; done
	echo
}
printf "%-44s" "processes (median of $reps, one sandbox each)"
for env in "${envs[@]}"; do printf " %10s" "$env"; done
echo
row "fork+exec+wait /bin/true x$spawn_count (us/op)" spawn
row "pipe: head -c ${pipe_mib}M /dev/zero | cat (MB/s)" pipe
row "futex ping-pong x$futex_count (round trips/s)" futex
row "unix socketpair 1-byte ping-pong (us/rt)" unix_rr
for other in "${envs[@]}"; do
	[[ $other == rvisor ]] && continue
	echo "how many times slower rvisor is than $other:"
	r_spawn=$(ratio "${res[spawn,rvisor]}" "${res[spawn,$other]}" 0)
	p_pipe=$(percent "${res[pipe,rvisor]}" "${res[pipe,$other]}")
	if [[ $other == native ]]; then
		printf "  %-22s %8s   (target <= 5x: %s)\n" "fork+exec+wait" "$r_spawn" "$(verdict "$r_spawn" "<=" 5)"
		printf "  %-22s %8s   (throughput %s of native; target >= 30%%: %s)\n" "pipe" \
			"$(ratio "${res[pipe,rvisor]}" "${res[pipe,$other]}" 1)" "$p_pipe" "$(verdict "$p_pipe" ">=" 30)"
	else
		printf "  %-22s %8s\n" "fork+exec+wait" "$r_spawn"
		printf "  %-22s %8s   (throughput %s of %s)\n" "pipe" \
			"$(ratio "${res[pipe,rvisor]}" "${res[pipe,$other]}" 1)" "$p_pipe" "$other"
	fi
	printf "  %-22s %8s\n" "futex ping-pong" "$(ratio "${res[futex,rvisor]}" "${res[futex,$other]}" 1)"
	printf "  %-22s %8s\n" "unix ping-pong" "$(ratio "${res[unix_rr,rvisor]}" "${res[unix_rr,$other]}" 0)"
done
