/**
 * How a write's rows are cut into insertAll requests: at most `maxRows` rows
 * (sinks.bigquery.batchSize) and at most `maxBytes` of row JSON each. BigQuery refuses a
 * request over 10 MB (HTTP 413) and a batch of 500 events of kafka.maxRecordBytes (16 MiB by
 * default) can be far over; without the byte cap such a batch is found out only by
 * bisection, whose budget a large batch spends. A row over the cap alone goes alone
 * (BigQuery then says whether it is too large). Pure, so it is tested on its own.
 */

/** Under BigQuery's 10 MB per request, with room for the request's own JSON (the client library keeps 9 MiB too). */
export const MAX_REQUEST_BYTES = 9 * 1024 * 1024;

/** [from, to) index ranges of consecutive rows, in order, covering every row once. */
export function cutBatches(rowBytes: readonly number[], maxRows: number, maxBytes: number = MAX_REQUEST_BYTES): Array<[number, number]> {
  const rows = Math.max(1, Math.floor(maxRows));
  const out: Array<[number, number]> = [];
  let from = 0;
  let bytes = 0;
  for (let i = 0; i < rowBytes.length; i++) {
    const size = rowBytes[i]! + 1; // and its comma
    if (i > from && (i - from >= rows || bytes + size > maxBytes)) {
      out.push([from, i]);
      from = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (from < rowBytes.length) out.push([from, rowBytes.length]);
  return out;
}
