import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { makeRedis } from '../../src/core/clients/redis.js';
import { silentLogger } from '../../src/core/logger.js';
import { exited, exitedWithin } from '../helpers/capturer.js';
import { judgeSinks, SteadyWriter, startFaultPipeline, type SinkVerdict } from '../helpers/fault-pipeline.js';
import { startStream, waitFor } from '../helpers/pipeline.js';

/**
 * The faults proof: a steady workload flows from a private PostgreSQL through a private
 * Kafka to a private Redis, the shared BigQuery emulator (a dataset of its own) and an
 * HTTP receiver, with capture and delivery in separate processes, while the servers fail
 * in turn: Redis flushed (the deliverer must notice and rebuild it), Kafka restarted,
 * PostgreSQL restarted with a fast and with an immediate shutdown, and the deliverer
 * SIGKILLed in the middle of a Redis rebuild. Nobody helps the pipeline recover. After the
 * writer stops, every sink is judged (fault-pipeline.ts `judgeSinks`).
 *
 * Each fault waits on conditions (the failure noticed, changes flowing again), never on a
 * machine's speed; only an outage's length is a duration, because that is the fault.
 */
export const FAULTS = ['redis-flush', 'kafka-restart', 'postgres-fast', 'postgres-immediate', 'kill-during-rebuild'] as const;
export type FaultName = (typeof FAULTS)[number];

export interface FaultsCrashOptions {
  faults: FaultName[];
  /** Changes PostgreSQL must confirm before the writer stops (it also runs for as long as the faults take). */
  changes: number;
  kafkaDownMs: number;
  /** How long the sinks may take to catch up once the writer stops. */
  settleTimeoutMs?: number;
  /** The writer's pace (single-row statements per second). */
  ratePerSecond: number;
  log?: (line: string) => void;
}

export interface FaultsCrashResult extends SinkVerdict {
  faults: number;
  /** How many deliverers were SIGKILLed while a rebuild was under way (a kill that came after the rebuild ended is tried again). */
  kills_during_rebuild: number;
  writes: { succeeded: number; failed: number };
  seconds: number;
}

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export async function runFaultsCrash(options: FaultsCrashOptions): Promise<FaultsCrashResult> {
  const log = options.log ?? (() => {});
  const started = performance.now();
  const p = await startFaultPipeline({
    STREAMCTL_LOG_LEVEL: 'info',
    // The Redis state check runs this often: a flush is noticed within it.
    STREAMCTL_DELIVERY_LAG_INTERVAL_MS: '1000',
  });
  const logDir = path.join(process.env['CRASH_LOG_DIR'] ?? path.join(ROOT, '.scratch'), `streamctl-crash-faults-${p.tag}`);
  mkdirSync(logDir, { recursive: true });
  log(`child logs in ${logDir}`);
  const redis = makeRedis(p.config.sinks.redis, silentLogger);
  redis.on('error', () => {});
  await redis.connect();
  const children: ChildProcess[] = [];
  let deliverers = 0;
  const startDeliverer = () => {
    const d = startStream({ ...p.env, STREAMCTL_LOG_LEVEL: process.env['CRASH_DELIVER_LOG_LEVEL'] ?? 'info' }, 'deliver', path.join(logDir, `deliver-${String(++deliverers).padStart(2, '0')}.log`));
    children.push(d.child);
    return d;
  };
  const writer = new SteadyWriter(p.config, p.table);
  try {
    const capture = startStream(p.env, 'capture', path.join(logDir, 'capture.log'));
    children.push(capture.child);
    let deliver = startDeliverer();
    const alive = () => {
      // A signal counts too: a native client's abort (SIGABRT) leaves exitCode null.
      if (capture.child.exitCode !== null || capture.child.signalCode !== null) throw new Error(`the capturer exited with ${capture.child.exitCode ?? capture.child.signalCode}: ${capture.log.text.slice(-3000)}`);
      if (deliver.child.exitCode !== null || deliver.child.signalCode !== null) throw new Error(`the deliverer exited with ${deliver.child.exitCode ?? deliver.child.signalCode}: ${deliver.log.text.slice(-3000)}`);
    };
    const rowKey = (id: number) => `${p.config.sinks.redis.keyPrefix}row:public.${p.table}:{"id":${id}}`;
    /** A row written after now reaches Redis: capture and delivery both work. */
    const flowing = async (what: string) => {
      const from = writer.nextRowId + 3;
      await waitFor(what, async () => {
        alive();
        for (let id = from; id < from + 30; id++) if ((await redis.exists(rowKey(id))) === 1) return true;
        return false;
      }, 300_000);
    };
    // Not before the slot exists: a change written earlier is not in the slot's stream at all.
    await waitFor('capture to start', async () => (alive(), capture.log.text.includes('capture starting')), 120_000);
    writer.start(options.ratePerSecond);
    await flowing('the first changes in Redis');

    let kills = 0;
    for (const fault of options.faults) {
      log(`fault: ${fault} (${writer.succeeded} changes written so far)`);
      if (fault === 'redis-flush') {
        const from = deliver.log.text.length;
        await p.redis.flushAll();
        await waitFor('the deliverer to rebuild Redis', async () => (alive(), /redis rebuilt from the changes topic/.test(deliver.log.text.slice(from))), 300_000);
      } else if (fault === 'kafka-restart') {
        await p.kafka.stop('SIGTERM');
        await new Promise((r) => setTimeout(r, options.kafkaDownMs)); // the outage itself
        await p.kafka.restart();
      } else if (fault === 'postgres-fast' || fault === 'postgres-immediate') {
        const from = capture.log.text.length;
        await p.pg.stop(fault === 'postgres-fast' ? 'fast' : 'immediate');
        await waitFor('the capturer to notice', async () => (alive(), /postgres unreachable since/.test(capture.log.text.slice(from))), 60_000);
        await p.pg.restart();
      } else {
        // SIGKILL the deliverer once its rebuild has started and before it has finished; a
        // rebuild that finished first (a fast machine) is tried again with another flush.
        for (let attempt = 1; ; attempt++) {
          const from = deliver.log.text.length;
          await p.redis.flushAll();
          await waitFor('a rebuild to start', async () => (alive(), /rebuilding redis from the changes topic/.test(deliver.log.text.slice(from))), 300_000);
          deliver.child.kill('SIGKILL');
          await exited(deliver.child);
          const during = !/redis rebuilt from the changes topic/.test(deliver.log.text.slice(from));
          deliver = startDeliverer();
          if (during) {
            kills++;
            break;
          }
          if (attempt >= 5) throw new Error('every rebuild finished before its SIGKILL landed (5 tries)');
          await waitFor('the restarted deliverer to be ready', async () => (alive(), /sink delivering sink=redis/.test(deliver.log.text)), 120_000);
        }
        await waitFor('the new deliverer to finish the rebuild', async () => (alive(), /redis (rebuilt from the changes topic|partition \d+ rebuilt)/.test(deliver.log.text)), 300_000);
      }
      await flowing(`changes to flow again after ${fault}`);
    }
    await waitFor(`${options.changes} changes written`, async () => (alive(), writer.changed >= options.changes), 1_800_000);
    await writer.stop();
    log(`writer stopped: ${writer.changed} rows changed in ${writer.succeeded} confirmed statements, ${writer.failures} statements failed (servers down); judging the sinks`);
    const verdict = await judgeSinks(p, options.settleTimeoutMs ?? 900_000, log);
    // A stream must stop on SIGTERM; one that does not is a failure of the proof, not a hang of it.
    for (const [name, c] of [['capturer', capture], ['deliverer', deliver]] as const) {
      c.child.kill('SIGTERM');
      const code = await exitedWithin(c.child, 60_000, 'SIGTERM');
      if (code !== 0) verdict.problems.push(`the ${name} did not stop cleanly on SIGTERM: ${String(code)}`);
    }
    return {
      faults: options.faults.length,
      kills_during_rebuild: kills,
      writes: { succeeded: writer.succeeded, failed: writer.failures },
      ...verdict,
      seconds: Math.round((performance.now() - started) / 100) / 10,
    };
  } finally {
    await writer.stop();
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const c of children) await exited(c);
    redis.disconnect();
    await p.destroy();
  }
}
