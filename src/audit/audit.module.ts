import { Global, Logger, Module } from '@nestjs/common';
import { getDataSourceToken } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { MetricsService } from '../health/metrics.service';
import { AUDIT_WRITER, USERNAME_DIGEST } from './audit.tokens';
import { AuditWriter } from './audit-writer';
import { AuditWriterLifecycle } from './audit-writer.lifecycle';
import { UsernameDigest } from './username-digest';
import { loadUsernameKey } from './username-key';
import { PartitionMaintenanceService } from './partition-maintenance.service';

function createAuditWriter(config: AppConfig, dataSource: DataSource, metrics: MetricsService) {
  const logger = new Logger('AuditWriter');
  return new AuditWriter((sql, parameters) => dataSource.query(sql, parameters), {
    instanceId: config.instanceId,
    foldRate: config.auditFoldRate,
    flushIntervalMs: config.auditFlushIntervalMs,
    backlogMax: config.auditBacklogMax,
    onFlush: (_rows, seconds) => metrics.auditFlushDuration.observe(seconds),
    resolveUsernames: async (names) => {
      const rows = (await dataSource.query(
        'SELECT id, normalized_username FROM users WHERE normalized_username = ANY($1::text[])',
        [names],
      )) as Array<{ id: string; normalized_username: string }>;
      return new Map(rows.map((row) => [row.normalized_username, row.id]));
    },
    onError: (error) => logger.error({ err: error.message }, 'audit batch not written; retrying'),
  });
}

/** Records every login attempt in `login_attempts`, batched, folded and drained on shutdown. */
@Global()
@Module({
  providers: [
    {
      provide: AUDIT_WRITER,
      useFactory: createAuditWriter,
      inject: [APP_CONFIG, getDataSourceToken(), MetricsService],
    },
    {
      provide: USERNAME_DIGEST,
      useFactory: (config: AppConfig) => new UsernameDigest(loadUsernameKey(config)),
      inject: [APP_CONFIG],
    },
    AuditWriterLifecycle,
    PartitionMaintenanceService,
  ],
  exports: [AUDIT_WRITER, USERNAME_DIGEST, AuditWriterLifecycle],
})
export class AuditModule {}
