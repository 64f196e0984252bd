import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildCli } from './support/cli';
import {
  GatehouseProcess,
  baseEnvironment,
  createTestDatabase,
  serverDatabaseUrl,
  startGatehouse,
  temporaryDirectory,
} from './support/gatehouse';
import {
  answeredOutcomes,
  buildBurst,
  expectedOutcome,
  expectedStatus,
  sendBurst,
} from './support/login-burst';
import { RawRequest, boundedAgent, postLogin, sendRaw } from './support/login-requests';
import {
  DatabaseTarget,
  TestUser,
  attemptCountsByOutcome,
  createUsers,
  databaseEnvironment,
} from './support/users';

/** Limits far above anything these specs send, so throttling never decides an outcome here. */
const RELAXED_LIMITS = {
  MTLS_MODE: 'off',
  IP_LOGIN_LIMIT: '1000000',
  IP_USER_LIMIT: '1000000',
  LOGIN_MAX_FAILURES: '1000',
  IP_FAILURE_BUDGET: '1000000',
  HASH_QUEUE_MAX: '100000',
};

const BURST_SIZE = 1000;
const BURST_SOCKETS = 32;

interface DatabaseKind {
  name: string;
  server: boolean;
}

const DATABASE_KINDS: DatabaseKind[] = [
  { name: 'embedded', server: false },
  ...(serverDatabaseUrl() ? [{ name: 'server', server: true }] : []),
];
if (!serverDatabaseUrl()) {
  process.stderr.write('login foundation e2e: DATABASE_URL is unset; the server runs are skipped\n');
}

function burstUsers(count: number): TestUser[] {
  return Array.from({ length: count }, (_, index) => ({
    username: `burst-user-${index}`,
    password: `correct horse ${index} ${randomBytes(4).toString('hex')}`,
  }));
}

/** A data directory and, on the server kind, a database of the spec's own. */
async function prepareTarget(kind: DatabaseKind): Promise<{
  target: DatabaseTarget;
  cleanup(): Promise<void>;
}> {
  const dataDir = temporaryDirectory('gatehouse-login-');
  if (!kind.server) {
    return { target: { dataDir }, cleanup: async () => fs.rmSync(dataDir, { recursive: true }) };
  }
  const database = await createTestDatabase();
  return {
    target: { dataDir, databaseUrl: database.url },
    cleanup: async () => {
      await database.drop();
      fs.rmSync(dataDir, { recursive: true });
    },
  };
}

function startOn(target: DatabaseTarget, env: Record<string, string> = {}): Promise<GatehouseProcess> {
  return startGatehouse({
    dataDir: target.dataDir,
    env: { ...RELAXED_LIMITS, ...databaseEnvironment(target), ...env },
  });
}

function withoutZeros(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter(([, count]) => count > 0));
}

beforeAll(() => buildCli(), 300_000);

describe.each(DATABASE_KINDS)('Login burst on the $name database', (kind) => {
  const users = burstUsers(5);
  let target: DatabaseTarget;
  let cleanup: () => Promise<void>;

  beforeEach(async () => {
    ({ target, cleanup } = await prepareTarget(kind));
    await createUsers(target, users);
  }, 60_000);

  afterEach(() => cleanup());

  it('records 1,000 concurrent attempts with the outcome each was answered with', async () => {
    const service = await startOn(target);
    const agent = boundedAgent(BURST_SOCKETS);
    const burst = buildBurst(users, BURST_SIZE, randomBytes(4).toString('hex'));

    const results = await sendBurst(service.url, burst, agent);
    agent.destroy();
    const exitCode = await service.stop();

    const failures = results.filter((result) => result.error).map((r) => r.error!.message);
    expect(failures).toEqual([]);
    const wrongStatus = results.filter(
      (result) => result.response!.status !== expectedStatus(result.kind),
    );
    expect(wrongStatus.map((r) => `${r.kind}: ${r.response!.status} ${r.response!.body}`)).toEqual(
      [],
    );
    expect(exitCode).toBe(0);
    expect(await attemptCountsByOutcome(target)).toEqual({
      success: 250,
      bad_password: 250,
      unknown_user: 250,
      invalid_request: 250,
    });
  }, 180_000);

  it('records every answered attempt when SIGTERM arrives in the middle of a burst', async () => {
    const service = await startOn(target);
    const agent = boundedAgent(BURST_SOCKETS);
    const burst = buildBurst(users, BURST_SIZE, randomBytes(4).toString('hex'));
    let signalled = false;

    const results = await sendBurst(service.url, burst, agent, (answered) => {
      if (answered === 200 && !signalled) {
        signalled = true;
        service.child.kill('SIGTERM');
      }
    });
    agent.destroy();
    const exitCode = await service.exited;

    const answered = answeredOutcomes(results);
    const answeredTotal = Object.values(answered).reduce((sum, count) => sum + count, 0);
    expect(signalled).toBe(true);
    expect(answeredTotal).toBeGreaterThanOrEqual(200);
    expect(answeredTotal).toBeLessThan(BURST_SIZE);
    expect(exitCode).toBe(0);
    const recorded = withoutZeros(await attemptCountsByOutcome(target));
    expect(recorded).toEqual(answered);
  }, 180_000);
});
