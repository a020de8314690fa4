import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../support/processes';

describe('the extension bundle', () => {
  it('loads no native module: the extension host runs on Electron’s Node', () => {
    const bundle = readFileSync(join(REPO_ROOT, 'dist', 'extension.js'), 'utf8');
    const required = [...bundle.matchAll(/require\("([^"]+)"\)/g)].map((match) => match[1]);
    assert.deepEqual(
      required.filter((name) => name !== 'vscode' && !name?.startsWith('node:')),
      [],
      'the extension requires modules other than vscode and Node built-ins',
    );
    assert.doesNotMatch(bundle, /better-sqlite3|isolated-vm|\.node"/);
  });
});
