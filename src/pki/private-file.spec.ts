import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePrivateDirectory, writePrivateFile, writePublicFile } from './private-file';

function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

describe('writePrivateFile', () => {
  let root: string;
  let previousUmask: number;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'gatehouse-private-'));
    previousUmask = process.umask(0o000);
  });

  afterEach(() => {
    process.umask(previousUmask);
    rmSync(root, { recursive: true, force: true });
  });

  it('writes the file 0600 and missing parents 0700, even with a permissive umask', async () => {
    const path = join(root, 'a', 'b', 'server.key');

    await writePrivateFile(path, 'secret');

    expect(readFileSync(path, 'utf8')).toBe('secret');
    expect(modeOf(path)).toBe(0o600);
    expect(modeOf(join(root, 'a'))).toBe(0o700);
    expect(modeOf(join(root, 'a', 'b'))).toBe(0o700);
  });

  it('replaces a world-readable file with a 0600 one, leaving no temporary file', async () => {
    const path = join(root, 'ca.key');
    writeFileSync(path, 'old', { mode: 0o644 });

    await writePrivateFile(path, Buffer.from('new'));

    expect(readFileSync(path, 'utf8')).toBe('new');
    expect(modeOf(path)).toBe(0o600);
    expect(readdirSync(root)).toEqual(['ca.key']);
  });

  it('writes public files 0644', async () => {
    const path = join(root, 'ca.crt');

    await writePublicFile(path, 'certificate');

    expect(modeOf(path)).toBe(0o644);
  });
});

describe('ensurePrivateDirectory', () => {
  it('narrows an existing directory to 0700', async () => {
    const root = mkdtempSync(join(tmpdir(), 'gatehouse-private-'));
    try {
      const directory = join(root, 'pki');
      await ensurePrivateDirectory(directory);
      expect(modeOf(directory)).toBe(0o700);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
