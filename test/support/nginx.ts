import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { accessSync, constants, copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { IDENTITY_INCLUDE_PATH, NginxVariables, renderNginxFile } from '../../scripts/render-nginx';
import {
  CertificateAuthority,
  CertificateWithKey,
  issueClientCertificate,
  issueServerCertificate,
  writePrivateFile,
  writePublicFile,
} from '../../src/pki/pki';

const STARTUP_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const PORT_ATTEMPTS = 3;
/** Expected when the tests run unprivileged: the rendered `user` directive is then ignored. */
const UNPRIVILEGED_USER_WARNING = /\[warn\] .*the "user" directive makes sense only if/;
const NGINX_DIRECTORIES = ['/usr/sbin', '/usr/local/sbin', '/usr/local/bin', '/opt/homebrew/bin'];

export interface StartNginxOptions {
  /** Port of Gatehouse (or a stand-in HTTPS server) on `upstreamHost`. */
  upstreamPort: number;
  /** An IP address: a host name would need a DNS resolver. Defaults to 127.0.0.1. */
  upstreamHost?: string;
  /** The name on the upstream's server certificate that nginx checks. Defaults to localhost. */
  upstreamName?: string;
  /** Issues nginx's server certificate (localhost, 127.0.0.1, ::1) and, by default, its proxy's. */
  ca: CertificateAuthority;
  /** The CA client certificates chain to. Defaults to `ca`. */
  clientCaPem?: string;
  /** The CA that verifies the upstream's server certificate. Defaults to `ca`. */
  upstreamCaPem?: string;
  /** The client certificate nginx presents upstream. Defaults to a fresh one from `ca`. */
  proxyCertificate?: CertificateWithKey;
}

export interface RunningNginx {
  port: number;
  /** https://localhost:<port>/; trust `ca` to connect. */
  url: string;
  /** The certificate nginx presents to Gatehouse and its fingerprint, for TRUSTED_PROXY_CERTS. */
  proxyCertificate: CertificateWithKey;
  proxyFingerprint: string;
  configPath: string;
  /** What nginx wrote to stderr so far (its error log). */
  errorOutput(): string;
  stop(): Promise<void>;
}

export interface RenderedTestConfig {
  configPath: string;
  proxyCertificate: CertificateWithKey;
}

/** The nginx binary: /usr/sbin and the usual places first, then PATH. Throws when there is none. */
export function findNginx(): string {
  for (const directory of NGINX_DIRECTORIES) {
    const candidate = join(directory, 'nginx');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      continue;
    }
  }
  if (spawnSync('nginx', ['-v'], { stdio: 'ignore' }).status === 0) {
    return 'nginx';
  }
  throw new Error(
    'nginx is not installed (looked in /usr/sbin, /usr/local/sbin and PATH): the proxy-mode ' +
      'tests need it; install it, for example with `apt-get install nginx-light`',
  );
}

/** Runs `nginx -t` on a configuration file; `output` holds its messages but the expected one. */
export function testNginxConfig(configPath: string): { ok: boolean; output: string } {
  // stdout is /dev/null, not a socket, so a config logging to /dev/stdout can open it.
  const result = spawnSync(findNginx(), ['-t', '-q', '-e', 'stderr', '-c', configPath], {
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const output = (result.stderr ?? '')
    .split('\n')
    .filter((line) => line !== '' && !UNPRIVILEGED_USER_WARNING.test(line))
    .join('\n');
  return { ok: result.status === 0, output };
}

/**
 * Writes certificates and a rendered configuration for an unprivileged nginx into `directory`:
 * pid, logs and temp files stay there, and the identity include is copied beside the config.
 */
export async function renderTestNginxConfig(
  directory: string,
  port: number,
  options: StartNginxOptions,
): Promise<RenderedTestConfig> {
  const files = await writeTestCertificates(join(directory, 'certs'), options);
  const temporary = join(directory, 'tmp');
  mkdirSync(temporary, { recursive: true, mode: 0o700 });
  copyFileSync(IDENTITY_INCLUDE_PATH, join(directory, 'identity-headers.conf'));

  const variables: NginxVariables = {
    LISTEN: `127.0.0.1:${port}`,
    WORKER_USER: userInfo().username,
    WORKER_PROCESSES: '1',
    PID_FILE: join(directory, 'nginx.pid'),
    ERROR_LOG: 'stderr',
    ACCESS_LOG: join(directory, 'access.log'),
    TEMP_DIR: temporary,
    INCLUDE_DIR: directory,
    // Never queried: the upstream is an IP address.
    RESOLVER: '127.0.0.1',
    UPSTREAM: `${options.upstreamHost ?? '127.0.0.1'}:${options.upstreamPort}`,
    UPSTREAM_NAME: options.upstreamName ?? 'localhost',
    ...files.variables,
  };
  const configPath = join(directory, 'nginx.conf');
  renderNginxFile(configPath, variables);
  return { configPath, proxyCertificate: files.proxyCertificate };
}

/**
 * Starts a real nginx in front of `upstreamPort` on a free loopback port, rendered from the same
 * template as production. Call `stop()` in `afterAll`.
 */
export async function startNginx(options: StartNginxOptions): Promise<RunningNginx> {
  const nginx = findNginx();
  const directory = mkdtempSync(join(tmpdir(), 'gatehouse-nginx-'));
  try {
    for (let attempt = 1; ; attempt += 1) {
      const port = await freeLoopbackPort();
      const config = await renderTestNginxConfig(directory, port, options);
      const started = await launch(nginx, directory, config.configPath, port);
      if (started.child) {
        return running(started.child, started.errorOutput, directory, port, config);
      }
      // Another process may have taken the port between our probe and nginx's bind.
      if (attempt >= PORT_ATTEMPTS || !started.errorOutput().includes('Address already in use')) {
        throw new Error(`nginx did not start:\n${started.errorOutput()}`);
      }
    }
  } catch (error) {
    rmSync(directory, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Writes nginx's server certificate, the two CAs and its proxy certificate into `certificates`,
 * returning them as the template's file variables.
 */
export async function writeTestCertificates(
  certificates: string,
  options: Pick<StartNginxOptions, 'ca' | 'clientCaPem' | 'upstreamCaPem' | 'proxyCertificate'>,
): Promise<{ variables: NginxVariables; proxyCertificate: CertificateWithKey }> {
  const server = await issueServerCertificate(options.ca, {
    names: ['localhost', '127.0.0.1', '::1'],
    validDays: 1,
  });
  const proxyCertificate =
    options.proxyCertificate ??
    (await issueClientCertificate(options.ca, { commonName: 'gatehouse-nginx', validDays: 1 }));

  const paths = {
    SERVER_CERT: join(certificates, 'server.crt'),
    SERVER_KEY: join(certificates, 'server.key'),
    CLIENT_CA: join(certificates, 'client-ca.crt'),
    UPSTREAM_CA: join(certificates, 'upstream-ca.crt'),
    PROXY_CERT: join(certificates, 'proxy.crt'),
    PROXY_KEY: join(certificates, 'proxy.key'),
  };
  await writePublicFile(paths.SERVER_CERT, server.certificatePem);
  await writePrivateFile(paths.SERVER_KEY, server.privateKeyPem);
  await writePublicFile(paths.CLIENT_CA, options.clientCaPem ?? options.ca.certificatePem);
  await writePublicFile(paths.UPSTREAM_CA, options.upstreamCaPem ?? options.ca.certificatePem);
  await writePublicFile(paths.PROXY_CERT, proxyCertificate.certificatePem);
  await writePrivateFile(paths.PROXY_KEY, proxyCertificate.privateKeyPem);
  return { variables: paths, proxyCertificate };
}

interface LaunchResult {
  child?: ChildProcess;
  errorOutput: () => string;
}

async function launch(
  nginx: string,
  directory: string,
  configPath: string,
  port: number,
): Promise<LaunchResult> {
  const child = spawn(
    nginx,
    ['-p', `${directory}/`, '-e', 'stderr', '-c', configPath, '-g', 'daemon off;'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const errorOutput = () => stderr;
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));

  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (hasExited(child)) {
      await closed;
      return { errorOutput };
    }
    if (await accepts(port)) {
      return { child, errorOutput };
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await terminate(child);
  throw new Error(
    `nginx did not listen on port ${port} within ${STARTUP_TIMEOUT_MS} ms:\n${stderr}`,
  );
}

function running(
  child: ChildProcess,
  errorOutput: () => string,
  directory: string,
  port: number,
  config: RenderedTestConfig,
): RunningNginx {
  // A test run that ends without stop() must not leave nginx behind on the port.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let stopped: Promise<void> | undefined;
  return {
    port,
    url: `https://localhost:${port}/`,
    proxyCertificate: config.proxyCertificate,
    proxyFingerprint: fingerprintOf(config.proxyCertificate.certificatePem),
    configPath: config.configPath,
    errorOutput,
    stop: () => {
      process.removeListener('exit', killOnExit);
      stopped ??= terminate(child).finally(() =>
        rmSync(directory, { recursive: true, force: true }),
      );
      return stopped;
    },
  };
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function terminate(child: ChildProcess): Promise<void> {
  if (hasExited(child)) {
    return;
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // SIGTERM is nginx's fast shutdown: the master stops its workers before it exits.
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A port on 127.0.0.1 that was free a moment ago. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

function fingerprintOf(certificatePem: string): string {
  return new X509Certificate(certificatePem).fingerprint256.replace(/:/g, '').toLowerCase();
}
