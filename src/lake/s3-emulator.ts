/**
 * An in-process S3 (+SQS) for tests: fauxqs 1.x listening on 127.0.0.1 at a random port.
 * Only tests import this module (fauxqs is a dev dependency).
 *
 * fauxqs 1.9 ignores `If-None-Match` on PutObject (it overwrites), so by default this wraps it
 * with S3's documented conditional-write behaviour, to test the real S3 code path:
 * - `If-None-Match: *` on a key that exists → 412 PreconditionFailed;
 * - a second conditional PUT to a key while one is in flight → 409 ConditionalRequestConflict
 *   (the client is expected to retry).
 * Pass `conditionalPut: false` to get plain fauxqs.
 */
import { buildApp } from 'fauxqs';

export interface S3Emulator {
  /** e.g. `http://127.0.0.1:41234` — the endpoint for S3 and SQS clients. */
  endpoint: string;
  /** Fixed test credentials (fauxqs accepts any). */
  credentials: { accessKeyId: string; secretAccessKey: string };
  region: string;
  /** Request counts by `METHOD` (e.g. `GET`, `PUT`, `HEAD`), for asserting cache hits. */
  requests: Record<string, number>;
  /** Conditional PUTs refused: 412 (key existed) and 409 (another conditional PUT in flight). */
  refused: { preconditionFailed: number; conflict: number };
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startS3Emulator(
  opts: {
    conditionalPut?: boolean;
    buckets?: string[];
    /** Hold each conditional PUT this long before storing it: makes concurrent ones meet (409). */
    conditionalPutDelayMs?: number;
  } = {},
) {
  const app = buildApp({ logger: false });
  const requests: Record<string, number> = {};
  const refused = { preconditionFailed: 0, conflict: 0 };
  app.addHook('onRequest', async (req) => {
    requests[req.method] = (requests[req.method] ?? 0) + 1;
  });

  if (opts.conditionalPut ?? true) {
    // object path → the request holding the conditional write on it
    const inFlight = new Map<string, unknown>();
    app.addHook('preHandler', async (req, reply) => {
      if (req.method !== 'PUT' || req.headers['if-none-match'] !== '*') return;
      const objectPath = req.url.split('?')[0]!;
      if (inFlight.has(objectPath)) {
        refused.conflict++;
        return reply
          .status(409)
          .header('content-type', 'application/xml')
          .send(
            s3ErrorXml('ConditionalRequestConflict', 'A conflicting conditional operation is in progress'),
          );
      }
      inFlight.set(objectPath, req);
      if (opts.conditionalPutDelayMs) await new Promise((r) => setTimeout(r, opts.conditionalPutDelayMs));
      const head = await app.inject({ method: 'HEAD', url: objectPath });
      if (head.statusCode === 200) {
        refused.preconditionFailed++;
        return reply
          .status(412)
          .header('content-type', 'application/xml')
          .send(
            s3ErrorXml('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold'),
          );
      }
    });
    const release = async (req: { url: string }) => {
      const objectPath = req.url.split('?')[0]!;
      if (inFlight.get(objectPath) === req) inFlight.delete(objectPath);
    };
    app.addHook('onResponse', release);
    app.addHook('onRequestAbort', release);
  }

  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const emulator: S3Emulator = {
    endpoint: address,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    region: 'us-east-1',
    requests,
    refused,
    async createBucket(name: string) {
      const res = await app.inject({ method: 'PUT', url: `/${name}` });
      if (res.statusCode >= 300) throw new Error(`create bucket ${name}: HTTP ${res.statusCode} ${res.body}`);
    },
    async stop() {
      await app.close();
    },
  };
  for (const b of opts.buckets ?? []) await emulator.createBucket(b);
  return emulator;
}

function s3ErrorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}
