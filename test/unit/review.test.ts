import assert from 'node:assert/strict';
import { userInfo } from 'node:os';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ReviewRecord } from '../../src/runtime/review/reviewStore';
import { reviewStats, suggestThreshold, wilson } from '../../src/runtime/review/reviewStats';
import { samplingReason, type SampledCall } from '../../src/runtime/review/sampling';
import { KEEL } from '../support/keelCli';
import { runNode, testEnv, type Finished } from '../support/processes';
import { useTempDirs } from '../support/tempDir';

/**
 * Review sampling: which calls that ran without a person's approval are queued, the verdicts on
 * them through `keel review`, and what the verdicts add up to.
 */

/** Looks a fare up, then pays three amounts; no call asks a person. */
const PAYER = `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';
const lookup = defineTool({ name: 'lookup', description: 'Looks up.', args: z.object({ q: z.string() }), effect: 'none', run: () => 'fare 640' });
const pay = defineTool({ name: 'pay', description: 'Pays.', args: z.object({ amount: z.number() }), effect: 'idempotent', run: ({ amount }) => 'paid ' + amount });
export default defineAgent({
  name: 'payer',
  instructions: 'Pay.',
  model: scriptedModel([
    { toolCalls: [{ name: 'lookup', args: { q: 'LIS' } }] },
    { toolCalls: [{ name: 'pay', args: { amount: 100 } }] },
    { toolCalls: [{ name: 'pay', args: { amount: 640 } }] },
    { toolCalls: [{ name: 'pay', args: { amount: 900 } }] },
    'Paid.',
  ]),
  tools: [lookup, pay],
});
`;

const CONFIG = `import { defineConfig } from 'keel-agents';
export default defineConfig({ review: { sample: [{ tool: 'pay', rate: 0, always: [{ arg: 'amount', min: 500 }] }, { agent: '*', rate: 1 }] } });
`;

function keel(cwd: string, args: readonly string[]): Promise<Finished> {
  return runNode(KEEL, args, { cwd, env: testEnv(), timeoutMs: 60_000 });
}

function call(seq: number, overrides: Partial<SampledCall> = {}): SampledCall {
  return { runId: 'run_x', seq, agent: 'travel', tool: 'book', effect: 'unsafe', args: { amount: 100 }, ...overrides };
}

function reviewed(tool: string, amount: number, verdict: 'agree' | 'disagree'): ReviewRecord {
  return {
    id: `rev_${tool}_${amount}`,
    runId: 'run_x',
    seq: amount,
    agent: 'travel',
    tool,
    effect: 'unsafe',
    args: { amount },
    outcome: { ok: true, content: 'ok' },
    reason: 'rate',
    sampledAt: 0,
    verdict,
    note: null,
    reviewedBy: 'ada',
    reviewedAt: 1,
  };
}

describe('review sampling', function () {
  this.timeout(120_000);
  const tempDir = useTempDirs();

  it('samples by the first rule that matches: a band always, otherwise the rate, the same call the same way every time', () => {
    const rules = [
      { tool: 'book', rate: 0.1, always: [{ arg: 'amount', min: 500, max: 1000 }] },
      { agent: '*', rate: 1 },
    ];
    assert.match(samplingReason(rules, call(1, { args: { amount: 640 } })) ?? '', /amount = 640 is in the band always sampled \(500 to 1000\)/);
    assert.match(samplingReason(rules, call(1, { tool: 'refund', args: {} })) ?? '', /rate of 100%/, 'another tool with a side effect falls to the agent rule');
    assert.equal(samplingReason(rules, call(1, { tool: 'lookup', effect: 'none' })), undefined, 'an agent rule samples only calls with side effects');
    const decisions = Array.from({ length: 4000 }, (_, seq) => samplingReason(rules, call(seq, { runId: `run_${seq % 7}` })));
    const share = decisions.filter((reason) => reason !== undefined).length / decisions.length;
    assert.ok(share > 0.085 && share < 0.115, `sampled ${share} of the calls at a rate of 10%`);
    assert.deepEqual(
      decisions.slice(0, 50),
      Array.from({ length: 50 }, (_, seq) => samplingReason(rules, call(seq, { runId: `run_${seq % 7}` }))),
      'a call looked at again is sampled the same way',
    );
  });

  it('gives the disagreement rate with its Wilson interval, and suggests a threshold only where the verdicts point to one', () => {
    const none = wilson(0, 10);
    assert.equal(none.low, 0);
    assert.ok(Math.abs(none.high - 0.2775) < 0.001, String(none.high));
    const some = wilson(3, 25);
    assert.ok(Math.abs(some.low - 0.0417) < 0.001 && Math.abs(some.high - 0.3) < 0.001, JSON.stringify(some));

    // Reviewers disagree with every booking over 600 and with none below.
    const split = [100, 200, 300, 350, 400, 450, 500, 550, 590].map((amount) => reviewed('book', amount, 'agree'));
    split.push(...[640, 700, 800, 950, 1200].map((amount) => reviewed('book', amount, 'disagree')));
    const suggestion = suggestThreshold(split);
    assert.equal(suggestion?.arg, 'amount');
    assert.equal(suggestion?.over, 590);
    assert.deepEqual([suggestion?.above.reviewed, suggestion?.above.disagreed], [5, 5]);

    // The same disagreements spread over every amount point to no value.
    const spread = [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200].map((amount, index) => reviewed('book', amount, index % 3 === 0 ? 'disagree' : 'agree'));
    assert.equal(suggestThreshold(spread), null);
    const [stats] = reviewStats(spread);
    assert.deepEqual([stats?.tool, stats?.reviewed, stats?.disagreed, stats?.pending], ['book', 12, 4, 0]);
  });

  it('on the path users take: keel run queues the sampled calls, keel review lists them, records one verdict with who and when, and --stats sums them up', async () => {
    const workspace = tempDir();
    writeFileSync(join(workspace, 'payer.agent.ts'), PAYER);
    writeFileSync(join(workspace, 'keel.config.ts'), CONFIG);
    const run = await keel(workspace, ['run', 'payer.agent.ts', '--input', 'pay']);
    assert.equal(run.code, 0, run.stdout + run.stderr);

    const listed = await keel(workspace, ['review', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const pending = JSON.parse(listed.stdout) as ReviewRecord[];
    assert.deepEqual(
      pending.map((item) => [item.tool, item.args, item.outcome.content]),
      [
        ['pay', { amount: 640 }, 'paid 640'],
        ['pay', { amount: 900 }, 'paid 900'],
      ],
      'the lookup has no side effect and 100 is below the band: neither is sampled',
    );
    const [first] = pending;
    assert.ok(first);

    const verdict = await keel(workspace, ['review', first.id, 'disagree', '--note', 'too much without a person']);
    assert.equal(verdict.code, 0, verdict.stderr);
    assert.match(verdict.stdout, new RegExp(`disagree by ${userInfo().username} at \\d{4}-\\d\\d-\\d\\dT.*: too much without a person`));
    const again = await keel(workspace, ['review', first.id, 'agree']);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, new RegExp(`^keel: Review ${first.id} already has a verdict \\(disagree by ${userInfo().username} at [^)]+\\); it stands\\.\\n$`));

    const stats = await keel(workspace, ['review', '--stats']);
    assert.equal(stats.code, 0, stats.stderr);
    assert.match(stats.stdout, /pay {2}disagreed with 1 of 1 \(100%, 95% CI 21%–100%\), 1 waiting for a verdict/);
  });
});
