#!/usr/bin/env node
import { appendFileSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { HttpReceiver } from './server.js';

/** `node dist/src/receiver/main.js --port 18080 --hmac-key-file FILE [--log FILE]`: started by scripts/stack. */
const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '18080' },
    host: { type: 'string', default: '127.0.0.1' },
    'hmac-key-file': { type: 'string' },
    log: { type: 'string' },
  },
});

const keyFile = values['hmac-key-file'];
const hmacKey = keyFile ? readFileSync(keyFile, 'utf8').trim() : process.env['RECEIVER_HMAC_KEY'];
if (!hmacKey) {
  process.stderr.write('http-receiver: give --hmac-key-file FILE or RECEIVER_HMAC_KEY\n');
  process.exit(2);
}
const logFile = values.log;
const receiver = new HttpReceiver({
  hmacKey,
  ...(logFile ? { onAccepted: (r: { key: string; at: string }) => appendFileSync(logFile, `${JSON.stringify({ key: r.key, at: r.at })}\n`) } : {}),
});
const address = await receiver.listen(Number(values.port), values.host);
process.stdout.write(`http-receiver listening on http://${address.address}:${address.port}\n`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void receiver.close().then(() => process.exit(0));
  });
}
