import { EXIT } from '../../core/exit-codes.js';

export interface StopSignals {
  /** Aborted by the first SIGINT or SIGTERM. */
  signal: AbortSignal;
  /** Removes the handlers (once the work is done). */
  release(): void;
}

/**
 * SIGINT/SIGTERM, the way every long-running command handles them: the first one aborts
 * `signal`, so the command finishes what is in flight and exits 130 after a graceful stop;
 * a second one stops at once (exit 130). The callbacks only say so in the log.
 */
export function stopOnSignals(onFirst: (name: string) => void, onAgain?: (name: string) => void): StopSignals {
  const stop = new AbortController();
  const handler = (name: NodeJS.Signals) => {
    if (!stop.signal.aborted) {
      onFirst(name);
      stop.abort();
      return;
    }
    onAgain?.(name);
    process.exit(EXIT.INTERRUPTED);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: stop.signal,
    release: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
