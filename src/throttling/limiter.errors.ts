/**
 * The limiter could not decide: its store is unreachable or full. Login must then fail closed
 * (503 `unavailable`), never go on without counting.
 */
export class LimiterUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LimiterUnavailableError';
  }
}
