import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decodeProtectedHeader } from 'jose';
import {
  CertificateAuthority,
  CertificateWithKey,
  createCertificateAuthority,
  exportPkcs12,
  issueClientCertificate,
  issueServerCertificate,
} from '../src/pki/pki';
import { buildSelfSignedLeaf } from '../src/mtls/testing/certificate-builders';
import { rotateSigningKeys } from '../src/tokens/signing-keys.store';
import {
  GatehouseProcess,
  createTestDatabase,
  serverDatabaseUrl,
  startGatehouse,
  temporaryDirectory,
} from './support/gatehouse';
import {
  AttemptKey,
  CurlResult,
  RELAXED_LIMITS,
  TlsClientIdentity,
  TlsResponse,
  bindCertificate,
  curl,
  findAttempt,
  fingerprintOfPem,
  requestIdOf,
  tlsLogin,
  tlsRequest,
  uniqueUserAgent,
  writeIdentityFiles,
} from './support/mtls';
import { DatabaseTarget, createUsers, databaseEnvironment, withDatabase } from './support/users';

const DAY_MS = 24 * 60 * 60 * 1000;
/** Opening the embedded database and starting a service on it take seconds each. */
const EMBEDDED_STARTS_MS = 180_000;
const ALICE = { username: 'alice', password: 'alice-correct-horse-battery' };
const BOB = { username: 'bob', password: 'bob-staple-and-more-words' };

const serverUrl = serverDatabaseUrl();
if (!serverUrl) {
  console.warn(
    'Skipping the direct-mode test with two services on one database: DATABASE_URL is not set ' +
      '(the embedded database is held by one process at a time)',
  );
}

interface Certificates {
  ca: CertificateAuthority;
  alice: CertificateWithKey;
  aliceCertificateLogin: CertificateWithKey;
  bob: CertificateWithKey;
  revoked: CertificateWithKey;
  unbound: CertificateWithKey;
  expired: CertificateWithKey;
  serverAuthOnly: CertificateWithKey;
  selfSignedCopy: CertificateWithKey;
}

async function issueCertificates(): Promise<Certificates> {
  const ca = await createCertificateAuthority({ commonName: 'Direct Test CA', validDays: 2 });
  const client = (commonName: string) => issueClientCertificate(ca, { commonName, validDays: 1 });
  const copy = await buildSelfSignedLeaf({ subject: 'CN=alice' });
  return {
    ca,
    alice: await client('alice'),
    aliceCertificateLogin: await client('alice'),
    bob: await client('bob'),
    revoked: await client('alice'),
    unbound: await client('alice'),
    expired: await issueClientCertificate(ca, {
      commonName: 'alice',
      notBefore: new Date(Date.now() - 30 * DAY_MS),
      notAfter: new Date(Date.now() - DAY_MS),
    }),
    serverAuthOnly: await issueClientCertificate(ca, {
      commonName: 'alice',
      validDays: 1,
      extendedKeyUsages: ['serverAuth'],
    }),
    selfSignedCopy: { certificatePem: copy.pem, privateKeyPem: copy.keyPem },
  };
}

/** CA, server certificate and key as files, for TLS_CA_FILE, TLS_CERT_FILE and TLS_KEY_FILE. */
async function writeServerFiles(directory: string, ca: CertificateAuthority) {
  const server = await issueServerCertificate(ca, {
    names: ['localhost', '127.0.0.1'],
    validDays: 1,
  });
  const files = {
    TLS_CA_FILE: path.join(directory, 'ca.crt'),
    TLS_CERT_FILE: path.join(directory, 'server.crt'),
    TLS_KEY_FILE: path.join(directory, 'server.key'),
  };
  fs.writeFileSync(files.TLS_CA_FILE, ca.certificatePem);
  fs.writeFileSync(files.TLS_CERT_FILE, server.certificatePem);
  fs.writeFileSync(files.TLS_KEY_FILE, server.privateKeyPem, { mode: 0o600 });
  return files;
}

describe('Direct mutual TLS', () => {
  let certificates: Certificates;
  let database: { url: string; drop(): Promise<void> } | undefined;
  let directory: string;
  let target: DatabaseTarget;
  let serviceEnv: Record<string, string>;
  let service: GatehouseProcess;
  let replica: GatehouseProcess | undefined;
  /** What each attempt must have recorded; read at the end, when the embedded database is free. */
  const expectedAttempts: Array<{ label: string; key: AttemptKey; expected: object }> = [];

  const as = (certificate?: CertificateWithKey): TlsClientIdentity => ({
    ca: certificates.ca.certificatePem,
    certificate,
  });
  const expectRecorded = (label: string, key: AttemptKey, expected: object) =>
    expectedAttempts.push({ label, key, expected });
  const startService = () => startGatehouse({ env: serviceEnv, dataDir: target.dataDir });

  beforeAll(async () => {
    certificates = await issueCertificates();
    directory = temporaryDirectory('gatehouse-mtls-direct-');
    database = serverUrl ? await createTestDatabase() : undefined;
    target = { dataDir: path.join(directory, 'data'), databaseUrl: database?.url };
    await createUsers(target, [ALICE, BOB]);
    await withDatabase(target, async ({ dataSource }) => {
      await bindCertificate(dataSource, 'alice', certificates.alice.certificatePem);
      await bindCertificate(
        dataSource,
        'alice',
        certificates.aliceCertificateLogin.certificatePem,
        {
          certificateLogin: true,
        },
      );
      await bindCertificate(dataSource, 'bob', certificates.bob.certificatePem);
      await bindCertificate(dataSource, 'alice', certificates.revoked.certificatePem, {
        revoked: true,
      });
      await bindCertificate(dataSource, 'alice', certificates.expired.certificatePem);
      await bindCertificate(dataSource, 'alice', certificates.serverAuthOnly.certificatePem);
    });

    serviceEnv = {
      ...databaseEnvironment(target),
      ...RELAXED_LIMITS,
      ...(await writeServerFiles(directory, certificates.ca)),
      MTLS_MODE: 'direct',
    };
    service = await startService();
  }, EMBEDDED_STARTS_MS);

  afterAll(async () => {
    await replica?.stop();
    await service?.stop();
    await database?.drop();
    if (directory) {
      fs.rmSync(directory, { recursive: true, force: true });
    }
  });

  describe('password login', () => {
    it('answers 200 with a token for a bound certificate and the right password', async () => {
      const userAgent = uniqueUserAgent();
      const response = await tlsLogin(service.url, as(certificates.alice), ALICE, {
        'user-agent': userAgent,
      });

      expect(response.status).toBe(200);
      expect(response.json()).toMatchObject({ token_type: 'Bearer' });
      expect(typeof response.json().access_token).toBe('string');
      expectRecorded(
        'password login',
        { userAgent },
        {
          outcome: 'success',
          method: 'password',
          client_ip: '127.0.0.1',
          cert_fingerprint: fingerprintOfPem(certificates.alice.certificatePem),
        },
      );
    });

    it('logs in with curl presenting PEM files', async () => {
      const files = writeIdentityFiles(directory, 'alice-curl', certificates.alice);
      const caPath = path.join(directory, 'ca.crt');

      const result = await curl([
        ...['--cacert', caPath, '--cert', files.certificatePath, '--key', files.keyPath],
        ...['-H', 'content-type: application/json', '-d', JSON.stringify(ALICE)],
        `${service.url}/auth/login`,
      ]);

      expect(result.status).toBe(200);
      expect(JSON.parse(result.body)).toMatchObject({ token_type: 'Bearer' });
    });

    it('logs in with curl presenting a PKCS#12 file', async () => {
      const pkcs12Path = path.join(directory, 'alice.p12');
      fs.writeFileSync(
        pkcs12Path,
        exportPkcs12({
          ...certificates.alice,
          caCertificatePem: certificates.ca.certificatePem,
          password: 'p12-secret',
        }),
      );

      const result = await curl([
        ...['--cacert', path.join(directory, 'ca.crt')],
        ...['--cert-type', 'P12', '--cert', `${pkcs12Path}:p12-secret`],
        ...['-H', 'content-type: application/json', '-d', JSON.stringify(ALICE)],
        `${service.url}/auth/login`,
      ]);

      expect(result.status).toBe(200);
      expect(JSON.parse(result.body)).toMatchObject({ token_type: 'Bearer' });
    });
  });

  describe('refusals', () => {
    let reference: TlsResponse;

    beforeAll(async () => {
      reference = await tlsLogin(service.url, as(certificates.alice), {
        ...ALICE,
        password: 'not-the-password',
      });
      expectRecorded('wrong password', requestIdOf(reference), { outcome: 'bad_password' });
    });

    interface RefusalCase {
      name: string;
      certificate: () => CertificateWithKey | undefined;
      outcome: string;
      credentials?: typeof ALICE;
    }
    const cases: RefusalCase[] = [
      { name: 'no certificate', certificate: () => undefined, outcome: 'no_cert' },
      {
        name: 'a self-signed copy of a real subject',
        certificate: () => certificates.selfSignedCopy,
        outcome: 'untrusted_cert',
      },
      {
        name: 'an expired certificate',
        certificate: () => certificates.expired,
        outcome: 'untrusted_cert',
      },
      {
        name: 'a certificate for serverAuth only',
        certificate: () => certificates.serverAuthOnly,
        outcome: 'untrusted_cert',
      },
      {
        name: 'a certificate whose binding is revoked',
        certificate: () => certificates.revoked,
        outcome: 'cert_revoked',
      },
      {
        name: 'a valid certificate bound to nobody',
        certificate: () => certificates.unbound,
        outcome: 'cert_unbound',
      },
      {
        name: "alice's certificate with bob's username and password",
        certificate: () => certificates.alice,
        outcome: 'cert_mismatch',
        credentials: BOB,
      },
    ];

    it('answers a wrong password with 401 and WWW-Authenticate', () => {
      expect(reference.status).toBe(401);
      expect(reference.headers['www-authenticate']).toBeDefined();
      expect(reference.json()).toMatchObject({ status: 401, error: 'invalid_credentials' });
    });

    it.each(cases)(
      'refuses $name with the same 401 as a wrong password ($outcome)',
      async ({ name, certificate, outcome, credentials = ALICE }) => {
        const response = await tlsLogin(service.url, as(certificate()), credentials);

        expect(response.status).toBe(401);
        expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(response.json()).toEqual(reference.json());
        expect(response.headers['www-authenticate']).toBe(reference.headers['www-authenticate']);
        expectRecorded(name, requestIdOf(response), { outcome });
      },
    );

    it('refuses forged identity headers from a direct client as spoofed_header', async () => {
      const response = await tlsLogin(service.url, as(certificates.alice), ALICE, {
        'x-ssl-client-verify': 'SUCCESS',
        'x-ssl-client-cert': encodeURIComponent(certificates.bob.certificatePem),
      });

      expect(response.status).toBe(401);
      expect(response.json()).toEqual(reference.json());
      expectRecorded('forged headers', requestIdOf(response), { outcome: 'spoofed_header' });
    });
  });

  describe('certificate-only login', () => {
    const certificateLogin = (certificate: CertificateWithKey, userAgent = uniqueUserAgent()) =>
      tlsRequest(service.url, {
        path: '/auth/certificate',
        method: 'POST',
        headers: { 'user-agent': userAgent },
        identity: as(certificate),
      });

    it('answers 200 when the binding allows certificate-only login', async () => {
      const userAgent = uniqueUserAgent();
      const response = await certificateLogin(certificates.aliceCertificateLogin, userAgent);

      expect(response.status).toBe(200);
      expect(response.json()).toMatchObject({ token_type: 'Bearer' });
      expectRecorded(
        'certificate login',
        { userAgent },
        {
          outcome: 'success',
          method: 'certificate',
        },
      );
    });

    it('answers 401 when the binding does not allow it', async () => {
      const response = await certificateLogin(certificates.alice);

      expect(response.status).toBe(401);
      expect(response.headers['www-authenticate']).toBeDefined();
      expect(response.json()).toMatchObject({ error: 'invalid_credentials' });
      expectRecorded('certificate login not allowed', requestIdOf(response), {
        outcome: 'cert_unbound',
        method: 'certificate',
      });
    });
  });

  describe('tokens', () => {
    const me = (token: string, certificate?: CertificateWithKey, url = service.url) =>
      tlsRequest(url, {
        path: '/auth/me',
        headers: { authorization: `Bearer ${token}` },
        identity: as(certificate),
      });
    const logout = (token: string) =>
      tlsRequest(service.url, {
        path: '/auth/logout',
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        identity: as(certificates.alice),
      });

    async function aliceToken(): Promise<string> {
      const response = await tlsLogin(service.url, as(certificates.alice), ALICE);
      expect(response.status).toBe(200);
      return response.json().access_token as string;
    }

    it('accepts a token only with the certificate it was issued with', async () => {
      const token = await aliceToken();

      const withSame = await me(token, certificates.alice);
      const withOther = await me(token, certificates.bob);
      const withNone = await me(token);

      expect(withSame.status).toBe(200);
      expect(withSame.json()).toMatchObject({
        username: 'alice',
        certificate_fingerprint: fingerprintOfPem(certificates.alice.certificatePem),
      });
      expect(withSame.json().amr).toEqual(expect.arrayContaining(['pwd', 'mtls']));
      for (const refused of [withOther, withNone]) {
        expect(refused.status).toBe(401);
        expect(refused.json()).toMatchObject({ error: 'invalid_token' });
        expect(refused.headers['www-authenticate']).toBeDefined();
      }
    });

    (serverUrl ? it : it.skip)(
      'refuses a logged-out token on a second instance sharing the database',
      async () => {
        replica = await startGatehouse({ env: serviceEnv, dataDir: path.join(directory, 'two') });
        const token = await aliceToken();
        expect((await me(token, certificates.alice, replica.url)).status).toBe(200);

        expect((await logout(token)).status).toBe(204);

        const afterLogout = await me(token, certificates.alice, replica.url);
        expect(afterLogout.status).toBe(401);
        expect(afterLogout.json()).toMatchObject({ error: 'invalid_token' });
      },
    );

    it(
      'verifies a token signed before a key rotation, but not a logged-out one',
      async () => {
        const token = await aliceToken();
        const loggedOut = await aliceToken();
        expect((await logout(loggedOut)).status).toBe(204);
        const { kid } = decodeProtectedHeader(token);

        // The embedded database is held by the service; rotate while it is stopped.
        const embedded = target.databaseUrl === undefined;
        if (embedded) {
          await service.stop();
        }
        const rotation = await withDatabase(target, ({ dataSource }) =>
          rotateSigningKeys(dataSource, { tokenTtlMs: 15 * 60 * 1000 }),
        );
        if (embedded) {
          service = await startService();
        }

        expect(rotation.retired).toContain(kid);
        expect(rotation.kid).not.toBe(kid);
        expect((await me(token, certificates.alice)).status).toBe(200);
        expect((await me(loggedOut, certificates.alice)).status).toBe(401);
      },
      EMBEDDED_STARTS_MS,
    );
  });

  describe('audit', () => {
    it(
      'recorded every login attempt with its outcome',
      async () => {
        if (target.databaseUrl === undefined) {
          // Stopping flushes the audit writer and frees the embedded database for reading.
          await service.stop();
        }
        const labels = expectedAttempts.map(({ label }) => label);
        const recorded = await withDatabase(target, async ({ dataSource }) => {
          const rows: Record<string, object> = {};
          for (const { label, key } of expectedAttempts) {
            rows[label] = await findAttempt(dataSource, key);
          }
          return rows;
        });

        expect(labels).toHaveLength(12);
        expect(recorded).toMatchObject(
          Object.fromEntries(expectedAttempts.map(({ label, expected }) => [label, expected])),
        );
      },
      EMBEDDED_STARTS_MS,
    );
  });
});

/** Runs one line the service printed for a person to paste, through a shell as they would. */
function runPrintedLine(line: string, env: Record<string, string> = {}): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    execFile(
      'sh',
      ['-c', `${line} --silent --show-error --max-time 30 --write-out '\\n--status:%{http_code}'`],
      { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } },
      (error, stdout, stderr) => {
        const match = /\n--status:(\d+)$/.exec(stdout);
        if (!match) {
          reject(new Error(`the printed line failed: ${error?.message ?? ''}\n${stderr}`));
          return;
        }
        resolve({ status: Number(match[1]), body: stdout.slice(0, match.index) });
      },
    );
  });
}

async function waitForOutput(service: GatehouseProcess, text: string): Promise<string> {
  const deadline = Date.now() + 60_000;
  while (!service.output().includes(text)) {
    if (Date.now() > deadline) {
      throw new Error(`the service never printed ${JSON.stringify(text)}:\n${service.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return service.output();
}

function printedCurlLine(output: string, path: string): string {
  const line = output
    .split('\n')
    .map((entry) => entry.trim())
    .find((entry) => entry.startsWith('curl ') && entry.includes(path));
  if (!line) {
    throw new Error(`no printed curl line for ${path}:\n${output}`);
  }
  return line;
}

describe('Development first start', () => {
  const STARTUP_MS = 90_000;
  let dataDir: string;
  let service: GatehouseProcess | undefined;
  // Embedded database, no TLS files: the service makes its own PKI and admin.
  const env = { MTLS_MODE: 'direct', NODE_ENV: 'development', DATABASE_URL: undefined };

  beforeAll(() => {
    dataDir = path.join(temporaryDirectory('gatehouse-mtls-dev-'), 'data');
  });

  afterAll(async () => {
    await service?.stop();
    fs.rmSync(path.dirname(dataDir), { recursive: true, force: true });
  });

  it(
    'prints an admin password and curl lines that log in, once',
    async () => {
      service = await startGatehouse({ env, dataDir, timeoutMs: STARTUP_MS });
      const output = await waitForOutput(service, 'Then, with the access token:');
      const loginLine = printedCurlLine(output, '/auth/login');
      expect(output).toMatch(/admin password: \S+/);
      for (const file of ['ca.crt', 'admin.crt', 'admin.key', 'admin.p12']) {
        expect(fs.existsSync(path.join(dataDir, 'pki', file))).toBe(true);
      }

      const login = await runPrintedLine(loginLine);
      expect(login).toMatchObject({ status: 200 });
      const token = (JSON.parse(login.body) as { access_token: string }).access_token;
      const me = await runPrintedLine(printedCurlLine(output, '/auth/me'), { TOKEN: token });
      expect(me).toMatchObject({ status: 200 });
      expect(JSON.parse(me.body)).toMatchObject({ username: 'admin', roles: ['admin'] });

      const caBefore = fs.readFileSync(path.join(dataDir, 'pki', 'ca.crt'), 'utf8');
      const firstUrl = service.url;
      await service.stop();
      service = await startGatehouse({ env, dataDir, timeoutMs: STARTUP_MS });
      // Whatever a restart would print comes right after its start line.
      await new Promise((resolve) => setTimeout(resolve, 1_000));

      expect(service.output()).not.toContain('admin password');
      expect(fs.readFileSync(path.join(dataDir, 'pki', 'ca.crt'), 'utf8')).toBe(caBefore);
      const again = await runPrintedLine(loginLine.replace(firstUrl, service.url));
      expect(again).toMatchObject({ status: 200 });
    },
    3 * STARTUP_MS,
  );
});
