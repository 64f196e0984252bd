import * as fs from 'node:fs';
import { AppConfig } from '../config/app-config';
import { DatabaseConnection } from '../database/data-source.factory';
import { CertificateBindingsService } from '../mtls/certificate-bindings.service';
import { limiterSettings } from '../throttling/login-limiter.service';
import { createRedisClient, waitForRedis } from '../throttling/redis-connection';
import { RedisLimiterStore } from '../throttling/redis-limiter.store';
import { HashScheduler } from '../users/hash-scheduler';
import { Argon2PasswordHasher } from '../users/password-hasher';
import { User } from '../users/user.entity';
import { normalizeUsername } from '../users/username';
import { UserExistsError, UserNotFoundError, UsersService } from '../users/users.service';
import { recordAdminAction } from './admin-actions';
import { ParsedArguments } from './arguments';
import { CliError, UsageError } from './cli-error';
import { Command } from './command';
import { withServiceDatabase } from './database';
import { decodeUtf8, readPasswordFromStdin } from './password-input';
import { printable, writeJson, writeLine, writeNotice, writeTable } from './output';
import { createImportedUsers, parseUserImport } from './user-import';

/** How long `users unlock` waits for Redis before giving up. */
const REDIS_READY_TIMEOUT_MS = 5000;

/** The service as the application builds it, by hand: the CLI starts no Nest container. */
export function usersServiceFor(connection: DatabaseConnection, config: AppConfig): UsersService {
  return new UsersService(
    connection.dataSource.getRepository(User),
    new Argon2PasswordHasher(),
    new HashScheduler(2, 64),
    config,
  );
}

/** Looks a user up by any spelling of the name, failing with a line that names it. */
export async function requireUser(users: UsersService, username: string): Promise<User> {
  try {
    return await users.require(username);
  } catch (error) {
    if (error instanceof UserNotFoundError) {
      throw new CliError(`no user named '${printable(username, 100)}'`);
    }
    throw error;
  }
}

async function addUser(parsed: ParsedArguments, config: AppConfig): Promise<void> {
  const normalizedUsername = normalizeUsername(parsed.positional('name'), config.usernameMaxBytes);
  const password = parsed.flag('password-stdin')
    ? await readPasswordFromStdin(config.passwordMaxBytes)
    : undefined;
  const roles = parsed.flag('admin') ? ['admin'] : [];

  await withServiceDatabase(config, async (connection) => {
    try {
      await usersServiceFor(connection, config).create({
        username: parsed.positional('name'),
        password,
        roles,
      });
    } catch (error) {
      if (error instanceof UserExistsError) {
        throw new CliError(`a user named '${printable(normalizedUsername, 100)}' already exists`);
      }
      throw error;
    }
    await recordAdminAction(connection.dataSource, 'user.create', normalizedUsername, {
      roles,
      has_password: password !== undefined,
    });
  });

  const roleNote = roles.length > 0 ? ` with role ${roles.join(', ')}` : '';
  writeLine(`created user ${printable(normalizedUsername)}${roleNote}`);
  if (password === undefined) {
    writeLine(
      'it has no password yet: set one with `gatehouse users set-password <name> --password-stdin`',
    );
  }
}

function readImportFile(file: string): string {
  try {
    return decodeUtf8(fs.readFileSync(file));
  } catch (error) {
    if (error instanceof CliError) {
      throw new CliError(`${printable(file)} is not valid UTF-8`);
    }
    throw new CliError(
      `cannot read ${printable(file)}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
}

async function importUsers(parsed: ParsedArguments, config: AppConfig): Promise<void> {
  const file = parsed.positional('file');
  const { entries, problems } = parseUserImport(readImportFile(file), config);
  problems.forEach((problem) => writeNotice(`line ${problem.line}: ${problem.reason}`));

  const failed = await withServiceDatabase(config, async (connection) => {
    const users = usersServiceFor(connection, config);
    const concurrency = Math.min(config.hashConcurrency, 8);
    return createImportedUsers(users, entries, concurrency, (entry) =>
      recordAdminAction(connection.dataSource, 'user.create', entry.normalizedUsername, {
        roles: [],
        has_password: true,
        imported_from_line: entry.line,
      }),
    );
  });

  const skipped = problems.length + failed.length;
  writeLine(`imported ${entries.length - failed.length} user(s) from ${printable(file)}`);
  if (skipped > 0) {
    throw new CliError(`${skipped} line(s) of ${printable(file)} were not imported (see above)`);
  }
}

async function listUsers(parsed: ParsedArguments, config: AppConfig): Promise<void> {
  const { users, certificateCounts } = await withServiceDatabase(config, async (connection) => {
    const bindings = await new CertificateBindingsService(connection.dataSource).list();
    const counts = new Map<string, number>();
    bindings
      .filter((binding) => binding.revokedAt === null)
      .forEach((binding) => counts.set(binding.userId, (counts.get(binding.userId) ?? 0) + 1));
    return { users: await usersServiceFor(connection, config).list(), certificateCounts: counts };
  });

  const described = users.map((user) => ({
    username: user.normalizedUsername,
    display_name: user.username,
    roles: user.roles,
    disabled: user.disabled,
    has_password: user.passwordHash !== null,
    certificates: certificateCounts.get(user.id) ?? 0,
    created_at: new Date(user.createdAt).toISOString(),
  }));
  if (parsed.flag('json')) {
    writeJson({ users: described });
    return;
  }
  writeTable(
    ['USERNAME', 'ROLES', 'STATE', 'PASSWORD', 'CERTIFICATES', 'CREATED'],
    described.map((user) => [
      user.username,
      user.roles.join(',') || '-',
      user.disabled ? 'disabled' : 'enabled',
      user.has_password ? 'set' : 'none',
      String(user.certificates),
      user.created_at,
    ]),
  );
}

function setDisabled(disabled: boolean) {
  return async (parsed: ParsedArguments, config: AppConfig): Promise<void> => {
    const user = await withServiceDatabase(config, async (connection) => {
      const users = usersServiceFor(connection, config);
      const found = await requireUser(users, parsed.positional('name'));
      await users.setDisabled(found.normalizedUsername, disabled);
      await recordAdminAction(
        connection.dataSource,
        disabled ? 'user.disable' : 'user.enable',
        found.normalizedUsername,
      );
      return found;
    });
    writeLine(
      disabled
        ? `disabled ${printable(user.normalizedUsername)}; its tokens stop working now`
        : `enabled ${printable(user.normalizedUsername)}`,
    );
  };
}

async function setPassword(parsed: ParsedArguments, config: AppConfig): Promise<void> {
  if (!parsed.flag('password-stdin')) {
    throw new UsageError('set-password reads the password from stdin: add --password-stdin');
  }
  const password = await readPasswordFromStdin(config.passwordMaxBytes);
  const user = await withServiceDatabase(config, async (connection) => {
    const users = usersServiceFor(connection, config);
    const found = await requireUser(users, parsed.positional('name'));
    await users.setPassword(found.normalizedUsername, password);
    await recordAdminAction(connection.dataSource, 'user.set_password', found.normalizedUsername);
    return found;
  });
  writeLine(
    `set the password of ${printable(user.normalizedUsername)}; its earlier tokens stop working`,
  );
}

async function unlockInRedis(config: AppConfig, normalizedUsername: string): Promise<boolean> {
  let lastError = 'no answer';
  const client = createRedisClient({
    url: config.redisUrl,
    clusterNodes: config.redisClusterNodes.length > 0 ? config.redisClusterNodes : undefined,
    onError: (error) => (lastError = error.message),
  });
  try {
    await waitForRedis(client, REDIS_READY_TIMEOUT_MS);
  } catch {
    client.disconnect();
    throw new CliError(`cannot reach Redis: ${lastError}`);
  }
  const store = new RedisLimiterStore(client, limiterSettings(config), {
    keyPrefix: config.limiterKeyPrefix,
    ownsClient: true,
  });
  try {
    return (await store.unlock(normalizedUsername)).refilled;
  } finally {
    await store.close();
  }
}

/**
 * Lifts the lockouts of a name in the shared limiter store. The limiter counts attempts on names
 * that exist and names that do not alike, so this does not look the user up.
 */
async function unlockUser(parsed: ParsedArguments, config: AppConfig): Promise<void> {
  const normalizedUsername = normalizeUsername(parsed.positional('name'), config.usernameMaxBytes);
  if (config.limiterStore !== 'redis') {
    throw new CliError(
      'without Redis the lockouts live inside each service process; unlock there with ' +
        `POST /admin/users/${encodeURIComponent(normalizedUsername)}/unlock`,
    );
  }
  const refilled = await unlockInRedis(config, normalizedUsername);
  writeLine(
    refilled
      ? `unlocked ${printable(normalizedUsername)} and cleared its recent failures`
      : `unlocked ${printable(normalizedUsername)}; its recent failures were already cleared ` +
          'once in this window, so they stay',
  );
}

export const USERS_COMMANDS: Command[] = [
  {
    name: ['users', 'add'],
    usage: 'users add <name> [--admin] [--password-stdin]',
    summary: 'create a user; the password, if any, is read from stdin',
    arguments: { positionals: ['name'], flags: ['admin', 'password-stdin'] },
    run: addUser,
  },
  {
    name: ['users', 'import'],
    usage: 'users import <file>',
    summary: 'create users from name:password lines (blank lines and # comments skipped)',
    arguments: { positionals: ['file'] },
    run: importUsers,
  },
  {
    name: ['users', 'list'],
    usage: 'users list [--json]',
    summary: 'list users with their roles, state and bound certificates',
    arguments: { positionals: [], flags: ['json'] },
    run: listUsers,
  },
  {
    name: ['users', 'enable'],
    usage: 'users enable <name>',
    summary: 'allow a disabled user to log in again',
    arguments: { positionals: ['name'] },
    run: setDisabled(false),
  },
  {
    name: ['users', 'disable'],
    usage: 'users disable <name>',
    summary: 'refuse every login of a user and end its tokens',
    arguments: { positionals: ['name'] },
    run: setDisabled(true),
  },
  {
    name: ['users', 'unlock'],
    usage: 'users unlock <name>',
    summary: 'lift the lockouts of a user in the Redis limiter store',
    arguments: { positionals: ['name'] },
    run: unlockUser,
  },
  {
    name: ['users', 'set-password'],
    usage: 'users set-password <name> --password-stdin',
    summary: 'replace a password (read from stdin) and end the tokens issued before',
    arguments: { positionals: ['name'], flags: ['password-stdin'] },
    run: setPassword,
  },
];
