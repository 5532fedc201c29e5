/**
 * FDR field typing rules. Falcon sends (almost) every value as a JSON string; Talon types a
 * column by the field's NAME, never by sniffing values, so a column's type is the same in
 * every batch and every table (a value sniffer would flip `ContextProcessId` between integer
 * and text depending on which events a batch happened to carry).
 *
 * | rule (field name)                                   | column type      | accepted values |
 * |-----------------------------------------------------|------------------|-----------------|
 * | `timestamp`                                         | TIMESTAMP (ms)   | epoch ms digits; ISO-8601 |
 * | ends `TimeStamp` / `Time` (not a duration, below), `FirstSeen`, `LastSeen`, `_time` | TIMESTAMP (µs) | epoch seconds with optional fraction (|v| < 1e11); Windows FILETIME (18 digits, 100 ns since 1601); ISO-8601 |
 * | ends `ProcessId`, `ThreadId`; `Raw…Id`, `EtwRaw…Id`, `TreeId`, `AuthenticationId`, `ParentAuthenticationId` (Falcon's 64-bit unsigned ids) | DECIMAL(20,0) | unsigned 64-bit integer |
 * | ends `Port`, `Count`, `Flags`; `SessionId`, `LogonType`, `Protocol`, `ConnectionDirection`, `Size`, durations `KernelTime`/`UserTime`/`CycleTime` | BIGINT | integer in int64 range |
 * | anything else                                       | VARCHAR          | anything; objects/arrays as JSON text, JSON numbers/booleans as their JSON text |
 *
 * Everywhere `""` (and JSON null) is NULL. A value that fails its field's rule sends the whole
 * event to quarantine (`type_mismatch: <field>`), never into a wrong or null column.
 * Ids above 2^53 stay exact: values are handed to DuckDB as text and cast there, never
 * through a JS number. Falcon's process/thread ids are unsigned 64-bit: `ContextProcessId`
 * can exceed the int64 range (9960000700989070560 in a real Linux event) and `RawProcessId`
 * carries a negative Windows pid sign-extended (18446744072636268557) — hence DECIMAL(20,0),
 * exact and readable by every Delta engine (Delta has no unsigned type).
 *
 * Secondary data tables (aidmaster, userinfo, managedassets, notmanaged) keep every field as
 * text: they are lookup tables joined by `aid` / `UserSid`, and Falcon fills them with markers
 * such as `none` where an event would carry a number.
 */

export type FieldKind = 'timestamp_ms' | 'epoch_time' | 'uint64' | 'bigint' | 'text';

const BIGINT_SUFFIXES = ['Port', 'Count', 'Flags'];
const UINT64_SUFFIXES = ['ProcessId', 'ThreadId'];
const UINT64_NAMES = new Set(['TreeId', 'AuthenticationId', 'ParentAuthenticationId']);
const BIGINT_NAMES = new Set([
  'SessionId',
  'LogonType',
  'Protocol',
  'ConnectionDirection',
  'Size',
  // CPU times of EndOfProcess: durations in 100 ns units, not points in time.
  'KernelTime',
  'UserTime',
  'CycleTime',
]);
const TIME_NAMES = new Set(['FirstSeen', 'LastSeen', '_time']);

const kindCache = new Map<string, FieldKind>();

/** The typing rule of an event field, by name (case-sensitive, as Falcon spells them). */
export function fieldKind(name: string): FieldKind {
  let k = kindCache.get(name);
  if (k === undefined) {
    k = computeKind(name);
    if (kindCache.size < 100_000) kindCache.set(name, k);
  }
  return k;
}

function computeKind(name: string): FieldKind {
  if (name === 'timestamp') return 'timestamp_ms';
  if (BIGINT_NAMES.has(name)) return 'bigint';
  if (TIME_NAMES.has(name) || name.endsWith('TimeStamp') || name.endsWith('Time')) return 'epoch_time';
  if (UINT64_NAMES.has(name)) return 'uint64';
  if ((name.startsWith('Raw') || name.startsWith('EtwRaw')) && name.endsWith('Id')) return 'uint64';
  for (const s of UINT64_SUFFIXES) if (name.endsWith(s)) return 'uint64';
  for (const s of BIGINT_SUFFIXES) if (name.endsWith(s)) return 'bigint';
  return 'text';
}

/** DuckDB column type of a kind. */
export function sqlType(kind: FieldKind): string {
  switch (kind) {
    case 'timestamp_ms':
    case 'epoch_time':
      return 'TIMESTAMP';
    case 'uint64':
      return 'DECIMAL(20,0)';
    case 'bigint':
      return 'BIGINT';
    default:
      return 'VARCHAR';
  }
}

const INT64_MAX = '9223372036854775807';
const UINT64_MAX = '18446744073709551615';
const INT64_MIN_ABS = '9223372036854775808';
// FILETIME of 1970-01-01 and 2400-01-01: an 18-digit integer in this range in a time field
// is a Windows FILETIME (Falcon sends some, e.g. FsVolumeUnmounted ContextTimeStamp,
// as JSON numbers in 100 ns units since 1601); as epoch seconds it would be year 4e9.
const FILETIME_MIN = 116444736000000000;
const FILETIME_MAX = 251103168000000000;
/** Epoch seconds below this (year 5138) are taken as seconds. */
const EPOCH_SECONDS_LIMIT = 1e11;

function isDigits(s: string, from: number, to: number): boolean {
  if (to <= from) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** Decimal integer text in the signed 64-bit range. */
export function isInt64Text(s: string): boolean {
  const neg = s.charCodeAt(0) === 45;
  const from = neg ? 1 : 0;
  if (!isDigits(s, from, s.length)) return false;
  const digits = s.length - from;
  if (digits < 19) return true;
  let start = from;
  while (start < s.length - 1 && s.charCodeAt(start) === 48) start++;
  const sig = s.length - start;
  if (sig < 19) return true;
  if (sig > 19) return false;
  return s.slice(start) <= (neg ? INT64_MIN_ABS : INT64_MAX);
}

const ISO_8601 = /^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d{1,9})?)?(Z|[+-]\d\d(:?\d\d)?)?$/;

/** Epoch-seconds text (optional sign and fraction), FILETIME digits, or ISO-8601. */
function isEpochTimeText(s: string): boolean {
  if (s.length >= 10 && s.charCodeAt(4) === 45) return ISO_8601.test(s);
  const from = s.charCodeAt(0) === 45 ? 1 : 0;
  const dot = s.indexOf('.');
  if (dot === -1) {
    if (!isDigits(s, from, s.length)) return ISO_8601.test(s);
    if (s.length - from <= 11) return Math.abs(Number(s)) < EPOCH_SECONDS_LIMIT;
    if (from === 1 || s.length !== 18) return false;
    const n = Number(s);
    return n >= FILETIME_MIN && n <= FILETIME_MAX;
  }
  return (
    isDigits(s, from, dot) &&
    isDigits(s, dot + 1, s.length) &&
    dot - from <= 11 &&
    Math.abs(Number(s.slice(0, dot))) < EPOCH_SECONDS_LIMIT
  );
}

/**
 * True when `value` (as JSON.parse gave it) fits the field's rule. `""` and null always fit
 * (they become NULL). Numbers are checked by their JSON text as DuckDB will see it.
 */
export function valueFits(kind: FieldKind, value: unknown): boolean {
  if (value === null || value === '') return true;
  const t = typeof value;
  if (t === 'string') {
    const s = value as string;
    switch (kind) {
      case 'bigint':
        return isInt64Text(s);
      case 'uint64':
        return isDigits(s, 0, s.length) && (s.length < 20 || (s.length === 20 && s <= UINT64_MAX));
      case 'epoch_time':
        return isEpochTimeText(s);
      case 'timestamp_ms':
        return (s.length <= 15 && isDigits(s, 0, s.length)) || ISO_8601.test(s);
      default:
        return true;
    }
  }
  if (t === 'number') {
    const n = value as number;
    if (!Number.isFinite(n)) return false;
    switch (kind) {
      case 'bigint':
        return Number.isInteger(n) && n < 9.2e18 && n > -9.2e18;
      case 'uint64':
        return Number.isInteger(n) && n >= 0 && n < 1.8e19;
      case 'epoch_time':
        return (
          (Math.abs(n) < EPOCH_SECONDS_LIMIT ||
            (Number.isInteger(n) && n >= FILETIME_MIN && n <= FILETIME_MAX)) &&
          !String(n).includes('e')
        );
      case 'timestamp_ms':
        return Number.isInteger(n) && n >= 0 && n < 1e15;
      default:
        return true;
    }
  }
  // objects, arrays, booleans: only a text column holds them (as JSON text)
  return kind === 'text';
}

/**
 * SQL converting the staged text column `col` (already quoted) to the kind's type.
 * Only runs on values `valueFits` accepted, so plain CASTs cannot fail.
 */
export function castSql(kind: FieldKind, col: string, nullMarkers = false): string {
  const v = nullMarkers ? `NULLIF(NULLIF(${col}, ''), 'none')` : `NULLIF(${col}, '')`;
  switch (kind) {
    case 'timestamp_ms':
      return `COALESCE(epoch_ms(TRY_CAST(${v} AS BIGINT)), CAST(TRY_CAST(${v} AS TIMESTAMPTZ) AS TIMESTAMP))`;
    case 'epoch_time':
      // FILETIME: 18 digits; ISO-8601: has a '-' after the first character; else epoch seconds
      return (
        `CASE WHEN length(${v}) = 18 AND strpos(${v}, '.') = 0 ` +
        `THEN make_timestamp(CAST(${v} AS BIGINT) // 10 - 11644473600000000) ` +
        `WHEN strpos(${v}, '-') > 1 THEN CAST(CAST(${v} AS TIMESTAMPTZ) AS TIMESTAMP) ` +
        // via DOUBLE: exact to the microsecond up to year 2255 (|µs| < 2^53), and ~100× faster
        // than DuckDB's VARCHAR → DECIMAL(38,6) cast
        `ELSE make_timestamp(CAST(round(CAST(${v} AS DOUBLE) * 1000000) AS BIGINT)) END`
      );
    case 'uint64':
      // through UBIGINT: VARCHAR → DECIMAL(20,0) directly is ~100× slower in DuckDB 1.5
      return `CAST(CAST(${v} AS UBIGINT) AS DECIMAL(20,0))`;
    case 'bigint':
      return `CAST(${v} AS BIGINT)`;
    default:
      return v;
  }
}
