import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { IncomingMessage, request as httpRequest } from 'node:http';
import { createServer, request as httpsRequest, Server } from 'node:https';
import { AddressInfo, createConnection } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { TLSSocket } from 'node:tls';
import {
  COMPOSE_PRESET,
  IDENTITY_INCLUDE_PATH,
  renderNginx,
  templateVariables,
} from '../scripts/render-nginx';
import {
  CertificateAuthority,
  createCertificateAuthority,
  issueClientCertificate,
  issueServerCertificate,
  IssuedClientCertificate,
} from '../src/pki/pki';
import {
  findNginx,
  freeLoopbackPort,
  renderTestNginxConfig,
  RunningNginx,
  startNginx,
  testNginxConfig,
  writeTestCertificates,
} from './support/nginx';

const RENDER_SCRIPT = join(__dirname, '..', 'scripts', 'render-nginx.js');

interface EchoedRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  peerFingerprint: string | null;
}

interface EchoUpstream {
  server: Server;
  port: number;
  received: EchoedRequest[];
}

interface ProxiedResponse {
  status: number;
  echoed: EchoedRequest;
}

/** Stands in for Gatehouse: an HTTPS server that answers with what it received. */
async function startEchoUpstream(ca: CertificateAuthority): Promise<EchoUpstream> {
  const tls = await issueServerCertificate(ca, { names: ['localhost'], validDays: 1 });
  const received: EchoedRequest[] = [];
  const server = createServer(
    {
      cert: tls.certificatePem,
      key: tls.privateKeyPem,
      requestCert: true,
      rejectUnauthorized: false,
    },
    (request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        const peer = (request.socket as TLSSocket).getPeerCertificate();
        const echoed: EchoedRequest = {
          method: request.method ?? '',
          url: request.url ?? '',
          headers: request.headers,
          body,
          peerFingerprint: peer.raw ? new X509Certificate(peer.raw).fingerprint256 : null,
        };
        received.push(echoed);
        response.writeHead(401, { 'content-type': 'application/json' });
        response.end(JSON.stringify(echoed));
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, received };
}

function colonFingerprint(hex: string): string {
  return hex.toUpperCase().match(/../g)?.join(':') ?? '';
}

function collect(
  resolve: (value: ProxiedResponse) => void,
  reject: (error: Error) => void,
): (response: IncomingMessage) => void {
  return (response) => {
    let text = '';
    response.on('data', (chunk: Buffer) => (text += chunk.toString()));
    response.on('end', () => {
      try {
        resolve({ status: response.statusCode ?? 0, echoed: JSON.parse(text) as EchoedRequest });
      } catch {
        reject(new Error(`not an echo (status ${response.statusCode}): ${text.slice(0, 300)}`));
      }
    });
  };
}

interface ClientRequest {
  client?: { certificatePem: string; privateKeyPem: string };
  headers?: Record<string, string>;
  method?: string;
  body?: string;
}

function throughNginx(
  nginx: RunningNginx,
  ca: CertificateAuthority,
  options: ClientRequest = {},
): Promise<ProxiedResponse> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      {
        host: '127.0.0.1',
        servername: 'localhost',
        port: nginx.port,
        path: '/auth/login',
        method: options.method ?? 'GET',
        headers: options.headers,
        ca: ca.certificatePem,
        cert: options.client?.certificatePem,
        key: options.client?.privateKeyPem,
        agent: false,
      },
      collect(resolve, reject),
    );
    request.on('error', reject);
    request.end(options.body);
  });
}

function plainHttpToNginx(nginx: RunningNginx): Promise<ProxiedResponse> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      { host: '127.0.0.1', port: nginx.port, path: '/auth/login', method: 'POST', agent: false },
      collect(resolve, reject),
    );
    request.on('error', reject);
    request.end('username=alice&password=sent-in-clear');
  });
}

function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function fullVariables(overrides: Record<string, string> = {}): Record<string, string> {
  return { ...COMPOSE_PRESET, ...overrides };
}

describe('renderNginx', () => {
  it('fills every placeholder and leaves nginx variables alone', () => {
    const text = renderNginx(fullVariables());

    expect(text).not.toMatch(/\$\{[A-Z]/);
    expect(text).toContain('proxy_pass https://$gatehouse_upstream;');
    expect(text).toContain('on      $ssl_client_verify;');
    expect(text).toContain('default gatehouse:8443;');
    expect(text).toContain('include /etc/nginx/gatehouse/identity-headers.conf;');
  });

  it('refuses a missing variable and names it', () => {
    const incomplete = fullVariables();
    delete incomplete.PROXY_KEY;

    expect(() => renderNginx(incomplete)).toThrow('missing nginx template variable(s): PROXY_KEY');
  });

  it('refuses an unknown variable and names it', () => {
    expect(() => renderNginx(fullVariables({ UPSTREAM_HOST: 'x' }))).toThrow(
      'unknown nginx template variable(s): UPSTREAM_HOST',
    );
  });

  it.each([
    ['a directive terminator', '/etc/x.crt; include /etc/passwd'],
    ['a block', '/etc/x.crt}'],
    ['an nginx variable', '/etc/$host.crt'],
    ['white space', '/etc/my cert.crt'],
    ['nothing', ''],
  ])('refuses a value containing %s', (_, value) => {
    expect(() => renderNginx(fullVariables({ SERVER_CERT: value }))).toThrow('SERVER_CERT');
  });

  it('repeats a listen line for each address and allows lists nowhere else', () => {
    const text = renderNginx({ ...fullVariables(), LISTEN: ['127.0.0.1:18443', '[::1]:18443'] });

    expect(text).toContain('listen 127.0.0.1:18443 ssl;\n        listen [::1]:18443 ssl;');
    expect(() =>
      renderNginx(fullVariables({ UPSTREAM: 'gatehouse-1:8443,gatehouse-2:8443' })),
    ).toThrow('UPSTREAM takes one value');
  });

  it('lists the template variables, with the compose preset covering all of them', () => {
    expect(templateVariables()).toEqual(Object.keys(COMPOSE_PRESET).sort());
  });
});

describe('render-nginx command', () => {
  let directory: string;

  beforeAll(() => {
    directory = mkdtempSync(join(tmpdir(), 'gatehouse-render-'));
  });

  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it('writes the rendered file given --preset and --set', () => {
    const out = join(directory, 'gatehouse.conf');
    const result = spawnSync(
      process.execPath,
      [RENDER_SCRIPT, '--out', out, '--preset', 'compose', '--set', 'UPSTREAM=gatehouse-1:8443'],
      { encoding: 'utf8' },
    );

    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(
      renderNginx(fullVariables({ UPSTREAM: 'gatehouse-1:8443' })),
    );
  });

  it('fails with one line naming the problem', () => {
    const result = spawnSync(process.execPath, [RENDER_SCRIPT, '--set', 'LISTEN=443'], {
      encoding: 'utf8',
    });

    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('missing nginx template variable(s): ACCESS_LOG');
  });
});

describe('nginx -t', () => {
  let ca: CertificateAuthority;
  let directory: string;

  beforeAll(async () => {
    // Fails, rather than skips, without nginx: CI installs it and proxy mode depends on it.
    findNginx();
    ca = await createCertificateAuthority({ commonName: 'nginx -t CA', validDays: 1 });
    directory = mkdtempSync(join(tmpdir(), 'gatehouse-nginx-t-'));
  });

  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it('accepts the configuration rendered for the tests', async () => {
    const port = await freeLoopbackPort();
    const { configPath } = await renderTestNginxConfig(join(directory, 'tests'), port, {
      ca,
      upstreamPort: 18444,
    });

    const result = testNginxConfig(configPath);

    expect(result.output).toBe('');
    expect(result.ok).toBe(true);
  });

  it('accepts the compose configuration, whose host names only compose resolves', async () => {
    // The compose preset except for what only the container has: its certificate files (real
    // ones written here instead), its nginx user, a writable pid file and temp directory, and its
    // port: nginx -t binds the listen addresses, so it gets a free loopback port instead of 443.
    const compose = join(directory, 'compose');
    const temporary = join(compose, 'tmp');
    mkdirSync(temporary, { recursive: true });
    const certificates = await writeTestCertificates(join(compose, 'certs'), { ca });
    const configPath = join(compose, 'nginx.conf');
    writeFileSync(
      configPath,
      renderNginx({
        ...COMPOSE_PRESET,
        ...certificates.variables,
        WORKER_USER: userInfo().username,
        LISTEN: `127.0.0.1:${await freeLoopbackPort()}`,
        TEMP_DIR: temporary,
        PID_FILE: join(compose, 'nginx.pid'),
        INCLUDE_DIR: dirname(IDENTITY_INCLUDE_PATH),
      }),
    );

    const result = testNginxConfig(configPath);

    expect(readFileSync(configPath, 'utf8')).toContain('default gatehouse:8443;');
    expect(result.output).toBe('');
    expect(result.ok).toBe(true);
  });
});

describe('startNginx', () => {
  let ca: CertificateAuthority;
  let otherCa: CertificateAuthority;
  let alice: IssuedClientCertificate;
  let upstream: EchoUpstream;
  let nginx: RunningNginx;

  beforeAll(async () => {
    ca = await createCertificateAuthority({ commonName: 'Gatehouse Test CA', validDays: 1 });
    otherCa = await createCertificateAuthority({ commonName: 'Someone Else', validDays: 1 });
    alice = await issueClientCertificate(ca, { commonName: 'alice', validDays: 1 });
    upstream = await startEchoUpstream(ca);
    nginx = await startNginx({ upstreamPort: upstream.port, ca });
  });

  afterAll(async () => {
    await nginx?.stop();
    upstream?.server.close();
  });

  it('forwards a presented client certificate as SUCCESS and its escaped PEM', async () => {
    const { status, echoed } = await throughNginx(nginx, ca, { client: alice });

    expect(status).toBe(401);
    expect(echoed.headers['x-ssl-client-verify']).toBe('SUCCESS');
    const forwarded = decodeURIComponent(String(echoed.headers['x-ssl-client-cert']));
    expect(new X509Certificate(forwarded).fingerprint256).toBe(
      new X509Certificate(alice.certificatePem).fingerprint256,
    );
  });

  it('overwrites identity headers a client wrote itself, in any letter case', async () => {
    const { echoed } = await throughNginx(nginx, ca, {
      headers: {
        'X-SSL-Client-Verify': 'SUCCESS',
        'x-ssl-client-cert': encodeURIComponent(alice.certificatePem),
        'X-Forwarded-Client-Cert': 'Hash=abc;Subject="CN=admin"',
        'Client-Cert': ':MIIB:',
        'X-Forwarded-For': '203.0.113.9',
        Forwarded: 'for=203.0.113.9',
        'X-Request-Id': 'chosen-by-client',
      },
    });

    expect(echoed.headers['x-ssl-client-verify']).toBe('NONE');
    expect(echoed.headers['x-ssl-client-cert']).toBeUndefined();
    expect(echoed.headers['x-forwarded-client-cert']).toBeUndefined();
    expect(echoed.headers['client-cert']).toBeUndefined();
    expect(echoed.headers.forwarded).toBeUndefined();
    expect(echoed.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(echoed.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
  });

  it('presents its own client certificate to the upstream', async () => {
    const { echoed } = await throughNginx(nginx, ca);

    expect(echoed.peerFingerprint).toBe(colonFingerprint(nginx.proxyFingerprint));
    expect(echoed.headers['x-forwarded-proto']).toBe('https');
  });

  it('passes a certificate from an unknown CA on as FAILED, for Gatehouse to audit', async () => {
    const stranger = await issueClientCertificate(otherCa, { commonName: 'alice', validDays: 1 });

    const { echoed } = await throughNginx(nginx, ca, { client: stranger });

    expect(String(echoed.headers['x-ssl-client-verify'])).toMatch(/^FAILED:/);
    expect(echoed.headers['x-ssl-client-cert']).toBeDefined();
  });

  it('passes an expired certificate on to Gatehouse instead of answering 495 itself', async () => {
    const expired = await issueClientCertificate(ca, {
      commonName: 'alice',
      notBefore: new Date(Date.now() - 3 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });

    const { status, echoed } = await throughNginx(nginx, ca, {
      client: expired,
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'username=alice&password=secret',
    });

    expect(status).toBe(401);
    expect(echoed.method).toBe('POST');
    expect(echoed.url).toBe('/auth/login');
    expect(echoed.headers['x-ssl-client-verify']).toBe('FAILED:certificate has expired');
    expect(echoed.body).toBe('');
  });

  it('passes plain HTTP on the TLS port on as a failure, without the body', async () => {
    const { status, echoed } = await plainHttpToNginx(nginx);

    expect(status).toBe(401);
    expect(echoed.headers['x-ssl-client-verify']).toBe('FAILED:plain HTTP request on the TLS port');
    expect(echoed.headers['x-forwarded-proto']).toBe('http');
    expect(echoed.body).toBe('');
  });

  it('passes an oversized body on to Gatehouse as a request without it', async () => {
    const { echoed } = await throughNginx(nginx, ca, {
      client: alice,
      method: 'POST',
      body: 'x'.repeat(128 * 1024),
    });

    expect(echoed.headers['x-ssl-client-verify']).toBe('SUCCESS');
    expect(echoed.body).toBe('');
  });
});

describe('startNginx with an upstream it cannot verify', () => {
  it('answers 502 without sending the request, and stops cleanly', async () => {
    const ca = await createCertificateAuthority({ commonName: 'Gatehouse Test CA', validDays: 1 });
    const otherCa = await createCertificateAuthority({ commonName: 'Someone Else', validDays: 1 });
    const upstream = await startEchoUpstream(ca);
    const nginx = await startNginx({
      upstreamPort: upstream.port,
      ca,
      upstreamCaPem: otherCa.certificatePem,
    });

    try {
      const status = await new Promise<number>((resolve, reject) => {
        const request = httpsRequest(
          {
            host: '127.0.0.1',
            servername: 'localhost',
            port: nginx.port,
            ca: ca.certificatePem,
            agent: false,
          },
          (response) => {
            response.resume();
            resolve(response.statusCode ?? 0);
          },
        );
        request.on('error', reject);
        request.end();
      });

      expect(status).toBe(502);
      expect(upstream.received).toHaveLength(0);
      expect(nginx.errorOutput()).toContain('upstream SSL certificate verify error');
    } finally {
      await nginx.stop();
      upstream.server.close();
    }

    expect(await acceptsConnections(nginx.port)).toBe(false);
    await expect(nginx.stop()).resolves.toBeUndefined();
  });
});
