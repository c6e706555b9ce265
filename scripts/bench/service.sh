#!/usr/bin/env bash
# Scenario 4 of benches/compare.sh: certwatch-server with 100,000 watched domains in SQLite.
#
#   scripts/bench/service.sh BIN_DIR [N]
#
# 1. starts certwatch-server once on an empty database (it creates its schema), stops it;
# 2. inserts N (default 100,000) watched domains dNNNNNN.bench with sqlite3 (last verdict
#    `match`, watched for 30 days), due over the next interval; those names are not in DNS,
#    so their checks end quickly in `no-records`; d0001.bench (in the fixtures' zone) gets
#    one real on-demand check through POST /api/v1/checks, whose report wrk then reads;
# 3. starts it again with the scheduler running (--via direct, our resolver and fixture,
#    default interval 15m, default circuit cap) on 127.0.0.55:8080, and reports:
#    - idle RSS (VmRSS after 30 s; the scheduler runs at the circuit cap),
#    - the server's CPU over a 60 s window divided by the checks it started (scheduler CPU
#      per tick: ticks are the checks started, as the cap allows),
#    - `wrk -t2 -c64 -d20s` on GET /api/v1/domains/d0001.bench, CW_BENCH_SERVICE_RUNS times
#      (default 10; median, min and max), with the RSS before each run (wrk shares the 2 cores
#      with the server: said as such in the results).
# Needs scripts/bench/fixtures.sh up, sqlite3 and wrk (apt-get install wrk).
set -euo pipefail
BIN=${1:?usage: service.sh BIN_DIR [N]}
N=${2:-100000}
DIR=${CW_BENCH_DIR:-/tmp/certwatch-bench}
DB=$DIR/service.sqlite3
LISTEN=127.0.0.55:8080
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
command -v sqlite3 >/dev/null || apt-get install -y -qq sqlite3 >/dev/null
rm -f "$DB"*
args=(--listen "$LISTEN" --database "sqlite://$DB" --via direct --resolver 127.0.0.52:6354
  --trust-anchor "$DIR/root.key" --allow-private-targets)

"$BIN/certwatch-server" "${args[@]}" > "$DIR/server-init.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s "$DB" ] && sqlite3 "$DB" 'select 1 from domains limit 1' >/dev/null 2>&1 && break; sleep 0.2; done
kill "$pid"; wait "$pid" 2>/dev/null || true
now=$(date +%s)
sqlite3 "$DB" <<SQL
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $N - 1)
INSERT INTO domains (domain, added_at, last_requested_at, watch_until, next_due_at,
  last_verdict, last_checked_at, last_conclusive_at)
SELECT printf('d%06d.bench', i), $now, $now, $now + 30 * 86400, $now + (i % 900),
  'match', $now - 900, $now - 900 FROM n;
SQL
echo "domains: $(sqlite3 "$DB" 'select count(*) from domains')"

"$BIN/certwatch-server" "${args[@]}" > "$DIR/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
# One real report to serve: an on-demand check of a domain of the fixtures' zone.
sleep 2
curl -s -H 'Content-Type: application/json' -d '{"domain": "d0001.bench"}' "http://$LISTEN/api/v1/checks" >/dev/null
# The circuit cap also paces on-demand checks: wait (at most 180 s) for the report.
for _ in $(seq 180); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://$LISTEN/api/v1/domains/d0001.bench")
  [ "$code" = 200 ] && break
  sleep 1
done
echo "GET /api/v1/domains/d0001.bench: $code"
[ "$code" = 200 ] || { echo "no stored report for d0001.bench: the measurement would read the 404 path" >&2; exit 1; }
sleep 20
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
c0=$(sqlite3 "$DB" 'select count(*) from checks')
sleep 60
t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
c1=$(sqlite3 "$DB" 'select count(*) from checks')
tck=$(getconf CLK_TCK)
cpu_ms=$(( (t1 - t0) * 1000 / tck ))
echo "idle RSS: $rss KiB; server CPU over 60 s: $cpu_ms ms; checks finished: $((c1 - c0))"
curl -s "http://$LISTEN/metrics" | grep -E '^certwatch_(checks_total|tor_circuits|scheduler_lag|checks_running)' | grep -v ' 0$' || true
# The request rate and RSS, RUNS times (default 10): median, min and max.
RUNS=${CW_BENCH_SERVICE_RUNS:-10}
: >"$DIR/wrk.txt"
rates=() rsss=()
for r in $(seq "$RUNS"); do
  rsss+=("$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")")
  out=$(wrk -t2 -c64 -d20s "http://$LISTEN/api/v1/domains/d0001.bench")
  printf '== run %s\n%s\n' "$r" "$out" >>"$DIR/wrk.txt"
  rates+=("$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  echo "run $r: ${rates[-1]} requests/s, RSS ${rsss[-1]} KiB${non2xx:+, $non2xx non-2xx responses}"
done
stats() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; printf "median %s (min %s, max %s; %d runs)\n", m, v[1], v[NR], NR}'; }
echo "GET /api/v1/domains/d0001.bench requests/s: $(stats "${rates[@]}")"
echo "RSS KiB before each wrk run: $(stats "${rsss[@]}")"
echo "RSS KiB after the last run: $(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")"
