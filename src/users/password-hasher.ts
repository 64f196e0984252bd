import { Algorithm, hash, verify } from '@node-rs/argon2';

export const PASSWORD_HASHER = Symbol('PASSWORD_HASHER');

/** Hashes and verifies passwords; swapped in tests that count verify calls. */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(passwordHash: string, password: string): Promise<boolean>;
}

/** argon2id at the OWASP minimum: 19 MiB of memory, two passes, one lane. */
const ARGON2_OPTIONS = {
  algorithm: Algorithm.Argon2id,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
};

export class Argon2PasswordHasher implements PasswordHasher {
  hash(password: string): Promise<string> {
    return hash(password, ARGON2_OPTIONS);
  }

  async verify(passwordHash: string, password: string): Promise<boolean> {
    try {
      return await verify(passwordHash, password);
    } catch {
      // A stored hash that does not parse verifies nothing.
      return false;
    }
  }
}
