import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../../src/core/errors.js';
import { defaultConfig, derivedNames, envNameFor, loadConfig, redactConfig, Redactor, REDACTED } from '../../src/core/config/index.js';
import { EXIT } from '../../src/core/exit-codes.js';
import { tempDir } from '../helpers/temp-dir.js';

const dir = tempDir('streamctl-config-');
const yamlFile = (name: string, text: string): string => {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
};

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.exitCode, EXIT.USAGE);
    return err.problems;
  }
  assert.fail('expected the config to be rejected');
}

describe('config', () => {
  it('accepts the defaults with no file and no environment', () => {
    assert.deepEqual(loadConfig({ env: {} }), defaultConfig());
  });

  it('has the retry defaults of ARCHITECTURE.md', () => {
    const c = defaultConfig();
    assert.equal(c.sinks.redis.retry.retries, 3);
    assert.equal(c.sinks.bigquery.retry.retries, 5);
    assert.equal(c.sinks.bigquery.retry.maxDelayMs, 60_000);
    assert.equal(c.sinks.http.retry.retries, 3);
    assert.equal(c.kafka.retry.retries, 'forever');
  });

  it('lists every problem at once, each with its path', () => {
    const file = yamlFile(
      'many.yaml',
      `postgres:\n  port: 99999\n  host: ""\nkafka:\n  brokers: []\n  partitions: 0\nsinks:\n  http:\n    url: ftp://x\n  redis:\n    db: 99\nlog:\n  level: loud\nmetrics:\n  port: "abc"\n`,
    );
    const problems = problemsOf(() => loadConfig({ file, env: {} }));
    const expected = [
      'postgres.port: must be an integer 1-65535',
      'postgres.host: must be a host name or address (no scheme, no spaces)',
      "kafka.brokers: must name at least one broker ('host:port')",
      'kafka.partitions: must be an integer 1-10000',
      'sinks.http.url: must be an http:// or https:// URL',
      'sinks.redis.db: must be an integer 0-15',
      'log.level: must be one of debug, info, warn, error',
      'metrics.port: must be an integer 0-65535',
    ];
    for (const line of expected) assert.ok(problems.includes(line), `missing '${line}' in:\n${problems.join('\n')}`);
    assert.equal(problems.length, expected.length, problems.join('\n'));
  });

  it('names an unknown setting and suggests the near one', () => {
    const file = yamlFile('typo.yaml', 'postgres:\n  prot: 5432\nsink:\n  redis: {}\n');
    const problems = problemsOf(() => loadConfig({ file, env: {} }));
    assert.ok(problems.includes('postgres.prot: unknown setting (did you mean port or slot?)'), problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('sink: unknown setting (did you mean sinks?)')), problems.join('\n'));
  });

  it('reports unreadable and malformed files with where', () => {
    assert.match(problemsOf(() => loadConfig({ file: path.join(dir, 'nope.yaml'), env: {} }))[0]!, /cannot read the file \(ENOENT\)/);
    const bad = yamlFile('bad.yaml', 'postgres:\n  port: [1,\n');
    assert.match(problemsOf(() => loadConfig({ file: bad, env: {} }))[0]!, /not valid YAML at line \d+, column \d+/);
  });

  it('applies STREAMCTL_* overrides with types taken from the schema', () => {
    const c = loadConfig({
      env: {
        STREAMCTL_POSTGRES_PORT: '6543',
        STREAMCTL_KAFKA_BROKERS: 'a:1, b:2',
        STREAMCTL_SINKS_REDIS_ENABLED: 'false',
        STREAMCTL_SINKS_HTTP_RETRY_MAX_DELAY_MS: '20000',
        STREAMCTL_KAFKA_RETRY_RETRIES: '7',
        STREAMCTL_KAFKA_REPLICATION_FACTOR: '2',
      },
    });
    assert.equal(c.postgres.port, 6543);
    assert.deepEqual(c.kafka.brokers, ['a:1', 'b:2']);
    assert.equal(c.sinks.redis.enabled, false);
    assert.equal(c.sinks.http.retry.maxDelayMs, 20000);
    assert.equal(c.kafka.retry.retries, 7);
  });

  it('derives variable names from camelCase paths', () => {
    assert.equal(envNameFor(['sinks', 'http', 'hmacKeyFile']), 'STREAMCTL_SINKS_HTTP_HMAC_KEY_FILE');
    assert.equal(envNameFor(['postgres', 'port']), 'STREAMCTL_POSTGRES_PORT');
  });

  it('says which variable a bad value came from, and rejects unknown variables', () => {
    const problems = problemsOf(() => loadConfig({ env: { STREAMCTL_SINKS_REDIS_PORT: 'abc', STREAMCTL_REDIS_PORT: '1' } }));
    assert.ok(problems.includes('sinks.redis.port (from STREAMCTL_SINKS_REDIS_PORT): must be an integer 1-65535'), problems.join('\n'));
    assert.ok(problems.includes('STREAMCTL_REDIS_PORT: unknown environment variable (not a streamctl setting)'), problems.join('\n'));
  });

  it('checks rules across fields', () => {
    const file = yamlFile(
      'cross.yaml',
      'sinks:\n  http:\n    hmacKey: abcdefgh\n    hmacKeyFile: /k\n    retry: {retries: 3, initialDelayMs: 5000, maxDelayMs: 100}\n  bigquery:\n    credentialsJson: "{not json secretvalue"\n',
    );
    const problems = problemsOf(() => loadConfig({ file, env: {} }));
    assert.ok(problems.includes('sinks.http.hmacKeyFile: set either hmacKey or hmacKeyFile, not both'));
    assert.ok(problems.includes('sinks.http.retry.initialDelayMs: must not be larger than sinks.http.retry.maxDelayMs (100)'));
    assert.ok(problems.some((p) => p.startsWith('sinks.bigquery.credentialsJson: is not valid JSON')));
    assert.ok(!problems.join('\n').includes('secretvalue'), 'a secret value must not be echoed');
  });

  it('requires a signing key when the HTTP sink is on', () => {
    const problems = problemsOf(() => loadConfig({ env: { STREAMCTL_SINKS_HTTP_HMAC_KEY_FILE: '' } }));
    assert.ok(problems.some((p) => p.startsWith('sinks.http.hmacKey: the HTTP sink signs every request')));
    assert.doesNotThrow(() => loadConfig({ env: { STREAMCTL_SINKS_HTTP_HMAC_KEY_FILE: '', STREAMCTL_SINKS_HTTP_ENABLED: 'no' } }));
  });

  it('resolves relative file paths against the config file', () => {
    const file = yamlFile('paths.yaml', 'sinks:\n  http:\n    hmacKeyFile: keys/hmac.key\n');
    assert.equal(loadConfig({ file, env: {} }).sinks.http.hmacKeyFile, path.join(dir, 'keys/hmac.key'));
  });

  it('lets flags win over the environment', () => {
    const c = loadConfig({ env: { STREAMCTL_LOG_LEVEL: 'warn' }, flags: [{ path: ['log', 'level'], value: 'debug' }] });
    assert.equal(c.log.level, 'debug');
  });

  it('derives slot, topics and transactional id from the pipeline id', () => {
    const names = derivedNames(loadConfig({ env: { STREAMCTL_PIPELINE_ID: 'orders', STREAMCTL_PIPELINE_TOPIC_PREFIX: 'shop' } }));
    assert.equal(names.slot, 'streamctl_orders');
    assert.equal(names.changesTopic, 'shop.changes');
    assert.equal(names.checkpointsTopic, 'shop.checkpoints');
    assert.equal(names.dlqTopic, 'shop.dlq');
    assert.equal(names.transactionalId, 'streamctl-capture-orders');
  });
});

describe('secrets', () => {
  const config = loadConfig({
    env: {
      STREAMCTL_POSTGRES_PASSWORD: 'pg-pass-123',
      STREAMCTL_SINKS_REDIS_PASSWORD: 'redis-pass-456',
      STREAMCTL_SINKS_HTTP_HMAC_KEY: 'hmac-key-789',
      STREAMCTL_SINKS_HTTP_HMAC_KEY_FILE: '',
      STREAMCTL_SINKS_BIGQUERY_CREDENTIALS_JSON: '{"private_key":"-----BEGIN KEY-----abc"}',
    },
  });

  it('redacts every secret in a printable copy and leaves the original alone', () => {
    const text = JSON.stringify(redactConfig(config));
    for (const secret of ['pg-pass-123', 'redis-pass-456', 'hmac-key-789', 'BEGIN KEY']) assert.ok(!text.includes(secret), secret);
    assert.equal(redactConfig(config).postgres.password, REDACTED);
    assert.equal(config.postgres.password, 'pg-pass-123');
  });

  it('scrubs secrets out of free text such as driver errors', () => {
    const r = Redactor.forConfig(config, ['file-secret-000']);
    const out = r.redact('password authentication failed: pg-pass-123 / hmac-key-789 / file-secret-000');
    assert.equal(out, `password authentication failed: ${REDACTED} / ${REDACTED} / ${REDACTED}`);
  });

  it('does not mangle text for an empty or tiny secret', () => {
    assert.equal(new Redactor(['', 'a']).redact('a banana'), 'a banana');
  });
});

describe('config/streamctl.example.yaml', () => {
  it('is valid and equals the defaults (so it documents them truthfully)', () => {
    const example = loadConfig({ file: new URL('../../../config/streamctl.example.yaml', import.meta.url).pathname, env: {} });
    assert.deepEqual(example, defaultConfig());
  });
  it('writes out every setting (a section left out would still equal the defaults above)', () => {
    const raw = parseYaml(readFileSync(new URL('../../../config/streamctl.example.yaml', import.meta.url), 'utf8')) as unknown;
    const missing = settingPaths(defaultConfig()).filter((p) => !hasPath(raw, p));
    assert.deepEqual(missing, []);
  });
});

/** Leaf paths of a settings tree; an empty map (enrich.tables) is itself a setting. */
function settingPaths(value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Object.keys(value).length === 0) return [prefix];
  return Object.entries(value).flatMap(([k, v]) => settingPaths(v, prefix ? `${prefix}.${k}` : k));
}

function hasPath(tree: unknown, dotted: string): boolean {
  let at: unknown = tree;
  for (const part of dotted.split('.')) {
    if (at === null || typeof at !== 'object' || !(part in at)) return false;
    at = (at as Record<string, unknown>)[part];
  }
  return true;
}

describe('enrichment and validation settings', () => {
  it('needs a mask key when a table masks columns, and resolves files against the config file', () => {
    const file = yamlFile('enrich.yaml', 'enrich:\n  tables:\n    public.users: { mask: [email] }\n');
    const problems = problemsOf(() => loadConfig({ file, env: {} }));
    assert.ok(problems.some((p) => p.startsWith('enrich.maskKey: public.users mask columns')), problems.join('\n'));
    const ok = yamlFile('enrich-ok.yaml', 'enrich:\n  maskKeyFile: keys/mask.key\n  tables:\n    public.users: { mask: [email], drop: [pw] }\nvalidation:\n  tables:\n    public.users: schemas/users.json\n');
    const c = loadConfig({ file: ok, env: {} });
    assert.equal(c.enrich.maskKeyFile, path.join(dir, 'keys/mask.key'));
    assert.equal(c.validation.tables['public.users'], path.join(dir, 'schemas/users.json'));
    assert.deepEqual(c.enrich.tables['public.users']?.drop, ['pw']);
  });
  it('rejects a table name that is not schema.table and a non-list of columns', () => {
    const file = yamlFile('enrich-bad.yaml', 'enrich:\n  maskKey: abcdefgh\n  tables:\n    users: { drop: [a] }\n    public.x: { drop: a }\n');
    const problems = problemsOf(() => loadConfig({ file, env: {} }));
    assert.ok(problems.some((p) => p.includes("table names must be 'schema.table'")), problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith("enrich.tables.public.x.drop: must be a list of column names")), problems.join('\n'));
  });
});
