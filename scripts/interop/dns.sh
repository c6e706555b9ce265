# The DNS part of the interop environment: a private DNSSEC-signed root `.` that delegates
# `test.`, which delegates one zone per scenario. All zones are served by ONE nsd; an unbound
# trusts the private root and validates (a stub-zone per served zone, all -> nsd: the zones' NS
# imply port 53, where nothing of ours listens).
# shellcheck shell=bash
#
# Ports and the silent address can be moved for a second, private instance:
#   CERTWATCH_INTEROP_DIR=/tmp/x CW_DNS_NSD_PORT=5363 CW_DNS_UNBOUND_PORT=5364 \
#   CW_DNS_SILENT_ADDR=127.0.0.201 scripts/interop-env up pki dns
#
#   nsd      127.0.0.1:$CW_DNS_NSD_PORT (5353)       authoritative for every zone below (no recursion)
#   unbound  127.0.0.1:$CW_DNS_UNBOUND_PORT (5354)   validating resolver, trust anchor = root DNSKEY
#   silent   127.0.0.200:53 (udp+tcp)               accepts queries and never answers (`dead`)
#
# Files in $CW_DIR/dns: keys/ (kept across up/down, so the trust anchor is stable), zones/
# (regenerated and re-signed by every `up`: signatures last 30 days from then, and those of
# `expiring` 2 days, so an environment left up for days needs another `up`), root.key (the trust anchor, ldns .key format:
# one DNSKEY line), root.ds, nsd.conf, unbound.conf, scenarios.tsv.
#
# The description (describe/dns.json, key `dns` of env.json): nsd, unbound, silent (IP:PORT),
# trust_anchor (path of the root DNSKEY file), trust_anchor_ds, zones_dir, signed_at (unix
# time of this `up`), ports, hosts, scenarios.<name>.{domain, dnssec, expect, targets
# (SRV targets, or the domain itself without SRV), tlsa_keys (pki key names whose 3 1 1 the
# targets' TLSA RRsets publish), notes, zone}, and zones.<zone>.{signed, denial,
# nsec3_iterations, rrsig_inception, rrsig_expiration, key_tag}.
#
# Hosts (zone hosts.test, secure, NSEC). TLSA at _<port>._tcp.<host> for the four ports
# 5222 (c2s STARTTLS), 5223 (c2s direct TLS), 5269 (s2s STARTTLS), 5270 (s2s direct TLS):
#   xmpp.hosts.test      A 127.0.0.1   TLSA 3 1 1 host-ec, 3 1 1 host-rsa   (Prosody)
#   ejabberd.hosts.test  A 127.0.0.2   TLSA 3 1 1 ejabberd-ec                (ejabberd)
#
# Scenarios (XMPP service domains; `expect` is certwatch's domain verdict when Prosody and
# ejabberd serve their keys; the names are a stable interface, keyed on by the tests):
#   match        secure (NSEC). SRV x4 -> xmpp.match.test (A 127.0.0.1, own TLSA host-ec+host-rsa). match
#   mismatch     secure. SRV x4 -> xmpp.mismatch.test (A 127.0.0.5, the second Prosody, which
#                presents other-ec) whose TLSA pins host-ec, the first Prosody's key. mismatch
#   multi-wrong  secure; SRV x4 -> xmpp.hosts.test and xmpp.multi-wrong.test (both prio 0; the
#                latter A 127.0.0.5 = the second Prosody, TLSA host-ec+host-rsa). Several targets,
#                one of them wrong: mismatch (xmpp.hosts.test entries match, the other mismatch)
#   replay       secure; SRV x4 -> xmpp.replay.test (A 127.0.0.4, the replay server: genuine
#                host-ec chain, handshake signed with other-ec), TLSA host-ec. mismatch
#                (reason unproven-key)
#   down         secure; SRV x4 -> xmpp.down.test (A 127.0.0.8, where nothing listens: the server is
#                down), TLSA host-ec+host-rsa. indeterminate (connection refused), never an alert
#   alert.test   (not a scenario: described by the alerts part) secure; c2s SRV only ->
#                xmpp.alert.test:5222 (A 127.0.0.21, where the alert drills start their own
#                Prosody), TLSA host-ec. Only the server's alert drills use it.
#   drill.test   (not a scenario: described by the hostile part) secure; c2s SRV only ->
#                xmpp.drill.test:5222 (A 127.0.0.6, the main Prosody), TLSA host-ec+host-rsa;
#                the other services' SRV target is ".". Only the hostile-exit drill uses it.
#   nodata       secure (NSEC). SRV x4 -> xmpp.nodata.test (A 127.0.0.1), no TLSA: NODATA at
#                _5222/_5269._tcp.xmpp.nodata.test (names that hold a TXT), NXDOMAIN at _5223/_5270,
#                both NSEC-proven. no-records
#   nodata3      as nodata, NSEC3 (0 iterations, no salt). no-records
#   insecure     no DS in test.: insecure delegation. SRV x4 -> xmpp.insecure.test (A 127.0.0.1)
#                with TLSA host-ec+host-rsa that must NOT be used (unsigned). no-dnssec.
#                The zone also holds v6.insecure.test AAAA ::1 (used by `split`).
#   insecure-srv insecure zone whose SRV x4 -> xmpp.hosts.test (secure host, secure TLSA). no-dnssec
#   bogus        secure, tampered after signing: TLSA signed as {other-ec, host-rsa}, then the
#                other-ec data replaced by host-ec, so a non-validating client sees a "match". bogus
#   expired      secure, every RRSIG expired yesterday (inception 31 days ago). bogus
#   bogus-ds     the DS in test. is of a key that does not sign the zone (no matching DNSKEY). bogus
#   cross        secure; SRV x4 -> xmpp.hosts.test (target in another secure zone). match
#   multi        secure; SRV x4 -> xmpp.hosts.test (prio 0), ejabberd.hosts.test (prio 0) and
#                dual.multi.test (prio 10, A 127.0.0.1 + AAAA ::1, TLSA host-ec+host-rsa). match
#   nosrv        secure, no SRV at all (NSEC proof), apex A 127.0.0.1 with TLSA at
#                _5222._tcp.nosrv.test and _5269._tcp.nosrv.test: the RFC 6120 fallback. match
#   nsec3-150    NSEC3 with 150 iterations; SRV -> xmpp.nsec3-150.test, no TLSA. RFC 9276 /
#                hickory treat >100 iterations as insecure: no-dnssec + warning nsec3-iterations.
#                (unbound 1.17 accepts 150 for 256-bit keys and calls the NODATA secure.)
#   nsec3-600    as nsec3-150 with 600 iterations: above 500, bogus (unbound: insecure).
#   dead         DS in test. but delegated to ns.dead.test = 127.0.0.200:53 where `silent`
#                never answers. indeterminate. (Through nsd directly the answer is a referral,
#                which hickory validating from nsd reports as DnssecBogus: ask unbound for this one.)
#   cname        secure; SRV x4 -> xmpp.cname.test (A 127.0.0.1) whose TLSA owners are CNAMEs to
#                _<port>._tcp.xmpp.hosts.test (RFC 7671 section 7). match
#   wildcard     secure; SRV x4 -> xmpp.wildcard.test with TLSA only at *._tcp.xmpp.wildcard.test
#                (wildcard expansion, NSEC proof of no closer match). match. hickory 0.26.3 calls
#                it bogus (its NSEC wildcard-expansion bug, hickory-dns PR 3812); unbound says secure.
#   wildcard3    as wildcard in an NSEC3 zone (0 iterations). match
#   large        secure; TLSA RRset of 40 decoy `3 1 2` records + host-ec + host-rsa (about
#                3.5 kB with the RRSIG): too large for UDP, needs the TCP fallback. match
#   expiring     secure; RRSIGs made 28 days ago that expire in 2 days: match + warning
#                signature-expiring (less than 1/4 of the lifetime and less than 7 days left)
#   split        secure SRV x4 -> v4.split.test (secure A 127.0.0.1, secure TLSA) and
#                v6.insecure.test (AAAA ::1 in the insecure zone), same priority. The v4 endpoint
#                is match, the v6 endpoint no-dnssec; domain: no-dnssec. (One owner name cannot
#                hold a secure A and an insecure AAAA: zones are cut at names, not types.)
#   notls        secure; c2s/s2s SRV -> xmpp.notls.test = 127.0.0.3 (the xmpp part's Prosody without
#                STARTTLS) with a secure TLSA: protocol-error, critical on a DANE endpoint
#   dot          secure; STARTTLS SRV -> xmpp.hosts.test, direct-TLS SRV target "." (not offered). match

CW_DNS_NSD_PORT=${CW_DNS_NSD_PORT:-5353}
CW_DNS_UNBOUND_PORT=${CW_DNS_UNBOUND_PORT:-5354}
CW_DNS_SILENT_ADDR=${CW_DNS_SILENT_ADDR:-127.0.0.200}
# The address of the `down` scenario's server: nothing of ours listens there.
CW_DNS_DOWN_ADDR=127.0.0.8
CW_DNS_TTL=60
# The four XMPP ports that carry TLSA records (c2s, c2s direct TLS, s2s, s2s direct TLS).
CW_DNS_PORTS=(5222 5223 5269 5270)

dns_packages() { echo nsd unbound ldnsutils dnsutils python3; }

# _dns_load_spki: reads the 3 1 1 data of the PKI keys from describe/pki.json, once.
declare -gA CW_DNS_SPKI=()
_dns_load_spki() {
  local name hash
  while read -r name hash; do CW_DNS_SPKI[$name]=$hash; done < <(python3 -c '
import json, sys
for n, k in json.load(open(sys.argv[1]))["keys"].items():
    print(n, k["spki_sha256"])' "$CW_DIR/describe/pki.json")
  for name in host-ec host-rsa other-ec ejabberd-ec; do
    [[ ${CW_DNS_SPKI[$name]:-} =~ ^[0-9a-f]{64}$ ]] \
      || cw_die "dns: no spki_sha256 for $name in $CW_DIR/describe/pki.json (run the pki part first)"
  done
}

# _dns_spki KEYNAME: the 3 1 1 data of a PKI key.
_dns_spki() { echo "${CW_DNS_SPKI[$1]}"; }

# _dns_key ZONE [TAG]: the base path of ZONE's signing key (created once, kept across runs).
_dns_key() {
  local zone=$1 tag=${2:-main} dir base
  dir="$CW_DIR/dns/keys/${zone%.}.$tag"
  [ "$zone" = "." ] && dir="$CW_DIR/dns/keys/root.$tag"
  mkdir -p "$dir"
  base=$(find "$dir" -name 'K*.private' -print -quit)
  if [ -z "$base" ]; then
    base=$(cd "$dir" && ldns-keygen -a ECDSAP256SHA256 -k "$zone") || cw_die "dns: ldns-keygen $zone"
    base="$dir/$base.private"
  fi
  echo "${base%.private}"
}

# _dns_head ZONE: $ORIGIN, $TTL, SOA and NS of a zone file.
_dns_head() {
  # shellcheck disable=SC2016 # $ORIGIN and $TTL are zone-file directives, not shell
  printf '$ORIGIN %s\n$TTL %s\n' "$1" "$CW_DNS_TTL"
  printf '@ SOA ns.nic.test. hostmaster.nic.test. %s 3600 600 86400 %s\n' "$(date +%s)" "$CW_DNS_TTL"
  printf '@ NS ns.nic.test.\n'
}

# _dns_srv TARGET [PRIO [WEIGHT]]: the four SRV records of the zone's apex domain.
_dns_srv() {
  local t=$1 p=${2:-0} w=${3:-0}
  printf '_xmpp-client._tcp  SRV %s %s 5222 %s\n' "$p" "$w" "$t"
  printf '_xmpps-client._tcp SRV %s %s 5223 %s\n' "$p" "$w" "$t"
  printf '_xmpp-server._tcp  SRV %s %s 5269 %s\n' "$p" "$w" "$t"
  printf '_xmpps-server._tcp SRV %s %s 5270 %s\n' "$p" "$w" "$t"
}

# _dns_tlsa HOST KEYNAME...: `3 1 1` TLSA records at _<port>._tcp.HOST for the four ports.
_dns_tlsa() {
  local host=$1 port k; shift
  for port in "${CW_DNS_PORTS[@]}"; do
    for k in "$@"; do printf '_%s._tcp.%s TLSA 3 1 1 %s\n' "$port" "$host" "$(_dns_spki "$k")"; done
  done
}

# _dns_sign ZONE MODE...: signs zones/ZONE.zone into zones/ZONE.served. MODE words:
#   nsec3:N (NSEC3, N iterations, no salt), expired, expiring, unsigned
_dns_sign() {
  local zone=$1 z="$CW_DIR/dns/zones" name key now inception expiration denial=nsec iter=0 m
  shift
  name=${zone%.}; [ "$zone" = "." ] && name=root
  now=$(date +%s)
  inception=$((now - 3600)) expiration=$((now + 30 * 86400))
  for m in "$@"; do
    case $m in
      unsigned)
        cp "$z/$name.zone" "$z/$name.served"
        printf '%s\tfalse\t\t\t\t\t\n' "$zone" >>"$CW_DIR/dns/zones.tsv"
        return 0 ;;
      nsec3:*) denial=nsec3 iter=${m#nsec3:} ;;
      expired) inception=$((now - 31 * 86400)) expiration=$((now - 86400)) ;;
      expiring) inception=$((now - 28 * 86400)) expiration=$((now + 2 * 86400)) ;;
      *) cw_die "dns: unknown sign mode $m" ;;
    esac
  done
  local args=(-i "$inception" -e "$expiration")
  [ "$denial" = nsec3 ] && args+=(-n -t "$iter")
  key=$(_dns_key "$zone")
  printf '%s\ttrue\t%s\t%s\t%s\t%s\t%s\n' "$zone" "$denial" "$iter" "$inception" "$expiration" \
    "$(basename "$key" | sed 's/.*+//')" >>"$CW_DIR/dns/zones.tsv"
  # (its warnings about NSEC3 iterations are expected: the nsec3-* scenarios want them)
  ldns-signzone "${args[@]}" -o "$zone" -f "$z/$name.served" "$z/$name.zone" "$key" 2>"$z/$name.log" \
    || { cat "$z/$name.log" >&2; cw_die "dns: ldns-signzone $zone failed"; }
}

# _dns_ds ZONE [TAG]: the DS line (SHA-256) of ZONE's key.
_dns_ds() { ldns-key2ds -n -2 "$(_dns_key "$1" "${2:-main}").key" || cw_die "dns: ldns-key2ds $1"; }

# _dns_scenario NAME DNSSEC EXPECT TARGETS TLSA_KEYS NOTES: one row of the description.
_dns_scenario() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$CW_DIR/dns/scenarios.tsv"
}

# _dns_zones: writes and signs every zone, leaving zones/*.served and zones.conf (nsd).
_dns_zones() {
  local d="$CW_DIR/dns" z="$CW_DIR/dns/zones" i
  rm -rf "$z"; mkdir -p "$z"; : >"$d/scenarios.tsv"; : >"$d/zones.tsv"
  local secure=(hosts match mismatch nodata nodata3 bogus expired cross multi nosrv nsec3-150
    nsec3-600 cname wildcard wildcard3 large expiring split notls dot multi-wrong replay drill down alert)
  local insecure=(insecure insecure-srv)

  { _dns_head hosts.test.
    printf 'xmpp A %s\nejabberd A %s\n' "$CW_PROSODY_ADDR" "$CW_EJABBERD_ADDR"
    _dns_tlsa xmpp host-ec host-rsa
    _dns_tlsa ejabberd ejabberd-ec
  } >"$z/hosts.test.zone"

  { _dns_head match.test.; _dns_srv xmpp.match.test.
    printf 'xmpp A 127.0.0.1\n'; _dns_tlsa xmpp host-ec host-rsa; } >"$z/match.test.zone"
  _dns_scenario match secure match xmpp.match.test host-ec,host-rsa \
    "secure NSEC zone; SRV x4 to its own host xmpp.match.test, TLSA 3 1 1 host-ec and host-rsa"

  { _dns_head mismatch.test.; _dns_srv xmpp.mismatch.test.
    printf 'xmpp A %s\n' "$CW_OTHER_ADDR"; _dns_tlsa xmpp host-ec; } >"$z/mismatch.test.zone"
  _dns_scenario mismatch secure mismatch xmpp.mismatch.test host-ec \
    "secure; SRV x4 to xmpp.mismatch.test = $CW_OTHER_ADDR, a second Prosody that presents another key (other-ec), while the TLSA pins the first Prosody's key (host-ec)"

  { _dns_head multi-wrong.test.
    _dns_srv xmpp.hosts.test. 0 50; _dns_srv xmpp.multi-wrong.test. 0 50
    printf 'xmpp A %s\n' "$CW_OTHER_ADDR"; _dns_tlsa xmpp host-ec host-rsa; } >"$z/multi-wrong.test.zone"
  _dns_scenario multi-wrong secure mismatch "xmpp.hosts.test,xmpp.multi-wrong.test" host-ec,host-rsa \
    "several targets, one of them wrong: SRV x4 to xmpp.hosts.test (the first Prosody, match) and xmpp.multi-wrong.test = $CW_OTHER_ADDR (the second Prosody, other-ec, while its TLSA pins host-ec+host-rsa: mismatch), same priority; domain mismatch"

  { _dns_head replay.test.; _dns_srv xmpp.replay.test.
    printf 'xmpp A %s\n' "$CW_REPLAY_ADDR"; _dns_tlsa xmpp host-ec; } >"$z/replay.test.zone"
  _dns_scenario replay secure mismatch xmpp.replay.test host-ec \
    "SRV x4 to xmpp.replay.test = $CW_REPLAY_ADDR, the replay server: it presents the genuine host-ec chain (pinned by the TLSA) but signs the handshake with other-ec. mismatch with reason unproven-key"

  { _dns_head down.test.; _dns_srv xmpp.down.test.
    printf 'xmpp A %s\n' "$CW_DNS_DOWN_ADDR"; _dns_tlsa xmpp host-ec host-rsa; } >"$z/down.test.zone"
  _dns_scenario down secure indeterminate xmpp.down.test host-ec,host-rsa \
    "secure DNS with TLSA, but the server is down: SRV x4 to xmpp.down.test = $CW_DNS_DOWN_ADDR where nothing listens (connection refused). indeterminate, not an alert"

  # The hostile-exit drill's domain: not a scenario (described by the hostile part), c2s only.
  { _dns_head drill.test.
    printf '_xmpp-client._tcp SRV 0 0 5222 xmpp.drill.test.\n_xmpp-server._tcp SRV 0 0 0 .\n'
    printf '_xmpps-client._tcp SRV 0 0 0 .\n_xmpps-server._tcp SRV 0 0 0 .\n'
    printf 'xmpp A %s\n' "$CW_DRILL_ADDR"
    printf '_5222._tcp.xmpp TLSA 3 1 1 %s\n' "$(_dns_spki host-ec)" "$(_dns_spki host-rsa)"
  } >"$z/drill.test.zone"

  # The alert drills' domain (issue 9): the tests start and swap its server themselves.
  { _dns_head alert.test.
    printf '_xmpp-client._tcp SRV 0 0 5222 xmpp.alert.test.\n_xmpp-server._tcp SRV 0 0 0 .\n'
    printf '_xmpps-client._tcp SRV 0 0 0 .\n_xmpps-server._tcp SRV 0 0 0 .\n'
    printf 'xmpp A %s\n' "$CW_ALERT_ADDR"
    printf '_5222._tcp.xmpp TLSA 3 1 1 %s\n' "$(_dns_spki host-ec)"
  } >"$z/alert.test.zone"

  local n
  for n in nodata nodata3; do
    { _dns_head "$n.test."; _dns_srv "xmpp.$n.test."; printf 'xmpp A 127.0.0.1\n'
      printf '_%s._tcp.xmpp TXT "a name without TLSA"\n' 5222 5269; } >"$z/$n.test.zone"
  done
  _dns_scenario nodata secure no-records xmpp.nodata.test "" \
    "secure NSEC zone; SRV x4 to xmpp.nodata.test which has no TLSA: NODATA at _5222/_5269._tcp.xmpp.nodata.test (the names hold a TXT), NXDOMAIN at _5223/_5270, both NSEC-proven"
  _dns_scenario nodata3 secure no-records xmpp.nodata3.test "" \
    "as nodata (NODATA at 5222/5269, NXDOMAIN at 5223/5270), denial by NSEC3 (0 iterations, no salt)"

  { _dns_head insecure.test.; _dns_srv xmpp.insecure.test.
    printf 'xmpp A 127.0.0.1\n'; _dns_tlsa xmpp host-ec host-rsa
    printf 'v6 AAAA ::1\n'; _dns_tlsa v6 host-ec host-rsa; } >"$z/insecure.test.zone"
  _dns_scenario insecure insecure no-dnssec xmpp.insecure.test host-ec,host-rsa \
    "unsigned zone, no DS in test. (insecure delegation); its TLSA would match but must not be used"

  { _dns_head insecure-srv.test.; _dns_srv xmpp.hosts.test.; } >"$z/insecure-srv.test.zone"
  _dns_scenario insecure-srv insecure no-dnssec xmpp.hosts.test host-ec,host-rsa \
    "SRV in an insecure zone pointing at the secure host xmpp.hosts.test (secure A and TLSA): DANE does not apply"

  { _dns_head bogus.test.; _dns_srv xmpp.bogus.test.
    printf 'xmpp A 127.0.0.1\n'; _dns_tlsa xmpp other-ec host-rsa; } >"$z/bogus.test.zone"
  _dns_scenario bogus bogus bogus xmpp.bogus.test host-ec,host-rsa \
    "TLSA signed as {other-ec, host-rsa}, then other-ec's data replaced by host-ec in the signed file: the RRSIG over the TLSA RRset fails (a non-validating client would see a match)"

  { _dns_head expired.test.; _dns_srv xmpp.expired.test.
    printf 'xmpp A 127.0.0.1\n'; _dns_tlsa xmpp host-ec host-rsa; } >"$z/expired.test.zone"
  _dns_scenario expired bogus bogus xmpp.expired.test host-ec,host-rsa \
    "every RRSIG (DNSKEY included) expired one day ago, inception 31 days ago"

  { _dns_head bogus-ds.test.; _dns_srv xmpp.bogus-ds.test.
    printf 'xmpp A 127.0.0.1\n'; _dns_tlsa xmpp host-ec host-rsa; } >"$z/bogus-ds.test.zone"
  _dns_scenario bogus-ds bogus bogus xmpp.bogus-ds.test host-ec,host-rsa \
    "the DS in test. is of another key: no DNSKEY matches the DS"

  { _dns_head cross.test.; _dns_srv xmpp.hosts.test.; } >"$z/cross.test.zone"
  _dns_scenario cross secure match xmpp.hosts.test host-ec,host-rsa \
    "secure; SRV x4 to xmpp.hosts.test, a target (with its A and TLSA) in another secure zone"

  { _dns_head multi.test.
    _dns_srv xmpp.hosts.test. 0 50; _dns_srv ejabberd.hosts.test. 0 50; _dns_srv dual.multi.test. 10 0
    printf 'dual A 127.0.0.1\ndual AAAA ::1\n'; _dns_tlsa dual host-ec host-rsa; } >"$z/multi.test.zone"
  _dns_scenario multi secure match "xmpp.hosts.test,ejabberd.hosts.test,dual.multi.test" \
    "host-ec,host-rsa,ejabberd-ec" \
    "three SRV targets per service: xmpp.hosts.test and ejabberd.hosts.test (prio 0, weight 50) and dual.multi.test (prio 10; A 127.0.0.1 and AAAA ::1, TLSA host-ec+host-rsa). Needs Prosody on ::1 and ejabberd on 127.0.0.2"

  { _dns_head nosrv.test.; printf '@ A 127.0.0.1\n'
    for i in 5222 5269; do
      printf '_%s._tcp TLSA 3 1 1 %s\n_%s._tcp TLSA 3 1 1 %s\n' "$i" "$(_dns_spki host-ec)" "$i" "$(_dns_spki host-rsa)"
    done; } >"$z/nosrv.test.zone"
  _dns_scenario nosrv secure match nosrv.test host-ec,host-rsa \
    "secure, no SRV records (NSEC-proven absence): fallback to nosrv.test:5222/5269 (A 127.0.0.1, TLSA at _5222._tcp.nosrv.test and _5269._tcp.nosrv.test); no direct-TLS services"

  for n in nsec3-150 nsec3-600; do
    { _dns_head "$n.test."; _dns_srv "xmpp.$n.test."; printf 'xmpp A 127.0.0.1\n'; } >"$z/$n.test.zone"
  done
  _dns_scenario nsec3-150 insecure no-dnssec xmpp.nsec3-150.test "" \
    "NSEC3 with 150 iterations, no TLSA: RFC 9276 / hickory treat the NSEC3 denial as insecure (>100): no-dnssec with warning nsec3-iterations. unbound 1.17 still calls it secure (its limit for 256-bit keys is 150)"
  _dns_scenario nsec3-600 bogus bogus xmpp.nsec3-600.test "" \
    "NSEC3 with 600 iterations, no TLSA: above 500 the denial is bogus for hickory (unbound 1.17 answers insecure, no AD)"

  # dead.test is delegated (with a DS) to the silent server; nsd does not serve it.
  _dns_scenario dead indeterminate indeterminate xmpp.dead.test "" \
    "delegated to ns.dead.test = $CW_DNS_SILENT_ADDR:53 which never answers: timeout (or a late SERVFAIL from unbound), never 'no records'. Through nsd directly the answer is a referral, which hickory reports as DnssecBogus"

  { _dns_head cname.test.; _dns_srv xmpp.cname.test.; printf 'xmpp A 127.0.0.1\n'
    for i in "${CW_DNS_PORTS[@]}"; do printf '_%s._tcp.xmpp CNAME _%s._tcp.xmpp.hosts.test.\n' "$i" "$i"; done
  } >"$z/cname.test.zone"
  _dns_scenario cname secure match xmpp.cname.test host-ec,host-rsa \
    "TLSA owners _<port>._tcp.xmpp.cname.test are CNAMEs to _<port>._tcp.xmpp.hosts.test (RFC 7671 section 7)"

  { _dns_head wildcard.test.; _dns_srv xmpp.wildcard.test.; printf 'xmpp A 127.0.0.1\n'
    printf '*._tcp.xmpp TLSA 3 1 1 %s\n*._tcp.xmpp TLSA 3 1 1 %s\n' "$(_dns_spki host-ec)" "$(_dns_spki host-rsa)"
  } >"$z/wildcard.test.zone"
  _dns_scenario wildcard secure match xmpp.wildcard.test host-ec,host-rsa \
    "the only TLSA is *._tcp.xmpp.wildcard.test: answers are wildcard expansions (RRSIG labels < owner labels, NSEC proof of no closer match). unbound validates it (AD); hickory 0.26.3 wrongly calls it bogus (NSEC wildcard-expansion bug, hickory-dns PR 3812)"
  { _dns_head wildcard3.test.; _dns_srv xmpp.wildcard3.test.; printf 'xmpp A 127.0.0.1\n'
    printf '*._tcp.xmpp TLSA 3 1 1 %s\n*._tcp.xmpp TLSA 3 1 1 %s\n' "$(_dns_spki host-ec)" "$(_dns_spki host-rsa)"
  } >"$z/wildcard3.test.zone"
  _dns_scenario wildcard3 secure match xmpp.wildcard3.test host-ec,host-rsa \
    "as wildcard, in an NSEC3 zone (0 iterations): the closest-encloser proof comes from NSEC3"

  { _dns_head large.test.; _dns_srv xmpp.large.test.; printf 'xmpp A 127.0.0.1\n'
    python3 -c '
import hashlib, sys
for port in sys.argv[1:]:
    for i in range(1, 41):
        print(f"_{port}._tcp.xmpp TLSA 3 1 2 " + hashlib.sha512(f"certwatch decoy {i}".encode()).hexdigest())
' "${CW_DNS_PORTS[@]}"
    _dns_tlsa xmpp host-ec host-rsa; } >"$z/large.test.zone"
  _dns_scenario large secure match xmpp.large.test host-ec,host-rsa \
    "TLSA RRset of 42 records (40 decoy 3 1 2 plus host-ec, host-rsa), about 3.5 kB: truncated over UDP, needs TCP"

  { _dns_head expiring.test.; _dns_srv xmpp.expiring.test.
    printf 'xmpp A 127.0.0.1\n'; _dns_tlsa xmpp host-ec host-rsa; } >"$z/expiring.test.zone"
  _dns_scenario expiring secure match xmpp.expiring.test host-ec,host-rsa \
    "RRSIGs with inception 28 days ago expiring in 2 days: match plus warning signature-expiring"

  { _dns_head split.test.; _dns_srv v4.split.test.; _dns_srv v6.insecure.test.
    printf 'v4 A 127.0.0.1\n'; _dns_tlsa v4 host-ec host-rsa; } >"$z/split.test.zone"
  _dns_scenario split insecure no-dnssec "v4.split.test,v6.insecure.test" host-ec,host-rsa \
    "secure SRV x4 to v4.split.test (secure A 127.0.0.1 and TLSA: match) and v6.insecure.test (AAAA ::1 in an insecure zone: no-dnssec), same priority; domain no-dnssec"

  { _dns_head notls.test.
    printf '_xmpp-client._tcp SRV 0 0 5222 xmpp.notls.test.\n_xmpp-server._tcp SRV 0 0 5269 xmpp.notls.test.\n'
    printf 'xmpp A 127.0.0.3\n'
    printf '_%s._tcp.xmpp TLSA 3 1 1 %s\n' 5222 "$(_dns_spki host-ec)" 5269 "$(_dns_spki host-ec)"
  } >"$z/notls.test.zone"
  _dns_scenario notls secure protocol-error xmpp.notls.test host-ec \
    "secure; SRV (c2s, s2s STARTTLS only) to xmpp.notls.test = 127.0.0.3, the Prosody that offers no STARTTLS, with a secure TLSA (host-ec): a missing STARTTLS on a DANE endpoint is a downgrade (critical)"

  { _dns_head dot.test.
    printf '_xmpp-client._tcp SRV 0 0 5222 xmpp.hosts.test.\n_xmpp-server._tcp SRV 0 0 5269 xmpp.hosts.test.\n'
    printf '_xmpps-client._tcp SRV 0 0 0 .\n_xmpps-server._tcp SRV 0 0 0 .\n'
  } >"$z/dot.test.zone"
  _dns_scenario dot secure match xmpp.hosts.test host-ec,host-rsa \
    "secure; STARTTLS SRV to xmpp.hosts.test, direct-TLS SRV with target '.' (service not offered): only c2s-starttls and s2s-starttls endpoints"

  # Sign the children.
  _dns_sign hosts.test.
  for n in match mismatch nodata bogus cross multi nosrv cname wildcard large split bogus-ds notls dot \
    multi-wrong replay drill down alert; do
    _dns_sign "$n.test."
  done
  _dns_sign nodata3.test. nsec3:0
  _dns_sign wildcard3.test. nsec3:0
  _dns_sign nsec3-150.test. nsec3:150
  _dns_sign nsec3-600.test. nsec3:600
  _dns_sign expired.test. expired
  _dns_sign expiring.test. expiring
  for n in "${insecure[@]}"; do _dns_sign "$n.test." unsigned; done
  # Tamper with bogus.test after signing: other-ec's TLSA data becomes host-ec's.
  local other host
  other=$(_dns_spki other-ec); host=$(_dns_spki host-ec)
  grep -qi "$other" "$z/bogus.test.served" || cw_die "dns: bogus.test: nothing to tamper with"
  sed -i "s/$other/$host/I" "$z/bogus.test.served"

  # test.: delegations, with DS for the secure children (bogus-ds: DS of an unused key).
  { _dns_head test.
    printf 'ns.nic A 127.0.0.1\n'
    for n in "${secure[@]}" "${insecure[@]}" bogus-ds; do printf '%s NS ns.nic.test.\n' "$n"; done
    for n in "${secure[@]}"; do _dns_ds "$n.test."; done
    _dns_ds bogus-ds.test. unused
    printf 'dead NS ns.dead.test.\nns.dead A %s\n' "$CW_DNS_SILENT_ADDR"
    _dns_ds dead.test.
  } >"$z/test.zone"
  _dns_sign test.

  # The root: delegates test. with its DS.
  { _dns_head .; printf 'ns.nic.test. A 127.0.0.1\ntest. NS ns.nic.test.\n'; _dns_ds test.; } >"$z/root.zone"
  _dns_sign .

  cp "$(_dns_key .).key" "$d/root.key"
  _dns_ds . >"$d/root.ds"

  : >"$d/zones.conf"
  for n in . test. "${secure[@]/%/.test.}" "${insecure[@]/%/.test.}" bogus-ds.test.; do
    local f=${n%.}; [ "$n" = . ] && f=root
    printf 'zone:\n  name: "%s"\n  zonefile: "%s.served"\n' "$n" "$f" >>"$d/zones.conf"
  done
}

# _dns_dig SERVER_PORT ARGS...: one dig at 127.0.0.1 with short timeouts.
_dns_dig() { local p=$1; shift; dig @127.0.0.1 -p "$p" +time=2 +tries=1 +nosplit "$@"; }

dns_up() {
  local d="$CW_DIR/dns" i out zone
  dns_down
  mkdir -p "$d/nsd" "$d/unbound"
  _dns_load_spki
  _dns_zones

  cat >"$d/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1@$CW_DNS_NSD_PORT
  do-ip6: no
  username: ""
  chroot: ""
  server-count: 1
  verbosity: 1
  hide-version: yes
  zonesdir: "$d/zones"
  database: ""
  zonelistfile: "$d/nsd/zone.list"
  xfrdfile: "$d/nsd/xfrd.state"
  xfrdir: "$d/nsd"
  pidfile: "$d/nsd/nsd.pid"
remote-control:
  control-enable: no
include: "$d/zones.conf"
EOF
  nsd-checkconf "$d/nsd.conf" || cw_die "dns: nsd-checkconf failed"
  cat >"$d/unbound.conf" <<EOF
server:
  interface: 127.0.0.1@$CW_DNS_UNBOUND_PORT
  do-ip6: no
  username: ""
  chroot: ""
  directory: "$d/unbound"
  pidfile: "$d/unbound/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 1
  num-threads: 1
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "validator iterator"
  trust-anchor-file: "$d/root.key"
  val-log-level: 2
  local-zone: "test." nodefault
remote-control:
  control-enable: no
EOF
  # One stub per served zone: the zones' NS (ns.nic.test = 127.0.0.1) imply port 53, where
  # nothing listens, and unbound would follow the learned delegations there. dead.test has no
  # stub, so unbound follows the referral in test. to the silent server.
  for zone in $(sed -n 's/^  name: "\(.*\)"$/\1/p' "$d/zones.conf"); do
    printf 'stub-zone:\n  name: "%s"\n  stub-addr: 127.0.0.1@%s\n' "$zone" "$CW_DNS_NSD_PORT"
  done >>"$d/unbound.conf"
  unbound-checkconf "$d/unbound.conf" >/dev/null || cw_die "dns: unbound-checkconf failed"

  cw_start dns nsd nsd -d -c "$d/nsd.conf"
  cw_start dns unbound unbound -d -c "$d/unbound.conf"
  cw_start dns silent python3 "$CW_SCRIPTS/dns/silent.py" "$CW_DNS_SILENT_ADDR" 53

  # nsd: every served zone answers its SOA, authoritatively.
  for ((i = 0; i < 100; i++)); do
    _dns_dig "$CW_DNS_NSD_PORT" . SOA +norec >/dev/null 2>&1 && break
    cw_alive dns nsd; sleep 0.1
  done
  local zones=() queries=() n_ok
  mapfile -t zones < <(sed -n 's/^  name: "\(.*\)"$/\1/p' "$d/zones.conf")
  for zone in "${zones[@]}"; do queries+=("$zone" SOA); done
  out=$(_dns_dig "$CW_DNS_NSD_PORT" +norec "${queries[@]}") || cw_die "dns: nsd does not answer"
  n_ok=$(grep -c 'flags: qr aa;' <<<"$out" || true)
  [ "$n_ok" -eq "${#zones[@]}" ] && [ "$(grep -c 'status: NOERROR' <<<"$out")" -eq "${#zones[@]}" ] \
    || { echo "$out" | grep -E 'status|flags|SOA' >&2; tail -n 20 "$CW_DIR/logs/dns-nsd.log" >&2
         cw_die "dns: nsd serves $n_ok of ${#zones[@]} zones"; }
  # unbound: the match TLSA is validated (AD), the tampered one fails (SERVFAIL), the
  # insecure SRV is answered without AD.
  for ((i = 0; i < 100; i++)); do
    _dns_dig "$CW_DNS_UNBOUND_PORT" . SOA >/dev/null 2>&1 && break
    cw_alive dns unbound; sleep 0.1
  done
  out=$(_dns_dig "$CW_DNS_UNBOUND_PORT" +dnssec _5222._tcp.xmpp.match.test TLSA) || cw_die "dns: unbound does not answer"
  grep -q 'flags: qr rd ra ad;' <<<"$out" && grep -qi "$(_dns_spki host-ec)" <<<"$out" \
    || { echo "$out" >&2; tail -n 20 "$CW_DIR/logs/dns-unbound.log" >&2; cw_die "dns: unbound does not validate the match TLSA (no AD)"; }
  out=$(_dns_dig "$CW_DNS_UNBOUND_PORT" +dnssec _5222._tcp.xmpp.bogus.test TLSA) || true
  grep -q 'status: SERVFAIL' <<<"$out" || { echo "$out" >&2; cw_die "dns: unbound does not reject bogus.test"; }
  out=$(_dns_dig "$CW_DNS_UNBOUND_PORT" +dnssec _xmpp-client._tcp.insecure.test SRV) || cw_die "dns: unbound does not answer"
  grep -q 'status: NOERROR' <<<"$out" && ! grep -q 'flags:.* ad;' <<<"$out" \
    || { echo "$out" >&2; cw_die "dns: insecure.test is not answered as insecure"; }
  # The `down` scenario's server must be down.
  if (exec 3<>"/dev/tcp/$CW_DNS_DOWN_ADDR/5222") 2>/dev/null; then
    cw_die "dns: something listens on $CW_DNS_DOWN_ADDR:5222, where the down scenario needs nothing"
  fi
  # Our processes answered, not leftovers holding the ports.
  cw_alive dns nsd; cw_alive dns unbound; cw_alive dns silent

  python3 - "$d" "$CW_DNS_NSD_PORT" "$CW_DNS_UNBOUND_PORT" "$CW_DNS_SILENT_ADDR" \
    >"$CW_DIR/describe/dns.json" <<'PY'
import json, sys, time
d, nsd, unbound, silent = sys.argv[1:5]
scen = {}
for line in open(f"{d}/scenarios.tsv"):
    name, dnssec, expect, targets, keys, notes = line.rstrip("\n").split("\t")
    scen[name] = {
        "domain": f"{name}.test",
        "dnssec": dnssec,
        "expect": expect,
        "targets": [t for t in targets.split(",") if t],
        "tlsa_keys": [k for k in keys.split(",") if k],
        "notes": notes,
    }
zones = {}
for line in open(f"{d}/zones.tsv"):
    zone, signed, denial, iters, inc, exp, tag = line.rstrip("\n").split("\t")
    z = {"signed": signed == "true"}
    if z["signed"]:
        z.update({"denial": denial, "nsec3_iterations": int(iters), "rrsig_inception": int(inc),
                  "rrsig_expiration": int(exp), "key_tag": int(tag)})
    zones[zone] = z
for name, sc in scen.items():
    sc["zone"] = zones.get(sc["domain"] + ".", {"served": False})
print(json.dumps({
    "nsd": f"127.0.0.1:{nsd}",
    "unbound": f"127.0.0.1:{unbound}",
    "silent": f"{silent}:53",
    "trust_anchor": f"{d}/root.key",
    "trust_anchor_ds": open(f"{d}/root.ds").read().strip(),
    "zones_dir": f"{d}/zones",
    "signed_at": int(time.time()),
    "ports": {"c2s-starttls": 5222, "c2s-direct": 5223, "s2s-starttls": 5269, "s2s-direct": 5270},
    "hosts": {
        "xmpp.hosts.test": {"a": ["127.0.0.1"], "tlsa_keys": ["host-ec", "host-rsa"]},
        "ejabberd.hosts.test": {"a": ["127.0.0.2"], "tlsa_keys": ["ejabberd-ec"]},
    },
    "scenarios": scen,
    "zones": zones,
}, indent=2))
PY
}

dns_down() {
  # TERM every process group first, so that cw_stop_all's waits overlap instead of adding up.
  local f
  for f in "$CW_DIR"/pids/dns-*.pid; do
    [ -e "$f" ] && { kill -TERM -- "-$(cat "$f")" 2>/dev/null || true; }
  done
  cw_stop_all dns
}
