/**
 * Stateful and checking operators over a micro-batch (DLT/Structured Streaming equivalents):
 * expectations, union, deduplication with an event-time watermark.
 */
import { ident, literal } from '../sql/duckdb.js';
import type { MicroBatch } from './batch.js';
import { RETRACT_ALERT } from './batch.js';

export interface Expectation {
  name: string;
  /** SQL predicate a valid row satisfies. */
  condition: string;
  /** warn: count only (`expect`); drop: remove failing rows (`expect_or_drop`); fail: stop the batch (`expect_or_fail`). */
  action: 'warn' | 'drop' | 'fail';
}

export class ExpectationFailed extends Error {}

/**
 * Applies expectations to a relation; counts `expect.<name>.passed` / `.failed` in the batch
 * metrics (they land in the commit log). Returns the relation to continue with.
 */
export async function applyExpectations(
  batch: MicroBatch,
  input: string,
  exps: Expectation[],
  opts: { materialize?: boolean } = {},
): Promise<string> {
  if (exps.length === 0) return input;
  const sums = exps.map((e, i) => `count(*) FILTER (WHERE NOT coalesce((${e.condition}), false)) AS f${i}`);
  const row = (
    await batch.db.all<Record<string, bigint>>(`SELECT count(*) AS n, ${sums.join(', ')} FROM ${input}`)
  )[0];
  const total = Number(row.n);
  exps.forEach((e, i) => {
    const failed = Number(row[`f${i}`]);
    batch.metrics[`expect.${e.name}.failed`] = (batch.metrics[`expect.${e.name}.failed`] ?? 0) + failed;
    batch.metrics[`expect.${e.name}.passed`] =
      (batch.metrics[`expect.${e.name}.passed`] ?? 0) + total - failed;
    if (e.action === 'fail' && failed > 0) {
      throw new ExpectationFailed(`expectation '${e.name}' failed on ${failed} row(s): ${e.condition}`);
    }
  });
  const drops = exps.filter((e) => e.action === 'drop');
  if (drops.length === 0) return input;
  const sql = `SELECT * FROM ${input} WHERE ${drops.map((e) => `coalesce((${e.condition}), false)`).join(' AND ')}`;
  return (opts.materialize ?? true) ? batch.temp('expect', sql) : batch.view('expect', sql);
}

/** UNION ALL BY NAME of relations (missing columns become NULL); undefined when there are none. */
export function unionAll(relations: string[]): string | undefined {
  if (relations.length === 0) return undefined;
  return relations.map((r) => `SELECT * FROM ${r}`).join(' UNION ALL BY NAME ');
}

/** A column of a relation if it has it (any case), else a typed NULL — for optional FDR fields. */
export function columnOr(cols: Map<string, string>, name: string, type: string, alias = name): string {
  const path = name.split('.');
  const actual = cols.get(path[0].toLowerCase());
  if (!actual) return `NULL::${type} AS ${ident(alias)}`;
  let expr = ident(actual);
  for (const f of path.slice(1)) expr = `struct_extract(${expr}, ${literal(f)})`;
  return `CAST(${expr} AS ${type}) AS ${ident(alias)}`;
}

export interface DedupOptions {
  /** Names the operator in metrics/state. */
  name: string;
  keys: string[];
  /** Event-time column (TIMESTAMP). */
  timeColumn: string;
  /** Rows of a key within this window of a kept row are duplicates (the seed: 24 h). */
  windowMs: number;
  /** Watermark = max event time seen − delay. Default: windowMs. */
  delayMs?: number;
  /**
   * Rows up to this far behind the previous batch's watermark are still deduplicated against
   * the state and kept; older rows are dropped and counted (`dedup.<name>.late`). State lives
   * this long behind the watermark. Default: the query's allowed lateness (7 days); 0 is
   * Spark's `withWatermark` (everything behind the watermark is dropped).
   */
  allowedLatenessMs?: number;
  /** The state table (must be among the query's `snapshots`). */
  stateTable: string;
  /** Max event time of the whole stream in this batch (defaults to the input's). */
  maxEventTimeMs?: number;
  /** Drop rows older than the lateness limit; default true. */
  dropLate?: boolean;
  /**
   * When a late row precedes an already kept row of its key by less than the window, the late
   * row is the real first occurrence: it is kept and the later row is superseded. The alert the
   * later row raised is withdrawn from the `alerts` table — closed, or replaced when the new
   * alert has the same id (its dedup_key is the key values joined by '|', as every detection
   * builds it). Default: on when the query sinks into
   * `alerts` and belongs to a detection.
   */
  retractAlerts?: boolean;
}

interface Candidate {
  rid: bigint;
  k: string;
  t: number;
}

/** Index of the first element of the ascending `a` greater than `t`. */
function upperBound(a: number[], t: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function timestampLiteral(ms: number): string {
  return `TIMESTAMP ${literal(new Date(ms).toISOString().replace('T', ' ').replace('Z', ''))}`;
}

/**
 * `withWatermark(time, delay).dropDuplicates(keys)` with an exact window and allowed
 * lateness, independent of arrival order: processed in event-time order, a row is a
 * duplicate when a kept row of its key lies less than `windowMs` before it (or at the same
 * time). A late row that precedes a kept row by less than the window replaces it (the kept
 * set is then what one pass over all rows in event-time order keeps). State: the event times
 * of the kept rows per key, persisted in a Delta table written with txn (query, batch id);
 * entries older than watermark − allowed lateness expire, so a key seen again after that
 * alerts again. Rows older than watermark − allowed lateness are dropped and counted.
 */
export async function dedupWithWatermark(batch: MicroBatch, input: string, o: DedupOptions): Promise<string> {
  const delay = o.delayMs ?? o.windowMs;
  const lateness = Math.max(0, o.allowedLatenessMs ?? batch.allowedLatenessMs);
  const wmKey = `watermark.${o.name}`;
  const prevWm = typeof batch.prevState[wmKey] === 'number' ? (batch.prevState[wmKey] as number) : undefined;
  const keyExpr = `to_json([${o.keys.map((k) => `CAST(${ident(k)} AS VARCHAR)`).join(', ')}])`;
  const t = ident(o.timeColumn);
  const numbered = await batch.temp(
    'dedup_in',
    `SELECT row_number() OVER (ORDER BY ${t}, ${keyExpr}) AS __rid, ${keyExpr} AS __k, * FROM ${input}`,
  );
  const rows = await batch.db.all<{ rid: bigint; k: string; t: number | null }>(
    `SELECT __rid AS rid, __k AS k, epoch_ms(${t}) AS t FROM ${numbered} ORDER BY __rid`,
  );
  let maxT = o.maxEventTimeMs ?? -Infinity;
  for (const r of rows) if (r.t !== null && Number(r.t) > maxT) maxT = Number(r.t);

  // key → event times of its kept rows, ascending
  const state = new Map<string, number[]>();
  const snap = await batch.snapshot(o.stateTable);
  if (snap) {
    const st = await batch.db.all<{ k: string; t: number }>(
      `SELECT k, epoch_ms(event_time) AS t FROM ${snap} s ORDER BY k, t`,
    );
    for (const s of st) {
      let list = state.get(s.k);
      if (!list) state.set(s.k, (list = []));
      list.push(Number(s.t));
    }
  }

  const lateLimit = prevWm === undefined ? undefined : prevWm - lateness;
  const retract =
    o.retractAlerts ??
    (!!batch.def.detection && batch.def.sinks.some((sk) => sk.table.toLowerCase() === 'alerts'));
  const kept: Candidate[] = [];
  const superseded: { k: string; t: number }[] = [];
  let late = 0;
  let lateAccepted = 0;
  let dups = 0;
  let changed = false;
  for (const r of rows) {
    if (r.t === null) {
      late++;
      continue;
    }
    const tm = Number(r.t);
    if (lateLimit !== undefined && tm < lateLimit && (o.dropLate ?? true)) {
      late++;
      continue;
    }
    if (prevWm !== undefined && tm < prevWm) lateAccepted++;
    let times = state.get(r.k);
    if (!times) state.set(r.k, (times = []));
    const i = upperBound(times, tm);
    if (i > 0 && tm - times[i - 1] < o.windowMs) {
      dups++;
      continue;
    }
    // Rows are processed in event-time order, so a kept row after this one came from an
    // earlier batch: this row arrived late and is the real first occurrence.
    if (i < times.length && times[i] - tm < o.windowMs) {
      superseded.push({ k: r.k, t: times[i] });
      times.splice(i, 1);
    }
    times.splice(i, 0, tm);
    kept.push({ rid: r.rid, k: r.k, t: tm });
    changed = true;
  }

  const newWm = Math.max(prevWm ?? -Infinity, Number.isFinite(maxT) ? maxT - delay : -Infinity);
  let stateSize = 0;
  if (Number.isFinite(newWm)) {
    batch.state[wmKey] = newWm;
    const expiry = newWm - lateness;
    for (const [k, times] of state) {
      const keep = times.filter((tm) => tm >= expiry);
      if (keep.length !== times.length) changed = true;
      if (keep.length) state.set(k, keep);
      else state.delete(k);
    }
  }
  for (const times of state.values()) stateSize += times.length;
  batch.metrics[`dedup.${o.name}.in`] = rows.length;
  batch.metrics[`dedup.${o.name}.kept`] = kept.length;
  batch.metrics[`dedup.${o.name}.duplicates`] = dups;
  batch.metrics[`dedup.${o.name}.late`] = late;
  batch.metrics[`dedup.${o.name}.late_accepted`] = lateAccepted;
  batch.metrics[`dedup.${o.name}.superseded`] = superseded.length;
  batch.metrics[`dedup.${o.name}.state`] = stateSize;

  if (retract && superseded.length && batch.def.detection) {
    const det = literal(batch.def.detection);
    for (const s of superseded) {
      const key = (JSON.parse(s.k) as (string | null)[]).map((v) => v ?? '').join('|');
      batch.retract(
        'alerts',
        `detection = ${det} AND dedup_key = ${literal(key)} AND event_time >= ${timestampLiteral(s.t)} ` +
          `AND event_time < ${timestampLiteral(s.t + 1)}`,
        RETRACT_ALERT,
      );
    }
  }

  if (changed || !snap) {
    const rows: (string | number)[][] = [];
    for (const [k, times] of state) for (const tm of times) rows.push([k, tm]);
    const staged = await batch.tempFromRows(
      'dedup_state',
      [
        { name: 'k', type: 'VARCHAR' },
        { name: 'ms', type: 'BIGINT' },
      ],
      rows,
    );
    await batch.writeState(o.stateTable, `SELECT k, make_timestamp(ms * 1000) AS event_time FROM ${staged}`, {
      mode: 'overwrite',
    });
  }

  const keptIds = await batch.tempFromRows(
    'dedup_kept',
    [{ name: '__rid', type: 'BIGINT' }],
    kept.map((c) => [c.rid]),
  );
  return batch.temp(
    'dedup_out',
    `SELECT * EXCLUDE (__rid, __k) FROM ${numbered} WHERE __rid IN (SELECT __rid FROM ${keptIds})`,
  );
}
