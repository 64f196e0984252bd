const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Parses durations written `30s`, `15m`, `1h`, `7d` (and `250ms`) into milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d{1,9})(ms|s|m|h|d)$/.exec(text.trim());
  if (!match) {
    throw new Error('expected a duration such as 30s, 15m, 1h or 7d');
  }
  return Number(match[1]) * UNIT_MS[match[2]];
}

/** Writes milliseconds back in the largest unit that divides them exactly. */
export function formatDuration(milliseconds: number): string {
  for (const unit of ['d', 'h', 'm', 's']) {
    if (milliseconds > 0 && milliseconds % UNIT_MS[unit] === 0) {
      return `${milliseconds / UNIT_MS[unit]}${unit}`;
    }
  }
  return `${milliseconds}ms`;
}
