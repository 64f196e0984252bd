import { KeyObject, createPrivateKey, createPublicKey } from 'node:crypto';
import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { GatehouseError } from '../common/gatehouse.error';
import {
  PublicSigningJwk,
  RotationResult,
  ensureActiveSigningKey,
  loadPublishedSigningKeys,
  rotateSigningKeys,
} from './signing-keys.store';
import { TOKEN_CLOCK, TokenClock, systemClock } from './token-clock';

/** How long a replica trusts its copy of the key set before reading the database again. */
export const KEY_CACHE_TTL_MS = 5_000;

/** An unknown kid forces a reread at most this often, so junk tokens cannot hammer the database. */
const UNKNOWN_KID_REFRESH_MS = 1_000;

export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
}

interface KeyRing {
  signing: SigningKey | null;
  verification: Map<string, KeyObject>;
  published: PublicSigningJwk[];
  loadedAt: number;
}

/**
 * The EdDSA (Ed25519) keys tokens are signed with, kept in `signing_keys` and cached here for a
 * few seconds so a rotation on one replica reaches the others. Any database failure is answered
 * `unavailable`: without the current key set no token is signed or accepted.
 */
@Injectable()
export class SigningKeysService {
  private ring: KeyRing | null = null;
  private loading: Promise<KeyRing> | null = null;
  /** Bumped by every change made here, so a read that started before it is not kept. */
  private generation = 0;
  /** The active kid this replica last saw, so a rotation anywhere is logged once per replica. */
  private activeKid: string | null = null;
  private readonly logger = new Logger(SigningKeysService.name);

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Optional() @Inject(TOKEN_CLOCK) private readonly clock: TokenClock = systemClock,
  ) {}

  /** Creates the first key if there is none; safe when several replicas start at once. */
  async ensureActiveKey(): Promise<string> {
    const kid = await this.guarded(() => ensureActiveSigningKey(this.dataSource));
    this.invalidate();
    return kid;
  }

  /** Makes a new key active; the previous one keeps verifying until its tokens have expired. */
  async rotate(): Promise<RotationResult> {
    const result = await this.guarded(() => rotateSigningKeys(this.dataSource, this.config));
    this.invalidate();
    return result;
  }

  /** The JWK Set: the active key and retired keys still published, public parts only. */
  async jwks(): Promise<{ keys: PublicSigningJwk[] }> {
    const ring = await this.current();
    return { keys: ring.published.map((jwk) => ({ ...jwk })) };
  }

  async signingKey(): Promise<SigningKey> {
    let ring = await this.current();
    if (ring.signing === null) {
      await this.ensureActiveKey();
      ring = await this.current();
    }
    if (ring.signing === null) {
      throw new GatehouseError('unavailable', { detail: 'no active signing key' });
    }
    return ring.signing;
  }

  /** The public key for a kid, or null when no published key has it. */
  async verificationKey(kid: string): Promise<KeyObject | null> {
    const ring = await this.current();
    const key = ring.verification.get(kid);
    if (key !== undefined || this.clock.now() - ring.loadedAt < UNKNOWN_KID_REFRESH_MS) {
      return key ?? null;
    }
    // A key minted by a rotation on another replica since our last read.
    this.invalidate();
    return (await this.current()).verification.get(kid) ?? null;
  }

  /** Forgets the cached key set; the next use reads the database. */
  invalidate(): void {
    this.generation += 1;
    this.ring = null;
    this.loading = null;
  }

  private current(): Promise<KeyRing> {
    const ring = this.ring;
    if (ring !== null && this.clock.now() - ring.loadedAt < KEY_CACHE_TTL_MS) {
      return Promise.resolve(ring);
    }
    if (this.loading === null) {
      const loading = this.load(this.generation).finally(() => {
        if (this.loading === loading) {
          this.loading = null;
        }
      });
      this.loading = loading;
    }
    return this.loading;
  }

  private async load(generation: number): Promise<KeyRing> {
    const keys = await this.guarded(() => loadPublishedSigningKeys(this.dataSource));
    const signingRow = keys.find((key) => key.active && key.privateKeyPem !== null);
    const ring: KeyRing = {
      signing: signingRow
        ? { kid: signingRow.kid, privateKey: createPrivateKey(signingRow.privateKeyPem!) }
        : null,
      verification: new Map(
        keys.map((key) => [key.kid, createPublicKey({ key: { ...key.publicJwk }, format: 'jwk' })]),
      ),
      published: keys.map((key) => key.publicJwk),
      loadedAt: this.clock.now(),
    };
    if (generation === this.generation) {
      this.ring = ring;
    }
    this.noticeActiveKey(ring.signing?.kid ?? null);
    return ring;
  }

  private noticeActiveKey(kid: string | null): void {
    if (kid === null || kid === this.activeKid) {
      return;
    }
    if (this.activeKid !== null) {
      this.logger.log({
        event: 'signing_keys_rotated',
        kid,
        previousKid: this.activeKid,
        msg: 'signing keys rotated: a new key is active',
      });
    }
    this.activeKid = kid;
  }

  private async guarded<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw new GatehouseError('unavailable', {
        detail: `signing keys: ${error instanceof Error ? error.message : String(error)}`,
      });
    }
  }
}
