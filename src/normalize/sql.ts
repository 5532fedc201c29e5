/**
 * The DuckDB query that turns one table's staging file into typed, enriched rows.
 *
 * DuckDB's JSON reader parses the staged lines with every column read as VARCHAR (a JSON
 * number arrives as its exact text, an object or array as JSON text); the typing rules then
 * CAST by field name, and the enrichment tables are LEFT JOINed by value.
 */
import { ident, literal } from '../sql/duckdb.js';
import { castSql } from './fields.js';
import { DOMAIN_FIELDS, IP_FIELDS, LINE_KEY, SRC_KEY, type TableStage } from './stager.js';

export interface RelationOptions {
  /** Temp table from Enricher.ipTable (ip, ip_class, geo, asn), when there were IPs. */
  ipTable?: string;
  /** Temp table from Enricher.domainTable (domain, psl), when there were domains. */
  domainTable?: string;
  /** Source file indexes whose rows must not be written (checksum mismatch, already committed). */
  excludeFiles?: number[];
  /** DuckDB's per-line JSON size limit; must exceed the longest staged line. */
  maxObjectBytes: number;
}

/** read_json(...) over the staging file, every field as VARCHAR. */
export function stagedScan(stage: TableStage, maxObjectBytes: number): string {
  const cols = [`${literal(SRC_KEY)}: 'INTEGER'`, `${literal(LINE_KEY)}: 'BIGINT'`];
  for (const f of stage.fields.values()) cols.push(`${literal(f.column)}: 'VARCHAR'`);
  return (
    `read_json(${literal(stage.file)}, format = 'newline_delimited', ` +
    `maximum_object_size = ${maxObjectBytes}, columns = {${cols.join(', ')}})`
  );
}

/**
 * SELECT producing the rows to write: typed field columns, `<ip field>_class/_geo/_as`,
 * `DomainName_psl`, and for event tables `event_date` (the DATE of `timestamp`, UTC).
 * Secondary tables: typed columns only; `userinfo` also gets `UserSid` (from
 * `UserSid_readable` when the row has no `UserSid`) as its join key.
 */
export function tableRelation(stage: TableStage, opts: RelationOptions): string {
  const schema = stage.schema;
  const select: string[] = [];
  const joins: string[] = [];
  const nullMarkers = schema.secondary !== undefined;
  const columns = new Set<string>();
  for (const f of stage.fields.values()) {
    select.push(`${castSql(f.kind, `e.${ident(f.column)}`, nullMarkers)} AS ${ident(f.column)}`);
    columns.add(f.column);
  }
  if (opts.ipTable) {
    let n = 0;
    for (const field of IP_FIELDS) {
      const f = stage.fields.get(field);
      if (!f) continue;
      const alias = `ip${n++}`;
      joins.push(`LEFT JOIN ${ident(opts.ipTable)} AS ${alias} ON ${alias}.ip = e.${ident(f.column)}`);
      select.push(
        `${alias}.ip_class AS ${ident(`${field}_class`)}`,
        `${alias}.geo AS ${ident(`${field}_geo`)}`,
        `${alias}.asn AS ${ident(`${field}_as`)}`,
      );
    }
  }
  if (opts.domainTable) {
    let n = 0;
    for (const field of DOMAIN_FIELDS) {
      const f = stage.fields.get(field);
      if (!f) continue;
      const alias = `dn${n++}`;
      joins.push(
        `LEFT JOIN ${ident(opts.domainTable)} AS ${alias} ON ${alias}.domain = e.${ident(f.column)}`,
      );
      select.push(`${alias}.psl AS ${ident(`${field}_psl`)}`);
    }
  }
  if (schema.secondary === 'userinfo') {
    const readable = stage.fields.get('UserSid_readable');
    if (!columns.has('UserSid') && readable) {
      select.push(`NULLIF(e.${ident(readable.column)}, '') AS "UserSid"`);
    } else if (columns.has('UserSid') && readable) {
      const i = select.findIndex((s) => s.endsWith(' AS "UserSid"'));
      select[i] = `COALESCE(NULLIF(e."UserSid", ''), NULLIF(e.${ident(readable.column)}, '')) AS "UserSid"`;
    }
  }
  const where = opts.excludeFiles?.length
    ? `WHERE e.${ident(SRC_KEY)} NOT IN (${opts.excludeFiles.join(', ')})`
    : '';
  const orderKey = `e.${ident(SRC_KEY)} AS ${ident(SRC_KEY)}, e.${ident(LINE_KEY)} AS ${ident(LINE_KEY)}`;
  const inner =
    `SELECT ${orderKey}, ${select.join(', ')} FROM ${stagedScan(stage, opts.maxObjectBytes)} AS e ` +
    `${joins.join(' ')} ${where}`;
  if (schema.secondary === undefined) {
    const ts = stage.fields.get('timestamp');
    const date = ts ? `CAST(${ident(ts.column)} AS DATE)` : 'CAST(NULL AS DATE)';
    return `SELECT * EXCLUDE (${ident(SRC_KEY)}, ${ident(LINE_KEY)}), ${date} AS event_date FROM (${inner})`;
  }
  const key = secondaryKey(stage);
  if (key === undefined) return `SELECT * EXCLUDE (${ident(SRC_KEY)}, ${ident(LINE_KEY)}) FROM (${inner})`;
  // the latest row per key wins (file order, then line order), so a MERGE sees one row per key
  return (
    `SELECT * EXCLUDE (${ident(SRC_KEY)}, ${ident(LINE_KEY)}, __talon_rn) FROM (` +
    `SELECT *, row_number() OVER (PARTITION BY ${ident(key)} ORDER BY ${ident(SRC_KEY)} DESC, ${ident(LINE_KEY)} DESC) AS __talon_rn ` +
    `FROM (${inner})) WHERE __talon_rn = 1 OR ${ident(key)} IS NULL`
  );
}

/** The key a secondary table is merged on (latest row per key wins), if it has one. */
export function secondaryKey(stage: TableStage): string | undefined {
  switch (stage.schema.secondary) {
    case 'aidmaster':
      return stage.fields.has('aid') ? stage.fields.get('aid')!.column : undefined;
    case 'userinfo':
      return stage.fields.has('UserSid') || stage.fields.has('UserSid_readable') ? 'UserSid' : undefined;
    default:
      return undefined;
  }
}
