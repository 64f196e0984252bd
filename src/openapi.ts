import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import type { FastifyInstance } from 'fastify';
import { ErrorCode, problemStatus, problemTitle } from './common/gatehouse.error';

/** Every stable error code; a `Record` so that a new code fails to compile until listed here. */
const ERROR_CODES: Record<ErrorCode, true> = {
  invalid_request: true,
  invalid_credentials: true,
  invalid_token: true,
  forbidden: true,
  not_found: true,
  too_many_attempts: true,
  unavailable: true,
};

/**
 * Which error codes each group of routes can answer, by path prefix (first match wins). Kept here
 * rather than as decorators on every handler, so a new route under a known prefix is described
 * the moment it exists; a route under no prefix gets the codes any route can answer.
 */
const ERRORS_BY_PATH: Array<{ prefix: string; tag: string; codes: ErrorCode[] }> = [
  {
    prefix: '/auth/login',
    tag: 'login',
    codes: ['invalid_request', 'invalid_credentials', 'too_many_attempts', 'unavailable'],
  },
  {
    prefix: '/auth/certificate',
    tag: 'login',
    codes: ['invalid_request', 'invalid_credentials', 'too_many_attempts', 'unavailable'],
  },
  { prefix: '/auth/', tag: 'tokens', codes: ['invalid_token', 'unavailable'] },
  { prefix: '/.well-known/', tag: 'tokens', codes: ['unavailable'] },
  {
    prefix: '/admin/',
    tag: 'admin',
    codes: [
      'invalid_request',
      'invalid_token',
      'forbidden',
      'not_found',
      'too_many_attempts',
      'unavailable',
    ],
  },
  {
    prefix: '/audit/',
    tag: 'audit',
    codes: ['invalid_request', 'invalid_token', 'forbidden', 'not_found', 'unavailable'],
  },
];

const DEFAULT_ERRORS: ErrorCode[] = ['invalid_request', 'not_found', 'unavailable'];

const PROBLEM_SCHEMA = {
  type: 'object',
  description: 'RFC 9457 problem details; `error` is the stable code clients branch on.',
  required: ['type', 'title', 'status', 'error'],
  properties: {
    type: { type: 'string', example: 'urn:gatehouse:error:invalid_credentials' },
    title: { type: 'string' },
    status: { type: 'integer' },
    error: { type: 'string', enum: Object.keys(ERROR_CODES) },
    detail: { type: 'string', description: 'Only on 400: which field or parameter is wrong.' },
  },
};

const TOKEN_SCHEMA = {
  type: 'object',
  required: ['access_token', 'token_type', 'expires_in'],
  properties: {
    access_token: { type: 'string' },
    token_type: { type: 'string', enum: ['Bearer'] },
    expires_in: { type: 'integer', description: 'Seconds' },
  },
};

const CREDENTIALS_SCHEMA = {
  type: 'object',
  required: ['username', 'password'],
  properties: { username: { type: 'string' }, password: { type: 'string', format: 'password' } },
};

const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

type Operation = {
  tags?: string[];
  responses: Record<string, unknown>;
  requestBody?: unknown;
  security?: Array<Record<string, string[]>>;
};

function errorResponses(codes: ErrorCode[]): Record<string, unknown> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    byStatus.set(problemStatus(code), [...(byStatus.get(problemStatus(code)) ?? []), code]);
  }
  const responses: Record<string, unknown> = {};
  for (const [status, statusCodes] of [...byStatus].sort(([a], [b]) => a - b)) {
    const headers: Record<string, unknown> = {};
    if (status === 401) {
      headers['WWW-Authenticate'] = { schema: { type: 'string' } };
    }
    if (status === 429) {
      headers['Retry-After'] = { schema: { type: 'integer' }, description: 'Seconds' };
    }
    responses[String(status)] = {
      description: statusCodes.map((code) => `\`${code}\`: ${problemTitle(code)}`).join('; '),
      headers,
      content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
    };
  }
  return responses;
}

function describeOperation(path: string, method: string, operation: Operation): void {
  const group = ERRORS_BY_PATH.find((entry) => path.startsWith(entry.prefix));
  operation.tags = operation.tags?.length ? operation.tags : [group?.tag ?? 'other'];
  const errors = errorResponses(group?.codes ?? DEFAULT_ERRORS);
  operation.responses = { ...errors, ...operation.responses };
  if (group?.tag === 'login' && method === 'post') {
    operation.requestBody ??= {
      required: path === '/auth/login',
      content: {
        'application/json': { schema: CREDENTIALS_SCHEMA },
        'application/x-www-form-urlencoded': { schema: CREDENTIALS_SCHEMA },
      },
    };
    operation.responses['200'] = {
      description: 'An access token',
      content: { 'application/json': { schema: TOKEN_SCHEMA } },
    };
  } else if (group !== undefined && group.tag !== 'login' && path !== '/.well-known/jwks.json') {
    operation.security ??= [{ bearer: [] }];
  }
}

/**
 * The OpenAPI document of the public port: every route Nest knows, each with the problem+json
 * answers it can give. Built from the running application, so it never lists a route that does
 * not exist; docs/openapi.json is this document, regenerated by `node scripts/openapi.js`.
 */
export function createOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Gatehouse')
    .setDescription(
      'Authentication service: mutual TLS and password login, access tokens, audit trail. ' +
        'Errors are application/problem+json (RFC 9457) with a stable `error` code.',
    )
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }, 'bearer')
    .build();
  const document = SwaggerModule.createDocument(app, config);
  document.components = {
    ...document.components,
    schemas: { ...document.components?.schemas, Problem: PROBLEM_SCHEMA },
  };
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(item as Record<string, Operation>)) {
      if (HTTP_METHODS.has(method)) {
        describeOperation(path, method, operation);
      } else if (!method.startsWith('x-') && method !== 'parameters') {
        // Methods OpenAPI cannot express, such as SEARCH from an @All route.
        delete (item as Record<string, unknown>)[method];
      }
    }
  }
  return document;
}

/** Serves the document at GET /docs and /docs/json, outside Nest's routes and the document. */
export function serveOpenApiDocument(instance: FastifyInstance, document: OpenAPIObject): void {
  const body = JSON.stringify(document);
  for (const url of ['/docs', '/docs/json']) {
    instance.get(url, (_request, reply) => {
      void reply.header('content-type', 'application/json; charset=utf-8').send(body);
    });
  }
}
