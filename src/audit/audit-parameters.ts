import { GatehouseError } from '../common/gatehouse.error';
import { ATTEMPT_OUTCOMES, AttemptMethod, AttemptOutcome } from '../common/attempt-outcome';
import { parseDuration } from '../config/duration';
import { canonicalIp, parseAddressRanges } from '../mtls/client-ip';
import { normalizeFingerprint } from '../mtls/fingerprint';
import { normalizeUsername } from '../users/username';

/** Filters of the attempts list and the export, every value already normalised. */
export interface AttemptFilters {
  username?: string;
  /** A canonical address, or `address/prefix` for a CIDR range. */
  ip?: string;
  outcomes?: AttemptOutcome[];
  method?: AttemptMethod;
  fingerprint?: string;
  since?: Date;
  until?: Date;
}

export type SortDirection = 'desc' | 'asc';

export interface AttemptListQuery {
  filters: AttemptFilters;
  limit: number;
  sort: SortDirection;
  cursor?: string;
  /** The parameters that define the walk (all but `limit` and `cursor`), for the cursor MAC. */
  scope: string;
}

export interface AttemptExportQuery {
  filters: AttemptFilters;
  sort: SortDirection;
  format: 'ndjson' | 'csv';
}

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;
export const DEFAULT_SUMMARY_WINDOW_MS = 15 * 60_000;
export const MAX_SUMMARY_WINDOW_MS = 30 * 86_400_000;

/** Longer than any legitimate value (a username is capped at 256 bytes, a cursor far below). */
const MAX_VALUE_LENGTH = 1024;
const FILTER_PARAMETERS = ['username', 'ip', 'outcome', 'method', 'fingerprint', 'since', 'until'];
const LIST_PARAMETERS = [...FILTER_PARAMETERS, 'limit', 'cursor', 'sort'];
const EXPORT_PARAMETERS = [...FILTER_PARAMETERS, 'sort', 'format'];
const ISO_TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

function invalidParameter(name: string, reason: string): GatehouseError {
  return new GatehouseError('invalid_request', {
    detail: `audit query parameter ${name}: ${reason}`,
    publicDetail: `query parameter '${name}' ${reason}`,
  });
}

/**
 * Reads the query string of a request URL strictly: every parameter known to the route, none
 * repeated, none empty or oversized. Anything else is a 400, so a typo such as `usename=` or
 * a framework-style `username[]=` never silently widens a query.
 */
export function readQueryParameters(url: string, allowed: readonly string[]): Map<string, string> {
  const questionMark = url.indexOf('?');
  const query = questionMark === -1 ? '' : url.slice(questionMark + 1);
  const parameters = new Map<string, string>();
  for (const [name, value] of new URLSearchParams(query)) {
    const shownName = name.length > 40 || !/^[\x20-\x7e]*$/.test(name) ? '(unprintable)' : name;
    if (!allowed.includes(name)) {
      throw invalidParameter(shownName, 'is not supported here');
    }
    if (parameters.has(name)) {
      throw invalidParameter(name, 'is repeated');
    }
    if (value === '' || value.length > MAX_VALUE_LENGTH) {
      throw invalidParameter(name, 'is empty or too long');
    }
    parameters.set(name, value);
  }
  return parameters;
}

/** Postgres refuses year 0 and Date refuses far futures; nothing was recorded before 1970. */
function notBeforeEpoch(name: string, instant: Date): Date {
  if (!(instant.getTime() >= 0)) {
    throw invalidParameter(
      name,
      'is not an ISO 8601 timestamp after 1970 or a duration such as 15m',
    );
  }
  return instant;
}

/** An ISO 8601 timestamp (a date alone means its midnight UTC), or a duration before `now`. */
export function parseInstant(name: string, text: string, now: Date): Date {
  if (/^\d{1,9}(ms|s|m|h|d)$/.test(text)) {
    return notBeforeEpoch(name, new Date(now.getTime() - parseDuration(text)));
  }
  const match = ISO_TIMESTAMP.exec(text);
  if (!match) {
    throw invalidParameter(name, 'is not an ISO 8601 timestamp or a duration such as 15m');
  }
  const instant = notBeforeEpoch(name, new Date(text));
  // Date rolls 2026-02-30 over into March; a calendar date that does not exist is refused.
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const calendar = new Date(Date.UTC(year, month - 1, day));
  if (calendar.getUTCMonth() !== month - 1 || calendar.getUTCDate() !== day) {
    throw invalidParameter(name, 'is not a calendar date');
  }
  return instant;
}

function parseIp(text: string): string {
  if (!text.includes('/')) {
    const ip = canonicalIp(text);
    if (ip === null) {
      throw invalidParameter('ip', 'is not an IP address or CIDR range');
    }
    return ip;
  }
  try {
    const ranges = parseAddressRanges(text);
    if (ranges.length !== 1 || text.includes(',')) {
      throw new Error('one range only');
    }
    return `${ranges[0].address.toString()}/${ranges[0].prefixLength}`;
  } catch {
    throw invalidParameter('ip', 'is not an IP address or CIDR range');
  }
}

function parseOutcomes(text: string): AttemptOutcome[] {
  const outcomes = text.split(',');
  for (const outcome of outcomes) {
    if (!(ATTEMPT_OUTCOMES as readonly string[]).includes(outcome)) {
      throw invalidParameter('outcome', `must be one of ${ATTEMPT_OUTCOMES.join(', ')}`);
    }
  }
  return [...new Set(outcomes)] as AttemptOutcome[];
}

function parseUsername(text: string): string {
  try {
    return normalizeUsername(text);
  } catch {
    throw invalidParameter('username', 'is not a valid username');
  }
}

function parseFingerprint(text: string): string {
  try {
    return normalizeFingerprint(text);
  } catch {
    throw invalidParameter('fingerprint', 'is not a SHA-256 fingerprint');
  }
}

function parseMethod(text: string): AttemptMethod {
  if (text !== 'password' && text !== 'certificate') {
    throw invalidParameter('method', 'must be password or certificate');
  }
  return text;
}

/** The filters shared by the list and the export. */
export function parseFilters(parameters: Map<string, string>, now: Date): AttemptFilters {
  const filters: AttemptFilters = {};
  const value = (name: string) => parameters.get(name);
  const username = value('username');
  const ip = value('ip');
  const outcome = value('outcome');
  const method = value('method');
  const fingerprint = value('fingerprint');
  const since = value('since');
  const until = value('until');
  if (username !== undefined) filters.username = parseUsername(username);
  if (ip !== undefined) filters.ip = parseIp(ip);
  if (outcome !== undefined) filters.outcomes = parseOutcomes(outcome);
  if (method !== undefined) filters.method = parseMethod(method);
  if (fingerprint !== undefined) filters.fingerprint = parseFingerprint(fingerprint);
  if (since !== undefined) filters.since = parseInstant('since', since, now);
  if (until !== undefined) filters.until = parseInstant('until', until, now);
  if (filters.since && filters.until && filters.since >= filters.until) {
    throw invalidParameter('since', 'must be before until');
  }
  return filters;
}

function parseSort(text: string | undefined): SortDirection {
  if (text === undefined || text === '-occurred_at') {
    return 'desc';
  }
  if (text === 'occurred_at') {
    return 'asc';
  }
  throw invalidParameter('sort', 'must be occurred_at or -occurred_at');
}

function parseLimit(text: string | undefined): number {
  if (text === undefined) {
    return DEFAULT_PAGE_SIZE;
  }
  const limit = /^\d{1,4}$/.test(text) ? Number(text) : NaN;
  if (!(limit >= 1 && limit <= MAX_PAGE_SIZE)) {
    throw invalidParameter('limit', `must be an integer from 1 to ${MAX_PAGE_SIZE}`);
  }
  return limit;
}

/** The walk a cursor belongs to: the filters and sort as sent, in a fixed order. */
function scopeOf(parameters: Map<string, string>): string {
  const entries = [...parameters].filter(([name]) => name !== 'limit' && name !== 'cursor');
  return JSON.stringify(entries.sort(([left], [right]) => left.localeCompare(right)));
}

/** GET /audit/attempts. */
export function parseAttemptListQuery(url: string, now: Date): AttemptListQuery {
  const parameters = readQueryParameters(url, LIST_PARAMETERS);
  return {
    filters: parseFilters(parameters, now),
    limit: parseLimit(parameters.get('limit')),
    sort: parseSort(parameters.get('sort')),
    cursor: parameters.get('cursor'),
    scope: scopeOf(parameters),
  };
}

/** GET /audit/export. */
export function parseAttemptExportQuery(url: string, now: Date): AttemptExportQuery {
  const parameters = readQueryParameters(url, EXPORT_PARAMETERS);
  const format = parameters.get('format') ?? 'ndjson';
  if (format !== 'ndjson' && format !== 'csv') {
    throw invalidParameter('format', 'must be ndjson or csv');
  }
  return {
    filters: parseFilters(parameters, now),
    sort: parseSort(parameters.get('sort')),
    format,
  };
}

/** GET /audit/summary: the window in milliseconds, at most 30 days. */
export function parseSummaryWindow(url: string): number {
  const window = readQueryParameters(url, ['window']).get('window');
  if (window === undefined) {
    return DEFAULT_SUMMARY_WINDOW_MS;
  }
  let milliseconds = NaN;
  try {
    milliseconds = parseDuration(window);
  } catch {
    // Reported below with the accepted range.
  }
  if (!(milliseconds >= 1000 && milliseconds <= MAX_SUMMARY_WINDOW_MS)) {
    throw invalidParameter('window', 'must be a duration from 1s to 30d, such as 15m');
  }
  return milliseconds;
}

/** A route that takes no query parameters at all. */
export function refuseQueryParameters(url: string): void {
  readQueryParameters(url, []);
}

/** The filters as recorded in `admin_actions` and echoed nowhere else. */
export function describeFilters(filters: AttemptFilters): Record<string, unknown> {
  return {
    ...filters,
    since: filters.since?.toISOString(),
    until: filters.until?.toISOString(),
  };
}
