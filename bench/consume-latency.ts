/**
 * How long a committed record takes to reach the delivery consumer (clients/batch-consumer.ts,
 * read_committed) when it is caught up: a transactional producer commits one small
 * transaction every INTERVAL ms (one record per partition, as capture's transactions touch
 * every partition) for SECONDS, and the consumer notes, per record, its arrival minus the
 * moment its transaction's commit returned. That is the delivery side's share of bench:e2e's
 * latency, with no sink behind it. Run once per `fetch.wait.max.ms` given (the broker holds
 * a fetch that long when nothing new is readable).
 *
 *   node dist/bench/consume-latency.js [--seconds 15] [--interval 50] [--waits 500,100]
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { BatchConsumer } from '../src/core/clients/batch-consumer.js';
import { kafkaClient, librdkafkaSettings } from '../src/core/clients/rdkafka.js';
import { loadConfig } from '../src/core/config/index.js';
import { silentLogger } from '../src/core/logger.js';
import { load } from './machine.js';

const arg = (name: string, fallback: string) => {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1]! : fallback;
};
const SECONDS = Number(arg('seconds', '15'));
const INTERVAL = Number(arg('interval', '50'));
const WAITS = arg('waits', '500,100').split(',').map(Number);
const PARTITIONS = 3;
const config = loadConfig({ env: {} });
const kafka = kafkaClient(config.kafka, silentLogger);

const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? null : Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))]!);
};

async function once(fetchWaitMaxMs: number): Promise<Record<string, unknown>> {
  const topic = `bench-latency-${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: config.kafka.replicationFactor }] });
  const committedAt = new Map<string, number>();
  const latencies: number[] = [];
  const consumer = new BatchConsumer({
    settings: { ...librdkafkaSettings(config.kafka), 'fetch.wait.max.ms': fetchWaitMaxMs },
    topic,
    mode: { group: `${topic}-g`, sessionTimeoutMs: 10_000 },
    maxRecordsPerRound: 6000,
    maxPartitionFetchBytes: 4 << 20,
    maxFetchBytes: 10 << 20,
    concurrency: PARTITIONS,
    logger: silentLogger,
    eachBatch: async (partition, messages) => {
      const now = performance.now();
      for (const m of messages) {
        const at = committedAt.get(m.value!.toString());
        if (at !== undefined) latencies.push(Math.max(0, now - at));
      }
      await consumer.commit(partition, (BigInt(messages[messages.length - 1]!.offset) + 1n).toString());
    },
  });
  await consumer.start();
  const producer = kafka.producer({ 'linger.ms': 5, kafkaJS: { transactionalId: `${topic}-tx`, idempotent: true, maxInFlightRequests: 1 } });
  await producer.connect();
  // Warm-up: the group joins and every partition is assigned before anything is timed.
  await new Promise((r) => setTimeout(r, 4000));
  const end = performance.now() + SECONDS * 1000;
  let n = 0;
  while (performance.now() < end) {
    const due = performance.now() + INTERVAL;
    const tx = await producer.transaction();
    const ids = Array.from({ length: PARTITIONS }, (_, p) => `${n}-${p}`);
    await tx.send({ topic, messages: ids.map((id, p) => ({ partition: p, value: id })) });
    // A record may arrive before commit() returns: it is timed from the commit's start then.
    const committing = performance.now();
    for (const id of ids) committedAt.set(id, committing);
    await tx.commit();
    const at = performance.now();
    for (const id of ids) committedAt.set(id, at);
    n++;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  await new Promise((r) => setTimeout(r, 1500));
  await producer.disconnect();
  await consumer.stop();
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.disconnect();
  return { fetch_wait_max_ms: fetchWaitMaxMs, records: latencies.length, sent: n * PARTITIONS, p50_ms: pct(latencies, 0.5), p90_ms: pct(latencies, 0.9), p99_ms: pct(latencies, 0.99), max_ms: pct(latencies, 1), loadavg: load() };
}

for (const w of WAITS) process.stdout.write(`${JSON.stringify(await once(w))}\n`);
