import { All, Controller, Get, Header, HttpCode, Post, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AuthenticationMethod } from './access-token';
import { authenticatedPrincipal, boundCertificateFingerprint } from './authenticated-principal';
import { BearerAuthGuard } from './bearer-auth.guard';
import { TokenService } from './token.service';

export interface MeResponse {
  username: string;
  roles: string[];
  /** Hex SHA-256 of the certificate the token is bound to, or null for an unbound token. */
  certificate_fingerprint: string | null;
  amr: AuthenticationMethod[];
}

/** Identity headers of a 200 from /auth/verify; values are percent-encoded UTF-8 (RFC 3986). */
export const IDENTITY_RESPONSE_HEADERS = {
  user: 'x-auth-user',
  userId: 'x-auth-user-id',
  roles: 'x-auth-roles',
  certificateFingerprint: 'x-auth-certificate-fingerprint',
} as const;

/** Endpoints for the holder of a bearer token. */
@Controller('auth')
@UseGuards(BearerAuthGuard)
export class TokensController {
  constructor(private readonly tokens: TokenService) {}

  @Get('me')
  @Header('Cache-Control', 'no-store')
  me(@Req() request: FastifyRequest): MeResponse {
    const { claims } = authenticatedPrincipal(request);
    return {
      username: claims.username,
      roles: claims.roles,
      certificate_fingerprint: boundCertificateFingerprint(claims),
      amr: claims.amr,
    };
  }

  /**
   * For a proxy's subrequest: nginx `auth_request` (which repeats the client's method) and Envoy
   * ext_authz in HTTP mode (which repeats the method and appends the original path to its
   * `path_prefix`), hence any method and any path below /auth/verify. A 200 carries
   * X-Auth-User (the username), X-Auth-User-Id, X-Auth-Roles (comma-separated) and, for a
   * certificate-bound token, X-Auth-Certificate-Fingerprint (hex SHA-256). Names and roles are
   * percent-encoded (encodeURIComponent) so any Unicode name survives a header. The proxy must
   * drop these headers from client requests and set them from this response only.
   *
   * The trailing `*` is Fastify's (find-my-way) wildcard: controller routes go to it unconverted,
   * and it refuses path-to-regexp's `{*path}`, which only middleware paths accept.
   */
  @All(['verify', 'verify/*'])
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  verify(@Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): void {
    const { claims } = authenticatedPrincipal(request);
    reply.header(IDENTITY_RESPONSE_HEADERS.user, encodeURIComponent(claims.username));
    reply.header(IDENTITY_RESPONSE_HEADERS.userId, claims.sub);
    reply.header(
      IDENTITY_RESPONSE_HEADERS.roles,
      claims.roles.map((role) => encodeURIComponent(role)).join(','),
    );
    const fingerprint = boundCertificateFingerprint(claims);
    if (fingerprint !== null) {
      reply.header(IDENTITY_RESPONSE_HEADERS.certificateFingerprint, fingerprint);
    }
  }

  /** Revokes this token on every replica; other tokens of the user stay valid. */
  @Post('logout')
  @HttpCode(204)
  async logout(@Req() request: FastifyRequest): Promise<void> {
    await this.tokens.revoke(authenticatedPrincipal(request).claims);
  }
}
