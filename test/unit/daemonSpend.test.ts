import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RpcError } from '../../src/protocol/jsonRpc';
import type { RunEvent } from '../../src/runtime/agent/events';
import type { RunRecord } from '../../src/runtime/store/checkpointStore';
import { DAEMON, RuntimeProcess } from '../support/runtimeProcess';
import { useTempDirs } from '../support/tempDir';

/** A price for the lead's model, which only the cost settings know. */
const PRICES = JSON.stringify({ 'meter-mini': { inputPerMTok: 0.5, outputPerMTok: 2 } });

/**
 * A lead agent on `local:meter-mini` (priced only by the cost settings) that asks a researcher
 * sub-agent on `openai:gpt-4o` first, then looks something up, then answers. Its model waits
 * on its second call while the gate file exists, so a test can look at a call in flight.
 */
function spendAgent(gate: string): string {
  return `import { existsSync } from 'node:fs';
import { agentTool, defineAgent, defineTool, scriptedModel, z, type Model, type Script } from 'keel-agents';

function dressed(script: Script, provider: string, name: string, gated: boolean): Model {
  const scripted = scriptedModel(script, { name });
  return {
    provider,
    name,
    generate: async (request, options) => {
      const turn = request.messages.filter((message) => message.role === 'assistant').length;
      while (gated && turn === 1 && existsSync(${JSON.stringify(gate)})) await new Promise((resolve) => setTimeout(resolve, 20));
      return scripted.generate(request, options);
    },
  };
}

const researcher = defineAgent({
  name: 'researcher',
  instructions: 'Research.',
  model: dressed(({ input }) => 'Found: ' + input, 'openai', 'gpt-4o', false),
});

const lookup = defineTool({
  name: 'lookup',
  description: 'Looks up.',
  args: z.object({ n: z.number() }),
  effect: 'none',
  run: ({ n }) => 'value ' + n,
});

export default defineAgent({
  name: 'lead',
  instructions: 'Delegate, look up, answer.',
  model: dressed(
    ({ turn }) =>
      turn === 0
        ? { toolCalls: [{ name: 'researcher', args: { task: 'fares to Lisbon' } }] }
        : turn === 1
          ? { toolCalls: [{ name: 'lookup', args: { n: 1 } }] }
          : 'Done.',
    'local',
    'meter-mini',
    true,
  ),
  tools: [agentTool(researcher), lookup],
  budget: { usd: 0.5, tokens: 200000, steps: 20, wallTimeMs: 60000 },
  maxOutputTokens: 500,
});
`;
}

describe('spend and forecasts through the runtime process (getSpend, forecast, configure)', () => {
  const tempDir = useTempDirs();
  const processes: RuntimeProcess[] = [];

  before(() => assert.ok(existsSync(DAEMON), 'dist/daemon.js is missing: run `npm run build` before the tests'));
  afterEach(async () => {
    await Promise.all(processes.splice(0).map((proc) => proc.kill()));
  });

  /** The editor's cost settings, as it sends those the person set. */
  function costSettings(cost: { prices?: string; dailyUsd?: number }): Record<string, unknown> {
    return {
      ...(cost.prices === undefined ? {} : { 'keel.prices': cost.prices }),
      ...(cost.dailyUsd === undefined ? {} : { 'keel.budget.dailyUsd': cost.dailyUsd }),
    };
  }

  async function start(cost: { prices?: string; dailyUsd?: number }): Promise<{ proc: RuntimeProcess; agentFile: string; gate: string }> {
    const workspace = tempDir('keel-spend-');
    const gate = join(workspace, 'lead.gate');
    const agentFile = join(workspace, 'lead.agent.ts');
    writeFileSync(agentFile, spendAgent(gate));
    const proc = new RuntimeProcess(workspace);
    processes.push(proc);
    await proc.request('initialize', { workspaceRoot: workspace, settings: costSettings(cost) });
    return { proc, agentFile, gate };
  }

  it('reports the run, its sub-agent run, its budgets, the call in flight and the spend per model', async () => {
    const { proc, agentFile, gate } = await start({ prices: PRICES, dailyUsd: 5 });
    const today = `pool:daily:${new Date().toISOString().slice(0, 10)}`;
    assert.deepEqual(await proc.request('forecast', { agentFile }), { agent: 'lead', model: 'local:meter-mini', forecast: null, sentence: null, warnings: [] });

    writeFileSync(gate, '');
    const { runId } = await proc.request('startRun', { agentFile, input: 'Plan a trip' });
    // The second model call waits at the gate, holding its reservation.
    await proc.until(
      (event): event is Extract<RunEvent, { type: 'step_started' }> => event.type === 'step_started' && event.step.runId === runId && event.step.seq === 3,
      'the second model call',
    );
    let during = await proc.request('getSpend', { runId });
    for (let tries = 0; during.held.length === 0 && tries < 100; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      during = await proc.request('getSpend', { runId });
    }
    assert.equal(during.run.state, 'running');
    assert.ok(during.activeSince !== null && during.activeSince <= during.at, 'a running run has an active time');
    assert.deepEqual(
      during.held.map((reservation) => [reservation.runId, reservation.model, reservation.status, reservation.budgetIds]),
      [[runId, 'local:meter-mini', 'held', [`run:${runId}`, today]]],
    );
    const ownDuring = during.budgets.find((budget) => budget.id === `run:${runId}`);
    assert.deepEqual(ownDuring?.reserved, during.held[0]?.amounts, 'the run’s budget holds what the call in flight reserved');
    assert.equal(during.subRuns.length, 1);

    rmSync(gate);
    const done = await proc.stopped(runId, 'completed');
    const report = await proc.request('getSpend', { runId });
    const [child] = report.subRuns;
    assert.ok(child);
    assert.deepEqual([child.agent, child.parentRunId, child.state], ['researcher', runId, 'completed']);
    assert.equal(report.activeSince, null);
    assert.ok(report.run.activeMs > 0);
    assert.deepEqual(report.held, []);
    assert.equal(report.recent.length, 4, 'three calls of the lead and one of the researcher, all settled');
    assert.ok(report.recent.every((reservation) => reservation.status === 'settled'));

    // Per model: the lead's price came from the cost settings, the researcher's from Keel's table.
    const models = report.models.map((spend) => [spend.runId, spend.model, spend.calls, spend.unpricedCalls]);
    assert.deepEqual(models, [
      [runId, 'local:meter-mini', 3, 0],
      [child.id, 'openai:gpt-4o', 1, 0],
    ]);
    const lead = report.models[0];
    assert.ok(lead && lead.usd > 0);
    assert.ok(Math.abs(lead.usd - done.costUsd) < 1e-12);
    assert.equal(lead.inputTokens + lead.outputTokens, done.usage.inputTokens + done.usage.outputTokens);

    // The run's own budget and the daily pool paid for the lead and the researcher.
    assert.deepEqual(report.budgets.map((budget) => budget.id), [`run:${runId}`, today]);
    const spentByRuns = done.costUsd + child.costUsd;
    for (const budget of report.budgets) {
      assert.ok(Math.abs(budget.spent.usd - spentByRuns) < 1e-12, `${budget.id} spent ${budget.spent.usd}, the runs ${spentByRuns}`);
      assert.deepEqual(budget.reserved, { inputTokens: 0, outputTokens: 0, usd: 0 });
    }
    assert.deepEqual(report.budgets[1]?.limits, { usd: 5 });

    // The child's own report names the parent's budget as one it draws on.
    const childReport = await proc.request('getSpend', { runId: child.id });
    assert.deepEqual(childReport.budgets.map((budget) => budget.id), [`run:${runId}`, today]);
    assert.deepEqual(childReport.subRuns, []);

    // The forecast counts what the sub-agent spent too: the run's budgets paid for it.
    const planned = await proc.request('forecast', { agentFile });
    assert.equal(planned?.agent, 'lead');
    const [figures] = planned?.forecast?.models ?? [];
    assert.deepEqual([figures?.model, figures?.basedOn], ['local:meter-mini', 1]);
    assert.ok(Math.abs((figures?.usd.p50 ?? 0) - spentByRuns) < 1e-12, `forecast ${figures?.usd.p50}, spent ${spentByRuns}`);
    assert.deepEqual(planned?.warnings, []);
    assert.deepEqual((await proc.request('forecast', { agent: 'lead' }))?.forecast, planned?.forecast);
    assert.equal((await proc.request('forecast', { agentFile, model: 'openai:gpt-4o' }))?.forecast?.models[0]?.model, 'local:meter-mini');

    // With less left of today's pool than such a run spends, the editor is warned before the next one.
    await proc.request('configure', { settings: costSettings({ prices: PRICES, dailyUsd: spentByRuns / 2 }) });
    const warned = await proc.request('forecast', { agentFile });
    assert.equal(warned?.warnings.length, 1);
    assert.match(warned?.warnings[0] ?? '', /^The earlier completed run with local:meter-mini spent up to \$0\.\d+, more than the \$0 left of the shared money budget daily:\d{4}-\d{2}-\d{2}: this run may stop before it is done\.$/);
  });

  it('takes new cost settings for the runs it starts next: a daily pool that is spent stops them', async () => {
    const { proc, agentFile } = await start({ prices: PRICES });
    await proc.request('configure', { settings: costSettings({ prices: PRICES, dailyUsd: 0.000001 }) });
    const { runId } = await proc.request('startRun', { agentFile, input: 'Plan a trip' });
    const stopped: RunRecord = await proc.stopped(runId, 'budget_exceeded');
    assert.match(stopped.error ?? '', /the shared budget daily:\d{4}-\d{2}-\d{2}'s money budget of \$0\.000001 over/);
    const report = await proc.request('getSpend', { runId });
    assert.deepEqual(report.budgets.map((budget) => budget.id.split(':')[0]), ['run', 'pool']);
    assert.deepEqual(report.held, []);
  });

  it('refuses to start runs while the price setting is not usable, and says why', async () => {
    const { proc, agentFile } = await start({ prices: '{"meter-mini": {"input": 1}}' });
    await assert.rejects(proc.request('startRun', { agentFile, input: 'go' }), (error: unknown) => {
      assert.ok(error instanceof RpcError);
      assert.match(error.message, /the price of "meter-mini" needs inputPerMTok and outputPerMTok/);
      return true;
    });
    await assert.rejects(proc.request('getSpend', { runId: 'run_nope' }), /No run run_nope in /);
  });
});
