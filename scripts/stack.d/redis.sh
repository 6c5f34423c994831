# scripts/stack.d/redis.sh: Redis.
# Part of scripts/stack (sourced by it, not run on its own): see the driver for what each part is.
# shellcheck shell=bash

R_DIR="$STACK/redis"
R_PID="$R_DIR/redis.pid"
R_LOG="$R_DIR/redis.log"

r_running() { pid_is "$(read_pid "$R_PID")" ":$REDIS_PORT"; }
r_where() { echo "127.0.0.1:$REDIS_PORT (no persistence)"; }

up_redis() {
  if r_running; then
    result redis "up (already running)" "$(r_where)"
    return 0
  fi
  port_busy_check redis "$REDIS_PORT" || return 1
  mkdir -p "$R_DIR"
  rm -f "$R_PID"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --protected-mode yes --save '' --appendonly no \
    --daemonize yes --pidfile "$R_PID" --logfile "$R_LOG" --dir "$R_DIR" >"$R_DIR/redis.out" 2>&1 </dev/null 9>&- ||
    { fail redis "$R_DIR/redis.out" "redis-server failed to start"; return 1; }
  wait_for redis 15 "$R_LOG" "" "" redis_pong || return 1
  result redis "up (started)" "$(r_where)"
}

down_redis() { stop_pid redis "$R_PID" ":$REDIS_PORT" 20; }

status_redis() {  # the status line of redis; returns 1 when it is down
  local pid
  pid=$(read_pid "$R_PID")
  if r_running && redis_pong; then status_line redis up "$pid" "$(r_where)"
  else status_line redis down "" "127.0.0.1:$REDIS_PORT"; return 1; fi
}
