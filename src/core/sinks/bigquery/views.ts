/**
 * The SQL of the two views over the append-only log (./rows.ts): each event once, and the
 * latest state of each source row. Exported, so tests and docs show the very text the sink
 * installs (./ddl.ts).
 */

/** `project.dataset.table` in backticks, as GoogleSQL wants a qualified name (views need one). */
export function qualifiedName(projectId: string, dataset: string, table: string): string {
  return `\`${projectId}.${dataset}.${table}\``;
}

/**
 * Each event once: the first copy to land (earliest ingested_at) of every event_id.
 *
 *   SELECT * EXCEPT (_copy) FROM (
 *     SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY ingested_at) AS _copy
 *     FROM `p.d.changes`)
 *   WHERE _copy = 1
 */
export function viewOnceSql(table: string): string {
  return [
    'SELECT * EXCEPT (_copy) FROM (',
    '  SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY ingested_at) AS _copy',
    `  FROM ${table}`,
    ')',
    'WHERE _copy = 1',
  ].join('\n');
}

/**
 * The latest state of each source row (source_schema, source_table, row_key):
 *
 * - events: each event once (as viewOnceSql, inlined so the view does not depend on the
 *   other view's name);
 * - truncates: per table, the version of its latest truncate; live: the row events of a
 *   table that come after it (a truncate hides every earlier row of its table, and rows
 *   written after it, even in the same transaction, stay);
 * - latest: per row, the live event with the greatest version (event_id breaks a tie);
 *   a row whose latest event is a delete is left out at the end;
 * - unchanged TOAST: PostgreSQL leaves an unchanged TOASTed value out of an update, so the
 *   latest `after` may lack some columns (listed in `unchanged`). For each such column
 *   the view takes its value from the nearest earlier live image of the same row that
 *   carried it (after not null and the column not in its `unchanged`) and appends
 *   `"col":value` to the latest `after` text. A value older than the table's history (or
 *   than a truncate) cannot be found: the column stays absent from `after` and listed in
 *   `unresolved`. The JSON is spliced as text (the last `}` of a canonical object), since
 *   GoogleSQL has no JSON merge; values are read with the JSON subscript operator and a
 *   column name taken from the row (PARSE_JSON(after)[col]), which, unlike a JSONPath,
 *   may be computed. PARSE_JSON uses wide_number_mode 'round' so a number with more
 *   digits than a FLOAT64 holds does not fail the whole view (PostgreSQL int8 and numeric
 *   arrive as strings, so this touches only float columns at their limit).
 * - primary-key changes: the old key's delete (moved_to) hides the old row like any
 *   delete; the new key's update carries `moved_from`. For the new key, images older than
 *   its latest move are another row's (a key used before), so the unchanged columns are
 *   looked up in the new key's images since that move, then in the old key's images
 *   before it (one hop: a column unchanged across two key changes in a row stays
 *   `unresolved`).
 *
 * The columns: those of the table but `before`, with `after` completed, plus `unresolved`.
 */
export function viewLatestSql(table: string): string {
  return `WITH events AS (
  SELECT * EXCEPT (_copy) FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY ingested_at) AS _copy
    FROM ${table}
  )
  WHERE _copy = 1
),
truncates AS (
  SELECT source_schema, source_table, MAX(version) AS truncated_at
  FROM events
  WHERE op = 'truncate'
  GROUP BY source_schema, source_table
),
live AS (
  SELECT e.*
  FROM events AS e
  LEFT JOIN truncates AS t ON t.source_schema = e.source_schema AND t.source_table = e.source_table
  WHERE e.op != 'truncate' AND (t.truncated_at IS NULL OR e.version > t.truncated_at)
),
latest AS (
  SELECT * EXCEPT (_rank) FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY source_schema, source_table, row_key ORDER BY version DESC, event_id DESC) AS _rank
    FROM live
  )
  WHERE _rank = 1
),
last_move AS (
  SELECT * EXCEPT (_move) FROM (
    SELECT m.source_schema, m.source_table, m.row_key, m.moved_from, m.version AS moved_at,
      ROW_NUMBER() OVER (PARTITION BY m.source_schema, m.source_table, m.row_key ORDER BY m.version DESC) AS _move
    FROM live AS m
    JOIN latest AS l ON l.source_schema = m.source_schema AND l.source_table = m.source_table AND l.row_key = m.row_key
    WHERE m.moved_from IS NOT NULL AND m.version <= l.version
  )
  WHERE _move = 1
),
toast_sources AS (
  SELECT l.source_schema, l.source_table, l.row_key, col, p.after AS source_after,
    ROW_NUMBER() OVER (PARTITION BY l.source_schema, l.source_table, l.row_key, col ORDER BY p.version DESC) AS _nearest
  FROM latest AS l
  CROSS JOIN UNNEST(l.unchanged) AS col
  LEFT JOIN last_move AS m ON m.source_schema = l.source_schema AND m.source_table = l.source_table AND m.row_key = l.row_key
  JOIN live AS p ON p.source_schema = l.source_schema AND p.source_table = l.source_table
    AND ((p.row_key = l.row_key AND p.version < l.version AND (m.moved_at IS NULL OR p.version >= m.moved_at))
      OR (p.row_key = m.moved_from AND p.version < m.moved_at))
  WHERE p.after IS NOT NULL AND col NOT IN UNNEST(p.unchanged)
),
toast AS (
  SELECT source_schema, source_table, row_key,
    STRING_AGG(CONCAT(TO_JSON_STRING(col), ':', COALESCE(TO_JSON_STRING(PARSE_JSON(source_after, wide_number_mode => 'round')[col]), 'null')), ',' ORDER BY col) AS pairs,
    ARRAY_AGG(col ORDER BY col) AS resolved
  FROM toast_sources
  WHERE _nearest = 1
  GROUP BY source_schema, source_table, row_key
)
SELECT
  l.event_id, l.op, l.source_schema, l.source_table, l.row_key, l.version, l.lsn, l.position, l.xid, l.commit_ts,
  CASE
    WHEN x.pairs IS NULL THEN l.after
    WHEN l.after = '{}' THEN CONCAT('{', x.pairs, '}')
    ELSE CONCAT(SUBSTR(l.after, 1, LENGTH(l.after) - 1), ',', x.pairs, '}')
  END AS after,
  l.unchanged,
  ARRAY(SELECT c FROM UNNEST(l.unchanged) AS c WHERE x.resolved IS NULL OR c NOT IN UNNEST(x.resolved)) AS unresolved,
  l.pipeline, l.moved_from, l.ingested_at
FROM latest AS l
LEFT JOIN toast AS x ON x.source_schema = l.source_schema AND x.source_table = l.source_table AND x.row_key = l.row_key
WHERE l.op != 'delete'`;
}
