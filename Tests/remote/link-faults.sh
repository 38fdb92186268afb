#!/usr/bin/env bash
# The link to the spare host fails under a running primary: slowed to 100 Mbit/s (tbf), packets to
# the server dropped for 2 s (nftables), the link set down for 2 s. The primary must stay up: on a
# slow link it keeps replicating (the lag grows, dirty-limit holds it); on a lost link it goes
# simplex ("spare host unreachable") within remote.timeout, and when the link is back it
# resynchronises incrementally (only what changed since the last committed epoch: far fewer
# frames than a full copy) and replicates again. At the end the primary is killed and the
# backup's takeover checked: nothing released was lost.
#
# Usage: link-faults.sh BIN_DIR   (root; BIN_DIR holds mirrord and mirrord-check)
set -euo pipefail

bin=$(cd "${1:?usage: link-faults.sh BIN_DIR}" && pwd)
name=link-faults
[ "${STANDBY:-0}" = 1 ] && name=link-faults-standby
# An outage here lasts ~4 s (remote.timeout, the fault, the backoff). With the default workload a
# tenth of the stores, and every DMA transfer, land anywhere in memory and dirty all of 64 MiB in a
# few seconds, so any resync would have to send everything; with rarer stray stores and a slower
# DMA engine the dirty set stays small, and the test shows what an incremental resync saves.
workload_extra='hot_share = 0.9995'
dma_extra='rate = "256KiB/s"'
. "$(dirname "$0")/two-hosts.sh"
frames=$((memory / 4096))

start_standby
start_primary
wait_for "state replicating (was duplexing)"
echo "$name: replicating to $addr_b"

# 1. A slow link: replication goes on, behind.
ip netns exec "$primary" tc qdisc add dev "$veth_p" root tbf rate 100mbit burst 32kbit latency 400ms
lost_before=$(grep -cF "spare host unreachable" "$dir/mirrord.out" || true)
epochs_before=$(wc -l <"$dir/released.log")
sleep 4
ip netns exec "$primary" tc qdisc del dev "$veth_p" root
epochs_slow=$(($(wc -l <"$dir/released.log") - epochs_before))
[ "$(grep -cF "spare host unreachable" "$dir/mirrord.out" || true)" -eq "$lost_before" ] ||
  fail "the spare was given up on a slow link"
[ "$epochs_slow" -gt 0 ] || fail "no epoch committed in 4 s at 100 Mbit/s"
echo "$name: 100 Mbit/s for 4 s: still replicating, $epochs_slow epochs committed meanwhile"

# A fault, then the link back: simplex, an incremental resync, replicating again.
fault_round() {
  local what=$1 cut=$2 heal=$3 resyncs
  resyncs=$(grep -cF "resynchronised incrementally" "$dir/mirrord.out" || true)
  local lost=$(grep -cF "spare host unreachable" "$dir/mirrord.out" || true)
  eval "$cut"
  wait_for "spare host unreachable" 60 "$lost"
  sleep 2
  eval "$heal"
  wait_for "resynchronised incrementally" 300 "$resyncs"
  local line sent
  line=$(grep -F "resynchronised incrementally" "$dir/mirrord.out" | tail -1)
  sent=$(echo "$line" | sed -n 's/.*incrementally: \([0-9]*\) frames in place.*/\1/p')
  [ -n "$sent" ] && [ "$sent" -lt $((frames / 2)) ] || fail "$what: the resync sent ${sent:-?} frames in place of a full copy of $frames"
  echo "$name: $what: simplex, then resynchronised: $sent frames in place of a full copy of $frames" \
    "($((sent * 100 / frames))%)"
}
fault_round "packets to the server dropped 2 s" \
  "ip netns exec $primary nft add table inet mirrordtest &&
   ip netns exec $primary nft add chain inet mirrordtest out '{ type filter hook output priority 0; }' &&
   ip netns exec $primary nft add rule inet mirrordtest out ip daddr $addr_b tcp dport 10809 drop" \
  "ip netns exec $primary nft delete table inet mirrordtest"
fault_round "link down 2 s" "ip -n $primary link set $veth_p down" "ip -n $primary link set $veth_p up"

# Replicating again: the primary dies now, and the backup takes over.
epochs=$(wc -l <"$dir/released.log")
for _ in $(seq 300); do [ "$(wc -l <"$dir/released.log")" -gt $((epochs + 2)) ] && break; sleep 0.1; done
kill_primary
stop_standby
result=$(takeover_and_check) || exit 1
echo "$name: killed after the faults; $result"
echo "$name: PASS"
