#!/usr/bin/env bash
# Installs what building (and, with the argument `test`, testing) mirrord needs on a Debian 12
# machine with the Swift toolchain. Idempotent: installs only what is missing. apt-get needs root
# (or sudo).
set -euo pipefail

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
command -v make >/dev/null || need+=(make)
command -v pkg-config >/dev/null || need+=(pkg-config)
have_pkg libsystemd-dev || need+=(libsystemd-dev)
have_pkg libnbd-dev || need+=(libnbd-dev)   # MirrorNBD links libnbd: the remote spare's client
if [ "${1:-}" = test ]; then
  command -v python3 >/dev/null || need+=(python3)
  command -v cmp >/dev/null || need+=(diffutils)
  command -v systemd-nspawn >/dev/null || need+=(systemd-container)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  command -v zstd >/dev/null || need+=(zstd)
  command -v nsenter >/dev/null && command -v flock >/dev/null || need+=(util-linux)
  command -v mandoc >/dev/null || need+=(mandoc)
  command -v nbd-server >/dev/null || need+=(nbd-server)   # MirrorNBDTests serve a real export
  command -v nbdcopy >/dev/null || need+=(libnbd-bin)      # mirrord-bench --only remote times against it
  command -v openssl >/dev/null || need+=(openssl)          # MirrorNBDTests, Tests/remote/tls.sh: TLS certificates
  command -v nbdkit >/dev/null || need+=(nbdkit)            # MirrorNBDTests: TLS with a pre-shared key (nbd-server has none)
  command -v ip >/dev/null && command -v tc >/dev/null || need+=(iproute2)   # Tests/remote: two hosts, link faults
  command -v nft >/dev/null || need+=(nftables)             # Tests/remote: packets to the spare dropped
fi

if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "setup: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
    { $SUDO apt-get update -qq && $SUDO apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
fi

if ! command -v swift >/dev/null && [ ! -x /opt/swift/usr/bin/swift ]; then
  echo "setup: no Swift toolchain found; install Swift 6 (https://www.swift.org/install/) first" >&2
  exit 1
fi
