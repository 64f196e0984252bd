import { AttemptOutcome } from '../common/attempt-outcome';
import { ATTEMPT_COLUMNS } from './attempt-record';
import { AuditUnavailableError, AuditWriter, AuditWriterOptions } from './audit-writer';
import { buildAttemptRecord } from './testing/attempt-record.builder';

interface WrittenRow {
  outcome: string;
  count: number;
  clientIp: string | null;
  username: string | null;
}

const SECOND = 1_764_806_400_000;

/** An executor that keeps what each INSERT would have written, and can be made to fail. */
class RecordingExecutor {
  rows: WrittenRow[] = [];
  statements = 0;
  failuresLeft = 0;

  readonly execute = (_sql: string, parameters: unknown[]): Promise<unknown> => {
    this.statements += 1;
    if (this.failuresLeft > 0) {
      this.failuresLeft -= 1;
      return Promise.reject(new Error('database unreachable'));
    }
    const column = (name: string) =>
      parameters[ATTEMPT_COLUMNS.findIndex(([field]) => field === name)] as unknown[];
    const outcomes = column('outcome');
    outcomes.forEach((outcome, index) =>
      this.rows.push({
        outcome: outcome as string,
        count: column('count')[index] as number,
        clientIp: column('clientIp')[index] as string | null,
        username: column('username')[index] as string | null,
      }),
    );
    return Promise.resolve();
  };

  total(outcome?: string): number {
    return this.rows
      .filter((row) => outcome === undefined || row.outcome === outcome)
      .reduce((sum, row) => sum + row.count, 0);
  }

  rowsOf(outcome: string): WrittenRow[] {
    return this.rows.filter((row) => row.outcome === outcome);
  }
}

function writerFor(executor: RecordingExecutor, options: Partial<AuditWriterOptions> = {}) {
  let now = SECOND + 200;
  const writer = new AuditWriter(executor.execute, {
    instanceId: 'spec',
    foldRate: 3,
    flushIntervalMs: 60_000,
    backlogMax: 1000,
    now: () => now,
    ...options,
  });
  return { writer, advance: (ms: number) => (now += ms) };
}

function attempts(count: number, outcome: AttemptOutcome, clientIp = '192.0.2.1', at = SECOND) {
  return Array.from({ length: count }, () =>
    buildAttemptRecord({ outcome, clientIp, occurredAt: new Date(at + 100) }),
  );
}

describe('AuditWriter', () => {
  it('folds refusals past the fold rate per source and second, summing exactly', async () => {
    const executor = new RecordingExecutor();
    const { writer } = writerFor(executor);

    for (const row of attempts(10, 'invalid_request')) {
      writer.record(row);
    }
    await writer.drain(Number.MAX_SAFE_INTEGER);

    const rows = executor.rowsOf('invalid_request');
    expect(rows.map((row) => row.count).sort((a, b) => a - b)).toEqual([1, 1, 1, 7]);
    expect(executor.total()).toBe(10);
    expect(rows.find((row) => row.count === 7)?.username).toBeNull();
  });

  it('gives each source and each second its own fold budget', async () => {
    const executor = new RecordingExecutor();
    const { writer } = writerFor(executor);
    const rows = [
      ...attempts(5, 'throttled', '192.0.2.1'),
      ...attempts(5, 'throttled', '192.0.2.2'),
      ...attempts(5, 'throttled', '192.0.2.1', SECOND + 1000),
    ];

    rows.forEach((row) => writer.record(row));
    await writer.drain(Number.MAX_SAFE_INTEGER);

    expect(executor.rows).toHaveLength(3 * 4);
    expect(executor.total('throttled')).toBe(15);
  });

  it('folds each outcome of a source into a row of its own', async () => {
    const executor = new RecordingExecutor();
    const { writer } = writerFor(executor, { foldRate: 1 });

    [...attempts(4, 'invalid_request'), ...attempts(4, 'no_cert')].forEach((row) =>
      writer.record(row),
    );
    await writer.drain(Number.MAX_SAFE_INTEGER);

    expect(executor.total('invalid_request')).toBe(4);
    expect(executor.total('no_cert')).toBe(4);
    expect(executor.rows).toHaveLength(3);
  });

  it.each<AttemptOutcome>(['success', 'bad_password', 'unknown_user', 'locked', 'blocked'])(
    'never folds %s',
    async (outcome) => {
      const executor = new RecordingExecutor();
      const { writer } = writerFor(executor, { foldRate: 1 });

      attempts(20, outcome).forEach((row) => writer.record(row));
      await writer.drain(Number.MAX_SAFE_INTEGER);

      expect(executor.rows).toHaveLength(20);
      expect(executor.rows.every((row) => row.count === 1)).toBe(true);
    },
  );

  it('records a refusal under the name of the user it targeted, once per batch', async () => {
    const executor = new RecordingExecutor();
    const lookups: string[][] = [];
    const { writer } = writerFor(executor, {
      resolveUsernames: (names) => {
        lookups.push(names);
        return Promise.resolve(new Map([['alice', 'user-1']]));
      },
    });
    for (const name of ['alice', 'alice', 'nobody']) {
      writer.record(
        buildAttemptRecord({ outcome: 'locked', username: 'hmac:x', unresolvedUsername: name }),
      );
    }

    await writer.flush();

    expect(lookups).toEqual([['alice', 'nobody']]);
    expect(executor.rowsOf('locked').map((row) => row.username)).toEqual([
      'alice',
      'alice',
      'hmac:x',
    ]);
  });

  it('keeps rows that fail to write and writes them on a later flush', async () => {
    const executor = new RecordingExecutor();
    const onError = jest.fn();
    const { writer } = writerFor(executor, { onError });
    executor.failuresLeft = 2;
    attempts(5, 'bad_password').forEach((row) => writer.record(row));

    await writer.flush();
    await writer.flush();
    expect(executor.rows).toHaveLength(0);
    expect(writer.backlog).toBe(5);
    expect(onError).toHaveBeenCalledTimes(2);

    await writer.flush();
    expect(executor.total('bad_password')).toBe(5);
    expect(writer.backlog).toBe(0);
  });

  it('turns unhealthy after 5 s of failed writes, healthy after one succeeds', async () => {
    const executor = new RecordingExecutor();
    const { writer, advance } = writerFor(executor);
    executor.failuresLeft = 1;
    writer.record(attempts(1, 'success')[0]);

    await writer.flush();
    expect(writer.healthy).toBe(true);
    advance(5000);
    expect(writer.healthy).toBe(false);

    await writer.flush();
    expect(writer.healthy).toBe(true);
  });

  it('writes in batches of at most the batch size', async () => {
    const executor = new RecordingExecutor();
    const { writer } = writerFor(executor, { batchSize: 4 });

    attempts(10, 'success').forEach((row) => writer.record(row));
    await writer.drain(Number.MAX_SAFE_INTEGER);

    expect(executor.statements).toBe(3);
    expect(executor.total('success')).toBe(10);
  });

  it('drains everything, the fold buckets of the current second included', async () => {
    const executor = new RecordingExecutor();
    const { writer } = writerFor(executor);
    [...attempts(8, 'invalid_request'), ...attempts(2, 'success')].forEach((row) =>
      writer.record(row),
    );

    await writer.flush();
    expect(executor.total()).toBe(5);

    expect(await writer.drain(Number.MAX_SAFE_INTEGER)).toBe(0);
    expect(executor.total()).toBe(10);
    expect(writer.backlog).toBe(0);
  });

  it('reports the rows it could not write before the drain deadline', async () => {
    const executor = new RecordingExecutor();
    const { writer } = writerFor(executor, { now: () => Date.now() });
    executor.failuresLeft = Number.MAX_SAFE_INTEGER;
    attempts(3, 'success').forEach((row) => writer.record(row));

    expect(await writer.drain(Date.now() + 50)).toBe(3);
  });

  it('refuses new rows once the backlog is full, yet still counts each attempt', async () => {
    const executor = new RecordingExecutor();
    const { writer } = writerFor(executor, { backlogMax: 3 });
    executor.failuresLeft = 1;
    attempts(3, 'bad_password').forEach((row) => writer.record(row));
    await writer.flush();

    expect(writer.healthy).toBe(false);
    expect(() => writer.record(attempts(1, 'success')[0])).toThrow(AuditUnavailableError);
    expect(() => writer.record(attempts(1, 'bad_password')[0])).toThrow(AuditUnavailableError);
    writer.record(attempts(1, 'invalid_request')[0]);

    await writer.drain(Number.MAX_SAFE_INTEGER);
    expect(executor.total('bad_password')).toBe(3);
    expect(executor.total('unavailable')).toBe(2);
    expect(executor.total('invalid_request')).toBe(1);
    expect(executor.total()).toBe(6);
  });

  it('counts an attempt refused as unavailable', async () => {
    const executor = new RecordingExecutor();
    const { writer } = writerFor(executor);

    writer.recordUnavailable(attempts(1, 'success')[0]);
    writer.recordUnavailable(attempts(1, 'bad_password')[0]);
    await writer.drain(Number.MAX_SAFE_INTEGER);

    expect(executor.rows).toEqual([expect.objectContaining({ outcome: 'unavailable', count: 2 })]);
  });

  it('refuses rows after draining', async () => {
    const executor = new RecordingExecutor();
    const { writer } = writerFor(executor);
    await writer.drain(Number.MAX_SAFE_INTEGER);

    expect(() => writer.record(attempts(1, 'success')[0])).toThrow(AuditUnavailableError);
  });
});
