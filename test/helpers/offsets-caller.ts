/**
 * A child process for test/integration/restart-safe-admin.test.ts: makes the deliverer's
 * periodic admin calls (topic list, read_committed ends, a group's committed offsets) in
 * three overlapping loops, as the lag timer and the sink-state checks do (the third with a
 * new client each round, as a restarting capture or `status` makes one), and prints one JSON
 * line per round: whether it worked and the committed offsets it read. In its own process,
 * because the failure it guards against aborts the process.
 *
 *   node dist/test/helpers/offsets-caller.js <safe|compat> <brokers> <topic> <group>
 */
import { endOffsets, kafkaClient, type OffsetsAdmin } from '../../src/core/clients/rdkafka.js';
import { RestartSafeAdmin } from '../../src/core/clients/restart-safe-admin.js';
import { loadConfig } from '../../src/core/config/index.js';
import { silentLogger } from '../../src/core/logger.js';

const [mode, brokers, topic, group] = process.argv.slice(2) as [string, string, string, string];
const config = loadConfig({ env: { STREAMCTL_KAFKA_BROKERS: brokers } });
// `safe` makes each call once (no retries), so the rounds while Kafka is down fail and show.
// `compat`: the library's own admin for everything (what the deliverer must not use; a test's planted fault).
const makeAdmin = (): OffsetsAdmin => (mode === 'compat' ? kafkaClient(config.kafka, silentLogger).admin() : new RestartSafeAdmin(config.kafka, silentLogger, 0));
const shared = makeAdmin();
await shared.connect();

const round = async (fresh: boolean): Promise<void> => {
  const admin = fresh ? makeAdmin() : shared;
  try {
    if (fresh) await admin.connect();
    await admin.listTopics();
    await endOffsets(admin, topic);
    const committed = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    const offsets = Object.fromEntries((committed[0]?.partitions ?? []).map((p) => [p.partition, p.offset]));
    process.stdout.write(JSON.stringify({ ok: true, offsets }) + '\n');
  } catch (err) {
    process.stdout.write(JSON.stringify({ ok: false, error: (err as Error).message }) + '\n');
  } finally {
    if (fresh) await admin.disconnect().catch(() => {});
  }
};
const loop = async (fresh: boolean): Promise<never> => {
  for (;;) {
    await round(fresh);
    await new Promise((r) => setTimeout(r, 300));
  }
};
void loop(false);
void loop(false);
void loop(true);
