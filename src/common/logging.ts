import type { IncomingMessage, ServerResponse } from 'node:http';
import pino, { Logger } from 'pino';
import { AppConfig } from '../config/app-config';

// Control characters and the Unicode line separators, which could forge extra log lines in a
// terminal or a line-oriented collector.
const UNSAFE_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** Escapes user-supplied text for a log line and bounds its length. */
export function escapeForLog(text: string, max = 256): string {
  const escaped = text.replace(
    UNSAFE_CHARACTERS,
    (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return escaped.length > max ? `${escaped.slice(0, max)}…` : escaped;
}

/**
 * What a request log line carries: never headers (Authorization, cookies, certificates), never
 * a body or query string, which may hold credentials.
 */
export const requestLogSerializers = {
  req: (request: IncomingMessage & { id?: string }) => ({
    id: request.id,
    method: request.method,
    path: escapeForLog((request.url ?? '').split('?')[0]),
  }),
  res: (response: ServerResponse) => ({ statusCode: response.statusCode }),
};

/** JSON for machines by default; `pretty` for a terminal. Secrets are redacted by path too. */
export function createLogger(config: Pick<AppConfig, 'logLevel' | 'logFormat'>): Logger {
  const options = {
    level: config.logLevel,
    base: { service: 'gatehouse' },
    redact: {
      paths: ['password', '*.password', 'token', '*.token', 'authorization', '*.authorization'],
      censor: '[redacted]',
    },
  };
  if (config.logFormat === 'pretty') {
    // Colours only on a terminal: escape codes in a piped or collected log are noise.
    const colorize = Boolean(process.stdout.isTTY);
    return pino(options, pino.transport({ target: 'pino-pretty', options: { colorize } }));
  }
  return pino(options);
}
