import * as fs from 'node:fs';
import * as path from 'node:path';

export class DataDirLockedError extends Error {
  constructor(
    readonly holderPid: number,
    lockPath: string,
  ) {
    super(`the data directory is in use by process ${holderPid} (lock file ${lockPath})`);
    this.name = 'DataDirLockedError';
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(lockPath: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(lockPath, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Creates the data directory with mode 0700, tightening an existing one. */
export function ensurePrivateDirectory(directory: string): void {
  fs.mkdirSync(directory, { recursive: true, mode: 0o700 });
  fs.chmodSync(directory, 0o700);
}

/**
 * Holds `DATA_DIR/gatehouse.lock` for this process. The embedded database has no locking of its
 * own: a second process opening the same directory silently loses its writes. The file records
 * the holder's PID and is taken over once that process is gone.
 */
export class DataDirLock {
  private held = false;

  constructor(private readonly lockPath: string) {}

  static forDirectory(directory: string): DataDirLock {
    return new DataDirLock(path.join(directory, 'gatehouse.lock'));
  }

  acquire(): void {
    for (let attempt = 0; attempt < 3; attempt += 1) {
      try {
        fs.writeFileSync(this.lockPath, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
        this.held = true;
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw error;
        }
      }
      const holder = readHolder(this.lockPath);
      if (holder !== undefined && holder !== process.pid && processAlive(holder)) {
        throw new DataDirLockedError(holder, this.lockPath);
      }
      // The holder is gone (or the file is unreadable): take the lock over.
      fs.rmSync(this.lockPath, { force: true });
    }
    throw new Error(`could not take the lock file ${this.lockPath}`);
  }

  release(): void {
    if (this.held && readHolder(this.lockPath) === process.pid) {
      fs.rmSync(this.lockPath, { force: true });
    }
    this.held = false;
  }
}
