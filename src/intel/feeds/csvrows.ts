/**
 * CSV rows as objects keyed by lower-case header names, via csv-parse. abuse.ch dumps put
 * the header in their `#` comment block (`# id,dateadded,url,…` or `# "first_seen_utc", …`):
 * the last comment line that parses to several names is the header.
 */
import { parse } from 'csv-parse/sync';

export function csvRecords(text: string, opts: { header?: string[] } = {}): Record<string, string>[] {
  const lines = text.split(/\r?\n/);
  let header = opts.header;
  let start = 0;
  while (start < lines.length && (lines[start].startsWith('#') || lines[start].trim() === '')) {
    const body = lines[start].replace(/^#+\s*/, '').trim();
    if (body.includes(',') && !/^#/.test(body)) {
      try {
        const names = (parse(body, { trim: true, relax_quotes: true }) as string[][])[0] ?? [];
        if (names.length > 1 && names.every((n) => /^[A-Za-z_][\w ]*$/.test(n))) header = names;
      } catch {
        // a comment line that is not a header
      }
    }
    start++;
  }
  const body = lines.slice(start).join('\n');
  const rows = parse(body, {
    columns: header
      ? header.map((h) => h.trim().toLowerCase())
      : (h: string[]) => h.map((x) => x.trim().toLowerCase()),
    comment: '#',
    comment_no_infix: true,
    skip_empty_lines: true,
    relax_column_count: true,
    relax_quotes: true,
    trim: true,
    bom: true,
  }) as Record<string, string>[];
  return rows;
}
