import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { envNameFor } from '../../src/core/config/index.js';
import { RESERVED_ENV } from '../../src/core/config/env.js';
import { schemaLeaves } from '../../src/core/config/schema.js';
import { alertRules, codeMetricNames, REPO } from '../helpers/monitoring.js';
import { runCli } from '../helpers/run-cli.js';

/**
 * Keeps the operator's guide in step across its three languages and with the product:
 * the same sections (anchors) in the same order, the same commands, flags, metrics, alerts
 * and environment variables named in each, and every one of them real. What is real is
 * read at test time from `streamctl --help` and each command's `--help` (so a flag another
 * branch adds is known as soon as it is in the CLI), the PipelineMetrics registry and the
 * shipped alert rules; settings and their variables from the configuration schema. Text between `<!-- planned #N -->` and `<!-- /planned -->` describes a
 * command still being built: it must match across languages but need not exist yet.
 */
const LANGS = ['en', 'fr', 'ar'] as const;
type Lang = (typeof LANGS)[number];
const guide = (lang: Lang) => readFileSync(`${REPO}docs/${lang}/guide.md`, 'utf8');

interface Named {
  sections: string[];
  planned: string[];
  commands: Set<string>;
  flags: Set<string>;
  metrics: Set<string>;
  alerts: Set<string>;
  env: Set<string>;
  /** Outside planned blocks: each command with the flags written with it. */
  uses: Array<{ command: string | null; flags: string[]; where: string }>;
}

/** Code: fenced blocks line by line, and inline code spans. Prose is never parsed for names. */
function codeOf(text: string): string[] {
  const out: string[] = [];
  const fence = /```[^\n]*\n([\s\S]*?)```/g;
  for (const m of text.matchAll(fence)) out.push(...m[1]!.split('\n'));
  for (const m of text.replace(fence, '').matchAll(/`([^`\n]+)`/g)) out.push(m[1]!);
  return out;
}

const GLOBAL_WITH_VALUE = new Set(['--config', '-c', '--log-level']);
const METRIC_LIKE = /^(streamctl_[a-z0-9_]+|[a-z][a-z0-9]*(_[a-z0-9]+)*_(total|seconds|bytes|depth|state|lsn|active|runs))$/;

function commandIn(line: string): { command: string | null; flags: string[] } | null {
  const tokens = line.trim().split(/\s+/);
  // streamctl as the program: first on the line (after cron's time fields), or as a path;
  // not as an argument of another program (`journalctl -u streamctl`).
  const at = tokens.findIndex((t, i) => /(^|\/)streamctl$/.test(t) && (t.includes('/') || tokens.slice(0, i).every((p) => /^[\d*/,-]+$/.test(p))));
  if (at < 0) return /^--[a-z]/.test(line.trim()) ? { command: null, flags: [line.trim().split(/[\s=]/)[0]!] } : null;
  let command: string | null = null;
  const flags: string[] = [];
  for (let i = at + 1; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.startsWith('-')) {
      flags.push(t.split('=')[0]!);
      if (command === null && GLOBAL_WITH_VALUE.has(t)) i++;
    } else if (command === null && /^[a-z][a-z-]+$/.test(t)) command = t;
    else if (t.startsWith('#') || t.startsWith('>')) break;
  }
  return { command, flags };
}

function named(text: string, known: Set<string>): Named {
  const n: Named = {
    sections: [...text.matchAll(/<a id="([a-z0-9-]+)"><\/a>/g)].map((m) => m[1]!),
    planned: [...text.matchAll(/<!-- planned (#\d+) -->/g)].map((m) => m[1]!),
    commands: new Set(),
    flags: new Set(),
    metrics: new Set(),
    alerts: new Set([...text.matchAll(/\bStreamctl[A-Z][A-Za-z]+\b/g)].map((m) => m[0])),
    env: new Set([...text.matchAll(/\b(STREAMCTL_[A-Z0-9_]+|NO_COLOR)\b/g)].map((m) => m[0])),
    uses: [],
  };
  const parts = text.split(/(<!-- planned #\d+ -->[\s\S]*?<!-- \/planned -->)/);
  for (const part of parts) {
    const planned = part.startsWith('<!-- planned');
    for (const code of codeOf(part)) {
      const use = commandIn(code);
      if (use) {
        if (use.command) n.commands.add(use.command);
        for (const f of use.flags) n.flags.add(f);
        if (!planned) n.uses.push({ ...use, where: code });
      }
      for (const token of code.split(/[\s,{}()|]+/)) if (METRIC_LIKE.test(token) || known.has(token)) n.metrics.add(token);
    }
  }
  return n;
}

async function helpFlags(args: string[]): Promise<Set<string>> {
  const r = await runCli([...args, '--help']);
  assert.equal(r.code, 0, r.stderr);
  return new Set([...r.stdout.matchAll(/(?:^|[\s,[(])(--?[a-z][a-z0-9-]*)/g)].map((m) => m[1]!));
}

describe("the operator's guide in English, French and Arabic", () => {
  const metrics = codeMetricNames();
  const docs = Object.fromEntries(LANGS.map((l) => [l, named(guide(l), metrics)])) as Record<Lang, Named>;
  let globalFlags = new Set<string>();
  const commandFlags = new Map<string, Set<string>>();

  before(async () => {
    const top = await runCli(['--help']);
    globalFlags = await helpFlags([]);
    const commands = [...top.stdout.split('Commands:')[1]!.matchAll(/^\s{2}([a-z][a-z-]+)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
    for (const c of commands) commandFlags.set(c, await helpFlags([c]));
  });

  it('has the same sections in the same order, and the same planned parts, in every language', () => {
    assert.ok(docs.en.sections.length >= 12, docs.en.sections.join(', '));
    for (const l of LANGS) {
      assert.deepEqual(docs[l].sections, docs.en.sections, `${l}: sections`);
      assert.deepEqual(docs[l].planned, docs.en.planned, `${l}: planned parts`);
    }
  });

  it('numbers the sections alike in every language: 1, 2, 3 ... under each anchor', () => {
    // Arabic numbers its headings with Arabic-Indic digits (١٢), the others with ASCII ones.
    const numbers = (l: Lang) =>
      [...guide(l).matchAll(/<a id="[a-z0-9-]+"><\/a>\n(?:<div dir="rtl">\n\n)?## ([0-9\u0660-\u0669]+)\. /g)].map((m) =>
        Number(m[1]!.replace(/[\u0660-\u0669]/g, (d) => String(d.charCodeAt(0) - 0x0660))),
      );
    for (const l of LANGS) {
      assert.equal(numbers(l).length, docs[l].sections.length, `${l}: a numbered heading under every anchor`);
      assert.deepEqual(numbers(l), docs.en.sections.map((_, i) => i + 1), `${l}: section numbers`);
    }
  });

  it('names only settings and environment variables the configuration has', () => {
    const leaves = schemaLeaves().map((leaf) => leaf.path.join('.'));
    const variables = new Set([...schemaLeaves().map((leaf) => envNameFor(leaf.path)), ...RESERVED_ENV, 'NO_COLOR']);
    const tops = new Set(leaves.map((l) => l.split('.')[0]!));
    const wrong: string[] = [];
    for (const l of LANGS) {
      for (const v of docs[l].env) if (!variables.has(v)) wrong.push(`${l}: no variable ${v}`);
      // A setting is a schema leaf or a group of leaves (`kafka.retry`); code only, as for the rest.
      for (const code of codeOf(guide(l))) {
        for (const token of code.split(/[\s,{}()|:=`]+/)) {
          const setting = /^([a-z][A-Za-z]*)(\.[a-z][A-Za-z]*)+$/.exec(token)?.[0];
          if (setting && tops.has(setting.split('.')[0]!) && !leaves.some((leaf) => leaf === setting || leaf.startsWith(`${setting}.`))) wrong.push(`${l}: no setting ${setting}`);
        }
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('names the same commands, flags, metrics, alerts and environment variables in every language', () => {
    for (const l of LANGS) {
      for (const kind of ['commands', 'flags', 'metrics', 'alerts', 'env'] as const) {
        assert.deepEqual([...docs[l][kind]].sort(), [...docs.en[kind]].sort(), `${l}: ${kind}`);
      }
    }
  });

  it('names only commands and flags the CLI has (outside the planned parts), each flag with its own command', () => {
    const all = new Set([...globalFlags, ...[...commandFlags.values()].flatMap((s) => [...s])]);
    const wrong: string[] = [];
    for (const l of LANGS) {
      for (const u of docs[l].uses) {
        if (u.command && !commandFlags.has(u.command)) wrong.push(`${l}: no command ${u.command} (${u.where})`);
        const allowed = u.command ? new Set([...globalFlags, ...(commandFlags.get(u.command) ?? [])]) : all;
        for (const f of u.flags) if (!allowed.has(f)) wrong.push(`${l}: ${f} is not a flag of ${u.command ?? 'any command'} (${u.where})`);
      }
    }
    assert.deepEqual(wrong, []);
    assert.ok(docs.en.uses.length > 10);
  });

  it('keeps planned parts for commands still being built: a built command is checked like the rest', async () => {
    // A planned part's flags are exempt from the check above; once its command is built,
    // the part must leave that exemption, or its flags can name what the CLI does not have.
    const plannedCommands = new Set<string>();
    for (const part of guide('en').match(/<!-- planned #\d+ -->[\s\S]*?<!-- \/planned -->/g) ?? []) {
      for (const code of codeOf(part)) {
        const use = commandIn(code);
        if (use?.command) plannedCommands.add(use.command);
      }
    }
    const built: string[] = [];
    for (const command of plannedCommands) {
      // Nothing is listening on port 9: a built command fails (or exits 2 for a missing flag) without saying "not built".
      const r = await runCli([command], { STREAMCTL_KAFKA_BROKERS: '127.0.0.1:9', STREAMCTL_KAFKA_RETRY_RETRIES: '0' }, 15_000);
      if (!/is not built yet/.test(r.stderr)) built.push(command);
    }
    assert.deepEqual(built, [], 'commands that are built but still described in planned parts');
  });

  it('names only metrics the code exposes, and every alert rule, in every language', () => {
    for (const l of LANGS) {
      assert.deepEqual([...docs[l].metrics].filter((m) => !metrics.has(m)), [], `${l}: metrics not in the code`);
      assert.deepEqual([...docs[l].alerts].sort(), alertRules().map((r) => r.alert).sort(), `${l}: alerts`);
    }
  });

  it('sets the Arabic prose right to left, with code blocks outside the right-to-left parts', () => {
    const ar = guide('ar');
    const opens = ar.match(/<div dir="rtl">/g)?.length ?? 0;
    assert.ok(opens >= 12, `${opens} right-to-left parts`);
    assert.equal(ar.match(/<\/div>/g)?.length, opens);
    const rtl = [...ar.matchAll(/<div dir="rtl">([\s\S]*?)<\/div>/g)].map((m) => m[1]!);
    assert.ok(rtl.every((part) => !part.includes('```')), 'no code block inside a right-to-left part');
    assert.match(ar, /[\u0600-\u06FF]{20,}|(?:[\u0600-\u06FF]+\s){10,}/, 'Arabic text');
  });
});
