/**
 * A lake on S3 (`s3://bucket/prefix`), through AWS SDK v3.
 *
 * Commits rely on S3's conditional write: `PutObject` with `If-None-Match: *` creates the key
 * only when it does not exist (412 PreconditionFailed otherwise), which is exactly the
 * put-if-absent the Delta protocol needs for mutual exclusion between writers — no DynamoDB
 * lock table. A 409 ConditionalRequestConflict means another conditional write to the same key
 * was in flight; S3 asks the client to retry, and the retry then sees 412 (someone won) or
 * succeeds (the other write failed).
 *
 * DuckDB cannot read S3 here (no httpfs offline), so objects are read through a local cache:
 * `localPath` downloads into `cacheDir`, keyed by the object's ETag so a replaced object (e.g.
 * `_last_checkpoint`) is fetched again, while data Parquet files (immutable, uniquely named) are
 * served from the cache without a round trip. New files are staged in the cache too, and after
 * `upload` the staged file becomes the cached copy.
 *
 * The cache is bounded (least recently used first): when it holds more than `cacheMaxBytes`
 * (default 10 GiB, env `TALON_S3_CACHE_MAX_BYTES`, `0`/`Infinity` = unbounded), a sweep deletes
 * the least recently used copies until it is under 80 % of that. A copy counts as used when
 * `localPath` hands it out (its mtime is set then). Copies used within `cacheGraceMs` (default
 * 10 min) are never deleted: DuckDB may be about to open a path handed out moments ago, in
 * this process or another sharing the folder — so the limit is soft while a query needs more.
 * A sweep also removes partial downloads (`.tmp-*`) older than an hour and staged files older
 * than a day (left by writers that crashed before uploading). A store sweeps when it opens
 * (at most once an hour per cache folder, across processes) and after every tenth of the
 * limit it has added. Not removed on close: the folder is shared by processes and runs, and a
 * warm cache is what makes repeated queries cheap.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { sleep } from '../util/sleep.js';
import type { ObjectInfo, ObjectStore } from './store.js';
import { checkFolderPrefix, checkKey, checkPrefix, checkSuffix, compareKeys } from './store-keys.js';

export interface S3StoreOptions {
  /** Default: the SDK's chain (AWS_REGION, profile, …), else `us-east-1`. */
  region?: string;
  /**
   * S3-compatible endpoint (MinIO, fauxqs, …). Default: env `TALON_S3_ENDPOINT`, else
   * `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`, else AWS.
   */
  endpoint?: string;
  /**
   * Path-style URLs (`endpoint/bucket/key`). Default: env `TALON_S3_FORCE_PATH_STYLE`, else true
   * when a custom endpoint is set (most S3-compatible servers want it), false on AWS.
   */
  forcePathStyle?: boolean;
  /** Static credentials; default: the SDK's default provider chain (env, profile, IMDS, …). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Local cache for downloads and staging. Default: env `TALON_S3_CACHE`, else `<os tmp>/talon-s3-cache`. */
  cacheDir?: string;
  /**
   * For S3-compatible servers that ignore `If-None-Match` on PutObject (e.g. fauxqs 1.x):
   * put-if-absent becomes HEAD-then-PUT, which is NOT safe with concurrent writers — two
   * writers can both "win" a Delta version. Only for a single writer. Default: false.
   */
  unsafeNoConditionalPut?: boolean;
  /** Use this client instead of building one from the options above. */
  client?: S3Client;
  /**
   * Files larger than this are uploaded in parts (S3 multipart upload): a single PUT takes at
   * most 5 GiB, and S3-compatible servers often far less (fauxqs 1.x: 11 MiB). Default: 8 MiB
   * (the AWS CLI's default).
   */
  multipartThresholdBytes?: number;
  /** Part size of multipart uploads (S3: ≥ 5 MiB except the last). Default: 8 MiB. */
  partSizeBytes?: number;
  /** Retries of a put-if-absent that got 409 ConditionalRequestConflict. Default: 10. */
  conflictRetries?: number;
  /**
   * Soft size limit of the local cache (see the module comment). Default: env
   * `TALON_S3_CACHE_MAX_BYTES`, else 10 GiB; `0` or `Infinity` = unbounded.
   */
  cacheMaxBytes?: number;
  /** Copies used more recently than this are never evicted. Default: 10 minutes. */
  cacheGraceMs?: number;
}

const DEFAULT_CACHE_MAX_BYTES = 10 * 1024 ** 3;
const SWEEP_MARKER = '.last-sweep';
const SWEEP_AT_OPEN_EVERY_MS = 3600 * 1000;
const TMP_MAX_AGE_MS = 3600 * 1000;
const STAGING_MAX_AGE_MS = 24 * 3600 * 1000;

export interface CacheSweep {
  /** bytes of cached copies before and after the sweep */
  bytesBefore: number;
  bytesAfter: number;
  /** files deleted: evicted copies, stale partial downloads and staged files */
  deleted: number;
}

/** `s3://bucket/prefix` → bucket and key prefix (`''` or ending in '/'). */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3a?:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
  if (!m || !m[1]) throw new Error(`not an S3 URL (want s3://bucket/prefix): ${url}`);
  let prefix = (m[2] ?? '').replace(/\/+$/, '');
  if (prefix !== '') {
    checkKey(prefix);
    prefix += '/';
  }
  return { bucket: m[1], prefix };
}

/**
 * Delta data files are written once under a unique (uuid) name and never changed, so a cached
 * copy is served without asking S3. Everything in `_delta_log/` is checked by ETag: log files are
 * never rewritten either, but a table deleted and re-created at the same place reuses their names.
 */
function isImmutableKey(key: string): boolean {
  return key.endsWith('.parquet') && !/(^|\/)_delta_log\//.test(key);
}

export class S3Store implements ObjectStore {
  readonly url: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  readonly cacheDir: string;
  private readonly unsafeNoConditionalPut: boolean;
  private readonly conflictRetries: number;
  private readonly multipartThreshold: number;
  private readonly partSize: number;
  readonly cacheMaxBytes: number;
  private readonly cacheGraceMs: number;
  /** bytes this store added to the cache since its last sweep */
  private addedSinceSweep = 0;
  private sweeping: Promise<CacheSweep> | undefined;

  private constructor(url: string, opts: S3StoreOptions, cacheDir: string) {
    const { bucket, prefix } = parseS3Url(url);
    this.bucket = bucket;
    this.prefix = prefix;
    this.url = `s3://${bucket}/${prefix}`.replace(/\/$/, '');
    this.client = opts.client ?? buildClient(opts);
    this.cacheDir = cacheDir;
    this.unsafeNoConditionalPut = opts.unsafeNoConditionalPut ?? false;
    this.conflictRetries = opts.conflictRetries ?? 10;
    this.multipartThreshold = opts.multipartThresholdBytes ?? 8 * 1024 * 1024;
    this.partSize = Math.max(5 * 1024 * 1024, opts.partSizeBytes ?? 8 * 1024 * 1024);
    const envMax = process.env.TALON_S3_CACHE_MAX_BYTES;
    const max =
      opts.cacheMaxBytes ??
      (envMax !== undefined && envMax !== '' ? Number(envMax) : DEFAULT_CACHE_MAX_BYTES);
    if (Number.isNaN(max) || max < 0) {
      throw new Error(`S3 cache size limit must be a non-negative number of bytes, got ${String(envMax)}`);
    }
    this.cacheMaxBytes = max === 0 ? Infinity : max;
    this.cacheGraceMs = opts.cacheGraceMs ?? 10 * 60 * 1000;
  }

  /** Opens `s3://bucket/prefix` (nothing is created on S3; the bucket must exist). */
  static async open(url: string, opts: S3StoreOptions = {}): Promise<S3Store> {
    const cacheDir = path.resolve(
      opts.cacheDir ?? process.env.TALON_S3_CACHE ?? path.join(os.tmpdir(), 'talon-s3-cache'),
    );
    await fs.mkdir(path.join(cacheDir, 'staging'), { recursive: true });
    const store = new S3Store(url, opts, cacheDir);
    if (Number.isFinite(store.cacheMaxBytes)) {
      const marker = path.join(cacheDir, SWEEP_MARKER);
      const last = await fs.stat(marker).then(
        (st) => st.mtimeMs,
        () => 0,
      );
      if (Date.now() - last >= SWEEP_AT_OPEN_EVERY_MS) {
        await fs.writeFile(marker, '');
        await store.sweepCache().catch((err: unknown) => warnSweep(err));
      }
    }
    return store;
  }

  /**
   * Deletes least recently used cached copies until the cache is under 80 % of its limit
   * (never copies used within the grace period), and stale partial downloads and staged files.
   */
  sweepCache(now = Date.now()): Promise<CacheSweep> {
    this.sweeping ??= this.sweep(now).finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async sweep(now: number): Promise<CacheSweep> {
    const copies: { file: string; size: number; used: number }[] = [];
    let deleted = 0;
    const remove = async (file: string) => {
      await fs.rm(file, { force: true });
      deleted++;
    };
    for (const f of await walkFiles(path.join(this.cacheDir, 's3'))) {
      if (path.basename(f.file).startsWith('.tmp-')) {
        if (now - f.mtimeMs > TMP_MAX_AGE_MS) await remove(f.file);
      } else copies.push({ file: f.file, size: f.size, used: f.mtimeMs });
    }
    for (const f of await walkFiles(path.join(this.cacheDir, 'staging'))) {
      if (now - f.mtimeMs > STAGING_MAX_AGE_MS) await remove(f.file);
    }
    const bytesBefore = copies.reduce((n, c) => n + c.size, 0);
    let bytes = bytesBefore;
    if (bytes > this.cacheMaxBytes) {
      const target = this.cacheMaxBytes * 0.8;
      copies.sort((a, b) => a.used - b.used);
      for (const c of copies) {
        if (bytes <= target || now - c.used < this.cacheGraceMs) break;
        await remove(c.file);
        bytes -= c.size;
        // the key's folder, when now empty (another process may be filling it: then it is not)
        await fs.rmdir(path.dirname(c.file)).catch(() => undefined);
      }
    }
    return { bytesBefore, bytesAfter: bytes, deleted };
  }

  /** Counts bytes added to the cache; every tenth of the limit, a sweep. */
  private async noteCached(bytes: number): Promise<void> {
    if (!Number.isFinite(this.cacheMaxBytes)) return;
    this.addedSinceSweep += bytes;
    if (this.addedSinceSweep < Math.max(1, this.cacheMaxBytes / 10)) return;
    this.addedSinceSweep = 0;
    await this.sweepCache().catch((err: unknown) => warnSweep(err));
  }

  private fullKey(key: string): string {
    return this.prefix + checkKey(key);
  }

  async get(key: string): Promise<Buffer | undefined> {
    try {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }),
      );
      return Buffer.from(await res.Body!.transformToByteArray());
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const res = await this.headRaw(key);
    if (!res) return undefined;
    return { key, size: res.size, lastModified: res.lastModified };
  }

  async put(key: string, body: Buffer | string): Promise<void> {
    await this.client.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key), Body: toBuffer(body) }),
    );
  }

  async putIfAbsent(key: string, body: Buffer | string): Promise<boolean> {
    const Key = this.fullKey(key);
    const Body = toBuffer(body);
    if (this.unsafeNoConditionalPut) {
      if (await this.headRaw(key)) return false;
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key, Body }));
      return true;
    }
    for (let attempt = 0; ; attempt++) {
      try {
        await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key, Body, IfNoneMatch: '*' }));
        return true;
      } catch (err) {
        const status = httpStatus(err);
        if (status === 412 || errName(err) === 'PreconditionFailed') return false;
        if (
          (status === 409 || errName(err) === 'ConditionalRequestConflict') &&
          attempt < this.conflictRetries
        ) {
          await sleep(Math.min(1000, 20 * 2 ** attempt) * (0.5 + Math.random()));
          continue;
        }
        throw err;
      }
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    checkPrefix(prefix);
    let token: string | undefined;
    do {
      const res = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.prefix + prefix,
          ContinuationToken: token,
        }),
      );
      for (const obj of res.Contents ?? []) {
        if (!obj.Key || obj.Key.endsWith('/')) continue; // folder placeholders made by consoles
        yield {
          key: obj.Key.slice(this.prefix.length),
          size: obj.Size ?? 0,
          lastModified: obj.LastModified?.getTime() ?? 0,
        };
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
  }

  async listFolders(prefix: string): Promise<string[]> {
    checkFolderPrefix(prefix);
    const names: string[] = [];
    let token: string | undefined;
    do {
      const res = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.prefix + prefix,
          Delimiter: '/',
          ContinuationToken: token,
        }),
      );
      for (const p of res.CommonPrefixes ?? []) {
        const name = p.Prefix?.slice(this.prefix.length + prefix.length).replace(/\/$/, '');
        if (name) names.push(name);
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return names.sort(compareKeys);
  }

  async delete(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000).map((k) => ({ Key: this.fullKey(k) }));
      const res = await this.client.send(
        new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch, Quiet: true } }),
      );
      const errors = (res.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (errors.length > 0) {
        const e = errors[0]!;
        throw new Error(
          `S3 delete failed for ${errors.length} key(s), e.g. ${e.Key}: ${e.Code} ${e.Message}`,
        );
      }
    }
  }

  async localPath(key: string): Promise<string> {
    const dir = this.cacheFolder(key);
    const ext = path.extname(key);
    if (isImmutableKey(key)) {
      const cached = await firstCachedVersion(dir);
      if (cached && (await markUsed(cached))) return cached;
      return this.download(key, dir, ext);
    }
    const info = await this.headRaw(key);
    if (!info) throw new Error(`no such object: ${this.url}/${key}`);
    const file = path.join(dir, versionFileName(info.etag, ext));
    if (await markUsed(file)) return file;
    return this.download(key, dir, ext);
  }

  async stagingPath(suffix: string): Promise<string> {
    const dir = path.join(this.cacheDir, 'staging');
    await fs.mkdir(dir, { recursive: true });
    return path.join(dir, `${randomUUID()}-${checkSuffix(suffix)}`);
  }

  async upload(localFile: string, key: string): Promise<void> {
    const Key = this.fullKey(key);
    const { size } = await fs.stat(localFile);
    let etag: string | undefined;
    if (size > this.multipartThreshold) {
      etag = await this.multipartUpload(localFile, Key, size);
    } else {
      const res = await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key,
          Body: createReadStream(localFile),
          ContentLength: size,
        }),
      );
      etag = res.ETag;
    }
    // The file just uploaded is the object's bytes: keep it as the cached copy, so reading back
    // what this process wrote costs no download.
    // Like a local rename, upload consumes the local file.
    const dir = this.cacheFolder(key);
    await fs.mkdir(dir, { recursive: true });
    const cached = etag ? path.join(dir, versionFileName(etag, path.extname(key))) : undefined;
    if (
      !cached ||
      !(await fs.rename(localFile, cached).then(
        () => true,
        () => false,
      ))
    ) {
      await fs.rm(localFile, { force: true }); // e.g. staged on another filesystem: just not cached
    } else {
      await this.noteCached(size);
    }
  }

  /** Parts of `partSize` bytes, a few in flight at a time; aborted on any failure (no orphan parts). */
  private async multipartUpload(localFile: string, Key: string, size: number): Promise<string | undefined> {
    const partCount = Math.ceil(size / this.partSize);
    if (partCount > 10_000) throw new Error(`${localFile}: ${size} bytes need more than 10,000 S3 parts`);
    const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key }));
    const UploadId = created.UploadId!;
    const fh = await fs.open(localFile, 'r');
    try {
      const parts: { PartNumber: number; ETag: string }[] = new Array(partCount);
      let next = 0;
      const worker = async () => {
        for (let i = next++; i < partCount; i = next++) {
          const start = i * this.partSize;
          const len = Math.min(this.partSize, size - start);
          const buf = Buffer.alloc(len);
          const { bytesRead } = await fh.read(buf, 0, len, start);
          if (bytesRead !== len) throw new Error(`${localFile} changed while uploading`);
          const res = await this.client.send(
            new UploadPartCommand({ Bucket: this.bucket, Key, UploadId, PartNumber: i + 1, Body: buf }),
          );
          parts[i] = { PartNumber: i + 1, ETag: res.ETag! };
        }
      };
      await Promise.all(Array.from({ length: Math.min(4, partCount) }, worker));
      const done = await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key,
          UploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
      return done.ETag;
    } catch (err) {
      await this.client
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId }))
        .catch(() => undefined);
      throw err;
    } finally {
      await fh.close();
    }
  }

  /** `<cacheDir>/s3/<bucket>/<full key>/` holds one file per cached version (named by ETag). */
  private cacheFolder(key: string): string {
    return path.join(this.cacheDir, 's3', this.bucket, ...this.fullKey(key).split('/'));
  }

  private async download(key: string, dir: string, ext: string): Promise<string> {
    const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }));
    const tmp = path.join(dir, `.tmp-${randomUUID()}`);
    try {
      // (a concurrent sweep may remove the key's folder when it is empty: create it right here)
      await fs.mkdir(dir, { recursive: true });
      await pipeline(res.Body as Readable, createWriteStream(tmp));
      const file = path.join(dir, versionFileName(res.ETag ?? randomUUID(), ext));
      // rename: a concurrent reader (or process sharing the cache) sees the whole file or none.
      await fs.rename(tmp, file);
      await this.noteCached(res.ContentLength ?? (await fs.stat(file)).size);
      return file;
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  private async headRaw(
    key: string,
  ): Promise<{ size: number; lastModified: number; etag: string } | undefined> {
    try {
      const res = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }),
      );
      return {
        size: res.ContentLength ?? 0,
        lastModified: res.LastModified?.getTime() ?? 0,
        etag: res.ETag ?? '',
      };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
}

function buildClient(opts: S3StoreOptions): S3Client {
  const endpoint =
    opts.endpoint ??
    process.env.TALON_S3_ENDPOINT ??
    process.env.AWS_ENDPOINT_URL_S3 ??
    process.env.AWS_ENDPOINT_URL ??
    undefined;
  const envPathStyle = process.env.TALON_S3_FORCE_PATH_STYLE;
  const forcePathStyle =
    opts.forcePathStyle ?? (envPathStyle !== undefined ? /^(1|true|yes)$/i.test(envPathStyle) : !!endpoint);
  return new S3Client({
    region: opts.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    ...(endpoint ? { endpoint } : {}),
    forcePathStyle,
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
  });
}

function toBuffer(body: Buffer | string): Buffer {
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
}

function httpStatus(err: unknown): number | undefined {
  if (err instanceof S3ServiceException) return err.$metadata?.httpStatusCode;
  return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

function errName(err: unknown): string | undefined {
  return (err as { name?: string; Code?: string } | undefined)?.Code ?? (err as Error | undefined)?.name;
}

function isNotFound(err: unknown): boolean {
  const name = errName(err);
  return httpStatus(err) === 404 || name === 'NoSuchKey' || name === 'NotFound';
}

function versionFileName(etag: string, ext: string): string {
  return 'v-' + etag.replace(/[^A-Za-z0-9-]/g, '') + ext;
}

async function firstCachedVersion(dir: string): Promise<string | undefined> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const name = names.find((n) => n.startsWith('v-'));
  return name ? path.join(dir, name) : undefined;
}

/** Marks a cached copy as just used (LRU by mtime); false when it is not there (evicted). */
async function markUsed(file: string): Promise<boolean> {
  const now = new Date();
  return fs.utimes(file, now, now).then(
    () => true,
    () => false,
  );
}

/** Every file under `dir` with size and mtime (none when `dir` does not exist). */
async function walkFiles(dir: string): Promise<{ file: string; size: number; mtimeMs: number }[]> {
  const out: { file: string; size: number; mtimeMs: number }[] = [];
  const entries = await fs.readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isFile()) continue;
    const file = path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name);
    const st = await fs.stat(file).catch(() => undefined);
    if (st) out.push({ file, size: st.size, mtimeMs: st.mtimeMs });
  }
  return out;
}

function warnSweep(err: unknown): void {
  // The cache only saves downloads; a failed sweep must not fail the read or write.
  process.emitWarning(`S3 cache sweep failed: ${(err as Error).message ?? String(err)}`);
}
