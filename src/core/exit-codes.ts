/** The process exit codes streamctl documents in README.md and every `--help`. */
export const EXIT = {
  OK: 0,
  RUNTIME: 1,
  USAGE: 2,
  CHECK_FAILED: 3,
  ENV_NOT_READY: 4,
  INTERRUPTED: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_CODES_HELP = `Exit codes:
  0    done
  1    runtime failure
  2    usage or configuration error (every problem is listed)
  3    a check failed: a component is down (status) or an SLO was missed (stress-test)
  4    environment not ready (for example wal_level is not logical; the message says how to fix it)
  130  interrupted (after a graceful shutdown)`;
