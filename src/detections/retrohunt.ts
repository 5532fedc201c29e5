/**
 * Retro-hunt: an IoC published today is matched against the events of the last N days.
 *
 * A streaming query over the change feed of `iocs`: each micro-batch holds the IoCs inserted,
 * re-activated or extended since the last one. Each gets a hunt window:
 * - a new IoC (insert): the whole look-back, up to the IoC's validity end (`last_seen`, NULL =
 *   still valid). Its feed first_seen is NOT a lower bound (that is the point: the events
 *   predate the publication).
 * - an updated one (update_postimage; its update_preimage is the row before the batch): only
 *   what was not matchable before — events after the old validity end when a MERGE extended
 *   last_seen (an expired IoC the feed re-publishes), the whole look-back when the row was
 *   allow-listed before and no longer is. An update that extends nothing hunts nothing, so
 *   re-loading a feed re-alerts nothing.
 * - allow-listed IoCs hunt nothing.
 * For every table of the ioc_match mapping it reads only the files that can hold a match —
 * partitions (event_date) inside the look-back, and, for a few hundred new hash/IP values,
 * files whose min/max stats of a mapped column can contain one of them — and joins the mapped
 * columns to the hunted IoCs exactly as live matching does (ioc-values.ts: equality, domain
 * suffixes, CIDR ranges).
 *
 * Alerts are ioc_match alerts: same detection id, dedup key (aid|ioc_type|ioc) and window, so
 * the alert id is the one live matching would give — a retro match of an event live matching
 * already alerted on merges into that alert instead of adding one. Retro alerts carry the tag
 * `retro`, a title saying so, and `"retro": true` in their evidence. One alert per
 * (aid, ioc_type, ioc) and hunt: the earliest sighting in the hunt window.
 */
import type { Detection, DetectSettings } from './detection.js';
import type { QueryDefinition } from '../engine/query.js';
import type { MicroBatch } from '../engine/batch.js';
import { alertRowsSql, alertsSinkFor } from '../alerts/alerts.js';
import { formatDuration } from '../engine/duration.js';
import { IOCS_TABLE } from '../intel/iocs.js';
import { ident, literal } from '../sql/duckdb.js';
import { hostNames, AIDMASTER } from './host.js';
import { iocMatch } from './ioc-match.js';
import { buildIocIndex, matchSql, type IocIndex, type MappedSource } from './ioc-values.js';

export const RETROHUNT_QUERY = 'ioc_retrohunt';
export const DEFAULT_RETROHUNT_LOOKBACK_MS = 30 * 24 * 3600_000;

/** Types whose event values are stored as the IoC is (hex hashes, IPs): safe for file stats. */
const STATS_SAFE = /^(FileHash-|IPv4$|IPv6$)/;
/** Above this many new values of a type, file stats are not worth the IN list. */
const STATS_MAX_VALUES = 1000;

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

/** One mapped table's events that can match, as a MappedSource; undefined when none can. */
async function huntSource(
  batch: MicroBatch,
  table: string,
  mapping: Record<string, string>,
  index: IocIndex,
  /** new values per type for file stats; null = too many to list */
  valuesByType: Map<string, string[] | null>,
  since: Date,
  opts: RetroHuntOptions,
): Promise<MappedSource | undefined> {
  const t = await batch.lake.table(table);
  if (!t) return undefined;
  const snap = await t.snapshot();
  if (snap.schema.fields.length === 0) return undefined;
  const top = new Map(snap.schema.fields.map((f) => [f.name.toLowerCase(), f.name]));
  const viaIndex = (type: string) =>
    (index.domains && (type === 'hostname' || type === 'domain')) ||
    (index.cidr4 && type === 'IPv4') ||
    (index.cidr6 && type === 'IPv6');
  const wanted = Object.entries(mapping).filter(
    ([col, type]) => top.has(col.split('.')[0].toLowerCase()) && (valuesByType.has(type) || viaIndex(type)),
  );
  if (wanted.length === 0) return undefined;
  // File pruning: the look-back's partitions, and per column the new values (raw and upper
  // case for hashes: min/max stats compare bytes). A column the filter reader cannot use
  // (struct fields, names, ranges, long value lists) only makes its OR branch "maybe".
  const ors = wanted.map(([col, type]) => {
    const actual = top.get(col.split('.')[0].toLowerCase())!;
    const vals = valuesByType.get(type);
    if (col.includes('.') || !STATS_SAFE.test(type) || viaIndex(type) || !vals) return 'true';
    const set = new Set<string>();
    for (const v of vals) {
      set.add(v);
      set.add(v.toUpperCase());
    }
    return `${ident(actual)} IN (${[...set].map(literal).join(', ')})`;
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
  const ts = ident(top.get('timestamp') ?? 'timestamp');
  const rel = `(SELECT * FROM ${await snap.scan(filter)} AS __e WHERE CAST(__e.${ts} AS TIMESTAMP) >= ${tsLiteral(since)})`;
  return {
    table,
    rel,
    cols: top,
    mapping: Object.fromEntries(wanted),
    versionSql: `CAST(${snap.version} AS BIGINT)`,
  };
}

/**
 * The IoCs a batch of the `iocs` change feed hunts, one row per (ioc_type, ioc) with the
 * window (__from, __to] (see the header).
 */
async function huntedIocs(batch: MicroBatch, src: string, since: Date): Promise<string> {
  const cols = await batch.columns(src);
  const allow = cols.has('allow_listed')
    ? `coalesce(CAST(${ident(cols.get('allow_listed')!)} AS BOOLEAN), false)`
    : 'false';
  const lookbackStart = `(${tsLiteral(since)} - INTERVAL 1 MICROSECOND)`;
  const [{ updates }] = await batch.db.all<{ updates: bigint }>(
    `SELECT count(*) AS updates FROM ${src} WHERE _change_type <> 'insert'`,
  );
  if (Number(updates) === 0) {
    // Only new IoCs (the usual feed load): no pre-images to compare with. A key inserted
    // twice in one batch only doubles matches the first-sighting step removes.
    return batch.temp(
      'hunted_iocs',
      `SELECT * EXCLUDE (_change_type, _commit_version, _commit_timestamp),
         ${lookbackStart} AS __from, coalesce(last_seen, ${batch.nowSql}) AS __to
       FROM ${src} WHERE NOT ${allow} AND coalesce(last_seen, ${batch.nowSql}) > ${lookbackStart}`,
    );
  }
  return batch.temp(
    'hunted_iocs',
    `WITH c AS (SELECT *, ${allow} AS __allow FROM ${src}),
     post AS (
       SELECT * FROM c WHERE _change_type IN ('insert', 'update_postimage')
       QUALIFY row_number() OVER (PARTITION BY ioc_type, ioc ORDER BY _commit_version DESC, last_seen DESC NULLS FIRST) = 1),
     first_change AS (
       SELECT ioc_type, ioc, _change_type AS kind, last_seen AS pre_last_seen, __allow AS pre_allow FROM c
       WHERE _change_type IN ('insert', 'update_preimage')
       QUALIFY row_number() OVER (PARTITION BY ioc_type, ioc ORDER BY _commit_version,
         CASE _change_type WHEN 'insert' THEN 0 ELSE 1 END) = 1)
     SELECT * FROM (
       SELECT p.* EXCLUDE (_change_type, _commit_version, _commit_timestamp, __allow),
         CASE WHEN f.kind IS NULL OR f.kind = 'insert' OR f.pre_allow THEN ${lookbackStart}
              WHEN f.pre_last_seen IS NULL THEN NULL
              ELSE greatest(${lookbackStart}, f.pre_last_seen) END AS __from,
         coalesce(p.last_seen, ${batch.nowSql}) AS __to
       FROM post p LEFT JOIN first_change f ON f.ioc_type = p.ioc_type AND f.ioc = p.ioc
       WHERE NOT p.__allow)
     WHERE __from IS NOT NULL AND __to > __from`,
  );
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
    // Same lane as ioc_match: both write ioc_match alerts, one after the other.
    lane: 'intel',
    description: `New, re-activated and extended IoCs matched against the last ${formatDuration(lookbackMs)} of events`,
    sources: [{ table: IOCS_TABLE, changeTypes: ['insert', 'update_preimage', 'update_postimage'] }],
    snapshots: [AIDMASTER],
    operators: [
      'hunt window per IoC (new: look-back; extended: after the old last_seen; allow-listed: none)',
      `scan(${tables.join(', ')}; event_date >= now - ${formatDuration(lookbackMs)}; stats on new values)`,
      'join(hunted iocs: ioc_type = ioc | domain ⊇ name | CIDR ∋ address; timestamp in (from, to])',
      'first sighting per (aid, ioc_type, ioc)',
    ],
    sinks: [alertsSinkFor(meta.windowMs)],
    async transform(batch) {
      const src = batch.source(IOCS_TABLE);
      if (!src) return {};
      const since = new Date(batch.now.getTime() - lookbackMs);
      const hunted = await huntedIocs(batch, src, since);
      const types = new Set(tables.flatMap((t) => Object.values(s.iocMappings[t])));
      const counts = await batch.db.all<{ ioc_type: string; n: bigint }>(
        `SELECT ioc_type, count(*) AS n FROM ${hunted} GROUP BY ioc_type`,
      );
      const matchable = counts.filter(
        (c) =>
          types.has(c.ioc_type) ||
          (c.ioc_type === 'domain' && types.has('hostname')) ||
          (c.ioc_type === 'IPv4-CIDR' && types.has('IPv4')) ||
          (c.ioc_type === 'IPv6-CIDR' && types.has('IPv6')),
      );
      batch.metrics.retrohunt_new_iocs = matchable.reduce((a, c) => a + Number(c.n), 0);
      if (batch.metrics.retrohunt_new_iocs === 0) return {};
      const index = await buildIocIndex(batch, hunted, types);
      // Value lists for file pruning, only for types with few new values.
      const few = matchable.filter((c) => STATS_SAFE.test(c.ioc_type) && Number(c.n) <= STATS_MAX_VALUES);
      const valuesByType = new Map<string, string[] | null>();
      for (const c of matchable) valuesByType.set(c.ioc_type, few.includes(c) ? [] : null);
      if (few.length) {
        const vals = await batch.db.all<{ ioc_type: string; ioc: string }>(
          `SELECT ioc_type, ioc FROM ${hunted} WHERE ioc_type IN (${few.map((c) => literal(c.ioc_type)).join(', ')})`,
        );
        for (const v of vals) valuesByType.get(v.ioc_type)!.push(v.ioc);
      }
      const sources: MappedSource[] = [];
      for (const table of tables) {
        const m = await huntSource(batch, table, s.iocMappings[table], index, valuesByType, since, opts);
        if (m) sources.push(m);
      }
      const match = matchSql(
        sources,
        index,
        (e, i) => `${e}.timestamp > ${i}.__from AND ${e}.timestamp <= ${i}.__to`,
        ['__from', '__to'],
      );
      if (!match) return {};
      const first = await batch.temp(
        'retro_first',
        `SELECT * FROM (${match}) QUALIFY row_number() OVER (
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
