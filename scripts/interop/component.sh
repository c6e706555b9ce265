# The component part of the interop environment (issue 10): a Prosody of its own that hosts
# certwatch's XMPP component. Sourced by scripts/interop-env.
# shellcheck shell=bash
#
#   component  Debian's Prosody on $CW_COMPONENT_ADDR (127.0.0.20): c2s STARTTLS on 5222 for the
#              user host $CW_COMPONENT_USERS_HOST (certificate host-ec, covered by *.hosts.test)
#              with two test accounts (alice, bob; SASL PLAIN over TLS), and the external
#              component $CW_COMPONENT_JID (XEP-0114) on port 5347 with a random secret kept in
#              $CW_DIR/component/secret. No s2s.
#
# The config is written by scripts/interop/component/prosody-instance, which tests that
# restart a Prosody of their own use too (on the same address, other ports).

export CW_COMPONENT_ADDR=127.0.0.20 CW_COMPONENT_C2S_PORT=5222 CW_COMPONENT_PORT=5347
export CW_COMPONENT_JID=certwatch.xmpp.test CW_COMPONENT_USERS_HOST=users.hosts.test

component_packages() { echo prosody lua-sec openssl python3; }

component_down() { cw_stop_all component; }

component_up() {
  local d="$CW_DIR/component" pki="$CW_DIR/pki" cfg sum pid stamp secret
  [ -s "$pki/host-ec.crt" ] || cw_die "component needs the pki part: run \`scripts/interop-env up pki component\`"
  mkdir -p "$d"
  [ -s "$d/secret" ] || openssl rand -hex 16 >"$d/secret"
  secret=$(cat "$d/secret")
  cfg=$("$CW_SCRIPTS/component/prosody-instance" --dir "$d/prosody" --listen "$CW_COMPONENT_ADDR" \
    --c2s "$CW_COMPONENT_C2S_PORT" --component-port "$CW_COMPONENT_PORT" --jid "$CW_COMPONENT_JID" \
    --secret "$secret" --users-host "$CW_COMPONENT_USERS_HOST" \
    --cert "$pki/host-ec.fullchain.pem" "$pki/host-ec.key" \
    --account alice alice-password --account bob bob-password)
  stamp="$d/config-sha256"
  sum=$(sha256sum "$cfg" | cut -d' ' -f1)
  pid=$(cat "$CW_DIR/pids/component-prosody.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then
    cw_log "component-prosody: already running (pid $pid), config unchanged"
  else
    cw_stop_all component
    local l
    for l in "$CW_COMPONENT_C2S_PORT" "$CW_COMPONENT_PORT"; do
      if (exec 3<>"/dev/tcp/$CW_COMPONENT_ADDR/$l") 2>/dev/null; then
        cw_die "component: $CW_COMPONENT_ADDR port $l is already in use by another process"
      fi
    done
    cw_start component prosody prosody --config "$cfg" -F
    echo "$sum" >"$stamp"
    cw_log "component-prosody: started (pid $(cat "$CW_DIR/pids/component-prosody.pid"))"
  fi
  local i
  for ((i = 0; i < 60; i++)); do
    cw_alive component prosody
    if (exec 3<>"/dev/tcp/$CW_COMPONENT_ADDR/$CW_COMPONENT_C2S_PORT") 2>/dev/null \
      && (exec 3<>"/dev/tcp/$CW_COMPONENT_ADDR/$CW_COMPONENT_PORT") 2>/dev/null; then
      break
    fi
    sleep 0.5
  done
  ((i < 60)) || cw_die "component-prosody: nothing answers on $CW_COMPONENT_ADDR:$CW_COMPONENT_C2S_PORT and :$CW_COMPONENT_PORT"
  python3 - "$CW_DIR" "$secret" "$CW_SCRIPTS/component/prosody-instance" \
    "$(dpkg-query -W -f='${Version}' prosody | sed 's/-[^-]*$//')" >"$CW_DIR/describe/component.json" <<PY
import json, sys
d, secret, script, version = sys.argv[1:5]
print(json.dumps({
    "address": "$CW_COMPONENT_ADDR",
    "c2s": $CW_COMPONENT_C2S_PORT,
    "component_port": $CW_COMPONENT_PORT,
    "component_jid": "$CW_COMPONENT_JID",
    "secret": secret,
    "users_host": "$CW_COMPONENT_USERS_HOST",
    "accounts": [{"user": "alice", "password": "alice-password"},
                 {"user": "bob", "password": "bob-password"}],
    "ca": f"{d}/pki/ca.crt",
    "cert": f"{d}/pki/host-ec.fullchain.pem",
    "key": f"{d}/pki/host-ec.key",
    # Tests that restart a Prosody of their own write its config with this script.
    "prosody_instance": script,
    "version": version,
    "log": f"{d}/logs/component-prosody.log",
}, indent=2))
PY
}
