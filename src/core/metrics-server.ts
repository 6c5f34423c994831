import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamctlError } from './errors.js';
import { EXIT } from './exit-codes.js';
import type { PipelineMetrics } from './metrics.js';

/**
 * /metrics for Prometheus, /health (the process is alive) and /ready (it is doing its
 * job: `ready()` says so, for example once capture has started streaming).
 */
export async function startMetricsServer(
  metrics: PipelineMetrics,
  options: { host: string; port: number; ready: () => boolean; readyDetail?: () => Record<string, unknown>; /** The setting that chose the port, named when it is taken. */ setting?: string },
): Promise<{ server: Server; address: AddressInfo; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      metrics.ready.set(options.ready() ? 1 : 0);
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        },
        (err: Error) => {
          res.writeHead(500).end(err.message);
        },
      );
      return;
    }
    if (path === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    if (path === '/ready') {
      const ready = options.ready();
      res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ ready, ...options.readyDetail?.() }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      // A second stream on one host is the usual cause; a bare EADDRINUSE did not say which setting to change.
      if (err.code === 'EADDRINUSE') {
        const setting = options.setting ?? 'metrics.port (STREAMCTL_METRICS_PORT)';
        reject(new StreamctlError(`the metrics server cannot listen on ${options.host}:${options.port}: the port is in use (another streamctl on this host?)`, EXIT.ENV_NOT_READY, [`set ${setting} to a free port, or 0 for any free port`]));
      } else reject(err);
    });
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    server,
    address: server.address() as AddressInfo,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
