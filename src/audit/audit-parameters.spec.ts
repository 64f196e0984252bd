import { GatehouseError } from '../common/gatehouse.error';
import {
  parseAttemptExportQuery,
  parseAttemptListQuery,
  parseInstant,
  parseSummaryWindow,
  refuseQueryParameters,
} from './audit-parameters';

const NOW = new Date('2026-12-04T12:00:00.000Z');
const FINGERPRINT = 'ab'.repeat(32);

function list(query: string) {
  return parseAttemptListQuery(`/audit/attempts?${query}`, NOW);
}

function refusal(run: () => unknown): GatehouseError {
  try {
    run();
  } catch (error) {
    if (error instanceof GatehouseError) {
      return error;
    }
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('parseAttemptListQuery', () => {
  it('applies the defaults: newest first, 100 rows, no filters', () => {
    const query = parseAttemptListQuery('/audit/attempts', NOW);

    expect(query).toMatchObject({ filters: {}, limit: 100, sort: 'desc', cursor: undefined });
  });

  it('normalises every filter', () => {
    const query = list(
      [
        'username=%20%EF%BC%A1lice%09',
        'ip=%3A%3Affff%3A10.0.0.1',
        'outcome=bad_password,locked',
        'method=password',
        `fingerprint=${FINGERPRINT.toUpperCase()}`,
        'since=15m',
        'until=2026-12-04T11:59:00Z',
        'limit=1000',
        'sort=occurred_at',
      ].join('&'),
    );

    expect(query.filters).toEqual({
      username: 'alice',
      ip: '10.0.0.1',
      outcomes: ['bad_password', 'locked'],
      method: 'password',
      fingerprint: FINGERPRINT,
      since: new Date('2026-12-04T11:45:00.000Z'),
      until: new Date('2026-12-04T11:59:00.000Z'),
    });
    expect(query.limit).toBe(1000);
    expect(query.sort).toBe('asc');
  });

  it.each([
    ['colon hex', FINGERPRINT.match(/../g)!.join(':')],
    ['base64url', Buffer.from(FINGERPRINT, 'hex').toString('base64url')],
  ])('accepts a fingerprint written as %s', (_form, written) => {
    expect(list(`fingerprint=${encodeURIComponent(written)}`).filters.fingerprint).toBe(
      FINGERPRINT,
    );
  });

  it('accepts a CIDR range and keeps its prefix', () => {
    expect(list('ip=10.1.2.3%2F8').filters.ip).toBe('10.1.2.3/8');
    expect(list('ip=2001%3Adb8%3A%3A%2F32').filters.ip).toBe('2001:db8::/32');
  });

  it.each([
    ['an unknown parameter', 'usename=alice'],
    ['a bracketed array parameter', 'username[]=x'],
    ['a repeated parameter', 'username=a&username=b'],
    ['an empty value', 'username='],
    ['an oversized value', `username=${'a'.repeat(5000)}`],
    ['a control character in a username', 'username=al%00ice'],
    ['an unknown outcome', 'outcome=pwned'],
    ['an outcome list with an unknown entry', 'outcome=locked,pwned'],
    ['SQL in the outcome', "outcome=' OR 1=1 --"],
    ['an unknown method', 'method=magic'],
    ['a short fingerprint', 'fingerprint=abcd'],
    ['an address with a zone', 'ip=fe80%3A%3A1%25eth0'],
    ['an address with a port', 'ip=10.0.0.1%3A80'],
    ['SQL in the address', "ip=10.0.0.1' OR 1=1 --"],
    ['two ranges', 'ip=10.0.0.0%2F8,11.0.0.0%2F8'],
    ['a prefix too long', 'ip=10.0.0.0%2F33'],
    ['a date that does not exist', 'since=2026-02-30'],
    ['a year before 1970', 'since=0000-01-01T00:00:00Z'],
    ['a duration beyond the calendar', 'since=999999999d'],
    ['a timestamp without a zone', 'since=2026-12-04T10:00:00'],
    ['since after until', 'since=1m&until=2m'],
    ['a limit of 0', 'limit=0'],
    ['a limit above 1000', 'limit=1001'],
    ['a negative limit', 'limit=-1'],
    ['a fractional limit', 'limit=1.5'],
    ['an injected sort', 'sort=occurred_at%3B%20DROP%20TABLE%20login_attempts'],
    ['a sort on another column', 'sort=username'],
    ['a sort with a space', 'sort=%20occurred_at'],
  ])('refuses %s with 400 invalid_request', (_case, query) => {
    const error = refusal(() => list(query));

    expect(error.code).toBe('invalid_request');
    expect(error.status).toBe(400);
    expect(error.options.publicDetail).toEqual(expect.any(String));
  });

  it('scopes a cursor by filters and sort, not by limit or cursor', () => {
    const first = list('username=alice&limit=10');
    const next = list('limit=50&username=alice&cursor=abc');

    expect(next.scope).toBe(first.scope);
    expect(list('username=bob').scope).not.toBe(first.scope);
    expect(list('username=alice&sort=occurred_at').scope).not.toBe(first.scope);
  });
});

describe('parseInstant', () => {
  it('reads ISO 8601 timestamps with offsets and fractions', () => {
    expect(parseInstant('since', '2026-12-04T13:00:00.250+01:00', NOW)).toEqual(
      new Date('2026-12-04T12:00:00.250Z'),
    );
    expect(parseInstant('since', '2026-12-04', NOW)).toEqual(new Date('2026-12-04T00:00:00Z'));
  });

  it('reads a duration as that long before now', () => {
    expect(parseInstant('until', '90s', NOW)).toEqual(new Date('2026-12-04T11:58:30.000Z'));
  });
});

describe('parseAttemptExportQuery', () => {
  it('takes the filters and a format, ndjson by default', () => {
    expect(parseAttemptExportQuery('/audit/export?method=certificate', NOW)).toMatchObject({
      filters: { method: 'certificate' },
      format: 'ndjson',
      sort: 'desc',
    });
    expect(parseAttemptExportQuery('/audit/export?format=csv', NOW).format).toBe('csv');
  });

  it.each(['format=xlsx', 'limit=10', 'cursor=abc'])('refuses %s', (query) => {
    expect(refusal(() => parseAttemptExportQuery(`/audit/export?${query}`, NOW)).code).toBe(
      'invalid_request',
    );
  });
});

describe('parseSummaryWindow', () => {
  it('defaults to 15 minutes and accepts up to 30 days', () => {
    expect(parseSummaryWindow('/audit/summary')).toBe(15 * 60_000);
    expect(parseSummaryWindow('/audit/summary?window=30d')).toBe(30 * 86_400_000);
  });

  it.each(['window=31d', 'window=0s', 'window=15', 'window=15m&window=1h', 'since=1h'])(
    'refuses %s',
    (query) => {
      expect(refusal(() => parseSummaryWindow(`/audit/summary?${query}`)).status).toBe(400);
    },
  );
});

describe('refuseQueryParameters', () => {
  it('refuses any parameter on a route that takes none', () => {
    expect(() => refuseQueryParameters('/audit/attempts/x')).not.toThrow();
    expect(refusal(() => refuseQueryParameters('/audit/attempts/x?a=1')).code).toBe(
      'invalid_request',
    );
  });
});
