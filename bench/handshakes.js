'use strict';
/**
 * New mutual-TLS connections per second: full handshakes with a client certificate, no session
 * resumption, against Gatehouse's own listener and against nginx (one worker, like Gatehouse's
 * one process) rendered from docker/nginx/gatehouse.conf.template with the same certificates.
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { IDENTITY_INCLUDE_PATH, renderNginxFile } = require('../scripts/render-nginx');
const { closedLoop, handshake } = require('./load');
const { inRounds } = require('./rounds');

const CONCURRENCY = 16;
const NGINX_CANDIDATES = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/bin/nginx'];

function findNginx() {
  return NGINX_CANDIDATES.find((candidate) => {
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function accepts(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Starts nginx in front of `upstreamPort`; resolves with its port and a stop function. */
async function startNginx(binary, pki, client, upstreamPort) {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-bench-nginx-'));
  fs.mkdirSync(path.join(directory, 'tmp'));
  fs.copyFileSync(IDENTITY_INCLUDE_PATH, path.join(directory, 'identity-headers.conf'));
  const port = await freePort();
  const configPath = path.join(directory, 'nginx.conf');
  renderNginxFile(configPath, {
    LISTEN: `127.0.0.1:${port}`,
    WORKER_USER: os.userInfo().username,
    WORKER_PROCESSES: '1',
    PID_FILE: path.join(directory, 'nginx.pid'),
    ERROR_LOG: 'stderr',
    ACCESS_LOG: path.join(directory, 'access.log'),
    TEMP_DIR: path.join(directory, 'tmp'),
    INCLUDE_DIR: directory,
    RESOLVER: '127.0.0.1',
    SERVER_CERT: pki.files.serverCertificate,
    SERVER_KEY: pki.files.serverKey,
    CLIENT_CA: pki.files.caCertificate,
    UPSTREAM: `127.0.0.1:${upstreamPort}`,
    UPSTREAM_NAME: 'localhost',
    UPSTREAM_CA: pki.files.caCertificate,
    // Any certificate of our CA would do: handshakes never reach the upstream.
    PROXY_CERT: client.certificateFile,
    PROXY_KEY: client.keyFile,
  });
  const child = spawn(
    binary,
    ['-p', `${directory}/`, '-e', 'stderr', '-c', configPath, '-g', 'daemon off;'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGQUIT');
      await exited;
    }
    fs.rmSync(directory, { recursive: true, force: true });
  };
  for (let waited = 0; waited < 10_000; waited += 50) {
    if (child.exitCode !== null) {
      break;
    }
    if (await accepts(port)) {
      return { port, stop };
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await stop();
  throw new Error(`nginx did not start: ${stderr.trim()}`);
}

async function benchHandshakes({ service, pki, client, durationMs, rounds }) {
  const measure = (port) => () =>
    closedLoop({
      concurrency: CONCURRENCY,
      durationMs,
      send: () =>
        handshake({
          port,
          caPem: pki.ca.certificatePem,
          certificatePem: client.certificatePem,
          privateKeyPem: client.privateKeyPem,
        }),
    });
  const binary = findNginx();
  if (!binary) {
    const { combined } = await inRounds(rounds, { gatehouse: measure(service.port) });
    return { concurrency: CONCURRENCY, rounds, ...combined, skipped: 'nginx is not installed' };
  }
  const nginx = await startNginx(binary, pki, client, service.port);
  try {
    const { combined, ratio } = await inRounds(rounds, {
      gatehouse: measure(service.port),
      nginx_one_worker: measure(nginx.port),
    });
    return {
      concurrency: CONCURRENCY,
      rounds,
      ...combined,
      ratio: ratio('gatehouse', 'nginx_one_worker'),
    };
  } finally {
    await nginx.stop();
  }
}

module.exports = { benchHandshakes };
