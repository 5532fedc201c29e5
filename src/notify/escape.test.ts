import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cefHeader, cefValue, htmlText, sdValue, slackCode, slackText, teamsText } from './escape.js';

test('Slack mrkdwn: entities for & < >, so mentions and disguised links stay text; formatting broken up', () => {
  assert.equal(slackText('<!channel> hi'), '&lt;!channel&gt; hi');
  assert.equal(slackText('<@U024BE7LH>'), '&lt;@U024BE7LH&gt;');
  assert.equal(slackText('<http://evil|click>'), '&lt;http://evil|click&gt;');
  assert.equal(slackText('a & b'), 'a &amp; b');
  assert.equal(
    slackText('&lt;!here&gt;'),
    '&amp;lt;!here&amp;gt;',
    'pre-escaped input cannot smuggle markup',
  );
  assert.ok(!/(^|[^\u200b])\*bold\*/.test(slackText('*bold*')));
  assert.ok(!slackText('`code`').includes('`code`'));
  assert.ok(!/@channel\b/.test(slackText('@channel')), 'plain @channel is broken up too');
  assert.equal(slackCode('a`b<c>'), 'aˋb&lt;c&gt;');
});

test('HTML: & < > " \' escaped', () => {
  assert.equal(
    htmlText(`<script>alert("x")</script> & 'y'`),
    '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;',
  );
});

test('Teams: markdown punctuation backslash-escaped, HTML as entities', () => {
  assert.equal(teamsText('[click](http://evil)'), '\\[click\\]\\(http://evil\\)');
  assert.equal(teamsText('**b** <i>'), '\\*\\*b\\*\\* &lt;i&gt;');
});

test('CEF: header escapes | and \\; extension escapes = and \\ and line breaks', () => {
  assert.equal(cefHeader('a|b\\c'), 'a\\|b\\\\c');
  assert.equal(cefValue('k=v\\x\r\ny|z'), 'k\\=v\\\\x\\r\\ny|z');
});

test('RFC 5424 SD-PARAM values: " \\ ] escaped', () => {
  assert.equal(sdValue('a"b\\c]d'), 'a\\"b\\\\c\\]d');
});
