#!/usr/bin/env bash
# A full mesh of n kernel-mode nodes for each n in BENCH_MESH_SIZES
# (default "20 50 100"): n network namespaces on one bridge, each node with
# all the others as peers, no bootstrap peers and no mDNS. Each size is a
# fresh mesh, torn down before the next. Per size:
#   - the time from the first start until every node's status shows all
#     its peers connected (every node's config has "idleTimeout": "never");
#     with BENCH_MESH_IDLE_TIMEOUT (a duration such as 10m) every node's
#     config has it as its idleTimeout, the nodes connect on demand, and
#     this is the time until every node shows all its peers idle;
#   - idle cost over a window of BENCH_MESH_IDLE seconds (default 60: the
#     nodes ping each peer every 10 s and TCP keepalives go every 30 s, so
#     a multiple of 30), which opens BENCH_MESH_SETTLE seconds (default 30;
#     a 100-node mesh's traffic was steady 30-40 s after it was full) after
#     the full mesh: RSS per node (VmRSS at the window's end), CPU per node
#     as % of one core (utime+stime over the window), and traffic per node
#     per minute: the Ethernet frames, headers, ARP and ND included, that
#     leave and enter the node's veth, counted on the bridge side (rx_bytes
#     + tx_bytes of its port), so every byte between two nodes counts at
#     both; and the share of the nodes' connections to their peers that
#     are on QUIC at the window's end (the rest are on TCP);
#   - then, from n = 3, node 1 busy with two peers: it pings nodes 2 and 3
#     once a second each for BENCH_MESH_ACTIVE seconds (default 60; 0: no
#     such window), and its traffic per minute over that time is counted
#     as above (the pings and their replies included, about 2 x 2 frames a
#     second), so that what it costs beside its two active peers shows how
#     the background grows with n;
#   - then, the mesh idle since those windows, BENCH_MESH_PAIRS random ordered
#     pairs (default 100, all pairs if fewer): the system ping from one
#     node's namespace to the other's mesh IPv4, one request every 0.2 s
#     until the first reply (5 s at most); "first reply" is the time from
#     the first request to that reply, (seq - 1) * 0.2 s + its round trip.
# Prints a Markdown table, a row as each size ends (the smallest first),
# then a line per size on how each figure grows against the smallest's;
# BENCH_MESH_FORMAT=lines prints "name|value" lines instead (bench.sh
# reads those). Progress goes to stderr; BENCH_MESH_TRACE=1 adds what the
# mesh sent and its CPU every 10 s of the settling and the window.
#
# The kernel's neighbour tables are shared by all namespaces (1,024
# entries by default) and a full mesh of n namespaces needs about n*(n-1)
# of them: the run raises net.ipv{4,6}.neigh.default.gc_thresh1/2/3 and
# restores them on exit. Needs root, curl and ping.
set -Eeuo pipefail
export LC_ALL=C

bin=${MYNETWORK_BIN:-bin/mynetwork}
sizes=$(printf '%s\n' ${BENCH_MESH_SIZES:-20 50 100} | sort -n -u) # the smallest first
idle=${BENCH_MESH_IDLE:-60}
settle=${BENCH_MESH_SETTLE:-30}
npairs=${BENCH_MESH_PAIRS:-100}
active=${BENCH_MESH_ACTIVE:-60}
format=${BENCH_MESH_FORMAT:-markdown}
ondemand=${BENCH_MESH_IDLE_TIMEOUT:-} # the nodes' idleTimeout; none: every peer connected
interval=0.2 # between echo requests of one pair
tag=mnm$$
hz=$(getconf CLK_TCK)

[ "$(id -u)" = 0 ] || { echo "bench-mesh needs root: sudo make bench-mesh" >&2; exit 1; }
for n in $sizes; do
  [[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 2 ] && [ "$n" -le 1000 ] ||
    { echo "BENCH_MESH_SIZES: \"$n\" is not a number of nodes from 2 to 1000" >&2; exit 1; }
done
for v in "BENCH_MESH_IDLE=$idle" "BENCH_MESH_SETTLE=$settle" "BENCH_MESH_PAIRS=$npairs" "BENCH_MESH_ACTIVE=$active"; do
  [[ ${v#*=} =~ ^[0-9]+$ ]] || { echo "${v%%=*}: \"${v#*=}\" is not a whole number" >&2; exit 1; }
done
[ "$idle" -gt 0 ] || { echo "BENCH_MESH_IDLE: the idle window needs at least 1 s" >&2; exit 1; }
[ "$npairs" -gt 0 ] || { echo "BENCH_MESH_PAIRS: at least one pair" >&2; exit 1; }
[ -z "$ondemand" ] || [[ $ondemand =~ ^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$ ]] ||
  { echo "BENCH_MESH_IDLE_TIMEOUT: \"$ondemand\" is not a duration such as 10m" >&2; exit 1; }
[ "$format" = markdown ] || [ "$format" = lines ] ||
  { echo "BENCH_MESH_FORMAT: \"$format\" is neither markdown nor lines" >&2; exit 1; }
work=$(mktemp -d)

say() { echo "bench-mesh: $*" >&2; }

# The neighbour table limits, raised for the run; each is put back only if
# it still holds the value set here, so a run that raced another's leaves
# the other's in place.
sysctls=() old=() set=()
raise_neigh() {
  local fam k v i=0
  for fam in ipv4 ipv6; do
    for k in 1:4096 2:8192 3:16384; do
      sysctls[i]=net.$fam.neigh.default.gc_thresh${k%%:*}
      old[i]=$(sysctl -n "${sysctls[i]}")
      v=${k#*:}
      # Never lower a limit someone else raised further.
      if [ "${old[i]}" -lt "$v" ]; then sysctl -qw "${sysctls[i]}=$v"; set[i]=$v; else set[i]=${old[i]}; fi
      i=$((i + 1))
    done
  done
}
restore_neigh() {
  local i
  for i in "${!sysctls[@]}"; do
    [ "$(sysctl -n "${sysctls[i]}")" = "${set[i]}" ] && sysctl -qw "${sysctls[i]}=${old[i]}" || true
  done
}

# One mesh at a time: its nodes' PIDs and its namespaces.
pids=() nss=()
teardown() {
  local pid ns
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for ns in "${nss[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  pids=() nss=()
}
cleanup() {
  teardown
  restore_neigh
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'say "failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

now() { date +%s.%N; }
secs() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.1f", e - s }'; }
# med_max SCALE DIGITS: "median/max" of the numbers on stdin, each times
# SCALE; "n/a" without any.
med_max() {
  sort -g | awk -v s="$1" -v d="$2" '{ v[NR] = $1 * s }
    END { if (NR == 0) { print "n/a"; exit }
      m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%.*f/%.*f\n", d, m, d, v[NR] }'
}
# node_ip I: node I's address on the bridge (a /16, so up to 65,000 nodes).
node_ip() { echo "10.126.$(($1 / 256)).$(($1 % 256))"; }

# mesh N: makes, measures and tears down a mesh of N nodes; appends its
# figures to $results as "n|mode|full|nodesfull|ping|answered|rss|cpu|traffic|run|quic|busy".
results=()
mesh() {
  local n=$1 dir=$work/$1 br=$tag-$1-br t0 i j ns peers
  local ids=() ips=() ifs=()
  t0=$(now)
  mkdir "$dir"
  say "$n nodes: making namespaces and configs"
  # No IPv6 router solicitations from the namespaces' interfaces: with no
  # router to answer, a new one keeps sending them for minutes, and every
  # node of the bridge would count every one (2-7 KB per node per minute
  # at 20-100 nodes, all of an idle on-demand mesh's traffic).
  ip netns add "$br"; nss+=("$br"); no_solicit "$br"
  ip -n "$br" link add br0 type bridge; ip -n "$br" link set br0 up
  for i in $(seq "$n"); do
    ns=$tag-$1-$i
    ip netns add "$ns"; nss+=("$ns"); no_solicit "$ns"
    ip -n "$ns" link set lo up
    ip link add eth0 netns "$ns" type veth peer name "v$i" netns "$br"
    ip -n "$br" link set "v$i" master br0; ip -n "$br" link set "v$i" up
    ip -n "$ns" addr add "$(node_ip "$i")/16" dev eth0; ip -n "$ns" link set eth0 up
    # The control socket's folder is the machine's: names unique to this run.
    ifs[i]=m${$}x$i
    out=$("$bin" init -i "${ifs[i]}" -c "$dir/$i.json")
    ids[i]=$(grep -o '12D3Koo[1-9A-HJ-NP-Za-km-z]*' <<<"$out")
    ips[i]=$(grep -o 'mesh addresses: [0-9.]*' <<<"$out" | cut -d' ' -f3)
  done
  local extra='"idleTimeout": "never", ' mode='kernel, idleTimeout never'
  [ -z "$ondemand" ] || { extra="\"idleTimeout\": \"$ondemand\", "; mode="kernel, idleTimeout $ondemand"; }
  for i in $(seq "$n"); do
    peers=''
    for j in $(seq "$n"); do
      [ "$i" = "$j" ] && continue
      peers+="${peers:+, }{\"name\": \"n$j\", \"id\": \"${ids[j]}\", \"addrs\": [\"/ip4/$(node_ip "$j")/udp/8001/quic-v1\"]}"
    done
    sed -i "s|\"peers\": \[\]|\"bootstrapPeers\": [], \"mdns\": false, $extra\"peers\": [$peers]|" "$dir/$i.json"
  done

  say "$n nodes: starting"
  local start full=() left nfull=0 elapsed=never deadline
  start=$(now)
  for i in $(seq "$n"); do
    ip netns exec "$tag-$1-$i" "$bin" up -i "${ifs[i]}" -c "$dir/$i.json" 2>"$dir/$i.log" & pids+=($!)
  done
  # Every node asked until its status shows all its peers connected (on
  # demand: all idle); a node once full is not asked again. curl asks the
  # control API for the status that 'mynetwork status' prints: a Go client
  # per node and round is slow to start beside 100 starting nodes.
  local said=$start asked state=connected
  [ -z "$ondemand" ] || state=idle
  deadline=$(awk -v s="$start" -v n="$n" 'BEGIN { printf "%.0f", s + 60 + 3 * n }')
  left=$n
  while [ "$left" -gt 0 ] && awk -v d="$deadline" -v t="$(now)" 'BEGIN { exit !(t < d) }'; do
    # All at once: one after the other, a round over 100 busy nodes took
    # a minute, and the time to full mesh was known only to the round.
    asked=()
    for i in $(seq "$n"); do
      [ -n "${full[i]:-}" ] && continue
      peers_in "$state" "${ifs[i]}" >"$dir/$state.$i" & asked+=($!)
    done
    wait "${asked[@]}" || true
    for i in $(seq "$n"); do
      [ -n "${full[i]:-}" ] && continue
      if [ "$(cat "$dir/$state.$i")" = $((n - 1)) ]; then full[i]=1; left=$((left - 1)); fi
    done
    [ "$left" -gt 0 ] || break
    if awk -v s="$said" -v t="$(now)" 'BEGIN { exit !(t - s >= 5) }'; then
      said=$(now); say "$n nodes: $((n - left)) with every peer $state after $(secs "$start" "$said") s"
    fi
    sleep 0.2
  done
  nfull=$((n - left))
  [ "$left" = 0 ] && elapsed=$(secs "$start" "$(now)")
  say "$n nodes: $nfull with every peer $state after $(secs "$start" "$(now)") s"
  all_alive "$dir"

  # The idle window; with BENCH_MESH_TRACE=1, what the whole mesh sent and
  # its nodes' mean CPU every 10 s of it (and of the settling before it).
  local c0 c1 ports0 ports1 rss cpu traffic
  if [ -n "${BENCH_MESH_TRACE:-}" ]; then trace "$n" "$br" "$settle" settling; else sleep "$settle"; fi
  say "$n nodes: idle window of $idle s"
  c0=$(ticks); ports0=$(port_bytes "$br")
  if [ -n "${BENCH_MESH_TRACE:-}" ]; then trace "$n" "$br" "$idle" idle; else sleep "$idle"; fi
  all_alive "$dir"
  c1=$(ticks); ports1=$(port_bytes "$br")
  # Which transport each node's connection to each peer uses at the
  # window's end: one side of a pair first connected over QUIC closes it
  # to redial over TCP, but a redial on a busy machine can end on QUIC
  # again (the next move is 5 min later), and the window's costs are of
  # this mix.
  local quic
  quic=$(for i in $(seq "$n"); do status "${ifs[i]}" | grep -o '"addr":"[^"]*"' || true; done |
    awk '/quic/ { q++ } { a++ } END { if (a) printf "%.0f%%", 100 * q / a; else print "n/a" }')
  rss=$(awk '/^VmRSS/ { print $2 }' $(printf '/proc/%s/status ' "${pids[@]}") | med_max 0.0009765625 1)
  cpu=$(paste <(echo "$c0") <(echo "$c1") | awk '{ print $2 - $1 }' |
    med_max "$(awk -v hz="$hz" -v w="$idle" 'BEGIN { print 100 / hz / w }')" 2)
  traffic=$(join <(echo "$ports0") <(echo "$ports1") | awk '{ print $4 + $5 - $2 - $3 }' |
    med_max "$(awk -v w="$idle" 'BEGIN { print 60 / w / 1000 }')" 1)

  local busy
  busy=$(busy "$n" "$dir" "$br" "${ips[2]}" "${ips[3]:-}")

  # Random pairs, one after the other: the next ping's start-up would
  # otherwise share the CPUs with this one's round trip.
  say "$n nodes: pinging"
  local pairs answered=0 total ping
  pairs=$(for i in $(seq "$n"); do for j in $(seq "$n"); do [ "$i" = "$j" ] || echo "$i $j"; done; done | shuf -n "$npairs")
  total=$(wc -l <<<"$pairs")
  : >"$dir/first"
  while read -r i j; do
    ip netns exec "$tag-$1-$i" ping -n -c 1 -w 5 -i "$interval" "${ips[j]}" </dev/null 2>/dev/null |
      awk -v iv="$interval" -F'[ =]' '/ bytes from / { for (f = 1; f < NF; f++) { if ($f == "icmp_seq") s = $(f + 1); if ($f == "time") t = $(f + 1) }
        printf "%.3f\n", (s - 1) * iv * 1000 + t; exit }' >>"$dir/first" || true
  done <<<"$pairs"
  answered=$(wc -l <"$dir/first")
  ping=$(med_max 1 1 <"$dir/first")

  say "$n nodes: tearing down"
  teardown
  results+=("$n|$mode|$elapsed|$nfull|$ping|$answered/$total|$rss|$cpu|$traffic|$(secs "$t0" "$(now)")|$quic|$busy")
}
# busy N DIR BRIDGE-NS IP2 IP3: node 1 pings IP2 and IP3 (nodes 2 and 3)
# once a second each for $active seconds; prints node 1's traffic per
# minute meanwhile (KB/min), or n/a under 3 nodes or with no window.
busy() {
  local n=$1 dir=$2 br=$3 b0 b1 t0 t1 to pp=()
  if [ "$active" = 0 ] || [ "$n" -lt 3 ]; then echo n/a; return; fi
  say "$n nodes: node 1 busy with nodes 2 and 3 for $active s"
  b0=$(port_bytes "$br" | awk '$1 == "v1" { print $2 + $3 }'); t0=$(now)
  for to in "$4" "$5"; do
    ip netns exec "$tag-$n-1" ping -n -q -i 1 -c "$active" -w "$((active + 5))" "$to" >"$dir/busy.$to" 2>&1 </dev/null & pp+=($!)
  done
  wait "${pp[@]}" || true
  b1=$(port_bytes "$br" | awk '$1 == "v1" { print $2 + $3 }'); t1=$(now)
  say "$n nodes: node 1's pings answered: $(grep -ho '[0-9]* received' "$dir"/busy.* | paste -sd, -) of $active each"
  awk -v b=$((b1 - b0)) -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.1f\n", b * 60 / (t1 - t0) / 1000 }'
}
# ticks: each node's CPU ticks so far (utime + stime), in node order.
ticks() { awk '{ print $14 + $15 }' $(printf '/proc/%s/stat ' "${pids[@]}"); }
# trace N BRIDGE-NS SECONDS WHAT: sleeps SECONDS, saying every 10 s what
# the mesh's nodes sent in all (KB, frames) and their mean CPU.
trace() {
  local t=0 step b0 b1 k0 k1
  b0=$(port_bytes "$2" | awk '{ s += $2 } END { print s }'); k0=$(ticks | awk '{ s += $1 } END { print s }')
  while [ "$t" -lt "$3" ]; do
    step=$(( $3 - t < 10 ? $3 - t : 10 )); sleep "$step"; t=$((t + step))
    b1=$(port_bytes "$2" | awk '{ s += $2 } END { print s }'); k1=$(ticks | awk '{ s += $1 } END { print s }')
    say "$1 nodes, $4 ${t} s: the mesh sent $(( (b1 - b0) / 1000 )) KB in ${step} s; CPU per node $(awk -v k=$((k1 - k0)) -v hz="$hz" -v s="$step" -v n="$1" 'BEGIN { printf "%.2f", 100 * k / hz / s / n }')% of a core"
    b0=$b1 k0=$k1
  done
}
# peers_in STATE IFACE: how many peers the node of that interface has in
# STATE (connected, idle).
peers_in() { status "$2" | grep -o "\"$1\":true" | wc -l || true; }
# status IFACE: the node's status as JSON, or nothing.
status() { curl -s -m 5 --unix-socket "/run/mynetwork/$1.sock" http://mynetwork/v1/status || true; }
# no_solicit NS: the namespace's interfaces made from now on send no IPv6
# router solicitations (a setting of the namespace's own).
no_solicit() { ip netns exec "$1" sysctl -qw net.ipv6.conf.default.router_solicitations=0; }
# all_alive DIR: fails, with the end of its log, if a node has exited.
all_alive() {
  local i state
  for i in "${!pids[@]}"; do
    # An exited child stays a zombie (state Z) until it is waited for.
    state=$(awk '{ print $3 }' "/proc/${pids[i]}/stat" 2>/dev/null || true)
    [ -n "$state" ] && [ "$state" != Z ] && continue
    say "node $((i + 1)) exited; the end of its log:"
    tail -n 20 "$1/$((i + 1)).log" >&2
    exit 1
  done
}
# port_bytes BRIDGE-NS: "vI rx tx" for every port, sorted for join.
port_bytes() {
  ip netns exec "$1" sh -c 'cd /sys/class/net && for p in v*; do echo "$p $(cat "$p/statistics/rx_bytes") $(cat "$p/statistics/tx_bytes")"; done' | sort
}

# row R: prints one size's figures (R as mesh appends to $results) as
# soon as it has them, so a later size's failure keeps the earlier ones.
row() {
  local n mode full nfull ping answered rss cpu traffic run quic busy
  IFS='|' read -r n mode full nfull ping answered rss cpu traffic run quic busy <<<"$1"
  if [ "$format" = lines ]; then
    echo "$n-node full mesh: time to full mesh (s)|$full"
    echo "$n-node full mesh: connections on QUIC, the rest on TCP|$quic"
    echo "$n-node full mesh: random pairs answering ping|$answered"
    echo "$n-node full mesh: first ping reply, median/max (ms)|$ping"
    echo "$n-node full mesh: idle RSS per node, median/max (MiB)|$rss"
    echo "$n-node full mesh: idle CPU per node, median/max (% of a core)|$cpu"
    echo "$n-node full mesh: idle traffic per node, median/max (KB/min)|$traffic"
    echo "$n-node full mesh: traffic of a node with 2 active peers (KB/min)|$busy"
    return
  fi
  [ "$full" = never ] && full="never ($nfull/$n nodes full)"
  echo "| $n | $mode | $full | $quic | $answered | $ping | $rss | $cpu | $traffic | $busy | $run |"
}
# growth R0 R [RB]: one line on how R's medians (and its time to full
# mesh) compare with R0's, the smallest size's; a busy node's traffic
# with RB's, the smallest size that has one (R0's by default).
growth() {
  awk -v a="$1" -v b="$2" -v c="${3:-$1}" 'BEGIN {
    split(a, x, "|"); split(b, y, "|"); split(c, z, "|")
    split(x[5], xp, "/"); split(y[5], yp, "/"); split(x[7], xr, "/"); split(y[7], yr, "/")
    split(x[8], xc, "/"); split(y[8], yc, "/"); split(x[9], xt, "/"); split(y[9], yt, "/")
    printf "- %s nodes against %s (%.1fx the nodes, %.1fx the peers each): full mesh %s, first ping median %s, RSS median %s, idle CPU median %s, idle traffic median %s, a node with 2 active peers %s\n",
      y[1], x[1], y[1] / x[1], (y[1] - 1) / (x[1] - 1), r(x[3], y[3]), r(xp[1], yp[1]), r(xr[1], yr[1]), r(xc[1], yc[1]), r(xt[1], yt[1]), r(z[12], y[12])
  }
  function r(u, v) { return (u ~ /^[0-9.]+$/ && u > 0 && v ~ /^[0-9.]+$/) ? sprintf("%.1fx", v / u) : "n/a" }'
}

raise_neigh
if [ "$format" = markdown ]; then
  echo "| nodes | mode | full mesh (s) | on QUIC | pairs answering | first ping reply, median/max (ms) | RSS per node, median/max (MiB) | idle CPU per node, median/max (% of a core) | idle traffic per node, median/max (KB/min) | a node with 2 active peers (KB/min) | run (s) |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
fi
for n in $sizes; do
  mesh "$n"
  row "${results[-1]}"
done
if [ "$format" = markdown ] && [ "${#results[@]}" -gt 1 ]; then
  echo
  base=''
  for r in "${results[@]}"; do [[ -z $base && ${r##*|} != n/a ]] && base=$r; done
  for r in "${results[@]:1}"; do growth "${results[0]}" "$r" "${base:-${results[0]}}"; done
fi
