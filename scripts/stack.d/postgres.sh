# scripts/stack.d/postgres.sh: PostgreSQL 15.
# Part of scripts/stack (sourced by it, not run on its own): see the driver for what each part is.
# shellcheck shell=bash

PG_BIN=/usr/lib/postgresql/15/bin
PG_DIR="$STACK/pg"
PG_DATA="$PG_DIR/data"
PG_RUN="$PG_DIR/run"        # unix socket directory
PG_LOG="$PG_DIR/postgres.log"

PG_OS_USER=postgres
pg_os_user() {
  if [[ $(id -u) -ne 0 ]]; then PG_OS_USER=$(id -un); return 0; fi
  if id -u postgres >/dev/null 2>&1; then PG_OS_USER=postgres; return 0; fi
  PG_OS_USER=streamctl-pg  # dedicated system user when the package did not create `postgres`
  id -u "$PG_OS_USER" >/dev/null 2>&1 ||
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$PG_OS_USER"
}
as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u "$PG_OS_USER" -- "$@"; else "$@"; fi; }

pg_pid() { read_pid "$PG_DATA/postmaster.pid"; }
pg_running() { pid_is "$(pg_pid)" "$PG_DATA"; }
pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 1 >/dev/null 2>&1; }

pg_write_conf() {
  cat >"$PG_DATA/streamctl.conf" <<EOF
# Written by scripts/stack on every start; edit the script, not this file.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_RUN'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
max_connections = 100
shared_buffers = 64MB
max_wal_size = 512MB
# Throwaway test cluster: durability traded for speed. A crash of the machine can lose or
# corrupt data here; never use these two settings for anything that matters.
# synchronous_commit stays on: with it off, a commit reaches logical decoding only at the
# next WAL writer flush (up to wal_writer_delay, 200 ms), which would add that much to
# every change's end-to-end latency. fsync=off already makes commits cheap.
fsync = off
full_page_writes = off
EOF
  cat >"$PG_DATA/pg_hba.conf" <<EOF
# Written by scripts/stack. The unix socket lives in .stack/pg/run (mode 700, owner $PG_OS_USER).
local   all          all                     trust
host    all          all      127.0.0.1/32   scram-sha-256
host    replication  all      127.0.0.1/32   scram-sha-256
EOF
  grep -q "^include_if_exists = 'streamctl.conf'" "$PG_DATA/postgresql.conf" ||
    echo "include_if_exists = 'streamctl.conf'" >>"$PG_DATA/postgresql.conf"
  chown "$PG_OS_USER:" "$PG_DATA/streamctl.conf" "$PG_DATA/pg_hba.conf" 2>/dev/null
  return 0
}

pg_bootstrap_sql() {  # role + database, idempotent
  as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$PG_PORT" -U postgres -d postgres \
    -v u="$PG_USER" -v p="$PG_PASSWORD" -v d="$PG_DB" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN SUPERUSER REPLICATION', :'u')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'u') \gexec
SELECT format('ALTER ROLE %I LOGIN SUPERUSER REPLICATION PASSWORD %L', :'u', :'p') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'d', :'u')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'d') \gexec
SQL
}

pg_login_ok() {  # password login over TCP, normal and replication connection
  PGPASSWORD=$PG_PASSWORD PGCONNECT_TIMEOUT=3 "$PG_BIN/psql" -X -q -At \
    "host=127.0.0.1 port=$PG_PORT user=$PG_USER dbname=$PG_DB" -c 'SELECT 1' >/dev/null &&
    PGPASSWORD=$PG_PASSWORD PGCONNECT_TIMEOUT=3 "$PG_BIN/psql" -X -q -At \
      "host=127.0.0.1 port=$PG_PORT user=$PG_USER dbname=$PG_DB replication=database" \
      -c 'IDENTIFY_SYSTEM' >/dev/null
}

pg_where() { echo "127.0.0.1:$PG_PORT user=$PG_USER db=$PG_DB (password in scripts/stack.env; socket $(rel "$PG_RUN"))"; }

up_postgres() {
  pg_os_user || { fail postgres "$PG_LOG" "cannot create a system user to run PostgreSQL"; return 1; }
  if pg_running; then
    result postgres "up (already running)" "$(pg_where)"
    return 0
  fi
  port_busy_check postgres "$PG_PORT" || return 1
  mkdir -p "$PG_DIR" "$PG_RUN"
  chown -R "$PG_OS_USER:" "$PG_DIR" 2>/dev/null
  chmod 700 "$PG_RUN"
  if ! as_pg test -w "$PG_DIR"; then
    fail postgres "$PG_LOG" "user $PG_OS_USER cannot write $(rel "$PG_DIR"); every parent directory of the repo must be traversable (o+x)"
    return 1
  fi
  if [[ ! -f $PG_DATA/PG_VERSION ]]; then
    say "postgres: initdb $(rel "$PG_DATA")"
    rm -rf "$PG_DATA"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --no-locale --no-sync \
      --auth-local=trust --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1 ||
      { fail postgres "$PG_DIR/initdb.log" "initdb failed"; return 1; }
  fi
  pg_write_conf
  # Not running (checked above), so a postmaster.pid left by a crash is stale: remove it, or a
  # recycled/zombie pid would make postgres refuse to start. (Orphaned backends still attached to
  # the old shared memory are detected by postgres itself.)
  rm -f "$PG_DATA/postmaster.pid"
  touch "$PG_LOG" && chown "$PG_OS_USER:" "$PG_LOG"   # the server (not root) appends to it
  # pg_ctl detaches the postmaster (setsid); -W: do not wait here, we poll below.
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -W start >"$PG_DIR/pg_ctl.log" 2>&1 9>&- ||
    { fail postgres "$PG_DIR/pg_ctl.log" "pg_ctl start failed"; return 1; }
  local i
  for ((i = 0; i < 100; i++)); do pg_running && break; sleep 0.05; done
  wait_for postgres 30 "$PG_LOG" "$(pg_pid)" "$PG_DATA" pg_ready || return 1
  pg_bootstrap_sql >>"$PG_LOG" 2>&1 || { fail postgres "$PG_LOG" "creating role/database failed"; return 1; }
  pg_login_ok 2>>"$PG_LOG" || { fail postgres "$PG_LOG" "password/replication login as $PG_USER failed"; return 1; }
  result postgres "up (started)" "$(pg_where)"
}

down_postgres() {
  pg_os_user
  if ! pg_running; then echo "postgres: was not running"; return 0; fi
  if as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >"$PG_DIR/pg_ctl.log" 2>&1; then
    echo "postgres: stopped"
  else
    fail postgres "$PG_DIR/pg_ctl.log" "pg_ctl stop failed"
  fi
}

status_postgres() {  # the status line of postgres; returns 1 when it is down
  local pid
  pid=$(pg_pid)
  if pg_running && pg_ready; then status_line postgres up "$pid" "$(pg_where)"
  else status_line postgres down "" "127.0.0.1:$PG_PORT"; return 1; fi
}
