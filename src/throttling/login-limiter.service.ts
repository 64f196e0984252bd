import { Inject, Injectable, Logger } from '@nestjs/common';
import { AttemptContext } from '../audit/attempt-context';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { AddressMatcher, ipv6Prefixes, parseAddressRanges } from '../mtls/client-ip';
import { CertificateBindingsService } from '../mtls/certificate-bindings.service';
import { LimiterUnavailableError } from './limiter.errors';
import {
  AttemptKeys,
  LimiterDecision,
  LimiterSettings,
  LimiterStore,
  SettleOutcome,
  SourceTier,
} from './limiter.types';

export const LIMITER_STORE = Symbol('LIMITER_STORE');

export function limiterSettings(config: AppConfig): LimiterSettings {
  return {
    loginMaxFailures: config.loginMaxFailures,
    loginFailureWindowMs: config.loginFailureWindowMs,
    lockoutBaseMs: config.lockoutBaseMs,
    lockoutMaxMs: config.lockoutMaxMs,
    ipLoginLimit: config.ipLoginLimit,
    ipLoginWindowMs: config.ipLoginWindowMs,
    ipUserLimit: config.ipUserLimit,
    ipUserWindowMs: config.ipUserWindowMs,
    certLoginLimit: config.certLoginLimit,
    certLoginWindowMs: config.certLoginWindowMs,
    ipFailureBudget: config.ipFailureBudget,
    ipFailureWindowMs: config.ipFailureWindowMs,
    familiarSourceTtlMs: config.familiarSourceTtlMs,
  };
}

/** The account key a certificate-only attempt counts against when no username was given. */
function certificateAccount(attempt: AttemptContext): string {
  const certificate = attempt.certificate;
  return certificate?.status === 'verified'
    ? `certificate:${certificate.certificate.fingerprint}`
    : 'certificate:none';
}

/**
 * Turns an attempt into the limiter's keys (tier included) and talks to the store. Any store
 * failure becomes LimiterUnavailableError: the attempt is answered 503, never let through.
 */
@Injectable()
export class LoginLimiterService {
  private readonly logger = new Logger(LoginLimiterService.name);
  private readonly exempt: AddressMatcher;

  constructor(
    @Inject(LIMITER_STORE) private readonly store: LimiterStore,
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly bindings: CertificateBindingsService,
  ) {
    this.exempt = new AddressMatcher(parseAddressRanges(config.ipExemptCidrs));
  }

  async reserve(attempt: AttemptContext): Promise<LimiterDecision> {
    const keys = await this.keysOf(attempt);
    return this.guarded(() => this.store.reserve(keys));
  }

  async settle(attempt: AttemptContext, outcome: SettleOutcome): Promise<void> {
    if (!attempt.reservation) {
      return;
    }
    const reservation = attempt.reservation;
    attempt.reservation = undefined;
    await this.guarded(() => this.store.settle(reservation, outcome));
    if (outcome === 'success' && attempt.clientIp && attempt.normalizedUsername) {
      await this.guarded(() =>
        this.store.rememberFamiliarSource(attempt.normalizedUsername!, attempt.clientIp!),
      );
    }
  }

  unlock(normalizedUsername: string): Promise<{ refilled: boolean }> {
    return this.guarded(() => this.store.unlock(normalizedUsername));
  }

  block(subject: string, durationMs: number): Promise<void> {
    return this.guarded(() => this.store.block(subject, durationMs));
  }

  ping(): Promise<void> {
    return this.guarded(() => this.store.ping());
  }

  private async keysOf(attempt: AttemptContext): Promise<AttemptKeys> {
    const clientIp = attempt.clientIp ?? '0.0.0.0';
    const normalizedUsername = attempt.normalizedUsername ?? certificateAccount(attempt);
    const certificate = attempt.certificate;
    return {
      clientIp,
      ipPrefixes: ipv6Prefixes(clientIp),
      normalizedUsername,
      certificateFingerprint:
        certificate?.status === 'verified' ? certificate.certificate.fingerprint : undefined,
      tier: await this.tierOf(attempt, clientIp, normalizedUsername),
      ipExempt: this.exempt.contains(clientIp),
    };
  }

  /**
   * Familiar: a valid certificate bound to this very account, or an address that logged in to
   * it within FAMILIAR_SOURCE_TTL. Such sources keep their own budget, so attackers elsewhere
   * cannot lock the owner out.
   */
  private async tierOf(
    attempt: AttemptContext,
    clientIp: string,
    normalizedUsername: string,
  ): Promise<SourceTier> {
    const certificate = attempt.certificate;
    if (certificate?.status === 'verified') {
      if (attempt.method === 'certificate') {
        return 'familiar';
      }
      const binding = await this.guarded(() =>
        this.bindings.bindingOf(attempt, certificate.certificate.fingerprint),
      );
      const usable = binding && !binding.revokedAt && !binding.suspendedAt;
      if (usable && binding.normalizedUsername === normalizedUsername) {
        return 'familiar';
      }
    }
    const familiar = await this.guarded(() =>
      this.store.isFamiliarSource(normalizedUsername, clientIp),
    );
    return familiar ? 'familiar' : 'unfamiliar';
  }

  private async guarded<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (error instanceof LimiterUnavailableError) {
        throw error;
      }
      this.logger.error({ err: (error as Error).message }, 'limiter store unreachable');
      throw new LimiterUnavailableError((error as Error).message);
    }
  }
}
