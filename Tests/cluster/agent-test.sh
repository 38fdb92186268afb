#!/usr/bin/env bash
# The OCF agent's decisions, without a cluster: ocf/mirrord runs with stand-ins for everything it
# calls (ocf-shellfuncs, systemctl, systemd-run, journalctl, crm_node, mirrord probe, mirrorctl),
# which answer as each case says and record every call. What the cluster test cannot reach on
# purpose is here: a promote refused because the peer's export holds a newer committed epoch (the
# cluster then promotes the peer), the promote's choices when the peer is silent or gone, the
# start anew with the peer gone (--spare-later), and the demote whose last epoch committed (its
# score set by the next monitor from the journal, no export probed).
#
# Usage (root: the agent keeps its state in /run/UNIT): Tests/cluster/agent-test.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
AGENT=$ROOT/ocf/mirrord
T=$(mktemp -d /tmp/mirrord-agent-test.XXXXXX)
UNIT=mirrord-agenttest-$$
# The units' cgroups of the cases that need them: real cgroup v2 groups where the agent looks
# (systemd's hierarchy), made only on a hybrid host's /sys/fs/cgroup/unified (not inside the
# host's own systemd tree); each directory the test made is removed, deepest first.
CGROUP_ROOT=/sys/fs/cgroup/unified
CGROUP_MADE=()
cleanup() {
  local i dir n
  for ((i = ${#CGROUP_MADE[@]} - 1; i >= 0; i--)); do
    dir=${CGROUP_MADE[i]}
    [ ! -e "$dir/cgroup.kill" ] || echo 1 >"$dir/cgroup.kill" 2>/dev/null || true
    for n in $(seq 50); do [ -s "$dir/cgroup.procs" ] || break; sleep 0.02; done
    rmdir "$dir" 2>/dev/null || echo "agent: could not remove $dir" >&2
  done
  [ -n "${KEEP_AGENT_TEST:-}" ] || rm -rf "$T" "/run/$UNIT"
}
trap cleanup EXIT
PASSED=0 FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "agent: ok: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "agent: FAIL: $*"; }

mkdir -p "$T/lib" "$T/bin" "$T/case"
# ocf-shellfuncs: the codes of the OCF API, ocf_is_probe as resource-agents defines it (the action
# is the agent's first argument), and logging and the score into the case's log.
cat >"$T/lib/ocf-shellfuncs" <<'EOF'
OCF_SUCCESS=0 OCF_ERR_GENERIC=1 OCF_ERR_ARGS=2 OCF_ERR_UNIMPLEMENTED=3 OCF_ERR_PERM=4
OCF_ERR_INSTALLED=5 OCF_ERR_CONFIGURED=6 OCF_NOT_RUNNING=7 OCF_RUNNING_PROMOTED=8 OCF_FAILED_PROMOTED=9
ocf_log() { shift; echo "log: $*" >>"$CASE/log"; }
ocf_exit_reason() { echo "reason: $*" >>"$CASE/log"; }
ocf_promotion_score() { if [ "$1" = -D ]; then echo "score: unset" >>"$CASE/log"; else echo "score: $2" >>"$CASE/log"; fi; }
check_binary() { :; }
__OCF_ACTION=$1
ocf_is_probe() { [ "$__OCF_ACTION" = monitor ] && [ "$OCF_RESKEY_CRM_meta_interval" = 0 ]; }
EOF
# Each stand-in records its call; state lives in files under $CASE.
stub() { printf '#!/bin/sh\necho "%s $*" >>"$CASE/calls"\n%s\n' "$1" "$2" >"$T/bin/$1"; chmod +x "$T/bin/$1"; }
stub systemctl '
unit=""; for a in "$@"; do case $a in *.service) unit=${a%.service} ;; esac; done
case $1 in
  is-active)
    if [ -e "$CASE/active-$unit" ]; then state=active; else state=inactive; fi
    case " $* " in *" --quiet "*) ;; *) echo "$state" ;; esac
    [ "$state" = active ] ;;
  stop) [ ! -e "$CASE/stop-fails-$unit" ] || exit 1; rm -f "$CASE/active-$unit"
    case $unit in *-machine) rm -f "$CASE/waiting" ;; esac ;;
  show) cat "$CASE/invocation-$unit" 2>/dev/null || true ;;
  *) exit 0 ;;
esac'
stub systemd-run '
unit=""; for a in "$@"; do case $a in --unit=*) unit=${a#--unit=} ;; esac; done
cat "$CASE/../../export.img.machine-started" >"$CASE/record-at-start" 2>/dev/null || true
case " $* " in
  *" --on-request "*) [ ! -e "$CASE/no-waiting" ] || exit 1; touch "$CASE/waiting" ;;
  *" takeover "*) if [ -e "$CASE/takeover-refused" ]; then cat "$CASE/takeover-refused" >>"$CASE/journal"; exit 1; fi
    echo "took over from epoch 7: takeover_ms 12.0" >>"$CASE/journal"; touch "$CASE/took-over" ;;
esac
touch "$CASE/active-$unit"'
# journalctl: the case's journal; with a MESSAGE_ID= match (and --output-fields=MESSAGE_ID, as
# the agent asks), that id once if a line carries it, else "-- No entries --" as journalctl does.
stub journalctl '
id=""; for a in "$@"; do case $a in MESSAGE_ID=*) id=${a#MESSAGE_ID=} ;; esac; done
if [ -z "$id" ]; then cat "$CASE/journal" 2>/dev/null || true
elif grep -q "MESSAGE_ID=$id" "$CASE/journal" 2>/dev/null; then echo "$id"
else echo "-- No entries --"; fi'
stub crm_node '
case $1 in
  -n) echo node1 ;;
  -l) echo "1 node1 member"; [ -e "$CASE/peer-gone" ] || echo "2 node2 member" ;;
esac'
# mirrord probe: --image answers from $CASE/local, --export from $CASE/peer ("none", "silent", or
# "GENERATION EPOCH").
stub mirrord '
case " $* " in
  *" --image "*) which=local ;;
  *" --export "*) which=peer ;;
  *) exit 0 ;;
esac
echo "probe $which" >>"$CASE/probes"
position=$(cat "$CASE/$which")
case $position in
  none) echo "epoch=none generation=0 owner=none machine_id=none pending=0"; exit 2 ;;
  silent) echo "mirrord: probe: no answer from the server within 2000 ms"; exit 1 ;;
  unreadable) echo "mirrord: probe: open: Input/output error"; exit 1 ;;
  *) echo "epoch=${position#* } generation=${position% *} owner=x machine_id=y pending=0" ;;
esac'
# mirrorctl: the machine unit answers "waiting" (a takeover waiting to be asked) or
# "replicating"; take-over tells the waiting one, and no daemon answers (69) when none waits. With
# --start-record it does what mirrord does (StartRecordTests): this host's export ($CASE/local)
# taken over only past the recorded start, or --compared (else 2: it waits on), the record raised
# first; then refused as $CASE/takeover-refused says (it then exits), or taken over. With
# --wait-for-go, only after the line "go" on its standard input (75 without it, or at once with
# $CASE/no-go: as if another reader had taken the go). With --told TOLD it plays the waiting
# takeover's go FIFO too: the line "go TOLD" must be there (logged "told TOLD"; else 75, nothing
# told), and it answers as a take-over with the start record the takeover was started with.
# Without --told, a go line there (unread) means the takeover was asked already: refused (1).
stub mirrorctl '
active=$CASE/active-'"$UNIT"'-machine
case " $* " in
  *" --wait-for-go "*)
    [ ! -e "$CASE/no-go" ] || { echo "mirrorctl: take-over not sent: no go on standard input" >&2; exit 75; }
    read -r go && [ "$go" = go ] || exit 75
    echo "go" >>"$CASE/calls"
    pid=$(cat "$CASE/pid-export" 2>/dev/null || echo none)
    ! grep -qx "$pid" "$CGROUP_ROOT/system.slice/'"$UNIT"'-export.service/cgroup.procs" 2>/dev/null ||
      echo "go while the export ran" >>"$CASE/calls" ;;
esac
case " $* " in
  *" --told "*)
    told="" next=""
    for a in "$@"; do [ "$next" = told ] && told=$a; next=""; [ "$a" = --told ] && next=told; done
    line=$(timeout 5 head -n 1 <>"/run/'"$UNIT"'/go.fifo")
    [ "$line" = "go $told" ] || { echo "no go line for $told: $line" >>"$CASE/calls"; exit 75; }
    echo "told $told" >>"$CASE/calls"
    set -- "$@" --start-record "$CASE/../../export.img.machine-started" ;;
  *" take-over "*)
    if [ -p "/run/'"$UNIT"'/go.fifo" ]; then
      case $(timeout 0.3 head -n 1 <>"/run/'"$UNIT"'/go.fifo") in
        "go "*) echo "mirrorctl: mirrord: a takeover was asked for already: it is under way or over" >&2; exit 1 ;;
      esac
    fi ;;
esac
case $1 in
  take-over)
    [ -e "$active" ] && [ -e "$CASE/waiting" ] || { echo "mirrorctl: no mirrord answers" >&2; exit 69; }
    record="" compared="" next=""
    for a in "$@"; do
      [ "$next" = record ] && record=$a; next=""
      case $a in --start-record) next=record ;; --compared) compared=1 ;; esac
    done
    if [ -n "$record" ]; then
      position=$(cat "$CASE/local")
      case $position in
        unreadable | silent)
          echo "mirrorctl: mirrord: takeover refused: cannot read this host'"'"'s export: probe: open: Input/output error" >&2
          rm -f "$CASE/waiting" "$active"; exit 1 ;;
        foreign)
          echo "mirrorctl: mirrord: takeover refused: cannot read this host'"'"'s export: probe x: the export holds data that is not mirrord'"'"'s (no mirrord header in its first 8 KiB); nothing to take over from, nor to compare" >&2
          rm -f "$CASE/waiting" "$active"; exit 1 ;;
      esac
      started=$(cat "$record" 2>/dev/null || echo 0)
      if [ -z "$compared" ] && { [ "$position" = none ] || [ "$started" = 0 ] || [ "${position% *}" -le "$started" ]; }; then
        echo "mirrorctl: mirrord: take-over: this host'"'"'s export is not known to be the newest" >&2; exit 2
      fi
      bound=$(date +%s%N)
      [ "$position" != none ] && [ "${position% *}" -ge "$bound" ] && bound=$((${position% *} + 1))
      [ "$bound" -le "$started" ] || echo "$bound" >"$record"
      cat "$record" >"$CASE/record-at-start"
    fi
    rm -f "$CASE/waiting"
    if [ -e "$CASE/takeover-refused" ]; then
      echo "mirrorctl: mirrord: $(cat "$CASE/takeover-refused")" >&2; rm -f "$active"; exit 1
    fi
    touch "$CASE/took-over"
    echo "take-over: took over from epoch 7 of the export: 3 frames replayed, takeover_ms 2.0" ;;
  *)
    [ -e "$active" ] || exit 69
    if [ -e "$CASE/waiting" ]; then state=waiting; else state=replicating; fi
    printf "{\n  \"state\" : \"%s\"\n}\n" "$state" ;;
esac'
PATH=$T/bin:$PATH

cat >"$T/mirrord.conf" <<EOF
[memory]
size = "64MiB"
state_dir = "$T/state"
[control]
socket = "$T/control.sock"
EOF
touch "$T/export.img"

# run_agent CASE ACTION: the agent's ACTION as Pacemaker runs it on node1, its peer node2.
run_agent() {
  CASE=$T/case/$1
  export CASE
  env OCF_ROOT="$T" OCF_FUNCTIONS_DIR="$T/lib" OCF_RESKEY_config="$T/mirrord.conf" \
    OCF_RESKEY_image="$T/export.img" OCF_RESKEY_bindir="$T/bin" OCF_RESKEY_unit="$UNIT" \
    OCF_RESKEY_peer_uri="node1=nbd://10.0.0.1/spare node2=nbd://10.0.0.2/spare" \
    OCF_RESKEY_CRM_meta_on_node=node1 OCF_RESKEY_ready_timeout=5 OCF_RESKEY_CRM_meta_interval="${INTERVAL:-0}" \
    sh ${TRACE:+-x} "$AGENT" "$2" >/dev/null 2>"${TRACE:-/dev/null}"
}

# new_case NAME LOCAL PEER: an Unpromoted node1 serving its export, the two exports' positions.
new_case() {
  rm -rf "/run/$UNIT" "$T/export.img.machine-started"
  mkdir -p "$T/case/$1"
  echo "$2" >"$T/case/$1/local"
  echo "$3" >"$T/case/$1/peer"
  touch "$T/case/$1/active-$UNIT-export"
}
has() { grep -q -- "$2" "$T/case/$1/$3" 2>/dev/null; }
traced() { # CASE PATTERN: the line of the agent's trace (sh -x) where PATTERN first matches (or 0)
  grep -n -m1 -- "$2" "$T/case/$1/trace" | cut -d: -f1 | grep . || echo missing
}
# Whether CASE took over (a stand-in's takeover went on) or started a machine (a takeover left
# waiting, --on-request, is neither).
took_over() { [ -e "$T/case/$1/took-over" ]; }
started_machine() { grep -v -- "--on-request" "$T/case/$1/calls" 2>/dev/null | grep -q "systemd-run --quiet --unit=$UNIT-machine"; }
probes() { cat "$T/case/$1/probes" 2>/dev/null | grep -c "probe" || true; }
score() { grep '^score:' "$T/case/$1/log" | tail -n 1 | cut -d' ' -f2; }

# 1. The peer's export holds a newer committed epoch: refused, stale_score, no machine started,
# the export served again.
new_case newer-peer "200 5" "300 2"
if run_agent newer-peer promote; then rc=0; else rc=$?; fi
if [ "$rc" = 1 ] && [ "$(score newer-peer)" = 1 ] && ! took_over newer-peer &&
  has newer-peer "newer committed epoch (generation 300 epoch 2) than this host's (generation 200 epoch 5)" log &&
  [ -e "$T/case/newer-peer/active-$UNIT-export" ]; then
  pass "promote refused: the peer's export is newer (rc 1, stale_score, no takeover, export served again)"
else fail "promote with a newer peer export: rc $rc, score $(score newer-peer); $(cat "$T/case/newer-peer/log")"; fi

# 2. This host's export is the newer (same generation, later epoch): the takeover runs, from it.
# The promote's own monitor probes nothing: the compare's two probes only. The machine's start is
# recorded (the wall clock in ns) beside the export.
new_case own-newer "300 5" "300 2"
before=$(date +%s%N)
if run_agent own-newer promote && has own-newer "takeover --image $T/export.img" calls &&
  [ "$(score own-newer)" = 10 ] && [ "$(probes own-newer)" = 2 ] && [ ! -e "$T/case/own-newer/active-$UNIT-export" ] &&
  [ "$(cat "$T/export.img.machine-started" 2>/dev/null || echo 0)" -ge "$before" ]; then
  pass "promote from the newer own export: takeover --image, promoted_score, 2 probes, export stopped, start recorded"
else fail "promote with the own export newer: score $(score own-newer), probes $(probes own-newer); $(cat "$T/case/own-newer/log")"; fi

# The start cannot be recorded (its file cannot be written): the machine is not started.
new_case record-fails "300 5" "300 2"
mkdir "$T/export.img.machine-started.new"
if run_agent record-fails promote; then rc=0; else rc=$?; fi
rmdir "$T/export.img.machine-started.new"
if [ "$rc" = 1 ] && ! took_over record-fails && has record-fails "cannot record the machine's start" log; then
  pass "promote when the machine's start cannot be recorded: refused, nothing started"
else fail "promote, record not writable: rc $rc; $(cat "$T/case/record-fails/log")"; fi

# 3. This host's export was synced (generation 300) after this host's machine last started (its
# recorded bound, 250): the peer's machine wrote it after that machine stopped, so it is the newest
# there is: taken over with neither the peer's membership nor its export asked.
new_case synced-since "300 5" "300 2"
echo 250 >"$T/export.img.machine-started"
if run_agent synced-since promote && has synced-since "takeover --image" calls && [ "$(probes synced-since)" = 1 ] &&
  ! has synced-since "probe peer" probes && ! has synced-since "crm_node -l" calls && has synced-since "not asked" log; then
  pass "promote with the own export synced after this host's machine last ran: taken over, the peer not asked"
else fail "promote, own export synced since: probes $(probes synced-since); $(cat "$T/case/synced-since/log")"; fi

# At the bound itself (generation 300, recorded 300) the export is compared: refused, the peer's
# being newer.
new_case at-bound "300 5" "400 1"
echo 300 >"$T/export.img.machine-started"
if run_agent at-bound promote; then rc=0; else rc=$?; fi
if [ "$rc" = 1 ] && [ "$(probes at-bound)" = 2 ] && ! took_over at-bound; then
  pass "promote with the own export's generation at the recorded start: compared, refused for the newer peer"
else fail "promote at the bound: rc $rc, probes $(probes at-bound); $(cat "$T/case/at-bound/log")"; fi

# The peer is a member but its export is silent (its instance stopped). With no start recorded
# here (a host that never ran the machine), this host's committed epoch is taken over, with a
# warning; with this host's machine started since its export's sync (at 400), that machine may
# have committed newer epochs to the silent export: refused. No own epoch: refused too.
new_case silent-own "300 5" silent
if run_agent silent-own promote && has silent-own "takeover --image" calls && has silent-own "does not answer" log; then
  pass "promote with the peer's export silent, an own epoch and no start recorded here: taken over, warned"
else fail "promote with a silent peer export: $(cat "$T/case/silent-own/log")"; fi
new_case silent-behind "300 5" silent
echo 400 >"$T/export.img.machine-started"
if run_agent silent-behind promote; then rc=0; else rc=$?; fi
if [ "$rc" = 1 ] && [ "$(score silent-behind)" = 1 ] && ! started_machine silent-behind &&
  has silent-behind "started since the sync of this host's export (generation 300 epoch 5; recorded start 400)" log; then
  pass "promote with the peer's export silent and this host's machine started after its own export's sync: refused"
else fail "promote, silent peer, own machine since: rc $rc; $(cat "$T/case/silent-behind/log")"; fi
new_case silent-none none silent
if run_agent silent-none promote; then rc=0; else rc=$?; fi
if [ "$rc" = 1 ] && [ "$(score silent-none)" = 1 ] && ! started_machine silent-none; then
  pass "promote with the peer's export silent and no own epoch: refused (starting anew could overwrite the peer's)"
else fail "promote, silent peer, no own epoch: rc $rc; $(cat "$T/case/silent-none/log")"; fi

# 4. The peer is gone (fenced, no member), no start recorded here: nothing compared, this host's
# epoch taken over, and the start's record raised past the generation taken over (one later than
# this host's clock, here): the machine's syncs have larger ones.
new_case peer-gone "9000000000000000000 5" "400 9"
touch "$T/case/peer-gone/peer-gone"
if run_agent peer-gone promote && has peer-gone "takeover --image" calls && ! has peer-gone "probe peer" probes &&
  [ "$(cat "$T/case/peer-gone/record-at-start" 2>/dev/null)" = 9000000000000000001 ]; then
  pass "promote with the peer fenced: taken over, the peer not probed, the start recorded past the generation taken over before it"
else fail "promote with the peer gone: record $(cat "$T/export.img.machine-started" 2>/dev/null); $(cat "$T/case/peer-gone/log")"; fi

# This host's export cannot be read: nothing taken over, nothing compared.
new_case unreadable unreadable "300 2"
touch "$T/case/unreadable/peer-gone"
if run_agent unreadable promote; then rc=0; else rc=$?; fi
if [ "$rc" = 1 ] && ! started_machine unreadable &&
  has unreadable "cannot read this host's export" log; then
  pass "promote with this host's export unreadable: refused, nothing started"
else fail "promote, own export unreadable: rc $rc; $(cat "$T/case/unreadable/log")"; fi

# 5. No committed epoch anywhere: the machine anew, replicating to the member peer's export; with
# the peer gone, anew with --spare-later (synced to the peer's export once it serves it).
new_case anew none none
echo "takeover refused: $T/export.img: the export holds no committed epoch" >"$T/case/anew/takeover-refused"
if run_agent anew promote && has anew "mirrord --config $T/mirrord.conf\$" calls && ! has anew "spare-later" calls &&
  [ -s "$T/case/anew/record-at-start" ]; then
  pass "promote with no epoch anywhere: the machine anew, its spare the peer's export, its start recorded before it"
else fail "promote anew: $(cat "$T/case/anew/calls")"; fi
new_case anew-gone none none
touch "$T/case/anew-gone/peer-gone"
echo "takeover refused: $T/export.img: the export holds no committed epoch" >"$T/case/anew-gone/takeover-refused"
if run_agent anew-gone promote && has anew-gone "mirrord --config $T/mirrord.conf --spare-later" calls; then
  pass "promote with no epoch and the peer gone: the machine anew with --spare-later"
else fail "promote anew, peer gone: $(cat "$T/case/anew-gone/calls")"; fi

# 6. The demote: the stopped machine's journal says its last epoch committed, so the peer's export
# is the newer: stale_score, no export probed. Without that line both are compared.
for journal in committed unknown; do
  new_case "demote-$journal" "300 5" "300 9"
  rm -f "$T/case/demote-$journal/active-$UNIT-export"
  touch "$T/case/demote-$journal/active-$UNIT-machine"
  echo 0123abcd >"$T/case/demote-$journal/invocation-$UNIT-machine"
  # The stop's entry as mirrord logs it (its MESSAGE_ID shown here as a field of the line), or,
  # for "unknown", the same words with no MESSAGE_ID: the agent goes by the id, not the text.
  line="stopped: the last epoch, 42, committed with every CPU stopped: the spare host holds memory as it stopped"
  if [ "$journal" = committed ]; then echo "$line MESSAGE_ID=5d0c6a9e4f2b4c1e8a7d3b2f1e0c9a22"; else echo "$line"; fi \
    >"$T/case/demote-$journal/journal"
done
# The demote returns once the machine stopped, its score left to the next monitor (off the
# switch-over's path; a score changed during the demote makes Pacemaker plan anew before the
# peer's promote): nothing scored, nothing probed, the export served before the machine's stop.
if run_agent demote-committed demote && [ -z "$(score demote-committed)" ] && [ "$(probes demote-committed)" = 0 ] &&
  ! has demote-committed "journalctl" calls && [ "$(cat "/run/$UNIT/demoted" 2>/dev/null)" = 0123abcd ] &&
  [ -e "$T/case/demote-committed/active-$UNIT-export" ] &&
  [ "$(grep -n -- "--unit=$UNIT-export" "$T/case/demote-committed/calls" | cut -d: -f1)" -lt \
    "$(grep -n "systemctl stop $UNIT-machine.service" "$T/case/demote-committed/calls" | cut -d: -f1)" ]; then
  pass "demote: the export served before the machine's stop, no score set, nothing read or probed on its path"
else fail "demote: score $(score demote-committed), probes $(probes demote-committed); $(cat "$T/case/demote-committed/calls")"; fi
# The first monitor after it (Pacemaker's, at once, beside the peer's promote) leaves it; the
# second sets the score and starts the takeover left waiting.
if INTERVAL=3000 run_agent demote-committed monitor && [ -z "$(score demote-committed)" ] &&
  ! has demote-committed "journalctl" calls && ! has demote-committed "--on-request" calls; then
  pass "the first monitor after a demote: nothing read, scored or started (beside the peer's promote)"
else fail "first monitor after a demote: score $(score demote-committed); $(cat "$T/case/demote-committed/calls")"; fi
if INTERVAL=3000 run_agent demote-committed monitor && [ "$(score demote-committed)" = 1 ] &&
  [ "$(probes demote-committed)" = 0 ] && [ ! -e "/run/$UNIT/demoted" ] &&
  has demote-committed "_SYSTEMD_INVOCATION_ID=0123abcd MESSAGE_ID=5d0c6a9e4f2b4c1e8a7d3b2f1e0c9a22" calls &&
  has demote-committed "--on-request" calls && [ -e "$T/case/demote-committed/waiting" ]; then
  pass "the second monitor after a demote whose last epoch committed: stale_score from the journal, no probe, a takeover left waiting"
else fail "second monitor after a demote, last epoch committed: score $(score demote-committed), probes $(probes demote-committed)"; fi
rm -rf "/run/$UNIT"
if run_agent demote-unknown demote && INTERVAL=3000 run_agent demote-unknown monitor &&
  INTERVAL=3000 run_agent demote-unknown monitor && [ "$(score demote-unknown)" = 1 ] && [ "$(probes demote-unknown)" = 2 ]; then
  pass "the second monitor after a demote with no committed-epoch entry (the words alone do not count): both exports compared"
else fail "monitor after a demote, no committed-epoch entry: score $(score demote-unknown), probes $(probes demote-unknown)"; fi

# The demote's own reading of the role: Unpromoted already (success, nothing stopped), stopped
# (not running), and a machine that does not stop (failed, the export not left served).
new_case demote-again "300 5" "300 9"
if run_agent demote-again demote && ! has demote-again "systemctl stop" calls; then
  pass "demote of an Unpromoted instance: success, nothing stopped"
else fail "demote of an Unpromoted instance: $(cat "$T/case/demote-again/calls")"; fi
new_case demote-stopped "300 5" "300 9"
rm -f "$T/case/demote-stopped/active-$UNIT-export"
if run_agent demote-stopped demote; then rc=0; else rc=$?; fi
[ "$rc" = 7 ] && pass "demote of a stopped instance: not running (7)" || fail "demote of a stopped instance: rc $rc"
new_case demote-stuck "300 5" "300 9"
rm -f "$T/case/demote-stuck/active-$UNIT-export"
touch "$T/case/demote-stuck/active-$UNIT-machine" "$T/case/demote-stuck/stop-fails-$UNIT-machine"
if run_agent demote-stuck demote; then rc=0; else rc=$?; fi
if [ "$rc" = 1 ] && [ ! -e "$T/case/demote-stuck/active-$UNIT-export" ] && [ -e "$T/case/demote-stuck/active-$UNIT-machine" ]; then
  pass "demote of a machine that does not stop: failed (1), the export not left served"
else fail "demote, machine stuck: rc $rc"; fi

# 8. The takeover an Unpromoted instance keeps waiting (mirrord takeover --on-request): started
# with the export, reported Unpromoted, asked over the control socket by a promote (no unit or
# process started then), its refusal handled as a started takeover's; none waiting: one started.
new_case keep-waiting none none
rm -f "$T/case/keep-waiting/active-$UNIT-export"
if run_agent keep-waiting start &&
  has keep-waiting "takeover --image $T/export.img --staging 256MiB --on-request --go-fifo /run/$UNIT/go.fifo --start-record $T/export.img.machine-started\$" calls &&
  [ -p "/run/$UNIT/go.fifo" ] && [ -p "/run/$UNIT/take-over.go" ] &&
  [ -e "$T/case/keep-waiting/waiting" ] && [ -e "$T/case/keep-waiting/active-$UNIT-export" ]; then
  pass "start: the export served and a takeover left waiting (--on-request, told through go.fifo with the start record)"
else fail "start with a waiting takeover: $(cat "$T/case/keep-waiting/calls")"; fi
if INTERVAL=3000 run_agent keep-waiting monitor; then rc=0; else rc=$?; fi
[ "$rc" = 0 ] && pass "monitor of an instance with a takeover waiting: Unpromoted (0)" ||
  fail "monitor with a takeover waiting: rc $rc (0 expected)"
if run_agent keep-waiting demote && ! has keep-waiting "systemctl stop" calls; then
  pass "demote of an instance with a takeover waiting: Unpromoted already, nothing stopped"
else fail "demote with a takeover waiting: $(cat "$T/case/keep-waiting/calls")"; fi
new_case asked "300 5" "300 2"
echo 250 >"$T/export.img.machine-started"
touch "$T/case/asked/active-$UNIT-machine" "$T/case/asked/waiting"
if run_agent asked promote && has asked "mirrorctl take-over --socket $T/control.sock --start-record $T/export.img.machine-started\$" calls &&
  ! has asked "systemd-run" calls && [ "$(probes asked)" = 0 ] && ! has asked "crm_node" calls &&
  [ "$(score asked)" = 10 ] && has asked "took over from epoch 7" log &&
  [ "$(cat "$T/export.img.machine-started")" -gt 300 ]; then
  pass "promote with a takeover waiting: asked with the start record (it checks and records), nothing probed, no unit started"
else fail "promote with a takeover waiting: score $(score asked); $(cat "$T/case/asked/calls")"; fi
# The mirrorctl a promote starts ahead (the FIFOs and the socket's file there, as a waiting
# takeover's start leaves them): once told "go", after the export's kill, it collects the outcome
# of the takeover the line "go TOLD" on go.fifo told (TOLD: the agent's PID and the uptime), or,
# with no go.fifo (a takeover started before it), asks itself; when it gets no go (another reader
# took it), the promote asks as usual; a promote that never asks leaves none behind.
ahead() { # [untold]: no go.fifo (else held open on fd 7, as the waiting daemon holds it)
  mkdir -p "/run/$UNIT" && mkfifo "/run/$UNIT/take-over.go" && echo "$T/control.sock" >"/run/$UNIT/waiting.socket"
  exec 7>&-
  [ "${1:-}" = untold ] || { mkfifo "/run/$UNIT/go.fifo" && exec 7<>"/run/$UNIT/go.fifo"; }
}
told_pattern="[0-9][0-9]*-[0-9][0-9.]*"
new_case asked-ahead "300 5" "300 2"
echo 250 >"$T/export.img.machine-started"
touch "$T/case/asked-ahead/active-$UNIT-machine" "$T/case/asked-ahead/waiting"
ahead
if TRACE=$T/case/asked-ahead/trace run_agent asked-ahead promote &&
  has asked-ahead "mirrorctl take-over --socket $T/control.sock --told $told_pattern --wait-for-go\$" calls &&
  [ "$(traced asked-ahead "^+ echo go $told_pattern\$")" -lt "$(traced asked-ahead '^+ echo go$')" ] &&
  has asked-ahead "^told $told_pattern\$" calls && [ "$(grep -c "mirrorctl take-over" "$T/case/asked-ahead/calls")" = 1 ] &&
  [ "$(grep -n -m1 "systemctl stop $UNIT-export" "$T/case/asked-ahead/calls" | cut -d: -f1)" -lt \
    "$(grep -n -m1 "^go$" "$T/case/asked-ahead/calls" | cut -d: -f1 | grep . || echo missing)" ] &&
  [ "$(score asked-ahead)" = 10 ] &&
  has asked-ahead "took over from epoch 7.*asked by mirrorctl started ahead, the takeover told through go.fifo)" log &&
  [ "$(cat "$T/export.img.machine-started")" -gt 300 ]; then
  pass "promote with mirrorctl started ahead: the takeover told go through go.fifo (then mirrorctl) after the export's stop, its outcome collected"
else fail "promote, mirrorctl ahead: score $(score asked-ahead); $(cat "$T/case/asked-ahead/calls")"; fi
new_case asked-ahead-untold "300 5" "300 2"
echo 250 >"$T/export.img.machine-started"
touch "$T/case/asked-ahead-untold/active-$UNIT-machine" "$T/case/asked-ahead-untold/waiting"
ahead untold
if run_agent asked-ahead-untold promote &&
  has asked-ahead-untold "mirrorctl take-over --socket $T/control.sock --start-record $T/export.img.machine-started --wait-for-go\$" calls &&
  ! has asked-ahead-untold "^told" calls && [ "$(grep -c "mirrorctl take-over" "$T/case/asked-ahead-untold/calls")" = 1 ] &&
  [ "$(score asked-ahead-untold)" = 10 ] && has asked-ahead-untold "took over from epoch 7.*asked by mirrorctl started ahead)" log; then
  pass "promote with mirrorctl started ahead, no go.fifo (a takeover started before): mirrorctl asks itself once told go"
else fail "promote, mirrorctl ahead, no go.fifo: score $(score asked-ahead-untold); $(cat "$T/case/asked-ahead-untold/calls")"; fi
new_case ahead-no-go "300 5" "300 2"
echo 250 >"$T/export.img.machine-started"
touch "$T/case/ahead-no-go/active-$UNIT-machine" "$T/case/ahead-no-go/waiting" "$T/case/ahead-no-go/no-go"
ahead untold
if run_agent ahead-no-go promote && has ahead-no-go "--wait-for-go" calls &&
  has ahead-no-go "mirrorctl take-over --socket $T/control.sock --start-record $T/export.img.machine-started\$" calls &&
  [ "$(score ahead-no-go)" = 10 ] && has ahead-no-go "took over from epoch 7.*asked by mirrorctl)" log; then
  pass "promote whose mirrorctl ahead got no go: asked as usual, taken over"
else fail "promote, mirrorctl ahead without a go: $(cat "$T/case/ahead-no-go/calls")"; fi
# Its go came too late for it (its 10 s over) but the line told the takeover: the outcome is
# collected (--told), never asked a second time.
new_case ahead-no-go-told "300 5" "300 2"
echo 250 >"$T/export.img.machine-started"
touch "$T/case/ahead-no-go-told/active-$UNIT-machine" "$T/case/ahead-no-go-told/waiting" "$T/case/ahead-no-go-told/no-go"
ahead
if run_agent ahead-no-go-told promote && has ahead-no-go-told "--told $told_pattern --wait-for-go\$" calls &&
  has ahead-no-go-told "mirrorctl take-over --socket $T/control.sock --told $told_pattern\$" calls &&
  has ahead-no-go-told "^told $told_pattern\$" calls && ! has ahead-no-go-told "--start-record" calls &&
  [ "$(score ahead-no-go-told)" = 10 ] &&
  has ahead-no-go-told "took over from epoch 7.*asked by mirrorctl, the takeover told through go.fifo)" log; then
  pass "promote whose mirrorctl ahead got no go after the line told the takeover: its outcome collected, not asked again"
else fail "promote, no go after the told line: $(cat "$T/case/ahead-no-go-told/calls" "$T/case/ahead-no-go-told/log")"; fi
new_case ahead-promoted "300 5" "300 2"
touch "$T/case/ahead-promoted/active-$UNIT-machine"
rm -f "$T/case/ahead-promoted/active-$UNIT-export"
ahead
touch "/run/$UNIT/promoted"
gone_ahead() { # the mirrorctl started ahead ended (by the agent's exit: SIGTERM, within 5 s)
  local i
  for i in $(seq 50); do pgrep -f "$T/bin/mirrorctl take-over" >/dev/null || return 0; sleep 0.1; done
  return 1
}
if run_agent ahead-promoted promote && has ahead-promoted "--wait-for-go" calls && ! has ahead-promoted "^go" calls &&
  gone_ahead; then
  pass "promote of an instance promoted already: the mirrorctl started ahead never asks, and is gone"
else fail "promote when promoted, mirrorctl ahead: $(cat "$T/case/ahead-promoted/calls")"; fi
# With the export's server found in its unit's cgroup (a stand-in process in a real cgroup v2
# group, as systemd's), the promote's first steps kill it through cgroup.kill and say go before
# the agent reads its OCF shell functions: the kill traced before the go, no systemctl call stops
# the export, no go while the stand-in is in the group; not when promoted already. The first
# monitor after a demote answers from the cgroups alone, but not with a process in the machine's.
in_cgroup() { # UNIT-SUFFIX CASE: a stand-in process in that unit's cgroup (its PID in pid-SUFFIX)
  local dir=$CGROUP_ROOT/system.slice part pid
  [ "$(stat -f -c %T "$CGROUP_ROOT" 2>/dev/null)" = cgroup2fs ] || return 1
  for part in "$dir" "$dir/$UNIT-$1.service"; do
    [ -d "$part" ] && continue
    mkdir "$part" 2>/dev/null || return 1
    CGROUP_MADE+=("$part")
  done
  sleep 300 >/dev/null 2>&1 &
  pid=$!
  echo "$pid" >"$dir/$UNIT-$1.service/cgroup.procs" 2>/dev/null || { kill "$pid"; return 1; }
  echo "$pid" >"$T/case/$2/pid-$1"
  [ "$1" != export ] || { mkdir -p "/run/$UNIT" && echo "$pid" >"/run/$UNIT/nbd.pid"; }
}
stop_standins() { # CASE: its stand-ins ended
  local f
  for f in "$T/case/$1"/pid-*; do [ ! -e "$f" ] || kill "$(cat "$f")" 2>/dev/null || true; done
}
export CGROUP_ROOT
no_cgroup="agent: skipped: no cgroup v2 to make at $CGROUP_ROOT/system.slice (a hybrid host's); the cluster test covers"
new_case ahead-first "300 5" "300 2"
echo 250 >"$T/export.img.machine-started"
touch "$T/case/ahead-first/active-$UNIT-machine" "$T/case/ahead-first/waiting"
ahead
if ! in_cgroup export ahead-first; then
  echo "$no_cgroup the promote's first steps"
elif TRACE=$T/case/ahead-first/trace run_agent ahead-first promote && has ahead-first "^go\$" calls &&
  has ahead-first "^told $told_pattern\$" calls &&
  ! has ahead-first "go while the export ran" calls && ! has ahead-first "systemctl stop $UNIT-export" calls &&
  [ "$(traced ahead-first '^+ \[ -e .*/cgroup\.kill \]$')" -lt "$(traced ahead-first "^+ echo go $told_pattern\$")" ] &&
  [ "$(traced ahead-first "^+ echo go $told_pattern\$")" -lt "$(traced ahead-first '^+ echo go$')" ] &&
  [ "$(traced ahead-first '^+ echo go$')" -lt "$(traced ahead-first '^+ \. .*/ocf-shellfuncs$')" ] &&
  [ "$(grep -c "mirrorctl take-over" "$T/case/ahead-first/calls")" = 1 ] && [ "$(score ahead-first)" = 10 ] &&
  has ahead-first "nbd-server stopped by cgroup.kill, asked by mirrorctl started ahead, told go first, the takeover told through go.fifo)" log; then
  pass "promote with the export in its cgroup: killed there, then go, before the OCF shell functions; one mirrorctl"
else fail "promote, export in its cgroup: score $(score ahead-first); $(cat "$T/case/ahead-first/calls" "$T/case/ahead-first/log")"; fi
new_case ahead-first-promoted "300 5" "300 2"
touch "$T/case/ahead-first-promoted/active-$UNIT-machine"
ahead
touch "/run/$UNIT/promoted"
if ! in_cgroup export ahead-first-promoted; then
  echo "$no_cgroup a promote when promoted"
elif run_agent ahead-first-promoted promote && ! has ahead-first-promoted "^go" calls &&
  kill -0 "$(cat "$T/case/ahead-first-promoted/pid-export")" 2>/dev/null && gone_ahead; then
  pass "promote of an instance promoted already, its export in its cgroup: nothing killed, no go"
else fail "promote when promoted, export in its cgroup: $(cat "$T/case/ahead-first-promoted/calls")"; fi
new_case demoted-cgroup "300 5" "300 2"
mkdir -p "/run/$UNIT" && echo 0123abcd >"/run/$UNIT/demoted"
if ! in_cgroup export demoted-cgroup; then
  echo "$no_cgroup the first monitor after a demote"
elif INTERVAL=3000 run_agent demoted-cgroup monitor && ! has demoted-cgroup "systemctl" calls &&
  [ "$(tail -n 1 "/run/$UNIT/demoted")" = seen ] && INTERVAL=3000 run_agent demoted-cgroup monitor &&
  has demoted-cgroup "systemctl is-active" calls && [ ! -e "/run/$UNIT/demoted" ]; then
  pass "the first monitor after a demote, the export in its cgroup: Unpromoted with no systemctl call; the second settles it"
else fail "first monitor after a demote from the cgroup: $(cat "$T/case/demoted-cgroup/calls")"; fi
new_case demoted-machine-runs "300 5" "300 2"
mkdir -p "/run/$UNIT" && echo 0123abcd >"/run/$UNIT/demoted"
if ! in_cgroup export demoted-machine-runs || ! in_cgroup machine demoted-machine-runs; then
  echo "$no_cgroup the first monitor after a demote with the machine running"
elif INTERVAL=3000 run_agent demoted-machine-runs monitor && has demoted-machine-runs "systemctl is-active" calls; then
  pass "the first monitor after a demote with a process in the machine's cgroup: asks systemd as usual"
else fail "first monitor after a demote, machine running: $(cat "$T/case/demoted-machine-runs/calls")"; fi
stop_standins ahead-first-promoted
stop_standins demoted-cgroup
stop_standins demoted-machine-runs
new_case asked-anew none none
touch "$T/case/asked-anew/active-$UNIT-machine" "$T/case/asked-anew/waiting"
echo "takeover refused: $T/export.img: the export holds no committed epoch" >"$T/case/asked-anew/takeover-refused"
if run_agent asked-anew promote && has asked-anew "mirrorctl take-over" calls &&
  has asked-anew "mirrord --config $T/mirrord.conf\$" calls; then
  pass "promote with a takeover waiting, refused for no committed epoch: the machine anew"
else fail "promote, waiting takeover refused: $(cat "$T/case/asked-anew/calls")"; fi
# Not known to be the newest (the record is past this export's generation): the takeover waits
# on, the exports are compared here, then it is asked again, --compared; with the peer's newer,
# refused (stale_score), the takeover still waiting.
new_case asked-compare "300 5" "300 2"
echo 400 >"$T/export.img.machine-started"
touch "$T/case/asked-compare/active-$UNIT-machine" "$T/case/asked-compare/waiting"
if run_agent asked-compare promote && has asked-compare "machine-started --compared" calls &&
  [ "$(probes asked-compare)" = 2 ] && ! has asked-compare "systemd-run" calls && [ "$(score asked-compare)" = 10 ]; then
  pass "promote with a takeover waiting that does not know its export newest: compared here, asked again --compared"
else fail "promote, waiting takeover, compared: $(cat "$T/case/asked-compare/calls")"; fi
new_case asked-older "300 5" "400 1"
echo 400 >"$T/export.img.machine-started"
touch "$T/case/asked-older/active-$UNIT-machine" "$T/case/asked-older/waiting"
if run_agent asked-older promote; then rc=0; else rc=$?; fi
if [ "$rc" = 1 ] && [ "$(score asked-older)" = 1 ] && ! has asked-older "--compared" calls &&
  [ -e "$T/case/asked-older/waiting" ] && ! started_machine asked-older; then
  pass "promote with a takeover waiting and the peer's export newer: refused (stale_score), the takeover still waiting"
else fail "promote, waiting takeover, peer newer: rc $rc, score $(score asked-older); $(cat "$T/case/asked-older/calls")"; fi
# Refused on the first ask for an export that is not mirrord's: no verdict on the peer's export,
# so nothing is started anew over it (the promote fails); refused after the request for another
# reason (a damaged journal): that takeover has gone on, so it is stopped and one is left waiting
# anew.
new_case asked-foreign foreign "300 2"
echo 250 >"$T/export.img.machine-started"
touch "$T/case/asked-foreign/active-$UNIT-machine" "$T/case/asked-foreign/waiting"
if run_agent asked-foreign promote; then rc=0; else rc=$?; fi
if [ "$rc" = 1 ] && ! has asked-foreign "mirrord --config $T/mirrord.conf\$" calls && ! took_over asked-foreign &&
  [ "$(cat "$T/export.img.machine-started")" = 250 ]; then
  pass "promote, the waiting takeover refused at once for an export not mirrord's: failed, nothing started anew, nothing recorded"
else fail "promote, foreign export: rc $rc; $(cat "$T/case/asked-foreign/calls")"; fi
new_case asked-damaged "300 5" "300 2"
echo 250 >"$T/export.img.machine-started"
touch "$T/case/asked-damaged/active-$UNIT-machine" "$T/case/asked-damaged/waiting"
echo "takeover refused: $T/export.img: epoch 5: frame 7 fails its checksum" >"$T/case/asked-damaged/takeover-refused"
if run_agent asked-damaged promote; then rc=0; else rc=$?; fi
if [ "$rc" = 1 ] && has asked-damaged "systemctl stop $UNIT-machine.service" calls &&
  has asked-damaged "--on-request" calls && has asked-damaged "fails its checksum" log; then
  pass "promote, the waiting takeover refused after the request (a damaged journal): failed, that one stopped, another left waiting"
else fail "promote, damaged journal: rc $rc; $(cat "$T/case/asked-damaged/calls")"; fi
# A takeover waiting since before the configuration changed is started again by a monitor.
new_case stale-waiting "300 5" "300 2"
mkdir -p "/run/$UNIT" && echo 5 >"/run/$UNIT/score"
touch -d "@$(($(date +%s) - 60))" "/run/$UNIT/waiting.started"
touch "$T/case/stale-waiting/active-$UNIT-machine" "$T/case/stale-waiting/waiting" "$T/mirrord.conf"
if INTERVAL=3000 run_agent stale-waiting monitor && has stale-waiting "systemctl stop $UNIT-machine.service" calls &&
  has stale-waiting "--on-request" calls && [ -e "$T/case/stale-waiting/waiting" ]; then
  pass "monitor: a takeover waiting since before the configuration changed is started again"
else fail "monitor, stale waiting takeover: $(cat "$T/case/stale-waiting/calls")"; fi
new_case none-waits "300 5" "300 2"
echo 250 >"$T/export.img.machine-started"
if run_agent none-waits promote && has none-waits "mirrorctl take-over" calls &&
  has none-waits "systemd-run --quiet --unit=$UNIT-machine .* takeover --image $T/export.img --staging 256MiB\$" calls; then
  pass "promote with no takeover waiting: one started (systemd-run takeover)"
else fail "promote with none waiting: $(cat "$T/case/none-waits/calls")"; fi

# 7. Pacemaker's probe (a monitor with interval 0) of an Unpromoted instance scores it from both
# exports; a recurring monitor with a score that is not stale probes nothing.
new_case probe "300 5" "400 1"
if run_agent probe monitor && [ "$(score probe)" = 1 ] && [ "$(probes probe)" = 2 ]; then
  pass "probe of an Unpromoted instance: both exports compared, stale_score (the peer's newer)"
else fail "probe: score $(score probe), probes $(probes probe)"; fi
new_case recurring "300 5" "400 1"
mkdir -p "/run/$UNIT" && echo 5 >"/run/$UNIT/score"
if INTERVAL=3000 run_agent recurring monitor && [ -z "$(score recurring)" ] && [ "$(probes recurring)" = 0 ]; then
  pass "recurring monitor with an unpromoted score: no export probed, no score set"
else fail "recurring monitor: score $(score recurring), probes $(probes recurring)"; fi
# A stale_score is looked at again only once the export was written since it was set (the peer,
# Promoted, replicates here): not before (a monitor just after a demote, the peer's export silent
# while its promote stops it, would raise it for nothing), then both exports compared.
new_case recurring-stale "300 5" "300 2"
mkdir -p "/run/$UNIT" && echo 1 >"/run/$UNIT/score"
touch -d "@$(($(date +%s) - 60))" "$T/export.img"
if INTERVAL=3000 run_agent recurring-stale monitor && [ -z "$(score recurring-stale)" ] && [ "$(probes recurring-stale)" = 0 ]; then
  pass "recurring monitor with a stale_score and the export not written since: nothing probed, the score kept"
else fail "recurring monitor, stale, export unwritten: score $(score recurring-stale), probes $(probes recurring-stale)"; fi
touch -d "@$(($(date +%s) - 120))" "/run/$UNIT/score"
touch "$T/export.img"
if INTERVAL=3000 run_agent recurring-stale monitor && [ "$(score recurring-stale)" = 5 ] && [ "$(probes recurring-stale)" = 2 ]; then
  pass "recurring monitor with a stale_score and the export written since: compared, raised (this host's is the newer)"
else fail "recurring monitor, stale, export written: score $(score recurring-stale), probes $(probes recurring-stale)"; fi

echo "agent: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
