import { Inject, Injectable, Logger } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { AttemptContext } from '../audit/attempt-context';
import { AttemptRecord } from '../audit/attempt-record';
import { AUDIT_WRITER, USERNAME_DIGEST } from '../audit/audit.tokens';
import { AuditUnavailableError, AuditWriter } from '../audit/audit-writer';
import { UsernameDigest } from '../audit/username-digest';
import { AttemptOutcome } from '../common/attempt-outcome';
import { uuidv7 } from '../common/uuid';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { FAILED_PASSWORD_EVENT, FailedPasswordEvent } from '../detection/failed-password-tagger';
import { MetricsService } from '../health/metrics.service';
import { LoginLimiterService } from '../throttling/login-limiter.service';
import { SettleOutcome } from '../throttling/limiter.types';
import { elapsedMs } from './attempt-factory';
import { ResponsePadding } from './response-padding';

export const ATTEMPT_RECORDED_EVENT = 'gatehouse.attempt.recorded';

/** Only these feed the failure budgets; every other outcome gives its reservation back. */
function settleOutcomeOf(outcome: AttemptOutcome): SettleOutcome {
  if (outcome === 'success') {
    return 'success';
  }
  return outcome === 'bad_password' || outcome === 'unknown_user' ? 'failure' : 'neutral';
}

/**
 * Ends an attempt exactly once: settles its limiter reservation, records it, and publishes it.
 * Returns false when the attempt could not be recorded; the caller then answers 503.
 */
@Injectable()
export class AttemptFinisher {
  private readonly logger = new Logger(AttemptFinisher.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(AUDIT_WRITER) private readonly writer: AuditWriter,
    @Inject(USERNAME_DIGEST) private readonly digest: UsernameDigest,
    private readonly limiter: LoginLimiterService,
    private readonly padding: ResponsePadding,
    private readonly metrics: MetricsService,
    private readonly events: EventEmitter2,
  ) {}

  async finish(attempt: AttemptContext, outcome: AttemptOutcome): Promise<boolean> {
    if (attempt.recorded) {
      return true;
    }
    attempt.recorded = true;
    attempt.outcome = outcome;
    const settled = await this.settle(attempt, outcome);
    const latencyMs = elapsedMs(attempt);
    if (attempt.reachedHash) {
      this.padding.observe(latencyMs);
    }
    const row = this.toRecord(attempt, settled ? outcome : 'unavailable', latencyMs);
    this.metrics.loginAttempts.inc({ method: row.method, outcome: row.outcome });
    try {
      if (!settled) {
        this.writer.recordUnavailable(row);
        return false;
      }
      this.writer.record(row);
    } catch (error) {
      if (error instanceof AuditUnavailableError) {
        attempt.outcome = 'unavailable';
        return false;
      }
      throw error;
    }
    const { unresolvedUsername: _inMemoryOnly, ...published } = row;
    this.events.emit(ATTEMPT_RECORDED_EVENT, published);
    this.publishFailedPassword(attempt, row);
    return true;
  }

  /** Feeds the password-spraying tracker; the tag never reaches the audit row or the log. */
  private publishFailedPassword(attempt: AttemptContext, row: AttemptRecord): void {
    const tag = attempt.failedPasswordTag;
    attempt.failedPasswordTag = undefined;
    const guessed = row.outcome === 'bad_password' || row.outcome === 'unknown_user';
    if (tag && guessed && row.username !== null && row.clientIp !== null) {
      const event: FailedPasswordEvent = {
        occurredAt: row.occurredAt,
        username: row.username,
        clientIp: row.clientIp,
        tag,
      };
      this.events.emit(FAILED_PASSWORD_EVENT, event);
    }
  }

  /** Delays a 401 that never reached the hash until it takes as long as one that did. */
  pad(attempt: AttemptContext): Promise<void> {
    return this.padding.pad(elapsedMs(attempt));
  }

  private async settle(attempt: AttemptContext, outcome: AttemptOutcome): Promise<boolean> {
    try {
      await this.limiter.settle(attempt, settleOutcomeOf(outcome));
      return true;
    } catch (error) {
      this.logger.error({ requestId: attempt.requestId, err: (error as Error).message });
      return outcome !== 'success';
    }
  }

  private toRecord(
    attempt: AttemptContext,
    outcome: AttemptOutcome,
    latencyMs: number,
  ): AttemptRecord {
    const certificate = attempt.certificate;
    const described =
      certificate?.status === 'verified'
        ? certificate.certificate
        : certificate?.status === 'refused'
          ? certificate.certificate
          : undefined;
    const username =
      attempt.normalizedUsername === undefined
        ? null
        : attempt.usernameResolved
          ? attempt.normalizedUsername
          : this.digest.of(attempt.normalizedUsername);
    return {
      id: uuidv7(attempt.receivedAt.getTime()),
      occurredAt: attempt.receivedAt,
      method: attempt.method,
      outcome,
      count: 1,
      username,
      usernameLength: attempt.usernameLength ?? null,
      userId: attempt.userId ?? null,
      clientIp: attempt.clientIp,
      forwardedFor: attempt.forwardedFor,
      userAgent: attempt.userAgent,
      certFingerprint: described?.fingerprint ?? null,
      certSubject: described?.subject ?? null,
      certIssuer: described?.issuer ?? null,
      certSerial: described?.serialNumber ?? null,
      requestId: attempt.requestId,
      instanceId: this.config.instanceId,
      latencyMs: Math.round(latencyMs),
      // Refused before any lookup: the writer checks, per batch, whether the name is a user's.
      unresolvedUsername:
        attempt.normalizedUsername !== undefined &&
        !attempt.usernameResolved &&
        outcome !== 'unknown_user'
          ? attempt.normalizedUsername
          : undefined,
    };
  }
}
