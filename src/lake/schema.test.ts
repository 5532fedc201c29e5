import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deltaTypeOfDuck, duckType, mergeSchema, writeType } from './schema.js';
import type { StructType } from './table.js';

test('DuckDB type text → Delta types, and back', () => {
  assert.equal(deltaTypeOfDuck('VARCHAR'), 'string');
  assert.equal(deltaTypeOfDuck('TIMESTAMP'), 'timestamp');
  assert.equal(deltaTypeOfDuck('TIMESTAMP WITH TIME ZONE'), 'timestamp');
  assert.equal(deltaTypeOfDuck('TIMESTAMP_NS'), 'timestamp');
  assert.equal(deltaTypeOfDuck('DECIMAL(10,2)'), 'decimal(10,2)');
  assert.equal(deltaTypeOfDuck('UUID'), 'string');
  assert.equal(deltaTypeOfDuck("ENUM('a', 'b,c')"), 'string');
  assert.equal(deltaTypeOfDuck('HUGEINT'), 'decimal(38,0)');
  const t = deltaTypeOfDuck('STRUCT("a b" INTEGER[], c MAP(VARCHAR, STRUCT(x DOUBLE)), "q""d" DATE)[]');
  assert.deepEqual(t, {
    type: 'array',
    containsNull: true,
    elementType: {
      type: 'struct',
      fields: [
        {
          name: 'a b',
          type: { type: 'array', elementType: 'integer', containsNull: true },
          nullable: true,
          metadata: {},
        },
        {
          name: 'c',
          type: {
            type: 'map',
            keyType: 'string',
            valueType: {
              type: 'struct',
              fields: [{ name: 'x', type: 'double', nullable: true, metadata: {} }],
            },
            valueContainsNull: true,
          },
          nullable: true,
          metadata: {},
        },
        { name: 'q"d', type: 'date', nullable: true, metadata: {} },
      ],
    },
  });
  assert.equal(duckType(t), 'STRUCT("a b" INTEGER[], "c" MAP(VARCHAR, STRUCT("x" DOUBLE)), "q""d" DATE)[]');
  assert.equal(duckType('timestamp'), 'TIMESTAMP WITH TIME ZONE');
  assert.equal(duckType('timestamp_ntz'), 'TIMESTAMP');
  assert.throws(() => deltaTypeOfDuck('GEOMETRY', 'g'), /column "g": cannot read DuckDB type/);
});

test('schema evolution: new columns and struct fields merge; narrowing or type changes are refused', () => {
  const f = (name: string, type: StructType['fields'][number]['type']) => ({
    name,
    type,
    nullable: true,
    metadata: {},
  });
  const table: StructType = {
    type: 'struct',
    fields: [f('id', 'long'), f('s', { type: 'struct', fields: [f('a', 'integer')] })],
  };
  const merged = mergeSchema(table, {
    type: 'struct',
    fields: [f('ID', 'integer'), f('s', { type: 'struct', fields: [f('b', 'string')] }), f('new', 'date')],
  });
  assert.deepEqual(
    merged.fields.map((x) => x.name),
    ['id', 's', 'new'],
  );
  assert.equal(merged.fields[0].type, 'long');
  assert.deepEqual(merged.fields[1].type, { type: 'struct', fields: [f('a', 'integer'), f('b', 'string')] });
  // an integer written into the long column is cast to long, keeping the data's struct shape
  assert.equal(writeType('long', 'integer'), 'long');
  assert.throws(
    () =>
      mergeSchema(table, {
        type: 'struct',
        fields: [f('s', { type: 'struct', fields: [f('a', 'string')] })],
      }),
    /column "s\.a": the table has type integer but the data has type string/,
  );
  assert.throws(() => mergeSchema(table, { type: 'struct', fields: [f('id', 'double')] }), /column "id"/);
});
