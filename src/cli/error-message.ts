import { ConfigError } from '../config/config.error';
import { DataDirLockedError } from '../database/data-dir-lock';
import { LimiterUnavailableError } from '../throttling/limiter.errors';
import { CliError, EXIT_FAILURE } from './cli-error';
import { printable } from './output';

const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  '28P01', // invalid password
  '28000', // no such role or not allowed by pg_hba
  '3D000', // no such database
]);

interface ErrorReport {
  message: string;
  exitCode: number;
}

/** Hides the user-info part of any URL, in case a driver ever echoes a connection string. */
function redactUrls(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^@\s/]*@/gi, '$1***@');
}

function messageOf(error: Error): string {
  if (error.message !== '') {
    return error.message;
  }
  // Node reports a refused dual-stack connect as an AggregateError with an empty message.
  const inner = (error as Partial<AggregateError>).errors?.[0] as Error | undefined;
  return inner?.message || (error as NodeJS.ErrnoException).code || error.name;
}

function explain(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (error instanceof ConfigError) {
    return `invalid configuration: ${error.message}`;
  }
  if (error instanceof DataDirLockedError) {
    return (
      `${error.message}; the embedded database serves one process at a time, ` +
      'so stop that process first'
    );
  }
  if (error instanceof LimiterUnavailableError) {
    return `the limiter store cannot be reached: ${error.message}`;
  }
  if (code !== undefined && CONNECTION_ERROR_CODES.has(code)) {
    return `cannot open the database: ${messageOf(error)}`;
  }
  if (error.name === 'QueryFailedError') {
    return `database error: ${messageOf(error)}`;
  }
  if (error instanceof AggregateError) {
    return `cannot connect: ${messageOf(error)}`;
  }
  return messageOf(error);
}

/** Turns anything thrown into the one line the CLI prints, and the exit code. Never a stack. */
export function reportFor(error: unknown): ErrorReport {
  if (error instanceof CliError) {
    return { message: printable(error.message, 500), exitCode: error.exitCode };
  }
  const text = error instanceof Error ? explain(error) : String(error);
  return { message: printable(redactUrls(text), 500), exitCode: EXIT_FAILURE };
}
