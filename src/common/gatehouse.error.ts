import { AttemptOutcome } from './attempt-outcome';

/** The stable error codes clients see (CONTRACT.md). */
export type ErrorCode =
  | 'invalid_request'
  | 'invalid_credentials'
  | 'invalid_token'
  | 'too_many_attempts'
  | 'forbidden'
  | 'not_found'
  | 'unavailable';

const STATUS: Record<ErrorCode, number> = {
  invalid_request: 400,
  invalid_credentials: 401,
  invalid_token: 401,
  forbidden: 403,
  not_found: 404,
  too_many_attempts: 429,
  unavailable: 503,
};

const TITLE: Record<ErrorCode, string> = {
  invalid_request: 'The request is malformed',
  invalid_credentials: 'Authentication failed',
  invalid_token: 'The access token is not valid',
  forbidden: 'Not allowed',
  not_found: 'Not found',
  too_many_attempts: 'Too many attempts',
  unavailable: 'Service temporarily unavailable',
};

/**
 * A refusal with a stable code. `outcome` is what the audit records for a login attempt; `detail`
 * goes to the log only, never to the client.
 */
export class GatehouseError extends Error {
  readonly status: number;
  readonly title: string;

  constructor(
    readonly code: ErrorCode,
    readonly options: {
      outcome?: AttemptOutcome;
      detail?: string;
      retryAfterSeconds?: number;
      /** A message safe to show the client (400s only): which field or parameter is wrong. */
      publicDetail?: string;
    } = {},
  ) {
    super(options.detail ?? code);
    this.name = 'GatehouseError';
    this.status = STATUS[code];
    this.title = TITLE[code];
  }

  get outcome(): AttemptOutcome | undefined {
    return this.options.outcome;
  }
}

export function invalidRequest(detail: string, publicDetail?: string): GatehouseError {
  return new GatehouseError('invalid_request', {
    outcome: 'invalid_request',
    detail,
    publicDetail: publicDetail ?? detail,
  });
}

export function invalidCredentials(outcome: AttemptOutcome, detail?: string): GatehouseError {
  return new GatehouseError('invalid_credentials', { outcome, detail });
}

export function problemStatus(code: ErrorCode): number {
  return STATUS[code];
}

export function problemTitle(code: ErrorCode): string {
  return TITLE[code];
}
