/**
 * Writes FDR batches the way CrowdStrike lays them out in the FDR bucket — `data/<uuid>/part-NNNNN.gz`
 * (gzip'd NDJSON), `fdrv2/aidmaster/<uuid>/…`, `fdrv2/userinfo/<uuid>/…` — and, per batch, the body of
 * the SQS message FDR sends for it (`manifests/<uuid>.json`: cid, timestamp, fileCount, totalSize,
 * bucket, pathPrefix, files[{path, size, checksum = MD5 hex of the file bytes}]).
 *
 * Parts are streamed through gzip with a fixed level; Node's gzip header has no mtime, so the same
 * lines give the same bytes.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

export const GZIP_LEVEL = 6;
/** Lines are handed to gzip in chunks of about this many bytes. */
const CHUNK_BYTES = 256 * 1024;

export interface ManifestFile {
  path: string;
  size: number;
  checksum: string;
}

/** The SQS message body FDR publishes for one batch. */
export interface FdrManifest {
  cid: string;
  timestamp: number;
  fileCount: number;
  totalSize: number;
  bucket: string;
  pathPrefix: string;
  files: ManifestFile[];
}

export interface WrittenPart extends ManifestFile {
  lines: number;
  uncompressedBytes: number;
}

function* chunks(lines: Iterable<string>, onLine: (bytes: number) => void): Generator<Buffer> {
  let buf = '';
  for (const line of lines) {
    onLine(Buffer.byteLength(line) + 1);
    buf += line + '\n';
    if (buf.length >= CHUNK_BYTES) {
      yield Buffer.from(buf, 'utf8');
      buf = '';
    }
  }
  if (buf.length > 0) yield Buffer.from(buf, 'utf8');
}

/** Streams `lines` (one JSON document each) into a gzip file; returns its size and MD5. */
export async function writeGzipNdjson(
  file: string,
  lines: Iterable<string>,
): Promise<Omit<WrittenPart, 'path'>> {
  await mkdir(path.dirname(file), { recursive: true });
  const md5 = createHash('md5');
  let size = 0;
  let count = 0;
  let uncompressed = 0;
  const onLine = (bytes: number): void => {
    count++;
    uncompressed += bytes;
  };
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      md5.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  await pipeline(
    Readable.from(chunks(lines, onLine)),
    createGzip({ level: GZIP_LEVEL }),
    tap,
    createWriteStream(file),
  );
  return { size, checksum: md5.digest('hex'), lines: count, uncompressedBytes: uncompressed };
}

/** One FDR batch: a folder of parts under `<root>/<prefix>/<uuid>/` and its manifest. */
export class FdrBatchWriter {
  readonly pathPrefix: string;
  private readonly files: ManifestFile[] = [];
  private partIndex = 0;
  lines = 0;
  uncompressedBytes = 0;

  constructor(
    private readonly root: string,
    prefix: string,
    readonly batchId: string,
    private readonly cid: string,
    private readonly bucket: string,
  ) {
    this.pathPrefix = `${prefix}/${batchId}`;
  }

  async writePart(lines: Iterable<string>): Promise<WrittenPart> {
    const rel = `${this.pathPrefix}/part-${String(this.partIndex++).padStart(5, '0')}.gz`;
    const res = await writeGzipNdjson(path.join(this.root, rel), lines);
    this.files.push({ path: rel, size: res.size, checksum: res.checksum });
    this.lines += res.lines;
    this.uncompressedBytes += res.uncompressedBytes;
    return { path: rel, ...res };
  }

  get totalSize(): number {
    return this.files.reduce((s, f) => s + f.size, 0);
  }

  get fileCount(): number {
    return this.files.length;
  }

  /** Writes `manifests/<uuid>.json`; `timestampMs` is when FDR would have published the batch. */
  async finish(timestampMs: number): Promise<{ manifestPath: string; manifest: FdrManifest }> {
    const manifest: FdrManifest = {
      cid: this.cid,
      timestamp: timestampMs,
      fileCount: this.files.length,
      totalSize: this.totalSize,
      bucket: this.bucket,
      pathPrefix: this.pathPrefix,
      files: this.files.slice(),
    };
    const rel = `manifests/${this.batchId}.json`;
    await mkdir(path.join(this.root, 'manifests'), { recursive: true });
    await writeFile(path.join(this.root, rel), JSON.stringify(manifest) + '\n');
    return { manifestPath: rel, manifest };
  }
}
