/**
 * The seed's IoC matching, generated from the mapping (table → column → ioc_type), never
 * hand-written per table: every mapped column of every mapped table is matched against the
 * current `iocs` table on (ioc_type, ioc) with the event time inside
 * [first_seen, coalesce(last_seen, now)], and matches are deduplicated for 24 h per
 * (aid, ioc_type, ioc) with an event-time watermark. Empty values are dropped and counted
 * (expect_or_drop "valid iocs"). Matching extensions (ioc-values.ts): a `domain` IoC matches
 * its subdomains, CIDR IoCs the addresses inside them; allow-listed IoCs never match.
 *
 * The IoC side is prepared once per version of `iocs` and kept between micro-batches
 * (ioc-values.ts, cachedIocIndex), not rebuilt from the Delta snapshot in every batch.
 *
 * Cost follows the matches, not the events: the batch's rows are not copied or exploded into
 * one row per (event, column). Each mapped column is read straight from the batch's Parquet
 * files and probed against a hash table of the IoCs; rows go on only when they match. The
 * expectation counts and the watermark's max event time come from one narrow aggregate per
 * table.
 *
 * The join runs before the dedup (the seed dedups first): a sighting outside an IoC's
 * validity then cannot hide a valid one a few hours later, and the dedup state only holds
 * matched keys, not every hash the fleet ever saw.
 */
import type { Detection, DetectSettings } from './detection.js';
import type { QueryDefinition } from '../engine/query.js';
import type { MicroBatch } from '../engine/batch.js';
import { alertRowsSql, alertsSinkFor } from '../alerts/alerts.js';
import { columnOr, dedupWithWatermark } from '../engine/operators.js';
import { hostNames, AIDMASTER } from './host.js';
import { IOCS_TABLE } from '../intel/iocs.js';
import { formatDuration } from '../engine/duration.js';
import {
  cachedIocIndex,
  COMMON_COLUMNS,
  matchByValue,
  probesOf,
  probeValues,
  type MappedSource,
  type Probe,
} from './ioc-values.js';

export const MATCHED_IOCS = 'matched_iocs';
export const IOC_DEDUP_STATE = 'ioc_match_dedup_state';
/** The mapped sources present in the batch, with their columns. */
async function mappedSources(
  batch: MicroBatch,
  mappings: Record<string, Record<string, string>>,
): Promise<MappedSource[]> {
  const out: MappedSource[] = [];
  for (const [table, mapping] of Object.entries(mappings)) {
    const rel = batch.source(table);
    if (!rel) continue;
    out.push({ table, rel, cols: await batch.columns(rel), mapping, versionSql: '_commit_version' });
  }
  return out;
}

/**
 * expect_or_drop(valid iocs) counts, from the distinct values of the mapped columns (a value
 * is valid when it is neither NULL nor empty), and the stream's max event time: one narrow
 * aggregate over every table's event time.
 */
async function countAndMaxTime(
  batch: MicroBatch,
  sources: MappedSource[],
  probes: Probe[],
  values: string | undefined,
): Promise<number | undefined> {
  // With values (an IoC index to match) the counts come from them; without, from the columns.
  const counted = values
    ? `SELECT sum(__n) FILTER (WHERE __raw IS NULL OR __raw = '') AS failed,
         sum(__n) FILTER (WHERE __raw <> '') AS passed FROM ${values}`
    : `SELECT count(*) FILTER (WHERE __raw IS NULL OR __raw = '') AS failed,
         count(*) FILTER (WHERE __raw <> '') AS passed
       FROM (${probes.map((p) => `SELECT ${p.raw} AS __raw FROM ${p.src.rel}`).join(' UNION ALL ')})`;
  const row = probes.length
    ? (await batch.db.all<{ failed: bigint | null; passed: bigint | null }>(counted))[0]
    : { failed: 0, passed: 0 };
  batch.metrics['expect.valid_iocs.failed'] =
    (batch.metrics['expect.valid_iocs.failed'] ?? 0) + Number(row.failed ?? 0);
  batch.metrics['expect.valid_iocs.passed'] =
    (batch.metrics['expect.valid_iocs.passed'] ?? 0) + Number(row.passed ?? 0);
  // max() before any conversion: a TIMESTAMPTZ → TIMESTAMP cast per row goes through ICU and
  // cost more than the rest of the aggregate.
  const times = sources
    .filter((src) => src.cols.has('timestamp'))
    .map(
      (src) =>
        `SELECT max(${columnOr(src.cols, 'timestamp', 'TIMESTAMP WITH TIME ZONE', '__t').replace(/ AS "__t"$/, '')}) AS t FROM ${src.rel}`,
    );
  if (times.length === 0) return undefined;
  const t = (
    await batch.db.all<{ t: bigint | number | null }>(
      `SELECT epoch_ms(max(t)) AS t FROM (${times.join(' UNION ALL ')})`,
    )
  )[0].t;
  return t === null || t === undefined ? undefined : Number(t);
}

export const iocMatch: Detection = {
  id: 'ioc_match',
  title: 'Indicator of compromise observed',
  description:
    'A file hash, domain, host name or IP address from threat intelligence was seen on an endpoint.',
  severity: 'high',
  tags: ['attack.command_and_control', 'attack.execution', 'threat_intel'],
  sources: Object.keys(DEFAULT_SOURCES()),
  dedupKey: ['aid', 'ioc_type', 'ioc'],
  windowMs: 24 * 3600_000,
  origin: 'built-in',
  queries(s: DetectSettings): QueryDefinition[] {
    const windowMs = s.iocDedupWindowMs;
    const meta = {
      detection: this.id,
      severity: this.severity,
      title: this.title,
      tags: this.tags,
      windowMs,
    };
    const tables = Object.keys(s.iocMappings);
    return [
      {
        id: 'ioc_match',
        detection: this.id,
        // Matching against the IoC list runs beside the other detections, on a second core.
        lane: 'intel',
        description: this.description,
        sources: tables.map((table) => ({
          table,
          columns: [...COMMON_COLUMNS.map(([c]) => c), ...Object.keys(s.iocMappings[table])],
        })),
        snapshots: [IOCS_TABLE, IOC_DEDUP_STATE, AIDMASTER],
        stateTables: [IOC_DEDUP_STATE],
        operators: [
          ...tables.map(
            (t) =>
              `probe(${t}: ${Object.entries(s.iocMappings[t])
                .map(([c, ty]) => `${c}→${ty}`)
                .join(', ')})`,
          ),
          "expect_or_drop(valid iocs: ioc is not null and ioc <> '')",
          'join(iocs not allow-listed: ioc_type = ioc | domain ⊇ name | CIDR ∋ address; timestamp in [first_seen, coalesce(last_seen, now)])',
          `union(${tables.length})`,
          `dedup(aid, ioc_type, ioc; watermark timestamp ${formatDuration(windowMs)})`,
        ],
        sinks: [{ name: 'matched_iocs', table: MATCHED_IOCS, mode: 'append' }, alertsSinkFor(windowMs)],
        async transform(batch) {
          const sources = await mappedSources(batch, s.iocMappings);
          if (sources.length === 0) return {};
          const probes = probesOf(sources);
          const types = new Set(sources.flatMap((x) => Object.values(x.mapping)));
          // Built once per `iocs` version (the one in this batch's offsets) and kept in the
          // DuckDB instance between batches; a replay gets the index of its planned version.
          const index = await cachedIocIndex(batch, IOCS_TABLE, types);
          const values =
            index && probes.length ? await probeValues((l, q) => batch.temp(l, q), probes) : undefined;
          const t = await countAndMaxTime(batch, sources, probes, values);
          const match =
            index && values
              ? await matchByValue(
                  batch.db,
                  (label, sql) => batch.temp(label, sql),
                  probes,
                  values,
                  index,
                  (e, i) =>
                    `${e}.timestamp >= ${i}.first_seen AND ${e}.timestamp <= coalesce(${i}.last_seen, ${batch.nowSql})`,
                )
              : undefined;
          const joined =
            match ??
            `SELECT NULL::VARCHAR AS event_simpleName, NULL::TIMESTAMP AS timestamp, NULL::VARCHAR AS id,
               NULL::VARCHAR AS aid, NULL::VARCHAR AS cid, NULL::VARCHAR AS aip, NULL::VARCHAR AS ioc_type,
               NULL::VARCHAR AS ioc, NULL::VARCHAR AS source_table, NULL::BIGINT AS source_version,
               NULL::VARCHAR AS dataset, NULL::VARCHAR AS ioc_id, NULL::TIMESTAMP AS ioc_first_seen,
               NULL::TIMESTAMP AS ioc_last_seen, NULL::VARCHAR AS ioc_description WHERE false`;
          // One row per event and IoC even when several feeds list the same indicator; the
          // dedup materializes it (one statement, not a temp table per step).
          const perEvent = `(SELECT * FROM (${joined}) QUALIFY row_number() OVER (
               PARTITION BY source_table, id, aid, timestamp, ioc_type, ioc ORDER BY dataset, ioc_id) = 1)`;
          const kept = await dedupWithWatermark(batch, perEvent, {
            name: 'ioc_match',
            keys: ['aid', 'ioc_type', 'ioc'],
            timeColumn: 'timestamp',
            windowMs,
            stateTable: IOC_DEDUP_STATE,
            maxEventTimeMs: t,
          });
          const hosts = await hostNames(batch);
          const matched = await batch.temp(
            'matched',
            `SELECT m.*, ${hosts ? 'h.ComputerName' : 'NULL::VARCHAR AS ComputerName'} FROM ${kept} m
             ${hosts ? `LEFT JOIN ${hosts} h ON h.aid = m.aid` : ''}`,
          );
          const candidates = `(SELECT
              aid || '|' || ioc_type || '|' || ioc AS dedup_key,
              timestamp AS event_time,
              NULL::VARCHAR AS title,
              ioc_type || ' ' || ioc || ' from ' || coalesce(dataset, 'threat intel') || ' seen in ' ||
                event_simpleName || ' on ' || coalesce(ComputerName, aid) AS description,
              aid, ComputerName AS host, NULL::VARCHAR AS "user",
              source_table AS evidence_table, source_version AS evidence_version,
              CAST(to_json(m) AS VARCHAR) AS evidence
            FROM ${matched} m)`;
          return {
            matched_iocs: `SELECT * EXCLUDE (source_version) FROM ${matched}`,
            alerts: alertRowsSql(meta, candidates, batch.nowSql),
          };
        },
      },
    ];
  },
};

function DEFAULT_SOURCES(): Record<string, unknown> {
  return {
    ProcessRollup2: 1,
    SyntheticProcessRollup2: 1,
    SuspiciousPeFileWritten: 1,
    SuspiciousRegAsepUpdate: 1,
    DnsRequest: 1,
    NetworkConnectIP4: 1,
    NetworkReceiveAcceptIP4: 1,
  };
}
