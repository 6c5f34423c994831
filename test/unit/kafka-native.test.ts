import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type { Logger } from '../../src/core/logger.js';
import { forwardLogs, isBrokenTransaction, isKafkaBrokerChurn, isNativeFenced, librdkafkaSettings } from '../../src/core/clients/librdkafka.js';
import { isFenced } from '../../src/core/kafka/retry.js';
import { logRetried, seekUntilApplied } from '../../src/core/clients/batch-consumer.js';
import { outageFailure, outageRecovered, resetOutages } from '../../src/core/outages.js';
import { stackConfig } from '../helpers/stack.js';

function recordingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger: Logger = {
    debug: (m) => void lines.push(`debug ${m}`),
    info: (m) => void lines.push(`info ${m}`),
    warn: (m) => void lines.push(`warn ${m}`),
    error: (m) => void lines.push(`error ${m}`),
    child: () => logger,
  };
  return { logger, lines };
}

describe('librdkafka settings and logs', () => {
  it('tells the broker restarting or moving a coordinator from other failures', () => {
    // The failure server-restarts saw 4 s after the broker came back (code 16, NOT_COORDINATOR).
    const notCoordinator = Object.assign(new Error('Failed to commit offsets to transaction on broker 127.0.0.1:35985/1: p.checkpoints((null))[0](Broker: Not coordinator) (after 43ms)'), { code: 16 });
    assert.equal(isKafkaBrokerChurn(notCoordinator), true);
    assert.equal(isKafkaBrokerChurn(Object.assign(new Error('Broker: Coordinator load in progress'), { code: -1 })), true, 'by its text when the code is -1');
    assert.equal(isKafkaBrokerChurn(new Error('the replication stream timed out')), false, 'our own timeouts are not Kafka');
    assert.equal(isKafkaBrokerChurn(Object.assign(new Error('Broker: Topic authorization failed'), { code: 29 })), false);
    assert.equal(isKafkaBrokerChurn(null), false);
  });

  it('turns KafkaConfig into librdkafka settings', () => {
    const kafka = { ...stackConfig().kafka, brokers: ['k1:9092', 'k2:9092'], clientId: 'me', retry: { retries: 'forever' as const, initialDelayMs: 300, maxDelayMs: 30_000 } };
    const s = librdkafkaSettings(kafka, { connectionTimeoutMs: 5000 });
    assert.equal(s['bootstrap.servers'], 'k1:9092,k2:9092');
    assert.equal(s['client.id'], 'me');
    assert.equal(s['socket.connection.setup.timeout.ms'], 5000);
    // Request retries start short (CONCURRENT_TRANSACTIONS after each commit), reconnects at the configured delay.
    assert.equal(s['retry.backoff.ms'], 5);
    assert.equal(s['retry.backoff.max.ms'], 30_000);
    assert.equal(s['reconnect.backoff.ms'], 300);
    assert.equal(s['reconnect.backoff.max.ms'], 30_000);
  });

  it('forwards routine retries at debug, real errors at error and warnings at warn', () => {
    const { logger, lines } = recordingLogger();
    const client = new EventEmitter();
    forwardLogs(client as never, logger);
    client.emit('event.log', { severity: 3, fac: 'FAIL', message: '127.0.0.1:19092/1: Connect to ipv4#127.0.0.1:19092 failed: Connection refused' });
    client.emit('event.log', { severity: 3, fac: 'TXNERR', message: 'Current transaction failed in state InTransaction: Message size too large' });
    client.emit('event.log', { severity: 4, fac: 'CONFWARN', message: 'Configuration property x is deprecated' });
    client.emit('event.log', { severity: 7, fac: 'MSG', message: 'detail' });
    // Seen after each SIGKILL of crash:capture: the dead producer's transaction is still being aborted.
    client.emit('event.log', { severity: 4, fac: 'GETPID', message: '[thrd:main]: Failed to acquire transactional PID from broker TxnCoordinator/1: Broker: Producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing: retrying' });
    client.emit('event.error', Object.assign(new Error('Local: All broker connections are down'), { code: -187 }));
    client.emit('event.error', Object.assign(new Error('Local: This instance has been fenced by a newer instance'), { code: -144, isFatal: true }));
    assert.deepEqual(lines, [
      'debug 127.0.0.1:19092/1: Connect to ipv4#127.0.0.1:19092 failed: Connection refused',
      'error Current transaction failed in state InTransaction: Message size too large',
      'warn Configuration property x is deprecated',
      'debug detail',
      'debug [thrd:main]: Failed to acquire transactional PID from broker TxnCoordinator/1: Broker: Producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing: retrying',
      'debug Local: All broker connections are down',
      'error Local: This instance has been fenced by a newer instance',
    ]);
  });

  it('logs a refused offset commit as a warning, but at debug while Kafka is down or just back (a broker restart)', () => {
    const { logger, lines } = recordingLogger();
    const client = new EventEmitter();
    forwardLogs(client as never, logger);
    const refused = { severity: 4, fac: 'COMMITFAIL', message: '[thrd:main]: Offset commit (manual) failed for 1/1 partition(s) in join-state wait-unassign-to-complete: Broker: Unknown member: t[0]@181(Broker: Unknown member)' };
    resetOutages();
    client.emit('event.log', refused);
    outageFailure(logger, 'kafka', new Error('all broker connections are down'), 'test');
    client.emit('event.log', refused);
    outageRecovered(logger, 'kafka', 'test');
    client.emit('event.log', refused);
    resetOutages();
    const commits = lines.filter((l) => l.includes('Offset commit'));
    assert.deepEqual(commits, [`warn ${refused.message}`, `debug ${refused.message}`, `debug ${refused.message}`]);
  });

  it('a failed read or batch retried: a warning, but debug for a coordinator moving or Kafka away', () => {
    const { logger, lines } = recordingLogger();
    resetOutages();
    logRetried(logger, 'batch failed; reading it again', new Error('Broker: Not coordinator'), { partition: 1 });
    logRetried(logger, 'batch failed; reading it again', Object.assign(new Error('x'), { code: 16 }), { partition: 1 });
    logRetried(logger, 'kafka read failed; retrying', new Error('Local: Broker transport failure'), {});
    logRetried(logger, 'batch failed; reading it again', new Error('the sink said no'), { partition: 0 });
    outageFailure(logger, 'kafka', new Error('all broker connections are down'), 'test');
    logRetried(logger, 'batch failed; reading it again', new Error('the sink said no'), { partition: 0 });
    resetOutages();
    assert.deepEqual(lines, [
      'debug batch failed; reading it again',
      'debug batch failed; reading it again',
      'debug kafka read failed; retrying',
      'warn batch failed; reading it again',
      'warn kafka unreachable since ' + lines[4]!.slice('warn kafka unreachable since '.length),
      'debug batch failed; reading it again',
    ]);
  });

  it('a seek that fails is tried again while it matters, and says whether it was applied', async () => {
    const run = async (outcomes: Array<Error | null>, wanted: () => boolean = () => true) => {
      const waits: number[] = [];
      const retries: number[] = [];
      let calls = 0;
      const applied = await seekUntilApplied(
        async () => outcomes[calls++] ?? null,
        wanted,
        (_err, attempt) => void retries.push(attempt),
        3,
        async (ms) => void waits.push(ms),
      );
      return { applied, calls, waits, retries };
    };
    const failed = new Error('Local: Erroneous state');
    assert.deepEqual(await run([null]), { applied: true, calls: 1, waits: [], retries: [] });
    assert.deepEqual(await run([failed, failed, null]), { applied: true, calls: 3, waits: [100, 200], retries: [1, 2] });
    assert.deepEqual(await run([failed, failed, failed, null]), { applied: false, calls: 3, waits: [100, 200], retries: [1, 2, 3] });
    assert.deepEqual(await run([failed, null], () => false), { applied: false, calls: 1, waits: [], retries: [] }, 'revoked or sought again: not retried');
  });

  it('knows a fenced producer by librdkafka code (-144, PRODUCER_FENCED, INVALID_PRODUCER_EPOCH), not other fatal errors', () => {
    for (const code of [-144, 90, 47]) assert.ok(isNativeFenced({ code }) && isFenced({ code, message: 'x' }), String(code));
    assert.ok(!isFenced({ code: -150, message: 'Local: Fatal error: Broker: out of order sequence' }));
    assert.ok(!isFenced({ code: 10, message: 'Broker: Message size too large' }));
  });

  it('tells a transaction a broker restart broke from a fencing and from other errors', () => {
    assert.ok(isBrokenTransaction({ code: -1, message: 'producer attempted a transactional operation in an invalid state' }));
    assert.ok(isBrokenTransaction({ code: 48, message: 'Broker: Producer attempted a transactional operation in an invalid state' }));
    assert.ok(isBrokenTransaction({ code: -150, isFatal: true, message: 'Local: Fatal error' }));
    assert.ok(!isBrokenTransaction({ code: -144, isFatal: true, message: 'Local: This instance has been fenced by a newer instance' }));
    assert.ok(!isBrokenTransaction(new Error('invalid input syntax for type integer')));
  });
});
