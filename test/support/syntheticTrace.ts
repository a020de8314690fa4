import type { AttributeValue, Flag, FlagKind, SpanKind, TraceSpan } from '../../src/runtime/trace/span';
import { seededRandom } from './seededRandom';

/**
 * Made-up traces of any size for the timeline's tests and benchmark, shaped like a long agent run:
 * a root agent span; model calls each followed by tool calls; sub-agents nested up to three deep;
 * failed attempts under some tool calls; an approval now and then; flags on a few spans. The same
 * options always give the same trace.
 */

export interface SyntheticTraceOptions {
  readonly seed?: number;
  /** Milliseconds since the epoch of the root span's start. */
  readonly startTime?: number;
  /** Leave the last span and its ancestors open, as in a run that is still going. */
  readonly live?: boolean;
}

export const SYNTHETIC_TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
export const SYNTHETIC_START = 1_790_000_000_000;

interface Draft {
  spanId: string;
  parentSpanId: string | null;
  name: string;
  kind: SpanKind;
  startTime: number;
  endTime: number | null;
  status: TraceSpan['status'];
  statusMessage: string | null;
  attributes: Record<string, AttributeValue>;
  events: TraceSpan['events'];
  flags: Flag[];
}

const TOOLS = ['search_flights', 'book_flight', 'lookup_customer', 'send_email', 'fetch_page', 'convert_currency'];
const FLAG_KINDS: readonly FlagKind[] = ['repeated_call', 'ignored_tool_error', 'unsupported_entity', 'tool_output_schema'];

export function syntheticTrace(count: number, options: SyntheticTraceOptions = {}): TraceSpan[] {
  const random = seededRandom(options.seed ?? 1);
  const between = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
  const drafts: Draft[] = [];
  let clock = options.startTime ?? SYNTHETIC_START;
  let nextId = 1;
  const add = (kind: SpanKind, name: string, parent: Draft | null, attributes: Record<string, AttributeValue>): Draft => {
    const draft: Draft = {
      spanId: (nextId++).toString(16).padStart(16, '0'),
      parentSpanId: parent?.spanId ?? null,
      name,
      kind,
      startTime: clock,
      endTime: null,
      status: 'ok',
      statusMessage: null,
      attributes: { 'gen_ai.conversation.id': 'run_synthetic', ...attributes },
      events: [],
      flags: [],
    };
    drafts.push(draft);
    return draft;
  };
  const full = () => drafts.length >= count;
  const finish = (draft: Draft, duration: number) => {
    clock += duration;
    draft.endTime = clock;
  };

  if (count <= 0) return [];
  const agents = [add('agent', 'invoke_agent travel', null, { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'travel' })];
  let turn = 0;
  while (!full()) {
    const agent = agents[agents.length - 1] as Draft;
    if (agents.length < 4 && random() < 0.02) {
      const name = `helper${agents.length}`;
      agents.push(add('agent', `invoke_agent ${name}`, agent, { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': name }));
      continue;
    }
    if (agents.length > 1 && random() < 0.06) {
      finish(agents.pop() as Draft, between(1, 5));
      continue;
    }
    turn += 1;
    const tool = TOOLS[turn % TOOLS.length] as string;
    const inputTokens = between(200, 4000);
    const outputTokens = between(10, 400);
    const model = add('model', 'chat gpt-4o-mini', agent, {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
      'gen_ai.response.finish_reasons': ['tool_calls'],
      'gen_ai.usage.input_tokens': inputTokens,
      'gen_ai.usage.output_tokens': outputTokens,
      'keel.cost.usd': Number((inputTokens * 0.15e-6 + outputTokens * 0.6e-6).toFixed(6)),
      'keel.step.id': turn * 2,
      'gen_ai.input.messages': JSON.stringify([{ role: 'user', parts: [{ type: 'text', content: `Step ${turn}: find and book the cheapest option.` }] }]),
      'gen_ai.output.messages': JSON.stringify([
        { role: 'assistant', parts: [{ type: 'tool_call', id: `call_${turn}`, name: tool, arguments: { query: `q${turn}` } }] },
      ]),
    });
    finish(model, between(150, 1500));
    const calls = between(1, 2);
    for (let call = 0; call < calls && !full(); call++) {
      const span = add('tool', `execute_tool ${tool}`, agent, {
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': tool,
        'gen_ai.tool.call.id': `call_${turn}_${call}`,
        'gen_ai.tool.call.arguments': JSON.stringify({ query: `q${turn}`, page: call }),
        'keel.step.id': turn * 2 + 1,
        'keel.idempotency_key': `run_synthetic:${turn * 2 + 1}:${call}`,
      });
      if (random() < 0.04) {
        const attempts = between(1, 2);
        for (let attempt = 1; attempt <= attempts && !full(); attempt++) {
          const retry = add('retry', `execute_tool ${tool} attempt ${attempt}`, span, { 'error.type': 'timeout', 'keel.attempt': attempt });
          retry.status = 'error';
          retry.statusMessage = `${tool} timed out after 10 s`;
          finish(retry, between(20, 200));
          clock += between(50, 300);
        }
      }
      if (random() < 0.01) {
        span.status = 'error';
        span.statusMessage = `${tool} failed: upstream answered 503`;
        span.attributes['error.type'] = 'http_503';
      } else {
        span.attributes['gen_ai.tool.call.result'] = JSON.stringify({ ok: true, items: between(0, 9), cheapest: between(90, 900) });
      }
      finish(span, between(5, 400));
    }
    if (random() < 0.01 && !full()) {
      const approval = add('approval', `keel.approval ${tool}`, agent, { 'keel.approval.kind': 'policy', 'gen_ai.tool.name': tool });
      finish(approval, between(1000, 5000));
    }
  }
  while (agents.length > 0) finish(agents.pop() as Draft, 1);

  drafts.forEach((draft, index) => {
    if (index % 97 === 50 || index % 331 === 200) {
      const severity = index % 331 === 200 ? 'error' : 'warning';
      const kind = FLAG_KINDS[index % FLAG_KINDS.length] as FlagKind;
      draft.flags.push({ kind, severity, message: `${kind.replaceAll('_', ' ')} at span ${index}`, spanId: draft.spanId });
    }
  });
  if (options.live) {
    const last = drafts[drafts.length - 1] as Draft;
    for (let open: Draft | undefined = last; open; open = drafts.find((draft) => draft.spanId === open?.parentSpanId)) {
      open.endTime = null;
      open.status = 'unset';
    }
  }
  return drafts.map((draft) => ({ traceId: SYNTHETIC_TRACE_ID, ...draft }));
}

