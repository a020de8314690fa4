import assert from 'node:assert/strict';
import { join } from 'node:path';
import { KeelError } from '../../src/runtime/errors';
import { Host } from '../../src/runtime/host/host';
import { useTempDirs } from '../support/tempDir';

describe('host', function () {
  const tempDir = useTempDirs();

  it('opened to read (keel runs) reads the run database and refuses to run anything, in a sentence', async () => {
    const workspace = tempDir();
    const host = await Host.open({ cwd: workspace, flags: { db: join(workspace, 'keel.db') }, readOnly: true });
    try {
      assert.deepEqual(await host.store.listRuns({ limit: 5 }), []);
      assert.throws(() => host.runtime(), (error: unknown) => error instanceof KeelError && /opened to read the run database .* so it runs nothing\.$/.test(error.message));
    } finally {
      await host.close();
    }
  });
});
