#!/usr/bin/env bash
# After a takeover the pair replicates the other way: the primary (host A) replicates to host B
# and is killed with SIGKILL; `mirrord takeover` on B runs the machine from B's export and, its
# configuration's memory.spare naming A's export, duplexes to it. A's export server is down when
# the takeover starts (A's host is still away): B must run simplex, retry, and once A's
# nbd-server is up, sync and replicate to it. Then B is killed too, and A takes over from its own
# export (a committed epoch of B's sync) and replicates back to B's; A is killed in turn and B's
# export recovers an epoch of A's sync. A memory.spare naming the export B took over is refused
# each time, while B runs on simplex. (Both namespaces share this machine's machine-id, so the
# export's owner record never refuses here: ExportRefusalTests covers a second failover's claim.)
#
# What it does not check: the released stores of B's run (the emulated CPUs restart their
# workload from its seed after a takeover: no CPU state is replicated, so the checker's
# replay does not apply).
#
# Usage: reverse.sh BIN_DIR   (root; BIN_DIR holds mirrord)
set -euo pipefail

bin=$(cd "${1:?usage: reverse.sh BIN_DIR}" && pwd)
name=reverse
. "$(dirname "$0")/two-hosts.sh"

# Host A's own export, for when it comes back as the spare host: a file of the same size.
image_a=/dev/shm/mirrord-$name-$tag-a.img
truncate -s "$export_bytes" "$image_a"
stop_b() { if [ -f "$dir/b.pid" ]; then kill -9 "$(cat "$dir/b.pid")" 2>/dev/null || true; fi; }
trap 'stop_b; rm -f "$image_a"; cleanup' EXIT
sed -e "s|exportname = $image|exportname = $image_a|" "$dir/nbd.conf" >"$dir/nbd-a.conf"

# B's configuration: the same machine, its spare A's export, its own state and control socket.
config_b=$dir/mirrord-b.conf
sed -e "s|spare = \"nbd://$addr_b:10809/spare\"|spare = \"nbd://$addr_p:10809/spare\"|" \
  -e "s|state_dir = \"$dir/state\"|state_dir = \"$dir/state-b\"|" \
  -e "s|release_log = \"$dir/released.log\"|release_log = \"$dir/released-b.log\"|" \
  -e "s|socket = \"$dir/control.sock\"|socket = \"$dir/control-b.sock\"|" "$config" >"$config_b"
grep -q "nbd://$addr_p:10809/spare" "$config_b" || fail "B's configuration does not name A's export"

# Waits until FILE has TEXT, for at most SECONDS (a hang detector).
wait_in() {
  local file=$1 text=$2 seconds=${3:-300} waited=0
  until grep -qF -- "$text" "$file" 2>/dev/null; do
    [ "$waited" -ge $((seconds * 10)) ] && fail "no '$text' after $seconds s: $(tail -5 "$file")"
    sleep 0.1
    waited=$((waited + 1))
  done
}

# Runs `mirrord takeover` in namespace NS with configuration CONF on IMAGE, its output in OUT and
# its PID in $dir/b.pid (one takeover runs at a time); waits until its CPUs run.
start_takeover() {
  local ns=$1 conf=$2 image_file=$3 out=$4
  ip netns exec "$ns" "$bin/mirrord" takeover --config "$conf" --image "$image_file" --staging "$staging" \
    >"$out" 2>&1 &
  echo $! >"$dir/b.pid"
  wait_in "$out" "took over from epoch"
}

# Kills the running takeover with SIGKILL (its host fails).
kill_takeover() {
  kill -9 "$(cat "$dir/b.pid")"
  wait "$(cat "$dir/b.pid")" 2>/dev/null || true
  rm -f "$dir/b.pid"
}

start_primary
wait_for "state replicating (was duplexing)"
sleep 1
kill_primary
echo "$name: A replicated to B and was killed"

# B takes over while A's host is away: the CPUs run at once, the duplex to A waits for it.
start_takeover "$backup" "$config_b" "$image" "$dir/b.out"
wait_in "$dir/b.out" "spare host unreachable"
echo "$name: B took over ($(grep -o 'takeover_ms [0-9.]*' "$dir/b.out" | head -1)); A's export away: simplex, retrying"

# A's host comes back as the spare host: its nbd-server up, B syncs and replicates to it.
ip netns exec "$primary" nbd-server -C "$dir/nbd-a.conf" -p "$dir/nbd-a.pid" "$addr_p@10809"
wait_in "$dir/b.out" "state replicating (was duplexing)"
sleep 1
kill -0 "$(cat "$dir/b.pid")" || fail "B exited"
echo "$name: B replicates to A's export"
kill_takeover

# A takes over from its own export (a committed epoch of B's sync) and replicates back to B's,
# which B owns since its own takeover: the host A took over from, so A may claim it.
start_takeover "$primary" "$config" "$image_a" "$dir/a.out"
wait_in "$dir/a.out" "state replicating (was duplexing)"
echo "$name: B killed; A took over from its export ($(grep -o 'takeover_ms [0-9.]*' "$dir/a.out" | head -1)) and replicates back to B's"
kill_takeover
out=$(timeout 300 "$bin/mirrord" takeover --config "$config_b" --image "$image" --staging "$staging" \
  --recover-only 2>&1) || fail "the takeover of B's export after A was killed again: $out"
echo "$out" | tail -1 | grep -q "recovered epoch" || fail "no epoch recovered from B's export: $out"
echo "$name: A killed too; B's export taken over: $(echo "$out" | tail -1 | cut -c1-120)"

# A memory.spare naming the export this host took over: refused each time, B runs on simplex.
config_self=$dir/mirrord-self.conf
sed -e "s|spare = \"nbd://$addr_p:10809/spare\"|spare = \"nbd://$addr_b:10809/spare\"|" "$config_b" >"$config_self"
dd if=/dev/zero of="$image" bs=4096 count=2 conv=notrunc status=none
start_primary
wait_for "state replicating (was duplexing)"
sleep 0.5
kill_primary
start_takeover "$backup" "$config_self" "$image" "$dir/self.out"
wait_in "$dir/self.out" "memory.spare names the export this host took over"
kill -0 "$(cat "$dir/b.pid")" || fail "a takeover whose memory.spare names its own export exited: $(tail -5 "$dir/self.out")"
grep -qF "state replicating" "$dir/self.out" && fail "replicated to the export it runs from"
kill -TERM "$(cat "$dir/b.pid")"
wait "$(cat "$dir/b.pid")" || fail "the takeover did not stop cleanly: $(tail -3 "$dir/self.out")"
rm -f "$dir/b.pid"
echo "$name: a memory.spare naming the taken-over export: refused, the machine ran on simplex"
echo "$name: PASS"
