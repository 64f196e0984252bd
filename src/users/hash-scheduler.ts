/** Thrown when more password checks wait than HASH_QUEUE_MAX allows: answered 503. */
export class HashQueueFullError extends Error {
  constructor() {
    super('too many password checks are waiting');
    this.name = 'HashQueueFullError';
  }
}

/**
 * Runs at most `concurrency` password checks at once with at most `queueMax` waiting. A botnet
 * trying each breached pair once trips no counter; this bound keeps it from taking every core
 * and turns the excess into fast 503s instead of an unbounded queue.
 */
export class HashScheduler {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  /** `onQueueDepth` hears the number waiting after every change, for the queue-depth gauge. */
  constructor(
    private readonly concurrency: number,
    private readonly queueMax: number,
    private readonly onQueueDepth: (depth: number) => void = () => undefined,
  ) {}

  get queueDepth(): number {
    return this.waiting.length;
  }

  get active(): number {
    return this.running;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    await this.enter();
    try {
      return await work();
    } finally {
      this.leave();
    }
  }

  private enter(): Promise<void> {
    if (this.running < this.concurrency) {
      this.running += 1;
      return Promise.resolve();
    }
    if (this.waiting.length >= this.queueMax) {
      return Promise.reject(new HashQueueFullError());
    }
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.onQueueDepth(this.waiting.length);
    });
  }

  private leave(): void {
    const next = this.waiting.shift();
    if (next) {
      this.onQueueDepth(this.waiting.length);
      next();
    } else {
      this.running -= 1;
    }
  }
}
