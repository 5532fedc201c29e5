/**
 * One HTTP POST as a delivery attempt, classified the way every HTTP destination needs:
 * 2xx ok; 429 and 5xx retryable (429 with its Retry-After); other 4xx failed at once with
 * the body kept; timeouts and connection errors retryable.
 */
import http from 'node:http';
import https from 'node:https';
import type { DeliveryResult } from './destination.js';

export interface PostOptions {
  headers?: Record<string, string>;
  /** Default 10 s. */
  timeoutMs?: number;
}

/** Response bodies are kept in the deliveries table up to this many characters. */
export const MAX_RESPONSE_CHARS = 2000;

/**
 * Keep-alive agents shared by every HTTP destination: node:http with a pooled agent is several
 * times faster than fetch for many small POSTs to one endpoint (the benchmark's case).
 */
const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 32 });
const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 32 });

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

function request(
  url: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(
      u,
      {
        method: 'POST',
        agent: u.protocol === 'https:' ? httpsAgent : httpAgent,
        headers: { 'content-length': String(Buffer.byteLength(body)), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          // Only the start of a body is kept; the rest is read and dropped.
          if (size < MAX_RESPONSE_CHARS * 4) chunks.push(c);
          size += c.length;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () =>
      req.destroy(Object.assign(new Error(`timeout after ${timeoutMs} ms`), { name: 'TimeoutError' })),
    );
    req.on('error', reject);
    req.end(body);
  });
}

export async function postBody(url: string, body: string, opts: PostOptions = {}): Promise<DeliveryResult> {
  let res: RawResponse;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  try {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    for (const [k, v] of Object.entries(opts.headers ?? {})) headers[k.toLowerCase()] = v;
    res = await request(url, body, headers, timeoutMs);
  } catch (err) {
    const e = err as Error & { code?: string };
    return {
      ok: false,
      retryable: true,
      error: e.code && !e.message.includes(e.code) ? `${e.code}: ${e.message}` : e.message,
    };
  }
  const response = res.text.slice(0, MAX_RESPONSE_CHARS);
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
  const raHeader = res.headers['retry-after'];
  const ra = parseRetryAfter(Array.isArray(raHeader) ? raHeader[0] : (raHeader ?? null));
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
