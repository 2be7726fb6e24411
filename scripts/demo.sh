#!/usr/bin/env bash
# Rootless demo: two userspace Mynetwork nodes on loopback, explicit local
# addresses, no bootstrap peers, no mDNS. Node B exposes a small HTTP server;
# node A fetches it through its SOCKS5 proxy and through a port forward.
set -euo pipefail

bin=${MYNETWORK_BIN:-bin/mynetwork}
work=$(mktemp -d)
pids=()
tag=demo$$

cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
freeport() { # a loopback TCP port nobody listens on now
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
need() { command -v "$1" >/dev/null || { echo "the demo needs $1" >&2; exit 1; }; }
need curl
need python3

port_a=$(freeport) port_b=$(freeport) socks=$(freeport) fwd=$(freeport) web=$(freeport)

step "mynetwork init for node A and node B (no root needed)"
out_a=$("$bin" init -i "${tag}a" -c "$work/a.json"); echo "$out_a"
out_b=$("$bin" init -i "${tag}b" -c "$work/b.json"); echo "$out_b"
id_a=$(grep -o '12D3Koo[1-9A-HJ-NP-Za-km-z]*' <<<"$out_a")
id_b=$(grep -o '12D3Koo[1-9A-HJ-NP-Za-km-z]*' <<<"$out_b")

step "Add each other as peers; listen on loopback only; no bootstrap peers, no mDNS"
sed -i -e "/\"listenAddresses\"/,/\]/c\\  \"listenAddresses\": [\"/ip4/127.0.0.1/tcp/$port_a\", \"/ip4/127.0.0.1/udp/$port_a/quic-v1\"]," \
  -e "s|\"peers\": \[\]|\"bootstrapPeers\": [], \"mdns\": false, \"peers\": [{\"name\": \"b\", \"id\": \"$id_b\", \"addrs\": [\"/ip4/127.0.0.1/udp/$port_b/quic-v1\"]}]|" "$work/a.json"
sed -i -e "/\"listenAddresses\"/,/\]/c\\  \"listenAddresses\": [\"/ip4/127.0.0.1/tcp/$port_b\", \"/ip4/127.0.0.1/udp/$port_b/quic-v1\"]," \
  -e "s|\"peers\": \[\]|\"bootstrapPeers\": [], \"mdns\": false, \"peers\": [{\"name\": \"a\", \"id\": \"$id_a\"}]|" "$work/b.json"
grep -v privateKey "$work/a.json"

step "mynetwork mesh init on A: A can also admit machines by invitation (B stays a listed peer)"
"$bin" mesh init -i "${tag}a" -c "$work/a.json" --name a

step "A small HTTP server on B's machine, on 127.0.0.1:$web"
mkdir "$work/www"; echo "Hello from node B, across the mesh." > "$work/www/index.html"
python3 -m http.server --bind 127.0.0.1 --directory "$work/www" "$web" >/dev/null 2>&1 & pids+=($!)

step "mynetwork up --userspace on both: B exposes port 80 to its HTTP server; A runs SOCKS5 on :$socks and forwards :$fwd to b:80"
"$bin" up --userspace -i "${tag}b" -c "$work/b.json" --socks5 off --expose "80=127.0.0.1:$web" 2>"$work/b.log" & pids+=($!)
"$bin" up --userspace -i "${tag}a" -c "$work/a.json" --socks5 "127.0.0.1:$socks" --forward "127.0.0.1:$fwd=b:80" 2>"$work/a.log" & pids+=($!)
for _ in $(seq 100); do
  "$bin" -i "${tag}a" status 2>/dev/null | grep -q 'Connected VPN nodes: 1/1' && break
  sleep 0.1
done

step "curl --proxy \"\$(mynetwork socks5-url)\" http://b/ (the proxy wants the username and password A made; socks5-url prints its URL with them)"
proxy=$("$bin" -i "${tag}a" socks5-url)
for _ in $(seq 50); do curl -sf -m 2 --proxy "$proxy" http://b/ && break; sleep 0.2; done

step "curl http://127.0.0.1:$fwd/ (the forward)"
curl -sf -m 5 "http://127.0.0.1:$fwd/"

step "Invite a third node: 'mynetwork invite c' on A, 'mynetwork join TOKEN' on C, then C up; no config lists C"
port_c=$(freeport)
"$bin" init -i "${tag}c" -c "$work/c.json" >/dev/null
sed -i -e "/\"listenAddresses\"/,/\]/c\\  \"listenAddresses\": [\"/ip4/127.0.0.1/tcp/$port_c\"]," \
  -e "s|\"peers\": \[\]|\"bootstrapPeers\": [], \"mdns\": false, \"peers\": []|" "$work/c.json"
token=$("$bin" -i "${tag}a" invite c 2>/dev/null)
echo "$token"
"$bin" join -i "${tag}c" -c "$work/c.json" "$token"
"$bin" up --userspace -i "${tag}c" -c "$work/c.json" --socks5 off 2>"$work/c.log" & pids+=($!)
for _ in $(seq 100); do
  "$bin" -i "${tag}c" status 2>/dev/null | grep -q 'Connected VPN nodes: 1/1' && break
  sleep 0.1
done
"$bin" -i "${tag}c" ping -n 3 a

step "mynetwork status on node A"
"$bin" -i "${tag}a" status

step "Done: stopping the nodes"
