/** Syslog RFC 5424 over UDP and TCP (octet counting), JSON and CEF bodies, CEF escaping. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { makeAlert } from '../test-support.js';
import { alertMessage } from '../message.js';
import { SyslogDestination, cefMessage } from './syslog.js';

const RFC5424 = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (\[.*?[^\\]\]) (.*)$/s;

/** Splits a CEF line into its 7 header fields and the extension, honouring `\|` escapes. */
function parseCef(line: string): { header: string[]; ext: Record<string, string> } {
  const header: string[] = [];
  let cur = '';
  let i = 0;
  for (; i < line.length && header.length < 7; i++) {
    const c = line[i];
    if (c === '\\' && (line[i + 1] === '|' || line[i + 1] === '\\')) cur += line[++i];
    else if (c === '|') {
      header.push(cur);
      cur = '';
    } else cur += c;
  }
  const extText = line.slice(i);
  const ext: Record<string, string> = {};
  // keys are unescaped words followed by '='; values run until the next ' key='
  const re = /(?:^| )([A-Za-z0-9_]+)=((?:\\.|[^\\])*?)(?= [A-Za-z0-9_]+=|$)/g;
  for (const m of extText.matchAll(re)) {
    ext[m[1]] = m[2].replace(/\\n/g, '\n').replace(/\\r/g, '\r').replace(/\\(.)/g, '$1');
  }
  return { header, ext };
}

const hostile = makeAlert(7, {
  severity: 'critical',
  detection: 'ioc|match',
  title: 'Pipe | in title \\ backslash',
  description: 'a=b c=d | x\nsecond line',
  user: 'evil=user',
});

test('CEF escaping: | and \\ in header fields, = \\ and line breaks in extension values', () => {
  const line = cefMessage(alertMessage(hostile), '0.1.0');
  assert.ok(line.startsWith('CEF:0|Talon|Talon|0.1.0|ioc\\|match|'));
  const { header, ext } = parseCef(line);
  assert.equal(header.length, 7);
  assert.equal(header[4], 'ioc|match');
  assert.ok(header[5].includes('Pipe | in title \\ backslash'));
  assert.equal(header[6], '10');
  assert.equal(ext.msg, 'a=b c=d | x\nsecond line');
  assert.equal(ext.duser, 'evil=user');
  assert.equal(ext.externalId, hostile.alert_id);
  assert.ok(!/[\r\n]/.test(line), 'one line');
});

test('syslog over UDP: an RFC 5424 datagram with PRI, structured data and a JSON body', async () => {
  const sock = dgram.createSocket('udp4');
  const got: string[] = [];
  sock.on('message', (m) => got.push(m.toString('utf8')));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  try {
    const port = (sock.address() as AddressInfo).port;
    const d = new SyslogDestination({
      name: 's',
      host: '127.0.0.1',
      port,
      protocol: 'udp',
      format: 'json',
      facility: 16,
      appName: 'talon',
    });
    const res = await d.send([
      alertMessage(makeAlert(1, { severity: 'high' })),
      alertMessage(makeAlert(2, { severity: 'info' })),
    ]);
    assert.ok(res.every((r) => r.ok));
    for (let i = 0; i < 100 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(got.length, 2);
    const m = RFC5424.exec(got[0])!;
    assert.ok(m, got[0]);
    assert.equal(Number(m[1]), 16 * 8 + 3, 'local0.err for high');
    assert.ok(!Number.isNaN(Date.parse(m[2])));
    assert.equal(m[4], 'talon');
    assert.equal(m[6], 'vulnerable_service');
    assert.match(
      m[7],
      /^\[talon@32473 alert_id="alert-00001" detection="vulnerable_service" severity="high"\]$/,
    );
    assert.equal(JSON.parse(m[8]).alert_id, 'alert-00001');
    assert.equal(Number(RFC5424.exec(got[1])![1]), 16 * 8 + 6, 'local0.info');
  } finally {
    sock.close();
  }
});

test('syslog over TCP: octet-counted frames with CEF bodies', async () => {
  let data = '';
  const server = net.createServer((c) => c.on('data', (d) => (data += d.toString('utf8'))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as AddressInfo).port;
    const d = new SyslogDestination({
      name: 's',
      host: '127.0.0.1',
      port,
      protocol: 'tcp',
      format: 'cef',
      facility: 4,
      appName: 'talon',
    });
    const res = await d.send([alertMessage(hostile), alertMessage(makeAlert(2))]);
    assert.ok(
      res.every((r) => r.ok),
      JSON.stringify(res),
    );
    for (let i = 0; i < 100 && !data.includes('alert-00002'); i++)
      await new Promise((r) => setTimeout(r, 20));
    // RFC 6587 octet counting: "<len> <msg>" repeated.
    const frames: string[] = [];
    let rest = Buffer.from(data);
    while (rest.length > 0) {
      const sp = rest.indexOf(0x20);
      const len = Number(rest.subarray(0, sp).toString());
      frames.push(rest.subarray(sp + 1, sp + 1 + len).toString('utf8'));
      rest = rest.subarray(sp + 1 + len);
    }
    assert.equal(frames.length, 2);
    const m = RFC5424.exec(frames[0])!;
    assert.ok(m, frames[0]);
    assert.equal(Number(m[1]), 4 * 8 + 2, 'auth.crit for critical');
    assert.equal(m[6], 'ioc|match');
    const { header, ext } = parseCef(m[8]);
    assert.equal(header[4], 'ioc|match');
    assert.equal(ext.msg, 'a=b c=d | x\nsecond line');
    assert.equal(parseCef(RFC5424.exec(frames[1])![8]).ext.externalId, 'alert-00002');
  } finally {
    server.close();
  }
});

test('syslog over TCP: a refused connection is a retryable failure', async () => {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  const d = new SyslogDestination({
    name: 's',
    host: '127.0.0.1',
    port,
    protocol: 'tcp',
    format: 'json',
    facility: 16,
    appName: 'talon',
  });
  const [r] = await d.send([alertMessage(makeAlert(1))]);
  assert.equal(r.ok, false);
  assert.equal(r.retryable, true);
});

test('syslog over TLS: verified against the configured CA; an untrusted certificate is refused', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'talon-syslog-tls-'));
  try {
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    // openssl is a system dependency of the suite (scripts/system-deps.sh).
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
      ],
      { stdio: 'ignore' },
    );
    const pem = await readFile(cert, 'utf8');
    let data = '';
    const server = tls.createServer({ key: await readFile(key), cert: pem }, (c) =>
      c.on('data', (d) => (data += d.toString('utf8'))),
    );
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const opts = {
        name: 's',
        host: '127.0.0.1',
        port,
        protocol: 'tls' as const,
        format: 'json' as const,
        facility: 16,
        appName: 'talon',
      };
      const [ok] = await new SyslogDestination({ ...opts, ca: pem }).send([alertMessage(makeAlert(1))]);
      assert.equal(ok.ok, true, ok.error);
      for (let i = 0; i < 100 && !data.includes('alert-00001'); i++)
        await new Promise((r) => setTimeout(r, 20));
      const sp = data.indexOf(' ');
      assert.equal(Number(data.slice(0, sp)), Buffer.byteLength(data.slice(sp + 1)));
      assert.ok(RFC5424.test(data.slice(sp + 1)));
      const [refused] = await new SyslogDestination(opts).send([alertMessage(makeAlert(2))]);
      assert.equal(refused.ok, false, 'self-signed certificate without the CA configured');
      assert.ok(!data.includes('alert-00002'));
    } finally {
      server.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
