'use strict';
// `npm start`: build when needed, then run the service in this process so signals reach it.
const path = require('node:path');
const { buildIfNeeded } = require('./build-if-needed');

try {
  buildIfNeeded();
} catch {
  process.stderr.write('gatehouse: the build failed\n');
  process.exit(1);
}
require(path.resolve(__dirname, '..', 'dist', 'src', 'main.js'));
