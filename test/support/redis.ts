import { spawn, spawnSync, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Cluster, Redis } from 'ioredis';

const LOOPBACK = '127.0.0.1';

/** The Redis shared by end-to-end tests: REDIS_URL, else the local default. */
export function sharedRedisUrl(): string {
  return process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
}

/** A key prefix no other run uses, so tests on a shared Redis never touch anything else. */
export function uniqueKeyPrefix(): string {
  return `gatehouse-test:${randomBytes(6).toString('hex')}:`;
}

const PROBE = `
const { Redis } = require('ioredis');
const client = new Redis(process.argv[1], {
  lazyConnect: true, connectTimeout: 1500, maxRetriesPerRequest: 0, retryStrategy: () => null,
});
let cause;
client.on('error', (error) => { cause = error; });
client.connect().then(() => client.ping()).then(
  () => { client.disconnect(); process.exit(0); },
  (error) => { process.stderr.write(String((cause || error).message)); process.exit(1); },
);
`;

/**
 * Why the shared Redis cannot be used, or undefined when it answers PING. Synchronous so that a
 * spec can choose `describe` or `describe.skip` when it loads.
 */
export function sharedRedisUnavailableReason(url = sharedRedisUrl()): string | undefined {
  const result = spawnSync(process.execPath, ['-e', PROBE, url], {
    cwd: join(__dirname, '..', '..'),
    encoding: 'utf8',
    timeout: 5000,
  });
  if (result.status === 0) {
    return undefined;
  }
  const detail = result.stderr?.trim() || result.error?.message || 'no answer';
  return `Redis at ${redactUrl(url)} is not reachable (${detail})`;
}

/** Why this machine cannot start its own redis-server, or undefined when it can. */
export function redisServerUnavailableReason(): string | undefined {
  for (const binary of ['redis-server', 'redis-cli']) {
    const result = spawnSync(binary, ['--version'], { encoding: 'utf8' });
    if (result.status !== 0) {
      return `${binary} is not installed`;
    }
  }
  return undefined;
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

/** Every key under a test prefix, by SCAN (KEYS would stall a shared Redis). */
export async function listKeysWithPrefix(client: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}

/** Deletes every key under a test prefix (never FLUSHDB: the Redis may be shared). */
export async function deleteKeysWithPrefix(client: Redis, prefix: string): Promise<void> {
  const keys = await listKeysWithPrefix(client, prefix);
  for (let start = 0; start < keys.length; start += 500) {
    await client.unlink(...keys.slice(start, start + 500));
  }
}

export interface RedisServer {
  port: number;
  url: string;
  /** `127.0.0.1:<port>`, as cluster node lists are written. */
  address: string;
  dir: string;
  /** Freezes the process (SIGSTOP): connections stay open and nothing answers. */
  pause(): void;
  resume(): void;
  /** Stops the process (SIGTERM) and removes its directory. */
  stop(): Promise<void>;
}

export interface StartRedisServerOptions {
  cluster?: boolean;
  /** Reuse a port, e.g. to bring a stopped server back where its clients expect it. */
  port?: number;
  /** More `redis-server` arguments, such as `['--maxmemory-policy', 'allkeys-lru']`. */
  args?: string[];
}

function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, LOOPBACK, () => server.close(() => resolve(true)));
  });
}

/** A free port whose cluster bus port (port + 10000) is free as well. */
async function sparePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const port = randomInt(20_000, 45_000);
    if ((await isPortFree(port)) && (await isPortFree(port + 10_000))) {
      return port;
    }
  }
  throw new Error('no spare loopback port found');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: LOOPBACK, port });
    const done = (answer: boolean): void => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
    socket.once('connect', () => socket.write('PING\r\n'));
  });
}

async function waitForPing(port: number, child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`redis-server on port ${port} exited with ${child.exitCode}`);
    }
    if (await pingOnce(port)) {
      return;
    }
    await sleep(50);
  }
  throw new Error(`redis-server on port ${port} did not answer within ${timeoutMs} ms`);
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(killer);
      resolve();
    });
    child.kill('SIGCONT');
    child.kill('SIGTERM');
  });
}

/** Starts a throw-away redis-server on loopback, without persistence, in a temp directory. */
async function launch(port: number, dir: string, args: string[]): Promise<RedisServer> {
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const stop = async (): Promise<void> => {
    process.off('exit', killOnExit);
    await stopProcess(child);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await waitForPing(port, child);
  } catch (error) {
    await stop();
    throw error;
  }
  const address = `${LOOPBACK}:${port}`;
  const pause = (): void => {
    child.kill('SIGSTOP');
  };
  const resume = (): void => {
    child.kill('SIGCONT');
  };
  return { port, url: `redis://${address}`, address, dir, pause, resume, stop };
}

function asArguments(settings: Record<string, string>): string[] {
  return Object.entries(settings).flatMap(([name, value]) => [`--${name}`, value]);
}

/** Starts a throw-away redis-server on loopback, without persistence, in a temp directory. */
export async function startRedisServer(
  options: StartRedisServerOptions = {},
): Promise<RedisServer> {
  const port = options.port ?? (await sparePort());
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-redis-'));
  const settings: Record<string, string> = {
    port: String(port),
    bind: LOOPBACK,
    save: '',
    appendonly: 'no',
    dir,
    logfile: join(dir, 'redis.log'),
  };
  if (options.cluster) {
    settings['cluster-enabled'] = 'yes';
    settings['cluster-config-file'] = 'nodes.conf';
    settings['cluster-node-timeout'] = '2000';
  }
  return launch(port, dir, [...asArguments(settings), ...(options.args ?? [])]);
}

/** A Sentinel on loopback watching the server at `masterPort` under the name `masterName`. */
export async function startRedisSentinel(
  masterPort: number,
  masterName: string,
): Promise<RedisServer> {
  const port = await sparePort();
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-sentinel-'));
  const config = join(dir, 'sentinel.conf');
  await writeFile(
    config,
    [
      `port ${port}`,
      `bind ${LOOPBACK}`,
      `dir ${dir}`,
      `logfile ${join(dir, 'sentinel.log')}`,
      `sentinel monitor ${masterName} ${LOOPBACK} ${masterPort} 1`,
      `sentinel down-after-milliseconds ${masterName} 5000`,
      '',
    ].join('\n'),
  );
  return launch(port, dir, [config, '--sentinel']);
}

export interface RedisCluster {
  /** `127.0.0.1:<port>` of each master. */
  nodes: string[];
  servers: RedisServer[];
  stop(): Promise<void>;
}

async function clusterInfo(port: number): Promise<string> {
  const { stdout } = await promisify(execFile)('redis-cli', [
    '-h',
    LOOPBACK,
    '-p',
    String(port),
    'CLUSTER',
    'INFO',
  ]);
  return stdout;
}

async function waitForClusterOk(servers: RedisServer[], timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const infos = await Promise.all(servers.map((server) => clusterInfo(server.port)));
    if (infos.every((info) => info.includes('cluster_state:ok'))) {
      return;
    }
    await sleep(100);
  }
  throw new Error('Redis cluster did not reach cluster_state:ok');
}

/** Three masters, no replicas, all slots assigned; stop() ends every node. */
export async function startRedisCluster(): Promise<RedisCluster> {
  const servers: RedisServer[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(servers.map((server) => server.stop()));
  };

  try {
    for (let index = 0; index < 3; index += 1) {
      servers.push(await startRedisServer({ cluster: true }));
    }
    const nodes = servers.map((server) => server.address);
    await promisify(execFile)('redis-cli', [
      '--cluster',
      'create',
      ...nodes,
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    await waitForClusterOk(servers);
    return { nodes, servers, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Waits until `check` passes, retrying on failure; for recovery after an outage. */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) {
        throw error;
      }
      await sleep(100);
    }
  }
}

/** The hash slot Redis computes for a key, asked of the cluster itself. */
export async function keySlot(cluster: Cluster, key: string): Promise<number> {
  return Number(await cluster.call('CLUSTER', 'KEYSLOT', key));
}
