import { DynamicModule, Global, Module } from '@nestjs/common';
import { ThrottlerModule } from '@nestjs/throttler';
import type { FastifyRequest } from 'fastify';
import { AppConfig } from '../config/app-config';
import { findAuthenticatedPrincipal } from '../tokens/authenticated-principal';
import { CertificateBindingsService } from '../mtls/certificate-bindings.service';
import { LimiterStore } from './limiter.types';
import { LIMITER_STORE, LoginLimiterService } from './login-limiter.service';
import { LoginThrottlerGuard } from './login-throttler.guard';

const ADMIN_THROTTLE_WINDOW_MS = 60_000;

/** The named throttlers that mirror the login limits; admin routes skip them. */
export const LOGIN_THROTTLER_NAMES = [
  'ip',
  'ip_user',
  'certificate',
  'account',
  'ip_failure_budget',
] as const;

/** Admin actions are counted per administrator, whatever address they come from. */
function adminTracker(request: Record<string, unknown>): Promise<string> {
  const principal = findAuthenticatedPrincipal(request);
  const address = (request as unknown as FastifyRequest).ip;
  return Promise.resolve(principal ? `user:${principal.claims.sub}` : `ip:${address}`);
}

/**
 * Throttling on @nestjs/throttler: its module carries the named limits, while LoginThrottlerGuard
 * decides login attempts atomically through the limiter store (Redis, Cluster, or this process's
 * memory). The stock ThrottlerGuard guards the admin routes with the `admin` throttler alone:
 * UNLOCK_LIMIT actions per administrator per minute, counted in this process. Known shortcoming:
 * N replicas allow N times that; a ThrottlerStorage backed by the Redis store would share it.
 */
@Global()
@Module({})
export class ThrottlingModule {
  static forRoot(config: AppConfig, store: LimiterStore): DynamicModule {
    return {
      module: ThrottlingModule,
      imports: [
        ThrottlerModule.forRoot({
          throttlers: [
            { name: 'ip', limit: config.ipLoginLimit, ttl: config.ipLoginWindowMs },
            { name: 'ip_user', limit: config.ipUserLimit, ttl: config.ipUserWindowMs },
            { name: 'certificate', limit: config.certLoginLimit, ttl: config.certLoginWindowMs },
            { name: 'account', limit: config.loginMaxFailures, ttl: config.loginFailureWindowMs },
            {
              name: 'ip_failure_budget',
              limit: config.ipFailureBudget,
              ttl: config.ipFailureWindowMs,
            },
            {
              name: 'admin',
              limit: config.unlockLimit,
              ttl: ADMIN_THROTTLE_WINDOW_MS,
              getTracker: adminTracker,
            },
          ],
        }),
      ],
      providers: [
        { provide: LIMITER_STORE, useValue: store },
        CertificateBindingsService,
        LoginLimiterService,
        LoginThrottlerGuard,
      ],
      exports: [
        LIMITER_STORE,
        LoginLimiterService,
        LoginThrottlerGuard,
        CertificateBindingsService,
        ThrottlerModule,
      ],
    };
  }
}
