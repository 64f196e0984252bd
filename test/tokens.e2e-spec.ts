import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  ArgumentsHost,
  Catch,
  Controller,
  DynamicModule,
  ExceptionFilter,
  Get,
  Global,
  Module,
  UseGuards,
} from '@nestjs/common';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { FastifyReply } from 'fastify';
import { SignJWT, UnsecuredJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AppConfig } from '../src/config/app-config';
import { loadConfig } from '../src/config/config.loader';
import { APP_CONFIG } from '../src/config/config.module';
import { GatehouseError } from '../src/common/gatehouse.error';
import { DatabaseConnection, openDatabase } from '../src/database/data-source.factory';
import { runMigrations } from '../src/database/migrator';
import { ClientCertificateResolver } from '../src/mtls/client-certificate.resolver';
import { fingerprintOf, thumbprintOf } from '../src/mtls/fingerprint';
import { CLIENT_CERTIFICATE_RESOLVER } from '../src/mtls/mtls.module';
import {
  TestCertificate,
  buildCertificateAuthority,
  buildLeaf,
} from '../src/mtls/testing/certificate-builders';
import { VerifiedCertificate } from '../src/mtls/verified-certificate';
import { AdminGuard } from '../src/tokens/admin.guard';
import { KEY_CACHE_TTL_MS, SigningKeysService } from '../src/tokens/signing-keys.service';
import { TOKEN_CLOCK, TokenClock } from '../src/tokens/token-clock';
import { TokenService } from '../src/tokens/token.service';
import { TokensModule, rotateSigningKeys } from '../src/tokens/tokens.module';

const MAINTENANCE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const CERTIFICATE_HEADER = 'x-test-client-certificate';

/** A clock the spec can move forward; each replica has its own. */
class SteppingClock implements TokenClock {
  offsetMs = 0;

  now(): number {
    return Date.now() + this.offsetMs;
  }
}

function toVerified(certificate: TestCertificate): VerifiedCertificate {
  return {
    fingerprint: fingerprintOf(certificate.der),
    thumbprintS256: thumbprintOf(certificate.der),
    subject: certificate.certificate.subject,
    issuer: certificate.certificate.issuer,
    serialNumber: certificate.certificate.serialNumber,
    notBefore: new Date(certificate.certificate.validFrom),
    notAfter: new Date(certificate.certificate.validTo),
    der: certificate.der,
  };
}

/** Stands in for TLS: the spec names the verified certificate of a request in a test header. */
function stubResolver(certificates: Record<string, VerifiedCertificate>) {
  return {
    mode: 'direct',
    resolve(source: { headers: Record<string, string | string[] | undefined> }) {
      const name = source.headers[CERTIFICATE_HEADER];
      if (name === undefined) {
        return { status: 'absent' };
      }
      if (name === 'forged') {
        return {
          status: 'refused',
          reason: 'spoofed_header',
          detail: 'forged',
          stage: 'forwarded',
        };
      }
      return { status: 'verified', certificate: certificates[name as string] };
    },
  } as unknown as ClientCertificateResolver;
}

@Catch(GatehouseError)
class TestProblemFilter implements ExceptionFilter {
  catch(error: GatehouseError, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    if (error.status === 401) {
      reply.header('www-authenticate', 'Bearer');
    }
    void reply.status(error.status).send({ error: error.code });
  }
}

@Controller('test-admin')
class AdminProbeController {
  @Get()
  @UseGuards(AdminGuard)
  probe(): { ok: true } {
    return { ok: true };
  }
}

@Global()
@Module({})
class ReplicaEnvironmentModule {
  static forRoot(
    config: AppConfig,
    resolver: ClientCertificateResolver,
    clock: TokenClock,
  ): DynamicModule {
    return {
      module: ReplicaEnvironmentModule,
      providers: [
        { provide: APP_CONFIG, useValue: config },
        { provide: CLIENT_CERTIFICATE_RESOLVER, useValue: resolver },
        { provide: TOKEN_CLOCK, useValue: clock },
      ],
      exports: [APP_CONFIG, CLIENT_CERTIFICATE_RESOLVER, TOKEN_CLOCK],
    };
  }
}

interface Replica {
  app: NestFastifyApplication;
  baseUrl: string;
  tokens: TokenService;
  keys: SigningKeysService;
  clock: SteppingClock;
  dataSource: DataSource;
}

async function startReplica(
  config: AppConfig,
  connection: DatabaseConnection,
  resolver: ClientCertificateResolver,
): Promise<Replica> {
  const clock = new SteppingClock();
  const moduleRef = await Test.createTestingModule({
    imports: [
      ReplicaEnvironmentModule.forRoot(config, resolver, clock),
      TypeOrmModule.forRootAsync({
        useFactory: () => ({}),
        dataSourceFactory: async () => connection.dataSource,
      }),
      TokensModule,
    ],
    controllers: [AdminProbeController],
  }).compile();
  const app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter());
  app.useGlobalFilters(new TestProblemFilter());
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address() as { port: number };
  return {
    app,
    baseUrl: `http://127.0.0.1:${address.port}`,
    tokens: app.get(TokenService),
    keys: app.get(SigningKeysService),
    clock,
    dataSource: connection.dataSource,
  };
}

function testConfig(databaseUrl: string | undefined, dataDir?: string): AppConfig {
  return loadConfig({
    ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl }),
    ...(dataDir === undefined ? {} : { DATA_DIR: dataDir }),
    LIMITER_STORE: 'memory',
    AUDIT_USERNAME_KEY: 'tokens-e2e-audit-username-key',
    TOKEN_ISSUER: 'https://gatehouse.test',
    TOKEN_AUDIENCE: 'gatehouse-tests',
    TOKEN_TTL: '15m',
  });
}

async function createUser(
  dataSource: DataSource,
  roles: string[] = [],
): Promise<{ id: string; username: string; roles: string[]; tokensValidAfter: Date }> {
  const username = `user-${randomBytes(4).toString('hex')}`;
  const [row] = (await dataSource.query(
    `INSERT INTO users (username, normalized_username, roles) VALUES ($1, $1, $2)
     RETURNING id, tokens_valid_after`,
    [username, roles],
  )) as Array<{ id: string; tokens_valid_after: Date }>;
  return { id: row.id, username, roles, tokensValidAfter: row.tokens_valid_after };
}

/** Expects a refusal for the stated reason, so a check cannot pass by failing elsewhere. */
async function expectInvalidToken(verification: Promise<unknown>, reason: RegExp): Promise<void> {
  const error = await verification.then(
    () => null,
    (refusal: unknown) => refusal,
  );
  expect(error).toBeInstanceOf(GatehouseError);
  expect(error).toMatchObject({
    code: 'invalid_token',
    options: { detail: expect.stringMatching(reason) },
  });
}

function request(
  baseUrl: string,
  method: string,
  pathname: string,
  headers: http.OutgoingHttpHeaders = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = http.request(`${baseUrl}${pathname}`, { method, headers }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
      );
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

let ownDatabase = false;

/**
 * A database of this spec's own on the server at DATABASE_URL, so rotations and expired keys here
 * touch no other spec; the shared database itself when this role may not create one.
 */
async function createOwnDatabase(maintenance: Client, name: string): Promise<string> {
  try {
    await maintenance.query(`CREATE DATABASE ${name}`);
  } catch (error) {
    process.stdout.write(`tokens e2e: using DATABASE_URL itself (${String(error)})\n`);
    return MAINTENANCE_URL;
  }
  ownDatabase = true;
  const url = new URL(MAINTENANCE_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

describe('Tokens against Postgres (two replicas)', () => {
  const databaseName = `gatehouse_tokens_${randomBytes(5).toString('hex')}`;
  let maintenance: Client;
  let config: AppConfig;
  let connections: DatabaseConnection[] = [];
  let replicaA: Replica;
  let replicaB: Replica;
  let certificateA: VerifiedCertificate;
  let certificateB: VerifiedCertificate;

  beforeAll(async () => {
    maintenance = new Client({ connectionString: MAINTENANCE_URL });
    await maintenance.connect();
    config = testConfig(await createOwnDatabase(maintenance, databaseName));

    const ca = await buildCertificateAuthority();
    certificateA = toVerified(await buildLeaf(ca, { subject: 'CN=alice-a, O=Gatehouse' }));
    certificateB = toVerified(await buildLeaf(ca, { subject: 'CN=alice-b, O=Gatehouse' }));
    const resolver = stubResolver({ A: certificateA, B: certificateB });

    connections = [await openDatabase(config), await openDatabase(config)];
    await runMigrations(connections[0].dataSource, false);
    replicaA = await startReplica(config, connections[0], resolver);
    replicaB = await startReplica(config, connections[1], resolver);
  });

  afterAll(async () => {
    for (const replica of [replicaA, replicaB]) {
      await replica?.app.close();
    }
    for (const connection of connections) {
      await connection.close().catch(() => undefined);
    }
    if (ownDatabase) {
      await maintenance.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
    }
    await maintenance.end();
  });

  afterEach(() => {
    for (const replica of [replicaA, replicaB]) {
      replica.clock.offsetMs = 0;
      replica.keys.invalidate();
    }
  });

  it('creates exactly one active key when replicas start together', async () => {
    const kids = await Promise.all([
      replicaA.keys.ensureActiveKey(),
      replicaB.keys.ensureActiveKey(),
      replicaA.keys.ensureActiveKey(),
      replicaB.keys.ensureActiveKey(),
    ]);

    expect(new Set(kids).size).toBe(1);
    const rows = (await replicaA.dataSource.query(
      'SELECT kid FROM signing_keys WHERE retired_at IS NULL',
    )) as unknown[];
    expect(rows).toHaveLength(1);
  });

  it('issues an EdDSA at+jwt bound to certificate A with the documented claims', async () => {
    const user = await createUser(replicaA.dataSource, ['reader']);

    const issued = await replicaA.tokens.issue({
      user,
      certificate: certificateA,
      amr: ['pwd', 'mtls'],
    });

    expect(issued).toMatchObject({ token_type: 'Bearer', expires_in: 900 });
    const header = decodeProtectedHeader(issued.access_token);
    expect(header).toEqual({ alg: 'EdDSA', kid: expect.any(String), typ: 'at+jwt' });
    const claims = decodeJwt(issued.access_token);
    expect(claims).toMatchObject({
      iss: 'https://gatehouse.test',
      aud: 'gatehouse-tests',
      sub: user.id,
      username: user.username,
      roles: ['reader'],
      amr: ['pwd', 'mtls'],
      cnf: { 'x5t#S256': certificateA.thumbprintS256 },
    });
    expect(claims.exp! - claims.iat!).toBe(900);
    expect(claims.jti).toMatch(/^[A-Za-z0-9_-]{24}$/);
  });

  it('accepts a bound token only with the certificate it was issued to', async () => {
    const user = await createUser(replicaA.dataSource);
    const { access_token } = await replicaA.tokens.issue({
      user,
      certificate: certificateA,
      amr: ['pwd', 'mtls'],
    });

    await expect(
      replicaB.tokens.verify(access_token, certificateA.thumbprintS256),
    ).resolves.toMatchObject({ sub: user.id });
    await expectInvalidToken(
      replicaB.tokens.verify(access_token, certificateB.thumbprintS256),
      /another certificate/,
    );
    await expectInvalidToken(replicaB.tokens.verify(access_token, null), /none was presented/);
  });

  it('accepts an unbound token with or without a certificate', async () => {
    const user = await createUser(replicaA.dataSource);
    const { access_token } = await replicaA.tokens.issue({ user, amr: ['pwd'] });

    await expect(replicaA.tokens.verify(access_token, null)).resolves.toMatchObject({
      amr: ['pwd'],
    });
    await expect(
      replicaA.tokens.verify(access_token, certificateB.thumbprintS256),
    ).resolves.toBeDefined();
    expect(decodeJwt(access_token).cnf).toBeUndefined();
  });

  it('refuses on one replica a token revoked on the other', async () => {
    const user = await createUser(replicaA.dataSource);
    const { access_token } = await replicaA.tokens.issue({ user, amr: ['pwd'] });
    const claims = await replicaB.tokens.verify(access_token, null);

    await replicaA.tokens.revoke(claims);

    await expectInvalidToken(replicaB.tokens.verify(access_token, null), /revoked/);
    await expectInvalidToken(replicaA.tokens.verify(access_token, null), /revoked/);
  });

  it('refuses tokens issued before tokens_valid_after, accepts one just after', async () => {
    const user = await createUser(replicaA.dataSource);
    const { access_token: before } = await replicaA.tokens.issue({ user, amr: ['pwd'] });
    await replicaB.tokens.verify(before, null);

    await replicaA.dataSource.query('UPDATE users SET tokens_valid_after = $2 WHERE id = $1', [
      user.id,
      new Date(),
    ]);
    const [{ tokens_valid_after }] = (await replicaA.dataSource.query(
      'SELECT tokens_valid_after FROM users WHERE id = $1',
      [user.id],
    )) as Array<{ tokens_valid_after: Date }>;
    const { access_token: after } = await replicaA.tokens.issue({
      user: { ...user, tokensValidAfter: tokens_valid_after },
      amr: ['pwd'],
    });

    await expectInvalidToken(replicaB.tokens.verify(before, null), /before the user invalidated/);
    await expect(replicaB.tokens.verify(after, null)).resolves.toMatchObject({ sub: user.id });
  });

  it('refuses tokens of disabled and deleted users', async () => {
    const disabled = await createUser(replicaA.dataSource);
    const deleted = await createUser(replicaA.dataSource);
    const disabledToken = (await replicaA.tokens.issue({ user: disabled, amr: ['pwd'] }))
      .access_token;
    const deletedToken = (await replicaA.tokens.issue({ user: deleted, amr: ['pwd'] }))
      .access_token;

    await replicaA.dataSource.query('UPDATE users SET disabled = true WHERE id = $1', [
      disabled.id,
    ]);
    await replicaA.dataSource.query('DELETE FROM users WHERE id = $1', [deleted.id]);

    await expectInvalidToken(replicaB.tokens.verify(disabledToken, null), /disabled/);
    await expectInvalidToken(replicaB.tokens.verify(deletedToken, null), /no longer exists/);
  });

  it('refuses expired tokens', async () => {
    const user = await createUser(replicaA.dataSource);
    const { access_token } = await replicaA.tokens.issue({ user, amr: ['pwd'] });

    replicaB.clock.offsetMs = 16 * 60 * 1000;

    await expectInvalidToken(replicaB.tokens.verify(access_token, null), /ERR_JWT_EXPIRED/);
  });

  describe('forged tokens', () => {
    let user: Awaited<ReturnType<typeof createUser>>;
    let genuine: string;
    let kid: string;

    beforeAll(async () => {
      user = await createUser(replicaA.dataSource, ['reader']);
      genuine = (await replicaA.tokens.issue({ user, amr: ['pwd'] })).access_token;
      kid = decodeProtectedHeader(genuine).kid!;
    });

    function genuineClaims(): Record<string, unknown> {
      return { ...decodeJwt(genuine), jti: randomBytes(18).toString('base64url') };
    }

    async function signWithActiveKey(
      claims: Record<string, unknown>,
      header: Record<string, unknown> = {},
    ): Promise<string> {
      const { privateKey } = await replicaA.keys.signingKey();
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt', ...header })
        .sign(privateKey);
    }

    it('refuses a token whose payload was changed', async () => {
      const [header, , signature] = genuine.split('.');
      const payload = Buffer.from(
        JSON.stringify({ ...decodeJwt(genuine), roles: ['admin'] }),
      ).toString('base64url');

      await expectInvalidToken(
        replicaA.tokens.verify(`${header}.${payload}.${signature}`, null),
        /ERR_JWS_SIGNATURE_VERIFICATION_FAILED/,
      );
    });

    it('refuses a token for another audience or from another issuer', async () => {
      const otherAudience = await signWithActiveKey({ ...genuineClaims(), aud: 'another-service' });
      const otherIssuer = await signWithActiveKey({ ...genuineClaims(), iss: 'https://evil.test' });

      await expect(
        replicaA.tokens.verify(await signWithActiveKey(genuineClaims()), null),
      ).resolves.toBeDefined();
      await expectInvalidToken(replicaA.tokens.verify(otherAudience, null), /"aud"/);
      await expectInvalidToken(replicaA.tokens.verify(otherIssuer, null), /"iss"/);
    });

    it('refuses a token of another type or without a kid', async () => {
      await expectInvalidToken(
        replicaA.tokens.verify(await signWithActiveKey(genuineClaims(), { typ: 'JWT' }), null),
        /"typ"/,
      );
      await expectInvalidToken(
        replicaA.tokens.verify(await signWithActiveKey(genuineClaims(), { kid: undefined }), null),
        /lacks EdDSA or a kid/,
      );
    });

    it('refuses an unsecured alg none token', async () => {
      const unsecured = new UnsecuredJWT(genuineClaims()).encode();
      const withKid = [
        Buffer.from(JSON.stringify({ alg: 'none', kid, typ: 'at+jwt' })).toString('base64url'),
        unsecured.split('.')[1],
        genuine.split('.')[2],
      ].join('.');

      await expectInvalidToken(replicaA.tokens.verify(unsecured, null), /ERR_JOSE_ALG_NOT_ALLOWED/);
      await expectInvalidToken(replicaA.tokens.verify(withKid, null), /ERR_JOSE_ALG_NOT_ALLOWED/);
    });

    it('refuses an HS256 token keyed with the published public key', async () => {
      const { keys } = await replicaA.keys.jwks();
      const published = keys.find((key) => key.kid === kid)!;
      const secrets = [
        Buffer.from(published.x, 'base64url'),
        Buffer.from(published.x),
        Buffer.from(JSON.stringify(published)),
      ];

      for (const secret of secrets) {
        const forged = await new SignJWT(genuineClaims())
          .setProtectedHeader({ alg: 'HS256', kid, typ: 'at+jwt' })
          .sign(secret);
        await expectInvalidToken(replicaA.tokens.verify(forged, null), /ERR_JOSE_ALG_NOT_ALLOWED/);
      }
    });

    it('refuses a token signed by a key that was never published', async () => {
      const { generateKeyPair } = await import('jose');
      const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
      const foreign = await new SignJWT(genuineClaims())
        .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt' })
        .sign(privateKey);
      const unknownKid = await new SignJWT(genuineClaims())
        .setProtectedHeader({ alg: 'EdDSA', kid: 'not-a-key', typ: 'at+jwt' })
        .sign(privateKey);

      await expectInvalidToken(
        replicaA.tokens.verify(foreign, null),
        /ERR_JWS_SIGNATURE_VERIFICATION_FAILED/,
      );
      await expectInvalidToken(
        replicaA.tokens.verify(unknownKid, null),
        /no published signing key/,
      );
    });
  });

  it('keeps verifying tokens of a retired key after rotation and publishes both kids', async () => {
    const user = await createUser(replicaA.dataSource);
    const { access_token: oldToken } = await replicaA.tokens.issue({ user, amr: ['pwd'] });
    const oldKid = decodeProtectedHeader(oldToken).kid;

    const rotation = await replicaB.keys.rotate();
    const { access_token: newToken } = await replicaB.tokens.issue({ user, amr: ['pwd'] });
    replicaA.clock.offsetMs = 1_500;

    expect(rotation.retired).toEqual([oldKid]);
    expect(decodeProtectedHeader(newToken).kid).toBe(rotation.kid);
    await expect(replicaA.tokens.verify(newToken, null)).resolves.toBeDefined();
    await expect(replicaB.tokens.verify(oldToken, null)).resolves.toBeDefined();
    const kids = (await replicaA.keys.jwks()).keys.map((key) => key.kid);
    expect(kids).toEqual([rotation.kid, oldKid]);
    const [retired] = (await replicaA.dataSource.query(
      `SELECT publish_until - retired_at AS published_for FROM signing_keys WHERE kid = $1`,
      [oldKid],
    )) as Array<{ published_for: { hours?: number; minutes?: number } }>;
    expect(retired.published_for).toMatchObject({ hours: 1, minutes: 5 });
  });

  it('signs with the new key on every replica once their caches refresh', async () => {
    const user = await createUser(replicaA.dataSource);
    const { kid } = await rotateSigningKeys(replicaB.dataSource, config);

    replicaA.clock.offsetMs += KEY_CACHE_TTL_MS + 1;
    const { access_token } = await replicaA.tokens.issue({ user, amr: ['pwd'] });

    expect(decodeProtectedHeader(access_token).kid).toBe(kid);
  });

  it('drops retired keys from the JWKS once no token can need them', async () => {
    await replicaA.dataSource.query(
      `UPDATE signing_keys SET publish_until = now() - interval '1 second'
       WHERE retired_at IS NOT NULL`,
    );
    replicaA.keys.invalidate();

    const { keys } = await replicaA.keys.jwks();

    expect(keys).toHaveLength(1);
    expect(Object.keys(keys[0]).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x']);
    expect(keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
  });

  it('deletes revocations of expired tokens only', async () => {
    const live = `live-${randomBytes(12).toString('base64url')}`;
    const stale = `stale-${randomBytes(12).toString('base64url')}`;
    await replicaA.dataSource.query(
      `INSERT INTO revoked_tokens (jti, expires_at) VALUES
         ($1, now() + interval '10 minutes'), ($2, now() - interval '1 hour')`,
      [live, stale],
    );

    const deleted = await replicaA.tokens.deleteExpiredRevocations();

    expect(deleted).toBeGreaterThanOrEqual(1);
    const rows = (await replicaA.dataSource.query(
      'SELECT jti FROM revoked_tokens WHERE jti = ANY($1)',
      [[live, stale]],
    )) as Array<{ jti: string }>;
    expect(rows.map((row) => row.jti)).toEqual([live]);
  });

  it('answers unavailable, never valid, when the database cannot be read', async () => {
    const user = await createUser(replicaA.dataSource);
    const { access_token } = await replicaA.tokens.issue({ user, amr: ['pwd'] });
    const broken = new DataSource({
      type: 'postgres',
      url: 'postgres://postgres@127.0.0.1:1/none',
    });
    const tokens = new TokenService(broken, replicaA.keys, config);

    await expect(tokens.verify(access_token, null)).rejects.toMatchObject({ code: 'unavailable' });
    await expect(tokens.revoke({ jti: 'x'.repeat(24), exp: 1 })).rejects.toMatchObject({
      code: 'unavailable',
    });
  });

  describe('over HTTP', () => {
    let admin: Awaited<ReturnType<typeof createUser>>;
    let reader: Awaited<ReturnType<typeof createUser>>;

    beforeAll(async () => {
      admin = await createUser(replicaA.dataSource, ['admin']);
      reader = await createUser(replicaA.dataSource, ['reader', 'team:ops']);
    });

    async function bearer(
      user: typeof admin,
      amr: Array<'pwd' | 'mtls'>,
      certificate?: VerifiedCertificate,
    ): Promise<string> {
      const { access_token } = await replicaA.tokens.issue({ user, amr, certificate });
      return `Bearer ${access_token}`;
    }

    it('GET /auth/me describes the holder of a bound token', async () => {
      const authorization = await bearer(reader, ['pwd', 'mtls'], certificateA);

      const response = await request(replicaA.baseUrl, 'GET', '/auth/me', {
        authorization,
        [CERTIFICATE_HEADER]: 'A',
      });

      expect(response.status).toBe(200);
      expect(response.headers['cache-control']).toBe('no-store');
      expect(JSON.parse(response.body)).toEqual({
        username: reader.username,
        roles: ['reader', 'team:ops'],
        certificate_fingerprint: certificateA.fingerprint,
        amr: ['pwd', 'mtls'],
      });
    });

    it('GET /auth/me refuses a bound token with another certificate or none', async () => {
      const authorization = await bearer(reader, ['pwd', 'mtls'], certificateA);

      const withB = await request(replicaA.baseUrl, 'GET', '/auth/me', {
        authorization,
        [CERTIFICATE_HEADER]: 'B',
      });
      const withNone = await request(replicaA.baseUrl, 'GET', '/auth/me', { authorization });

      expect(withB.status).toBe(401);
      expect(withB.headers['www-authenticate']).toBe('Bearer');
      expect(JSON.parse(withB.body)).toEqual({ error: 'invalid_token' });
      expect(withNone.status).toBe(401);
    });

    it('refuses malformed, duplicated and forged Authorization', async () => {
      const authorization = await bearer(reader, ['pwd']);
      const cases: http.OutgoingHttpHeaders[] = [
        {},
        { authorization: authorization.replace('Bearer ', 'Basic ') },
        { authorization: authorization.replace('Bearer ', 'Bearer  ') },
        { authorization: `${authorization}.x` },
        { authorization: [authorization, authorization] as unknown as string },
        { authorization, [CERTIFICATE_HEADER]: 'forged' },
        { authorization: `Bearer ${'a'.repeat(5000)}.b.c` },
      ];

      for (const headers of cases) {
        const response = await request(replicaA.baseUrl, 'GET', '/auth/me', headers);
        expect(response.status).toBe(401);
      }
      const lowerCase = await request(replicaA.baseUrl, 'GET', '/auth/me', {
        authorization: authorization.replace('Bearer', 'bearer'),
      });
      expect(lowerCase.status).toBe(200);
    });

    it('GET /auth/verify answers 200 with identity headers for any method and path', async () => {
      const authorization = await bearer(reader, ['pwd', 'mtls'], certificateA);
      const headers = { authorization, [CERTIFICATE_HEADER]: 'A' };

      const nginx = await request(replicaA.baseUrl, 'GET', '/auth/verify', headers);
      const envoy = await request(replicaA.baseUrl, 'DELETE', '/auth/verify/api/orders/7', headers);
      const refused = await request(replicaA.baseUrl, 'GET', '/auth/verify', { authorization });

      for (const response of [nginx, envoy]) {
        expect(response.status).toBe(200);
        expect(response.headers['x-auth-user']).toBe(reader.username);
        expect(response.headers['x-auth-user-id']).toBe(reader.id);
        expect(response.headers['x-auth-roles']).toBe('reader,team%3Aops');
        expect(response.headers['x-auth-certificate-fingerprint']).toBe(certificateA.fingerprint);
      }
      expect(refused.status).toBe(401);
      expect(refused.headers['x-auth-user']).toBeUndefined();
    });

    it('POST /auth/logout revokes the token on every replica', async () => {
      const authorization = await bearer(reader, ['pwd']);

      const logout = await request(replicaA.baseUrl, 'POST', '/auth/logout', { authorization });
      const afterOnA = await request(replicaA.baseUrl, 'GET', '/auth/me', { authorization });
      const afterOnB = await request(replicaB.baseUrl, 'GET', '/auth/me', { authorization });

      expect(logout.status).toBe(204);
      expect(afterOnA.status).toBe(401);
      expect(afterOnB.status).toBe(401);
    });

    it('GET /.well-known/jwks.json publishes the public keys, briefly cached', async () => {
      const response = await request(replicaA.baseUrl, 'GET', '/.well-known/jwks.json');

      expect(response.status).toBe(200);
      expect(response.headers['cache-control']).toBe('public, max-age=60');
      const { keys } = JSON.parse(response.body) as { keys: Array<Record<string, unknown>> };
      expect(keys.length).toBeGreaterThanOrEqual(1);
      expect(keys.every((key) => key.d === undefined && key.kty === 'OKP')).toBe(true);
    });

    it('admits an admin only with a password and the bound certificate', async () => {
      const full = await bearer(admin, ['pwd', 'mtls'], certificateB);
      const passwordOnly = await bearer(admin, ['pwd']);
      const notAdmin = await bearer(reader, ['pwd', 'mtls'], certificateB);
      const probe = (headers: http.OutgoingHttpHeaders) =>
        request(replicaA.baseUrl, 'GET', '/test-admin', headers);

      expect((await probe({ authorization: full, [CERTIFICATE_HEADER]: 'B' })).status).toBe(200);
      expect((await probe({ authorization: full, [CERTIFICATE_HEADER]: 'A' })).status).toBe(401);
      expect((await probe({ authorization: passwordOnly, [CERTIFICATE_HEADER]: 'B' })).status).toBe(
        403,
      );
      expect((await probe({ authorization: notAdmin, [CERTIFICATE_HEADER]: 'B' })).status).toBe(
        403,
      );
      expect((await probe({})).status).toBe(401);
    });
  });
});

/**
 * PGlite loads its WebAssembly through a dynamic import, which Jest allows only with VM modules.
 */
const vmModules = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((option) =>
  option.includes('--experimental-vm-modules'),
);
if (!vmModules) {
  process.stdout.write(
    'tokens e2e: skipping the embedded database spec: run Jest with ' +
      'NODE_OPTIONS=--experimental-vm-modules\n',
  );
}

(vmModules ? describe : describe.skip)('Tokens on the embedded database', () => {
  let dataDir: string;
  let connection: DatabaseConnection;

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-tokens-'));
    connection = await openDatabase(testConfig(undefined, dataDir));
    await runMigrations(connection.dataSource, true);
  });

  afterAll(async () => {
    await connection?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('creates, rotates and verifies with keys in PGlite', async () => {
    const config = testConfig(undefined, dataDir);
    const keys = new SigningKeysService(connection.dataSource, config);
    const tokens = new TokenService(connection.dataSource, keys, config);
    const user = await createUser(connection.dataSource);

    const [first, again] = await Promise.all([keys.ensureActiveKey(), keys.ensureActiveKey()]);
    const { access_token } = await tokens.issue({ user, amr: ['pwd'] });
    const rotation = await keys.rotate();

    expect(again).toBe(first);
    expect(rotation.retired).toEqual([first]);
    await expect(tokens.verify(access_token, null)).resolves.toMatchObject({ sub: user.id });
    expect((await keys.jwks()).keys.map((key) => key.kid)).toEqual([rotation.kid, first]);
  });
});
