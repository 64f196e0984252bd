import 'reflect-metadata';
import { AppConfig } from '../../src/config/app-config';
import { loadConfig } from '../../src/config/config.loader';
import { DatabaseConnection, openDatabase } from '../../src/database/data-source.factory';
import { runMigrations } from '../../src/database/migrator';
import { Argon2PasswordHasher } from '../../src/users/password-hasher';
import { normalizeUsername } from '../../src/users/username';

/** Where a spec's service keeps its data: a Postgres database, or the embedded one in DATA_DIR. */
export interface DatabaseTarget {
  dataDir: string;
  databaseUrl?: string;
}

export interface TestUser {
  username: string;
  password: string;
  roles?: string[];
  disabled?: boolean;
}

/** Any 16 bytes or more; the service and the spec only need to agree within one run. */
export const TEST_AUDIT_USERNAME_KEY = 'end-to-end-audit-username-key-0123456789';

/** The environment a service child needs to use `target`. */
export function databaseEnvironment(target: DatabaseTarget): Record<string, string> {
  if (target.databaseUrl === undefined) {
    return {};
  }
  return {
    DATABASE_URL: target.databaseUrl,
    LIMITER_STORE: 'memory',
    AUDIT_USERNAME_KEY: TEST_AUDIT_USERNAME_KEY,
  };
}

function configFor(target: DatabaseTarget): AppConfig {
  return loadConfig({
    NODE_ENV: 'test',
    MTLS_MODE: 'off',
    DATA_DIR: target.dataDir,
    ...databaseEnvironment(target),
  });
}

/**
 * Opens the target's database (migrated) for `work`, then closes it. On the embedded database
 * this takes the DATA_DIR lock, so it must run while no service holds it.
 */
export async function withDatabase<T>(
  target: DatabaseTarget,
  work: (connection: DatabaseConnection) => Promise<T>,
): Promise<T> {
  const connection = await openDatabase(configFor(target));
  try {
    await runMigrations(connection.dataSource, connection.embedded);
    return await work(connection);
  } finally {
    await connection.close();
  }
}

/** Inserts users with argon2id hashes, the way `gatehouse users add` stores them. */
export async function createUsers(target: DatabaseTarget, users: TestUser[]): Promise<void> {
  const hasher = new Argon2PasswordHasher();
  const rows = await Promise.all(
    users.map(async (user) => ({ ...user, passwordHash: await hasher.hash(user.password) })),
  );
  await withDatabase(target, async ({ dataSource }) => {
    for (const user of rows) {
      await dataSource.query(
        `INSERT INTO users (username, normalized_username, password_hash, roles, disabled)
         VALUES ($1, $2, $3, $4, $5)`,
        [
          user.username.normalize('NFKC').trim(),
          normalizeUsername(user.username),
          user.passwordHash,
          user.roles ?? [],
          user.disabled ?? false,
        ],
      );
    }
  });
}

/** `SELECT outcome, sum(count) FROM login_attempts GROUP BY outcome`, as a plain record. */
export async function attemptCountsByOutcome(
  target: DatabaseTarget,
): Promise<Record<string, number>> {
  return withDatabase(target, async ({ dataSource }) => {
    const rows = (await dataSource.query(
      'SELECT outcome, sum(count)::int AS total FROM login_attempts GROUP BY outcome',
    )) as Array<{ outcome: string; total: number | string }>;
    return Object.fromEntries(rows.map((row) => [row.outcome, Number(row.total)]));
  });
}
