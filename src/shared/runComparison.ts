import { compactArgs, truncate } from './format';
import { RUN_STATE_LABELS, describeStep, type RunStateName } from './runText';

/**
 * Two runs side by side, step by step: their steps aligned (a step only one run took sits against
 * a gap), what differs in each pair (the model's answer, the tool called, its arguments, its
 * result, how it ended) and the first difference. It reads runs and steps by their shape alone,
 * so the runtime process, the CLI (`keel diff`) and the editor's webview all use this one rule.
 */

interface RunFacts {
  readonly id: string;
  readonly agent: string;
  readonly model: string;
  readonly input: string;
  readonly state: RunStateName;
  readonly createdAt: number;
  readonly result: string | null;
  readonly error: string | null;
}

interface StepFacts {
  readonly seq: number;
  readonly kind: 'model' | 'tool';
  readonly name: string;
  readonly status: 'in_progress' | 'completed' | 'failed';
  readonly input: unknown;
  readonly output: unknown;
  readonly error: string | null;
}

/** What is compared of a pair of steps, and of the runs' ends. */
export type ComparedAspect = 'step' | 'tool' | 'model output' | 'tool calls' | 'arguments' | 'result' | 'status' | 'input' | 'outcome';

export interface Difference {
  readonly aspect: ComparedAspect;
  /** Each run's side of it, as text; null where that run has no such step. */
  readonly a: string | null;
  readonly b: string | null;
}

/** One step of one run as the comparison shows it. */
export interface ComparedStep {
  readonly seq: number;
  readonly kind: 'model' | 'tool';
  readonly name: string;
  readonly status: 'in_progress' | 'completed' | 'failed';
  /** What it did, in one line. */
  readonly summary: string;
}

/** One row: a step of each run, or of one run against a gap; with what differs between them. */
export interface ComparisonRow {
  readonly a: ComparedStep | null;
  readonly b: ComparedStep | null;
  readonly differences: readonly Difference[];
}

/** A run as the comparison heads it: what it was given, how it ended, how many steps it took. */
export type ComparedRun = Omit<RunFacts, 'result' | 'error'> & { readonly stepCount: number };

export interface FirstDifference {
  /** The row it is in; null when it is in the runs' input or ends. */
  readonly row: number | null;
  readonly difference: Difference;
  /** The difference in one sentence. */
  readonly text: string;
}

export interface RunComparison {
  readonly a: ComparedRun;
  readonly b: ComparedRun;
  /** Differences of the runs as a whole: the input they were given and how they ended. */
  readonly input: Difference | null;
  readonly outcome: Difference | null;
  readonly rows: readonly ComparisonRow[];
  /** Null when the runs took the same steps with the same results and ended the same way. */
  readonly first: FirstDifference | null;
}

export function compareRuns(a: { readonly run: RunFacts; readonly steps: readonly StepFacts[] }, b: { readonly run: RunFacts; readonly steps: readonly StepFacts[] }): RunComparison {
  const stepsA = [...a.steps].sort((x, y) => x.seq - y.seq);
  const stepsB = [...b.steps].sort((x, y) => x.seq - y.seq);
  const rows = align(stepsA, stepsB).map(([x, y]): ComparisonRow => ({
    a: x ? compared(x) : null,
    b: y ? compared(y) : null,
    differences: x && y ? stepDifferences(x, y) : [{ aspect: 'step', a: x ? describeStep(x, 200) : null, b: y ? describeStep(y, 200) : null }],
  }));
  const input = a.run.input === b.run.input ? null : { aspect: 'input' as const, a: a.run.input, b: b.run.input };
  const endA = outcomeText(a.run);
  const endB = outcomeText(b.run);
  const outcome = endA === endB ? null : { aspect: 'outcome' as const, a: endA, b: endB };
  return { a: runOf(a.run, stepsA.length), b: runOf(b.run, stepsB.length), input, outcome, rows, first: firstDifference(input, rows, outcome) };
}

/** The first difference in one sentence, as the CLI prints it and the view heads it. */
export function differenceText(row: ComparisonRow | null, difference: Difference): string {
  const where = row ? `at step ${row.a?.seq ?? '—'} / ${row.b?.seq ?? '—'}` : '';
  switch (difference.aspect) {
    case 'input':
      return 'The runs were given different input.';
    case 'outcome':
      return `The runs took the same steps but ended differently: ${difference.a ?? ''} / ${difference.b ?? ''}.`;
    case 'step':
      return row?.a ? `Run A took step ${row.a.seq} (${row.a.kind === 'tool' ? row.a.name : 'a model call'}), which run B did not.` : `Run B took step ${row?.b?.seq ?? '?'} (${row?.b?.kind === 'tool' ? row.b.name : 'a model call'}), which run A did not.`;
    case 'status':
      return `The step ended differently ${where}: ${difference.a ?? ''} / ${difference.b ?? ''}.`;
    case 'model output':
      return `The model answered differently ${where}.`;
    case 'tool calls':
      return `The model asked for different tool calls ${where}.`;
    case 'tool':
      return `Different tools were called ${where}.`;
    case 'arguments':
      return `The tool was called with different arguments ${where}.`;
    case 'result':
      return `The tool returned something different ${where}.`;
  }
}

/**
 * Pairs the steps of two runs: the steps of the same kind and tool (a model call with a model
 * call, a call to search with a call to search) in order, as many as can be, identical pairs
 * preferred; the steps between stand against gaps. A fork and its original share their steps up
 * to the fork, so they pair one to one; a run that took one more step gets one gap, not a shifted
 * rest.
 */
function align(a: readonly StepFacts[], b: readonly StepFacts[]): [StepFacts | null, StepFacts | null][] {
  const key = (step: StepFacts) => (step.kind === 'tool' ? `tool:${step.name}` : 'model');
  const keysA = a.map(key);
  const keysB = b.map(key);
  const signaturesA = a.map(signature);
  const signaturesB = b.map(signature);
  // A pair of the same kind and tool scores 2, an identical one 3; best[i][j] is the best score of a[i..] against b[j..].
  const pairScore = (i: number, j: number) => (keysA[i] !== keysB[j] ? -1 : signaturesA[i] === signaturesB[j] ? 3 : 2);
  const n = a.length;
  const m = b.length;
  const best: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  const at = (i: number, j: number) => best[i]?.[j] ?? 0;
  for (let i = n - 1; i >= 0; i--) {
    const row = best[i] as number[];
    for (let j = m - 1; j >= 0; j--) {
      const score = pairScore(i, j);
      row[j] = Math.max(at(i + 1, j), at(i, j + 1), score > 0 ? score + at(i + 1, j + 1) : 0);
    }
  }
  const pairs: [StepFacts | null, StepFacts | null][] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    const x = a[i];
    const y = b[j];
    const score = x && y ? pairScore(i, j) : -1;
    if (x && y && score > 0 && at(i, j) === score + at(i + 1, j + 1)) {
      pairs.push([x, y]);
      i += 1;
      j += 1;
    } else if (x && (!y || at(i, j) === at(i + 1, j))) {
      pairs.push([x, null]);
      i += 1;
    } else {
      pairs.push([null, y ?? null]);
      j += 1;
    }
  }
  return mergeToolSwaps(pairs);
}

/** What is compared of a step, in one string: two steps with the same signature have no difference. */
function signature(step: StepFacts): string {
  const answer = step.kind === 'model' ? modelAnswer(step) : { args: toolArguments(step), result: toolResult(step) };
  return JSON.stringify([step.kind, step.kind === 'tool' ? step.name : '', statusText(step), answer]);
}

/** A call to one tool in run A where run B called another at the same point is one row: different tools. */
function mergeToolSwaps(pairs: [StepFacts | null, StepFacts | null][]): [StepFacts | null, StepFacts | null][] {
  const merged: [StepFacts | null, StepFacts | null][] = [];
  for (const pair of pairs) {
    const last = merged.at(-1);
    const [x, y] = pair;
    if (last && last[1] === null && last[0]?.kind === 'tool' && x === null && y?.kind === 'tool') last[1] = y;
    else merged.push(pair);
  }
  return merged;
}

/** What differs between two steps of the same kind and tool, in the order a person reads a step. */
function stepDifferences(a: StepFacts, b: StepFacts): Difference[] {
  const differences: Difference[] = [];
  const add = (aspect: ComparedAspect, x: string, y: string) => {
    if (x !== y) differences.push({ aspect, a: x, b: y });
  };
  if (a.kind === 'tool') add('tool', a.name, b.name);
  add('status', statusText(a), statusText(b));
  if (a.kind === 'model') {
    const answerA = modelAnswer(a);
    const answerB = modelAnswer(b);
    add('model output', answerA.content, answerB.content);
    add('tool calls', answerA.calls, answerB.calls);
  } else {
    add('arguments', toolArguments(a), toolArguments(b));
    add('result', toolResult(a), toolResult(b));
  }
  return differences;
}

function firstDifference(input: Difference | null, rows: readonly ComparisonRow[], outcome: Difference | null): FirstDifference | null {
  if (input) return { row: null, difference: input, text: differenceText(null, input) };
  const index = rows.findIndex((row) => row.differences.length > 0);
  const row = rows[index];
  const difference = row?.differences[0];
  if (row && difference) return { row: index, difference, text: differenceText(row, difference) };
  return outcome ? { row: null, difference: outcome, text: differenceText(null, outcome) } : null;
}

function compared(step: StepFacts): ComparedStep {
  return { seq: step.seq, kind: step.kind, name: step.name, status: step.status, summary: describeStep(step, 160) };
}

function runOf(run: RunFacts, stepCount: number): ComparedRun {
  return { id: run.id, agent: run.agent, model: run.model, input: run.input, state: run.state, createdAt: run.createdAt, stepCount };
}

function outcomeText(run: RunFacts): string {
  const label = RUN_STATE_LABELS[run.state];
  if (run.state === 'completed') return `${label}: ${truncate(JSON.stringify(run.result ?? ''), 400)}`;
  return run.error ? `${label}: ${truncate(run.error, 400)}` : label;
}

function statusText(step: StepFacts): string {
  return step.status === 'failed' ? `failed: ${step.error ?? 'unknown error'}` : step.status === 'in_progress' ? 'never finished' : 'completed';
}

/** A completed model step's text and tool calls (names and arguments, their ids left out: each run makes its own). */
function modelAnswer(step: StepFacts): { content: string; calls: string } {
  if (step.status !== 'completed') return { content: '', calls: '' };
  const { message } = step.output as { message: { content: string | null; toolCalls: readonly { name: string; arguments: string }[] } };
  return {
    content: message.content ?? '',
    calls: message.toolCalls.map((call) => `${call.name}(${argumentsText(call.arguments)})`).join('\n'),
  };
}

function toolArguments(step: StepFacts): string {
  const input = step.input as { arguments?: unknown } | null;
  return typeof input?.arguments === 'string' ? argumentsText(input.arguments) : '';
}

/** What the tool returned (its value, or the text the model read when it has none); empty unless it completed. */
function toolResult(step: StepFacts): string {
  if (step.status !== 'completed') return '';
  const output = step.output as { value?: unknown; content?: string } | null;
  return output?.value !== undefined ? stableJson(output.value) : (output?.content ?? '');
}

/** Arguments as JSON with sorted keys, so the same arguments written in another order read the same. */
function argumentsText(raw: string): string {
  try {
    const parsed = JSON.parse(raw) as unknown;
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? compactArgs(sorted(parsed)) : stableJson(parsed);
  } catch {
    // The model wrote invalid JSON: compare it as written.
    return raw;
  }
}

function stableJson(value: unknown): string {
  return JSON.stringify(sorted(value)) ?? 'undefined';
}

function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sorted((value as Record<string, unknown>)[key])]),
  );
}
