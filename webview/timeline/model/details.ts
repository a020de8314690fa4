import type { AttributeValue, FlagKind, SpanKind, TraceSpan } from '../../../src/protocol/trace';
import { MCP_SERVER_ATTRIBUTE } from '../../../src/shared/spanAttributes';
import { formatDuration, formatTokens, formatUsd } from '../../../src/shared/format';
import { COST_USD, INPUT_TOKENS, OUTPUT_TOKENS, formatAttribute, prettyText, spanCost, spanDuration, spanTokens } from './spanFacts';

/** The details pane of the selected span: facts, flags, content (messages, arguments, results, errors), the rest. */

export interface Fact {
  readonly label: string;
  readonly value: string;
}

export interface DetailSection {
  readonly label: string;
  readonly text: string;
  readonly tone: 'plain' | 'error';
}

export interface DetailEvent {
  readonly name: string;
  /** When, relative to the span's start: `+12 ms`. */
  readonly at: string;
  readonly attributes: readonly Fact[];
}

export interface SpanDetails {
  readonly spanId: string;
  readonly title: string;
  readonly kind: SpanKind;
  readonly status: TraceSpan['status'];
  readonly open: boolean;
  readonly facts: readonly Fact[];
  readonly flags: readonly { readonly kind: FlagKind; readonly severity: 'warning' | 'error'; readonly message: string }[];
  readonly sections: readonly DetailSection[];
  /** Attributes shown neither as facts nor as sections, by key. */
  readonly attributes: readonly Fact[];
  readonly events: readonly DetailEvent[];
  /** Said instead of content when the trace was built without it, for spans that would have some. */
  readonly note: string | null;
}

/** Kinds of spans that carry content when it is recorded. */
const WITH_CONTENT: readonly SpanKind[] = ['agent', 'model', 'tool', 'approval', 'memory', 'guardrail'];

export const CONTENT_NOT_RECORDED =
  'Content was not recorded in this trace: prompts, completions, tool arguments and results are left out. ' +
  'Turn it on with the setting keel.trace.captureContent, or trace: { captureContent: true } in keel.config.ts ' +
  '(KEEL_CAPTURE_CONTENT=1 for the CLI), then reload the window. Redaction still applies.';

/** Attributes holding content, shown as their own sections, in this order. */
const CONTENT: readonly { readonly key: string; readonly label: string }[] = [
  { key: 'gen_ai.system_instructions', label: 'System instructions' },
  { key: 'gen_ai.input.messages', label: 'Input messages' },
  { key: 'gen_ai.output.messages', label: 'Output messages' },
  { key: 'gen_ai.tool.call.arguments', label: 'Arguments' },
  { key: 'gen_ai.tool.call.result', label: 'Result' },
  { key: 'gen_ai.tool.definitions', label: 'Tools offered' },
  { key: 'keel.approval.reason', label: 'Why a decision is needed' },
  { key: 'keel.approval.args', label: 'Arguments to decide on' },
  { key: 'keel.approval.decision_reason', label: 'Reason given' },
  { key: 'keel.approval.result', label: 'Result recorded' },
  { key: 'keel.guardrail.reason', label: 'Why' },
  { key: 'keel.guardrail.excerpts', label: 'What the screen saw' },
];

/** Attributes shown as facts at the top, in this order. */
const FACTS: readonly { readonly key: string; readonly label: string }[] = [
  { key: 'gen_ai.agent.name', label: 'Agent' },
  { key: 'gen_ai.provider.name', label: 'Provider' },
  { key: 'gen_ai.request.model', label: 'Model' },
  { key: 'gen_ai.response.model', label: 'Answered by' },
  { key: 'gen_ai.response.finish_reasons', label: 'Finish reasons' },
  { key: 'gen_ai.tool.name', label: 'Tool' },
  { key: MCP_SERVER_ATTRIBUTE, label: 'MCP server' },
  { key: 'gen_ai.tool.call.id', label: 'Tool call' },
  { key: 'keel.guardrail.name', label: 'Guardrail' },
  { key: 'keel.guardrail.decision', label: 'Decision' },
  { key: 'keel.guardrail.channel', label: 'Channel' },
];

const ERROR_TYPE = 'error.type';
/** Longer attribute values than this, or on several lines, get a section of their own. */
const LONG_VALUE = 120;

/** `contentRecorded`: whether the trace was built with content; when not, content-bearing spans get a note saying how to turn it on. */
export function spanDetails(span: TraceSpan, traceStart: number, now: number, contentRecorded = true): SpanDetails {
  const shown = new Set<string>([INPUT_TOKENS, OUTPUT_TOKENS, COST_USD, ERROR_TYPE]);
  const open = span.endTime === null;
  const facts: Fact[] = [
    { label: 'Kind', value: span.kind },
    { label: 'Status', value: open ? 'running' : span.status },
    { label: 'Duration', value: `${formatDuration(spanDuration(span, now))}${open ? ' so far' : ''}` },
    { label: 'Starts', value: `+${formatDuration(span.startTime - traceStart)}` },
  ];
  const tokens = spanTokens(span);
  if (tokens) facts.push({ label: 'Tokens', value: `${formatTokens(tokens.input)} in · ${formatTokens(tokens.output)} out` });
  const cost = spanCost(span);
  if (cost !== null) facts.push({ label: 'Cost', value: formatUsd(cost) });
  for (const { key, label } of FACTS) {
    const value = span.attributes[key];
    if (value === undefined) continue;
    shown.add(key);
    facts.push({ label, value: Array.isArray(value) ? value.join(', ') : formatAttribute(value) });
  }
  facts.push({ label: 'Span', value: span.spanId });

  const sections: DetailSection[] = [];
  const error = errorText(span);
  if (error) sections.push({ label: 'Error', text: error, tone: 'error' });
  for (const { key, label } of CONTENT) {
    const value = span.attributes[key];
    if (value === undefined) continue;
    shown.add(key);
    sections.push({ label, text: contentText(value), tone: 'plain' });
  }

  const attributes: Fact[] = [];
  for (const key of Object.keys(span.attributes).sort()) {
    if (shown.has(key)) continue;
    const value = span.attributes[key] as AttributeValue;
    const text = formatAttribute(value);
    if (text.length > LONG_VALUE || text.includes('\n')) sections.push({ label: key, text: contentText(value), tone: 'plain' });
    else attributes.push({ label: key, value: text });
  }

  return {
    spanId: span.spanId,
    title: span.name,
    kind: span.kind,
    status: span.status,
    open,
    facts,
    flags: span.flags.map(({ kind, severity, message }) => ({ kind, severity, message })),
    sections,
    attributes,
    events: span.events.map((event) => ({
      name: event.name,
      at: `+${formatDuration(Math.max(0, event.time - span.startTime))}`,
      attributes: Object.keys(event.attributes)
        .sort()
        .map((key) => ({ label: key, value: formatAttribute(event.attributes[key] as AttributeValue) })),
    })),
    note: !contentRecorded && WITH_CONTENT.includes(span.kind) ? CONTENT_NOT_RECORDED : null,
  };
}

/** The span's status message, its `error.type`, and any `exception` events, as one text. */
function errorText(span: TraceSpan): string | null {
  const parts: string[] = [];
  if (span.status === 'error') parts.push(span.statusMessage ?? 'failed');
  const type = span.attributes[ERROR_TYPE];
  if (type !== undefined) parts.push(`${ERROR_TYPE}: ${formatAttribute(type)}`);
  for (const event of span.events) {
    if (event.name !== 'exception') continue;
    const type = event.attributes['exception.type'];
    const message = event.attributes['exception.message'];
    const stack = event.attributes['exception.stacktrace'];
    const head = [type, message].filter((part) => part !== undefined).map((part) => formatAttribute(part as AttributeValue));
    if (head.length > 0) parts.push(head.join(': '));
    if (stack !== undefined) parts.push(formatAttribute(stack));
  }
  return parts.length === 0 ? null : parts.join('\n');
}

function contentText(value: AttributeValue): string {
  if (typeof value === 'string') return prettyText(value);
  if (Array.isArray(value)) return value.map((item) => prettyText(item)).join('\n');
  return String(value);
}
