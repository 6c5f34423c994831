# scripts/stack.d/apt.sh: installation of the Debian packages the parts need.
# Part of scripts/stack (sourced by it, not run on its own): see the driver for what each part is.
# shellcheck shell=bash

APT_LOG="$STACK/apt.log"

apt_needed() {  # prints the Debian packages that must be installed
  [[ -x $PG_BIN/postgres && -x $PG_BIN/psql ]] || echo postgresql-15
  command -v redis-server >/dev/null || echo redis-server
  command -v promtool >/dev/null || echo prometheus
  command -v docker-compose >/dev/null || echo docker-compose  # only to validate docker/*.yml (no engine runs)
  command -v java >/dev/null || echo openjdk-17-jre-headless
  command -v mvn >/dev/null || echo maven
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || echo python3-venv
}

prometheus_pids() {
  local d
  for d in /proc/[0-9]*; do [[ $(cat "$d/comm" 2>/dev/null) == prometheus ]] && echo "${d#/proc/}"; done
}

apt_install() {
  local pkgs=("$@") rc before after p added_policy=0
  say "installing Debian packages: ${pkgs[*]} (log: $(rel "$APT_LOG"))"
  before=$(prometheus_pids | sort)
  # Keep package postinst scripts from starting daemons (the packaged postgresql@15-main, redis-server
  # and prometheus services): the stack runs its own instances on its own ports.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\n# temporary, from streamctl scripts/stack\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
  fi
  {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${pkgs[@]}"
  } >>"$APT_LOG" 2>&1
  rc=$?
  ((added_policy)) && as_root rm -f /usr/sbin/policy-rc.d
  # If the prometheus package started a daemon anyway (e.g. systemd without policy-rc.d support),
  # stop exactly the new process(es).
  after=$(prometheus_pids | sort)
  for p in $(comm -13 <(echo "$before") <(echo "$after")); do
    say "stopping the prometheus daemon (pid $p) started by the package install"
    if [[ -d /run/systemd/system ]]; then as_root systemctl stop prometheus 2>/dev/null; fi
    as_root kill -TERM "$p" 2>/dev/null
  done
  ((rc == 0)) || fail apt "$APT_LOG" "apt-get install ${pkgs[*]} failed"
}
