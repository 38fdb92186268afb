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
if [ $rc = 1 ] && grep -q "unknown.conf:2: duplex.threshold: unknown key" <<<"$out"; then pass "an unknown key stops the daemon before it starts"
else fail "unknown key: rc=$rc out=$out"; fi

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

# 3b. The emulated MMU under churn: huge pages, fork and exit, exact; and without the
#     departing-PTE hook, the same churn loses frames and the verify says so.
MIRRORD_MEMORY_SIZE=256MiB MIRRORD_WORKLOAD_CHURN=2000/s MIRRORD_MMU_HUGE_SHARE=0.5 "$BIN" --once --json >"$TMP/churn.json" 2>"$TMP/churn.err"; rc=$?
if [ $rc = 0 ] && [ "$(json "$TMP/churn.json" "d['result'], d['verify']['mismatches'], d['verify']['frames_checked'] == d['frames'], d['hardware_statistics']['forks'] > 0, d['hardware_statistics']['huge_maps'] > 0")" = "duplexed 0 True True True" ]; then
  pass "churn 2000/s with huge pages and fork: duplexed, 0 mismatches ($(json "$TMP/churn.json" "d['hardware_statistics']"))"
else fail "churn run: rc=$rc $(tail -2 "$TMP/churn.err")"; fi
MIRRORD_WORKLOAD_CHURN=2000/s MIRRORD_TRACKING_DEPARTING_HOOK=false "$BIN" --once --json >"$TMP/nohook.json" 2>"$TMP/nohook.err"; rc=$?
if [ $rc = 1 ] && [ "$(json "$TMP/nohook.json" "d['result'], d['verify']['mismatches'] > 0")" = "failed True" ]; then
  pass "tracking.departing_hook = false under churn: exit 1, $(json "$TMP/nohook.json" "d['verify']['mismatches']") frames lost and found by the verify"
else fail "departing hook negative control: rc=$rc $(tail -2 "$TMP/nohook.err")"; fi

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
for _ in $(seq 100); do grep -q "in lockstep until stopped" "$TMP/daemon.err" && break; sleep 0.1; done
kill -TERM $pid; wait $pid; rc=$?
if [ $rc = 0 ] && grep -q "stopped in state duplexed" "$TMP/daemon.err"; then pass "daemon: duplexed, then exit 0 on SIGTERM"
else fail "daemon: rc=$rc $(tail -3 "$TMP/daemon.err")"; fi

echo "cli: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
