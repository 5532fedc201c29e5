/**
 * Escaping of attacker-controlled text for each channel. Command lines, domain names, user
 * and file names come from the monitored hosts: an attacker chooses them, so they must never
 * become markup, mentions or links in the analyst's channel.
 */

/**
 * Slack mrkdwn: Slack's documented escapes are `&`, `<`, `>` (→ `&amp;` `&lt;` `&gt;`);
 * that alone disarms `<!channel>`, `<@U123>` and `<http://evil|click>`, which only work as
 * raw `<…>`. Formatting characters (`*_~` and backticks) would still restyle text, so they are
 * separated from letters with a zero-width space; bare URLs are left (Slack unfurls them only
 * as plain text links, not disguised ones).
 */
export function slackText(s: unknown): string {
  return String(s ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/([*_~`])/g, '\u200b$1\u200b')
    .replace(/@(channel|here|everyone)\b/gi, '@\u200b$1');
}

/** Text inside a Slack code span: only the three entities matter, and backticks would end the span. */
export function slackCode(s: unknown): string {
  return String(s ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/`/g, 'ˋ');
}

/** HTML text and attribute values. */
export function htmlText(s: unknown): string {
  return String(s ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/**
 * Adaptive Card TextBlock text (Teams): a Markdown subset. Markdown punctuation is
 * backslash-escaped so `[click](http://evil)` or `**` stay literal, and `<`/`>`/`&` become
 * entities because Teams also interprets some HTML.
 */
export function teamsText(s: unknown): string {
  return String(s ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/([\\`*_{}[\]()#+\-.!|~])/g, '\\$1');
}

/** CEF header fields: `\` and `|` are escaped with a backslash (ArcSight CEF spec). */
export function cefHeader(s: unknown): string {
  return String(s ?? '')
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/[\r\n]+/g, ' ');
}

/** CEF extension values: `\` and `=` escaped, line breaks as `\n` / `\r` (ArcSight CEF spec). */
export function cefValue(s: unknown): string {
  return String(s ?? '')
    .replace(/\\/g, '\\\\')
    .replace(/=/g, '\\=')
    .replace(/\r/g, '\\r')
    .replace(/\n/g, '\\n');
}

/** RFC 5424 SD-PARAM value: `"`, `\` and `]` must be escaped with a backslash. */
export function sdValue(s: unknown): string {
  return String(s ?? '').replace(/(["\\\]])/g, '\\$1');
}

/** Text cut to at most `max` characters (with an ellipsis). */
export function truncate(s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, Math.max(0, max - 1)) + '…';
}
