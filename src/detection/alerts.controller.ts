import { Controller, Get, Inject, Param, Patch, Query, Req, UseGuards } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { FastifyRequest } from 'fastify';
import { DataSource } from 'typeorm';
import { GatehouseError, invalidRequest } from '../common/gatehouse.error';
import { ClientCertificateResolver } from '../mtls/client-certificate.resolver';
import { CLIENT_CERTIFICATE_RESOLVER } from '../mtls/mtls.module';
import { AdminGuard } from '../tokens/admin.guard';
import { authenticatedPrincipal } from '../tokens/authenticated-principal';
import { DETECTION_RULES } from '../config/app-config';
import { FINDING_STATUSES, Finding, FindingStatus } from './finding';
import { FindingCursor, FindingsStore } from './findings.store';

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
const QUERY_KEYS = new Set(['limit', 'cursor', 'status', 'rule']);
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_BODY_BYTES = 1024;

type AlertsQuery = Record<string, unknown>;

function singleValue(query: AlertsQuery, key: string): string | undefined {
  const value = query[key];
  if (value === undefined) {
    return undefined;
  }
  if (typeof value !== 'string') {
    throw invalidRequest(`${key} given more than once`, `${key} must be given once`);
  }
  return value;
}

function parseLimit(text: string | undefined): number {
  if (text === undefined) {
    return DEFAULT_LIMIT;
  }
  if (!/^\d{1,4}$/.test(text) || Number(text) < 1 || Number(text) > MAX_LIMIT) {
    throw invalidRequest('bad limit', `limit must be a whole number from 1 to ${MAX_LIMIT}`);
  }
  return Number(text);
}

export function encodeCursor(finding: Finding): string {
  return Buffer.from(JSON.stringify([finding.last_seen, finding.id])).toString('base64url');
}

function decodeCursor(text: string | undefined): FindingCursor | undefined {
  if (text === undefined) {
    return undefined;
  }
  try {
    const [lastSeen, id] = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown[];
    if (
      typeof lastSeen === 'string' &&
      typeof id === 'string' &&
      UUID_PATTERN.test(id) &&
      !Number.isNaN(Date.parse(lastSeen))
    ) {
      return { lastSeen, id };
    }
  } catch {
    // Answered below like any other malformed cursor.
  }
  throw invalidRequest('bad cursor', 'cursor is not one this API returned');
}

function oneOf<T extends string>(text: string | undefined, allowed: readonly T[], key: string) {
  if (text !== undefined && !(allowed as readonly string[]).includes(text)) {
    throw invalidRequest(`bad ${key}`, `${key} must be one of ${allowed.join(', ')}`);
  }
  return text as T | undefined;
}

/** The PATCH body: exactly `{ "status": "open" | "resolved" }`, JSON. */
function parseStatusBody(request: FastifyRequest): FindingStatus {
  let body: unknown = request.body;
  if (Buffer.isBuffer(body) || typeof body === 'string') {
    const contentType = String(request.headers['content-type'] ?? '');
    if (!/^application\/json\s*(;|$)/i.test(contentType)) {
      throw invalidRequest('alert update without JSON', 'the body must be application/json');
    }
    if (body.length > MAX_BODY_BYTES) {
      throw invalidRequest('alert update body too large', 'the body is too large');
    }
    try {
      body = JSON.parse(body.toString()) as unknown;
    } catch {
      throw invalidRequest('alert update body not JSON', 'the body is not valid JSON');
    }
  }
  const fields = body !== null && typeof body === 'object' ? Object.keys(body) : [];
  const status = (body as { status?: unknown } | null)?.status;
  if (
    Array.isArray(body) ||
    fields.length !== 1 ||
    typeof status !== 'string' ||
    !(FINDING_STATUSES as readonly string[]).includes(status)
  ) {
    throw invalidRequest('bad alert update', 'the body must be {"status": "open" | "resolved"}');
  }
  return status as FindingStatus;
}

/** Detection findings for administrators: listed newest first, and resolved or reopened. */
@Controller('audit/alerts')
@UseGuards(AdminGuard)
export class AlertsController {
  private readonly findings: FindingsStore;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(CLIENT_CERTIFICATE_RESOLVER) private readonly resolver: ClientCertificateResolver,
  ) {
    this.findings = new FindingsStore(dataSource);
  }

  @Get()
  async list(
    @Query() query: AlertsQuery,
  ): Promise<{ items: Finding[]; next_cursor: string | null }> {
    const unknown = Object.keys(query ?? {}).filter((key) => !QUERY_KEYS.has(key));
    if (unknown.length > 0) {
      throw invalidRequest('unknown alerts parameter', `unknown parameter: ${unknown[0]}`);
    }
    const limit = parseLimit(singleValue(query, 'limit'));
    const items = await this.findings.list({
      limit: limit + 1,
      cursor: decodeCursor(singleValue(query, 'cursor')),
      status: oneOf(singleValue(query, 'status'), FINDING_STATUSES, 'status'),
      rule: oneOf(singleValue(query, 'rule'), DETECTION_RULES, 'rule'),
    });
    const page = items.slice(0, limit);
    const more = items.length > limit;
    return { items: page, next_cursor: more ? encodeCursor(page[page.length - 1]) : null };
  }

  @Patch(':id')
  async update(@Param('id') id: string, @Req() request: FastifyRequest): Promise<Finding> {
    const status = parseStatusBody(request);
    if (!UUID_PATTERN.test(id)) {
      throw new GatehouseError('not_found', { detail: 'alert id is not a uuid' });
    }
    const finding = await this.findings.setStatus(id, status);
    if (!finding) {
      throw new GatehouseError('not_found', { detail: 'unknown alert' });
    }
    await this.recordAction(request, finding);
    return finding;
  }

  private async recordAction(request: FastifyRequest, finding: Finding): Promise<void> {
    const { claims } = authenticatedPrincipal(request);
    const address = this.resolver.clientAddress(request.raw);
    await this.dataSource.query(
      `INSERT INTO admin_actions
         (actor, actor_user_id, action, target, detail, client_ip, request_id)
       VALUES ($1, $2, 'alert_status', $3, $4::jsonb, $5, $6)`,
      [
        claims.username,
        claims.sub,
        finding.id,
        JSON.stringify({ status: finding.status, rule: finding.rule }),
        address.ok ? address.clientIp : null,
        String(request.id),
      ],
    );
  }
}
