import { Readable } from 'node:stream';
import { stringify } from 'csv-stringify';
import { ATTEMPT_ITEM_FIELDS, AttemptItem } from './audit-query.service';

/**
 * Spreadsheets run a cell that starts with one of these as a formula (CSV injection); a leading
 * apostrophe makes it text. Tab and carriage return are in the list because some spreadsheets
 * skip them before looking for the formula sign.
 */
const FORMULA_START = /^[=+\-@\t\r\n]/;

export function neutralizeCsvCell(value: string): string {
  return FORMULA_START.test(value) ? `'${value}` : value;
}

function csvRecord(item: AttemptItem): Record<string, string> {
  const record: Record<string, string> = {};
  for (const field of ATTEMPT_ITEM_FIELDS) {
    const value = item[field];
    record[field] = value === null ? '' : neutralizeCsvCell(String(value));
  }
  return record;
}

async function* mapRows<T>(
  rows: AsyncIterable<AttemptItem>,
  map: (item: AttemptItem) => T,
): AsyncGenerator<T> {
  for await (const item of rows) {
    yield map(item);
  }
}

/** One JSON object per line; JSON escapes every control character, so a row stays one line. */
export function ndjsonStream(rows: AsyncIterable<AttemptItem>): Readable {
  return Readable.from(mapRows(rows, (item) => `${JSON.stringify(item)}\n`));
}

/**
 * RFC 4180 CSV with a header row: every non-empty cell quoted and escaped by csv-stringify,
 * formula starts neutralised first. Backpressure flows from the socket to the batch reader.
 */
export function csvStream(rows: AsyncIterable<AttemptItem>): Readable {
  const source = Readable.from(mapRows(rows, csvRecord));
  const stringifier = stringify({
    header: true,
    columns: [...ATTEMPT_ITEM_FIELDS],
    quoted: true,
    record_delimiter: 'windows',
  });
  source.on('error', (error) => stringifier.destroy(error));
  return source.pipe(stringifier);
}
