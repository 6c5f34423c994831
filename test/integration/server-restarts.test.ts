import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { makeRedis } from '../../src/core/clients/redis.js';
import { silentLogger } from '../../src/core/logger.js';
import { exited, exitedWithin } from '../helpers/capturer.js';
import { judgeSinks, SteadyWriter, startFaultPipeline, type FaultPipeline } from '../helpers/fault-pipeline.js';
import { startStream, waitFor } from '../helpers/pipeline.js';
import { freePort } from '../helpers/ports.js';

/**
 * Kafka and PostgreSQL restarted under a running stream (capture and all three sinks in one
 * process) and a steady writer. Private servers (test/helpers/private-servers.ts): the
 * shared stack is never restarted. Each restart must be survived without anyone's help, say
 * so in one line when it starts and one when it ends, and lose or repeat nothing.
 */
const KAFKA_DOWN_MS = Number(process.env['FAULT_KAFKA_DOWN_MS'] ?? 30_000);

describe('Kafka and PostgreSQL restarts under a running stream', { timeout: 600_000 }, () => {
  let p: FaultPipeline;
  let stream: ReturnType<typeof startStream>;
  let writer: SteadyWriter;
  let redis: ReturnType<typeof makeRedis>;
  /**
   * Changes still flow end to end: a row the writer writes after now reaches Redis. (Counting
   * rows was not enough: rows written before the outage and still on their way satisfied it
   * before capture was back.)
   */
  const flowing = async (what: string, timeoutMs = 180_000) => {
    const from = writer.nextRowId + 3;
    const key = (id: number) => `${p.config.sinks.redis.keyPrefix}row:public.${p.table}:{"id":${id}}`;
    await waitFor(what, async () => {
      for (let id = from; id < from + 30; id++) if ((await redis.exists(key(id))) === 1) return true;
      return false;
    }, timeoutMs);
  };
  const lines = (text: string, pattern: RegExp) => text.split('\n').filter((l) => pattern.test(l));
  /**
   * What a failed assertion shows: every line above debug, the outage's among them (CI keeps
   * only the head of a long message, and the first 4,000 characters of a debug log were
   * all reconnects, never the line that failed the test).
   */
  const story = (text: string) => lines(text, /^\S+ (INFO|WARN|ERROR) /).slice(0, 60).join('\n');

  before(async () => {
    p = await startFaultPipeline({ STREAMCTL_METRICS_PORT: String(await freePort()) });
    redis = makeRedis(p.config.sinks.redis, silentLogger);
    redis.on('error', () => {});
    await redis.connect();
    stream = startStream({ ...p.env, STREAMCTL_LOG_LEVEL: process.env['FAULT_LOG_LEVEL'] ?? 'debug' }, 'all', process.env['FAULT_LOG_FILE']);
    const ready = `http://127.0.0.1:${p.env['STREAMCTL_METRICS_PORT']}/ready`;
    await waitFor('/ready', async () => {
      if (stream.child.exitCode !== null) throw new Error(`stream exited: ${stream.log.text.slice(-3000)}`);
      return (await fetch(ready)).status === 200;
    }, 120_000);
    writer = new SteadyWriter(p.config, p.table).start(150);
    await flowing('the first rows in Redis');
  });

  after(async () => {
    await writer?.stop();
    if (stream && stream.child.exitCode === null && stream.child.signalCode === null) stream.child.kill('SIGKILL');
    if (stream) await exited(stream.child);
    redis?.disconnect();
    await p?.destroy();
  });

  it(`Kafka stopped (SIGTERM) for ${KAFKA_DOWN_MS / 1000} s and started again: capture and delivery resume, one line each way`, async (t) => {
    const from = stream.log.text.length;
    await p.kafka.stop('SIGTERM');
    await new Promise((r) => setTimeout(r, KAFKA_DOWN_MS)); // the length of the outage, not a wait for a result
    await p.kafka.restart();
    try {
      await flowing('changes to flow again after the Kafka restart', 120_000);
    } catch (err) {
      // About one restart in ten here, the broker came back with capture's last transaction
      // open on every partition it wrote and forgotten by its coordinator (a Kafka bug:
      // README, "A Kafka transaction that never ends"). Nothing of ours can end it; the
      // operator's fix that section gives must, and then capture must resume and lose nothing
      // (the next tests count every event). The outage's own lines are not judged then: Kafka
      // answered but kept failing capture's reads, which the log tells as it happened.
      const aborted = await p.kafka.abortHangingTransactions();
      if (aborted.length === 0) throw err;
      t.diagnostic(`Kafka left a hanging transaction; aborted as the README says: ${aborted.join(', ')}`);
      // Capture said what was wrong (once Kafka had answered and held the checkpoint for a minute).
      assert.match(stream.log.text.slice(from), /capture cannot start: its checkpoint is held back by Kafka; retrying/);
      await flowing('changes to flow again after the hanging transaction was aborted');
      assert.doesNotMatch(stream.log.text.slice(from), /\n\s+at /, 'no stack trace');
      return;
    }
    const log = stream.log.text.slice(from);
    assert.equal(lines(log, /kafka unreachable since/).length, 1, `one line when the outage starts:\n${story(log)}`);
    const back = lines(log, /kafka reachable again after/);
    assert.equal(back.length, 1, `one line when it ends:\n${story(log)}`);
    assert.ok(Number(/after ([\d.]+) s down/.exec(back[0]!)![1]) >= KAFKA_DOWN_MS / 1000 - 1, back[0]);
    assert.doesNotMatch(log, /\n\s+at /, 'no stack trace');
    const others = lines(log, /^\S+ (WARN|ERROR) /).filter((l) => !/kafka unreachable since/.test(l));
    assert.deepEqual(others, [], 'no other warning or error during the outage');
  });

  for (const mode of ['fast', 'immediate'] as const) {
    it(`PostgreSQL stopped (pg_ctl -m ${mode}) and started again: capture resumes, one line each way`, async () => {
      const from = stream.log.text.length;
      await p.pg.stop(mode);
      await waitFor('the capturer to notice', async () => /postgres unreachable since/.test(stream.log.text.slice(from)), 60_000);
      await p.pg.restart();
      await waitFor('the capturer to be back', async () => /postgres reachable again after/.test(stream.log.text.slice(from)), 180_000);
      await flowing(`changes to flow again after the ${mode} restart`);
      const log = stream.log.text.slice(from);
      const down = lines(log, /postgres unreachable since/);
      assert.equal(down.length, 1, `one line when the outage starts:\n${story(log)}`);
      // The backoff starts again at every outage: the failure count was reset by the commits
      // since the last one. Capture's first failure says so, in the outage's line or, when the
      // health check saw the outage first, in capture's own (debug) line.
      const captureFirst = lines(log, /stream\.capture: postgres (unreachable since|still unreachable)/)[0];
      assert.ok(captureFirst, `capture's first failure of the outage:\n${story(log)}`);
      assert.match(captureFirst, /attempt=1 retry_in_ms=200\b/);
      assert.equal(lines(log, /postgres reachable again after/).length, 1, `one line when it ends:\n${story(log)}`);
      assert.doesNotMatch(log, /\n\s+at /, 'no stack trace');
      const others = lines(log, /^\S+ (WARN|ERROR) /).filter((l) => !/postgres unreachable since/.test(l));
      assert.deepEqual(others, [], 'no other warning or error during the outage');
    });
  }

  it('nothing lost or duplicated in any sink; Redis and BigQuery latest equal PostgreSQL', async () => {
    await writer.stop();
    const verdict = await judgeSinks(p);
    assert.deepEqual(verdict.problems, []);
    for (const [sink, t] of Object.entries(verdict.sinks)) assert.deepEqual(t, { lost: 0, duplicates: 0 }, sink);
    assert.ok(verdict.redis_matches_postgres && verdict.bigquery_latest_matches_postgres);
    assert.ok(verdict.events > 100, `events: ${verdict.events}`);
  });

  it('stops gracefully on SIGTERM after the restarts (exit 0)', async () => {
    stream.child.kill('SIGTERM');
    const code = await exitedWithin(stream.child, 120_000, 'SIGTERM');
    assert.equal(code, 0, stream.log.text.slice(-3000));
  });
});
