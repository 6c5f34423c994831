import { runCaptureCrash } from './capture-crash.js';

/**
 * `npm run crash:capture-kafka`: capture's proof across broker restarts. One capturer runs
 * throughout on a private Kafka broker that is stopped (SIGKILL and SIGTERM in turn) and
 * started again 10 times during a workload of at least 60,000 changes. Last line: one JSON
 * object. Exit 1 on any loss, duplicate or reordering.
 */
const restarts = Number(process.env['CRASH_BROKER_RESTARTS'] ?? 10);
const result = await runCaptureCrash({
  kills: 0,
  brokerRestarts: restarts,
  smallEvents: Number(process.env['CRASH_SMALL_EVENTS'] ?? 40_000),
  bigTransactionRows: Number(process.env['CRASH_BIG_TX_ROWS'] ?? 20_000),
  killWindowMs: [300, 3000],
  maxBatchEvents: 2000,
  log: (line) => process.stderr.write(`crash:capture-kafka ${line}\n`),
});
process.stderr.write(
  `crash:capture-kafka ${result.workload_rows} row changes, ${result.kafka_records} records read back, ${result.seconds} s; hanging transactions aborted: ${JSON.stringify(result.hanging_aborted ?? [])} ` +
    `(machine shared by PostgreSQL, the stack's Kafka, Redis, the BigQuery emulator, the private broker and the capturer)\n`,
);
const { kills: broker_restarts, events, lost, duplicates, out_of_order } = result;
process.stdout.write(`${JSON.stringify({ broker_restarts, events, lost, duplicates, out_of_order })}\n`);
process.exitCode = lost === 0 && duplicates === 0 && out_of_order === 0 ? 0 : 1;
