#!/usr/bin/env bash
# Side-by-side benchmark of certwatch and the peer operators use today (a cron script of
# dig + openssl, scripts/bench/peer-check.sh) on the same loopback fixtures, in one run.
# Not part of CI (the CI gate is .ci/perf-gate). Results: docs/performance.md.
#
#   benches/compare.sh [--runs N] [--scenarios "1 2 3 5"] [--bin DIR] [--keep-fixtures]
#
# Needs, as root on Debian bookworm: the shared interop environment up (its Prosody and,
# for scenario 5, its private Tor network), nsd, unbound, ldnsutils, dig, openssl,
# python3, and release builds of certwatch and the harness:
#   cargo build --release -p certwatch-cli -p certwatch-bench
# --bin DIR is their directory (default: $CARGO_TARGET_DIR/release).
#
# Fair measurement: both tools use the same validating unbound (ours, 127.0.0.52:6354),
# warmed by one untimed run of each tool before timing; certwatch still validates every
# answer locally (it sets CD). Client CPU is the rusage of the tool's process tree
# (scripts/bench/measure.py); the fixture servers are not children and are not counted.
# Runs alternate the tools; tables give the median with min and max.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=10
SCENARIOS="1 2 3 5"
BIN="${CARGO_TARGET_DIR:-/var/tmp/certwatch-target}/release"
KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --scenarios) SCENARIOS=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --keep-fixtures) KEEP=1; shift ;;
    *) echo "usage: $0 [--runs N] [--scenarios LIST] [--bin DIR] [--keep-fixtures]" >&2; exit 2 ;;
  esac
done
DIR=${CW_BENCH_DIR:-/tmp/certwatch-bench}
OUT=$DIR/results
M="$ROOT/scripts/bench/measure.py"
S="$ROOT/scripts/bench/stats.py"
PEER="$ROOT/scripts/bench/peer-check.sh"
CERTWATCH="$BIN/certwatch"
for b in certwatch cw-delay-proxy cw-xmpp-fixture; do
  [ -x "$BIN/$b" ] || { echo "compare.sh: $BIN/$b missing (cargo build --release -p certwatch-cli -p certwatch-bench)" >&2; exit 1; }
done

"$ROOT/scripts/bench/fixtures.sh" up "$BIN"
PROXY_PID=""
cleanup() {
  [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null || true
  [ "$KEEP" = 1 ] || "$ROOT/scripts/bench/fixtures.sh" down || true
}
trap cleanup EXIT
mkdir -p "$OUT"
rm -f "$OUT"/*.jsonl
REPORT="$OUT/results.md"
: > "$REPORT"
say() { echo "$*" | tee -a "$REPORT"; }

RESOLVER=127.0.0.52:6354
CW=("$CERTWATCH" check --via direct --resolver "$RESOLVER" --trust-anchor "$DIR/root.key"
  --allow-private-targets --json)

# stat FILE FIELD [SCALE] -> "median (min-max)"
stat() { "$S" "$@" | awk '{ printf "%s (%s-%s)", $1, $2, $3 }'; }
med() { "$S" "$@" | awk '{ print $1 }'; }
exits() { python3 -c 'import json,sys; print(",".join(sorted({str(json.loads(l)["exit"]) for l in open(sys.argv[1])})))' "$1"; }

{
  echo "# compare.sh results, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "- CPU: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- certwatch: $("$CERTWATCH" --version 2>/dev/null || echo '?'); commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || cat "$ROOT/SNAPSHOT_COMMIT" 2>/dev/null || echo '?')"
  echo "- peer: $(openssl version); $(dig -v 2>&1 | head -1); unbound $(unbound -V 2>/dev/null | sed -n 's/^Version //p')"
  echo "- runs: $RUNS per cell, tools alternated"
  echo
} | tee -a "$REPORT"

# --- scenario 1: one domain, four endpoints, cold process -------------------------------
scenario1() {
  say "## Scenario 1: match.test, four endpoints (Prosody), cold process, direct"
  local peer_env=(env PEER_RESOLVER=127.0.0.52 PEER_RESOLVER_PORT=6354)
  # Warm the upstream the same way for both: one untimed run of each.
  "${CW[@]}" match.test > /dev/null || true
  "${peer_env[@]}" "$PEER" match.test > /dev/null || true
  for i in $(seq "$RUNS"); do
    if [ $((i % 2)) = 1 ]; then
      "$M" --out "$OUT/s1-cw.jsonl" -- "${CW[@]}" match.test > /dev/null
      "$M" --out "$OUT/s1-peer.jsonl" -- "${peer_env[@]}" "$PEER" match.test > /dev/null
    else
      "$M" --out "$OUT/s1-peer.jsonl" -- "${peer_env[@]}" "$PEER" match.test > /dev/null
      "$M" --out "$OUT/s1-cw.jsonl" -- "${CW[@]}" match.test > /dev/null
    fi
  done
  local wc wp cc cp
  wc=$(med "$OUT/s1-cw.jsonl" wall_ms); wp=$(med "$OUT/s1-peer.jsonl" wall_ms)
  cc=$(med "$OUT/s1-cw.jsonl" cpu_ms); cp=$(med "$OUT/s1-peer.jsonl" cpu_ms)
  say ""
  say "| tool | wall ms, median (min-max) | client CPU ms | peak RSS KiB | exit |"
  say "|---|---|---|---|---|"
  say "| certwatch (4 endpoints x EC+RSA = 8 handshakes) | $(stat "$OUT/s1-cw.jsonl" wall_ms) | $(stat "$OUT/s1-cw.jsonl" cpu_ms) | $(med "$OUT/s1-cw.jsonl" maxrss_kib) | $(exits "$OUT/s1-cw.jsonl") |"
  say "| peer (dig + openssl, 4 handshakes) | $(stat "$OUT/s1-peer.jsonl" wall_ms) | $(stat "$OUT/s1-peer.jsonl" cpu_ms) | $(med "$OUT/s1-peer.jsonl" maxrss_kib) | $(exits "$OUT/s1-peer.jsonl") |"
  say ""
  say "Wall-time ratio peer/certwatch: $(awk -v a="$wp" -v b="$wc" 'BEGIN{printf "%.2f", a/b}')x; CPU ratio: $(awk -v a="$cp" -v b="$cc" 'BEGIN{printf "%.2f", a/b}')x"
  say ""
}

# --- scenario 2: round trips through the delay proxy ------------------------------------
scenario2() {
  # CW_BENCH_DELAY_MS=0 measures the same path without delay (local cost, in ms).
  local delay=${CW_BENCH_DELAY_MS:-50} scale unit
  if [ "$delay" = 0 ]; then scale=1; unit="ms"; else scale=$((2 * delay)); unit="RTTs"; fi
  say "## Scenario 2: multi.test through cw-delay-proxy, $delay ms each way (RTT $((2 * delay)) ms), warm upstream"
  "$BIN/cw-delay-proxy" --delay-ms "$delay" \
    --tcp 127.0.0.51:5222=127.0.0.1:5222 --tcp 127.0.0.51:5223=127.0.0.1:5223 \
    --tcp 127.0.0.51:5269=127.0.0.1:5269 --tcp 127.0.0.51:5270=127.0.0.1:5270 \
    --udp 127.0.0.53:6354=127.0.0.52:6354 --tcp 127.0.0.53:6354=127.0.0.52:6354 \
    2> "$DIR/proxy.log" &
  PROXY_PID=$!
  sleep 0.5
  local cw=("$CERTWATCH" check --via direct --resolver 127.0.0.53:6354 --trust-anchor "$DIR/root.key"
    --allow-private-targets --json)
  local peer_env=(env PEER_RESOLVER=127.0.0.53 PEER_RESOLVER_PORT=6354)
  # warm the upstream (unbound) for every name
  "${cw[@]}" multi.test > /dev/null || true
  "${peer_env[@]}" "$PEER" multi.test > /dev/null || true
  say ""
  say "| services | certwatch $unit, median (min-max) | peer $unit, median (min-max) |"
  say "|---|---|---|"
  local svc peer_svc tag
  for svc in c2s-starttls c2s-direct s2s-starttls s2s-direct all; do
    case $svc in
      c2s-starttls) peer_svc=xmpp-client ;;
      c2s-direct) peer_svc=xmpps-client ;;
      s2s-starttls) peer_svc=xmpp-server ;;
      s2s-direct) peer_svc=xmpps-server ;;
      all) peer_svc="xmpp-client xmpps-client xmpp-server xmpps-server" ;;
    esac
    local opt=()
    [ "$svc" = all ] || opt=(--services "$svc")
    tag=$svc-$delay
    for i in $(seq "$RUNS"); do
      if [ $((i % 2)) = 1 ]; then
        "$M" --out "$OUT/s2-cw-$tag.jsonl" -- "${cw[@]}" "${opt[@]}" multi.test > /dev/null
        "$M" --out "$OUT/s2-peer-$tag.jsonl" -- "${peer_env[@]}" PEER_SERVICES="$peer_svc" "$PEER" multi.test > /dev/null
      else
        "$M" --out "$OUT/s2-peer-$tag.jsonl" -- "${peer_env[@]}" PEER_SERVICES="$peer_svc" "$PEER" multi.test > /dev/null
        "$M" --out "$OUT/s2-cw-$tag.jsonl" -- "${cw[@]}" "${opt[@]}" multi.test > /dev/null
      fi
    done
    say "| $svc | $(stat "$OUT/s2-cw-$tag.jsonl" wall_ms "$scale") (exit $(exits "$OUT/s2-cw-$tag.jsonl")) | $(stat "$OUT/s2-peer-$tag.jsonl" wall_ms "$scale") (exit $(exits "$OUT/s2-peer-$tag.jsonl")) |"
  done
  kill "$PROXY_PID" 2>/dev/null || true
  PROXY_PID=""
  say ""
}

# --- scenario 3: batch -------------------------------------------------------------------
scenario3() {
  local n sub
  n=$(wc -l < "$DIR/domains.txt")
  sub=${CW_BENCH_PEER_DOMAINS:-100}
  head -n "$sub" "$DIR/domains.txt" > "$DIR/domains-sub.txt"
  say "## Scenario 3: batch of generated domains (one c2s STARTTLS endpoint each, fixture on 127.0.0.50)"
  "${CW[@]}" --domains-file "$DIR/domains.txt" > /dev/null || true   # warm unbound
  local peer_env=(env PEER_RESOLVER=127.0.0.52 PEER_RESOLVER_PORT=6354 PEER_SERVICES=xmpp-client)
  mapfile -t subdomains < "$DIR/domains-sub.txt"
  "${peer_env[@]}" "$PEER" "${subdomains[@]}" > /dev/null || true
  # The full batch takes about a minute a run here: CW_BENCH_BATCH_RUNS (default RUNS).
  for i in $(seq "${CW_BENCH_BATCH_RUNS:-$RUNS}"); do
    "$M" --out "$OUT/s3-cw-all.jsonl" -- "${CW[@]}" --domains-file "$DIR/domains.txt" > /dev/null
  done
  for i in $(seq "$RUNS"); do
    if [ $((i % 2)) = 1 ]; then
      "$M" --out "$OUT/s3-cw-sub.jsonl" -- "${CW[@]}" --domains-file "$DIR/domains-sub.txt" > /dev/null
      "$M" --out "$OUT/s3-peer-sub.jsonl" -- "${peer_env[@]}" "$PEER" "${subdomains[@]}" > /dev/null
    else
      "$M" --out "$OUT/s3-peer-sub.jsonl" -- "${peer_env[@]}" "$PEER" "${subdomains[@]}" > /dev/null
      "$M" --out "$OUT/s3-cw-sub.jsonl" -- "${CW[@]}" --domains-file "$DIR/domains-sub.txt" > /dev/null
    fi
  done
  local cw_all cw_sub peer_sub
  cw_all=$(med "$OUT/s3-cw-all.jsonl" cpu_ms "$n")
  cw_sub=$(med "$OUT/s3-cw-sub.jsonl" cpu_ms "$sub")
  peer_sub=$(med "$OUT/s3-peer-sub.jsonl" cpu_ms "$sub")
  say ""
  say "| run | domains | wall s | checks/s (median) | client CPU ms per check | peak RSS KiB | exit |"
  say "|---|---|---|---|---|---|---|"
  say "| certwatch --domains-file | $n | $(stat "$OUT/s3-cw-all.jsonl" wall_ms 1000) | $(awk -v n="$n" -v w="$(med "$OUT/s3-cw-all.jsonl" wall_ms 1000)" 'BEGIN{printf "%.1f", n/w}') | $(stat "$OUT/s3-cw-all.jsonl" cpu_ms "$n") | $(stat "$OUT/s3-cw-all.jsonl" maxrss_kib) | $(exits "$OUT/s3-cw-all.jsonl") |"
  say "| certwatch --domains-file | $sub | $(stat "$OUT/s3-cw-sub.jsonl" wall_ms 1000) | $(awk -v n="$sub" -v w="$(med "$OUT/s3-cw-sub.jsonl" wall_ms 1000)" 'BEGIN{printf "%.1f", n/w}') | $(stat "$OUT/s3-cw-sub.jsonl" cpu_ms "$sub") | $(stat "$OUT/s3-cw-sub.jsonl" maxrss_kib) | $(exits "$OUT/s3-cw-sub.jsonl") |"
  say "| peer (sequential) | $sub | $(stat "$OUT/s3-peer-sub.jsonl" wall_ms 1000) | $(awk -v n="$sub" -v w="$(med "$OUT/s3-peer-sub.jsonl" wall_ms 1000)" 'BEGIN{printf "%.1f", n/w}') | $(stat "$OUT/s3-peer-sub.jsonl" cpu_ms "$sub") | $(stat "$OUT/s3-peer-sub.jsonl" maxrss_kib) | $(exits "$OUT/s3-peer-sub.jsonl") |"
  say ""
  say "CPU per check, peer/certwatch on the same $sub domains: $(awk -v a="$peer_sub" -v b="$cw_sub" 'BEGIN{printf "%.1f", a/b}')x (certwatch over $n: $cw_all ms)"
  say ""
  say "### Peak RSS against probes in flight (wide.bench: one endpoint, 128 addresses x EC+RSA = 256 probes)"
  say ""
  say "| --concurrency | peak RSS KiB, median (min-max) | wall ms | exit |"
  say "|---|---|---|---|"
  local c
  "${CW[@]}" wide.bench > /dev/null || true
  for c in 1 16 64 256; do
    for i in $(seq "$RUNS"); do
      "$M" --out "$OUT/s3-rss-$c.jsonl" -- "${CW[@]}" --concurrency "$c" wide.bench > /dev/null
    done
    say "| $c | $(stat "$OUT/s3-rss-$c.jsonl" maxrss_kib) | $(stat "$OUT/s3-rss-$c.jsonl" wall_ms) | $(exits "$OUT/s3-rss-$c.jsonl") |"
  done
  say ""
  say "RSS per in-flight probe above one in flight: $(awk -v a="$(med "$OUT/s3-rss-256.jsonl" maxrss_kib)" -v b="$(med "$OUT/s3-rss-1.jsonl" maxrss_kib)" 'BEGIN{printf "%.1f", (a-b)/255}') KiB (256 vs 1); $(awk -v a="$(med "$OUT/s3-rss-64.jsonl" maxrss_kib)" -v b="$(med "$OUT/s3-rss-1.jsonl" maxrss_kib)" 'BEGIN{printf "%.1f", (a-b)/63}') KiB (64 vs 1)"
  say ""
}

# --- scenario 5: Tor on the private network ---------------------------------------------
scenario5() {
  local env=${CERTWATCH_INTEROP:-/tmp/certwatch-interop/env.json}
  local idir
  idir=$(dirname "$env")
  say "## Scenario 5: Tor (the interop environment's private network), match.test, four endpoints"
  local base=("$CERTWATCH" check --resolver 127.0.0.1:5354 --trust-anchor "$idir/dns/root.key"
    --allow-private-targets --json)
  local arti=("${base[@]}" --via tor --tor-config "$idir/tor/arti.toml")
  local socks=("${base[@]}" --via socks5://127.0.0.1:19050)
  "${socks[@]}" match.test > /dev/null || true
  for i in $(seq "$RUNS"); do
    if [ $((i % 2)) = 1 ]; then
      "$M" --out "$OUT/s5-arti.jsonl" --stdout "$OUT/s5-arti-$i.json" -- "${arti[@]}" match.test > /dev/null
      "$M" --out "$OUT/s5-socks.jsonl" --stdout "$OUT/s5-socks-$i.json" -- "${socks[@]}" match.test > /dev/null
    else
      "$M" --out "$OUT/s5-socks.jsonl" --stdout "$OUT/s5-socks-$i.json" -- "${socks[@]}" match.test > /dev/null
      "$M" --out "$OUT/s5-arti.jsonl" --stdout "$OUT/s5-arti-$i.json" -- "${arti[@]}" match.test > /dev/null
    fi
  done
  local probes
  probes=$(python3 - "$OUT/s5-arti-1.json" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).readline())
def count(o):
    if isinstance(o, dict):
        return (1 if "key_type" in o or "presented" in o else 0) + sum(count(v) for v in o.values())
    if isinstance(o, list):
        return sum(count(v) for v in o)
    return 0
print(count(r))
PY
)
  say ""
  say "| transport | wall ms per domain check (cold process), median (min-max) | probes per check | probes per minute (median) | client CPU ms | exit |"
  say "|---|---|---|---|---|---|"
  for t in arti socks; do
    local w
    w=$(med "$OUT/s5-$t.jsonl" wall_ms)
    say "| $t | $(stat "$OUT/s5-$t.jsonl" wall_ms) | $probes | $(awk -v p="$probes" -v w="$w" 'BEGIN{printf "%.0f", p*60000/w}') | $(stat "$OUT/s5-$t.jsonl" cpu_ms) | $(exits "$OUT/s5-$t.jsonl") |"
  done
  say ""
}

for s in $SCENARIOS; do
  case $s in
    1) scenario1 ;;
    2) scenario2 ;;
    3) scenario3 ;;
    5) scenario5 ;;
    4) say "## Scenario 4: see scripts/bench/service.sh (needs a usable certwatch-server)"; say "" ;;
    *) echo "unknown scenario $s" >&2 ;;
  esac
done
echo "results: $REPORT"
