import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, QueryRunner } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { DatabaseConnection, openDatabase } from '../database/data-source.factory';

/** Advisory lock key of partition upkeep ("gprt"), held only while one round runs. */
export const PARTITION_LOCK_KEY = 0x6770_7274;

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
/** Days of partitions kept ready from yesterday on, so a late or stalled round never matters. */
const DAYS_AHEAD = 14;
const PARTITION_NAME = /^login_attempts_(\d{4})(\d{2})(\d{2})$/;
const DETACH_ATTEMPTS = 5;

interface PartitionRow {
  name: string;
  detach_pending: boolean;
}

/** The UTC day a partition covers, from its name, or undefined for a name not ours. */
export function partitionDay(name: string): Date | undefined {
  const match = PARTITION_NAME.exec(name);
  return match ? new Date(Date.UTC(+match[1], +match[2] - 1, +match[3])) : undefined;
}

function utcDay(ms: number): Date {
  return new Date(Math.floor(ms / DAY_MS) * DAY_MS);
}

function quoteIdentifier(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}

/**
 * Keeps `login_attempts` partitioned ahead and trimmed behind: at start and hourly it creates the
 * daily partitions from yesterday for DAYS_AHEAD days, and detaches then drops those older than
 * AUDIT_RETENTION_DAYS. Detaching is concurrent on a server (inserts keep flowing; it needs no
 * DEFAULT partition, and there is none) and waits at most 2 s for any lock, retrying later, so
 * the audit writer never stalls behind it. One replica runs a round at a time (advisory lock),
 * as the owner role when DATABASE_ADMIN_URL is set.
 */
@Injectable()
export class PartitionMaintenanceService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(PartitionMaintenanceService.name);
  private admin?: DatabaseConnection;
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  private get embedded(): boolean {
    return this.config.databaseUrl === undefined;
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.runRound();
    this.timer = setInterval(() => void this.runRound(), HOUR_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
    await this.admin?.close().catch(() => undefined);
    this.admin = undefined;
  }

  /** One round, logged instead of thrown: a failed round is retried the next hour. */
  runRound(nowMs = Date.now()): Promise<void> {
    const round = this.maintain(nowMs).then(
      () => undefined,
      (error: Error) => {
        this.logger.error({ err: error.message }, 'audit partition upkeep failed');
      },
    );
    this.running = round;
    return round;
  }

  /**
   * Creates partitions ahead and removes expired ones; false when another replica holds the lock.
   */
  async maintain(nowMs = Date.now()): Promise<boolean> {
    const dataSource = await this.ownerDataSource();
    const runner = dataSource.createQueryRunner();
    await runner.connect();
    try {
      if (!(await this.lock(runner))) {
        return false;
      }
      try {
        await this.createAhead(runner, nowMs);
        await this.dropExpired(runner, nowMs);
      } finally {
        await this.unlock(runner);
      }
      return true;
    } finally {
      await runner.release();
    }
  }

  private async createAhead(runner: QueryRunner, nowMs: number): Promise<void> {
    const firstDay = utcDay(nowMs - DAY_MS)
      .toISOString()
      .slice(0, 10);
    const rows = (await runner.query(
      'SELECT ensure_login_attempt_partitions($1::date, $2) AS created',
      [firstDay, DAYS_AHEAD],
    )) as Array<{ created: number }>;
    if (Number(rows[0]?.created ?? 0) > 0) {
      this.logger.log({ created: Number(rows[0].created) }, 'audit partitions created ahead');
    }
  }

  /** Partitions whose whole day ended before now − AUDIT_RETENTION_DAYS. */
  async expiredPartitions(runner: QueryRunner, nowMs: number): Promise<PartitionRow[]> {
    const cutoff = utcDay(nowMs - this.config.auditRetentionDays * DAY_MS);
    const rows = (await runner.query(
      `SELECT child.relname AS name, inherits.inhdetachpending AS detach_pending
         FROM pg_inherits inherits
         JOIN pg_class child ON child.oid = inherits.inhrelid
         JOIN pg_class parent ON parent.oid = inherits.inhparent
        WHERE parent.relname = 'login_attempts' AND parent.relnamespace = child.relnamespace
          AND parent.relnamespace = to_regnamespace(current_schema())`,
    )) as PartitionRow[];
    return rows.filter((row) => {
      const day = partitionDay(row.name);
      return day !== undefined && day.getTime() + DAY_MS <= cutoff.getTime();
    });
  }

  private async dropExpired(runner: QueryRunner, nowMs: number): Promise<void> {
    for (const partition of await this.expiredPartitions(runner, nowMs)) {
      await this.detach(runner, partition);
      await this.withLockTimeout(runner, () =>
        runner.query(`DROP TABLE IF EXISTS ${quoteIdentifier(partition.name)}`),
      );
      this.logger.log({ partition: partition.name }, 'expired audit partition dropped');
    }
  }

  /**
   * Detaches with a short lock timeout, retrying with growing pauses. A concurrent detach that
   * was interrupted leaves the partition "detach pending"; FINALIZE completes it.
   */
  private async detach(runner: QueryRunner, partition: PartitionRow): Promise<void> {
    const name = quoteIdentifier(partition.name);
    const mode = partition.detach_pending ? 'FINALIZE' : this.embedded ? '' : 'CONCURRENTLY';
    let lastError: Error | undefined;
    for (let attempt = 1; attempt <= DETACH_ATTEMPTS; attempt += 1) {
      try {
        await this.withLockTimeout(runner, () =>
          runner.query(`ALTER TABLE login_attempts DETACH PARTITION ${name} ${mode}`),
        );
        return;
      } catch (error) {
        lastError = error as Error;
        if (!partition.detach_pending && /pending detach/i.test(lastError.message)) {
          return this.detach(runner, { ...partition, detach_pending: true });
        }
        this.logger.warn(
          { partition: partition.name, attempt, err: lastError.message },
          'audit partition detach waiting for locks; retrying',
        );
        await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
      }
    }
    throw lastError ?? new Error('detach failed');
  }

  private async withLockTimeout<T>(runner: QueryRunner, operation: () => Promise<T>): Promise<T> {
    await runner.query(`SET lock_timeout = '2s'`);
    try {
      return await operation();
    } finally {
      await runner.query('RESET lock_timeout').catch(() => undefined);
    }
  }

  private async lock(runner: QueryRunner): Promise<boolean> {
    if (this.embedded) {
      return true;
    }
    const rows = (await runner.query('SELECT pg_try_advisory_lock($1) AS locked', [
      PARTITION_LOCK_KEY,
    ])) as Array<{ locked: boolean }>;
    return rows[0]?.locked === true;
  }

  private async unlock(runner: QueryRunner): Promise<void> {
    if (!this.embedded) {
      await runner.query('SELECT pg_advisory_unlock($1)', [PARTITION_LOCK_KEY]);
    }
  }

  /**
   * The owner role when DATABASE_ADMIN_URL is set (dropping partitions needs ownership). The
   * embedded database has one role and one holder, so it uses the service's own connection.
   */
  private async ownerDataSource(): Promise<DataSource> {
    if (this.embedded) {
      return this.dataSource;
    }
    if (this.config.databaseAdminUrl === undefined) {
      if (!this.admin) {
        this.logger.warn(
          'DATABASE_ADMIN_URL is not set: audit retention runs as the service role, which then ' +
            'must own login_attempts',
        );
        this.admin = { dataSource: this.dataSource, embedded: false, close: async () => {} };
      }
      return this.dataSource;
    }
    this.admin ??= await openDatabase(this.config, 'admin');
    return this.admin.dataSource;
  }
}
