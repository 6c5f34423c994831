# scripts/stack.d/promtool.sh: promtool.
# Part of scripts/stack (sourced by it, not run on its own): see the driver for what each part is.
# shellcheck shell=bash

up_promtool() {
  local v
  v=$(promtool --version 2>&1 | head -n1 | awk '{ print $3 }') || { fail promtool "$APT_LOG" "promtool does not run"; return 1; }
  result promtool "installed" "$(command -v promtool) (version $v)"
}

status_promtool() {  # the status line of promtool; returns 1 when it is down
  if command -v promtool >/dev/null; then status_line promtool up "" "$(command -v promtool) (installed)"
  else status_line promtool down "" "not installed"; return 1; fi
}
