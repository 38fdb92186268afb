#!/usr/bin/env bash
# Pacemaker decides who runs (issue 26): two hosts, each a systemd-nspawn container booting systemd
# on a private bridge, with Corosync 3 (knet, two_node, a 1 s token, 200 ms consensus), Pacemaker
# 2.1, pcs, nbd-server and mirrord installed by `make install`. The promotable clone
# ocf:mirrord:mirrord (ocf/mirrord) runs the machine on the Promoted host, replicating in epochs to
# the other's export; fencing is on, with the test's own fence agent (fence_nspawn), whose requests
# this script answers as a power switch would: SIGKILL of the victim container's PID 1.
#
# 1. ocf-tester on the agent, both roles (inside a node, against a local nbd-server as the peer).
# 2. The cluster (cluster.pcs), then ROUNDS (5) host failures: the Promoted host's container killed
#    (SIGKILL of its PID 1) during the sync (one that does not end, so that it is caught in: no
#    epoch is committed, the survivor starts the machine anew), and while replicating under the default and
#    a heavy workload. Each time: the time from the kill to the CPUs running on the survivor (the journal's
#    "took over" line), the epoch taken over, and `mirrord-check released` on the survivor's export
#    file (the takeover maps it copy-on-write: the file keeps the epoch taken over) against the
#    release log, kept on a directory shared with this side so that it outlives the primary: 0
#    released stores may be lost. Then the dead host boots again and must rejoin as Unpromoted,
#    and the machine taken over must replicate the other way, to its export. Then a sixth kill:
#    of that machine, taken over in turn from the other export.
# 3. A planned switch-over (crm_resource --move --promoted), timed, the release log checked.
# 4. The primary's mirrord process killed (SIGKILL of the machine unit's main PID; the host runs
#    on): the machine must run again from the newest committed epoch, on the other host's export,
#    not anew (nor from the primary's own, older export): the release log checked, 0 lost.
# 5. Split brain: the link between the hosts cut (not the hosts): never two primaries.
#
# Usage (root): Tests/cluster/cluster-test.sh [BIN_DIR]   (BIN_DIR: mirrord-check, default
#   .build/release). Prints one RESULT line per kill and "cluster: PASS" or FAIL lines.
# Env: TEST_ROOTFS_CACHE (/var/cache/mirrord-test), MIRROR, ROUNDS (5), KEEP=1 (keep $RUN: logs,
#   journals), CLUSTER_TEST_HANG_SECONDS (120: the least any wait waits; a hang detector),
#   CLUSTER_TEST_STAGE (a staging root of an earlier make install, instead of running it),
#   PCMK_DEBUG (Pacemaker daemons whose debug lines the nodes' journals keep, with KEEP=1),
#   CONSENSUS (Corosync's consensus timeout, ms).
#
# Host footprint while running: netns mcl<pid> (a bridge and veths, nothing routed outside), two
# private mount namespaces, cgroups mcl<pid>-node{1,2}, files under /tmp/mcl<pid>; all removed at
# exit. The cached root is only read (--volatile=overlay).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(cd "${1:-$ROOT/.build/release}" && pwd)
CACHE=${TEST_ROOTFS_CACHE:-/var/cache/mirrord-test}
# The nodes' packages: the cluster stack, ocf-tester's xmllint, and what mirrord needs at run time.
PKGS="libsystemd0 libnbd0 nbd-server corosync pacemaker pacemaker-cli-utils pcs resource-agents libxml2-utils"
ROOTFS=$CACHE/cluster-bookworm-$(printf %s "$PKGS" | cksum | cut -d' ' -f1)
MIRROR=${MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
ROUNDS=${ROUNDS:-5}
# Corosync's consensus timeout: after a lost token (1 s), how long the survivor waits before it
# forms the new membership. Its default, 1.2 x token, is for three hosts or more; corosync.conf(5):
# "for two node clusters, a consensus larger than the join timeout [50 ms] but less than token is
# safe". 200 ms (0.2 x token, cman's rule for two nodes) sees a host's loss ~1 s sooner.
CONSENSUS=${CONSENSUS:-200}
HANG=${CLUSTER_TEST_HANG_SECONDS:-120}
TAG=mcl$$
RUN=/tmp/$TAG
NETNS=$TAG
SUBNET=10.236.$(($$ % 200 + 20))
UNIT=mirrord-ocf                  # the agent's unit prefix (its default)
declare -A NSPAWN=() LEADER=()    # per node: systemd-nspawn's PID, the container's PID 1 (host PIDs)
FAILS=0 RESULTS=() RESPONDER=""
T0=$EPOCHREALTIME

usec() { echo "${EPOCHREALTIME//[.,]/}"; }
now() { awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}'; }
since() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b-a}'; }
ms_since() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.0f", 1000 * (b-a)}'; }
log() { echo "[$(now)s] $*"; }
# The first node whose container runs. No pipe into `head`: with both running, the loop's second
# echo can meet the pipe closed (EPIPE), and under pipefail and errexit the assignment ends the run.
first_live() { for n in 1 2; do if [ -n "${LEADER[$n]:-}" ]; then echo "$n"; return 0; fi; done; }
fail() { echo "cluster: FAIL: $*"; FAILS=$((FAILS + 1)); }
die() { fail "$*"; exit 1; }
# wait_until T CMD…: polls CMD until it holds, for T seconds but never less than HANG (a hang
# detector, not a performance bound: a machine busy with builds must still pass).
wait_until() {
  local t=$1; shift; ((t < HANG)) && t=$HANG
  local end=$(($(usec) + t * 1000000))
  until "$@" >/dev/null 2>&1; do (($(usec) > end)) && return 1; sleep 0.1; done
}
running() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [ "${s:0:1}" != Z ]; }
inn() { local n=$1; shift; nsenter --target "${LEADER[$n]}" --all -- "$@"; }   # run inside node n
cg_roots() {
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo /sys/fs/cgroup; return; fi
  [ -d /sys/fs/cgroup/systemd ] && echo /sys/fs/cgroup/systemd
  [ -f /sys/fs/cgroup/unified/cgroup.controllers ] && echo /sys/fs/cgroup/unified
  return 0
}
cg_remove() {
  local r
  for r in $(cg_roots); do
    [ -d "$r/$1" ] || continue
    for _ in $(seq 10); do
      find "$r/$1" -depth -type d -exec rmdir {} + 2>/dev/null || true
      [ -d "$r/$1" ] || break
      sleep 0.2
    done
    [ ! -d "$r/$1" ] || fail "cgroup $r/$1 left behind: $(find "$r/$1" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs)"
  done
}

# ---------------------------------------------------------------- nodes
boot_node() { # n: boot node n (host name node$n, address $SUBNET.$n); wait for systemd; install
  local n=$1 c
  local cg=$TAG-node$n
  cg_remove "$cg"
  # nsenter --net (not `ip netns exec`, which remounts /sys) puts nspawn in our netns, where
  # --network-bridge finds br0; unshare --mount and a tmpfs keep /run/systemd private; a cgroup of
  # our own keeps nspawn out of the host's cgroup root (the host's PID 1 is not systemd).
  CG_ROOTS="$(cg_roots | tr '\n' ' ')" nsenter --net="/run/netns/$NETNS" -- \
    unshare --mount --propagation private -- /bin/sh -c '
      set -e; cg=$1; shift
      for r in $CG_ROOTS; do mkdir -p "$r/$cg"; echo $$ >"$r/$cg/cgroup.procs"; done
      mount -t tmpfs -o mode=0755 tmpfs /run/systemd
      exec systemd-nspawn --register=no --keep-unit "$@"' sh "$cg" \
    --quiet --link-journal=no --volatile=overlay --read-only -D "$ROOTFS" -M "$TAG-n$n" --hostname="node$n" \
    --network-veth --network-bridge=br0 --bind-ro="$RUN/corosync:/etc/corosync" \
    --bind-ro="$RUN/hostname$n:/etc/hostname" --bind-ro="$RUN/machine-id$n:/etc/machine-id" \
    --bind-ro="$RUN/stage:/opt/mirrord-stage" --bind-ro="$RUN/conf$n:/srv/conf" \
    --bind="$RUN/share:/srv/share" --bind="$RUN/export$n:/srv/export" \
    --console=read-only --boot >>"$RUN/node$n.console" 2>&1 </dev/null &
  NSPAWN[$n]=$!
  LEADER[$n]=""
  leader() {
    for c in $(pgrep -P "${NSPAWN[$n]}"); do
      [ "$(cat "/proc/$c/comm" 2>/dev/null)" = systemd ] && { LEADER[$n]=$c; return 0; }
    done
    return 1
  }
  wait_until 30 leader || { tail -20 "$RUN/node$n.console"; die "node$n: container PID 1 did not appear"; }
  leader
  echo "${LEADER[$n]}" >"$RUN/leader$n"   # for the power switch (fence_responder)
  booted() { case $(inn "$n" systemctl is-system-running 2>/dev/null) in running | degraded) return 0 ;; esac; return 1; }
  wait_until 60 booted || { inn "$n" systemctl --failed --no-pager || true; die "node$n: systemd did not boot"; }
  inn "$n" ip addr add "$SUBNET.$n/24" dev host0
  inn "$n" ip link set host0 up
  # mirrord as `make install` put it in the staging root, and the test's fence agent.
  inn "$n" sh -c 'cp -a /opt/mirrord-stage/. / && install -m 0755 /opt/mirrord-stage/fence_nspawn /usr/sbin/fence_nspawn'
}
start_cluster_on() {
  # PCMK_DEBUG=daemon[,daemon…] (e.g. pacemaker-controld): their debug lines in the journal.
  [ -z "${PCMK_DEBUG:-}" ] || inn "$1" sh -c "echo PCMK_debug=$PCMK_DEBUG >>/etc/default/pacemaker"
  inn "$1" systemctl start corosync pacemaker ||
    { inn "$1" journalctl -u corosync -u pacemaker --no-pager | tail -30; die "node$1: start corosync/pacemaker"; }
}
# The node's container is gone (killed): reap systemd-nspawn, remove its cgroup.
reap_node() {
  local n=$1
  wait "${NSPAWN[$n]}" 2>/dev/null || true
  NSPAWN[$n]="" LEADER[$n]=""
  rm -f "$RUN/leader$n"
  cg_remove "$TAG-node$n"
}
stop_node() { # n: orderly halt (SIGTERM to systemd-nspawn), SIGKILL after 30 s
  local n=$1 p=${NSPAWN[$1]:-}
  [ -n "$p" ] || return 0
  if running "$p"; then
    kill -TERM "$p" 2>/dev/null || true
    wait_until 30 eval "! running $p" || kill -KILL "${LEADER[$n]:-$p}" "$p" 2>/dev/null || true
  fi
  reap_node "$n"
}

# ---------------------------------------------------------------- the power switch
# Answers fence_nspawn's requests in $RUN/share/fence: "off NODE" is a SIGKILL of that container's
# PID 1 (as a power cut: every process of the host dies at once); "status NODE" and "on NODE" say
# whether it runs (the test itself powers nodes on, by booting them). Each request is logged with
# its time in $RUN/fence.log.
fence_responder() {
  local req id action node pid answer
  while true; do
    for req in "$RUN"/share/fence/*.req; do
      [ -e "$req" ] || continue
      id=${req%.req}
      read -r action node <"$req" || true
      rm -f "$req"
      pid=$(cat "$RUN/leader${node#node}" 2>/dev/null || true)
      case $action in
        off)
          if [ -n "$pid" ] && running "$pid"; then kill -KILL "$pid"; answer=ok; echo "$EPOCHREALTIME off $node killed PID $pid"
          else answer=ok; echo "$EPOCHREALTIME off $node was off"; fi ;;
        status | on)
          if [ -n "$pid" ] && running "$pid"; then answer=ok; else answer=off; fi
          [ "$action" = on ] && [ "$answer" = off ] && answer="fail: powered on by the test only"
          echo "$EPOCHREALTIME $action $node: $answer" ;;
        *) answer="fail: unknown action $action"; echo "$EPOCHREALTIME $answer" ;;
      esac >>"$RUN/fence.log"
      echo "$answer" >"$id.tmp" && mv "$id.tmp" "$id.ack"
    done
    sleep 0.02
  done
}

teardown() {
  local rc=$?
  trap - EXIT INT TERM HUP
  log "teardown"
  [ -n "$RESPONDER" ] && { kill "$RESPONDER" 2>/dev/null || true; wait "$RESPONDER" 2>/dev/null || true; }
  for n in 1 2; do
    if [ -n "${LEADER[$n]:-}" ] && { [ "$FAILS" != 0 ] || [ "$rc" != 0 ] || [ "${KEEP:-0}" = 1 ]; }; then
      inn "$n" journalctl -b --no-pager -o short-precise >"$RUN/node$n.journal" 2>&1 || true
    fi
  done
  for n in 1 2; do stop_node "$n"; done
  ip netns del "$NETNS" 2>/dev/null || true
  local left=0 r
  ! ip netns list 2>/dev/null | grep -qw "$NETNS" || { echo "leftover netns $NETNS"; left=1; }
  ! grep -qF "$ROOTFS" /proc/mounts || { echo "leftover mount: $(grep -F "$ROOTFS" /proc/mounts)"; left=1; }
  for r in $(cg_roots); do ! ls -d "$r/$TAG"-* >/dev/null 2>&1 || { echo "leftover cgroups in $r"; left=1; }; done
  [ $left = 0 ] || fail "teardown left state behind"
  if [ ${#RESULTS[@]} -gt 0 ]; then
    echo "RESULT  kill  moment (workload/phase+delay, state)          killed  survivor  left_s  fenced_s  promote_s  cpus_running_s  takeover_ms  epoch  released_lost"
    printf '%s\n' "${RESULTS[@]}"
  fi
  if [ "$FAILS" != 0 ] || [ "$rc" != 0 ] || [ "${KEEP:-0}" = 1 ]; then
    log "logs kept in $RUN (node*.journal, switch-over.node*.journal, kill*.node*.journal, fence.log, pcs.log)"
  else
    rm -rf "$RUN"
  fi
  log "cluster test took $(now)s"
  if [ "$FAILS" = 0 ] && [ "$rc" = 0 ]; then echo "cluster: PASS"; exit 0; fi
  echo "cluster: $FAILS failure(s)"
  exit 1
}
trap teardown EXIT
trap 'fail interrupted; exit 1' INT TERM HUP
trap '' PIPE   # a closed stdout (| head) must not kill the script before its teardown

[ "$(id -u)" = 0 ] || { echo "cluster: FAIL: must run as root"; exit 1; }
[ ! -d /run/systemd/system ] || { echo "cluster: FAIL: written for a host whose PID 1 is not systemd (see the recipe)"; exit 1; }
[ -x "$BIN/mirrord-check" ] || { echo "cluster: FAIL: no $BIN/mirrord-check (make remote-test builds it)"; exit 1; }
mkdir -p "$CACHE" "$RUN/corosync" "$RUN/share/fence" "$RUN/conf1" "$RUN/conf2" "$RUN/export1" "$RUN/export2"

# ---------------------------------------------------------------- 1. the nodes' root (cached)
if [ "$(cat "$ROOTFS/.mirrord-cluster-ready" 2>/dev/null)" != "$PKGS" ]; then
  log "debootstrap minbase bookworm and $PKGS (once; cached in $ROOTFS)"
  NEW=$ROOTFS.new
  rm -rf "$NEW"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,procps,iproute2 bookworm "$NEW" "$MIRROR" \
    >"$RUN/debootstrap.log" 2>&1 || die "debootstrap (see $RUN/debootstrap.log)"
  cp /etc/apt/sources.list.d/debian.sources "$NEW/etc/apt/sources.list.d/" 2>/dev/null && rm -f "$NEW/etc/apt/sources.list"
  cp -L /etc/resolv.conf "$NEW/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' >"$NEW/usr/sbin/policy-rc.d"   # apt starts no service in the root
  chmod 755 "$NEW/usr/sbin/policy-rc.d"
  # corosync and pacemaker are started by the test (after the address is set); pcsd is not used;
  # nbd-server runs under the agent, with a configuration of its own.
  unshare --mount --propagation private -- /bin/sh -c '
    set -e; R=$1; shift
    mount -t proc proc "$R/proc"; mount --rbind /dev "$R/dev"; mount -t sysfs sysfs "$R/sys"
    chroot "$R" /bin/sh -c "set -e; export DEBIAN_FRONTEND=noninteractive
      apt-get update -q && apt-get install -y -q --no-install-recommends $*
      systemctl disable corosync pacemaker e2scrub_reap || true
      systemctl mask pcsd pcsd-ruby nbd-server
      apt-get clean"' sh "$NEW" $PKGS >"$RUN/apt-rootfs.log" 2>&1 || die "apt-get in the root (see $RUN/apt-rootfs.log)"
  rm -rf "$NEW/usr/sbin/policy-rc.d" "$NEW/etc/resolv.conf" "$NEW"/var/lib/apt/lists/*
  : >"$NEW/etc/resolv.conf"
  echo "$PKGS" >"$NEW/.mirrord-cluster-ready"
  rm -rf "$ROOTFS" && mv "$NEW" "$ROOTFS"
fi

# ---------------------------------------------------------------- 2. mirrord, as make install puts it
if [ -n "${CLUSTER_TEST_STAGE:-}" ]; then
  # A staging root an earlier `make install DESTDIR=…` made (to iterate on the test), with the
  # resource agent as it is now.
  log "staging root $CLUSTER_TEST_STAGE (the agent from ocf/mirrord)"
  cp -a "$CLUSTER_TEST_STAGE" "$RUN/stage"
  sed -e 's|^OCF_RESKEY_bindir_default=.*|OCF_RESKEY_bindir_default=/usr/local/bin|' "$ROOT/ocf/mirrord" \
    >"$RUN/stage/usr/lib/ocf/resource.d/mirrord/mirrord"
else
  log "make install DESTDIR=$RUN/stage"
  make -C "$ROOT" --no-print-directory install DESTDIR="$RUN/stage" PREFIX=/usr/local >"$RUN/install.log" 2>&1 ||
    die "make install (see $RUN/install.log)"
fi
[ -x "$RUN/stage/usr/lib/ocf/resource.d/mirrord/mirrord" ] || die "make install did not install the resource agent"
install -m 0755 "$ROOT/Tests/cluster/fence_nspawn" "$RUN/stage/fence_nspawn"
install -m 0755 "$ROOT/Tests/cluster/cluster.pcs" "$RUN/stage/cluster.pcs"

# The machine: 64 MiB, the emulated MMU off (a remote spare needs it), the default workload with
# DMA, epochs of 10 ms staged in 8 MiB, the release log on the directory shared with this side.
# The heavy workload: every CPU storing at full speed all over memory.
cat >"$RUN/default.conf" <<'EOF'
[memory]
size = "64MiB"
state_dir = "/var/lib/mirrord"

[mmu]
enabled = false

[workload]
churn = "0/s"

[remote]
staging = "8MiB"
timeout = "1s"
release_log = "/srv/share/released.log"

[control]
socket = "/run/mirrord/control.sock"
EOF
sed -e 's|^churn = .*|churn = "0/s"\npattern = "uniform"\nrate = "unlimited"|' "$RUN/default.conf" >"$RUN/heavy.conf"
# The kill in the sync needs a sync that is still running when the test sees it (64 MiB converge
# in ~0.5 s, about when the cluster reports the promotion; a sync of 30 passes ended before the kill
# in 2 of 6 runs): the default workload and a sync that never ends (no frame left dirty is the
# only end, and with no convergence control slowing them the workload's CPUs dirty tens of frames
# a pass; a throttle of 99 % emptied the dirty set in 7 passes). The survivor's machine, started
# anew after the kill, reads the default configuration, put back at the kill.
cat "$RUN/default.conf" - >"$RUN/sync.conf" <<'EOF'

[duplex]
threshold_frames = 0
blackout_target = "0"
convergence = "none"
max_passes = 100000
min_progress = 0
EOF
# The same machine on both hosts; each its own release log, on the directory shared with this
# side: a run of mirrord begins its log anew, and the machine taken over (which replicates too)
# must not remove the log of the run it took over before this side has checked it.
use_conf() {
  local n
  for n in 1 2; do
    sed -e "s|/srv/share/released.log|/srv/share/released-node$n.log|" "$RUN/$1.conf" >"$RUN/conf$n/mirrord.conf.new"
    mv "$RUN/conf$n/mirrord.conf.new" "$RUN/conf$n/mirrord.conf"
  done
}
use_conf default
memory=$((64 << 20)) staging=$((8 << 20))
records=$(((48 + 8 * (staging / 4096) + 4095) / 4096 * 4096))
export_bytes=$((12288 + memory + 2 * (records + staging)))

# ---------------------------------------------------------------- 3. network, corosync, nodes
ip netns add "$NETNS"
ip -n "$NETNS" link set lo up
ip -n "$NETNS" link add br0 type bridge
ip -n "$NETNS" link set br0 up
cat >"$RUN/corosync/corosync.conf" <<EOF
totem {
    version: 2
    cluster_name: mirrord
    transport: knet
    token: 1000
    consensus: $CONSENSUS
    crypto_cipher: aes256
    crypto_hash: sha256
}
nodelist {
    node {
        name: node1
        nodeid: 1
        ring0_addr: $SUBNET.1
    }
    node {
        name: node2
        nodeid: 2
        ring0_addr: $SUBNET.2
    }
}
quorum {
    provider: corosync_votequorum
    two_node: 1
}
logging {
    to_stderr: yes
    to_syslog: yes
    to_logfile: no
    timestamp: hires
}
EOF
head -c 256 /dev/urandom >"$RUN/corosync/authkey"
chmod 400 "$RUN/corosync/authkey"
for n in 1 2; do
  echo "node$n" >"$RUN/hostname$n"
  # Each host its own machine-id: the export's owner record tells hosts apart by it.
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$RUN/machine-id$n" && echo >>"$RUN/machine-id$n"
  : >"$RUN/share/fence/node-node$n"   # the plugs fence_nspawn lists
done
: >"$RUN/fence.log"
fence_responder &
RESPONDER=$!

log "booting node1 and node2"
boot_node 1
boot_node 2
log "both booted; mirrord $(inn 1 mirrord --version 2>/dev/null) installed in each"
start_cluster_on 1
start_cluster_on 2
online() { inn "$1" crm_mon -1 | grep -Eq "Online: \[ (node1 node2|node2 node1) \]"; }
wait_until 90 online 1 || { inn 1 crm_mon -1 || true; die "the nodes did not both come online"; }
log "cluster up: $(inn 1 crm_mon -1 | grep Online: | xargs); token $(inn 1 corosync-cmapctl -g runtime.config.totem.token | awk '{print $NF}') ms, consensus $(inn 1 corosync-cmapctl -g runtime.config.totem.consensus | awk '{print $NF}') ms"

# ---------------------------------------------------------------- 4. ocf-tester, both roles
# Inside node1, before the cluster has the resource: its own units (unit=), its own export, and as
# the peer's export a second nbd-server on node1's loopback. Promote starts the machine anew (the
# export holds no epoch), replicating to it; demote stops it cleanly (a last epoch); again. The
# peer's export is copy-on-write (nbd-server drops a client's writes when it disconnects): a
# peer that kept the demoted machine's last epoch would hold a newer one than this host's, and
# promote here would rightly be refused (ocf-tester has no peer to promote instead).
inn 1 sh -c "truncate -s $export_bytes /tmp/ocft-peer.img && printf '[generic]\n[spare]\n    exportname = /tmp/ocft-peer.img\n    copyonwrite = true\n' >/tmp/ocft-nbd.conf &&
  systemd-run --quiet --unit=ocft-peer -p Type=forking nbd-server -C /tmp/ocft-nbd.conf 127.0.0.1@10810" ||
  die "ocf-tester's peer export"
ocft() {
  inn 1 ocf-tester "$@" -n t-mirrord -o config=/srv/conf/mirrord.conf -o image=/tmp/ocft-export.img -o nbd_port=10811 \
    -o peer_uri=nbd://127.0.0.1:10810/spare -o unit=mirrord-ocft /usr/lib/ocf/resource.d/mirrord/mirrord 2>&1
}
t=$EPOCHREALTIME
if out=$(ocft) && grep -q 'passed all tests' <<<"$out"; then
  log "ocf-tester ocf:mirrord:mirrord: $(tail -1 <<<"$out") ($(since "$t" "$EPOCHREALTIME") s: meta-data valid against ra-api-1.dtd; start, monitor, promote, demote, stop)"
else
  echo "$out" | sed 's/^/    /'
  ocft -v | tail -40 | sed 's/^/    /' || true
  fail "ocf-tester ocf:mirrord:mirrord"
fi
inn 1 systemctl stop ocft-peer.service || true
inn 1 rm -f /tmp/ocft-peer.img /tmp/ocft-export.img

# ---------------------------------------------------------------- 5. the resources
log "configuring the cluster (Tests/cluster/cluster.pcs)"
inn 1 env CIB=/tmp/cluster.cib CONF=/srv/conf/mirrord.conf IMAGE=/srv/export/export.img NODES="node1 node2" \
  PEERS="node1=nbd://$SUBNET.1:10809/spare node2=nbd://$SUBNET.2:10809/spare" SHARE=/srv/share \
  /opt/mirrord-stage/cluster.pcs >"$RUN/pcs.log" 2>&1 || { cat "$RUN/pcs.log"; die "cluster.pcs"; }

# released_upto EPOCH NODE [LOG]: NODE's release log (or LOG, a copy of it) up to the epoch taken
# over, in $RUN/released.check (a later run on NODE would begin the log anew; the records of a run
# rise to EPOCH at most).
released_upto() { # EPOCH NODE (the primary's) [LOG]
  awk -v e="$1" '{ n = $0; sub(/^epoch=/, "", n); sub(/ .*/, "", n); n += 0
    if (n > e || n < last) exit; last = n; print }' "${3:-$RUN/share/released-node$2.log}" >"$RUN/released.check" 2>/dev/null ||
    : >"$RUN/released.check"
}

mon() { inn "$1" crm_mon -1 2>/dev/null; }
promoted_on() { mon "$1" | grep -oP ' Promoted: \[ node\K[12](?= \])'; }
unpromoted_on() { mon "$1" | grep -oP ' Unpromoted: \[ node\K[12](?= \])'; }
state_on() { inn "$1" mirrorctl status --json 2>/dev/null | sed -n 's/^  "state" *: *"\([a-z]*\)".*/\1/p'; }
is_state() { [ "$(state_on "$1")" = "$2" ]; }
# Whether node n runs the machine: its unit active and not a takeover waiting to be asked (a state
# that cannot be read counts as running). SEEN: the state read ("unread" when none could be).
runs_machine() {
  SEEN=inactive
  inn "$1" systemctl is-active --quiet "$UNIT-machine.service" 2>/dev/null || return 1
  SEEN=$(state_on "$1")
  SEEN=${SEEN:-unread}
  [ "$SEEN" != waiting ]
}
pair_up() { # n: node n sees one Promoted running the machine in STATE and one Unpromoted
  local p
  p=$(promoted_on "$1") && [ -n "$(unpromoted_on "$1")" ] && is_state "$p" "$2"
}

# ---------------------------------------------------------------- 6. host failures
# A fresh pair for a round: the clone stopped, both exports' headers zeroed (as an operator hands
# an export to mirrord) and the release log emptied, the round's configuration in place, the clone
# started: one host promoted, running the machine anew and syncing to the other's export.
fresh_pair() { # conf
  local n=$1
  inn "$n" pcs resource disable mirrord-clone --wait=120 >>"$RUN/pcs.log" 2>&1 || die "pcs resource disable"
  local e
  for e in "$RUN"/export1/export.img "$RUN"/export2/export.img; do
    [ -f "$e" ] && dd if=/dev/zero of="$e" bs=4096 count=2 conv=notrunc status=none
  done
  rm -f "$RUN"/share/released-node*.log
  use_conf "$2"
  inn "$n" pcs resource enable mirrord-clone >>"$RUN/pcs.log" 2>&1 || die "pcs resource enable"
}

# One kill: round, the configuration, the moment (sync | replicating), the delay after it (ms).
host_failure() {
  local r=$1 conf=$2 moment=$3 delay_ms=$4 live p s t_kill line t_cpus t_left t_fence t_promote tk epoch check released
  live=$(first_live)
  fresh_pair "$live" "$conf"
  if [ "$moment" = sync ]; then
    # p: the node seen running the sync.
    wait_until 60 eval 'p=$(promoted_on '"$live"') && is_state "$p" duplexing' || { mon "$live" || true; die "kill $r: no sync began"; }
  else
    wait_until 60 pair_up "$live" replicating || { mon "$live" || true; die "kill $r: the pair did not replicate"; }
    # crm_mon may show the clone in transition for a moment: asked until it names the Promoted node.
    wait_until 60 eval 'p=$(promoted_on '"$live"') && [ -n "$p" ]' || { mon "$live" || true; die "kill $r: no Promoted node"; }
  fi
  s=$((3 - p))
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  local before
  before=$(state_on "$p")
  t_kill=$EPOCHREALTIME
  kill -KILL "${LEADER[$p]}"   # the power cut: every process of node$p dies at once
  [ "$conf" != sync ] || use_conf default
  reap_node "$p"
  # The case is the moment it names: a kill meant for the sync that came after it tested nothing new.
  [ "$moment" != sync ] || [ "$before" = duplexing ] ||
    { fail "kill $r: meant for the sync, but node$p was '$before' at the kill"; return 1; }
  # The survivor: fences node$p (fence_nspawn; the responder finds it off), promotes its instance,
  # and the agent takes over from its export.
  wait_until 60 eval '[ "$(promoted_on '"$s"')" = '"$s"' ]' || { mon "$s" || true; fail "kill $r: node$s not Promoted"; return 1; }
  local j
  j=$(inn "$s" journalctl -o short-unix --no-pager --since "@${t_kill%[.,]*}" 2>/dev/null)
  line=$(grep -m1 'Members left' <<<"$j" || true)
  t_left=$( [ -n "$line" ] && since "$t_kill" "${line%% *}" || echo "?")
  line=$(awk -v t="$t_kill" -v node="node$p" '$1 > t && $2 == "off" && $3 == node { print; exit }' "$RUN/fence.log")
  t_fence=$( [ -n "$line" ] && since "$t_kill" "${line%% *}" || echo "?")
  t_promote=$(since "$t_kill" "$(inn "$s" stat -c %.9Y /run/$UNIT/machine.started 2>/dev/null || echo "$t_kill")")
  wait_until 30 eval 'inn '"$s"' journalctl -u '"$UNIT"'-machine.service -o cat --no-pager | grep -qE "took over from epoch|state duplexing"' || true
  j=$(inn "$s" journalctl -u "$UNIT-machine.service" -o short-unix --no-pager --since "@${t_kill%[.,]*}" 2>/dev/null)
  if line=$(grep -m1 'takeover_ms' <<<"$j"); then
    t_cpus=$(since "$t_kill" "${line%% *}")
    tk=$(grep -oP 'takeover_ms \K[0-9.]+' <<<"$line")
    epoch=$(grep -oP 'took over from epoch \K[0-9]+' <<<"$line")
  else
    # No committed epoch: the primary died in its first sync, nothing was released, the survivor
    # started the machine anew (its duplex begins as its CPUs run).
    line=$(grep -m1 'state duplexing' <<<"$j" || true)
    t_cpus="$(since "$t_kill" "${line%% *}") (anew)"
    tk=- epoch=none
  fi
  released=$( [ -f "$RUN/share/released-node$p.log" ] && wc -l <"$RUN/share/released-node$p.log" || echo 0)
  if [ "$epoch" = none ]; then
    [ "$released" = 0 ] || fail "kill $r: $released epochs released, but the survivor found none to take over"
    check="nothing released (killed before the first epoch)"
    lost=0
  elif released_upto "$epoch" "$p" && check=$("$BIN/mirrord-check" released --config "$RUN/conf$p/mirrord.conf" \
      --image "$RUN/export$s/export.img" --offset 12288 --log "$RUN/released.check" 2>&1); then
    lost=0
  else
    fail "kill $r: $check"
    lost="?"
  fi
  # Replicating for a second or more, the primary released epochs: a check of none proves nothing.
  [ "$moment" = sync ] || [ -s "$RUN/released.check" ] || fail "kill $r: no released record to check"
  RESULTS+=("$(printf 'RESULT  %-4s  %-44s  node%s   node%s     %-6s  %-8s  %-9s  %-14s  %-11s  %-5s  %s' \
    "$r" "$conf/$moment+${delay_ms}ms($before)" "$p" "$s" "$t_left" "$t_fence" "$t_promote" "$t_cpus" "$tk" "$epoch" "$lost")")
  local what=$conf
  [ "$conf" = sync ] && what="default workload, a sync that does not end" || what="$conf workload"
  log "kill $r ($what, ${delay_ms} ms into $moment, node$p $before): node$s CPUs running after ${t_cpus} s" \
    "(corosync lost node$p ${t_left} s, fenced ${t_fence} s, promote began ${t_promote} s, takeover_ms $tk); epoch $epoch; $check"
  # With KEEP=1, the survivor's journal of the failover (the dead host's is gone with its boot).
  [ "${KEEP:-0}" != 1 ] ||
    inn "$s" journalctl -o short-precise --no-pager --since "@${t_kill%[.,]*}" >"$RUN/kill$r.node$s.journal" 2>&1 || true
  # The dead host powers on again (a fresh overlay: /run and the CIB empty; its export file kept)
  # and must rejoin as Unpromoted, the machine staying where it runs.
  boot_node "$p"
  start_cluster_on "$p"
  wait_until 90 eval '[ "$(unpromoted_on '"$s"')" = '"$p"' ] && [ "$(promoted_on '"$s"')" = '"$s"' ]' ||
    { mon "$s" || true; fail "kill $r: node$p did not rejoin as Unpromoted"; return 1; }
  log "kill $r: node$p rebooted and rejoined as Unpromoted; node$s still Promoted ($(state_on "$s"))"
  # The machine replicates the other way once the rejoined host serves its export: taken over
  # (mirrord takeover duplexes to memory.spare, which the agent sets to the peer's export) or
  # started anew with the peer away (mirrord --spare-later: its export holds no committed epoch
  # here, so it is synced to), it retries a spare host that is away after 1, 2, 4 … 30 s.
  local t_join=$EPOCHREALTIME
  wait_until 60 is_state "$s" replicating ||
    { fail "kill $r: node$s does not replicate to node$p's export ($(state_on "$s"))"; return 1; }
  log "kill $r: node$s replicates the other way, to node$p's export, $(since "$t_join" "$EPOCHREALTIME") s after the rejoin"
}

# A second host failure, of the machine taken over: the Promoted host, which took over and
# replicates back to the other's export, is killed; the other takes over from its own export, at
# an epoch of that replication. Its released stores are not checked: the emulated CPUs restart
# their workload from its seed at a takeover (no CPU state is replicated), so the checker's
# replay of the seeded stores does not apply to the second run.
second_failure() {
  local live p s t_kill j line t_cpus tk epoch
  live=$(first_live)
  wait_until 60 eval 'p=$(promoted_on '"$live"') && [ -n "$p" ]' || { fail "second failure: no Promoted node"; return 1; }
  s=$((3 - p))
  is_state "$p" replicating || { fail "second failure: node$p does not replicate ($(state_on "$p"))"; return 1; }
  sleep 1
  t_kill=$EPOCHREALTIME
  kill -KILL "${LEADER[$p]}"
  reap_node "$p"
  wait_until 60 eval '[ "$(promoted_on '"$s"')" = '"$s"' ]' || { mon "$s" || true; fail "second failure: node$s not Promoted"; return 1; }
  wait_until 30 eval 'inn '"$s"' journalctl -u '"$UNIT"'-machine.service -o cat --no-pager | grep -q "took over from epoch"' || true
  j=$(inn "$s" journalctl -u "$UNIT-machine.service" -o short-unix --no-pager --since "@${t_kill%[.,]*}" 2>/dev/null)
  line=$(grep -m1 'takeover_ms' <<<"$j") || { fail "second failure: node$s did not take over: $(tail -3 <<<"$j")"; return 1; }
  t_cpus=$(since "$t_kill" "${line%% *}")
  tk=$(grep -oP 'takeover_ms \K[0-9.]+' <<<"$line")
  epoch=$(grep -oP 'took over from epoch \K[0-9]+' <<<"$line")
  log "kill $((ROUNDS + 1)) (the machine taken over, replicating back): node$s CPUs running after $t_cpus s (takeover_ms $tk);" \
    "epoch $epoch of node$p's replication to node$s; released stores not checked (the workload restarted at the takeover)"
  RESULTS+=("$(printf 'RESULT  %-4s  %-44s  node%s   node%s     %-6s  %-8s  %-9s  %-14s  %-11s  %-5s  %s' \
    "$((ROUNDS + 1))" "taken-over machine, replicating back" "$p" "$s" - - - "$t_cpus" "$tk" "$epoch" "n/a")")
  boot_node "$p"
  start_cluster_on "$p"
  wait_until 90 eval '[ "$(unpromoted_on '"$s"')" = '"$p"' ]' ||
    { mon "$s" || true; fail "second failure: node$p did not rejoin as Unpromoted"; return 1; }
  log "kill $((ROUNDS + 1)): node$p rebooted and rejoined as Unpromoted"
}

plan=("sync sync 0" "default replicating 1000" "default replicating 2500" "heavy replicating 1000" "heavy replicating 2500")
for r in $(seq "$ROUNDS"); do
  # shellcheck disable=SC2086
  host_failure "$r" ${plan[$(((r - 1) % ${#plan[@]}))]} || break
done
[ "$FAILS" = 0 ] && [ "$ROUNDS" -gt 0 ] && second_failure
[ "$FAILS" = 0 ] && log "fence requests answered: $(grep -c ' off ' "$RUN/fence.log" || true)"

# ---------------------------------------------------------------- 7. a planned switch-over
# The Promoted role moved to the other host (crm_resource --move --promoted, as `pcs resource move
# --promoted` does): Pacemaker demotes the primary (SIGTERM: its clean stop commits a last epoch
# with the CPUs stopped), then promotes the other, which takes over from its export at that epoch.
# Timed from the command, from the old primary's stop (its "stopping" line) and, the outage, from
# its CPUs stopping for the last epoch (the epoch in flight commits first, the machine running
# until its writers reach their dirty limit) to the new one's running (its "took over" line); the
# release log checked as after a kill.
switch_over() {
  local live p s t_move j line t_stop t_paused t_cpus tk epoch check
  live=$(first_live)
  fresh_pair "$live" default
  wait_until 60 pair_up "$live" replicating || { mon "$live" || true; fail "switch-over: the pair did not replicate"; return 1; }
  wait_until 60 eval 'p=$(promoted_on '"$live"') && [ -n "$p" ]' || { fail "switch-over: no Promoted node"; return 1; }
  s=$((3 - p))
  sleep 2
  t_move=$EPOCHREALTIME
  inn "$p" crm_resource --move --promoted --resource mirrord-clone --node "node$s" >>"$RUN/pcs.log" 2>&1 ||
    { fail "switch-over: crm_resource --move"; return 1; }
  wait_until 60 eval '[ "$(promoted_on '"$s"')" = '"$s"' ] && [ "$(unpromoted_on '"$s"')" = '"$p"' ]' ||
    { mon "$s" || true; fail "switch-over: node$s not Promoted with node$p Unpromoted"; return 1; }
  j=$(inn "$p" journalctl -u "$UNIT-machine.service" -o short-unix --no-pager --since "@${t_move%[.,]*}" 2>/dev/null)
  line=$(grep -m1 -E 'stopped in state|stopping' <<<"$j" || true)
  t_stop=${line%% *}
  # The outage's start: the CPUs stopped for the last epoch (at the stop's request when the
  # writers are at their dirty limit, else once the epoch in flight committed).
  line=$(grep -m1 'every CPU stopped for the last epoch' <<<"$j" || true)
  t_paused=${line%% *}
  j=$(inn "$s" journalctl -u "$UNIT-machine.service" -o short-unix --no-pager --since "@${t_move%[.,]*}" 2>/dev/null)
  line=$(grep -m1 'takeover_ms' <<<"$j" || true)
  [ -n "$line" ] || { fail "switch-over: node$s did not take over: $(tail -3 <<<"$j")"; return 1; }
  t_cpus=${line%% *}
  tk=$(grep -oP 'takeover_ms \K[0-9.]+' <<<"$line")
  epoch=$(grep -oP 'took over from epoch \K[0-9]+' <<<"$line")
  # The promote stopped the export's server through its cgroup (the agent's path without a
  # systemctl call; cgroup.kill on cgroup v2, each process of it on this VM's v1), not by its
  # fallback, and told the takeover to go itself through its go FIFO, in the agent's first steps
  # (before it reads the OCF shell functions), the outcome collected by the mirrorctl it started
  # ahead (no process started on the outage's path).
  local stopped_by asked_by
  line=$(inn "$s" journalctl -o cat --no-pager --since "@${t_move%[.,]*}" 2>/dev/null |
    grep -m1 'nbd-server stopped by' || true)
  stopped_by=$(grep -oP 'nbd-server stopped by \K[^,)]+' <<<"$line" || true)
  asked_by=$(grep -oP 'asked by \K[^)]+' <<<"$line" || true)
  case $stopped_by in
    cgroup.kill | "SIGKILL to its cgroup") ;;
    *) fail "switch-over: node$s's promote stopped nbd-server by '${stopped_by:-nothing logged}' (its cgroup expected)" ;;
  esac
  [ "$asked_by" = "mirrorctl started ahead, told go first, the takeover told through go.fifo" ] ||
    fail "switch-over: node$s's promote asked the takeover by '${asked_by:-nothing logged}' (mirrorctl started ahead, told go first, the takeover told through go.fifo, expected)"
  released_upto "$epoch" "$p"
  [ -s "$RUN/released.check" ] || fail "switch-over: no released record to check"
  check=$("$BIN/mirrord-check" released --config "$RUN/conf$p/mirrord.conf" --image "$RUN/export$s/export.img" \
    --offset 12288 --log "$RUN/released.check" 2>&1) || fail "switch-over: $check"
  # The demoted host's promotion score: its last epoch committed, the peer's export is the newer,
  # so the first monitor after the demote sets stale_score (1), from the machine's journal,
  # without probing either export (its log line says which way it went; a later monitor raises
  # the score once the machine replicates to this host's export: only attrd's first change is
  # checked).
  local score shortcut waiting
  # (Set by the second monitor after the demote, with the takeover left waiting: seconds later.)
  wait_until 60 eval 'inn '"$p"' journalctl -o cat --no-pager --since "@${t_move%[.,]*}" 2>/dev/null | grep -q "Setting master-mirrord\[node'"$p"'\]: "' || true
  wait_until 60 is_state "$p" waiting || true
  waiting=$(state_on "$p")
  j=$(inn "$p" journalctl -o cat --no-pager --since "@${t_move%[.,]*}" 2>/dev/null)
  score=$(grep -m1 -oP "Setting master-mirrord\[node$p\]: \S+ -> \K\S+" <<<"$j" || true)
  shortcut=$(grep -c "the last epoch committed to the peer's export: this host's is the older" <<<"$j" || true)
  [ "$score" = 1 ] && [ "$shortcut" = 1 ] ||
    fail "switch-over: node$p's promotion score after the demote was set to '$score' (stale_score 1 expected) from the journal $shortcut time(s) (1 expected)"
  [ "$waiting" = waiting ] || fail "switch-over: node$p keeps no takeover waiting after its demote (state '$waiting')"
  # The epochs as they ran on the old primary, from its replicating line to its last epoch: when
  # the commits take longer than remote.epoch (the export's disk slower than the workload dirties
  # memory), they set the pace. The goal (2 epochs + 100 ms) said both ways.
  local all first last period
  all=$(inn "$p" journalctl -u "$UNIT-machine.service" -o short-unix --no-pager 2>/dev/null)
  first=$(grep 'committed as epoch' <<<"$all" | tail -1 || true)
  last=$(grep 'stopped: the last epoch, ' <<<"$all" | tail -1 || true)
  period=$(awk -v a="${first%% *}" -v b="${last%% *}" \
    -v k="$(grep -oP 'committed as epoch \K[0-9]+' <<<"$first" || echo 0)" \
    -v n="$(grep -oP 'the last epoch, \K[0-9]+' <<<"$last" || echo 0)" \
    'BEGIN { if (n > k && a > 0 && b > a) printf "%.1f", 1000 * (b - a) / (n - k); else print "?" }')
  [ -n "$t_paused" ] || fail "switch-over: node$p's journal says nowhere that its CPUs stopped for the last epoch"
  log "switch-over node$p -> node$s: CPUs running on node$s $(since "$t_move" "$t_cpus") s after the move command," \
    "$(ms_since "${t_stop:-$t_move}" "$t_cpus") ms after node$p's stop began, the machine running nowhere for" \
    "$(ms_since "${t_paused:-$t_move}" "$t_cpus") ms (its CPUs stopped to the CPUs running; takeover_ms $tk); epoch $epoch; $check;" \
    "node$p's epochs ran every $period ms (remote.epoch: the default, 10 ms): 2 epochs + 100 ms is" \
    "$(awk -v p="$period" 'BEGIN { if (p == "?") print "?"; else printf "%.0f", 2 * p + 100 }') ms as they ran, 120 ms as configured"
  RESULTS+=("$(printf 'RESULT  %-4s  %-44s  node%s   node%s     %-6s  %-8s  %-9s  %-14s  %-11s  %-5s  %s' \
    move "default/switch-over(outage $(ms_since "${t_paused:-$t_move}" "$t_cpus")ms)" "$p" "$s" - - - \
    "$(since "$t_move" "$t_cpus")" "$tk" "$epoch" "$(grep -q '0 released stores lost' <<<"$check" && echo 0 || echo '?')")")
  # With KEEP=1, both nodes' journals of the switch-over (a later case may reboot either node,
  # and its journal then starts afresh).
  if [ "${KEEP:-0}" = 1 ]; then
    for n in "$p" "$s"; do
      inn "$n" journalctl -o short-precise --no-pager --since "@${t_move%[.,]*}" >"$RUN/switch-over.node$n.journal" 2>&1 || true
    done
  fi
  inn "$s" crm_resource --clear --resource mirrord-clone >>"$RUN/pcs.log" 2>&1 || true
}
[ "$FAILS" = 0 ] && switch_over

# ---------------------------------------------------------------- 8. the primary's mirrord fails
# Only the machine's process dies: SIGKILL of the machine unit's main PID inside the Promoted host,
# which runs on (and so does Pacemaker there). A fresh pair: the primary started anew, its own
# export holds no committed epoch; the newest is on the other host's export. Pacemaker recovers
# the resource, quite possibly on the same host; starting anew there would overwrite that epoch
# with a new sync (every released store lost), and a takeover from the primary's own export would
# find an older one. The agent compares the exports (mirrord probe): the machine must run again
# from the newest committed epoch, the other host taking over from its export. The release log of
# the run killed (copied at once: a new run on that host begins its log anew) checked against the
# export taken over, as after a host kill: 0 released stores lost.
process_failure() {
  local live p s pid t_kill j line q epoch tk t_cpus check lost
  live=$(first_live)
  fresh_pair "$live" default
  wait_until 60 pair_up "$live" replicating || { mon "$live" || true; fail "process failure: the pair did not replicate"; return 1; }
  wait_until 60 eval 'p=$(promoted_on '"$live"') && [ -n "$p" ]' || { fail "process failure: no Promoted node"; return 1; }
  s=$((3 - p))
  sleep 2
  pid=$(inn "$p" systemctl show -p MainPID --value "$UNIT-machine.service")
  [ "${pid:-0}" -gt 0 ] || { fail "process failure: no main PID of $UNIT-machine on node$p"; return 1; }
  t_kill=$EPOCHREALTIME
  inn "$p" kill -KILL "$pid"
  cp "$RUN/share/released-node$p.log" "$RUN/released-killed.log" 2>/dev/null || : >"$RUN/released-killed.log"
  # A Promoted node whose machine runs again, by a takeover or anew, since the kill.
  restarted() {
    q=$(promoted_on "$live") && [ -n "$q" ] &&
      inn "$q" journalctl -u "$UNIT-machine.service" -o cat --no-pager --since "@${t_kill%[.,]*}" 2>/dev/null |
      grep -qE 'took over from epoch|state duplexing'
  }
  wait_until 90 restarted || { mon "$live" || true; fail "process failure: the machine did not run again"; return 1; }
  j=$(inn "$q" journalctl -u "$UNIT-machine.service" -o short-unix --no-pager --since "@${t_kill%[.,]*}" 2>/dev/null)
  if line=$(grep -m1 'takeover_ms' <<<"$j"); then
    t_cpus=$(since "$t_kill" "${line%% *}")
    tk=$(grep -oP 'takeover_ms \K[0-9.]+' <<<"$line")
    epoch=$(grep -oP 'took over from epoch \K[0-9]+' <<<"$line")
    released_upto "$epoch" "$p" "$RUN/released-killed.log"
    [ -s "$RUN/released.check" ] || fail "process failure: no released record to check"
    if check=$("$BIN/mirrord-check" released --config "$RUN/conf$p/mirrord.conf" --image "$RUN/export$q/export.img" \
      --offset 12288 --log "$RUN/released.check" 2>&1); then lost=0; else fail "process failure: node$q took over from epoch $epoch of its export: $check"; lost="?"; fi
  else
    line=$(grep -m1 'state duplexing' <<<"$j" || true)
    t_cpus="$(since "$t_kill" "${line%% *}") (anew)" tk=- epoch=none lost="all"
    check="the machine started anew on node$q: $(wc -l <"$RUN/released-killed.log") released epochs lost"
    fail "process failure: $check"
  fi
  log "process failure (node$p's mirrord killed, the host up): machine running on node$q after $t_cpus s" \
    "(takeover_ms $tk); epoch $epoch; $check"
  RESULTS+=("$(printf 'RESULT  %-4s  %-44s  node%s   node%s     %-6s  %-8s  %-9s  %-14s  %-11s  %-5s  %s' \
    proc "default/replicating, mirrord SIGKILL" "$p" "$q" - - - "$t_cpus" "$tk" "$epoch" "$lost")")
  # The failure (and a promote the agent refused on node$p, if Pacemaker tried there first) cleared.
  inn "$q" pcs resource cleanup mirrord-clone >>"$RUN/pcs.log" 2>&1 || true
  wait_until 60 eval '[ "$(promoted_on '"$q"')" = '"$q"' ] && [ "$(unpromoted_on '"$q"')" = '"$((3 - q))"' ]' ||
    { mon "$q" || true; fail "process failure: node$((3 - q)) not Unpromoted after the recovery"; return 1; }
  [ "$epoch" = none ] || wait_until 60 is_state "$q" replicating ||
    { fail "process failure: node$q does not replicate to node$((3 - q))'s export ($(state_on "$q"))"; return 1; }
  log "process failure: node$((3 - q)) Unpromoted, node$q $(state_on "$q")"
}
[ "$FAILS" = 0 ] && process_failure

# ---------------------------------------------------------------- 9. split brain
# The link between the two hosts cut (the Unpromoted host's interface on the bridge set down), not
# the hosts: each loses the other after the token, both keep quorum (two_node), and each asks the
# power switch to fence the other. priority-fencing-delay, set for this case (not in cluster.pcs:
# it would delay every takeover as much), holds back the fencing of the host that runs the Promoted
# instance, so the primary's host fences the other first and the machine runs on. Sampled on both
# hosts (as fast as nsenter and systemctl go: ~60 ms) from the cut until a host is gone and 5 s
# more: never two primaries (the machine's unit active on both, neither a takeover waiting to be
# asked: an Unpromoted host keeps one, `mirrord takeover --on-request`, state "waiting").
split_brain() {
  local live p u t_cut both=0 samples=0 a1 a2 s1 s2 end survivor gone="" seen=""
  live=$(first_live)
  fresh_pair "$live" default
  wait_until 60 pair_up "$live" replicating || { mon "$live" || true; fail "split brain: no replicating pair to cut"; return 1; }
  sleep 1
  wait_until 60 eval 'p=$(promoted_on '"$live"') && [ -n "$p" ]' || { fail "split brain: no Promoted node"; return 1; }
  u=$((3 - p))
  inn "$p" pcs property set priority-fencing-delay=5s >>"$RUN/pcs.log" 2>&1 || { fail "split brain: priority-fencing-delay"; return 1; }
  # The Unpromoted host's network cable pulled: its interface on the bridge (host0) set down from
  # its network namespace only; the host and every process on it run on.
  t_cut=$EPOCHREALTIME
  nsenter --target "${LEADER[$u]}" --net -- ip link set host0 down
  end=$(($(usec) + 60000000))
  while (($(usec) < end)); do
    a1=0 a2=0 s1=gone s2=gone
    [ -n "${LEADER[1]:-}" ] && running "${LEADER[1]}" && { runs_machine 1 && a1=1; s1=$SEEN; }
    [ -n "${LEADER[2]:-}" ] && running "${LEADER[2]}" && { runs_machine 2 && a2=1; s2=$SEEN; }
    samples=$((samples + 1))
    # (What each host's machine said, for the log: "unread" is a state its socket did not give.)
    ((a1 + a2 < 2)) || { both=$((both + 1)) seen="$seen; sample $samples at $(since "$t_cut" "$EPOCHREALTIME") s: node1 $s1, node2 $s2"; }
    if ! running "${LEADER[1]}" || ! running "${LEADER[2]}"; then
      [ -n "$gone" ] || gone=$EPOCHREALTIME
      (($(usec) > ${gone//[.,]/} + 5000000)) && break
    fi
    sleep 0.02
  done
  local dead=""
  for n in 1 2; do running "${LEADER[$n]}" || dead=$n; done
  [ -n "$dead" ] || { fail "split brain: neither host was fenced in 60 s"; return 1; }
  survivor=$((3 - dead))
  reap_node "$dead"
  ((both == 0)) || fail "split brain: two primaries in $both of $samples samples$seen"
  [ "$dead" = "$u" ] || fail "split brain: the primary's host node$p was fenced, not node$u"
  log "split brain: link of node$u cut; node$dead fenced $(since "$t_cut" "$gone") s after the cut; node$survivor runs the machine" \
    "($(state_on "$survivor")); two primaries in $both of $samples samples (one each $(awk -v a="$t_cut" -v b="$EPOCHREALTIME" -v n="$samples" 'BEGIN{printf "%.0f", (b-a)*1000/n}') ms)"
  RESULTS+=("$(printf 'RESULT  %-4s  %-44s  node%s   node%s     %-6s  %-8s  %-9s  %-14s  %-11s  %-5s  %s' \
    split "link cut: two primaries in $both/$samples" "$dead" "$survivor" - "$(since "$t_cut" "$gone")" - - - - -)")
  boot_node "$dead"
  start_cluster_on "$dead"
  wait_until 90 eval '[ "$(unpromoted_on '"$survivor"')" = '"$dead"' ]' ||
    { mon "$survivor" || true; fail "split brain: node$dead did not rejoin as Unpromoted"; return 1; }
  log "split brain: node$dead rebooted and rejoined as Unpromoted"
  inn "$survivor" pcs property unset priority-fencing-delay >>"$RUN/pcs.log" 2>&1 || true
}
[ "$FAILS" = 0 ] && split_brain
exit 0
