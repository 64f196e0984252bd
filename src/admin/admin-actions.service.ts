import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { FastifyRequest } from 'fastify';
import { DataSource } from 'typeorm';
import { canonicalIp } from '../mtls/client-ip';
import { ClientCertificateResolver } from '../mtls/client-certificate.resolver';
import { CLIENT_CERTIFICATE_RESOLVER } from '../mtls/mtls.module';
import { authenticatedPrincipal } from '../tokens/authenticated-principal';

/** What an administrator did: a stable action name, its target and details without secrets. */
export interface AdminAction {
  /** Dotted name such as `audit.attempts` or `users.unlock`. */
  action: string;
  target?: string | null;
  detail?: Record<string, unknown>;
}

/**
 * Records what administrators do over HTTP in `admin_actions`, beside the CLI's entries, with
 * the actor from the request's verified token and the client address from trusted hops only.
 * Call it after the admin guard admitted the request; `detail` must hold no secret.
 */
@Injectable()
export class AdminActionsService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(CLIENT_CERTIFICATE_RESOLVER) private readonly resolver: ClientCertificateResolver,
  ) {}

  async record(request: FastifyRequest, entry: AdminAction): Promise<void> {
    const { claims } = authenticatedPrincipal(request);
    await this.dataSource.query(
      `INSERT INTO admin_actions
         (actor, actor_user_id, action, target, detail, client_ip, request_id)
       VALUES ($1, $2, $3, $4, $5::jsonb, $6::inet, $7)`,
      [
        claims.username,
        claims.sub,
        entry.action,
        entry.target ?? null,
        JSON.stringify(entry.detail ?? {}),
        this.clientIp(request),
        String(request.id),
      ],
    );
  }

  private clientIp(request: FastifyRequest): string | null {
    const address = this.resolver.clientAddress(request.raw);
    return address.ok ? address.clientIp : canonicalIp(request.raw.socket.remoteAddress ?? '');
  }
}
