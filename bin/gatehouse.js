#!/usr/bin/env node
'use strict';
// The operator CLI; builds first when the compiled code is missing or stale.
const path = require('node:path');
const { buildIfNeeded } = require('../scripts/build-if-needed');

try {
  buildIfNeeded();
} catch {
  process.stderr.write('gatehouse: the build failed\n');
  process.exit(1);
}
require(path.resolve(__dirname, '..', 'dist', 'src', 'cli', 'main.js'));
