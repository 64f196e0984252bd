import { DynamicModule, Global, Module } from '@nestjs/common';
import { ThrottlerModule } from '@nestjs/throttler';
import { AppConfig } from '../config/app-config';
import { CertificateBindingsService } from '../mtls/certificate-bindings.service';
import { LimiterStore } from './limiter.types';
import { LIMITER_STORE, LoginLimiterService } from './login-limiter.service';
import { LoginThrottlerGuard } from './login-throttler.guard';

/**
 * Throttling on @nestjs/throttler: its module carries the named limits (the stock guard applies
 * them to the admin routes), while LoginThrottlerGuard decides login attempts atomically through
 * the limiter store (Redis, Cluster, or this process's memory).
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
