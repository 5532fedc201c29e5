/**
 * Where a lake's bytes live. A Delta table needs only a handful of object operations, and
 * one of them — put-if-absent — is what makes concurrent commits safe: version N+1 of the
 * log is created by exactly one writer, every other writer sees `false` and retries.
 *
 * Keys are '/'-separated and relative to the lake root (e.g. `userlogon/_delta_log/00…01.json`).
 * DuckDB only reads and writes local files, so a store also says where a key can be read
 * locally (S3 downloads into a cache) and takes a finished local file as a new object.
 */
export interface ObjectInfo {
  key: string;
  size: number;
  /** epoch ms */
  lastModified: number;
}

export interface ObjectStore {
  /** `file:///abs/path` or `s3://bucket/prefix`, for messages and for the `Lake`'s identity. */
  readonly url: string;
  get(key: string): Promise<Buffer | undefined>;
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Creates or replaces (data files, `_last_checkpoint`). Never torn: readers see old or new. */
  put(key: string, body: Buffer | string): Promise<void>;
  /** Creates only when absent; `false` when the key already exists. Atomic. */
  putIfAbsent(key: string, body: Buffer | string): Promise<boolean>;
  /** Every object under `prefix` (recursive), in key order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /**
   * Names of the folders directly under `prefix` ('' or ending in '/'), sorted — e.g. the tables
   * of a lake — without listing every object below them (on S3: ListObjectsV2 with a '/'
   * delimiter). Optional; without it, derive folders from `list`.
   */
  listFolders?(prefix: string): Promise<string[]>;
  delete(keys: string[]): Promise<void>;
  /** A local path DuckDB can read for `key` (the file itself, or a cached download). */
  localPath(key: string): Promise<string>;
  /** A fresh local path to write a new file to before `upload`, inside the store's staging area. */
  stagingPath(suffix: string): Promise<string>;
  /** Makes the finished local file the object `key` (rename locally, PUT on S3). */
  upload(localFile: string, key: string): Promise<void>;
}
