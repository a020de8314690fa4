#!/usr/bin/env -S node --no-node-snapshot
'use strict';
// --no-node-snapshot on the first line: isolated-vm (sandboxed tools) asks for it on Node 20+.
if (require('./checkNode.js').checkNode()) require('../dist/cli.js');
