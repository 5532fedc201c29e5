// The data commands, run as a user runs them: the built CLI in a child process, over a lake
// whose tables were written through the library API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lake } from '../lake/lake.js';
import { startFauxqs } from '../testing/fauxqs.js';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.js');

let root: string;
let lakeDir: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function talon(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; stdin?: string; cwd?: string } = {},
): Promise<Run> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TALON_LOG: 'warn',
      ...opts.env,
    };
    const child = execFile(
      process.execPath,
      [MAIN, ...args],
      { cwd: opts.cwd ?? root, env, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.end(opts.stdin ?? '');
  });
}

/** Runs with `--lake <the test lake>`. */
function onLake(args: string[], opts?: Parameters<typeof talon>[1]): Promise<Run> {
  return talon([...args, '--lake', lakeDir], opts);
}

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'talon-cli-data-'));
  lakeDir = path.join(root, 'lake');
  const lake = await Lake.open(lakeDir);
  try {
    const logons = await lake.createTable('UserLogon', { partitionColumns: ['event_date'] });
    for (let batch = 0; batch < 3; batch++) {
      await logons.append(
        `SELECT (${batch} * 10 + range)::BIGINT AS id,
                'user' || (${batch} * 10 + range) AS UserName,
                DATE '2026-01-01' + ${batch} AS event_date,
                TIMESTAMP '2026-01-01 10:00:00' + INTERVAL (range) MINUTE AS ts,
                18446744073709551615::UBIGINT AS ContextProcessId
         FROM range(10)`,
      );
    }
    const dns = await lake.createTable('DnsRequest', {});
    await dns.append(`SELECT 'example.com' AS DomainName, 1 AS n`);
    const listens = await lake.createTable('NetworkListenIP4', {});
    for (let i = 0; i < 4; i++) {
      await listens.append(`SELECT ${i} AS LocalPort, 'host${i}' AS aid`);
    }
  } finally {
    lake.close();
  }
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('--help works on every data command, --version prints the package version', async () => {
  for (const args of [[], ['query'], ['table']]) {
    const r = await talon([...args, '--help']);
    assert.equal(r.code, 0, `${args.join(' ')} --help: ${r.stderr}`);
    assert.match(r.stdout, /^Usage: talon/, args.join(' '));
  }
  const v = await talon(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout.trim(), /^\d+\.\d+\.\d+/);
  const vacuumHelp = await talon(['table', 'vacuum', '--help']);
  assert.match(vacuumHelp.stdout, /--lake <dir>/);
  assert.match(vacuumHelp.stdout, /--retention-hours <h>/);
  assert.match(vacuumHelp.stdout, /--force/);
  assert.match(vacuumHelp.stdout, /--format <format>/);
});

test('usage errors exit with code 2', async () => {
  const badFormat = await onLake(['tables', '--format', 'xml']);
  assert.equal(badFormat.code, 2);
  assert.match(badFormat.stderr, /argument 'xml' is invalid/);
  assert.equal((await onLake(['query'])).code, 2);
  assert.equal((await onLake(['tables', '--bogus'])).code, 2);
  assert.equal((await talon(['no-such-command'])).code, 2);
});

test('talon tables lists name, version, rows, files, bytes', async () => {
  const r = await onLake(['tables', '--format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as {
    name: string;
    version: number;
    rows: number;
    files: number;
    bytes: number;
  }[];
  assert.deepEqual(
    rows.map((t) => [t.name, t.version, t.rows, t.files]),
    [
      ['DnsRequest', 1, 1, 1],
      ['NetworkListenIP4', 4, 4, 4],
      ['UserLogon', 3, 30, 3],
    ],
  );
  assert.ok(rows.every((t) => t.bytes > 0));

  const text = await onLake(['tables']);
  assert.equal(text.code, 0, text.stderr);
  const lines = text.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^name\s+version\s+rows\s+files\s+bytes$/);
  assert.match(lines[4], /^UserLogon\s+3\s+30\s+3\s+\d+$/);
});

test('talon query --format json prints only a JSON array; names are case-insensitive; big ints exact', async () => {
  const r = await onLake([
    'query',
    'SELECT id, UserName, ts, ContextProcessId, event_date FROM USERLOGON WHERE id IN (0, 21) ORDER BY id',
    '--format',
    'json',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Record<string, unknown>[];
  assert.deepEqual(
    rows.map((x) => [x.id, x.UserName, x.ContextProcessId, x.event_date]),
    [
      ['0', 'user0', '18446744073709551615', '2026-01-01'],
      ['21', 'user21', '18446744073709551615', '2026-01-03'],
    ],
  );
  assert.match(String(rows[1].ts), /^2026-01-01 10:01:00/);
  const empty = await onLake(['query', 'select * from dnsrequest where false', '--format', 'json']);
  assert.deepEqual(JSON.parse(empty.stdout), []);
});

test('talon query --format csv and table', async () => {
  const csv = await onLake(['query', 'SELECT DomainName, n, NULL AS x FROM DnsRequest', '--format', 'csv']);
  assert.equal(csv.code, 0, csv.stderr);
  assert.equal(csv.stdout, 'DomainName,n,x\r\nexample.com,1,\r\n');
  const table = await onLake(['query', "SELECT count(*) AS logons, 'a,b' AS s FROM userlogon"]);
  assert.equal(table.code, 0, table.stderr);
  assert.deepEqual(table.stdout.split('\n'), ['logons  s', '------  ---', '    30  a,b', '(1 row)', '']);
});

test('talon query - reads the SQL from stdin', async () => {
  const r = await onLake(['query', '-', '--format', 'json'], {
    stdin: 'SELECT max(LocalPort) AS m FROM networklistenip4\n',
  });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), [{ m: 3 }]);
});

test('talon query refuses writes and file access outside the lake, touching nothing', async () => {
  const before = await readdir(lakeDir, { recursive: true });
  const cases: [string, RegExp][] = [
    [
      `COPY userlogon TO '${path.join(lakeDir, 'stolen.csv')}'`,
      /only read-only SELECT statements are allowed \(got COPY\)/,
    ],
    [`SELECT * FROM read_csv('/etc/passwd')`, /file access outside the lake is not allowed/],
    [`SELECT * FROM read_text('/etc/passwd')`, /file access outside the lake is not allowed/],
    [`ATTACH '${path.join(root, 'x.duckdb')}' AS x`, /\(got ATTACH\)/],
    ['INSTALL httpfs', /\(got INSTALL\)/],
    ['CREATE TABLE t AS SELECT 1', /\(got CREATE\)/],
    [`SELECT 1; COPY userlogon TO '${path.join(root, 'x.csv')}'`, /exactly one statement is allowed/],
  ];
  const runs = await Promise.all(cases.map(([sql]) => onLake(['query', sql, '--format', 'json'])));
  cases.forEach(([sql, message], i) => {
    const r = runs[i];
    assert.equal(r.code, 1, sql);
    assert.equal(r.stdout, '', sql);
    assert.match(r.stderr, /^talon: query refused: /, sql);
    assert.match(r.stderr, message, sql);
  });
  assert.deepEqual(await readdir(lakeDir, { recursive: true }), before);
  assert.equal(existsSync(path.join(root, 'x.csv')), false);
});

test('the lake comes from --lake, else TALON_LAKE, else the config file; a missing lake is an error', async () => {
  const sql = ['query', 'SELECT count(*)::INTEGER AS n FROM dnsrequest', '--format', 'json'];
  const viaEnv = await talon(sql, { env: { TALON_LAKE: lakeDir } });
  assert.equal(viaEnv.code, 0, viaEnv.stderr);
  assert.deepEqual(JSON.parse(viaEnv.stdout), [{ n: 1 }]);

  const cfgDir = await mkdtemp(path.join(root, 'cfg-'));
  await writeFile(path.join(cfgDir, 'talon.yaml'), 'lake: ${LAKE_HOME}\n');
  const viaFile = await talon(sql, { cwd: cfgDir, env: { LAKE_HOME: lakeDir } });
  assert.equal(viaFile.code, 0, viaFile.stderr);
  const viaFlagConfig = await talon(['--config', path.join(cfgDir, 'talon.yaml'), ...sql], {
    env: { LAKE_HOME: lakeDir },
  });
  assert.equal(viaFlagConfig.code, 0, viaFlagConfig.stderr);

  const missing = path.join(root, 'no-such-lake');
  const flagWins = await talon([...sql, '--lake', missing], { env: { TALON_LAKE: lakeDir } });
  assert.equal(flagWins.code, 1);
  assert.match(flagWins.stderr, /^talon: no lake at .*no-such-lake/);
  assert.equal(existsSync(missing), false);
});

test('an invalid configuration exits with code 2 and names the key and its source', async () => {
  const r = await onLake(['tables'], { env: { TALON_INGEST__MAX_LINE_BYTES: 'big' } });
  assert.equal(r.code, 2);
  assert.equal(
    r.stderr,
    'talon: config: ingest.max_line_bytes: expected number, received string (from TALON_INGEST__MAX_LINE_BYTES)\n',
  );
});

test('talon table history lists commits newest first; unknown tables are an error', async () => {
  const r = await onLake(['table', 'history', 'userlogon', '--format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const entries = JSON.parse(r.stdout) as { version: number; operation: string; timestamp: string }[];
  assert.deepEqual(
    entries.map((e) => [e.version, e.operation]),
    [
      [3, 'WRITE'],
      [2, 'WRITE'],
      [1, 'WRITE'],
      [0, 'CREATE TABLE'],
    ],
  );
  assert.ok(entries.every((e) => !Number.isNaN(Date.parse(e.timestamp))));
  const limited = await onLake(['table', 'history', 'UserLogon', '--limit', '1', '--format', 'json']);
  assert.deepEqual(
    (JSON.parse(limited.stdout) as { version: number }[]).map((e) => e.version),
    [3],
  );
  const missing = await onLake(['table', 'history', 'nope']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^talon: no table named "nope"/);
});

test('talon table optimize compacts files; vacuum --dry-run lists, vacuum deletes the old ones', async () => {
  const opt = await onLake(['table', 'optimize', 'NetworkListenIP4', '--format', 'json']);
  assert.equal(opt.code, 0, opt.stderr);
  const res = JSON.parse(opt.stdout) as { version: number; metrics: Record<string, number> };
  assert.equal(res.version, 5);
  assert.equal(res.metrics.numRemovedFiles, 4);
  assert.equal(res.metrics.numAddedFiles, 1);

  const after = JSON.parse((await onLake(['tables', '--format', 'json'])).stdout) as {
    name: string;
    rows: number;
    files: number;
  }[];
  const listens = after.find((t) => t.name === 'NetworkListenIP4');
  assert.deepEqual([listens?.rows, listens?.files], [4, 1]);
  const rows = await onLake([
    'query',
    'SELECT list(LocalPort ORDER BY LocalPort) AS p FROM networklistenip4',
    '--format',
    'json',
  ]);
  assert.deepEqual(JSON.parse(rows.stdout), [{ p: [0, 1, 2, 3] }]);

  // Within the default retention (168 h) the replaced files stay.
  const kept = await onLake(['table', 'vacuum', 'networklistenip4', '--dry-run']);
  assert.equal(kept.code, 0, kept.stderr);
  assert.match(kept.stdout, /would delete 0 files/);

  // A retention below 168 h is refused without --force (Delta's retentionDurationCheck).
  const unsafe = await onLake(['table', 'vacuum', 'networklistenip4', '--retention-hours', '0']);
  assert.notEqual(unsafe.code, 0);
  assert.match(unsafe.stderr, /refusing to vacuum with a retention of 0 h.*--force/);

  const dry = await onLake([
    'table',
    'vacuum',
    'networklistenip4',
    '--retention-hours',
    '0',
    '--force',
    '--dry-run',
    '--format',
    'json',
  ]);
  assert.equal(dry.code, 0, dry.stderr);
  const planned = JSON.parse(dry.stdout) as { dryRun: boolean; files: string[] };
  assert.equal(planned.dryRun, true);
  assert.equal(planned.files.length, 4);
  const tableDir = path.join(lakeDir, 'networklistenip4');
  const parquetCount = async () =>
    (await readdir(tableDir, { recursive: true })).filter((f) => f.endsWith('.parquet')).length;
  assert.equal(await parquetCount(), 5);

  const real = await onLake(['table', 'vacuum', 'networklistenip4', '--retention-hours', '0', '--force']);
  assert.equal(real.code, 0, real.stderr);
  assert.match(real.stdout, /deleted 4 files\n$/);
  assert.equal(await parquetCount(), 1);
  const still = await onLake([
    'query',
    'SELECT count(*)::INTEGER AS n FROM networklistenip4',
    '--format',
    'json',
  ]);
  assert.deepEqual(JSON.parse(still.stdout), [{ n: 4 }]);

  const bad = await onLake(['table', 'vacuum', 'networklistenip4', '--retention-hours', 'soon']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--retention-hours: expected a non-negative number/);
});

test('talon tables and query work on an s3:// lake, reading through its local cache, still locked down', async () => {
  const emu = await startFauxqs({ buckets: ['cli-lake'] });
  const awsEnv = {
    TALON_S3_ENDPOINT: emu.endpoint,
    AWS_ACCESS_KEY_ID: emu.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: emu.credentials.secretAccessKey,
    AWS_REGION: emu.region,
    TALON_S3_CACHE: await mkdtemp(path.join(root, 's3-cache-cli-')),
  };
  const saved = { ...process.env };
  Object.assign(process.env, awsEnv, { TALON_S3_CACHE: await mkdtemp(path.join(root, 's3-cache-writer-')) });
  try {
    const lake = await Lake.open('s3://cli-lake/fdr');
    try {
      const t = await lake.createTable('UserLogon', {});
      await t.append(`SELECT range AS id, 'user' || range AS UserName FROM range(3)`);
    } finally {
      lake.close();
    }
    const tables = await talon(['tables', '--lake', 's3://cli-lake/fdr', '--format', 'json'], {
      env: awsEnv,
    });
    assert.equal(tables.code, 0, tables.stderr);
    assert.deepEqual(
      (JSON.parse(tables.stdout) as { name: string; rows: number }[]).map((x) => [x.name, x.rows]),
      [['UserLogon', 3]],
    );
    const q = await talon(['query', 'SELECT max(UserName) AS m FROM userlogon', '--format', 'json'], {
      env: { ...awsEnv, TALON_LAKE: 's3://cli-lake/fdr' },
    });
    assert.equal(q.code, 0, q.stderr);
    assert.deepEqual(JSON.parse(q.stdout), [{ m: 'user2' }]);
    const blocked = await talon(['query', "SELECT * FROM read_csv('/etc/passwd')"], {
      env: { ...awsEnv, TALON_LAKE: 's3://cli-lake/fdr' },
    });
    assert.equal(blocked.code, 1);
    assert.match(blocked.stderr, /file access outside the lake is not allowed/);
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    await emu.stop();
  }
});

test('talon maintain compacts every table and reports per table; --no-optimize --no-vacuum does nothing', async () => {
  const dir = path.join(root, 'maintain-lake');
  const lake = await Lake.open(dir);
  try {
    const a = await lake.createTable('Alerts', {});
    for (let i = 0; i < 3; i++) await a.append(`SELECT ${i} AS n`);
    await (await lake.createTable('One', {})).append('SELECT 1 AS n');
  } finally {
    lake.close();
  }
  const idle = await talon(['maintain', '--lake', dir, '--no-optimize', '--no-vacuum', '--format', 'json']);
  assert.equal(idle.code, 0, idle.stderr);
  assert.deepEqual(
    (JSON.parse(idle.stdout) as { compactedFiles: number }[]).map((r) => r.compactedFiles),
    [0, 0],
  );
  const run = await talon(['maintain', '--lake', dir, '--format', 'json']);
  assert.equal(run.code, 0, run.stderr);
  const rows = JSON.parse(run.stdout) as { table: string; compactedFiles: number; compactedInto: number }[];
  assert.deepEqual(
    rows.map((r) => [r.table, r.compactedFiles, r.compactedInto]),
    [
      ['alerts', 3, 1],
      ['one', 0, 0],
    ],
  );
  const text = await talon(['maintain', '--lake', dir]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /alerts/);
});
