import { makeBigQuery } from '../../clients/bigquery.js';
import { timed } from '../../timed.js';
import type { SinkHealth } from '../plugin.js';
import type { BigQuerySinkConfig } from './config.js';

/** Whether the dataset exists, without the client's own retries (status answers now). */
export async function checkBigQuery(config: BigQuerySinkConfig): Promise<SinkHealth> {
  const bq = makeBigQuery(config, { autoRetry: false });
  const { value, ms } = await timed(() => bq.dataset(config.dataset).exists());
  return { rtt_ms: ms, detail: { dataset: config.dataset, dataset_exists: value[0] } };
}
