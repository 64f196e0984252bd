import { CliError } from './cli-error';

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads a password for `--password-stdin`: everything on stdin with one trailing newline removed,
 * or, on a terminal, typed twice without echo. The password is never shown or put in a message.
 */
export async function readPasswordFromStdin(maxBytes: number): Promise<string> {
  const password = process.stdin.isTTY ? await promptTwice() : await readPipedPassword(maxBytes);
  if (password === '') {
    throw new CliError('no password on stdin (pipe one in, e.g. printf %s "$PASSWORD" | …)');
  }
  if (Buffer.byteLength(password, 'utf8') > maxBytes) {
    throw new CliError(`the password is longer than PASSWORD_MAX_BYTES (${maxBytes} bytes)`);
  }
  return password;
}

async function readPipedPassword(maxBytes: number): Promise<string> {
  // Room for the password, a CR LF, and one byte more to notice a password that is too long.
  const limit = maxBytes + 3;
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer);
    length += (chunk as Buffer).length;
    if (length > limit) {
      process.stdin.destroy();
      throw new CliError(`the password is longer than PASSWORD_MAX_BYTES (${maxBytes} bytes)`);
    }
  }
  return stripOneNewline(decodeUtf8(Buffer.concat(chunks)));
}

/** Removes one trailing `\n` or `\r\n`, as `echo` and most editors add. */
export function stripOneNewline(text: string): string {
  return text.replace(/\r?\n$/, '');
}

export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new CliError('the input is not valid UTF-8');
  }
}

async function promptTwice(): Promise<string> {
  const password = await promptHidden('Password: ');
  if ((await promptHidden('Repeat password: ')) !== password) {
    throw new CliError('the two passwords differ');
  }
  return password;
}

/** Reads one line from the terminal in raw mode, so the typed characters are not echoed. */
function promptHidden(prompt: string): Promise<string> {
  const input = process.stdin;
  process.stderr.write(prompt);
  input.setRawMode(true);
  input.resume();
  return new Promise((resolve, reject) => {
    let typed = '';
    const finish = (error?: Error): void => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write('\n');
      if (error) {
        reject(error);
      } else {
        resolve(typed);
      }
    };
    const onData = (data: Buffer): void => {
      for (const character of data.toString('utf8')) {
        if (character === '\r' || character === '\n' || character === '\u0004') {
          finish();
          return;
        }
        if (character === '\u0003') {
          finish(new CliError('cancelled'));
          return;
        }
        typed =
          character === '\u007f' || character === '\b'
            ? [...typed].slice(0, -1).join('')
            : typed + character;
      }
    };
    input.on('data', onData);
  });
}
