# The XMPP part of the interop environment: real XMPP servers on loopback.
# shellcheck shell=bash
#
#   prosody   Debian's Prosody on $CW_PROSODY_ADDR (127.0.0.1) and ::1: c2s STARTTLS 5222, c2s
#             direct TLS (XEP-0368) 5223, s2s STARTTLS 5269, s2s direct TLS 5270. A VirtualHost for every
#             domain in CW_XMPP_DOMAINS plus $CW_PROSODY_HOST. Dual certificate: LuaSec loads
#             host-ec (P-256) and host-rsa (RSA-2048) into one context, and OpenSSL picks by the
#             client's signature algorithms (an ECDSA-capable client gets host-ec). It also
#             listens on $CW_DRILL_ADDR (127.0.0.6), the destination only the hostile-exit drill uses.
#   ejabberd  Debian's ejabberd on $CW_EJABBERD_ADDR (127.0.0.2), same four ports, the same
#             domains plus $CW_EJABBERD_HOST, certificate ejabberd-ec.
#   notls     a second Prosody on 127.0.0.3 (c2s 5222, s2s 5269) for domain notls.test, without
#             mod_tls: its stream features offer no STARTTLS (the protocol-error scenario).
#   other     a third Prosody on $CW_OTHER_ADDR (127.0.0.5), the four ports, with another key
#             (other-ec) for mismatch.test, multi-wrong.test and drill.test: the interceptor of
#             the mismatch scenarios, and the MITM the drill's hostile exit reaches.
#
# Configs and data live in $CW_DIR/xmpp, daemon output in $CW_DIR/logs/xmpp-*.log. The Prosody
# configs come from scripts/interop/xmpp/prosody-config, which tests that need a Prosody of
# their own (a key swap, a restart) use too; ejabberd runs through scripts/interop/xmpp/ejabberd-run.
# `up` is idempotent: a server whose config is unchanged and that still runs is kept;
# otherwise it is restarted. Every listener is probed with openssl s_client and the key it
# serves is compared with the PKI's (a wrong key is a loud failure, not a silent pass).

CW_PROSODY_ADDR6=::1
CW_NOTLS_ADDR=127.0.0.3
CW_NOTLS_DOMAIN=notls.test
CW_S2S_DIRECT_PORT=5270

# The listeners of each server (ADDR:PORT, the last colon separates), checked free before a start.
declare -gA XMPP_LISTENERS=(
  [prosody]="$CW_PROSODY_ADDR:$CW_C2S_PORT $CW_PROSODY_ADDR:$CW_C2S_DIRECT_PORT $CW_PROSODY_ADDR:$CW_S2S_PORT $CW_PROSODY_ADDR:$CW_S2S_DIRECT_PORT $CW_PROSODY_ADDR6:$CW_C2S_PORT $CW_DRILL_ADDR:$CW_C2S_PORT"
  [notls]="$CW_NOTLS_ADDR:$CW_C2S_PORT $CW_NOTLS_ADDR:$CW_S2S_PORT"
  [other]="$CW_OTHER_ADDR:$CW_C2S_PORT $CW_OTHER_ADDR:$CW_C2S_DIRECT_PORT $CW_OTHER_ADDR:$CW_S2S_PORT $CW_OTHER_ADDR:$CW_S2S_DIRECT_PORT"
  [ejabberd]="$CW_EJABBERD_ADDR:$CW_C2S_PORT $CW_EJABBERD_ADDR:$CW_C2S_DIRECT_PORT $CW_EJABBERD_ADDR:$CW_S2S_PORT $CW_EJABBERD_ADDR:$CW_S2S_DIRECT_PORT"
)

xmpp_packages() { echo prosody lua-sec ejabberd openssl python3; }

xmpp_down() {
  # Signal every server first so that they shut down in parallel (each takes 1-3 s), then let
  # cw_stop_all wait for them by PID (and kill what remains).
  local f pid
  for f in "$CW_DIR/pids/xmpp-"*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    kill -0 "$pid" 2>/dev/null && { kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; }
  done
  cw_stop_all xmpp
}

xmpp_up() {
  local d="$CW_DIR/xmpp" pki="$CW_DIR/pki" dom
  [ -s "$pki/host-ec.crt" ] || cw_die "xmpp needs the pki part: run \`scripts/interop-env up pki xmpp\`"
  mkdir -p "$d/ejabberd"

  local args=(--listen "$CW_PROSODY_ADDR" --listen "$CW_PROSODY_ADDR6" --listen "$CW_DRILL_ADDR" --c2s "$CW_C2S_PORT"
    --c2s-direct "$CW_C2S_DIRECT_PORT" --s2s "$CW_S2S_PORT" --s2s-direct "$CW_S2S_DIRECT_PORT"
    --cert "$pki/host-ec.fullchain.pem" "$pki/host-ec.key"
    --cert "$pki/host-rsa.fullchain.pem" "$pki/host-rsa.key"
    --host "$CW_PROSODY_HOST")
  for dom in "${CW_XMPP_DOMAINS[@]}"; do args+=(--host "$dom"); done
  "$CW_SCRIPTS/xmpp/prosody-config" --dir "$d/prosody" "${args[@]}" >/dev/null
  _xmpp_restart_if_changed prosody "$d/prosody/prosody.cfg.lua" \
    prosody --config "$d/prosody/prosody.cfg.lua" -F
  "$CW_SCRIPTS/xmpp/prosody-config" --dir "$d/notls" --no-tls --listen "$CW_NOTLS_ADDR" \
    --c2s "$CW_C2S_PORT" --s2s "$CW_S2S_PORT" --host "$CW_NOTLS_DOMAIN" >/dev/null
  _xmpp_restart_if_changed notls "$d/notls/prosody.cfg.lua" \
    prosody --config "$d/notls/prosody.cfg.lua" -F
  "$CW_SCRIPTS/xmpp/prosody-config" --dir "$d/other" --listen "$CW_OTHER_ADDR" \
    --c2s "$CW_C2S_PORT" --c2s-direct "$CW_C2S_DIRECT_PORT" --s2s "$CW_S2S_PORT" --s2s-direct "$CW_S2S_DIRECT_PORT" \
    --cert "$pki/other-ec.fullchain.pem" "$pki/other-ec.key" \
    --host mismatch.test --host multi-wrong.test --host "$CW_DRILL_DOMAIN" >/dev/null
  _xmpp_restart_if_changed other "$d/other/prosody.cfg.lua" \
    prosody --config "$d/other/prosody.cfg.lua" -F
  _xmpp_ejabberd_config >"$d/ejabberd/ejabberd.yml"
  _xmpp_restart_if_changed ejabberd "$d/ejabberd/ejabberd.yml" "$CW_SCRIPTS/xmpp/ejabberd-run" "$d/ejabberd"

  # Wait until every listener answers with the expected key.
  local ec rsa ej other
  other=$(cw_spki_sha256 "$pki/other-ec.crt")
  ec=$(cw_spki_sha256 "$pki/host-ec.crt")
  rsa=$(cw_spki_sha256 "$pki/host-rsa.crt")
  ej=$(cw_spki_sha256 "$pki/ejabberd-ec.crt")
  dom=${CW_XMPP_DOMAINS[0]}
  _xmpp_expect prosody "$CW_PROSODY_ADDR" "$CW_C2S_PORT" c2s-starttls "$dom" ec "$ec"
  _xmpp_expect prosody "$CW_PROSODY_ADDR" "$CW_C2S_PORT" c2s-starttls "$dom" rsa "$rsa"
  _xmpp_expect prosody "$CW_PROSODY_ADDR" "$CW_C2S_DIRECT_PORT" c2s-direct "$dom" ec "$ec"
  _xmpp_expect prosody "$CW_PROSODY_ADDR" "$CW_S2S_PORT" s2s-starttls "$dom" ec "$ec"
  _xmpp_expect prosody "$CW_PROSODY_ADDR" "$CW_S2S_DIRECT_PORT" s2s-direct "$dom" ec "$ec"
  _xmpp_expect prosody "$CW_PROSODY_ADDR" "$CW_C2S_PORT" c2s-starttls "$CW_PROSODY_HOST" ec "$ec"
  _xmpp_expect prosody "$CW_PROSODY_ADDR6" "$CW_C2S_PORT" c2s-starttls "$dom" ec "$ec"
  _xmpp_expect prosody "$CW_DRILL_ADDR" "$CW_C2S_PORT" c2s-starttls "$CW_DRILL_DOMAIN" ec "$ec"
  _xmpp_expect prosody "$CW_DRILL_ADDR" "$CW_C2S_PORT" c2s-starttls "$CW_DRILL_DOMAIN" rsa "$rsa"
  _xmpp_expect other "$CW_OTHER_ADDR" "$CW_C2S_PORT" c2s-starttls mismatch.test ec "$other"
  _xmpp_expect other "$CW_OTHER_ADDR" "$CW_C2S_DIRECT_PORT" c2s-direct mismatch.test ec "$other"
  _xmpp_expect other "$CW_OTHER_ADDR" "$CW_S2S_PORT" s2s-starttls mismatch.test ec "$other"
  _xmpp_expect other "$CW_OTHER_ADDR" "$CW_S2S_DIRECT_PORT" s2s-direct mismatch.test ec "$other"
  _xmpp_expect other "$CW_OTHER_ADDR" "$CW_C2S_PORT" c2s-starttls "$CW_DRILL_DOMAIN" ec "$other"
  _xmpp_expect ejabberd "$CW_EJABBERD_ADDR" "$CW_C2S_PORT" c2s-starttls "$dom" ec "$ej"
  _xmpp_expect ejabberd "$CW_EJABBERD_ADDR" "$CW_C2S_DIRECT_PORT" c2s-direct "$dom" ec "$ej"
  _xmpp_expect ejabberd "$CW_EJABBERD_ADDR" "$CW_S2S_PORT" s2s-starttls "$dom" ec "$ej"
  _xmpp_expect ejabberd "$CW_EJABBERD_ADDR" "$CW_S2S_DIRECT_PORT" s2s-direct "$dom" ec "$ej"
  _xmpp_expect ejabberd "$CW_EJABBERD_ADDR" "$CW_C2S_PORT" c2s-starttls "$CW_EJABBERD_HOST" ec "$ej"
  _xmpp_expect_no_starttls notls "$CW_NOTLS_ADDR" "$CW_C2S_PORT" jabber:client "$CW_NOTLS_DOMAIN"
  _xmpp_expect_no_starttls notls "$CW_NOTLS_ADDR" "$CW_S2S_PORT" jabber:server "$CW_NOTLS_DOMAIN"

  _xmpp_describe >"$CW_DIR/describe/xmpp.json"
}

# --- helpers ------------------------------------------------------------------------------

# _xmpp_restart_if_changed NAME CONFIG CMD...: (re)starts NAME with CMD, unless it still runs
# with the same CONFIG (a stamp file keeps the SHA-256 of the config NAME was started with).
_xmpp_restart_if_changed() {
  local name=$1 cfg=$2 pid sum stamp="$CW_DIR/xmpp/$1.config-sha256"; shift 2
  sum=$(sha256sum "$cfg" | cut -d' ' -f1)
  pid=$(cat "$CW_DIR/pids/xmpp-$name.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then
    cw_log "xmpp-$name: already running (pid $pid), config unchanged"
    return 0
  fi
  _xmpp_stop_one "$name"
  local l
  for l in ${XMPP_LISTENERS[$name]}; do
    if (exec 3<>"/dev/tcp/${l%:*}/${l##*:}") 2>/dev/null; then
      cw_die "xmpp-$name: ${l%:*} port ${l##*:} is already in use by another process (another interop environment, or a system Prosody or ejabberd?)"
    fi
  done
  cw_start xmpp "$name" "$@"
  echo "$sum" >"$stamp"
  cw_log "xmpp-$name: started (pid $(cat "$CW_DIR/pids/xmpp-$name.pid"))"
}

# _xmpp_stop_one NAME: stops one server of this part by its PID file (like cw_stop_all).
_xmpp_stop_one() {
  local f="$CW_DIR/pids/xmpp-$1.pid" pid
  [ -e "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# _xmpp_leaf_spki ADDR PORT SERVICE DOMAIN KEYTYPE: prints the SPKI SHA-256 of the leaf the
# server presents (empty when the handshake fails). KEYTYPE ec|rsa restricts the client's
# signature algorithms so that a dual-certificate server must pick that certificate.
_xmpp_leaf_spki() {
  local addr=$1 port=$2 service=$3 domain=$4 keytype=$5 args=()
  case $service in
    c2s-starttls) args=(-starttls xmpp -xmpphost "$domain") ;;
    s2s-starttls) args=(-starttls xmpp-server -xmpphost "$domain") ;;
    c2s-direct) args=(-alpn xmpp-client -servername "$domain") ;;
    s2s-direct) args=(-alpn xmpp-server -servername "$domain") ;;
  esac
  case $keytype in
    ec) args+=(-sigalgs "ECDSA+SHA256:ECDSA+SHA384") ;;
    rsa) args+=(-sigalgs "RSA-PSS+SHA256:RSA+SHA256") ;;
  esac
  [[ $addr == *:* ]] && addr="[$addr]"
  timeout 10 openssl s_client -connect "$addr:$port" "${args[@]}" </dev/null 2>/dev/null \
    | openssl x509 -pubkey -noout 2>/dev/null | openssl pkey -pubin -outform der 2>/dev/null \
    | sha256sum | cut -d' ' -f1 | grep -v '^e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855$' || true
}

# _xmpp_expect NAME ADDR PORT SERVICE DOMAIN KEYTYPE SPKI: waits (up to 30 s) until the listener
# presents the key SPKI; dies with the server's log tail otherwise.
_xmpp_expect() {
  local name=$1 addr=$2 port=$3 service=$4 domain=$5 keytype=$6 want=$7 got="" i
  for ((i = 0; i < 60; i++)); do
    cw_alive xmpp "$name"
    if (exec 3<>"/dev/tcp/$addr/$port") 2>/dev/null; then
      got=$(_xmpp_leaf_spki "$addr" "$port" "$service" "$domain" "$keytype")
      [ -n "$got" ] && break
    fi
    sleep 0.5
  done
  if [ "$got" != "$want" ]; then
    tail -n 30 "$CW_DIR/logs/xmpp-$name.log" >&2
    cw_die "xmpp-$name $service $addr:$port ($domain, $keytype): presented key ${got:-<none>}, expected $want"
  fi
}

# _xmpp_expect_no_starttls NAME ADDR PORT NS DOMAIN: waits until the server answers a stream
# header with stream features, and dies if those features offer STARTTLS.
_xmpp_expect_no_starttls() {
  local name=$1 addr=$2 port=$3 ns=$4 domain=$5 out="" i
  for ((i = 0; i < 60; i++)); do
    cw_alive xmpp "$name"
    out=$(python3 - "$addr" "$port" "$ns" "$domain" <<'PY' 2>/dev/null || true
import socket, sys
addr, port, ns, domain = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.create_connection((addr, port), timeout=5)
s.sendall(("<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>" % (ns, domain)).encode())
buf = b""
while b"</stream:features>" not in buf and b"<stream:features/>" not in buf and b"</stream:stream>" not in buf:
    chunk = s.recv(4096)
    if not chunk:
        break
    buf += chunk
print(buf.decode(errors="replace"))
PY
)
    [[ $out == *"stream:features"* ]] && break
    sleep 0.5
  done
  [[ $out == *"stream:features"* ]] || { tail -n 30 "$CW_DIR/logs/xmpp-$name.log" >&2; cw_die "xmpp-$name $addr:$port sent no stream features: $out"; }
  [[ $out != *"starttls"* ]] || cw_die "xmpp-$name $addr:$port offers STARTTLS, expected none: $out"
}

_xmpp_ejabberd_config() {
  local pki="$CW_DIR/pki" h f
  echo "# Generated by scripts/interop/xmpp.sh: ejabberd, the second XMPP implementation."
  for f in "$pki/ejabberd-ec.fullchain.pem" "$pki/ejabberd-ec.key"; do
    echo "# $(sha256sum "$f" | cut -d' ' -f1)  $f"
  done
  echo "hosts:"
  for h in "$CW_EJABBERD_HOST" "${CW_XMPP_DOMAINS[@]}"; do echo "  - $h"; done
  cat <<EOF
loglevel: info
log_rotate_count: 0
certfiles:
  - "$pki/ejabberd-ec.fullchain.pem"
  - "$pki/ejabberd-ec.key"
s2s_use_starttls: required
auth_method: internal
default_db: mnesia
acl: {}
access_rules: {}
shaper_rules: {}
modules:
  mod_disco: {}
  mod_ping: {}
listen:
  - port: $CW_C2S_PORT
    ip: "$CW_EJABBERD_ADDR"
    module: ejabberd_c2s
    starttls_required: true
  - port: $CW_C2S_DIRECT_PORT
    ip: "$CW_EJABBERD_ADDR"
    module: ejabberd_c2s
    tls: true
  - port: $CW_S2S_PORT
    ip: "$CW_EJABBERD_ADDR"
    module: ejabberd_s2s_in
  - port: $CW_S2S_DIRECT_PORT
    ip: "$CW_EJABBERD_ADDR"
    module: ejabberd_s2s_in
    tls: true
EOF
}

_xmpp_describe() {
  local pv ev
  pv=$(dpkg-query -W -f='${Version}' prosody | sed 's/-[^-]*$//')
  ev=$(dpkg-query -W -f='${Version}' ejabberd | sed 's/-[^-]*$//')
  python3 - "$CW_DIR" "$pv" "$ev" "$CW_PROSODY_HOST" "$CW_EJABBERD_HOST" "$CW_NOTLS_ADDR" \
    "$CW_NOTLS_DOMAIN" "$CW_OTHER_ADDR" "$CW_DRILL_ADDR" "$CW_DRILL_DOMAIN" "${CW_XMPP_DOMAINS[@]}" <<PY
import json, sys
d, pv, ev, phost, ehost, naddr, ndom, oaddr, daddr, ddom = sys.argv[1:11]
domains = sys.argv[11:]
def server(addr, addr6, host, keys, version, log):
    return {"address": addr, "address6": addr6, "host": host, "c2s": $CW_C2S_PORT, "c2s_direct": $CW_C2S_DIRECT_PORT,
            "s2s": $CW_S2S_PORT, "s2s_direct": $CW_S2S_DIRECT_PORT, "domains": [host] + domains,
            "keys": keys, "version": version, "log": f"{d}/logs/xmpp-{log}.log"}
out = {
    "prosody": dict(server("$CW_PROSODY_ADDR", "$CW_PROSODY_ADDR6", phost, ["host-ec", "host-rsa"], pv, "prosody"),
                    drill_address=daddr),
    "ejabberd": server("$CW_EJABBERD_ADDR", None, ehost, ["ejabberd-ec"], ev, "ejabberd"),
    # Tests that need a Prosody of their own write its config with this script.
    "prosody_config": "$CW_SCRIPTS/xmpp/prosody-config",
    # The second TLS Prosody: another key, for the mismatch scenarios and as the drill's MITM.
    "other": {"address": oaddr, "c2s": $CW_C2S_PORT, "c2s_direct": $CW_C2S_DIRECT_PORT, "s2s": $CW_S2S_PORT,
              "s2s_direct": $CW_S2S_DIRECT_PORT, "domains": ["mismatch.test", "multi-wrong.test", ddom],
              "keys": ["other-ec"], "version": pv, "log": f"{d}/logs/xmpp-other.log"},
    "notls": {"address": naddr, "c2s": $CW_C2S_PORT, "s2s": $CW_S2S_PORT, "domains": [ndom],
              "starttls": False, "version": pv, "log": f"{d}/logs/xmpp-notls.log"},
}
print(json.dumps(out, indent=2))
PY
}
