/**
 * File skipping for `Snapshot.scan(filter)`: a small reader for the simple part of a SQL
 * predicate (`col op literal`, `IN`, `IS [NOT] NULL`, `BETWEEN`, AND/OR/NOT) and a judge that
 * says, from a file's partition values and min/max/nullCount stats, whether the file can
 * hold a matching row. Anything it does not understand counts as "maybe", so pruning only
 * ever drops files that certainly have no match; the filter itself is still applied to rows.
 */
import type { AddFile, DeltaType, StructType } from './table.js';
import type { FileStats } from './stats.js';

type Lit =
  | { kind: 'num'; v: number; text: string }
  | { kind: 'str'; v: string }
  | { kind: 'bool'; v: boolean }
  | { kind: 'null' }
  | { kind: 'date'; v: string }
  | { kind: 'ts'; v: string };

type Op = '=' | '!=' | '<' | '<=' | '>' | '>=';

export type Pred =
  | { k: 'and'; items: Pred[] }
  | { k: 'or'; items: Pred[] }
  | { k: 'not'; e: Pred }
  | { k: 'cmp'; col: string[]; op: Op; lit: Lit }
  | { k: 'in'; col: string[]; lits: Lit[]; neg: boolean }
  | { k: 'isnull'; col: string[]; neg: boolean }
  | { k: 'unknown' };

type Tok = { t: 'id' | 'qid' | 'num' | 'str' | 'op' | 'punct'; v: string };

function tokenize(s: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "'") {
      let v = '';
      i++;
      for (;;) {
        if (i >= s.length) throw new Error('unterminated string');
        if (s[i] === "'") {
          if (s[i + 1] === "'") {
            v += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += s[i++];
      }
      out.push({ t: 'str', v });
      continue;
    }
    if (c === '"') {
      let v = '';
      i++;
      for (;;) {
        if (i >= s.length) throw new Error('unterminated identifier');
        if (s[i] === '"') {
          if (s[i + 1] === '"') {
            v += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += s[i++];
      }
      out.push({ t: 'qid', v });
      continue;
    }
    const num = /^(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)/.exec(s.slice(i));
    if (num && !/[A-Za-z_]/.test(s[i + num[0].length] ?? '')) {
      out.push({ t: 'num', v: num[0] });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(s.slice(i));
    if (id) {
      out.push({ t: 'id', v: id[0] });
      i += id[0].length;
      continue;
    }
    const op = /^(<=|>=|<>|!=|==|::|\|\||[=<>+\-*/%])/.exec(s.slice(i));
    if (op) {
      out.push({ t: 'op', v: op[0] });
      i += op[0].length;
      continue;
    }
    out.push({ t: 'punct', v: c });
    i++;
  }
  return out;
}

class PredParser {
  private i = 0;
  constructor(private readonly toks: Tok[]) {}

  private peek(): Tok | undefined {
    return this.toks[this.i];
  }
  private kw(word: string): boolean {
    const t = this.peek();
    return t?.t === 'id' && t.v.toUpperCase() === word;
  }
  private eatKw(word: string): boolean {
    if (this.kw(word)) {
      this.i++;
      return true;
    }
    return false;
  }
  private eatPunct(p: string): boolean {
    const t = this.peek();
    if (t && t.t === 'punct' && t.v === p) {
      this.i++;
      return true;
    }
    return false;
  }

  parse(): Pred {
    const e = this.or();
    if (this.i !== this.toks.length) return { k: 'unknown' };
    return e;
  }

  private or(): Pred {
    const items = [this.and()];
    while (this.eatKw('OR')) items.push(this.and());
    return items.length === 1 ? items[0] : { k: 'or', items };
  }

  private and(): Pred {
    const items = [this.not()];
    while (this.eatKw('AND')) items.push(this.not());
    return items.length === 1 ? items[0] : { k: 'and', items };
  }

  private not(): Pred {
    if (this.eatKw('NOT')) return { k: 'not', e: this.not() };
    return this.predicate();
  }

  /** One predicate; when it is not understood, skips to the next AND/OR/')' at its level. */
  private predicate(): Pred {
    const start = this.i;
    try {
      const p = this.predicateStrict();
      const t = this.peek();
      if (t === undefined || this.kw('AND') || this.kw('OR') || (t.t === 'punct' && t.v === ')')) return p;
      throw new Error('trailing tokens');
    } catch {
      this.i = start;
      let depth = 0;
      while (this.i < this.toks.length) {
        const t = this.toks[this.i];
        if (t.t === 'punct' && t.v === '(') depth++;
        if (t.t === 'punct' && t.v === ')') {
          if (depth === 0) break;
          depth--;
        }
        if (depth === 0 && (this.kw('AND') || this.kw('OR')) && this.i > start) break;
        this.i++;
      }
      return { k: 'unknown' };
    }
  }

  private predicateStrict(): Pred {
    if (this.eatPunct('(')) {
      const e = this.or();
      if (!this.eatPunct(')')) throw new Error('expected )');
      return e;
    }
    const leftCol = this.tryColumn();
    if (!leftCol) {
      const lit = this.literal();
      const op = this.cmpOp();
      const col = this.tryColumn();
      if (!col) throw new Error('no column');
      return { k: 'cmp', col, op: flip(op), lit };
    }
    if (this.eatKw('IS')) {
      const neg = this.eatKw('NOT');
      if (!this.eatKw('NULL')) throw new Error('expected NULL');
      return { k: 'isnull', col: leftCol, neg };
    }
    const neg = this.eatKw('NOT');
    if (this.eatKw('IN')) {
      if (!this.eatPunct('(')) throw new Error('expected (');
      const lits = [this.literal()];
      while (this.eatPunct(',')) lits.push(this.literal());
      if (!this.eatPunct(')')) throw new Error('expected )');
      return { k: 'in', col: leftCol, lits, neg };
    }
    if (this.eatKw('BETWEEN')) {
      const lo = this.literal();
      if (!this.eatKw('AND')) throw new Error('expected AND');
      const hi = this.literal();
      const p: Pred = {
        k: 'and',
        items: [
          { k: 'cmp', col: leftCol, op: '>=', lit: lo },
          { k: 'cmp', col: leftCol, op: '<=', lit: hi },
        ],
      };
      return neg ? { k: 'not', e: p } : p;
    }
    if (neg) throw new Error('unexpected NOT');
    const op = this.cmpOp();
    const lit = this.literal();
    return { k: 'cmp', col: leftCol, op, lit };
  }

  private cmpOp(): Op {
    const t = this.peek();
    if (t?.t !== 'op') throw new Error('expected operator');
    this.i++;
    switch (t.v) {
      case '=':
      case '==':
        return '=';
      case '!=':
      case '<>':
        return '!=';
      case '<':
      case '<=':
      case '>':
      case '>=':
        return t.v;
      default:
        throw new Error('unsupported operator');
    }
  }

  private tryColumn(): string[] | undefined {
    const t = this.peek();
    if (!t || (t.t !== 'id' && t.t !== 'qid')) return undefined;
    if (t.t === 'id' && ['TRUE', 'FALSE', 'NULL', 'DATE', 'TIMESTAMP', 'NOT'].includes(t.v.toUpperCase()))
      return undefined;
    const next = this.toks[this.i + 1];
    if (next?.t === 'punct' && next.v === '(') return undefined; // a function call
    this.i++;
    const path = [t.v];
    while (this.toks[this.i]?.t === 'punct' && this.toks[this.i].v === '.') {
      const n = this.toks[this.i + 1];
      if (!n || (n.t !== 'id' && n.t !== 'qid')) throw new Error('bad path');
      path.push(n.v);
      this.i += 2;
    }
    return path;
  }

  private literal(): Lit {
    const t = this.peek();
    if (!t) throw new Error('expected literal');
    if (t.t === 'op' && t.v === '-' && this.toks[this.i + 1]?.t === 'num') {
      const n = this.toks[this.i + 1].v;
      this.i += 2;
      this.noCast();
      return { kind: 'num', v: -Number(n), text: '-' + n };
    }
    this.i++;
    if (t.t === 'num') {
      this.noCast();
      return { kind: 'num', v: Number(t.v), text: t.v };
    }
    if (t.t === 'str') {
      this.noCast();
      return { kind: 'str', v: t.v };
    }
    if (t.t === 'id') {
      const w = t.v.toUpperCase();
      if (w === 'TRUE' || w === 'FALSE') return { kind: 'bool', v: w === 'TRUE' };
      if (w === 'NULL') return { kind: 'null' };
      if ((w === 'DATE' || w === 'TIMESTAMP' || w === 'TIMESTAMPTZ') && this.peek()?.t === 'str') {
        const v = this.toks[this.i++].v;
        return w === 'DATE' ? { kind: 'date', v } : { kind: 'ts', v };
      }
    }
    throw new Error('expected literal');
  }

  /** `'x'::DATE` and friends change the literal's meaning; not understood → fail. */
  private noCast(): void {
    const t = this.peek();
    if (t?.t === 'op' && t.v === '::') throw new Error('cast');
  }
}

function flip(op: Op): Op {
  return op === '<' ? '>' : op === '>' ? '<' : op === '<=' ? '>=' : op === '>=' ? '<=' : op;
}

export function parsePredicate(sql: string): Pred {
  try {
    return new PredParser(tokenize(sql)).parse();
  } catch {
    return { k: 'unknown' };
  }
}

// ---------------------------------------------------------------- judging files

type Val = number | string | boolean;

interface ColInfo {
  type: DeltaType;
  partition: boolean;
  name: string;
  /** stats path (struct fields) */
  path: string[];
}

/** Epoch microseconds of a timestamp text (`2024-01-02 03:04:05.123456`, `…T…Z`, `+00`), UTC. */
function tsMicros(text: string): number | undefined {
  const m =
    /^(\d{4})-(\d\d)-(\d\d)(?:[ T](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d\d(?::?\d\d)?)?$/.exec(
      text.trim(),
    );
  if (!m) return undefined;
  const ms = Date.UTC(
    Number(m[1]),
    Number(m[2]) - 1,
    Number(m[3]),
    Number(m[4] ?? 0),
    Number(m[5] ?? 0),
    Number(m[6] ?? 0),
  );
  if (Number.isNaN(ms)) return undefined;
  const frac = Number((m[7] ?? '').padEnd(6, '0').slice(0, 6));
  let offsetMin = 0;
  if (m[8] && m[8] !== 'Z') {
    const sign = m[8][0] === '-' ? -1 : 1;
    const digits = m[8].slice(1).replace(':', '');
    offsetMin = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || 0));
  }
  return (ms - offsetMin * 60000) * 1000 + frac;
}

function dateText(text: string): string | undefined {
  const m = /^(\d{4})-(\d{1,2})-(\d{1,2})$/.exec(text.trim());
  if (!m) return undefined;
  return `${m[1]}-${m[2].padStart(2, '0')}-${m[3].padStart(2, '0')}`;
}

function isNumeric(t: DeltaType): boolean {
  return (
    typeof t === 'string' &&
    (['long', 'integer', 'short', 'byte', 'float', 'double'].includes(t) || t.startsWith('decimal'))
  );
}

/** A literal as a comparable value for a column of type t; undefined when not comparable. */
function litValue(t: DeltaType, lit: Lit): Val | undefined {
  if (typeof t !== 'string') return undefined;
  if (isNumeric(t)) {
    if (lit.kind === 'num') return lit.v;
    if (lit.kind === 'str' && lit.v.trim() !== '' && Number.isFinite(Number(lit.v))) return Number(lit.v);
    return undefined;
  }
  if (t === 'string') return lit.kind === 'str' ? lit.v : undefined;
  if (t === 'boolean') return lit.kind === 'bool' ? lit.v : undefined;
  if (t === 'date') return lit.kind === 'str' || lit.kind === 'date' ? dateText(lit.v) : undefined;
  if (t === 'timestamp' || t === 'timestamp_ntz') {
    return lit.kind === 'str' || lit.kind === 'ts' || lit.kind === 'date' ? tsMicros(lit.v) : undefined;
  }
  return undefined;
}

/** A serialized partition value or stats value as a comparable value. */
function storedValue(t: DeltaType, v: unknown): Val | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof t !== 'string') return undefined;
  if (isNumeric(t)) {
    const n = typeof v === 'number' ? v : Number(v);
    return Number.isFinite(n) && !(typeof v === 'string' && v.trim() === '') ? n : undefined;
  }
  if (t === 'string') return String(v);
  if (t === 'boolean')
    return v === true || v === 'true' ? true : v === false || v === 'false' ? false : undefined;
  if (t === 'date') return dateText(String(v));
  if (t === 'timestamp' || t === 'timestamp_ntz') return tsMicros(String(v));
  return undefined;
}

function cmp(a: Val, op: Op, b: Val): boolean {
  switch (op) {
    case '=':
      return a === b;
    case '!=':
      return a !== b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
  }
}

function negate(p: Pred): Pred {
  switch (p.k) {
    case 'and':
      return { k: 'or', items: p.items.map(negate) };
    case 'or':
      return { k: 'and', items: p.items.map(negate) };
    case 'not':
      return p.e;
    case 'cmp': {
      const inv: Record<Op, Op> = { '=': '!=', '!=': '=', '<': '>=', '<=': '>', '>': '<=', '>=': '<' };
      return { ...p, op: inv[p.op] };
    }
    case 'in':
      return { ...p, neg: !p.neg };
    case 'isnull':
      return { ...p, neg: !p.neg };
    default:
      return { k: 'unknown' };
  }
}

function getPath(obj: unknown, path: string[]): unknown {
  let o = obj;
  for (const p of path) {
    if (!o || typeof o !== 'object') return undefined;
    const rec = o as Record<string, unknown>;
    const key = Object.keys(rec).find((k) => k.toLowerCase() === p.toLowerCase());
    if (key === undefined) return undefined;
    o = rec[key];
  }
  return o;
}

export class FileJudge {
  private readonly cols = new Map<string, ColInfo>();

  constructor(
    schema: StructType,
    partitionColumns: string[],
    private readonly pred: Pred,
  ) {
    const parts = new Set(partitionColumns.map((c) => c.toLowerCase()));
    const walk = (fields: StructType['fields'], prefix: string[], top: boolean) => {
      for (const f of fields) {
        const path = [...prefix, f.name];
        const key = path.map((p) => p.toLowerCase()).join('.');
        this.cols.set(key, {
          type: f.type,
          partition: top && parts.has(f.name.toLowerCase()),
          name: f.name,
          path,
        });
        if (typeof f.type !== 'string' && f.type.type === 'struct') walk(f.type.fields, path, false);
      }
    };
    walk(schema.fields, [], true);
  }

  /** False only when no row of the file can satisfy the predicate. */
  mayMatch(file: AddFile): boolean {
    let stats: FileStats | undefined;
    try {
      stats = file.stats ? (JSON.parse(file.stats) as FileStats) : undefined;
    } catch {
      stats = undefined;
    }
    return this.eval(this.pred, file, stats) !== 'no';
  }

  private eval(p: Pred, file: AddFile, stats: FileStats | undefined): 'no' | 'maybe' {
    switch (p.k) {
      case 'and':
        return p.items.some((i) => this.eval(i, file, stats) === 'no') ? 'no' : 'maybe';
      case 'or':
        return p.items.every((i) => this.eval(i, file, stats) === 'no') ? 'no' : 'maybe';
      case 'not': {
        const n = negate(p.e);
        return n.k === 'unknown' ? 'maybe' : this.eval(n, file, stats);
      }
      case 'unknown':
        return 'maybe';
      default:
        return this.leaf(p, file, stats);
    }
  }

  private leaf(
    p: Extract<Pred, { col: string[] }>,
    file: AddFile,
    stats: FileStats | undefined,
  ): 'no' | 'maybe' {
    const col = this.cols.get(p.col.map((c) => c.toLowerCase()).join('.'));
    if (!col) return 'maybe';
    if (col.partition) {
      const raw = Object.entries(file.partitionValues).find(
        ([k]) => k.toLowerCase() === col.name.toLowerCase(),
      )?.[1];
      const isNull = raw === null || raw === undefined || raw === '';
      if (p.k === 'isnull') return isNull !== p.neg ? 'maybe' : 'no';
      if (isNull) return 'no'; // comparisons with NULL are never true
      const v = storedValue(col.type, raw);
      if (v === undefined) return 'maybe';
      if (p.k === 'cmp') {
        if (p.lit.kind === 'null') return 'no';
        const l = litValue(col.type, p.lit);
        if (l === undefined) return 'maybe';
        return cmp(v, p.op, l) ? 'maybe' : 'no';
      }
      if (p.lits.some((x) => x.kind === 'null')) return p.neg ? 'no' : 'maybe';
      const ls = p.lits.map((x) => litValue(col.type, x));
      if (ls.some((x) => x === undefined)) return 'maybe';
      const hit = ls.includes(v);
      return hit !== p.neg ? 'maybe' : 'no';
    }
    if (!stats || typeof stats.numRecords !== 'number') return 'maybe';
    if (stats.numRecords === 0) return 'no';
    const nulls = getPath(stats.nullCount, col.path);
    const allNull = typeof nulls === 'number' && nulls === stats.numRecords;
    if (p.k === 'isnull') {
      if (!p.neg) return typeof nulls === 'number' && nulls === 0 ? 'no' : 'maybe';
      return allNull ? 'no' : 'maybe';
    }
    if (allNull) return 'no';
    let min = storedValue(col.type, getPath(stats.minValues, col.path));
    let max = storedValue(col.type, getPath(stats.maxValues, col.path));
    // Stats timestamps are cut to milliseconds: the true max may be up to 999 µs higher.
    if (typeof max === 'number' && (col.type === 'timestamp' || col.type === 'timestamp_ntz')) max += 999;
    // A float's printed stats and a literal may be rounded differently (float vs double
    // comparison); keep a margin so rounding never rules out a file.
    if (col.type === 'float') {
      if (typeof min === 'number') min -= Math.abs(min) * 1e-6 + 1e-30;
      if (typeof max === 'number') max += Math.abs(max) * 1e-6 + 1e-30;
    }
    const test = (op: Op, l: Val): boolean => {
      // true = some row may satisfy `col op l`
      switch (op) {
        case '=':
          return !((min !== undefined && l < min) || (max !== undefined && l > max));
        case '!=':
          return !(min !== undefined && max !== undefined && min === max && min === l);
        case '<':
          return !(min !== undefined && min >= l);
        case '<=':
          return !(min !== undefined && min > l);
        case '>':
          return !(max !== undefined && max <= l);
        case '>=':
          return !(max !== undefined && max < l);
      }
    };
    if (p.k === 'cmp') {
      if (p.lit.kind === 'null') return 'no';
      const l = litValue(col.type, p.lit);
      if (l === undefined) return 'maybe';
      return test(p.op, l) ? 'maybe' : 'no';
    }
    if (p.neg) return 'maybe';
    if (p.lits.every((x) => x.kind === 'null')) return 'no';
    const ls = p.lits.filter((x) => x.kind !== 'null').map((x) => litValue(col.type, x));
    if (ls.some((x) => x === undefined)) return 'maybe';
    return ls.some((l) => test('=', l as Val)) ? 'maybe' : 'no';
  }
}
