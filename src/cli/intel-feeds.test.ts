import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { openTempLake, appendEvents } from '../engine/test-support.js';
import { withLake } from './common.js';
import { registerIntelFeedCommands, runIntelLoad } from './intel-feeds.js';

/** Runs `talon intel …` in process (the commands as main.ts will register them), capturing stdout. */
async function talon(args: string[]): Promise<string> {
  const program = new Command().exitOverride().option('--config <file>');
  const intel = program.command('intel');
  // The feed-format `load`, as src/cli/intel.ts will dispatch to it.
  withLake(
    intel
      .command('load')
      .argument('<file>')
      .option('--format <f>')
      .option('--type <t>')
      .option('--dataset <d>'),
    (ctx, file: string) => runIntelLoad(ctx, file, String(ctx.opts.format)),
  );
  registerIntelFeedCommands(intel);
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string | Uint8Array) => (
    chunks.push(String(s)),
    true
  )) as typeof process.stdout.write;
  try {
    await program.parseAsync(['node', 'talon', 'intel', ...args]);
  } finally {
    process.stdout.write = write;
  }
  return chunks.join('');
}

test('cli: intel load (text), list --type --format json, retrohunt, pull without feeds', async () => {
  const t = await openTempLake('talon-cli-intel-');
  const lakeDir = path.join(t.dir, 'lake');
  try {
    await appendEvents(t.lake, 'NetworkConnectIP4', [
      {
        aid: 'A',
        id: 'e1',
        cid: 'c',
        aip: '192.0.2.1',
        RemoteAddressIP4: '203.0.113.77',
        timestamp: Date.now() - 86_400_000,
      },
    ]);
    const file = path.join(t.dir, 'list.txt');
    await writeFile(file, '# my list\n203.0.113[.]77\n300.1.1.1\nevil.example\n');
    const load = await talon(['load', file, '--format', 'text', '--type', 'auto', '--lake', lakeDir]);
    assert.match(load, /2 IoC\(s\) stored \(IPv4 1, hostname 1\); 1 rejected \(IP: malformed address: 1\)/);
    const listed = JSON.parse(
      await talon(['list', '--type', 'IPv4', '--format', 'json', '--lake', lakeDir]),
    ) as { ioc: string }[];
    assert.deepEqual(
      listed.map((r) => r.ioc),
      ['203.0.113.77'],
    );
    const hunt = await talon(['retrohunt', '--lake', lakeDir]);
    assert.match(hunt, /2 new IoC\(s\).*1 new retro alert/);
    const again = await talon(['retrohunt', '--lake', lakeDir]);
    assert.match(again, /0 new retro alert/);
    assert.match(await talon(['pull', '--lake', lakeDir]), /no feeds configured/);
  } finally {
    await t.cleanup();
  }
});
