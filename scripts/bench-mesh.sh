#!/usr/bin/env bash
# N nodes (default 20) in N network namespaces on one bridge, each with all
# the others as peers: time to full mesh, every pair pinging, RSS per node.
# Prints "name|value" lines for bench.sh. Needs root.
set -euo pipefail

bin=${MYNETWORK_BIN:-bin/mynetwork}
n=${BENCH_MESH_NODES:-20}
tag=mnm$$
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for i in $(seq "$n"); do ip netns del "$tag-$i" 2>/dev/null || true; done
  ip netns del "$tag-br" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$tag-br"
ip -n "$tag-br" link add br0 type bridge; ip -n "$tag-br" link set br0 up
ids=() ips=()
for i in $(seq "$n"); do
  ns=$tag-$i
  ip netns add "$ns"; ip -n "$ns" link set lo up
  ip link add eth0 netns "$ns" type veth peer name "v$i" netns "$tag-br"
  ip -n "$tag-br" link set "v$i" master br0; ip -n "$tag-br" link set "v$i" up
  ip -n "$ns" addr add "10.126.0.$i/24" dev eth0; ip -n "$ns" link set eth0 up
  out=$("$bin" init -i "m$i" -c "$work/$i.json")
  ids[i]=$(grep -o '12D3Koo[1-9A-HJ-NP-Za-km-z]*' <<<"$out")
  ips[i]=$(grep -o 'mesh addresses: [0-9.]*' <<<"$out" | cut -d' ' -f3)
done
for i in $(seq "$n"); do
  peers=''
  for j in $(seq "$n"); do
    [ "$i" = "$j" ] && continue
    peers+="${peers:+, }{\"name\": \"n$j\", \"id\": \"${ids[j]}\", \"addrs\": [\"/ip4/10.126.0.$j/udp/8001/quic-v1\"]}"
  done
  sed -i "s|\"peers\": \[\]|\"bootstrapPeers\": [], \"mdns\": false, \"peers\": [$peers]|" "$work/$i.json"
done

start=$(date +%s.%N)
for i in $(seq "$n"); do
  ip netns exec "$tag-$i" "$bin" up -i "m$i" -c "$work/$i.json" 2>"$work/$i.log" & pids+=($!)
done
want="Connected VPN nodes: $((n - 1))/$((n - 1))"
for _ in $(seq 600); do
  full=1
  for i in $(seq "$n"); do
    ip netns exec "$tag-$i" "$bin" -i "m$i" status 2>/dev/null | grep -q "$want" || { full=0; break; }
  done
  [ "$full" = 1 ] && break
  sleep 0.5
done
elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
[ "$full" = 1 ] || elapsed="never"

ok=0 total=0
for i in $(seq "$n"); do
  for j in $(seq "$n"); do
    [ "$i" = "$j" ] && continue
    total=$((total + 1))
    ( ip netns exec "$tag-$i" ping -c 3 -i 0.2 -W 2 "${ips[j]}" >/dev/null 2>&1 && echo ok ) >>"$work/pings" &
  done
  wait_pings=$(jobs -p | grep -v -F "$(printf '%s\n' "${pids[@]}")" || true)
  [ -n "$wait_pings" ] && wait $wait_pings 2>/dev/null || true
done
ok=$(grep -c ok "$work/pings" || true)
rss=0 max=0
for pid in "${pids[@]}"; do
  r=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  rss=$((rss + r)); [ "$r" -gt "$max" ] && max=$r
done
echo "$n-node full mesh: time to full mesh (s)|$elapsed"
echo "$n-node full mesh: pairs pinging|$ok/$total"
echo "$n-node full mesh: RSS per node, mean/max (MiB)|$(awk -v s="$rss" -v n="$n" -v m="$max" 'BEGIN { printf "%.1f/%.1f", s / n / 1024, m / 1024 }')"
