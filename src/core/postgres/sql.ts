import pg from 'pg';

/** A PostgreSQL identifier, quoted (pg's own escapeIdentifier: `"` doubled, the whole in quotes). */
export const quoteIdent = (name: string): string => pg.escapeIdentifier(name);

/** `"schema"."table"`, each part quoted. */
export const quoteTable = (schema: string, table: string): string => `${quoteIdent(schema)}.${quoteIdent(table)}`;

/** `schema.table` as written in the config, quoted part by part. */
export const quoteQualified = (qualified: string): string => {
  const [schema, table] = qualified.split('.', 2) as [string, string];
  return quoteTable(schema, table);
};
