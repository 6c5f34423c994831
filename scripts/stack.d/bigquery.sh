# scripts/stack.d/bigquery.sh: the BigQuery emulator.
# Part of scripts/stack (sourced by it, not run on its own): see the driver for what each part is.
# shellcheck shell=bash

B_DIR="$STACK/bq"
B_VENV="$B_DIR/venv"
B_DATA="$B_DIR/data"
B_LOG="$B_DIR/emulator.log"
B_PID="$B_DIR/bq.pid"
UV_VERSION=0.9.30            # installer for the venv (PyPI); the emulator itself: scripts/bq/requirements.txt

b_stamp() { sha1sum <"$SCRIPTS/bq/requirements.txt" | cut -c1-40; }

install_bq() {
  [[ -f $B_VENV/.stamp && $(cat "$B_VENV/.stamp") == "$(b_stamp)" ]] && return 0
  mkdir -p "$B_DIR" "$CACHE/pip"
  local plog="$B_DIR/pip.log"
  say "bigquery: creating venv and installing bqemulator from PyPI (log: $(rel "$plog"))"
  rm -rf "$B_VENV"
  python3 -m venv "$B_VENV" >"$plog" 2>&1 || { fail bigquery "$plog" "python3 -m venv failed"; return 1; }
  # uv (from PyPI, pinned) installs the ~75 pinned wheels in a few seconds where pip takes 20+ s;
  # plain pip is the fallback. uv does not read PIP_* settings, so pass a configured mirror on.
  local pip=("$B_VENV/bin/pip" install --disable-pip-version-check --no-input -q) uvenv=(UV_NO_CACHE=1)
  [[ -n ${PIP_INDEX_URL:-} && -z ${UV_INDEX_URL:-} ]] && uvenv+=("UV_INDEX_URL=$PIP_INDEX_URL")
  if PIP_CACHE_DIR="$CACHE/pip" "${pip[@]}" "uv==$UV_VERSION" >>"$plog" 2>&1 &&
    env "${uvenv[@]}" "$B_VENV/bin/uv" pip install -q --python "$B_VENV/bin/python" \
      -r "$SCRIPTS/bq/requirements.txt" >>"$plog" 2>&1; then
    :
  else
    say "bigquery: uv failed, falling back to pip (slower)"
    PIP_CACHE_DIR="$CACHE/pip" "${pip[@]}" -r "$SCRIPTS/bq/requirements.txt" >>"$plog" 2>&1 ||
      { fail bigquery "$plog" "pip install failed"; return 1; }
  fi
  b_stamp >"$B_VENV/.stamp"
}

b_running() { pid_is "$(read_pid "$B_PID")" "$B_DATA"; }
b_ready() { http_200 "$BQ_PORT" /readyz && port_open "$BQ_GRPC_PORT"; }
b_where() { echo "http://127.0.0.1:$BQ_PORT (gRPC 127.0.0.1:$BQ_GRPC_PORT) project $BQ_PROJECT"; }

up_bigquery() {
  if b_running; then
    result bigquery "up (already running)" "$(b_where)"
    return 0
  fi
  install_bq || return 1
  port_busy_check bigquery "$BQ_PORT" || return 1
  port_busy_check bigquery "$BQ_GRPC_PORT" || return 1
  mkdir -p "$B_DATA"
  # BQEMU_ENABLE_FORMAT_EXTENSIONS=false: do not try to download DuckDB's avro extension
  # (extensions.duckdb.org is unreachable from CI). See scripts/bq/run_emulator.py for spatial.
  start_detached "$B_PID" "$B_LOG" env BQEMU_ENABLE_FORMAT_EXTENSIONS=false \
    "$B_VENV/bin/python" "$SCRIPTS/bq/run_emulator.py" start \
    --rest-host 127.0.0.1 --rest-port "$BQ_PORT" --grpc-host 127.0.0.1 --grpc-port "$BQ_GRPC_PORT" \
    --persistent --data-dir "$B_DATA" --project "$BQ_PROJECT" \
    --log-format json --log-level "${BQ_LOG_LEVEL:-warning}" ||
    { fail bigquery "$B_LOG" "could not start the emulator"; return 1; }
  wait_for bigquery 60 "$B_LOG" "$(read_pid "$B_PID")" "$B_DATA" b_ready || return 1
  result bigquery "up (started)" "$(b_where)"
}

down_bigquery() { stop_pid bigquery "$B_PID" "$B_DATA" 20; }

status_bigquery() {  # the status line of bigquery; returns 1 when it is down
  local pid
  pid=$(read_pid "$B_PID")
  if b_running && b_ready; then status_line bigquery up "$pid" "$(b_where)"
  else status_line bigquery down "" "http://127.0.0.1:$BQ_PORT"; return 1; fi
}
