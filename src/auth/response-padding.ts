const SAMPLE_SIZE = 101;

/**
 * Keeps the median latency of recent attempts that reached the password hash, so that 401s
 * which never hashed (locked, disabled, certificate refusals) can be delayed to match it:
 * neither timing nor body tells unknown, locked, disabled, bound and unbound apart. The delay
 * is a timer, not a hash slot.
 */
export class ResponsePadding {
  private readonly samples: number[] = [];
  private cursor = 0;

  constructor(private readonly initialMedianMs = 0) {}

  observe(latencyMs: number): void {
    if (this.samples.length < SAMPLE_SIZE) {
      this.samples.push(latencyMs);
    } else {
      this.samples[this.cursor] = latencyMs;
      this.cursor = (this.cursor + 1) % SAMPLE_SIZE;
    }
  }

  medianMs(): number {
    if (this.samples.length === 0) {
      return this.initialMedianMs;
    }
    const sorted = [...this.samples].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)];
  }

  /** Resolves once `elapsedMs` has been brought up to the live median. */
  async pad(elapsedMs: number): Promise<void> {
    const remaining = this.medianMs() - elapsedMs;
    if (remaining > 1) {
      await new Promise((resolve) => setTimeout(resolve, remaining));
    }
  }
}
