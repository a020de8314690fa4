import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunRecord, StepRecord } from '../../src/runtime/store/checkpointStore';
import { REPO_ROOT, runNode, testEnv, type Finished } from '../support/processes';
import { useTempDirs } from '../support/tempDir';

const KEEL = join(REPO_ROOT, 'bin', 'keel.js');

/** Looks two things up (each noted in lookups.txt as it runs), then answers: five steps. */
function counterAgent(dir: string): string {
  const file = join(dir, 'counter.agent.ts');
  writeFileSync(
    file,
    `import { appendFileSync } from 'node:fs';
import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

const lookup = defineTool({
  name: 'lookup',
  description: 'Looks a thing up.',
  args: z.object({ n: z.number() }),
  effect: 'none',
  run: ({ n }) => {
    appendFileSync(${JSON.stringify(join(dir, 'lookups.txt'))}, n + '\\n');
    return 'found ' + n;
  },
});

export default defineAgent({
  name: 'counter',
  instructions: 'Look up twice, then answer.',
  model: scriptedModel(({ turn }) => (turn < 2 ? { toolCalls: [{ name: 'lookup', args: { n: turn + 1 } }] } : 'Both found.')),
  tools: [lookup],
});
`,
  );
  return file;
}

describe('keel resume of a run that stopped at its budget', () => {
  const tempDir = useTempDirs();

  function keel(dir: string, args: readonly string[]): Promise<Finished> {
    return runNode(KEEL, args, { cwd: dir, env: testEnv({ NO_COLOR: '1' }) });
  }

  async function show(dir: string, runId: string): Promise<{ run: RunRecord; steps: StepRecord[] }> {
    const shown = await keel(dir, ['show', runId, '--json']);
    assert.equal(shown.code, 0, shown.stderr);
    return JSON.parse(shown.stdout) as { run: RunRecord; steps: StepRecord[] };
  }

  it('continues a budget_exceeded run with a larger budget, keeping its recorded work, and says how when none is given', async () => {
    const dir = tempDir('keel-resume-budget-');
    const stopped = await keel(dir, ['run', counterAgent(dir), '--input', 'go', '--budget-steps', '3', '--json']);
    assert.equal(stopped.code, 4, `${stopped.stdout}\n${stopped.stderr}`);
    const { run } = JSON.parse(stopped.stdout) as { run: RunRecord };
    assert.equal(run.state, 'budget_exceeded');
    assert.equal(readFileSync(join(dir, 'lookups.txt'), 'utf8'), '1\n');
    const before = await show(dir, run.id);

    for (const args of [[], ['--budget-steps', '3'], ['--budget-steps', '2']]) {
      const refused = await keel(dir, ['resume', run.id, ...args]);
      assert.equal(refused.code, 1, `${refused.stdout}\n${refused.stderr}`);
      assert.equal(
        refused.stderr.trim(),
        `keel: Run ${run.id} stopped at its budget (The run reached its step budget of 3 steps.); continue it with a larger one, such as keel resume ${run.id} --budget-tokens <n> (or --budget-usd, --budget-steps, --budget-time), and its recorded work is kept.`,
      );
    }
    assert.equal((await show(dir, run.id)).run.state, 'budget_exceeded', 'a refused resume changes nothing');

    const resumed = await keel(dir, ['resume', run.id.slice(4), '--budget-steps', '10']);
    assert.equal(resumed.code, 0, `${resumed.stdout}\n${resumed.stderr}`);
    assert.equal(resumed.stdout.trim().split('\n').at(-1), 'Both found.');
    assert.equal(readFileSync(join(dir, 'lookups.txt'), 'utf8'), '1\n2\n', 'the first lookup was not done again');

    const after = await show(dir, run.id);
    assert.equal(after.run.state, 'completed');
    assert.deepEqual(after.run.budget, { steps: 10 });
    assert.deepEqual(
      after.steps.slice(0, before.steps.length).map((step) => [step.seq, step.name, step.output, step.startedAt]),
      before.steps.map((step) => [step.seq, step.name, step.output, step.startedAt]),
      'the steps recorded before the stop are kept as they were',
    );
    assert.deepEqual(after.steps.map((step) => [step.kind, step.name]), [
      ['model', 'keel.scripted:scripted'],
      ['tool', 'lookup'],
      ['model', 'keel.scripted:scripted'],
      ['tool', 'lookup'],
      ['model', 'keel.scripted:scripted'],
    ]);
  });
});
