/**
 * The notifier: a streaming query over the `alerts` table (its own checkpoint, like the
 * seed's `readStream.foreachBatch`), whose micro-batch is routed, folded (suppression,
 * grouping, throttle) and delivered to destinations with retries. Every attempt is a row in
 * `deliveries`, committed after each send round, and pairs already final there are skipped —
 * so a replay after a crash resends at most the round that was in flight.
 */
import type { Alert } from '../alerts/alerts.js';
import { ALERTS_TABLE, isoSql } from '../alerts/alerts.js';
import type { Lake } from '../lake/lake.js';
import type { MicroBatch } from '../engine/batch.js';
import { parseDuration } from '../engine/duration.js';
import { Pipeline, type PipelineRunOptions } from '../engine/pipeline.js';
import type { BatchReport, QueryDefinition } from '../engine/query.js';
import type { Trigger } from '../engine/trigger.js';
import type { Destination, DeliveryResult, NotifyMessage } from './destination.js';
import { createDestination } from './destinations/index.js';
import {
  DeliveryLog,
  RETENTION_PERIOD_MS,
  pairKey,
  suppressionKey,
  type DeliveryRecord,
  type DeliveryStatus,
  type PendingRecord,
} from './deliveries.js';
import { literal } from '../sql/duckdb.js';
import { sleep } from '../util/sleep.js';
import { alertEntity, alertMessage, digestMessage, maxSeverity, resolveMessage } from './message.js';
import { backoffMs, type RetryPolicy } from './retry.js';
import { Router } from './routes.js';
import type { NotifyConfig } from './settings.js';
import { Throttle } from './throttle.js';

export const NOTIFY_QUERY_ID = 'notify';

export interface NotifierOptions {
  /** Destinations to use instead of building them from the config (same names). */
  destinations?: Destination[];
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  /** Overrides notify.retry (tests). */
  retry?: Partial<RetryPolicy>;
  /** Stops waiting (backoff, throttle) early; the batch then fails and is replayed. */
  signal?: AbortSignal;
  version?: string;
  /**
   * Wall clock in epoch ms (tests): decides which grouping windows have closed, stamps
   * `sent_at` of the deliveries, and dates the retention.
   */
  now?: () => number;
}

/** A message ready to go to one destination, with every alert it stands for. */
interface Planned {
  message: NotifyMessage;
  covered: Alert[];
}

export type BatchCounts = Record<DeliveryStatus | 'messages', number>;

export class Notifier {
  readonly deliveries: DeliveryLog;
  readonly destinations: Destination[];
  private readonly byName = new Map<string, Destination>();
  private readonly router: Router;
  private readonly retry: Map<string, RetryPolicy> = new Map();
  private readonly throttles = new Map<string, Throttle>();
  private readonly groupWindowMs: number;
  private readonly suppressionMs: number;
  private recordCommits = 0;
  private readonly retentionMs: number;
  /** The clock hour this notifier last applied the deliveries retention in. */
  private retentionHour = -1;
  /** Batches and timed flushes of held digests run one at a time (they plan from the same pending rows). */
  private lock: Promise<unknown> = Promise.resolve();

  constructor(
    readonly lake: Lake,
    readonly config: NotifyConfig,
    readonly opts: NotifierOptions = {},
  ) {
    this.deliveries = new DeliveryLog(lake);
    const names = new Set<string>();
    for (const d of config.destinations) {
      if (names.has(d.name)) throw new Error(`notify.destinations: duplicate name ${JSON.stringify(d.name)}`);
      names.add(d.name);
    }
    this.destinations =
      opts.destinations ??
      config.destinations.map((c) =>
        createDestination(c, { concurrency: config.concurrency, version: opts.version }),
      );
    for (const d of this.destinations) this.byName.set(d.name, d);
    this.router = new Router(
      config.routes,
      this.destinations.map((d) => d.name),
    );
    const base: RetryPolicy = {
      maxAttempts: config.retry.max_attempts,
      initialBackoffMs: parseDuration(config.retry.initial_backoff),
      maxBackoffMs: parseDuration(config.retry.max_backoff),
      ...opts.retry,
    };
    for (const d of this.destinations) {
      const c = config.destinations.find((x) => x.name === d.name);
      this.retry.set(d.name, {
        ...base,
        ...(c?.max_attempts && !opts.retry?.maxAttempts ? { maxAttempts: c.max_attempts } : {}),
      });
      if (c?.throttle)
        this.throttles.set(d.name, new Throttle(c.throttle.max_messages, parseDuration(c.throttle.period)));
    }
    this.groupWindowMs = parseDuration(config.grouping.window);
    this.suppressionMs = parseDuration(config.suppression.window);
    this.retentionMs = parseDuration(config.deliveries_retention);
  }

  destination(name: string): Destination | undefined {
    return this.byName.get(name);
  }

  /** The streaming query: alerts inserted (and closed, for PagerDuty resolve) → deliveries. */
  query(): QueryDefinition {
    return {
      id: NOTIFY_QUERY_ID,
      description: 'alert notifications',
      sources: [{ table: ALERTS_TABLE, changeTypes: ['insert', 'update_postimage'] }],
      operators: ['route', 'suppress', 'group', 'throttle', 'deliver'],
      sinks: [],
      transform: async (batch) => {
        const counts = await this.processBatch(batch);
        for (const [k, v] of Object.entries(counts)) batch.metrics[`notify.${k}`] = v;
        return {};
      },
    };
  }

  async processBatch(batch: MicroBatch): Promise<BatchCounts> {
    const src = batch.source(ALERTS_TABLE);
    // Even without alert changes, digests whose grouping window closed are due.
    if (!src) return this.processAlerts([]);
    const rows = await batch.db.allJson<Record<string, unknown>>(
      `SELECT * EXCLUDE (_commit_version, _commit_timestamp)
         REPLACE (${isoSql('event_time')} AS event_time, ${isoSql('detected_at')} AS detected_at)
       FROM ${src} ORDER BY event_time, alert_id`,
    );
    const inserted: Alert[] = [];
    const closed: Alert[] = [];
    for (const r of rows) {
      const a = rowToAlert(r);
      if (r._change_type === 'insert') inserted.push(a);
      else if (r._change_type === 'update_postimage' && a.status === 'closed') closed.push(a);
    }
    return this.processAlerts(inserted, closed);
  }

  /**
   * Routes, folds and delivers new alerts (and resolves of closed ones). Grouped alerts whose
   * window is still open are recorded as `pending`; digests of closed windows (this batch's and
   * earlier batches' pending alerts together) are sent. `flushAll` sends every pending digest.
   */
  processAlerts(
    inserted: Alert[],
    closed: Alert[] = [],
    opts: { flushAll?: boolean } = {},
  ): Promise<BatchCounts> {
    const p = this.lock.then(async () => {
      const counts = await this.processLocked(inserted, closed, opts.flushAll ?? false);
      await this.maintainDeliveries();
      return counts;
    });
    this.lock = p.catch(() => undefined);
    return p;
  }

  /**
   * notify.deliveries_retention, after a batch: at most once per clock hour here, and per lake
   * through the retention's txn (DeliveryLog.applyRetention). A failure is logged, not thrown:
   * the deliveries are already recorded, and the next hour tries again.
   */
  private async maintainDeliveries(): Promise<void> {
    if (this.retentionMs <= 0) return;
    const now = this.opts.now?.() ?? Date.now();
    const hour = Math.floor(now / RETENTION_PERIOD_MS);
    if (hour === this.retentionHour) return;
    this.retentionHour = hour;
    try {
      const r = await this.deliveries.applyRetention(this.retentionMs, now);
      if (r.ran)
        this.opts.log?.('deliveries retention', {
          deleted_rows: r.deletedRows,
          pairs: r.pairs,
          compacted_files: r.compactedFiles,
          version: r.version,
        });
    } catch (err) {
      this.opts.log?.('deliveries retention failed; retrying next hour', { error: String(err) });
    }
  }

  /** Sends held digests whose window has closed (all of them with `all`, e.g. at the end of an available-now run). */
  flushPending(all = false): Promise<BatchCounts> {
    return this.processAlerts([], [], { flushAll: all });
  }

  /**
   * Until `signal` aborts, sends due digests every window (at most every 30 s): batches run only
   * when alerts change, so a long-running pipeline holding notifier.query() should run this too.
   */
  async flushOnTimer(signal: AbortSignal, onError?: (err: unknown) => void): Promise<void> {
    if (this.groupWindowMs <= 0) return;
    const every = Math.min(this.groupWindowMs, 30_000);
    while (!signal.aborted) {
      await sleep(every, signal);
      if (signal.aborted) break;
      await this.flushPending().catch((err: unknown) => onError?.(err));
    }
  }

  private grouped(dest: Destination): boolean {
    return !dest.perAlert && this.groupWindowMs > 0;
  }

  private async processLocked(inserted: Alert[], closed: Alert[], flushAll: boolean): Promise<BatchCounts> {
    const counts = emptyCounts();
    const grouping = this.destinations.some((d) => this.grouped(d));
    if (inserted.length === 0 && closed.length === 0 && !grouping) return counts;
    const pendingRows = grouping ? await this.deliveries.pending() : [];
    if (inserted.length === 0 && closed.length === 0 && pendingRows.length === 0) return counts;
    const held = new Set(pendingRows.map((p) => pairKey(p.alertId, p.destination, 'alert')));
    const nowMs = this.opts.now?.() ?? Date.now();
    const w = this.groupWindowMs;
    // Windows are event-time buckets; one is open until the wall clock passes its end.
    const windowOpen = (eventTime: string) =>
      !flushAll && (Math.floor(Date.parse(eventTime) / w) + 1) * w > nowMs;
    const known = new Map(inserted.map((a) => [a.alert_id, a]));
    const loaded = await this.loadAlerts([
      ...new Set(
        pendingRows.filter((p) => !windowOpen(p.alertTime) && !known.has(p.alertId)).map((p) => p.alertId),
      ),
    ]);
    const finished = await this.deliveries.finished([
      ...new Set([...inserted, ...closed].map((a) => a.alert_id)),
    ]);
    const anchors =
      this.suppressionMs > 0 && inserted.length > 0
        ? await this.deliveries.lastSent(suppressionSince(inserted, this.suppressionMs))
        : new Map();
    const suppressedRows: DeliveryRecord[] = [];
    const holdRows: DeliveryRecord[] = [];
    const plans = new Map<string, Planned[]>();
    const now = new Date(nowMs).toISOString();

    for (const dest of this.destinations) {
      const mine = inserted.filter(
        (a) =>
          !finished.has(pairKey(a.alert_id, dest.name, 'alert')) &&
          // already held from an earlier (or replayed) batch: the pending row stands for it
          !held.has(pairKey(a.alert_id, dest.name, 'alert')) &&
          this.router.destinationsFor(a).includes(dest.name),
      );
      // Suppression: the first alert of a (detection, entity) in the window is sent, repeats fold into it.
      const kept: { alert: Alert; folded: number }[] = [];
      const open = new Map<string, { alertId: string; time: number; entry?: { folded: number } }>();
      for (const a of mine) {
        if (this.suppressionMs <= 0) {
          kept.push({ alert: a, folded: 0 });
          continue;
        }
        const key = suppressionKey(dest.name, a.detection, alertEntity(a));
        const t = Date.parse(a.event_time);
        const anchor = open.get(key) ?? anchors.get(key);
        if (anchor && Math.abs(t - anchor.time) < this.suppressionMs) {
          if ('entry' in anchor && anchor.entry) anchor.entry.folded++;
          suppressedRows.push(
            record(a, dest.name, 'alert', anchor.alertId, 1, 'suppressed', {}, now, anchor.alertId),
          );
          continue;
        }
        const entry = { alert: a, folded: 0 };
        kept.push(entry);
        open.set(key, { alertId: a.alert_id, time: t, entry });
      }
      const planned: Planned[] = [];
      const consoleUrl = this.config.console_url;
      if (this.grouped(dest)) {
        const groups = new Map<string, { alerts: Alert[]; folded: number }>();
        const add = (a: Alert, folded: number) => {
          const key = `${a.detection}\u0000${Math.floor(Date.parse(a.event_time) / w)}`;
          const g = groups.get(key) ?? { alerts: [], folded: 0 };
          g.alerts.push(a);
          g.folded += folded;
          groups.set(key, g);
        };
        for (const p of pendingRows) {
          if (p.destination !== dest.name || windowOpen(p.alertTime)) continue;
          add(known.get(p.alertId) ?? loaded.get(p.alertId) ?? stubAlert(p), p.folded);
        }
        for (const k of kept) {
          if (windowOpen(k.alert.event_time)) {
            holdRows.push(
              record(
                k.alert,
                dest.name,
                'alert',
                '',
                0,
                'pending',
                { reply: `folded:${k.folded}` },
                now,
                null,
              ),
            );
            continue;
          }
          add(k.alert, k.folded);
        }
        for (const g of groups.values()) {
          const m = digestMessage(g.alerts, this.config.grouping.max_items, consoleUrl);
          m.count += g.folded;
          planned.push({ message: m, covered: g.alerts });
        }
      } else {
        for (const k of kept) {
          const m = alertMessage(k.alert, consoleUrl);
          m.count += k.folded;
          planned.push({ message: m, covered: [k.alert] });
        }
      }
      if (dest.type === 'pagerduty' && this.resolves(dest.name)) {
        for (const a of closed) {
          if (finished.has(pairKey(a.alert_id, dest.name, 'resolve'))) continue;
          if (!this.router.destinationsFor(a).includes(dest.name)) continue;
          planned.push({ message: resolveMessage(a, consoleUrl), covered: [a] });
        }
      }
      if (planned.length > 0) plans.set(dest.name, planned);
    }

    if (suppressedRows.length > 0 || holdRows.length > 0) {
      await this.deliveries.record([...suppressedRows, ...holdRows]);
      counts.suppressed += suppressedRows.length;
      counts.pending += holdRows.length;
    }
    const results = await Promise.all(
      [...plans.entries()].map(([name, planned]) => this.deliver(this.byName.get(name)!, planned)),
    );
    for (const r of results) for (const [k, v] of Object.entries(r)) counts[k as keyof BatchCounts] += v;
    return counts;
  }

  /** Alerts by id from the `alerts` table (held alerts whose digest is due now). */
  private async loadAlerts(ids: string[]): Promise<Map<string, Alert>> {
    const out = new Map<string, Alert>();
    if (ids.length === 0) return out;
    const t = await this.lake.table(ALERTS_TABLE);
    if (!t) return out;
    const snap = await t.snapshot();
    if (snap.schema.fields.length === 0) return out;
    const rows = await this.lake.db.allJson<Record<string, unknown>>(
      `SELECT * REPLACE (${isoSql('event_time')} AS event_time, ${isoSql('detected_at')} AS detected_at)
       FROM ${await snap.scan()} WHERE alert_id IN (${ids.map(literal).join(', ')})`,
    );
    for (const r of rows) out.set(String(r.alert_id), rowToAlert(r));
    return out;
  }

  private resolves(name: string): boolean {
    const c = this.config.destinations.find((d) => d.name === name);
    return !c || c.type !== 'pagerduty' || c.resolve;
  }

  /** Throttle: messages past a destination's budget fold into one digest (per-alert channels wait instead). */
  private applyThrottle(dest: Destination, planned: Planned[]): Planned[] {
    const th = this.throttles.get(dest.name);
    if (!th || dest.perAlert) return planned;
    const avail = th.available();
    if (planned.length <= Math.max(1, avail)) return planned;
    const keep = planned.slice(0, Math.max(0, avail - 1));
    const rest = planned.slice(keep.length);
    const alerts = rest.flatMap((p) => p.covered);
    const folded = rest.reduce((n, p) => n + p.message.count, 0);
    const m = digestMessage(alerts, this.config.grouping.max_items, this.config.console_url);
    m.count = folded;
    m.severity = maxSeverity(alerts);
    if (new Set(alerts.map((a) => a.detection)).size > 1) m.detection = 'multiple';
    if (m.kind !== 'digest') m.kind = 'digest';
    this.opts.log?.('throttled: alerts folded into one digest', {
      destination: dest.name,
      alerts: alerts.length,
    });
    return [...keep, { message: m, covered: alerts }];
  }

  /** Sends the destination's messages in rounds of `record_every`, retrying, recording each round. */
  private async deliver(dest: Destination, input: Planned[]): Promise<Partial<BatchCounts>> {
    const counts: Partial<BatchCounts> = { messages: 0, sent: 0, failed: 0, dead_letter: 0, retrying: 0 };
    const policy = this.retry.get(dest.name)!;
    const th = this.throttles.get(dest.name);
    const queue = this.applyThrottle(dest, input);
    let i = 0;
    while (i < queue.length) {
      let size = this.config.record_every;
      if (th) {
        const wait = th.waitMs();
        if (wait > 0) {
          this.opts.log?.('throttled: waiting', { destination: dest.name, ms: wait });
          await sleep(wait, this.opts.signal);
          if (this.opts.signal?.aborted) throw new Error('notify: stopped while throttled');
        }
        size = Math.max(1, Math.min(size, th.available()));
      }
      const chunk = queue.slice(i, i + size);
      i += chunk.length;
      th?.take(chunk.length);
      counts.messages! += chunk.length;
      let pending = chunk;
      for (let attempt = 1; pending.length > 0; attempt++) {
        let results: DeliveryResult[];
        try {
          results = await dest.send(pending.map((p) => p.message));
        } catch (err) {
          // A destination must not throw; if it does, treat it as a retryable failure of all.
          results = pending.map(() => ({ ok: false, retryable: true, error: String(err) }));
        }
        const rows: DeliveryRecord[] = [];
        const next: Planned[] = [];
        let retryAfter: number | undefined;
        const at = new Date(this.opts.now?.() ?? Date.now()).toISOString();
        pending.forEach((p, j) => {
          const r = results[j] ?? { ok: false, retryable: true, error: 'destination returned no result' };
          const status: DeliveryStatus = r.ok
            ? 'sent'
            : !r.retryable
              ? 'failed'
              : attempt >= policy.maxAttempts
                ? 'dead_letter'
                : 'retrying';
          counts[status] = (counts[status] ?? 0) + 1;
          const kind = p.message.kind === 'resolve' ? 'resolve' : 'alert';
          for (const a of p.covered)
            rows.push(record(a, dest.name, kind, p.message.id, attempt, status, r, at, null));
          if (status === 'retrying') {
            next.push(p);
            if (r.retryAfterMs !== undefined) retryAfter = Math.max(retryAfter ?? 0, r.retryAfterMs);
          }
          if (status === 'failed' || status === 'dead_letter') {
            this.opts.log?.(`delivery ${status}`, {
              destination: dest.name,
              message: p.message.id,
              attempt,
              error: r.error,
            });
          }
        });
        await this.deliveries.record(rows);
        this.afterRecord();
        pending = next;
        if (pending.length > 0) {
          const wait = backoffMs(policy, attempt, retryAfter);
          this.opts.log?.('delivery retry', {
            destination: dest.name,
            messages: pending.length,
            attempt,
            wait_ms: wait,
          });
          await sleep(wait, this.opts.signal);
          if (this.opts.signal?.aborted) throw new Error('notify: stopped during a retry backoff');
        }
      }
    }
    return counts;
  }

  /** Test hook: `TALON_NOTIFY_CRASH_AFTER_RECORDS=N` kills the process (SIGKILL) after N record commits. */
  private afterRecord(): void {
    this.recordCommits++;
    const n = Number(process.env.TALON_NOTIFY_CRASH_AFTER_RECORDS ?? 0);
    if (n > 0 && this.recordCommits >= n) process.kill(process.pid, 'SIGKILL');
  }

  /** Sends one sample alert to a destination, once, and returns what happened (not recorded). */
  async sendTest(name: string, alert: Alert): Promise<DeliveryResult> {
    const dest = this.byName.get(name);
    if (!dest)
      throw new Error(
        `no destination named ${JSON.stringify(name)} (have: ${[...this.byName.keys()].join(', ') || 'none'})`,
      );
    const [r] = await dest.send([alertMessage(alert, this.config.console_url)]);
    return r;
  }

  async close(): Promise<void> {
    for (const d of this.destinations) await d.close?.().catch(() => undefined);
  }
}

function emptyCounts(): BatchCounts {
  return { messages: 0, sent: 0, retrying: 0, failed: 0, dead_letter: 0, suppressed: 0, pending: 0 };
}

/** A held alert no longer in the `alerts` table still counts in its digest, by what was recorded. */
function stubAlert(p: PendingRecord): Alert {
  return rowToAlert({
    alert_id: p.alertId,
    detection: p.detection,
    event_time: p.alertTime,
    detected_at: p.alertTime,
  });
}

function suppressionSince(alerts: Alert[], windowMs: number): string {
  const min = Math.min(...alerts.map((a) => Date.parse(a.event_time)).filter((t) => !Number.isNaN(t)));
  return new Date((Number.isFinite(min) ? min : Date.now()) - windowMs)
    .toISOString()
    .replace('T', ' ')
    .replace('Z', '');
}

function record(
  a: Alert,
  destination: string,
  kind: 'alert' | 'resolve',
  messageId: string,
  attempt: number,
  status: DeliveryStatus,
  r: Partial<DeliveryResult>,
  at: string,
  suppressedBy: string | null,
): DeliveryRecord {
  return {
    alert_id: a.alert_id,
    destination,
    kind,
    message_id: messageId,
    attempt,
    status,
    http_status: r.httpStatus ?? null,
    reply: r.reply ?? null,
    error: r.ok ? null : (r.error ?? null),
    response: r.response ?? null,
    detection: a.detection,
    entity: alertEntity(a),
    alert_time: a.event_time,
    sent_at: at,
    suppressed_by: suppressedBy,
  };
}

export function rowToAlert(r: Record<string, unknown>): Alert {
  let evidence: unknown = r.evidence;
  if (typeof evidence === 'string') {
    try {
      evidence = JSON.parse(evidence);
    } catch {
      // evidence that is not JSON is shown as text
    }
  }
  return {
    alert_id: String(r.alert_id),
    detection: String(r.detection),
    severity: (r.severity as Alert['severity']) ?? 'medium',
    title: String(r.title ?? r.detection),
    description: String(r.description ?? ''),
    event_time: String(r.event_time),
    detected_at: String(r.detected_at),
    aid: (r.aid as string | null) ?? null,
    host: (r.host as string | null) ?? null,
    user: (r.user as string | null) ?? null,
    dedup_key: String(r.dedup_key ?? ''),
    evidence_table: (r.evidence_table as string | null) ?? null,
    evidence_version:
      r.evidence_version === null || r.evidence_version === undefined ? null : Number(r.evidence_version),
    evidence,
    tags: (r.tags as string[] | null) ?? [],
    status: (r.status as Alert['status']) ?? 'open',
  };
}

/** Runs the notifier under a trigger until caught up (available-now) or stopped. */
export async function runNotifier(
  lake: Lake,
  config: NotifyConfig,
  trigger: Trigger,
  opts: NotifierOptions & {
    onBatch?: (r: BatchReport) => void;
    onError?: PipelineRunOptions['onError'];
  } = {},
): Promise<BatchReport[]> {
  const notifier = new Notifier(lake, config, opts);
  // Batches run only when alerts change, so long-running triggers also flush due digests on a timer.
  const stopFlush = new AbortController();
  const stop = () => stopFlush.abort();
  opts.signal?.addEventListener('abort', stop, { once: true });
  const flushing =
    trigger.kind !== 'available-now'
      ? notifier.flushOnTimer(stopFlush.signal, (err) => opts.onError?.(NOTIFY_QUERY_ID, err))
      : Promise.resolve();
  try {
    const pipeline = new Pipeline(lake, [notifier.query()], { log: (m) => opts.log?.(m) });
    const reports = await pipeline.run(trigger, {
      signal: opts.signal,
      onBatch: opts.onBatch,
      onError: opts.onError,
    });
    // An available-now run ends caught up: nothing waits for windows that close after it.
    if (trigger.kind === 'available-now' && !opts.signal?.aborted) await notifier.flushPending(true);
    return reports;
  } finally {
    stop();
    opts.signal?.removeEventListener('abort', stop);
    await flushing;
    await notifier.close();
  }
}
