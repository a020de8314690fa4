import assert from 'node:assert/strict';
import { runInNewContext } from 'node:vm';
import { transform } from 'esbuild';
import { functionSource } from '../../src/runtime/functionSource';

describe('functionSource: a function of a bundle, as source that runs elsewhere', () => {
  it('runs in a fresh context although the bundle kept names, as the sandbox harness and the MCP watchdog do', async () => {
    // What scripts/build.mjs makes of a function: keepNames puts `__name` calls in its body.
    const { code } = await transform('function outer(x) { const inner = () => x * 2; return inner.name + ":" + inner(); }', { keepNames: true });
    const outer = runInNewContext(`${code}; outer`) as (x: number) => string;
    assert.match(outer.toString(), /__name\(/, 'the bundled function calls __name');
    assert.throws(() => runInNewContext(`(${outer.toString()})(21)`), /__name is not defined/, 'its plain source does not run elsewhere');
    assert.equal(runInNewContext(`(${functionSource(outer)})(21)`), 'inner:42');
  });
});
