# The PostgreSQL part of the interop environment: a private cluster for certwatch-server's
# PostgreSQL store tests (two instances sharing one database).
# shellcheck shell=bash
#
#   postgres  Debian's PostgreSQL, our own cluster under $CW_DIR/postgres/data (initdb as the
#             postgres user, trust authentication on loopback only), listening on
#             127.0.0.1:$CW_PG_PORT (default 5433, so a system cluster on 5432 is left alone),
#             with a database "certwatch".
#
# Description (describe/postgres.json, key "postgres"):
#   {"url": "postgres://postgres@127.0.0.1:5433/certwatch", "host", "port", "user",
#    "database", "data_dir", "log"}.
# Tests create their own databases through this URL (CREATE DATABASE needs no password here).

export CW_PG_PORT="${CW_PG_PORT:-5433}"

postgres_packages() { echo postgresql; }

# _pg_bin: the newest installed PostgreSQL's bin directory.
_pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$d/initdb" ] || cw_die "postgres: no /usr/lib/postgresql/*/bin/initdb (package postgresql)"
  echo "$d"
}

postgres_up() {
  local d="$CW_DIR/postgres" bin i
  bin=$(_pg_bin)
  postgres_down
  rm -rf "$d"
  mkdir -p "$d/data" "$d/run"
  chown -R postgres:postgres "$d"
  chmod 700 "$d/data"
  runuser -u postgres -- "$bin/initdb" -D "$d/data" --auth=trust --username=postgres \
    --encoding=UTF8 --locale=C.UTF-8 >"$CW_DIR/logs/postgres-initdb.log" 2>&1 \
    || { tail -n 20 "$CW_DIR/logs/postgres-initdb.log" >&2; cw_die "postgres: initdb failed"; }
  cw_start postgres server runuser -u postgres -- "$bin/postgres" -D "$d/data" \
    -c listen_addresses=127.0.0.1 -c port="$CW_PG_PORT" -c unix_socket_directories="$d/run" \
    -c fsync=on -c max_connections=100
  for ((i = 0; i < 300; i++)); do
    if runuser -u postgres -- "$bin/pg_isready" -q -h 127.0.0.1 -p "$CW_PG_PORT"; then break; fi
    cw_alive postgres server; sleep 0.1
  done
  runuser -u postgres -- "$bin/pg_isready" -q -h 127.0.0.1 -p "$CW_PG_PORT" \
    || cw_die "postgres: not ready on 127.0.0.1:$CW_PG_PORT"
  runuser -u postgres -- "$bin/createdb" -h 127.0.0.1 -p "$CW_PG_PORT" certwatch \
    || cw_die "postgres: createdb certwatch failed"
  cat >"$CW_DIR/describe/postgres.json" <<JSON
{"url": "postgres://postgres@127.0.0.1:$CW_PG_PORT/certwatch", "host": "127.0.0.1",
 "port": $CW_PG_PORT, "user": "postgres", "database": "certwatch", "data_dir": "$d/data",
 "log": "$CW_DIR/logs/postgres-server.log"}
JSON
  cw_log "postgres: ready on 127.0.0.1:$CW_PG_PORT"
}

postgres_down() {
  local d="$CW_DIR/postgres" bin
  # A fast shutdown first (the postmaster's SIGTERM would wait for clients), then by PID.
  if [ -s "$d/data/postmaster.pid" ] && bin=$(_pg_bin 2>/dev/null); then
    runuser -u postgres -- "$bin/pg_ctl" stop -D "$d/data" -m fast -w -t 10 >/dev/null 2>&1 || true
  fi
  cw_stop_all postgres
}
