/**
 * The one `alerts` table. An alert's id is deterministic — sha256 of detection, dedup key and
 * window bucket — and alerts are MERGEd on it with whenMatched 'ignore': a replayed batch, a
 * re-run detection or an overlapping retro-hunt never adds the same alert twice, and the first
 * detection time and triage status are kept.
 */
import { ident, literal } from '../sql/duckdb.js';
import type { Db } from '../sql/duckdb.js';
import type { Lake } from '../lake/lake.js';
import type { SinkSpec } from '../engine/query.js';

export const ALERTS_TABLE = 'alerts';

export type Severity = 'info' | 'low' | 'medium' | 'high' | 'critical';
export const SEVERITIES: Severity[] = ['info', 'low', 'medium', 'high', 'critical'];

export type AlertStatus = 'open' | 'acknowledged' | 'closed';

export interface Alert {
  alert_id: string;
  detection: string;
  severity: Severity;
  title: string;
  description: string;
  event_time: string;
  detected_at: string;
  aid: string | null;
  host: string | null;
  user: string | null;
  dedup_key: string;
  evidence_table: string | null;
  evidence_version: number | null;
  evidence: unknown;
  tags: string[];
  status: AlertStatus;
}

/** What a detection says about the alert it raises (fixed per detection). */
export interface AlertMeta {
  detection: string;
  severity: Severity;
  title: string;
  tags: string[];
  /** Alerts of one dedup key within one bucket of this size are one alert; 0 = once ever. */
  windowMs: number;
}

/**
 * Columns a detection's alert candidates carry (any extra columns are ignored):
 * dedup_key VARCHAR, event_time TIMESTAMP, description VARCHAR, aid, host, user VARCHAR,
 * evidence_table VARCHAR, evidence_version BIGINT, evidence VARCHAR (JSON text), and
 * title VARCHAR (NULL = the detection's title).
 */
export function alertRowsSql(meta: AlertMeta, candidates: string, detectedAt: string): string {
  const bucket =
    meta.windowMs > 0
      ? `CAST(floor(epoch_ms(event_time) / ${meta.windowMs}) AS BIGINT)`
      : `CAST(0 AS BIGINT)`;
  const tags = `[${meta.tags.map(literal).join(', ')}]::VARCHAR[]`;
  return `
SELECT
  substr(sha256(${literal(meta.detection)} || '|' || dedup_key || '|' || CAST(__bucket AS VARCHAR)), 1, 32) AS alert_id,
  ${literal(meta.detection)} AS detection,
  ${literal(meta.severity)} AS severity,
  CAST(coalesce(__title, ${literal(meta.title)}) AS VARCHAR) AS title,
  CAST(description AS VARCHAR) AS description,
  CAST(event_time AS TIMESTAMP) AS event_time,
  CAST(${detectedAt} AS TIMESTAMP) AS detected_at,
  CAST(aid AS VARCHAR) AS aid,
  CAST(host AS VARCHAR) AS host,
  CAST("user" AS VARCHAR) AS "user",
  CAST(dedup_key AS VARCHAR) AS dedup_key,
  CAST(evidence_table AS VARCHAR) AS evidence_table,
  CAST(evidence_version AS BIGINT) AS evidence_version,
  CAST(evidence AS VARCHAR) AS evidence,
  ${tags} AS tags,
  'open' AS status
FROM (
  SELECT *, row_number() OVER (PARTITION BY dedup_key, __bucket ORDER BY event_time, evidence) AS __rn
  FROM (SELECT *, ${bucket} AS __bucket, title AS __title FROM ${candidates})
)
WHERE __rn = 1 AND dedup_key IS NOT NULL`;
}

/** The alerts sink of a query: MERGE on alert_id, existing alerts untouched. */
export const alertsSink: SinkSpec = {
  name: 'alerts',
  table: ALERTS_TABLE,
  mode: 'merge',
  merge: { on: ['alert_id'], whenMatched: 'ignore', whenNotMatched: 'insert' },
  // Change data feed on: notifiers read new alerts from it; without it a copy-on-write MERGE
  // would present rewritten old alerts as new files.
  create: {
    description: 'Talon alerts (one row per detection, dedup key and window)',
    properties: { 'delta.enableChangeDataFeed': 'true' },
  },
};

/**
 * The alerts sink of a detection whose alerts use `windowMs` buckets. Its MERGE reads only the
 * alerts files that can hold one of the new ids: an id is sha256(detection, dedup key,
 * bucket), so an equal one has the same detection and an event time in the same bucket —
 * files of other detections or of other times are left out by their stats. Without this,
 * every micro-batch of every detection read the id of every alert ever raised.
 */
export function alertsSinkFor(windowMs: number): SinkSpec {
  return { ...alertsSink, mergeTargetFilter: (db, staged) => alertsTargetFilter(db, staged, windowMs) };
}

/** The predicate of alertsSinkFor: per detection of the staged alerts, its bucket range. */
export async function alertsTargetFilter(
  db: Db,
  staged: string,
  windowMs: number,
): Promise<string | undefined> {
  const rows = await db.all<{ d: string | null; lo: bigint | number | null; hi: bigint | number | null }>(
    `SELECT detection AS d, epoch_ms(min(event_time)) AS lo, epoch_ms(max(event_time)) AS hi
     FROM ${staged} GROUP BY 1`,
  );
  if (rows.length === 0 || rows.some((r) => r.d === null)) return undefined;
  const ts = (ms: number) =>
    `TIMESTAMP ${literal(new Date(ms).toISOString().replace('T', ' ').replace('Z', ''))}`;
  return rows
    .map((r) => {
      const det = `detection = ${literal(r.d!)}`;
      // No time bound when buckets are "once ever" or the times are unknown (a NULL event
      // time gives a NULL id, which matches nothing anyway).
      if (windowMs <= 0 || r.lo === null || r.hi === null) return `(${det})`;
      const start = Math.floor(Number(r.lo) / windowMs) * windowMs;
      const end = (Math.floor(Number(r.hi) / windowMs) + 1) * windowMs;
      return `(${det} AND event_time >= ${ts(start)} AND event_time < ${ts(end)})`;
    })
    .join(' OR ');
}

/** An empty relation with the alerts schema (for creating the table, listing an empty lake). */
export const EMPTY_ALERTS_SQL = alertRowsSql(
  { detection: 'none', severity: 'info', title: '', tags: [], windowMs: 0 },
  `(SELECT NULL::VARCHAR AS dedup_key, NULL::TIMESTAMP AS event_time, NULL::VARCHAR AS description,
     NULL::VARCHAR AS aid, NULL::VARCHAR AS host, NULL::VARCHAR AS "user", NULL::VARCHAR AS evidence_table,
     NULL::BIGINT AS evidence_version, NULL::VARCHAR AS evidence, NULL::VARCHAR AS title WHERE false)`,
  'now()',
);

export interface AlertFilter {
  /** ISO time or epoch ms: alerts detected at or after. */
  since?: Date;
  /** minimum severity */
  severity?: Severity;
  detection?: string;
  status?: AlertStatus;
  limit?: number;
}

export function severityRank(s: string): number {
  return SEVERITIES.indexOf(s as Severity);
}

export async function listAlerts(lake: Lake, f: AlertFilter = {}): Promise<Alert[]> {
  const table = await lake.table(ALERTS_TABLE);
  if (!table) return [];
  const snap = await table.snapshot();
  if (snap.schema.fields.length === 0) return [];
  const where: string[] = [];
  if (f.since) where.push(`detected_at >= ${timestampLiteral(f.since)}`);
  if (f.severity) {
    const ok = SEVERITIES.slice(Math.max(0, severityRank(f.severity)));
    where.push(`severity IN (${ok.map(literal).join(', ')})`);
  }
  if (f.detection) where.push(`detection = ${literal(f.detection)}`);
  if (f.status) where.push(`status = ${literal(f.status)}`);
  const sql = `SELECT * REPLACE (${isoSql('event_time')} AS event_time, ${isoSql('detected_at')} AS detected_at)
    FROM ${await snap.scan()} ${where.length ? 'WHERE ' + where.join(' AND ') : ''}
    ORDER BY event_time, detection, alert_id ${f.limit ? `LIMIT ${Math.floor(f.limit)}` : ''}`;
  const rows = await lake.db.allJson<Record<string, unknown>>(sql);
  return rows.map(toAlert);
}

function toAlert(r: Record<string, unknown>): Alert {
  let evidence: unknown = r.evidence;
  if (typeof evidence === 'string') {
    try {
      evidence = JSON.parse(evidence);
    } catch {
      // keep the text as it is
    }
  }
  return {
    ...(r as unknown as Alert),
    evidence_version: r.evidence_version === null ? null : Number(r.evidence_version),
    evidence,
    tags: (r.tags as string[] | null) ?? [],
  };
}

/** A timestamp column as ISO 8601 UTC text with milliseconds (`2026-01-10T00:00:00.000Z`). */
export function isoSql(col: string): string {
  return `strftime(CAST(${ident(col)} AS TIMESTAMP), '%Y-%m-%dT%H:%M:%S.%gZ')`;
}

export function timestampLiteral(d: Date): string {
  return `TIMESTAMP ${literal(d.toISOString().replace('T', ' ').replace('Z', ''))}`;
}

/** Evidence JSON of a row: every column except engine-internal ones. */
export function evidenceJson(alias: string): string {
  return `to_json(${ident(alias)})`;
}

/** Plain-text table for terminals. */
export function formatAlertsText(alerts: Alert[]): string {
  if (alerts.length === 0) return 'no alerts\n';
  const lines = alerts.map((a) =>
    [
      a.event_time,
      a.severity.padEnd(8),
      a.detection.padEnd(20),
      (a.host ?? a.aid ?? '-').padEnd(16),
      a.description,
    ].join('  '),
  );
  return lines.join('\n') + `\n${alerts.length} alert(s)\n`;
}

/** Loads alerts for tests/tools that hold a Db but not a Lake view. */
export async function countAlerts(db: Db, relation: string): Promise<number> {
  const r = await db.all<{ n: bigint }>(`SELECT count(*) AS n FROM ${relation}`);
  return Number(r[0].n);
}
