import assert from 'node:assert/strict';
import { join } from 'node:path';
import { z } from 'zod';
import { applyDeadlines, argsHash, decide, DecisionError } from '../../src/runtime/approval/decide';
import { approvalStats } from '../../src/runtime/approval/metrics';
import { approvals, needsApproval, toPolicy, type CallForApproval } from '../../src/runtime/approval/policy';
import { defineAgent, defineTool, type Agent } from '../../src/runtime/agent/define';
import type { RunEvent } from '../../src/runtime/agent/events';
import { Runtime } from '../../src/runtime/agent/runtime';
import type { ModelRequest, ToolMessage } from '../../src/runtime/model/model';
import { scriptedModel } from '../../src/runtime/model/scripted';
import { unfence } from '../../src/runtime/guard/fence';
import type { ApprovalRecord } from '../../src/runtime/store/checkpointStore';
import { openSqliteStore, type SqliteStore } from '../../src/runtime/store/sqliteStore';
import { useTempDirs } from '../support/tempDir';

const ctx = { runId: 'run_1', agent: 'travel', input: 'go' };

function call(overrides: Partial<CallForApproval> = {}): CallForApproval {
  return { tool: 'book_flight', args: { price: 640 }, effect: 'unsafe', confidence: undefined, untrustedArguments: [], ...overrides };
}

describe('approval rules', () => {
  it('asks for amounts over a threshold, saying by how much', () => {
    const rule = approvals.amountOver(500, { field: 'price' });
    assert.equal(rule.when(call(), ctx), 'over $500');
    assert.equal(rule.when(call({ args: { price: 455 } }), ctx), false);
    assert.equal(rule.when(call({ args: {} }), ctx), false);
    assert.equal(approvals.amountOver(100, { amount: (args) => Number(args['cents']) / 100, currency: '€' }).when(call({ args: { cents: 15000 } }), ctx), 'over €100');
  });

  it('asks when the model is unsure, or did not say', () => {
    const rule = approvals.lowConfidence(0.7);
    assert.equal(rule.asksConfidence, true);
    assert.equal(rule.when(call({ confidence: 0.55 }), ctx), 'the model is only 55% sure (below 70%)');
    assert.equal(rule.when(call({ confidence: 0.9 }), ctx), false);
    assert.equal(rule.when(call(), ctx), 'the model did not say how sure it is');
  });

  it('asks for irreversible tools and for arguments from untrusted content', () => {
    assert.equal(approvals.irreversible().when(call(), ctx), 'book_flight cannot be undone');
    assert.equal(approvals.irreversible().when(call({ effect: 'none' }), ctx), false);
    assert.equal(approvals.untrustedArguments().when(call({ untrustedArguments: ['recipient', 'url'] }), ctx), 'recipient, url came from untrusted content');
    assert.equal(approvals.untrustedArguments().when(call(), ctx), false);
  });

  it('joins the reasons of every rule that asks, the tool\'s first, and takes the tool\'s deadline', () => {
    const tool = toPolicy({ rules: [approvals.amountOver(500, { field: 'price' })], timeoutMs: 60_000, onTimeout: { escalateTo: 'finance' } }, 't');
    const agent = toPolicy([approvals.irreversible(), approvals.always('ask always')], 'a');
    assert.deepEqual(needsApproval(tool, agent, call(), ctx), {
      reason: 'over $500; book_flight cannot be undone; ask always',
      deadlineMs: 60_000,
      onExpiry: 'escalate',
      escalateTo: 'finance',
    });
    assert.equal(needsApproval(toPolicy(undefined, 't'), toPolicy(undefined, 'a'), call(), ctx), undefined);
  });

  it('refuses a rule without a when function, naming where it is', () => {
    assert.throws(() => toPolicy({ rules: [{} as never] }, 'defineTool("pay")'), /defineTool\("pay"\): every approval rule needs a when\(call, ctx\) function/);
  });
});

describe('approvals in a run', () => {
  const tempDir = useTempDirs();
  let store: SqliteStore;
  beforeEach(() => (store = openSqliteStore(join(tempDir('keel-approvals-'), 'keel.db'))));
  afterEach(() => store.close());

  const booked: unknown[] = [];
  beforeEach(() => booked.splice(0));
  const requests: ModelRequest[] = [];
  beforeEach(() => requests.splice(0));

  function travel(options: { timeoutMs?: number; escalate?: boolean; confidence?: boolean } = {}): Agent {
    const book = defineTool({
      name: 'book_flight',
      description: 'Book a flight.',
      args: z.object({ flightId: z.string(), price: z.number() }),
      effect: 'unsafe',
      approval: {
        rules: [options.confidence ? approvals.lowConfidence(0.8) : approvals.amountOver(500, { field: 'price' })],
        ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs, onTimeout: options.escalate ? { escalateTo: 'finance' } : 'reject' }),
      },
      describe: ({ price }) => `$${price} NYC→LIS`,
      run: (args) => {
        booked.push(args);
        return `booked ${args.flightId}`;
      },
    });
    const inner = scriptedModel(({ turn, toolResults }) =>
      turn === 0
        ? { text: 'Booking.', toolCalls: [{ name: 'book_flight', args: { flightId: 'KL642', price: 640, ...(options.confidence ? { confidence: 0.6 } : {}) } }] }
        : `Result: ${toolResults[0]?.content ?? ''}`,
    );
    const model = { ...inner, generate: (request: ModelRequest, o?: Parameters<typeof inner.generate>[1]) => (requests.push(request), inner.generate(request, o)) };
    return defineAgent({ name: 'travel', instructions: 'Book.', model, tools: [book] });
  }

  async function pausedRun(agent: Agent, events: RunEvent[] = []): Promise<{ runId: string; approval: ApprovalRecord }> {
    const stopped = await (await new Runtime({ store }).start(agent, { input: 'go', onEvent: (event) => events.push(event) })).done;
    assert.equal(stopped.state, 'waiting_approval');
    const [approval] = await store.listApprovals({ status: 'pending', runId: stopped.id });
    assert.ok(approval);
    return { runId: stopped.id, approval };
  }

  const resume = async (agent: Agent, runId: string) => (await new Runtime({ store }).resume(agent, runId)).done;
  const person = { by: 'ada', via: 'cli' as const, at: 1_000 };

  it('pauses durably before the call, with what a person needs to decide, and calls nothing', async () => {
    const events: RunEvent[] = [];
    const { approval } = await pausedRun(travel(), events);
    assert.equal(booked.length, 0);
    assert.equal(approval.kind, 'policy');
    assert.equal(approval.agent, 'travel');
    assert.equal(approval.tool, 'book_flight');
    assert.equal(approval.summary, '$640 NYC→LIS');
    assert.equal(approval.reason, 'over $500');
    assert.deepEqual(approval.args, { flightId: 'KL642', price: 640 });
    assert.equal(approval.argsHash, argsHash({ flightId: 'KL642', price: 640 }));
    assert.ok(events.some((event) => event.type === 'approval_requested' && event.approval.id === approval.id));
  });

  it('runs the tool with exactly the approved arguments once approved, in a later process', async () => {
    const agent = travel();
    const { runId, approval } = await pausedRun(agent);
    await decide(store, approval.id, { action: 'approve', argsHash: approval.argsHash }, person);
    const finished = await resume(agent, runId);
    assert.equal(finished.state, 'completed');
    assert.deepEqual(booked, [{ flightId: 'KL642', price: 640 }]);
    const decided = await store.getApproval(approval.id);
    assert.deepEqual([decided?.status, decided?.decidedBy, decided?.decidedVia, decided?.decidedAt], ['decided', 'ada', 'cli', 1_000]);
  });

  it('runs edited arguments when a person changes them, and tells the model', async () => {
    const agent = travel();
    const { runId, approval } = await pausedRun(agent);
    const edited = { flightId: 'UA66', price: 598 };
    await decide(store, approval.id, { action: 'approve', argsHash: argsHash(edited), args: edited }, person);
    await resume(agent, runId);
    assert.deepEqual(booked, [edited]);
    const told = requests.at(-1)?.messages.at(-1) as ToolMessage;
    assert.match(unfence(told.content), /^A person changed the arguments to \{"flightId":"UA66","price":598\} before approving this call\. booked UA66$/);
  });

  it('refuses a decision whose hash does not match the arguments it approves', async () => {
    const { approval } = await pausedRun(travel());
    await assert.rejects(decide(store, approval.id, { action: 'approve', argsHash: argsHash({ flightId: 'KL642', price: 1 }) }, person), DecisionError);
    await assert.rejects(
      decide(store, approval.id, { action: 'approve', argsHash: approval.argsHash, args: { flightId: 'XX1', price: 1 } }, person),
      /the arguments given hash to/,
    );
    assert.equal((await store.getApproval(approval.id))?.status, 'pending', 'nothing was decided');
  });

  it('gives the model the reason when a person rejects the call', async () => {
    const agent = travel();
    const { runId, approval } = await pausedRun(agent);
    await decide(store, approval.id, { action: 'reject', reason: 'Too expensive.' }, person);
    const finished = await resume(agent, runId);
    assert.equal(finished.state, 'completed');
    assert.equal(booked.length, 0);
    assert.equal(finished.result, 'Result: Error: ada rejected this call: Too expensive.');
    await assert.rejects(decide(store, approval.id, { action: 'approve', argsHash: approval.argsHash }, person), /already decided by ada/);
  });

  it('rejects a call whose deadline passed, or escalates it once first when told to', async () => {
    const rejecting = travel({ timeoutMs: 60_000 });
    const first = await pausedRun(rejecting);
    assert.ok(first.approval.deadline !== null && first.approval.deadline - first.approval.requestedAt === 60_000);
    assert.deepEqual(await applyDeadlines(store, first.approval.requestedAt + 59_000), []);
    const [expired] = await applyDeadlines(store, first.approval.requestedAt + 61_000);
    assert.equal(expired?.status, 'expired');
    const finished = await resume(rejecting, first.runId);
    assert.match(finished.result ?? '', /No one approved this call in time: No one decided before the deadline/);

    const escalating = travel({ timeoutMs: 60_000, escalate: true });
    const second = await pausedRun(escalating);
    const [escalated] = await applyDeadlines(store, second.approval.requestedAt + 61_000);
    assert.equal(escalated?.status, 'pending');
    assert.equal(escalated?.escalateTo, 'finance');
    assert.equal(escalated?.deadline, second.approval.requestedAt + 61_000 + 60_000);
    const [later] = await applyDeadlines(store, second.approval.requestedAt + 122_000);
    assert.equal(later?.status, 'expired');
  });

  it('asks the model how sure it is when a rule reads confidence, and keeps it out of the arguments', async () => {
    const agent = travel({ confidence: true });
    const { approval } = await pausedRun(agent);
    assert.equal(approval.reason, 'the model is only 60% sure (below 80%)');
    assert.deepEqual(approval.args, { flightId: 'KL642', price: 640 });
    const offered = requests[0]?.tools[0]?.parameters as { properties: Record<string, unknown>; required: string[] };
    assert.ok('confidence' in offered.properties);
    assert.ok(offered.required.includes('confidence'));
  });

  it('counts requests, decisions and how long people took', async () => {
    const agent = travel();
    const runs = [await pausedRun(agent), await pausedRun(agent), await pausedRun(agent), await pausedRun(agent)];
    const [a, b, c] = runs;
    await decide(store, a!.approval.id, { action: 'approve', argsHash: a!.approval.argsHash }, { ...person, at: a!.approval.requestedAt + 1_000 });
    const edited = { flightId: 'UA66', price: 598 };
    await decide(store, b!.approval.id, { action: 'approve', argsHash: argsHash(edited), args: edited }, { ...person, at: b!.approval.requestedAt + 3_000 });
    await decide(store, c!.approval.id, { action: 'reject', reason: 'no' }, { ...person, at: c!.approval.requestedAt + 9_000 });

    const stats = approvalStats(await store.listApprovals());
    assert.deepEqual(
      { ...stats.overall },
      { requested: 4, pending: 1, approved: 2, rejected: 1, edited: 1, expired: 0, escalated: 0, approvalRate: 2 / 3, latencyP50Ms: 3_000, latencyP95Ms: 9_000 },
    );
    assert.deepEqual(Object.keys(stats.byTool), ['book_flight']);
    assert.deepEqual(Object.keys(stats.byAgent), ['travel']);
  });
});
