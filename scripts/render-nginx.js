#!/usr/bin/env node
'use strict';
/**
 * Renders docker/nginx/gatehouse.conf.template. A small renderer instead of envsubst: it fills only
 * ${UPPER_CASE} placeholders (nginx's own $variables stay), refuses unknown and missing ones, and
 * refuses values that could smuggle nginx syntax into the file.
 *
 *   node scripts/render-nginx.js --out <file> [--preset compose] --set NAME=value ...
 *   const { renderNginx } = require('./scripts/render-nginx');
 */
const fs = require('node:fs');
const path = require('node:path');

const NGINX_DIR = path.resolve(__dirname, '..', 'docker', 'nginx');
const TEMPLATE_PATH = path.join(NGINX_DIR, 'gatehouse.conf.template');
const IDENTITY_INCLUDE_PATH = path.join(NGINX_DIR, 'identity-headers.conf');

const PLACEHOLDER = /\$\{([A-Z][A-Z0-9_]*)\}/g;
/** A line naming one of these is repeated once per value (comma-separated on the command line). */
const LIST_VARIABLES = new Set(['LISTEN']);
/** Paths, host:port, [v6]:port, user names: nothing that ends a directive or opens a block. */
const SAFE_VALUE = /^[A-Za-z0-9_.:/[\]@%+-]+$/;

/** The docker compose deployment: host names on the compose network, paths inside the container. */
const COMPOSE_PRESET = Object.freeze({
  LISTEN: '443',
  WORKER_USER: 'nginx',
  WORKER_PROCESSES: 'auto',
  PID_FILE: '/var/run/nginx.pid',
  ERROR_LOG: 'stderr',
  ACCESS_LOG: '/dev/stdout',
  TEMP_DIR: '/var/cache/nginx',
  INCLUDE_DIR: '/etc/nginx/gatehouse',
  RESOLVER: '127.0.0.11',
  SERVER_CERT: '/etc/nginx/certs/server.crt',
  SERVER_KEY: '/etc/nginx/certs/server.key',
  CLIENT_CA: '/etc/nginx/certs/client-ca.crt',
  UPSTREAM: 'gatehouse:8443',
  UPSTREAM_NAME: 'gatehouse',
  UPSTREAM_CA: '/etc/nginx/certs/gatehouse-ca.crt',
  PROXY_CERT: '/etc/nginx/certs/proxy.crt',
  PROXY_KEY: '/etc/nginx/certs/proxy.key',
});
const PRESETS = Object.freeze({ compose: COMPOSE_PRESET });

function readTemplate() {
  return fs.readFileSync(TEMPLATE_PATH, 'utf8');
}

/** The placeholder names a template uses, sorted. */
function templateVariables(template = readTemplate()) {
  return [...new Set([...template.matchAll(PLACEHOLDER)].map((match) => match[1]))].sort();
}

/**
 * Fills every placeholder of the template. `variables` maps each name to a string; list variables
 * also take an array or a comma-separated string. Throws on unknown, missing or unsafe values.
 */
function renderNginx(variables, template = readTemplate()) {
  const values = checkVariables(variables, templateVariables(template));
  return template
    .split('\n')
    .flatMap((line) => renderLine(line, values))
    .join('\n');
}

/** Renders into `file` and returns the text written. */
function renderNginxFile(file, variables, template = readTemplate()) {
  const text = renderNginx(variables, template);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text, { mode: 0o644 });
  return text;
}

function checkVariables(variables, expected) {
  const given = Object.keys(variables);
  const unknown = given.filter((name) => !expected.includes(name));
  if (unknown.length > 0) {
    throw new Error(`unknown nginx template variable(s): ${unknown.join(', ')}`);
  }
  const missing = expected.filter((name) => variables[name] === undefined);
  if (missing.length > 0) {
    throw new Error(`missing nginx template variable(s): ${missing.join(', ')}`);
  }

  const values = new Map();
  for (const name of expected) {
    values.set(name, toValues(name, variables[name]));
  }
  return values;
}

function toValues(name, value) {
  const list = Array.isArray(value) ? value.map(String) : String(value).split(',');
  if (list.length > 1 && !LIST_VARIABLES.has(name)) {
    throw new Error(`${name} takes one value, got ${list.length}`);
  }
  for (const item of list) {
    if (!SAFE_VALUE.test(item)) {
      throw new Error(`${name} has an unsafe or empty value: ${JSON.stringify(item)}`);
    }
  }
  return list;
}

function renderLine(line, values) {
  const names = [...line.matchAll(PLACEHOLDER)].map((match) => match[1]);
  const listNames = [...new Set(names.filter((name) => values.get(name).length > 1))];
  if (listNames.length > 1) {
    throw new Error(`one template line repeats over several lists: ${listNames.join(', ')}`);
  }
  const repeats = listNames.length === 1 ? values.get(listNames[0]) : [undefined];
  return repeats.map((item) =>
    line.replace(PLACEHOLDER, (_, name) => (name === listNames[0] ? item : values.get(name)[0])),
  );
}

function parseArguments(argv) {
  const options = { out: undefined, variables: {} };
  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index];
    const next = () => {
      index += 1;
      if (index >= argv.length) {
        throw new Error(`${argument} needs a value`);
      }
      return argv[index];
    };
    if (argument === '--out') {
      options.out = next();
    } else if (argument === '--preset') {
      const preset = PRESETS[next()];
      if (!preset) {
        throw new Error(`unknown preset; known: ${Object.keys(PRESETS).join(', ')}`);
      }
      Object.assign(options.variables, preset);
    } else if (argument === '--set') {
      const assignment = next();
      const equals = assignment.indexOf('=');
      if (equals < 1) {
        throw new Error(`--set expects NAME=value, got ${JSON.stringify(assignment)}`);
      }
      options.variables[assignment.slice(0, equals)] = assignment.slice(equals + 1);
    } else if (argument === '--list') {
      options.list = true;
    } else {
      throw new Error(`unknown argument ${JSON.stringify(argument)}`);
    }
  }
  return options;
}

function main(argv) {
  const options = parseArguments(argv);
  if (options.list) {
    process.stdout.write(`${templateVariables().join('\n')}\n`);
    return;
  }
  if (options.out) {
    renderNginxFile(options.out, options.variables);
  } else {
    process.stdout.write(renderNginx(options.variables));
  }
}

module.exports = {
  COMPOSE_PRESET,
  IDENTITY_INCLUDE_PATH,
  NGINX_DIR,
  TEMPLATE_PATH,
  renderNginx,
  renderNginxFile,
  templateVariables,
};

if (require.main === module) {
  try {
    main(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`render-nginx: ${error.message}\n`);
    process.exitCode = 1;
  }
}
