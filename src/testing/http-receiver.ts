/**
 * A recording HTTP server on 127.0.0.1 for tests of HTTP destinations (webhook, Slack, Teams,
 * PagerDuty, Splunk HEC): it keeps every request (headers, raw body) and answers as told —
 * queued responses first (e.g. a 500, a 429 with Retry-After, a slow answer), then the default.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  /** What the receiver answered. */
  status: number;
  at: number;
}

export interface ReceiverResponse {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  /** Answer after this long (a slow or hanging endpoint). */
  delayMs?: number;
}

export class HttpReceiver {
  readonly requests: ReceivedRequest[] = [];
  private readonly queue: ReceiverResponse[] = [];
  private waiters: { n: number; resolve: () => void }[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  defaultResponse: ReceiverResponse = { status: 200, body: 'ok' };
  /** Decides the answer per request (after the queue); return undefined for the default. */
  handler: ((req: ReceivedRequest) => ReceiverResponse | undefined) | undefined;

  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<HttpReceiver> {
    const server = http.createServer();
    const r = new HttpReceiver(server);
    server.on('request', (req, res) => r.onRequest(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return r;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  url(path = '/'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** The next requests get these answers, in order. */
  respondNext(...responses: ReceiverResponse[]): void {
    this.queue.push(...responses);
  }

  /** Requests' bodies parsed as JSON. */
  json<T = Record<string, unknown>>(): T[] {
    return this.requests.map((r) => JSON.parse(r.text) as T);
  }

  /** Resolves once at least `n` requests arrived (rejects after `timeoutMs`). */
  waitFor(n: number, timeoutMs = 30_000): Promise<void> {
    if (this.requests.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () =>
          reject(new Error(`http receiver: ${this.requests.length} of ${n} requests after ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiters.push({
        n,
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
      });
    });
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const rec: ReceivedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body,
        text: body.toString('utf8'),
        status: 0,
        at: Date.now(),
      };
      const answer = this.queue.shift() ?? this.handler?.(rec) ?? this.defaultResponse;
      rec.status = answer.status ?? 200;
      this.requests.push(rec);
      this.waiters = this.waiters.filter((w) => {
        if (this.requests.length >= w.n) {
          w.resolve();
          return false;
        }
        return true;
      });
      const reply = () => {
        if (res.destroyed) return;
        res.writeHead(rec.status, { 'content-type': 'text/plain', ...(answer.headers ?? {}) });
        res.end(answer.body ?? '');
      };
      if (answer.delayMs) {
        const t = setTimeout(() => {
          this.timers.delete(t);
          reply();
        }, answer.delayMs);
        this.timers.add(t);
      } else reply();
    });
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
