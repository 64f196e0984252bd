import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';

const ROOT = path.resolve(__dirname, '..', '..');
const MAIN = path.join(ROOT, 'dist', 'src', 'main.js');

/** The Postgres server the end-to-end tests use, or undefined for the embedded database. */
export function serverDatabaseUrl(): string | undefined {
  return process.env.DATABASE_URL || undefined;
}

/** A fresh database on the test server, dropped by the returned function. */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const serverUrl = serverDatabaseUrl();
  if (!serverUrl) {
    throw new Error('createTestDatabase needs DATABASE_URL');
  }
  const name = `gatehouse_test_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new Client({ connectionString: serverUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

export interface GatehouseProcess {
  url: string;
  managementUrl: string;
  dataDir: string;
  env: Record<string, string>;
  child: ChildProcess;
  output(): string;
  /** Sends a signal and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

export interface StartOptions {
  env?: Record<string, string | undefined>;
  dataDir?: string;
  timeoutMs?: number;
}

const INHERITED = ['PATH', 'HOME', 'LANG', 'TMPDIR'];

/** The environment a service child gets: nothing of the test runner's own configuration. */
export function baseEnvironment(dataDir: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of INHERITED) {
    if (process.env[key]) {
      env[key] = process.env[key]!;
    }
  }
  return {
    ...env,
    NODE_ENV: 'test',
    DATA_DIR: dataDir,
    PORT: '0',
    MANAGEMENT_PORT: '0',
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'info',
    SHUTDOWN_DRAIN_DELAY: '100ms',
  };
}

export function temporaryDirectory(prefix = 'gatehouse-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Starts the built service as a child process and waits for its "started" line. */
export async function startGatehouse(options: StartOptions = {}): Promise<GatehouseProcess> {
  const dataDir = options.dataDir ?? temporaryDirectory();
  const env = { ...baseEnvironment(dataDir) } as Record<string, string>;
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) {
      delete env[key];
    } else {
      env[key] = value;
    }
  }
  const child = spawn(process.execPath, [MAIN], {
    env,
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const started = new Promise<{ url: string; management: string }>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      for (const line of output.split('\n')) {
        if (line.includes('"gatehouse started"')) {
          const parsed = JSON.parse(line) as { url: string; management: string };
          resolve(parsed);
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    void exited.then((code) => reject(new Error(`gatehouse exited with ${code}:\n${output}`)));
    setTimeout(() => {
      // A child that never started must not outlive the spec that gave up on it.
      child.kill('SIGKILL');
      reject(new Error(`gatehouse did not start in time:\n${output}`));
    }, options.timeoutMs ?? 150_000).unref();
  });
  const { url, management } = await started;
  return {
    url,
    managementUrl: management,
    dataDir,
    env,
    child,
    exited,
    output: () => output,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null) {
        child.kill(signal);
      }
      return exited;
    },
  };
}
