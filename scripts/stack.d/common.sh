# scripts/stack.d/common.sh: helpers shared by every part.
# Part of scripts/stack (sourced by it, not run on its own): see the driver for what each part is.
# shellcheck shell=bash

say()  { printf 'stack: %s\n' "$*" >&2; }
rel()  { local p=${1#"$ROOT"/}; printf '%s' "${p#"${STACK%/.stack}"/}"; }
now()  { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# fail PART LOGFILE MESSAGE: print a clear error naming the part and its log, with the log's tail.
fail() {
  local part=$1 logf=$2; shift 2
  say "ERROR: $part: $* (log: $(rel "$logf"))"
  if [[ -s $logf ]]; then
    say "---- last lines of $(rel "$logf") ----"
    tail -n 15 "$logf" | sed 's/^/    /' >&2
  fi
  return 1
}

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

# Is a process with this pid alive (not a zombie) and does its command line contain MARKER?
pid_is() {
  local pid=$1 marker=$2 state
  [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/cmdline ]] || return 1
  state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ $state != Z ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker"
}
# pid_alive PID: the process exists and is not a zombie. What wait_for asks during a start:
# the marker check of pid_is can miss while the start shell execs the server (/proc/PID/cmdline
# reads empty until the new program's arguments are set up, longer under load), and a PID
# reused within a start's seconds is not a worry there.
pid_alive() {
  local pid=$1 state
  [[ $pid =~ ^[0-9]+$ ]] && [[ -d /proc/$pid ]] || return 1
  state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $state && $state != Z ]]
}
read_pid() { [[ -f $1 ]] && head -n1 "$1" 2>/dev/null | tr -dc '0-9'; }

port_open() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# http_200 PORT PATH: plain HTTP/1.0 GET over bash's /dev/tcp (no curl needed on fresh machines).
http_200() {
  timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$0 || exit 1
    printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" "$1" >&3
    IFS= read -r line <&3; [[ $line == *" 200"* ]]' "$1" "$2" 2>/dev/null
}
redis_pong() {
  timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$0 || exit 1
    printf "PING\r\n" >&3; IFS= read -r line <&3; [[ $line == "+PONG"* ]]' "$REDIS_PORT" 2>/dev/null
}

# RSS of a process and all its descendants, in MiB.
tree_rss_mib() {
  cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '
    { pid = $1; line = $0; sub(/^.*\) /, "", line); split(line, f, " "); ppid[pid] = f[2]; rss[pid] = f[22] }
    END { total = 0
          for (p in ppid) { q = p; n = 0; while (q != "" && q != 0 && q != root && n++ < 64) q = ppid[q]; if (q == root) total += rss[p] }
          printf "%d", total * 4096 / 1048576 }'
}

# start_detached PIDFILE LOGFILE CMD...: run CMD in its own session, pid (of CMD itself) in PIDFILE.
start_detached() {
  local pidf=$1 logf=$2; shift 2
  rm -f "$pidf"
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidf" "$@" >>"$logf" 2>&1 </dev/null 9>&- &
  local i
  for i in $(seq 1 50); do [[ -s $pidf ]] && return 0; sleep 0.05; done
  return 1
}

# stop_pid NAME PIDFILE MARKER TIMEOUT: TERM, wait, KILL as a last resort. Only our own process.
stop_pid() {
  local name=$1 pidf=$2 marker=$3 t=$4 pid i
  pid=$(read_pid "$pidf")
  if ! pid_is "$pid" "$marker"; then
    rm -f "$pidf"
    echo "$name: was not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < t * 10; i++)); do pid_is "$pid" "$marker" || break; sleep 0.1; done
  if pid_is "$pid" "$marker"; then
    say "$name: still running after ${t}s, sending KILL to $pid"
    kill -KILL "$pid" 2>/dev/null
    sleep 0.5
  fi
  rm -f "$pidf"
  echo "$name: stopped"
}

# wait_for PART TIMEOUT LOGFILE PID MARKER CHECK...: poll CHECK until it succeeds; fail early if
# the process dies, fail with the log's tail on timeout. Gone means no such process (or a
# zombie) on two looks in a row, not a marker missing from its command line: two clean-clone
# runs failed 'prometheus: process exited during start-up' with that very process up and
# listening, the second after a fix that only asked for two misses of the marker in a row
# (MARKER stays in the signature: the callers name what they start).
wait_for() {
  local part=$1 t=$2 logf=$3 pid=$4 marker=$5; shift 5
  local deadline=$((SECONDS + t)) missed=0
  : "$marker"
  while ((SECONDS < deadline)); do
    "$@" && return 0
    if [[ -n $pid ]] && ! pid_alive "$pid"; then
      if ((++missed >= 2)); then
        fail "$part" "$logf" "process $pid exited during start-up"
        return 1
      fi
    else
      missed=0
    fi
    sleep 0.2
  done
  fail "$part" "$logf" "did not answer within ${t}s"
}

port_busy_check() {  # PART PORT: refuse to start if someone else already listens on our port
  if port_open "$2"; then
    local who=""
    command -v ss >/dev/null && who=$(ss -ltnpH "sport = :$2" 2>/dev/null | grep -o 'users:.*' | head -n1)
    say "ERROR: $1: 127.0.0.1:$2 is already in use by a process this script did not start ${who:+($who)}"
    return 1
  fi
}
