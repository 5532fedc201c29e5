import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from './load.js';

let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'talon-config-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A fresh folder with `talon.yaml` (when given) to use as cwd. */
async function folder(yaml?: string): Promise<string> {
  const d = await mkdtemp(path.join(dir, 'case-'));
  if (yaml !== undefined) await writeFile(path.join(d, 'talon.yaml'), yaml);
  return d;
}

async function configError(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

test('without a file or environment every setting has its default', async () => {
  const cfg = await loadConfig({ cwd: await folder(), env: {} });
  assert.equal(cfg.lake, './talon-lake');
  assert.equal(cfg.ingest.max_line_bytes, 1024 * 1024);
  assert.equal(cfg.ingest.sqs.wait_time_seconds, 20);
  assert.deepEqual(cfg.ingest.watch.paths, []);
  assert.equal(cfg.ingest.parquet_codec, 'snappy');
  const zstd = await loadConfig({ cwd: await folder(), env: { TALON_INGEST__PARQUET_CODEC: 'zstd' } });
  assert.equal(zstd.ingest.parquet_codec, 'zstd');
  await assert.rejects(
    loadConfig({ cwd: await folder(), env: { TALON_INGEST__PARQUET_CODEC: 'brotli' } }),
    /ingest\.parquet_codec/,
  );
});

test('./talon.yaml is read, with ${VAR} and ${VAR:-fallback} substituted from the environment', async () => {
  const cwd = await folder(
    [
      'lake: ${LAKE_ROOT}/lake',
      'ingest:',
      '  batch_events: 1000',
      '  sqs:',
      '    queue_url: "${QUEUE:-https://sqs.example/q}"',
      '    region: "$${NOT_A_VAR}"',
      '  watch:',
      '    paths: ["${LAKE_ROOT}/in"]',
    ].join('\n'),
  );
  const cfg = await loadConfig({ cwd, env: { LAKE_ROOT: '/data' } });
  assert.equal(cfg.lake, '/data/lake');
  assert.equal(cfg.ingest.batch_events, 1000);
  assert.equal(cfg.ingest.sqs.queue_url, 'https://sqs.example/q');
  assert.equal(cfg.ingest.sqs.region, '${NOT_A_VAR}');
  assert.deepEqual(cfg.ingest.watch.paths, ['/data/in']);
  // Defaults fill what the file leaves out.
  assert.equal(cfg.ingest.max_line_bytes, 1024 * 1024);
});

test('an unset ${VAR} is an error naming the variable and the key', async () => {
  const cwd = await folder('ingest:\n  sqs:\n    queue_url: "${FDR_QUEUE_URL}"\n');
  const msg = await configError(loadConfig({ cwd, env: {} }));
  assert.match(msg, /^config: ingest\.sqs\.queue_url: environment variable FDR_QUEUE_URL is not set/);
  assert.match(msg, /talon\.yaml/);
});

test('--config and TALON_CONFIG pick the file; a missing explicit file is an error', async () => {
  const cwd = await folder('lake: from-default-file\n');
  const other = path.join(cwd, 'other.yaml');
  await writeFile(other, 'lake: from-other\n');
  assert.equal((await loadConfig({ cwd, env: {} })).lake, 'from-default-file');
  assert.equal((await loadConfig({ cwd, env: { TALON_CONFIG: 'other.yaml' } })).lake, 'from-other');
  assert.equal(
    (await loadConfig({ cwd, env: { TALON_CONFIG: '/nonexistent.yaml' }, configPath: other })).lake,
    'from-other',
  );
  assert.match(
    await configError(loadConfig({ cwd, env: {}, configPath: 'missing.yaml' })),
    /^config: cannot read missing\.yaml \(from --config\): no such file$/,
  );
  assert.match(
    await configError(loadConfig({ cwd, env: { TALON_CONFIG: 'gone.yaml' } })),
    /cannot read gone\.yaml \(from TALON_CONFIG\)/,
  );
});

test('precedence: defaults < file < TALON_* environment < flags', async () => {
  const cwd = await folder('lake: file-lake\ningest:\n  batch_events: 10\n  quarantine_raw_bytes: 11\n');
  const env = { TALON_LAKE: 'env-lake', TALON_INGEST__BATCH_EVENTS: '20' };
  const fileOnly = await loadConfig({ cwd, env: {} });
  assert.equal(fileOnly.lake, 'file-lake');
  const withEnv = await loadConfig({ cwd, env });
  assert.equal(withEnv.lake, 'env-lake');
  assert.equal(withEnv.ingest.batch_events, 20);
  assert.equal(withEnv.ingest.quarantine_raw_bytes, 11);
  const withFlags = await loadConfig({
    cwd,
    env,
    overrides: { lake: 'flag-lake', 'ingest.batch_events': 30, 'ingest.max_line_bytes': undefined },
  });
  assert.equal(withFlags.lake, 'flag-lake');
  assert.equal(withFlags.ingest.batch_events, 30);
  assert.equal(withFlags.ingest.max_line_bytes, 1024 * 1024);
});

test('environment values are YAML scalars; string settings keep the raw text', async () => {
  const cwd = await folder();
  const cfg = await loadConfig({
    cwd,
    env: {
      TALON_INGEST__SQS__VISIBILITY_TIMEOUT: '600',
      TALON_INGEST__SQS__REGION: '1234', // a string setting: not turned into a number
      TALON_INGEST__WATCH__PATHS: '[/a, /b]',
      TALON_ENRICH__CITY_MMDB: '/db/GeoLite2-City.mmdb',
      TALON_LAKE: 's3://bucket/lake',
    },
  });
  assert.equal(cfg.ingest.sqs.visibility_timeout, 600);
  assert.equal(cfg.ingest.sqs.region, '1234');
  assert.deepEqual(cfg.ingest.watch.paths, ['/a', '/b']);
  assert.equal(cfg.enrich.city_mmdb, '/db/GeoLite2-City.mmdb');
  assert.equal(cfg.lake, 's3://bucket/lake');
});

test('list settings take YAML lists or comma-separated items from the environment', async () => {
  const cfg = await loadConfig({
    cwd: await folder(),
    env: {
      TALON_DETECT__VULNERABLE_PORTS: '3389, 445',
      TALON_DETECT__KNOWN_SERVERS: '10.0.0.1,10.1.0.0/16',
      TALON_INGEST__WATCH__PATHS: '/in',
    },
  });
  assert.deepEqual(cfg.detect.vulnerable_ports, [3389, 445]);
  assert.deepEqual(cfg.detect.known_servers, ['10.0.0.1', '10.1.0.0/16']);
  assert.deepEqual(cfg.ingest.watch.paths, ['/in']);
  const msg = await configError(
    loadConfig({ cwd: await folder(), env: { TALON_DETECT__VULNERABLE_PORTS: '3389,rdp' } }),
  );
  assert.match(
    msg,
    /^config: detect\.vulnerable_ports\[1\]: expected number, received string \(from TALON_DETECT__VULNERABLE_PORTS\)$/,
  );
});

test('TALON_* names that are no setting (TALON_LOG, TALON_FIXTURES) are ignored; empty values too', async () => {
  const cfg = await loadConfig({
    cwd: await folder(),
    env: { TALON_LOG: 'debug', TALON_FIXTURES: '/x', TALON_CONFIG: '', TALON_INGEST__BATCH_EVENTS: '' },
  });
  assert.equal(cfg.ingest.batch_events, 250_000);
});

test('a wrong type from the environment names the key and the variable', async () => {
  const msg = await configError(
    loadConfig({ cwd: await folder(), env: { TALON_INGEST__MAX_LINE_BYTES: 'lots' } }),
  );
  assert.equal(
    msg,
    'config: ingest.max_line_bytes: expected number, received string (from TALON_INGEST__MAX_LINE_BYTES)',
  );
});

test('a wrong value in the file names the key and the file', async () => {
  const msg = await configError(
    loadConfig({ cwd: await folder('ingest:\n  sqs:\n    wait_time_seconds: 99\n'), env: {} }),
  );
  assert.match(msg, /^config: ingest\.sqs\.wait_time_seconds: .*20.* \(from talon\.yaml\)$/);
});

test('unknown keys are errors, from the file, the environment, and flags', async () => {
  const cwd = await folder('lake: x\ningest:\n  batch_event: 5\nlakee: y\n');
  const msg = await configError(loadConfig({ cwd, env: { TALON_ENRICH__CITY: 'a' } }));
  const lines = msg.split('\n').sort();
  assert.deepEqual(lines, [
    'config: enrich.city: unknown setting (from TALON_ENRICH__CITY)',
    'config: ingest.batch_event: unknown setting (from talon.yaml)',
    'config: lakee: unknown setting (from talon.yaml)',
  ]);
  assert.match(
    await configError(loadConfig({ cwd: await folder(), env: {}, overrides: { 'ingest.nope': 1 } })),
    /^config: ingest\.nope: unknown setting \(from command line\)$/,
  );
});

test('invalid YAML and a non-mapping file give one clear error', async () => {
  assert.match(
    await configError(loadConfig({ cwd: await folder('lake: [unclosed\n'), env: {} })),
    /^config: talon\.yaml: invalid YAML at line \d+, column \d+/,
  );
  assert.match(
    await configError(loadConfig({ cwd: await folder('- a\n- b\n'), env: {} })),
    /^config: talon\.yaml: expected a mapping/,
  );
  // An empty file is no settings, not an error.
  assert.equal((await loadConfig({ cwd: await folder(''), env: {} })).lake, './talon-lake');
});

test('a relative --config path is resolved against cwd', async () => {
  const cwd = await folder();
  await mkdir(path.join(cwd, 'etc'));
  await writeFile(path.join(cwd, 'etc', 'talon.yaml'), 'lake: /srv/lake\n');
  assert.equal((await loadConfig({ cwd, env: {}, configPath: 'etc/talon.yaml' })).lake, '/srv/lake');
});

test('ingest.watch read retries come from the file or the environment into the watch source', async () => {
  const { watchOptionsFromConfig } = await import('../sources/watch.js');
  const defaults = await loadConfig({ cwd: await folder(), env: {} });
  assert.equal(defaults.ingest.watch.read_attempts, 5);
  assert.equal(defaults.ingest.watch.read_retry_ms, 1000);
  const cfg = await loadConfig({
    cwd: await folder('ingest:\n  watch:\n    read_retry_ms: 250\n'),
    env: { TALON_INGEST__WATCH__READ_ATTEMPTS: '2' },
  });
  const opts = watchOptionsFromConfig(cfg.ingest.watch, { paths: ['/data'] });
  assert.equal(opts.readAttempts, 2);
  assert.equal(opts.readRetryMs, 250);
  assert.match(
    await configError(
      loadConfig({ cwd: await folder('ingest:\n  watch:\n    read_attempts: 0\n'), env: {} }),
    ),
    /read_attempts/,
  );
});
