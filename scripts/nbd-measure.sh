#!/usr/bin/env bash
# Times mirrord's pipelined NBD write against nbdcopy: the same 256 MiB of random bytes to the same
# export of a local nbd-server over nbd+unix, in the same run, alternating, each result checked with
# cmp. Not a test; it prints figures (the baseline for `mirrord bench --only remote`).
# Needs nbd-server and libnbd-bin (scripts/setup.sh test) and a built mirrord-nbd-measure.
# Usage: scripts/nbd-measure.sh [MEASURE_BINARY] [SIZE_MiB] [ROUNDS]
set -euo pipefail
bin=${1:-.build/debug/mirrord-nbd-measure}
size=${2:-256}
rounds=${3:-5}
dir=$(mktemp -d)
cleanup() {
  [ -s "$dir/nbd.pid" ] && kill "$(cat "$dir/nbd.pid")" 2>/dev/null || true   # by PID, never by name
  rm -rf "$dir"
}
trap cleanup EXIT
mkdir "$dir/conf.d"   # includedir must exist
truncate -s "${size}M" "$dir/spare.img"
cat >"$dir/nbd.conf" <<CONF
[generic]
    unixsock = $dir/nbd.sock
    includedir = $dir/conf.d
[spare]
    exportname = $dir/spare.img
    flush = true
    fua = true
CONF
nbd-server -C "$dir/nbd.conf" -p "$dir/nbd.pid"   # -p: [generic]'s pidfile is not honoured
uri="nbd+unix:///spare?socket=$dir/nbd.sock"
# The daemon makes its socket after it forks: wait until a client gets in (10 s at most).
for _ in $(seq 200); do nbdinfo --size "$uri" >/dev/null 2>&1 && break; sleep 0.05; done
echo "export: $(nbdinfo --size "$uri") bytes; $(nproc) CPUs; $(uname -r)"
head -c "${size}M" /dev/urandom >"$dir/active.img"

ms() { python3 -c "import sys; print('%.0f' % ((float(sys.argv[2]) - float(sys.argv[1])) * 1e3))" "$@"; }
fresh() { truncate -s 0 "$dir/spare.img"; truncate -s "${size}M" "$dir/spare.img"; }   # unallocated again
declare -A runs
for round in $(seq "$rounds"); do
  for tool in nbdcopy nbdcopy-C1 mirrord mirrord-C2 mirrord-C4; do
    fresh
    t0=$(date +%s.%N)
    case $tool in
      nbdcopy) nbdcopy --flush "$dir/active.img" "$uri" ;;
      nbdcopy-C1) nbdcopy --flush -C 1 --requests=64 --request-size=262144 "$dir/active.img" "$uri" ;;
      mirrord) "$bin" "$uri" "$dir/active.img" 64 262144 1 >"$dir/mirrord.out" ;;
      mirrord-C2) "$bin" "$uri" "$dir/active.img" 64 262144 1 2 >"$dir/mirrord.out" ;;
      mirrord-C4) "$bin" "$uri" "$dir/active.img" 64 262144 1 4 >"$dir/mirrord.out" ;;
    esac
    t1=$(date +%s.%N)
    cmp -s "$dir/active.img" "$dir/spare.img" || { echo "$tool: the export differs from the source" >&2; exit 1; }
    runs[$tool]+=" $(ms "$t0" "$t1")"
    # mirrord's session (connect, write, flush, disconnect), without its start, the source read
    # and the memcpy context; nbdcopy's wall time holds its start and its read of the source too.
    case $tool in mirrord*) runs[$tool-session]+=" $(awk '/^ms-session/ {printf "%.0f", $2}' "$dir/mirrord.out")" ;; esac
  done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for tool in nbdcopy nbdcopy-C1 mirrord mirrord-session mirrord-C2-session mirrord-C4-session; do
  echo "$tool ms:${runs[$tool]} -> median $(echo "${runs[$tool]}" | median)"
done
python3 - "$(echo "${runs[mirrord-session]}" | median)" "$(echo "${runs[mirrord-C2-session]}" | median)" \
  "$(echo "${runs[mirrord-C4-session]}" | median)" "$(echo "${runs[nbdcopy-C1]}" | median)" \
  "$(echo "${runs[nbdcopy]}" | median)" <<'PY'
import sys
m1, m2, m4, c1, c = map(float, sys.argv[1:])
print("ratio mirrord 1 connection / nbdcopy -C 1: %.2f; mirrord 2 / nbdcopy default: %.2f; "
      "mirrord 4 / nbdcopy default: %.2f" % (m1 / c1, m2 / c, m4 / c))
PY
echo "last round, mirrord-C4:"; grep -v '^ms-' "$dir/mirrord.out"
