import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const PRIVATE_FILE_MODE = 0o600;
const PUBLIC_FILE_MODE = 0o644;
const PRIVATE_DIRECTORY_MODE = 0o700;

/**
 * Writes a file only its owner can read, creating missing parent directories as 0700. The data
 * goes to a temporary file that is renamed into place, so a reader never sees half a key and the
 * file never exists with wider permissions, whatever the umask.
 */
export async function writePrivateFile(path: string, data: string | Uint8Array): Promise<void> {
  await writeFileAtomically(path, data, PRIVATE_FILE_MODE);
}

/** Writes a certificate or other public file (0644) the same way. */
export async function writePublicFile(path: string, data: string | Uint8Array): Promise<void> {
  await writeFileAtomically(path, data, PUBLIC_FILE_MODE);
}

/** Creates a directory (and parents) and narrows the directory itself to 0700. */
export async function ensurePrivateDirectory(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: PRIVATE_DIRECTORY_MODE });
  await chmod(path, PRIVATE_DIRECTORY_MODE);
}

async function writeFileAtomically(
  path: string,
  data: string | Uint8Array,
  mode: number,
): Promise<void> {
  const directory = dirname(path);
  await mkdir(directory, { recursive: true, mode: PRIVATE_DIRECTORY_MODE });

  const temporaryPath = join(directory, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temporaryPath, 'wx', mode);
    try {
      await handle.writeFile(data);
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporaryPath, path);
  } catch (error) {
    await rm(temporaryPath, { force: true });
    throw error;
  }
}
