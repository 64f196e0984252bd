import { InvalidUsernameError, normalizeUsername } from '../users/username';
import { UserExistsError, UsersService } from '../users/users.service';
import { writeNotice } from './output';

/** One `name:password` line that passed the checks made before touching the database. */
export interface ImportEntry {
  line: number;
  username: string;
  normalizedUsername: string;
  password: string;
}

/** Why a line was not imported. Never holds any part of the line itself. */
export interface ImportProblem {
  line: number;
  reason: string;
}

export interface ParsedImport {
  entries: ImportEntry[];
  problems: ImportProblem[];
}

/** Files with at least this many users get progress lines on stderr. */
const PROGRESS_THRESHOLD = 100;

/**
 * Reads `name:password` lines, split at the first colon so a password may hold colons. Blank
 * lines and `#` comments are skipped. Names are checked and de-duplicated here, so the database
 * sees only lines that can succeed unless the user already exists.
 */
export function parseUserImport(
  text: string,
  limits: { usernameMaxBytes: number; passwordMaxBytes: number },
): ParsedImport {
  const entries: ImportEntry[] = [];
  const problems: ImportProblem[] = [];
  const firstLineOf = new Map<string, number>();

  text
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/)
    .forEach((content, index) => {
      const line = index + 1;
      if (content.trim() === '' || content.trimStart().startsWith('#')) {
        return;
      }
      const parsed = parseLine(content, limits);
      if ('reason' in parsed) {
        problems.push({ line, reason: parsed.reason });
        return;
      }
      const earlier = firstLineOf.get(parsed.normalizedUsername);
      if (earlier !== undefined) {
        problems.push({ line, reason: `names the same user as line ${earlier}` });
        return;
      }
      firstLineOf.set(parsed.normalizedUsername, line);
      entries.push({ line, ...parsed });
    });

  return { entries, problems };
}

function parseLine(
  content: string,
  limits: { usernameMaxBytes: number; passwordMaxBytes: number },
): Omit<ImportEntry, 'line'> | { reason: string } {
  const colon = content.indexOf(':');
  if (colon === -1) {
    return { reason: 'expected name:password' };
  }
  const username = content.slice(0, colon);
  const password = content.slice(colon + 1);
  if (password === '') {
    return { reason: 'the password is empty' };
  }
  if (Buffer.byteLength(password, 'utf8') > limits.passwordMaxBytes) {
    return {
      reason: `the password is longer than PASSWORD_MAX_BYTES (${limits.passwordMaxBytes})`,
    };
  }
  try {
    return {
      username,
      normalizedUsername: normalizeUsername(username, limits.usernameMaxBytes),
      password,
    };
  } catch (error) {
    if (error instanceof InvalidUsernameError) {
      return { reason: error.message };
    }
    throw error;
  }
}

/** Counts finished lines and, for a large file, reports every tenth of the way on stderr. */
class ImportProgress {
  private done = 0;
  private readonly step: number;

  constructor(private readonly total: number) {
    this.step = total >= PROGRESS_THRESHOLD ? Math.ceil(total / 10) : Number.POSITIVE_INFINITY;
  }

  advance(): void {
    this.done += 1;
    if (this.done % this.step === 0 || (this.done === this.total && this.step !== Infinity)) {
      writeNotice(`import progress: ${this.done} of ${this.total} users`);
    }
  }
}

/**
 * Creates the users of `entries`, `concurrency` at a time (each one is a deliberately slow
 * password hash). Problems are reported as they happen; the caller gets them all back.
 */
export async function createImportedUsers(
  users: UsersService,
  entries: ImportEntry[],
  concurrency: number,
  onCreated: (entry: ImportEntry) => Promise<void>,
): Promise<ImportProblem[]> {
  const problems: ImportProblem[] = [];
  const progress = new ImportProgress(entries.length);
  let next = 0;
  let stopped = false;

  const worker = async (): Promise<void> => {
    while (next < entries.length && !stopped) {
      const entry = entries[next];
      next += 1;
      try {
        await users.create({ username: entry.username, password: entry.password, roles: [] });
        await onCreated(entry);
      } catch (error) {
        if (!(error instanceof UserExistsError)) {
          stopped = true;
          throw error;
        }
        problems.push({ line: entry.line, reason: 'a user with that name already exists' });
        writeNotice(`line ${entry.line}: a user with that name already exists`);
      }
      progress.advance();
    }
  };

  // Every worker is waited for before an error is passed on, so none outlives the connection.
  const outcomes = await Promise.allSettled(
    Array.from({ length: Math.max(1, concurrency) }, worker),
  );
  const failure = outcomes.find((outcome) => outcome.status === 'rejected');
  if (failure !== undefined) {
    throw failure.reason;
  }
  return problems;
}
