#!/usr/bin/env bash
# Benchmark: tunnel vs raw veth between two network namespaces, measured in
# one run, reported as ratios (these machines are shared and noisy). Needs
# root, iperf3 and ping. Set BENCH_JSON=path to also write JSON.
set -euo pipefail

bin=${MYNETWORK_BIN:-bin/mynetwork}
secs=${BENCH_SECONDS:-5}
tag=mnb$$
a=${tag}-a b=${tag}-b
work=$(mktemp -d)
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  ip netns del "$a" 2>/dev/null || true
  ip netns del "$b" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] || { echo "bench needs root: sudo make bench" >&2; exit 1; }

ip netns add "$a"; ip netns add "$b"
ip link add eth0 netns "$a" type veth peer name eth0 netns "$b"
ip -n "$a" addr add 10.124.0.1/24 dev eth0; ip -n "$b" addr add 10.124.0.2/24 dev eth0
for ns in "$a" "$b"; do ip -n "$ns" link set lo up; ip -n "$ns" link set eth0 up; done

out_a=$("$bin" init -i mba -c "$work/a.json"); out_b=$("$bin" init -i mbb -c "$work/b.json")
id() { grep -o '12D3Koo[1-9A-HJ-NP-Za-km-z]*' <<<"$1"; }
ip_b=$(grep -o 'mesh addresses: [0-9.]*' <<<"$out_b" | cut -d' ' -f3)
sed -i "s|\"peers\": \[\]|\"bootstrapPeers\": [], \"mdns\": false, \"peers\": [{\"name\": \"b\", \"id\": \"$(id "$out_b")\", \"addrs\": [${BENCH_ADDRS:-\"/ip4/10.124.0.2/udp/8001/quic-v1\", \"/ip4/10.124.0.2/tcp/8001\"}]}]|" "$work/a.json"
sed -i "s|\"peers\": \[\]|\"bootstrapPeers\": [], \"mdns\": false, \"peers\": [{\"name\": \"a\", \"id\": \"$(id "$out_a")\"}]|" "$work/b.json"
prof_a=() prof_b=()
if [ -n "${BENCH_PROFILE:-}" ]; then prof_a=(--cpuprofile "$BENCH_PROFILE.a"); prof_b=(--cpuprofile "$BENCH_PROFILE.b"); fi
ip netns exec "$a" "$bin" up -i mba -c "$work/a.json" "${prof_a[@]}" 2>"$work/a.log" & pids+=($!)
ip netns exec "$b" "$bin" up -i mbb -c "$work/b.json" "${prof_b[@]}" 2>"$work/b.log" & pids+=($!)
for _ in $(seq 100); do
  ip netns exec "$a" ping -c1 -W1 "$ip_b" >/dev/null 2>&1 && break
  sleep 0.2
done
ip netns exec "$b" iperf3 -s -D --pidfile "$work/iperf.pid" >/dev/null
sleep 0.3
pids+=($(cat "$work/iperf.pid"))

rtt() { ip netns exec "$a" ping -q -c 50 -i 0.02 "$1" | awk -F/ '/^rtt/ {print $5}'; }
tput() { # Mbit/s received, streams
  ip netns exec "$a" iperf3 -c "$1" -t "$secs" -P "$2" -f m | awk '/receiver/ {v=$(NF-2)} END {print v}'
}

rows=()
row() { # name raw tunnel higher-is-better(1|0)
  local ratio
  ratio=$(awk -v r="$2" -v t="$3" 'BEGIN { if (r > 0) printf "%.2f", t / r; else print "n/a" }')
  rows+=("$1|$2|$3|$ratio")
}
row "ping RTT avg (ms)" "$(rtt 10.124.0.2)" "$(rtt "$ip_b")"
row "TCP 1 stream (Mbit/s)" "$(tput 10.124.0.2 1)" "$(tput "$ip_b" 1)"
row "TCP 4 streams (Mbit/s)" "$(tput 10.124.0.2 4)" "$(tput "$ip_b" 4)"

printf '\n%-26s %12s %12s %8s\n' scenario raw tunnel ratio
for r in "${rows[@]}"; do IFS='|' read -r n raw tun ratio <<<"$r"; printf '%-26s %12s %12s %8s\n' "$n" "$raw" "$tun" "$ratio"; done
if [ -n "${BENCH_JSON:-}" ]; then
  { echo '['; sep=''
    for r in "${rows[@]}"; do IFS='|' read -r n raw tun ratio <<<"$r"
      printf '%s{"scenario": "%s", "raw": %s, "tunnel": %s, "ratio": %s}\n' "$sep" "$n" "$raw" "$tun" "$ratio"; sep=','
    done; echo ']'; } > "$BENCH_JSON"
fi
