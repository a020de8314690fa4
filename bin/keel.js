#!/usr/bin/env -S node --no-node-snapshot
'use strict';
// --no-node-snapshot on the first line: isolated-vm (sandboxed tools) asks for it on Node 20+.
if (require('./checkNode.js').checkNode()) {
  // V8's compiled code for the command's modules is kept between runs (in the temporary folder,
  // or where NODE_COMPILE_CACHE says), so a command does not compile them again each time.
  require('node:module').enableCompileCache();
  import('../dist/cli.mjs');
}
