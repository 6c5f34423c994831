import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/core/config/index.js';
import { kafkaClient } from '../../src/core/clients/rdkafka.js';
import { NativeTransactionalClient } from '../../src/core/kafka/transactional-client.js';
import { silentLogger } from '../../src/core/logger.js';
import { exited } from '../helpers/capturer.js';
import { waitFor } from '../helpers/pipeline.js';
import { PrivateKafka } from '../helpers/private-servers.js';

/**
 * The deliverer's periodic admin calls (clients/restart-safe-admin.ts) keep working through
 * Kafka restarts, in a process that must not die: librdkafka's admin requests to a group
 * coordinator abort the process around a restart (confluentinc/librdkafka#4605). A private
 * broker, restarted twice while three loops make the calls; the caller must be alive after
 * each restart and read the group's committed offsets right again.
 */
describe('periodic admin calls through Kafka restarts (private broker)', { timeout: 600_000 }, () => {
  let kafka: PrivateKafka;
  let caller: ChildProcess;
  const rounds: Array<{ ok: boolean; offsets?: Record<string, string>; error?: string }> = [];
  let stderr = '';
  const topic = 'restart-safe';
  const group = 'restart-safe-group';

  before(async () => {
    kafka = await PrivateKafka.start();
    const config = loadConfig({ env: kafka.env });
    const admin = kafkaClient(config.kafka, silentLogger).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], timeout: 30_000 });
    await admin.disconnect();
    // The caller starts on a fresh broker, before any group exists (no __consumer_offsets yet):
    // the coordinator lookups of its first rounds fail, another way librdkafka's admin aborts.
    const script = fileURLToPath(new URL('../helpers/offsets-caller.js', import.meta.url));
    caller = spawn(process.execPath, [script, process.env['RESTART_SAFE_MODE'] ?? 'safe', kafka.brokers, topic, group], { stdio: ['ignore', 'pipe', 'pipe'] });
    let pending = '';
    caller.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) rounds.push(JSON.parse(line) as (typeof rounds)[number]);
    });
    caller.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // A committed offset for the group (7 on partition 0), as a sink's runner leaves one.
    const producer = new NativeTransactionalClient(config.kafka, silentLogger, { transactionalId: 'restart-safe-tx', transactionTimeoutMs: 60_000 });
    await producer.connect();
    await producer.begin();
    await producer.produce(topic, 'k', 'v');
    await producer.flush();
    await producer.sendOffsets(group, topic, 7, 'x');
    await producer.commit();
    await producer.disconnect();
  });

  after(async () => {
    if (caller && caller.exitCode === null && caller.signalCode === null) {
      caller.kill('SIGKILL');
      await exited(caller);
    }
    await kafka?.destroy();
  });

  const alive = () => {
    assert.equal(caller.exitCode, null, `the caller exited (${caller.exitCode}): ${stderr.slice(-2000)}`);
    assert.equal(caller.signalCode, null, `the caller died of ${caller.signalCode}: ${stderr.slice(-2000)}`);
  };
  /** A round that started after `from` read partition 0's committed offset as 7. */
  const readRight = (from: number) => rounds.slice(from).some((r) => r.ok && r.offsets?.['0'] === '7');

  it('reads the committed offsets before any restart', async () => {
    await waitFor('a first good round', async () => (alive(), readRight(0)), 120_000);
    // Partitions the group never committed read as none ('-1', or left out as the admin's fetchOffsets does).
    const { 0: first, ...rest } = rounds.find((r) => r.ok && r.offsets?.['0'] !== '-1')!.offsets!;
    assert.equal(first, '7');
    assert.ok(Object.values(rest).every((o) => o === '-1'), JSON.stringify(rest));
  });

  for (const n of [1, 2]) {
    it(`stays alive through restart ${n} and reads them again`, async () => {
      await kafka.stop('SIGTERM');
      // The calls fail while the broker is down (they are made, not skipped), and it stays down
      // until several have timed out: a request timing out against a dead coordinator is
      // one of the ways librdkafka's admin aborts.
      const down = rounds.length;
      await waitFor('rounds failing while Kafka is down', async () => (alive(), rounds.slice(down).filter((r) => !r.ok).length >= 9), 180_000);
      await kafka.restart();
      // ...and, with the coordinator loading again, must neither kill the caller nor stay wrong.
      const up = rounds.length;
      await waitFor('a good round after the restart', async () => (alive(), readRight(up)), 180_000);
      // A few more rounds over the restarted coordinator, still alive.
      const settled = rounds.length;
      await waitFor('more rounds', async () => (alive(), rounds.length >= settled + 15), 60_000);
      alive();
    });
  }
});
