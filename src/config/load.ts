/**
 * Loads Talon's configuration (schema: ./config.ts).
 *
 * Sources, later wins: schema defaults < config file < `TALON_*` environment < flags.
 * - File: `configPath` (the `--config` flag), else `TALON_CONFIG`, else `./talon.yaml` when it
 *   exists. Optional: without a file, defaults apply. `${VAR}` in string values is replaced
 *   from the environment (`${VAR:-fallback}` when VAR may be unset; `$${…}` is a literal `${…}`),
 *   so secrets stay out of the file.
 * - Environment: `TALON_LAKE` → `lake`; `TALON_<SECTION>__<KEY>` → `section.key` (a double
 *   underscore nests, names are matched case-insensitively). Values are YAML scalars
 *   (`20`, `true`, `[a, b]`); a setting whose schema type is string keeps the raw text, and a
 *   list setting also takes comma-separated items (`3389,445`).
 *   `TALON_*` names that map to no top-level setting (TALON_CONFIG, TALON_LOG, …) are not config.
 * - Flags: `overrides`, keys are dotted paths (`{ 'ingest.batch_events': 1000, lake: 'x' }`).
 *
 * Validation errors name the key and where its value came from, in one `ConfigError`:
 *   `config: ingest.max_line_bytes: expected number, received string (from TALON_INGEST__MAX_LINE_BYTES)`
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { configSchema, type TalonConfig } from './config.js';

export interface LoadConfigOptions {
  /** `--config FILE`; overrides TALON_CONFIG. */
  configPath?: string;
  /** Flag values by dotted key path; undefined values are ignored. */
  overrides?: Record<string, unknown>;
  /** Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Where `./talon.yaml` and a relative config path are looked up. Default: process.cwd(). */
  cwd?: string;
}

/** Invalid configuration: the message names every offending key and its source. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Obj = Record<string, unknown>;

export async function loadConfig(opts: LoadConfigOptions = {}): Promise<TalonConfig> {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const raw: Obj = {};
  /** dotted path → where its value came from (for error messages) */
  const origins = new Map<string, string>();

  const file = await readConfigFile(opts.configPath, env, cwd);
  if (file) {
    const substituted = substituteEnv(file.data, env, file.label, []) as Obj;
    Object.assign(raw, substituted);
    recordOrigins(substituted, [], file.label, origins);
  }

  for (const [name, value] of Object.entries(env).sort(([a], [b]) => a.localeCompare(b))) {
    if (!name.startsWith('TALON_') || value === undefined || value === '') continue;
    const segments = name.slice('TALON_'.length).split('__');
    if (segments.some((s) => s === '')) continue;
    const keyPath = resolvePath(segments);
    // Single-segment names that are no setting (TALON_LOG, TALON_CONFIG, TALON_FIXTURES…) are
    // other knobs of the process, not configuration; nested ones clearly mean config.
    if (segments.length === 1 && !(keyPath[0] in configSchema.shape)) continue;
    setPath(raw, keyPath, scalarFor(keyPath, value));
    origins.set(keyPath.join('.'), name);
  }

  for (const [dotted, value] of Object.entries(opts.overrides ?? {})) {
    if (value === undefined) continue;
    const keyPath = resolvePath(dotted.split('.'));
    setPath(raw, keyPath, typeof value === 'string' ? scalarFor(keyPath, value) : value);
    origins.set(keyPath.join('.'), 'command line');
  }

  const result = configSchema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => describeIssue(i, origins)).join('\n'));
  }
  return result.data;
}

async function readConfigFile(
  configPath: string | undefined,
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<{ data: Obj; label: string } | undefined> {
  const explicit = configPath ?? (env.TALON_CONFIG || undefined);
  const file = path.resolve(cwd, explicit ?? 'talon.yaml');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!explicit && code === 'ENOENT') return undefined;
    const via = configPath !== undefined ? '--config' : explicit ? 'TALON_CONFIG' : '';
    throw new ConfigError(
      `config: cannot read ${explicit ?? file}${via ? ` (from ${via})` : ''}: ` +
        (code === 'ENOENT' ? 'no such file' : (err as Error).message),
    );
  }
  const label = explicit ?? 'talon.yaml';
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    const where =
      err instanceof YAMLParseError && err.linePos
        ? ` at line ${err.linePos[0].line}, column ${err.linePos[0].col}`
        : '';
    const reason = (err as Error).message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError(`config: ${label}: invalid YAML${where}: ${reason}`);
  }
  if (data === null || data === undefined) return { data: {}, label };
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`config: ${label}: expected a mapping of settings at the top level`);
  }
  return { data: data as Obj, label };
}

/** Replaces `${VAR}` / `${VAR:-default}` in every string of the file's data. */
function substituteEnv(
  value: unknown,
  env: NodeJS.ProcessEnv,
  label: string,
  at: (string | number)[],
): unknown {
  if (typeof value === 'string') {
    return value.replace(
      /\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
      (whole, escaped: string | undefined, name: string, fallback: string | undefined) => {
        if (escaped) return whole.slice(1);
        const v = env[name];
        if (v !== undefined && v !== '') return v;
        if (fallback !== undefined) return fallback;
        throw new ConfigError(
          `config: ${formatPath(at)}: environment variable ${name} is not set (referenced as \${${name}} in ${label})`,
        );
      },
    );
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, label, [...at, i]));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, substituteEnv(v, env, label, [...at, k])]),
    );
  }
  return value;
}

function recordOrigins(value: unknown, at: string[], label: string, origins: Map<string, string>): void {
  if (at.length > 0) origins.set(at.join('.'), label);
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) recordOrigins(v, [...at, k], label, origins);
  }
}

/** Unwraps optional/default/nullable/pipe wrappers to the schema that describes the value. */
function core(schema: z.ZodType | undefined): z.ZodType | undefined {
  let s = schema as { def?: { type?: string; innerType?: z.ZodType; in?: z.ZodType } } | undefined;
  for (let i = 0; i < 10 && s?.def; i++) {
    const def = s.def;
    if (
      def.innerType &&
      ['optional', 'default', 'nullable', 'prefault', 'catch', 'readonly'].includes(def.type!)
    ) {
      s = def.innerType as typeof s;
    } else if (def.type === 'pipe' && def.in) {
      s = def.in as typeof s;
    } else break;
  }
  return s as z.ZodType | undefined;
}

function objectShape(schema: z.ZodType | undefined): Record<string, z.ZodType> | undefined {
  const c = core(schema) as { def?: { type?: string }; shape?: Record<string, z.ZodType> } | undefined;
  return c?.def?.type === 'object' ? c.shape : undefined;
}

/**
 * Maps name segments (from an env var or a flag) onto the schema's key names,
 * case-insensitively; a segment the schema does not know is lower-cased (and then reported
 * as an unknown key by validation).
 */
function resolvePath(segments: string[]): string[] {
  const out: string[] = [];
  let shape: Record<string, z.ZodType> | undefined = configSchema.shape;
  for (const seg of segments) {
    const key: string = shape
      ? (Object.keys(shape).find((k) => k.toLowerCase() === seg.toLowerCase()) ?? seg.toLowerCase())
      : seg.toLowerCase();
    out.push(key);
    shape = shape ? objectShape(shape[key]) : undefined;
  }
  return out;
}

function schemaAt(keyPath: string[]): z.ZodType | undefined {
  let schema: z.ZodType | undefined = configSchema;
  for (const key of keyPath) {
    schema = objectShape(schema)?.[key];
    if (!schema) return undefined;
  }
  return core(schema);
}

/**
 * A text value from the environment or a flag, typed as YAML unless the setting is a string.
 * A list setting also takes comma-separated items (`TALON_DETECT__VULNERABLE_PORTS=3389,445`).
 */
function scalarFor(keyPath: string[], text: string): unknown {
  return typedText(schemaAt(keyPath), text);
}

function typedText(schema: z.ZodType | undefined, text: string): unknown {
  const def = (schema as { def?: { type?: string; element?: z.ZodType } } | undefined)?.def;
  if (def?.type === 'string' || def?.type === 'enum' || def?.type === 'literal') return text;
  let v: unknown;
  try {
    v = parseYaml(text);
  } catch {
    v = text;
  }
  if (def?.type === 'array' && !Array.isArray(v)) {
    return text
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '')
      .map((item) => typedText(core(def.element), item));
  }
  return v === null || v === undefined ? text : v;
}

function setPath(root: Obj, keyPath: string[], value: unknown): void {
  let node = root;
  for (const key of keyPath.slice(0, -1)) {
    const next = node[key];
    if (!next || typeof next !== 'object' || Array.isArray(next)) node[key] = {};
    node = node[key] as Obj;
  }
  node[keyPath[keyPath.length - 1]] = value;
}

function formatPath(at: readonly PropertyKey[]): string {
  let s = '';
  for (const p of at) {
    if (typeof p === 'number') s += `[${p}]`;
    else s += s ? `.${String(p)}` : String(p);
  }
  return s || '(top level)';
}

function originOf(at: readonly PropertyKey[], origins: Map<string, string>): string | undefined {
  const parts = at.map(String);
  for (let n = parts.length; n > 0; n--) {
    const o = origins.get(parts.slice(0, n).join('.'));
    if (o) return o;
  }
  return undefined;
}

function describeIssue(issue: z.core.$ZodIssue, origins: Map<string, string>): string {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys
      .map((k) => {
        const at = [...issue.path, k];
        const o = originOf(at, origins);
        return `config: ${formatPath(at)}: unknown setting${o ? ` (from ${o})` : ''}`;
      })
      .join('\n');
  }
  const o = originOf(issue.path, origins);
  const msg = issue.message.replace(/^Invalid input: /, '');
  return `config: ${formatPath(issue.path)}: ${msg}${o ? ` (from ${o})` : ''}`;
}
