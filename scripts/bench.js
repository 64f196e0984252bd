#!/usr/bin/env node
'use strict';
/**
 * `npm run bench`: each figure measured next to its baseline in one run and reported as a ratio.
 * Writes bench/results/<name>.json and bench/results/summary.md.
 *
 *   npm run bench -- [--duration 3] [--rounds 3] [--users 32] [--audit-rows 50000]
 *                    [--attempt-rows 100000] [--results bench/results]
 *
 * Each figure and its baseline are measured in turns, --rounds times for --duration seconds each;
 * ratios are the median of the rounds' ratios. --attempt-rows sizes the generated audit table the
 * query benchmark runs over (10000000 for the large run).
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { demoUsers } = require('../demo/population');
const {
  canBind,
  createPki,
  createPopulation,
  serviceEnvironment,
  sourceAddress,
} = require('../demo/setup');
const {
  buildOrExit,
  prepareEnvironment,
  startService,
  temporaryDirectory,
} = require('../demo/support/service');
const { generateAttempts, timeApi, timeSql } = require('../bench/audit-queries');
const { benchAuditWriter } = require('../bench/audit-writer');
const { benchHandshakes } = require('../bench/handshakes');
const { benchAcceptedLogins, benchLatencyUnderAttack } = require('../bench/logins');
const { benchRefused } = require('../bench/refused');
const { writeResults } = require('../bench/summary');

const RESULTS_DIR = path.resolve(__dirname, '..', 'bench', 'results');

/**
 * Lifted for the benchmark only, so that a few users can log in over and over: the per address
 * and account limit (IP_USER_LIMIT) and the per certificate one (CERT_LOGIN_LIMIT). Every other
 * limit keeps its default, and the refusal benchmark relies on IP_LOGIN_LIMIT's.
 */
const BENCH_LIMITS = { IP_USER_LIMIT: '1000000', CERT_LOGIN_LIMIT: '1000000' };

function parseOptions(argv) {
  const options = { duration: 3, rounds: 3, users: 32, auditRows: 50_000, attemptRows: 100_000 };
  const numeric = {
    '--duration': ['duration', 1, 600],
    '--rounds': ['rounds', 1, 50],
    '--users': ['users', 2, 1000],
    '--audit-rows': ['auditRows', 2000, 100_000_000],
    '--attempt-rows': ['attemptRows', 1000, 100_000_000],
  };
  for (let index = 0; index < argv.length; index += 1) {
    if (argv[index] === '--results') {
      options.results = path.resolve(argv[(index += 1)] ?? '');
      continue;
    }
    const spec = numeric[argv[index]];
    if (!spec) {
      throw new Error(`unknown option ${JSON.stringify(argv[index])}`);
    }
    const value = Number(argv[(index += 1)]);
    if (!Number.isInteger(value) || value < spec[1] || value > spec[2]) {
      throw new Error(`${argv[index - 1]} takes a whole number from ${spec[1]} to ${spec[2]}`);
    }
    options[spec[0]] = value;
  }
  return options;
}

function note(text) {
  process.stderr.write(`bench: ${text}\n`);
}

async function step(results, name, run, service) {
  note(`${name}…`);
  const started = Date.now();
  try {
    results[name] = await run();
  } catch (error) {
    results[name] = { failed: error.message.split('\n')[0] };
  }
  if (service && !service.alive()) {
    results[name] = {
      ...results[name],
      failed: `the service exited (${service.exitStatus()}) during this step`,
    };
  }
  if (results[name].failed) {
    note(`${name} failed: ${results[name].failed}`);
  }
  note(`${name} done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

async function main() {
  const options = parseOptions(process.argv.slice(2));
  buildOrExit('bench');
  const started = Date.now();
  const workDir = temporaryDirectory('gatehouse-bench-');
  const dataDir = path.join(workDir, 'data');
  const prepared = await prepareEnvironment(dataDir, process.env);
  const multipleSources = await canBind(sourceAddress(30, 0));
  const results = {};
  const environment = {
    started_at: new Date().toISOString(),
    node: process.version,
    cores: os.availableParallelism(),
    cpu: os.cpus()[0]?.model,
    load_average_at_start: os.loadavg().map((value) => Number(value.toFixed(2))),
    database: prepared.describe(),
    options,
    limits_lifted_for_the_benchmark: BENCH_LIMITS,
  };
  let service;
  try {
    note(`preparing ${options.users} users with certificates (${prepared.describe()})`);
    const pki = await createPki(dataDir);
    const env = { ...prepared.env, ...serviceEnvironment(pki, 'direct'), ...BENCH_LIMITS };
    const users = demoUsers(options.users);
    const admin = await createPopulation({
      env,
      workDir,
      pki,
      users,
      adminPassword: 'bench-admin-password-0123',
      bindCertificates: true,
    });
    note(`generating ${options.attemptRows} audit rows`);
    const generatedSeconds = await generateAttempts(env, options.attemptRows);

    service = await startService(env);
    const durationMs = options.duration * 1000;
    const common = { service, pki, durationMs, rounds: options.rounds, multipleSources };
    let apiTimings;
    await step(
      results,
      'audit_queries',
      async () => {
        apiTimings = await timeApi(service, pki, admin);
        return { rows: options.attemptRows, generated_in_seconds: generatedSeconds, ...apiTimings };
      },
      service,
    );
    await step(
      results,
      'accepted_logins',
      () => benchAcceptedLogins({ ...common, users }),
      service,
    );
    await step(
      results,
      'latency_under_attack',
      () => benchLatencyUnderAttack({ ...common, users, rate: 10 }),
      service,
    );
    await step(results, 'refused_attempts', () => benchRefused(common), service);
    await step(
      results,
      'mtls_handshakes',
      () => benchHandshakes({ ...common, client: writeClientFiles(workDir, users[0]) }),
      service,
    );
    keepServiceLog(service);
    const peakRss = service.peakRssBytes();
    await service.stop();
    service = undefined;
    results.service_memory = { peak_rss_mib: Number((peakRss / 1024 / 1024).toFixed(1)) };

    if (apiTimings?.unavailable) {
      await step(results, 'audit_queries', async () => ({
        rows: options.attemptRows,
        generated_in_seconds: generatedSeconds,
        api_unavailable: apiTimings.unavailable,
        ...(await timeSql(env)),
      }));
    }
    await step(results, 'audit_writer', () => benchAuditWriter(env, { rows: options.auditRows }));
  } finally {
    if (service) {
      await service.stop();
    }
    await prepared.cleanup();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
  environment.load_average_at_end = os.loadavg().map((value) => Number(value.toFixed(2)));
  environment.total_seconds = Math.round((Date.now() - started) / 1000);
  const summary = writeResults(options.results ?? RESULTS_DIR, environment, results);
  process.stdout.write(summary);
}

/** The service's last output, for a look after a failed step (bench/results/tmp is ignored). */
function keepServiceLog(service) {
  const directory = path.join(RESULTS_DIR, 'tmp');
  fs.mkdirSync(directory, { recursive: true });
  fs.writeFileSync(path.join(directory, 'service.log'), service.output());
}

function writeClientFiles(workDir, user) {
  const certificateFile = path.join(workDir, 'bench-client.crt');
  const keyFile = path.join(workDir, 'bench-client.key');
  fs.writeFileSync(certificateFile, user.certificatePem);
  fs.writeFileSync(keyFile, user.privateKeyPem, { mode: 0o600 });
  return { ...user, certificateFile, keyFile };
}

main().catch((error) => {
  process.stderr.write(`bench: ${error.message}\n`);
  process.exitCode = 1;
});
