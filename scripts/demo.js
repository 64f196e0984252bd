#!/usr/bin/env node
'use strict';
/**
 * `npm run demo`: a credential-stuffing campaign against a real Gatehouse over mutual TLS, while
 * legitimate users keep logging in. Exits 0 only when the defences held: no login by the
 * attacker, at least 99% of legitimate logins succeeded, and the audit trail counts every
 * attempt sent (sum(count) of login_attempts).
 *
 *   npm run demo -- [--users 50] [--duration 30] [--attack-rate 100] [--sources 60]
 *                   [--no-defences] [--serve]
 */
const { randomBytes } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { comboList, demoUsers, formatComboList } = require('../demo/population');
const { printReport, readAudit, fetchFindings } = require('../demo/report');
const { ProgressBar } = require('../demo/progress');
const {
  canBind,
  createPki,
  createPopulation,
  serviceEnvironment,
  sourceAddress,
} = require('../demo/setup');
const {
  ROOT,
  buildOrExit,
  prepareEnvironment,
  startService,
  temporaryDirectory,
} = require('../demo/support/service');
const { Tally, runAttack, runLegitimateUsers } = require('../demo/traffic');

const USAGE =
  'usage: npm run demo -- [--users N] [--duration SECONDS] [--attack-rate PER_SECOND] ' +
  '[--sources N] [--valid-pairs N] [--no-defences] [--serve]';

function parseOptions(argv) {
  const options = {
    users: 50,
    duration: 20,
    attackRate: 100,
    sources: 60,
    validPairs: 5,
    defences: true,
    serve: false,
  };
  const numeric = {
    '--users': ['users', 1, 5000],
    '--duration': ['duration', 5, 3600],
    '--attack-rate': ['attackRate', 1, 5000],
    '--sources': ['sources', 1, 5000],
    '--valid-pairs': ['validPairs', 0, 100],
  };
  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index];
    if (argument === '--no-defences' || argument === '--no-defenses') {
      options.defences = false;
    } else if (argument === '--serve') {
      options.serve = true;
    } else if (argument === '--help' || argument === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (numeric[argument]) {
      const [key, min, max] = numeric[argument];
      const value = Number(argv[(index += 1)]);
      if (!Number.isInteger(value) || value < min || value > max) {
        throw new Error(`${argument} takes a whole number from ${min} to ${max}`);
      }
      options[key] = value;
    } else {
      throw new Error(`unknown option ${JSON.stringify(argument)}\n${USAGE}`);
    }
  }
  return options;
}

/**
 * demo/combo-list.txt is the list of a run with the default population and attack, the one the
 * README's hydra example replays; other runs keep theirs in their temporary directory.
 */
function comboListPath(options, workDir) {
  const defaults = parseOptions([]);
  const same = ['users', 'duration', 'attackRate', 'validPairs'].every(
    (key) => options[key] === defaults[key],
  );
  return same ? path.join(ROOT, 'demo', 'combo-list.txt') : path.join(workDir, 'combo-list.txt');
}

/**
 * Logins per user: each one a few times over the run, but under the defaults for one address and
 * account (IP_USER_LIMIT, 10 per 15 minutes) and one certificate (CERT_LOGIN_LIMIT, 30).
 */
function loginsPerUser(durationSeconds) {
  return Math.max(2, Math.min(8, Math.floor(durationSeconds / 4)));
}

async function main() {
  const options = parseOptions(process.argv.slice(2));
  buildOrExit('demo');
  const mode = options.defences ? 'direct' : 'off';
  const workDir = temporaryDirectory('gatehouse-demo-');
  const dataDir = path.join(workDir, 'data');
  const prepared = await prepareEnvironment(dataDir, process.env);
  const multipleSources = await canBind(sourceAddress(20, 0));
  const users = demoUsers(options.users);
  const lines = Math.max(1, Math.round(options.attackRate * options.duration));
  const entries = comboList(users, lines, options.validPairs);
  const comboFile = comboListPath(options, workDir);
  fs.writeFileSync(comboFile, formatComboList(entries));

  process.stderr.write(
    `demo: ${options.users} users, ${options.duration} s, attack ${options.attackRate}/s from ` +
      `${multipleSources ? options.sources : 1} address(es), MTLS_MODE=${mode}, ` +
      `${prepared.describe()}\n`,
  );
  if (!multipleSources) {
    process.stderr.write(
      'demo: cannot bind 127.20.0.1, so every client shares 127.0.0.1 and per-address limits ' +
        'throttle legitimate users too (on macOS: `sudo ifconfig lo0 alias 127.10.0.1` and so ' +
        'on)\n',
    );
  }

  let service;
  let stopTraffic = () => undefined;
  const onSignal = () => stopTraffic();
  process.on('SIGINT', onSignal);
  try {
    process.stderr.write(
      'demo: creating the PKI and users (gatehouse users import, certs issue)\n',
    );
    const pki = await createPki(dataDir);
    const env = { ...prepared.env, ...serviceEnvironment(pki, mode) };
    const admin = await createPopulation({
      env,
      workDir,
      pki,
      users,
      adminPassword: randomBytes(18).toString('base64url'),
      bindCertificates: mode !== 'off',
    });

    service = await startService(env);
    if (options.serve) {
      await serve(service, comboFile);
      return;
    }

    const stop = { requested: false };
    stopTraffic = () => (stop.requested = true);
    const common = { url: service.url, caPem: pki.ca.certificatePem, multipleSources, stop };
    const durationMs = options.duration * 1000;
    const bar = new ProgressBar(durationMs);
    const legitTally = new Tally();
    const attackTally = new Tally();
    bar.track(legitTally, attackTally);
    const legitimate = runLegitimateUsers({
      ...common,
      tally: legitTally,
      users,
      perUser: loginsPerUser(options.duration),
      durationMs,
    });
    const attack = runAttack({
      ...common,
      entries,
      rate: options.attackRate,
      sources: options.sources,
      attacker: pki.attacker,
      tally: attackTally,
    });
    await Promise.all([legitimate, attack]);
    bar.finish();

    const findings = await fetchFindings(service.url, pki.ca.certificatePem, admin, mode);
    const extraAttempts = findings.loginAttempts;
    await service.stop();
    service = undefined;
    const audit = await readAudit(env);

    const verdict = printReport({
      options,
      mode,
      legitTally,
      attackTally,
      audit,
      findings,
      attemptsSent: legitTally.sent + attackTally.sent + extraAttempts,
      comboFile,
      validPairs: entries.filter((entry) => entry.valid).length,
    });
    process.exitCode = verdict ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    if (service) {
      await service.stop();
    }
    await prepared.cleanup();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

/**
 * `--serve`: keeps the prepared service running for other tools (hydra) until Ctrl-C. Every
 * refusal body holds `"error"` and a success never does; `F=invalid_credentials` alone would
 * count 429 answers as found passwords.
 */
async function serve(service, comboFile) {
  const list = comboFile.startsWith(ROOT) ? path.relative(ROOT, comboFile) : comboFile;
  const module = service.url.startsWith('https:') ? 'https-post-form' : 'http-post-form';
  process.stdout.write(
    `Gatehouse is listening at ${service.url} with the demo users; Ctrl-C stops it.\n` +
      `  hydra -C ${list} -s ${service.port} 127.0.0.1 ${module} ` +
      `'/auth/login:username=^USER^&password=^PASS^:F=error'\n`,
  );
  await new Promise((resolve) => process.once('SIGINT', resolve));
}

main().catch((error) => {
  process.stderr.write(`demo: ${error.message}\n`);
  process.exitCode = 2;
});
