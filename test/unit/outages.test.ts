import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import type { Logger, LogFields } from '../../src/core/logger.js';
import { isBrokerUnreachable, openOutages, outageFailure, outageRecovered, resetOutages, serverOf } from '../../src/core/outages.js';

function recorder(): Logger & { lines: Array<[string, string, LogFields | undefined]> } {
  const lines: Array<[string, string, LogFields | undefined]> = [];
  const logger = {
    lines,
    debug: (m: string, f?: LogFields) => void lines.push(['debug', m, f]),
    info: (m: string, f?: LogFields) => void lines.push(['info', m, f]),
    warn: (m: string, f?: LogFields) => void lines.push(['warn', m, f]),
    error: (m: string, f?: LogFields) => void lines.push(['error', m, f]),
    child: () => logger,
  };
  return logger;
}

const ports = { postgres: 5432, kafka: [9092, 9093] };

describe('outages: one line when a server goes away, one when it is back', () => {
  beforeEach(() => resetOutages());

  it('logs the first failure of an outage as a warning and every retry after it at debug', () => {
    const log = recorder();
    assert.equal(outageFailure(log, 'kafka', new Error('connect ECONNREFUSED 127.0.0.1:9092'), 'capture'), true);
    for (let i = 0; i < 50; i++) assert.equal(outageFailure(log, 'kafka', new Error('connect ECONNREFUSED 127.0.0.1:9092'), 'sink redis'), false);
    assert.deepEqual(log.lines.map(([level]) => level).filter((l) => l !== 'debug'), ['warn']);
    assert.match(log.lines[0]![1], /^kafka unreachable since \d{4}-\d\d-\d\dT.*\(seen by capture\)/);
    assert.deepEqual(openOutages().map((o) => [o.server, o.retries]), [['kafka', 50]]);
  });

  it('logs the end once, with how long it lasted', async () => {
    const log = recorder();
    outageFailure(log, 'postgres', new Error('Connection terminated unexpectedly'), 'capture');
    await new Promise((r) => setTimeout(r, 1100));
    outageRecovered(log, 'postgres', 'capture');
    outageRecovered(log, 'postgres', 'capture');
    const info = log.lines.filter(([level]) => level === 'info');
    assert.equal(info.length, 1);
    assert.match(info[0]![1], /^postgres reachable again after 1(\.\d)? s down \(0 retries; capture resumed\)$/);
    assert.equal(openOutages().length, 0);
  });

  it('a new connection ends an outage at once, however short', () => {
    const log = recorder();
    outageFailure(log, 'postgres', new Error('Connection terminated unexpectedly'), 'capture');
    outageRecovered(log, 'postgres', 'capture');
    assert.equal(openOutages().length, 0);
    assert.match(log.lines.at(-1)![1], /^postgres reachable again after 0 s down/);
  });

  it('a request that times out just after the server is back belongs to the outage that ended; a refusal opens a new one', () => {
    const log = recorder();
    outageFailure(log, 'kafka', new Error('connect ECONNREFUSED 127.0.0.1:9092'), 'capture');
    outageRecovered(log, 'kafka', 'sink redis');
    assert.equal(outageFailure(log, 'kafka', Object.assign(new Error('Local: Timed out'), { code: -185 }), 'capture'), false);
    assert.deepEqual(openOutages(), []);
    assert.equal(log.lines.filter(([level]) => level === 'warn').length, 1);
    assert.equal(outageFailure(log, 'kafka', new Error('connect ECONNREFUSED 127.0.0.1:9092'), 'capture'), true);
    assert.equal(openOutages().length, 1);
  });

  it('an answer to a request sent before the outage began does not end it; one sent since does', async () => {
    const log = recorder();
    const sentBefore = Date.now() - 50; // a commit in flight when a broker on SIGTERM stopped taking connections
    outageFailure(log, 'kafka', new Error('connect ECONNREFUSED 127.0.0.1:9092'), 'the kafka client');
    outageRecovered(log, 'kafka', 'capture', sentBefore);
    assert.equal(openOutages().length, 1, 'still open');
    assert.equal(log.lines.filter(([level]) => level === 'info').length, 0);
    await new Promise((r) => setTimeout(r, 5));
    outageRecovered(log, 'kafka', 'capture', Date.now());
    assert.deepEqual(openOutages(), []);
    assert.equal(log.lines.filter(([level]) => level === 'info').length, 1);
    assert.equal(log.lines.filter(([level]) => level === 'warn').length, 1);
  });

  it('outages of different servers are separate', () => {
    const log = recorder();
    assert.equal(outageFailure(log, 'kafka', 'x', 'capture'), true);
    assert.equal(outageFailure(log, 'postgres', 'y', 'capture'), true);
    assert.equal(log.lines.filter(([l]) => l === 'warn').length, 2);
  });

  it('tells which server an error came from', () => {
    const named = (name: string, message: string) => Object.assign(new Error(message), { name });
    assert.equal(serverOf(named('KafkaJSConnectionError', 'Connection error: connect ECONNREFUSED 127.0.0.1:9092'), ports), 'kafka');
    assert.equal(serverOf(named('KafkaJSNumberOfRetriesExceeded', 'x'), ports), 'kafka');
    // A protocol answer during start-up is not an outage.
    assert.equal(serverOf(named('KafkaJSProtocolError', 'This is not the correct coordinator for this group'), ports), undefined);
    assert.equal(serverOf(new Error('connect ECONNREFUSED 127.0.0.1:5432'), ports), 'postgres');
    assert.equal(serverOf(new Error('connect ECONNREFUSED 127.0.0.1:9093'), ports), 'kafka');
    assert.equal(serverOf(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }), ports), 'postgres');
    assert.equal(serverOf(Object.assign(new Error('could not extend file'), { code: '53100' }), ports), 'postgres');
    assert.equal(serverOf(new Error('the replication stream ended'), ports), 'postgres');
    assert.equal(serverOf(new Error('wrapped', { cause: new Error('connect ECONNREFUSED 127.0.0.1:5432') }), ports), 'postgres');
    assert.equal(serverOf(new Error('duplicate key value violates unique constraint'), ports), undefined);
    assert.equal(serverOf(new Error('read ECONNRESET'), ports), undefined, 'a bare reset names no server: the caller probes');
    // librdkafka's errors: a numeric code, and only the text says what happened.
    assert.equal(serverOf(Object.assign(new Error('Local: Timed out'), { code: -185 }), ports), 'kafka');
    assert.equal(serverOf(Object.assign(new Error('Local: Broker transport failure'), { code: -195 }), ports), 'kafka');
    assert.equal(serverOf(Object.assign(new Error('Broker: Topic authorization failed'), { code: 29 }), ports), undefined);
    // A sink's refused connection on a port that is neither PostgreSQL's nor Kafka's is no outage of theirs.
    assert.equal(serverOf(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:19050'), { code: 'ECONNREFUSED' }), ports), undefined);
  });

  it('reads kafkajs log lines of an unreachable broker', () => {
    assert.equal(isBrokerUnreachable('Connection error: connect ECONNREFUSED 127.0.0.1:9092'), true);
    assert.equal(isBrokerUnreachable('Failed to send messages', { error: 'Messages are rejected since there are fewer in-sync replicas than required' }), true);
    assert.equal(isBrokerUnreachable('Restarting the consumer in 300ms'), true);
    assert.equal(isBrokerUnreachable('The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing'), false);
  });
});

describe('routine broker answers (both clients\' wording)', () => {
  it('a coordinator loading or awaited after a restart is routine, a refused record is not', async () => {
    const { isRoutineRetry } = await import('../../src/core/clients/rdkafka.js');
    assert.equal(isRoutineRetry('The coordinator is loading and hence can\'t process requests', {}), true);
    assert.equal(isRoutineRetry('Failed to commit offsets to transaction on broker 127.0.0.1:34511/1: t.checkpoints((null))[0](Broker: Coordinator load in progress) (after 124ms)', {}), true);
    assert.equal(isRoutineRetry('Offset commit (manual) failed: Local: Waiting for coordinator', {}), true);
    assert.equal(isRoutineRetry('Broker: Message size too large', {}), false);
  });
});
