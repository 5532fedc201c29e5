import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ColumnNames, renameTopLevelKeys, sanitizeColumnName } from './columns.js';

test('fields differing only by case get distinct columns; the first keeps its name', () => {
  const c = new ColumnNames([], ['event_date']);
  assert.equal(c.column('Name'), 'Name');
  assert.equal(c.column('name'), 'name__2');
  assert.equal(c.column('NAME'), 'NAME__3');
  assert.equal(c.column('name'), 'name__2');
  assert.equal(c.column('Event_Date'), 'Event_Date__2'); // reserved by the table
});

test('the mapping survives a restart: existing exact column names are reused', () => {
  const c = new ColumnNames(['Name', 'name__2', 'NAME__3'], []);
  assert.equal(c.column('NAME'), 'NAME__3');
  assert.equal(c.column('name'), 'name__2');
  assert.equal(c.column('Name'), 'Name');
  assert.equal(c.column('nAme'), 'nAme__4');
});

test('characters Delta does not allow are escaped', () => {
  assert.equal(sanitizeColumnName('User Name'), 'User_x20_Name');
  assert.equal(sanitizeColumnName('a=b'), 'a_x3d_b');
  assert.equal(sanitizeColumnName(''), '_blank');
});

test('renameTopLevelKeys renames keys only and keeps value text byte for byte', () => {
  const text =
    '{ "name" : 18446744073709551615, "x":{"name":"in"}, "s":"a\\"name\\":b", "name2":[1,{"name":2}] , "Name":"v"}';
  const out = renameTopLevelKeys(text, (k) => (k === 'name' ? 'name__2' : undefined));
  assert.equal(
    out,
    '{ "name__2" : 18446744073709551615, "x":{"name":"in"}, "s":"a\\"name\\":b", "name2":[1,{"name":2}] , "Name":"v"}',
  );
  const escaped = renameTopLevelKeys('{"n\\u0061me":1}', (k) => (k === 'name' ? 'nm' : undefined));
  assert.equal(escaped, '{"nm":1}');
});
