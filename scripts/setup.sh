#!/usr/bin/env bash
# Installs what building and testing mirrord needs on a Debian 12 machine with the Swift toolchain
# (/opt/swift). Idempotent: installs only what is missing. Needs root (or sudo) for apt-get.
set -euo pipefail

need=()
command -v make >/dev/null || need+=(make)
command -v python3 >/dev/null || need+=(python3)
command -v cmp >/dev/null || need+=(diffutils)
command -v pkg-config >/dev/null || need+=(pkg-config)

if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "setup: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
    { $SUDO apt-get update -qq && $SUDO apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
fi

if ! command -v swift >/dev/null; then
  if [ -x /opt/swift/usr/bin/swift ]; then
    echo "setup: swift is at /opt/swift/usr/bin; add it to PATH" >&2
  else
    echo "setup: no Swift toolchain found; install Swift 6 (https://www.swift.org/install/) first" >&2
    exit 1
  fi
fi
