/**
 * The seed's IoC matching, generated from the mapping (table → column → ioc_type), never
 * hand-written per table: every mapped table explodes into rows of
 * (event_simpleName, timestamp, id, aid, cid, aip, ioc_type, ioc); empty iocs are dropped
 * (expect_or_drop "valid iocs"); the union is joined to the current `iocs` table on
 * ioc_type/ioc with the event time inside [first_seen, coalesce(last_seen, now)], and
 * deduplicated for 24 h per (aid, ioc_type, ioc) with an event-time watermark.
 *
 * The join runs before the dedup (the seed dedups first): a sighting outside an IoC's
 * validity then cannot hide a valid one a few hours later, and the dedup state only holds
 * matched keys, not every hash the fleet ever saw.
 */
import type { Detection, DetectSettings } from './detection.js';
import type { QueryDefinition } from '../engine/query.js';
import type { MicroBatch } from '../engine/batch.js';
import { alertRowsSql, alertsSink } from '../alerts/alerts.js';
import { applyExpectations, columnOr, dedupWithWatermark, unionAll } from '../engine/operators.js';
import { hostNames, AIDMASTER } from './host.js';
import { IOCS_TABLE, normalizedIocSql } from '../intel/iocs.js';
import { formatDuration } from '../engine/duration.js';
import { literal } from '../sql/duckdb.js';

export const MATCHED_IOCS = 'matched_iocs';
export const IOC_DEDUP_STATE = 'ioc_match_dedup_state';
const COMMON = [
  ['event_simpleName', 'VARCHAR'],
  ['timestamp', 'TIMESTAMP'],
  ['id', 'VARCHAR'],
  ['aid', 'VARCHAR'],
  ['cid', 'VARCHAR'],
  ['aip', 'VARCHAR'],
] as const;

/** One SELECT per mapped column of a source present in the batch. */
/**
 * One SELECT per mapped column of each table present in the batch — the seed's
 * posexplode(create_map(...)) as a UNION ALL (DuckDB runs the union of narrow scans faster
 * than an unnest of a list of structs).
 */
export async function explodeIocs(
  batch: MicroBatch,
  mappings: Record<string, Record<string, string>>,
): Promise<string | undefined> {
  const parts: string[] = [];
  for (const [table, mapping] of Object.entries(mappings)) {
    const rel = batch.source(table);
    if (!rel) continue;
    const cols = await batch.columns(rel);
    const common = COMMON.map(([c, t]) => columnOr(cols, c, t));
    for (const [column, iocType] of Object.entries(mapping)) {
      if (!cols.has(column.split('.')[0].toLowerCase())) continue;
      const value = columnOr(cols, column, 'VARCHAR', '__v').replace(/ AS "__v"$/, '');
      parts.push(
        `(SELECT ${common.join(', ')}, ${literal(iocType)} AS ioc_type, ${normalizedIocSql(iocType, value)} AS ioc, ` +
          `${literal(table)} AS source_table, _commit_version AS source_version FROM ${rel})`,
      );
    }
  }
  return unionAll(parts);
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
        description: this.description,
        sources: tables.map((table) => ({
          table,
          columns: [...COMMON.map(([c]) => c), ...Object.keys(s.iocMappings[table])],
          materialize: true,
        })),
        snapshots: [IOCS_TABLE, IOC_DEDUP_STATE, AIDMASTER],
        stateTables: [IOC_DEDUP_STATE],
        operators: [
          ...tables.map(
            (t) =>
              `explode(${t}: ${Object.entries(s.iocMappings[t])
                .map(([c, ty]) => `${c}→${ty}`)
                .join(', ')})`,
          ),
          "expect_or_drop(valid iocs: ioc is not null and ioc <> '')",
          `union(${tables.length})`,
          'join(iocs on ioc_type, ioc, timestamp in [first_seen, coalesce(last_seen, now)])',
          `dedup(aid, ioc_type, ioc; watermark timestamp ${formatDuration(windowMs)})`,
        ],
        sinks: [{ name: 'matched_iocs', table: MATCHED_IOCS, mode: 'append' }, alertsSink],
        async transform(batch) {
          const union = await explodeIocs(batch, s.iocMappings);
          if (!union) return {};
          // Views up to the join: the explode, the filter and the hash join against iocs run
          // as one DuckDB pipeline; only matches are materialized.
          const exploded = await batch.view('exploded', union);
          const valid = await applyExpectations(
            batch,
            exploded,
            [{ name: 'valid_iocs', condition: `ioc IS NOT NULL AND ioc <> ''`, action: 'drop' }],
            { materialize: false },
          );
          // The watermark follows the stream's event time: the max timestamp of the mapped
          // sources, read from their timestamp column alone.
          const maxParts: string[] = [];
          for (const table of Object.keys(s.iocMappings)) {
            const rel = batch.source(table);
            if (rel && (await batch.columns(rel)).has('timestamp'))
              maxParts.push(`SELECT max(timestamp) AS m FROM ${rel}`);
          }
          const maxT = maxParts.length
            ? await batch.db.all<{ t: number | null }>(
                `SELECT epoch_ms(max(m)) AS t FROM (${maxParts.join(' UNION ALL ')})`,
              )
            : [];
          const iocs = await batch.snapshot(IOCS_TABLE);
          const joined = await batch.temp(
            'joined',
            iocs
              ? `SELECT e.*, i.dataset, i.ioc_id, i.first_seen AS ioc_first_seen, i.last_seen AS ioc_last_seen,
                   i.description AS ioc_description
                 FROM ${valid} e JOIN ${iocs} i
                   ON e.ioc_type = i.ioc_type AND e.ioc = i.ioc
                 -- The validity window as one CASE, not two comparisons: with two inequality
                 -- conditions DuckDB plans an inequality join instead of a hash join on the IoC.
                 WHERE CASE WHEN e.timestamp >= i.first_seen AND e.timestamp <= coalesce(i.last_seen, ${batch.nowSql})
                            THEN true ELSE false END`
              : `SELECT *, NULL::VARCHAR AS dataset, NULL::VARCHAR AS ioc_id, NULL::TIMESTAMP AS ioc_first_seen,
                   NULL::TIMESTAMP AS ioc_last_seen, NULL::VARCHAR AS ioc_description FROM ${valid} WHERE false`,
          );
          // One row per event and IoC even when several feeds list the same indicator.
          const perEvent = await batch.temp(
            'per_event',
            `SELECT * FROM ${joined} QUALIFY row_number() OVER (
               PARTITION BY source_table, id, aid, timestamp, ioc_type, ioc ORDER BY dataset, ioc_id) = 1`,
          );
          const t = maxT[0]?.t;
          const kept = await dedupWithWatermark(batch, perEvent, {
            name: 'ioc_match',
            keys: ['aid', 'ioc_type', 'ioc'],
            timeColumn: 'timestamp',
            windowMs,
            stateTable: IOC_DEDUP_STATE,
            maxEventTimeMs: t === null || t === undefined ? undefined : Number(t),
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
