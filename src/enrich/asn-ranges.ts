/**
 * The bundled ASN database (`@ip-location-db/asn`): CSV rows `start,end,as_number,as_org`
 * covering IP ranges, start/end as decimal numbers (`asn-ipv4-num.csv`, `asn-ipv6-num.csv`),
 * held as sorted typed arrays and searched by binary search.
 *
 * Why not objects and a general CSV parser: 412k IPv4 + 103k IPv6 rows as JS objects cost
 * ~100 MB and seconds of parsing; scanned byte by byte into typed arrays they take ~10 MB and
 * a fraction of a second. Addresses are stored as W big-endian 32-bit words (W = 1 for IPv4,
 * 4 for IPv6). Organisation names repeat heavily (one per AS, many ranges per AS), so a name
 * is decoded once per AS (while its bytes stay the same) and rows hold an index into the names.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import nodePath from 'node:path';
import { v4NetworkWithin, v6NetworkWithin } from './ip.js';
import type { AsInfo } from './types.js';

const COMMA = 44;
const QUOTE = 34;
const NL = 10;
const CR = 13;

class GrowableU32 {
  data = new Uint32Array(4096);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Uint32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  done(): Uint32Array {
    return this.data.slice(0, this.length);
  }
}

/**
 * Reads decimal digits from `buf[i]` on into `out[0, width)` as a big-endian integer of 32-bit
 * words; returns the index after the digits. Digits are taken six at a time so that
 * word * 10^6 + carry stays below 2^53 (exact in a double).
 */
function scanDecimal(buf: Uint8Array, i: number, out: Uint32Array, width: number): number {
  if (width === 1) {
    let v = 0;
    let c: number;
    while ((c = buf[i]) >= 48 && c <= 57) {
      v = v * 10 + (c - 48);
      i++;
    }
    out[0] = v >>> 0;
    return i;
  }
  for (let k = 0; k < width; k++) out[k] = 0;
  for (;;) {
    let chunk = 0;
    let mul = 1;
    let c: number;
    while (mul < 1e6 && (c = buf[i]) >= 48 && c <= 57) {
      chunk = chunk * 10 + (c - 48);
      mul *= 10;
      i++;
    }
    if (mul === 1) return i;
    let carry = chunk;
    for (let k = width - 1; k >= 0; k--) {
      const v = out[k] * mul + carry;
      carry = Math.floor(v / 0x100000000);
      out[k] = v >>> 0;
    }
  }
}

function skipLine(buf: Uint8Array, i: number): number {
  const nl = buf.indexOf(NL, i);
  return nl < 0 ? buf.length : nl + 1;
}

/**
 * Open-addressing hash from AS number to (org id, org byte offset, length), in typed arrays:
 * the load loop consults it for each of ~500k rows, where a Map of objects costs several
 * times more.
 */
class AsOrgIndex {
  keys = new Uint32Array(1 << 17);
  ids = new Int32Array(1 << 17).fill(-1);
  at = new Uint32Array(1 << 17);
  len = new Uint32Array(1 << 17);
  private count = 0;

  /** The slot holding `asn`, or the empty slot where it would go. */
  slotOf(asn: number): number {
    const mask = this.keys.length - 1;
    let i = (Math.imul(asn, 0x9e3779b1) >>> 0) & mask;
    while (this.ids[i] >= 0 && this.keys[i] !== asn) i = (i + 1) & mask;
    return i;
  }

  put(slot: number, asn: number, id: number, at: number, len: number): void {
    if (this.ids[slot] < 0) this.count++;
    this.keys[slot] = asn;
    this.ids[slot] = id;
    this.at[slot] = at;
    this.len[slot] = len;
    if (this.count * 2 > this.keys.length) this.grow();
  }

  private grow(): void {
    const { keys, ids, at, len } = this;
    const size = keys.length * 2;
    this.keys = new Uint32Array(size);
    this.ids = new Int32Array(size).fill(-1);
    this.at = new Uint32Array(size);
    this.len = new Uint32Array(size);
    for (let i = 0; i < keys.length; i++) {
      if (ids[i] < 0) continue;
      const slot = this.slotOf(keys[i]);
      this.keys[slot] = keys[i];
      this.ids[slot] = ids[i];
      this.at[slot] = at[i];
      this.len[slot] = len[i];
    }
  }
}

/** Magic and version of the binary cache (8 bytes); a new layout must change it. */
const CACHE_FORMAT = 'TASNR\u00001\n';

function defaultCacheDir(): string {
  return process.env.TALON_CACHE_DIR || nodePath.join(os.tmpdir(), 'talon-cache');
}

function sameBytes(buf: Uint8Array, a: number, aLen: number, b: number, bLen: number): boolean {
  if (aLen !== bLen) return false;
  for (let i = 0; i < aLen; i++) if (buf[a + i] !== buf[b + i]) return false;
  return true;
}

export class AsnRanges {
  private constructor(
    /** Words per address: 1 (IPv4) or 4 (IPv6). */
    readonly width: 1 | 4,
    private readonly starts: Uint32Array,
    private readonly ends: Uint32Array,
    /** Largest end among rows 0..i: lets a lookup step back over overlapping rows exactly. */
    private readonly maxEnds: Uint32Array,
    private readonly asns: Uint32Array,
    private readonly orgIds: Uint32Array,
    private readonly orgs: string[],
  ) {}

  get size(): number {
    return this.asns.length;
  }

  /**
   * Loads a CSV, through a binary cache of the parsed arrays: parsing the bundled CSVs
   * (60 MB) costs about two CPU seconds on every ingest run, reading the cache ~10 ms.
   * The cache file is keyed by the CSV's path, size and modification time, written atomically
   * (temp file + rename), and ignored when unreadable. `cacheDir` null turns it off; default
   * `TALON_CACHE_DIR` or `<os tmpdir>/talon-cache`.
   */
  static load(path: string, width: 1 | 4, cacheDir: string | null = defaultCacheDir()): AsnRanges {
    if (cacheDir === null) return AsnRanges.fromCsv(readFileSync(path), width);
    let cacheFile: string;
    try {
      const st = statSync(path);
      const key = createHash('sha1')
        .update(`${CACHE_FORMAT}\n${nodePath.resolve(path)}\n${st.size}\n${st.mtimeMs}\n${width}`)
        .digest('hex');
      cacheFile = nodePath.join(cacheDir, `asn-${key}.bin`);
    } catch {
      return AsnRanges.fromCsv(readFileSync(path), width);
    }
    try {
      const cached = AsnRanges.fromBinary(readFileSync(cacheFile));
      if (cached.width === width) return cached;
    } catch {
      /* absent or unreadable: parse the CSV and (re)write the cache */
    }
    const table = AsnRanges.fromCsv(readFileSync(path), width);
    try {
      mkdirSync(cacheDir, { recursive: true });
      const tmp = `${cacheFile}.${process.pid}.tmp`;
      writeFileSync(tmp, table.toBinary());
      renameSync(tmp, cacheFile);
    } catch {
      /* a read-only or full disk only costs the next run the CSV parse */
    }
    return table;
  }

  /** The parsed arrays as bytes: magic, header length, JSON header (width, lengths, orgs), arrays. */
  toBinary(): Buffer {
    const arrays = [this.starts, this.ends, this.maxEnds, this.asns, this.orgIds];
    const header = Buffer.from(
      JSON.stringify({ width: this.width, lengths: arrays.map((a) => a.length), orgs: this.orgs }),
    );
    const headLen = 12 + header.length;
    const pad = (4 - (headLen % 4)) % 4;
    const out = Buffer.alloc(headLen + pad + arrays.reduce((n, a) => n + a.byteLength, 0));
    out.write(CACHE_FORMAT, 0, 'latin1');
    out.writeUInt32LE(header.length, 8);
    header.copy(out, 12);
    let at = headLen + pad;
    for (const a of arrays) {
      Buffer.from(a.buffer, a.byteOffset, a.byteLength).copy(out, at);
      at += a.byteLength;
    }
    return out;
  }

  static fromBinary(buf: Buffer): AsnRanges {
    if (buf.toString('latin1', 0, 8) !== CACHE_FORMAT) throw new Error('not an ASN cache file');
    const len = buf.readUInt32LE(8);
    const head = JSON.parse(buf.toString('utf8', 12, 12 + len)) as {
      width: 1 | 4;
      lengths: number[];
      orgs: string[];
    };
    let at = 12 + len;
    at += (4 - (at % 4)) % 4;
    const arrays = head.lengths.map((n) => {
      // copied: the file's bytes need not be 4-byte aligned in memory
      const a = new Uint32Array(n);
      Buffer.from(a.buffer).set(buf.subarray(at, at + 4 * n));
      at += 4 * n;
      return a;
    });
    if (at !== buf.length || arrays.length !== 5) throw new Error('ASN cache file: bad size');
    const [starts, ends, maxEnds, asns, orgIds] = arrays;
    return new AsnRanges(head.width, starts, ends, maxEnds, asns, orgIds, head.orgs);
  }

  /**
   * Builds the table from CSV bytes. The first three fields are never quoted (numbers); only
   * the organisation may be, with `""` for a quote inside it.
   */
  static fromCsv(buf: Uint8Array, width: 1 | 4): AsnRanges {
    const starts = new GrowableU32();
    const ends = new GrowableU32();
    const asns = new GrowableU32();
    const orgIds = new GrowableU32();
    const orgs: string[] = [];
    // Per AS: the id and raw bytes of the name it had last, to skip decoding repeats.
    const lastOrgOfAs = new AsOrgIndex();
    const decoder = new TextDecoder();
    const addr = new Uint32Array(4);
    const len = buf.length;
    let i = 0;
    // One pass over the bytes; a row that does not scan is skipped up to its newline.
    rows: while (i < len) {
      const lineStart = i;
      for (let field = 0; field < 2; field++) {
        const at = i;
        i = scanDecimal(buf, i, addr, width);
        if (i === at || buf[i] !== COMMA) {
          i = skipLine(buf, lineStart);
          continue rows;
        }
        i++;
        for (let k = 0; k < width; k++) (field === 0 ? starts : ends).push(addr[k]);
      }
      let asn = 0;
      let c: number;
      while ((c = buf[i]) >= 48 && c <= 57) {
        asn = asn * 10 + (c - 48);
        i++;
      }
      if (buf[i] !== COMMA) throw new Error(`ASN CSV: bad AS number in row at byte ${lineStart}`);
      i++;
      // The organisation, quoted (with "" inside, maybe even a newline) or bare to end of line.
      let orgAt = i;
      let orgEnd: number;
      let quoted = false;
      if (buf[i] === QUOTE) {
        quoted = true;
        orgAt = ++i;
        while (i < len) {
          if (buf[i] === QUOTE) {
            if (buf[i + 1] === QUOTE) i += 2;
            else break;
          } else i++;
        }
        orgEnd = i;
        i = skipLine(buf, i);
      } else {
        while (i < len && buf[i] !== NL) i++;
        orgEnd = i > orgAt && buf[i - 1] === CR ? i - 1 : i;
        i++;
      }
      asns.push(asn);
      const slot = lastOrgOfAs.slotOf(asn);
      const known = lastOrgOfAs.ids[slot];
      if (known >= 0 && sameBytes(buf, lastOrgOfAs.at[slot], lastOrgOfAs.len[slot], orgAt, orgEnd - orgAt)) {
        orgIds.push(known);
        continue;
      }
      let text = decoder.decode(buf.subarray(orgAt, orgEnd));
      if (quoted) text = text.replace(/""/g, '"');
      const id = orgs.length;
      orgs.push(text);
      lastOrgOfAs.put(slot, asn, id, orgAt, orgEnd - orgAt);
      orgIds.push(id);
    }
    if (starts.length !== asns.length * width) throw new Error('ASN CSV: inconsistent rows');
    return AsnRanges.build(width, starts.done(), ends.done(), asns.done(), orgIds.done(), orgs);
  }

  private static build(
    width: 1 | 4,
    s: Uint32Array,
    e: Uint32Array,
    n: Uint32Array,
    o: Uint32Array,
    orgs: string[],
  ): AsnRanges {
    const rows = n.length;
    let sorted = true;
    for (let i = 1; i < rows && sorted; i++) if (cmpRows(s, i - 1, s, i, width) > 0) sorted = false;
    if (!sorted) {
      // The published files are sorted; this keeps a hand-edited or future file correct.
      const order = Array.from({ length: rows }, (_, i) => i).sort((x, y) => cmpRows(s, x, s, y, width));
      const s2 = new Uint32Array(s.length);
      const e2 = new Uint32Array(e.length);
      order.forEach((from, to) => {
        s2.set(s.subarray(width * from, width * from + width), width * to);
        e2.set(e.subarray(width * from, width * from + width), width * to);
      });
      s = s2;
      e = e2;
      n = Uint32Array.from(order, (i) => n[i]);
      o = Uint32Array.from(order, (i) => o[i]);
    }
    const maxEnds = new Uint32Array(e.length);
    for (let i = 0; i < rows; i++) {
      const from = i > 0 && cmpRows(maxEnds, i - 1, e, i, width) > 0 ? maxEnds : e;
      const src = from === e ? i : i - 1;
      for (let k = 0; k < width; k++) maxEnds[width * i + k] = from[width * src + k];
    }
    return new AsnRanges(width, s, e, maxEnds, n, o, orgs);
  }

  /** Address `w` (width words) against row `i` of `arr`. */
  private cmpAt(w: ArrayLike<number>, arr: Uint32Array, i: number): number {
    const b = this.width * i;
    for (let k = 0; k < this.width; k++) {
      const x = w[k];
      const y = arr[b + k];
      if (x !== y) return x < y ? -1 : 1;
    }
    return 0;
  }

  /** The AS of an address given as `width` big-endian words, or null when no range holds it. */
  lookup(w: ArrayLike<number>): AsInfo | null {
    const { starts, ends, maxEnds, width } = this;
    let lo = 0;
    let hi = this.asns.length - 1;
    let idx = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cmpAt(w, starts, mid) >= 0) {
        idx = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    // Ranges are disjoint except for rare overlaps in the source; the nearest start that
    // still covers the address wins (the more specific announcement).
    for (let i = idx; i >= 0 && this.cmpAt(w, maxEnds, i) <= 0; i--) {
      if (this.cmpAt(w, ends, i) > 0) continue;
      if (this.asns[i] === 0) return null; // AS0: explicitly not routed (RFC 7607)
      const network =
        width === 1
          ? v4NetworkWithin(w[0], starts[i], ends[i])
          : v6NetworkWithin(w, starts.subarray(4 * i, 4 * i + 4), ends.subarray(4 * i, 4 * i + 4));
      return { as_number: this.asns[i], as_org: this.orgs[this.orgIds[i]] || null, as_network: network };
    }
    return null;
  }
}

function cmpRows(a: Uint32Array, i: number, b: Uint32Array, j: number, width: number): number {
  for (let k = 0; k < width; k++) {
    const x = a[width * i + k];
    const y = b[width * j + k];
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}
