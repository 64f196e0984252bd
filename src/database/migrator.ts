import { DataSource } from 'typeorm';
import { MIGRATIONS } from '../../migrations';

/** Advisory lock key held while migrating, so replicas that start together do not race. */
const MIGRATION_LOCK_KEY = 0x6761_7465;

export interface MigrationState {
  name: string;
  applied: boolean;
}

function quoteIdentifier(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}

/**
 * Runs pending migrations under a Postgres advisory lock (TypeORM takes none of its own). The
 * embedded database is held by one process through its lock file, and its single session cannot
 * wait on itself, so it migrates without the advisory lock.
 */
export async function runMigrations(dataSource: DataSource, embedded: boolean): Promise<string[]> {
  if (embedded) {
    const ran = await dataSource.runMigrations({ transaction: 'each' });
    return ran.map((migration) => migration.name);
  }
  const lockHolder = dataSource.createQueryRunner();
  await lockHolder.connect();
  try {
    await lockHolder.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    const ran = await dataSource.runMigrations({ transaction: 'each' });
    return ran.map((migration) => migration.name);
  } finally {
    await lockHolder
      .query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY])
      .catch(() => undefined);
    await lockHolder.release();
  }
}

export async function migrationStatus(dataSource: DataSource): Promise<MigrationState[]> {
  const [{ present }] = (await dataSource.query(
    `SELECT to_regclass('schema_migrations') IS NOT NULL AS present`,
  )) as Array<{ present: boolean }>;
  const applied = new Set<string>();
  if (present) {
    const rows = (await dataSource.query('SELECT name FROM schema_migrations')) as Array<{
      name: string;
    }>;
    rows.forEach((row) => applied.add(row.name));
  }
  return MIGRATIONS.map((migration) => {
    const name = new migration().name ?? migration.name;
    return { name, applied: applied.has(name) };
  });
}

/**
 * Gives the service's own role what it needs and no more: the audit trail and admin actions are
 * insert and read only.
 */
export async function grantServiceRole(dataSource: DataSource, serviceRole: string): Promise<void> {
  const role = quoteIdentifier(serviceRole);
  const statements = [
    `GRANT USAGE ON SCHEMA public TO ${role}`,
    `GRANT SELECT, INSERT, UPDATE, DELETE ON users, certificate_bindings, signing_keys,
       revoked_tokens, findings, audit_writers TO ${role}`,
    `GRANT SELECT ON schema_migrations TO ${role}`,
    `GRANT SELECT, INSERT ON login_attempts, admin_actions TO ${role}`,
    `REVOKE UPDATE, DELETE, TRUNCATE ON login_attempts, admin_actions FROM ${role}`,
  ];
  for (const statement of statements) {
    await dataSource.query(statement);
  }
}
