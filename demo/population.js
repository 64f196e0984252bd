'use strict';
/**
 * The demo's people: legitimate users with passwords derived from a fixed seed (so the committed
 * demo/combo-list.txt matches a default run), and the attacker's combo list, a leak from another
 * site where most pairs are wrong and a few are the real passwords of our users.
 */
const { createHash } = require('node:crypto');

const SEED = 'gatehouse-demo-v1';

function derive(...parts) {
  return createHash('sha256')
    .update([SEED, ...parts].join('\0'))
    .digest();
}

function usernameOf(index) {
  return `user${String(index + 1).padStart(3, '0')}`;
}

/** `count` users named user001.. with strong, reproducible passwords. */
function demoUsers(count) {
  return Array.from({ length: count }, (_, index) => {
    const username = usernameOf(index);
    return { username, password: derive('password', username).toString('base64url').slice(0, 20) };
  });
}

/** A small reproducible generator (xorshift32), so a list is the same on every run. */
function generator(seed) {
  let state = derive('generator', String(seed)).readUInt32LE(0) || 1;
  return (limit) => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state % limit;
  };
}

const FIRST = ['anna', 'ben', 'chris', 'dana', 'eli', 'fay', 'gus', 'hana', 'ivan', 'jo', 'kim'];
const LAST = ['smith', 'jones', 'lee', 'brown', 'garcia', 'khan', 'nguyen', 'wolf', 'silva'];
const LEAKED = ['123456', 'password', 'qwerty', 'letmein', 'dragon', 'iloveyou', 'sunshine'];

/**
 * `lines` user:pass lines. About a third name our users, the rest people we never had. Exactly
 * `validPairs` lines carry a user's real password; each is that user's first line in the list,
 * early on, as a reused password would be tried first, so without mutual TLS it gets in.
 */
function comboList(users, lines, validPairs) {
  const next = generator(`${users.length}:${lines}:${validPairs}`);
  const entries = [];
  for (let index = 0; index < lines; index += 1) {
    const ours = users.length > 0 && next(3) === 0;
    const username = ours
      ? users[next(users.length)].username
      : `${FIRST[next(FIRST.length)]}.${LAST[next(LAST.length)]}${next(1000)}`;
    const password = `${LEAKED[next(LEAKED.length)]}${next(10_000)}`;
    entries.push({ username, password, valid: false });
  }

  const victims = users.slice(0, Math.min(validPairs, users.length, lines));
  victims.forEach((victim, order) => {
    // Spread over the first fifth of the list.
    const position = Math.floor(
      ((order + 0.5) * Math.max(1, Math.floor(lines / 5))) / victims.length,
    );
    for (let index = 0; index < position; index += 1) {
      if (entries[index].username === victim.username) {
        entries[index].username = `${FIRST[next(FIRST.length)]}.${LAST[next(LAST.length)]}`;
      }
    }
    entries[position] = { username: victim.username, password: victim.password, valid: true };
  });
  return entries;
}

function formatComboList(entries) {
  return `${entries.map((entry) => `${entry.username}:${entry.password}`).join('\n')}\n`;
}

module.exports = { comboList, demoUsers, formatComboList };
