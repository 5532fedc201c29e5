/**
 * Generic CSV IoC lists: a header naming at least the value column (`ioc`, `indicator` or
 * `value`) and, unless a type is declared, the type column (`ioc_type` or `type`); optional
 * dataset, ioc_id, first_seen, last_seen, valid_until, confidence, tags, description,
 * reference. (`talon intel load --format csv` keeps its DuckDB loader for the iocs.csv layout;
 * this one feeds the same normalization as the other formats.)
 */
import { csvRecords } from './csvrows.js';
import { FeedCollector, parseTime, str, tagList } from './record.js';
import type { FeedParse } from './record.js';

export function parseCsv(text: string, opts: { type?: string; dataset?: string } = {}): FeedParse {
  const c = new FeedCollector(opts.dataset ?? 'csv');
  const rows = csvRecords(text);
  if (rows.length) {
    const cols = Object.keys(rows[0]);
    const valueCol = ['ioc', 'indicator', 'value'].find((k) => cols.includes(k));
    const typeCol = ['ioc_type', 'type'].find((k) => cols.includes(k));
    if (!valueCol)
      throw new Error(`CSV header has no ioc/indicator/value column (found: ${cols.join(', ')})`);
    if (!typeCol && !opts.type) throw new Error('CSV header has no ioc_type/type column; declare --type');
    for (const r of rows) {
      const conf = Number(r.confidence);
      c.add(opts.type ?? r[typeCol!] ?? '', r[valueCol], {
        dataset: str(r.dataset) ?? undefined,
        ioc_id: str(r.ioc_id ?? r.id),
        first_seen: parseTime(r.first_seen),
        last_seen: parseTime(r.last_seen),
        valid_until: parseTime(r.valid_until),
        confidence: r.confidence !== undefined && r.confidence !== '' && Number.isFinite(conf) ? conf : null,
        tags: tagList(r.tags),
        description: str(r.description),
        reference: str(r.reference),
      });
    }
  }
  return c;
}
