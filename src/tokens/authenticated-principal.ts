import { GatehouseError } from '../common/gatehouse.error';
import { VerifiedCertificate } from '../mtls/verified-certificate';
import { AccessTokenClaims } from './access-token';

/** Who made a request, as the bearer guard established it. */
export interface AuthenticatedPrincipal {
  claims: AccessTokenClaims;
  /** The certificate verified on this request, if any (bound to the token or not). */
  certificate: VerifiedCertificate | null;
}

/** A Fastify request (its `raw` is the key) or the raw Node request itself. */
type RequestLike = object & { raw?: object };

const principals = new WeakMap<object, AuthenticatedPrincipal>();

function keyOf(request: RequestLike): object {
  return request.raw ?? request;
}

export function attachPrincipal(request: RequestLike, principal: AuthenticatedPrincipal): void {
  principals.set(keyOf(request), principal);
}

export function findAuthenticatedPrincipal(request: RequestLike): AuthenticatedPrincipal | null {
  return principals.get(keyOf(request)) ?? null;
}

/**
 * The principal of a request that passed BearerAuthGuard. On a route without the guard this
 * refuses the request instead of serving it anonymously.
 */
export function authenticatedPrincipal(request: RequestLike): AuthenticatedPrincipal {
  const principal = findAuthenticatedPrincipal(request);
  if (principal === null) {
    throw new GatehouseError('invalid_token', {
      detail: 'no authenticated principal: the route is missing BearerAuthGuard',
    });
  }
  return principal;
}

/** The hex SHA-256 fingerprint of the certificate the token is bound to, or null. */
export function boundCertificateFingerprint(claims: AccessTokenClaims): string | null {
  const thumbprint = claims.cnf?.['x5t#S256'];
  return thumbprint === undefined ? null : Buffer.from(thumbprint, 'base64url').toString('hex');
}
