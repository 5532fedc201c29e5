/**
 * What every feed parser produces: canonical IoC records, and counts of what was not taken —
 * `rejected` (malformed values, by reason) and `unsupported` (types or patterns Talon does not
 * match, by reason). Nothing is dropped without being counted.
 */
import { normalizeIoc } from '../normalize.js';

export interface IocRecord {
  dataset: string;
  ioc: string;
  ioc_type: string;
  ioc_id: string | null;
  first_seen: Date | null;
  last_seen: Date | null;
  /** End of validity the feed states (STIX valid_until, OTX expiration). */
  valid_until?: Date | null;
  /** 0..100 */
  confidence?: number | null;
  tags?: string[];
  description?: string | null;
  reference?: string | null;
}

export interface FeedParse {
  records: IocRecord[];
  rejected: Record<string, number>;
  unsupported: Record<string, number>;
  /** Input items skipped on purpose (e.g. MISP attributes without to_ids), by reason. */
  skipped: Record<string, number>;
}

export type RawFields = Omit<IocRecord, 'ioc' | 'ioc_type' | 'dataset'> & { dataset?: string };

export class FeedCollector implements FeedParse {
  readonly records: IocRecord[] = [];
  readonly rejected: Record<string, number> = {};
  readonly unsupported: Record<string, number> = {};
  readonly skipped: Record<string, number> = {};

  constructor(readonly dataset: string) {}

  /** Normalizes and keeps one indicator, or counts why not. Returns whether it was kept. */
  add(type: string, value: unknown, fields: Partial<RawFields> = {}): boolean {
    const n = normalizeIoc(type, value);
    if (!n.ok) {
      const bucket = n.reason.startsWith('unsupported type') ? this.unsupported : this.rejected;
      bucket[n.reason] = (bucket[n.reason] ?? 0) + 1;
      return false;
    }
    this.records.push({
      dataset: fields.dataset ?? this.dataset,
      ioc: n.ioc,
      ioc_type: n.ioc_type,
      ioc_id: fields.ioc_id ?? null,
      first_seen: fields.first_seen ?? null,
      last_seen: fields.last_seen ?? null,
      valid_until: fields.valid_until ?? null,
      confidence: fields.confidence ?? null,
      tags: fields.tags && fields.tags.length ? fields.tags : undefined,
      description: fields.description ?? null,
      reference: fields.reference ?? null,
    });
    return true;
  }

  unsupportedItem(reason: string): void {
    this.unsupported[reason] = (this.unsupported[reason] ?? 0) + 1;
  }

  rejectItem(reason: string): void {
    this.rejected[reason] = (this.rejected[reason] ?? 0) + 1;
  }

  skip(reason: string): void {
    this.skipped[reason] = (this.skipped[reason] ?? 0) + 1;
  }
}

export function countOf(m: Record<string, number>): number {
  return Object.values(m).reduce((a, b) => a + b, 0);
}

/**
 * Feed time stamps: ISO 8601, "YYYY-MM-DD hh:mm:ss[ UTC]" (abuse.ch), epoch seconds,
 * milliseconds or microseconds (MISP first_seen). Times without a zone are UTC.
 */
export function parseTime(v: unknown): Date | null {
  if (v === null || v === undefined || v === '') return null;
  if (typeof v === 'number' || (typeof v === 'string' && /^\d+(\.\d+)?$/.test(v.trim()))) {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) return null;
    const ms = n >= 1e14 ? n / 1000 : n >= 1e11 ? n : n * 1000;
    return new Date(ms);
  }
  if (typeof v !== 'string') return null;
  let s = v.trim().replace(/\s+UTC$/i, 'Z');
  if (/^\d{4}-\d{2}-\d{2} \d/.test(s)) s = s.replace(' ', 'T');
  if (/^\d{4}-\d{2}-\d{2}T[\d:.]+$/.test(s)) s += 'Z';
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** Parses a JSON document, or NDJSON (one JSON value per line), into a list of values. */
export function jsonValues(text: string): unknown[] {
  const t = text.trim();
  if (t === '') return [];
  try {
    return [JSON.parse(t)];
  } catch {
    const out: unknown[] = [];
    for (const line of t.split(/\r?\n/)) {
      const l = line.trim();
      if (l === '') continue;
      out.push(JSON.parse(l));
    }
    return out;
  }
}

export function str(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  const s = String(v).trim();
  return s === '' ? null : s;
}

export function tagList(v: unknown): string[] {
  if (Array.isArray(v))
    return v
      .map((x) => (typeof x === 'object' && x ? str((x as { name?: unknown }).name) : str(x)))
      .filter((x): x is string => !!x);
  if (typeof v === 'string')
    return v
      .split(/[,;]/)
      .map((s) => s.trim())
      .filter(Boolean);
  return [];
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
