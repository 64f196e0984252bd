import { Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { MetricsService } from '../health/metrics.service';
import { HashScheduler } from './hash-scheduler';
import { Argon2PasswordHasher, PASSWORD_HASHER, PasswordHasher } from './password-hasher';
import { User } from './user.entity';
import { HASH_SCHEDULER, UsersService } from './users.service';

/** Times every verification for the hash-duration metric. */
function instrumentedHasher(metrics: MetricsService): PasswordHasher {
  const hasher = new Argon2PasswordHasher();
  return {
    hash: (password) => hasher.hash(password),
    verify: async (passwordHash, password) => {
      const stopTimer = metrics.hashDuration.startTimer();
      try {
        return await hasher.verify(passwordHash, password);
      } finally {
        stopTimer();
      }
    },
  };
}

@Global()
@Module({
  imports: [TypeOrmModule.forFeature([User])],
  providers: [
    UsersService,
    { provide: PASSWORD_HASHER, useFactory: instrumentedHasher, inject: [MetricsService] },
    {
      provide: HASH_SCHEDULER,
      useFactory: (config: AppConfig, metrics: MetricsService) =>
        new HashScheduler(config.hashConcurrency, config.hashQueueMax, (depth) =>
          metrics.hashQueueDepth.set(depth),
        ),
      inject: [APP_CONFIG, MetricsService],
    },
  ],
  exports: [UsersService, PASSWORD_HASHER, HASH_SCHEDULER],
})
export class UsersModule {}
