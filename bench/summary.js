'use strict';
/** Writes bench/results/<name>.json and a readable bench/results/summary.md. */
const fs = require('node:fs');
const path = require('node:path');

function figure(value, unit = '') {
  return value === undefined || value === null ? 'n/a' : `${value}${unit}`;
}

function row(cells) {
  return `| ${cells.join(' | ')} |`;
}

function ratioRows(results) {
  const rows = [];
  const { refused_attempts: refused, accepted_logins: logins } = results;
  const {
    latency_under_attack: latency,
    mtls_handshakes: handshakes,
    audit_writer: writer,
  } = results;
  if (refused?.bare_fastify) {
    rows.push(
      row([
        'Refused attempts/s, throttled (429, audited)',
        figure(refused.gatehouse_throttled.per_second),
        `bare Fastify HTTPS ${refused.bare_fastify.per_second}`,
        figure(refused.ratio_throttled),
      ]),
      row([
        'Refused attempts/s, malformed (400, audited)',
        figure(refused.gatehouse_invalid_request.per_second),
        `bare Fastify HTTPS ${refused.bare_fastify.per_second}`,
        figure(refused.ratio_invalid_request),
      ]),
    );
  }
  if (logins?.gatehouse) {
    rows.push(
      row([
        'Accepted logins/s (mTLS + argon2id)',
        figure(logins.gatehouse.per_second),
        `argon2id verify loop ${logins.argon2_verify_loop.per_second}`,
        figure(logins.ratio),
      ]),
    );
  }
  if (latency?.no_attack) {
    rows.push(
      row([
        'Legitimate login p50 under attack (ms)',
        figure(latency.under_attack.p50_ms),
        `no attack ${latency.no_attack.p50_ms}`,
        figure(latency.ratio_p50),
      ]),
      row([
        'Legitimate login p99 under attack (ms)',
        figure(latency.under_attack.p99_ms),
        `no attack ${latency.no_attack.p99_ms}`,
        figure(latency.ratio_p99),
      ]),
    );
  }
  if (writer?.audit_writer) {
    rows.push(
      row([
        'Audit rows/s (AuditWriter)',
        figure(writer.audit_writer.rows_per_second),
        `raw multi-row INSERT ${writer.raw_insert.rows_per_second}`,
        figure(writer.ratio),
      ]),
    );
  }
  if (handshakes?.gatehouse) {
    rows.push(
      row([
        'New mTLS connections/s',
        figure(handshakes.gatehouse.per_second),
        handshakes.nginx_one_worker
          ? `nginx, 1 worker ${handshakes.nginx_one_worker.per_second}`
          : `skipped: ${handshakes.skipped}`,
        figure(handshakes.ratio),
      ]),
    );
  }
  return rows;
}

function auditQueryLines(queries) {
  if (!queries || queries.failed) {
    return [`Audit queries: ${queries ? `failed (${queries.failed})` : 'not run'}`];
  }
  const lines = [
    `Audit queries over ${queries.rows} generated rows ` +
      `(generated in ${queries.generated_in_seconds.toFixed(1)} s), ` +
      `via ${queries.via === 'api' ? 'the API' : `SQL (${queries.api_unavailable})`}, median of 5:`,
    '',
  ];
  for (const name of ['filtered_first_page', 'filtered_next_page', 'username_page', 'summary_1d']) {
    if (queries[name]) {
      lines.push(
        `- ${name.replace(/_/g, ' ')}: ${queries[name].median_ms} ms ` +
          `(max ${queries[name].max_ms} ms)`,
      );
    }
  }
  return lines;
}

function failures(results) {
  return Object.entries(results)
    .filter(([, value]) => value?.failed)
    .map(([name, value]) => `- ${name} failed: ${value.failed}`);
}

function writeResults(directory, environment, results) {
  fs.mkdirSync(directory, { recursive: true });
  for (const [name, value] of Object.entries(results)) {
    fs.writeFileSync(
      path.join(directory, `${name}.json`),
      `${JSON.stringify({ environment, [name]: value }, null, 2)}\n`,
    );
  }
  const lines = [
    '# Gatehouse benchmarks',
    '',
    `${environment.started_at}, Node ${environment.node}, ` +
      `${environment.cores} cores (${environment.cpu}), ${environment.database}. ` +
      `Load average ${environment.load_average_at_start.join(' / ')} at start, ` +
      `${environment.load_average_at_end.join(' / ')} at the end; ` +
      `${environment.total_seconds} s in all. ` +
      `Client and service share the machine. Each figure and its baseline ran in turns, ` +
      `${environment.options.rounds} rounds of ${environment.options.duration} s; a ratio is the ` +
      `median of the rounds' ratios.`,
    '',
    row(['Figure', 'Gatehouse', 'Baseline (same run)', 'Ratio']),
    row(['---', '---:', '---', '---:']),
    ...ratioRows(results),
    '',
    `Peak RSS of the service: ${figure(results.service_memory?.peak_rss_mib, ' MiB')}.`,
    '',
    ...auditQueryLines(results.audit_queries),
    '',
    'For the benchmark only, IP_USER_LIMIT and CERT_LOGIN_LIMIT are lifted so that a few users ' +
      'can log in over and over; every other limit has its default. Details in the JSON files.',
    ...failures(results),
    '',
  ];
  const text = lines.join('\n');
  fs.writeFileSync(path.join(directory, 'summary.md'), text);
  return text;
}

module.exports = { writeResults };
