/** The feed formats `talon intel load --format F` and `talon intel pull` understand. */
import type { FeedParse } from './record.js';
import { parseOtx } from './otx.js';
import { parseUrlhaus } from './urlhaus.js';
import { parseMalwareBazaar } from './malwarebazaar.js';
import { parseThreatFox } from './threatfox.js';
import { parseMisp } from './misp.js';
import { parseStix } from './stix.js';
import { parseCsv } from './csv.js';
import { parseText } from './text.js';

export const FEED_FORMATS = [
  'otx',
  'urlhaus',
  'malwarebazaar',
  'threatfox',
  'misp',
  'stix',
  'csv',
  'text',
] as const;
export type FeedFormat = (typeof FEED_FORMATS)[number];

export interface ParseOptions {
  /** Dataset name for records the feed does not name. Default: the format. */
  dataset?: string;
  /** Declared type for `text` (and type-less `csv`). */
  type?: string;
}

export function parseFeed(format: FeedFormat, text: string, opts: ParseOptions = {}): FeedParse {
  const ds = opts.dataset ?? format;
  switch (format) {
    case 'otx':
      return parseOtx(text, ds);
    case 'urlhaus':
      return parseUrlhaus(text, ds);
    case 'malwarebazaar':
      return parseMalwareBazaar(text, ds);
    case 'threatfox':
      return parseThreatFox(text, ds);
    case 'misp':
      return parseMisp(text, ds);
    case 'stix':
      return parseStix(text, ds);
    case 'csv':
      return parseCsv(text, { dataset: ds, type: opts.type });
    case 'text':
      return parseText(text, { dataset: ds, type: opts.type });
    default:
      throw new Error(`unknown feed format '${String(format)}' (known: ${FEED_FORMATS.join(', ')})`);
  }
}

export type { FeedParse, IocRecord } from './record.js';
