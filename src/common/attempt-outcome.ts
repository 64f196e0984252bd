/** Every outcome an attempt can be recorded with (CONTRACT.md decision table). */
export const ATTEMPT_OUTCOMES = [
  'success',
  'bad_password',
  'unknown_user',
  'disabled',
  'locked',
  'throttled',
  'blocked',
  'invalid_request',
  'spoofed_header',
  'no_cert',
  'untrusted_cert',
  'cert_revoked',
  'cert_unbound',
  'cert_mismatch',
  'unavailable',
] as const;

export type AttemptOutcome = (typeof ATTEMPT_OUTCOMES)[number];

export type AttemptMethod = 'password' | 'certificate';

/** Refusals decided before any password check: cheap, and folded into counted rows in floods. */
export const FOLDABLE_OUTCOMES: ReadonlySet<AttemptOutcome> = new Set<AttemptOutcome>([
  'throttled',
  'invalid_request',
  'spoofed_header',
  'no_cert',
  'untrusted_cert',
  'cert_revoked',
  'cert_unbound',
  'cert_mismatch',
  'unavailable',
]);
