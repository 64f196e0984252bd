import { FOLDABLE_OUTCOMES } from '../common/attempt-outcome';
import { uuidv7 } from '../common/uuid';
import { AttemptRecord, buildAttemptInsert } from './attempt-record';

/** Runs one statement; the writer knows nothing else of the database. */
export type QueryExecutor = (sql: string, parameters: unknown[]) => Promise<unknown>;

export interface AuditWriterOptions {
  instanceId: string;
  /** Refused attempts per source per second kept as single rows before folding. */
  foldRate: number;
  flushIntervalMs: number;
  /** Rows waiting beyond this many: new attempts are answered 503 and counted in memory. */
  backlogMax: number;
  batchSize?: number;
  now?: () => number;
  onFlush?: (rows: number, seconds: number) => void;
  /** Maps normalised names to user ids for the names that belong to users. */
  resolveUsernames?: (names: string[]) => Promise<Map<string, string>>;
  onError?: (error: Error) => void;
}

/** Thrown when an attempt cannot be queued for writing; the caller answers 503 unavailable. */
export class AuditUnavailableError extends Error {
  constructor() {
    super('the audit writer cannot accept more rows');
    this.name = 'AuditUnavailableError';
  }
}

interface FoldBucket {
  row: AttemptRecord;
  second: number;
}

const UNHEALTHY_AFTER_MS = 5000;

/**
 * Batches attempt rows and writes them with a bounded delay, so recording never waits on the
 * login path. Floods of refusals fold: beyond `foldRate` rows per source and second, further
 * refusals of that source, outcome and second become one row whose `count` grows. Rows that
 * fail to write stay queued and are retried; `sum(count)` always equals the attempts received.
 */
export class AuditWriter {
  private pending: AttemptRecord[] = [];
  /** Login requests received and not yet answered, by request id: their rows are still to come. */
  private readonly inflight = new Map<string, number>();
  private readonly singlesPerSecond = new Map<string, number>();
  private readonly foldBuckets = new Map<string, FoldBucket>();
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private failingSince?: number;
  private stopped = false;
  private readonly now: () => number;
  private readonly batchSize: number;

  constructor(
    private readonly execute: QueryExecutor,
    private readonly options: AuditWriterOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.batchSize = options.batchSize ?? 2000;
  }

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.options.flushIntervalMs);
    this.timer.unref();
  }

  /** Rows accepted and not yet written (folded buckets count once). */
  get backlog(): number {
    return this.pending.length + this.foldBuckets.size;
  }

  /** False once writes have failed for a while or the backlog is full. */
  get healthy(): boolean {
    const failingFor = this.failingSince === undefined ? 0 : this.now() - this.failingSince;
    return failingFor < UNHEALTHY_AFTER_MS && this.pending.length < this.options.backlogMax;
  }

  /**
   * Queues one attempt. Throws AuditUnavailableError when it cannot be kept as its own row; the
   * attempt is then still counted, folded under outcome `unavailable`.
   */
  record(row: AttemptRecord): void {
    if (this.stopped) {
      throw new AuditUnavailableError();
    }
    if (FOLDABLE_OUTCOMES.has(row.outcome) && this.shouldFold(row)) {
      this.fold(row);
      return;
    }
    if (!this.healthy) {
      this.fold({ ...row, outcome: 'unavailable' });
      throw new AuditUnavailableError();
    }
    this.pending.push(row);
    if (this.pending.length >= this.batchSize) {
      void this.flush();
    }
  }

  /** Records an attempt that is refused because it cannot be recorded on its own. */
  recordUnavailable(row: AttemptRecord): void {
    this.fold({ ...row, outcome: 'unavailable' });
  }

  private secondOf(row: AttemptRecord): number {
    return Math.floor(row.occurredAt.getTime() / 1000);
  }

  private shouldFold(row: AttemptRecord): boolean {
    const key = `${row.clientIp ?? '-'}|${this.secondOf(row)}`;
    const singles = this.singlesPerSecond.get(key) ?? 0;
    if (singles < this.options.foldRate && this.healthy) {
      this.singlesPerSecond.set(key, singles + 1);
      return false;
    }
    return true;
  }

  private fold(row: AttemptRecord): void {
    const second = this.secondOf(row);
    const key = `${row.clientIp ?? '-'}|${row.outcome}|${second}`;
    const bucket = this.foldBuckets.get(key);
    if (bucket) {
      bucket.row.count += row.count;
      return;
    }
    this.foldBuckets.set(key, {
      second,
      row: {
        ...row,
        id: uuidv7(second * 1000),
        occurredAt: new Date(second * 1000),
        username: null,
        unresolvedUsername: undefined,
        usernameLength: null,
        userId: null,
        requestId: null,
        latencyMs: null,
        userAgent: null,
        forwardedFor: null,
        certFingerprint: null,
        certSubject: null,
        certIssuer: null,
        certSerial: null,
      },
    });
  }

  /** Moves fold buckets whose second is over (or all, when draining) into the write queue. */
  private releaseFoldBuckets(all: boolean): void {
    const currentSecond = Math.floor(this.now() / 1000);
    for (const [key, bucket] of this.foldBuckets) {
      if (all || bucket.second < currentSecond) {
        this.pending.push(bucket.row);
        this.foldBuckets.delete(key);
      }
    }
    for (const key of this.singlesPerSecond.keys()) {
      const second = Number(key.slice(key.lastIndexOf('|') + 1));
      if (second < currentSecond - 1) {
        this.singlesPerSecond.delete(key);
      }
    }
  }

  /** Writes what is queued, one batch at a time; concurrent callers share the same run. */
  flush(all = false): Promise<void> {
    if (!this.flushing) {
      this.flushing = this.writeQueued(all).finally(() => (this.flushing = undefined));
    }
    return this.flushing;
  }

  /** A login request arrived; until it is answered, its row may still be written. */
  beginAttempt(requestId: string, receivedAtMs: number): void {
    this.inflight.set(requestId, receivedAtMs);
  }

  endAttempt(requestId: string): void {
    this.inflight.delete(requestId);
  }

  /** The oldest instant not yet written: rows at or after it may still appear. */
  settledUntil(): Date {
    let oldest = this.now();
    for (const receivedAt of this.inflight.values()) {
      oldest = Math.min(oldest, receivedAt);
    }
    for (const row of this.pending) {
      oldest = Math.min(oldest, row.occurredAt.getTime());
    }
    for (const bucket of this.foldBuckets.values()) {
      oldest = Math.min(oldest, bucket.second * 1000);
    }
    return new Date(oldest);
  }

  private async writeQueued(all: boolean): Promise<void> {
    this.releaseFoldBuckets(all);
    while (this.pending.length > 0) {
      const batch = this.pending.slice(0, this.batchSize);
      const started = process.hrtime.bigint();
      try {
        await this.resolveUsernames(batch);
        const { sql, parameters } = buildAttemptInsert(batch);
        await this.execute(sql, parameters);
      } catch (error) {
        this.failingSince ??= this.now();
        this.options.onError?.(error as Error);
        return;
      }
      this.failingSince = undefined;
      this.pending.splice(0, batch.length);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.options.onFlush?.(batch.length, seconds);
    }
  }

  private async resolveUsernames(batch: AttemptRecord[]): Promise<void> {
    const pending = batch.filter((row) => row.unresolvedUsername !== undefined);
    if (pending.length === 0 || !this.options.resolveUsernames) {
      return;
    }
    const names = [...new Set(pending.map((row) => row.unresolvedUsername as string))];
    const users = await this.options.resolveUsernames(names);
    for (const row of pending) {
      const userId = users.get(row.unresolvedUsername as string);
      if (userId !== undefined) {
        row.username = row.unresolvedUsername as string;
        row.userId = userId;
      }
      delete row.unresolvedUsername;
    }
  }

  /**
   * Writes everything, folded buckets included, retrying until `deadline`. Returns the number
   * of rows that could not be written (0 when nothing was lost).
   */
  async drain(deadline: number): Promise<number> {
    this.stopped = true;
    if (this.timer) {
      clearInterval(this.timer);
    }
    while (this.now() < deadline) {
      await this.flush(true);
      if (this.backlog === 0) {
        return 0;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return this.backlog;
  }
}
