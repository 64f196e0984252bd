import * as path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { DataSource, DataSourceOptions } from 'typeorm';
import { MIGRATIONS } from '../../migrations';
import { AppConfig } from '../config/app-config';
import { DataDirLock, ensurePrivateDirectory } from './data-dir-lock';
import { createEmbeddedPoolClass } from './embedded-pool';
import { ENTITIES } from './entities';

/** An open database: the DataSource, whether it is the embedded one, and how to close it. */
export interface DatabaseConnection {
  dataSource: DataSource;
  embedded: boolean;
  close(): Promise<void>;
}

export type DatabaseRole = 'service' | 'admin';

const COMMON_OPTIONS = {
  type: 'postgres' as const,
  entities: ENTITIES,
  migrations: MIGRATIONS,
  migrationsTableName: 'schema_migrations',
  synchronize: false,
  migrationsRun: false,
  logging: false,
};

async function openServer(url: string, poolSize: number): Promise<DatabaseConnection> {
  const options: DataSourceOptions = {
    ...COMMON_OPTIONS,
    url,
    extra: { max: poolSize, connectionTimeoutMillis: 5000, statement_timeout: 30_000 },
    applicationName: 'gatehouse',
  } as DataSourceOptions;
  const dataSource = await new DataSource(options).initialize();
  return { dataSource, embedded: false, close: () => dataSource.destroy() };
}

async function openEmbedded(dataDir: string): Promise<DatabaseConnection> {
  ensurePrivateDirectory(dataDir);
  const lock = DataDirLock.forDirectory(dataDir);
  lock.acquire();
  try {
    const database = await PGlite.create(path.join(dataDir, 'pgdata'));
    const dataSource = new DataSource({
      ...COMMON_OPTIONS,
      driver: { Pool: createEmbeddedPoolClass(database) },
      installExtensions: false,
      uuidExtension: 'pgcrypto',
    } as DataSourceOptions);
    await dataSource.initialize();
    return {
      dataSource,
      embedded: true,
      // Nest's TypeORM module may already have destroyed the DataSource at app close; the
      // database and the lock must still be closed and released.
      close: async () => {
        try {
          if (dataSource.isInitialized) {
            await dataSource.destroy();
          }
          await database.close();
        } finally {
          lock.release();
        }
      },
    };
  } catch (error) {
    lock.release();
    throw error;
  }
}

/**
 * Opens Postgres at DATABASE_URL (or DATABASE_ADMIN_URL for the owner role), or the embedded
 * PGlite under DATA_DIR when no URL is configured.
 */
export function openDatabase(
  config: AppConfig,
  role: DatabaseRole = 'service',
): Promise<DatabaseConnection> {
  if (config.databaseUrl === undefined) {
    return openEmbedded(config.dataDir);
  }
  const url =
    role === 'admin' ? (config.databaseAdminUrl ?? config.databaseUrl) : config.databaseUrl;
  return openServer(url, role === 'admin' ? 2 : 20);
}
