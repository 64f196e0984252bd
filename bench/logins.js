'use strict';
/**
 * Accepted logins per second against a plain loop of the same argon2id verification on the same
 * cores, and the latency of legitimate logins with and without an attack saturating the service.
 */
const os = require('node:os');
const argon2 = require('@node-rs/argon2');
const { createAgent, login } = require('../demo/support/client');
const { sourceAddress } = require('../demo/setup');
const { closedLoop, percentile } = require('./load');
const { combine, inRounds, median } = require('./rounds');

/** The parameters of src/users/password-hasher.ts (OWASP's argon2id minimum). */
const ARGON2_OPTIONS = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 };

function userAgents(url, caPem, users, multipleSources) {
  return users.map((user, index) =>
    createAgent(url, {
      caPem,
      certificatePem: user.certificatePem,
      privateKeyPem: user.privateKeyPem,
      localAddress: multipleSources ? sourceAddress(40, index) : undefined,
      maxSockets: 1,
    }),
  );
}

async function argon2Loop(concurrency, durationMs) {
  const hash = await argon2.hash('correct horse battery staple', ARGON2_OPTIONS);
  return closedLoop({
    concurrency,
    durationMs,
    send: async () => {
      const started = process.hrtime.bigint();
      const ok = await argon2.verify(hash, 'correct horse battery staple');
      return { status: ok ? 200 : 401, ms: Number(process.hrtime.bigint() - started) / 1e6 };
    },
  });
}

/** Every user logs in again as soon as its last login ends, one caller per user. */
async function benchAcceptedLogins({ service, pki, users, durationMs, rounds, multipleSources }) {
  const agents = userAgents(service.url, pki.ca.certificatePem, users, multipleSources);
  const cores = os.availableParallelism();
  try {
    const { combined, ratio } = await inRounds(rounds, {
      gatehouse: () =>
        closedLoop({
          concurrency: users.length,
          durationMs,
          send: (index) =>
            login(service.url, agents[index], users[index].username, users[index].password),
        }),
      argon2_verify_loop: () => argon2Loop(cores * 2, durationMs),
    });
    return {
      cores,
      callers: users.length,
      rounds,
      ...combined,
      ratio: ratio('gatehouse', 'argon2_verify_loop'),
    };
  } finally {
    agents.forEach((agent) => agent.destroy());
  }
}

/** Legitimate logins at `rate` per second (open loop) for `durationMs`; their latencies. */
async function legitimateAtRate({ url, agents, users, rate, durationMs }) {
  const latencies = [];
  let failures = 0;
  const calls = [];
  const started = Date.now();
  let sent = 0;
  while (Date.now() - started < durationMs) {
    const due = Math.floor(((Date.now() - started) / 1000) * rate);
    for (; sent < due; sent += 1) {
      const index = sent % users.length;
      calls.push(
        login(url, agents[index], users[index].username, users[index].password).then((answer) => {
          if (answer.status === 200) {
            latencies.push(answer.ms);
          } else {
            failures += 1;
          }
        }),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await Promise.all(calls);
  const sorted = latencies.sort((a, b) => a - b);
  return {
    logins: sent,
    failures,
    p50_ms: Number(percentile(sorted, 0.5).toFixed(1)),
    p99_ms: Number(percentile(sorted, 0.99).toFixed(1)),
  };
}

/**
 * The attack: `concurrency` callers from many addresses, taking turns presenting the unbound
 * certificate and none, each sending wrong passwords for real and unknown names.
 */
function attack({ url, pki, users, concurrency, durationMs, multipleSources, stop }) {
  const kinds = [pki.attacker.unbound, pki.attacker.foreign, {}];
  const agents = Array.from({ length: concurrency }, (_, index) =>
    createAgent(url, {
      caPem: pki.ca.certificatePem,
      ...kinds[index % kinds.length],
      localAddress: multipleSources ? sourceAddress(50, index) : undefined,
      maxSockets: 1,
    }),
  );
  let sent = 0;
  return closedLoop({
    concurrency,
    durationMs,
    stop,
    send: (index) => {
      sent += 1;
      const name = sent % 2 === 0 ? users[sent % users.length].username : `ghost${sent}`;
      return login(url, agents[index], name, `guess-${sent}`);
    },
  }).finally(() => agents.forEach((agent) => agent.destroy()));
}

async function latencyRound({ service, pki, users, legitimate, durationMs, multipleSources }) {
  const quiet = await legitimateAtRate(legitimate);
  const stop = { requested: false };
  const flood = attack({
    url: service.url,
    pki,
    users,
    concurrency: 128,
    durationMs: durationMs + 1000,
    multipleSources,
    stop,
  });
  // Let the attack reach full strength first.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const underAttack = await legitimateAtRate(legitimate);
  stop.requested = true;
  return { quiet, underAttack, attack: await flood };
}

/** Rounds of: legitimate logins alone, then the same while the attack runs. */
async function benchLatencyUnderAttack(options) {
  const { service, pki, users, durationMs, rate, rounds, multipleSources } = options;
  const agents = userAgents(service.url, pki.ca.certificatePem, users, multipleSources);
  const legitimate = { url: service.url, agents, users, rate, durationMs };
  try {
    const results = [];
    for (let round = 0; round < rounds; round += 1) {
      results.push(await latencyRound({ ...options, legitimate }));
    }
    const phase = (key) => ({
      logins: results.reduce((sum, item) => sum + item[key].logins, 0),
      failures: results.reduce((sum, item) => sum + item[key].failures, 0),
      p50_ms: median(results.map((item) => item[key].p50_ms)),
      p99_ms: median(results.map((item) => item[key].p99_ms)),
      p50_ms_by_round: results.map((item) => item[key].p50_ms),
    });
    const ratioOf = (key) =>
      Number(
        median(
          results.map((item) => item.underAttack[key] / Math.max(item.quiet[key], 0.1)),
        ).toFixed(2),
      );
    return {
      legitimate_rate_per_second: rate,
      rounds,
      no_attack: phase('quiet'),
      under_attack: phase('underAttack'),
      attack: combine(results.map((item) => item.attack)),
      ratio_p50: ratioOf('p50_ms'),
      ratio_p99: ratioOf('p99_ms'),
    };
  } finally {
    agents.forEach((agent) => agent.destroy());
  }
}

module.exports = { benchAcceptedLogins, benchLatencyUnderAttack };
