'use strict';
/**
 * The two kinds of traffic: legitimate users logging in now and then, each with its own
 * certificate, password and address; and the attacker replaying a combo list at a fixed rate
 * from many addresses, with certificates nobody bound to any account.
 */
const { answerLabel, createAgent, login } = require('./support/client');
const { sourceAddress } = require('./setup');

const TICK_MS = 10;
const ATTACK_MAX_IN_FLIGHT = 256;

/** Tallies answers by label and keeps latencies. */
class Tally {
  constructor() {
    this.logins = [];
    this.sent = 0;
    this.done = 0;
    this.byAnswer = new Map();
    this.latencies = [];
  }

  add(answer) {
    this.done += 1;
    const label = answerLabel(answer);
    this.byAnswer.set(label, (this.byAnswer.get(label) ?? 0) + 1);
    if (answer.status !== 0) {
      this.latencies.push(answer.ms);
    }
  }

  count(label) {
    return this.byAnswer.get(label) ?? 0;
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Each user logs in `perUser` times at random moments of the run, from its own address with its
 * own certificate (when it has one).
 */
async function runLegitimateUsers(options) {
  const { url, caPem, users, perUser, durationMs, multipleSources, stop, tally } = options;
  const agents = users.map((user, index) =>
    createAgent(url, {
      caPem,
      certificatePem: user.certificatePem,
      privateKeyPem: user.privateKeyPem,
      localAddress: multipleSources ? sourceAddress(10, index) : undefined,
      maxSockets: 1,
    }),
  );
  const schedule = [];
  users.forEach((user, index) => {
    for (let round = 0; round < perUser; round += 1) {
      // One login in each slice of the run, at a random point of the slice.
      const at = ((round + Math.random()) * durationMs) / perUser;
      schedule.push({ at, index });
    }
  });
  schedule.sort((a, b) => a.at - b.at);

  const started = Date.now();
  const inFlight = new Set();
  let next = 0;
  while (next < schedule.length && !stop.requested) {
    const elapsed = Date.now() - started;
    while (next < schedule.length && schedule[next].at <= elapsed) {
      const { index } = schedule[next];
      next += 1;
      tally.sent += 1;
      const user = users[index];
      const call = login(url, agents[index], user.username, user.password).then((answer) => {
        tally.add(answer);
        inFlight.delete(call);
      });
      inFlight.add(call);
    }
    await sleep(TICK_MS);
  }
  await Promise.all(inFlight);
  agents.forEach((agent) => agent.destroy());
  return tally;
}

/**
 * Replays `entries` at `rate` per second, spreading them over `sources` addresses. Addresses take
 * turns presenting our CA's unbound certificate, the forged CA's certificate, or none.
 */
async function runAttack(options) {
  const { url, caPem, entries, rate, sources, attacker, multipleSources, stop, tally } = options;
  const kinds = [attacker.unbound, attacker.foreign, {}];
  const agents = Array.from({ length: sources }, (_, index) =>
    createAgent(url, {
      caPem,
      certificatePem: kinds[index % kinds.length].certificatePem,
      privateKeyPem: kinds[index % kinds.length].privateKeyPem,
      localAddress: multipleSources ? sourceAddress(20, index) : undefined,
      maxSockets: 4,
    }),
  );

  const started = Date.now();
  const inFlight = new Set();
  let next = 0;
  while (next < entries.length && !stop.requested) {
    const due = Math.min(entries.length, Math.floor(((Date.now() - started) / 1000) * rate));
    while (next < due && inFlight.size < ATTACK_MAX_IN_FLIGHT) {
      const entry = entries[next];
      const agent = agents[next % agents.length];
      next += 1;
      tally.sent += 1;
      const call = login(url, agent, entry.username, entry.password).then((answer) => {
        tally.add(answer);
        if (answer.status === 200) {
          tally.logins.push(entry.username);
        }
        inFlight.delete(call);
      });
      inFlight.add(call);
    }
    await sleep(TICK_MS);
  }
  await Promise.all(inFlight);
  agents.forEach((agent) => agent.destroy());
  return tally;
}

module.exports = { Tally, runAttack, runLegitimateUsers };
