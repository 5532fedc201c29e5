/** File / stdout: one JSON line per message (NDJSON), appended. */
import { appendFile } from 'node:fs/promises';
import type { Destination, DeliveryResult, NotifyMessage } from '../destination.js';
import { failResult, okResult } from '../destination.js';
import { messageJson } from '../message.js';

export class FileDestination implements Destination {
  readonly type = 'file';
  readonly perAlert = true;
  constructor(
    readonly name: string,
    private readonly path: string,
  ) {}

  async send(messages: NotifyMessage[]): Promise<DeliveryResult[]> {
    const text = messages.map((m) => JSON.stringify(messageJson(m)) + '\n').join('');
    try {
      if (this.path === '-') {
        await new Promise<void>((resolve, reject) =>
          process.stdout.write(text, (e) => (e ? reject(e) : resolve())),
        );
      } else {
        await appendFile(this.path, text);
      }
      return messages.map(() => okResult({ reply: `${text.length} bytes` }));
    } catch (err) {
      // A full disk or a missing folder may be fixed while we retry.
      return messages.map(() => failResult(err, true));
    }
  }
}
