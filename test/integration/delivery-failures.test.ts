import { type Admin, type Kafka, kafkaClient } from '../../src/core/clients/rdkafka.js';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { makePgClient } from '../../src/core/clients/postgres.js';
import { loadConfig } from '../../src/core/config/index.js';
import { DLQ_HEADERS } from '../../src/core/delivery/dlq.js';
import { silentLogger } from '../../src/core/logger.js';
import { HttpReceiver } from '../../src/receiver/server.js';
import { exited } from '../helpers/capturer.js';
import { dropPipeline, isolatedPipeline, RECEIVER_KEY, startStream, waitFor } from '../helpers/pipeline.js';
import { unique } from '../helpers/stack.js';
import { readTopic } from '../helpers/kafka-read.js';

const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

async function metric(port: number, name: string, labels: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').pop()) : undefined;
}

interface DeadLetterSeen {
  id: string;
  headers: Record<string, string>;
}

async function readDlq(kafka: Kafka, topic: string, atLeast: number): Promise<DeadLetterSeen[]> {
  const records = await readTopic(kafka, topic, { enough: (rs) => rs.length >= atLeast, quietMs: 500, timeoutMs: 60_000 });
  assert.ok(records.length >= atLeast, `${atLeast} dead letters expected, ${records.length} read`);
  return records.map((r) => ({ id: (JSON.parse(r.value) as { id: string }).id, headers: r.headers }));
}

describe('delivery failures: DLQ, retries and the circuit breaker (HTTP sink)', { timeout: 240_000 }, () => {
  const table = unique('df');
  // Arrival order of each row's values, for the ordering check.
  const arrivals: Array<{ id: number; v: string; at: number }> = [];
  const receiver = new HttpReceiver({
    hmacKey: RECEIVER_KEY,
    onAccepted: ({ body }) => {
      const e = body as { after?: { id?: number; v?: string } | null };
      if (e.after?.id !== undefined) arrivals.push({ id: e.after.id, v: String(e.after.v), at: Date.now() });
    },
  });
  let receiverUrl = '';
  let metricsPort = 0;
  let db: pg.Client;
  let kafka: Kafka;
  let admin: Admin;
  let pipeline: ReturnType<typeof isolatedPipeline>;
  let stream: ReturnType<typeof startStream>;
  const control = (plan: unknown) => fetch(`${receiverUrl}/_control`, { method: 'POST', body: JSON.stringify(plan) });
  const stats = async () => (await (await fetch(`${receiverUrl}/_stats`)).json()) as { unique_keys: number; faults: Record<string, number> };

  before(async () => {
    const address = await receiver.listen(0);
    receiverUrl = `http://127.0.0.1:${address.port}`;
    metricsPort = await freePort();
    pipeline = isolatedPipeline([`public.${table}`], `${receiverUrl}/events`, {
      STREAMCTL_METRICS_PORT: String(metricsPort),
      STREAMCTL_SINKS_REDIS_ENABLED: 'false',
      STREAMCTL_SINKS_BIGQUERY_ENABLED: 'false',
      STREAMCTL_SINKS_HTTP_RETRY_RETRIES: '2',
      STREAMCTL_SINKS_HTTP_RETRY_INITIAL_DELAY_MS: '50',
      STREAMCTL_SINKS_HTTP_RETRY_MAX_DELAY_MS: '100',
      STREAMCTL_SINKS_HTTP_BREAKER_CONSECUTIVE_FAILURES: '1',
      STREAMCTL_SINKS_HTTP_BREAKER_HALF_OPEN_AFTER_MS: '8000',
      STREAMCTL_SINKS_HTTP_TIMEOUT_MS: '1000',
      STREAMCTL_DELIVERY_LAG_INTERVAL_MS: '300',
    });
    const config = loadConfig({ env: pipeline.env });
    db = makePgClient(config.postgres);
    await db.connect();
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text)`);
    kafka = kafkaClient(config.kafka, silentLogger, { retries: 10 });
    admin = kafka.admin();
    await admin.connect();
    stream = startStream(pipeline.env);
    await waitFor('the stream to start', async () => stream.log.text.includes('capture starting') && stream.log.text.includes('sink delivering'));
  });

  after(async () => {
    if (stream?.child.exitCode === null) {
      stream.child.kill('SIGTERM');
      await exited(stream.child);
    }
    await dropPipeline(db, admin, pipeline.tag);
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await db.end();
    await admin.disconnect();
    await receiver.close();
  });

  it('sends a permanent 4xx to the DLQ at once, with headers that say why and where from', async () => {
    await control({ next: ['4xx'] });
    await db.query(`INSERT INTO ${table} VALUES (1, 'rejected')`);
    const [letter] = await readDlq(kafka, `${pipeline.tag}.dlq`, 1);
    assert.equal(letter?.headers[DLQ_HEADERS.sink], 'http');
    assert.equal(letter?.headers[DLQ_HEADERS.errorClass], 'http_422');
    assert.equal(letter?.headers[DLQ_HEADERS.attempts], '1');
    assert.equal(letter?.headers[DLQ_HEADERS.sourceTopic], `${pipeline.tag}.changes`);
    assert.match(letter?.headers[DLQ_HEADERS.sourceOffset] ?? '', /^\d+$/);
    assert.match(letter?.headers[DLQ_HEADERS.firstFailure] ?? '', /^\d{4}-\d\d-\d\dT/);
    assert.equal(letter?.id, letter?.headers[DLQ_HEADERS.eventId]);
  });

  it('retries 5xx and 429, then dead-letters and opens the circuit: the sink pauses, lag grows, and it resumes after a half-open probe', async () => {
    // Every request fails: 3 attempts (1 + 2 retries), then the DLQ and an open circuit.
    await control({ rates: { '5xx': 1 } });
    await db.query(`INSERT INTO ${table} VALUES (2, 'exhausts retries')`);
    await waitFor('the circuit to open', async () => (await metric(metricsPort, 'circuit_state', 'sink="http"')) === 1);
    const openedAt = Date.now();

    // While open (8 s here), new events wait in Kafka (lag), they are not sent nor dead-lettered.
    const before = (await stats()).faults['5xx'] ?? 0;
    assert.equal(before, 3, 'one event, three attempts');
    await db.query(`INSERT INTO ${table} SELECT g, 'waits' FROM generate_series(3, 12) g`);
    await waitFor('the lag to show', async () => ((await metric(metricsPort, 'queue_depth', 'sink="http"')) ?? 0) >= 10);
    assert.equal((await stats()).faults['5xx'] ?? 0, before, 'no request is sent while the circuit is open');
    assert.ok(Date.now() - openedAt < 8000, 'the check above ran while the circuit was still open');

    // The upstream recovers: the half-open probe succeeds, the circuit closes, the backlog drains.
    await control({ rates: {} });
    await waitFor('the circuit to close', async () => (await metric(metricsPort, 'circuit_state', 'sink="http"')) === 0, 30_000);
    await waitFor('the backlog to drain', async () => (await stats()).unique_keys >= 10, 30_000);
    assert.equal(await metric(metricsPort, 'dlq_events_total', 'class="http_503"'), 1, 'only the event that ran out of retries');
    const letters = await readDlq(kafka, `${pipeline.tag}.dlq`, 2);
    const exhausted = letters.filter((l) => l.headers[DLQ_HEADERS.errorClass] === 'http_503');
    assert.equal(exhausted.length, 1);
    assert.equal(exhausted[0]?.headers[DLQ_HEADERS.attempts], '3');
  });

  it('times out a hanging upstream and retries, honouring Retry-After on 429', async () => {
    await control({ next: ['hang', '429'], retryAfterSeconds: 1 });
    const started = Date.now();
    await db.query(`INSERT INTO ${table} VALUES (100, 'slow upstream')`);
    await waitFor('delivery after a timeout and a 429', async () => (await stats()).unique_keys >= 11, 30_000);
    assert.ok(Date.now() - started >= 1000, 'Retry-After of 1 s was honoured');
  });

  it('a request waiting out Retry-After holds back only its own row: the rest flows, and each row stays in order', async () => {
    // 1,500 rows inserted then all updated in one transaction: 3,000 events, about 1,000 per
    // partition. The first request is answered 429 with Retry-After 30 s. Before, the retry
    // wait held the whole 500-event chunk and every chunk after it in that partition, so
    // hundreds of events arrived after the held one; now only the held row's update waits.
    // (30 s, not 15: on a crowded machine, 30-50 % of its CPU taken by the host, the other
    // 2,998 events once took longer than 15 s to arrive one POST each, and some arrived after
    // the held row without anything being held back.)
    const base = (await stats()).unique_keys;
    arrivals.length = 0;
    const faultsBefore = (await stats()).faults['429'] ?? 0;
    await control({ next: ['429'], retryAfterSeconds: 30 });
    const sentAt = Date.now();
    await db.query(`BEGIN; INSERT INTO ${table} SELECT g, 'first' FROM generate_series(1000, 2499) g; UPDATE ${table} SET v = 'second' WHERE id >= 1000; COMMIT`);
    await waitFor('every event to arrive', async () => (await stats()).unique_keys >= base + 3000, 90_000);
    const seen = new Map<number, string[]>();
    for (const { id, v } of arrivals) seen.set(id, [...(seen.get(id) ?? []), v]);
    assert.equal(seen.size, 1500);
    for (const [id, vs] of seen) assert.deepEqual(vs, ['first', 'second'], `row ${id} arrived out of order`);
    // The held row is the one whose insert came last; its two events are the last two arrivals.
    const last = arrivals.slice(-2);
    // What a failure needs to be told apart (seen once, not explained): whether the 429 was answered, and when the rows came.
    const statsAfter = await stats();
    const story = () =>
      `429s answered: ${(statsAfter.faults['429'] ?? 0) - faultsBefore}; the last 4 arrivals [id, v, ms after the transaction was sent]: ` +
      `${JSON.stringify(arrivals.slice(-4).map((a) => [a.id, a.v, a.at - sentAt]))}; the 2,998th at ${(arrivals[2997]?.at ?? NaN) - sentAt} ms`;
    assert.equal(last[0]?.id, last[1]?.id, `the last two arrivals are not one row: ${story()}`);
    assert.deepEqual(last.map((a) => a.v), ['first', 'second'], story());
  });
});
