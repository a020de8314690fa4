'use strict';
// Plain JavaScript that any Node can parse, so an old Node gets one clear sentence instead of a
// native-addon crash. Used by `npm install` (preinstall) and by the keel command.
var MIN_MAJOR = 22;

function checkNode() {
  var major = Number(process.versions.node.split('.')[0]);
  if (major >= MIN_MAJOR) return true;
  console.error(
    'Keel needs Node.js ' + MIN_MAJOR + ' or newer (this is ' + process.version + '): install Node 24 with `nvm install 24` or from https://nodejs.org/.'
  );
  process.exitCode = 1;
  return false;
}

module.exports = { checkNode: checkNode };
if (require.main === module) checkNode();
