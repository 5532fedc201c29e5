/**
 * abuse.ch URLhaus: the CSV dumps (csv_recent / csv_online, header in the `#` comment block),
 * the JSON dump (`{"<id>": [ {...} ]}`), the API answer (`{query_status, urls: [...]}`) and
 * NDJSON of single URL entries. An offline URL's last_online is its last_seen.
 */
import { csvRecords } from './csvrows.js';
import { FeedCollector, isObject, jsonValues, parseTime, str, tagList } from './record.js';
import type { FeedParse } from './record.js';

function addOne(c: FeedCollector, r: Record<string, unknown>, id?: string): void {
  const ioc_id = str(r.id) ?? id ?? null;
  const offline = str(r.url_status) === 'offline';
  c.add('URL', r.url, {
    ioc_id,
    first_seen: parseTime(r.dateadded ?? r.date_added),
    last_seen: offline ? parseTime(r.last_online) : null,
    tags: tagList(r.tags),
    description: [str(r.threat), str(r.url_status)].filter(Boolean).join(', ') || null,
    reference: str(r.urlhaus_link ?? r.urlhaus_reference),
  });
}

function visit(c: FeedCollector, v: unknown, id?: string): void {
  if (Array.isArray(v)) {
    for (const x of v) visit(c, x, id);
    return;
  }
  if (!isObject(v)) return;
  if ('url' in v) return addOne(c, v, id);
  if (Array.isArray(v.urls)) return visit(c, v.urls);
  if ('query_status' in v) return;
  for (const [k, x] of Object.entries(v)) visit(c, x, k);
}

export function parseUrlhaus(text: string, dataset = 'urlhaus'): FeedParse {
  const c = new FeedCollector(dataset);
  const t = text.trimStart();
  if (t.startsWith('{') || t.startsWith('[')) visit(c, jsonValues(text));
  else {
    for (const r of csvRecords(text, { header: text.includes('# id,') ? undefined : DEFAULT_HEADER }))
      addOne(c, r);
  }
  return c;
}

const DEFAULT_HEADER = [
  'id',
  'dateadded',
  'url',
  'url_status',
  'last_online',
  'threat',
  'tags',
  'urlhaus_link',
  'reporter',
];
