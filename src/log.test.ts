import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Logger, Progress, parseLogLevel, type LogStream } from './log.js';

/**
 * A stream collecting what is written; `isTTY` chooses which format the logger picks.
 * Assertions read `out()`, not `text`: assert.equal would narrow the property's type.
 */
function sink(isTTY: boolean): LogStream & { text: string; out(): string } {
  return {
    text: '',
    isTTY,
    columns: 200,
    write(chunk: string) {
      this.text += chunk;
      return true;
    },
    out() {
      return this.text;
    },
  };
}

/** A clock the test advances by hand. */
function clock(start = Date.UTC(2026, 0, 2, 3, 4, 5)) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

test('not a TTY: one JSON object per line with ts, level, msg and fields; bigints exact', () => {
  const s = sink(false);
  const c = clock();
  const log = new Logger({ stream: s, level: 'info', now: c.now });
  log.info('ingested batch', { events: 1200, aid: 2n ** 64n - 1n, small: 5n, err: new Error('boom') });
  log.debug('not shown');
  const lines = s.out().trim().split('\n');
  assert.equal(lines.length, 1);
  assert.deepEqual(JSON.parse(lines[0]), {
    ts: '2026-01-02T03:04:05.000Z',
    level: 'info',
    msg: 'ingested batch',
    events: 1200,
    aid: '18446744073709551615',
    small: 5,
    err: 'boom',
  });
});

test('a TTY: human lines with time, level and key=value fields', () => {
  const s = sink(true);
  const log = new Logger({ stream: s, level: 'debug', now: clock().now });
  log.warn('slow commit', { table: 'UserLogon', note: 'two words', n: 3 });
  assert.equal(s.out(), '03:04:05 WARN  slow commit table=UserLogon note="two words" n=3\n');
});

test('levels: silent writes nothing, error only errors, debug everything', () => {
  for (const [level, expected] of [
    ['silent', 0],
    ['error', 1],
    ['warn', 2],
    ['info', 3],
    ['debug', 4],
  ] as const) {
    const s = sink(false);
    const log = new Logger({ stream: s, level });
    log.error('e');
    log.warn('w');
    log.info('i');
    log.debug('d');
    assert.equal(s.out().split('\n').filter(Boolean).length, expected, level);
  }
});

test('child loggers add fields; the format can be forced', () => {
  const s = sink(true);
  const log = new Logger({ stream: s, level: 'info', format: 'json' }).child({ source: 'sqs' });
  log.child({ batch: 7 }).info('acked', { batch: 8 });
  const obj = JSON.parse(s.out());
  assert.equal(obj.source, 'sqs');
  assert.equal(obj.batch, 8);
});

test('parseLogLevel accepts the documented levels and rejects others', () => {
  assert.equal(parseLogLevel(undefined), 'info');
  assert.equal(parseLogLevel('DEBUG'), 'debug');
  assert.equal(parseLogLevel('silent'), 'silent');
  assert.throws(
    () => parseLogLevel('verbose'),
    /TALON_LOG: expected one of silent, error, warn, info, debug/,
  );
});

test('Progress off a TTY: a progress log line at most every logEveryMs, then a final line', () => {
  const s = sink(false);
  const c = clock();
  const logger = new Logger({ stream: s, level: 'info', now: c.now });
  const p = new Progress('ingest', { total: 100, unit: 'files', logger, logEveryMs: 1000 });
  for (let i = 0; i < 10; i++) p.tick(); // no time passed: nothing written
  assert.equal(s.out(), '');
  c.advance(1000);
  p.tick(); // 11 after 1 s
  c.advance(500);
  p.tick(4); // within the interval: counted, not written
  c.advance(500);
  p.tick(); // 16 after 2 s
  p.finish({ events: 999 });
  const lines = s
    .out()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    lines.map((l) => [l.msg, l.done, l.total, l.per_second]),
    [
      ['progress', 11, 100, 11],
      ['progress', 16, 100, 8],
      ['ingest done', undefined, undefined, 8],
    ],
  );
  assert.equal(lines[2].files, 16);
  assert.equal(lines[2].events, 999);
  assert.equal(lines[2].seconds, 2);
  assert.equal(p.count, 16);
  // finish is idempotent and later ticks write nothing.
  const before = s.out();
  p.finish();
  c.advance(5000);
  p.tick();
  assert.equal(s.out(), before);
});

test('Progress on a TTY: one line redrawn in place at most every redrawMs, cleared by log lines', () => {
  const s = sink(true);
  const c = clock();
  const logger = new Logger({ stream: s, level: 'info', now: c.now });
  const p = new Progress('generate', { total: 1000, unit: 'events', logger });
  p.update(250);
  c.advance(50);
  p.update(300); // < 100 ms since start: not drawn
  assert.equal(s.out(), '');
  c.advance(50);
  p.update(500);
  assert.equal(s.out(), '\r\x1b[2Kgenerate [############            ] 50% 500/1,000 events 5,000/s');
  logger.info('note');
  assert.ok(s.out().endsWith('\r\x1b[2K03:04:05 INFO  note\n'), JSON.stringify(s.out()));
  c.advance(100);
  p.update(1000);
  p.finish();
  assert.match(s.out(), /100% 1,000\/1,000 events/);
  const finalLine = '\r\x1b[2K03:04:05 INFO  generate done events=1000 seconds=0.2 per_second=5000\n';
  assert.ok(s.out().endsWith(finalLine), JSON.stringify(s.out()));
});

test('Progress without a total shows the count; silent loggers make it write nothing', () => {
  const s = sink(true);
  const c = clock();
  const p = new Progress('detect', { logger: new Logger({ stream: s, level: 'info', now: c.now }) });
  c.advance(200);
  p.tick(42);
  assert.equal(s.out(), '\r\x1b[2Kdetect 42 items 210/s');

  const quiet = sink(true);
  const q = new Progress('detect', { logger: new Logger({ stream: quiet, level: 'silent', now: c.now }) });
  c.advance(1000);
  q.tick(5);
  q.finish();
  assert.equal(quiet.out(), '');
});
