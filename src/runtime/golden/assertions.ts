import { formatUsd } from '../../shared/format';
import { canonicalJson } from '../hash/canonicalJson';
import type { RunState } from '../store/checkpointStore';
import type { FlagKind } from '../trace/span';
import { describePattern, toRegExp, type ArgMatcher, type Expectations, type IntentRule } from './goldenFile';

/**
 * The assertions of a golden case, checked against the facts of its run. Pure: the facts come in,
 * the results go out. The judge's assertions (a rubric, an intent classified by the judge) are
 * made elsewhere, since they call a model.
 */

/** What a run showed, as the assertions read it. */
export interface RunFacts {
  readonly state: RunState;
  readonly answer: string | null;
  readonly error: string | null;
  readonly toolCalls: readonly ToolCallFact[];
  /** Journal steps: model calls and tool calls. */
  readonly steps: number;
  readonly tokens: number;
  readonly costUsd: number;
  /** False when a model without a known price ran: the cost is then a lower bound. */
  readonly costKnown: boolean;
  readonly flags: readonly { readonly kind: FlagKind; readonly message: string }[];
  /** Approvals the run asked for, in order. */
  readonly approvals: readonly { readonly tool: string; readonly decision: string }[];
}

export interface ToolCallFact {
  readonly name: string;
  /** The arguments parsed from the model's JSON, or the raw text when it was not JSON. */
  readonly args: unknown;
  readonly ok: boolean | null;
}

export type AssertionKind =
  | 'state'
  | 'answer.contains'
  | 'answer.matches'
  | 'answer.notContains'
  | 'intent'
  | 'tools.called'
  | 'tools.notCalled'
  | 'tools.order'
  | 'tools.args'
  | 'maxSteps'
  | 'maxTokens'
  | 'maxCostUsd'
  | 'noFlags'
  | 'approvals'
  | 'judge';

export interface AssertionResult {
  readonly kind: AssertionKind;
  readonly passed: boolean;
  /** One sentence: what was expected and, when it failed, what happened instead. */
  readonly message: string;
  /** For a diff view, when the expectation has a natural text form. */
  readonly expected?: string;
  readonly actual?: string;
}

/** Checks every assertion of `expect` that needs no model. `toolNames` are the agent's tools, to catch misspelt names. */
export function checkAssertions(expect: Expectations, facts: RunFacts, intents: readonly IntentRule[], toolNames: ReadonlySet<string>): AssertionResult[] {
  const results: AssertionResult[] = [stateAssertion(expect.state, facts)];
  const answer = facts.answer ?? '';
  if (expect.answer) {
    for (const text of expect.answer.contains) {
      const passed = answer.toLowerCase().includes(text.toLowerCase());
      results.push({
        kind: 'answer.contains',
        passed,
        message: passed ? `The answer contains ${JSON.stringify(text)}.` : `The answer does not contain ${JSON.stringify(text)}.`,
        expected: `…${text}…`,
        actual: answer,
      });
    }
    for (const pattern of expect.answer.matches) {
      const passed = toRegExp(pattern).test(answer);
      results.push({
        kind: 'answer.matches',
        passed,
        message: passed ? `The answer matches ${describePattern(pattern)}.` : `The answer does not match ${describePattern(pattern)}.`,
        expected: describePattern(pattern),
        actual: answer,
      });
    }
    for (const text of expect.answer.notContains) {
      const passed = !answer.toLowerCase().includes(text.toLowerCase());
      results.push({
        kind: 'answer.notContains',
        passed,
        message: passed ? `The answer does not contain ${JSON.stringify(text)}.` : `The answer contains ${JSON.stringify(text)}, which it must not.`,
        ...(passed ? {} : { expected: answer.replace(new RegExp(escapeRegExp(text), 'gi'), ''), actual: answer }),
      });
    }
  }
  if (expect.intent && expect.intent.by === 'rules') {
    const intent = classifyIntent(intents, facts);
    results.push(intentAssertion(expect.intent.in, intent, 'rules'));
  }
  if (expect.tools) results.push(...toolAssertions(expect.tools, facts, toolNames));
  if (expect.maxSteps !== undefined) results.push(limit('maxSteps', 'steps', facts.steps, expect.maxSteps, String));
  if (expect.maxTokens !== undefined) results.push(limit('maxTokens', 'tokens', facts.tokens, expect.maxTokens, String));
  if (expect.maxCostUsd !== undefined) {
    const result = limit('maxCostUsd', 'cost', facts.costUsd, expect.maxCostUsd, formatUsd);
    results.push(
      facts.costKnown
        ? result
        : { ...result, passed: false, message: `The cost is unknown (${formatUsd(facts.costUsd)} or more): a model without a known price ran; add its price to check a cost.` },
    );
  }
  if (expect.noFlags) results.push(flagAssertion(expect.noFlags.except, facts));
  if (expect.approvals !== undefined) results.push(approvalAssertion(expect.approvals, facts));
  return results;
}

function stateAssertion(expected: RunState, facts: RunFacts): AssertionResult {
  const passed = facts.state === expected;
  const why = facts.state === 'completed' ? '' : `: ${facts.error ?? 'no reason given'}`;
  return {
    kind: 'state',
    passed,
    message: passed ? `The run ended ${expected}.` : `The run ended ${facts.state}${why}, not ${expected}.`,
    expected,
    actual: facts.state,
  };
}

/**
 * The intent a run shows by the file's rules: the first rule, in the file's order, whose every
 * condition holds (answer contains one of its words, matches one of its patterns, called all its
 * tools successfully). `unknown` when none holds.
 */
export function classifyIntent(intents: readonly IntentRule[], facts: RunFacts): string {
  const answer = (facts.answer ?? '').toLowerCase();
  const called = new Set(facts.toolCalls.filter((call) => call.ok !== false).map((call) => call.name));
  for (const rule of intents) {
    const contains = rule.answerContains.length === 0 || rule.answerContains.some((text) => answer.includes(text.toLowerCase()));
    const matches = rule.answerMatches.length === 0 || rule.answerMatches.some((pattern) => toRegExp(pattern).test(facts.answer ?? ''));
    const tools = rule.toolsCalled.every((tool) => called.has(tool));
    const hasCondition = rule.answerContains.length + rule.answerMatches.length + rule.toolsCalled.length > 0;
    if (hasCondition && contains && matches && tools) return rule.name;
  }
  return 'unknown';
}

export function intentAssertion(expected: readonly string[], actual: string, by: 'rules' | 'judge'): AssertionResult {
  const passed = expected.includes(actual);
  const set = expected.length === 1 ? expected[0] : `one of ${expected.join(', ')}`;
  return {
    kind: 'intent',
    passed,
    message: passed ? `The intent is ${actual} (by ${by}).` : `The intent is ${actual} (by ${by}), not ${set}.`,
    expected: expected.join(' | '),
    actual,
  };
}

function toolAssertions(tools: NonNullable<Expectations['tools']>, facts: RunFacts, toolNames: ReadonlySet<string>): AssertionResult[] {
  const results: AssertionResult[] = [];
  const names = facts.toolCalls.map((call) => call.name);
  const sequence = names.join(' → ') || '(no tool calls)';
  const unknown = (name: string): string => (toolNames.size > 0 && !toolNames.has(name) ? ` (the agent has no tool named ${name})` : '');
  for (const name of tools.called) {
    const passed = names.includes(name);
    results.push({
      kind: 'tools.called',
      passed,
      message: passed ? `${name} was called.` : `${name} was not called${unknown(name)}; the calls were ${sequence}.`,
      ...(passed ? {} : { expected: name, actual: sequence }),
    });
  }
  for (const name of tools.notCalled) {
    const count = names.filter((called) => called === name).length;
    results.push({
      kind: 'tools.notCalled',
      passed: count === 0,
      message: count === 0 ? `${name} was not called${unknown(name)}.` : `${name} was called ${count === 1 ? 'once' : `${count} times`}, and must not be.`,
    });
  }
  if (tools.order.length > 0) {
    let next = 0;
    for (const name of names) if (name === tools.order[next]) next += 1;
    const passed = next === tools.order.length;
    const expected = tools.order.join(' → ');
    results.push({
      kind: 'tools.order',
      passed,
      message: passed ? `The tools were called in the order ${expected}.` : `The tools were not called in the order ${expected}: the calls were ${sequence}.`,
      expected,
      actual: sequence,
    });
  }
  for (const { tool, args } of tools.args) {
    const calls = facts.toolCalls.filter((call) => call.name === tool);
    const mismatches = calls.map((call) => matchArgs(args, call.args, ''));
    const passed = mismatches.some((problems) => problems.length === 0);
    const expected = describeMatcher(args);
    results.push({
      kind: 'tools.args',
      passed,
      message: passed
        ? `A call of ${tool} had matching arguments.`
        : calls.length === 0
          ? `${tool} was never called${unknown(tool)}, so no arguments matched ${expected}.`
          : `No call of ${tool} had matching arguments: ${mismatches.map((problems) => problems.join('; ')).join(' | ')}.`,
      expected,
      actual: calls.length === 0 ? '(no call)' : calls.map((call) => canonicalJson(call.args)).join('\n'),
    });
  }
  return results;
}

/** Why `value` does not match; none when it does. `path` names the place for messages (`.price`). */
export function matchArgs(matcher: ArgMatcher, value: unknown, path: string): string[] {
  const at = path === '' ? 'the arguments' : path.slice(1);
  switch (matcher.kind) {
    case 'equals':
      return canonicalJson(value) === canonicalJson(matcher.value) ? [] : [`${at} is ${show(value)}, not ${show(matcher.value)}`];
    case 'matches':
      return typeof value === 'string' && toRegExp(matcher.pattern).test(value) ? [] : [`${at} is ${show(value)}, which does not match ${describePattern(matcher.pattern)}`];
    case 'range': {
      const inRange = typeof value === 'number' && (matcher.min === undefined || value >= matcher.min) && (matcher.max === undefined || value <= matcher.max);
      return inRange ? [] : [`${at} is ${show(value)}, not ${describeRange(matcher.min, matcher.max)}`];
    }
    case 'oneOf':
      return matcher.values.some((candidate) => canonicalJson(candidate) === canonicalJson(value)) ? [] : [`${at} is ${show(value)}, not one of ${matcher.values.map(show).join(', ')}`];
    case 'contains': {
      const found =
        typeof value === 'string' && typeof matcher.value === 'string'
          ? value.toLowerCase().includes(matcher.value.toLowerCase())
          : Array.isArray(value) && value.some((item) => canonicalJson(item) === canonicalJson(matcher.value));
      return found ? [] : [`${at} is ${show(value)}, which does not contain ${show(matcher.value)}`];
    }
    case 'subset': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return [`${at} is ${show(value)}, not an object`];
      const record = value as Record<string, unknown>;
      return Object.entries(matcher.fields).flatMap(([key, inner]) =>
        Object.hasOwn(record, key) ? matchArgs(inner, record[key], `${path}.${key}`) : [`${path === '' ? '' : `${path.slice(1)}.`}${key} is missing`],
      );
    }
    case 'list': {
      if (!Array.isArray(value)) return [`${at} is ${show(value)}, not a list`];
      if (value.length !== matcher.items.length) return [`${at} has ${value.length} items, not ${matcher.items.length}`];
      return matcher.items.flatMap((item, index) => matchArgs(item, value[index], `${path}[${index}]`));
    }
    case 'all':
      return matcher.matchers.flatMap((inner) => matchArgs(inner, value, path));
  }
}

/** A matcher in the golden file's own terms, for messages. */
export function describeMatcher(matcher: ArgMatcher): string {
  switch (matcher.kind) {
    case 'equals':
      return show(matcher.value);
    case 'matches':
      return describePattern(matcher.pattern);
    case 'range':
      return describeRange(matcher.min, matcher.max);
    case 'oneOf':
      return `one of ${matcher.values.map(show).join(', ')}`;
    case 'contains':
      return `containing ${show(matcher.value)}`;
    case 'subset':
      return `{ ${Object.entries(matcher.fields)
        .map(([key, inner]) => `${key}: ${describeMatcher(inner)}`)
        .join(', ')} }`;
    case 'list':
      return `[${matcher.items.map(describeMatcher).join(', ')}]`;
    case 'all':
      return matcher.matchers.map(describeMatcher).join(' and ');
  }
}

function describeRange(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return `from ${min} to ${max}`;
  return min !== undefined ? `at least ${min}` : `at most ${max ?? ''}`;
}

function limit(kind: 'maxSteps' | 'maxTokens' | 'maxCostUsd', what: string, actual: number, max: number, format: (n: number) => string): AssertionResult {
  const passed = actual <= max;
  const used = what === 'cost' ? `The run cost ${format(actual)}` : `The run used ${format(actual)} ${what}`;
  return {
    kind,
    passed,
    message: passed ? `${used}, at most ${format(max)}.` : `${used}, more than ${format(max)}.`,
    expected: `at most ${format(max)}`,
    actual: format(actual),
  };
}

function flagAssertion(except: readonly FlagKind[], facts: RunFacts): AssertionResult {
  const raised = facts.flags.filter((flag) => !except.includes(flag.kind));
  return {
    kind: 'noFlags',
    passed: raised.length === 0,
    message:
      raised.length === 0
        ? 'The detectors raised no flags.'
        : `The detectors raised ${raised.length === 1 ? 'a flag' : `${raised.length} flags`}: ${raised.map((flag) => `${flag.kind} (${flag.message})`).join('; ')}`,
    ...(raised.length === 0 ? {} : { expected: '(no flags)', actual: raised.map((flag) => `${flag.kind}: ${flag.message}`).join('\n') }),
  };
}

function approvalAssertion(expected: boolean | readonly string[], facts: RunFacts): AssertionResult {
  const asked = facts.approvals.map((approval) => approval.tool);
  const shown = asked.length === 0 ? 'none' : facts.approvals.map((approval) => `${approval.tool} (${approval.decision})`).join(', ');
  if (typeof expected === 'boolean') {
    const passed = expected === asked.length > 0;
    return {
      kind: 'approvals',
      passed,
      message: passed
        ? expected
          ? `The run asked for approval: ${shown}.`
          : 'The run asked for no approval.'
        : expected
          ? 'The run asked for no approval, but one was expected.'
          : `The run asked for approval (${shown}), but none was expected.`,
      expected: expected ? '(some approval)' : '(no approval)',
      actual: shown,
    };
  }
  const passed = asked.join('\n') === expected.join('\n');
  return {
    kind: 'approvals',
    passed,
    message: passed ? `The run asked for approval of ${expected.join(', ') || 'nothing'}.` : `The run asked for approval of ${shown}, not ${expected.join(', ') || 'nothing'}.`,
    expected: expected.join('\n'),
    actual: asked.join('\n'),
  };
}

function show(value: unknown): string {
  return value === undefined ? 'missing' : JSON.stringify(value);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
