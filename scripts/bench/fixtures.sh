#!/usr/bin/env bash
# The loopback fixtures of benches/compare.sh, beside (not inside) the shared interop
# environment: a private signed root with three child zones on our own nsd and validating
# unbound, and the Rust XMPP fixture for the 1,000 generated domains.
#
#   scripts/bench/fixtures.sh up BIN_DIR     # BIN_DIR holds cw-xmpp-fixture
#   scripts/bench/fixtures.sh down
#
# Addresses and ports (nobody else uses them):
#   nsd        127.0.0.52:6353     authoritative for ., bench., match.test., multi.test.
#   unbound    127.0.0.52:6354 (and :53) validating, trust anchor $DIR/root.key, stub to nsd
#   fixture    127.0.0.50:5222/5223/5269/5270  cw-xmpp-fixture, d0000.bench .. d0999.bench,
#              and *:7222 for wide.bench (128 addresses 127.0.1.1-128: in-flight probes)
#   Prosody    127.0.0.1:5222..5270 (the shared interop environment's) for match.test and,
#              through cw-delay-proxy on 127.0.0.51, multi.test
#
# Zones (ECDSAP256SHA256, one key per zone, NSEC):
#   bench.        1,000 domains dNNNN.bench: one SRV _xmpp-client._tcp -> xmpp.dNNNN.bench,
#                 _xmpp-server._tcp SRV "." (not offered), A 127.0.0.50, TLSA 3 1 1 of the fixture's P-256 and RSA-2048 keys
#   match.test.   all four SRV -> xmpp.match.test, A 127.0.0.1 (Prosody), TLSA of its keys
#   multi.test.   the same, A 127.0.0.51 (the delay proxy in front of Prosody)
set -euo pipefail

DIR=${CW_BENCH_DIR:-/tmp/certwatch-bench}
N=${CW_BENCH_DOMAINS:-1000}
PKI=${CW_BENCH_PROSODY_PKI:-/tmp/certwatch-interop/pki}
NS_ADDR=127.0.0.52

die() { echo "fixtures.sh: $*" >&2; exit 1; }

spki_hash() { # cert.pem -> sha256 hex of its SPKI
    openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform DER |
        openssl dgst -sha256 -r | cut -d' ' -f1
}

keygen() { # zone -> key basename (in $DIR/keys)
    (cd "$DIR/keys" && ldns-keygen -a ECDSAP256SHA256 -k "$1")
}

sign() { # zone file key -> file.signed
    local origin=$1 file=$2 key=$3
    ldns-signzone -o "$origin" "$file" "$DIR/keys/$key"
}

soa() { echo "$1 3600 IN SOA ns.root. hostmaster.root. 1 3600 600 86400 60"; echo "$1 3600 IN NS ns.root."; }

xmpp_zone() { # origin address ec rsa
    local o=$1 ip=$2 ec=$3 rsa=$4
    soa "$o"
    for s in "xmpp-client 5222" "xmpps-client 5223" "xmpp-server 5269" "xmpps-server 5270"; do
        set -- $s
        echo "_$1._tcp.$o 3600 IN SRV 0 0 $2 xmpp.$o"
        echo "_$2._tcp.xmpp.$o 3600 IN TLSA 3 1 1 $ec"
        echo "_$2._tcp.xmpp.$o 3600 IN TLSA 3 1 1 $rsa"
    done
    echo "xmpp.$o 3600 IN A $ip"
}

up() {
    local bin=${1:-}
    [ -n "$bin" ] && [ -x "$bin/cw-xmpp-fixture" ] || die "usage: up BIN_DIR (with cw-xmpp-fixture)"
    for t in nsd unbound ldns-keygen ldns-signzone dig; do
        command -v "$t" >/dev/null || die "$t missing (apt-get install nsd unbound ldnsutils bind9-dnsutils)"
    done
    [ -r "$PKI/host-ec.crt" ] || die "Prosody's PKI not found in $PKI (scripts/interop-env up)"
    down 2>/dev/null || true
    # Only what this script makes: compare.sh keeps its results in $DIR/results.
    rm -rf "$DIR/keys" "$DIR/zones" "$DIR/nsd" "$DIR/unbound"
    mkdir -p "$DIR/keys" "$DIR/zones" "$DIR/nsd" "$DIR/unbound"

    local fx_ec fx_rsa p_ec p_rsa
    read -r fx_ec < <("$bin/cw-xmpp-fixture" --print-tlsa | sed -n 1p)
    read -r fx_rsa < <("$bin/cw-xmpp-fixture" --print-tlsa | sed -n 2p)
    p_ec=$(spki_hash "$PKI/host-ec.crt"); p_rsa=$(spki_hash "$PKI/host-rsa.crt")

    # bench.: N generated domains
    {
        soa bench.
        for i in $(seq 0 $((N - 1))); do
            d=$(printf 'd%04d.bench.' "$i")
            echo "_xmpp-client._tcp.$d 3600 IN SRV 0 0 5222 xmpp.$d"
            echo "_xmpp-server._tcp.$d 3600 IN SRV 0 0 0 ."
            echo "xmpp.$d 3600 IN A 127.0.0.50"
            echo "_5222._tcp.xmpp.$d 3600 IN TLSA 3 1 1 $fx_ec"
            echo "_5222._tcp.xmpp.$d 3600 IN TLSA 3 1 1 $fx_rsa"
        done
        # wide.bench: one endpoint with 128 addresses, for RSS per in-flight probe
        echo "_xmpp-client._tcp.wide.bench. 3600 IN SRV 0 0 7222 xmpp.wide.bench."
        echo "_xmpp-server._tcp.wide.bench. 3600 IN SRV 0 0 0 ."
        for i in $(seq 1 128); do echo "xmpp.wide.bench. 3600 IN A 127.0.1.$i"; done
        echo "_7222._tcp.xmpp.wide.bench. 3600 IN TLSA 3 1 1 $fx_ec"
        echo "_7222._tcp.xmpp.wide.bench. 3600 IN TLSA 3 1 1 $fx_rsa"
    } > "$DIR/zones/bench.zone"
    seq 0 $((N - 1)) | while read -r i; do printf 'd%04d.bench\n' "$i"; done > "$DIR/domains.txt"
    xmpp_zone match.test. 127.0.0.1 "$p_ec" "$p_rsa" > "$DIR/zones/match.test.zone"
    xmpp_zone multi.test. 127.0.0.51 "$p_ec" "$p_rsa" > "$DIR/zones/multi.test.zone"

    local root_ds=""
    for z in bench. match.test. multi.test.; do
        k=$(keygen "$z")
        sign "$z" "$DIR/zones/${z}zone" "$k"
        root_ds+="$(ldns-key2ds -n -2 "$DIR/keys/$k.key")"$'\n'
        root_ds+="$z 3600 IN NS ns.root."$'\n'
    done
    {
        soa .
        echo "ns.root. 3600 IN A $NS_ADDR"
        printf '%s' "$root_ds"
    } > "$DIR/zones/root.zone"
    k=$(keygen .)
    sign . "$DIR/zones/root.zone" "$k"
    cp "$DIR/keys/$k.key" "$DIR/root.key"

    cat > "$DIR/nsd.conf" <<NSD
server:
  ip-address: $NS_ADDR@6353
  do-ip6: no
  username: ""
  chroot: ""
  server-count: 1
  verbosity: 1
  zonesdir: "$DIR/zones"
  database: ""
  zonelistfile: "$DIR/nsd/zone.list"
  xfrdfile: "$DIR/nsd/xfrd.state"
  xfrdir: "$DIR/nsd"
  pidfile: "$DIR/nsd/nsd.pid"
remote-control:
  control-enable: no
zone:
  name: "."
  zonefile: "root.zone.signed"
zone:
  name: "bench."
  zonefile: "bench.zone.signed"
zone:
  name: "match.test."
  zonefile: "match.test.zone.signed"
zone:
  name: "multi.test."
  zonefile: "multi.test.zone.signed"
NSD
    cat > "$DIR/unbound.conf" <<UNB
server:
  interface: $NS_ADDR@6354
  # the same resolver on port 53, for peers that read resolv.conf (danetool, in a mount
  # namespace whose /etc/resolv.conf says nameserver $NS_ADDR)
  interface: $NS_ADDR@53
  do-ip6: no
  username: ""
  chroot: ""
  directory: "$DIR/unbound"
  pidfile: "$DIR/unbound/unbound.pid"
  use-syslog: no
  logfile: "$DIR/unbound/unbound.log"
  verbosity: 0
  num-threads: 1
  msg-cache-size: 64m
  rrset-cache-size: 128m
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "validator iterator"
  trust-anchor-file: "$DIR/root.key"
  local-zone: "test." nodefault
remote-control:
  control-enable: no
stub-zone:
  name: "."
  stub-addr: $NS_ADDR@6353
stub-zone:
  name: "bench."
  stub-addr: $NS_ADDR@6353
stub-zone:
  name: "match.test."
  stub-addr: $NS_ADDR@6353
stub-zone:
  name: "multi.test."
  stub-addr: $NS_ADDR@6353
UNB
    nsd -c "$DIR/nsd.conf" -P "$DIR/nsd/nsd.pid"
    unbound -c "$DIR/unbound.conf"
    "$bin/cw-xmpp-fixture" --domains-file "$DIR/domains.txt" --domain wide.bench --threads 1 \
        --c2s 0.0.0.0:7222 --c2s 127.0.0.50:5222 --c2s-direct 127.0.0.50:5223 \
        --s2s 127.0.0.50:5269 --s2s-direct 127.0.0.50:5270 \
        > "$DIR/fixture.log" 2>&1 &
    echo $! > "$DIR/fixture.pid"
    for _ in $(seq 50); do
        if dig +short +dnssec @$NS_ADDR -p 6354 _xmpp-client._tcp.match.test SRV | grep -q 5222 &&
            grep -q ready "$DIR/fixture.log"; then
            break
        fi
        sleep 0.2
    done
    dig +dnssec @$NS_ADDR -p 6354 _5222._tcp.xmpp.d0000.bench TLSA | grep -q 'flags:.* ad' ||
        die "unbound does not validate bench. (see $DIR/unbound/unbound.log)"
    echo "fixtures up in $DIR (resolver $NS_ADDR:6354, trust anchor $DIR/root.key)"
}

down() {
    for f in "$DIR/fixture.pid" "$DIR/unbound/unbound.pid" "$DIR/nsd/nsd.pid"; do
        [ -r "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    return 0
}

case "${1:-}" in
    up) shift; up "$@" ;;
    down) down ;;
    *) echo "usage: $0 up BIN_DIR | down" >&2; exit 2 ;;
esac
