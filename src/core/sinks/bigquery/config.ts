import type { BreakerPolicy, RetryPolicy } from '../../config/types.js';
import { bool, breaker, intRange, nonEmpty, object, retry, str, urlOrEmpty } from '../../schema-kit.js';
import { LOCAL_STACK } from '../../local-stack.js';

export interface BigQuerySinkConfig {
  enabled: boolean;
  projectId: string;
  dataset: string;
  table: string;
  location: string;
  /** Set for an emulator; empty means Google's endpoint. */
  apiEndpoint: string;
  /** Service-account JSON, inline or as a file; both empty means application default credentials. */
  credentialsJson: string;
  credentialsFile: string;
  /** View showing each event once; view showing the latest state of each row. */
  viewOnce: string;
  viewLatest: string;
  /** Rows per streaming insert (a write of more is cut into several); a request is also kept under 9 MiB of rows (./batches.ts). */
  batchSize: number;
  retry: RetryPolicy;
  breaker: BreakerPolicy;
}

const bigQueryName = { type: 'string', pattern: '^[A-Za-z0-9_]{1,1024}$', errorMessage: 'must be letters, digits and _' };

export const BIGQUERY_SCHEMA = object({
  enabled: bool,
  projectId: {
    type: 'string',
    pattern: '^[a-z][a-z0-9-]{4,61}[a-z0-9]$',
    errorMessage: 'must be a Google Cloud project id (6-30 lower-case letters, digits, -)',
  },
  dataset: bigQueryName,
  table: bigQueryName,
  location: nonEmpty('location (for example US or EU)'),
  apiEndpoint: urlOrEmpty,
  credentialsJson: str(),
  credentialsFile: str(),
  viewOnce: bigQueryName,
  viewLatest: bigQueryName,
  batchSize: intRange(1, 10_000),
  retry: retry(false),
  breaker: breaker(),
});

/** ARCHITECTURE.md: BigQuery 5 retries with at most 60 s between; the circuit opens when they run out. */
export const bigQueryDefaults = (): BigQuerySinkConfig => ({
  enabled: true,
  projectId: LOCAL_STACK.bigquery.projectId,
  dataset: LOCAL_STACK.bigquery.dataset,
  table: 'changes',
  location: 'US',
  apiEndpoint: LOCAL_STACK.bigquery.apiEndpoint,
  credentialsJson: '',
  credentialsFile: '',
  viewOnce: 'changes_once',
  viewLatest: 'latest',
  batchSize: 500,
  retry: { retries: 5, initialDelayMs: 1000, maxDelayMs: 60000 },
  breaker: { consecutiveFailures: 1, halfOpenAfterMs: 60000 },
});

export function bigQueryProblems(bq: BigQuerySinkConfig): string[] {
  const problems: string[] = [];
  if (bq.credentialsJson && bq.credentialsFile) {
    problems.push('sinks.bigquery.credentialsFile: set either credentialsJson or credentialsFile, not both');
  }
  if (bq.credentialsJson) {
    try {
      JSON.parse(bq.credentialsJson);
    } catch {
      // Never echo the value: it is a private key.
      problems.push('sinks.bigquery.credentialsJson: is not valid JSON (value not shown: it is a secret)');
    }
  }
  return problems;
}

/** Where `status` says the sink is reached (never with credentials). */
export const bigQueryEndpoint = (c: BigQuerySinkConfig): string => `${c.apiEndpoint || 'https://bigquery.googleapis.com'} project=${c.projectId}`;
