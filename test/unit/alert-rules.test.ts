import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { alertRules, codeMetricNames, dashboardQueries, metricNamesIn, operands, RULES_FILE, RULES_TEST_FILE } from '../helpers/monitoring.js';

/** The alerts the issue asks for (#15), each by the name it ships under. */
const REQUIRED = [
  'StreamctlSinkErrorRateHigh', // error rate > 1 % over 5 min per sink
  'StreamctlRedisLatencyHigh', // Redis latency > 5 s
  'StreamctlDown', // service down
  'StreamctlNotReady', // health failing
  'StreamctlQueueBackup', // queue backup > 1,000 per sink
  'StreamctlSlotLagHigh', // slot lag above a threshold
  'StreamctlSlotLagGrowing', // slot lag growing
  'StreamctlSlotInactive', // the slot inactive
  'StreamctlWalRetainedHigh', // WAL retained above a threshold
  'StreamctlCaptureStalled', // no capture progress while PostgreSQL has new WAL
  'StreamctlCircuitOpen', // a circuit open for longer than N minutes
  'StreamctlDlqGrowing', // the DLQ growing
  'StreamctlBackfillInterrupted', // a backfill interrupted and not resumed
  'StreamctlConsumerLagGrowing', // the deliverer's consumer lag growing for 10 min
  // What #10 and #12 added: oversized rows (markers instead of records), and open dead
  // letters (dlq_depth counts letters no replay has resolved) left waiting.
  'StreamctlOversizeRows',
  'StreamctlDlqNotDrained',
];

interface PromtoolTests {
  rule_files: string[];
  tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }> }>;
}

describe('alert rules (docker/prometheus/rules.yml)', () => {
  const rules = alertRules();

  it('has every alert the issue lists, each with a severity, a summary and a description that says what to do', () => {
    assert.deepEqual(rules.map((r) => r.alert).sort(), [...REQUIRED].sort());
    for (const r of rules) {
      assert.match(r.labels['severity'] ?? '', /^(critical|warning)$/, `${r.alert}: severity`);
      assert.ok((r.annotations['summary'] ?? '').length > 10, `${r.alert}: summary`);
      // What to do: an instruction, not just a restatement of the condition.
      assert.match(r.annotations['description'] ?? '', /\b(Check|Look|Start|Fix|Run|Act|Get|resume|restart)\b/i, `${r.alert}: description says what to do`);
    }
  });

  it('is valid for promtool (expressions and annotation templates)', () => {
    const out = execFileSync('promtool', ['check', 'rules', RULES_FILE], { encoding: 'utf8' });
    assert.match(out, new RegExp(`SUCCESS: ${rules.length} rules found`));
  });

  it('names only metrics the code exposes (PipelineMetrics), and so does the dashboard', () => {
    const known = codeMetricNames();
    const used = [...rules.map((r) => ({ where: r.alert, expr: r.expr })), ...dashboardQueries().map((q) => ({ where: `panel "${q.panel}"`, expr: q.expr }))];
    const unknown = used.flatMap(({ where, expr }) => metricNamesIn(expr).filter((n) => !known.has(n)).map((n) => `${where}: ${n}`));
    assert.deepEqual(unknown, []);
    assert.ok(used.every(({ expr }) => metricNamesIn(expr).length > 0), 'every expression selects a metric');
  });

  it('has a promtool case that fires each alert and one that must not', () => {
    const doc = parse(readFileSync(RULES_TEST_FILE, 'utf8')) as PromtoolTests;
    const cases = doc.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const name of REQUIRED) {
      const mine = cases.filter((c) => c.alertname === name);
      assert.ok(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${name}: a case where it fires`);
      assert.ok(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${name}: a case where it must not fire`);
    }
  });

  it('passes the promtool unit tests (promtool test rules)', () => {
    // promtool compares rendered annotations too; the rules run without their (long) annotations
    // so the cases state only the conditions. The templates are checked by `promtool check rules`.
    const dir = mkdtempSync(join(tmpdir(), 'streamctl-rules-'));
    try {
      const doc = parse(readFileSync(RULES_FILE, 'utf8')) as { groups: Array<{ rules: Array<Record<string, unknown>> }> };
      for (const g of doc.groups) for (const r of g.rules) delete r['annotations'];
      writeFileSync(join(dir, 'rules.yml'), stringify(doc));
      writeFileSync(join(dir, 'rules.test.yml'), readFileSync(RULES_TEST_FILE));
      const run = spawnSync('promtool', ['test', 'rules', 'rules.test.yml'], { cwd: dir, encoding: 'utf8' });
      assert.equal(run.status, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /SUCCESS/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('PromQL helpers of the monitoring tests', () => {
  it('finds the metric names of an expression, not its functions, labels or keywords', () => {
    assert.deepEqual(
      metricNamesIn('histogram_quantile(0.99, sum by (le, sink) (rate(processing_latency_seconds_bucket{sink="redis"}[5m]))) > 5 and on () up{job="x"} == 0'),
      ['processing_latency_seconds_bucket', 'up'],
    );
  });

  it('splits an expression at its top-level comparisons and set operators only', () => {
    assert.deepEqual(operands('max by (slot) (changes(a[10m])) == 0 and on () max(delta(b[10m])) > 0'), ['max by (slot) (changes(a[10m]))', 'max(delta(b[10m]))']);
    assert.deepEqual(operands('time() - max by (sink) (c > 0) > 600'), ['time() - max by (sink) (c > 0)']);
    assert.deepEqual(operands('x{a!="b",c=~"d>e"} >= bool 3'), ['x{a!="b",c=~"d>e"}']);
    assert.deepEqual(operands('sum(rate(y[1m]))'), ['sum(rate(y[1m]))']);
  });
});
