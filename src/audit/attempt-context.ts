import { AttemptMethod, AttemptOutcome } from '../common/attempt-outcome';
import { CertificateBinding } from '../mtls/certificate-bindings.service';
import { ClientCertificateResult } from '../mtls/verified-certificate';
import { Reservation } from '../throttling/limiter.types';

/**
 * What is known about one login attempt as it passes the guards. Built by the first guard,
 * completed by each later step, and recorded exactly once when the attempt is answered.
 */
export interface AttemptContext {
  requestId: string;
  method: AttemptMethod;
  receivedAt: Date;
  /** process.hrtime.bigint() when the request arrived, for latency and padding. */
  startedAt: bigint;
  clientIp: string | null;
  forwardedFor: string | null;
  userAgent: string | null;
  normalizedUsername?: string;
  usernameLength?: number;
  userId?: string;
  /** True once the username resolved to a user: then it may be stored as written. */
  usernameResolved: boolean;
  certificate?: ClientCertificateResult;
  reservation?: Reservation;
  /**
   * The stored binding of the presented certificate, once looked up (null: none), so the
   * throttler and the certificate policy share one lookup.
   */
  binding?: CertificateBinding | null;
  /** The certificate policy found the presented certificate bound to this very user. */
  certificateBound?: boolean;
  /** True when the attempt reached the password hash (its latency feeds the padding median). */
  reachedHash: boolean;
  outcome?: AttemptOutcome;
  /**
   * Truncated keyed hash of a wrong password (password-spraying detection, when enabled). It is
   * published in process to the tracker and never recorded.
   */
  failedPasswordTag?: { epoch: number; tag: number };
  recorded: boolean;
}

export const ATTEMPT_CONTEXT = Symbol('gatehouse.attempt');

/** The attempt context travels on the raw request so every guard and the filter can reach it. */
export interface RequestWithAttempt {
  [ATTEMPT_CONTEXT]?: AttemptContext;
}

export function attemptOf(request: object): AttemptContext | undefined {
  return (request as RequestWithAttempt)[ATTEMPT_CONTEXT];
}

export function attachAttempt(request: object, attempt: AttemptContext): void {
  (request as RequestWithAttempt)[ATTEMPT_CONTEXT] = attempt;
}
