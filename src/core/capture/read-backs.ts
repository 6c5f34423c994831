import type { Logger } from '../logger.js';
import { withTimeout } from '../timeout.js';
import { KafkaLostCommitError, type VerifiedConfirms } from './verified-confirms.js';

export interface ReadBackOptions {
  verified: VerifiedConfirms;
  /** The events_total of the checkpoint Kafka shows committed now (a read_committed read). */
  readShown: () => Promise<number>;
  /** A read showed less than a commit Kafka answered: capture must restart from what Kafka shows. */
  lost: (err: KafkaLostCommitError) => void;
  logger: Logger;
  /** True while Kafka is down or just back (outages.ts): a failing read is part of that outage then. */
  kafkaAway: () => boolean;
  everyMs: number;
  /** Reads failing this long while capture goes on: said once (the slot holds WAL meanwhile). */
  failingMs: number;
  /** The read at a graceful stop waits this long at most. */
  lastMs: number;
}

/**
 * Reads capture's checkpoint back every `everyMs` while an LSN waits to be confirmed, one read
 * at a time (./verified-confirms.ts says why). A read showing less than a commit Kafka had
 * answered when the read began (a read_committed read waits for pending offsets, so it cannot
 * show an older one) means Kafka lost that commit: `lost`, and capture restarts from what
 * Kafka shows, reading those changes from PostgreSQL again. Reads that keep failing for
 * `failingMs` while Kafka is not known to be away are said once, and their end once.
 */
export function startReadBacks(o: ReadBackOptions): { last(): Promise<void>; stop(): void } {
  let reading: Promise<void> | null = null;
  let failingSince: number | null = null;
  let told = false;
  const read = (): Promise<void> => {
    if (!o.verified.waits()) return Promise.resolve();
    const asked = o.verified.answered();
    return o.readShown().then(
      (shown) => {
        if (told) o.logger.info('capture reads its checkpoint back from Kafka again: confirming to PostgreSQL');
        failingSince = null;
        told = false;
        o.verified.readBack(shown);
        if (shown < asked) o.lost(new KafkaLostCommitError(shown, asked));
      },
      (err: Error) => {
        failingSince ??= Date.now();
        const fields = { error: err.message };
        // Kafka away: part of its outage, told once by outages.ts, not a second line here.
        if (Date.now() - failingSince > o.failingMs && !told && !o.kafkaAway()) {
          told = true;
          o.logger.warn('capture cannot read its checkpoint back from Kafka: PostgreSQL is not told what Kafka holds, so the slot keeps its WAL; retrying', fields);
        } else o.logger.debug('capture: checkpoint read-back failed', fields);
      },
    );
  };
  const timer = setInterval(() => {
    if (reading === null && o.verified.waits()) reading = read().finally(() => (reading = null));
  }, o.everyMs);
  return {
    // At a graceful stop: bounded, a Kafka gone away must not hold the stop (the slot just stays behind).
    last: async () => {
      await reading;
      await withTimeout(read(), o.lastMs, 'the last checkpoint read-back').catch(() => {});
    },
    stop: () => clearInterval(timer),
  };
}
