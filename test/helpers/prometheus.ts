import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './pipeline.js';
import { RULES_FILE } from './monitoring.js';

export const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

export interface PrometheusInstance {
  url: string;
  child: ChildProcess;
  log: { text: string };
  /** An instant query; the result vector (empty when the expression selects nothing). */
  query(expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  stop(): Promise<void>;
}

/**
 * A Prometheus of its own for one test (the Debian package's binary, the one scripts/stack
 * runs): a fresh TSDB in a temporary folder, so a query can only be answered by this test's
 * scrapes, never by samples an earlier run left in the stack's shared Prometheus (a renamed
 * metric would otherwise still "exist" for the length of a range selector). It loads the
 * shipped alert rules and scrapes `target` every second as job "streamctl".
 */
export async function startPrometheus(target: string): Promise<PrometheusInstance> {
  const dir = mkdtempSync(join(tmpdir(), 'streamctl-prom-'));
  const port = await freePort();
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      `rule_files: ['${RULES_FILE}']`,
      'scrape_configs:',
      '  - job_name: streamctl',
      `    static_configs: [{ targets: ['${target}'] }]`,
    ].join('\n'),
  );
  const child = spawn(
    'prometheus',
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const log = { text: '' };
  child.stderr?.on('data', (d: Buffer) => (log.text += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  await waitFor('prometheus to be ready', async () => {
    if (child.exitCode !== null) throw new Error(`prometheus exited: ${log.text.slice(-2000)}`);
    return (await fetch(`${url}/-/ready`)).ok;
  });
  return {
    url,
    child,
    log,
    async query(expr) {
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`);
      const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: unknown } };
      if (body.status !== 'success') throw new Error(`query ${expr}: ${body.error}`);
      if (body.data!.resultType !== 'vector') throw new Error(`query ${expr}: a ${body.data!.resultType}, not a vector`);
      return body.data!.result as Array<{ metric: Record<string, string>; value: [number, string] }>;
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
