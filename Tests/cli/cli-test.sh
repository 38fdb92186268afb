#!/usr/bin/env bash
# Tests of the mirrord command line on a built binary: configuration checks, one duplex with the
# JSON summary, the negative control, file-backed modules compared with cmp, and a clean SIGTERM.
# Usage: Tests/cli/cli-test.sh PATH/TO/mirrord      Prints "cli: N passed, M failed".
set -uo pipefail
BIN=${1:?usage: cli-test.sh PATH/TO/mirrord}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PASSED=0 FAILED=0
pass() { echo "PASS: $*"; PASSED=$((PASSED+1)); }
fail() { echo "FAIL: $*"; FAILED=$((FAILED+1)); }
json() { python3 -c "import json,sys; d=json.load(open('$1')); print($2)"; }
# A limit in this test is a hang detector, not a performance bound: generous, so that a machine
# busy with other builds still passes (CLI_HANG_SECONDS overrides it). Nothing waits for a length
# of time: waits poll for what they wait for, up to this deadline.
HANG=${CLI_HANG_SECONDS:-600}
# wait_for FILE PATTERN [PID]: until PATTERN is in FILE (0); 1 once PID has ended or HANG passed.
wait_for() {
  local end=$((SECONDS + HANG))
  until grep -q -- "$2" "$1" 2>/dev/null; do
    { [ $SECONDS -ge $end ] || { [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; }; } && return 1
    sleep 0.05
  done
}

# 1. --check-config accepts the shipped file and rejects a bad one with PATH:LINE: key: message.
if out=$("$BIN" --check-config "$ROOT/config/mirrord.conf" 2>&1); then pass "check-config accepts config/mirrord.conf ($out)"
else fail "check-config rejected config/mirrord.conf: $out"; fi
printf '[duplex]\nthreshold_frames = 10\nmax_passes = "lots"\n' >"$TMP/bad.conf"
out=$("$BIN" --check-config "$TMP/bad.conf" 2>&1); rc=$?
if [ $rc = 1 ] && [ "$out" = "$TMP/bad.conf:3: duplex.max_passes: expected an integer, found a string \"lots\"" ]; then
  pass "check-config rejects a wrong type with PATH:LINE: key: message"
else fail "check-config on a bad file: rc=$rc out=$out"; fi
printf '[duplex]\nthreshold = 10\n' >"$TMP/unknown.conf"
out=$("$BIN" --once --config "$TMP/unknown.conf" 2>&1); rc=$?
if [ $rc = 78 ] && grep -q "unknown.conf:2: duplex.threshold: unknown key" <<<"$out"; then pass "an unknown key stops the daemon before it starts (exit 78, EX_CONFIG)"
else fail "unknown key: rc=$rc out=$out"; fi

# 1a. mirrord standby refuses a missing image in one line (exit 1), and a file another standby
# holds (exit 75); SIGTERM stops it with status 0.
out=$("$BIN" standby --image "$TMP/none.img" 2>&1); rc=$?
if [ $rc = 1 ] && [ "$(wc -l <<<"$out")" = 1 ] && grep -q "standby refused: open $TMP/none.img: No such file" <<<"$out"; then
  pass "standby refuses a missing image in one line (exit 1)"
else fail "standby of a missing image: rc=$rc out=$out"; fi
head -c 65536 /dev/zero >"$TMP/standby.img"
"$BIN" standby --image "$TMP/standby.img" >"$TMP/standby.out" 2>&1 &
standby_pid=$!
for _ in $(seq 300); do grep -q "standing by" "$TMP/standby.out" && break; sleep 0.1; done
out=$("$BIN" standby --image "$TMP/standby.img" 2>&1); rc=$?
kill -TERM $standby_pid; wait $standby_pid; standby_rc=$?
if [ $rc = 75 ] && grep -q "another mirrord process has this file" <<<"$out" && [ $standby_rc = 0 ]; then
  pass "a second standby on the same file is refused (exit 75); SIGTERM stops the first (exit 0)"
else fail "second standby: rc=$rc out=$out; first standby exit $standby_rc: $(cat "$TMP/standby.out")"; fi
# 1a'. The standby maps the file (its writes are copies, not pwritev calls): the file truncated under
# it, its next look at the header faults, and it ends with one line and exit 74, not a crash.
head -c 65536 /dev/zero >"$TMP/standby-trunc.img"
"$BIN" standby --image "$TMP/standby-trunc.img" >"$TMP/standby-trunc.out" 2>&1 &
pid=$!
wait_for "$TMP/standby-trunc.out" "standing by" $pid || fail "the standby did not start: $(cat "$TMP/standby-trunc.out")"
truncate -s 0 "$TMP/standby-trunc.img"
end=$((SECONDS + HANG)); while kill -0 $pid 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.05; done
kill -TERM $pid 2>/dev/null; wait $pid; rc=$?
if [ $rc = 74 ] && [ "$(grep -c . "$TMP/standby-trunc.out")" = 2 ] &&
  grep -q "went away under the standby (SIGBUS: the file truncated" "$TMP/standby-trunc.out"; then
  pass "a file truncated under the standby: exit 74 with one line, no crash"
else fail "standby truncated: rc=$rc $(cat "$TMP/standby-trunc.out")"; fi

# 1b. mirrord takeover refuses, in one line and exit 1, an image that is missing or holds no export;
# a bad --staging is a usage error. (TakeoverTests covers the recovery and the machine in process.)
out=$("$BIN" takeover --image "$TMP/none.img" 2>&1); rc=$?
if [ $rc = 1 ] && [ "$out" = "mirrord: error: takeover refused: open $TMP/none.img: No such file or directory" ]; then
  pass "takeover refuses a missing image in one line (exit 1)"
else fail "takeover of a missing image: rc=$rc out=$out"; fi
head -c 65536 /dev/zero >"$TMP/zeros.img"
out=$("$BIN" takeover --image "$TMP/zeros.img" --recover-only 2>&1); rc=$?
if [ $rc = 1 ] && [ "$(wc -l <<<"$out")" = 1 ] && grep -q "the export has no mirrord header" <<<"$out" && cmp -s "$TMP/zeros.img" <(head -c 65536 /dev/zero); then
  pass "takeover refuses a file that holds no export, and leaves it as it was"
else fail "takeover of a blank file: rc=$rc out=$out"; fi
out=$("$BIN" takeover --image "$TMP/zeros.img" --staging 5000 2>&1); rc=$?
if [ $rc = 64 ]; then pass "takeover --staging not in whole frames is a usage error (exit 64)"
else fail "takeover --staging 5000: rc=$rc out=$out"; fi

# 1b'. mirrord takeover --on-request starts, reads nothing, and waits on control.socket (status
# waiting); SIGTERM then stops it (exit 0), the file as it was. Asked (mirrorctl take-over), it
# takes over, here from a file with no export: the refusal is take-over's reply (exit 1) and the
# takeover's exit status (1). With --recover-only: a usage error. (The takeover that runs the
# machine when asked: Tests/cluster, every promote; TakeoverOnRequestTests: the reply's wait.)
CTL="$(dirname "$BIN")/mirrorctl"
printf '[memory]\nsize = "64KiB"\nstate_dir = "%s"\n[control]\nsocket = "%s"\n' "$TMP/waiting-state" "$TMP/waiting.sock" \
  >"$TMP/waiting.conf"
for ask in stop take-over record unrecordable told; do
  told=()
  if [ "$ask" = told ]; then
    rm -f "$TMP/go.fifo" && mkfifo -m 0600 "$TMP/go.fifo"
    told=(--go-fifo "$TMP/go.fifo" --start-record "$TMP/told.machine-started")
  fi
  "$BIN" --config "$TMP/waiting.conf" takeover --image "$TMP/zeros.img" --staging 4KiB --on-request "${told[@]}" \
    >"$TMP/waiting-$ask.out" 2>&1 &
  pid=$!
  wait_for "$TMP/waiting-$ask.out" "waiting to take over" $pid || fail "takeover --on-request did not wait: $(cat "$TMP/waiting-$ask.out")"
  state=$("$CTL" status --json --socket "$TMP/waiting.sock" | json /dev/stdin 'd["state"]')
  if [ "$ask" = stop ]; then
    kill -TERM $pid; wait $pid; rc=$?
    if [ "$state" = waiting ] && [ $rc = 0 ] && cmp -s "$TMP/zeros.img" <(head -c 65536 /dev/zero) &&
      grep -q "while waiting to take over: nothing was read or changed" "$TMP/waiting-$ask.out"; then
      pass "takeover --on-request waits (status waiting); SIGTERM stops it (exit 0), nothing read or changed"
    else fail "takeover --on-request, stopped: state $state, rc $rc: $(cat "$TMP/waiting-$ask.out")"; fi
  elif [ "$ask" = take-over ]; then
    # Started ahead (--wait-for-go, as the agent's promote does): another line, or the end of its
    # input, sends nothing (exit 75, the takeover still waiting); "go" asks.
    nogo=$(echo stop | "$CTL" take-over --socket "$TMP/waiting.sock" --wait-for-go 2>&1); nogo_rc=$?
    "$CTL" take-over --socket "$TMP/waiting.sock" --wait-for-go </dev/null >/dev/null 2>&1; eof_rc=$?
    state=$("$CTL" status --json --socket "$TMP/waiting.sock" | json /dev/stdin 'd["state"]')
    if [ $nogo_rc = 75 ] && grep -q 'take-over not sent: no go on standard input ("stop")' <<<"$nogo" &&
      [ $eof_rc = 75 ] && [ "$state" = waiting ]; then
      pass "take-over --wait-for-go without a go: nothing sent (exit 75), the takeover still waiting"
    else fail "take-over --wait-for-go without a go: rc $nogo_rc ($nogo), at the end of input rc $eof_rc, state $state"; fi
    # A takeover that reads no go FIFO was told nothing: --told says so at once (75, ask as usual).
    untold=$(echo go | "$CTL" take-over --socket "$TMP/waiting.sock" --told 4711-1.5 --wait-for-go 2>&1); untold_rc=$?
    if [ $untold_rc = 75 ] && grep -q "this takeover reads no go FIFO" <<<"$untold"; then
      pass "take-over --told to a takeover with no go FIFO: nothing was told (exit 75)"
    else fail "take-over --told, no go FIFO: rc $untold_rc ($untold)"; fi
    out=$(echo go | "$CTL" take-over --socket "$TMP/waiting.sock" --wait-for-go 2>&1); ctl_rc=$?
    wait $pid; rc=$?
    if [ $ctl_rc = 1 ] && grep -q "takeover refused: .*no mirrord header" <<<"$out" && [ $rc = 1 ]; then
      pass "takeover --on-request asked (--wait-for-go, told go): its refusal is take-over's reply (exit 1), and it exits 1"
    else fail "takeover --on-request asked: mirrorctl rc $ctl_rc ($out), takeover rc $rc: $(cat "$TMP/waiting-$ask.out")"; fi
  elif [ "$ask" = told ]; then
    # Told through its go FIFO (--go-fifo, as the agent's waiting takeover): "go TOKEN" asks with
    # --start-record's path, and take-over --told TOKEN gets that ask's outcome: here not known
    # newest (exit 2, which only a start record gives; it waits on); a line that is not a go asks
    # nothing. Asked again --compared
    # over the socket, the start is recorded there (the go's record), then refused.
    exec 7<>"$TMP/go.fifo"
    echo "take over" >&7
    echo "go 4711-12.5" >&7
    out=$("$CTL" take-over --socket "$TMP/waiting.sock" --told 4711-12.5 2>&1); ctl_rc=$?
    state=$("$CTL" status --json --socket "$TMP/waiting.sock" | json /dev/stdin 'd["state"]')
    out2=$("$CTL" take-over --socket "$TMP/waiting.sock" --start-record "$TMP/told.machine-started" --compared 2>&1)
    ctl_rc2=$?
    exec 7>&-
    wait $pid; rc=$?
    if [ $ctl_rc = 2 ] && grep -q "not known to be the newest (it holds no committed epoch)" <<<"$out" &&
      [ "$state" = waiting ] && [ $ctl_rc2 = 1 ] && grep -q "no mirrord header" <<<"$out2" && [ $rc = 1 ] &&
      grep -q 'go FIFO .*: ignored "take over"' "$TMP/waiting-$ask.out" &&
      grep -q "told to go through the go FIFO (go 4711-12.5)" "$TMP/waiting-$ask.out" &&
      [ -s "$TMP/told.machine-started" ]; then
      pass "takeover --go-fifo: go TOKEN asks with its start record, take-over --told gets the outcome (2: not known newest)"
    else fail "takeover --go-fifo: rc $ctl_rc ($out), state $state, rc $ctl_rc2 ($out2), exit $rc: $(cat "$TMP/waiting-$ask.out")"; fi
  elif [ "$ask" = unrecordable ]; then
    # A start that cannot be recorded (its directory missing): refused at once, nothing started.
    out=$("$CTL" take-over --socket "$TMP/waiting.sock" --start-record "$TMP/missing/record" --compared 2>&1); ctl_rc=$?
    wait $pid; rc=$?
    if [ $ctl_rc = 1 ] && grep -q "cannot record the machine's start in $TMP/missing/record" <<<"$out" && [ $rc = 1 ]; then
      pass "take-over with a start record that cannot be written: refused (exit 1), the takeover exits 1"
    else fail "take-over, unrecordable start: mirrorctl rc $ctl_rc ($out), takeover rc $rc"; fi
  else
    # With a start record: no committed epoch here is not known to be the newest (exit 2, it
    # waits on, nothing recorded); asked again --compared, the start is recorded (the clock),
    # then the takeover is refused (nothing to take over).
    record=$TMP/zeros.img.machine-started
    out=$("$CTL" take-over --socket "$TMP/waiting.sock" --start-record "$record" 2>&1); ctl_rc=$?
    state=$("$CTL" status --json --socket "$TMP/waiting.sock" | json /dev/stdin 'd["state"]')
    before=$(date +%s%N)
    out2=$("$CTL" take-over --socket "$TMP/waiting.sock" --start-record "$record" --compared 2>&1); ctl_rc2=$?
    wait $pid; rc=$?
    if [ $ctl_rc = 2 ] && grep -q "not known to be the newest (it holds no committed epoch)" <<<"$out" &&
      [ "$state" = waiting ] && [ $ctl_rc2 = 1 ] && grep -q "no mirrord header" <<<"$out2" && [ $rc = 1 ] &&
      [ "$(cat "$record" 2>/dev/null || echo 0)" -ge "$before" ]; then
      pass "take-over --start-record: not known newest (exit 2), still waiting; --compared: the start recorded, then refused"
    else fail "take-over --start-record: rc $ctl_rc ($out), state $state, rc $ctl_rc2 ($out2), exit $rc, record $(cat "$record" 2>/dev/null)"; fi
  fi
done
out=$("$BIN" takeover --image "$TMP/zeros.img" --go-fifo "$TMP/go.fifo" 2>&1); rc=$?
if [ $rc = 64 ] && grep -q -- "--go-fifo tells a takeover that waits to go: give --on-request too" <<<"$out"; then
  pass "takeover --go-fifo without --on-request is a usage error (exit 64)"
else fail "takeover --go-fifo without --on-request: rc=$rc out=$out"; fi
out=$("$BIN" --config "$TMP/waiting.conf" takeover --image "$TMP/zeros.img" --on-request --go-fifo "$TMP/zeros.img" 2>&1); rc=$?
if [ $rc = 1 ] && grep -q -- "--go-fifo $TMP/zeros.img: not a FIFO (mkfifo makes one)" <<<"$out" &&
  cmp -s "$TMP/zeros.img" <(head -c 65536 /dev/zero); then
  pass "takeover --on-request --go-fifo naming no FIFO: refused at start (exit 1), the file as it was"
else fail "takeover --go-fifo, no FIFO: rc=$rc out=$out"; fi
out=$("$BIN" takeover --image "$TMP/zeros.img" --on-request --recover-only 2>&1); rc=$?
if [ $rc = 64 ] && grep -q -- "--on-request waits to run the machine; --recover-only runs none" <<<"$out"; then
  pass "takeover --on-request with --recover-only is a usage error (exit 64)"
else fail "takeover --on-request --recover-only: rc=$rc out=$out"; fi

# 1c. mirrord probe reads and never writes: a blank file is "no committed epoch" (exit 2, its line
# epoch=none, the file as it was); a missing file is one line and exit 1; two sources a usage error.
# (ExportProbeTests and ProbeRunnerTests cover committed epochs, torn records and NBD.)
out=$("$BIN" probe --image "$TMP/zeros.img" 2>&1); rc=$?
if [ $rc = 2 ] && [ "$out" = "epoch=none generation=0 owner=none machine_id=none pending=0" ] && cmp -s "$TMP/zeros.img" <(head -c 65536 /dev/zero); then
  pass "probe of a blank file: epoch=none (exit 2), the file unchanged"
else fail "probe of a blank file: rc=$rc out=$out"; fi
out=$("$BIN" probe --image "$TMP/none.img" 2>&1); rc=$?
if [ $rc = 1 ] && [ "$out" = "mirrord: error: open $TMP/none.img: No such file or directory" ]; then
  pass "probe of a missing file: one line (exit 1)"
else fail "probe of a missing file: rc=$rc out=$out"; fi
out=$("$BIN" probe --image "$TMP/zeros.img" --export nbd://127.0.0.1/spare 2>&1); rc=$?
if [ $rc = 64 ]; then pass "probe with --image and --export is a usage error (exit 64)"
else fail "probe --image --export: rc=$rc out=$out"; fi

# 2. The main job on the built-in defaults: 1 GiB under load, every frame verified.
start=$(date +%s.%N)
"$BIN" --once --json >"$TMP/default.json" 2>"$TMP/default.err"; rc=$?
secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
if [ $rc = 0 ] && [ "$(json "$TMP/default.json" "d['result'], d['verify']['mismatches'], d['verify']['frames_checked'] == d['frames'], d['memory_bytes']")" = "duplexed 0 True 1073741824" ]; then
  pass "mirrord --once --json on defaults: duplexed, 0 mismatches over every frame of 1 GiB in ${secs}s ($(json "$TMP/default.json" "len(d['passes']), 'passes, blackout', d['blackout']['duration_us'], 'us for', d['blackout']['final_frames'], 'frames'"))"
else fail "default run: rc=$rc $(cat "$TMP/default.err" | tail -3)"; fi
if grep -q "^mirrord: pass 1: " "$TMP/default.err" && grep -q "^mirrord: blackout: " "$TMP/default.err"; then
  pass "progress lines go to stderr as the duplex runs"
else fail "no progress lines on stderr"; fi
for key in result reason backend memory_bytes frame_size frames full_copy passes blackout verify total_us; do
  json "$TMP/default.json" "d['$key']" >/dev/null 2>&1 || { fail "summary lacks $key"; continue; }
done

# 3. Negative control: without DMA dual-write the verify fails and the exit status says so.
MIRRORD_MEMORY_SIZE=128MiB MIRRORD_DMA_DUAL_WRITE=false MIRRORD_DMA_RATE=64MiB/s "$BIN" --once --json >"$TMP/nodual.json" 2>"$TMP/nodual.err"; rc=$?
if [ $rc = 1 ] && [ "$(json "$TMP/nodual.json" "d['result'], d['reason'], d['verify']['mismatches'] > 0")" = "failed verify_mismatch True" ]; then
  pass "dma.dual_write = false: exit 1, result failed, $(json "$TMP/nodual.json" "d['verify']['mismatches']") frames differ"
else fail "negative control: rc=$rc $(tail -2 "$TMP/nodual.err")"; fi
if grep -qE "duplex failed: verify failed .*frames? differ between active and spare \(first: [0-9]" "$TMP/nodual.err"; then
  pass "the failure names the mismatching frames on stderr"
else fail "no failure message"; fi

# 3a. Fault tolerance: a drill fails the active module once duplexed; mirrord fails over to the
#     spare (reporting the switch-over's blackout), and duplexes the replacement that arrives.
MIRRORD_MEMORY_SIZE=128MiB MIRRORD_FAULT_MODULE=active MIRRORD_FAULT_KIND=uncorrectable MIRRORD_FAULT_FRAME=1000 \
  MIRRORD_FAULT_AFTER=100ms MIRRORD_FAULT_REPLACE_AFTER=50ms "$BIN" --once --json >"$TMP/failover.json" 2>"$TMP/failover.err"; rc=$?
if [ $rc = 0 ] && [ "$(json "$TMP/failover.json" "d['result'], d['lifecycle']['state'], len(d['lifecycle']['failovers']), d['lifecycle']['duplexed'], d['lifecycle']['lost']")" = "duplexed duplexed 1 2 None" ]; then
  pass "active module failed while duplexed: failover in $(json "$TMP/failover.json" "d['lifecycle']['failovers'][0]['blackout_us']") µs (target $(json "$TMP/failover.json" "d['convergence']['target_us']") µs), replacement re-duplexed"
else fail "failover drill: rc=$rc $(tail -3 "$TMP/failover.err")"; fi
if grep -q "failover: active module failed (uncorrectable error at frame 1000)" "$TMP/failover.err"; then pass "the failover is said on stderr"
else fail "no failover line"; fi
#     The spare failing in the passes aborts the duplex: never duplexed, exit 1, simplex.
MIRRORD_MEMORY_SIZE=128MiB MIRRORD_WORKLOAD_RATE=unlimited MIRRORD_FAULT_MODULE=spare MIRRORD_FAULT_DURING=passes \
  "$BIN" --once --json >"$TMP/sparefail.json" 2>"$TMP/sparefail.err"; rc=$?
if [ $rc = 1 ] && [ "$(json "$TMP/sparefail.json" "d['result'], d['reason'], d['lifecycle']['state'], d['lifecycle']['spares_removed']")" = "failed module_failed simplex 1" ]; then
  pass "spare lost during the passes: exit 1, result failed (module_failed), simplex"
else fail "spare failure in the passes: rc=$rc $(tail -3 "$TMP/sparefail.err")"; fi
#     A drill a backend cannot carry out is refused by --check-config, naming the key.
printf '[hardware]\nbackend = "uffd"\n[fault]\nmodule = "active"\n' >"$TMP/uffd-failover.conf"
out=$("$BIN" --check-config "$TMP/uffd-failover.conf" 2>&1); rc=$?
if [ $rc = 1 ] && echo "$out" | grep -q 'uffd-failover.conf:4: fault.module: a failover needs hardware.backend = "emulated"'; then
  pass "--check-config refuses a failover drill on the uffd backend, with file, line and key"
else fail "uffd failover drill: rc=$rc $out"; fi

# 3c. The control socket and mirrorctl: status as root, refused for anyone else (the socket is
#     0600 in a directory of 0750: they cannot even connect), the same version on both tools.
CTL="$(dirname "$BIN")/mirrorctl"
if [ -x "$CTL" ]; then
  MIRRORD_MEMORY_SIZE=64MiB MIRRORD_CONTROL_SOCKET="$TMP/ctl/control.sock" "$BIN" 2>"$TMP/ctl.err" & d=$!
  out=$("$CTL" watch --socket "$TMP/ctl/control.sock" --until-duplexed --timeout "$HANG" | cat); rc=$?
  if [ $rc = 0 ] && grep -q "duplexed: duplexed; verified 16384 frames" <<<"$out" && grep -qE "pass 1: [0-9]+ dirty frames" <<<"$out"; then
    pass "mirrorctl watch (piped) prints the passes and ends once duplexed"
  else fail "mirrorctl watch: rc=$rc $out"; fi
  state=$("$CTL" status --json --socket "$TMP/ctl/control.sock" | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['state'], d['progress']['engine_state'], d['version'])")
  if [ "$state" = "duplexed duplexed $("$BIN" --version)" ]; then pass "mirrorctl status --json: $state"
  else fail "mirrorctl status --json: $state"; fi
  # (A copy nobody can run: the checkout may sit in a directory only root can enter.)
  cp "$CTL" "$TMP/mirrorctl-copy"; chmod 0755 "$TMP" "$TMP/mirrorctl-copy"
  out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$TMP/mirrorctl-copy" status --socket "$TMP/ctl/control.sock" 2>&1); rc=$?
  if [ $rc = 77 ] && grep -q "Permission denied" <<<"$out"; then
    pass "an unprivileged caller cannot reach the socket (exit 77, Permission denied)"
  else fail "unprivileged mirrorctl: rc=$rc $out"; fi
  kill -TERM $d; wait $d
  out=$("$CTL" status --socket "$TMP/ctl/control.sock" 2>&1); rc=$?
  if [ $rc = 69 ] && grep -q "cannot reach mirrord" <<<"$out"; then pass "no daemon: mirrorctl says so (exit 69)"
  else fail "mirrorctl without a daemon: rc=$rc $out"; fi
  if [ "$("$CTL" --version)" = "$("$BIN" --version)" ]; then pass "mirrord --version and mirrorctl --version agree ($("$BIN" --version))"
  else fail "versions differ"; fi
else fail "no mirrorctl beside $BIN"; fi

# 3b. The emulated MMU under churn: huge pages, fork and exit, exact; and without the
#     departing-PTE hook, the same churn loses frames and the verify says so.
MIRRORD_MEMORY_SIZE=256MiB MIRRORD_WORKLOAD_CHURN=2000/s MIRRORD_MMU_HUGE_SHARE=0.5 "$BIN" --once --json >"$TMP/churn.json" 2>"$TMP/churn.err"; rc=$?
if [ $rc = 0 ] && [ "$(json "$TMP/churn.json" "d['result'], d['verify']['mismatches'], d['verify']['frames_checked'] == d['frames'], d['hardware_statistics']['forks'] > 0, d['hardware_statistics']['huge_maps'] > 0")" = "duplexed 0 True True True" ]; then
  pass "churn 2000/s with huge pages and fork: duplexed, 0 mismatches ($(json "$TMP/churn.json" "d['hardware_statistics']"))"
else fail "churn run: rc=$rc $(tail -2 "$TMP/churn.err")"; fi
# (Without the departing-entry hook a frame is lost only when a store lands in a mapping that
# goes away before the next harvest: most runs under churn, not all. The deterministic test,
# DeterministicDuplexTests, forces that departure and checks the verify names the frame.)

# 3c. The uffd backend (writes tracked by the real MMU), where the kernel supports it.
printf '[hardware]\nbackend = "uffd"\n' >"$TMP/uffd.conf"
if probe=$("$BIN" --check-config "$TMP/uffd.conf" 2>&1); then
  "$BIN" --once --json --config "$TMP/uffd.conf" >"$TMP/uffd.json" 2>"$TMP/uffd.err"; rc=$?
  if [ $rc = 0 ] && [ "$(json "$TMP/uffd.json" "d['result'], d['backend'], d['verify']['mismatches'], d['verify']['frames_checked'] == d['frames'], d['memory_bytes']")" = "duplexed uffd 0 True 1073741824" ]; then
    pass "backend uffd: 1 GiB duplexed, 0 mismatches ($(json "$TMP/uffd.json" "len(d['passes']), 'passes, blackout', d['blackout']['duration_us'], 'us'"))"
  else fail "backend uffd: rc=$rc $(tail -2 "$TMP/uffd.err")"; fi
else
  echo "SKIP: backend uffd: $probe"
fi

# 3d. The mprotect baseline backend.
printf '[hardware]\nbackend = "mprotect"\n[memory]\nsize = "256MiB"\n' >"$TMP/mprotect.conf"
"$BIN" --once --json --config "$TMP/mprotect.conf" >"$TMP/mprotect.json" 2>"$TMP/mprotect.err"; rc=$?
if [ $rc = 0 ] && [ "$(json "$TMP/mprotect.json" "d['result'], d['backend'], d['verify']['mismatches']")" = "duplexed mprotect 0" ]; then
  pass "backend mprotect: 256 MiB duplexed, 0 mismatches"
else fail "backend mprotect: rc=$rc $(tail -2 "$TMP/mprotect.err")"; fi

# 4. File-backed modules: after --once the two image files are byte-identical (cmp).
MIRRORD_MEMORY_SIZE=256MiB MIRRORD_MEMORY_BACKING=file MIRRORD_MEMORY_STATE_DIR="$TMP/state" "$BIN" --once 2>"$TMP/file.err"; rc=$?
if [ $rc = 0 ] && cmp "$TMP/state/active.img" "$TMP/state/spare.img"; then
  pass "memory.backing = file: cmp active.img spare.img finds them identical ($(stat -c %s "$TMP/state/active.img") bytes)"
else fail "file backing: rc=$rc $(tail -2 "$TMP/file.err")"; fi

# 5. Daemon mode: duplex, stay in lockstep, stop cleanly on SIGTERM.
MIRRORD_MEMORY_SIZE=128MiB "$BIN" 2>"$TMP/daemon.err" &
pid=$!
wait_for "$TMP/daemon.err" "in lockstep until stopped" $pid
kill -TERM $pid; wait $pid; rc=$?
if [ $rc = 0 ] && grep -q "stopped in state duplexed" "$TMP/daemon.err"; then pass "daemon: duplexed, then exit 0 on SIGTERM"
else fail "daemon: rc=$rc $(tail -3 "$TMP/daemon.err")"; fi

# 6. Hostile input and environment: one clear line and a documented exit status, never a crash
#    (exit >= 128), a hang or a false "duplexed".
printf '# c\r\n[duplex]\r\nmax_passes = 0\r\n' >"$TMP/crlf.conf"
out=$(timeout "$HANG" "$BIN" --check-config "$TMP/crlf.conf" 2>&1); rc=$?
if [ $rc = 1 ] && [ "$out" = "$TMP/crlf.conf:3: duplex.max_passes: 0 is out of range (1...100000)" ]; then pass "a CRLF file is read, its error on its line"
else fail "CRLF: rc=$rc $out"; fi
mkfifo "$TMP/fifo.conf"
for f in /dev/zero "$TMP/fifo.conf"; do
  out=$(timeout "$HANG" "$BIN" --check-config "$f" 2>&1); rc=$?
  if [ $rc = 1 ] && grep -q "not a regular file" <<<"$out"; then pass "--check-config $(basename "$f"): refused at once ($out)"
  else fail "--check-config $f: rc=$rc $out"; fi
done
printf '[memory]\nsize = "1TiB"\n' >"$TMP/huge.conf"
out=$(timeout "$HANG" "$BIN" --check-config "$TMP/huge.conf" 2>&1); rc=$?
out2=$(timeout "$HANG" "$BIN" --once --config "$TMP/huge.conf" 2>&1); rc2=$?
if [ $rc = 1 ] && [ $rc2 = 69 ] && grep -q "needs about 2.0 TiB of memory" <<<"$out" && grep -q "needs about 2.0 TiB of memory" <<<"$out2"; then
  pass "memory beyond the machine: check and run agree, exit 69, before any allocation"
else fail "admission: rc=$rc/$rc2 $out / $out2"; fi
printf '[workload]\ncpus = 256\n' >"$TMP/cpus.conf"
out=$(timeout "$HANG" "$BIN" --check-config "$TMP/cpus.conf" 2>&1); rc=$?
if [ $rc = 1 ] && grep -q "cpus.conf:2: workload.cpus: 257 writers" <<<"$out"; then pass "--check-config refuses what the run would: $out"
else fail "cpus = 256: rc=$rc $out"; fi
printf ' S 8000000000000000,4\n M ffffffffffffffff,8\n S 0421c000,99999999999999999999999\n' >"$TMP/large.trace"
MIRRORD_MEMORY_SIZE=64MiB MIRRORD_WORKLOAD_PATTERN=trace MIRRORD_WORKLOAD_TRACE="$TMP/large.trace" timeout "$HANG" "$BIN" --once --json >"$TMP/trace.json" 2>"$TMP/trace.err"; rc=$?
if [ $rc = 0 ] && [ "$(json "$TMP/trace.json" "d['result']")" = duplexed ]; then pass "a trace with addresses of 2^63 and above replays"
else fail "large trace addresses: rc=$rc $(tail -2 "$TMP/trace.err")"; fi
MIRRORD_MEMORY_SIZE=64MiB timeout "$HANG" "$BIN" --once --json >/dev/full 2>"$TMP/full.err"; rc=$?
if [ $rc = 74 ] && grep -q "cannot write the summary to standard output: No space left on device" "$TMP/full.err"; then pass "--json > /dev/full: exit 74 with the reason"
else fail "/dev/full: rc=$rc $(tail -2 "$TMP/full.err")"; fi
# A reader that has gone: the summary's write fails with EPIPE (SIGPIPE ignored), exit 74, no signal.
MIRRORD_MEMORY_SIZE=64MiB timeout "$HANG" "$BIN" --once --json 2>"$TMP/pipe.err" | true; rc=${PIPESTATUS[0]}
if [ $rc = 74 ] && grep -q "cannot write the summary to standard output: Broken pipe" "$TMP/pipe.err"; then pass "--json | (closed pipe): exit 74 with the reason"
else fail "closed pipe: rc=$rc $(tail -2 "$TMP/pipe.err")"; fi
timeout "$HANG" "$BIN" --no-such-flag >/dev/null 2>&1; rc=$?
if [ $rc = 64 ]; then pass "a bad flag: exit 64 (EX_USAGE)"; else fail "bad flag: rc=$rc"; fi
help=$(timeout "$HANG" "$BIN" --help 2>&1)
if grep -q "Exit status: 0 duplexed" <<<"$help" && grep -q "64 bad flags" <<<"$help" && grep -q "75 another mirrord holds" <<<"$help" \
   && grep -q "78 configuration rejected" <<<"$help"; then pass "--help lists the exit statuses"
else fail "--help without the exit statuses"; fi
# The bench is its own executable beside mirrord (make bench), no longer a subcommand of the daemon.
out=$(timeout "$HANG" "$BIN" bench 2>&1); rc=$?
if [ $rc = 64 ] && grep -q "Unexpected argument 'bench'" <<<"$out"; then pass "mirrord bench is gone: exit 64 (the bench is mirrord-bench)"
else fail "mirrord bench: rc=$rc $out"; fi
BENCH="$(dirname "$BIN")/mirrord-bench"
if [ -x "$BENCH" ]; then
  out=$(timeout "$HANG" "$BENCH" --only nosuch 2>&1); rc=$?
  if [ $rc = 64 ] && grep -q 'unknown section "nosuch"' <<<"$out" && timeout "$HANG" "$BENCH" --help 2>&1 | grep -q -- "--policy-svg"; then
    pass "mirrord-bench: its own flags, an unknown section refused with exit 64"
  else fail "mirrord-bench flags: rc=$rc $out"; fi
else echo "SKIP: mirrord-bench (not built beside $BIN)"; fi

if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  # The unprivileged user must reach the binary: the checkout may sit in a private directory.
  mkdir -p "$TMP/public" && chmod 755 "$TMP" "$TMP/public" && install -m 0755 "$BIN" "$TMP/public/mirrord"
  for n in 2 6 9; do
    out=$(cd / && MIRRORD_MEMORY_SIZE=64MiB timeout "$HANG" setpriv --reuid=65534 --regid=65534 --clear-groups prlimit --nproc=$n "$TMP/public/mirrord" --once 2>&1 >/dev/null); rc=$?
    if [ $rc = 69 ] && grep -q "RLIMIT_NPROC" <<<"$out"; then pass "a thread limit of $n: exit 69 at once, no trap, no hang"
    else fail "thread limit $n: rc=$rc $out"; fi
  done
else echo "SKIP: thread limits (needs root and setpriv)"; fi

# The pids cgroup (systemd's TasksMax=), v2 or v1: a limit too low for the runtime's thread pool
# is refused before it starts (it used to hang in libdispatch's retry loop); and a thread refused
# while the machine is built (the limit lowered under a running start-up) is exit 69 with its line.
pids_root=""
for root in /sys/fs/cgroup /sys/fs/cgroup/pids; do
  if [ -e "$root/cgroup.procs" ] && { [ "$root" != /sys/fs/cgroup ] || grep -qw pids "$root/cgroup.subtree_control" 2>/dev/null; }; then
    pids_root=$root; break; fi
done
if [ "$(id -u)" = 0 ] && [ -n "$pids_root" ] && mkdir "$pids_root/mirrord-cli-$$" 2>/dev/null; then
  CG="$pids_root/mirrord-cli-$$"
  for n in 4 6; do
    echo $n >"$CG/pids.max"
    out=$(sh -c 'echo $$ >"$1/cgroup.procs"; MIRRORD_MEMORY_SIZE=64MiB exec timeout -k 5 "$3" "$2" --once 2>&1 >/dev/null' sh "$CG" "$BIN" "$HANG"); rc=$?
    if [ $rc = 69 ] && grep -q "its pids cgroup allows" <<<"$out" && grep -q "TasksMax=" <<<"$out"; then pass "pids.max = $n: exit 69 at once, no hang"
    else fail "pids.max $n: rc=$rc $out"; fi
  done
  # Lowered once the machine is being built (2 GiB: about a second of allocating before its
  # first thread), so that the admission has passed and no thread of the machine exists yet.
  echo max >"$CG/pids.max"
  sh -c 'echo $$ >"$1/cgroup.procs"; MIRRORD_MEMORY_SIZE=2GiB exec timeout -k 5 "$4" "$2" --once --json >"$3/late.json" 2>"$3/late.err"' sh "$CG" "$BIN" "$TMP" "$HANG" & late=$!
  wait_for "$TMP/late.err" "building the machine" $late
  cat "$CG/pids.current" >"$CG/pids.max"
  wait $late; rc=$?
  if [ $rc = 69 ] && grep -q "cannot create thread" "$TMP/late.err" && grep -q "TasksMax=" "$TMP/late.err"; then
    pass "a thread refused while the machine is built: exit 69 with the reason ($(grep -o 'cannot create thread [a-z0-9-]*' "$TMP/late.err"))"
  elif [ $rc = 69 ] && grep -q "memory.size = 2GiB needs" "$TMP/late.err"; then echo "SKIP: a thread refused mid-build (2 GiB does not fit here)"
  else fail "late thread limit: rc=$rc $(tail -2 "$TMP/late.err")"; fi
  # A process killed (by the hang detector) leaves the cgroup only once the kernel has torn it
  # down (2 GiB to free): wait for that, not for a length of time.
  end=$((SECONDS + HANG)); while [ -s "$CG/cgroup.procs" ] && [ $SECONDS -lt $end ]; do sleep 0.05; done
  rmdir "$CG" 2>/dev/null || fail "the test's pids cgroup $CG still holds a process: $(cat "$CG/cgroup.procs" 2>/dev/null)"
else echo "SKIP: pids cgroup limits (needs root and a pids controller)"; fi

# 7. The state directory: one instance at a time; images must be regular files of this user.
mkdir -p "$TMP/locked"
out=$(MIRRORD_MEMORY_SIZE=64MiB MIRRORD_MEMORY_BACKING=file MIRRORD_MEMORY_STATE_DIR="$TMP/locked" \
  flock "$TMP/locked/mirrord.lock" timeout "$HANG" "$BIN" --once 2>&1); rc=$?
if [ $rc = 75 ] && grep -q "memory.state_dir $TMP/locked is in use by another mirrord" <<<"$out" && [ ! -e "$TMP/locked/active.img" ]; then
  pass "a state directory in use: exit 75, no image touched"
else fail "state_dir lock: rc=$rc $out"; fi
# A daemon holds the directory; a second instance on it must be refused, and the daemon's images
# stay identical.
MIRRORD_MEMORY_SIZE=64MiB MIRRORD_MEMORY_BACKING=file MIRRORD_MEMORY_STATE_DIR="$TMP/two" "$BIN" 2>"$TMP/two-a.err" & a=$!
wait_for "$TMP/two-a.err" "in lockstep until stopped" $a
# The service's own threads (named mirrord-…), not the Swift runtime's pool, which grows and
# shrinks by itself.
own_threads() { cat /proc/"$1"/task/*/comm 2>/dev/null | grep -c '^mirrord-'; }
threads_before=$(own_threads $a)
out=$(MIRRORD_MEMORY_SIZE=64MiB MIRRORD_MEMORY_BACKING=file MIRRORD_MEMORY_STATE_DIR="$TMP/two" timeout "$HANG" "$BIN" --once 2>&1); rb=$?
# The scrub's first whole sweep (one slice of 64 MiB, at its first tick, ~5 s) is journalled, and
# lockstep creates no thread (nothing in it may depend on creating one).
wait_for "$TMP/two-a.err" "lockstep holds: scrubbed" $a
threads_after=$(own_threads $a)
if grep -q "lockstep holds: scrubbed 16384 frames (1 whole sweeps of memory) since the duplex, 0 differ" "$TMP/two-a.err" \
   && [ -n "$threads_before" ] && [ "$threads_before" = "$threads_after" ]; then
  pass "in lockstep the scrub's first sweep is journalled; the service's threads stay at $threads_after"
else fail "lockstep: threads $threads_before → $threads_after; $(grep -c 'lockstep holds' "$TMP/two-a.err") lockstep lines"; fi
kill -TERM $a; wait $a; ra=$?
if [ $rb = 75 ] && grep -q "in use by another mirrord (PID $a)" <<<"$out" && [ $ra = 0 ] && cmp -s "$TMP/two/active.img" "$TMP/two/spare.img"; then
  pass "a second instance on a daemon's state directory: exit 75 naming PID $a; the daemon's images identical"
else fail "two instances: daemon $ra, second $rb: $out"; fi
mkdir -p "$TMP/link"; echo precious >"$TMP/precious"; ln -s "$TMP/precious" "$TMP/link/active.img"
out=$(MIRRORD_MEMORY_SIZE=64MiB MIRRORD_MEMORY_BACKING=file MIRRORD_MEMORY_STATE_DIR="$TMP/link" timeout "$HANG" "$BIN" --once 2>&1); rc=$?
if [ $rc = 1 ] && grep -q "active.img: is a symbolic link" <<<"$out" && [ "$(cat "$TMP/precious")" = precious ]; then
  pass "a symlink in place of an image is refused; its target is untouched"
else fail "symlink image: rc=$rc $out"; fi
if [ "$(id -u)" = 0 ] && mkdir -p "$TMP/small" && mount -t tmpfs -o size=16m tmpfs "$TMP/small" 2>/dev/null; then
  out=$(MIRRORD_MEMORY_SIZE=256MiB MIRRORD_MEMORY_BACKING=file MIRRORD_MEMORY_STATE_DIR="$TMP/small" timeout "$HANG" "$BIN" --once 2>&1); rc=$?
  left=$(ls "$TMP/small" | grep -c img)
  umount "$TMP/small"
  if [ $rc = 1 ] && grep -q "cannot reserve 256MiB: No space left on device" <<<"$out" && [ "$left" = 0 ]; then
    pass "a full filesystem: one line naming the image and the size, no SIGBUS, no image left"
  else fail "full filesystem: rc=$rc left=$left $out"; fi
else echo "SKIP: full filesystem (needs root to mount a tmpfs)"; fi
mkdir -p "$TMP/trunc"
MIRRORD_MEMORY_SIZE=64MiB MIRRORD_MEMORY_BACKING=file MIRRORD_MEMORY_STATE_DIR="$TMP/trunc" "$BIN" 2>"$TMP/trunc.err" & pid=$!
wait_for "$TMP/trunc.err" "in lockstep until stopped" $pid
truncate -s 0 "$TMP/trunc/spare.img"
end=$((SECONDS + HANG)); while kill -0 $pid 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.05; done
kill -TERM $pid 2>/dev/null; wait $pid; rc=$?
if [ $rc = 74 ] && grep -q "the spare module went away under the running machine (SIGBUS" "$TMP/trunc.err"; then
  pass "an image truncated under the daemon: exit 74 with one line, no crash"
else fail "truncated image: rc=$rc $(tail -2 "$TMP/trunc.err")"; fi

# 8. Signals while the machine is being built (2 GiB: about a second of allocating and filling,
#    after the "building the machine" line): a clean end with a message; SIGHUP is ignored.
early() {  # early ARGS…: starts mirrord, waits for the line, leaves its pid in $pid
  MIRRORD_MEMORY_SIZE=2GiB "$BIN" "$@" 2>"$TMP/early.err" & pid=$!
  wait_for "$TMP/early.err" "building the machine" $pid
}
if early; then
  kill -HUP $pid; sleep 0.05; kill -TERM $pid; wait $pid; rc=$?
  if [ $rc = 0 ] && grep -q "stopped by SIGTERM during start-up" "$TMP/early.err"; then pass "SIGHUP then SIGTERM while the machine is built: exit 0, 'stopped by SIGTERM during start-up'"
  else fail "signals during start-up: rc=$rc $(tail -2 "$TMP/early.err")"; fi
else wait $pid; echo "SKIP: signals during start-up (2 GiB does not fit here: $(tail -1 "$TMP/early.err"))"; fi
if early --once; then
  kill -INT $pid; wait $pid; rc=$?
  if [ $rc = 1 ] && grep -q "stopped by SIGINT during start-up" "$TMP/early.err"; then pass "SIGINT while a --once machine is built: exit 1 with a message"
  else fail "SIGINT during start-up: rc=$rc $(tail -2 "$TMP/early.err")"; fi
else wait $pid; echo "SKIP: SIGINT during start-up (2 GiB does not fit here)"; fi

# 9. The control socket, hardened (issue 27): each check names its item.
if [ -x "$CTL" ]; then
  S9="$TMP/ctl9/control.sock"
  MIRRORD_MEMORY_SIZE=64MiB MIRRORD_CONTROL_SOCKET="$S9" "$BIN" 2>"$TMP/ctl9.err" & d=$!
  timeout "$HANG" "$CTL" watch --socket "$S9" --until-duplexed >/dev/null 2>&1
  # Only root and mirrord's user can reach the socket (item 2).
  modes="$(stat -c %a "$TMP/ctl9") $(stat -c %a "$S9")"
  if [ "$modes" = "750 600" ]; then pass "the socket's directory is 0750, the socket 0600"
  else fail "control socket modes: $modes (want 750 600)"; fi
  # A slow client cannot keep mirrorctl out (item 5): 32 clients trickling a byte a second are
  # dropped at the request deadline, and mirrorctl gets in.
  python3 - "$S9" >"$TMP/slow.out" 2>&1 <<'PY' & s=$!
import socket, sys, time
clients = []
for _ in range(32):
    c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1]); c.send(b"{"); c.setblocking(False); clients.append(c)
print("connected", flush=True)
told, end = set(), time.time() + 90
while len(told) < 32 and time.time() < end:
    for i, c in enumerate(clients):
        if i in told: continue
        try:
            c.send(b"{")
        except OSError:
            pass
        try:
            if b"request not complete" in c.recv(4096): told.add(i)
        except BlockingIOError:
            pass
        except OSError:
            told.add(i)
    time.sleep(1)
print("told", len(told))
PY
  for _ in $(seq 600); do grep -q connected "$TMP/slow.out" && break; sleep 0.1; done
  # (The clients trickle for up to 90 s, longer than mirrorctl tries: without the deadline they
  # would hold every place throughout; with it they are gone after 5 s.)
  ok=0
  for _ in $(seq 60); do "$CTL" status --socket "$S9" >/dev/null 2>&1 && { ok=1; break; }; sleep 0.5; done
  wait $s
  if [ $ok = 1 ] && grep -q "told 32" "$TMP/slow.out"; then pass "32 slow clients are dropped at the request deadline; mirrorctl status gets in"
  else fail "slow clients: mirrorctl served=$ok, $(cat "$TMP/slow.out")"; fi
  # mirrorctl watch on a steady daemon prints its state at once, though nothing changes (item 8;
  # stdout a file: stdio buffers it as it would a pipe).
  "$CTL" watch --socket "$S9" >"$TMP/steady.out" 2>&1 & w=$!
  for _ in $(seq 600); do grep -q "duplexed: duplexed; verified" "$TMP/steady.out" && break; sleep 0.1; done
  if grep -q "duplexed: duplexed; verified" "$TMP/steady.out"; then pass "mirrorctl watch, not on a terminal, prints the current state at once"
  else fail "mirrorctl watch printed nothing on a steady daemon: $(cat "$TMP/steady.out")"; fi
  kill $w; wait $w 2>/dev/null
  # A failover, then the memory lost: mirrorctl watch shows the final state and why, exit 1 (item 8).
  timeout "$HANG" "$CTL" watch --socket "$S9" >"$TMP/fail.out" 2>"$TMP/fail.err" & w=$!
  for _ in $(seq 600); do grep -q "duplexed: " "$TMP/fail.out" && break; sleep 0.1; done
  "$CTL" inject-fault lost --socket "$S9" >/dev/null
  for _ in $(seq 600); do "$CTL" status --socket "$S9" 2>/dev/null | grep -q "^state: simplex" && break; sleep 0.1; done
  "$CTL" inject-fault lost --socket "$S9" >/dev/null
  wait $w; rc=$?
  wait $d
  if [ $rc = 1 ] && grep -q " failed: " "$TMP/fail.out" && grep -q "mirrorctl: the pair failed: " "$TMP/fail.err"; then
    pass "mirrorctl watch on a failover then memory lost: the final state and why, exit 1 ($(grep -o 'failed: .*' "$TMP/fail.out" | head -1))"
  else fail "mirrorctl watch at the pair's failure: rc=$rc $(tail -2 "$TMP/fail.out") $(cat "$TMP/fail.err")"; fi
fi

# 10. Hardening, third round (issue 27): the state lock, signals from the first instruction.
#     Deleting the lock file frees nothing: the lock is on the state directory itself, so a second
#     instance is refused (exit 75, naming the daemon) and never touches the daemon's images.
MIRRORD_MEMORY_SIZE=64MiB MIRRORD_MEMORY_BACKING=file MIRRORD_MEMORY_STATE_DIR="$TMP/rmlock" "$BIN" 2>"$TMP/rmlock-a.err" & a=$!
if wait_for "$TMP/rmlock-a.err" "in lockstep until stopped" $a; then
  rm -f "$TMP/rmlock/mirrord.lock"
  out=$(MIRRORD_MEMORY_SIZE=64MiB MIRRORD_MEMORY_BACKING=file MIRRORD_MEMORY_STATE_DIR="$TMP/rmlock" timeout "$HANG" "$BIN" --once 2>&1); rb=$?
  kill -TERM $a; wait $a; ra=$?
  if [ $rb = 75 ] && grep -q "memory.state_dir $TMP/rmlock is in use by another mirrord (PID $a)" <<<"$out" && [ $ra = 0 ] \
     && cmp -s "$TMP/rmlock/active.img" "$TMP/rmlock/spare.img"; then
    pass "mirrord.lock deleted under a daemon: a second instance still exits 75 naming PID $a; the daemon's images identical"
  else fail "lock file deleted: daemon $ra, second $rb: $out"; fi
else kill -TERM $a; wait $a; fail "lock file deleted: the daemon never reached lockstep: $(tail -2 "$TMP/rmlock-a.err")"; fi
#     Signals from the first instruction: 200 starts, each sent SIGTERM (or SIGHUP, then SIGTERM)
#     before its exec: the launcher forks with them blocked, sends them to the child, then lets it
#     exec mirrord, so that they are pending when mirrord's first instruction runs, however the
#     machine schedules it (unblocked, the kernel's default would kill in the dynamic loader,
#     before any code of mirrord's). mirrord's first code (a constructor, before the Swift runtime
#     and main) takes them: each run is a clean stop before the machine is built (exit 0 and the
#     line that says so), none killed, none taken late.
signals=$(MIRRORD_MEMORY_SIZE=64MiB timeout "$HANG" python3 - "$BIN" 200 "$TMP/signal.err" <<'PY'
import os, signal, sys
binary, runs, err = sys.argv[1], int(sys.argv[2]), sys.argv[3]
blocked = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
outcomes = {}
for i in range(runs):
    first = signal.SIGHUP if i % 2 else signal.SIGTERM
    before = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    go_read, go_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: blocked mask and pending signals survive the exec
        os.close(go_write)
        os.read(go_read, 1)
        os.dup2(os.open("/dev/null", os.O_WRONLY), 1)
        os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 2)
        os.execv(binary, [binary])
    signal.pthread_sigmask(signal.SIG_SETMASK, before)
    os.close(go_read)
    os.kill(pid, first)
    if first == signal.SIGHUP:
        os.kill(pid, signal.SIGTERM)
    os.write(go_write, b"x")
    os.close(go_write)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status):
        how = f"exit {os.WEXITSTATUS(status)}"
        said = open(err).read()
        if "stopped by SIGTERM during start-up (before the machine was built)" not in said:
            how += " (not taken before the machine was built)"
    else:
        how = f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    key = f"{first.name}: {how}"
    outcomes[key] = outcomes.get(key, 0) + 1
print(", ".join(f"{v}x {k}" for k, v in sorted(outcomes.items())))
PY
); rc=$?
if [ $rc = 0 ] && [ "$signals" = "100x SIGHUP: exit 0, 100x SIGTERM: exit 0" ]; then
  pass "200 signals pending at mirrord's first instruction (SIGTERM; SIGHUP then SIGTERM): every one a clean stop before the machine was built ($signals)"
else fail "signals at start: rc=$rc $signals"; fi

echo "cli: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
