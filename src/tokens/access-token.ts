import { JWTPayload } from 'jose';
import { GatehouseError } from '../common/gatehouse.error';

/**
 * How the holder authenticated, in RFC 8176 vocabulary: `pwd` for a password, `mtls` for a
 * verified client certificate (RFC 8176 section 2 registers both).
 */
export type AuthenticationMethod = 'pwd' | 'mtls';

export const AUTHENTICATION_METHODS: readonly AuthenticationMethod[] = ['pwd', 'mtls'];

/** The RFC 9068 `typ` header of our access tokens. */
export const ACCESS_TOKEN_TYPE = 'at+jwt';

/** Far above any token we issue (well under 2 kB); longer input is refused unparsed. */
export const MAX_TOKEN_LENGTH = 4096;

/** RFC 8705 certificate confirmation: the SHA-256 thumbprint of the bound certificate. */
export interface CertificateConfirmation {
  'x5t#S256': string;
}

/** The claims of a Gatehouse access token, after verification. */
export interface AccessTokenClaims {
  iss: string;
  aud: string;
  sub: string;
  username: string;
  roles: string[];
  amr: AuthenticationMethod[];
  jti: string;
  iat: number;
  exp: number;
  cnf?: CertificateConfirmation;
}

/** The body of a token response (RFC 6749 section 5.1). */
export interface IssuedToken {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;
const JTI = /^[A-Za-z0-9_-]{16,64}$/;

function invalidToken(detail: string): GatehouseError {
  return new GatehouseError('invalid_token', { detail });
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((entry) => typeof entry === 'string');
}

function readAmr(value: unknown): AuthenticationMethod[] {
  if (!isStringArray(value) || value.length === 0) {
    throw invalidToken('amr is not a non-empty array of strings');
  }
  if (!value.every((method) => (AUTHENTICATION_METHODS as readonly string[]).includes(method))) {
    throw invalidToken('amr holds a method Gatehouse does not issue');
  }
  return value as AuthenticationMethod[];
}

function readConfirmation(value: unknown): CertificateConfirmation | undefined {
  if (value === undefined) {
    return undefined;
  }
  const thumbprint = (value as Record<string, unknown> | null)?.['x5t#S256'];
  if (typeof value !== 'object' || value === null || Object.keys(value).length !== 1) {
    throw invalidToken('cnf is not a single x5t#S256 confirmation');
  }
  if (typeof thumbprint !== 'string' || !THUMBPRINT.test(thumbprint)) {
    throw invalidToken('cnf x5t#S256 is not a SHA-256 thumbprint');
  }
  return { 'x5t#S256': thumbprint };
}

/**
 * Checks the shape of a payload whose signature, issuer, audience and times jose has already
 * verified. Only tokens we signed get here, so a mismatch means a bug or a stolen key: refuse.
 */
export function readAccessTokenClaims(payload: JWTPayload): AccessTokenClaims {
  const { iss, aud, sub, jti, iat, exp } = payload;
  if (typeof iss !== 'string' || typeof aud !== 'string') {
    throw invalidToken('iss or aud is not a single string');
  }
  if (typeof sub !== 'string' || !UUID.test(sub)) {
    throw invalidToken('sub is not a user id');
  }
  if (typeof jti !== 'string' || !JTI.test(jti)) {
    throw invalidToken('jti is missing or malformed');
  }
  if (!Number.isSafeInteger(iat) || !Number.isSafeInteger(exp)) {
    throw invalidToken('iat or exp is not a whole number of seconds');
  }
  if (typeof payload.username !== 'string' || !isStringArray(payload.roles)) {
    throw invalidToken('username or roles is malformed');
  }
  const claims: AccessTokenClaims = {
    iss,
    aud,
    sub,
    username: payload.username,
    roles: payload.roles,
    amr: readAmr(payload.amr),
    jti,
    iat: iat!,
    exp: exp!,
  };
  const cnf = readConfirmation(payload.cnf);
  return cnf === undefined ? claims : { ...claims, cnf };
}

/**
 * A bound token is good only with the certificate it was issued to, presented on this request;
 * a token issued without a certificate is not bound and is accepted with or without one.
 */
export function checkCertificateConfirmation(
  claims: Pick<AccessTokenClaims, 'cnf'>,
  presentedThumbprint: string | null,
): void {
  const expected = claims.cnf?.['x5t#S256'];
  if (expected === undefined) {
    return;
  }
  if (presentedThumbprint === null) {
    throw invalidToken('token is bound to a certificate and none was presented');
  }
  if (presentedThumbprint !== expected) {
    throw invalidToken('token is bound to another certificate than the one presented');
  }
}

/**
 * The `iat` to write into a new token. `iat` has whole seconds while `tokens_valid_after` has
 * milliseconds, so a token issued in the same second right after an invalidation would read as
 * older than it and never work; such a token gets the next second instead (at most 1s ahead).
 */
export function issuedAtSeconds(nowMs: number, tokensValidAfter?: Date): number {
  const now = Math.floor(nowMs / 1000);
  const validAfterMs = tokensValidAfter?.getTime();
  if (validAfterMs === undefined || validAfterMs > nowMs) {
    return now;
  }
  return Math.max(now, Math.ceil(validAfterMs / 1000));
}

/**
 * Tokens issued before the user's `tokens_valid_after` were invalidated (disable, new password).
 */
export function checkIssuedAfter(claims: Pick<AccessTokenClaims, 'iat'>, validAfter: Date): void {
  if (claims.iat * 1000 < validAfter.getTime()) {
    throw invalidToken('token was issued before the user invalidated their tokens');
  }
}
