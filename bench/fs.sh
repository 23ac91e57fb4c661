#!/usr/bin/env bash
# File system benchmark: native vs `rvisor do` vs runsc. Usage: bench/fs.sh [path/to/rvisor]
#
# Each program runs whole inside one sandbox and times itself, so sandbox start-up is not counted
# (except in the last row):
# - seqio.c: SEQ_MIB MiB (default 100) written to a new file in 1 MiB write()s, then read back in
#   1 MiB read()s, MB/s each (no fsync). In the sandbox's /tmp, which `rvisor do` keeps in memory
#   (an overlay over the host's read-only /), against native on a tmpfs (/dev/shm). Then on a
#   host directory: `rvisor do` has no option to mount one, so this runs as an OCI container
#   (`rvisor run`, a bind mount, written through to the host) against native on the same ext4
#   (or whatever) directory under /tmp, and runsc with the same bundle and bind mount (its gofer);
# - statfiles.c: STAT_FILES (default 10000) empty files created in a new directory under /tmp
#   (untimed), then one stat() of each by path, nanoseconds per stat;
# - `find /usr | wc -l` under spawn.c (the host's /usr, read through the sandbox), seconds; the
#   native page and dentry caches are warmed first by an untimed native run;
# - `python3 -c pass` PY_RUNS times (default 20) one after another inside one sandbox under
#   spawn.c (after one warm-up run), ms per run; and, for reference, the wall time of a whole
#   `rvisor do -- python3 -c pass` (a new sandbox each, median of PY_RUNS).
# - the same two python3 rows in the Debian bookworm root scripts/debian-root.sh builds
#   (DEBIAN_ROOT, default /var/tmp/rvisor-debian-bookworm; root only): `rvisor do --root` (spawn.c
#   through a read-only --volume at /mnt) against native `chroot` into the root (spawn.c bind-mounted
#   at /mnt in a private mount namespace, so the root itself never changes). Its own python3,
#   libraries and ld.so come through the gofer.
# Median of REPS (default 3) runs each, the environments interleaved so that the noise of the
# shared machine hits all alike. runsc (RUNSC=path overrides; default platform) needs root and
# jq; in the /tmp rows its bundle is the host's / with `--overlay2=root:memory`, runsc's equivalent
# of `rvisor do`. The host-directory row needs root too.
#
# Targets (printed next to the ratios, not asserted): file throughput at least 50% of native,
# python3 start-up at most 2x native. Every run is bounded by LIMIT seconds (default 300); a run
# that fails prints "error", one that hits the limit "timeout". Nothing is asserted.
set -uo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
rvisor=${1:-$root/target/release/rvisor}
runsc_bin=${RUNSC:-$(command -v runsc || true)}
seq_mib=${SEQ_MIB:-100}
stat_files=${STAT_FILES:-10000}
py_runs=${PY_RUNS:-20}
reps=${REPS:-3}
deb=${DEBIAN_ROOT:-/var/tmp/rvisor-debian-bookworm}
limit=${LIMIT:-300} # seconds allowed for any single run

if [[ ! -x $rvisor ]]; then
	echo "error: no rvisor binary at $rvisor (run \`cargo build --release\` or pass its path)" >&2
	exit 1
fi
command -v gcc >/dev/null || { echo "error: gcc missing" >&2; exit 1; }
py=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))' 2>/dev/null) || py=
envs=(native rvisor)      # /tmp, find, python
host_envs=(native)        # host directory
oci=1
if [[ $(id -u) != 0 ]]; then
	echo "note: not root: runsc and the host-directory row (\`rvisor run\`) are skipped" >&2
	oci=0
elif ! command -v jq >/dev/null; then
	echo "note: jq missing: runsc and the host-directory row (\`rvisor run\`) are skipped" >&2
	oci=0
fi
deb_envs=()
if [[ $(id -u) != 0 ]]; then
	echo "note: not root: the Debian-root rows are skipped" >&2
elif [[ ! -f $deb/etc/rvisor-root-stamp ]]; then
	echo "note: no Debian root at $deb (scripts/debian-root.sh builds it): its rows are skipped" >&2
else
	deb_envs=(deb-native deb-rvisor)
fi
if ((oci)); then
	host_envs+=(rvisor-oci)
	if [[ -z $runsc_bin ]]; then
		echo "note: runsc not installed: skipped" >&2
	elif [[ $("$runsc_bin" flags 2>&1) != *-overlay2* ]]; then
		echo "note: $runsc_bin has no --overlay2 (needed to keep the host's / unwritten): skipped" >&2
	else
		envs+=(runsc)
		host_envs+=(runsc-oci)
	fi
fi

tmp=$(mktemp -d /tmp/rvisor-fs-bench.XXXXXX)
shm=$(mktemp -d /dev/shm/rvisor-fs-bench.XXXXXX) # native stand-in for the sandbox's memory /tmp
log=$tmp/log # stderr of the programs, sandboxes and runtimes
failed_any=0
cleanup() {
	local c rt
	for rt in rvisor runsc; do
		for c in "$tmp/state-$rt"/*/; do
			[[ -d $c ]] || continue
			if [[ $rt == rvisor ]]; then
				timeout 20 "$rvisor" --root "$tmp/state-$rt" delete -f "$(basename "$c")"
			else
				timeout 20 "$runsc_bin" --root "$tmp/state-$rt" delete -f "$(basename "$c")"
			fi >>"$log" 2>&1 </dev/null
		done
	done
	if grep -qs . "$log" && [[ $failed_any == 1 ]]; then
		cp "$log" /tmp/rvisor-fs-bench.log && echo "note: some runs failed; stderr of all runs: /tmp/rvisor-fs-bench.log" >&2
	fi
	rm -rf "$tmp" "$shm"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

bin=$tmp/bin
hostdir=$tmp/hostdir
rootfs=$tmp/rootfs
mkdir -p "$bin" "$hostdir" "$rootfs/bin" "$rootfs/data"
for p in seqio statfiles spawn; do
	gcc -O2 -static -o "$bin/$p" "$here/$p.c" || exit 1
done
cp "$bin/seqio" "$rootfs/bin/seqio"

# OCI: one spec from `rvisor spec`; per run, config.json gets that run's arguments. "do": the
# host's / under runsc's in-memory overlay. "data": a read-only rootfs holding seqio, with
# $hostdir bind-mounted read-write at /data, no network namespace (both rvisor and runsc).
if ((oci)); then
	mkdir -p "$tmp/bundle-do" "$tmp/bundle-data"
	if ! (cd "$tmp" && "$rvisor" spec) >>"$log" 2>&1; then
		echo "note: \`rvisor spec\` failed: runsc and the host-directory row are skipped" >&2
		envs=(native rvisor)
		host_envs=(native)
	fi
fi
# oci_config BUNDLE ARGS...: writes BUNDLE/config.json running ARGS (no newlines in them).
oci_config() {
	local b=$1
	shift
	printf '%s\n' "$@" | jq -R . | jq -s . >"$tmp/args.json"
	if [[ $b == do ]]; then
		jq --slurpfile args "$tmp/args.json" '.process.terminal = false | .process.args = $args[0]
			| .root = {path: "/", readonly: false}' "$tmp/config.json"
	else
		jq --slurpfile args "$tmp/args.json" --arg root "$rootfs" --arg data "$hostdir" '
			.process.terminal = false | .process.args = $args[0] | .root = {path: $root, readonly: true}
			| .linux.namespaces |= map(select(.type != "network"))
			| .mounts += [{destination: "/data", type: "bind", source: $data, options: ["rbind", "rw"]}]' \
			"$tmp/config.json"
	fi >"$tmp/bundle-$b/config.json"
}

# run ENV CMD...: one run; prints the numbers CMD printed on stdout (lines joined by spaces), or
# "error" / "timeout".
run() {
	local env=$1 out rc id=fsb$$-${EPOCHREALTIME/./}
	shift
	case $env in
	native) out=$(timeout "$limit" "$@" 2>>"$log" </dev/null) ;;
	rvisor) out=$(timeout "$limit" "$rvisor" do -- "$@" 2>>"$log" </dev/null) ;;
	runsc)
		oci_config do "$@"
		out=$(timeout "$limit" "$runsc_bin" --root "$tmp/state-runsc" --network=none --overlay2=root:memory \
			run --bundle "$tmp/bundle-do" "$id" 2>>"$log" </dev/null)
		;;
	deb-native)
		out=$(timeout "$limit" unshare --mount --propagation private -- sh -c \
			'mount --bind -o ro "$1" "$2/mnt" && r=$2 && shift 2 && exec chroot "$r" "$@"' sh "$bin" "$deb" "$@" \
			2>>"$log" </dev/null)
		;;
	deb-rvisor) out=$(timeout "$limit" "$rvisor" do --root "$deb" --volume "$bin:/mnt:ro" -- "$@" 2>>"$log" </dev/null) ;;
	rvisor-oci)
		oci_config data "$@"
		out=$(timeout "$limit" "$rvisor" --root "$tmp/state-rvisor" run --bundle "$tmp/bundle-data" "$id" 2>>"$log" </dev/null)
		;;
	runsc-oci)
		oci_config data "$@"
		out=$(timeout "$limit" "$runsc_bin" --root "$tmp/state-runsc" --network=none \
			run --bundle "$tmp/bundle-data" "$id" 2>>"$log" </dev/null)
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

# median [FIELD]: median of field FIELD (default 1) of the lines on stdin; "timeout" if a run
# timed out, "error" if another failed.
median() {
	awk -v f="${1:-1}" '{ print (NF >= f ? $f : $1) }' | sort -g | awk '
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
		if (v !~ /^[0-9.eE+-]+$/ || v !~ /[0-9]/) { print "-"; exit }
		ok = op == "<=" ? v + 0 <= l + 0 : v + 0 >= l + 0
		print ok ? "met" : "NOT MET"
	}'
}

# scale X FACTOR: X * FACTOR, or X itself if it is not a number.
scale() {
	[[ $1 =~ ^[0-9.]+$ ]] || { echo "$1"; return; }
	awk -v x="$1" -v f="$2" 'BEGIN { v = x * f; printf (v >= 100 ? "%.0f\n" : "%.2f\n"), v }'
}

# bench NAME ENVS NATIVE_DIR CMD...: REPS interleaved runs of CMD in each environment of the
# array named ENVS; raw[NAME,ENV] = the runs' outputs, one a line. In CMD, "@BIN@" becomes the
# directory of the helpers and "@DIR@" a scratch directory: NATIVE_DIR natively, the sandbox's
# /tmp (memory) in rvisor and runsc, the bind mount /data in the OCI containers.
declare -A raw res
bench() {
	local name=$1 native_dir=$3 i env dir b a args
	local -n list=$2
	shift 3
	for ((i = 0; i < reps; i++)); do
		for env in "${list[@]}"; do
			case $env in
			native) dir=$native_dir b=$bin ;;
			rvisor | runsc) dir=$tmp b=$bin ;;
			deb-*) dir=/tmp b=/mnt ;;
			*-oci) dir=/data b=/bin ;;
			esac
			args=()
			for a in "$@"; do
				a=${a//@DIR@/$dir}
				args+=("${a//@BIN@/$b}")
			done
			raw[$name,$env]+="$(run "$env" "${args[@]}")"$'\n'
		done
	done
	for env in "${list[@]}"; do
		[[ ${raw[$name,$env]} == *[a-z]* ]] && failed_any=1
	done
}
# pick NAME ENVS FIELD KEY: res[KEY,ENV] = median of field FIELD of raw[NAME,ENV].
pick() {
	local env
	local -n list=$2
	for env in "${list[@]}"; do
		res[$4,$env]=$(printf '%s' "${raw[$1,$env]}" | grep . | median "$3")
	done
}

# wall_ms ENV: wall time in ms of a whole `python3 -c pass` (a new sandbox each in rvisor and
# runsc), or "error" / "timeout".
wall_ms() {
	local env=$1 t0 t1 rc
	if [[ $env == runsc ]]; then
		oci_config do "$py" -c pass
		t0=${EPOCHREALTIME/./}
		timeout "$limit" "$runsc_bin" --root "$tmp/state-runsc" --network=none --overlay2=root:memory \
			run --bundle "$tmp/bundle-do" "fsb$$-$t0" >/dev/null 2>>"$log" </dev/null
	elif [[ $env == rvisor ]]; then
		t0=${EPOCHREALTIME/./}
		timeout "$limit" "$rvisor" do -- "$py" -c pass >/dev/null 2>>"$log" </dev/null
	elif [[ $env == deb-rvisor ]]; then
		t0=${EPOCHREALTIME/./}
		timeout "$limit" "$rvisor" do --root "$deb" -- /usr/bin/python3 -c pass >/dev/null 2>>"$log" </dev/null
	elif [[ $env == deb-native ]]; then
		t0=${EPOCHREALTIME/./}
		timeout "$limit" chroot "$deb" /usr/bin/python3 -c pass >/dev/null 2>>"$log" </dev/null
	else
		t0=${EPOCHREALTIME/./}
		timeout "$limit" "$py" -c pass >/dev/null 2>>"$log" </dev/null
	fi
	rc=$?
	t1=${EPOCHREALTIME/./}
	if ((rc == 124)); then echo timeout; elif ((rc != 0)); then echo error; else
		awk -v d=$((t1 - t0)) 'BEGIN { printf "%.1f\n", d / 1000 }'
	fi
}

bench tmpio envs "$shm" @BIN@/seqio @DIR@/seqio.dat "$seq_mib"
pick tmpio envs 1 tmp_w
pick tmpio envs 2 tmp_r
bench hostio host_envs "$hostdir" @BIN@/seqio @DIR@/seqio.dat "$seq_mib"
pick hostio host_envs 1 host_w
pick hostio host_envs 2 host_r
bench stat envs "$shm" @BIN@/statfiles @DIR@/statdir "$stat_files" 1
pick stat envs 1 stat
"$bin/spawn" 1 /bin/sh -c 'find /usr | wc -l' >/dev/null 2>&1 # warm the host's caches
bench find envs "$shm" @BIN@/spawn 1 /bin/sh -c 'find /usr | wc -l'
pick find envs 1 find_n
pick find envs 2 find_us
for env in "${envs[@]}"; do res[find,$env]=$(scale "${res[find_us,$env]}" 1e-6); done
if [[ -n $py ]]; then
	bench py envs "$shm" @BIN@/spawn "$py_runs" "$py" -c pass
	pick py envs 1 py_us
	for env in "${envs[@]}"; do res[py,$env]=$(scale "${res[py_us,$env]}" 1e-3); done
	declare -A samples=()
	for ((i = 0; i < py_runs; i++)); do
		for env in "${envs[@]}"; do samples[$env]+="$(wall_ms "$env")"$'\n'; done
	done
	for env in "${envs[@]}"; do
		res[pywall,$env]=$(printf '%s' "${samples[$env]}" | grep . | median)
		[[ ${samples[$env]} == *[a-z]* ]] && failed_any=1
	done
fi
if ((${#deb_envs[@]})); then
	bench debpy deb_envs "$shm" @BIN@/spawn "$py_runs" /usr/bin/python3 -c pass
	pick debpy deb_envs 1 debpy_us
	for env in "${deb_envs[@]}"; do res[debpy,$env]=$(scale "${res[debpy_us,$env]}" 1e-3); done
	declare -A samples=()
	for ((i = 0; i < py_runs; i++)); do
		for env in "${deb_envs[@]}"; do samples[$env]+="$(wall_ms "$env")"$'\n'; done
	done
	for env in "${deb_envs[@]}"; do
		res[debpywall,$env]=$(printf '%s' "${samples[$env]}" | grep . | median)
		[[ ${samples[$env]} == *[a-z]* ]] && failed_any=1
	done
fi

echo "rvisor: $rvisor"
[[ " ${envs[*]} " == *" runsc "* ]] &&
	echo "runsc: $("$runsc_bin" --version 2>/dev/null | head -n 1), default platform, --overlay2=root:memory over the host's /"
echo "native /tmp rows: a tmpfs (/dev/shm); host-directory row: $(df --output=fstype "$hostdir" 2>/dev/null | tail -n 1) under /tmp"
((${#deb_envs[@]})) && echo "Debian root: $deb (native: chroot; rvisor: do --root)"
# table TITLE ENVS ROW...: each ROW is "LABEL;KEY".
table() {
	local -n cols=$2
	local r env
	printf "%-46s" "$1"
	for env in "${cols[@]}"; do printf " %10s" "$env"; done
	echo
	shift 2
	for r in "$@"; do
		printf "%-46s" "${r%%;*}"
		for env in "${cols[@]}"; do printf " %10s" "${res[${r##*;},$env]:--}"; done
		echo
	done
}
rows=("write $seq_mib MiB to /tmp (MB/s);tmp_w" "read it back (MB/s);tmp_r"
	"stat x$stat_files files in /tmp (ns/stat);stat"
	"find /usr | wc -l (s);find" "  entries found;find_n")
[[ -n $py ]] && rows+=("python3 -c pass x$py_runs, one sandbox (ms/run);py"
	"python3 -c pass, a new sandbox each (ms);pywall")
table "file system (median of $reps)" envs "${rows[@]}"
table "host directory (median of $reps)" host_envs \
	"write $seq_mib MiB (MB/s);host_w" "read it back (MB/s);host_r"
((${#deb_envs[@]})) && table "Debian root (median of $reps)" deb_envs \
	"python3 -c pass x$py_runs, one sandbox (ms/run);debpy" \
	"python3 -c pass, a new sandbox each (ms);debpywall"

for other in "${envs[@]}"; do
	[[ $other == rvisor ]] && continue
	echo "how many times slower rvisor is than $other:"
	for k in tmp_w tmp_r; do
		p=$(percent "${res[$k,rvisor]}" "${res[$k,$other]}")
		label="/tmp write"; [[ $k == tmp_r ]] && label="/tmp read"
		printf "  %-22s %8s   (throughput %s of %s" "$label" "$(ratio "${res[$k,rvisor]}" "${res[$k,$other]}" 1)" "$p" "$other"
		[[ $other == native ]] && printf "; target >= 50%%: %s" "$(verdict "$p" ">=" 50)"
		echo ")"
	done
	printf "  %-22s %8s\n" "stat" "$(ratio "${res[stat,rvisor]}" "${res[stat,$other]}" 0)"
	printf "  %-22s %8s\n" "find /usr" "$(ratio "${res[find,rvisor]}" "${res[find,$other]}" 0)"
	if [[ -n $py ]]; then
		r=$(ratio "${res[py,rvisor]}" "${res[py,$other]}" 0)
		printf "  %-22s %8s" "python3 -c pass" "$r"
		[[ $other == native ]] && printf "   (target <= 2x: %s)" "$(verdict "$r" "<=" 2)"
		echo
		printf "  %-22s %8s\n" "  with sandbox start" "$(ratio "${res[pywall,rvisor]}" "${res[pywall,$other]}" 0)"
	fi
done
for other in "${host_envs[@]}"; do
	[[ $other == rvisor-oci ]] && continue
	[[ " ${host_envs[*]} " == *" rvisor-oci "* ]] || break
	echo "how many times slower rvisor-oci is than $other on the host directory:"
	for k in host_w host_r; do
		p=$(percent "${res[$k,rvisor-oci]}" "${res[$k,$other]}")
		label="write"; [[ $k == host_r ]] && label="read"
		printf "  %-22s %8s   (throughput %s of %s" "$label" "$(ratio "${res[$k,rvisor-oci]}" "${res[$k,$other]}" 1)" "$p" "$other"
		[[ $other == native ]] && printf "; target >= 50%%: %s" "$(verdict "$p" ">=" 50)"
		echo ")"
	done
done
if ((${#deb_envs[@]})); then
	echo "how many times slower rvisor do --root is than native chroot in the Debian root:"
	r=$(ratio "${res[debpy,deb-rvisor]}" "${res[debpy,deb-native]}" 0)
	printf "  %-22s %8s   (target <= 2x: %s)\n" "python3 -c pass" "$r" "$(verdict "$r" "<=" 2)"
	printf "  %-22s %8s\n" "  with sandbox start" "$(ratio "${res[debpywall,deb-rvisor]}" "${res[debpywall,deb-native]}" 0)"
fi
