import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { Client } from 'pg';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'gatehouse.js');

/** Everything the CLI reads that a spec must choose itself rather than inherit. */
const CONFIGURATION_KEYS = [
  'DATABASE_URL',
  'DATABASE_ADMIN_URL',
  'REDIS_URL',
  'REDIS_CLUSTER_NODES',
  'LIMITER_STORE',
  'AUDIT_USERNAME_KEY',
  'DATA_DIR',
  'MIGRATE_ON_START',
  'NODE_ENV',
  'MTLS_MODE',
];

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Builds dist/ once, so no spec times out while the first command compiles. */
export function buildCli(): void {
  const result = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build-if-needed.js')], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (result.status !== 0) {
    throw new Error(`the build failed:\n${result.stdout}\n${result.stderr}`);
  }
}

/** The parent's environment without any Gatehouse configuration (nor its `_FILE` forms). */
export function cleanEnvironment(
  overrides: Record<string, string | undefined> = {},
): NodeJS.ProcessEnv {
  const environment: NodeJS.ProcessEnv = { ...process.env };
  for (const key of CONFIGURATION_KEYS) {
    delete environment[key];
    delete environment[`${key}_FILE`];
  }
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) {
      delete environment[key];
    } else {
      environment[key] = value;
    }
  }
  return environment;
}

/** Runs `node bin/gatehouse.js …` to completion, with `input` on its stdin. */
export function runCli(
  args: string[],
  environment: NodeJS.ProcessEnv,
  input = '',
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env: environment,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(input);
  });
}

/**
 * The lines a command wrote to stderr, without the note bin/gatehouse.js prints when it rebuilds
 * because another source file changed meanwhile.
 */
export function stderrLines(result: CliResult): string[] {
  return result.stderr.split('\n').filter((line) => line !== '' && line !== 'gatehouse: building…');
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** Creates a database of its own on the Postgres server at `serverUrl`. */
export async function createTestDatabase(serverUrl: string): Promise<TestDatabase> {
  const name = `gatehouse_cli_${randomBytes(6).toString('hex')}`;
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
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}
