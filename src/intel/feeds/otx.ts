/**
 * AlienVault OTX: pulses as the API and the web export give them — one pulse, a list of
 * pulses, or `{results: [pulses]}` (/api/v1/pulses/subscribed) — each with `indicators`
 * {indicator, type, id, created, expiration, title, description, is_active}; and the
 * one-indicator-per-line shapes (NDJSON of the indicator API, whose `pulse` may be embedded as
 * a JSON string). ioc_id is the pulse id when known (the alert then names the pulse).
 */
import { FeedCollector, isObject, jsonValues, parseTime, str, tagList } from './record.js';
import type { FeedParse } from './record.js';

type Obj = Record<string, unknown>;

function addIndicator(c: FeedCollector, ind: Obj, pulse: Obj | undefined): void {
  if (ind.is_active === 0 || ind.is_active === false) {
    c.skip('inactive indicator');
    return;
  }
  const pulseId = str(pulse?.id);
  const desc = [str(pulse?.name), str(ind.title), str(ind.description)].filter(Boolean).join(' — ');
  c.add(String(ind.type ?? ''), ind.indicator, {
    ioc_id: pulseId ?? str(ind.id),
    first_seen: parseTime(ind.created) ?? parseTime(pulse?.created),
    last_seen: null,
    valid_until: parseTime(ind.expiration) ?? parseTime(pulse?.expiration),
    tags: tagList(pulse?.tags),
    description: desc || null,
    reference: pulseId ? `https://otx.alienvault.com/pulse/${pulseId}` : null,
  });
}

function visit(c: FeedCollector, v: unknown): void {
  if (Array.isArray(v)) {
    for (const x of v) visit(c, x);
    return;
  }
  if (!isObject(v)) return;
  if (Array.isArray(v.results)) return visit(c, v.results);
  if (Array.isArray(v.indicators)) {
    for (const ind of v.indicators) if (isObject(ind)) addIndicator(c, ind, v);
    return;
  }
  if ('indicator' in v) {
    let pulse: Obj | undefined;
    if (typeof v.pulse === 'string') {
      try {
        const p: unknown = JSON.parse(v.pulse);
        if (isObject(p)) pulse = p;
      } catch {
        // an unreadable embedded pulse only loses the pulse's metadata
      }
    } else if (isObject(v.pulse)) pulse = v.pulse;
    addIndicator(c, v, pulse);
    return;
  }
  c.unsupportedItem('OTX: object without indicators');
}

export function parseOtx(text: string, dataset = 'otx'): FeedParse {
  const c = new FeedCollector(dataset);
  visit(c, jsonValues(text));
  return c;
}
