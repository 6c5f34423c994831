/**
 * The delivery consumer's read path, old client against new: N records of 740 B written in
 * transactions of 5,000 to a fresh topic, then read to the end by
 *   - kafkajs (the runner before: eachBatch, read_committed, a commit per batch), and
 *   - librdkafka through its KafkaJS-compatible API (the same eachBatch code), and
 *   - clients/batch-consumer.ts (librdkafka's native consumer, a commit per partition batch),
 * each in its own consumer group, with no sink behind it: what the client costs per record.
 * Prints records/s, CPU seconds per 100k records of this process, the machine's load and
 * who else used the CPU meanwhile (the figures are only as quiet as the machine was).
 *
 *   npm run bench:consume [-- --records 200000]
 */
import { randomBytes } from 'node:crypto';
import kafkajs from 'kafkajs';
import { BatchConsumer } from '../src/core/clients/batch-consumer.js';
import { kafkaClient, librdkafkaSettings } from '../src/core/clients/rdkafka.js';
import { loadConfig } from '../src/core/config/index.js';
import { silentLogger } from '../src/core/logger.js';
import { cpuMark, cpuSince, load } from './machine.js';

const args = process.argv.slice(2);
const records = Number(args[args.indexOf('--records') + 1] ?? 0) || 200_000;
const PARTITIONS = 6;
const config = loadConfig({ env: {} });
const topic = `bench-consume-${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`;
const kafka = kafkaClient(config.kafka, silentLogger);
const admin = kafka.admin();

async function fill(): Promise<void> {
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: config.kafka.replicationFactor }] });
  const producer = kafka.producer({ 'linger.ms': 5, kafkaJS: { transactionalId: `${topic}-fill`, idempotent: true, maxInFlightRequests: 1 } });
  await producer.connect();
  const value = 'x'.repeat(740);
  for (let sent = 0; sent < records; sent += 5000) {
    const tx = await producer.transaction();
    const n = Math.min(5000, records - sent);
    await tx.send({ topic, messages: Array.from({ length: n }, (_, i) => ({ key: `public.t:{"id":${sent + i}}`, value })) });
    await tx.commit();
  }
  await producer.disconnect();
}

interface Figures {
  client: string;
  records: number;
  seconds: number;
  records_per_s: number;
  cpu_s_per_100k: number;
  machine_cpu: string;
}

async function timed(client: string, read: (done: () => void, count: (n: number) => void) => Promise<() => Promise<void>>): Promise<Figures> {
  let seen = 0;
  const mark = cpuMark();
  const cpu0 = process.cpuUsage();
  const began = performance.now();
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const stop = await read(finish, (n) => {
    seen += n;
    if (seen >= records) finish();
  });
  await finished;
  const seconds = (performance.now() - began) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const machine = cpuSince(mark, 'children');
  await stop();
  return { client, records: seen, seconds: Math.round(seconds * 100) / 100, records_per_s: Math.round(seen / seconds), cpu_s_per_100k: Math.round(((cpu.user + cpu.system) / 1e6 / seen) * 1e5 * 100) / 100, machine_cpu: machine };
}

async function main(): Promise<void> {
  await admin.connect();
  const results: Figures[] = [];
  try {
    await fill();
    results.push(
      await timed('kafkajs 2.2 (eachBatch)', async (_done, count) => {
        const old = new kafkajs.Kafka({ brokers: config.kafka.brokers, logLevel: kafkajs.logLevel.NOTHING });
        const consumer = old.consumer({ groupId: `${topic}-kafkajs`, readUncommitted: false, maxBytesPerPartition: 4 << 20, maxBytes: 10 << 20 });
        await consumer.connect();
        await consumer.subscribe({ topic, fromBeginning: true });
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: PARTITIONS,
          eachBatch: async ({ batch, resolveOffset }) => {
            if (batch.messages.length === 0) return;
            const last = batch.messages[batch.messages.length - 1]!.offset;
            resolveOffset(last);
            await consumer.commitOffsets([{ topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }]);
            count(batch.messages.length);
          },
        });
        return () => consumer.disconnect();
      }),
    );
    results.push(
      await timed('librdkafka 2.15 KafkaJS-compatible API (eachBatch)', async (_done, count) => {
        const consumer = kafka.consumer({
          'js.consumer.max.batch.size': -1,
          kafkaJS: { groupId: `${topic}-compat`, fromBeginning: true, autoCommit: false, readUncommitted: false, maxBytesPerPartition: 4 << 20, maxBytes: 10 << 20 },
        });
        await consumer.connect();
        await consumer.subscribe({ topic });
        void consumer.run({
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: PARTITIONS,
          eachBatch: async ({ batch, resolveOffset }) => {
            if (batch.messages.length === 0) return;
            const last = batch.messages[batch.messages.length - 1]!.offset;
            resolveOffset(last);
            await consumer.commitOffsets([{ topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }]);
            count(batch.messages.length);
          },
        });
        return () => consumer.disconnect();
      }),
    );
    results.push(
      await timed('librdkafka 2.15 native (batch-consumer.ts)', async (_done, count) => {
        const consumer: BatchConsumer = new BatchConsumer({
          settings: librdkafkaSettings(config.kafka),
          topic,
          mode: { group: `${topic}-native`, sessionTimeoutMs: 10_000 },
          maxRecordsPerRound: 2000 * PARTITIONS,
          maxPartitionFetchBytes: 4 << 20,
          maxFetchBytes: 10 << 20,
          concurrency: PARTITIONS,
          logger: silentLogger,
          eachBatch: async (partition, messages) => {
            await consumer.commit(partition, (BigInt(messages[messages.length - 1]!.offset) + 1n).toString());
            count(messages.length);
          },
        });
        await consumer.start();
        return () => consumer.stop();
      }),
    );
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.deleteGroups([`${topic}-kafkajs`, `${topic}-compat`, `${topic}-native`]).catch(() => {});
    await admin.disconnect();
  }
  console.log(JSON.stringify({ bench: 'consume', records, value_bytes: 740, partitions: PARTITIONS, results, loadavg: load() }, null, 1));
}

main().catch((err: Error) => {
  console.error(err);
  process.exit(1);
});
