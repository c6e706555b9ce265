# The tor part of the interop environment: a private Tor network on loopback.
# shellcheck shell=bash
#
# - Three relays (Debian's `tor`), each a v3 directory authority AND an exit, each on its own
#   loopback address (127.0.0.11, .12, .13), so that the exits have distinct IPs.
# - A fourth relay, cwguard on 127.0.0.14, the only Guard and never an exit: a client never
#   exits through its own guard, so with exits as guards only two of three exits were reachable.
#   TestingTorNetwork with 20 s voting intervals: a consensus listing all three relays as exits
#   appears ~13-27 s after the start.
# - The third relay (cwrelay3, 127.0.0.13) runs as its own system user, cwexit (torrc `User`:
#   tor binds as root, then drops to that user), so that nftables can tell its exit connections
#   apart (`meta skuid`). The hostile part redirects that user's connections to one address
#   that only the hostile-exit drill uses; to every other destination it is a normal exit.
# - A C-tor client with a SOCKS5 port on 127.0.0.1:19050 (IsolateSOCKSAuth, the default: a new
#   username/password gives a new circuit). UseEntryGuards 0, so every relay can be the exit.
# - An arti configuration (arti's own TOML) for the same network: $CW_DIR/tor/arti.toml.
#
# `up` starts the relays, waits for that consensus, starts the client, waits until it has
# bootstrapped and until a stream through SOCKS reaches a throwaway listener on 127.0.0.1
# (tor/socks_check.py), then two more consensus periods; ~65-85 s in all, fails with the log tails after CW_TOR_WAIT_SECS (90).
# Keys are kept across up/down (in $CW_DIR/tor/<relay>/keys); all other Tor state is wiped at
# each (re)start, so the network always comes up the same way as on a fresh machine.
# Description ($CW_DIR/describe/tor.json, key "tor"):
#   {"socks": "127.0.0.1:19050", "arti_config": PATH,
#    "relays": [{"nickname", "address", "or_port", "dir_port", "rsa_identity" (40 hex),
#                "ed_identity" (base64, no padding), "v3ident" (40 hex), "user"}, ...],   (the exits)
#    "guard": {"nickname", "address", "or_port", "rsa_identity", "ed_identity"}}

TOR_RELAYS=(cwrelay1 cwrelay2 cwrelay3)
TOR_RELAY_ADDRS=(127.0.0.11 127.0.0.12 127.0.0.13)
# A fourth relay, the only one voted Guard, and never an exit. Tor and arti never use a
# circuit's guard as its exit; with every exit also a guard, one client could reach only two
# of the three exits. With this relay as the guard, all three exits are reachable.
TOR_GUARD=cwguard TOR_GUARD_ADDR=127.0.0.14 TOR_GUARD_OR_PORT=5104
TOR_OR_PORTS=(5101 5102 5103)
TOR_DIR_PORTS=(5151 5152 5153)
TOR_SOCKS_ADDR=127.0.0.1 TOR_SOCKS_PORT=19050
TOR_WAIT_SECS=${CW_TOR_WAIT_SECS:-90}
# The relay (index into TOR_RELAYS) that runs as its own user, and that user.
TOR_EXIT_USER_RELAY=2 TOR_EXIT_USER=cwexit

tor_packages() { echo tor python3; }

# The torrc lines every process of the network shares.
_tor_common_torrc() {
  local i
  cat <<EOF
TestingTorNetwork 1
RunAsDaemon 0
Log notice stdout
SafeLogging 0
Sandbox 0
ClientUseIPv6 0
PathsNeededToBuildCircuits 0.67
TestingV3AuthInitialVotingInterval 20
TestingV3AuthInitialVoteDelay 4
TestingV3AuthInitialDistDelay 4
V3AuthVotingInterval 20
V3AuthVoteDelay 4
V3AuthDistDelay 4
EOF
  for i in 0 1 2; do
    local d="$CW_DIR/tor/${TOR_RELAYS[$i]}"
    echo "DirAuthority ${TOR_RELAYS[$i]} orport=${TOR_OR_PORTS[$i]} no-v2 v3ident=$(_tor_v3ident "$d") ${TOR_RELAY_ADDRS[$i]}:${TOR_DIR_PORTS[$i]} $(_tor_rsa_id "$d")"
  done
}

_tor_v3ident() { awk '$1 == "fingerprint" { print $2 }' "$1/keys/authority_certificate"; }
_tor_rsa_id() { awk '{ print $2 }' "$1/fingerprint"; }
_tor_ed_id() { awk '{ print $2 }' "$1/fingerprint-ed25519"; }

# Creates the authority and relay keys of relay I once; they are kept across up/down.
_tor_keys() {
  local i=$1 d="$CW_DIR/tor/${TOR_RELAYS[$1]}"
  # The authority certificate is valid for 12 months: renew the keys well before that.
  if [ -s "$d/keys/authority_certificate" ] && [ -s "$d/fingerprint" ] && [ -s "$d/fingerprint-ed25519" ] \
    && [ -z "$(find "$d/keys/authority_certificate" -mtime +300)" ]; then
    return 0
  fi
  rm -rf "$d"; mkdir -p "$d/keys"; chmod 700 "$d"
  # Authority identity and signing keys; the passphrase is empty (read from stdin).
  echo "" | tor-gencert --create-identity-key --passphrase-fd 0 -m 12 \
    -a "${TOR_RELAY_ADDRS[$i]}:${TOR_DIR_PORTS[$i]}" \
    -i "$d/keys/authority_identity_key" -s "$d/keys/authority_signing_key" \
    -c "$d/keys/authority_certificate" >"$d/gencert.log" 2>&1 \
    || { cat "$d/gencert.log" >&2; cw_die "tor-gencert failed for ${TOR_RELAYS[$i]}"; }
  # Relay identity keys (RSA and ed25519); writes fingerprint and fingerprint-ed25519.
  tor --list-fingerprint --DataDirectory "$d" --ORPort 1 --Nickname "${TOR_RELAYS[$i]}" \
    --DirAuthority "placeholder 127.0.0.1:1 ffffffffffffffffffffffffffffffffffffffff" >"$d/fingerprint.log" 2>&1 \
    || { cat "$d/fingerprint.log" >&2; cw_die "tor --list-fingerprint failed for ${TOR_RELAYS[$i]}"; }
  [ -s "$d/fingerprint-ed25519" ] || cw_die "tor wrote no fingerprint-ed25519 for ${TOR_RELAYS[$i]}"
}

# The guard relay's identity keys (it is no authority); kept across up/down.
_tor_guard_keys() {
  local d="$CW_DIR/tor/$TOR_GUARD"
  [ -s "$d/fingerprint" ] && [ -s "$d/fingerprint-ed25519" ] && return 0
  rm -rf "$d"; mkdir -p "$d"; chmod 700 "$d"
  tor --list-fingerprint --DataDirectory "$d" --ORPort 1 --Nickname "$TOR_GUARD" \
    --DirAuthority "placeholder 127.0.0.1:1 ffffffffffffffffffffffffffffffffffffffff" >"$d/fingerprint.log" 2>&1 \
    || { cat "$d/fingerprint.log" >&2; cw_die "tor --list-fingerprint failed for $TOR_GUARD"; }
}

_tor_write_guard_torrc() {
  local d="$CW_DIR/tor/$TOR_GUARD"
  {
    _tor_common_torrc
    cat <<EOF
DataDirectory $d
Nickname $TOR_GUARD
ContactInfo certwatch-interop $TOR_GUARD
Address $TOR_GUARD_ADDR
ORPort $TOR_GUARD_ADDR:$TOR_GUARD_OR_PORT
SocksPort 0
AssumeReachable 1
ExitRelay 0
ExitPolicy reject *:*
ShutdownWaitLength 0
EOF
  } >"${1:-$CW_DIR/tor/$TOR_GUARD.torrc}"
}

# Removes everything but the keys and fingerprints from a data directory.
_tor_wipe_state() {
  local d=$1
  [ -d "$d" ] || return 0
  find "$d" -mindepth 1 -maxdepth 1 ! -name keys ! -name fingerprint ! -name fingerprint-ed25519 \
    -exec rm -rf {} +
}

_tor_write_relay_torrc() {
  local i=$1 d="$CW_DIR/tor/${TOR_RELAYS[$1]}"
  {
    _tor_common_torrc
    cat <<EOF
DataDirectory $d
Nickname ${TOR_RELAYS[$i]}
ContactInfo certwatch-interop ${TOR_RELAYS[$i]}
Address ${TOR_RELAY_ADDRS[$i]}
ORPort ${TOR_RELAY_ADDRS[$i]}:${TOR_OR_PORTS[$i]}
DirPort ${TOR_RELAY_ADDRS[$i]}:${TOR_DIR_PORTS[$i]}
SocksPort 0
AuthoritativeDirectory 1
V3AuthoritativeDirectory 1
AssumeReachable 1
TestingDirAuthVoteExit ${TOR_RELAYS[0]},${TOR_RELAYS[1]},${TOR_RELAYS[2]}
TestingDirAuthVoteExitIsStrict 1
TestingDirAuthVoteGuard $TOR_GUARD
TestingDirAuthVoteGuardIsStrict 1
TestingDirAuthVoteHSDir *
TestingMinExitFlagThreshold 0
# Stable for every running relay, from the start. Otherwise Stable goes to the relays whose
# MTBF is above the network's median, which in a young four-relay network can leave the only
# Guard (cwguard) without it; arti needs a Guard+Stable+Fast relay (is_suitable_as_guard) and
# otherwise refuses every circuit ("attempted to use unbootstrapped client").
AuthDirVoteStableGuaranteeMinUptime 0 seconds
AuthDirVoteStableGuaranteeMTBF 0 seconds
# Fast for every relay that advertises at least 1 KB/s: otherwise Fast goes by bandwidth
# percentile, and the guard, which carries little traffic, drops in and out of it.
TestingMinFastFlagThreshold 0
AuthDirFastGuarantee 1 KBytes
ExitRelay 1
ExitPolicyRejectPrivate 0
ExitPolicyRejectLocalInterfaces 0
ExitPolicy accept *:*
# Exit to IPv6 too (the dual-stack scenarios probe ::1 through Tor); with IPv6Exit the
# "accept *:*" above covers both families.
IPv6Exit 1
ServerDNSDetectHijacking 0
ServerDNSAllowBrokenConfig 1
ShutdownWaitLength 0
EOF
    if [ "$i" -eq "$TOR_EXIT_USER_RELAY" ]; then echo "User $TOR_EXIT_USER"; fi
  } >"${2:-$CW_DIR/tor/${TOR_RELAYS[$i]}.torrc}"
}

_tor_write_client_torrc() {
  local d="$CW_DIR/tor/client"
  mkdir -p "$d"; chmod 700 "$d"
  {
    _tor_common_torrc
    cat <<EOF
DataDirectory $d
SocksPort $TOR_SOCKS_ADDR:$TOR_SOCKS_PORT
SafeSocks 0
TestSocks 0
ClientRejectInternalAddresses 0
ClientDNSRejectInternalAddresses 0
UseEntryGuards 0
LongLivedPorts 1
# Conflux wants disjoint legs, which three relays cannot give: it only fills the log.
ConfluxEnabled 0
EOF
  } >"${1:-$CW_DIR/tor/client.torrc}"
}

_tor_write_arti_toml() {
  local f="$CW_DIR/tor/arti.toml" a="$CW_DIR/tor/arti" i d
  mkdir -p "$a/cache" "$a/state"
  {
    cat <<EOF
# arti configuration for the certwatch private Tor network (written by scripts/interop-env).
# Several TorClients may share these storage directories (one holds the lock, the others
# read the cache); give a client its own directories if it must not depend on the others.
[storage]
cache_dir = "$a/cache"
state_dir = "$a/state"

[storage.permissions]
dangerously_trust_everyone = true

[tor_network]
fallback_caches = [
EOF
    for i in 0 1 2; do
      d="$CW_DIR/tor/${TOR_RELAYS[$i]}"
      echo "  { rsa_identity = \"$(_tor_rsa_id "$d")\", ed_identity = \"$(_tor_ed_id "$d")\", orports = [\"${TOR_RELAY_ADDRS[$i]}:${TOR_OR_PORTS[$i]}\"] },"
    done
    echo "]"
    echo
    echo "[tor_network.authorities]"
    printf 'v3idents = ['
    for i in 0 1 2; do printf '"%s"%s' "$(_tor_v3ident "$CW_DIR/tor/${TOR_RELAYS[$i]}")" "$([ $i -lt 2 ] && echo ', ')"; done
    echo "]"
    cat <<EOF

[path_rules]
# All relays share 127/8: a prefix longer than 32 bits puts each in its own family.
ipv4_subnet_family_prefix = 33
ipv6_subnet_family_prefix = 129
# By default 5222/5223 are long-lived ports, which need Stable relays.
long_lived_ports = []

[address_filter]
allow_local_addrs = true
EOF
  } >"$f"
}

_tor_write_description() {
  local rows="" i d
  for i in 0 1 2; do
    d="$CW_DIR/tor/${TOR_RELAYS[$i]}"
    rows+="${TOR_RELAYS[$i]} ${TOR_RELAY_ADDRS[$i]} ${TOR_OR_PORTS[$i]} ${TOR_DIR_PORTS[$i]} $(_tor_rsa_id "$d") $(_tor_ed_id "$d") $(_tor_v3ident "$d") $(_tor_relay_user "$i")"$'\n'
  done
  d="$CW_DIR/tor/$TOR_GUARD"
  python3 - "$TOR_SOCKS_ADDR:$TOR_SOCKS_PORT" "$CW_DIR/tor/arti.toml" "$rows" \
    "$TOR_GUARD $TOR_GUARD_ADDR $TOR_GUARD_OR_PORT $(_tor_rsa_id "$d") $(_tor_ed_id "$d")" >"$CW_DIR/describe/tor.json" <<'PY'
import json, sys
socks, arti, rows = sys.argv[1], sys.argv[2], sys.argv[3]
gnick, gaddr, gor, grsa, ged = sys.argv[4].split()
guard = {"nickname": gnick, "address": gaddr, "or_port": int(gor), "rsa_identity": grsa, "ed_identity": ged}
relays = []
for line in rows.strip().splitlines():
    nick, addr, orp, dirp, rsa, ed, v3, user = line.split()
    relays.append({"nickname": nick, "address": addr, "or_port": int(orp), "dir_port": int(dirp),
                   "rsa_identity": rsa, "ed_identity": ed, "v3ident": v3, "user": user})
print(json.dumps({"socks": socks, "arti_config": arti, "relays": relays, "guard": guard}, indent=2))
PY
}

# _tor_config_sum: the SHA-256 of the torrcs this script writes now (with the kept keys), to
# tell a running network started from another configuration. Prints nothing without keys.
_tor_config_sum() {
  local i
  for i in 0 1 2; do [ -s "$CW_DIR/tor/${TOR_RELAYS[$i]}/keys/authority_certificate" ] || return 0; done
  { for i in 0 1 2; do _tor_write_relay_torrc "$i" /dev/stdout; done
    _tor_write_guard_torrc /dev/stdout; _tor_write_client_torrc /dev/stdout; } | sha256sum | cut -d' ' -f1
}

# The user that relay I runs as.
_tor_relay_user() { if [ "$1" -eq "$TOR_EXIT_USER_RELAY" ]; then echo "$TOR_EXIT_USER"; else echo root; fi; }

# Creates the system user of the user-owned relay (once) and gives it its data directory.
_tor_exit_user() {
  local d="$CW_DIR/tor/${TOR_RELAYS[$TOR_EXIT_USER_RELAY]}"
  id -u "$TOR_EXIT_USER" >/dev/null 2>&1 \
    || useradd -r -M -d /nonexistent -s /usr/sbin/nologin "$TOR_EXIT_USER" \
    || cw_die "tor: useradd $TOR_EXIT_USER failed"
  chown -R "$TOR_EXIT_USER:" "$d"
  chmod 700 "$d"
}

# True when the user-owned relay runs as its user (an older environment ran it as root).
_tor_exit_user_ok() {
  local pid
  pid=$(cat "$CW_DIR/pids/tor-${TOR_RELAYS[$TOR_EXIT_USER_RELAY]}.pid" 2>/dev/null) || return 1
  [ "$(ps -o user= -p "$pid" 2>/dev/null | tr -d ' ')" = "$TOR_EXIT_USER" ]
}

_tor_relays_alive() {
  local n
  for n in "${TOR_RELAYS[@]}" "$TOR_GUARD"; do
    kill -0 "$(cat "$CW_DIR/pids/tor-$n.pid" 2>/dev/null || echo none)" 2>/dev/null || return 1
  done
}

_tor_all_alive() {
  local n
  for n in "${TOR_RELAYS[@]}" "$TOR_GUARD" client; do
    kill -0 "$(cat "$CW_DIR/pids/tor-$n.pid" 2>/dev/null || echo none)" 2>/dev/null || return 1
  done
}

_tor_fail() {
  local n
  for n in "${TOR_RELAYS[@]}" "$TOR_GUARD" client; do
    echo "--- $CW_DIR/logs/tor-$n.log (tail)" >&2
    tail -n 15 "$CW_DIR/logs/tor-$n.log" >&2 2>/dev/null || true
  done
  cw_die "tor: $*"
}

_tor_socks_check() {
  python3 "$CW_SCRIPTS/tor/socks_check.py" "$TOR_SOCKS_ADDR" "$TOR_SOCKS_PORT" "$1"
}

tor_up() {
  local i n t0 now deadline
  mkdir -p "$CW_DIR/tor"
  # Idempotent: a running, working network whose configuration is unchanged is left alone.
  if _tor_all_alive && _tor_exit_user_ok && [ -s "$CW_DIR/describe/tor.json" ] && [ -s "$CW_DIR/tor/arti.toml" ] \
    && [ "$(cat "$CW_DIR/tor/config-sha256" 2>/dev/null)" = "$(_tor_config_sum)" ] \
    && _tor_socks_check 20 >/dev/null 2>&1; then
    cw_log "tor: already up (SOCKS $TOR_SOCKS_ADDR:$TOR_SOCKS_PORT works)"
    return 0
  fi
  cw_stop_all tor
  rm -f "$CW_DIR/describe/tor.json"
  for i in 0 1 2; do _tor_keys "$i"; done
  _tor_guard_keys
  for n in "${TOR_RELAYS[@]}" "$TOR_GUARD" client; do _tor_wipe_state "$CW_DIR/tor/$n"; done
  _tor_exit_user
  rm -rf "$CW_DIR/tor/arti"
  for i in 0 1 2; do _tor_write_relay_torrc "$i"; done
  _tor_write_guard_torrc
  _tor_write_client_torrc
  _tor_write_arti_toml
  _tor_config_sum >"$CW_DIR/tor/config-sha256"
  for n in "${TOR_RELAYS[@]}" "$TOR_GUARD" client; do
    tor --verify-config -f "$CW_DIR/tor/$n.torrc" >"$CW_DIR/tor/$n.verify.log" 2>&1 \
      || { cat "$CW_DIR/tor/$n.verify.log" >&2; cw_die "tor: invalid torrc $CW_DIR/tor/$n.torrc"; }
  done

  t0=$(date +%s)
  deadline=$((t0 + TOR_WAIT_SECS))
  for n in "${TOR_RELAYS[@]}" "$TOR_GUARD"; do cw_start tor "$n" tor -f "$CW_DIR/tor/$n.torrc"; done

  # 1. The authorities publish a consensus that lists all three relays as exits. (The very
  #    first one is often empty: the first vote can precede the relays' descriptors.) The
  #    client starts only then, so that its first fetch gets a usable consensus.
  local cons="$CW_DIR/tor/${TOR_RELAYS[0]}/cached-microdesc-consensus" first=""
  until [ -s "$cons" ] && [ "$(grep -c '^s .*Exit' "$cons")" -ge 3 ] && [ "$(grep -c '^s .*Fast.*Guard.*Stable' "$cons")" -ge 1 ]; do
    [ -z "$first" ] && [ -s "$cons" ] && first=$(($(date +%s) - t0)) && cw_log "tor: first consensus after ${first}s"
    _tor_relays_alive || _tor_fail "a relay died"
    [ "$(date +%s)" -lt "$deadline" ] || _tor_fail "no consensus with three exits after ${TOR_WAIT_SECS}s"
    sleep 0.5
  done
  cw_log "tor: consensus with three exit relays and a fast, stable guard after $(($(date +%s) - t0))s"
  cw_start tor client tor -f "$CW_DIR/tor/client.torrc"
  # 2. The client has bootstrapped.
  until grep -q "Bootstrapped 100%" "$CW_DIR/logs/tor-client.log" 2>/dev/null; do
    _tor_all_alive || _tor_fail "a tor process died"
    [ "$(date +%s)" -lt "$deadline" ] || _tor_fail "the client did not bootstrap after ${TOR_WAIT_SECS}s"
    sleep 0.5
  done
  cw_log "tor: client bootstrapped after $(($(date +%s) - t0))s"
  # 3. A stream through the network reaches a listener on 127.0.0.1.
  until _tor_socks_check 15 >"$CW_DIR/tor/socks_check.log" 2>&1; do
    _tor_all_alive || _tor_fail "a tor process died"
    now=$(date +%s)
    [ "$now" -lt "$deadline" ] || { cat "$CW_DIR/tor/socks_check.log" >&2; _tor_fail "no stream through SOCKS after ${TOR_WAIT_SECS}s"; }
    sleep 1
  done
  cw_log "tor: $(cat "$CW_DIR/tor/socks_check.log"); network up after $(($(date +%s) - t0))s"
  # 4. Let the network settle: two consensus periods after the first full consensus (and
  #    CW_TOR_AGE_SECS after the start, 0 by default). arti refuses every circuit ("attempted
  #    to use unbootstrapped client") unless some relay is Guard AND Stable AND Fast
  #    (tor-netdir's is_suitable_as_guard; without one, have_enough_paths() is false). By
  #    default the authorities hand out Stable and Fast by median uptime and bandwidth
  #    percentile, so the only Guard got them late (the "young network" of ~100 s) or lost
  #    them later; AuthDirVoteStableGuarantee* and AuthDirFastGuarantee above make it
  #    deterministic, and step 1 waits for a Fast, Stable Guard.
  local va0 va
  va0=$(date -d "$(awk '/^valid-after/ { print $2, $3 }' "$cons")" +%s)
  until va=$(date -d "$(awk '/^valid-after/ { print $2, $3 }' "$cons")" +%s) && [ $((va - va0)) -ge 40 ] \
    && [ $(($(date +%s) - t0)) -ge "${CW_TOR_AGE_SECS:-0}" ]; do
    _tor_all_alive || _tor_fail "a tor process died"
    [ "$(date +%s)" -lt $((deadline + 120)) ] || _tor_fail "no new consensus for two minutes"
    sleep 1
  done
  cw_log "tor: network aged; ready after $(($(date +%s) - t0))s"
  _tor_write_description
}

tor_down() { cw_stop_all tor; }
