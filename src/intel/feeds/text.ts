/**
 * One IoC per line with a declared type (`--type IPv4`); `#` starts a comment (whole line or
 * after the value), blank lines are ignored. `--type auto` guesses each line's type.
 */
import { FeedCollector } from './record.js';
import type { FeedParse } from './record.js';
import { guessType } from './guess.js';

export function parseText(
  text: string,
  opts: { type?: string; dataset?: string; loadedAt?: Date } = {},
): FeedParse {
  const c = new FeedCollector(opts.dataset ?? 'text');
  const declared = opts.type ?? 'auto';
  let lineNo = 0;
  for (const line of text.split(/\r?\n/)) {
    lineNo++;
    const v = line.replace(/\s+#.*$/, '').trim();
    if (v === '' || v.startsWith('#')) continue;
    const type = declared === 'auto' ? guessType(v) : declared;
    if (!type) {
      c.rejectItem('text: type not recognisable');
      continue;
    }
    c.add(type, v, { ioc_id: String(lineNo), first_seen: opts.loadedAt ?? null });
  }
  return c;
}
