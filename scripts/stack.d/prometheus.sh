# scripts/stack.d/prometheus.sh: Prometheus.
# Part of scripts/stack (sourced by it, not run on its own): see the driver for what each part is.
# shellcheck shell=bash

P_DIR="$STACK/prometheus"
P_CONF="$P_DIR/prometheus.yml"
P_RULES="$P_DIR/rules.yml"     # a copy of docker/prometheus/rules.yml, refreshed by every `up`
P_TARGETS="$P_DIR/targets"     # file_sd: one JSON file of targets per producer; add your own
P_DATA="$P_DIR/data"
P_LOG="$P_DIR/prometheus.log"
P_PID="$P_DIR/prometheus.pid"

p_running() { pid_is "$(read_pid "$P_PID")" "$P_CONF"; }
p_ready() { http_200 "$PROMETHEUS_PORT" /-/ready; }
p_where() { echo "http://127.0.0.1:$PROMETHEUS_PORT (rules $(rel "$P_RULES"), targets $(rel "$P_TARGETS")/*.json)"; }

p_write_conf() {
  mkdir -p "$P_DATA" "$P_TARGETS"
  cp "$ROOT/docker/prometheus/rules.yml" "$P_RULES"
  [[ -f $P_TARGETS/local-stream.json ]] ||
    printf '[{"targets": ["127.0.0.1:%s"], "labels": {"pipeline": "local"}}]\n' "$METRICS_PORT" >"$P_TARGETS/local-stream.json"
  cat >"$P_CONF" <<EOF
# Written by scripts/stack up; edits are lost. Targets: drop a JSON file in $(rel "$P_TARGETS").
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files:
  - $P_RULES
scrape_configs:
  - job_name: streamctl
    file_sd_configs:
      - files: ['$P_TARGETS/*.json']
        refresh_interval: 5s
EOF
}

up_prometheus() {
  if p_running; then
    # The shipped rules may have changed since it started: refresh the copy and reload
    # (SIGHUP re-reads config and rules without dropping data), so `up` never leaves stale rules.
    if ! cmp -s "$ROOT/docker/prometheus/rules.yml" "$P_RULES"; then
      cp "$ROOT/docker/prometheus/rules.yml" "$P_RULES"
      kill -HUP "$(read_pid "$P_PID")" 2>/dev/null
      result prometheus "up (already running; rules reloaded)" "$(p_where)"
      return 0
    fi
    result prometheus "up (already running)" "$(p_where)"
    return 0
  fi
  port_busy_check prometheus "$PROMETHEUS_PORT" || return 1
  p_write_conf
  start_detached "$P_PID" "$P_LOG" prometheus --config.file="$P_CONF" --storage.tsdb.path="$P_DATA" \
    --storage.tsdb.retention.time=2d --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" ||
    { fail prometheus "$P_LOG" "could not start prometheus"; return 1; }
  wait_for prometheus 30 "$P_LOG" "$(read_pid "$P_PID")" "$P_CONF" p_ready || return 1
  result prometheus "up (started)" "$(p_where)"
}

down_prometheus() { stop_pid prometheus "$P_PID" "$P_CONF" 20; }

status_prometheus() {  # the status line of prometheus; returns 1 when it is down
  local pid
  pid=$(read_pid "$P_PID")
  if p_running && p_ready; then status_line prometheus up "$pid" "$(p_where)"
  else status_line prometheus down "" "http://127.0.0.1:$PROMETHEUS_PORT"; return 1; fi
}
