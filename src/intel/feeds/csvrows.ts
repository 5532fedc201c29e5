/**
 * CSV rows keyed by lower-case header names. abuse.ch dumps put the header in their `#`
 * comment block (`# id,dateadded,url,…` or `# "first_seen_utc", …`): the last comment line
 * that parses to several names is the header.
 *
 * Lines without a double quote — nearly every line of an IoC list — are split on commas
 * here; a line with a quote (and the lines a quoted field spans) goes through csv-parse.
 * Feeds of a million rows made csv-parse the largest cost of a load.
 */
import { parse } from 'csv-parse/sync';

/** A CSV body: lower-case header names and each row's fields (trimmed), by position. */
export interface CsvTable {
  header: string[];
  rows: string[][];
}

const QUOTED_OPTIONS = {
  relax_column_count: true,
  relax_quotes: true,
  trim: true,
} as const;

/** Whether a line ends inside a quoted field (an odd number of quotes so far). */
function quotesOpen(line: string, open: boolean): boolean {
  for (let i = line.indexOf('"'); i >= 0; i = line.indexOf('"', i + 1)) open = !open;
  return open;
}

function splitLine(line: string): string[] {
  const fields = line.split(',');
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i];
    const c0 = f.charCodeAt(0);
    const cl = f.charCodeAt(f.length - 1);
    // trim only when needed (most fields have no surrounding blanks)
    if (c0 <= 32 || cl <= 32) fields[i] = f.trim();
  }
  return fields;
}

/**
 * Calls `row` for each data row (fields by position, header lower-case). Lines are visited
 * in place: a million-row feed never exists as a million arrays at once.
 */
export function forEachCsvRow(
  text: string,
  opts: { header?: string[] },
  row: (fields: string[], header: string[]) => void,
): string[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let header = opts.header?.map((h) => h.trim().toLowerCase());
  let pos = 0;
  const nextLine = (): string | undefined => {
    if (pos > text.length) return undefined;
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    let line = text.slice(pos, end);
    pos = end + 1;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    return line;
  };
  let line = nextLine();
  for (; line !== undefined; line = nextLine()) {
    if (!line.startsWith('#') && line.trim() !== '') break;
    const body = line.replace(/^#+\s*/, '').trim();
    if (!body.includes(',') || body.startsWith('#')) continue;
    try {
      const names = (parse(body, { trim: true, relax_quotes: true }) as string[][])[0] ?? [];
      if (names.length > 1 && names.every((n) => /^[A-Za-z_][\w ]*$/.test(n)))
        header = names.map((h) => h.trim().toLowerCase());
    } catch {
      // a comment line that is not a header
    }
  }
  for (; line !== undefined; line = nextLine()) {
    // Comments only at the start of a line (a `#` inside a URL is data).
    if (line.length === 0 || line.charCodeAt(0) === 35 /* # */) continue;
    let rows: string[][];
    if (line.indexOf('"') < 0) {
      if (line.trim() === '') continue;
      rows = [splitLine(line)];
    } else {
      // A quoted field may span lines: take lines until the quotes close.
      const parts = [line];
      let open = quotesOpen(line, false);
      while (open) {
        const more = nextLine();
        if (more === undefined) break;
        parts.push(more);
        open = quotesOpen(more, open);
      }
      rows = parse(parts.join('\n'), QUOTED_OPTIONS) as string[][];
    }
    for (const f of rows) {
      if (!header) header = f.map((h) => h.trim().toLowerCase());
      else row(f, header);
    }
  }
  return header ?? [];
}

export function csvTable(text: string, opts: { header?: string[] } = {}): CsvTable {
  const rows: string[][] = [];
  const header = forEachCsvRow(text, opts, (f) => rows.push(f));
  return { header, rows };
}

export function csvRecords(text: string, opts: { header?: string[] } = {}): Record<string, string>[] {
  const { header, rows } = csvTable(text, opts);
  return rows.map((r) => {
    const o: Record<string, string> = {};
    for (let k = 0; k < header.length && k < r.length; k++) o[header[k]] = r[k];
    return o;
  });
}
