export const TOKEN_CLOCK = Symbol('TOKEN_CLOCK');

/** The current time in epoch milliseconds; swapped for a fake in specs that age tokens. */
export interface TokenClock {
  now(): number;
}

export const systemClock: TokenClock = { now: () => Date.now() };
