import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import type { Logger } from '../../src/core/logger.js';
import { startReadBacks } from '../../src/core/capture/read-backs.js';
import { KafkaLostCommitError, VerifiedConfirms } from '../../src/core/capture/verified-confirms.js';

const lines: Array<[string, string]> = [];
const logger: Logger = {
  debug: (m) => void lines.push(['debug', m]),
  info: (m) => void lines.push(['info', m]),
  warn: (m) => void lines.push(['warn', m]),
  error: (m) => void lines.push(['error', m]),
  child: () => logger,
};
/** Lets the read's promise callbacks run after a timer tick. */
const settle = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

describe('capture reads its checkpoint back', () => {
  beforeEach(() => {
    lines.length = 0;
    mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_000_000 });
  });
  afterEach(() => mock.timers.reset());

  const start = (verified: VerifiedConfirms, readShown: () => Promise<number>, extra: { away?: () => boolean; lost?: (e: KafkaLostCommitError) => void } = {}) =>
    startReadBacks({ verified, readShown, lost: extra.lost ?? (() => {}), logger, kafkaAway: extra.away ?? (() => false), everyMs: 1000, failingMs: 60_000, lastMs: 5000 });

  it('reads only while an LSN waits, and confirms what the read shows', async () => {
    const confirmed: bigint[] = [];
    const verified = new VerifiedConfirms(10, (lsn) => confirmed.push(lsn));
    let reads = 0;
    const r = start(verified, async () => (reads++, 20));
    mock.timers.tick(3000);
    await settle();
    assert.equal(reads, 0, 'nothing waits: no read');
    verified.handedOver(20);
    verified.committed(100n, 20);
    mock.timers.tick(1000);
    await settle();
    assert.deepEqual(confirmed, [100n]);
    mock.timers.tick(5000);
    await settle();
    assert.equal(reads, 1);
    r.stop();
  });

  it('a read showing less than a commit answered before it began reports the commit lost; one still in flight does not', async () => {
    const inFlight = new VerifiedConfirms(10, () => {});
    const none: KafkaLostCommitError[] = [];
    const r0 = start(inFlight, async () => 10, { lost: (e) => none.push(e) });
    inFlight.handedOver(20);
    inFlight.unwritten(130n); // a keepalive waiting for the batch in flight (checkpoint 20, not answered yet)
    mock.timers.tick(1000);
    await settle();
    assert.deepEqual(none, []);
    r0.stop();

    const verified = new VerifiedConfirms(10, () => {});
    const lost: KafkaLostCommitError[] = [];
    const r = start(verified, async () => 10, { lost: (e) => lost.push(e) });
    verified.handedOver(20);
    verified.committed(100n, 20);
    mock.timers.tick(1000);
    await settle();
    assert.equal(lost.length, 1);
    assert.deepEqual([lost[0]!.shown, lost[0]!.answered], [10, 20]);
    r.stop();
  });

  it('reads failing a minute are said once (not while Kafka is away), and their end', async () => {
    const verified = new VerifiedConfirms(10, () => {});
    let failing = true;
    let away = true;
    const r = start(verified, async () => {
      if (failing) throw new Error('kafka: request fetchOffsets timed out');
      return 20;
    }, { away: () => away });
    verified.handedOver(20);
    verified.committed(100n, 20);
    for (let s = 0; s < 90; s++) {
      mock.timers.tick(1000);
      await settle();
    }
    assert.deepEqual(lines.filter(([l]) => l !== 'debug'), [], 'Kafka away: its outage says it');
    away = false;
    for (let s = 0; s < 90; s++) {
      mock.timers.tick(1000);
      await settle();
    }
    assert.equal(lines.filter(([l]) => l === 'warn').length, 1);
    assert.match(lines.find(([l]) => l === 'warn')![1], /cannot read its checkpoint back/);
    failing = false;
    mock.timers.tick(1000);
    await settle();
    assert.match(lines.at(-1)![1], /reads its checkpoint back from Kafka again/);
    r.stop();
  });

  it('a graceful stop reads once more, so the last commits are confirmed', async () => {
    const confirmed: bigint[] = [];
    const verified = new VerifiedConfirms(10, (lsn) => confirmed.push(lsn));
    const r = start(verified, async () => 30);
    verified.handedOver(30);
    verified.committed(100n, 30);
    r.stop();
    await r.last();
    assert.deepEqual(confirmed, [100n]);
  });
});
