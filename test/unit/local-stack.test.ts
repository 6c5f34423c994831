import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { LOCAL_STACK } from '../../src/core/local-stack.js';

it('scripts/stack.env and src/core/local-stack.ts name the same ports and credentials', () => {
  const env = Object.fromEntries(
    readFileSync(new URL('../../../scripts/stack.env', import.meta.url), 'utf8')
      .split('\n')
      .filter((l) => /^[A-Z_]+=/.test(l))
      .map((l) => l.split('=', 2) as [string, string]),
  );
  assert.equal(Number(env['PG_PORT']), LOCAL_STACK.postgres.port);
  assert.equal(env['PG_USER'], LOCAL_STACK.postgres.user);
  assert.equal(env['PG_PASSWORD'], LOCAL_STACK.postgres.password);
  assert.equal(env['PG_DB'], LOCAL_STACK.postgres.database);
  assert.equal(`127.0.0.1:${env['KAFKA_PORT']}`, LOCAL_STACK.kafka.brokers[0]);
  assert.equal(Number(env['REDIS_PORT']), LOCAL_STACK.redis.port);
  assert.equal(`http://127.0.0.1:${env['BQ_PORT']}`, LOCAL_STACK.bigquery.apiEndpoint);
  assert.equal(env['BQ_PROJECT'], LOCAL_STACK.bigquery.projectId);
  assert.equal(`http://127.0.0.1:${env['HTTP_PORT']}/events`, LOCAL_STACK.http.url);
  assert.equal(Number(env['METRICS_PORT']), LOCAL_STACK.metrics.port);
  assert.equal(`http://127.0.0.1:${env['PROMETHEUS_PORT']}`, LOCAL_STACK.prometheus.url);
});
