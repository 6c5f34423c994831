import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { PipelineMetrics } from '../../src/core/metrics.js';

/**
 * The monitoring that ships in docker/ (alert rules, Grafana dashboard) read back for the
 * tests, and the one list they check it against: the metrics `PipelineMetrics` registers.
 * A metric added in code (by any branch) joins that list by itself; a metric renamed in
 * code leaves the rules and the dashboard naming something that no longer exists.
 */
export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const RULES_FILE = `${REPO}docker/prometheus/rules.yml`;
export const RULES_TEST_FILE = `${REPO}docker/prometheus/rules.test.yml`;
export const DASHBOARD_FILE = `${REPO}docker/grafana/dashboards/streamctl.json`;

export interface AlertRule {
  group: string;
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export function alertRules(): AlertRule[] {
  const doc = parse(readFileSync(RULES_FILE, 'utf8')) as { groups: Array<{ name: string; rules: Array<Omit<AlertRule, 'group'>> }> };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ group: g.name, ...r, labels: r.labels ?? {}, annotations: r.annotations ?? {} })));
}

export interface PanelQuery {
  panel: string;
  expr: string;
}

/** Grafana's `$__rate_interval` as a plain range, so Prometheus can run the query itself. */
export const RATE_INTERVAL = '1m';

export function dashboardQueries(): PanelQuery[] {
  const doc = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }> };
  return doc.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr.replaceAll('$__rate_interval', RATE_INTERVAL) })));
}

/** Series Prometheus makes itself (not the application's). */
const PROMETHEUS_OWN = new Set(['up']);

/** Every metric name `PipelineMetrics` exposes, histograms with their _bucket/_sum/_count series. */
export function codeMetricNames(): Set<string> {
  const names = new Set(PROMETHEUS_OWN);
  for (const m of new PipelineMetrics({ defaultMetrics: true }).registry.getMetricsAsArray()) {
    names.add(m.name);
    if (m.type.toString() === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
  }
  return names;
}

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/** The metric names a PromQL expression selects (not functions, label names or keywords). */
export function metricNamesIn(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\boffset\s+-?[\dsmhdwy]+/gi, '') // `offset 1h`: a duration, not a metric
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names = new Set<string>();
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const rest = bare.slice(m.index + m[0].length);
    if (/^\s*\(/.test(rest) || KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

/**
 * The operands of an expression's top-level comparisons and set operators: what must
 * return a series for the alert to be able to fire at all. `a > 1 and on () b == 0` gives
 * `a` and `b`; numbers are left out. An operand that returns nothing names a metric (or a
 * label) the code does not expose.
 */
export function operands(expr: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  let i = 0;
  const cut = (end: number, next: number) => {
    parts.push(expr.slice(start, end));
    start = next;
  };
  while (i < expr.length) {
    const ch = expr[i]!;
    if (ch === '"') {
      i = expr.indexOf('"', i + 1) + 1;
      continue;
    }
    if ('({['.includes(ch)) depth++;
    if (')}]'.includes(ch)) depth--;
    if (depth === 0) {
      const rest = expr.slice(i);
      const op = /^(==|!=|>=|<=|>|<)(\s*bool)?/.exec(rest) ?? /^\s(and|or|unless)(\s+(on|ignoring)\s*\([^)]*\))?\s/.exec(rest);
      if (op) {
        cut(i, i + op[0].length);
        i += op[0].length;
        continue;
      }
    }
    i++;
  }
  cut(expr.length, expr.length);
  return parts.map((p) => p.trim()).filter((p) => p !== '' && !/^[-+]?[\d.e+]+$/i.test(p));
}
