import { UsageError } from './cli-error';
import { printable } from './output';

/** What one command accepts: named positionals (all required), boolean flags, valued options. */
export interface ArgumentSpec {
  positionals: readonly string[];
  flags?: readonly string[];
  options?: readonly string[];
}

/** The command line of one command, checked against its ArgumentSpec. */
export class ParsedArguments {
  constructor(
    private readonly positionals: ReadonlyMap<string, string>,
    private readonly flags: ReadonlySet<string>,
    private readonly options: ReadonlyMap<string, string>,
  ) {}

  positional(name: string): string {
    const value = this.positionals.get(name);
    if (value === undefined) {
      throw new Error(`no positional argument named ${name}`);
    }
    return value;
  }

  flag(name: string): boolean {
    return this.flags.has(name);
  }

  option(name: string): string | undefined {
    return this.options.get(name);
  }
}

const PASSWORD_LIKE_OPTION = /^--?(password|passwd|pass|pw|secret)(?:$|[=_-])/i;

/**
 * Refuses any option that looks like it carries a password. Arguments end up in shell history and
 * in every process listing on the machine, so a password is only ever read from stdin.
 */
export function refusePasswordArguments(tokens: readonly string[]): void {
  for (const token of tokens) {
    if (token !== '--password-stdin' && PASSWORD_LIKE_OPTION.test(token)) {
      throw new UsageError(
        'passwords are never taken from arguments; pipe the password in with --password-stdin',
      );
    }
  }
}

function optionName(token: string): string {
  return printable(token.split('=', 1)[0], 40);
}

/**
 * Parses `tokens` (the words after the command name) for `usage`. Options may come anywhere, as
 * `--name value` or `--name=value`; `--` ends the options. Extra positionals are refused without
 * being echoed, since a stray word may well be a secret typed in the wrong place.
 */
export function parseArguments(
  usage: string,
  spec: ArgumentSpec,
  tokens: readonly string[],
): ParsedArguments {
  const positionals: string[] = [];
  const flags = new Set<string>();
  const options = new Map<string, string>();
  let optionsEnded = false;

  for (let index = 0; index < tokens.length; index += 1) {
    const token = tokens[index];
    // Every option is long (`--name`): a token with one dash is a value, such as a base64url
    // fingerprint that happens to begin with '-'.
    if (optionsEnded || !token.startsWith('--')) {
      positionals.push(token);
      continue;
    }
    if (token === '--') {
      optionsEnded = true;
      continue;
    }
    const equals = token.indexOf('=');
    const name = token.slice(2, equals === -1 ? undefined : equals);
    const inlineValue = equals === -1 ? undefined : token.slice(equals + 1);
    if (token.startsWith('--') && spec.flags?.includes(name)) {
      if (inlineValue !== undefined) {
        throw new UsageError(`--${name} takes no value`);
      }
      flags.add(name);
    } else if (token.startsWith('--') && spec.options?.includes(name)) {
      const value = inlineValue ?? tokens[index + 1];
      if (
        value === undefined ||
        value === '' ||
        (inlineValue === undefined && value.startsWith('--'))
      ) {
        throw new UsageError(`--${name} needs a value; usage: gatehouse ${usage}`);
      }
      if (options.has(name)) {
        throw new UsageError(`--${name} is given twice`);
      }
      options.set(name, value);
      index += inlineValue === undefined ? 1 : 0;
    } else {
      throw new UsageError(`unknown option ${optionName(token)}; usage: gatehouse ${usage}`);
    }
  }

  return new ParsedArguments(namePositionals(usage, spec, positionals), flags, options);
}

function namePositionals(
  usage: string,
  spec: ArgumentSpec,
  positionals: string[],
): Map<string, string> {
  if (positionals.length < spec.positionals.length) {
    const missing = spec.positionals[positionals.length];
    throw new UsageError(`missing <${missing}>; usage: gatehouse ${usage}`);
  }
  if (positionals.length > spec.positionals.length) {
    const expected = spec.positionals.length;
    throw new UsageError(
      `too many arguments (expected ${expected === 0 ? 'none' : expected}); ` +
        `usage: gatehouse ${usage}`,
    );
  }
  return new Map(spec.positionals.map((name, index) => [name, positionals[index]]));
}
