/**
 * User rule files (`rules/*.yaml`): a detection as SQL over the micro-batch. The file is
 * Talon's public face, so it is described by a zod schema and a bad file fails with the key
 * that is wrong (`rules/x.yaml: dedup.window: invalid duration "1 day"`).
 *
 * In `sql`, each source table is a relation named by its lower-cased table name holding the
 * batch's new rows (e.g. `FROM networkconnectip4`); `lookups` are read whole at their current
 * version (e.g. `aidmaster`). Every result row is a hit; hits are grouped by the dedup key
 * and window, a group with at least `threshold` hits raises one alert.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { alertRowsSql, alertsSinkFor, SEVERITIES } from '../alerts/alerts.js';
import type { Severity } from '../alerts/alerts.js';
import { parseDuration } from '../engine/duration.js';
import type { QueryDefinition } from '../engine/query.js';
import { ident, literal } from '../sql/duckdb.js';
import type { Db } from '../sql/duckdb.js';
import type { Detection } from './detection.js';

const duration = z.union([z.string(), z.number()]).refine(
  (v) => {
    try {
      parseDuration(v);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'invalid duration (e.g. 30s, 15m, 24h, 1d)' },
);

const tableName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a table name (letters, digits, _)');

const ruleTestSchema = z
  .object({
    name: z.string().min(1),
    /** table → rows (objects as FDR fields; `timestamp` ISO text or epoch ms) */
    events: z.record(tableName, z.array(z.record(z.string(), z.unknown()))),
    lookups: z.record(tableName, z.array(z.record(z.string(), z.unknown()))).default({}),
    expect: z
      .object({
        alerts: z.number().int().min(0),
        /** each object must equal (on its keys) some raised alert: aid, host, user, dedup_key, description… */
        match: z.array(z.record(z.string(), z.unknown())).default([]),
      })
      .strict(),
  })
  .strict();

export const ruleSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, 'lower-case letters, digits, _ . -'),
    title: z.string().min(1),
    description: z.string().default(''),
    severity: z.enum(SEVERITIES as [Severity, ...Severity[]]),
    tags: z.array(z.string()).default([]),
    sources: z.array(tableName).min(1),
    lookups: z.array(tableName).default([]),
    sql: z.string().min(1),
    /** event-time column of the result rows */
    time_column: z.string().default('timestamp'),
    dedup: z
      .object({
        key: z.array(z.string()).min(1),
        window: duration.default('0'),
      })
      .strict()
      .optional(),
    threshold: z.number().int().min(1).default(1),
    enabled: z.boolean().default(true),
    tests: z.array(ruleTestSchema).default([]),
  })
  .strict();

export type RuleFile = z.infer<typeof ruleSchema>;
export type RuleTest = z.infer<typeof ruleTestSchema>;

export class RuleError extends Error {}

/** Parses and validates a rule file's text; errors name the file and the key. */
export function parseRule(text: string, file = '<rule>'): RuleFile {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new RuleError(`${file}: not valid YAML: ${(e as Error).message}`);
  }
  const res = ruleSchema.safeParse(doc);
  if (!res.success) {
    const msgs = res.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
    throw new RuleError(`${file}: ${msgs.join('; ')}`);
  }
  return res.data;
}

export async function loadRuleFile(file: string): Promise<RuleFile> {
  return parseRule(await readFile(file, 'utf8'), file);
}

/** Every *.yaml / *.yml in a folder (sorted); a missing folder has no rules. */
export async function ruleFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return names
    .filter((n) => /\.ya?ml$/i.test(n))
    .sort()
    .map((n) => path.join(dir, n));
}

function windowMs(rule: RuleFile): number {
  return rule.dedup ? parseDuration(rule.dedup.window) : 0;
}

/**
 * The alert rows (alerts-table columns) of a rule over relations named by table: `sources`
 * and `lookups` map lower-cased table names to FROM-expressions.
 */
export async function ruleAlertsSql(
  db: Db,
  rule: RuleFile,
  relations: Map<string, string>,
  nowSql: string,
  evidence: { table: string; versionSql: string },
): Promise<{ hits: string; alerts: string }> {
  const ctes = [...relations.entries()].map(([name, rel]) => `${ident(name)} AS (SELECT * FROM ${rel})`);
  const hitsSql = `WITH ${ctes.join(', ')} SELECT * FROM (${rule.sql.trim().replace(/;\s*$/, '')})`;
  const cols = new Map((await db.columns(hitsSql)).map((c) => [c.name.toLowerCase(), c.name]));
  const col = (name: string) =>
    cols.has(name.toLowerCase()) ? `h.${ident(cols.get(name.toLowerCase())!)}` : undefined;
  const time = col(rule.time_column);
  if (!time)
    throw new RuleError(`rule ${rule.id}: the sql result has no column '${rule.time_column}' (time_column)`);
  const keyCols = rule.dedup?.key ?? [];
  for (const k of keyCols) {
    if (!col(k)) throw new RuleError(`rule ${rule.id}: dedup.key column '${k}' is not in the sql result`);
  }
  const w = windowMs(rule);
  const keyExpr = keyCols.length
    ? keyCols.map((k) => `coalesce(CAST(${col(k)} AS VARCHAR), '')`).join(` || '|' || `)
    : `md5(CAST(to_json(h) AS VARCHAR))`;
  const bucket = w > 0 ? `floor(epoch_ms(CAST(${time} AS TIMESTAMP)) / ${w})` : '0';
  const pick = (name: string) => {
    const c = col(name);
    return c ? `CAST(arg_min(${c}, __t) AS VARCHAR)` : 'NULL::VARCHAR';
  };
  const grouped = `(SELECT
      __key AS dedup_key,
      min(__t) AS event_time,
      NULL::VARCHAR AS title,
      ${literal(rule.title)} || CASE WHEN count(*) > 1 THEN ' (' || count(*) || ' events)' ELSE '' END
        || coalesce(': ' || ${pick('description')}, '') AS description,
      ${pick('aid')} AS aid,
      coalesce(${pick('ComputerName')}, ${pick('host')}) AS host,
      coalesce(${pick('UserName')}, ${pick('user')}) AS "user",
      ${literal(evidence.table)} AS evidence_table,
      ${evidence.versionSql} AS evidence_version,
      CAST(to_json({'count': count(*), 'first': arg_min(to_json(h), __t)}) AS VARCHAR) AS evidence
    FROM (SELECT h.*, ${keyExpr} AS __key, CAST(${time} AS TIMESTAMP) AS __t, ${bucket} AS __b FROM (${hitsSql}) h) h
    GROUP BY __key, __b
    HAVING count(*) >= ${rule.threshold})`;
  const meta = {
    detection: rule.id,
    severity: rule.severity,
    title: rule.title,
    tags: rule.tags,
    windowMs: w,
  };
  return { hits: hitsSql, alerts: alertRowsSql(meta, grouped, nowSql) };
}

/** A rule file as a detection with one streaming query. */
export function ruleDetection(rule: RuleFile, origin: string): Detection {
  const w = windowMs(rule);
  return {
    id: rule.id,
    title: rule.title,
    description: rule.description,
    severity: rule.severity,
    tags: rule.tags,
    sources: rule.sources,
    dedupKey: rule.dedup?.key ?? [],
    windowMs: w,
    origin,
    queries(): QueryDefinition[] {
      return [
        {
          id: `rule.${rule.id}`,
          detection: rule.id,
          description: rule.description || rule.title,
          // The SQL binds every source and lookup: until each exists no batch runs, so rows of
          // the present sources wait and are read (from their first version) once it appears.
          sources: rule.sources.map((table) => ({ table, required: true })),
          snapshots: rule.lookups,
          requiredSnapshots: rule.lookups,
          operators: [
            `sql(${rule.sql.trim().split('\n')[0].slice(0, 60)}…)`,
            `group(${rule.dedup?.key.join(', ') ?? 'row'}${w ? `, window ${rule.dedup?.window}` : ''})`,
            `having(count >= ${rule.threshold})`,
          ],
          sinks: [alertsSinkFor(w)],
          async transform(batch) {
            const relations = new Map<string, string>();
            const missing: string[] = [];
            for (const s of rule.sources) {
              const rel = batch.source(s);
              if (rel) relations.set(s.toLowerCase(), rel);
              else missing.push(s);
            }
            for (const l of rule.lookups) {
              const snap = await batch.snapshot(l);
              if (snap) relations.set(l.toLowerCase(), snap);
              else missing.push(l);
            }
            if (missing.length) {
              // The SQL cannot bind without every table; the present ones' rows of this
              // batch cannot match anything the rule describes yet.
              batch.metrics['missing_tables'] = missing.length;
              return {};
            }
            const first = batch.presentSources()[0];
            const { alerts } = await ruleAlertsSql(batch.db, rule, relations, batch.nowSql, {
              table: first ? first[0] : rule.sources[0].toLowerCase(),
              versionSql: first
                ? `CAST(${batch.offsets.sources[first[0]]?.end ?? 0} AS BIGINT)`
                : 'NULL::BIGINT',
            });
            return { alerts };
          },
        },
      ];
    },
  };
}

export interface RuleTestResult {
  file: string;
  rule: string;
  test: string;
  ok: boolean;
  alerts: number;
  message?: string;
}

/** Runs a rule's inline tests on a scratch DuckDB connection (no lake needed). */
export async function runRuleTests(db: Db, rule: RuleFile, file: string): Promise<RuleTestResult[]> {
  const out: RuleTestResult[] = [];
  let n = 0;
  const dir = await mkdtemp(path.join(tmpdir(), 'talon-rule-test-'));
  try {
    await runTests();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return out;

  async function runTests(): Promise<void> {
    for (const t of rule.tests) {
      const relations = new Map<string, string>();
      const temps: string[] = [];
      try {
        for (const [table, rows] of [...Object.entries(t.events), ...Object.entries(t.lookups)]) {
          const name = ident(`__rule_test_${n++}`);
          await createRowsTable(db, name, rows, dir);
          temps.push(name);
          relations.set(table.toLowerCase(), name);
        }
        for (const s of [...rule.sources, ...rule.lookups]) {
          if (!relations.has(s.toLowerCase())) {
            throw new RuleError(
              `test has no rows for table '${s}' (add it under events/lookups, [] for none)`,
            );
          }
        }
        const { alerts } = await ruleAlertsSql(db, rule, relations, 'now()::TIMESTAMP', {
          table: rule.sources[0].toLowerCase(),
          versionSql: 'NULL::BIGINT',
        });
        const rows = await db.allJson<Record<string, unknown>>(alerts);
        const problems: string[] = [];
        if (rows.length !== t.expect.alerts)
          problems.push(`expected ${t.expect.alerts} alert(s), got ${rows.length}`);
        for (const m of t.expect.match) {
          const hit = rows.some((r) => Object.entries(m).every(([k, v]) => String(r[k]) === String(v)));
          if (!hit) problems.push(`no alert matches ${JSON.stringify(m)}`);
        }
        out.push({
          file,
          rule: rule.id,
          test: t.name,
          ok: problems.length === 0,
          alerts: rows.length,
          message: problems.join('; ') || undefined,
        });
      } catch (e) {
        out.push({ file, rule: rule.id, test: t.name, ok: false, alerts: 0, message: (e as Error).message });
      } finally {
        for (const tmp of temps) await db.run(`DROP TABLE IF EXISTS ${tmp}`);
      }
    }
  }
}

/**
 * Test rows as a temp table: NDJSON through DuckDB's reader (nested objects become STRUCTs,
 * as enrichment columns are), `timestamp` as TIMESTAMP from ISO text or epoch ms.
 */
async function createRowsTable(
  db: Db,
  name: string,
  rows: Record<string, unknown>[],
  dir: string,
): Promise<void> {
  if (rows.length === 0) {
    await db.run(`CREATE OR REPLACE TEMP TABLE ${name} AS SELECT NULL::TIMESTAMP AS timestamp WHERE false`);
    return;
  }
  const file = path.join(dir, `${name.replace(/"/g, '')}.ndjson`);
  await writeFile(
    file,
    rows
      .map((r) => {
        const o: Record<string, unknown> = { ...r };
        if (typeof o.timestamp === 'number') o.timestamp = new Date(o.timestamp).toISOString();
        return JSON.stringify(o);
      })
      .join('\n'),
  );
  const rel = `read_json(${literal(file)}, format = 'newline_delimited', sample_size = -1)`;
  const hasTime = (await db.columns(`SELECT * FROM ${rel}`)).some((c) => c.name === 'timestamp');
  await db.run(
    `CREATE OR REPLACE TEMP TABLE ${name} AS SELECT * ${
      hasTime ? 'REPLACE (CAST("timestamp" AS TIMESTAMP) AS "timestamp")' : ''
    } FROM ${rel}`,
  );
}
