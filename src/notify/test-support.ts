/**
 * Test helpers: a temp lake whose `alerts` table is written the way detections write it
 * (MERGE on alert_id, change data feed on), and alerts made from a few fields.
 */
import type { Alert } from '../alerts/alerts.js';
import { alertsSink } from '../alerts/alerts.js';
import type { Lake } from '../lake/lake.js';
import { literal } from '../sql/duckdb.js';
import { writeTable } from '../engine/batch.js';

let txnSeq = 0;

export function makeAlert(i: number, over: Partial<Alert> = {}): Alert {
  const t = new Date(Date.UTC(2026, 0, 10, 12, 0, 0) + i * 1000).toISOString();
  return {
    alert_id: `alert-${String(i).padStart(5, '0')}`,
    detection: 'vulnerable_service',
    severity: 'high',
    title: 'Vulnerable service exposed',
    description: `RDP listening on host-${i}`,
    event_time: t,
    detected_at: t,
    aid: `aid${i}`,
    host: `host-${i}`,
    user: `user${i}`,
    dedup_key: `k${i}`,
    evidence_table: 'NetworkListenIP4',
    evidence_version: 1,
    evidence: { LocalPort: 3389, CommandLine: `svchost.exe -k ${i}` },
    tags: ['T1133'],
    status: 'open',
    ...over,
  };
}

function alertSelect(a: Alert): string {
  const ts = (s: string) => `CAST(${literal(s.replace('T', ' ').replace('Z', ''))} AS TIMESTAMP)`;
  const str = (s: string | null) => (s === null ? 'NULL::VARCHAR' : literal(s));
  return `SELECT ${literal(a.alert_id)} AS alert_id, ${literal(a.detection)} AS detection, ${literal(a.severity)} AS severity,
    ${literal(a.title)} AS title, ${literal(a.description)} AS description, ${ts(a.event_time)} AS event_time,
    ${ts(a.detected_at)} AS detected_at, ${str(a.aid)} AS aid, ${str(a.host)} AS host, ${str(a.user)} AS "user",
    ${literal(a.dedup_key)} AS dedup_key, ${str(a.evidence_table)} AS evidence_table,
    CAST(${a.evidence_version ?? 'NULL'} AS BIGINT) AS evidence_version, ${literal(JSON.stringify(a.evidence))} AS evidence,
    [${a.tags.map(literal).join(', ')}]::VARCHAR[] AS tags, ${literal(a.status)} AS status`;
}

/** Adds alerts as one commit (MERGE, existing ids untouched — as the detections' sink does). */
export async function commitAlerts(lake: Lake, alerts: Alert[]): Promise<void> {
  const sql = alerts.map(alertSelect).join('\nUNION ALL\n');
  await writeTable(
    lake,
    'alerts',
    sql,
    { mode: 'merge', merge: alertsSink.merge! },
    alertsSink.create ?? {},
    {
      appId: 'test:alerts',
      version: txnSeq++,
    },
  );
}

/** Updates alerts (e.g. status closed) as one MERGE commit. */
export async function updateAlerts(lake: Lake, alerts: Alert[]): Promise<void> {
  const t = await lake.table('alerts');
  if (!t) throw new Error('no alerts table');
  await t.merge(alerts.map(alertSelect).join('\nUNION ALL\n'), {
    on: ['alert_id'],
    whenMatched: 'update',
    whenNotMatched: 'ignore',
  });
}
