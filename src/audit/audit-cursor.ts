import { createHmac, timingSafeEqual } from 'node:crypto';

/** Where a walk through `login_attempts` stands, and the range it was fixed to on page one. */
export interface AttemptCursor {
  /** Rows at or after this instant are outside the walk (the settled bound of page one). */
  bound: string;
  /** The last row returned: the next page starts strictly beyond it. */
  occurredAt: string;
  id: string;
  /** The time range resolved on page one, so a relative `since=15m` does not drift. */
  since: string | null;
  until: string | null;
}

/** A cursor that was not issued for this query, or was altered. Answered 400. */
export class InvalidCursorError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'InvalidCursorError';
  }
}

/** Postgres timestamps with microseconds, as the audit API writes them. */
export const PRECISE_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const MAX_CURSOR_LENGTH = 600;
const MAC_BYTES = 16;

interface CursorBody {
  bound: string;
  occurred_at: string;
  id: string;
  since: string | null;
  until: string | null;
  mac: string;
}

function isTimestampOrNull(value: unknown): value is string | null {
  return value === null || (typeof value === 'string' && PRECISE_TIMESTAMP.test(value));
}

function isCursorBody(value: unknown): value is CursorBody {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return false;
  }
  const body = value as Record<string, unknown>;
  return (
    Object.keys(body).length === 6 &&
    typeof body.bound === 'string' &&
    PRECISE_TIMESTAMP.test(body.bound) &&
    typeof body.occurred_at === 'string' &&
    PRECISE_TIMESTAMP.test(body.occurred_at) &&
    typeof body.id === 'string' &&
    UUID.test(body.id) &&
    isTimestampOrNull(body.since) &&
    isTimestampOrNull(body.until) &&
    typeof body.mac === 'string'
  );
}

/**
 * Opaque paging cursors: base64url of JSON `{bound, occurred_at, id, since, until, mac}`. The
 * MAC, keyed by a secret every replica shares, covers the position and the query it belongs to
 * (filters and sort), so an edited cursor, or one carried over to other filters, is refused
 * rather than silently walking somewhere else.
 */
export class AttemptCursorCodec {
  private readonly key: Buffer;

  constructor(secret: Buffer) {
    // A key of its own, so a cursor MAC can never be replayed as a username digest.
    this.key = createHmac('sha256', secret).update('gatehouse audit cursor v1').digest();
  }

  encode(cursor: AttemptCursor, scope: string): string {
    const body: CursorBody = {
      bound: cursor.bound,
      occurred_at: cursor.occurredAt,
      id: cursor.id,
      since: cursor.since,
      until: cursor.until,
      mac: this.mac(cursor, scope).toString('base64url'),
    };
    return Buffer.from(JSON.stringify(body), 'utf8').toString('base64url');
  }

  /** Throws InvalidCursorError unless `text` is a cursor this codec issued for `scope`. */
  decode(text: string, scope: string): AttemptCursor {
    if (text.length > MAX_CURSOR_LENGTH || !BASE64URL.test(text)) {
      throw new InvalidCursorError('cursor is not base64url of the expected size');
    }
    let body: unknown;
    try {
      body = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    } catch {
      throw new InvalidCursorError('cursor is not JSON');
    }
    if (!isCursorBody(body)) {
      throw new InvalidCursorError('cursor does not have the expected fields');
    }
    const cursor: AttemptCursor = {
      bound: body.bound,
      occurredAt: body.occurred_at,
      id: body.id,
      since: body.since,
      until: body.until,
    };
    const presented = Buffer.from(body.mac, 'base64url');
    const expected = this.mac(cursor, scope);
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
      throw new InvalidCursorError('cursor was altered or belongs to other filters');
    }
    return cursor;
  }

  private mac(cursor: AttemptCursor, scope: string): Buffer {
    const signed = JSON.stringify([
      cursor.bound,
      cursor.occurredAt,
      cursor.id,
      cursor.since,
      cursor.until,
      scope,
    ]);
    return createHmac('sha256', this.key).update(signed, 'utf8').digest().subarray(0, MAC_BYTES);
  }
}

/** Injection token of the AttemptCursorCodec. */
export const ATTEMPT_CURSOR_CODEC = Symbol('ATTEMPT_CURSOR_CODEC');

/** A Date as the microsecond text cursors carry. */
export function preciseTimestamp(instant: Date): string {
  return instant.toISOString().replace('Z', '000Z');
}
