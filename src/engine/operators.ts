/**
 * Stateful and checking operators over a micro-batch (DLT/Structured Streaming equivalents):
 * expectations, union, deduplication with an event-time watermark.
 */
import { ident, literal } from '../sql/duckdb.js';
import type { MicroBatch } from './batch.js';

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
  /** Watermark = max event time seen − delay; state older than the watermark expires. Default: windowMs. */
  delayMs?: number;
  /** The state table (must be among the query's `snapshots`). */
  stateTable: string;
  /** Max event time of the whole stream in this batch (defaults to the input's). */
  maxEventTimeMs?: number;
  /** Drop rows older than the previous batch's watermark, as Spark does; default true. */
  dropLate?: boolean;
}

interface Candidate {
  rid: bigint;
  k: string;
  t: number;
}

/**
 * `withWatermark(time, delay).dropDuplicates(keys)`, with the window made exact: a row is a
 * duplicate when a kept row of the same key lies within `windowMs` of it (in this batch or
 * in the state). State: one row per key with the event time of its last kept row, persisted
 * in a Delta table written with txn (query, batch id); entries older than the watermark
 * expire, so a key seen again after that alerts again.
 */
export async function dedupWithWatermark(batch: MicroBatch, input: string, o: DedupOptions): Promise<string> {
  const delay = o.delayMs ?? o.windowMs;
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

  const state = new Map<string, number>();
  const snap = await batch.snapshot(o.stateTable);
  if (snap) {
    const st = await batch.db.all<{ k: string; t: number }>(
      `SELECT k, epoch_ms(event_time) AS t FROM ${snap} s`,
    );
    for (const s of st) state.set(s.k, Number(s.t));
  }

  const kept: Candidate[] = [];
  let late = 0;
  let dups = 0;
  let changed = false;
  for (const r of rows) {
    if (r.t === null) {
      late++;
      continue;
    }
    const tm = Number(r.t);
    if ((o.dropLate ?? true) && prevWm !== undefined && tm < prevWm) {
      late++;
      continue;
    }
    const last = state.get(r.k);
    if (last !== undefined && Math.abs(tm - last) < o.windowMs) {
      dups++;
      continue;
    }
    kept.push({ rid: r.rid, k: r.k, t: tm });
    state.set(r.k, last === undefined ? tm : Math.max(last, tm));
    changed = true;
  }

  const newWm = Math.max(prevWm ?? -Infinity, Number.isFinite(maxT) ? maxT - delay : -Infinity);
  if (Number.isFinite(newWm)) {
    batch.state[wmKey] = newWm;
    for (const [k, tm] of state) {
      if (tm < newWm) {
        state.delete(k);
        changed = true;
      }
    }
  }
  batch.metrics[`dedup.${o.name}.in`] = rows.length;
  batch.metrics[`dedup.${o.name}.kept`] = kept.length;
  batch.metrics[`dedup.${o.name}.duplicates`] = dups;
  batch.metrics[`dedup.${o.name}.late`] = late;
  batch.metrics[`dedup.${o.name}.state`] = state.size;

  if (changed || !snap) {
    const values = [...state.entries()].map(
      ([k, tm]) => `(${literal(k)}, make_timestamp(${BigInt(tm) * 1000n}))`,
    );
    const rel =
      values.length > 0
        ? `SELECT * FROM (VALUES ${values.join(', ')}) AS v(k, event_time)`
        : `SELECT NULL::VARCHAR AS k, NULL::TIMESTAMP AS event_time WHERE false`;
    await batch.writeState(o.stateTable, rel, { mode: 'overwrite' });
  }

  const keptIds = await batch.temp(
    'dedup_kept',
    kept.length > 0
      ? `SELECT * FROM (VALUES ${kept.map((c) => `(${c.rid})`).join(', ')}) AS v(__rid)`
      : `SELECT NULL::BIGINT AS __rid WHERE false`,
  );
  return batch.temp(
    'dedup_out',
    `SELECT * EXCLUDE (__rid, __k) FROM ${numbered} WHERE __rid IN (SELECT __rid FROM ${keptIds})`,
  );
}
