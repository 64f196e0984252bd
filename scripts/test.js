'use strict';
// `npm test`: type-check, lint, then every unit and end-to-end spec. With no DATABASE_URL the
// end-to-end specs run on the embedded database; Redis specs skip with a printed reason when
// no Redis answers at REDIS_URL.
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);

function run(label, command, args) {
  process.stderr.write(`\n== ${label}\n`);
  // PGlite loads its WebAssembly through a dynamic import, which Jest's VM needs this flag for.
  const env = { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --experimental-vm-modules`.trim() };
  const result = spawnSync(command, args, { stdio: 'inherit', cwd: root, env });
  if (result.status !== 0) {
    process.stderr.write(`\n${label} failed\n`);
    process.exit(result.status ?? 1);
  }
}

const extra = process.argv.slice(2);
run('type-check', bin('tsc'), ['--noEmit', '-p', 'tsconfig.json']);
const linted = ['src', 'test', 'migrations', 'scripts', 'bench', 'demo', 'examples'];
run('lint', bin('eslint'), ['--max-warnings=0', ...linted]);
run('build', process.execPath, [path.join(root, 'scripts', 'build-if-needed.js')]);
run('tests', bin('jest'), ['--runInBand', ...extra]);
