/**
 * A crash hook for tests of exactly-once: `TALON_CRASH_AT=<point>[:<query id>[:<batch id>]]`
 * makes the process kill itself with SIGKILL (no cleanup, no flush — like `kill -9`) at that
 * point of the batch. Points: `after-offsets`, `after-transform`, `after-sink` (every sink
 * written, checkpoint commit not yet), `mid-sinks` (after the first sink).
 */
export type CrashPoint = 'after-offsets' | 'after-transform' | 'mid-sinks' | 'after-sink';

export function crashPoint(point: CrashPoint, queryId: string, batchId: number): void {
  const spec = process.env.TALON_CRASH_AT;
  if (!spec) return;
  const [p, q, b] = splitSpec(spec);
  if (p !== point) return;
  if (q && q !== queryId) return;
  if (b !== undefined && b !== '' && Number(b) !== batchId) return;
  process.kill(process.pid, 'SIGKILL');
}

/** `point:query:batch` where the query id may itself contain ':' (e.g. `new_logon_location:merge`). */
function splitSpec(spec: string): [string, string | undefined, string | undefined] {
  const first = spec.indexOf(':');
  if (first < 0) return [spec, undefined, undefined];
  const point = spec.slice(0, first);
  const rest = spec.slice(first + 1);
  const last = rest.lastIndexOf(':');
  if (last >= 0 && /^\d+$/.test(rest.slice(last + 1)))
    return [point, rest.slice(0, last), rest.slice(last + 1)];
  return [point, rest, undefined];
}
