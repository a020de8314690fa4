import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { z } from 'zod';
import { defineAgent, defineTool } from '../../src/runtime/agent/define';
import { Runtime } from '../../src/runtime/agent/runtime';
import { RetryableError } from '../../src/runtime/effects/retry';
import { scriptedModel } from '../../src/runtime/model/scripted';
import { openSqliteStore } from '../../src/runtime/store/sqliteStore';
import { useTempDirs } from '../support/tempDir';

describe('sub-agents started together by one tool call', () => {
  const tempDir = useTempDirs();

  it('runs each as its own sub-agent run, the first under the call’s key and the others numbered after it', async () => {
    const store = openSqliteStore(join(tempDir('keel-fan-out-'), 'keel.db'));
    try {
      const echo = defineAgent({ name: 'echo', instructions: 'Echo.', model: scriptedModel(({ input }) => `echo ${input}`) });
      let attempts = 0;
      const fanOut = defineTool({
        name: 'fan_out',
        description: 'Asks three sub-agents at once.',
        args: z.object({}),
        effect: 'idempotent',
        retry: { attempts: 2, baseMs: 1, capMs: 1 },
        run: async (_args, ctx) => {
          const answers = await Promise.all(['a', 'b', 'c'].map((input) => ctx.subAgent(echo, input)));
          // The first attempt fails after its sub-agents finished: the retry must find the same runs.
          if (++attempts === 1) throw new RetryableError('flaky');
          return answers.join(', ');
        },
      });
      const lead = defineAgent({
        name: 'lead',
        instructions: 'Fan out.',
        model: scriptedModel(({ turn, toolResults }) => (turn === 0 ? { toolCalls: [{ name: 'fan_out' }] } : `Got ${toolResults[0]?.content ?? ''}`)),
        tools: [fanOut],
      });
      const run = await (await new Runtime({ store, sleep: () => Promise.resolve() }).start(lead, { input: 'go' })).done;

      assert.equal(run.result, 'Got echo a, echo b, echo c');
      const children = await store.childRuns(run.id);
      const key = `${run.id}:1:0`;
      const idFor = (text: string) => `run_${createHash('sha256').update(text).digest('hex').slice(0, 22)}`;
      assert.deepEqual(
        children.map((child) => [child.id, child.input, child.parentSeq, child.state]).sort(),
        [
          [idFor(key), 'a', 2, 'completed'],
          [idFor(`${key}:1`), 'b', 2, 'completed'],
          [idFor(`${key}:2`), 'c', 2, 'completed'],
        ].sort(),
      );
      assert.equal(attempts, 2);
    } finally {
      await store.close();
    }
  });
});
