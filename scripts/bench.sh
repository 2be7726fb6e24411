#!/usr/bin/env bash
# Benchmark: every figure is the tunnel against the raw underlay measured in
# the same run, reported as a ratio (these machines are shared and noisy).
# Two namespaces joined by a veth pair; no route out. Needs root, iperf3,
# ping, curl and python3. BENCH_JSON=path also writes JSON; BENCH_SECONDS
# sets each iperf3 run's length; BENCH_PAIRS the raw/tunnel pairs of the
# unshaped and lossy rows (default 3); BENCH_ADDRS picks B's address(es)
# for A (default QUIC then TCP); BENCH_PROFILE=prefix writes CPU profiles;
# BENCH_MTU sets the nodes' "mtu" (default: the config's default);
# BENCH_OTHER_MTU (default 65000, "off" to skip) is the MTU of part 1b.
# BENCH_LOADED_ONLY=1 runs only the ping-under-load rows at 100 Mbit/s,
# over TCP and over QUIC.
# WGREF_BIN (default bin/wgref, built by make bench) is wireguard-go, run
# beside the tunnel as the reference userspace VPN; without it those rows
# are left out.
set -euo pipefail

bin=${MYNETWORK_BIN:-bin/mynetwork}
wgref=${WGREF_BIN:-bin/wgref}
secs=${BENCH_SECONDS:-5}
tag=mnb$$
a=${tag}-a b=${tag}-b
work=$(mktemp -d)
pids=()

hogs=()
stop_hogs() {
  for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  hogs=()
}
cleanup() {
  stop_hogs
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

peerid() { grep -o '12D3Koo[1-9A-HJ-NP-Za-km-z]*' <<<"$1"; }
meship() { grep -o 'mesh addresses: [0-9.]*' <<<"$1" | cut -d' ' -f3; }
out_a=$("$bin" init -i mba -c "$work/a.json"); out_b=$("$bin" init -i mbb -c "$work/b.json")
ip_b=$(meship "$out_b")
addrs=${BENCH_ADDRS:-'"/ip4/10.124.0.2/udp/8001/quic-v1", "/ip4/10.124.0.2/tcp/8001"'}
sed -i "s|\"peers\": \[\]|\"bootstrapPeers\": [], \"mdns\": false, \"peers\": [{\"name\": \"b\", \"id\": \"$(peerid "$out_b")\", \"addrs\": [$addrs]}]|" "$work/a.json"
sed -i "s|\"peers\": \[\]|\"bootstrapPeers\": [], \"mdns\": false, \"peers\": [{\"name\": \"a\", \"id\": \"$(peerid "$out_a")\"}]|" "$work/b.json"
# Each node listens on its veth address only: had it listened everywhere,
# identify would tell the other of its wireguard-go address too, and the
# tunnel could run through the reference.
listen_on() { # CONFIG IP [MTU [quic]]: with quic, QUIC only, to listen on and to dial
  python3 - "$1" "$2" "${3:-${BENCH_MTU:-}}" "${4:-}" <<'PY'
import json, sys
path, ip = sys.argv[1], sys.argv[2]
with open(path) as f:
    cfg = json.load(f)
cfg["listenAddresses"] = [f"/ip4/{ip}/tcp/8001", f"/ip4/{ip}/udp/8001/quic-v1"]
if sys.argv[4] == "quic":
    cfg["listenAddresses"] = cfg["listenAddresses"][1:]
    for p in cfg["peers"]:
        p["addrs"] = [a for a in p.get("addrs", []) if "/quic-v1" in a]
if sys.argv[3]:
    cfg["mtu"] = int(sys.argv[3])
else:
    cfg.pop("mtu", None)
with open(path, "w") as f:
    json.dump(cfg, f, indent=2)
PY
}
listen_on "$work/a.json" 10.124.0.1; listen_on "$work/b.json" 10.124.0.2

# start NS NAME ARGS...: a daemon in a namespace; its PID goes to $started.
start() {
  local ns=$1 name=$2; shift 2
  local prof=()
  [ -n "${BENCH_PROFILE:-}" ] && prof=(--cpuprofile "$BENCH_PROFILE.$name")
  ip netns exec "$ns" "$bin" up "$@" "${prof[@]}" 2>"$work/$name.log" & started=$!
  pids+=("$started")
}
stop() { kill -TERM "$1"; wait "$1" 2>/dev/null || true; }
# shape RATE BURST: tbf on both veth ends; unshape removes it.
shape() { for ns in "$a" "$b"; do ip netns exec "$ns" tc qdisc replace dev eth0 root tbf rate "$1" burst "$2" latency 20ms; done; }
unshape() { for ns in "$a" "$b"; do ip netns exec "$ns" tc qdisc del dev eth0 root; done; }
wait_ping() {
  for _ in $(seq 100); do ip netns exec "$a" ping -c1 -W1 "$1" >/dev/null 2>&1 && return; sleep 0.2; done
  echo "no ping to $1" >&2; exit 1
}
rtt() { ip netns exec "$1" ping -q -c 50 -i 0.02 "$2" | awk -F/ '/^rtt/ {print $5}'; }
tput_retr() { # NS HOST PORT STREAMS [IPERF3-FLAGS]: "Mbit/s-received sender-retransmits"
  ip netns exec "$1" iperf3 -c "$2" -p "$3" -t "$secs" -P "$4" -f m "${@:5}" |
    awk '/sender/ {r=$(NF-1)} /receiver/ {v=$(NF-2)} END {print v, r}'
}
tput() { local v; v=$(tput_retr "$@"); echo "${v%% *}"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

rows=()
row() { # name raw tunnel [range of the pairs' ratios]
  local ratio
  ratio=$(awk -v r="$2" -v t="$3" 'BEGIN { if (r > 0 && t != "") printf "%.2f", t / r; else print "n/a" }')
  rows+=("$1|$2|$3|$ratio|${4:-}")
}

# paired NAME STREAMS: BENCH_PAIRS (default 3) runs of raw then tunnel,
# interleaved so that both see the same machine; the row is the pair with
# the median ratio, and the range of all the pairs' ratios. Sets $median
# (the tunnel's figure) and adds the daemons' CPU ticks and the tunnel's
# megabits to $ticks and $mbits.
paired() {
  local name=$1 streams=$2 r t k0 lines=()
  for _ in $(seq "${BENCH_PAIRS:-3}"); do
    r=$(tput "$a" 10.124.0.2 5201 "$streams")
    k0=$(( $(cpu_ticks "$pid_a") + $(cpu_ticks "$pid_b") ))
    t=$(tput "$a" "$ip_b" 5201 "$streams")
    ticks=$(( ticks + $(cpu_ticks "$pid_a") + $(cpu_ticks "$pid_b") - k0 ))
    mbits=$(awk -v m="$mbits" -v t="$t" 'BEGIN { print m + t }')
    lines+=("$(awk -v r="$r" -v t="$t" 'BEGIN { printf "%.4f %s %s", (r > 0 ? t / r : 0), r, t }')")
  done
  local sorted n range
  sorted=$(printf '%s\n' "${lines[@]}" | sort -n)
  n=${#lines[@]}
  read -r _ r t <<<"$(sed -n "$(( (n + 1) / 2 ))p" <<<"$sorted")"
  range=$(awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f-%.2f", lo, hi }' <<<"$sorted")
  row "$name" "$r" "$t" "$range"
  median=$t
}
ticks=0 mbits=0 cpu_per_gb=n/a mesh=
# report prints the table (and writes BENCH_JSON).
report() {
  printf '\n%-62s %12s %12s %8s  %s\n' scenario raw tunnel ratio "ratios of the ${BENCH_PAIRS:-3} pairs"
  for r in "${rows[@]}"; do IFS='|' read -r n raw tun ratio range <<<"$r"; printf '%-62s %12s %12s %8s  %s\n' "$n" "$raw" "$tun" "$ratio" "$range"; done
  printf '%-62s %12s\n' "daemon RSS after up, idle (MiB)" "$idle_rss"
  printf '%-62s %12s\n' "CPU s per GB, both daemons (kernel 1 stream)" "$cpu_per_gb"
  [ -z "$mesh" ] || while IFS='|' read -r name value; do printf '%-62s %12s\n' "$name" "$value"; done <<<"$mesh"
  if [ -n "${BENCH_JSON:-}" ]; then
    { echo '{"rows": ['; sep=''
      num() { [[ $1 =~ ^[0-9.]+$ ]] && echo "$1" || echo null; }
      for r in "${rows[@]}"; do IFS='|' read -r n raw tun ratio range <<<"$r"
        printf '%s{"scenario": "%s", "raw": %s, "tunnel": %s, "ratio": %s, "pairRatios": "%s"}\n' "$sep" "$n" "$(num "$raw")" "$(num "$tun")" "$(num "$ratio")" "$range"; sep=','
      done; printf '], "idleRSSMiB": %s, "cpuSecondsPerGB": %s, "mesh": "%s"}\n' "$(num "$idle_rss")" "$(num "$cpu_per_gb")" "$(tr '\n' ';' <<<"$mesh")"; } > "$BENCH_JSON"
  fi
}

ip netns exec "$b" iperf3 -s -D -p 5201 --pidfile "$work/iperf-b.pid" >/dev/null
sleep 0.3; pids+=("$(cat "$work/iperf-b.pid")")

# 0. The reference: wireguard-go between the same two hosts, on
# 10.125.0.0/24 over UDP port 51820, at its default MTU (1420).
wg=
if [ -x "$wgref" ]; then
  for end in a:1:2 b:2:1; do
    IFS=: read -r name self other <<<"$end"
    ns=${tag}-$name peer=$([ "$name" = a ] && echo b || echo a)
    ip netns exec "$ns" "$wgref" -i wgr0 -self "$name" -peer "$peer" -endpoint "10.124.0.$other:51820" \
      -allowed "10.125.0.$other/32" 2>"$work/wg-$name.log" & pids+=($!)
    for _ in $(seq 50); do ip -n "$ns" link show wgr0 >/dev/null 2>&1 && break; sleep 0.1; done
    ip -n "$ns" addr add "10.125.0.$self/24" dev wgr0; ip -n "$ns" link set wgr0 up
  done
  wg=10.125.0.2
  wait_ping "$wg"
fi

# 1. Kernel mode on both hosts.
# kernel_nodes SUFFIX: both kernel daemons up and settled (a LAN peer first
# reached over QUIC moves to TCP after 1 s).
kernel_nodes() {
  start "$a" "a$1" -i mba -c "$work/a.json"; pid_a=$started
  start "$b" "b$1" -i mbb -c "$work/b.json"; pid_b=$started
  wait_ping "$ip_b"
  sleep 3
}
kernel_nodes ""
idle_rss=$(rss_mib "$pid_a")
raw_rtt=$(rtt "$a" 10.124.0.2); tun_rtt=$(rtt "$a" "$ip_b")
row "ping RTT avg (ms)" "$raw_rtt" "$tun_rtt"
if [ -n "$wg" ]; then
  wg_rtt=$(rtt "$a" "$wg")
  row "wireguard-go ping RTT avg (ms)" "$raw_rtt" "$wg_rtt"
  row "Mynetwork vs wireguard-go, ping (ms)" "$wg_rtt" "$tun_rtt"
fi
# This VM's vCPUs halt when idle, and waking one exits to the host (guest
# halt polling is off): that costs a round trip through a userspace tunnel
# more than the tunnel's own work does. The same pings again while a busy
# loop at the lowest priority runs on every CPU, so that no vCPU halts:
# what the tunnel adds then is its own work.
for _ in $(seq "$(nproc)"); do nice -n 19 bash -c 'while :; do :; done' & hogs+=($!); done
raw_busy=$(rtt "$a" 10.124.0.2); tun_busy=$(rtt "$a" "$ip_b")
if [ -n "$wg" ]; then wg_busy=$(rtt "$a" "$wg"); fi
stop_hogs
row "ping RTT avg, no vCPU halts (ms)" "$raw_busy" "$tun_busy"
if [ -n "$wg" ]; then row "wireguard-go ping RTT avg, no vCPU halts (ms)" "$raw_busy" "$wg_busy"; fi
# Latency under load: ping while one iperf3 stream fills the shaped link,
# the queue an ssh session next to a large copy waits behind.
loaded_rtt() { # HOST [PORT [IPERF3-FLAGS]]: ping RTT avg (ms) to HOST during a 1-stream transfer
  local ip r
  for _ in 1 2 3; do
    ip netns exec "$a" iperf3 -c "$1" -p "${2:-5201}" -t 4 "${@:3}" >/dev/null 2>&1 & ip=$!
    sleep 1
    # An iperf3 that has ended already found the server still busy with
    # the previous test: try again, or the ping would be an idle one.
    if ! kill -0 "$ip" 2>/dev/null; then wait "$ip" || true; sleep 1; continue; fi
    r=$(rtt "$a" "$1"); wait "$ip" || true
    echo "$r"; return
  done
  echo "n/a"
}
# This machine's default congestion control is BBR, which keeps queues
# short by itself; most Linux systems default to CUBIC, which fills every
# queue that does not drop (see p2p/tunnel/codel.go). First on the fresh
# connection, as on a slow link; again below, after the fast rows have
# grown its buffers.
cubic_rows() { # WHEN
  row "ping under load, 100 Mbit/s, CUBIC, $1 (ms)" "$(loaded_rtt 10.124.0.2 5201 -C cubic)" "$(loaded_rtt "$ip_b" 5201 -C cubic)"
  if [ -n "$wg" ]; then row "wireguard-go ping under load, 100 Mbit/s, CUBIC, $1 (ms)" "$(loaded_rtt 10.124.0.2 5201 -C cubic)" "$(loaded_rtt "$wg" 5201 -C cubic)"; fi
}
loaded_rows() { # RATE: rows for the link as it is shaped now
  local raw tun
  raw=$(loaded_rtt 10.124.0.2); tun=$(loaded_rtt "$ip_b")
  row "ping under load, $1 (ms)" "$raw" "$tun"
  if [ -n "$wg" ]; then row "wireguard-go ping under load, $1 (ms)" "$raw" "$(loaded_rtt "$wg")"; fi
}
# The same two nodes restricted to QUIC (the path between sites), with
# ping under load at 100 Mbit/s and what one stream gets (the QUIC send
# gate must not cost it); then both as they were.
quic_rows() {
  stop "$pid_a"; stop "$pid_b"
  cp "$work/a.json" "$work/a-both.json"; cp "$work/b.json" "$work/b-both.json"
  listen_on "$work/a.json" 10.124.0.1 "" quic; listen_on "$work/b.json" 10.124.0.2 "" quic
  kernel_nodes q
  shape 100mbit 32kb
  row "ping under load, 100 Mbit/s, QUIC (ms)" "$(loaded_rtt 10.124.0.2)" "$(loaded_rtt "$ip_b")"
  row "ping under load, 100 Mbit/s, QUIC, CUBIC (ms)" "$(loaded_rtt 10.124.0.2 5201 -C cubic)" "$(loaded_rtt "$ip_b" 5201 -C cubic)"
  row "shaped 100 Mbit/s, QUIC, 1 stream, CUBIC (Mbit/s)" "$(tput "$a" 10.124.0.2 5201 1 -C cubic)" "$(tput "$a" "$ip_b" 5201 1 -C cubic)"
  unshape
  stop "$pid_a"; stop "$pid_b"
  mv "$work/a-both.json" "$work/a.json"; mv "$work/b-both.json" "$work/b.json"
  kernel_nodes r
}
if [ -n "${BENCH_LOADED_ONLY:-}" ]; then
  shape 100mbit 32kb
  loaded_rows "100 Mbit/s"
  row "ping under load, 100 Mbit/s, CUBIC (ms)" "$(loaded_rtt 10.124.0.2 5201 -C cubic)" "$(loaded_rtt "$ip_b" 5201 -C cubic)"
  unshape
  quic_rows
  report; exit 0
fi
shape 100mbit 32kb
cubic_rows "fresh"
unshape
paired "kernel TCP 1 stream (Mbit/s)" 1
kernel1=$median
if [ -n "$wg" ]; then
  wg1=$(tput "$a" "$wg" 5201 1)
  row "wireguard-go 1 stream (Mbit/s)" "$(tput "$a" 10.124.0.2 5201 1)" "$wg1"
  row "Mynetwork vs wireguard-go, 1 stream" "$wg1" "$kernel1"
fi
cpu_per_gb=$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v mbit="$mbits" -v s="$secs" \
  'BEGIN { gb = mbit * s / 8 / 1000; if (gb > 0) printf "%.2f", t / hz / gb; else print "n/a" }')
paired "kernel TCP 4 streams (Mbit/s)" 4
kernel4=$median
if [ -n "$wg" ]; then
  wg4=$(tput "$a" "$wg" 5201 4)
  row "wireguard-go 4 streams (Mbit/s)" "$(tput "$a" 10.124.0.2 5201 4)" "$wg4"
  row "Mynetwork vs wireguard-go, 4 streams" "$wg4" "$kernel4"
fi

# The underlay shaped to 1 Gbit/s with tbf on both veth ends.
shape 1gbit 256kb
read -r shaped_raw retr_raw <<<"$(tput_retr "$a" 10.124.0.2 5201 1)"
read -r shaped_tun retr_tun <<<"$(tput_retr "$a" "$ip_b" 5201 1)"
row "shaped 1 Gbit/s, 1 stream (Mbit/s)" "$shaped_raw" "$shaped_tun"
row "shaped 1 Gbit/s, TCP retransmits" "$retr_raw" "$retr_tun"
loaded_rows "1 Gbit/s"
shape 100mbit 32kb
loaded_rows "100 Mbit/s"
cubic_rows "warm"
unshape
quic_rows

# 1% random loss each way (no netem here: iptables statistic), dropped as
# packets arrive at either veth end. Not in OUTPUT: a packet dropped there
# fails its sendmsg with EPERM, which no wire loss does, and quic-go closes
# the whole connection on a failed send.
loss() {
  for ns in "$a" "$b"; do
    ip netns exec "$ns" iptables "$1" INPUT -i eth0 -m statistic --mode random --probability 0.01 -j DROP
  done
}
loss -A
paired "1% loss, 1 stream (Mbit/s)" 1
loss -D

# 1b. Both kernel nodes again at another MTU (the default is 1420 on
# Linux; 65000 was, and is what TUNs without offload use): one and four
# streams unshaped, and ping under load, so the choice is measured in one run.
other=${BENCH_OTHER_MTU:-65000}
if [ "$other" != off ]; then
  stop "$pid_a"; stop "$pid_b"
  listen_on "$work/a.json" 10.124.0.1 "$other"; listen_on "$work/b.json" 10.124.0.2 "$other"
  kernel_nodes 2
  r=$(tput "$a" 10.124.0.2 5201 1); t=$(tput "$a" "$ip_b" 5201 1)
  row "MTU $other: kernel TCP 1 stream (Mbit/s)" "$r" "$t"
  row "default MTU vs $other: 1 stream (Mbit/s)" "$t" "$kernel1"
  r=$(tput "$a" 10.124.0.2 5201 4); t=$(tput "$a" "$ip_b" 5201 4)
  row "MTU $other: kernel TCP 4 streams (Mbit/s)" "$r" "$t"
  row "default MTU vs $other: 4 streams (Mbit/s)" "$t" "$kernel4"
  shape 100mbit 32kb
  r=$(loaded_rtt 10.124.0.2); t=$(loaded_rtt "$ip_b")
  row "MTU $other: ping under load, 100 Mbit/s (ms)" "$r" "$t"
  unshape
  listen_on "$work/a.json" 10.124.0.1; listen_on "$work/b.json" 10.124.0.2
  stop "$pid_a"
  start "$a" a3 -i mba -c "$work/a.json"; pid_a=$started
fi

# 2. Kernel node A to userspace node B. B exposes its iperf3 server, and
# for part 3 an HTTP server too.
stop "$pid_b"
ip netns exec "$b" iperf3 -s -D -p 5202 -B 127.0.0.1 --pidfile "$work/iperf-b2.pid" >/dev/null
sleep 0.3; pids+=("$(cat "$work/iperf-b2.pid")")
mkdir -p "$work/www"; head -c 500M /dev/zero > "$work/www/big"
ip netns exec "$b" python3 -m http.server --bind 127.0.0.1 --directory "$work/www" 8080 >/dev/null 2>&1 & pids+=($!)
start "$b" bu -i mbb -c "$work/b.json" --userspace --socks5 off --expose 5202=127.0.0.1:5202 --expose 8080=127.0.0.1:8080; pid_b=$started
wait_ping "$ip_b"
sleep 3
# gVisor's TCP (Reno) uploading over a 100 Mbit/s link, and ping beside
# it: on the fresh connection, and after the fast rows.
upload_row() { # WHEN
  row "userspace upload: ping under load, 100 Mbit/s, $1 (ms)" "$(loaded_rtt 10.124.0.2 5201 -R -C reno)" "$(loaded_rtt "$ip_b" 5202 -R)"
}
shape 100mbit 32kb; upload_row fresh; unshape
row "kernel→userspace 1 stream (Mbit/s)" "$(tput "$a" 10.124.0.2 5201 1)" "$(tput "$a" "$ip_b" 5202 1)"
row "userspace→kernel 1 stream (Mbit/s)" "$(tput "$a" 10.124.0.2 5201 1 -R)" "$(tput "$a" "$ip_b" 5202 1 -R)"
shape 100mbit 32kb; upload_row warm; unshape

# 3. Userspace on both: A forwards a local port to B's exposed iperf3, and
# curl fetches a file through A's SOCKS5. Raw: the same on B's loopback.
stop "$pid_a"
start "$a" au -i mba -c "$work/a.json" --userspace --socks5 127.0.0.1:1080 --forward 127.0.0.1:5301=b:5202; pid_a=$started
for _ in $(seq 100); do ip netns exec "$a" "$bin" -i mba status 2>/dev/null | grep -q 'nodes: 1/1' && break; sleep 0.2; done
sleep 3
user1=$(tput "$a" 127.0.0.1 5301 1)
row "userspace 1 stream, forward (Mbit/s)" "$(tput "$b" 127.0.0.1 5202 1)" "$user1"
curl_mbit() { ip netns exec "$1" curl -s -o /dev/null -w '%{speed_download}' "${@:2}" | awk '{printf "%.0f", $1*8/1e6}'; }
row "userspace SOCKS5 curl 500MB (Mbit/s)" "$(curl_mbit "$b" http://127.0.0.1:8080/big)" "$(curl_mbit "$a" --proxy "$(ip netns exec "$a" "$bin" -i mba socks5-url)" http://b:8080/big)"
row "userspace vs kernel, 1 stream (Mbit/s)" "$kernel1" "$user1"

# The full mesh of BENCH_MESH_NODES (default 20) nodes, run after this
# script's own nodes are stopped, as bench-mesh.sh's "name|value" lines.
for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
pids=()
mesh=$(MYNETWORK_BIN="$bin" BENCH_MESH_SIZES="${BENCH_MESH_NODES:-20}" BENCH_MESH_FORMAT=lines "$(dirname "$0")/bench-mesh.sh")

report
