import { Logger } from '@nestjs/common';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

export type RedisClient = Redis | Cluster;

export interface RedisConnectionOptions {
  /** `redis://`, `rediss://` (TLS) or `redis-sentinel://host:port,host:port/master-name`. */
  url?: string;
  /** Cluster seed nodes as `host:port`, `redis://host:port` or `rediss://host:port`. */
  clusterNodes?: string[];
  /** How long a command may go unanswered before it fails. Default 2 s. */
  commandTimeoutMs?: number;
  /** Default: one warning per outage through Nest's Logger. */
  onError?: (error: Error) => void;
}

const DEFAULT_COMMAND_TIMEOUT_MS = 2000;
const MAX_RECONNECT_DELAY_MS = 2000;

/** Reconnect forever, backing off to MAX_RECONNECT_DELAY_MS, so Redis coming back is enough. */
function reconnectDelay(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt, 6), MAX_RECONNECT_DELAY_MS);
}

/**
 * A login must fail closed and at once while Redis is away, not queue up behind a dead socket:
 * no offline queue, no resend of commands whose answer was lost, a short command timeout.
 */
function failFastOptions(commandTimeoutMs: number): RedisOptions {
  return {
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 1,
    commandTimeout: commandTimeoutMs,
    connectTimeout: Math.max(commandTimeoutMs, 5000),
    retryStrategy: reconnectDelay,
  };
}

interface Endpoint {
  host: string;
  port: number;
}

/** Connection details from a `redis://` or `rediss://` URL; query options are not honoured. */
function parseRedisUrl(url: string): Endpoint & RedisOptions {
  const parsed = new URL(url);
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new Error('REDIS_URL must start with redis://, rediss:// or redis-sentinel://');
  }
  const options: Endpoint & RedisOptions = {
    host: parsed.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : 6379,
  };
  if (parsed.username) {
    options.username = decodeURIComponent(parsed.username);
  }
  if (parsed.password) {
    options.password = decodeURIComponent(parsed.password);
  }
  if (parsed.pathname.length > 1) {
    options.db = Number(parsed.pathname.slice(1));
  }
  if (parsed.protocol === 'rediss:') {
    options.tls = { servername: options.host };
  }
  return options;
}

function parseHostPort(text: string): Endpoint {
  const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(text.trim());
  if (!match) {
    throw new Error(`not a host:port pair: ${text}`);
  }
  return { host: match[1], port: Number(match[2]) };
}

/** `redis-sentinel://[user:password@]host:port,host:port/master-name`. */
function parseSentinelUrl(url: string): RedisOptions {
  const match = /^redis-sentinel:\/\/(?:([^@/]*)@)?([^/]+)\/([^/?#]+)$/.exec(url);
  if (!match) {
    throw new Error('REDIS_URL for Sentinel must read redis-sentinel://host:port,host:port/master');
  }
  const [, credentials, hosts, name] = match;
  const options: RedisOptions = {
    sentinels: hosts.split(',').map(parseHostPort),
    name: decodeURIComponent(name),
    sentinelRetryStrategy: reconnectDelay,
  };
  if (credentials) {
    const [username, password = ''] = credentials.split(':');
    options.username = decodeURIComponent(username) || undefined;
    options.password = decodeURIComponent(password) || undefined;
  }
  return options;
}

function parseClusterNode(node: string): Endpoint & RedisOptions {
  return /^rediss?:\/\//.test(node) ? parseRedisUrl(node) : parseHostPort(node);
}

function createCluster(nodes: string[], commandTimeoutMs: number): Cluster {
  const seeds = nodes.map(parseClusterNode);
  const { username, password, tls } = seeds[0];
  const options: ClusterOptions = {
    enableOfflineQueue: false,
    enableReadyCheck: true,
    clusterRetryStrategy: reconnectDelay,
    slotsRefreshTimeout: commandTimeoutMs,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    maxRedirections: 16,
    redisOptions: {
      username,
      password,
      tls,
      maxRetriesPerRequest: 1,
      commandTimeout: commandTimeoutMs,
      connectTimeout: Math.max(commandTimeoutMs, 5000),
      autoResendUnfulfilledCommands: false,
    },
  };
  return new Cluster(
    seeds.map(({ host, port }) => ({ host, port })),
    options,
  );
}

function reportErrors(client: RedisClient, onError?: (error: Error) => void): void {
  if (onError) {
    client.on('error', onError);
    return;
  }
  const logger = new Logger('Redis');
  let outage = false;
  client.on('error', (error: Error) => {
    if (!outage) {
      outage = true;
      logger.warn(`Redis unavailable, logins fail closed until it returns: ${error.message}`);
    }
  });
  client.on('ready', () => {
    if (outage) {
      outage = false;
      logger.log('Redis connection restored');
    }
  });
}

/**
 * A client for the limiter store: single primary, Sentinel or Cluster. It connects at once and
 * reconnects by itself; commands sent while it is not connected fail immediately.
 */
export function createRedisClient(options: RedisConnectionOptions): RedisClient {
  const timeout = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  let client: RedisClient;

  if (options.clusterNodes && options.clusterNodes.length > 0) {
    client = createCluster(options.clusterNodes, timeout);
  } else if (options.url?.startsWith('redis-sentinel://')) {
    client = new Redis({ ...parseSentinelUrl(options.url), ...failFastOptions(timeout) });
  } else if (options.url) {
    client = new Redis({ ...parseRedisUrl(options.url), ...failFastOptions(timeout) });
  } else {
    throw new Error('createRedisClient needs a url or cluster nodes');
  }

  reportErrors(client, options.onError);
  return client;
}

/** Resolves once the client is ready for commands (without an offline queue, wait for this). */
export function waitForRedis(client: RedisClient, timeoutMs = 10_000): Promise<void> {
  if (client.status === 'ready') {
    return Promise.resolve();
  }
  if (client.status === 'end') {
    return Promise.reject(new Error('Redis client was closed'));
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new Error(`Redis not ready after ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = (): void => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}

function describeNode(node: Redis): string {
  const { host, port, sentinels, name } = node.options;
  return sentinels && sentinels.length > 0 ? `master ${name ?? ''}` : `${host}:${port}`;
}

/**
 * Refuses a Redis that may evict keys under memory pressure: an evicted failure window or
 * lockout would hand an attacker fresh guesses. Reads `INFO memory`, since managed services
 * often block CONFIG GET; on a Cluster every master is checked. Waits for the client to be ready
 * first, since a client without an offline queue refuses commands until then.
 */
export async function assertNoEviction(
  client: RedisClient,
  readyTimeoutMs = 10_000,
): Promise<void> {
  await waitForRedis(client, readyTimeoutMs);
  const nodes = client instanceof Cluster ? client.nodes('master') : [client];
  if (nodes.length === 0) {
    throw new Error('Redis Cluster has no known masters yet; cannot check maxmemory-policy');
  }

  await Promise.all(
    nodes.map(async (node) => {
      const info = await node.info('memory');
      const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
      if (policy !== 'noeviction') {
        throw new Error(
          `Redis ${describeNode(node)} has maxmemory-policy ${policy ?? 'unknown'}; the limiter ` +
            'needs noeviction so that failure counts and lockouts are never dropped',
        );
      }
    }),
  );
}
