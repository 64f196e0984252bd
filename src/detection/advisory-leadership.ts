import { Logger } from '@nestjs/common';
import { DataSource, QueryRunner } from 'typeorm';

/**
 * Leadership of one job across replicas through a Postgres session-level advisory lock, held on
 * a connection kept for the purpose. When the holder dies its session ends, Postgres frees the
 * lock, and the next replica that tries takes it over. The embedded database serves one process,
 * which is therefore always the leader (and must not pin the single embedded session).
 */
export class AdvisoryLeadership {
  private holder?: QueryRunner;
  private leading = false;

  constructor(
    private readonly dataSource: DataSource,
    private readonly embedded: boolean,
    private readonly lockKey: number,
    private readonly logger: Logger,
  ) {}

  get isLeader(): boolean {
    return this.embedded || this.leading;
  }

  /** Confirms the lock is still held, or tries to take it. Never throws. */
  async refresh(): Promise<boolean> {
    if (this.embedded) {
      return true;
    }
    if (this.holder && (await this.stillHeld(this.holder))) {
      return true;
    }
    await this.acquire();
    return this.leading;
  }

  /** Gives the lock up (shutdown), so another replica can lead at once. */
  async resign(): Promise<void> {
    const holder = this.holder;
    this.holder = undefined;
    this.leading = false;
    if (!holder || holder.isReleased) {
      return;
    }
    await holder.query('SELECT pg_advisory_unlock($1)', [this.lockKey]).catch(() => undefined);
    await holder.release().catch(() => undefined);
  }

  private async stillHeld(holder: QueryRunner): Promise<boolean> {
    try {
      await holder.query('SELECT 1');
      return true;
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'detection leadership lost');
      this.holder = undefined;
      this.leading = false;
      await holder.release().catch(() => undefined);
      return false;
    }
  }

  private async acquire(): Promise<void> {
    let runner: QueryRunner | undefined;
    try {
      runner = this.dataSource.createQueryRunner();
      await runner.connect();
      const rows = (await runner.query('SELECT pg_try_advisory_lock($1) AS locked', [
        this.lockKey,
      ])) as Array<{ locked: boolean }>;
      if (rows[0]?.locked === true) {
        this.holder = runner;
        this.leading = true;
        this.logger.log('this replica now leads detection');
        return;
      }
      this.leading = false;
      await runner.release();
    } catch (error) {
      this.leading = false;
      this.logger.warn({ err: (error as Error).message }, 'detection leadership check failed');
      await runner?.release().catch(() => undefined);
    }
  }
}
