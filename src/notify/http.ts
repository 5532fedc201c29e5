/**
 * One HTTP POST as a delivery attempt, classified the way every HTTP destination needs:
 * 2xx ok; 429 and 5xx retryable (429 with its Retry-After); other 4xx failed at once with
 * the body kept; timeouts and connection errors retryable.
 */
import type { DeliveryResult } from './destination.js';

export interface PostOptions {
  headers?: Record<string, string>;
  /** Default 10 s. */
  timeoutMs?: number;
}

/** Response bodies are kept in the deliveries table up to this many characters. */
export const MAX_RESPONSE_CHARS = 2000;

export async function postBody(url: string, body: string, opts: PostOptions = {}): Promise<DeliveryResult> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(opts.headers ?? {}) },
      body,
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why =
      e.name === 'TimeoutError'
        ? `timeout after ${opts.timeoutMs ?? 10_000} ms`
        : (e.cause?.message ?? e.message);
    return { ok: false, retryable: true, error: why };
  }
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    text = `(body unreadable: ${(err as Error).message})`;
  }
  const response = text.slice(0, MAX_RESPONSE_CHARS);
  if (res.status >= 200 && res.status < 300)
    return { ok: true, retryable: false, httpStatus: res.status, response };
  const retryable = res.status === 429 || res.status >= 500 || res.status === 408;
  const out: DeliveryResult = {
    ok: false,
    retryable,
    httpStatus: res.status,
    response,
    error: `HTTP ${res.status}${response ? `: ${response.slice(0, 200)}` : ''}`,
  };
  const ra = parseRetryAfter(res.headers.get('retry-after'));
  if (ra !== undefined) out.retryAfterMs = ra;
  return out;
}

/** Retry-After: delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(v: string | null, now = Date.now()): number | undefined {
  if (!v) return undefined;
  const t = v.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const d = Date.parse(t);
  if (Number.isNaN(d)) return undefined;
  return Math.max(0, d - now);
}
