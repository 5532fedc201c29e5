/**
 * Retro-hunt: an IoC published today is matched against the events of the last N days.
 *
 * A streaming query over the change feed of `iocs`: each micro-batch holds the IoCs inserted
 * since the last one. For every table of the ioc_match mapping it reads only the files that
 * can hold a match — partitions (event_date) inside the look-back, and files whose min/max
 * stats of a mapped hash/IP column can contain one of the new values — explodes the mapped
 * columns as ioc_match does, and joins them to the new IoCs. The IoC's feed first_seen is NOT
 * a lower bound here (that is the point: the events predate the publication); the upper bound
 * is the IoC's validity end (`last_seen`) as in live matching.
 *
 * Alerts are ioc_match alerts: same detection id, dedup key (aid|ioc_type|ioc) and window, so
 * the alert id is the one live matching would give — a retro match of an event live matching
 * already alerted on merges into that alert instead of adding one. Retro alerts carry the tag
 * `retro`, a title saying so, and `"retro": true` in their evidence. IPv4-CIDR IoCs match the
 * addresses of their range in the IPv4-mapped columns (ioc_type IPv4-CIDR, ioc = the network). One alert per
 * (aid, ioc_type, ioc): the earliest sighting in the look-back.
 */
import type { Detection, DetectSettings } from './detection.js';
import type { QueryDefinition } from '../engine/query.js';
import type { MicroBatch } from '../engine/batch.js';
import { alertRowsSql, alertsSink } from '../alerts/alerts.js';
import { columnOr, unionAll } from '../engine/operators.js';
import { formatDuration } from '../engine/duration.js';
import { IOCS_TABLE, normalizedIocSql } from '../intel/iocs.js';
import { literal } from '../sql/duckdb.js';
import { hostNames, AIDMASTER } from './host.js';
import { iocMatch } from './ioc-match.js';

export const RETROHUNT_QUERY = 'ioc_retrohunt';
export const DEFAULT_RETROHUNT_LOOKBACK_MS = 30 * 24 * 3600_000;
const COMMON = [
  ['event_simpleName', 'VARCHAR'],
  ['timestamp', 'TIMESTAMP'],
  ['id', 'VARCHAR'],
  ['aid', 'VARCHAR'],
  ['cid', 'VARCHAR'],
  ['aip', 'VARCHAR'],
] as const;

/** Types whose event values are stored as the IoC is (hex hashes, IPs): safe for file stats. */
const STATS_SAFE = /^(FileHash-|IPv4$|IPv6$)/;

function dateLiteral(d: Date): string {
  return `DATE ${literal(d.toISOString().slice(0, 10))}`;
}

function tsLiteral(d: Date): string {
  return `TIMESTAMP ${literal(d.toISOString().replace('T', ' ').replace('Z', ''))}`;
}

export interface RetroHuntOptions {
  lookbackMs?: number;
  /** Counted per batch: files scanned / skipped (for tests and the bench). */
  onScan?: (table: string, files: number, totalFiles: number) => void;
}

/** The matches of `newIocs` (a relation ioc_type, ioc, last_seen, …) in one mapped table. */
async function huntTable(
  batch: MicroBatch,
  table: string,
  mapping: Record<string, string>,
  newIocs: string,
  valuesByType: Map<string, string[]>,
  cidrs: string | undefined,
  since: Date,
  opts: RetroHuntOptions,
): Promise<string | undefined> {
  const t = await batch.lake.table(table);
  if (!t) return undefined;
  const snap = await t.snapshot();
  if (snap.schema.fields.length === 0) return undefined;
  const top = new Map(snap.schema.fields.map((f) => [f.name.toLowerCase(), f.name]));
  const wanted = Object.entries(mapping).filter(
    ([col, type]) =>
      top.has(col.split('.')[0].toLowerCase()) && (valuesByType.has(type) || (cidrs && type === 'IPv4')),
  );
  if (wanted.length === 0) return undefined;
  // File pruning: the look-back's partitions, and per column the new values (raw and upper
  // case for hashes: min/max stats compare bytes). A column the filter reader cannot use
  // (struct fields, names) only makes its OR branch "maybe".
  const ors = wanted.map(([col, type]) => {
    const actual = top.get(col.split('.')[0].toLowerCase())!;
    // CIDR IoCs match any address of their range: no value list for IPv4 columns then.
    if (col.includes('.') || !STATS_SAFE.test(type) || (cidrs && type === 'IPv4')) return 'true';
    if (!valuesByType.has(type)) return 'false';
    const vals = new Set<string>();
    for (const v of valuesByType.get(type)!) {
      vals.add(v);
      vals.add(v.toUpperCase());
    }
    return `"${actual}" IN (${[...vals].map(literal).join(', ')})`;
  });
  const partitioned = snap.partitionColumns.some((c) => c.toLowerCase() === 'event_date');
  const filter = [partitioned ? `event_date >= ${dateLiteral(since)}` : '', `(${ors.join(' OR ')})`]
    .filter(Boolean)
    .join(' AND ');
  const files = snap.prune(filter);
  opts.onScan?.(table, files.length, snap.files.length);
  batch.metrics[`retrohunt_files_${table}`] = files.length;
  batch.metrics[`retrohunt_files_total_${table}`] = snap.files.length;
  if (files.length === 0) return undefined;
  // The filter also applies to rows: exact for hash/IP columns, `true` for the others.
  const rel = await snap.scan(filter);
  const cols = new Map([...top].map(([k, v]) => [k, v]));
  const common = COMMON.map(([c, ty]) => columnOr(cols, c, ty));
  const parts = wanted.map(
    ([col, type]) =>
      `(SELECT ${common.join(', ')}, ${literal(type)} AS ioc_type, ` +
      `${normalizedIocSql(type, columnOr(cols, col, 'VARCHAR', '__v').replace(/ AS "__v"$/, ''))} AS ioc, ` +
      `${literal(table)} AS source_table, ${snap.version} AS source_version FROM ${rel} AS __e
       WHERE CAST(__e."${top.get('timestamp') ?? 'timestamp'}" AS TIMESTAMP) >= ${tsLiteral(since)})`,
  );
  const exploded = await batch.temp(`retro_${table}_events`, unionAll(parts)!);
  const cidrMatch = cidrs
    ? `UNION ALL BY NAME
     SELECT e.* REPLACE ('IPv4-CIDR' AS ioc_type, c.ioc AS ioc), c.dataset, c.ioc_id, c.first_seen AS ioc_first_seen,
       c.last_seen AS ioc_last_seen, c.description AS ioc_description
     FROM (SELECT *, ${ipv4IntSql('ioc')} AS __ip FROM ${exploded} WHERE ioc_type = 'IPv4') e
     JOIN ${cidrs} c ON e.__ip BETWEEN c.lo AND c.hi
     WHERE e.timestamp <= coalesce(c.last_seen, ${batch.nowSql})`
    : '';
  return batch.temp(
    `retro_${table}`,
    `SELECT * EXCLUDE (__ip) FROM (
     SELECT e.*, NULL::UBIGINT AS __ip, i.dataset, i.ioc_id, i.first_seen AS ioc_first_seen, i.last_seen AS ioc_last_seen,
       i.description AS ioc_description
     FROM ${exploded} e JOIN ${newIocs} i ON e.ioc_type = i.ioc_type AND e.ioc = i.ioc
     WHERE e.timestamp <= coalesce(i.last_seen, ${batch.nowSql})
     ${cidrMatch})`,
  );
}

/** A dotted-quad string as an integer (NULL when it is not one). */
function ipv4IntSql(v: string): string {
  const o = (n: number) => `CAST(split_part(${v}, '.', ${n}) AS UBIGINT)`;
  return `CASE WHEN regexp_full_match(${v}, '\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}')
    THEN ${o(1)} * 16777216 + ${o(2)} * 65536 + ${o(3)} * 256 + ${o(4)} END`;
}

export function retroHuntQuery(s: DetectSettings, opts: RetroHuntOptions = {}): QueryDefinition {
  const lookbackMs = opts.lookbackMs ?? DEFAULT_RETROHUNT_LOOKBACK_MS;
  const tables = Object.keys(s.iocMappings);
  const meta = {
    detection: iocMatch.id,
    severity: iocMatch.severity,
    title: iocMatch.title,
    tags: [...iocMatch.tags, 'retro'],
    windowMs: s.iocDedupWindowMs,
  };
  return {
    id: RETROHUNT_QUERY,
    detection: iocMatch.id,
    description: `New IoCs matched against the last ${formatDuration(lookbackMs)} of events`,
    sources: [{ table: IOCS_TABLE, changeTypes: ['insert'] }],
    snapshots: [AIDMASTER],
    operators: [
      `scan(${tables.join(', ')}; event_date >= now - ${formatDuration(lookbackMs)}; stats on new values)`,
      'explode(ioc mapping)',
      'join(new iocs on ioc_type, ioc, timestamp <= coalesce(last_seen, now))',
      'first sighting per (aid, ioc_type, ioc)',
    ],
    sinks: [alertsSink],
    async transform(batch) {
      const src = batch.source(IOCS_TABLE);
      if (!src) return {};
      const newIocs = await batch.temp(
        'new_iocs',
        `SELECT ioc_type, ioc, dataset, ioc_id, first_seen, last_seen, description FROM ${src}
         QUALIFY row_number() OVER (PARTITION BY ioc_type, ioc ORDER BY last_seen DESC NULLS FIRST) = 1`,
      );
      const types = new Set(tables.flatMap((t) => Object.values(s.iocMappings[t])));
      const vals = await batch.db.all<{ ioc_type: string; ioc: string }>(
        `SELECT ioc_type, ioc FROM ${newIocs} WHERE ioc_type IN (${[...types].map(literal).join(', ') || "''"})`,
      );
      const cidrRows = types.has('IPv4')
        ? await batch.db.all<{ ioc: string }>(`SELECT ioc FROM ${newIocs} WHERE ioc_type = 'IPv4-CIDR'`)
        : [];
      batch.metrics.retrohunt_new_iocs = vals.length + cidrRows.length;
      if (vals.length === 0 && cidrRows.length === 0) return {};
      let cidrs: string | undefined;
      if (cidrRows.length) {
        const ranges = cidrRows.map(({ ioc }) => {
          const [net, p] = ioc.split('/');
          const lo = net.split('.').reduce((a, x) => a * 256 + Number(x), 0);
          return `(${literal(ioc)}, ${lo}, ${lo + 2 ** (32 - Number(p)) - 1})`;
        });
        cidrs = await batch.temp(
          'new_cidrs',
          `SELECT r.ioc, CAST(r.lo AS UBIGINT) AS lo, CAST(r.hi AS UBIGINT) AS hi, i.dataset, i.ioc_id, i.first_seen,
             i.last_seen, i.description
           FROM (VALUES ${ranges.join(', ')}) r(ioc, lo, hi) JOIN ${newIocs} i ON i.ioc_type = 'IPv4-CIDR' AND i.ioc = r.ioc`,
        );
      }
      const valuesByType = new Map<string, string[]>();
      for (const v of vals) {
        const l = valuesByType.get(v.ioc_type) ?? [];
        l.push(v.ioc);
        valuesByType.set(v.ioc_type, l);
      }
      const since = new Date(batch.now.getTime() - lookbackMs);
      const parts: string[] = [];
      for (const table of tables) {
        const m = await huntTable(
          batch,
          table,
          s.iocMappings[table],
          newIocs,
          valuesByType,
          cidrs,
          since,
          opts,
        );
        if (m) parts.push(m);
      }
      const union = unionAll(parts);
      if (!union) return {};
      const first = await batch.temp(
        'retro_first',
        `SELECT * FROM (${union}) QUALIFY row_number() OVER (
           PARTITION BY aid, ioc_type, ioc ORDER BY timestamp, source_table, id) = 1`,
      );
      const hosts = await hostNames(batch);
      const matched = await batch.temp(
        'retro_matched',
        `SELECT m.*, ${hosts ? 'h.ComputerName' : 'NULL::VARCHAR AS ComputerName'}, true AS retro FROM ${first} m
         ${hosts ? `LEFT JOIN ${hosts} h ON h.aid = m.aid` : ''}`,
      );
      const candidates = `(SELECT
          aid || '|' || ioc_type || '|' || ioc AS dedup_key,
          timestamp AS event_time,
          ${literal(`${iocMatch.title} (retro-hunt)`)} AS title,
          'retro-hunt: ' || ioc_type || ' ' || ioc || ' from ' || coalesce(dataset, 'threat intel') ||
            ' was seen earlier in ' || event_simpleName || ' on ' || coalesce(ComputerName, aid) AS description,
          aid, ComputerName AS host, NULL::VARCHAR AS "user",
          source_table AS evidence_table, source_version AS evidence_version,
          CAST(to_json(m) AS VARCHAR) AS evidence
        FROM ${matched} m)`;
      return { alerts: alertRowsSql(meta, candidates, batch.nowSql) };
    },
  };
}

/**
 * The retro-hunt as a detection (for BUILT_IN_DETECTIONS, so `talon detect` runs it): its
 * alerts are ioc_match alerts; only its query id differs.
 */
export const iocRetroHunt: Detection = {
  id: 'ioc_retrohunt',
  title: 'Indicator of compromise found in past events (retro-hunt)',
  description: 'A newly loaded IoC matched events from the look-back period (default 30 days).',
  severity: iocMatch.severity,
  tags: [...iocMatch.tags, 'retro'],
  sources: [IOCS_TABLE],
  dedupKey: ['aid', 'ioc_type', 'ioc'],
  windowMs: 24 * 3600_000,
  origin: 'built-in',
  queries(s: DetectSettings): QueryDefinition[] {
    return [retroHuntQuery(s)];
  },
};
