/** Email over SMTP, received by a real smtp-server on 127.0.0.1. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { makeAlert } from '../test-support.js';
import { alertMessage } from '../message.js';
import { EmailDestination } from './email.js';

interface Received {
  from: string;
  to: string[];
  user?: string;
  raw: string;
}

async function startSmtp(opts: { rejectRcpt?: { code: number; message: string } } = {}) {
  const mails: Received[] = [];
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authOptional: true,
    logger: false,
    onAuth(auth, _session, cb) {
      if (auth.username === 'talon' && auth.password === 'pw') cb(null, { user: 'talon' });
      else cb(new Error('Invalid username or password'));
    },
    onRcptTo(_addr, _session, cb) {
      if (opts.rejectRcpt) {
        const err = new Error(opts.rejectRcpt.message) as Error & { responseCode: number };
        err.responseCode = opts.rejectRcpt.code;
        return cb(err);
      }
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          user: session.user as string | undefined,
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        cb();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.server.address() as AddressInfo).port;
  return { mails, port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** The decoded bodies of the text/plain and text/html parts (quoted-printable or base64). */
function parts(raw: string): { text: string; html: string } {
  const out = { text: '', html: '' };
  for (const p of raw.split(/\r?\n--[^\r\n]+\r?\n/)) {
    const m = /Content-Type: text\/(plain|html)[^]*?\r?\n\r?\n([^]*)$/i.exec(p);
    if (!m) continue;
    let body = m[2].replace(/\r?\n--[^\r\n]*--\s*$/, '');
    if (/Content-Transfer-Encoding: base64/i.test(p)) body = Buffer.from(body, 'base64').toString('utf8');
    else if (/Content-Transfer-Encoding: quoted-printable/i.test(p))
      body = Buffer.from(
        body
          .replace(/=\r?\n/g, '')
          .replace(/=([0-9A-F]{2})/gi, (_x, h: string) => String.fromCharCode(parseInt(h, 16))),
        'latin1',
      ).toString('utf8');
    if (m[1].toLowerCase() === 'plain') out.text = body;
    else out.html = body;
  }
  return out;
}

const hostile = makeAlert(1, {
  host: 'ws-<b>01</b>',
  user: 'x" onmouseover="alert(1)',
  description: '<script>alert(document.cookie)</script> & <img src=x onerror=alert(1)>',
});

test('email: text and HTML parts, host values HTML-escaped, SMTP auth, reply recorded', async () => {
  const smtp = await startSmtp();
  try {
    const d = new EmailDestination({
      name: 'mail',
      host: '127.0.0.1',
      port: smtp.port,
      auth: { user: 'talon', pass: 'pw' },
      from: 'talon@example.org',
      to: ['soc@example.org', 'lead@example.org'],
    });
    const [r] = await d.send([alertMessage(hostile, 'https://talon.example')]);
    await d.close();
    assert.equal(r.ok, true, r.error);
    assert.match(String(r.reply), /^250/);
    assert.equal(smtp.mails.length, 1);
    const mail = smtp.mails[0];
    assert.equal(mail.user, 'talon');
    assert.equal(mail.from, 'talon@example.org');
    assert.deepEqual(mail.to, ['soc@example.org', 'lead@example.org']);
    // The subject is MIME-encoded (it has a non-ASCII dash): check its encoded start.
    assert.match(mail.raw, /^Subject: =\?UTF-8\?Q\?=5BTalon=5D_=5BHIGH=5D_Vulnerable/m);
    const { text, html } = parts(mail.raw);
    assert.ok(text.includes('<script>alert(document.cookie)</script>'), 'text part carries the raw value');
    assert.ok(text.includes('Host:       ws-<b>01</b>'));
    assert.ok(
      html.includes(
        '&lt;script&gt;alert(document.cookie)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;',
      ),
    );
    assert.ok(html.includes('ws-&lt;b&gt;01&lt;/b&gt;'));
    assert.ok(html.includes('x&quot; onmouseover=&quot;alert(1)'));
    assert.ok(!html.includes('<script>') && !html.includes('<img'));
    assert.ok(html.includes(`<a href="https://talon.example/alerts/${hostile.alert_id}">`));
  } finally {
    await smtp.close();
  }
});

test('email: SMTP 5xx fails at once, 4xx is retryable, require_tls refuses a server without STARTTLS', async () => {
  const perm = await startSmtp({ rejectRcpt: { code: 550, message: 'No such user' } });
  const temp = await startSmtp({ rejectRcpt: { code: 451, message: 'Try again later' } });
  const plain = await startSmtp();
  try {
    const mk = (port: number, requireTls = false) =>
      new EmailDestination({
        name: 'm',
        host: '127.0.0.1',
        port,
        from: 'a@example.org',
        to: 'b@example.org',
        requireTls,
      });
    const d1 = mk(perm.port);
    const [r1] = await d1.send([alertMessage(makeAlert(1))]);
    await d1.close();
    assert.equal(r1.ok, false);
    assert.equal(r1.retryable, false);
    assert.match(String(r1.reply), /550/);
    const d2 = mk(temp.port);
    const [r2] = await d2.send([alertMessage(makeAlert(1))]);
    await d2.close();
    assert.equal(r2.ok, false);
    assert.equal(r2.retryable, true);
    assert.match(String(r2.reply), /451/);
    const d3 = mk(plain.port, true);
    const [r3] = await d3.send([alertMessage(makeAlert(1))]);
    await d3.close();
    assert.equal(r3.ok, false);
    assert.equal(plain.mails.length, 0, 'nothing sent in clear text');
  } finally {
    await perm.close();
    await temp.close();
    await plain.close();
  }
});
