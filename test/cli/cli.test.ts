import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/run-cli.js';
import { tempDir } from '../helpers/temp-dir.js';

const SUBCOMMANDS: Record<string, string[]> = {
  stream: ['--role <role>'],
  backfill: ['--table <schema.table>', '--where <sql>', '--chunk-size <rows>', '--rate <rows/s>', '--resume <run-id>'],
  'replay-dlq': ['--sink <sink>', '--table <schema.table>', '--error-class <class>', '--since <iso-time>', '--until <iso-time>', '--event-id <id>', '--key <json>', '--source-offset', '--limit <n>', '--show-event', '--execute', '--to <sink>', '--max-attempts <n>', '--rate <events/s>'],
  'stress-test': ['--rate <events/s>', '--duration <seconds>', '--slo-p99-ms <ms>'],
  status: ['--watch [seconds]', '--timeout <ms>'],
};

const dir = tempDir('streamctl-cli-');

/** A config whose every endpoint is a closed loopback port: nothing real answers. */
function closedPortsConfig(extra = ''): string {
  const file = path.join(dir, `closed-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(
    file,
    `postgres:\n  port: 49151\n  password: "pg-S3cret-value"\nkafka:\n  brokers: ["127.0.0.1:49151"]\n` +
      `sinks:\n  redis:\n    port: 49151\n    password: "redis-S3cret-value"\n  bigquery:\n    apiEndpoint: "http://127.0.0.1:49151"\n` +
      `  http:\n    url: "http://127.0.0.1:49151/events"\n    hmacKey: "hmac-S3cret-value"\n    hmacKeyFile: ""\n${extra}`,
  );
  return file;
}
const SECRETS = ['pg-S3cret-value', 'redis-S3cret-value', 'hmac-S3cret-value'];

describe('streamctl CLI', () => {
  it('shows help with every subcommand and the exit codes', async () => {
    const r = await runCli(['--help']);
    assert.equal(r.code, 0);
    for (const name of Object.keys(SUBCOMMANDS)) assert.match(r.stdout, new RegExp(`^  ${name} `, 'm'));
    assert.match(r.stdout, /Exit codes:[\s\S]*130 +interrupted/);
  });

  for (const [name, flags] of Object.entries(SUBCOMMANDS)) {
    it(`${name} --help lists its flags and the exit codes`, async () => {
      const r = await runCli([name, '--help']);
      assert.equal(r.code, 0, r.stderr);
      for (const flag of flags) assert.ok(r.stdout.includes(flag), `${name} --help lacks ${flag}`);
      assert.match(r.stdout, /Exit codes:[\s\S]*4 +environment not ready/);
    });
  }

  it('exits 2 on a usage error and says what was wrong', async () => {
    const unknown = await runCli(['status', '--bogus']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown option '--bogus'/);
    const badValue = await runCli(['backfill', '--chunk-size', 'lots']);
    assert.equal(badValue.code, 2);
    assert.match(badValue.stderr, /--chunk-size <rows>' argument 'lots' is invalid. must be an integer/);
    const badRole = await runCli(['stream', '--role', 'everything']);
    assert.equal(badRole.code, 2);
    // No command at all (a cron line that lost its subcommand): the help on stderr is a usage error, not success.
    const none = await runCli([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^Usage: streamctl /m);
    for (const asked of [['help'], ['help', 'verify'], ['--help']]) assert.equal((await runCli(asked)).code, 0, asked.join(' '));
  });

  it('replay-dlq lists every bad flag at once (exit 2) before touching Kafka', async () => {
    const r = await runCli(['--config', closedPortsConfig(), 'replay-dlq', '--since', 'soon', '--key', '7', '--rate', '5']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /bad replay-dlq flags \(3 problems\)/);
    assert.match(r.stderr, /--since: 'soon' is not an ISO 8601 time/);
    assert.match(r.stderr, /--rate only makes sense with --execute/);
  });

  it('lists every config mistake at once and exits 2, as text and as JSON', async () => {
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, 'postgres:\n  port: 70000\n  password: "pg-S3cret-value"\nkafka:\n  partitions: -1\nlog:\n  level: chatty\n');
    const text = await runCli(['--config', file, 'status']);
    assert.equal(text.code, 2);
    assert.match(text.stderr, /invalid configuration \(3 problems\)/);
    for (const line of ['postgres.port: must be an integer 1-65535', 'kafka.partitions: must be an integer 1-10000', 'log.level: must be one of']) {
      assert.ok(text.stderr.includes(line), `missing ${line} in ${text.stderr}`);
    }
    const json = await runCli(['--json', '--config', file, 'status']);
    assert.equal(json.code, 2);
    const parsed = JSON.parse(json.stdout) as { ok: boolean; error: { exit_code: number; problems: string[] } };
    assert.equal(parsed.ok, false);
    assert.equal(parsed.error.exit_code, 2);
    assert.equal(parsed.error.problems.length, 3);
  });

  it('never prints a secret: not in status output, JSON, debug logs or config errors', async () => {
    const runs = [
      await runCli(['--config', closedPortsConfig(), '--log-level', 'debug', 'status', '--timeout', '3000']),
      await runCli(['--json', '--config', closedPortsConfig(), '--log-level', 'debug', 'status', '--timeout', '3000']),
      await runCli(['--config', closedPortsConfig('metrics:\n  port: -5\n'), 'status']),
      // A secret given through the environment, into a config that is otherwise wrong.
      await runCli(['status'], { STREAMCTL_POSTGRES_PASSWORD: 'pg-S3cret-value', STREAMCTL_POSTGRES_PORT: 'x' }),
    ];
    assert.equal(runs[0]!.code, 3, runs[0]!.stderr);
    assert.equal(runs[2]!.code, 2);
    assert.equal(runs[3]!.code, 2);
    for (const r of runs) {
      for (const secret of SECRETS) {
        assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), `secret ${secret} leaked:\n${r.stdout}\n${r.stderr}`);
      }
    }
    assert.ok(runs[0]!.stderr.length > 0, 'debug logging produced no lines, so the check above proved nothing');
  });

  it('reports every component down with exit 3 and a components object in JSON', async () => {
    const r = await runCli(['--json', '--config', closedPortsConfig(), 'status', '--timeout', '3000']);
    assert.equal(r.code, 3);
    const report = JSON.parse(r.stdout) as { ok: boolean; components: Record<string, { state: string; error?: string }> };
    assert.equal(report.ok, false);
    assert.deepEqual(Object.keys(report.components).sort(), ['bigquery', 'http', 'kafka', 'postgres', 'redis']);
    for (const [name, c] of Object.entries(report.components)) {
      assert.equal(c.state, 'down', name);
      assert.match(c.error ?? '', /ECONNREFUSED|refused|timed out/i, `${name}: ${c.error}`);
    }
  });

  it('writes no colour codes when not on a terminal, or with NO_COLOR', async () => {
    for (const env of [{}, { NO_COLOR: '1', FORCE_COLOR: '1' }]) {
      const r = await runCli(['--config', closedPortsConfig(), 'status', '--timeout', '2000'], env);
      assert.ok(!/\x1b\[/.test(r.stdout + r.stderr), 'found an ANSI escape');
      assert.match(r.stdout, /postgres +down/);
    }
  });
});
