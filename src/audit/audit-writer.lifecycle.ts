import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { MetricsService } from '../health/metrics.service';
import { AUDIT_WRITER } from './audit.tokens';
import { AuditWriter } from './audit-writer';

const HEARTBEAT_MS = 1000;

/**
 * Starts the audit writer and publishes, once a second, the instant before which this replica
 * has written everything (`audit_writers.settled_until`), for the audit API's `settled_until`.
 * Draining is driven by the ordered shutdown, not by Nest's hooks, so it happens after the
 * listener stopped accepting attempts.
 */
@Injectable()
export class AuditWriterLifecycle implements OnModuleInit {
  private readonly logger = new Logger(AuditWriterLifecycle.name);
  private heartbeat?: NodeJS.Timeout;

  constructor(
    @Inject(AUDIT_WRITER) private readonly writer: AuditWriter,
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {}

  onModuleInit(): void {
    this.writer.start();
    this.heartbeat = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  async drain(deadline: number): Promise<number> {
    if (this.heartbeat) {
      clearInterval(this.heartbeat);
    }
    const lost = await this.writer.drain(deadline);
    if (lost > 0) {
      this.logger.error({ rows: lost }, 'audit rows could not be written before shutdown');
    } else {
      await this.beat();
    }
    return lost;
  }

  private async beat(): Promise<void> {
    this.metrics.auditBacklog.set(this.writer.backlog);
    try {
      await this.dataSource.query(
        `INSERT INTO audit_writers (instance_id, settled_until, heartbeat_at)
         VALUES ($1, $2, now())
         ON CONFLICT (instance_id)
         DO UPDATE SET settled_until = excluded.settled_until, heartbeat_at = now()`,
        [this.config.instanceId, this.writer.settledUntil()],
      );
    } catch {
      // The writer's own retries report the outage; a missed heartbeat only delays settling.
    }
  }
}
