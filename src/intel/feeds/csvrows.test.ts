import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'csv-parse/sync';
import { csvRecords, csvTable } from './csvrows.js';

test('csv rows: comma split for plain lines equals csv-parse; quoted and multi-line fields; comments; header in comments', () => {
  const text = [
    '\ufeff# abuse.ch dump',
    '# id,dateadded,url,threat',
    '1,2026-01-01 00:00:00,http://a.example/x#frag, malware_download ',
    '',
    '# a comment line',
    '2,"2026-01-02 00:00:00","http://b.example/?q=1,2","multi',
    'line"',
    '3 , 2026-01-03 ,http://c.example/,\r',
    '4,2026-01-04',
  ].join('\n');
  const rows = csvRecords(text);
  assert.deepEqual(rows, [
    { id: '1', dateadded: '2026-01-01 00:00:00', url: 'http://a.example/x#frag', threat: 'malware_download' },
    { id: '2', dateadded: '2026-01-02 00:00:00', url: 'http://b.example/?q=1,2', threat: 'multi\nline' },
    { id: '3', dateadded: '2026-01-03', url: 'http://c.example/', threat: '' },
    { id: '4', dateadded: '2026-01-04' },
  ]);
  // Plain lines: the same fields csv-parse gives.
  const plain = 'ioc,ioc_type\n 1.2.3.4 ,IPv4\nevil.example,domain\r\nhttp://x.example/a;b=c,URL\n';
  const { header, rows: got } = csvTable(plain);
  const want = parse(plain, { trim: true, skip_empty_lines: true, relax_column_count: true }) as string[][];
  assert.deepEqual([header, ...got], want);
});

test('csv rows: given header, no header at all', () => {
  assert.deepEqual(csvRecords('a,b\n', { header: ['X', 'Y'] }), [{ x: 'a', y: 'b' }]);
  assert.deepEqual(csvTable(''), { header: [], rows: [] });
  assert.deepEqual(csvTable('# only comments\n'), { header: [], rows: [] });
});
