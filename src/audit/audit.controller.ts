import {
  Controller,
  Get,
  Header,
  Param,
  Req,
  Res,
  UseGuards,
  applyDecorators,
} from '@nestjs/common';
import { ApiParam, ApiProduces, ApiQuery } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AdminActionsService } from '../admin/admin-actions.service';
import { GatehouseError } from '../common/gatehouse.error';
import { AdminGuard } from '../tokens/admin.guard';
import { csvStream, ndjsonStream } from './attempt-export';
import {
  describeFilters,
  parseAttemptExportQuery,
  parseAttemptListQuery,
  parseSummaryWindow,
  refuseQueryParameters,
} from './audit-parameters';
import { AttemptItem, AttemptPage, AuditQueryService, AuditSummary } from './audit-query.service';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_RECORDED_TARGET = 100;

/** The filters of the attempts list and the export, for the OpenAPI document. */
function ApiAttemptFilters(): MethodDecorator {
  const optional = (name: string, description: string) =>
    ApiQuery({ name, required: false, type: String, description });
  return applyDecorators(
    optional('username', 'Normalised like logins; matches stored names and keyed hashes alike'),
    optional('ip', 'An address (canonicalised) or a CIDR range'),
    optional('outcome', 'One outcome, or several separated by commas'),
    optional('method', '`password` or `certificate`'),
    optional('fingerprint', 'SHA-256 of the certificate: hex, colon hex or base64url'),
    optional('since', 'Inclusive: ISO 8601 timestamp, or a duration before now such as `15m`'),
    optional('until', 'Exclusive: ISO 8601 timestamp, or a duration before now'),
    optional('sort', '`-occurred_at` (default, newest first) or `occurred_at`'),
  );
}

/** What a handler will do once its request is recorded: the detail to record, then the work. */
interface AuditedWork<T> {
  target?: string | null;
  detail: Record<string, unknown>;
  run(): Promise<T>;
}

/**
 * The audit trail for administrators: attempts (paged and filtered), one attempt, a summary of
 * a recent window, and a streamed export. Every call, refused ones included, is recorded in
 * `admin_actions` once the admin guard admitted it.
 */
@Controller('audit')
@UseGuards(AdminGuard)
export class AuditController {
  constructor(
    private readonly audit: AuditQueryService,
    private readonly adminActions: AdminActionsService,
  ) {}

  @Get('attempts')
  @Header('Cache-Control', 'no-store')
  @ApiAttemptFilters()
  @ApiQuery({
    name: 'limit',
    required: false,
    type: Number,
    description: '1 to 1000, 100 by default',
  })
  @ApiQuery({
    name: 'cursor',
    required: false,
    type: String,
    description: '`next_cursor` of the previous page, with the same filters and sort',
  })
  attempts(@Req() request: FastifyRequest): Promise<AttemptPage> {
    return this.audited(request, 'audit.attempts', () => {
      const query = parseAttemptListQuery(request.raw.url ?? '', new Date());
      return {
        detail: {
          filters: describeFilters(query.filters),
          limit: query.limit,
          sort: query.sort,
          cursor: query.cursor !== undefined,
        },
        run: () => this.audit.listAttempts(query),
      };
    });
  }

  @Get('attempts/:id')
  @Header('Cache-Control', 'no-store')
  @ApiParam({ name: 'id', type: String, format: 'uuid' })
  attempt(@Req() request: FastifyRequest, @Param('id') id: string): Promise<AttemptItem> {
    return this.audited(request, 'audit.attempt', () => {
      refuseQueryParameters(request.raw.url ?? '');
      if (!UUID.test(id)) {
        throw new GatehouseError('invalid_request', {
          detail: 'audit attempt id is not a UUID',
          publicDetail: 'the attempt id is not a UUID',
        });
      }
      return { target: id.toLowerCase(), detail: {}, run: () => this.audit.findAttempt(id) };
    });
  }

  @Get('summary')
  @Header('Cache-Control', 'no-store')
  @ApiQuery({
    name: 'window',
    required: false,
    type: String,
    description: '1s to 30d, 15m by default',
  })
  summary(@Req() request: FastifyRequest): Promise<AuditSummary> {
    return this.audited(request, 'audit.summary', () => {
      const windowMs = parseSummaryWindow(request.raw.url ?? '');
      return { detail: { window_ms: windowMs }, run: () => this.audit.summarize(windowMs) };
    });
  }

  @Get('export')
  @ApiAttemptFilters()
  @ApiQuery({ name: 'format', required: false, enum: ['ndjson', 'csv'] })
  @ApiProduces('application/x-ndjson', 'text/csv')
  async export(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const opened = await this.audited(request, 'audit.export', () => {
      const query = parseAttemptExportQuery(request.raw.url ?? '', new Date());
      return {
        detail: { filters: describeFilters(query.filters), sort: query.sort, format: query.format },
        run: async () => ({ format: query.format, ...(await this.audit.openExport(query)) }),
      };
    });
    const csv = opened.format === 'csv';
    await reply
      .header('content-type', csv ? 'text/csv; charset=utf-8' : 'application/x-ndjson')
      .header('content-disposition', `attachment; filename="attempts.${opened.format}"`)
      .header('cache-control', 'no-store')
      .header('x-settled-until', opened.settledUntil)
      .send(csv ? csvStream(opened.rows) : ndjsonStream(opened.rows));
  }

  /** Parses the request, records it (or its refusal) in `admin_actions`, then does the work. */
  private async audited<T>(
    request: FastifyRequest,
    action: string,
    prepare: () => AuditedWork<T>,
  ): Promise<T> {
    let work: AuditedWork<T>;
    try {
      work = prepare();
    } catch (error) {
      const refusal = error instanceof GatehouseError ? error.options.publicDetail : undefined;
      await this.adminActions.record(request, {
        action,
        target: this.rawTarget(request),
        detail: { refused: refusal ?? 'invalid request' },
      });
      throw error;
    }
    await this.adminActions.record(request, {
      action,
      target: work.target ?? null,
      detail: work.detail,
    });
    return work.run();
  }

  private rawTarget(request: FastifyRequest): string | null {
    const id = (request.params as Record<string, string | undefined>).id;
    return id === undefined ? null : id.slice(0, MAX_RECORDED_TARGET);
  }
}
