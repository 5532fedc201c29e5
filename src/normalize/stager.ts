/**
 * Routes decoded FDR lines to one staging file per table and checks them against the typing
 * rules (./fields.ts), so the lake write is one set-based DuckDB query per table.
 *
 * Hot path, per line: one `JSON.parse`, one pass over the keys (column names, type checks),
 * and the raw bytes of the line are staged as they came — prefixed with the source file index
 * and line number — so DuckDB's JSON reader parses them a second time in C++ and values such as
 * 20-digit ids never pass through a JS number. Only a line whose keys need renaming (case
 * collisions, characters Delta does not allow) is rewritten, key by key, value text untouched.
 *
 * Routing:
 * - `event_simpleName` → the table of that name (case-insensitive; the first spelling is the
 *   display name).
 * - FDR secondary data → `aidmaster`, `userinfo`, `managedassets`, `notmanaged`: by the file's
 *   path (`fdrv2/aidmaster/…`), or, for a row without `event_simpleName`, by its shape (see
 *   `secondaryKindOf`).
 * - anything else → quarantine (`invalid_json`, `not_an_object`, `missing_event_simpleName`,
 *   `invalid_event_simpleName`, `type_mismatch: <field>`).
 */
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { rawText, type LineSink, type QuarantineRecord } from '../decode/decoder.js';
import { ColumnNames } from './columns.js';
import { fieldKind, valueFits, type FieldKind } from './fields.js';
import { renameTopLevelKeys } from './columns.js';

export type SecondaryKind = 'aidmaster' | 'userinfo' | 'managedassets' | 'notmanaged';
export const SECONDARY_KINDS: readonly SecondaryKind[] = [
  'aidmaster',
  'userinfo',
  'managedassets',
  'notmanaged',
];

/** Tables the pipeline itself writes; no event type may take their names. */
export const RESERVED_TABLES = new Set([...SECONDARY_KINDS, 'quarantine', 'ingest_log']);

/** IP fields enriched with `<field>_class`, `_geo`, `_as`; domain fields with `<field>_psl`. */
export const IP_FIELDS = ['aip', 'RemoteAddressIP4', 'RemoteAddressIP6'] as const;
export const DOMAIN_FIELDS = ['DomainName'] as const;

/** Staging keys put in front of every staged line. */
export const SRC_KEY = '__talon_src';
export const LINE_KEY = '__talon_line';

const RESERVED_COLUMNS = [
  'event_date',
  SRC_KEY,
  LINE_KEY,
  ...IP_FIELDS.flatMap((f) => [`${f}_class`, `${f}_geo`, `${f}_as`]),
  ...DOMAIN_FIELDS.map((f) => `${f}_psl`),
];

const EVENT_NAME = /^[A-Za-z][A-Za-z0-9_]{0,127}$/;

/** The kind of secondary data a file holds, from its path (`fdrv2/aidmaster/…`, `aidmaster/…`). */
export function secondaryKindOfPath(name: string): SecondaryKind | undefined {
  const parts = name.split(/[\\/]/);
  for (const k of SECONDARY_KINDS) if (parts.includes(k)) return k;
  return undefined;
}

/**
 * A row without `event_simpleName` that has the shape of FDR secondary data:
 * - aidmaster: `aid` with `AgentVersion` or `FirstSeen` (one row per sensor)
 * - userinfo: `UserSid_readable`, or `UserSid` with `AccountType`/`LastLoggedOnHost`
 * - managedassets: `aid` with `MAC`, `GatewayIP` or `InterfaceAlias`
 * - notmanaged: `discoverer_aid`, `NeighborName`, or `MAC` with `CurrentLocalIP` and no `aid`
 */
export function secondaryKindOf(o: Record<string, unknown>): SecondaryKind | undefined {
  const has = (k: string): boolean => o[k] !== undefined;
  if (has('aid') && (has('AgentVersion') || has('FirstSeen'))) return 'aidmaster';
  if (has('UserSid_readable') || (has('UserSid') && (has('AccountType') || has('LastLoggedOnHost'))))
    return 'userinfo';
  if (has('aid') && (has('MAC') || has('GatewayIP') || has('InterfaceAlias'))) return 'managedassets';
  if (has('discoverer_aid') || has('NeighborName') || (has('MAC') && has('CurrentLocalIP')))
    return 'notmanaged';
  return undefined;
}

export interface FieldInfo {
  field: string;
  column: string;
  kind: FieldKind;
  /** The stage that last recorded this field (saves a Map lookup per key per line). */
  stagedIn?: object;
}

/** What Talon knows of a table's columns; lives for the whole ingest run. */
export class TableSchema {
  readonly key: string;
  private readonly names: ColumnNames;
  private readonly fields = new Map<string, FieldInfo>();

  constructor(
    readonly displayName: string,
    existingColumns: Iterable<string>,
    readonly secondary: SecondaryKind | undefined,
  ) {
    this.key = displayName.toLowerCase();
    this.names = new ColumnNames(existingColumns, RESERVED_COLUMNS);
  }

  field(name: string): FieldInfo {
    let f = this.fields.get(name);
    if (f === undefined) {
      // secondary data is a lookup table: every field stays text (see fields.ts)
      f = { field: name, column: this.names.column(name), kind: this.secondary ? 'text' : fieldKind(name) };
      this.fields.set(name, f);
    }
    return f;
  }
}

/** Table schemas by lower-cased name. Preload existing tables' columns before staging. */
export class SchemaRegistry {
  private readonly tables = new Map<string, TableSchema>();

  register(displayName: string, existingColumns: Iterable<string>): void {
    const key = displayName.toLowerCase();
    const secondary = (SECONDARY_KINDS as readonly string[]).includes(key)
      ? (key as SecondaryKind)
      : undefined;
    this.tables.set(key, new TableSchema(displayName, existingColumns, secondary));
  }

  get(name: string): TableSchema {
    const key = name.toLowerCase();
    let t = this.tables.get(key);
    if (t === undefined) {
      const secondary = (SECONDARY_KINDS as readonly string[]).includes(key)
        ? (key as SecondaryKind)
        : undefined;
      t = new TableSchema(name, [], secondary);
      this.tables.set(key, t);
    }
    return t;
  }
}

/** Pieces per writev call (the kernel takes at most IOV_MAX, 1024 on Linux, per call). */
const WRITEV_PIECES = 1024;

class PendingFile {
  private pending: Buffer[] = [];
  pendingBytes = 0;
  private fh: Promise<FileHandle> | undefined;
  private writing: Promise<unknown> = Promise.resolve();
  bytesWritten = 0;

  constructor(readonly file: string) {}

  push(b: Buffer): void {
    this.pending.push(b);
    this.pendingBytes += b.length;
  }

  flush(): Promise<unknown> {
    if (this.pendingBytes === 0) return this.writing;
    // The pieces are written as they are (writev): no concatenated copy, no fresh megabytes
    // for the kernel to fault in on every flush.
    const data = this.pending;
    this.pending = [];
    this.bytesWritten += this.pendingBytes;
    this.pendingBytes = 0;
    if (!this.fh) this.fh = open(this.file, 'w');
    const fh = this.fh;
    this.writing = this.writing.then(async () => {
      const handle = await fh;
      for (let i = 0; i < data.length; i += WRITEV_PIECES) {
        await handle.writev(data.slice(i, i + WRITEV_PIECES));
      }
    });
    return this.writing;
  }

  async close(): Promise<void> {
    await this.flush();
    await this.writing;
    if (this.fh) await (await this.fh).close();
  }
}

/** One table's staged rows of the current flush. */
export class TableStage {
  /** Fields seen in this flush, in order of first sight. */
  readonly fields = new Map<string, FieldInfo>();
  rows = 0;
  /** staged rows per source file index */
  readonly rowsByFile = new Map<number, number>();
  readonly out: PendingFile;

  constructor(
    readonly schema: TableSchema,
    file: string,
  ) {
    this.out = new PendingFile(file);
  }

  get file(): string {
    return this.out.file;
  }
}

export interface FileCounts {
  events: number;
  quarantined: number;
}

const NEWLINE = Buffer.from('\n');
const ARENA_BYTES = 64 * 1024;
/** Staged bytes held in memory before they are written out. */
const PENDING_LIMIT = 4 * 1024 * 1024;
const PENDING_LINES = 20_000;

/**
 * Stages the lines of one flush (a group of source files). Use `beginFile` before decoding
 * each file into the stager (it is the decoder's `LineSink`), then `close()`.
 */
export class EventStager implements LineSink {
  readonly tables = new Map<string, TableStage>();
  readonly ips = new Set<string>();
  readonly domains = new Set<string>();
  readonly counts: FileCounts[] = [];
  quarantined = 0;
  private readonly quarantineOut: PendingFile;
  private fileIndex = -1;
  private fileSecondary: SecondaryKind | undefined;
  private arena = Buffer.allocUnsafe(ARENA_BYTES);
  private arenaPos = 0;
  private pendingBytes = 0;
  private pendingLines = 0;
  private seq = 0;

  constructor(
    private readonly dir: string,
    private readonly schemas: SchemaRegistry,
    private readonly quarantineRawBytes: number,
  ) {
    this.quarantineOut = new PendingFile(path.join(dir, 'quarantine.ndjson'));
  }

  get quarantineFile(): string {
    return this.quarantineOut.file;
  }

  /** Lines that follow belong to source file `index`; `name` selects secondary data by path. */
  beginFile(index: number, name: string): void {
    this.fileIndex = index;
    this.fileSecondary = secondaryKindOfPath(name);
    this.counts[index] = { events: 0, quarantined: 0 };
  }

  quarantine(rec: QuarantineRecord): void {
    const row = JSON.stringify({
      src: this.fileIndex,
      line: rec.line,
      raw: rec.raw,
      reason: rec.reason,
      detail: rec.detail ?? null,
    });
    const b = Buffer.from(row + '\n');
    this.quarantineOut.push(b);
    this.pendingBytes += b.length;
    this.quarantined++;
    this.counts[this.fileIndex].quarantined++;
  }

  /** Quarantines a record for a file other than the current one (checksum verdicts). */
  quarantineFileRecord(index: number, rec: QuarantineRecord): void {
    const saved = this.fileIndex;
    this.fileIndex = index;
    this.quarantine(rec);
    this.fileIndex = saved;
  }

  line(buf: Buffer, start: number, end: number, lineNo: number): void {
    const text = buf.toString('utf8', start, end);
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (err) {
      this.quarantine({
        line: lineNo,
        raw: rawText(buf, start, end, this.quarantineRawBytes),
        reason: 'invalid_json',
        detail: (err as Error).message,
      });
      return;
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      this.quarantine({
        line: lineNo,
        raw: rawText(buf, start, end, this.quarantineRawBytes),
        reason: 'not_an_object',
        detail: Array.isArray(obj) ? 'array' : obj === null ? 'null' : typeof obj,
      });
      return;
    }
    const o = obj as Record<string, unknown>;
    let tableName: string;
    if (this.fileSecondary) {
      tableName = this.fileSecondary;
    } else {
      const esn = o.event_simpleName;
      if (typeof esn === 'string' && esn !== '') {
        if (!EVENT_NAME.test(esn) || RESERVED_TABLES.has(esn.toLowerCase())) {
          this.quarantine({
            line: lineNo,
            raw: rawText(buf, start, end, this.quarantineRawBytes),
            reason: 'invalid_event_simpleName',
            detail: RESERVED_TABLES.has(esn.toLowerCase())
              ? `"${esn}" is the name of a Talon table`
              : 'expected letters, digits and _ (at most 128)',
          });
          return;
        }
        tableName = esn;
      } else {
        const kind = secondaryKindOf(o);
        if (kind === undefined) {
          this.quarantine({
            line: lineNo,
            raw: rawText(buf, start, end, this.quarantineRawBytes),
            reason: 'missing_event_simpleName',
          });
          return;
        }
        tableName = kind;
      }
    }
    const stage = this.stage(tableName);
    const schema = stage.schema;
    let rename = false;
    for (const k in o) {
      const f = schema.field(k);
      if (f.kind !== 'text' && !valueFits(f.kind, o[k])) {
        this.quarantine({
          line: lineNo,
          raw: rawText(buf, start, end, this.quarantineRawBytes),
          reason: `type_mismatch: ${k}`,
          detail: `${JSON.stringify(o[k])?.slice(0, 200)} is not a ${f.kind} value`,
        });
        return;
      }
      if (f.column !== k) rename = true;
      if (f.stagedIn !== stage) {
        f.stagedIn = stage;
        stage.fields.set(k, f);
      }
    }
    for (const f of IP_FIELDS) {
      const v = o[f];
      if (typeof v === 'string' && v !== '') this.ips.add(v);
    }
    const d = o.DomainName;
    if (typeof d === 'string' && d !== '') this.domains.add(d);

    // stage: prefix + the object's members as sent
    const out = stage.out;
    let bodyStart = start;
    while (buf[bodyStart] !== 123) bodyStart++; // '{' (JSON.parse accepted an object)
    let body: Buffer;
    if (rename) {
      const rewritten = renameTopLevelKeys(text, (k) => schema.field(k).column);
      body = Buffer.from(rewritten.slice(rewritten.indexOf('{') + 1));
    } else {
      body = buf.subarray(bodyStart + 1, end);
    }
    let empty = true;
    for (let i = 0; i < body.length; i++) {
      const c = body[i];
      if (c === 32 || c === 9 || c === 10 || c === 13) continue;
      empty = c === 125; // '}'
      break;
    }
    out.push(this.prefix(this.fileIndex, lineNo, !empty));
    out.push(body);
    out.push(NEWLINE);
    const n = body.length + 48;
    this.pendingBytes += n;
    this.pendingLines++;
    stage.rows++;
    stage.rowsByFile.set(this.fileIndex, (stage.rowsByFile.get(this.fileIndex) ?? 0) + 1);
    this.counts[this.fileIndex].events++;
  }

  private stage(name: string): TableStage {
    const key = name.toLowerCase();
    let s = this.tables.get(key);
    if (s === undefined) {
      const schema = this.schemas.get(name);
      s = new TableStage(schema, path.join(this.dir, `t${this.seq++}.ndjson`));
      this.tables.set(key, s);
    }
    return s;
  }

  private prefix(src: number, line: number, comma: boolean): Buffer {
    if (this.arenaPos > ARENA_BYTES - 80) {
      this.arena = Buffer.allocUnsafe(ARENA_BYTES);
      this.arenaPos = 0;
    }
    const at = this.arenaPos;
    const n = this.arena.write(`{"${SRC_KEY}":${src},"${LINE_KEY}":${line}${comma ? ',' : ''}`, at, 'latin1');
    this.arenaPos += n;
    return this.arena.subarray(at, at + n);
  }

  /** Back-pressure for the decoder: writes staged bytes out once enough are held. */
  drain(): Promise<void> | void {
    if (this.pendingBytes < PENDING_LIMIT && this.pendingLines < PENDING_LINES) return;
    return this.flushPending();
  }

  private async flushPending(): Promise<void> {
    this.pendingBytes = 0;
    this.pendingLines = 0;
    const writes: Promise<unknown>[] = [this.quarantineOut.flush()];
    for (const s of this.tables.values()) writes.push(s.out.flush());
    await Promise.all(writes);
  }

  /** Writes everything out and closes the staging files. */
  async close(): Promise<void> {
    await this.quarantineOut.close();
    for (const s of this.tables.values()) await s.out.close();
  }

  /** True when the quarantine staging file has rows. */
  get hasQuarantine(): boolean {
    return this.quarantined > 0;
  }
}
