#!/usr/bin/env bash
# The spare over TLS: nbd-server on the backup host serves its export to TLS clients only
# (force_tls, X.509 certificates made here with openssl: a CA, the server's for its address, a
# client's that it checks against the CA), and mirrord reaches it with nbds:// and
# remote.tls_certificates. Negative controls first, against the same server: the same
# configuration in cleartext (nbd://) is refused by the server, so the session that works is
# TLS; certificates of another CA are refused; nbds:// without credentials is refused by the
# configuration. Then the primary replicates over TLS, is killed with SIGKILL, and the backup's
# takeover (`mirrord takeover --recover-only`, `mirrord-check released`) loses no released store.
#
# Usage: tls.sh BIN_DIR   (root; BIN_DIR holds mirrord and mirrord-check)
set -euo pipefail

bin=$(cd "${1:?usage: tls.sh BIN_DIR}" && pwd)
name=tls
command -v openssl >/dev/null || { echo "$name: openssl is not installed: run scripts/setup.sh test" >&2; exit 1; }

# Makes, in $1, a CA and two certificates signed by it: the server's for the address $2
# (subjectAltName: libnbd checks it over TCP) in $1/server, and a client's in $1/client, laid out
# as libnbd's nbd_set_tls_certificates reads a directory (ca-cert.pem, client-cert.pem,
# client-key.pem).
make_certificates() {
  local d=$1 address=$2 key=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  mkdir -p "$d/client" "$d/server"
  printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n' "$address" >"$d/server.ext"
  printf 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n' >"$d/client.ext"
  openssl req -x509 "${key[@]}" -days 2 -subj "/CN=mirrord test CA" -keyout "$d/ca-key.pem" \
    -out "$d/client/ca-cert.pem" 2>>"$d/openssl.log"
  for side in server client; do
    openssl req "${key[@]}" -subj "/CN=$side" -keyout "$d/$side/$side-key.pem" -out "$d/$side.csr" 2>>"$d/openssl.log"
    openssl x509 -req -in "$d/$side.csr" -CA "$d/client/ca-cert.pem" -CAkey "$d/ca-key.pem" -CAcreateserial \
      -days 2 -extfile "$d/$side.ext" -out "$d/$side/$side-cert.pem" 2>>"$d/openssl.log"
  done
}

# Called by two-hosts.sh once the addresses are known, before nbd-server starts.
before_backup() {
  make_certificates "$dir/tls" "$addr_b"
  make_certificates "$dir/other" "$addr_b"
  # force_tls in [generic]: nothing but STARTTLS before TLS (nbd-server 3.24 has no tlsonly).
  nbd_generic_extra="    certfile = $dir/tls/server/server-cert.pem
    keyfile = $dir/tls/server/server-key.pem
    cacertfile = $dir/tls/client/ca-cert.pem
    force_tls = true"
  remote_extra="tls_certificates = \"$dir/tls/client\""
}
spare_scheme=nbds
. "$(dirname "$0")/two-hosts.sh"

# Runs mirrord with configuration $1 in the primary's namespace, expecting it to refuse to start;
# prints its output.
refused() {
  local out
  if out=$(ip netns exec "$primary" timeout 60 "$bin/mirrord" --config "$1" 2>&1); then
    fail "mirrord started with $1: $out"
  fi
  echo "$out"
}

# 1. The negative control: the same configuration in cleartext. The server serves TLS only.
sed -e "s|spare = \"nbds://|spare = \"nbd://|" -e '/^tls_certificates/d' "$config" >"$dir/plain.conf"
out=$(refused "$dir/plain.conf")
echo "$out" | grep -qF "server requires TLS encryption first" || fail "cleartext: $out"
echo "$name: nbd:// to the TLS-only server refused: $(echo "$out" | grep -oE 'handshake: server requires TLS[^"]*' | head -1)"

# 2. Certificates of another CA: libnbd refuses the server's certificate.
sed -e "s|$dir/tls/client|$dir/other/client|" "$config" >"$dir/other.conf"
out=$(refused "$dir/other.conf")
echo "$out" | grep -qF "certificate verification" || fail "another CA: $out"
echo "$name: certificates of another CA refused: $(echo "$out" | grep -oE 'gnutls_handshake: [^"]*' | head -1)"

# 3. nbds:// without credentials: the configuration is refused before anything connects.
sed -e '/^tls_certificates/d' "$config" >"$dir/bare.conf"
out=$(refused "$dir/bare.conf")
echo "$out" | grep -qF "uses TLS and needs its credentials" || fail "no credentials: $out"
echo "$name: nbds:// without credentials refused by the configuration"

# 4. Over TLS: a sync, epochs, then the primary killed and taken over.
start_primary
wait_for "state replicating (was duplexing)"
echo "$name: replicating over TLS to nbds://$addr_b:10809/spare"
sleep 3
kill -0 "$(cat "$dir/mirrord.pid")" 2>/dev/null || fail "mirrord exited while replicating"
grep -qF "spare host unreachable" "$dir/mirrord.out" && fail "the TLS link was lost while replicating"
kill_primary
epochs=$(wc -l <"$dir/released.log")
[ "$epochs" -gt 0 ] || fail "no epoch released in 3 s of replication"
result=$(takeover_and_check)
echo "$name: killed after $epochs epochs released; $result"
echo "$name: PASS: cleartext, another CA and no credentials refused; replicated over TLS, 0 released stores lost"
