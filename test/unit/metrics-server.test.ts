import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { StreamctlError } from '../../src/core/errors.js';
import { EXIT } from '../../src/core/exit-codes.js';
import { PipelineMetrics } from '../../src/core/metrics.js';
import { startMetricsServer } from '../../src/core/metrics-server.js';

describe('metrics server', () => {
  it('serves /health, and a port already taken is exit 4 naming the setting, not a bare EADDRINUSE', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', () => resolve()));
    const port = (taken.address() as { port: number }).port;
    try {
      const metrics = new PipelineMetrics({ defaultMetrics: false });
      await assert.rejects(
        startMetricsServer(metrics, { host: '127.0.0.1', port, ready: () => true }),
        (err: unknown) => err instanceof StreamctlError && err.exitCode === EXIT.ENV_NOT_READY && /in use/.test(err.message) && err.problems.some((p) => p.includes('metrics.port')),
      );
      const free = await startMetricsServer(metrics, { host: '127.0.0.1', port: 0, ready: () => true });
      try {
        const res = await fetch(`http://127.0.0.1:${free.address.port}/health`);
        assert.equal(res.status, 200);
      } finally {
        await free.close();
      }
    } finally {
      taken.close();
    }
  });
});
