import { createHmac, randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';

/** Event the AttemptFinisher publishes for a wrong guess that carries a password tag. */
export const FAILED_PASSWORD_EVENT = 'gatehouse.attempt.failed_password';

/** Bits kept of the HMAC: enough to see one password tried on many accounts, too few to test. */
export const PASSWORD_TAG_BITS = 18;

const KEY_LIFETIME_MS = 3_600_000;

/** A truncated keyed hash of one wrong password, comparable only within its key's epoch. */
export interface PasswordTag {
  epoch: number;
  tag: number;
}

/** What the tracker receives for one wrong guess (published in process, never stored). */
export interface FailedPasswordEvent {
  occurredAt: Date;
  /** As the audit records it: resolved names in clear, others as their keyed hash. */
  username: string;
  clientIp: string;
  tag: PasswordTag;
}

/**
 * Tags wrong passwords for the password-spraying rule. The key is random, lives in this process's
 * memory only and is replaced every hour; a tag keeps 18 bits, so across a whole key's life it
 * narrows no password down to fewer than about a quarter-million candidates. Nothing of it is
 * written to the database or the log. Off unless DETECT_PASSWORD_SPRAYING is monitor or enforce.
 */
@Injectable()
export class FailedPasswordTagger {
  private key = randomBytes(32);
  private epoch = -1;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  get enabled(): boolean {
    return this.config.detection.password_spraying !== 'off';
  }

  tag(password: string, nowMs = Date.now()): PasswordTag | undefined {
    if (!this.enabled) {
      return undefined;
    }
    const epoch = Math.floor(nowMs / KEY_LIFETIME_MS);
    if (epoch !== this.epoch) {
      this.key = randomBytes(32);
      this.epoch = epoch;
    }
    const digest = createHmac('sha256', this.key).update(password, 'utf8').digest();
    return { epoch, tag: digest.readUInt32BE(0) >>> (32 - PASSWORD_TAG_BITS) };
  }
}
