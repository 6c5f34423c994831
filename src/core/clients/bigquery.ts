import { readFileSync } from 'node:fs';
import { BigQuery, type BigQueryOptions } from '@google-cloud/bigquery';
import { OAuth2Client } from 'google-auth-library';
import type { BigQuerySinkConfig } from '../config/types.js';

/**
 * The official client. Against an emulator (`apiEndpoint` set, no credentials given) it
 * gets a fixed bearer token: without one, google-auth-library goes looking for
 * application-default credentials and probes the GCE metadata server, a request off this
 * machine that an emulator setup must never make. Against Google it uses the service
 * account given, or application defaults.
 */
export function makeBigQuery(config: BigQuerySinkConfig, clientOptions: { autoRetry?: boolean } = {}): BigQuery {
  const options: BigQueryOptions = { projectId: config.projectId, location: config.location };
  // Our own retry policy (config.retry) decides; the client's built-in retries are for callers that have none.
  if (clientOptions.autoRetry === false) options.autoRetry = false;
  const credentials = config.credentialsJson || (config.credentialsFile ? readFileSync(config.credentialsFile, 'utf8') : '');
  if (credentials) options.credentials = JSON.parse(credentials) as BigQueryOptions['credentials'];
  if (config.apiEndpoint) {
    options.apiEndpoint = config.apiEndpoint;
    if (!credentials) options.authClient = emulatorAuth();
  }
  return new BigQuery(options);
}

function emulatorAuth(): OAuth2Client {
  const client = new OAuth2Client();
  client.setCredentials({ access_token: 'emulator', expiry_date: Date.now() + 10 * 365 * 24 * 3600 * 1000 });
  return client;
}
