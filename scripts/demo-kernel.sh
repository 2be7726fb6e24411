#!/usr/bin/env bash
# Kernel-mode demo: two Mynetwork nodes in two network namespaces joined by a
# veth pair (no route out), following the README's tutorial. Needs root.
set -euo pipefail

bin=${MYNETWORK_BIN:-bin/mynetwork}
tag=mnd$$
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

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "demo-kernel needs root (it creates network namespaces and TUN devices): sudo make demo-kernel" >&2
  exit 1
fi

step "Two hosts: namespaces $a (10.123.0.1) and $b (10.123.0.2), one veth between them"
ip netns add "$a"; ip netns add "$b"
ip link add eth0 netns "$a" type veth peer name eth0 netns "$b"
ip -n "$a" addr add 10.123.0.1/24 dev eth0; ip -n "$b" addr add 10.123.0.2/24 dev eth0
for ns in "$a" "$b"; do ip -n "$ns" link set lo up; ip -n "$ns" link set eth0 up; done

step "mynetwork init on each host"
out_a=$("$bin" init -i ms0 -c "$work/a.json"); echo "$out_a"
out_b=$("$bin" init -i ms1 -c "$work/b.json"); echo "$out_b"
id_a=$(grep -o '12D3Koo[1-9A-HJ-NP-Za-km-z]*' <<<"$out_a")
id_b=$(grep -o '12D3Koo[1-9A-HJ-NP-Za-km-z]*' <<<"$out_b")
ip_a=$(grep -o 'mesh addresses: [0-9.]*' <<<"$out_a" | cut -d' ' -f3)
ip_b=$(grep -o 'mesh addresses: [0-9.]*' <<<"$out_b" | cut -d' ' -f3)

step "Add each other as peers (and no public bootstrap peers, no mDNS: this is a demo)"
sed -i "s|\"peers\": \[\]|\"bootstrapPeers\": [], \"mdns\": false, \"peers\": [{\"name\": \"b\", \"id\": \"$id_b\", \"addrs\": [\"/ip4/10.123.0.2/udp/8001/quic-v1\"]}]|" "$work/a.json"
sed -i "s|\"peers\": \[\]|\"bootstrapPeers\": [], \"mdns\": false, \"peers\": [{\"name\": \"a\", \"id\": \"$id_a\"}]|" "$work/b.json"
cat "$work/a.json" | grep -v privateKey

step "sudo mynetwork up on each host"
ip netns exec "$a" "$bin" up -i ms0 -c "$work/a.json" 2>"$work/a.log" & pids+=($!)
ip netns exec "$b" "$bin" up -i ms1 -c "$work/b.json" 2>"$work/b.log" & pids+=($!)
for _ in $(seq 50); do
  ip netns exec "$a" "$bin" -i ms0 status 2>/dev/null | grep -q 'Connected VPN nodes: 1/1' && break
  sleep 0.2
done

step "ping $ip_b (host b's mesh address) from host a"
ip netns exec "$a" ping -c 3 "$ip_b"

step "mynetwork status on host a"
ip netns exec "$a" "$bin" -i ms0 status

step "Done: cleaning up"
