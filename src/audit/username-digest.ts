import { createHmac } from 'node:crypto';

/**
 * Keyed hashes of usernames that resolve to no user: a typo of a real password, or a breached
 * list's entry, must not land in the audit table or a log in clear. The key is shared by every
 * replica so the same name hashes alike everywhere, and a filter can find it again.
 */
export class UsernameDigest {
  constructor(private readonly key: Buffer) {}

  of(normalizedUsername: string): string {
    const digest = createHmac('sha256', this.key).update(normalizedUsername, 'utf8').digest('hex');
    return `hmac:${digest.slice(0, 32)}`;
  }
}
