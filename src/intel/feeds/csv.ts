/**
 * Generic CSV IoC lists: a header naming at least the value column (`ioc`, `indicator` or
 * `value`) and, unless a type is declared, the type column (`ioc_type` or `type`); optional
 * dataset, ioc_id, first_seen, last_seen, valid_until, confidence, tags, description,
 * reference. (`talon intel load --format csv` keeps its DuckDB loader for the iocs.csv layout;
 * this one feeds the same normalization as the other formats.)
 */
import { forEachCsvRow } from './csvrows.js';
import { FeedCollector, parseTime, str, tagList } from './record.js';
import type { FeedParse, RawFields } from './record.js';

export function parseCsv(text: string, opts: { type?: string; dataset?: string } = {}): FeedParse {
  const c = new FeedCollector(opts.dataset ?? 'csv');
  let visit: ((r: string[]) => void) | undefined;
  forEachCsvRow(text, {}, (r, header) => (visit ??= rowVisitor(c, header, opts))(r));
  return c;
}

/** Reads a row into the collector; columns found once from the header. */
function rowVisitor(c: FeedCollector, header: string[], opts: { type?: string }): (r: string[]) => void {
  const col = (...names: string[]): number => {
    for (const n of names) {
      const i = header.indexOf(n);
      if (i >= 0) return i;
    }
    return -1;
  };
  const valueCol = col('ioc', 'indicator', 'value');
  const typeCol = col('ioc_type', 'type');
  if (valueCol < 0)
    throw new Error(`CSV header has no ioc/indicator/value column (found: ${header.join(', ')})`);
  if (typeCol < 0 && !opts.type) throw new Error('CSV header has no ioc_type/type column; declare --type');
  // Optional columns by position; absent ones (-1) cost nothing per row.
  const ds = col('dataset');
  const id = col('ioc_id', 'id');
  const first = col('first_seen');
  const last = col('last_seen');
  const until = col('valid_until');
  const conf = col('confidence');
  const tags = col('tags');
  const desc = col('description');
  const ref = col('reference');
  const hasFields = [ds, id, first, last, until, conf, tags, desc, ref].some((i) => i >= 0);
  const none: Partial<RawFields> = {};
  return (r) => {
    const type = opts.type ?? r[typeCol] ?? '';
    if (!hasFields) {
      c.add(type, r[valueCol], none);
      return;
    }
    const confidence = conf >= 0 && r[conf] !== undefined && r[conf] !== '' ? Number(r[conf]) : NaN;
    c.add(type, r[valueCol], {
      dataset: ds >= 0 ? (str(r[ds]) ?? undefined) : undefined,
      ioc_id: id >= 0 ? str(r[id]) : null,
      first_seen: first >= 0 ? parseTime(r[first]) : null,
      last_seen: last >= 0 ? parseTime(r[last]) : null,
      valid_until: until >= 0 ? parseTime(r[until]) : null,
      confidence: Number.isFinite(confidence) ? confidence : null,
      tags: tags >= 0 ? tagList(r[tags]) : undefined,
      description: desc >= 0 ? str(r[desc]) : null,
      reference: ref >= 0 ? str(r[ref]) : null,
    });
  };
}
