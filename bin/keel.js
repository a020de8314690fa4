#!/usr/bin/env node
'use strict';
// Plain JavaScript so that even an old Node can run it far enough to say what is wrong.
var major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  console.error('keel needs Node.js 22 or newer (this is ' + process.version + '): install Node 24 with `nvm install 24` or from https://nodejs.org/.');
  process.exit(1);
}
require('../dist/cli.js');
