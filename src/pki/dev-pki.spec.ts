import { mkdtempSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDevelopmentPki } from './dev-pki';

function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

describe('ensureDevelopmentPki', () => {
  let root: string;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'gatehouse-dev-pki-'));
  });

  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('creates a CA and a localhost certificate it signed, keys 0600 in a 0700 folder', async () => {
    const pki = await ensureDevelopmentPki(join(root, 'pki'));

    expect(pki.createdCertificateAuthority).toBe(true);
    expect(pki.createdServerCertificate).toBe(true);
    expect(modeOf(pki.directory)).toBe(0o700);
    expect(modeOf(pki.caKey)).toBe(0o600);
    expect(modeOf(pki.serverKey)).toBe(0o600);
    const ca = new X509Certificate(readFileSync(pki.caCertificate));
    const server = new X509Certificate(readFileSync(pki.serverCertificate));
    expect(ca.ca).toBe(true);
    expect(server.checkIssued(ca)).toBe(true);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(server.checkHost('localhost')).toBe('localhost');
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(server.checkIP('::1')).toBe('::1');
  });

  it('reuses the files already there', async () => {
    const first = await ensureDevelopmentPki(root);
    const before = readFileSync(first.serverCertificate, 'utf8');

    const second = await ensureDevelopmentPki(root);

    expect(second.createdCertificateAuthority).toBe(false);
    expect(second.createdServerCertificate).toBe(false);
    expect(readFileSync(second.serverCertificate, 'utf8')).toBe(before);
  });

  it('reissues the server pair from the existing CA when it is gone', async () => {
    const first = await ensureDevelopmentPki(root);
    const caBefore = readFileSync(first.caCertificate, 'utf8');
    unlinkSync(first.serverCertificate);
    unlinkSync(first.serverKey);

    const second = await ensureDevelopmentPki(root);

    expect(second.createdCertificateAuthority).toBe(false);
    expect(second.createdServerCertificate).toBe(true);
    expect(readFileSync(second.caCertificate, 'utf8')).toBe(caBefore);
    const server = new X509Certificate(readFileSync(second.serverCertificate));
    expect(server.checkIssued(new X509Certificate(caBefore))).toBe(true);
  });

  it('refuses half a pair instead of overwriting it', async () => {
    const first = await ensureDevelopmentPki(root);
    unlinkSync(first.caKey);

    await expect(ensureDevelopmentPki(root)).rejects.toThrow('ca.key is missing');
  });

  it('refuses a server pair without the CA that issued it', async () => {
    const first = await ensureDevelopmentPki(root);
    unlinkSync(first.caKey);
    unlinkSync(first.caCertificate);

    await expect(ensureDevelopmentPki(root)).rejects.toThrow('without');
  });
});
