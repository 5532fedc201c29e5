/**
 * MISP: event JSON (`{Event: {...}}`, `{response: [{Event}]}`, lists of events) with
 * attributes at event level and inside objects, attribute lists (`{response: {Attribute: [...]}}`,
 * arrays) and NDJSON of attributes (the shape of /attributes/restSearch exports). Only
 * attributes with `to_ids` set are indicators; the others are counted as skipped. Composite
 * types are split: `ip-dst|port` → the IP (port in the tags), `filename|sha256` → the hash,
 * `domain|ip` → both. Event and attribute tags are kept.
 */
import { FeedCollector, isObject, jsonValues, parseTime, str, tagList } from './record.js';
import type { FeedParse } from './record.js';
import { canonicalType } from '../normalize.js';

type Obj = Record<string, unknown>;

function toIds(v: unknown): boolean {
  return v === true || v === 1 || v === '1' || v === 'true';
}

function addAttribute(c: FeedCollector, a: Obj, event: Obj | undefined): void {
  if (a.deleted === true || a.deleted === '1') {
    c.skip('MISP: deleted attribute');
    return;
  }
  if (!toIds(a.to_ids)) {
    c.skip('MISP: to_ids not set');
    return;
  }
  const ev = event ?? (isObject(a.Event) ? a.Event : undefined);
  const tags = [...tagList(ev?.Tag), ...tagList(a.Tag)];
  const type = String(a.type ?? '');
  const value = String(a.value ?? '');
  const eventInfo = str(ev?.info);
  const fields = {
    ioc_id: str(a.uuid) ?? str(a.id),
    first_seen: parseTime(a.first_seen) ?? parseTime(a.timestamp) ?? parseTime(ev?.date),
    last_seen: parseTime(a.last_seen),
    tags,
    description: [eventInfo, str(a.comment)].filter(Boolean).join(' — ') || null,
    reference: str(ev?.uuid) ? `misp:event/${str(ev?.uuid)}` : null,
  };
  if (type.includes('|')) {
    const [t1, t2] = type.split('|');
    const [v1, v2] = splitComposite(value);
    if (t2 === 'port') {
      c.add(t1, v1, { ...fields, tags: [...tags, `port:${v2}`] });
    } else if (t1 === 'filename') {
      c.add(t2, v2, { ...fields, description: [fields.description, v1].filter(Boolean).join(' — ') });
    } else if (canonicalType(t1) && canonicalType(t2)) {
      // domain|ip, hostname|ip …: both halves are indicators.
      c.add(t1, v1, fields);
      c.add(t2, v2, fields);
    } else {
      c.unsupportedItem(`unsupported type ${type}`);
    }
    return;
  }
  c.add(type, value, fields);
}

function splitComposite(v: string): [string, string] {
  const i = v.indexOf('|');
  return i < 0 ? [v, ''] : [v.slice(0, i), v.slice(i + 1)];
}

function visitEvent(c: FeedCollector, ev: Obj): void {
  for (const a of Array.isArray(ev.Attribute) ? ev.Attribute : []) if (isObject(a)) addAttribute(c, a, ev);
  for (const o of Array.isArray(ev.Object) ? ev.Object : []) {
    if (!isObject(o)) continue;
    for (const a of Array.isArray(o.Attribute) ? o.Attribute : []) if (isObject(a)) addAttribute(c, a, ev);
  }
}

function visit(c: FeedCollector, v: unknown): void {
  if (Array.isArray(v)) {
    for (const x of v) visit(c, x);
    return;
  }
  if (!isObject(v)) return;
  if (isObject(v.Event) && !('type' in v && 'value' in v)) return visitEvent(c, v.Event);
  if ('response' in v) return visit(c, v.response);
  if (Array.isArray(v.Attribute) && !('type' in v)) {
    if ('info' in v || 'Object' in v) return visitEvent(c, v);
    return visit(c, v.Attribute);
  }
  if ('type' in v && 'value' in v) return addAttribute(c, v, undefined);
  if ('info' in v) return visitEvent(c, v);
}

export function parseMisp(text: string, dataset = 'misp'): FeedParse {
  const c = new FeedCollector(dataset);
  visit(c, jsonValues(text));
  return c;
}
