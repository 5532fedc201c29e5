import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { decodeStream, type LineSink, type QuarantineRecord } from './decoder.js';

function collect(): LineSink & { lines: [number, string][]; bad: QuarantineRecord[] } {
  const lines: [number, string][] = [];
  const bad: QuarantineRecord[] = [];
  return {
    lines,
    bad,
    line(buf, start, end, n) {
      lines.push([n, buf.toString('utf8', start, end)]);
    },
    quarantine(rec) {
      bad.push(rec);
    },
  };
}

/** A stream handing over `data` in chunks of `size` bytes (lines cross chunk borders). */
function chunked(data: Buffer, size = 7): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) parts.push(data.subarray(i, i + size));
  return Readable.from(parts);
}

const opts = { maxLineBytes: 100, quarantineRawBytes: 10 };

test('plain NDJSON: line numbers, CRLF, blank lines, BOM, missing final newline', async () => {
  const sink = collect();
  const data = Buffer.from('\ufeff{"a":1}\r\n\n{"b":2}\n   \n{"c":3}');
  const r = await decodeStream(chunked(data, 3), sink, opts);
  assert.deepEqual(sink.lines, [
    [1, '{"a":1}'],
    [3, '{"b":2}'],
    [5, '{"c":3}'],
  ]);
  assert.equal(r.gzip, false);
  assert.equal(r.bytes, data.length);
  assert.equal(r.md5, createHash('md5').update(data).digest('hex'));
});

test('gzip with concatenated members is decoded whole', async () => {
  const sink = collect();
  const data = Buffer.concat([gzipSync('{"a":1}\n{"a":2}\n'), gzipSync('{"a":3}\n')]);
  const r = await decodeStream(chunked(data, 5), sink, opts);
  assert.equal(r.gzip, true);
  assert.deepEqual(
    sink.lines.map((l) => l[1]),
    ['{"a":1}', '{"a":2}', '{"a":3}'],
  );
  assert.equal(r.md5, createHash('md5').update(data).digest('hex'));
});

test('an over-long line is quarantined with its first bytes, the next line still read', async () => {
  const sink = collect();
  const long = 'x'.repeat(250);
  await decodeStream(chunked(Buffer.from(`{"a":1}\n${long}\n{"a":2}\n`), 16), sink, opts);
  assert.deepEqual(
    sink.lines.map((l) => l[0]),
    [1, 3],
  );
  assert.equal(sink.bad.length, 1);
  assert.equal(sink.bad[0].reason, 'line_too_long');
  assert.equal(sink.bad[0].line, 2);
  assert.equal(sink.bad[0].raw, 'xxxxxxxxxx');
});

test('invalid UTF-8 is quarantined per line', async () => {
  const sink = collect();
  const data = Buffer.concat([
    Buffer.from('{"a":"ok"}\n{"a":"'),
    Buffer.from([0xff, 0xfe]),
    Buffer.from('"}\n{"a":"é"}\n'),
  ]);
  await decodeStream(chunked(data, 4), sink, opts);
  assert.deepEqual(
    sink.lines.map((l) => l[1]),
    ['{"a":"ok"}', '{"a":"é"}'],
  );
  assert.equal(sink.bad.length, 1);
  assert.equal(sink.bad[0].reason, 'invalid_utf8');
  assert.equal(sink.bad[0].line, 2);
});

test('truncated gzip keeps the good lines before the damage and records it once', async () => {
  const lines = Array.from({ length: 2000 }, (_, i) => JSON.stringify({ i, pad: 'p'.repeat(i % 50) }));
  const whole = gzipSync(lines.join('\n') + '\n');
  const cut = whole.subarray(0, Math.floor(whole.length * 0.6));
  const sink = collect();
  await decodeStream(chunked(cut, 1000), sink, { maxLineBytes: 1000, quarantineRawBytes: 100 });
  assert.ok(sink.lines.length > 100, `kept ${sink.lines.length}`);
  assert.ok(sink.lines.length < 2000);
  sink.lines.forEach(([n, l], i) => {
    assert.equal(n, i + 1);
    assert.equal(l, lines[i]);
  });
  assert.equal(sink.bad.length, 1);
  assert.equal(sink.bad[0].reason, 'truncated_gzip');
  assert.match(sink.bad[0].detail ?? '', /compressed byte/);
});

test('corrupt gzip is recorded as corrupt_gzip', async () => {
  const lines = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ i, r: Math.sin(i) }));
  const whole = Buffer.from(gzipSync(lines.join('\n') + '\n'));
  for (let i = Math.floor(whole.length / 2); i < Math.floor(whole.length / 2) + 64; i++) whole[i] ^= 0x5a;
  const sink = collect();
  await decodeStream(chunked(whole, 4096), sink, { maxLineBytes: 1000, quarantineRawBytes: 100 });
  assert.ok(sink.lines.length < 3000);
  // lines before the damaged bytes are intact; deflate may emit garbage between the damage and
  // its detection (those lines then fail JSON and are quarantined by the stager)
  assert.ok(sink.lines.length >= 1000);
  sink.lines.slice(0, 1000).forEach(([, l], i) => assert.equal(l, lines[i]));
  assert.equal(sink.bad.length, 1);
  assert.ok(['corrupt_gzip', 'truncated_gzip'].includes(sink.bad[0].reason), sink.bad[0].reason);
});

test('a garbage gzip header is corrupt_gzip', async () => {
  const sink = collect();
  const data = Buffer.concat([Buffer.from([0x1f, 0x8b, 0x99, 0x00]), Buffer.alloc(64, 7)]);
  await decodeStream(chunked(data), sink, opts);
  assert.equal(sink.lines.length, 0);
  assert.equal(sink.bad.length, 1);
  assert.equal(sink.bad[0].reason, 'corrupt_gzip');
});
