import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { statusExitCode } from '../../src/commands/status.js';
import { readinessProblems } from '../../src/core/postgres/readiness.js';
import type { StatusReport } from '../../src/core/health/types.js';

const ready = { wal_level: 'logical', max_replication_slots: '10', max_wal_senders: '10', server_version: '15', slots_used: '1', is_replication_role: true };

describe('PostgreSQL readiness', () => {
  it('finds nothing wrong with a server set up for logical replication', () => {
    assert.deepEqual(readinessProblems(ready, 'app'), []);
  });
  it('says how to fix wal_level', () => {
    const [p] = readinessProblems({ ...ready, wal_level: 'replica' }, 'app');
    assert.equal(p?.problem, "wal_level is 'replica', logical replication needs 'logical'");
    assert.match(p?.fix ?? '', /ALTER SYSTEM SET wal_level = 'logical'.*restart PostgreSQL/);
  });
  it('says when no slot is free, and when the role may not replicate', () => {
    const problems = readinessProblems({ ...ready, slots_used: '10', is_replication_role: false }, 'app');
    assert.equal(problems.length, 2);
    assert.match(problems[0]!.problem, /no free replication slot \(10 of max_replication_slots=10/);
    assert.match(problems[1]!.fix, /ALTER ROLE "app" WITH REPLICATION/);
  });
});

describe('status exit code', () => {
  const report = (state: 'up' | 'down', problems = 0, stuck: StatusReport['stuck'] = null): StatusReport => {
    const c = { state, endpoint: '', rtt_ms: 1, detail: {} };
    return {
      checked_at: '',
      components: { postgres: c, kafka: c, redis: c, bigquery: c, http: { ...c, state: 'up' } },
      capture: { pipeline: 'p', slot: null, checkpoint: null, delivery: null, errors: [] },
      backfill: { runs: [], errors: [] },
      problems: Array.from({ length: problems }, () => ({ component: 'postgres' as const, problem: 'p', fix: 'f' })),
      warnings: [],
      stuck,
    };
  };
  it('is 0 when all is up and ready, 3 when something is down, 4 when up but not ready', () => {
    assert.equal(statusExitCode(report('up')), 0);
    assert.equal(statusExitCode(report('down')), 3);
    assert.equal(statusExitCode(report('up', 1)), 4);
    assert.equal(statusExitCode(report('down', 1)), 3);
  });
  it('is 3 when the running stream reports a stuck component; warnings alone leave it 0', () => {
    const stuck = [{ component: 'capture', seconds: 400, last_position: 'checkpoint 0/1', reason: 'capture has had work...' }];
    assert.equal(statusExitCode(report('up', 0, stuck)), 3);
    assert.equal(statusExitCode(report('up', 1, stuck)), 3);
    assert.equal(statusExitCode(report('up', 0, [])), 0);
    const warned = { ...report('up'), warnings: [{ kind: 'unbounded_slot_wal' as const, message: 'm', fix: 'f' }] };
    assert.equal(statusExitCode(warned), 0);
  });
});
