/**
 * Field name → column name of one table.
 *
 * DuckDB (and Spark) column names are case-insensitive, FDR field names are not: `Name` and
 * `name` can both occur. The first spelling seen keeps its name; a later field that differs
 * only by case gets `<field>__2` (then `__3`, …), the first such name that is free. Because
 * the table schema keeps the exact spelling of every column, the same field maps to the same
 * column again after a restart: a candidate column whose exact (case-sensitive) name already
 * exists belongs to that field.
 *
 * Characters Delta does not allow in column names without column mapping (space , ; { } ( )
 * newline tab =) become `_x<hex>_` (`User Name` → `User_x20_Name`); an empty field name
 * becomes `_blank`. Names the table itself uses (`event_date`, enrichment columns, staging
 * keys) are reserved and never given to a field.
 */

const INVALID = /[ ,;{}()\n\t=]/g;

export function sanitizeColumnName(field: string): string {
  if (field === '') return '_blank';
  return field.replace(INVALID, (c) => `_x${c.charCodeAt(0).toString(16)}_`);
}

export class ColumnNames {
  private readonly byField = new Map<string, string>();
  /** exact column names in use */
  private readonly exact = new Set<string>();
  /** lower-cased names in use (columns and reserved) */
  private readonly lower = new Set<string>();

  constructor(existingColumns: Iterable<string> = [], reserved: Iterable<string> = []) {
    const reservedLower = new Set<string>();
    for (const r of reserved) {
      reservedLower.add(r.toLowerCase());
      this.lower.add(r.toLowerCase());
    }
    for (const c of existingColumns) {
      if (reservedLower.has(c.toLowerCase())) continue;
      this.exact.add(c);
      this.lower.add(c.toLowerCase());
    }
  }

  /** The column of `field`, assigning one on first sight. */
  column(field: string): string {
    const known = this.byField.get(field);
    if (known !== undefined) return known;
    const base = sanitizeColumnName(field);
    for (let n = 1; ; n++) {
      const candidate = n === 1 ? base : `${base}__${n}`;
      if (this.exact.has(candidate)) {
        this.byField.set(field, candidate);
        return candidate;
      }
      const low = candidate.toLowerCase();
      if (!this.lower.has(low)) {
        this.exact.add(candidate);
        this.lower.add(low);
        this.byField.set(field, candidate);
        return candidate;
      }
    }
  }
}

function skipWs(s: string, i: number): number {
  for (;;) {
    const c = s.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13) i++;
    else return i;
  }
}

/** Index just past the JSON string starting at `i` (a quote). */
function skipString(s: string, i: number): number {
  i++;
  for (;;) {
    const c = s.charCodeAt(i);
    if (c === 92) i += 2;
    else if (c === 34) return i + 1;
    else if (Number.isNaN(c)) return i;
    else i++;
  }
}

function skipValue(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c === 34) return skipString(s, i);
  if (c === 123 || c === 91) {
    let depth = 0;
    for (;;) {
      const d = s.charCodeAt(i);
      if (Number.isNaN(d)) return i;
      if (d === 34) {
        i = skipString(s, i);
        continue;
      }
      if (d === 123 || d === 91) depth++;
      else if (d === 125 || d === 93) {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
  }
  for (;;) {
    const d = s.charCodeAt(i);
    if (Number.isNaN(d) || d === 44 || d === 125 || d === 93 || d === 32 || d === 9 || d === 10 || d === 13)
      return i;
    i++;
  }
}

/**
 * Renames the top-level keys of a JSON object text (already validated by JSON.parse) without
 * touching the value text — so numbers beyond 2^53 stay exactly as sent.
 * `rename(key)` returns the new key or undefined to keep it.
 */
export function renameTopLevelKeys(text: string, rename: (key: string) => string | undefined): string {
  let out = '';
  let last = 0;
  let i = skipWs(text, 0) + 1; // past '{'
  for (;;) {
    i = skipWs(text, i);
    if (text.charCodeAt(i) !== 34) break;
    const keyStart = i;
    i = skipString(text, i);
    const keyText = text.slice(keyStart, i);
    const key = keyText.includes('\\') ? (JSON.parse(keyText) as string) : keyText.slice(1, -1);
    const to = rename(key);
    if (to !== undefined && to !== key) {
      out += text.slice(last, keyStart) + JSON.stringify(to);
      last = i;
    }
    i = skipWs(text, i);
    i++; // ':'
    i = skipWs(text, i);
    i = skipValue(text, i);
    i = skipWs(text, i);
    if (text.charCodeAt(i) === 44) i++;
    else break;
  }
  return out + text.slice(last);
}
