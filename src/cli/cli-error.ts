/** How the CLI ends on an error: 2 for a mistake in the command line, 1 for anything else. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/**
 * An error the CLI reports as one line on stderr. The message is written for an operator and
 * must never carry a password, a key or a connection string.
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A command line that cannot be understood: wrong arguments, unknown options. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT_USAGE);
    this.name = 'UsageError';
  }
}
