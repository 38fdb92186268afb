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
# With STANDBY=1 the primary has remote.standby = true and `mirrord standby` runs on the backup
# host's file, putting the epochs in place; it is stopped after each kill, before the takeover
# (the first round checks that a takeover is refused while it holds the file).
#
# Usage: host-failure.sh BIN_DIR   (root; BIN_DIR holds mirrord and mirrord-check; ROUNDS=20)
set -euo pipefail

bin=$(cd "${1:?usage: host-failure.sh BIN_DIR}" && pwd)
rounds=${ROUNDS:-20}
name=host-failure
[ "${STANDBY:-0}" = 1 ] && name=host-failure-standby
. "$(dirname "$0")/two-hosts.sh"

# Bad spares first, each refused at start in one line naming memory.spare, nothing written.
refused() {
  local what=$1 expect=$2 status=$3 out rc=0
  out=$(timeout 300 ip netns exec "$primary" "$bin/mirrord" --config "$dir/bad.conf" --once 2>&1) || rc=$?
  [ "$rc" = "$status" ] || fail "$what: exit $rc, not $status: $out"
  echo "$out" | grep -q "memory.spare: .*$expect" || fail "$what: no one line naming memory.spare and '$expect': $out"
  echo "$name: $what: refused, exit $rc: $(echo "$out" | grep 'memory.spare' | tail -1 | cut -c1-160)"
}
sed "s|spare = \"nbd://$addr_b:10809/spare\"|spare = \"nbd://$addr_b:10899/spare\"|" "$config" >"$dir/bad.conf"
refused "no server at start" "connect to nbd://$addr_b:10899/spare" 69
small=$dir/small.img
truncate -s $((export_bytes / 2)) "$small"
sed -e "s|exportname = $image|exportname = $small|" "$dir/nbd.conf" >"$dir/nbd-small.conf"
ip netns exec "$backup" nbd-server -C "$dir/nbd-small.conf" -p "$dir/nbd-small.pid" "$addr_b@10898"
wait_server "$primary" "$addr_b" 10898
sed "s|spare = \"nbd://$addr_b:10809/spare\"|spare = \"nbd://$addr_b:10898/spare\"|" "$config" >"$dir/bad.conf"
refused "an export too small" "the export has $((export_bytes / 2)) bytes" 1
kill "$(cat "$dir/nbd-small.pid")" 2>/dev/null || true

echo "$name: $rounds kills of the primary; spare $addr_b (export $((export_bytes >> 20)) MiB)"
took_over=0
before_first=0
for round in $(seq "$rounds"); do
  # A fresh export each round (its header zeroed, as an operator gives an export to mirrord): a
  # primary killed before its sync began must not leave the last round's epochs to take over.
  dd if=/dev/zero of="$image" bs=4096 count=2 conv=notrunc status=none
  start_standby
  start_primary
  # Every third round a moment of the sync (its full copy, passes and final blackout: ~1 s
  # here), the others a moment of the epochs (pauses, shipping, commits, the in-place writes).
  if [ $((round % 3)) = 1 ]; then
    wait_for "state duplexing (was starting)" 300
    moment_ms=$(((RANDOM * 32768 + RANDOM) % 700))
    after="the sync began"
  else
    wait_for "state replicating (was duplexing)" 300
    moment_ms=$(((RANDOM * 32768 + RANDOM) % 3000))
    after="replicating began"
  fi
  sleep "$(printf '%d.%03d' $((moment_ms / 1000)) $((moment_ms % 1000)))"
  kill -0 "$(cat "$dir/mirrord.pid")" 2>/dev/null || fail "round $round: mirrord exited early"
  # Where the primary was: its last line says which phase had ended.
  case "$(grep -oE 'state duplexing|full copy:|pass [0-9]+:|passes ended|first epoch:|state replicating' \
    "$dir/mirrord.out" | tail -1 || true)" in
    "state duplexing") state="in the full copy" ;;
    "full copy:" | pass*) state="in the passes" ;;
    "passes ended") state="in the final blackout or the first epoch's commit" ;;
    "first epoch:" | "state replicating") state="in the epochs" ;;
    *) state="starting" ;;
  esac
  kill_primary
  # The standby (STANDBY=1) stops on SIGTERM; a takeover on the file it holds is refused.
  if [ "${STANDBY:-0}" = 1 ] && [ "$round" = 1 ]; then
    rc=0
    out=$(timeout 300 "$bin/mirrord" takeover --config "$config" --image "$image" --staging "$staging" \
      --recover-only 2>&1) || rc=$?
    [ "$rc" = 75 ] && echo "$out" | grep -q "another mirrord process has this file" ||
      fail "a takeover beside a running standby: exit $rc, not 75 with one line: $out (standby: $(tail -3 "$dir/standby.out"))"
    echo "$name: a takeover while the standby holds the file: refused, exit 75"
  fi
  stop_standby
  released=$([ -f "$dir/released.log" ] && wc -l <"$dir/released.log" || echo 0)

  # The backup host: the file behind its nbd-server, brought to the last committed epoch.
  if out=$(timeout 300 "$bin/mirrord" takeover --config "$config" --image "$image" --staging "$staging" \
    --recover-only 2>&1); then
    took_over=$((took_over + 1))
    check=$(timeout 300 "$bin/mirrord-check" released --config "$config" --image "$image" --offset 12288 \
      --log "$dir/released.log" 2>&1) || fail "round $round (killed $moment_ms ms after $after, $state): $check"
    echo "$name: round $round: killed $moment_ms ms after $after ($state); $(echo "$out" | tail -1); $check"
  else
    # No committed epoch (or no header yet): killed before the sync's first epoch. Nothing may
    # have been released.
    echo "$out" | grep -qE "no committed epoch|no mirrord header" || fail "round $round: takeover failed: $out"
    [ "$released" -eq 0 ] || fail "round $round: $released epochs released, but the export has none committed"
    before_first=$((before_first + 1))
    echo "$name: round $round: killed $moment_ms ms after $after ($state), before the first epoch:" \
      "nothing released, takeover refused"
  fi
done
echo "$name: PASS: $rounds kills; $took_over taken over with 0 released stores lost, $before_first before the first epoch"
