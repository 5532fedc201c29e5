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
  // One row per key for the MERGE: the last delivered (file, then line order) among the rows
  // not known to be older than another row of the key — by the rows' own times, the same
  // rule the MERGE applies against the stored row (`newerRowCondition`).
  const time = rowTimeSql(undefined, rowTimeColumns(stage.schema.secondary!, [...columns]));
  const timed =
    `SELECT *, ${time} AS __talon_time, max(${time}) OVER (PARTITION BY ${ident(key)}) AS __talon_newest ` +
    `FROM (${inner})`;
  return (
    `SELECT * EXCLUDE (${ident(SRC_KEY)}, ${ident(LINE_KEY)}, __talon_rn, __talon_time, __talon_newest) FROM (` +
    `SELECT *, row_number() OVER (PARTITION BY ${ident(key)} ORDER BY ` +
    `(__talon_time IS NULL OR __talon_time >= __talon_newest) DESC, ` +
    `${ident(SRC_KEY)} DESC, ${ident(LINE_KEY)} DESC) AS __talon_rn ` +
    `FROM (${timed})) WHERE __talon_rn = 1 OR ${ident(key)} IS NULL`
  );
}

/**
 * Fields FDR stamps a secondary row with when it produces it, in order of preference: the
 * aidmaster/managedassets exports carry `Time` (some `_time` too), userinfo carries `_time`
 * (all epoch seconds with a fraction, as text). A row's time decides which of two rows for
 * the same host/user is newer — not the delivery order, which a replay or a late redelivery
 * can invert.
 */
const ROW_TIME_FIELDS: Record<string, readonly string[]> = {
  aidmaster: ['Time', '_time'],
  userinfo: ['_time', 'Time'],
};

/** The row-time columns of a secondary table that are among `columns` (case-sensitive, as stored). */
export function rowTimeColumns(secondary: string, columns: readonly string[]): string[] {
  const have = new Set(columns);
  return (ROW_TIME_FIELDS[secondary] ?? []).filter((f) => have.has(f));
}

/**
 * A secondary row's time as epoch seconds (DOUBLE), NULL when it has none: the first of
 * `columns` that holds epoch seconds or an ISO-8601 time. Values are text (secondary fields
 * are not typed); anything else is read through its text form.
 */
export function rowTimeSql(alias: string | undefined, columns: readonly string[]): string {
  if (columns.length === 0) return 'CAST(NULL AS DOUBLE)';
  const parts = columns.map((c) => {
    const v = `CAST(${alias ? `${alias}.` : ''}${ident(c)} AS VARCHAR)`;
    return `COALESCE(TRY_CAST(${v} AS DOUBLE), epoch(TRY_CAST(${v} AS TIMESTAMPTZ)))`;
  });
  return parts.length === 1 ? parts[0] : `COALESCE(${parts.join(', ')})`;
}

/**
 * The MERGE condition (aliases `t` target, `s` source) under which an incoming secondary row
 * replaces the stored one: unless it is known to be older — both rows have a time and the
 * incoming one is earlier. Rows without a time (`none`, a field the export lacks) cannot be
 * ordered and keep the last-delivered-wins rule. Undefined when the table stores no row time.
 */
export function newerRowCondition(
  secondary: string,
  targetColumns: readonly string[],
  sourceColumns: readonly string[],
): string | undefined {
  const t = rowTimeColumns(secondary, targetColumns);
  if (t.length === 0) return undefined;
  const tTime = rowTimeSql('t', t);
  const sTime = rowTimeSql('s', rowTimeColumns(secondary, sourceColumns));
  return `(${tTime}) IS NULL OR (${sTime}) IS NULL OR (${sTime}) >= (${tTime})`;
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
