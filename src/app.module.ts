import { DynamicModule, Module, RequestMethod } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { TypeOrmModule } from '@nestjs/typeorm';
import { LoggerModule } from 'nestjs-pino';
import type { Logger as PinoLogger } from 'pino';
import { DataSource } from 'typeorm';
import { AdminActionsModule } from './admin/admin-actions.module';
import { AdminModule } from './admin/admin.module';
import { AuditApiModule } from './audit/audit-api.module';
import { AuditModule } from './audit/audit.module';
import { AuthModule } from './auth/auth.module';
import { ProblemDetailsFilter } from './common/problem-details.filter';
import { requestLogSerializers } from './common/logging';
import { AppConfig } from './config/app-config';
import { ConfigModule } from './config/config.module';
import { DetectionModule } from './detection/detection.module';
import { MetricsModule } from './health/metrics.module';
import { MtlsSettings } from './mtls/client-certificate.resolver';
import { MtlsModule } from './mtls/mtls.module';
import { LimiterStore } from './throttling/limiter.types';
import { ThrottlingModule } from './throttling/throttling.module';
import { UsersModule } from './users/users.module';

/** What the start-up prepared before Nest: the open database, mTLS material and limiter store. */
export interface GatehouseModuleOptions {
  config: AppConfig;
  dataSource: DataSource;
  mtls: MtlsSettings;
  limiterStore: LimiterStore;
  logger: PinoLogger;
  /** Further modules of the operator's own (detection, webhooks, …). */
  imports?: DynamicModule['imports'];
}

/**
 * The whole service as one dynamic module, so an operator can compose Gatehouse into a Nest
 * application of their own and add modules beside it.
 */
@Module({})
export class GatehouseModule {
  static forRoot(options: GatehouseModuleOptions): DynamicModule {
    return {
      module: GatehouseModule,
      imports: [
        ConfigModule.forRoot(options.config),
        LoggerModule.forRoot({
          forRoutes: [{ path: '{*path}', method: RequestMethod.ALL }],
          pinoHttp: {
            logger: options.logger,
            serializers: requestLogSerializers,
            customProps: () => ({ instance: options.config.instanceId }),
            autoLogging: { ignore: () => options.config.logLevel !== 'debug' },
          },
        }),
        TypeOrmModule.forRootAsync({
          useFactory: () => ({}),
          dataSourceFactory: async () => options.dataSource,
        }),
        EventEmitterModule.forRoot(),
        MetricsModule,
        MtlsModule.forRoot(options.mtls),
        UsersModule,
        AuditModule,
        ThrottlingModule.forRoot(options.config, options.limiterStore),
        AuthModule,
        AdminModule,
        AdminActionsModule,
        AuditApiModule,
        DetectionModule,
        ...(options.imports ?? []),
      ],
      providers: [{ provide: APP_FILTER, useClass: ProblemDetailsFilter }],
    };
  }
}
