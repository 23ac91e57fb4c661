#!/usr/bin/env bash
# Network benchmark: native vs `rvisor do` vs runc vs runsc. Usage: bench/net.sh [path/to/rvisor]
#
# 1. Loopback TCP inside one sandbox, the same static binaries everywhere (both ends in the
#    sandbox, a forked child as the peer):
#    - tcp_stream.c: STREAM_MIB MiB (default 256) streamed client -> server, MB/s;
#    - tcp_rr.c: RR_COUNT (default 5000) 1-byte ping-pongs with TCP_NODELAY, us per round trip.
#    Median of REPS (default 3) runs each, natively, under `rvisor do`, under runc (host network
#    namespace) and under runsc if installed: `--network=none` (gVisor's netstack, loopback only)
#    and `--network=host` (host sockets, like rvisor). The OCI bundles are a busybox-static rootfs
#    plus the two binaries. runc and runsc need root; without it they are skipped.
# 2. HTTP: `python3 -m http.server` natively and inside `rvisor do` on a free loopback port, loaded
#    from the host with HTTP_REQUESTS (default 500) GETs of a 1 KiB file: `ab -n N -c 4` if
#    apache2-utils is installed, else a small python client doing them one after another.
#
# Every run is bounded (timeout). Like run.sh it only prints numbers; nothing is asserted. A run
# that fails prints "error" in its cell.
set -uo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
rvisor=${1:-$root/target/release/rvisor}
runc_bin=${RUNC:-$(command -v runc || true)}
runsc_bin=${RUNSC:-$(command -v runsc || true)}
busybox=/bin/busybox
stream_mib=${STREAM_MIB:-256}
rr_count=${RR_COUNT:-5000}
reps=${REPS:-3}
http_requests=${HTTP_REQUESTS:-500}
limit=120 # seconds allowed for any single run

if [[ ! -x $rvisor ]]; then
	echo "error: no rvisor binary at $rvisor (run \`cargo build --release\` or pass its path)" >&2
	exit 1
fi
command -v gcc >/dev/null || { echo "error: gcc missing" >&2; exit 1; }
py=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))' 2>/dev/null) || py=
oci=1
if [[ $(id -u) != 0 ]]; then
	echo "note: not root: runc and runsc are skipped" >&2
	oci=0
elif ! command -v jq >/dev/null; then
	echo "note: jq missing: runc and runsc are skipped" >&2
	oci=0
elif [[ ! -x $busybox ]]; then
	echo "note: $busybox missing (apt-get install busybox-static): runc and runsc are skipped" >&2
	oci=0
fi

tmp=$(mktemp -d /tmp/rvisor-net-bench.XXXXXX)
log=$tmp/log # stderr of the sandboxes and runtimes
server_pid=
failed_any=0
cleanup() {
	if [[ -n $server_pid ]]; then
		kill "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
	fi
	local rt c
	for rt in runc runsc; do
		for c in "$tmp/state-$rt"/*/; do
			[[ -d $c ]] || continue
			local bin=$runc_bin
			[[ $rt == runsc ]] && bin=$runsc_bin
			timeout 20 "$bin" --root "$tmp/state-$rt" delete -f "$(basename "$c")" >>"$log" 2>&1 </dev/null
		done
	done
	if grep -qs . "$log" && [[ $failed_any == 1 ]]; then
		cp "$log" /tmp/rvisor-net-bench.log && echo "note: some runs failed; stderr of all runs: /tmp/rvisor-net-bench.log" >&2
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

rootfs=$tmp/rootfs
mkdir -p "$rootfs/bin" "$rootfs/tmp"
for p in tcp_stream tcp_rr; do
	gcc -O2 -static -o "$rootfs/bin/$p" "$here/$p.c" || exit 1
done

# OCI bundles, one per benchmark: config from `runc spec`, host network namespace (no "network"
# entry), read-only busybox rootfs. Both runtimes get the very same config.json.
envs=(native rvisor)
if ((oci)) && [[ -n $runc_bin || -n $runsc_bin ]]; then
	cp "$busybox" "$rootfs/bin/busybox"
	for a in sh cat true; do ln -s busybox "$rootfs/bin/$a"; done
	spec_bin=${runc_bin:-$runsc_bin}
	if (cd "$tmp" && "$spec_bin" spec) >>"$log" 2>&1; then
		for b in stream rr; do
			mkdir -p "$tmp/bundle-$b"
			args=$(printf '["/bin/tcp_%s","%s"]' "$b" "$([[ $b == stream ]] && echo "$stream_mib" || echo "$rr_count")")
			jq --arg root "$rootfs" --argjson args "$args" '.process.terminal = false
				| .process.args = $args | .root = {path: $root, readonly: true}
				| .linux.namespaces |= map(select(.type != "network"))' \
				"$tmp/config.json" >"$tmp/bundle-$b/config.json" || exit 1
		done
		[[ -n $runc_bin ]] && envs+=(runc)
		[[ -n $runsc_bin ]] && envs+=(runsc runsc-host)
	else
		echo "note: \`$spec_bin spec\` failed: runc and runsc are skipped" >&2
	fi
fi

# run ENV BENCH ARG: one run; prints the number the program printed, or "error".
run() {
	local env=$1 b=$2 arg=$3 out id=netb$$-${EPOCHREALTIME/./} # ids unique per run (cgroup names)
	case $env in
	native) out=$(timeout $limit "$rootfs/bin/tcp_$b" "$arg" 2>>"$log") ;;
	rvisor) out=$(timeout $limit "$rvisor" do -- "$rootfs/bin/tcp_$b" "$arg" 2>>"$log" </dev/null) ;;
	runc) out=$(timeout $limit "$runc_bin" --root "$tmp/state-runc" run --bundle "$tmp/bundle-$b" "$id" 2>>"$log" </dev/null) ;;
	runsc) out=$(timeout $limit "$runsc_bin" --root "$tmp/state-runsc" --network=none run --bundle "$tmp/bundle-$b" "$id" 2>>"$log" </dev/null) ;;
	runsc-host) out=$(timeout $limit "$runsc_bin" --root "$tmp/state-runsc" --network=host run --bundle "$tmp/bundle-$b" "$id" 2>>"$log" </dev/null) ;;
	esac
	out=$(tail -n 1 <<<"$out" | tr -d '\r')
	[[ $out =~ ^[0-9.]+$ ]] && echo "$out" || echo error
}
mark_failures() { [[ $1 == *error* ]] && failed_any=1; }

# median: of the numbers on stdin, or "error" if any line is not a number.
median() {
	sort -g | awk '
		!/^[0-9.eE+-]+$/ { bad = 1 }
		{ v[NR] = $1 }
		END {
			if (bad || NR == 0) print "error"
			else printf "%.1f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		}'
}

# ratio A B HIGHER_IS_BETTER: how many times slower A is than B ("-" if either is not a number).
ratio() {
	awk -v a="$1" -v b="$2" -v hib="$3" 'BEGIN {
		if (a !~ /^[0-9.eE+-]+$/ || b !~ /^[0-9.eE+-]+$/ || a + 0 == 0 || b + 0 == 0) { print "-"; exit }
		printf "%.2fx\n", hib ? b / a : a / b
	}'
}

declare -A res
for b in stream rr; do
	arg=$stream_mib
	[[ $b == rr ]] && arg=$rr_count
	# Interleave the environments so that the noise of a shared machine hits all alike.
	declare -A samples=()
	for ((i = 0; i < reps; i++)); do
		for env in "${envs[@]}"; do
			samples[$env]+="$(run "$env" "$b" "$arg")"$'\n'
		done
	done
	for env in "${envs[@]}"; do
		res[$b,$env]=$(printf '%s' "${samples[$env]}" | grep . | median)
		mark_failures "${samples[$env]}"
	done
done

echo "rvisor: $rvisor"
echo "native: the host; runc: host network namespace; rvisor: \`rvisor do\` (host sockets)"
if [[ " ${envs[*]} " == *" runsc "* ]]; then
	echo "runsc: $("$runsc_bin" --version 2>/dev/null | head -n 1), default platform; column runsc is"
	echo "       --network=none (gVisor's netstack, loopback only), runsc-host is --network=host"
fi
printf "%-34s" "loopback TCP (median of $reps)"
for env in "${envs[@]}"; do printf " %11s" "$env"; done
echo
printf "%-34s" "stream $stream_mib MiB (MB/s)"
for env in "${envs[@]}"; do printf " %11s" "${res[stream,$env]}"; done
echo
printf "%-34s" "1-byte ping-pong x$rr_count (us/rt)"
for env in "${envs[@]}"; do printf " %11s" "${res[rr,$env]}"; done
echo
echo "how many times slower rvisor is:"
for other in "${envs[@]}"; do
	[[ $other == rvisor ]] && continue
	printf "  vs %-10s stream %8s   ping-pong %8s\n" "$other" \
		"$(ratio "${res[stream,rvisor]}" "${res[stream,$other]}" 1)" "$(ratio "${res[rr,rvisor]}" "${res[rr,$other]}" 0)"
done

# ---- HTTP: python3 -m http.server natively and in rvisor, loaded from the host.
echo
if [[ -z $py ]]; then
	echo "http: skipped (no python3)"
	exit 0
fi
www=$tmp/www
mkdir -p "$www"
head -c 768 /dev/zero | tr '\0' 'x' | fold -w 63 >"$www/index.html" # 1 KiB (with newlines)
size=$(stat -c %s "$www/index.html")
cat >"$tmp/http_load.py" <<'EOF'
# http_load.py HOST PORT N SIZE: N sequential GETs of /index.html (a new connection each, as
# http.server speaks HTTP/1.0); prints requests per second, or "error" if any failed.
import http.client, sys, time
host, port, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def get():
    c = http.client.HTTPConnection(host, port, timeout=10)
    try:
        c.request("GET", "/index.html")
        r = c.getresponse()
        return r.status == 200 and len(r.read()) == size
    except OSError:
        return False
    finally:
        c.close()
for _ in range(20):  # warm-up
    get()
t0 = time.monotonic()
ok = sum(get() for _ in range(n))
dt = time.monotonic() - t0
print(f"{n / dt:.0f}" if ok == n else "error")
EOF
cat >"$tmp/wait_port.py" <<'EOF'
# wait_port.py PORT: wait up to 60 s for something to accept on 127.0.0.1:PORT.
import socket, sys, time
end = time.monotonic() + 60
while time.monotonic() < end:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
EOF
free_port() { "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# http ENV: start the server, load it, stop it; prints requests/s or "error".
http() {
	local env=$1 port out
	port=$(free_port)
	if [[ $env == native ]]; then
		(cd "$www" && exec timeout $((limit * 2)) "$py" -m http.server "$port" --bind 127.0.0.1) >>"$log" 2>&1 </dev/null &
	else
		timeout $((limit * 2)) "$rvisor" do --cwd "$www" -- "$py" -m http.server "$port" --bind 127.0.0.1 >>"$log" 2>&1 </dev/null &
	fi
	server_pid=$!
	if ! timeout 70 "$py" "$tmp/wait_port.py" "$port"; then
		out=error
	elif command -v ab >/dev/null; then
		out=$(timeout $limit ab -q -n "$http_requests" -c 4 "http://127.0.0.1:$port/index.html" 2>>"$log" |
			awk '/^Failed requests:/ { f = $3 } /^Requests per second:/ { r = $4 } END { print (f == 0 && r != "") ? sprintf("%.0f", r) : "error" }')
	else
		out=$(timeout $limit "$py" "$tmp/http_load.py" 127.0.0.1 "$port" "$http_requests" "$size" 2>>"$log")
	fi
	kill "$server_pid" 2>/dev/null
	wait "$server_pid" 2>/dev/null
	server_pid=
	[[ $out =~ ^[0-9.]+$ ]] && echo "$out" || echo error
}

if command -v ab >/dev/null; then
	how="ab -n $http_requests -c 4"
else
	how="$http_requests sequential GETs from a python client (apache2-utils not installed)"
fi
echo "http: python3 -m http.server, 1 KiB file, $how"
n=$(http native)
s=$(http rvisor)
mark_failures "$n $s"
printf "%-34s %11s %11s\n" "" native rvisor
printf "%-34s %11s %11s\n" "requests/s" "$n" "$s"
echo "how many times slower rvisor is: $(ratio "$s" "$n" 1)"
