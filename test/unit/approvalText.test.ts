import assert from 'node:assert/strict';
import {
  actionsFor,
  ACTION_LABELS,
  approvalMessage,
  approvalPick,
  approvalRow,
  argumentsText,
  decideCommand,
  distinctMessage,
  goingOnTitle,
  parseArguments,
  reviewContext,
  statsDocument,
  statusBarText,
  waitingMessage,
} from '../../src/extension/approvals/approvalText';
import { MAX_APPROVAL_TOASTS, announcementKey, planNotifications, type NotificationState } from '../../src/extension/approvals/notificationPlan';
import { argsHash } from '../../src/runtime/approval/decide';
import { approvalStats } from '../../src/runtime/approval/metrics';
import type { ApprovalRecord, StepRecord } from '../../src/runtime/store/checkpointStore';

const T0 = 1_790_000_000_000;
const RUN_ID = 'run_01m8ct03k4x4d7mxxd4b74';
const ARGS = { flightId: 'KL642', from: 'NYC', to: 'LIS', date: '2026-12-10', passenger: 'Ada Lovelace', price: 640 };

function approval(overrides: Partial<ApprovalRecord> = {}): ApprovalRecord {
  return {
    id: 'appr_01m8ct03k4x4d7mxxd4b74_4',
    runId: RUN_ID,
    seq: 4,
    kind: 'policy',
    agent: 'travel',
    tool: 'book_flight',
    args: ARGS,
    argsHash: argsHash(ARGS),
    summary: '$640 NYC→LIS',
    reason: 'over $600',
    requestedAt: T0,
    deadline: null,
    onExpiry: 'reject',
    escalateTo: null,
    escalatedAt: null,
    status: 'pending',
    decision: null,
    decidedBy: null,
    decidedVia: null,
    decidedAt: null,
    ...overrides,
  };
}

type Step = Pick<StepRecord, 'seq' | 'kind' | 'name' | 'status' | 'output' | 'error'>;

const STEPS: readonly Step[] = [
  {
    seq: 1,
    kind: 'model',
    name: 'keel.scripted:travel-script',
    status: 'completed',
    output: { message: { role: 'assistant', content: 'Searching flights NYC→LIS on 2026-12-10.', toolCalls: [] } },
    error: null,
  },
  {
    seq: 2,
    kind: 'tool',
    name: 'search_flights',
    status: 'completed',
    output: { content: '[{"id":"KL642","price":640},{"id":"UA66","price":598}]', value: [] },
    error: null,
  },
  {
    seq: 3,
    kind: 'model',
    name: 'keel.scripted:travel-script',
    status: 'completed',
    output: { message: { role: 'assistant', content: 'The earliest is KL642 at $640; booking it.', toolCalls: [] } },
    error: null,
  },
];

describe('how approvals read in the editor (src/extension/approvalText)', () => {
  it('words a notification as the person needs it: who wants to do what, and why', () => {
    assert.equal(approvalMessage(approval(), T0), 'Keel · travel wants to book_flight: $640 NYC→LIS (over $600)');
    assert.equal(approvalMessage(approval({ summary: '' }), T0), 'Keel · travel wants to book_flight (over $600)');
    assert.equal(
      approvalMessage(approval({ deadline: T0 + 5 * 60_000 }), T0 + 60_000),
      'Keel · travel wants to book_flight: $640 NYC→LIS (over $600) · decide within 4 min',
    );
    assert.equal(
      approvalMessage(approval({ escalateTo: 'ops', escalatedAt: T0 + 1000 }), T0),
      'Keel · travel wants to book_flight: $640 NYC→LIS (over $600) · escalated to ops',
    );
  });

  it("names the agent a sub-agent works for, in its notification and in its row under the parent's run", () => {
    const hotel = { ...approval({ agent: 'hotel', tool: 'charge', summary: '$420 for HOTEL-A', reason: 'over $300' }), under: [{ runId: 'run_trip', agent: 'trip' }] };
    assert.equal(approvalMessage(hotel, T0), 'Keel · hotel (sub-agent of trip) wants to charge: $420 for HOTEL-A (over $300)');
    assert.deepEqual(approvalRow(hotel), { label: 'hotel · charge: $420 for HOTEL-A', description: 'needs approval · over $300' });
  });

  it('words an unknown outcome as a question about what happened, with its own decisions', () => {
    const unknown = approval({ kind: 'unknown_outcome', reason: 'book_flight was running when its process stopped…' });
    assert.equal(approvalMessage(unknown, T0), "Keel · travel's book_flight ($640 NYC→LIS) was cut off when its process stopped: did it take effect?");
    assert.deepEqual(actionsFor('unknown_outcome').map((action) => ACTION_LABELS[action]), ['Retry', 'Mark Done…', 'Fail…', 'Review…']);
    assert.deepEqual(actionsFor('policy').map((action) => ACTION_LABELS[action]), ['Approve', 'Reject', 'Review…']);
    assert.equal(decideCommand(unknown), `keel resolve ${unknown.id} --retry | --done '<result as JSON>' | --fail '<reason>'`);
    assert.deepEqual(approvalRow(unknown), { label: 'book_flight: $640 NYC→LIS', description: 'outcome unknown' });
  });

  it('names the run when the same text is on screen already (VS Code would replace that notification)', () => {
    const text = approvalMessage(approval(), T0);
    assert.equal(distinctMessage(text, approval(), new Set()), text);
    assert.equal(distinctMessage(text, approval(), new Set([text])), `${text} · run …xd4b74`);
    const both = new Set([text, `${text} · run …xd4b74`]);
    assert.equal(distinctMessage(text, approval(), both), `${text} · ${approval().id}`);
  });

  it('counts waiting approvals for the summary and the status bar', () => {
    assert.equal(waitingMessage(5), 'Keel · 5 approvals are waiting');
    assert.equal(waitingMessage(1), 'Keel · 1 approval is waiting');
    assert.equal(statusBarText(0), undefined);
    assert.equal(statusBarText(1), '$(bell) 1 approval');
    assert.equal(statusBarText(2), '$(bell) 2 approvals');
  });

  it('names rows, picks, progress and CLI commands after the call', () => {
    assert.deepEqual(approvalRow(approval()), { label: 'book_flight: $640 NYC→LIS', description: 'needs approval · over $600' });
    assert.equal(decideCommand(approval()), `keel approve ${approval().id}    # or: keel reject ${approval().id} --reason '<why>'`);
    assert.deepEqual(approvalPick(approval(), T0 + 90_000), {
      label: 'travel wants to book_flight',
      description: '$640 NYC→LIS',
      detail: `over $600 · asked 1 min 30 s ago · ${RUN_ID}`,
    });
    assert.equal(goingOnTitle(approval(), 'approve'), 'Keel · travel goes on: book_flight approved');
  });

  it('reads edited arguments, and says why invalid JSON cannot be approved', () => {
    assert.deepEqual(parseArguments(argumentsText(ARGS)), { ok: true, args: ARGS });
    const broken = parseArguments('{ "flightId": "UA66", ');
    assert.equal(broken.ok, false);
    assert.match(broken.ok ? '' : broken.error, /^The arguments are not valid JSON \(.+\); nothing was decided\.$/);
    assert.equal(argumentsText(ARGS), `${JSON.stringify(ARGS, null, 2)}\n`);
  });

  it('puts the reason, the summary, the deadline and the run so far beside the arguments under review', () => {
    const text = reviewContext(
      approval({ deadline: T0 + 10 * 60_000, onExpiry: 'escalate', escalateTo: 'ops' }),
      { id: RUN_ID, state: 'waiting_approval', input: 'Book the earliest flight from NYC to LIS on 2026-12-10' },
      STEPS,
      T0 + 60_000,
    );
    assert.ok(text.startsWith('# travel wants to book_flight\n\n**$640 NYC→LIS**\n\n**Why:** over $600\n'), text);
    assert.ok(text.includes(`| Run | \`${RUN_ID}\` (waiting for a decision) |`), text);
    assert.ok(text.includes(`| Asked | ${new Date(T0).toISOString()} (1 min ago) |`), text);
    assert.ok(text.includes(`| Deadline | ${new Date(T0 + 600_000).toISOString()} (in 9 min); then escalated to ops |`), text);
    assert.ok(text.includes('**Input**\n\n> Book the earliest flight from NYC to LIS on 2026-12-10'), text);
    assert.ok(text.includes('**Last assistant message**\n\n> The earliest is KL642 at $640; booking it.'), text);
    assert.ok(text.includes('**Last tool results**\n\n- `search_flights` → [{"id":"KL642","price":640},{"id":"UA66","price":598}]'), text);
    assert.ok(text.includes(`## Arguments asked about\n\n\`\`\`json\n${JSON.stringify(ARGS, null, 2)}\n\`\`\``), text);
    assert.ok(text.includes('choose **Approve**'), text);
  });

  it('shows only steps before the approval, and says when the run cannot be read', () => {
    const later: Step = { seq: 9, kind: 'tool', name: 'later_tool', status: 'failed', output: null, error: 'boom' };
    const text = reviewContext(approval({ kind: 'unknown_outcome' }), undefined, [...STEPS, later], T0);
    assert.ok(text.startsWith('# Did book_flight take effect?'), text);
    assert.ok(!text.includes('later_tool'), text);
    assert.ok(text.includes('_The run could not be read._'), text);
    assert.ok(text.includes('**Retry** calls it again with the same idempotency key'), text);
    assert.ok(text.includes('| Deadline | none |'), text);
  });

  it('tabulates approval stats overall, per tool and per agent', () => {
    const decided = approval({
      id: 'a2',
      status: 'decided',
      decision: { action: 'approve', argsHash: 'x', args: {} },
      decidedAt: T0 + 2000,
      decidedBy: 'ada',
      decidedVia: 'vscode',
    });
    const text = statsDocument(approvalStats([approval(), decided]), T0);
    assert.ok(text.includes('| all | 2 | 1 | 0 | 1 | 0 | 0 | 1 | 100% | 2.0 s | 2.0 s |'), text);
    assert.ok(text.includes('## By tool'), text);
    assert.ok(text.includes('| `book_flight` | 2 |'), text);
    assert.ok(text.includes('| `travel` | 2 |'), text);
  });
});

describe('approval notifications do not flood the screen (src/extension/notificationPlan)', () => {
  const pending = (count: number) => Array.from({ length: count }, (_, index) => approval({ id: `a${index}`, requestedAt: T0 + index }));
  const nothingShown: NotificationState = { open: new Set(), announced: new Set(), summaryOpen: false };

  it('shows up to three one by one, and one summary for the rest that counts every pending approval', () => {
    const plan = planNotifications(pending(5).reverse(), nothingShown);
    assert.equal(MAX_APPROVAL_TOASTS, 3);
    assert.deepEqual(plan.show.map((shown) => shown.id), ['a0', 'a1', 'a2']);
    assert.deepEqual(plan.summarized.map((shown) => shown.id), ['a3', 'a4']);
    assert.equal(plan.summary, 5);
    assert.equal(waitingMessage(plan.summary ?? 0), 'Keel · 5 approvals are waiting');
  });

  it('announces each approval once, and counts only notifications still open and pending', () => {
    const all = pending(4);
    const state: NotificationState = { open: new Set(['a0', 'gone']), announced: new Set(['a0', 'a1']), summaryOpen: false };
    const plan = planNotifications(all, state);
    assert.deepEqual(plan.show.map((shown) => shown.id), ['a2', 'a3']);
    assert.equal(plan.summary, undefined);
  });

  it('does not show a second summary while one is open', () => {
    const state: NotificationState = { open: new Set(['a0', 'a1', 'a2']), announced: new Set(['a0', 'a1', 'a2']), summaryOpen: true };
    const plan = planNotifications(pending(4), state);
    assert.deepEqual(plan.show, []);
    assert.deepEqual(plan.summarized.map((shown) => shown.id), ['a3']);
    assert.equal(plan.summary, undefined);
  });

  it('announces an escalated approval again', () => {
    const escalated = approval({ id: 'a0', escalateTo: 'ops', escalatedAt: T0 + 5 });
    assert.equal(announcementKey(escalated), `a0@${T0 + 5}`);
    const plan = planNotifications([escalated], { open: new Set(), announced: new Set(['a0']), summaryOpen: false });
    assert.deepEqual(plan.show.map((shown) => shown.id), ['a0']);
  });

  it('shows nothing when nothing is pending', () => {
    assert.deepEqual(planNotifications([], nothingShown), { show: [], summarized: [], summary: undefined });
  });
});
