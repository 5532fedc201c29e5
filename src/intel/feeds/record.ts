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

/** The optional fields of a record, stored per column. */
const OPTIONAL = [
  'dataset',
  'ioc_id',
  'first_seen',
  'last_seen',
  'valid_until',
  'confidence',
  'tags',
  'description',
  'reference',
] as const;
type Optional = (typeof OPTIONAL)[number];

/**
 * Collects records column by column: a million-IoC feed then costs a few arrays instead of a
 * million objects, and a field no record sets costs nothing. `records` builds the objects
 * on demand; the loader reads the columns (`size`, `ioc`, `iocType`, `field`).
 */
export class FeedCollector implements FeedParse {
  readonly rejected: Record<string, number> = {};
  readonly unsupported: Record<string, number> = {};
  readonly skipped: Record<string, number> = {};
  private readonly iocs: string[] = [];
  private readonly types: string[] = [];
  /** An optional column exists once some record set a non-default value. */
  private readonly columns: Partial<Record<Optional, unknown[]>> = {};
  private built?: IocRecord[];

  constructor(readonly dataset: string) {}

  get size(): number {
    return this.iocs.length;
  }

  ioc(i: number): string {
    return this.iocs[i];
  }

  iocType(i: number): string {
    return this.types[i];
  }

  /** Field `name` of record i, with the defaults `records` gives. */
  field<K extends Optional>(name: K, i: number): IocRecord[K] {
    const col = this.columns[name];
    const v = col ? col[i] : undefined;
    if (name === 'dataset') return (v ?? this.dataset) as IocRecord[K];
    if (name === 'tags') return v as IocRecord[K];
    return (v ?? null) as IocRecord[K];
  }

  /** Whether some record sets field `name`. */
  has(name: Optional): boolean {
    return this.columns[name] !== undefined;
  }

  get records(): IocRecord[] {
    if (this.built && this.built.length === this.iocs.length) return this.built;
    const out: IocRecord[] = new Array(this.iocs.length);
    for (let i = 0; i < out.length; i++) {
      out[i] = {
        dataset: this.field('dataset', i),
        ioc: this.iocs[i],
        ioc_type: this.types[i],
        ioc_id: this.field('ioc_id', i),
        first_seen: this.field('first_seen', i),
        last_seen: this.field('last_seen', i),
        valid_until: this.field('valid_until', i),
        confidence: this.field('confidence', i),
        tags: this.field('tags', i),
        description: this.field('description', i),
        reference: this.field('reference', i),
      };
    }
    return (this.built = out);
  }

  private set(name: Optional, i: number, v: unknown): void {
    let col = this.columns[name];
    if (!col) {
      if (v === undefined || v === null) return;
      col = this.columns[name] = new Array<unknown>(i).fill(undefined);
    }
    col.push(v ?? undefined);
  }

  /** Normalizes and keeps one indicator, or counts why not. Returns whether it was kept. */
  add(type: string, value: unknown, fields: Partial<RawFields> = {}): boolean {
    const n = normalizeIoc(type, value);
    if (!n.ok) {
      const bucket = n.reason.startsWith('unsupported type') ? this.unsupported : this.rejected;
      bucket[n.reason] = (bucket[n.reason] ?? 0) + 1;
      return false;
    }
    const i = this.iocs.length;
    this.iocs.push(n.ioc);
    this.types.push(n.ioc_type);
    for (const k of OPTIONAL) {
      let v: unknown = fields[k];
      if (
        (k === 'tags' && (v as string[] | undefined)?.length === 0) ||
        (k === 'dataset' && v === this.dataset)
      )
        v = undefined;
      this.set(k, i, v);
    }
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
