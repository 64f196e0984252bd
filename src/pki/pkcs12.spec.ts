import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:https';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, TLSSocket } from 'node:tls';
import * as forge from 'node-forge';
import { createCertificateAuthority } from './certificate-authority';
import { issueClientCertificate } from './client-certificate';
import { exportPkcs12 } from './pkcs12';
import { CertificateAuthority, IssuedClientCertificate } from './pki.types';
import { issueServerCertificate } from './server-certificate';

const PASSWORD = 'correct horse';

function onPath(tool: string, versionArguments: string[]): boolean {
  return spawnSync(tool, versionArguments, { stdio: 'ignore' }).status === 0;
}

function run(tool: string, args: string[]): { status: number | null; output: string } {
  const result = spawnSync(tool, args, { encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('exportPkcs12', () => {
  let ca: CertificateAuthority;
  let client: IssuedClientCertificate;
  let p12: Buffer;
  let directory: string;

  beforeAll(async () => {
    ca = await createCertificateAuthority({ commonName: 'Test CA', validDays: 30 });
    client = await issueClientCertificate(ca, { commonName: 'alice' });
    p12 = exportPkcs12({ ...client, caCertificatePem: ca.certificatePem, password: PASSWORD });
    directory = mkdtempSync(join(tmpdir(), 'gatehouse-p12-'));
  });

  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it('is accepted by node TLS as a client identity with the right password only', () => {
    expect(() => createSecureContext({ pfx: p12, passphrase: PASSWORD })).not.toThrow();
    expect(() => createSecureContext({ pfx: p12, passphrase: 'wrong' })).toThrow();
  });

  it('holds the key, the client certificate and the CA, with key and certificate paired', () => {
    const parsed = forge.pkcs12.pkcs12FromAsn1(
      forge.asn1.fromDer(p12.toString('binary')),
      false,
      PASSWORD,
    );
    const certBag = forge.pki.oids.certBag;
    const keyBag = forge.pki.oids.pkcs8ShroudedKeyBag;
    const certificateBags = parsed.getBags({ bagType: certBag })[certBag];
    const keyBags = parsed.getBags({ bagType: keyBag })[keyBag];

    expect(certificateBags).toHaveLength(2);
    expect(keyBags).toHaveLength(1);
    expect(keyBags?.[0].attributes.localKeyId).toEqual(certificateBags?.[0].attributes.localKeyId);
  });

  it('refuses an empty password', () => {
    expect(() =>
      exportPkcs12({ ...client, caCertificatePem: ca.certificatePem, password: '' }),
    ).toThrow('password');
  });

  it('is readable by openssl pkcs12, with AES-256 key encryption and a SHA-256 MAC', () => {
    if (!onPath('openssl', ['version'])) {
      process.stdout.write('skipped the openssl pkcs12 check: openssl is not on PATH\n');
      return;
    }
    const file = join(directory, 'alice.p12');
    const password = 'pässwörd';
    writeFileSync(
      file,
      exportPkcs12({
        ...client,
        caCertificatePem: ca.certificatePem,
        password,
        friendlyName: 'alice',
      }),
    );

    const info = run('openssl', [
      'pkcs12',
      '-info',
      '-nokeys',
      '-in',
      file,
      '-passin',
      `pass:${password}`,
    ]);
    const keys = run('openssl', [
      'pkcs12',
      '-nocerts',
      '-nodes',
      '-in',
      file,
      '-passin',
      `pass:${password}`,
    ]);
    const wrong = run('openssl', [
      'pkcs12',
      '-info',
      '-noout',
      '-in',
      file,
      '-passin',
      'pass:nope',
    ]);

    expect(info.status).toBe(0);
    expect(info.output).toContain('MAC: sha256');
    expect(info.output).toContain('PBES2, PBKDF2, AES-256-CBC');
    expect(info.output).toContain('subject=CN = alice');
    expect(info.output).toContain('subject=CN = Test CA');
    expect(info.output).toContain('friendlyName: alice');
    expect(keys.output).toContain('-----BEGIN PRIVATE KEY-----');
    expect(wrong.status).not.toBe(0);
  });

  it('works as a client identity for curl --cert-type P12', async () => {
    if (!onPath('curl', ['--version'])) {
      process.stdout.write('skipped the curl P12 check: curl is not on PATH\n');
      return;
    }
    const file = join(directory, 'curl.p12');
    const caFile = join(directory, 'ca.crt');
    writeFileSync(file, p12);
    writeFileSync(caFile, ca.certificatePem);
    const server = await startEchoServer(ca);

    try {
      const { port } = server.address() as AddressInfo;
      const result = await runAsync('curl', [
        '--silent',
        '--show-error',
        '--cacert',
        caFile,
        '--cert-type',
        'P12',
        '--cert',
        `${file}:${PASSWORD}`,
        `https://127.0.0.1:${port}/`,
      ]);

      expect(result.output).toBe('CN=alice');
    } finally {
      server.close();
    }
  });

  async function startEchoServer(authority: CertificateAuthority): Promise<Server> {
    const tls = await issueServerCertificate(authority, { names: ['127.0.0.1'], validDays: 1 });
    const server = createServer(
      {
        cert: tls.certificatePem,
        key: tls.privateKeyPem,
        ca: authority.certificatePem,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (request, response) => {
        const peer = (request.socket as TLSSocket).getPeerCertificate();
        response.end(`CN=${String(peer.subject.CN)}`);
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return server;
  }
});

function runAsync(
  tool: string,
  args: string[],
): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(tool, args);
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('close', (status) => resolve({ status, output }));
  });
}
