'use strict';
// Writes docs/openapi.json: starts the built service on a throw-away embedded database, reads
// GET /docs and stops it. Run after adding or changing an endpoint: `node scripts/openapi.js`.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { buildIfNeeded } = require('./build-if-needed');

const root = path.resolve(__dirname, '..');
const output = path.join(root, 'docs', 'openapi.json');
const START_TIMEOUT_MS = 120_000;

/** The environment of the generating run: nothing from the caller's own configuration. */
function environment(dataDir) {
  const env = {};
  for (const key of ['PATH', 'HOME', 'LANG', 'TMPDIR']) {
    if (process.env[key]) {
      env[key] = process.env[key];
    }
  }
  return {
    ...env,
    NODE_ENV: 'development',
    MTLS_MODE: 'off',
    DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    PORT: '0',
    MANAGEMENT_HOST: '127.0.0.1',
    MANAGEMENT_PORT: '0',
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'info',
    SHUTDOWN_DRAIN_DELAY: '100ms',
  };
}

function waitForStart(child) {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(
      () => reject(new Error(`no start in time:\n${text}`)),
      START_TIMEOUT_MS,
    );
    const onData = (chunk) => {
      text += chunk.toString('utf8');
      for (const line of text.split('\n')) {
        if (line.includes('"gatehouse started"')) {
          clearTimeout(timer);
          resolve(JSON.parse(line).url);
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk) => (text += chunk.toString('utf8')));
    child.on('exit', (code) => reject(new Error(`gatehouse exited with ${code}:\n${text}`)));
  });
}

function fetchText(url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, (response) => {
        const chunks = [];
        response.on('data', (chunk) => chunks.push(chunk));
        response.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          if (response.statusCode !== 200) {
            reject(new Error(`GET ${url} answered ${response.statusCode}`));
          } else {
            resolve(body);
          }
        });
      })
      .on('error', reject);
  });
}

async function main() {
  buildIfNeeded();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-openapi-'));
  const child = spawn(process.execPath, [path.join(root, 'dist', 'src', 'main.js')], {
    cwd: root,
    env: environment(path.join(dataDir, 'data')),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  try {
    const url = await waitForStart(child);
    const document = JSON.parse(await fetchText(`${url}/docs`));
    fs.mkdirSync(path.dirname(output), { recursive: true });
    fs.writeFileSync(output, `${JSON.stringify(document, null, 2)}\n`);
    process.stdout.write(`wrote ${path.relative(root, output)}\n`);
  } finally {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
    }
    await exited;
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`openapi: ${error.message}\n`);
  process.exit(1);
});
