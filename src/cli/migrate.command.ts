import { AppConfig } from '../config/app-config';
import { migrationStatus } from '../database/migrator';
import { ParsedArguments } from './arguments';
import { Command } from './command';
import { migrateAsAdmin, withDatabase } from './database';
import { writeJson, writeLine, writeNotice, writeTable } from './output';

async function migrate(_parsed: ParsedArguments, config: AppConfig): Promise<void> {
  if (config.databaseUrl !== undefined && config.databaseAdminUrl === undefined) {
    writeNotice(
      'warning: DATABASE_ADMIN_URL is not set; migrating as the service role, which then owns ' +
        'the tables',
    );
  }
  const applied = await migrateAsAdmin(config);
  if (applied.length === 0) {
    writeLine('the database schema is up to date');
    return;
  }
  writeLine(`applied ${applied.length} migration(s):`);
  applied.forEach((name) => writeLine(`  ${name}`));
}

async function status(parsed: ParsedArguments, config: AppConfig): Promise<void> {
  const states = await withDatabase(config, 'admin', (connection) =>
    migrationStatus(connection.dataSource),
  );
  const pending = states.filter((state) => !state.applied).length;
  if (parsed.flag('json')) {
    writeJson({ up_to_date: pending === 0, pending, migrations: states });
    return;
  }
  writeTable(
    ['MIGRATION', 'STATE'],
    states.map((state) => [state.name, state.applied ? 'applied' : 'pending']),
  );
  writeLine(pending === 0 ? 'up to date' : `${pending} pending: run \`gatehouse migrate\``);
}

export const MIGRATE_COMMANDS: Command[] = [
  {
    name: ['migrate'],
    usage: 'migrate',
    summary: 'apply pending database migrations (as DATABASE_ADMIN_URL, else DATABASE_URL)',
    arguments: { positionals: [] },
    run: migrate,
  },
  {
    name: ['migrate', 'status'],
    usage: 'migrate status [--json]',
    summary: 'list migrations and whether each is applied',
    arguments: { positionals: [], flags: ['json'] },
    run: status,
  },
];
