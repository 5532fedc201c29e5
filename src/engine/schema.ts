/**
 * Delta schemas for the tables the engine creates (alerts, state, sinks), derived from the
 * DuckDB column types of a query, so a table can be created with its full schema before
 * its first rows exist (readers such as `talon alerts list` then work on an empty table).
 */
import type { Db } from '../sql/duckdb.js';
import type { DeltaType, StructField, StructType } from '../lake/table.js';

export async function deltaSchemaOf(db: Db, sql: string): Promise<StructType> {
  const cols = await db.columns(sql);
  return { type: 'struct', fields: cols.map((c) => field(c.name, parseDuckType(c.type))) };
}

function field(name: string, type: DeltaType): StructField {
  return { name, type, nullable: true, metadata: {} };
}

/** DuckDB type text (e.g. `STRUCT("a b" VARCHAR, c BIGINT[])`) → Delta type. */
export function parseDuckType(text: string): DeltaType {
  const p = new TypeParser(text);
  const t = p.type();
  p.skipWs();
  if (!p.done()) throw new Error(`cannot read DuckDB type ${JSON.stringify(text)}`);
  return t;
}

class TypeParser {
  private i = 0;
  constructor(private readonly s: string) {}

  done(): boolean {
    return this.i >= this.s.length;
  }

  skipWs(): void {
    while (this.i < this.s.length && /\s/.test(this.s[this.i])) this.i++;
  }

  private peek(str: string): boolean {
    this.skipWs();
    return this.s.startsWith(str, this.i);
  }

  private expect(str: string): void {
    if (!this.peek(str)) throw new Error(`expected '${str}' at ${this.i} in ${JSON.stringify(this.s)}`);
    this.i += str.length;
  }

  private name(): string {
    this.skipWs();
    if (this.s[this.i] === '"') {
      let out = '';
      this.i++;
      while (this.i < this.s.length) {
        if (this.s[this.i] === '"') {
          if (this.s[this.i + 1] === '"') {
            out += '"';
            this.i += 2;
            continue;
          }
          this.i++;
          return out;
        }
        out += this.s[this.i++];
      }
      throw new Error(`unterminated name in ${JSON.stringify(this.s)}`);
    }
    const m = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(this.s.slice(this.i));
    if (!m) throw new Error(`expected a name at ${this.i} in ${JSON.stringify(this.s)}`);
    this.i += m[0].length;
    return m[0];
  }

  type(): DeltaType {
    this.skipWs();
    const rest = this.s.slice(this.i);
    let t: DeltaType;
    if (/^STRUCT\s*\(/i.test(rest)) {
      this.i += rest.indexOf('(') + 1;
      const fields: StructField[] = [];
      while (!this.peek(')')) {
        const n = this.name();
        fields.push(field(n, this.type()));
        if (this.peek(',')) this.expect(',');
      }
      this.expect(')');
      t = { type: 'struct', fields };
    } else if (/^MAP\s*\(/i.test(rest)) {
      this.i += rest.indexOf('(') + 1;
      const keyType = this.type();
      this.expect(',');
      const valueType = this.type();
      this.expect(')');
      t = { type: 'map', keyType, valueType, valueContainsNull: true };
    } else {
      const m = /^(TIMESTAMP WITH TIME ZONE|TIMESTAMP_[A-Z]+|[A-Z]+(?:\s*\(\s*\d+\s*,\s*\d+\s*\))?)/i.exec(
        rest,
      );
      if (!m) throw new Error(`cannot read DuckDB type at ${this.i} in ${JSON.stringify(this.s)}`);
      this.i += m[0].length;
      t = primitive(m[0].toUpperCase().replace(/\s+/g, ''));
    }
    while (this.peek('[')) {
      this.expect('[');
      this.skipWs();
      while (/\d/.test(this.s[this.i] ?? '')) this.i++;
      this.expect(']');
      t = { type: 'array', elementType: t, containsNull: true };
    }
    return t;
  }
}

function primitive(t: string): DeltaType {
  const dec = /^DECIMAL\((\d+),(\d+)\)$/.exec(t);
  if (dec) return `decimal(${Number(dec[1])},${Number(dec[2])})`;
  switch (t) {
    case 'VARCHAR':
    case 'UUID':
    case 'JSON':
      return 'string';
    case 'BIGINT':
    case 'UBIGINT':
    case 'HUGEINT':
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
    case 'TIMESTAMP_MS':
    case 'TIMESTAMP_NS':
    case 'TIMESTAMP_S':
    case 'TIMESTAMPWITHTIMEZONE':
      return 'timestamp';
    default:
      throw new Error(`no Delta type for DuckDB type ${t}`);
  }
}
