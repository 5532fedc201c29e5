/**
 * The FDR batch manifest: the JSON body CrowdStrike puts on the FDR SQS queue for every
 * batch it lands in S3, and the same document the generator writes as
 * `manifests/<uuid>.json` next to `data/<uuid>/part-*.gz`:
 *
 * ```json
 * {"cid":"…","timestamp":1669000000000,"fileCount":2,"totalSize":123,"bucket":"…",
 *  "pathPrefix":"data/<uuid>","files":[{"path":"data/<uuid>/part-00000.gz","size":90,
 *  "checksum":"<md5 hex>"}]}
 * ```
 *
 * `files[].path` is the object key relative to the bucket root (not to `pathPrefix`), so a
 * local copy of the bucket resolves it against the folder that holds `data/` and `manifests/`.
 *
 * Also here: the logging hook the FDR sources share (they must log, never crash, on bad input).
 */

import { log } from '../log.js';

export interface FdrManifestFile {
  /** Object key relative to the bucket root, e.g. `data/<uuid>/part-00000.gz`. */
  path: string;
  /** Size in bytes of the object as stored (the gzip bytes). */
  size: number;
  /** MD5 hex (lower-case) of the object's bytes; absent only in hand-made manifests. */
  checksum?: string;
}

export interface FdrManifest {
  cid?: string;
  /** Epoch ms when CrowdStrike wrote the batch. */
  timestamp?: number;
  fileCount?: number;
  totalSize?: number;
  /** Bucket holding the files (SQS delivery); absent in local manifests. */
  bucket?: string;
  pathPrefix?: string;
  files: FdrManifestFile[];
}

export class ManifestError extends Error {
  override name = 'ManifestError';
}

const MD5_HEX = /^[0-9a-f]{32}$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** FDR states sizes as JSON numbers; accept a decimal string too (hand-written manifests). */
function toSize(v: unknown): number | undefined {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function optionalNumber(v: unknown, key: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  const n = toSize(v);
  if (n === undefined) throw new ManifestError(`${key}: expected a non-negative integer`);
  return n;
}

function optionalString(v: unknown, key: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ManifestError(`${key}: expected a string`);
  return v;
}

/**
 * Validates an FDR manifest (parsed JSON or its text). Throws `ManifestError` naming the
 * offending key when it is not one — never returns a half-valid manifest, because a batch
 * whose file list is wrong must not be acknowledged as ingested.
 */
export function parseFdrManifest(input: unknown): FdrManifest {
  let doc = input;
  if (typeof input === 'string' || Buffer.isBuffer(input)) {
    try {
      doc = JSON.parse(input.toString());
    } catch (err) {
      throw new ManifestError(`not JSON: ${(err as Error).message}`);
    }
  }
  if (!isRecord(doc)) throw new ManifestError('not a JSON object');
  if (!Array.isArray(doc.files)) throw new ManifestError('files: missing (expected an array)');
  const files: FdrManifestFile[] = doc.files.map((f: unknown, i: number) => {
    if (!isRecord(f)) throw new ManifestError(`files[${i}]: expected an object`);
    if (typeof f.path !== 'string' || f.path === '') {
      throw new ManifestError(`files[${i}].path: expected a non-empty string`);
    }
    const size = toSize(f.size);
    if (size === undefined) throw new ManifestError(`files[${i}].size: expected a non-negative integer`);
    const file: FdrManifestFile = { path: f.path, size };
    if (f.checksum !== undefined && f.checksum !== null) {
      const sum = typeof f.checksum === 'string' ? f.checksum.toLowerCase() : '';
      if (!MD5_HEX.test(sum)) throw new ManifestError(`files[${i}].checksum: expected an MD5 hex string`);
      file.checksum = sum;
    }
    return file;
  });
  const manifest: FdrManifest = { files };
  const cid = optionalString(doc.cid, 'cid');
  if (cid !== undefined) manifest.cid = cid;
  const timestamp = optionalNumber(doc.timestamp, 'timestamp');
  if (timestamp !== undefined) manifest.timestamp = timestamp;
  const fileCount = optionalNumber(doc.fileCount, 'fileCount');
  if (fileCount !== undefined) manifest.fileCount = fileCount;
  const totalSize = optionalNumber(doc.totalSize, 'totalSize');
  if (totalSize !== undefined) manifest.totalSize = totalSize;
  const bucket = optionalString(doc.bucket, 'bucket');
  if (bucket !== undefined) manifest.bucket = bucket;
  const pathPrefix = optionalString(doc.pathPrefix, 'pathPrefix');
  if (pathPrefix !== undefined) manifest.pathPrefix = pathPrefix;
  return manifest;
}

/** True when `text` looks like an FDR manifest (has a `files` array) — cheap pre-check. */
export function looksLikeFdrManifest(doc: unknown): boolean {
  return isRecord(doc) && Array.isArray(doc.files);
}

// ---- logging hook shared by the FDR sources ----

export type SourceLogLevel = 'debug' | 'info' | 'warn' | 'error';
/** Sources report problems they recover from (bad message, transient AWS error) here. */
export type SourceLog = (level: SourceLogLevel, msg: string, fields?: Record<string, unknown>) => void;

/** Default: Talon's process logger (stderr, level from `TALON_LOG`). */
export const defaultSourceLog: SourceLog = (level, msg, fields) => log[level](msg, fields);
