import { AppConfig } from '../config/app-config';
import { DatabaseConnection, DatabaseRole, openDatabase } from '../database/data-source.factory';
import { grantServiceRole, migrationStatus, runMigrations } from '../database/migrator';
import { CliError } from './cli-error';
import { writeNotice } from './output';

/** Opens the database for `role`, runs `work`, and always closes it (releasing the lock file). */
export async function withDatabase<T>(
  config: AppConfig,
  role: DatabaseRole,
  work: (connection: DatabaseConnection) => Promise<T>,
): Promise<T> {
  const connection = await openDatabase(config, role);
  try {
    return await work(connection);
  } finally {
    await connection.close();
  }
}

/**
 * Opens the database as the service role with its schema in place. A database with no schema at
 * all is migrated first when MIGRATE_ON_START allows, as the service would on its first start; a
 * schema that is merely behind is left to `gatehouse migrate`, which an operator runs on purpose.
 */
export function withServiceDatabase<T>(
  config: AppConfig,
  work: (connection: DatabaseConnection) => Promise<T>,
): Promise<T> {
  return withDatabase(config, 'service', async (connection) => {
    await ensureSchema(config, connection);
    return work(connection);
  });
}

async function ensureSchema(config: AppConfig, connection: DatabaseConnection): Promise<void> {
  const states = await migrationStatus(connection.dataSource);
  const pending = states.filter((state) => !state.applied).length;
  if (pending === 0) {
    return;
  }
  if (pending < states.length) {
    throw new CliError(
      `the database schema is behind (${pending} pending): run \`gatehouse migrate\``,
    );
  }
  if (!config.migrateOnStart) {
    throw new CliError('the database has no schema yet: run `gatehouse migrate`');
  }
  const applied = connection.embedded
    ? await runMigrations(connection.dataSource, true)
    : await migrateAsAdmin(config);
  writeNotice(`the database had no schema; applied ${applied.length} migration(s)`);
}

/**
 * Runs pending migrations as the owner role (DATABASE_ADMIN_URL, else DATABASE_URL) and, when the
 * service connects as a different role, grants that role what it needs. Returns what ran.
 */
export async function migrateAsAdmin(config: AppConfig): Promise<string[]> {
  return withDatabase(config, 'admin', async (connection) => {
    const applied = await runMigrations(connection.dataSource, connection.embedded);
    const serviceRole = roleOf(config.databaseUrl);
    if (
      config.databaseAdminUrl !== undefined &&
      serviceRole !== '' &&
      serviceRole !== roleOf(config.databaseAdminUrl)
    ) {
      await grantServiceRole(connection.dataSource, serviceRole);
    }
    return applied;
  });
}

function roleOf(url: string | undefined): string {
  return url === undefined ? '' : decodeURIComponent(new URL(url).username);
}
