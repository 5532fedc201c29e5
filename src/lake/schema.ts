/**
 * Delta schemas (Spark StructType JSON) and their DuckDB counterparts.
 *
 * A write's Delta schema comes from the DuckDB types of its query; a read casts every column
 * back to the DuckDB type of its Delta type. Delta `timestamp` is an instant (Parquet
 * isAdjustedToUTC=true), so every DuckDB TIMESTAMP flavour is written as TIMESTAMPTZ.
 */
import { ident } from '../sql/duckdb.js';
import type { DeltaType, StructField, StructType } from './table.js';

/** A table can not take a write whose column types clash with its schema. */
export class SchemaMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchemaMismatchError';
  }
}

export function emptySchema(): StructType {
  return { type: 'struct', fields: [] };
}

export function parseSchemaString(schemaString: string): StructType {
  const parsed = JSON.parse(schemaString) as StructType;
  if (parsed?.type !== 'struct' || !Array.isArray(parsed.fields)) {
    throw new Error('metaData.schemaString is not a struct type');
  }
  return parsed;
}

export function schemaString(schema: StructType): string {
  return JSON.stringify(schema);
}

export function field(name: string, type: DeltaType): StructField {
  return { name, type, nullable: true, metadata: {} };
}

export function typeName(t: DeltaType): string {
  if (typeof t === 'string') return t;
  if (t.type === 'struct') return `struct<${t.fields.map((f) => `${f.name}:${typeName(f.type)}`).join(',')}>`;
  if (t.type === 'array') return `array<${typeName(t.elementType)}>`;
  return `map<${typeName(t.keyType)},${typeName(t.valueType)}>`;
}

// ---------------------------------------------------------------- Delta → DuckDB

export function duckType(t: DeltaType): string {
  if (typeof t === 'string') {
    switch (t) {
      case 'string':
        return 'VARCHAR';
      case 'long':
        return 'BIGINT';
      case 'integer':
        return 'INTEGER';
      case 'short':
        return 'SMALLINT';
      case 'byte':
        return 'TINYINT';
      case 'float':
        return 'FLOAT';
      case 'double':
        return 'DOUBLE';
      case 'boolean':
        return 'BOOLEAN';
      case 'binary':
        return 'BLOB';
      case 'date':
        return 'DATE';
      case 'timestamp':
        return 'TIMESTAMP WITH TIME ZONE';
      case 'timestamp_ntz':
        return 'TIMESTAMP';
      default: {
        const m = /^decimal\((\d+),\s*(\d+)\)$/.exec(t);
        if (m) return `DECIMAL(${m[1]},${m[2]})`;
        if ((t as string) === 'void') return 'VARCHAR';
        throw new Error(`Delta type ${JSON.stringify(t)} is not supported by Talon`);
      }
    }
  }
  switch (t.type) {
    case 'struct':
      if (t.fields.length === 0) return 'VARCHAR';
      return `STRUCT(${t.fields.map((f) => `${ident(f.name)} ${duckType(f.type)}`).join(', ')})`;
    case 'array':
      return `${duckType(t.elementType)}[]`;
    case 'map':
      return `MAP(${duckType(t.keyType)}, ${duckType(t.valueType)})`;
    default:
      throw new Error(`Delta type ${JSON.stringify(t)} is not supported by Talon`);
  }
}

// ---------------------------------------------------------------- DuckDB → Delta

/** Parses DuckDB's type text (`STRUCT(a INTEGER, "b c" VARCHAR[])`, `MAP(VARCHAR, BIGINT)` …). */
export function deltaTypeOfDuck(duck: string, column = '?'): DeltaType {
  const p = new TypeParser(duck, column);
  const t = p.type();
  p.end();
  return t;
}

class TypeParser {
  private i = 0;
  constructor(
    private readonly s: string,
    private readonly column: string,
  ) {}

  private ws(): void {
    while (this.i < this.s.length && this.s[this.i] === ' ') this.i++;
  }

  private fail(): never {
    throw new Error(
      `column ${JSON.stringify(this.column)}: cannot read DuckDB type ${JSON.stringify(this.s)}`,
    );
  }

  end(): void {
    this.ws();
    if (this.i !== this.s.length) this.fail();
  }

  private word(): string {
    this.ws();
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.s.slice(this.i));
    if (!m) this.fail();
    this.i += m[0].length;
    return m[0];
  }

  private int(): number {
    this.ws();
    const m = /^\d+/.exec(this.s.slice(this.i));
    if (!m) this.fail();
    this.i += m[0].length;
    return Number(m[0]);
  }

  private name(): string {
    this.ws();
    if (this.s[this.i] === '"') {
      let out = '';
      this.i++;
      for (;;) {
        if (this.i >= this.s.length) this.fail();
        const c = this.s[this.i++];
        if (c === '"') {
          if (this.s[this.i] === '"') {
            out += '"';
            this.i++;
          } else break;
        } else out += c;
      }
      return out;
    }
    return this.word();
  }

  private expect(c: string): void {
    this.ws();
    if (this.s[this.i] !== c) this.fail();
    this.i++;
  }

  private peek(c: string): boolean {
    this.ws();
    return this.s[this.i] === c;
  }

  /** Skips a balanced parenthesised argument list (ENUM values, UNION members …). */
  private skipParens(): void {
    let depth = 0;
    let quote = '';
    for (; this.i < this.s.length; this.i++) {
      const c = this.s[this.i];
      if (quote) {
        if (c === quote) quote = '';
      } else if (c === "'" || c === '"') quote = c;
      else if (c === '(') depth++;
      else if (c === ')') {
        depth--;
        if (depth === 0) {
          this.i++;
          return;
        }
      }
    }
    this.fail();
  }

  type(): DeltaType {
    let t = this.base();
    // LIST (`T[]`) and fixed-size ARRAY (`T[3]`) both become Delta arrays.
    while (this.peek('[')) {
      this.i++;
      while (this.i < this.s.length && this.s[this.i] !== ']') this.i++;
      this.expect(']');
      t = { type: 'array', elementType: t, containsNull: true };
    }
    return t;
  }

  private base(): DeltaType {
    const w = this.word().toUpperCase();
    switch (w) {
      case 'STRUCT': {
        this.expect('(');
        const fields: StructField[] = [];
        if (!this.peek(')')) {
          for (;;) {
            const n = this.name();
            fields.push(field(n, this.type()));
            if (this.peek(',')) {
              this.i++;
              continue;
            }
            break;
          }
        }
        this.expect(')');
        return { type: 'struct', fields };
      }
      case 'MAP': {
        this.expect('(');
        const k = this.type();
        this.expect(',');
        const v = this.type();
        this.expect(')');
        return { type: 'map', keyType: k, valueType: v, valueContainsNull: true };
      }
      case 'DECIMAL':
      case 'NUMERIC': {
        if (!this.peek('(')) return 'decimal(18,3)';
        this.expect('(');
        const p = this.int();
        this.expect(',');
        const sc = this.int();
        this.expect(')');
        return `decimal(${p},${sc})`;
      }
      case 'ENUM':
      case 'UNION':
        if (this.peek('(')) this.skipParens();
        return 'string';
      case 'VARCHAR':
      case 'UUID':
      case 'JSON':
      case 'TIME':
      case 'INTERVAL':
      case 'BIT':
      case 'BIGNUM':
      case 'VARINT':
      case 'NULL':
        if (w === 'TIME' && this.s.slice(this.i).startsWith(' WITH TIME ZONE'))
          this.i += ' WITH TIME ZONE'.length;
        if (w === 'VARCHAR' && this.peek('(')) this.skipParens();
        return 'string';
      case 'BIGINT':
      case 'UINTEGER':
        return 'long';
      case 'INTEGER':
      case 'USMALLINT':
        return 'integer';
      case 'SMALLINT':
      case 'UTINYINT':
        return 'short';
      case 'TINYINT':
        return 'byte';
      case 'UBIGINT':
        return 'decimal(20,0)';
      case 'HUGEINT':
      case 'UHUGEINT':
        return 'decimal(38,0)';
      case 'FLOAT':
        return 'float';
      case 'DOUBLE':
        return 'double';
      case 'BOOLEAN':
        return 'boolean';
      case 'BLOB':
        return 'binary';
      case 'DATE':
        return 'date';
      case 'TIMESTAMP':
        if (this.s.slice(this.i).startsWith(' WITH TIME ZONE')) this.i += ' WITH TIME ZONE'.length;
        return 'timestamp';
      case 'TIMESTAMPTZ':
      case 'TIMESTAMP_NS':
      case 'TIMESTAMP_MS':
      case 'TIMESTAMP_S':
        return 'timestamp';
      default:
        this.fail();
    }
  }
}

// ---------------------------------------------------------------- evolution

const INTEGRAL_RANK: Record<string, number> = { byte: 1, short: 2, integer: 3, long: 4 };

function sameName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/**
 * The table type after writing data of type `incoming` into a column of type `table`.
 * New struct fields are added (schema evolution). Data that fits the column losslessly
 * (integer into long, float into double …) is cast on write and leaves the type alone.
 * Anything else — a long into an integer column, text into a number — is refused: Talon does
 * not rewrite a column's type (the Delta type-widening feature is not implemented).
 */
export function mergeType(table: DeltaType, incoming: DeltaType, path: string): DeltaType {
  if (typeof table === 'string' && typeof incoming === 'string') {
    if (table === incoming) return table;
    if (
      table in INTEGRAL_RANK &&
      incoming in INTEGRAL_RANK &&
      INTEGRAL_RANK[incoming] <= INTEGRAL_RANK[table]
    ) {
      return table;
    }
    if (table === 'double' && (incoming === 'float' || incoming in INTEGRAL_RANK)) return table;
    if (
      (table === 'timestamp' || table === 'timestamp_ntz') &&
      (incoming === 'timestamp' || incoming === 'timestamp_ntz')
    ) {
      return table;
    }
    const dt = /^decimal\((\d+),(\d+)\)$/.exec(table);
    const di = /^decimal\((\d+),(\d+)\)$/.exec(incoming);
    if (dt && di && dt[2] === di[2] && Number(di[1]) <= Number(dt[1])) return table;
    if (dt && incoming in INTEGRAL_RANK && Number(dt[2]) === 0 && Number(dt[1]) >= 19) return table;
    throw incompatible(path, table, incoming);
  }
  if (typeof table === 'string' || typeof incoming === 'string' || table.type !== incoming.type) {
    throw incompatible(path, table, incoming);
  }
  if (table.type === 'struct' && incoming.type === 'struct') {
    return { type: 'struct', fields: mergeFields(table.fields, incoming.fields, path + '.') };
  }
  if (table.type === 'array' && incoming.type === 'array') {
    return { ...table, elementType: mergeType(table.elementType, incoming.elementType, path + '.element') };
  }
  if (table.type === 'map' && incoming.type === 'map') {
    return {
      ...table,
      keyType: mergeType(table.keyType, incoming.keyType, path + '.key'),
      valueType: mergeType(table.valueType, incoming.valueType, path + '.value'),
    };
  }
  throw incompatible(path, table, incoming);
}

function incompatible(path: string, table: DeltaType, incoming: DeltaType): SchemaMismatchError {
  return new SchemaMismatchError(
    `column ${JSON.stringify(path)}: the table has type ${typeName(table)} but the data has type ` +
      `${typeName(incoming)}; incompatible type change refused (write a new column instead)`,
  );
}

export function mergeFields(table: StructField[], incoming: StructField[], prefix = ''): StructField[] {
  const out = table.map((f) => ({ ...f }));
  for (const inc of incoming) {
    const i = out.findIndex((f) => sameName(f.name, inc.name));
    if (i < 0) out.push({ ...inc });
    else out[i] = { ...out[i], type: mergeType(out[i].type, inc.type, prefix + out[i].name) };
  }
  return out;
}

export function mergeSchema(table: StructType, incoming: StructType): StructType {
  return { type: 'struct', fields: mergeFields(table.fields, incoming.fields) };
}

export function sameSchema(a: StructType, b: StructType): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The DuckDB type to cast an incoming column to before it is written: the table's types,
 * in the incoming shape (struct fields the data lacks stay absent; readers fill them with NULL).
 */
export function writeType(table: DeltaType, incoming: DeltaType): DeltaType {
  if (typeof table === 'string' || typeof incoming === 'string') return table;
  if (table.type === 'struct' && incoming.type === 'struct') {
    return {
      type: 'struct',
      fields: incoming.fields.map((inc) => {
        const t = table.fields.find((f) => sameName(f.name, inc.name));
        return t ? { ...t, type: writeType(t.type, inc.type) } : inc;
      }),
    };
  }
  if (table.type === 'array' && incoming.type === 'array') {
    return { ...table, elementType: writeType(table.elementType, incoming.elementType) };
  }
  if (table.type === 'map' && incoming.type === 'map') {
    return {
      ...table,
      keyType: writeType(table.keyType, incoming.keyType),
      valueType: writeType(table.valueType, incoming.valueType),
    };
  }
  return table;
}

export function findField(schema: StructType, name: string): StructField | undefined {
  return schema.fields.find((f) => sameName(f.name, name));
}

export function hasType(t: DeltaType, name: string): boolean {
  if (typeof t === 'string') return t === name;
  if (t.type === 'struct') return t.fields.some((f) => hasType(f.type, name));
  if (t.type === 'array') return hasType(t.elementType, name);
  return hasType(t.keyType, name) || hasType(t.valueType, name);
}
