import { runDeliveryCrash } from './delivery-crash.js';

/**
 * `npm run crash:delivery`: the full proof. At least 50,000 events, 20 SIGKILLs of the
 * deliverer, an HTTP receiver that fails a share of requests. Last line: one JSON object.
 */
const result = await runDeliveryCrash({
  kills: Number(process.env['CRASH_KILLS'] ?? 20),
  smallEvents: Number(process.env['CRASH_SMALL_EVENTS'] ?? 45_000),
  bigTransactionRows: Number(process.env['CRASH_BIG_TX_ROWS'] ?? 10_000),
  killWindowMs: [2000, 8000],
  faults: { '5xx': 0.05, '429': 0.03, hang: 0.005, '4xx': 0.002 },
  log: (line) => process.stderr.write(`crash:delivery ${line}\n`),
});
process.stderr.write(
  `crash:delivery ${result.seconds} s; bigquery re-delivered rows (hidden by the view): ${result.sinks.bigquery.redelivered_rows}; ` +
    `http replays answered by Idempotency-Key: ${result.sinks.http.replays}; redis mismatches: ${JSON.stringify(result.redis_mismatches)}; ` +
    `bigquery latest mismatches: ${JSON.stringify(result.bigquery_latest_mismatches)} ` +
    `(machine shared by PostgreSQL, Kafka, Redis, the BigQuery emulator, the capturer and the deliverer)\n`,
);
const { kills, events, sinks, redis_matches_postgres, bigquery_latest_matches_postgres } = result;
const out = {
  kills,
  events,
  sinks: {
    redis: { lost: sinks.redis.lost, duplicates: sinks.redis.duplicates },
    bigquery: { lost: sinks.bigquery.lost, duplicates: sinks.bigquery.duplicates },
    http: { lost: sinks.http.lost, duplicates: sinks.http.duplicates, dlq: sinks.http.dlq, resent: sinks.http.resent },
  },
  redis_matches_postgres,
  bigquery_latest_matches_postgres,
};
process.stdout.write(`${JSON.stringify(out)}\n`);
const clean = Object.values(out.sinks).every((s) => s.lost === 0 && s.duplicates === 0) && redis_matches_postgres && bigquery_latest_matches_postgres;
process.exitCode = clean ? 0 : 1;
