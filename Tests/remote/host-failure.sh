#!/usr/bin/env bash
# The primary host dies: mirrord replicates to a spare on another host (nbd-server in a second
# network namespace, across a veth pair) and is killed with SIGKILL at ROUNDS random moments spread
# over the sync (full copy, passes, the final blackout), the first epoch and the epochs (pause,
# shipping, commit, apply). Each time `mirrord takeover --recover-only` brings the export's file
# to the last committed epoch, as the backup host would, and `mirrord-check released`, which knows
# nothing of mirrord's bookkeeping, replays each writer's seeded stores and checks that no store
# released to the outside (the release log, written only as each epoch commits) is missing from
# the memory taken over, and that the memory is one consistent moment of every writer.
#
# Usage: host-failure.sh BIN_DIR   (root; BIN_DIR holds mirrord and mirrord-check; ROUNDS=20)
set -euo pipefail

bin=$(cd "${1:?usage: host-failure.sh BIN_DIR}" && pwd)
rounds=${ROUNDS:-20}
# The longest a round may take to reach its moment, and a hang detector for each step.
limit=${HANG_LIMIT:-300}

dir=$(mktemp -d /tmp/mirrord-host-failure.XXXXXX)
tag=$$
primary=mhp$tag
backup=mhb$tag
veth_p=vhp$tag
veth_b=vhb$tag
subnet=$((tag % 200 + 20))
addr_p=10.$subnet.91.1
addr_b=10.$subnet.91.2

cleanup() {
  [ -f "$dir/mirrord.pid" ] && kill -9 "$(cat "$dir/mirrord.pid")" 2>/dev/null || true
  [ -f "$dir/nbd.pid" ] && kill "$(cat "$dir/nbd.pid")" 2>/dev/null || true
  ip netns del "$primary" 2>/dev/null || true
  ip netns del "$backup" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

fail() { echo "host-failure: FAIL: $*" >&2; exit 1; }

# Two hosts: namespaces joined by a veth pair.
ip netns add "$primary"
ip netns add "$backup"
ip link add "$veth_p" type veth peer name "$veth_b"
ip link set "$veth_p" netns "$primary"
ip link set "$veth_b" netns "$backup"
ip -n "$primary" addr add "$addr_p/24" dev "$veth_p"
ip -n "$backup" addr add "$addr_b/24" dev "$veth_b"
for ns in "$primary" "$backup"; do ip -n "$ns" link set lo up; done
ip -n "$primary" link set "$veth_p" up
ip -n "$backup" link set "$veth_b" up

# The machine: 64 MiB, the default hot-set workload at its default pace, DMA on; epochs of 10 ms
# staged in 8 MiB. The export: the image past its 12 KiB header, then two journal halves.
memory=$((64 << 20))
staging=$((8 << 20))
frames=$((memory / 4096))
journal=$((staging / 4096))
records=$(( (48 + 8 * journal + 4095) / 4096 * 4096 ))
export_bytes=$((12288 + memory + 2 * (records + staging)))
image=$dir/spare.img
truncate -s "$export_bytes" "$image"

mkdir -p "$dir/include"
cat >"$dir/nbd.conf" <<CONF
[generic]
    includedir = $dir/include
[spare]
    exportname = $image
    flush = true
    fua = true
CONF
ip netns exec "$backup" nbd-server -C "$dir/nbd.conf" -p "$dir/nbd.pid" "$addr_b@10809"
for _ in $(seq 100); do [ -s "$dir/nbd.pid" ] && break; sleep 0.1; done
[ -s "$dir/nbd.pid" ] || fail "nbd-server did not start"

cat >"$dir/mirrord.conf" <<CONF
[memory]
size = "64MiB"
spare = "nbd://$addr_b:10809/spare"
state_dir = "$dir/state"

[mmu]
enabled = false

[workload]
churn = "0/s"

[remote]
staging = "8MiB"
release_log = "$dir/released.log"

[control]
socket = "$dir/control.sock"
CONF

echo "host-failure: $rounds kills of the primary; spare $addr_b (export $((export_bytes >> 20)) MiB)"
took_over=0
before_first=0
for round in $(seq "$rounds"); do
  rm -f "$dir/released.log" "$dir/mirrord.out"
  # A fresh export each round: the header's first 8 KiB zeroed (a new sync from scratch).
  dd if=/dev/zero of="$image" bs=4096 count=3 conv=notrunc status=none
  ip netns exec "$primary" "$bin/mirrord" --config "$dir/mirrord.conf" >"$dir/mirrord.out" 2>&1 &
  echo $! >"$dir/mirrord.pid"
  # A moment from the start to well into the epochs: the sync takes ~1-3 s here.
  moment_ms=$(( (RANDOM * 32768 + RANDOM) % 5000 + 50 ))
  sleep "$(printf '%d.%03d' $((moment_ms / 1000)) $((moment_ms % 1000)))"
  kill -0 "$(cat "$dir/mirrord.pid")" 2>/dev/null || { cat "$dir/mirrord.out" >&2; fail "round $round: mirrord exited early"; }
  state=$(grep -o 'state [a-z]*' "$dir/mirrord.out" | tail -1 || true)
  kill -9 "$(cat "$dir/mirrord.pid")"
  wait "$(cat "$dir/mirrord.pid")" 2>/dev/null || true
  rm -f "$dir/mirrord.pid"
  released=$( [ -f "$dir/released.log" ] && wc -l <"$dir/released.log" || echo 0)

  # The backup host: the file behind its nbd-server, brought to the last committed epoch.
  if out=$(timeout "$limit" "$bin/mirrord" takeover --config "$dir/mirrord.conf" --image "$image" \
      --staging "$staging" --recover-only 2>&1); then
    took_over=$((took_over + 1))
    check=$(timeout "$limit" "$bin/mirrord-check" released --config "$dir/mirrord.conf" --image "$image" \
      --offset 12288 --log "$dir/released.log" 2>&1) || {
      echo "$out" >&2
      fail "round $round (killed at $moment_ms ms, ${state:-starting}): $check"
    }
    echo "host-failure: round $round: killed at $moment_ms ms (${state:-starting}); $(echo "$out" | tail -1); $check"
  else
    # No committed epoch: killed before the sync's first epoch. Nothing may have been released.
    echo "$out" | grep -q "no committed epoch" || fail "round $round: takeover failed: $out"
    [ "$released" -eq 0 ] || fail "round $round: $released epochs released, but the export has none committed"
    before_first=$((before_first + 1))
    echo "host-failure: round $round: killed at $moment_ms ms (${state:-starting}), before the first epoch: nothing released, takeover refused"
  fi
done
echo "host-failure: PASS: $rounds kills; $took_over taken over with 0 released stores lost, $before_first before the first epoch"
