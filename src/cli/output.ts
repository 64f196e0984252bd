const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/gu;

/**
 * Makes text safe to show on one terminal line: control characters (which could move the cursor
 * or forge a second line) become `?`, and the length is bounded.
 */
export function printable(text: string, maxLength = 200): string {
  const characters = [...text.replace(CONTROL_CHARACTERS, '?')];
  return characters.length > maxLength
    ? `${characters.slice(0, maxLength).join('')}…`
    : characters.join('');
}

/** One line of results on stdout. */
export function writeLine(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** One line of diagnostics on stderr, prefixed like every other CLI message. */
export function writeNotice(message: string): void {
  process.stderr.write(`gatehouse: ${message}\n`);
}

/** Pretty-printed JSON on stdout, for `--json`. */
export function writeJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Left-aligned columns two spaces apart; every cell passes through `printable`. */
export function writeTable(headers: string[], rows: string[][]): void {
  const cells = [headers, ...rows].map((row) => row.map((cell) => printable(cell)));
  const widths = headers.map((_, column) =>
    Math.max(...cells.map((row) => [...(row[column] ?? '')].length)),
  );
  for (const row of cells) {
    const padded = row.map((cell, column) => cell + ' '.repeat(widths[column] - [...cell].length));
    writeLine(padded.join('  ').trimEnd());
  }
}
