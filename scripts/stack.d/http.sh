# scripts/stack.d/http.sh: the HTTP receiver.
# Part of scripts/stack (sourced by it, not run on its own): see the driver for what each part is.
# shellcheck shell=bash

H_DIR="$STACK/http"
H_MAIN="$ROOT/dist/src/receiver/main.js"
H_KEY="$H_DIR/hmac.key"
H_LOG="$H_DIR/requests.log"
H_OUT="$H_DIR/receiver.out"
H_PID="$H_DIR/receiver.pid"

h_running() { pid_is "$(read_pid "$H_PID")" "receiver/main.js"; }
h_where() { echo "http://127.0.0.1:$HTTP_PORT (hmac key $(rel "$H_KEY"), requests $(rel "$H_LOG"))"; }

prepare_http() {
  mkdir -p "$H_DIR"
  if [[ ! -d $ROOT/node_modules ]]; then
    say "http: node_modules missing, running scripts/npm-install (log: $(rel "$H_DIR/npm.log"))"
    bash "$ROOT/scripts/npm-install" >"$H_DIR/npm.log" 2>&1 || { fail http "$H_DIR/npm.log" "scripts/npm-install failed"; return 1; }
  fi
  if [[ ! -f $H_MAIN && -d $ROOT/src/receiver ]]; then
    say "http: building (npm run build, log: $(rel "$H_DIR/build.log"))"
    (cd "$ROOT" && npm run build) >"$H_DIR/build.log" 2>&1 || { fail http "$H_DIR/build.log" "npm run build failed"; return 1; }
  fi
  if [[ ! -f $H_KEY ]]; then
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$H_KEY.tmp" && mv "$H_KEY.tmp" "$H_KEY")
  fi
  chmod 600 "$H_KEY"
}

up_http() {
  if h_running; then
    result http "up (already running)" "$(h_where)"
    return 0
  fi
  prepare_http || return 1
  if [[ ! -f $H_MAIN ]]; then
    say "WARNING: http: $(rel "$H_MAIN") does not exist yet; skipping the HTTP receiver"
    result http "skipped" "$(rel "$H_MAIN") not built yet"
    return 0
  fi
  port_busy_check http "$HTTP_PORT" || return 1
  start_detached "$H_PID" "$H_OUT" node "$H_MAIN" --port "$HTTP_PORT" --hmac-key-file "$H_KEY" --log "$H_LOG" ||
    { fail http "$H_OUT" "could not start node"; return 1; }
  wait_for http 20 "$H_OUT" "$(read_pid "$H_PID")" "receiver/main.js" port_open "$HTTP_PORT" || return 1
  result http "up (started)" "$(h_where)"
}

down_http() { stop_pid http "$H_PID" "receiver/main.js" 20; }

status_http() {  # the status line of http; returns 1 when it is down
  local pid
  pid=$(read_pid "$H_PID")
  if h_running && port_open "$HTTP_PORT"; then status_line http up "$pid" "$(h_where)"
  elif [[ ! -f $H_MAIN ]]; then status_line http skipped "" "$(rel "$H_MAIN") not built yet (not counted)"
  else status_line http down "" "http://127.0.0.1:$HTTP_PORT"; return 1; fi
}
