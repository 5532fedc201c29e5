/**
 * Streaming decoder of one FDR source file: gzip (sniffed by its magic bytes, concatenated
 * members included) or plain NDJSON → lines with their 1-based line numbers.
 *
 * Memory stays bounded whatever the file size: bytes are streamed, a line is only buffered up
 * to `maxLineBytes`, and the line sink is awaited (back-pressure) between chunks.
 *
 * Damage never stops the file: an over-long line, a line that is not UTF-8, and a truncated or
 * corrupt gzip stream are reported as quarantine records; every good line before gzip damage
 * is still delivered. The MD5 and size of the bytes as delivered are computed on the way, so
 * the caller can compare them with what the producer stated (FDR SQS manifests).
 */
import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

export type QuarantineReason =
  | 'invalid_json'
  | 'not_an_object'
  | 'missing_event_simpleName'
  | 'invalid_event_simpleName'
  | 'invalid_utf8'
  | 'line_too_long'
  | 'truncated_gzip'
  | 'corrupt_gzip'
  | 'read_error'
  | 'md5_mismatch'
  | 'size_mismatch'
  | `type_mismatch: ${string}`;

export interface QuarantineRecord {
  /** 1-based line number; null for damage that belongs to no single line (gzip, checksum). */
  line: number | null;
  /** The raw text, at most `quarantineRawBytes` bytes of it (invalid UTF-8 shown as U+FFFD). */
  raw: string;
  reason: QuarantineReason;
  /** Human detail: parser message, byte offsets. */
  detail?: string;
}

export interface LineSink {
  /** One complete, valid UTF-8 line (without its newline) in `buf[start, end)`. */
  line(buf: Buffer, start: number, end: number, lineNo: number): void;
  quarantine(rec: QuarantineRecord): void;
  /** Awaited between chunks: resolves when the sink has room for more (back-pressure). */
  drain?(): Promise<void> | void;
}

export interface DecodeOptions {
  /** Lines longer than this (bytes) are quarantined as 'line_too_long'. */
  maxLineBytes: number;
  /** At most this many bytes of a bad line are kept in its quarantine record. */
  quarantineRawBytes: number;
}

export interface DecodeResult {
  /** Bytes read from the source as delivered (compressed size for gzip). */
  bytes: number;
  /** MD5 hex of those bytes. */
  md5: string;
  gzip: boolean;
  /** Lines seen (good or quarantined), blank lines excluded. */
  lines: number;
}

const GZIP_MAGIC_0 = 0x1f;
const GZIP_MAGIC_1 = 0x8b;
const NL = 10;
const CR = 13;

/** Keeps at most `limit` bytes of a line, cut at a character boundary, as text. */
export function rawText(buf: Buffer, start: number, end: number, limit: number): string {
  let stop = Math.min(end, start + limit);
  // do not cut inside a UTF-8 sequence: back up over continuation bytes
  if (stop < end) while (stop > start && (buf[stop] & 0xc0) === 0x80) stop--;
  return buf.toString('utf8', start, stop);
}

function isBlank(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c !== 32 && c !== 9 && c !== CR) return false;
  }
  return true;
}

class LineSplitter {
  lineNo = 0;
  lines = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Inside an over-long line: its bytes are dropped until the next newline. */
  private skipping = false;
  private skippedBytes = 0;
  private first = true;

  constructor(
    private readonly sink: LineSink,
    private readonly opts: DecodeOptions,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    if (this.first) {
      this.first = false;
      // a UTF-8 byte order mark is not part of the first line
      if (chunk.length >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) start = 3;
    }
    // one native check for the whole chunk; lines are re-checked only when it fails
    const chunkValid = isUtf8(chunk);
    let nl: number;
    while ((nl = chunk.indexOf(NL, start)) !== -1) {
      this.lineNo++;
      if (this.skipping) {
        this.skipping = false;
        this.pending = [];
        this.pendingBytes = 0;
      } else if (this.pendingBytes > 0) {
        this.pending.push(chunk.subarray(start, nl));
        const joined = Buffer.concat(this.pending, this.pendingBytes + nl - start);
        this.pending = [];
        this.pendingBytes = 0;
        this.emit(joined, 0, joined.length, false);
      } else {
        this.emit(chunk, start, nl, chunkValid);
      }
      start = nl + 1;
    }
    if (start < chunk.length) this.hold(chunk.subarray(start));
  }

  private hold(part: Buffer): void {
    if (this.skipping) {
      this.skippedBytes += part.length;
      return;
    }
    this.pending.push(part);
    this.pendingBytes += part.length;
    if (this.pendingBytes > this.opts.maxLineBytes) {
      // quarantine now with what we have; keep nothing more of this line
      const joined = Buffer.concat(this.pending, this.pendingBytes);
      this.sink.quarantine({
        line: this.lineNo + 1,
        raw: rawText(joined, 0, joined.length, this.opts.quarantineRawBytes),
        reason: 'line_too_long',
        detail: `longer than ${this.opts.maxLineBytes} bytes`,
      });
      this.lines++;
      this.pending = [];
      this.pendingBytes = 0;
      this.skipping = true;
      this.skippedBytes = 0;
    }
  }

  private emit(buf: Buffer, start: number, end: number, knownValid: boolean): void {
    if (end > start && buf[end - 1] === CR) end--;
    if (end === start || isBlank(buf, start, end)) return;
    this.lines++;
    if (end - start > this.opts.maxLineBytes) {
      this.sink.quarantine({
        line: this.lineNo,
        raw: rawText(buf, start, end, this.opts.quarantineRawBytes),
        reason: 'line_too_long',
        detail: `${end - start} bytes, limit ${this.opts.maxLineBytes}`,
      });
      return;
    }
    if (!knownValid && !isUtf8(buf.subarray(start, end))) {
      this.sink.quarantine({
        line: this.lineNo,
        raw: rawText(buf, start, end, this.opts.quarantineRawBytes),
        reason: 'invalid_utf8',
      });
      return;
    }
    this.sink.line(buf, start, end, this.lineNo);
  }

  /** End of input: the last line may lack its newline. */
  end(): void {
    if (this.skipping) return;
    if (this.pendingBytes > 0) {
      this.lineNo++;
      const joined = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
      this.emit(joined, 0, joined.length, false);
    }
  }

  /** Gzip damage: the partial line before it is part of the damage, not a line. */
  takePartial(): Buffer {
    const joined = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.skipping = false;
    return joined;
  }
}

/**
 * Decodes `input` (the bytes as delivered) into lines on `sink`. Resolves when the input is
 * exhausted — also after gzip damage or a read error, which become quarantine records.
 */
export async function decodeStream(
  input: Readable,
  sink: LineSink,
  opts: DecodeOptions,
): Promise<DecodeResult> {
  const md5 = createHash('md5');
  let bytes = 0;
  const splitter = new LineSplitter(sink, opts);
  let gzip = false;
  let decided = false;
  let gunzip: ReturnType<typeof createGunzip> | undefined;
  let damage: QuarantineRecord | undefined;

  // Input bytes are hashed as they arrive; gzip input is decompressed in libuv's thread pool
  // while lines of the previous chunk are parsed here.
  const rawChunks = (async function* (): AsyncGenerator<Buffer> {
    for await (const c of input) {
      const b = c as Buffer;
      md5.update(b);
      bytes += b.length;
      yield b;
    }
  })();

  let firstRaw: Buffer | undefined;
  try {
    const r = await rawChunks.next();
    if (!r.done) firstRaw = r.value;
  } catch (err) {
    damage = { line: null, raw: '', reason: 'read_error', detail: (err as Error).message };
  }
  if (firstRaw) {
    // a stream may hand over a single byte first; gather two for the magic check
    if (firstRaw.length < 2) {
      const r = await rawChunks.next();
      if (!r.done) firstRaw = Buffer.concat([firstRaw, r.value]);
    }
    gzip = firstRaw.length >= 2 && firstRaw[0] === GZIP_MAGIC_0 && firstRaw[1] === GZIP_MAGIC_1;
    decided = true;
  }

  if (decided && !gzip && firstRaw) {
    try {
      splitter.push(firstRaw);
      if (sink.drain) await sink.drain();
      for (;;) {
        const r = await rawChunks.next();
        if (r.done) break;
        splitter.push(r.value);
        if (sink.drain) await sink.drain();
      }
    } catch (err) {
      damage = { line: null, raw: '', reason: 'read_error', detail: (err as Error).message };
    }
    if (!damage) splitter.end();
  } else if (decided && gzip && firstRaw) {
    gunzip = createGunzip({ chunkSize: 128 * 1024 });
    const gz = gunzip;
    let readError: Error | undefined;
    // feed compressed bytes with back-pressure
    const feeding = (async () => {
      try {
        let chunk: Buffer | undefined = firstRaw;
        while (chunk) {
          if (!gz.write(chunk)) {
            await new Promise<void>((resolve) => {
              const done = (): void => {
                gz.off('drain', done);
                gz.off('error', done);
                gz.off('close', done);
                resolve();
              };
              gz.on('drain', done);
              gz.on('error', done);
              gz.on('close', done);
            });
            if (gz.destroyed) return;
          }
          const r = await rawChunks.next();
          chunk = r.done ? undefined : r.value;
        }
        gz.end();
      } catch (err) {
        readError = err as Error;
        gz.destroy();
      }
    })();
    try {
      for await (const out of gz) {
        splitter.push(out as Buffer);
        if (sink.drain) await sink.drain();
      }
      splitter.end();
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const partial = splitter.takePartial();
      const truncated = e.code === 'Z_BUF_ERROR' || /unexpected end/i.test(e.message);
      damage = {
        line: splitter.lineNo + 1,
        raw: rawText(partial, 0, partial.length, opts.quarantineRawBytes),
        reason: truncated ? 'truncated_gzip' : 'corrupt_gzip',
        detail: `${e.message} at compressed byte ${gz.bytesWritten} of the stream (${bytes} read); lines 1-${splitter.lineNo} kept`,
      };
    }
    await feeding;
    if (readError && !damage) {
      damage = { line: null, raw: '', reason: 'read_error', detail: readError.message };
    }
    // drain whatever is left of the input so the MD5 and size cover the whole delivery
    try {
      for (;;) {
        const r = await rawChunks.next();
        if (r.done) break;
      }
    } catch {
      /* already recorded */
    }
  }
  if (damage) {
    splitter.lines++;
    sink.quarantine(damage);
  }
  if (input.destroy) input.destroy();
  return { bytes, md5: md5.digest('hex'), gzip, lines: splitter.lines };
}
