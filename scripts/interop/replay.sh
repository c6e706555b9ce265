# The replay part of the interop environment: a MITM that replays the genuine chain.
# shellcheck shell=bash
#
#   replay  certwatch-interop-replay (crates/testkit, feature replay-server) on
#           $CW_REPLAY_ADDR (127.0.0.4): STARTTLS on 5222 (c2s) and 5269 (s2s), direct TLS on
#           5223 and 5270. It presents the GENUINE chain of host-ec (which the replay.test
#           TLSA pins) but signs the handshake with other-ec: it does not hold the key.
#
# `up` builds the binary with cargo (debug profile; CARGO_TARGET_DIR is honoured, so CI shares
# its build directory), copies it to $CW_DIR/replay/, starts it, and checks it with openssl:
# the presented leaf is host-ec's and the handshake fails with "bad signature".
# Description (describe/replay.json, key "replay"): {"address", "c2s", "c2s_direct", "s2s",
#   "s2s_direct", "chain_key": "host-ec", "signing_key": "other-ec", "binary", "log"}.

replay_packages() { echo openssl; }

# _replay_cargo: the cargo to build with (PATH, then rustup's default place).
_replay_cargo() {
  if command -v cargo >/dev/null; then command -v cargo
  elif [ -x "$HOME/.cargo/bin/cargo" ]; then echo "$HOME/.cargo/bin/cargo"
  else cw_die "replay: cargo not found (the replay server is built from crates/testkit)"; fi
}

replay_up() {
  local d="$CW_DIR/replay" pki="$CW_DIR/pki" root cargo exe out
  root=$(cd "$CW_SCRIPTS/../.." && pwd)
  [ -s "$pki/host-ec.fullchain.pem" ] || cw_die "replay needs the pki part"
  replay_down
  mkdir -p "$d"
  cargo=$(_replay_cargo)
  cw_log "replay: building certwatch-interop-replay (cargo, debug)"
  out=$(cd "$root" && "$cargo" build --quiet -p certwatch-testkit --features replay-server \
    --bin certwatch-interop-replay --message-format=json 2>"$d/build.log") \
    || { tail -n 30 "$d/build.log" >&2; cw_die "replay: cargo build failed"; }
  exe=$(python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "certwatch-interop-replay":
        print(m["executable"])' <<<"$out")
  [ -x "$exe" ] || cw_die "replay: cargo reported no executable"
  cp "$exe" "$d/certwatch-interop-replay"
  cw_start replay server "$d/certwatch-interop-replay" --chain "$pki/host-ec.fullchain.pem" \
    --key "$pki/other-ec.key" \
    --starttls "$CW_REPLAY_ADDR:$CW_C2S_PORT" --starttls "$CW_REPLAY_ADDR:$CW_S2S_PORT" \
    --direct "$CW_REPLAY_ADDR:$CW_C2S_DIRECT_PORT" --direct "$CW_REPLAY_ADDR:5270"
  local i
  for ((i = 0; i < 100; i++)); do
    grep -q '^ready' "$CW_DIR/logs/replay-server.log" 2>/dev/null && break
    cw_alive replay server; sleep 0.1
  done
  cw_alive replay server
  # openssl, the independent peer: it sees host-ec's certificate and rejects the signature.
  local genuine got port args
  genuine=$(cw_spki_sha256 "$pki/host-ec.crt")
  for port in "$CW_C2S_PORT" "$CW_S2S_PORT" "$CW_C2S_DIRECT_PORT" 5270; do
    case $port in
      "$CW_C2S_PORT") args=(-starttls xmpp -xmpphost replay.test) ;;
      "$CW_S2S_PORT") args=(-starttls xmpp-server -xmpphost replay.test) ;;
      *) args=(-servername replay.test) ;;
    esac
    out=$(timeout 10 openssl s_client -connect "$CW_REPLAY_ADDR:$port" "${args[@]}" </dev/null 2>&1 || true)
    got=$(openssl x509 -pubkey -noout 2>/dev/null <<<"$out" | openssl pkey -pubin -outform der 2>/dev/null | sha256sum | cut -d' ' -f1)
    [ "$got" = "$genuine" ] || { echo "$out" >&2; cw_die "replay: $CW_REPLAY_ADDR:$port presents $got, expected host-ec's chain"; }
    grep -q 'bad signature' <<<"$out" || { echo "$out" >&2; cw_die "replay: openssl accepted the handshake signature at $CW_REPLAY_ADDR:$port"; }
  done
  cw_log "replay: $CW_REPLAY_ADDR presents host-ec's chain, and openssl rejects its signature (bad signature)"
  python3 - "$CW_REPLAY_ADDR" "$d/certwatch-interop-replay" "$CW_DIR/logs/replay-server.log" \
    >"$CW_DIR/describe/replay.json" <<PY
import json, sys
addr, exe, log = sys.argv[1:4]
print(json.dumps({"address": addr, "c2s": $CW_C2S_PORT, "c2s_direct": $CW_C2S_DIRECT_PORT,
                  "s2s": $CW_S2S_PORT, "s2s_direct": 5270, "chain_key": "host-ec",
                  "signing_key": "other-ec", "binary": exe, "log": log}, indent=2))
PY
}

replay_down() { cw_stop_all replay; }
