import { Command } from './command';

/** The usage text of `gatehouse help`: every command with its synopsis and what it does. */
export function helpText(commands: readonly Command[]): string {
  const lines = commands.flatMap((command) => [`  ${command.usage}`, `      ${command.summary}`]);
  return [
    'usage: gatehouse <command> [arguments]',
    '',
    'The operator CLI of Gatehouse. It reads the same configuration (environment) as the service.',
    'With the embedded database (no DATABASE_URL) it runs only while the service is stopped.',
    '',
    'commands:',
    ...lines,
    '  help',
    '      show this text',
    '',
    'Passwords are never taken from arguments: pipe them in with --password-stdin.',
    'Fingerprints are SHA-256, written as colon hex, plain hex or base64url.',
    '',
  ].join('\n');
}
