/**
 * abuse.ch ThreatFox: the JSON export (`{"<id>": [ {...} ]}`), the API answer
 * (`{query_status, data: [...]}`) and NDJSON of single IoCs. ioc_type `ip:port` becomes IPv4
 * (IPv6) with the port kept in the tags (`port:N`) and description; confidence_level is kept.
 */
import { FeedCollector, isObject, jsonValues, parseTime, str, tagList } from './record.js';
import type { FeedParse } from './record.js';

const TYPES: Record<string, string> = {
  domain: 'domain',
  url: 'URL',
  md5_hash: 'FileHash-MD5',
  sha1_hash: 'FileHash-SHA1',
  sha256_hash: 'FileHash-SHA256',
  sha3_384_hash: 'sha3-384',
};

function addOne(c: FeedCollector, r: Record<string, unknown>, id?: string): void {
  const type = String(r.ioc_type ?? '');
  let value = str(r.ioc ?? r.ioc_value);
  const tags = tagList(r.tags);
  let descr = [str(r.malware_printable), str(r.threat_type)].filter(Boolean).join(' ');
  let iocType = TYPES[type] ?? type;
  if (type === 'ip:port' && value) {
    const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(value);
    if (m) {
      value = m[1];
      tags.push(`port:${m[2]}`);
      descr = `${descr} port ${m[2]}`.trim();
    }
    iocType = 'IP';
  }
  const conf = Number(r.confidence_level);
  c.add(iocType, value, {
    ioc_id: str(r.id) ?? id ?? null,
    first_seen: parseTime(r.first_seen ?? r.first_seen_utc),
    last_seen: parseTime(r.last_seen ?? r.last_seen_utc),
    confidence: Number.isFinite(conf) ? conf : null,
    tags,
    description: descr || null,
    reference: str(r.reference) ?? (str(r.id) ? `https://threatfox.abuse.ch/ioc/${str(r.id)}/` : null),
  });
}

function visit(c: FeedCollector, v: unknown, id?: string): void {
  if (Array.isArray(v)) {
    for (const x of v) visit(c, x, id);
    return;
  }
  if (!isObject(v)) return;
  if ('ioc' in v || 'ioc_value' in v) return addOne(c, v, id);
  if (Array.isArray(v.data)) return visit(c, v.data);
  if ('query_status' in v) return;
  // The export: keys are ThreatFox ids, values arrays of IoCs.
  for (const [k, x] of Object.entries(v)) visit(c, x, k);
}

export function parseThreatFox(text: string, dataset = 'threatfox'): FeedParse {
  const c = new FeedCollector(dataset);
  visit(c, jsonValues(text));
  return c;
}
