# scripts/stack.d/commands.sh: the commands: up, down, status.
# Part of scripts/stack (sourced by it, not run on its own): see the driver for what each part is.
# shellcheck shell=bash

lock() {
  mkdir -p "$STACK"
  exec 9>"$STACK/.lock"
  flock -w 600 9 || { say "ERROR: another scripts/stack is still running (lock $(rel "$STACK/.lock"))"; exit 1; }
}

# result PART STATE WHERE: the one summary line of a part (with the seconds this part took)
PART_T0=$(now)
result() { printf '%-9s %-22s %6ss  %s\n' "$1" "$2" "$(elapsed "$PART_T0")" "$3"; }

# run_bg PART FUNC: run FUNC in the background, its summary line into $RESULTS/PART
declare -A JOBS=()
run_bg() {
  local part=$1 fn=$2
  ( PART_T0=$(now); "$fn" >"$RESULTS/$part" ) &
  JOBS[$part]=$!
}

cmd_up() {
  local t0 need=() deferred=() part rc=0
  t0=$(now)
  lock
  rm -rf "$RESULTS" && mkdir -p "$RESULTS"
  mapfile -t need < <(apt_needed)

  # Parts that do not depend on apt start at once (Kafka's JVM is the slowest, so it goes first).
  if [[ " ${need[*]} " == *" openjdk-17-jre-headless "* || " ${need[*]} " == *" maven "* ]]; then
    deferred+=(kafka)
  else run_bg kafka up_kafka; fi
  if [[ " ${need[*]} " == *" python3-venv "* ]]; then deferred+=(bigquery); else run_bg bigquery up_bigquery; fi
  run_bg http up_http

  if ((${#need[@]})); then
    apt_install "${need[@]}" || rc=1
  fi
  if ((rc == 0)); then
    run_bg postgres up_postgres
    run_bg redis up_redis
    for part in "${deferred[@]}"; do run_bg "$part" "up_$part"; done
    PART_T0=$(now)
    up_promtool >"$RESULTS/promtool" || rc=1
    run_bg prometheus up_prometheus
  fi
  for part in "${!JOBS[@]}"; do wait "${JOBS[$part]}" || rc=1; done
  for part in "${PARTS[@]}"; do [[ -s $RESULTS/$part ]] && cat "$RESULTS/$part"; done
  if ((rc)); then
    say "stack up FAILED after $(elapsed "$t0")s (see errors above)"
    return 1
  fi
  echo "stack up in $(elapsed "$t0")s (everything under $(rel "$STACK"))"
}

cmd_down() {
  local t0 part rc=0
  t0=$(now)
  lock
  rm -rf "$RESULTS" && mkdir -p "$RESULTS"
  for part in prometheus http bigquery kafka redis postgres; do run_bg "$part" "down_$part"; done
  for part in "${!JOBS[@]}"; do wait "${JOBS[$part]}" || rc=1; done
  for part in "${PARTS[@]}"; do [[ -s $RESULTS/$part ]] && cat "$RESULTS/$part"; done
  echo "stack down in $(elapsed "$t0")s"
  return "$rc"
}

status_line() {  # PART STATE PID WHERE
  local rss=""
  [[ -n $3 ]] && rss="rss $(tree_rss_mib "$3")MiB"
  printf '%-9s %-8s %-12s %s\n' "$1" "$2" "$rss" "$4"
}

cmd_status() {
  local down=0 part
  for part in "${PARTS[@]}"; do "status_$part" || down=1; done
  return $((down ? 3 : 0))
}
