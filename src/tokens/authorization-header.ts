import type { IncomingHttpHeaders } from 'node:http';
import { GatehouseError } from '../common/gatehouse.error';
import { MAX_TOKEN_LENGTH } from './access-token';

const BEARER_PREFIX = 'bearer ';
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** The parts of a raw request the header reader needs. */
export interface AuthorizationSource {
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
}

function invalidToken(detail: string): GatehouseError {
  return new GatehouseError('invalid_token', { detail });
}

function countAuthorizationHeaders(rawHeaders: string[]): number {
  let count = 0;
  for (let index = 0; index < rawHeaders.length; index += 2) {
    if (rawHeaders[index].toLowerCase() === 'authorization') {
      count += 1;
    }
  }
  return count;
}

/**
 * Reads `Authorization: Bearer <compact JWS>` (RFC 6750 section 2.1). Node keeps only the first
 * of repeated Authorization headers, so the raw list is counted: two headers may mean a proxy and
 * a client disagree about who is calling, and are refused rather than guessed between.
 */
export function readBearerToken(source: AuthorizationSource): string {
  const count = countAuthorizationHeaders(source.rawHeaders);
  if (count !== 1) {
    throw invalidToken(count === 0 ? 'no Authorization header' : 'several Authorization headers');
  }
  const value = source.headers.authorization;
  if (typeof value !== 'string' || value.length > BEARER_PREFIX.length + MAX_TOKEN_LENGTH) {
    throw invalidToken('Authorization header is missing or too long');
  }
  if (value.slice(0, BEARER_PREFIX.length).toLowerCase() !== BEARER_PREFIX) {
    throw invalidToken('Authorization scheme is not Bearer');
  }
  const token = value.slice(BEARER_PREFIX.length);
  if (!COMPACT_JWS.test(token)) {
    throw invalidToken('bearer token is not a compact JWS');
  }
  return token;
}
