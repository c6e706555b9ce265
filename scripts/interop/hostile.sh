# The hostile part of the interop environment: one exit of the private Tor network turns
# hostile, for the `--confirm` drill (REFERENCE section 7, "A hostile exit, for real").
# shellcheck shell=bash
#
# The tor part runs cwrelay3 (127.0.0.13) as its own user, cwexit. This part adds one nftables
# rule: connections that THAT USER opens to the drill's destination ($CW_DRILL_ADDR:5222, the
# main Prosody, which nothing but the drill uses) are redirected (DNAT) to the other Prosody
# ($CW_OTHER_ADDR:5222, another key: other-ec). Circuits that exit through cwrelay3 toward the
# drill domain therefore meet a MITM; every other destination, and the other exits, stay
# normal, so the drill never disturbs the other tests that share the network.
#
#   nft table ip certwatch_hostile
#     chain out { type nat hook output priority -100; }
#       meta skuid cwexit ip daddr 127.0.0.6 tcp dport 5222 dnat to 127.0.0.5:5222
#
# `up` checks the redirection for real: as cwexit, openssl sees other-ec at 127.0.0.6:5222; as
# root, host-ec. `down` deletes the table.
# Description (describe/hostile.json, key "hostile"):
#   {"domain": "drill.test", "destination": "127.0.0.6:5222", "exit": {"nickname",
#    "address", "user", "uid"}, "mitm": {"address": "127.0.0.5:5222", "key": "other-ec",
#    "spki_sha256"}, "genuine_keys": ["host-ec", "host-rsa"], "nft_table": "ip certwatch_hostile"}

HOSTILE_TABLE=certwatch_hostile
HOSTILE_RELAY=cwrelay3 HOSTILE_RELAY_ADDR=127.0.0.13 HOSTILE_USER=cwexit

hostile_packages() { echo nftables openssl python3; }

# _hostile_spki_as USER ADDR PORT DOMAIN: the SPKI SHA-256 of the key USER's connection sees.
_hostile_spki_as() {
  local user=$1 addr=$2 port=$3 domain=$4 cmd
  cmd="timeout 10 openssl s_client -connect $addr:$port -starttls xmpp -xmpphost $domain -sigalgs ECDSA+SHA256 </dev/null 2>/dev/null"
  if [ "$user" = root ]; then
    sh -c "$cmd"
  else
    setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups sh -c "$cmd"
  fi | openssl x509 -pubkey -noout 2>/dev/null | openssl pkey -pubin -outform der 2>/dev/null \
    | sha256sum | cut -d' ' -f1
}

hostile_up() {
  local uid pki="$CW_DIR/pki" genuine mitm got
  uid=$(id -u "$HOSTILE_USER" 2>/dev/null) || cw_die "hostile: no user $HOSTILE_USER (run the tor part first)"
  local pid
  pid=$(cat "$CW_DIR/pids/tor-$HOSTILE_RELAY.pid" 2>/dev/null) || cw_die "hostile: $HOSTILE_RELAY is not running (tor part)"
  [ "$(ps -o user= -p "$pid" | tr -d ' ')" = "$HOSTILE_USER" ] \
    || cw_die "hostile: $HOSTILE_RELAY (pid $pid) does not run as $HOSTILE_USER"
  [ -s "$CW_DIR/describe/xmpp.json" ] || cw_die "hostile: needs the xmpp part"

  hostile_down
  nft -f - <<EOF || cw_die "hostile: nft failed"
table ip $HOSTILE_TABLE {
  chain out {
    type nat hook output priority -100; policy accept;
    meta skuid $uid ip daddr $CW_DRILL_ADDR tcp dport $CW_C2S_PORT dnat to $CW_OTHER_ADDR:$CW_C2S_PORT
  }
}
EOF
  genuine=$(cw_spki_sha256 "$pki/host-ec.crt")
  mitm=$(cw_spki_sha256 "$pki/other-ec.crt")
  got=$(_hostile_spki_as root "$CW_DRILL_ADDR" "$CW_C2S_PORT" "$CW_DRILL_DOMAIN")
  [ "$got" = "$genuine" ] || cw_die "hostile: root sees $got at $CW_DRILL_ADDR:$CW_C2S_PORT, expected host-ec $genuine"
  got=$(_hostile_spki_as "$HOSTILE_USER" "$CW_DRILL_ADDR" "$CW_C2S_PORT" "$CW_DRILL_DOMAIN")
  [ "$got" = "$mitm" ] || cw_die "hostile: $HOSTILE_USER sees $got at $CW_DRILL_ADDR:$CW_C2S_PORT, expected the MITM's other-ec $mitm"
  # Only the drill's destination is redirected: the same user reaches the main Prosody as is.
  got=$(_hostile_spki_as "$HOSTILE_USER" "$CW_PROSODY_ADDR" "$CW_C2S_PORT" match.test)
  [ "$got" = "$genuine" ] || cw_die "hostile: $HOSTILE_USER sees $got at $CW_PROSODY_ADDR:$CW_C2S_PORT, expected host-ec"
  cw_log "hostile: $HOSTILE_USER's connections to $CW_DRILL_ADDR:$CW_C2S_PORT reach the MITM (other-ec); root's reach host-ec"

  python3 - "$CW_DRILL_DOMAIN" "$CW_DRILL_ADDR:$CW_C2S_PORT" "$HOSTILE_RELAY" "$HOSTILE_RELAY_ADDR" \
    "$HOSTILE_USER" "$uid" "$CW_OTHER_ADDR:$CW_C2S_PORT" "$mitm" "$HOSTILE_TABLE" \
    >"$CW_DIR/describe/hostile.json" <<'PY'
import json, sys
domain, dest, nick, addr, user, uid, mitm, mitm_spki, table = sys.argv[1:10]
print(json.dumps({
    "domain": domain,
    "destination": dest,
    "exit": {"nickname": nick, "address": addr, "user": user, "uid": int(uid)},
    "mitm": {"address": mitm, "key": "other-ec", "spki_sha256": mitm_spki},
    "genuine_keys": ["host-ec", "host-rsa"],
    "nft_table": f"ip {table}",
}, indent=2))
PY
}

hostile_down() {
  if command -v nft >/dev/null && nft list table ip "$HOSTILE_TABLE" >/dev/null 2>&1; then
    nft delete table ip "$HOSTILE_TABLE" || cw_log "hostile: could not delete nft table $HOSTILE_TABLE"
  fi
  rm -f "$CW_DIR/describe/hostile.json"
}
