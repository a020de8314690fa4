'use strict';
// Plain JavaScript that any Node can parse, so an old Node gets one clear sentence from the keel
// command instead of a native-addon crash. (`npm install` of the repository is stopped earlier, by
// engine-strict in .npmrc and package.json's engines.node.) 22.15 is the oldest Node that every
// dependency supports (the OpenTelemetry packages ask for it).
var MIN = [22, 15];

function checkNode() {
  var version = process.versions.node.split('.').map(Number);
  if (version[0] > MIN[0] || (version[0] === MIN[0] && version[1] >= MIN[1])) return true;
  console.error(
    'Keel needs Node.js ' + MIN.join('.') + ' or newer (this is ' + process.version + '): install Node 24 with `nvm install 24` or from https://nodejs.org/.'
  );
  process.exitCode = 1;
  return false;
}

module.exports = { checkNode: checkNode };
