import { ExecutionContext, Injectable, Logger, Optional } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  InjectThrottlerOptions,
  InjectThrottlerStorage,
  ThrottlerGuard,
  ThrottlerModuleOptions,
  ThrottlerStorage,
} from '@nestjs/throttler';
import type { FastifyRequest } from 'fastify';
import { attemptOf } from '../audit/attempt-context';
import { GatehouseError, invalidCredentials, invalidRequest } from '../common/gatehouse.error';
import { MetricsService } from '../health/metrics.service';
import { LimiterDecision } from './limiter.types';
import { LoginLimiterService } from './login-limiter.service';

/** The `limit` label of a decision: a limit name, `account` for lockouts, `block`, or `all`. */
function decisionLimit(decision: LimiterDecision): string {
  if (decision.allowed) {
    return 'all';
  }
  if (decision.reason === 'throttled') {
    return decision.limit;
  }
  return decision.reason === 'locked' ? 'account' : 'block';
}

/**
 * The throttler guard of the login routes. The stock guard increments one named throttler after
 * another and counts requests, so parallel attempts could pass between its checks; this one asks
 * the limiter to decide the whole attempt in one atomic step (blocks, every rate limit, the
 * failure budgets and the lockout) and reserves a slot in all of them or none. It runs before
 * passport, so no refused attempt ever reaches a lookup or the password hash.
 */
@Injectable()
export class LoginThrottlerGuard extends ThrottlerGuard {
  private readonly decisionLogger = new Logger(LoginThrottlerGuard.name);

  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storage: ThrottlerStorage,
    reflector: Reflector,
    private readonly limiter: LoginLimiterService,
    @Optional() private readonly metrics?: MetricsService,
  ) {
    super(options, storage, reflector);
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const attempt = attemptOf(request);
    if (!attempt) {
      throw invalidRequest('login reached the throttler without an attempt');
    }
    const decision = await this.limiter.reserve(attempt);
    this.metrics?.limiterDecisions.inc({
      limit: decisionLimit(decision),
      result: decision.allowed ? 'allowed' : decision.reason,
    });
    if (decision.allowed) {
      attempt.reservation = decision.reservation;
      return true;
    }
    if (decision.reason === 'locked') {
      if (decision.lockoutStarted) {
        this.decisionLogger.warn({
          requestId: request.id,
          event: 'lockout_started',
          retryAfterSeconds: decision.retryAfterSeconds,
          msg: 'lockout started',
        });
      }
      throw invalidCredentials('locked');
    }
    throw new GatehouseError('too_many_attempts', {
      outcome: decision.reason,
      retryAfterSeconds: decision.retryAfterSeconds,
      detail: decision.reason === 'throttled' ? `limit ${decision.limit}` : 'source blocked',
    });
  }
}
