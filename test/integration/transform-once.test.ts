import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type pg from 'pg';
import { type Admin, type Kafka, kafkaClient } from '../../src/core/clients/rdkafka.js';
import { makeBigQuery } from '../../src/core/clients/bigquery.js';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { loadConfig, type Config } from '../../src/core/config/index.js';
import { silentLogger } from '../../src/core/logger.js';
import { HttpReceiver } from '../../src/receiver/server.js';
import { exited } from '../helpers/capturer.js';
import { dropPipeline, isolatedPipeline, RECEIVER_KEY, startStream, waitFor } from '../helpers/pipeline.js';
import { freePort } from '../helpers/ports.js';
import { runCli } from '../helpers/run-cli.js';
import { unique } from '../helpers/stack.js';

const ROWS = 20;
const BAD = [5, 12];

/** Sums a metric's samples whose labels include every `labels` pair. */
function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/**
 * One `stream` with all three sinks (one process: capture and the three deliverers): every
 * record of the changes topic is parsed, validated and enriched once, not once per sink,
 * and an invalid row is still dead-lettered once per sink, each letter where replay-dlq
 * finds it. Counted by the stream's own metrics and by replay-dlq's inspection.
 */
describe('transform once before fan-out (three sinks, one process)', { timeout: 240_000 }, () => {
  const table = unique('tf');
  const t = `public.${table}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'streamctl-transform-'));
  const schemaFile = path.join(dir, 'row.schema.json');
  const configFile = path.join(dir, 'config.yaml');
  const receiver = new HttpReceiver({ hmacKey: RECEIVER_KEY });
  let db: pg.Client;
  let kafka: Kafka;
  let admin: Admin;
  let config: Config;
  let pipeline: ReturnType<typeof isolatedPipeline>;
  let metricsText = '';
  let letters: Array<{ event_id: string; sink: string; error_class: string; table: string }> = [];

  before(async () => {
    const receiverUrl = `http://127.0.0.1:${(await receiver.listen(0)).port}`;
    writeFileSync(schemaFile, JSON.stringify({ type: 'object', properties: { v: { not: { const: 'bad' } } } }));
    writeFileSync(configFile, `validation:\n  tables:\n    ${t}: ${schemaFile}\n`);
    const port = await freePort();
    pipeline = isolatedPipeline([t], `${receiverUrl}/events`, { STREAMCTL_CONFIG: configFile, STREAMCTL_METRICS_PORT: String(port) });
    config = loadConfig({ env: pipeline.env, file: configFile });
    db = makePgClient(config.postgres);
    await db.connect();
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text)`);
    kafka = kafkaClient(config.kafka, silentLogger, { retries: 10 });
    admin = kafka.admin();
    await admin.connect();

    const stream = startStream(pipeline.env);
    try {
      await waitFor('the stream to start', async () => stream.log.text.includes('capture starting') && (stream.log.text.match(/sink delivering/g) ?? []).length === 3, 90_000);
      const values = Array.from({ length: ROWS }, (_, i) => `(${i + 1}, '${BAD.includes(i + 1) ? 'bad' : `row ${i + 1}`}')`);
      await db.query(`INSERT INTO ${table} VALUES ${values.join(', ')}`);
      // Done when every sink has each valid event delivered and each invalid one dead-lettered.
      const scrape = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      metricsText = await waitFor(
        'every sink to deliver or dead-letter every event',
        async () => {
          const text = await scrape();
          const done = ['redis', 'bigquery', 'http'].every(
            (sink) =>
              metric(text, 'events_processed_total', { sink }) >= ROWS - BAD.length && metric(text, 'dlq_events_total', { sink }) >= BAD.length,
          );
          return done ? text : undefined;
        },
        120_000,
      );
    } finally {
      stream.child.kill('SIGTERM');
      await exited(stream.child);
    }
    const inspect = await runCli(['--json', 'replay-dlq', '--all'], pipeline.env, 120_000);
    assert.equal(inspect.code, 0, inspect.stderr);
    letters = (JSON.parse(inspect.stdout) as { letters: typeof letters }).letters;
  });

  after(async () => {
    await dropPipeline(db, admin, pipeline.tag);
    await admin.deleteTopics({ topics: [`${pipeline.tag}.dlq-resolved`] }).catch(() => {});
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await db.end();
    const redis = new Redis({ host: config.sinks.redis.host, port: config.sinks.redis.port, lazyConnect: true });
    await redis.connect();
    const keys = await redis.keys(`${pipeline.tag}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    await makeBigQuery(config.sinks.bigquery).dataset(pipeline.tag).delete({ force: true }).catch(() => {});
    await admin.disconnect();
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('validates each event once, the invalid ones too, and hands the other two sinks the same result', () => {
    const name = 'streamctl_delivery_transforms_total';
    assert.equal(metric(metricsText, name, { outcome: 'computed', valid: 'false' }), BAD.length, 'each invalid event validated once');
    assert.equal(metric(metricsText, name, { outcome: 'computed', valid: 'true' }), ROWS - BAD.length, 'each valid event transformed once');
    assert.equal(metric(metricsText, name, { outcome: 'shared', valid: 'false' }), 2 * BAD.length);
    assert.equal(metric(metricsText, name, { outcome: 'shared', valid: 'true' }), 2 * (ROWS - BAD.length));
  });

  it('dead-letters each invalid event once per sink, where replay-dlq finds it', () => {
    const mine = letters.filter((l) => l.table === t);
    assert.equal(mine.length, 3 * BAD.length, JSON.stringify(mine));
    const byEvent = new Map<string, string[]>();
    for (const l of mine) byEvent.set(l.event_id, [...(byEvent.get(l.event_id) ?? []), l.sink]);
    assert.equal(byEvent.size, BAD.length);
    for (const [id, sinks] of byEvent) assert.deepEqual(sinks.sort(), ['bigquery', 'http', 'redis'], `letters of ${id}`);
    assert.ok(mine.every((l) => l.error_class === 'invalid_row'));
  });
});
