import type { Dataset, TableField } from '@google-cloud/bigquery';
import type { Logger } from '../../logger.js';
import type { BigQuerySinkConfig } from './config.js';
import { TABLE_FIELDS } from './rows.js';

// The dataset, table and views the sink writes to and shows through, made idempotently:
// several deliverers may start at once, and a redeploy may change a view's SQL.

/** Creates the dataset unless it exists (another deliverer may create it meanwhile). */
export async function ensureDataset(dataset: Dataset, config: BigQuerySinkConfig, log: Logger): Promise<void> {
  const [exists] = await dataset.exists();
  if (exists) return;
  try {
    await dataset.create({ location: config.location });
    log.info('dataset created', { dataset: config.dataset, location: config.location });
  } catch (error) {
    if ((error as { code?: unknown }).code !== 409) throw error; // created meanwhile by another deliverer
  }
}

/**
 * Creates the table (day partitions on commit_ts, clustered by source table and row key,
 * columns as in TABLE_FIELDS), or adds the columns an older version's table lacks.
 */
export async function ensureTable(dataset: Dataset, config: BigQuerySinkConfig, log: Logger): Promise<void> {
  const table = dataset.table(config.table);
  const [exists] = await table.exists();
  if (exists) {
    const [metadata] = await table.getMetadata();
    const fields = (metadata as { schema?: { fields?: TableField[] } }).schema?.fields ?? [];
    const have = new Set(fields.map((f) => f.name));
    const missing = TABLE_FIELDS.filter((f) => !have.has(f.name));
    if (missing.length === 0) return;
    // A table made by an older version lacks newer columns: add them (nullable columns
    // may be added to a table in place); a required one cannot be, so that is reported.
    const addable = missing.every((f) => f.mode !== 'REQUIRED');
    const patched = addable && (await table.setMetadata({ schema: { fields: [...fields, ...missing] } }).then(() => true, () => false));
    if (!patched) {
      throw new Error(`table ${config.dataset}.${config.table} exists without column(s) ${missing.map((f) => f.name).join(', ')}: add them or point sinks.bigquery.table elsewhere`);
    }
    log.info('table columns added', { table: config.table, columns: missing.map((f) => f.name).join(',') });
    return;
  }
  const schema = { fields: TABLE_FIELDS };
  try {
    await dataset.createTable(config.table, {
      schema,
      timePartitioning: { type: 'DAY', field: 'commit_ts' },
      clustering: { fields: ['source_schema', 'source_table', 'row_key'] },
    });
    log.info('table created', { table: config.table, partitioning: 'DAY(commit_ts)' });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 409) return;
    if (code !== 400 && code !== 501) throw error;
    log.warn('table could not be created partitioned and clustered; creating it plain', {
      table: config.table,
      error: (error as Error).message,
    });
    try {
      await dataset.createTable(config.table, { schema });
    } catch (plainError) {
      if ((plainError as { code?: unknown }).code !== 409) throw plainError;
    }
  }
}

/** Creates the view or replaces its query (a redeploy may change the SQL). */
export async function ensureView(dataset: Dataset, name: string, query: string): Promise<void> {
  const view = dataset.table(name);
  const [exists] = await view.exists();
  if (exists) {
    await view.setMetadata({ view: { query, useLegacySql: false } });
    return;
  }
  try {
    await dataset.createTable(name, { view: { query, useLegacySql: false } });
  } catch (error) {
    if ((error as { code?: unknown }).code !== 409) throw error;
    await view.setMetadata({ view: { query, useLegacySql: false } });
  }
}
