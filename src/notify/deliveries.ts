/**
 * The `deliveries` table: one row per delivery attempt of one alert to one destination.
 * It is the notifier's memory across crashes: before sending, (alert, destination, kind)
 * pairs that already reached a final status are skipped, so a restart after kill -9 resends
 * only the attempt that was in flight. It is also where dead letters stay visible.
 *
 * Statuses: `sent`; `retrying` (attempt failed, another follows); `failed` (permanent, e.g.
 * HTTP 4xx — not retried); `dead_letter` (retries exhausted); `suppressed` (folded into an
 * earlier alert of the same detection and entity, see `suppressed_by`); `pending` (held for a
 * grouping digest whose window is still open — not final: the digest's `sent` row closes it;
 * `reply` = `folded:N`, suppressed repeats the digest must count).
 */
import { rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { literal } from '../sql/duckdb.js';
import type { Lake } from '../lake/lake.js';
import { isoSql } from '../alerts/alerts.js';

export const DELIVERIES_TABLE = 'deliveries';

export type DeliveryStatus = 'sent' | 'retrying' | 'failed' | 'dead_letter' | 'suppressed' | 'pending';
/** Statuses after which a pair is never sent again. */
export const FINAL_STATUSES: DeliveryStatus[] = ['sent', 'failed', 'dead_letter', 'suppressed'];

export interface DeliveryRecord {
  alert_id: string;
  destination: string;
  /** `alert` (trigger / notification) or `resolve`. */
  kind: 'alert' | 'resolve';
  /** The message that carried the alert (its own id, or a digest's). */
  message_id: string;
  attempt: number;
  status: DeliveryStatus;
  http_status: number | null;
  /** The channel's acknowledgement: SMTP reply, Kafka offsets, bytes written. */
  reply: string | null;
  error: string | null;
  /** Response body (truncated). */
  response: string | null;
  detection: string;
  /** host, else aid, else user (the suppression key with detection). */
  entity: string;
  /** The alert's event time (ISO). */
  alert_time: string;
  /** When the attempt ended (ISO). */
  sent_at: string;
  /** For `suppressed`: the alert it was folded into. */
  suppressed_by: string | null;
}

const COLUMNS: [keyof DeliveryRecord, string][] = [
  ['alert_id', 'VARCHAR'],
  ['destination', 'VARCHAR'],
  ['kind', 'VARCHAR'],
  ['message_id', 'VARCHAR'],
  ['attempt', 'INTEGER'],
  ['status', 'VARCHAR'],
  ['http_status', 'INTEGER'],
  ['reply', 'VARCHAR'],
  ['error', 'VARCHAR'],
  ['response', 'VARCHAR'],
  ['detection', 'VARCHAR'],
  ['entity', 'VARCHAR'],
  ['alert_time', 'TIMESTAMP'],
  ['sent_at', 'TIMESTAMP'],
  ['suppressed_by', 'VARCHAR'],
];

/** Error and response text kept per row, at most. */
export const MAX_TEXT = 2000;

/**
 * appId of the `txn` every retention DELETE commits; its version is the clock hour
 * (epoch ms / 1 h) the retention ran, so any process finds whether this hour's run is done.
 */
export const RETENTION_APP_ID = 'talon-notify-retention';
export const RETENTION_PERIOD_MS = 3_600_000;
/**
 * Retention compacts `deliveries` (one small file per recorded round) into files of up to this
 * size; larger files are left alone, so the hourly run rewrites a bounded amount.
 */
export const COMPACT_TARGET_BYTES = 32 * 1024 * 1024;

export interface RetentionResult {
  /** false: already done this hour (by this or another process), or no table yet. */
  ran: boolean;
  /** Rows deleted (every row of the expired settled pairs). */
  deletedRows: number;
  /** Expired settled (alert, destination, kind) pairs. */
  pairs: number;
  /** Files compacted by the OPTIMIZE that follows. */
  compactedFiles: number;
  /** Table version after the retention. */
  version?: number;
}

let fileSeq = 0;

export class DeliveryLog {
  /** One writer at a time: destinations deliver in parallel, their records commit in turn. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly lake: Lake) {}

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** Appends attempt rows as one Delta commit. */
  record(rows: DeliveryRecord[]): Promise<void> {
    if (rows.length === 0) return Promise.resolve();
    return this.serial(async () => {
      const table =
        (await this.lake.table(DELIVERIES_TABLE)) ??
        (await this.lake.createTable(DELIVERIES_TABLE, {
          description: 'Talon notification delivery attempts (one row per alert, destination and attempt)',
        }));
      const file = path.join(os.tmpdir(), `talon-deliveries-${process.pid}-${fileSeq++}.ndjson`);
      const clip = (s: string | null) =>
        s === null ? null : s.length > MAX_TEXT ? s.slice(0, MAX_TEXT - 1) + '…' : s;
      await writeFile(
        file,
        rows
          .map((r) =>
            JSON.stringify({ ...r, error: clip(r.error), response: clip(r.response), reply: clip(r.reply) }),
          )
          .join('\n'),
      );
      const tmp = `__talon_deliveries_${process.pid}`;
      try {
        const cols = COLUMNS.map(([n, t]) => `${n}: '${t}'`).join(', ');
        await this.lake.db.run(
          `CREATE OR REPLACE TEMP TABLE ${tmp} AS SELECT * FROM read_json(${literal(file)}, format = 'newline_delimited', columns = {${cols}})`,
        );
        await table.append(`SELECT * FROM ${tmp}`, { commitInfo: { talonQuery: 'notify:deliveries' } });
      } finally {
        await this.lake.db.run(`DROP TABLE IF EXISTS ${tmp}`).catch(() => undefined);
        await rm(file, { force: true });
      }
    });
  }

  private async scan(filter?: string): Promise<string | undefined> {
    const t = await this.lake.table(DELIVERIES_TABLE);
    if (!t) return undefined;
    const snap = await t.snapshot();
    if (snap.schema.fields.length === 0) return undefined;
    return `(${await snap.scan(filter)})`;
  }

  /** Keys `alert_id|destination|kind` of the given alerts that reached a final status. */
  finished(alertIds: string[]): Promise<Set<string>> {
    return this.serial(async () => {
      const out = new Set<string>();
      if (alertIds.length === 0) return out;
      const rel = await this.scan();
      if (!rel) return out;
      for (let i = 0; i < alertIds.length; i += 5000) {
        const ids = alertIds
          .slice(i, i + 5000)
          .map(literal)
          .join(', ');
        const rows = await this.lake.db.all<{ alert_id: string; destination: string; kind: string }>(
          `SELECT DISTINCT alert_id, destination, kind FROM ${rel}
           WHERE alert_id IN (${ids}) AND status IN (${FINAL_STATUSES.map(literal).join(', ')})`,
        );
        for (const r of rows) out.add(pairKey(r.alert_id, r.destination, r.kind));
      }
      return out;
    });
  }

  /**
   * Alerts held for a grouping digest: `pending` rows whose (alert, destination, alert) pair
   * has no final status yet, oldest first.
   */
  pending(): Promise<PendingRecord[]> {
    return this.serial(async () => {
      const rel = await this.scan();
      if (!rel) return [];
      const rows = await this.lake.db.all<{
        alert_id: string;
        destination: string;
        detection: string;
        alert_time: string;
        reply: string | null;
      }>(
        `SELECT alert_id, destination, detection, ${isoSql('alert_time')} AS alert_time, reply
         FROM (SELECT p.* FROM ${rel} p
         WHERE p.status = 'pending' AND p.kind = 'alert' AND NOT EXISTS (
           SELECT 1 FROM ${rel} f WHERE f.alert_id = p.alert_id AND f.destination = p.destination
             AND f.kind = 'alert' AND f.status IN (${FINAL_STATUSES.map(literal).join(', ')})))
         ORDER BY alert_time, alert_id`,
      );
      const seen = new Set<string>();
      const out: PendingRecord[] = [];
      for (const r of rows) {
        const k = pairKey(r.alert_id, r.destination, 'alert');
        if (seen.has(k)) continue;
        seen.add(k);
        const folded = /^folded:(\d+)$/.exec(r.reply ?? '');
        out.push({
          alertId: r.alert_id,
          destination: r.destination,
          detection: r.detection,
          alertTime: r.alert_time,
          folded: folded ? Number(folded[1]) : 0,
        });
      }
      return out;
    });
  }

  /**
   * Latest alert sent per (destination, detection, entity) with an event time at or after
   * `since` — the anchors of suppression windows still open.
   */
  lastSent(since: string): Promise<Map<string, { alertId: string; time: number }>> {
    return this.serial(async () => {
      const out = new Map<string, { alertId: string; time: number }>();
      const rel = await this.scan();
      if (!rel) return out;
      const rows = await this.lake.db.all<{
        destination: string;
        detection: string;
        entity: string;
        alert_id: string;
        t: string;
      }>(
        `SELECT destination, detection, entity, arg_max(alert_id, alert_time) AS alert_id, ${isoSql('t')} AS t
         FROM (SELECT *, max(alert_time) OVER (PARTITION BY destination, detection, entity) AS t FROM ${rel}
               WHERE status IN ('sent', 'pending') AND kind = 'alert' AND alert_time >= CAST(${literal(since)} AS TIMESTAMP))
         GROUP BY destination, detection, entity, t`,
      );
      for (const r of rows)
        out.set(suppressionKey(r.destination, r.detection, r.entity), {
          alertId: r.alert_id,
          time: Date.parse(r.t),
        });
      return out;
    });
  }

  /**
   * Dead letters: pairs whose last attempt ended in `dead_letter` (or `failed`, with
   * `includeFailed`), newest first.
   */
  deadLetters(opts: { includeFailed?: boolean; limit?: number } = {}): Promise<Record<string, unknown>[]> {
    return this.serial(async () => {
      const rel = await this.scan();
      if (!rel) return [];
      const statuses = opts.includeFailed ? ['dead_letter', 'failed'] : ['dead_letter'];
      return this.lake.db.allJson(
        `SELECT alert_id, destination, kind, status, attempt, http_status, reply, error, response, detection, entity,
                ${isoSql('sent_at')} AS sent_at
         FROM (SELECT *, row_number() OVER (PARTITION BY alert_id, destination, kind ORDER BY sent_at DESC, attempt DESC) AS rn FROM ${rel})
         WHERE rn = 1 AND status IN (${statuses.map(literal).join(', ')})
         ORDER BY sent_at DESC ${opts.limit ? `LIMIT ${Math.floor(opts.limit)}` : ''}`,
      );
    });
  }

  /**
   * Retention: deletes the history of settled deliveries — every row of an (alert,
   * destination, kind) pair that reached a final status (`sent`, `failed`, `dead_letter`,
   * `suppressed`) and whose newest row is older than `retentionMs` — then compacts the table.
   * A pair without a final status (`pending` for a digest, `retrying`) keeps all its rows
   * however old: they are the notifier's memory of a delivery not done, so guaranteed
   * delivery is unchanged. Whole pairs go, so no orphaned `retrying` attempt of a delivered
   * alert is left to look like one in flight.
   *
   * At most once per clock hour per lake: the DELETE commits a txn whose version is the hour
   * (also when nothing expired), and a run finding this hour's txn does nothing.
   */
  applyRetention(retentionMs: number, now = Date.now()): Promise<RetentionResult> {
    return this.serial(async () => {
      const none: RetentionResult = { ran: false, deletedRows: 0, pairs: 0, compactedFiles: 0 };
      const table = await this.lake.table(DELIVERIES_TABLE);
      if (!table) return none;
      const hour = Math.floor(now / RETENTION_PERIOD_MS);
      const last = await table.txnVersion(RETENTION_APP_ID);
      if (last !== undefined && last >= hour) return none;
      const rel = await this.scan();
      if (!rel) return none;
      const cutoff = `CAST(${literal(new Date(now - retentionMs).toISOString().replace('T', ' ').replace('Z', ''))} AS TIMESTAMP)`;
      const expired = `__talon_deliveries_expired_${process.pid}`;
      try {
        await this.lake.db.run(
          `CREATE OR REPLACE TEMP TABLE ${expired} AS
           SELECT alert_id, destination, kind FROM ${rel}
           GROUP BY alert_id, destination, kind
           HAVING max(sent_at) < ${cutoff}
              AND bool_or(status IN (${FINAL_STATUSES.map(literal).join(', ')}))`,
        );
        const [{ n }] = await this.lake.db.all<{ n: bigint }>(`SELECT count(*) AS n FROM ${expired}`);
        const deleted = await table.deleteWhere(
          `sent_at < ${cutoff} AND (alert_id, destination, kind) IN (SELECT alert_id, destination, kind FROM ${expired})`,
          {
            txn: { appId: RETENTION_APP_ID, version: hour },
            commitInfo: { talonQuery: 'notify:retention' },
          },
        );
        // Another process ran this hour's retention first.
        if (deleted.skipped) return { ...none, version: deleted.version };
        const compacted = await table.optimize({ targetFileSize: COMPACT_TARGET_BYTES });
        return {
          ran: true,
          deletedRows: deleted.metrics.numDeletedRows ?? 0,
          pairs: Number(n),
          compactedFiles: compacted.metrics.numRemovedFiles ?? 0,
          version: compacted.version,
        };
      } finally {
        await this.lake.db.run(`DROP TABLE IF EXISTS ${expired}`).catch(() => undefined);
      }
    });
  }

  /** Every row (tests, `talon query`). */
  all(): Promise<Record<string, unknown>[]> {
    return this.serial(async () => {
      const rel = await this.scan();
      if (!rel) return [];
      return this.lake.db.allJson(
        `SELECT * REPLACE (${isoSql('sent_at')} AS sent_at, ${isoSql('alert_time')} AS alert_time) FROM ${rel} ORDER BY sent_at, destination, alert_id, attempt`,
      );
    });
  }
}

export interface PendingRecord {
  alertId: string;
  destination: string;
  detection: string;
  alertTime: string;
  folded: number;
}

export function pairKey(alertId: string, destination: string, kind: string): string {
  return `${alertId}\u0000${destination}\u0000${kind}`;
}

export function suppressionKey(destination: string, detection: string, entity: string): string {
  return `${destination}\u0000${detection}\u0000${entity}`;
}
