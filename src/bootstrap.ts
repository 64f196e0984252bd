import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { URL } from 'node:url';
import { DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance } from 'fastify';
import { Logger as NestPinoLogger } from 'nestjs-pino';
import type { Logger as PinoLogger } from 'pino';
import { GatehouseModule } from './app.module';
import { AUDIT_WRITER } from './audit/audit.tokens';
import { AuditWriter } from './audit/audit-writer';
import { AuditWriterLifecycle } from './audit/audit-writer.lifecycle';
import { createLogger } from './common/logging';
import { AppConfig } from './config/app-config';
import { assertProductionSafety } from './config/production-guard';
import { DatabaseConnection, openDatabase } from './database/data-source.factory';
import { ensurePrivateDirectory } from './database/data-dir-lock';
import { grantServiceRole, runMigrations } from './database/migrator';
import { createManagementServer, ReplicaState } from './health/management-server';
import { MetricsService } from './health/metrics.service';
import { CertificateVerifier } from './mtls/certificate-verifier';
import { MtlsSettings } from './mtls/client-certificate.resolver';
import { AddressMatcher, parseTrustedProxies } from './mtls/client-ip';
import { parseTrustedProxyCertificates } from './mtls/trusted-proxy-certs';
import { TlsMaterial, resolveTlsMaterial } from './mtls/tls-material';
import { createOpenApiDocument, serveOpenApiDocument } from './openapi';
import { LimiterStore } from './throttling/limiter.types';
import { limiterSettings } from './throttling/login-limiter.service';
import { MemoryLimiterStore } from './throttling/memory-limiter.store';
import { assertNoEviction, createRedisClient } from './throttling/redis-connection';
import { RedisLimiterStore } from './throttling/redis-limiter.store';
import { ConfigError } from './config/config.error';
import { SigningKeysService } from './tokens/signing-keys.service';

/** A running Gatehouse: its addresses and an ordered shutdown. */
export interface RunningService {
  app: NestFastifyApplication;
  management: FastifyInstance;
  url: string;
  managementUrl: string;
  logger: PinoLogger;
  tls?: TlsMaterial;
  connection: DatabaseConnection;
  shutdown(reason?: string): Promise<void>;
}

/** Body limit of every route: credentials are capped far below it, and so is anything else. */
const BODY_LIMIT_BYTES = 16 * 1024;
/** The longest a client may take to send one request. */
const REQUEST_TIMEOUT_MS = 10_000;

async function migrateOnStart(config: AppConfig, logger: PinoLogger): Promise<void> {
  if (config.databaseAdminUrl === undefined) {
    logger.warn(
      'DATABASE_ADMIN_URL is not set: migrations run as the service role, which then owns the ' +
        'tables',
    );
  }
  const admin = await openDatabase(config, 'admin');
  try {
    const ran = await runMigrations(admin.dataSource, false);
    if (ran.length > 0) {
      logger.info({ migrations: ran }, 'migrations applied');
    }
    const serviceRole = decodeURIComponent(new URL(config.databaseUrl!).username || '');
    const adminRole = decodeURIComponent(
      new URL(config.databaseAdminUrl ?? config.databaseUrl!).username || '',
    );
    if (config.databaseAdminUrl !== undefined && serviceRole !== '' && serviceRole !== adminRole) {
      await grantServiceRole(admin.dataSource, serviceRole);
    }
  } finally {
    await admin.close();
  }
}

/** Opens the database, migrating first when MIGRATE_ON_START allows. */
export async function openServiceDatabase(
  config: AppConfig,
  logger: PinoLogger,
): Promise<DatabaseConnection> {
  if (config.databaseUrl !== undefined) {
    if (config.migrateOnStart) {
      await migrateOnStart(config, logger);
    }
    return openDatabase(config);
  }
  const connection = await openDatabase(config);
  logger.info({ dataDir: config.dataDir }, 'using the embedded database under DATA_DIR');
  if (config.migrateOnStart) {
    await runMigrations(connection.dataSource, true);
  }
  return connection;
}

async function createLimiterStore(config: AppConfig, logger: PinoLogger): Promise<LimiterStore> {
  const settings = limiterSettings(config);
  if (config.limiterStore === 'memory') {
    if (config.databaseUrl !== undefined) {
      logger.warn('LIMITER_STORE=memory: limits hold per process, not across replicas');
    }
    return new MemoryLimiterStore(settings);
  }
  const client = createRedisClient({
    url: config.redisUrl,
    clusterNodes: config.redisClusterNodes.length > 0 ? config.redisClusterNodes : undefined,
  });
  try {
    await assertNoEviction(client);
  } catch (error) {
    client.disconnect();
    throw new ConfigError('REDIS_URL', (error as Error).message);
  }
  return new RedisLimiterStore(client, settings, {
    keyPrefix: config.limiterKeyPrefix,
    ownsClient: true,
  });
}

function mtlsSettings(config: AppConfig, tls: TlsMaterial | undefined): MtlsSettings {
  let trustedProxies = AddressMatcher.none();
  let trustedProxyCertificates = new Set<string>();
  try {
    trustedProxies = parseTrustedProxies(config.trustedProxies);
  } catch (error) {
    throw new ConfigError('TRUSTED_PROXIES', (error as Error).message);
  }
  try {
    trustedProxyCertificates = parseTrustedProxyCertificates(config.trustedProxyCerts);
  } catch (error) {
    throw new ConfigError('TRUSTED_PROXY_CERTS', (error as Error).message);
  }
  if (config.mtlsMode === 'proxy' && trustedProxies.isEmpty) {
    throw new ConfigError('TRUSTED_PROXIES', 'is required in proxy mode');
  }
  const verifier = tls?.ca
    ? new CertificateVerifier(tls.ca, { requireClientAuthExtension: config.requireClientAuthEku })
    : undefined;
  if (config.mtlsMode !== 'off' && !verifier) {
    throw new ConfigError('TLS_CA_FILE', 'is required to verify client certificates');
  }
  return {
    mode: config.mtlsMode,
    verifier,
    trustedProxies,
    trustedProxyCertificates,
    proxyCertHeader: config.proxyCertHeader,
  };
}

function createAdapter(config: AppConfig, tls: TlsMaterial | undefined): FastifyAdapter {
  const https = tls?.listenerTls
    ? {
        key: tls.key,
        cert: tls.cert,
        ca: tls.ca,
        requestCert: true,
        // Failures are seen and audited by Gatehouse rather than ending the handshake.
        rejectUnauthorized: false,
        minVersion: 'TLSv1.2' as const,
      }
    : null;
  const adapterOptions = {
    https,
    bodyLimit: BODY_LIMIT_BYTES,
    // A client that stalls half-way through a request must not hold a socket, or a shutdown,
    // for ever: the whole request must arrive within this time.
    requestTimeout: REQUEST_TIMEOUT_MS,
    connectionTimeout: REQUEST_TIMEOUT_MS,
    routerOptions: { maxParamLength: 200 },
    trustProxy: false,
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    genReqId: (request: object) => {
      const id = randomUUID();
      (request as unknown as { id: string }).id = id;
      return id;
    },
  };
  return new FastifyAdapter(
    adapterOptions as unknown as ConstructorParameters<typeof FastifyAdapter>[0],
  ) as unknown as FastifyAdapter;
}

/**
 * While readiness fails, every answer carries `Connection: close`, so keep-alive clients open
 * their next connection through the load balancer (to another replica) instead of reusing one
 * this replica is about to close, which would race the close and reset their request.
 */
function closeConnectionsWhileDraining(instance: FastifyInstance, state: ReplicaState): void {
  instance.addHook('onSend', (_request, reply, payload, done) => {
    if (state.draining) {
      reply.header('connection', 'close');
    }
    done(null, payload);
  });
}

const LOGIN_PATHS = new Set(['/auth/login', '/auth/certificate']);

/**
 * Tells the audit writer which login requests are still being decided, so the `settled_until` it
 * publishes never passes a row that has yet to be written. Every response carries its request id.
 */
function trackLoginRequests(instance: FastifyInstance, holder: { writer?: AuditWriter }): void {
  instance.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', String(request.id));
    if (request.method === 'POST' && LOGIN_PATHS.has((request.raw.url ?? '').split('?')[0])) {
      holder.writer?.beginAttempt(String(request.id), Date.now());
    }
    done();
  });
  const end = (request: { id: unknown }, _reply: unknown, done: () => void) => {
    holder.writer?.endAttempt(String(request.id));
    done();
  };
  instance.addHook('onResponse', end);
  instance.addHook('onRequestAbort', (request, done) => end(request, undefined, done));
}

/**
 * Bodies are read raw and parsed by the route's own guard, so malformed content of any type is
 * answered 400 and audited by Gatehouse rather than refused by Fastify before any guard runs.
 */
function acceptRawBodies(instance: FastifyInstance): void {
  instance.removeAllContentTypeParsers();
  instance.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => {
    done(null, body);
  });
}

function warnAboutUnsafeChoices(config: AppConfig, logger: PinoLogger): void {
  if (config.mtlsMode === 'off') {
    logger.warn(
      'MTLS_MODE=off: plain HTTP and password-only login; for local development only, never ' +
        'production',
    );
  }
  if (config.mtlsMode === 'proxy' && config.trustedProxyCerts === '') {
    logger.warn(
      'proxy mode trusts forwarding headers by source address alone (no TRUSTED_PROXY_CERTS)',
    );
  }
}

/** Starts Gatehouse: configuration checks, database, TLS, limiter, HTTP and management ports. */
export async function startService(
  config: AppConfig,
  options: {
    imports?: DynamicModule['imports'];
    installSignalHandlers?: boolean;
    /** Runs once both ports listen and before readiness turns true (the first dev start). */
    beforeReady?: (running: RunningService) => Promise<void>;
  } = {},
): Promise<RunningService> {
  assertProductionSafety(config);
  const logger = createLogger(config);
  warnAboutUnsafeChoices(config, logger);
  ensurePrivateDirectory(config.dataDir);
  const tls = await resolveTlsMaterial(config, logger);
  const mtls = mtlsSettings(config, tls);
  const limiterStore = await createLimiterStore(config, logger);
  const connection = await openServiceDatabase(config, logger).catch(async (error) => {
    await limiterStore.close();
    throw error;
  });

  const state: ReplicaState = { started: false, draining: false, auditWriterHealthy: () => false };
  const adapter = createAdapter(config, tls);
  closeConnectionsWhileDraining(adapter.getInstance(), state);
  const writerHolder: { writer?: AuditWriter } = {};
  trackLoginRequests(adapter.getInstance(), writerHolder);
  const app = await NestFactory.create<NestFastifyApplication>(
    GatehouseModule.forRoot({
      config,
      dataSource: connection.dataSource,
      mtls,
      limiterStore,
      logger,
      imports: options.imports,
    }),
    adapter,
    { bufferLogs: true, abortOnError: false },
  );
  app.useLogger(app.get(NestPinoLogger));
  await app.init();
  acceptRawBodies(app.getHttpAdapter().getInstance());
  serveOpenApiDocument(app.getHttpAdapter().getInstance(), createOpenApiDocument(app));

  // Publish a signing key before the first login, so relying parties fetching the JWKS at start
  // do not cache an empty key set.
  await app.get(SigningKeysService).ensureActiveKey();
  const writer = app.get<AuditWriter>(AUDIT_WRITER);
  state.auditWriterHealthy = () => writer.healthy;
  writerHolder.writer = writer;
  const management = createManagementServer(state, app.get(MetricsService));
  await app.listen(config.port, config.host);
  await management.listen({ port: config.managementPort, host: config.managementHost });

  const address = app.getHttpServer().address() as { port: number };
  const managementAddress = management.server.address() as { port: number };
  const scheme = tls?.listenerTls ? 'https' : 'http';
  const running: RunningService = {
    app,
    management,
    url: `${scheme}://${formatHost(config.host)}:${address.port}`,
    managementUrl: `http://${formatHost(config.managementHost)}:${managementAddress.port}`,
    logger,
    tls,
    connection,
    shutdown: (reason) =>
      shutdownInOrder({ config, app, management, state, connection, limiterStore, logger, reason }),
  };
  await options.beforeReady?.(running);
  state.started = true;
  logger.info(
    { url: running.url, management: running.managementUrl, mode: config.mtlsMode },
    'gatehouse started',
  );
  if (options.installSignalHandlers) {
    installSignalHandlers(running, logger, config.shutdownTimeoutMs);
  }
  return running;
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

interface ShutdownParts {
  config: AppConfig;
  app: NestFastifyApplication;
  management: FastifyInstance;
  state: ReplicaState;
  connection: DatabaseConnection;
  limiterStore: LimiterStore;
  logger: PinoLogger;
  reason?: string;
}

/**
 * Shutdown in order, within SHUTDOWN_TIMEOUT: fail readiness, give the load balancer time to
 * notice, stop accepting and finish requests in flight, flush the audit, then close stores.
 */
async function shutdownInOrder(parts: ShutdownParts): Promise<void> {
  const { config, app, management, state, connection, limiterStore, logger } = parts;
  const deadline = Date.now() + config.shutdownTimeoutMs;
  state.draining = true;
  logger.info({ reason: parts.reason }, 'draining: readiness now fails');
  const drainDelay = Math.min(config.shutdownDrainDelayMs, config.shutdownTimeoutMs / 3);
  await new Promise((resolve) => setTimeout(resolve, drainDelay));

  const httpServer = app.getHttpServer();
  const closed = await new Promise<boolean>((resolve) => {
    httpServer.close(() => resolve(true));
    httpServer.closeIdleConnections?.();
    logger.info({ event: 'listener_closed' }, 'listener closed: finishing requests in flight');
    setTimeout(() => resolve(false), Math.max(0, deadline - Date.now() - 2000)).unref();
  });
  if (!closed) {
    // A client still holding a request open past the deadline (a slow body, say) would keep
    // the audit flush below from ever running; its connection is cut instead.
    logger.warn('requests still open at the shutdown deadline: closing their connections');
    httpServer.closeAllConnections?.();
  }
  const lost = await app.get(AuditWriterLifecycle).drain(deadline - 500);
  await app.close().catch(() => undefined);
  await management.close().catch(() => undefined);
  await limiterStore.close().catch(() => undefined);
  if (connection.dataSource.isInitialized || connection.embedded) {
    await connection.close().catch(() => undefined);
  }
  logger.info({ unwrittenAuditRows: lost }, 'stopped');
}

function installSignalHandlers(
  running: RunningService,
  logger: PinoLogger,
  shutdownTimeoutMs: number,
): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      return;
    }
    stopping = true;
    // The orchestrator kills the process at its own deadline anyway; exiting first says why.
    setTimeout(() => {
      logger.error('shutdown did not finish within SHUTDOWN_TIMEOUT; exiting');
      process.exit(1);
    }, shutdownTimeoutMs).unref();
    running
      .shutdown(signal)
      .then(() => process.exit(0))
      .catch((error: Error) => {
        logger.error({ err: error.message }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

export function readFileIfPresent(filePath: string | undefined): string | undefined {
  return filePath !== undefined && fs.existsSync(filePath)
    ? fs.readFileSync(filePath, 'utf8')
    : undefined;
}
