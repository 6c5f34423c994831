import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Config } from '../../src/core/config/types.js';
import { defaultConfig, loadConfig, redactConfig } from '../../src/core/config/index.js';
import { object, bool, breaker, intRange, retry, str } from '../../src/core/schema-kit.js';
import { configuredSinks } from '../../src/core/delivery/deliverer.js';
import type { Sink } from '../../src/core/sinks/contract.js';
import { ConfigError } from '../../src/core/errors.js';
import { probeComponents } from '../../src/core/health/components.js';
import { componentNames } from '../../src/core/health/types.js';
import { silentLogger } from '../../src/core/logger.js';
import type { AnySinkPlugin, SinkConfigBase } from '../../src/core/sinks/plugin.js';
import { SINK_NAMES, SINK_PLUGINS } from '../../src/core/sinks/registry.js';
import { pipelineConfig, sinksEnabledEnv } from '../../src/core/stress/run.js';
import type { SinkSide } from '../../src/core/verify/sink-side.js';
import { enabledVerifiableSinks, openSide, verifiableSinks, VERIFY_SIDES, type VerifySide } from '../../src/core/verify/sides.js';

/** A sink made of plain objects: what a new sink's folder would declare. */
interface FakeConfig extends SinkConfigBase {
  widgets: number;
  token: string;
}

const built: FakeConfig[] = [];
const fakeSink = (config: FakeConfig): Sink =>
  ({
    name: 'fake',
    storesOffsets: false,
    config,
    start: async () => {},
    write: async (records: unknown[]) => records.map(() => ({ ok: true })),
    healthCheck: async () => {},
    stop: async () => {},
  }) as unknown as Sink;

const fakePlugin: AnySinkPlugin = {
  name: 'fake',
  schema: object({ enabled: bool, widgets: intRange(1, 10), token: str(), retry: retry(false), breaker: breaker() }),
  defaults: (): FakeConfig => ({
    enabled: true,
    widgets: 3,
    token: '',
    retry: { retries: 2, initialDelayMs: 10, maxDelayMs: 100 },
    breaker: { consecutiveFailures: 1, halfOpenAfterMs: 1000 },
  }),
  problems: (c: FakeConfig) => (c.widgets === 7 ? ['sinks.fake.widgets: 7 is unlucky'] : []),
  endpoint: (c: FakeConfig) => `fake://${c.widgets}`,
  check: async (c: FakeConfig) => ({ rtt_ms: 1, detail: { widgets: c.widgets } }),
  build: async (c: FakeConfig) => {
    built.push(c);
    return fakeSink(c);
  },
};

const plugins = [...SINK_PLUGINS, fakePlugin];

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail('expected the config to be rejected');
}

const fakeOf = (config: Config): FakeConfig => (config.sinks as unknown as Record<string, FakeConfig>)['fake']!;

describe('sink registry', () => {
  it('lists the three sinks in their order', () => {
    assert.deepEqual(SINK_NAMES, ['redis', 'bigquery', 'http']);
    assert.deepEqual(Object.keys(defaultConfig().sinks), ['redis', 'bigquery', 'http']);
  });

  it('a registered sink gets its defaults, its schema, its environment variables and its own rules', () => {
    assert.equal(fakeOf(loadConfig({ env: {}, sinks: plugins })).widgets, 3);
    assert.equal(fakeOf(loadConfig({ env: { STREAMCTL_SINKS_FAKE_WIDGETS: '5' }, sinks: plugins })).widgets, 5);
    assert.deepEqual(problemsOf(() => loadConfig({ env: { STREAMCTL_SINKS_FAKE_WIDGETS: '11' }, sinks: plugins })), [
      'sinks.fake.widgets (from STREAMCTL_SINKS_FAKE_WIDGETS): must be an integer 1-10',
    ]);
    assert.deepEqual(problemsOf(() => loadConfig({ env: {}, sinks: plugins, flags: [{ path: ['sinks', 'fake', 'widgets'], value: 7 }] })), [
      'sinks.fake.widgets: 7 is unlucky',
    ]);
    assert.deepEqual(
      problemsOf(() => loadConfig({ env: {}, sinks: plugins, flags: [{ path: ['sinks', 'fake', 'retry', 'initialDelayMs'], value: 500 }] })),
      ['sinks.fake.retry.initialDelayMs: must not be larger than sinks.fake.retry.maxDelayMs (100)'],
    );
    // Without the registration the same setting is unknown.
    assert.match(problemsOf(() => loadConfig({ env: { STREAMCTL_SINKS_FAKE_WIDGETS: '5' } }))[0]!, /STREAMCTL_SINKS_FAKE_WIDGETS: unknown environment variable/);
  });

  it('a registered sink is a status component, checked by its own health check', async () => {
    assert.deepEqual(componentNames(plugins), ['postgres', 'kafka', 'redis', 'bigquery', 'http', 'fake']);
    const config = loadConfig({ env: {}, sinks: plugins, flags: [{ path: ['sinks', 'fake', 'widgets'], value: 4 }] });
    // Only the fake one is probed here: the others would need the stack.
    const results = await probeComponents(config, silentLogger, 1000, [fakePlugin]);
    const fake = results.find(([name]) => (name as string) === 'fake')?.[1];
    assert.deepEqual(fake?.health, { state: 'up', endpoint: 'fake://4', rtt_ms: 1, detail: { widgets: 4 } });
    const off = loadConfig({ env: { STREAMCTL_SINKS_FAKE_ENABLED: 'false' }, sinks: plugins });
    const disabled = (await probeComponents(off, silentLogger, 1000, [fakePlugin])).find(([name]) => (name as string) === 'fake')?.[1];
    assert.equal(disabled?.health.state, 'disabled');
  });

  it('the deliverer builds every enabled registered sink, and only those', async () => {
    built.length = 0;
    const config = loadConfig({ env: { STREAMCTL_SINKS_REDIS_ENABLED: 'false', STREAMCTL_SINKS_BIGQUERY_ENABLED: 'false', STREAMCTL_SINKS_HTTP_ENABLED: 'false' }, sinks: plugins });
    const sinks = await configuredSinks(config, silentLogger, plugins);
    assert.deepEqual(sinks.map((s) => s.sink.name), ['fake']);
    assert.deepEqual(sinks[0]!.retry, { retries: 2, initialDelayMs: 10, maxDelayMs: 100 });
    assert.equal(built.length, 1);
    const none = loadConfig({ env: { STREAMCTL_SINKS_REDIS_ENABLED: 'false', STREAMCTL_SINKS_BIGQUERY_ENABLED: 'false', STREAMCTL_SINKS_HTTP_ENABLED: 'false', STREAMCTL_SINKS_FAKE_ENABLED: 'false' }, sinks: plugins });
    assert.deepEqual(await configuredSinks(none, silentLogger, plugins), []);
  });

  it('the registered sinks name their secrets, and redaction covers them', () => {
    const config = defaultConfig();
    config.sinks.redis.password = 'redis-secret';
    config.sinks.http.hmacKey = 'hmac-secret';
    config.sinks.bigquery.credentialsJson = '{"k":"v"}';
    const shown = redactConfig(config);
    assert.equal(shown.sinks.redis.password, '[redacted]');
    assert.equal(shown.sinks.http.hmacKey, '[redacted]');
    assert.equal(shown.sinks.bigquery.credentialsJson, '[redacted]');
  });

  it('stress-test turns a registered sink on or off in the pipeline it spawns, with the others', () => {
    assert.deepEqual(sinksEnabledEnv(['http', 'fake'], plugins), {
      STREAMCTL_SINKS_REDIS_ENABLED: 'false',
      STREAMCTL_SINKS_BIGQUERY_ENABLED: 'false',
      STREAMCTL_SINKS_HTTP_ENABLED: 'true',
      STREAMCTL_SINKS_FAKE_ENABLED: 'true',
    });
    const base = loadConfig({ env: {}, sinks: plugins, flags: [{ path: ['sinks', 'fake', 'widgets'], value: 4 }] });
    const own = pipelineConfig(base, 'st_x', 'public.load', ['redis', 'fake'], plugins);
    assert.deepEqual(Object.keys(own.sinks), ['redis', 'bigquery', 'http', 'fake']);
    assert.deepEqual(
      Object.entries(own.sinks).map(([name, c]) => [name, (c as { enabled: boolean }).enabled]),
      [['redis', true], ['bigquery', false], ['http', false], ['fake', true]],
    );
    assert.equal(fakeOf(own).widgets, 4, 'the sink keeps its own settings');
    assert.equal(own.sinks.redis.keyPrefix, 'st_x:');
    assert.equal(own.sinks.bigquery.dataset, 'st_x');
  });

  it('verify compares the registered sinks that have a side, in registry order; a fake one with a side too', async () => {
    assert.deepEqual(verifiableSinks(), ['redis', 'bigquery'], 'HTTP has no read model to compare');
    const fakeSide: VerifySide = { sink: 'fake', open: async () => ({ name: 'fake' }) as unknown as SinkSide<string> };
    assert.deepEqual(verifiableSinks(plugins, [...VERIFY_SIDES, fakeSide]), ['redis', 'bigquery', 'fake']);
    assert.deepEqual(verifiableSinks(SINK_PLUGINS, [...VERIFY_SIDES, fakeSide]), ['redis', 'bigquery'], 'a side of a sink not registered is not used');
    const config = loadConfig({ env: { STREAMCTL_SINKS_REDIS_ENABLED: 'false' }, sinks: plugins });
    assert.deepEqual(enabledVerifiableSinks(config, plugins, [...VERIFY_SIDES, fakeSide]), ['bigquery', 'fake']);
    assert.equal((await openSide('fake', config, silentLogger, [...VERIFY_SIDES, fakeSide])).name, 'fake');
    assert.throws(() => openSide('http', config, silentLogger, VERIFY_SIDES), /verify cannot compare the http sink \(it can compare redis, bigquery\)/);
  });
});
