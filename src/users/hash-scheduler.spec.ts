import { HashQueueFullError, HashScheduler } from './hash-scheduler';

function deferred(): { promise: Promise<void>; resolve(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

describe('HashScheduler', () => {
  it('reports the queue depth as checks wait and leave', async () => {
    const depths: number[] = [];
    const scheduler = new HashScheduler(1, 2, (depth) => depths.push(depth));
    const gates = [deferred(), deferred(), deferred()];
    const runs = gates.map((gate) => scheduler.run(() => gate.promise));
    expect(scheduler.queueDepth).toBe(2);
    expect(depths).toEqual([1, 2]);

    for (const gate of gates) {
      gate.resolve();
      await Promise.resolve();
    }
    await Promise.all(runs);
    expect(depths).toEqual([1, 2, 1, 0]);
    expect(scheduler.queueDepth).toBe(0);
  });

  it('refuses a check beyond the queue limit', async () => {
    const gate = deferred();
    const scheduler = new HashScheduler(1, 0);
    const running = scheduler.run(() => gate.promise);
    await expect(scheduler.run(() => Promise.resolve())).rejects.toBeInstanceOf(HashQueueFullError);
    gate.resolve();
    await running;
  });

  it('runs at most its concurrency of checks at once, serving waiters in order', async () => {
    const scheduler = new HashScheduler(2, 10);
    const gates = Array.from({ length: 5 }, () => deferred());
    const started: number[] = [];
    let peak = 0;
    const runs = gates.map((gate, index) =>
      scheduler.run(async () => {
        started.push(index);
        peak = Math.max(peak, scheduler.active);
        await gate.promise;
        return index;
      }),
    );
    await Promise.resolve();
    expect(started).toEqual([0, 1]);
    expect(scheduler.queueDepth).toBe(3);

    for (const gate of gates) {
      gate.resolve();
      await new Promise((resolve) => setImmediate(resolve));
    }

    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3, 4]);
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(peak).toBe(2);
    expect(scheduler.active).toBe(0);
  });

  it('frees the slot of a check that fails', async () => {
    const scheduler = new HashScheduler(1, 0);

    await expect(scheduler.run(() => Promise.reject(new Error('argon2 failed')))).rejects.toThrow(
      'argon2 failed',
    );

    expect(scheduler.active).toBe(0);
    await expect(scheduler.run(() => Promise.resolve('next'))).resolves.toBe('next');
  });
});
