# Shared helpers for scripts/interop/*.sh. Sourced, never run.
# shellcheck shell=bash
export CW_DIR="${CERTWATCH_INTEROP_DIR:-/tmp/certwatch-interop}"
export CW_ENV_VAR=CERTWATCH_INTEROP

# Names shared by the parts. The DNS part publishes these; the XMPP part serves them.
# XMPP service domains (Prosody VirtualHosts); parts may append with +=.
CW_XMPP_DOMAINS=(match.test mismatch.test nodata.test nodata3.test insecure.test bogus.test expired.test cross.test multi.test insecure-srv.test bogus-ds.test nosrv.test nsec3-150.test nsec3-600.test dead.test cname.test wildcard.test large.test expiring.test split.test dot.test wildcard3.test multi-wrong.test drill.test)
# Prosody, the primary XMPP server, on 127.0.0.1 with the standard ports so the SRV-less
# fallback (5222/5269) reaches it too. ejabberd, the second implementation, on 127.0.0.2.
export CW_PROSODY_ADDR=127.0.0.1 CW_EJABBERD_ADDR=127.0.0.2
export CW_C2S_PORT=5222 CW_C2S_DIRECT_PORT=5223 CW_S2S_PORT=5269
# The second Prosody ("other", the interceptor): its own address, another key (other-ec). It
# serves the mismatch scenarios, and it is the MITM that the hostile exit of the drill reaches.
export CW_OTHER_ADDR=127.0.0.5
# The replay server (genuine host-ec chain, handshake signed with other-ec).
export CW_REPLAY_ADDR=127.0.0.4
# The destination only the hostile-exit drill uses: the main Prosody listens here too, and the
# hostile exit's connections to it are redirected to the other Prosody (scripts/interop/hostile.sh).
export CW_DRILL_ADDR=127.0.0.6 CW_DRILL_DOMAIN=drill.test
# The alert drills (issue 9): their own Prosody for alert.test, and the SMTP sink.
export CW_ALERT_ADDR=127.0.0.21 CW_ALERT_DOMAIN=alert.test CW_SMTP_ADDR=127.0.0.22 CW_SMTP_PORT=2525
# The SRV target (host name) Prosody answers as, in its own zone hosts.test.
export CW_PROSODY_HOST=xmpp.hosts.test CW_EJABBERD_HOST=ejabberd.hosts.test

cw_log() { printf '[interop %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
cw_die() { cw_log "ERROR: $*"; exit 1; }

# cw_apt_install PKG...: installs whatever is missing (Debian bookworm, root).
cw_apt_install() {
  local missing=() p
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  cw_log "installing: ${missing[*]}"
  if [ ! -f "$CW_DIR/.apt-updated" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null; mkdir -p "$CW_DIR"; touch "$CW_DIR/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || cw_die "apt-get install ${missing[*]} failed"
  # Debian's packages may start their own daemons; ours run from our own config files.
  for p in nsd unbound prosody tor ejabberd; do
    if [[ " ${missing[*]} " == *" $p "* ]]; then service "$p" stop >/dev/null 2>&1 || true; fi
  done
}

# cw_start PART NAME CMD...: starts CMD in the background (its own session), logs to
# $CW_DIR/logs/PART-NAME.log and records the PID in $CW_DIR/pids/PART-NAME.pid.
cw_start() {
  local part=$1 name=$2; shift 2
  mkdir -p "$CW_DIR/logs" "$CW_DIR/pids"
  setsid "$@" >"$CW_DIR/logs/$part-$name.log" 2>&1 </dev/null &
  echo $! >"$CW_DIR/pids/$part-$name.pid"
}

# cw_stop_all PART: stops every process PART started with cw_start, by PID.
cw_stop_all() {
  local part=$1 f pid
  for f in "$CW_DIR/pids/$part-"*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
}

# cw_alive PART NAME: fails (with the log tail) when the process has died.
cw_alive() {
  local pid; pid=$(cat "$CW_DIR/pids/$1-$2.pid" 2>/dev/null) || cw_die "$1-$2: no pid file"
  kill -0 "$pid" 2>/dev/null || { tail -n 30 "$CW_DIR/logs/$1-$2.log" >&2; cw_die "$1-$2 died"; }
}

# cw_wait_tcp HOST PORT [SECONDS]: waits until a TCP connect succeeds.
cw_wait_tcp() {
  local host=$1 port=$2 secs=${3:-30} i
  for ((i = 0; i < secs * 10; i++)); do
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  cw_die "nothing answers on $host:$port after ${secs}s"
}

# cw_spki_sha256 CERT_OR_KEY_PEM: the hex SHA-256 of the SubjectPublicKeyInfo (the 3 1 1 data),
# computed with openssl, the independent oracle.
cw_spki_sha256() {
  local f=$1
  if grep -q "BEGIN CERTIFICATE" "$f"; then
    openssl x509 -in "$f" -pubkey -noout | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1
  else
    openssl pkey -in "$f" -pubout -outform der | sha256sum | cut -d' ' -f1
  fi
}

# cw_merge_description: writes $CW_DIR/env.json from the parts' describe/*.json.
cw_merge_description() {
  python3 - "$CW_DIR" <<'PY'
import json, os, sys
d = sys.argv[1]
out = {"version": 1, "dir": d}
for name in sorted(os.listdir(os.path.join(d, "describe"))):
    if name.endswith(".json"):
        with open(os.path.join(d, "describe", name)) as f:
            out[name[:-5]] = json.load(f)
tmp = os.path.join(d, "env.json.tmp")
with open(tmp, "w") as f:
    json.dump(out, f, indent=2)
os.replace(tmp, os.path.join(d, "env.json"))
PY
}
