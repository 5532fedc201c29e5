import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makeAlert } from '../test-support.js';
import { alertMessage, resolveMessage } from '../message.js';
import { FileDestination } from './file.js';

test('file: one JSON object per line, appended', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'talon-notify-file-'));
  try {
    const file = path.join(dir, 'alerts.ndjson');
    const d = new FileDestination('out', file);
    assert.ok((await d.send([alertMessage(makeAlert(1, { description: 'line1\nline2' }))]))[0].ok);
    assert.ok((await d.send([alertMessage(makeAlert(2)), resolveMessage(makeAlert(1))])).every((r) => r.ok));
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
    assert.equal(lines.length, 3);
    const objs = lines.map((l) => JSON.parse(l));
    assert.deepEqual(
      objs.map((o) => [o.kind, o.alert_id]),
      [
        ['alert', 'alert-00001'],
        ['alert', 'alert-00002'],
        ['resolve', 'alert-00001'],
      ],
    );
    assert.equal(objs[0].description, 'line1\nline2');
    const bad = await new FileDestination('bad', path.join(dir, 'missing', 'x.ndjson')).send([
      alertMessage(makeAlert(3)),
    ]);
    assert.equal(bad[0].ok, false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
