'use strict';
/**
 * Helpers shared by `npm run demo` and `npm run bench`: build, run the built service as a child
 * process, run the CLI, and open its database (the embedded one under DATA_DIR, or a fresh
 * database on the server at DATABASE_URL).
 */
const { spawn } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const DIST = path.join(ROOT, 'dist');
const MAIN = path.join(DIST, 'src', 'main.js');
// The built CLI itself: bin/gatehouse.js would check the build again on every call.
const CLI = path.join(DIST, 'src', 'cli', 'main.js');
const INHERITED = ['PATH', 'HOME', 'LANG', 'TMPDIR'];
const START_TIMEOUT_MS = 60_000;

/**
 * Compiles the service when dist/ is stale. When the type check fails but tsc still emitted a
 * service, that one runs after a warning; with nothing built, it exits with one line.
 */
function buildOrExit(label) {
  try {
    require(path.join(ROOT, 'scripts', 'build-if-needed.js')).buildIfNeeded();
  } catch {
    if (!fs.existsSync(MAIN)) {
      process.stderr.write(`${label}: the build failed\n`);
      process.exit(2);
    }
    process.stderr.write(`${label}: the build reported errors; running what dist/ holds\n`);
  }
}

/** A module of the built service, e.g. distModule('src/pki/index.js'). */
function distModule(relative) {
  return require(path.join(DIST, relative));
}

function temporaryDirectory(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * The environment of a service child: a few variables of `outer` (the caller's environment) and
 * a database of its own. With DATABASE_URL set in `outer`, a fresh database is created on that
 * server (and dropped by `cleanup`); with REDIS_URL, limiter keys get a prefix of their own.
 */
async function prepareEnvironment(dataDir, outer) {
  const env = {};
  for (const key of INHERITED) {
    if (outer[key]) {
      env[key] = outer[key];
    }
  }
  Object.assign(env, {
    NODE_ENV: 'test',
    DATA_DIR: dataDir,
    PORT: '0',
    MANAGEMENT_PORT: '0',
    LOG_FORMAT: 'json',
    // The "gatehouse started" line is logged at info.
    LOG_LEVEL: 'info',
    SHUTDOWN_DRAIN_DELAY: '100ms',
  });
  const cleanups = [];
  if (outer.DATABASE_URL) {
    const database = await createServerDatabase(outer.DATABASE_URL);
    env.DATABASE_URL = database.url;
    env.AUDIT_USERNAME_KEY = randomBytes(32).toString('base64url');
    cleanups.push(database.drop);
  }
  if (outer.REDIS_URL) {
    env.REDIS_URL = outer.REDIS_URL;
    env.LIMITER_KEY_PREFIX = `gatehouse:demo:${randomBytes(6).toString('hex')}:`;
    cleanups.push(() => deleteKeysWithPrefix(outer.REDIS_URL, env.LIMITER_KEY_PREFIX));
  } else if (outer.DATABASE_URL) {
    env.LIMITER_STORE = 'memory';
  }
  return {
    env,
    describe: () =>
      `${env.DATABASE_URL ? 'Postgres at DATABASE_URL (fresh database)' : 'embedded database'}, ` +
      `${env.REDIS_URL ? 'Redis limiter' : 'in-process limiter'}`,
    cleanup: async () => {
      for (const cleanup of cleanups) {
        await cleanup().catch(() => undefined);
      }
    },
  };
}

async function createServerDatabase(serverUrl) {
  const { Client } = require('pg');
  const name = `gatehouse_demo_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new Client({ connectionString: serverUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

/**
 * Removes this run's limiter keys from a shared Redis (they would expire on their own, some only
 * after a day). Only plain `redis://` and `rediss://` URLs; only keys under `prefix`.
 */
async function deleteKeysWithPrefix(url, prefix) {
  if (!/^rediss?:/.test(url)) {
    return;
  }
  const Redis = require('ioredis');
  const client = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await client.connect();
    let cursor = '0';
    for (let pass = 0; pass < 100_000; pass += 1) {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length > 0) {
        await client.del(...keys);
      }
      cursor = next;
      if (cursor === '0') {
        break;
      }
    }
  } finally {
    client.disconnect();
  }
}

/** Runs `gatehouse <args>` with `env`; resolves with its output, rejects on a non-zero exit. */
function runCli(args, env, input) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env,
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) {
        resolve({ stdout, stderr });
      } else {
        reject(new Error(`gatehouse ${args.slice(0, 2).join(' ')} failed: ${stderr.trim()}`));
      }
    });
    child.stdin.end(input ?? '');
  });
}

/**
 * Starts `node dist/src/main.js` and waits for its "gatehouse started" line. `stop()` sends
 * SIGTERM and waits for the exit; `peakRssBytes()` is sampled from /proc while it runs.
 */
function startService(env, options = {}) {
  const child = spawn(process.execPath, [MAIN], {
    env,
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let buffered = '';
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, readRss(child.pid))), 200);
  sampler.unref();
  const exited = new Promise((resolve) => {
    child.on('exit', (code) => {
      clearInterval(sampler);
      resolve(code);
    });
  });
  let startDeadline;
  const started = new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      const text = chunk.toString('utf8');
      output = (output + text).slice(-20_000);
      buffered += text;
      const lines = buffered.split('\n');
      buffered = lines.pop();
      for (const line of lines) {
        if (line.includes('"gatehouse started"')) {
          resolve(JSON.parse(line));
        }
      }
    });
    child.stderr.on('data', (chunk) => (output = (output + chunk).slice(-20_000)));
    void exited.then((code) => reject(new Error(`gatehouse exited with ${code}:\n${output}`)));
    startDeadline = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gatehouse did not start in time:\n${output}`));
    }, options.timeoutMs ?? START_TIMEOUT_MS);
    startDeadline.unref();
  });
  // Once started (or failed), the start-up deadline no longer applies.
  const clearDeadline = () => clearTimeout(startDeadline);
  started.then(clearDeadline, clearDeadline);
  return started.then((line) => ({
    /** Whether the process is still running (false after a crash or `stop()`). */
    alive: () => child.exitCode === null && child.signalCode === null,
    exitStatus: () => child.exitCode ?? child.signalCode,
    url: line.url,
    managementUrl: line.management,
    port: Number(new URL(line.url).port),
    pid: child.pid,
    output: () => output,
    peakRssBytes: () => Math.max(peakRss, readRss(child.pid)),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
      }
      return exited;
    },
  }));
}

/** Resident set size of a process in bytes (Linux /proc), 0 where unavailable. */
function readRss(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /VmRSS:\s+(\d+) kB/.exec(status);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Opens the service's database as the CLI would (the service must be stopped in embedded mode). */
async function openServiceDatabase(env) {
  const { loadConfig } = distModule('src/config/config.loader.js');
  const { openDatabase } = distModule('src/database/data-source.factory.js');
  const connection = await openDatabase(loadConfig({ ...env }));
  return {
    dataSource: connection.dataSource,
    query: (sql, parameters) => connection.dataSource.query(sql, parameters),
    close: () => connection.close(),
  };
}

module.exports = {
  ROOT,
  buildOrExit,
  distModule,
  openServiceDatabase,
  prepareEnvironment,
  readRss,
  runCli,
  startService,
  temporaryDirectory,
};
