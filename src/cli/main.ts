import 'reflect-metadata';
import { loadConfig } from '../config/config.loader';
import { parseArguments, refusePasswordArguments } from './arguments';
import { UsageError } from './cli-error';
import { Command } from './command';
import { reportFor } from './error-message';
import { helpText } from './help';
import { CERTS_COMMANDS } from './certs.command';
import { KEYS_COMMANDS } from './keys.command';
import { MIGRATE_COMMANDS } from './migrate.command';
import { printable, writeNotice } from './output';
import { USERS_COMMANDS } from './users.command';

const COMMANDS: readonly Command[] = [
  ...MIGRATE_COMMANDS,
  ...USERS_COMMANDS,
  ...CERTS_COMMANDS,
  ...KEYS_COMMANDS,
];

const HELP_WORDS = new Set(['help', '--help', '-h']);

/** The command whose name is the longest prefix of `words`, and the words after it. */
function findCommand(words: readonly string[]): { command: Command; rest: string[] } | undefined {
  const matches = COMMANDS.filter((command) =>
    command.name.every((word, index) => words[index] === word),
  ).sort((a, b) => b.name.length - a.name.length);
  return matches.length === 0
    ? undefined
    : { command: matches[0], rest: words.slice(matches[0].name.length) };
}

function unknownCommand(words: readonly string[]): UsageError {
  const group = COMMANDS.filter((command) => command.name[0] === words[0]);
  if (group.length > 0 && (words.length === 1 || words[1].startsWith('-'))) {
    const subcommands = group.map((command) => command.name[1]).join(', ');
    return new UsageError(`${words[0]} needs a subcommand: ${subcommands}`);
  }
  const named = group.length > 0 ? words.slice(0, 2).join(' ') : words[0];
  return new UsageError(`unknown command '${printable(named, 60)}'; run \`gatehouse help\``);
}

async function run(words: readonly string[]): Promise<void> {
  refusePasswordArguments(words);
  if (words.length === 0) {
    throw new UsageError('no command given; run `gatehouse help`');
  }
  if (
    words.some((word) => HELP_WORDS.has(word)) &&
    (HELP_WORDS.has(words[0]) || findCommand(words))
  ) {
    process.stdout.write(helpText(COMMANDS));
    return;
  }
  const match = findCommand(words);
  if (match === undefined) {
    throw unknownCommand(words);
  }
  const parsed = parseArguments(match.command.usage, match.command.arguments, match.rest);
  await match.command.run(parsed, loadConfig());
}

/**
 * Exits once stdout and stderr are flushed. Everything the command opened is closed by then; a
 * client still backing off to reconnect (Redis that never answered) must not hold the exit.
 */
function finish(exitCode: number): void {
  process.exitCode = exitCode;
  process.stdout.write('', () => process.stderr.write('', () => process.exit(exitCode)));
}

function fail(error: unknown): void {
  const report = reportFor(error);
  writeNotice(report.message);
  finish(report.exitCode);
}

process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);

run(process.argv.slice(2)).then(() => finish(0), fail);
