'use strict';
// Compiles the service with tsc when dist/ is missing or older than any source file.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const marker = path.join(root, 'dist', '.built');

function newestMtime(directory) {
  let newest = 0;
  if (!fs.existsSync(directory)) {
    return newest;
  }
  for (const entry of fs.readdirSync(directory, { withFileTypes: true })) {
    const full = path.join(directory, entry.name);
    if (entry.isDirectory()) {
      newest = Math.max(newest, newestMtime(full));
    } else if (entry.name.endsWith('.ts')) {
      newest = Math.max(newest, fs.statSync(full).mtimeMs);
    }
  }
  return newest;
}

function buildIfNeeded() {
  const sources = ['src', 'migrations', 'examples'].map((dir) => newestMtime(path.join(root, dir)));
  const builtAt = fs.existsSync(marker) ? fs.statSync(marker).mtimeMs : 0;
  if (builtAt >= Math.max(...sources)) {
    return;
  }
  process.stderr.write('gatehouse: building…\n');
  const tsc = require.resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], {
    stdio: 'inherit',
    cwd: root,
  });
  fs.mkdirSync(path.dirname(marker), { recursive: true });
  fs.writeFileSync(marker, new Date().toISOString());
}

module.exports = { buildIfNeeded };

if (require.main === module) {
  buildIfNeeded();
}
