import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import {
  CertificateAuthority,
  CertificateWithKey,
  createCertificateAuthority,
  issueClientCertificate,
  issueServerCertificate,
} from '../src/pki/pki';
import {
  GatehouseProcess,
  createTestDatabase,
  serverDatabaseUrl,
  startGatehouse,
  temporaryDirectory,
} from './support/gatehouse';
import { RawResponse, sendRaw } from './support/login-requests';
import {
  RELAXED_LIMITS,
  TlsClientIdentity,
  bindCertificate,
  fingerprintOfPem,
  recordedAttempt,
  requestIdOf,
  tlsLogin,
  uniqueUserAgent,
} from './support/mtls';
import { RunningNginx, findNginx, startNginx } from './support/nginx';
import { createUsers, databaseEnvironment } from './support/users';

const ALICE = { username: 'alice', password: 'alice-correct-horse-battery' };

function missingPrerequisite(): string | undefined {
  if (!serverDatabaseUrl()) {
    return 'DATABASE_URL is not set; these tests read a Postgres database while services run';
  }
  try {
    findNginx();
  } catch (error) {
    return (error as Error).message;
  }
  return undefined;
}

const skipReason = missingPrerequisite();
if (skipReason) {
  console.warn(`Skipping the proxy-mode mTLS tests: ${skipReason}`);
}

interface Pki {
  ca: CertificateAuthority;
  alice: CertificateWithKey;
  otherCaAlice: CertificateWithKey;
  proxy: CertificateWithKey;
}

async function issuePki(): Promise<Pki> {
  const ca = await createCertificateAuthority({ commonName: 'Proxy Test CA', validDays: 2 });
  const otherCa = await createCertificateAuthority({ commonName: 'Elsewhere CA', validDays: 2 });
  return {
    ca,
    alice: await issueClientCertificate(ca, { commonName: 'alice', validDays: 1 }),
    otherCaAlice: await issueClientCertificate(otherCa, { commonName: 'alice', validDays: 1 }),
    proxy: await issueClientCertificate(ca, { commonName: 'gatehouse-nginx', validDays: 1 }),
  };
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

function jsonLogin(headers: Record<string, string>, credentials: object = ALICE) {
  return {
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(credentials),
  };
}

function base64Der(pem: string): string {
  return pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
}

(skipReason ? describe.skip : describe)('Proxy-mode mutual TLS', () => {
  let pki: Pki;
  let database: { url: string; drop(): Promise<void> };
  let directory: string;
  let baseEnv: Record<string, string>;
  const services: GatehouseProcess[] = [];

  async function startService(
    name: string,
    env: Record<string, string>,
  ): Promise<GatehouseProcess> {
    const service = await startGatehouse({
      env: { ...baseEnv, ...env },
      dataDir: path.join(directory, name),
    });
    services.push(service);
    return service;
  }

  async function outcomeOf(response: RawResponse | { headers: RawResponse['headers'] }) {
    return (await recordedAttempt(database.url, requestIdOf(response))).outcome;
  }

  beforeAll(async () => {
    pki = await issuePki();
    database = await createTestDatabase();
    directory = temporaryDirectory('gatehouse-mtls-proxy-');
    const target = { dataDir: directory, databaseUrl: database.url };
    await createUsers(target, [ALICE]);
    const sql = new Client({ connectionString: database.url });
    await sql.connect();
    try {
      await bindCertificate(sql, 'alice', pki.alice.certificatePem);
    } finally {
      await sql.end();
    }

    const caPath = path.join(directory, 'ca.crt');
    fs.writeFileSync(caPath, pki.ca.certificatePem);
    baseEnv = {
      ...databaseEnvironment(target),
      ...RELAXED_LIMITS,
      MTLS_MODE: 'proxy',
      TRUSTED_PROXIES: '127.0.0.1/32',
      TLS_CA_FILE: caPath,
    };
  });

  afterAll(async () => {
    for (const service of services) {
      await service.stop();
    }
    await database?.drop();
    if (directory) {
      fs.rmSync(directory, { recursive: true, force: true });
    }
  });

  describe('behind nginx', () => {
    let service: GatehouseProcess;
    let nginx: RunningNginx;

    const client = (certificate?: CertificateWithKey): TlsClientIdentity => ({
      ca: pki.ca.certificatePem,
      certificate,
    });

    /** A stand-in for nginx: its address and its client certificate, but our own headers. */
    function asTrustedHop(headers: Record<string, string>) {
      return tlsLogin(service.url, client(pki.proxy), ALICE, {
        'x-forwarded-for': '198.51.100.20',
        ...headers,
      });
    }

    beforeAll(async () => {
      const server = await issueServerCertificate(pki.ca, {
        names: ['localhost', '127.0.0.1'],
        validDays: 1,
      });
      const files = {
        TLS_CERT_FILE: path.join(directory, 'server.crt'),
        TLS_KEY_FILE: path.join(directory, 'server.key'),
      };
      fs.writeFileSync(files.TLS_CERT_FILE, server.certificatePem);
      fs.writeFileSync(files.TLS_KEY_FILE, server.privateKeyPem, { mode: 0o600 });
      service = await startService('nginx', {
        ...files,
        TRUSTED_PROXY_CERTS: fingerprintOfPem(pki.proxy.certificatePem),
      });
      nginx = await startNginx({
        upstreamPort: portOf(service.url),
        ca: pki.ca,
        proxyCertificate: pki.proxy,
      });
    });

    afterAll(async () => {
      await nginx?.stop();
    });

    it('logs in with a bound certificate and the right password', async () => {
      const userAgent = uniqueUserAgent();
      const response = await tlsLogin(nginx.url, client(pki.alice), ALICE, {
        'user-agent': userAgent,
      });

      expect(response.status).toBe(200);
      expect(response.json()).toMatchObject({ token_type: 'Bearer' });
      expect(await recordedAttempt(database.url, { userAgent })).toMatchObject({
        outcome: 'success',
        client_ip: '127.0.0.1',
        cert_fingerprint: fingerprintOfPem(pki.alice.certificatePem),
      });
    });

    it('refuses a client without a certificate as no_cert', async () => {
      const response = await tlsLogin(nginx.url, client(), ALICE);

      expect(response.status).toBe(401);
      expect(response.headers['www-authenticate']).toBeDefined();
      expect(await outcomeOf(response)).toBe('no_cert');
    });

    it('refuses a certificate from another CA as untrusted_cert', async () => {
      const response = await tlsLogin(nginx.url, client(pki.otherCaAlice), ALICE);

      expect(response.status).toBe(401);
      expect(response.json()).toMatchObject({ error: 'invalid_credentials' });
      expect(await outcomeOf(response)).toBe('untrusted_cert');
    });

    it('refuses plain HTTP on the TLS port as untrusted_cert, not as no_cert', async () => {
      const response = await sendRaw(`http://127.0.0.1:${nginx.port}`, {
        path: '/auth/certificate',
        method: 'POST',
      });

      expect(response.status).toBe(401);
      expect(await outcomeOf(response)).toBe('untrusted_cert');
    });

    it('refuses forged identity headers sent to it directly as spoofed_header', async () => {
      const response = await tlsLogin(service.url, client(pki.alice), ALICE, {
        'x-forwarded-for': '198.51.100.21',
        'x-ssl-client-verify': 'SUCCESS',
        'x-ssl-client-cert': encodeURIComponent(pki.alice.certificatePem),
      });

      expect(response.status).toBe(401);
      expect(response.json()).toMatchObject({ error: 'invalid_credentials' });
      expect(await outcomeOf(response)).toBe('spoofed_header');
    });

    it('logs in when the trusted hop itself forwards SUCCESS and the certificate', async () => {
      const response = await asTrustedHop({
        'x-ssl-client-verify': 'SUCCESS',
        'x-ssl-client-cert': encodeURIComponent(pki.alice.certificatePem),
      });

      expect(response.status).toBe(200);
    });

    it.each([
      ['SUCCESSFUL', 400, 'invalid_request'],
      ['success ', 400, 'invalid_request'],
      ['NONE', 400, 'invalid_request'],
      ['FAILED:x', 401, 'untrusted_cert'],
    ])(
      'gives nothing for X-SSL-Client-Verify %j from the trusted hop',
      async (verify, status, outcome) => {
        const response = await asTrustedHop({
          'x-ssl-client-verify': verify,
          'x-ssl-client-cert': encodeURIComponent(pki.alice.certificatePem),
        });

        expect(response.status).toBe(status);
        expect(response.json().access_token).toBeUndefined();
        expect(await outcomeOf(response)).toBe(outcome);
      },
    );

    it('refuses FAILED under CERT_BINDING=optional instead of ignoring it', async () => {
      const optional = await startService('nginx-optional', {
        TLS_CERT_FILE: service.env.TLS_CERT_FILE,
        TLS_KEY_FILE: service.env.TLS_KEY_FILE,
        TRUSTED_PROXY_CERTS: service.env.TRUSTED_PROXY_CERTS,
        CERT_BINDING: 'optional',
      });
      const hop = (verify: string) =>
        tlsLogin(optional.url, client(pki.proxy), ALICE, {
          'x-forwarded-for': '198.51.100.22',
          'x-ssl-client-verify': verify,
        });

      const failed = await hop('FAILED:plain HTTP request on the TLS port');
      const none = await hop('NONE');

      expect(failed.status).toBe(401);
      expect(await outcomeOf(failed)).toBe('untrusted_cert');
      expect(none.status).toBe(200);
    });
  });

  describe.each(['envoy', 'rfc9440'] as const)(
    'with PROXY_CERT_HEADER=%s over IP trust',
    (format) => {
      let service: GatehouseProcess;

      /** The headers a trusted proxy of this format sends for a client certificate. */
      function certificateHeaders(certificatePem: string): Record<string, string> {
        if (format === 'envoy') {
          const hash = fingerprintOfPem(certificatePem);
          return {
            'x-forwarded-client-cert': `Hash=${hash};Cert="${encodeURIComponent(certificatePem)}"`,
          };
        }
        return { 'client-cert': `:${base64Der(certificatePem)}:` };
      }

      function login(headers: Record<string, string>, credentials: object = ALICE) {
        return sendRaw(service.url, jsonLogin(headers, credentials));
      }

      beforeAll(async () => {
        service = await startService(format, { PROXY_CERT_HEADER: format });
      });

      it('logs in with a forwarded bound certificate', async () => {
        const userAgent = uniqueUserAgent();
        const response = await login({
          'x-forwarded-for': '203.0.113.7',
          'user-agent': userAgent,
          ...certificateHeaders(pki.alice.certificatePem),
        });

        expect(response.status).toBe(200);
        expect(await recordedAttempt(database.url, { userAgent })).toMatchObject({
          outcome: 'success',
          client_ip: '203.0.113.7',
          cert_fingerprint: fingerprintOfPem(pki.alice.certificatePem),
        });
      });

      it('refuses a forwarded certificate from another CA as untrusted_cert', async () => {
        const response = await login({
          'x-forwarded-for': '203.0.113.8',
          ...certificateHeaders(pki.otherCaAlice.certificatePem),
        });

        expect(response.status).toBe(401);
        expect(await outcomeOf(response)).toBe('untrusted_cert');
      });

      /** Malformed headers of this format: broken grammar, and a chain member that is no DER. */
      function malformedHeaders(): Array<Record<string, string>> {
        const junkPem = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
        if (format === 'envoy') {
          const valid = certificateHeaders(pki.alice.certificatePem)['x-forwarded-client-cert'];
          return [
            { 'x-forwarded-client-cert': 'Hash=abc;Cert="unterminated' },
            { 'x-forwarded-client-cert': `${valid};Chain="${encodeURIComponent(junkPem)}"` },
          ];
        }
        return [
          { 'client-cert': ':not base64!:' },
          { ...certificateHeaders(pki.alice.certificatePem), 'client-cert-chain': ':AAAA:' },
        ];
      }

      it('answers 400, never a server error, to malformed certificate headers', async () => {
        for (const headers of malformedHeaders()) {
          const response = await login({ 'x-forwarded-for': '203.0.113.9', ...headers });

          expect(response.status).toBe(400);
          expect(JSON.parse(response.body)).toMatchObject({ error: 'invalid_request' });
          expect(await outcomeOf(response)).toBe('invalid_request');
        }
      });

      it('records two clients behind the proxy with their own addresses', async () => {
        const wrong = { ...ALICE, password: 'wrong-password' };
        const first = await login(
          { 'x-forwarded-for': '203.0.113.10', ...certificateHeaders(pki.alice.certificatePem) },
          wrong,
        );
        const second = await login(
          { 'x-forwarded-for': '203.0.113.11', ...certificateHeaders(pki.alice.certificatePem) },
          wrong,
        );

        expect([first.status, second.status]).toEqual([401, 401]);
        expect(await recordedAttempt(database.url, requestIdOf(first))).toMatchObject({
          outcome: 'bad_password',
          client_ip: '203.0.113.10',
        });
        expect(await recordedAttempt(database.url, requestIdOf(second))).toMatchObject({
          outcome: 'bad_password',
          client_ip: '203.0.113.11',
        });
      });

      it('answers 400 to a trusted proxy request without X-Forwarded-For', async () => {
        const response = await login(certificateHeaders(pki.alice.certificatePem));

        expect(response.status).toBe(400);
        expect(await outcomeOf(response)).toBe('invalid_request');
      });

      if (format === 'envoy') {
        it('refuses an XFCC whose Hash does not match its Cert as untrusted_cert', async () => {
          const otherHash = fingerprintOfPem(pki.otherCaAlice.certificatePem);
          const aliceCert = encodeURIComponent(pki.alice.certificatePem);
          const response = await login({
            'x-forwarded-for': '203.0.113.12',
            'x-forwarded-client-cert': `Hash=${otherHash};Cert="${aliceCert}"`,
          });

          expect(response.status).toBe(401);
          expect(await outcomeOf(response)).toBe('untrusted_cert');
        });
      }
    },
  );
});
