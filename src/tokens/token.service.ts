import { randomBytes } from 'node:crypto';
import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
  Optional,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { JWTHeaderParameters, SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { GatehouseError } from '../common/gatehouse.error';
import { VerifiedCertificate } from '../mtls/verified-certificate';
import {
  ACCESS_TOKEN_TYPE,
  AccessTokenClaims,
  AuthenticationMethod,
  IssuedToken,
  MAX_TOKEN_LENGTH,
  checkCertificateConfirmation,
  checkIssuedAfter,
  issuedAtSeconds,
  readAccessTokenClaims,
} from './access-token';
import { SigningKeysService } from './signing-keys.service';
import { TOKEN_CLOCK, TokenClock, systemClock } from './token-clock';

/** Allowed disagreement between replicas' clocks, in seconds. */
export const CLOCK_TOLERANCE_SECONDS = 5;

const REVOCATION_CLEANUP_INTERVAL_MS = 10 * 60 * 1000;

/**
 * Who a token is for; `tokensValidAfter` (when loaded) keeps a fresh token from reading as stale.
 */
export interface TokenSubject {
  id: string;
  username: string;
  roles: string[];
  tokensValidAfter?: Date;
}

export interface IssueTokenRequest {
  user: TokenSubject;
  /** The verified certificate of the login request; the token is then bound to it (RFC 8705). */
  certificate?: VerifiedCertificate | null;
  amr: AuthenticationMethod[];
}

interface SubjectStateRow {
  disabled: boolean;
  tokens_valid_after: Date | string;
  revoked: boolean;
}

function invalidToken(detail: string): GatehouseError {
  return new GatehouseError('invalid_token', { detail });
}

/**
 * Issues and verifies EdDSA-signed JWT access tokens (RFC 9068 `at+jwt`). Verification checks
 * the signature with the key of the token's kid, issuer, audience, type and lifetime, the
 * certificate binding against this request's certificate, revocation, and the user's state.
 */
@Injectable()
export class TokenService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(TokenService.name);
  private cleanupTimer?: NodeJS.Timeout;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly signingKeys: SigningKeysService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Optional() @Inject(TOKEN_CLOCK) private readonly clock: TokenClock = systemClock,
  ) {}

  async issue(request: IssueTokenRequest): Promise<IssuedToken> {
    const amr = [...new Set(request.amr)];
    if (amr.length === 0 || (amr.includes('mtls') && !request.certificate)) {
      throw new Error('a token needs an authentication method, and mtls needs its certificate');
    }
    const nowMs = this.clock.now();
    const expiresIn = Math.max(1, Math.floor(this.config.tokenTtlMs / 1000));
    const exp = Math.floor(nowMs / 1000) + expiresIn;
    const { kid, privateKey } = await this.signingKeys.signingKey();

    const payload: Record<string, unknown> = {
      username: request.user.username,
      roles: [...request.user.roles],
      amr,
    };
    if (request.certificate) {
      payload.cnf = { 'x5t#S256': request.certificate.thumbprintS256 };
    }
    const accessToken = await new SignJWT(payload)
      .setProtectedHeader({ alg: 'EdDSA', kid, typ: ACCESS_TOKEN_TYPE })
      .setIssuer(this.config.tokenIssuer)
      .setAudience(this.config.tokenAudience)
      .setSubject(request.user.id)
      .setJti(randomBytes(18).toString('base64url'))
      .setIssuedAt(issuedAtSeconds(nowMs, request.user.tokensValidAfter))
      .setExpirationTime(exp)
      .sign(privateKey);
    return { access_token: accessToken, token_type: 'Bearer', expires_in: expiresIn };
  }

  /**
   * Returns the claims of a token good for this request, or throws `invalid_token` (the detail is
   * for the log only). `presentedThumbprint` is the x5t#S256 of the certificate verified on this
   * request, or null. A database failure throws `unavailable`: never accept what we cannot check.
   */
  async verify(token: string, presentedThumbprint: string | null): Promise<AccessTokenClaims> {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) {
      throw invalidToken('token is not a string of acceptable length');
    }
    const claims = readAccessTokenClaims(await this.verifySignedClaims(token));

    const nowSeconds = Math.floor(this.clock.now() / 1000);
    if (claims.iat > nowSeconds + CLOCK_TOLERANCE_SECONDS + 1) {
      throw invalidToken('token is issued in the future');
    }

    checkCertificateConfirmation(claims, presentedThumbprint);

    await this.checkSubjectState(claims);
    return claims;
  }

  /** Refuses the token on every replica until it would have expired anyway. */
  async revoke(claims: Pick<AccessTokenClaims, 'jti' | 'exp'>): Promise<void> {
    await this.guarded('revoke', () =>
      this.dataSource.query(
        `INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, to_timestamp($2))
         ON CONFLICT (jti) DO NOTHING`,
        [claims.jti, claims.exp],
      ),
    );
  }

  /** Deletes revocations of tokens that have expired (with a margin for clock skew). */
  async deleteExpiredRevocations(): Promise<number> {
    const result = (await this.guarded('revocation cleanup', () =>
      this.dataSource.query(
        `DELETE FROM revoked_tokens WHERE expires_at < now() - interval '5 minutes'`,
      ),
    )) as [unknown[], number];
    return result[1] ?? 0;
  }

  onApplicationBootstrap(): void {
    this.cleanupTimer = setInterval(() => {
      this.deleteExpiredRevocations().catch((error: unknown) =>
        this.logger.warn(`revoked token cleanup failed: ${String(error)}`),
      );
    }, REVOCATION_CLEANUP_INTERVAL_MS);
    this.cleanupTimer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.cleanupTimer);
  }

  private async verifySignedClaims(token: string) {
    try {
      const { payload } = await jwtVerify(token, (header) => this.keyFor(header), {
        algorithms: ['EdDSA'],
        typ: ACCESS_TOKEN_TYPE,
        issuer: this.config.tokenIssuer,
        audience: this.config.tokenAudience,
        requiredClaims: ['sub', 'jti', 'iat', 'exp'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: new Date(this.clock.now()),
      });
      return payload;
    } catch (error) {
      if (error instanceof GatehouseError) {
        throw error;
      }
      const code = error instanceof joseErrors.JOSEError ? error.code : 'ERR_UNEXPECTED';
      throw invalidToken(`${code}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private async keyFor(header: JWTHeaderParameters) {
    if (header.alg !== 'EdDSA' || typeof header.kid !== 'string' || header.kid.length > 128) {
      throw invalidToken('token header lacks EdDSA or a kid');
    }
    const key = await this.signingKeys.verificationKey(header.kid);
    if (key === null) {
      throw invalidToken(`no published signing key has kid ${JSON.stringify(header.kid)}`);
    }
    return key;
  }

  private async checkSubjectState(claims: AccessTokenClaims): Promise<void> {
    const rows = (await this.guarded('token state lookup', () =>
      this.dataSource.query(
        `SELECT disabled, tokens_valid_after,
                EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $2) AS revoked
         FROM users WHERE id = $1`,
        [claims.sub, claims.jti],
      ),
    )) as SubjectStateRow[];
    const [state] = rows;
    if (state === undefined) {
      throw invalidToken('the token subject no longer exists');
    }
    if (state.revoked) {
      throw invalidToken('token was revoked');
    }
    if (state.disabled) {
      throw invalidToken('the token subject is disabled');
    }
    checkIssuedAfter(claims, new Date(state.tokens_valid_after));
  }

  private async guarded<T>(what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw new GatehouseError('unavailable', {
        detail: `${what}: ${error instanceof Error ? error.message : String(error)}`,
      });
    }
  }
}
