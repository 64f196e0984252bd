import type { FastifyRequest } from 'fastify';
import { AttemptContext, attachAttempt, attemptOf } from '../audit/attempt-context';
import { AttemptMethod } from '../common/attempt-outcome';
import { invalidRequest } from '../common/gatehouse.error';
import { canonicalIp } from '../mtls/client-ip';
import { ClientCertificateResolver } from '../mtls/client-certificate.resolver';

const MAX_USER_AGENT = 512;

function headerText(value: string | string[] | undefined, max: number): string | null {
  const text = Array.isArray(value) ? value.join(', ') : value;
  return text === undefined ? null : text.slice(0, max);
}

/**
 * Starts the attempt context of a login request, once: the request id, the client address from
 * trusted hops only, and the user agent. A trusted proxy's request without X-Forwarded-For is
 * malformed; the context is attached first so that even that refusal is recorded.
 */
export function startAttempt(
  request: FastifyRequest,
  method: AttemptMethod,
  resolver: ClientCertificateResolver,
): AttemptContext {
  const existing = attemptOf(request);
  if (existing) {
    return existing;
  }
  const address = resolver.clientAddress(request.raw);
  const attempt: AttemptContext = {
    requestId: String(request.id),
    method,
    receivedAt: new Date(),
    startedAt: process.hrtime.bigint(),
    clientIp: address.ok ? address.clientIp : canonicalIp(request.raw.socket.remoteAddress ?? ''),
    forwardedFor: address.ok ? address.forwardedFor : null,
    userAgent: headerText(request.headers['user-agent'], MAX_USER_AGENT),
    usernameResolved: false,
    reachedHash: false,
    recorded: false,
  };
  attachAttempt(request, attempt);
  if (!address.ok) {
    throw invalidRequest(address.detail, 'forwarding headers are malformed');
  }
  return attempt;
}

export function elapsedMs(attempt: AttemptContext): number {
  return Number(process.hrtime.bigint() - attempt.startedAt) / 1e6;
}
