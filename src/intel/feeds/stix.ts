/**
 * STIX 2.1 bundles (and bare lists/objects of the same, e.g. TAXII envelopes' `objects`).
 * Indicators with `pattern_type: stix` whose pattern is one or more equality comparisons on
 * `ipv4-addr:value`, `ipv6-addr:value`, `domain-name:value`, `url:value`, `email-addr:value`
 * or `file:hashes.<algo>`, joined by OR — inside one observation `[a OR b]` or across
 * observations `[a] OR [b]` — become one IoC per comparison. Everything else (AND, FOLLOWEDBY,
 * other operators or object paths, qualifiers such as WITHIN) is counted as unsupported with
 * the reason. `valid_from` is first_seen, `valid_until` the end of validity; revoked
 * indicators are skipped. The pattern reader is a small hand-written tokenizer for this subset.
 */
import { FeedCollector, isObject, jsonValues, parseTime, str, tagList } from './record.js';
import type { FeedParse } from './record.js';

type Tok = { t: 'lb' | 'rb' | 'op' | 'kw' | 'str' | 'path' | 'other'; v: string };

function tokenize(p: string): Tok[] | string {
  const out: Tok[] = [];
  let i = 0;
  while (i < p.length) {
    const ch = p[i];
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '[' || ch === ']') {
      out.push({ t: ch === '[' ? 'lb' : 'rb', v: ch });
      i++;
    } else if (ch === "'") {
      let s = '';
      i++;
      while (i < p.length && p[i] !== "'") {
        if (p[i] === '\\' && i + 1 < p.length) i++;
        s += p[i++];
      }
      if (i >= p.length) return 'unterminated string';
      i++;
      out.push({ t: 'str', v: s });
    } else if (/[=!<>]/.test(ch)) {
      const m = /^(!=|<=|>=|=|<|>)/.exec(p.slice(i))!;
      out.push({ t: 'op', v: m[1] });
      i += m[1].length;
    } else {
      const m = /^[A-Za-z0-9_:.\-']+/.exec(p.slice(i));
      if (!m) return `unexpected character '${ch}'`;
      // Object paths may quote a key: file:hashes.'SHA-256'.
      const word = m[0];
      const upper = word.toUpperCase();
      if (
        [
          'AND',
          'OR',
          'FOLLOWEDBY',
          'NOT',
          'LIKE',
          'MATCHES',
          'IN',
          'ISSUBSET',
          'ISSUPERSET',
          'WITHIN',
          'REPEATS',
          'START',
          'STOP',
          'EXISTS',
        ].includes(upper)
      ) {
        out.push({ t: 'kw', v: upper });
      } else if (word.includes(':')) out.push({ t: 'path', v: word });
      else out.push({ t: 'other', v: word });
      i += word.length;
    }
  }
  return out;
}

const HASH_ALGOS: Record<string, string> = {
  MD5: 'FileHash-MD5',
  'SHA-1': 'FileHash-SHA1',
  SHA1: 'FileHash-SHA1',
  'SHA-256': 'FileHash-SHA256',
  SHA256: 'FileHash-SHA256',
  'SHA-512': 'FileHash-SHA512',
  SHA512: 'FileHash-SHA512',
  SSDEEP: 'FileHash-SSDEEP',
  TLSH: 'FileHash-TLSH',
};

function pathType(path: string): string | undefined {
  const [obj, prop] = [path.slice(0, path.indexOf(':')), path.slice(path.indexOf(':') + 1)];
  switch (obj) {
    case 'ipv4-addr':
      return prop === 'value' ? 'IPv4' : undefined;
    case 'ipv6-addr':
      return prop === 'value' ? 'IPv6' : undefined;
    case 'domain-name':
      return prop === 'value' ? 'domain' : undefined;
    case 'url':
      return prop === 'value' ? 'URL' : undefined;
    case 'email-addr':
      return prop === 'value' ? 'email' : undefined;
    case 'file': {
      const m = /^hashes\.'?([^']+)'?$/.exec(prop);
      return m ? HASH_ALGOS[m[1].toUpperCase()] : undefined;
    }
    default:
      return undefined;
  }
}

/** The (type, value) pairs of a supported pattern, or the reason it is not supported. */
export function parseStixPattern(pattern: string): { iocs: [string, string][] } | { unsupported: string } {
  const toks = tokenize(pattern);
  if (typeof toks === 'string') return { unsupported: `pattern syntax: ${toks}` };
  const iocs: [string, string][] = [];
  let i = 0;
  let depth = 0;
  let expectComparison = true;
  while (i < toks.length) {
    const t = toks[i];
    if (t.t === 'lb') {
      if (depth > 0) return { unsupported: 'nested observation' };
      depth++;
      i++;
      continue;
    }
    if (t.t === 'rb') {
      if (depth === 0) return { unsupported: 'pattern syntax: unbalanced ]' };
      depth--;
      i++;
      continue;
    }
    if (t.t === 'kw') {
      if (t.v === 'OR' && !expectComparison) {
        expectComparison = true;
        i++;
        continue;
      }
      return { unsupported: `operator ${t.v}` };
    }
    if (t.t === 'path' && expectComparison && depth === 1) {
      const op = toks[i + 1];
      const lit = toks[i + 2];
      if (op?.t === 'kw') return { unsupported: `operator ${op.v}` };
      if (!op || op.t !== 'op' || !lit) return { unsupported: 'pattern syntax: incomplete comparison' };
      if (op.v !== '=') return { unsupported: `comparison ${op.v}` };
      if (lit.t !== 'str') return { unsupported: 'non-string literal' };
      const type = pathType(t.v);
      if (!type) return { unsupported: `object path ${t.v}` };
      iocs.push([type, lit.v]);
      i += 3;
      expectComparison = false;
      continue;
    }
    return { unsupported: `pattern syntax near '${t.v}'` };
  }
  if (depth !== 0 || expectComparison || iocs.length === 0)
    return { unsupported: 'pattern syntax: incomplete' };
  return { iocs };
}

function addIndicator(c: FeedCollector, o: Record<string, unknown>): void {
  if (o.revoked === true) {
    c.skip('STIX: revoked indicator');
    return;
  }
  const pt = str(o.pattern_type) ?? 'stix';
  if (pt !== 'stix') {
    c.unsupportedItem(`STIX: pattern_type ${pt}`);
    return;
  }
  const pattern = str(o.pattern);
  if (!pattern) {
    c.rejectItem('STIX: indicator without pattern');
    return;
  }
  const parsed = parseStixPattern(pattern);
  if ('unsupported' in parsed) {
    c.unsupportedItem(`STIX pattern: ${parsed.unsupported}`);
    return;
  }
  const refs = Array.isArray(o.external_references) ? o.external_references : [];
  const ref = refs.map((r) => (isObject(r) ? str(r.url) : null)).find(Boolean) ?? null;
  const conf = Number(o.confidence);
  const fields = {
    ioc_id: str(o.id),
    first_seen: parseTime(o.valid_from) ?? parseTime(o.created),
    last_seen: null,
    valid_until: parseTime(o.valid_until),
    confidence: Number.isFinite(conf) ? conf : null,
    tags: [...tagList(o.indicator_types), ...tagList(o.labels)],
    description: [str(o.name), str(o.description)].filter(Boolean).join(' — ') || null,
    reference: ref,
  };
  for (const [type, value] of parsed.iocs) c.add(type, value, fields);
}

function visit(c: FeedCollector, v: unknown): void {
  if (Array.isArray(v)) {
    for (const x of v) visit(c, x);
    return;
  }
  if (!isObject(v)) return;
  if (Array.isArray(v.objects)) return visit(c, v.objects);
  if (v.type === 'indicator') return addIndicator(c, v);
  if (typeof v.type === 'string') c.skip(`STIX: ${v.type} object`);
}

export function parseStix(text: string, dataset = 'stix'): FeedParse {
  const c = new FeedCollector(dataset);
  visit(c, jsonValues(text));
  return c;
}
