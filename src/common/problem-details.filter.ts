import {
  ArgumentsHost,
  Catch,
  ExceptionFilter,
  HttpException,
  Inject,
  Logger,
} from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { attemptOf } from '../audit/attempt-context';
import { AuditUnavailableError } from '../audit/audit-writer';
import { startAttempt } from '../auth/attempt-factory';
import { AttemptFinisher } from '../auth/attempt-finisher.service';
import { ClientCertificateResolver } from '../mtls/client-certificate.resolver';
import { CLIENT_CERTIFICATE_RESOLVER } from '../mtls/mtls.module';
import { LimiterUnavailableError } from '../throttling/limiter.errors';
import { HashQueueFullError } from '../users/hash-scheduler';
import { AttemptMethod } from './attempt-outcome';
import { ErrorCode, GatehouseError, problemStatus, problemTitle } from './gatehouse.error';

const LOGIN_ROUTES: Record<string, AttemptMethod> = {
  '/auth/login': 'password',
  '/auth/certificate': 'certificate',
};

/** Maps anything thrown to a GatehouseError; internal detail stays in the log. */
function toGatehouseError(exception: unknown): GatehouseError {
  if (exception instanceof GatehouseError) {
    return exception;
  }
  if (
    exception instanceof AuditUnavailableError ||
    exception instanceof HashQueueFullError ||
    exception instanceof LimiterUnavailableError
  ) {
    return new GatehouseError('unavailable', { outcome: 'unavailable', detail: exception.message });
  }
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    if (status === 404 || status === 405) {
      return new GatehouseError('not_found', { detail: exception.message });
    }
    if (status === 401) {
      return new GatehouseError('invalid_credentials', { outcome: 'bad_password' });
    }
    if (status === 403) {
      return new GatehouseError('forbidden');
    }
    if (status === 429) {
      return new GatehouseError('too_many_attempts', {
        outcome: 'throttled',
        retryAfterSeconds: 60,
      });
    }
    if (status >= 400 && status < 500) {
      // Fastify refuses some requests before any guard: 413 over the body limit, 415, bad JSON.
      return new GatehouseError('invalid_request', {
        outcome: 'invalid_request',
        detail: exception.message,
        publicDetail: status === 413 ? 'body is too large' : 'request is malformed',
      });
    }
  }
  return new GatehouseError('unavailable', {
    outcome: 'unavailable',
    detail: exception instanceof Error ? exception.message : 'unknown error',
  });
}

function loginMethodOf(request: FastifyRequest): AttemptMethod | undefined {
  if (request.method !== 'POST') {
    return undefined;
  }
  const path = (request.raw.url ?? '').split('?')[0];
  return LOGIN_ROUTES[path];
}

/**
 * The one place errors become HTTP: RFC 9457 problem+json with a stable `error` code,
 * WWW-Authenticate on every 401 and Retry-After on 429. Login attempts that end here are
 * recorded first, and 401s that never reached the hash are padded to the hash's median.
 */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = new Logger(ProblemDetailsFilter.name);

  constructor(
    private readonly finisher: AttemptFinisher,
    @Inject(CLIENT_CERTIFICATE_RESOLVER) private readonly resolver: ClientCertificateResolver,
  ) {}

  async catch(exception: unknown, host: ArgumentsHost): Promise<void> {
    const request = host.switchToHttp().getRequest<FastifyRequest>();
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    let error = toGatehouseError(exception);
    if (error.status >= 500 || !(exception instanceof GatehouseError)) {
      this.logger.warn({ requestId: request.id, code: error.code, detail: error.message });
    }
    const method = loginMethodOf(request);
    if (method) {
      error = await this.finishAttempt(request, method, error);
    }
    this.send(reply, request, error);
  }

  private async finishAttempt(
    request: FastifyRequest,
    method: AttemptMethod,
    error: GatehouseError,
  ): Promise<GatehouseError> {
    let attempt = attemptOf(request);
    if (!attempt) {
      try {
        attempt = startAttempt(request, method, this.resolver);
      } catch {
        attempt = attemptOf(request);
      }
    }
    if (!attempt) {
      return error;
    }
    const outcome = error.outcome ?? 'invalid_request';
    const recorded = await this.finisher.finish(attempt, outcome);
    if (!recorded) {
      return new GatehouseError('unavailable', { outcome: 'unavailable' });
    }
    if (error.status === 401 && !attempt.reachedHash) {
      await this.finisher.pad(attempt);
    }
    return error;
  }

  private send(reply: FastifyReply, request: FastifyRequest, error: GatehouseError): void {
    if (reply.sent) {
      return;
    }
    const code: ErrorCode = error.code;
    const body: Record<string, unknown> = {
      type: `urn:gatehouse:error:${code}`,
      title: problemTitle(code),
      status: problemStatus(code),
      error: code,
    };
    if (code === 'invalid_request' && error.options.publicDetail) {
      body.detail = error.options.publicDetail;
    }
    reply.header('content-type', 'application/problem+json');
    reply.header('cache-control', 'no-store');
    reply.header('x-request-id', String(request.id));
    if (error.status === 401) {
      reply.header(
        'www-authenticate',
        code === 'invalid_token'
          ? 'Bearer realm="gatehouse", error="invalid_token"'
          : 'Bearer realm="gatehouse"',
      );
    }
    if (error.options.retryAfterSeconds !== undefined) {
      reply.header('retry-after', String(Math.max(1, Math.ceil(error.options.retryAfterSeconds))));
    }
    reply.status(error.status).send(JSON.stringify(body));
  }
}
