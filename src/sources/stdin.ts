/**
 * `talon ingest -`: standard input (gzip or NDJSON) as a one-shot source of one file.
 *
 * The input is spooled to a temporary file while its SHA-256 is computed (bounded memory
 * whatever its size), so the file gets a content identity — `stdin:sha256:<hex>` — before the
 * pipeline looks at it: piping the same bytes twice ingests them once.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FdrSource, SourceBatch } from './source.js';

export class StdinSource implements FdrSource {
  readonly kind = 'stdin';
  private tmpDir: string | undefined;

  constructor(
    private readonly input: Readable = process.stdin,
    private readonly opts: { tmpDir?: string } = {},
  ) {}

  async *batches(signal: AbortSignal): AsyncIterable<SourceBatch> {
    if (signal.aborted) return;
    this.tmpDir = await mkdtemp(path.join(this.opts.tmpDir ?? os.tmpdir(), 'talon-stdin-'));
    const spool = path.join(this.tmpDir, 'stdin');
    const hash = createHash('sha256');
    const out = createWriteStream(spool);
    await pipeline(
      this.input,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          hash.update(chunk);
          yield chunk;
        }
      },
      out,
    );
    const id = `stdin:sha256:${hash.digest('hex')}`;
    yield {
      id,
      files: [
        { id, name: 'stdin', open: async () => createReadStream(spool, { highWaterMark: 256 * 1024 }) },
      ],
      ack: async () => {},
    };
  }

  async close(): Promise<void> {
    if (this.tmpDir) await rm(this.tmpDir, { recursive: true, force: true });
  }
}
