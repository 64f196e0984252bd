'use strict';
/** What the demo found: findings from the service, the audit trail after it stopped, a verdict. */
const { createAgent, login, request } = require('./support/client');
const { openServiceDatabase } = require('./support/service');

const ATTACKER_BLOCK = '127.20.0.0/16';
const LEGITIMATE_BLOCK = '127.10.0.0/16';

/**
 * Findings through GET /audit/alerts, as an admin (certificate and password), when the service
 * has that route; otherwise `available: false` and the report counts the findings table.
 * `loginAttempts` is how many login attempts this sent, which the audit also counts.
 */
async function fetchFindings(url, caPem, admin, mode) {
  const agent = createAgent(url, {
    caPem,
    certificatePem: mode === 'off' ? undefined : admin.certificatePem,
    privateKeyPem: mode === 'off' ? undefined : admin.privateKeyPem,
  });
  try {
    const answer = await login(url, agent, admin.username, admin.password);
    if (answer.status !== 200) {
      return {
        available: false,
        reason: `admin login answered ${answer.status}`,
        loginAttempts: 1,
      };
    }
    const headers = { authorization: `Bearer ${answer.body.access_token}` };
    const alerts = await request(url, agent, { path: '/audit/alerts?limit=1000', headers });
    if (alerts.status !== 200 || !Array.isArray(alerts.body?.items)) {
      return {
        available: false,
        reason: `GET /audit/alerts answered ${alerts.status}`,
        loginAttempts: 1,
      };
    }
    return { available: true, items: alerts.body.items, loginAttempts: 1 };
  } finally {
    agent.destroy();
  }
}

/** Reads the audit trail and findings from the stopped service's database. */
async function readAudit(env) {
  const database = await openServiceDatabase(env);
  try {
    const [totals] = await database.query(
      `SELECT coalesce(sum(count), 0)::bigint AS attempts, count(*)::bigint AS rows
         FROM login_attempts`,
    );
    const outcomes = await database.query(
      `SELECT CASE WHEN client_ip <<= $1::inet THEN 'attacker'
                   WHEN client_ip <<= $2::inet THEN 'legitimate'
                   ELSE 'other' END AS side,
              outcome, sum(count)::bigint AS attempts, count(*)::bigint AS rows
         FROM login_attempts GROUP BY 1, 2 ORDER BY 1, 3 DESC`,
      [ATTACKER_BLOCK, LEGITIMATE_BLOCK],
    );
    const findings = await database.query(
      `SELECT rule, mode, count(*)::int AS findings
         FROM findings GROUP BY rule, mode ORDER BY rule`,
    );
    return {
      attempts: Number(totals.attempts),
      rows: Number(totals.rows),
      outcomes: outcomes.map((row) => ({
        ...row,
        attempts: Number(row.attempts),
        rows: Number(row.rows),
      })),
      findings,
    };
  } finally {
    await database.close();
  }
}

function percentile(values, share) {
  if (values.length === 0) {
    return 0;
  }
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))];
}

function table(rows, indent = '  ') {
  const width = Math.max(0, ...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${indent}${label.padEnd(width)}  ${value}`).join('\n');
}

function findingsText(findings, audit) {
  if (findings.available) {
    const byRule = new Map();
    for (const item of findings.items) {
      byRule.set(item.rule, (byRule.get(item.rule) ?? 0) + 1);
    }
    const rows = [...byRule].map(([rule, count]) => [rule, count]);
    return `Findings raised (GET /audit/alerts): ${findings.items.length}\n${table(rows)}`;
  }
  const total = audit.findings.reduce((sum, row) => sum + row.findings, 0);
  const rows = audit.findings.map((row) => [`${row.rule} (${row.mode})`, row.findings]);
  return (
    `Findings raised (findings table; ${findings.reason}): ${total}\n` +
    (rows.length > 0 ? table(rows) : '  none')
  );
}

/** Prints the report on stdout and returns whether the defences held. */
function printReport(result) {
  const { options, mode, legitTally, attackTally, audit, findings, attemptsSent } = result;
  const legitOk = legitTally.count('200');
  const legitRate = legitTally.sent === 0 ? 1 : legitOk / legitTally.sent;
  const attackerIn = [...new Set(attackTally.logins)];
  const auditedAttackerIn = audit.outcomes
    .filter((row) => row.side === 'attacker' && row.outcome === 'success')
    .reduce((sum, row) => sum + row.attempts, 0);
  const attackerLogins = Math.max(attackTally.count('200'), auditedAttackerIn);

  const lines = [
    '',
    `Gatehouse demo: MTLS_MODE=${mode}, ${options.users} users, ${options.duration} s, ` +
      `attack at ${options.attackRate}/s`,
    '',
    `Legitimate logins: ${legitTally.sent} sent, ${legitOk} succeeded ` +
      `(${(legitRate * 100).toFixed(1)}%), ` +
      `p50 ${percentile(legitTally.latencies, 0.5).toFixed(0)} ms, ` +
      `p99 ${percentile(legitTally.latencies, 0.99).toFixed(0)} ms`,
    table([...legitTally.byAnswer].sort((a, b) => b[1] - a[1])),
    `Attacker: ${attackTally.sent} attempts sent from the combo list ` +
      `(${result.validPairs} valid pairs in it), answers:`,
    table([...attackTally.byAnswer].sort((a, b) => b[1] - a[1])),
    `Accounts the attacker got into: ${attackerIn.length}` +
      (attackerIn.length > 0 ? ` (${attackerIn.join(', ')})` : ''),
    '',
    `Recorded outcomes (login_attempts, sum(count) by source block; ${audit.rows} rows):`,
    table(audit.outcomes.map((row) => [`${row.side} ${row.outcome}`, row.attempts])),
    findingsText(findings, audit),
    `Recorded attempts: ${audit.attempts} of ${attemptsSent} sent ` +
      `(the admin's login for the findings included)`,
    '',
  ];
  const checks = [
    [attackerLogins === 0, `attacker logins: ${attackerLogins} (must be 0)`],
    [legitRate >= 0.99, `legitimate success ${(legitRate * 100).toFixed(1)}% (at least 99%)`],
    [audit.attempts === attemptsSent, `audit sum(count) ${audit.attempts} = ${attemptsSent} sent`],
  ];
  for (const [ok, text] of checks) {
    lines.push(`${ok ? 'ok  ' : 'FAIL'}  ${text}`);
  }
  const held = checks.every(([ok]) => ok);
  lines.push(
    '',
    held
      ? 'The defences held.'
      : mode === 'off'
        ? 'The defences did not hold: without mutual TLS the valid pairs in the combo list get in.'
        : 'The defences did not hold.',
    '',
  );
  process.stdout.write(lines.join('\n'));
  return held;
}

module.exports = { fetchFindings, printReport, readAudit };
