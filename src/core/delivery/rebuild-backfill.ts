import { Backfill } from '../backfill/backfill.js';
import { parseTableName } from '../backfill/plan.js';
import type { Config } from '../config/types.js';
import type { Logger } from '../logger.js';
import type { SinkName } from '../sinks/contract.js';

/** Rows backfilled so far against the planner's estimate of them all. */
export type BackfillProgressFn = (done: number, total: number) => void;

/** What the sink-state keeper calls to refill a sink from PostgreSQL (./sink-state.ts). */
export type SinkBackfill = (onProgress: BackfillProgressFn, signal: AbortSignal) => Promise<number>;

/**
 * A sink that lost its state when the changes topic no longer holds everything it needs
 * (retention deleted its oldest events, or the topic is compacted) is refilled from
 * PostgreSQL: a backfill of every table of the pipeline (`postgres.tables`) into that sink
 * only (the records name it: ./targets.ts, so the other sinks skip them). Each chunk is
 * read in an exact snapshot, so changes captured meanwhile stay newer in the sink (the
 * per-key versions), as with any backfill beside a running stream. Returns the rows written.
 */
export function sinkBackfill(config: Config, logger: Logger, sink: SinkName): SinkBackfill {
  return async (onProgress, signal) => {
    const tables = config.postgres.tables.map(parseTableName);
    let total = 0;
    const summary = await new Backfill(config, logger).run({ tables, where: null, chunkSize: null, rate: null, resume: null, sinks: [sink] }, signal, {
      onStart: (run, _resumed, plans) => {
        total = plans.reduce((n, p) => n + p.estimate, 0);
        logger.info(`backfilling ${sink} from PostgreSQL`, { run, tables: plans.map((p) => p.table).join(','), estimated_rows: total });
        onProgress(0, total);
      },
      onChunk: (r) => onProgress(r.totalRows, Math.max(total, r.totalRows)),
    });
    if (summary.state !== 'done') throw new Error(`backfill run ${summary.run} stopped before the end`);
    onProgress(summary.rowsTotal, summary.rowsTotal);
    return summary.rowsTotal;
  };
}
