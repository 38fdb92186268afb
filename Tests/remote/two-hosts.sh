# Sourced by the tests of Tests/remote: two "hosts" on this machine, network namespaces joined by
# a veth pair, Debian's nbd-server serving the spare's export file in one (the backup host),
# mirrord's configuration for the other (the primary). Names are unique to the run (its PID), so
# parallel runs do not meet; everything is removed at exit. Needs root.
#
# Before sourcing, workload_extra and dma_extra may add lines to the configuration's [workload]
# and [dma], remote_extra to its [remote], and nbd_generic_extra to nbd-server's [generic];
# spare_scheme (default nbd) is the URI's scheme (nbds for TLS). STANDBY=1 sets remote.standby:
# `mirrord standby` on the backup host puts the epochs in place (start_standby, stop_standby). A function before_backup, if
# defined, runs once dir and the addresses are set, before nbd-server's configuration is written
# (to make what those lines name: certificates for addr_b).
# Sets: dir, primary, backup, veth_p, veth_b, addr_p, addr_b, image, export_bytes, config.
# Defines: fail MESSAGE, wait_server NS ADDR PORT, start_primary (mirrord in the primary
# namespace; its output in $dir/mirrord.out, its PID in $dir/mirrord.pid), kill_primary,
# wait_for TEXT [SECONDS],
# start_standby and stop_standby (`mirrord standby` on the export's file, in the backup
# namespace; no-ops without STANDBY=1), takeover_and_check.

name=${name:-remote}
dir=$(mktemp -d "/tmp/mirrord-$name.XXXXXX")
tag=$$
primary=mp$tag
backup=mb$tag
veth_p=vp$tag
veth_b=vb$tag
subnet=$((tag % 200 + 20))
addr_p=10.$subnet.91.1
addr_b=10.$subnet.91.2

cleanup() {
  [ -f "$dir/mirrord.pid" ] && kill -9 "$(cat "$dir/mirrord.pid")" 2>/dev/null || true
  [ -f "$dir/standby.pid" ] && kill -9 "$(cat "$dir/standby.pid")" 2>/dev/null || true
  # Every server this run started (by its PID file, never by name).
  for pid in "$dir"/nbd*.pid; do [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true; done
  ip netns del "$primary" 2>/dev/null || true
  ip netns del "$backup" 2>/dev/null || true
  rm -rf "$dir"
  [ -n "${image:-}" ] && rm -f "$image"
}
trap cleanup EXIT
[ -n "${KEEP_OUT:-}" ] && trap "cp $dir/mirrord.out $KEEP_OUT 2>/dev/null; cleanup" EXIT

fail() {
  [ -f "$dir/mirrord.out" ] && tail -20 "$dir/mirrord.out" >&2
  echo "$name: FAIL: $*" >&2
  exit 1
}

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
journal=$((staging / 4096))
records=$(((48 + 8 * journal + 4095) / 4096 * 4096))
export_bytes=$((12288 + memory + 2 * (records + staging)))
# The spare is memory on its host: the export's file in /dev/shm (a flush then writes no disk).
image=/dev/shm/mirrord-$name-$tag.img
truncate -s "$export_bytes" "$image"

if declare -F before_backup >/dev/null; then before_backup; fi
mkdir -p "$dir/include"
cat >"$dir/nbd.conf" <<CONF
[generic]
    includedir = $dir/include
${nbd_generic_extra:-}
[spare]
    exportname = $image
    flush = true
    fua = true
CONF
# Waits until the NBD server at ADDR:PORT greets a client in namespace NS (its first 8 bytes,
# "NBDMAGIC"). nbd-server's PID file can appear before it listens, and a SYN sent before the new
# link carries it is lost: TCP resends it only after 1 s, as long as the primary's remote.timeout,
# and the primary's first connect then fails (seen once in CI). Fails after 60 s.
wait_server() {
  local ns=$1 addr=$2 port=$3 deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    [ "$(ip netns exec "$ns" timeout 2 bash -c "exec 3<>/dev/tcp/$addr/$port && head -c 8 <&3" 2>/dev/null)" = NBDMAGIC ] &&
      return 0
    sleep 0.2
  done
  fail "no NBD server answers at $addr:$port from $ns within 60 s"
}

ip netns exec "$backup" nbd-server -C "$dir/nbd.conf" -p "$dir/nbd.pid" "$addr_b@10809"
for _ in $(seq 100); do [ -s "$dir/nbd.pid" ] && break; sleep 0.1; done
wait_server "$primary" "$addr_b" 10809

config=$dir/mirrord.conf
cat >"$config" <<CONF
[memory]
size = "64MiB"
spare = "${spare_scheme:-nbd}://$addr_b:10809/spare"
state_dir = "$dir/state"

[mmu]
enabled = false

[workload]
churn = "0/s"
${workload_extra:-}

[dma]
${dma_extra:-}

[remote]
staging = "8MiB"
timeout = "1s"
release_log = "$dir/released.log"
standby = $([ "${STANDBY:-0}" = 1 ] && echo true || echo false)
${remote_extra:-}

[control]
socket = "$dir/control.sock"
CONF

start_primary() {
  rm -f "$dir/released.log" "$dir/mirrord.out"
  ip netns exec "$primary" "$bin/mirrord" --config "$config" >"$dir/mirrord.out" 2>&1 &
  echo $! >"$dir/mirrord.pid"
}

# The backup host's standby, on the export's file (with STANDBY=1): started before the primary
# (a sync begins only once the standby acknowledges it), stopped before a takeover (which it
# would refuse: the standby holds the file).
start_standby() {
  [ "${STANDBY:-0}" = 1 ] || return 0
  ip netns exec "$backup" "$bin/mirrord" standby --image "$image" >>"$dir/standby.out" 2>&1 &
  echo $! >"$dir/standby.pid"
}

stop_standby() {
  [ -f "$dir/standby.pid" ] || return 0
  local pid
  pid=$(cat "$dir/standby.pid")
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || fail "mirrord standby failed: $(tail -3 "$dir/standby.out")"
  rm -f "$dir/standby.pid"
}

kill_primary() {
  kill -9 "$(cat "$dir/mirrord.pid")" 2>/dev/null || true
  wait "$(cat "$dir/mirrord.pid")" 2>/dev/null || true
  rm -f "$dir/mirrord.pid"
}

# Waits until mirrord's output has TEXT (a fixed string) more than SKIP times (default 0);
# fails after SECONDS (default 300: a hang detector, generous for a busy machine).
wait_for() {
  local text=$1 seconds=${2:-300} skip=${3:-0} waited=0 seen
  # (No output file yet counts as no match: grep -c then prints nothing.)
  while seen=$(grep -cF -- "$text" "$dir/mirrord.out" 2>/dev/null || true); [ "${seen:-0}" -le "$skip" ]; do
    kill -0 "$(cat "$dir/mirrord.pid")" 2>/dev/null || fail "mirrord exited while waiting for '$text'"
    [ "$waited" -ge $((seconds * 10)) ] && fail "no '$text' after $seconds s"
    sleep 0.1
    waited=$((waited + 1))
  done
}

# The backup host takes over the export's file and checks the released stores against it. (Run
# stop_standby first in the test's own shell: a command substitution cannot wait for it.)
takeover_and_check() {
  local out check
  stop_standby
  out=$(timeout 300 "$bin/mirrord" takeover --config "$config" --image "$image" --staging "$staging" \
    --recover-only 2>&1) || fail "takeover: $out"
  check=$(timeout 300 "$bin/mirrord-check" released --config "$config" --image "$image" --offset 12288 \
    --log "$dir/released.log" 2>&1) || fail "$check"
  echo "$(echo "$out" | tail -1); $check"
}
