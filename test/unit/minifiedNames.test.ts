import assert from 'node:assert/strict';
import { join } from 'node:path';
import { REPO_ROOT, runNode, testEnv } from '../support/processes';
import { useTempDirs } from '../support/tempDir';

/**
 * Messages name errors by their class (`attempt 1 failed (ModelError)`, `error.name` in the
 * journal), so a minified build must keep class names: a retry line once read `attempt 1 failed (YC)`.
 */
describe('error names in a minified build (scripts/build.mjs --production)', function () {
  this.timeout(120_000);
  const tempDir = useTempDirs();

  it("keeps every exported error class's name, so errors made by it are named as in the source", async () => {
    const outdir = tempDir('keel-minified-');
    const built = await runNode(join(REPO_ROOT, 'scripts', 'build.mjs'), ['--production', '--only', 'index', '--outdir', outdir], { cwd: REPO_ROOT, timeoutMs: 100_000 });
    assert.equal(built.code, 0, built.stderr);
    // The bundle leaves its packages external: they resolve from the repository's node_modules.
    const probe = `
      const keel = require(${JSON.stringify(join(outdir, 'index.js'))});
      const classes = Object.entries(keel).filter(([, value]) => typeof value === 'function' && value.prototype instanceof Error);
      const made = new keel.ModelError('the provider answered 500');
      process.stdout.write(JSON.stringify({ classes: classes.map(([exported, value]) => [exported, value.name]), made: made.name }));
    `;
    const ran = await runNode('-e', [probe], { cwd: REPO_ROOT, env: testEnv({ NODE_PATH: join(REPO_ROOT, 'node_modules') }) });
    assert.equal(ran.code, 0, ran.stderr);
    const { classes, made } = JSON.parse(ran.stdout) as { classes: [string, string][]; made: string };
    assert.ok(classes.length >= 10, `the bundle exports the error classes (found ${classes.length})`);
    assert.deepEqual(
      classes.filter(([exported, name]) => exported !== name),
      [],
      'each error class is named as it is exported',
    );
    assert.equal(made, 'ModelError');
  });
});
