import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { SinkRecord } from '../../src/core/sinks/contract.js';
import { silentLogger } from '../../src/core/logger.js';
import { HttpSink } from '../../src/core/sinks/http/sink.js';

// An https: URL is spoken to over TLS with the system's trust: a server whose certificate
// nobody vouches for (self-signed, made here by openssl) is refused, retryably, before any
// event leaves the process.
describe('HTTP sink over TLS', () => {
  it('refuses a server with an untrusted certificate: retryable network error naming the certificate, no request sent', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'http-tls-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-days', '1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
      let requests = 0;
      let handshakes = 0;
      const server = createServer({ key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem')) }, (_req, res) => {
        requests++;
        res.statusCode = 204;
        res.end();
      });
      // The TCP connection reached the TLS server (its handshake then failed on the client's side).
      server.on('connection', () => handshakes++);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      const sink = new HttpSink(
        {
          enabled: true, url: `https://127.0.0.1:${port}/events`, healthUrl: '', hmacKey: '', hmacKeyFile: '', timeoutMs: 5000, batchSize: 1, concurrency: 16,
          retry: { retries: 0, initialDelayMs: 1, maxDelayMs: 1 }, breaker: { consecutiveFailures: 1, halfOpenAfterMs: 1 },
        },
        'k',
        silentLogger,
      );
      await sink.start();
      try {
        const [result] = await sink.write([{ topic: 't', partition: 0, offset: '1', event: { id: 'e1', schema: 'public', table: 't', key: { id: 1 }, op: 'insert' } as unknown as SinkRecord['event'] }]);
        assert.ok(result && !result.ok, 'the write must fail');
        assert.equal(result.permanent, false);
        assert.equal(result.errorClass, 'network');
        assert.match(result.message, /self[- ]signed|certificate/i);
        assert.ok(handshakes > 0, 'the client connected to the TLS server');
        assert.equal(requests, 0);
      } finally {
        await sink.stop();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
