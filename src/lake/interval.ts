/** Delta table-property durations. */

/** Parses Delta's interval strings (`interval 1 weeks`, `7 days`, `168 hours`) into ms. */
export function parseInterval(text: string | undefined, fallbackMs: number): number {
  if (!text) return fallbackMs;
  const m = /^\s*(?:interval\s+)?(\d+)\s*(second|minute|hour|day|week)s?\s*$/i.exec(text);
  if (!m) return fallbackMs;
  const unit = { second: 1e3, minute: 6e4, hour: 3.6e6, day: 8.64e7, week: 6.048e8 }[
    m[2].toLowerCase() as 'day'
  ];
  return Number(m[1]) * unit;
}
