#!/usr/bin/env node
'use strict';
if (require('./checkNode.js').checkNode()) require('../dist/cli.js');
