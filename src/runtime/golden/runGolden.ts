import { readFileSync } from 'node:fs';
import type { Agent } from '../agent/define';
import { loadAgentFile } from '../agent/loader';
import type { RuntimeFactory } from '../host/host';
import { decide } from '../approval/decide';
import type { BudgetLimits } from '../budget/budget';
import { describeError } from '../errors';
import { modelLabel, type Model } from '../model/model';
import { resolveModel } from '../model/resolve';
import type { CheckpointStore, RunRecord, RunState } from '../store/checkpointStore';
import { agentFacts } from '../trace/agentFacts';
import { buildTrace, loadTraceSource, traceFlags } from '../trace/buildTrace';
import { readJournal } from '../trace/journalView';
import { checkAssertions, intentAssertion, type AssertionResult, type RunFacts } from './assertions';
import {
  CassetteMismatchError,
  CassettePlayer,
  Recorder,
  cassettePathFor,
  readCassette,
  rerecordCommand,
  writeCassette,
  type Cassette,
  type CassetteCase,
} from './cassette';
import { McpPlayer, McpRecorder } from '../mcp/offlineConnections';
import type { McpConnections } from '../mcp/connections';
import { sharedMcpManager } from '../mcp/mcpManager';
import { GoldenFileError, parseGoldenFile, type CaseTag, type GoldenCase, type GoldenFile, type JudgePin, type TextRange } from './goldenFile';
import { Judge, describeJudge, judgeModel, pinProblem, type JudgeSubject, type Verdict } from './judge';

/**
 * Runs the cases of golden files: each case's input through the agent, its approvals answered as
 * the case says, then its assertions checked against the run. Models come from the case's
 * cassette (`replay`, the default: offline and deterministic), from the real model (`live`), or
 * from the real model while recording its answers into the cassette (`record`).
 */

export type GoldenMode = 'replay' | 'live' | 'record';

export interface GoldenRunOptions {
  /** Where the runs are recorded: a throwaway store unless the caller wants to keep them. */
  readonly store: CheckpointStore;
  readonly mode: GoldenMode;
  /** A model spec to run with instead of the agent's own (live and record). */
  readonly model?: string;
  /** Each case run's own limits (the project's `budget.run`). */
  readonly budget?: BudgetLimits;
  /** Only the cases with these names. */
  readonly cases?: readonly string[];
  /** Only the cases with one of these tags. */
  readonly tags?: readonly CaseTag[];
  /** Runs of each case, to expose flaky behaviour (recording always runs once). */
  readonly repeat?: number;
  /** Builds the runtime each case runs on, over the test store (a host's, with its configuration). */
  readonly runtime: RuntimeFactory;
  /** The MCP servers a recording calls (and records); the process's by default. */
  readonly mcp?: McpConnections;
  /** The model behind a judge pin; by default its OpenAI-compatible endpoint. */
  readonly judgeModel?: (pin: JudgePin) => Model;
  readonly onEvent?: (event: GoldenEvent) => void;
  readonly signal?: AbortSignal;
  /** How messages name a file (relative to the working folder, say). */
  readonly display?: (file: string) => string;
}

export interface CaseRun {
  readonly status: 'passed' | 'failed' | 'error';
  /** The run in the store, to open its trace; null when no run started. */
  readonly runId: string | null;
  readonly durationMs: number;
  readonly state: RunState | null;
  readonly answer: string | null;
  readonly assertions: readonly AssertionResult[];
  /** Why the case could not be checked (no recording, a broken agent, a judge that failed). */
  readonly error: string | null;
  /** The cassette mismatch, with what changed and how to re-record. */
  readonly mismatch: string | null;
  readonly verdicts: readonly Verdict[];
}

export interface CaseReport {
  readonly name: string;
  readonly tags: readonly CaseTag[];
  readonly range: TextRange;
  readonly runs: readonly CaseRun[];
  /** Runs that passed, of `runs.length`. */
  readonly passed: number;
  /** `passed` only when every run passed; `error` when no run could be checked. */
  readonly status: 'passed' | 'failed' | 'error';
  /** Some runs passed and some did not. */
  readonly flaky: boolean;
}

export interface GoldenFileReport {
  readonly file: string;
  /** The file as messages name it. */
  readonly shownAs: string;
  readonly agentFile: string | null;
  readonly cassette: string;
  /** The file could not be used at all: broken YAML, a missing agent, an unreadable cassette. */
  readonly error: { readonly message: string; readonly line: number | null; readonly column: number | null } | null;
  readonly cases: readonly CaseReport[];
  readonly durationMs: number;
}

export type GoldenEvent =
  | { readonly type: 'caseStarted'; readonly file: string; readonly caseName: string }
  | { readonly type: 'caseFinished'; readonly file: string; readonly report: CaseReport }
  | { readonly type: 'fileFinished'; readonly report: GoldenFileReport };

const MAX_APPROVAL_ROUNDS = 20;

export async function runGoldenFile(path: string, options: GoldenRunOptions): Promise<GoldenFileReport> {
  const started = Date.now();
  const shownAs = options.display?.(path) ?? path;
  const cassettePath = cassettePathFor(path);
  const fail = (error: unknown): GoldenFileReport => {
    const report: GoldenFileReport = {
      file: path,
      shownAs,
      agentFile: null,
      cassette: cassettePath,
      error: {
        message: describeError(error),
        line: error instanceof GoldenFileError ? (error.line ?? null) : null,
        column: error instanceof GoldenFileError ? (error.column ?? null) : null,
      },
      cases: [],
      durationMs: Date.now() - started,
    };
    options.onEvent?.({ type: 'fileFinished', report });
    return report;
  };
  let golden: GoldenFile;
  let agent: Agent;
  let cassette: Cassette | undefined;
  try {
    golden = parseGoldenFile(readGoldenText(path, shownAs), path, shownAs);
    agent = (await loadAgentFile(golden.agentFile)).agent;
    cassette = readCassette(cassettePath);
  } catch (error) {
    return fail(error);
  }
  const selected = selectCases(golden, options);
  const repeat = options.mode === 'record' ? 1 : Math.max(1, options.repeat ?? 1);
  const recorded: Record<string, CassetteCase> = {};
  const reports: CaseReport[] = [];
  for (const goldenCase of selected) {
    if (options.signal?.aborted) break;
    options.onEvent?.({ type: 'caseStarted', file: path, caseName: goldenCase.name });
    const runs: CaseRun[] = [];
    for (let attempt = 0; attempt < repeat && !options.signal?.aborted; attempt++) {
      const outcome = await runCase({ golden, goldenCase, agent, cassette, options, shownAs });
      runs.push(outcome.run);
      if (outcome.recorded) recorded[goldenCase.name] = outcome.recorded;
    }
    const report = caseReport(goldenCase, runs);
    reports.push(report);
    options.onEvent?.({ type: 'caseFinished', file: path, report });
  }
  if (options.mode === 'record' && Object.keys(recorded).length > 0) {
    // Cases recorded now replace their old recordings; cases no longer in the file are dropped.
    const names = new Set(golden.cases.map((goldenCase) => goldenCase.name));
    const kept = Object.entries(cassette?.cases ?? {}).filter(([name]) => names.has(name));
    writeCassette(cassettePath, { version: 1, golden: basenameOf(path), cases: { ...Object.fromEntries(kept), ...recorded } });
  }
  const report: GoldenFileReport = { file: path, shownAs, agentFile: golden.agentFile, cassette: cassettePath, error: null, cases: reports, durationMs: Date.now() - started };
  options.onEvent?.({ type: 'fileFinished', report });
  return report;
}

function readGoldenText(path: string, shownAs: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new GoldenFileError(shownAs, undefined, undefined, `cannot be read: ${describeError(error)}`);
  }
}

function selectCases(golden: GoldenFile, options: GoldenRunOptions): GoldenCase[] {
  return golden.cases.filter(
    (goldenCase) =>
      (options.cases === undefined || options.cases.length === 0 || options.cases.includes(goldenCase.name)) &&
      (options.tags === undefined || options.tags.length === 0 || goldenCase.tags.some((tag) => options.tags?.includes(tag))),
  );
}

function caseReport(goldenCase: GoldenCase, runs: readonly CaseRun[]): CaseReport {
  const passed = runs.filter((run) => run.status === 'passed').length;
  const errored = runs.filter((run) => run.status === 'error').length;
  return {
    name: goldenCase.name,
    tags: goldenCase.tags,
    range: goldenCase.range,
    runs,
    passed,
    status: runs.length > 0 && passed === runs.length ? 'passed' : errored === runs.length ? 'error' : 'failed',
    flaky: passed > 0 && passed < runs.length,
  };
}

interface CaseInput {
  readonly golden: GoldenFile;
  readonly goldenCase: GoldenCase;
  readonly agent: Agent;
  readonly cassette: Cassette | undefined;
  readonly options: GoldenRunOptions;
  readonly shownAs: string;
}

/** The models a case runs with, and what records or plays them. */
interface Wiring {
  readonly model: Model;
  readonly wrap: (model: Model) => Model;
  readonly player?: CassettePlayer;
  readonly judgePlayer?: CassettePlayer;
  readonly recorder?: Recorder;
  readonly judgeRecorder?: Recorder;
  /** Where the agent's MCP tools come from: a cassette's recording, a recorder, or the live servers. */
  readonly mcp?: McpConnections;
}

async function runCase(input: CaseInput): Promise<{ run: CaseRun; recorded?: CassetteCase }> {
  const { golden, goldenCase, agent, cassette, options, shownAs } = input;
  const started = Date.now();
  const hint = { goldenFile: shownAs, caseName: goldenCase.name };
  const errorRun = (error: string, extra: Partial<CaseRun> = {}): CaseRun => ({
    status: 'error',
    runId: null,
    durationMs: Date.now() - started,
    state: null,
    answer: null,
    assertions: [],
    error,
    mismatch: null,
    verdicts: [],
    ...extra,
  });

  let wiring: Wiring;
  if (options.mode === 'replay') {
    const entry = cassette?.cases[goldenCase.name];
    if (!entry) {
      return { run: errorRun(`There is no recording of case ${JSON.stringify(goldenCase.name)} in ${cassettePathFor(shownAs)}: record it with ${rerecordCommand(hint)}, or run it --live.`) };
    }
    const player = new CassettePlayer(entry.interactions, hint);
    const mcp = agent.mcp ? new McpPlayer(entry.mcp ?? { servers: {}, calls: [] }, rerecordCommand(hint)) : undefined;
    wiring = {
      model: player.model(entry.model),
      wrap: (model) => player.model(modelLabel(model)),
      player,
      judgePlayer: new CassettePlayer(entry.judge, hint, 'judge'),
      ...(mcp ? { mcp } : {}),
    };
  } else {
    let base: Model;
    try {
      base = resolveModel(options.model ?? agent.model);
    } catch (error) {
      return { run: errorRun(describeError(error)) };
    }
    if (options.mode === 'record') {
      const recorder = new Recorder();
      const mcp = agent.mcp ? new McpRecorder(options.mcp ?? sharedMcpManager()) : undefined;
      wiring = { model: recorder.wrap(base), wrap: (model) => recorder.wrap(model), recorder, judgeRecorder: new Recorder(), ...(mcp ? { mcp } : {}) };
    } else {
      wiring = { model: base, wrap: (model) => model };
    }
  }

  const route = agent.route;
  const testAgent: Agent = route
    ? {
        ...agent,
        route: (step) => {
          const choice = route(step);
          return choice === undefined ? undefined : wiring.wrap(resolveModel(choice));
        },
      }
    : agent;

  let record: RunRecord;
  try {
    record = await execute(testAgent, goldenCase, golden.agentFile, wiring.model, options, wiring.mcp);
  } catch (error) {
    if (wiring.mcp instanceof McpPlayer && wiring.mcp.mismatch) return { run: errorRun('The cassette does not fit the agent any more.', { mismatch: wiring.mcp.mismatch.message }) };
    return { run: errorRun(describeError(error)) };
  }
  const mismatch = wiring.player?.mismatch ?? (wiring.mcp instanceof McpPlayer ? wiring.mcp.mismatch : undefined);
  if (mismatch) {
    return { run: errorRun('The cassette does not fit the agent any more.', { runId: record.id, state: record.state, mismatch: mismatch.message }) };
  }

  const facts = await runFacts(options.store, record);
  // The agent's own tools and those its MCP servers offered the run.
  const toolNames = new Set([...agent.tools.keys(), ...Object.keys(record.agentFacts?.toolEffects ?? {})]);
  const assertions = checkAssertions(goldenCase.expect, facts, golden.intents, toolNames);
  const verdicts: Verdict[] = [];
  let judgeMismatch: string | null = null;
  const needsJudge = goldenCase.expect.judge !== undefined || goldenCase.expect.intent?.by === 'judge';
  if (needsJudge && golden.judge) {
    const subject: JudgeSubject = { input: goldenCase.input, answer: facts.answer ?? '', toolCalls: facts.toolCalls.map(({ name, args }) => ({ name, args })) };
    const judgeFor = (pin: JudgePin): Judge => {
      if (wiring.judgePlayer) return new Judge(pin, wiring.judgePlayer.model(`${pin.provider}:${pin.model}`));
      const model = (options.judgeModel ?? judgeModel)(pin);
      return new Judge(pin, wiring.judgeRecorder ? wiring.judgeRecorder.wrap(model) : model);
    };
    try {
      if (goldenCase.expect.intent?.by === 'judge') {
        const verdict = await judgeFor(golden.judge).classify(subject, golden.intents);
        verdicts.push(verdict);
        const problem = pinProblem(verdict);
        const result = intentAssertion(goldenCase.expect.intent.in, verdict.intent ?? 'unknown', 'judge');
        assertions.push(problem ? { ...result, passed: false, message: `${result.message} ${problem}` } : result);
      }
      const rubric = goldenCase.expect.judge;
      if (rubric) {
        const graders = [golden.judge, ...(golden.judge.crossGrade ? [golden.judge.crossGrade] : [])];
        const given: Verdict[] = [];
        for (const pin of graders) given.push(await judgeFor(pin).grade(subject, rubric.rubric, rubric.threshold));
        verdicts.push(...given);
        assertions.push(judgeAssertion(given, rubric.threshold));
      }
    } catch (error) {
      if (error instanceof CassetteMismatchError) judgeMismatch = error.message;
      else assertions.push({ kind: 'judge', passed: false, message: `The judge gave no verdict: ${describeError(error)}` });
    }
  }
  if (judgeMismatch) {
    return { run: errorRun('The cassette holds no verdict for this answer.', { runId: record.id, state: record.state, answer: facts.answer, mismatch: judgeMismatch }) };
  }
  const run: CaseRun = {
    status: assertions.every((assertion) => assertion.passed) ? 'passed' : 'failed',
    runId: record.id,
    durationMs: Date.now() - started,
    state: record.state,
    answer: facts.answer,
    assertions,
    error: null,
    mismatch: null,
    verdicts,
  };
  if (options.mode !== 'record' || !wiring.recorder) return { run };
  return {
    run,
    recorded: {
      recordedAt: new Date().toISOString(),
      model: modelLabel(wiring.model),
      interactions: wiring.recorder.interactions,
      judge: wiring.judgeRecorder?.interactions ?? [],
      verdicts,
      ...(wiring.mcp instanceof McpRecorder ? { mcp: wiring.mcp.recording() } : {}),
    },
  };
}

/** Runs the case's input to a stop, answering its approvals as the case says. */
async function execute(agent: Agent, goldenCase: GoldenCase, agentFile: string, model: Model, options: GoldenRunOptions, mcp: McpConnections | undefined): Promise<RunRecord> {
  const runtime = options.runtime({ store: options.store, ...(mcp ? { mcp } : {}) });
  const follow = async (handle: { done: Promise<RunRecord>; cancel(): void }): Promise<RunRecord> => {
    const cancel = () => handle.cancel();
    options.signal?.addEventListener('abort', cancel, { once: true });
    try {
      return await handle.done;
    } finally {
      options.signal?.removeEventListener('abort', cancel);
    }
  };
  let record = await follow(await runtime.start(agent, { input: goldenCase.input, agentFile, model, ...(options.budget ? { budget: options.budget } : {}) }));
  const answer = goldenCase.approvals;
  for (let round = 0; record.state === 'waiting_approval' && answer.action !== 'leave' && round < MAX_APPROVAL_ROUNDS; round++) {
    const pending = await options.store.listApprovals({ runId: record.id, status: 'pending' });
    if (pending.length === 0) break;
    for (const approval of pending) {
      await decide(
        options.store,
        approval.id,
        answer.action === 'approve' ? { action: 'approve', argsHash: approval.argsHash } : { action: 'reject', reason: answer.reason },
        { by: 'keel test', via: 'cli', at: Date.now() },
      );
    }
    record = await follow(await runtime.resume(agent, record.id, { model }));
  }
  return record;
}

/** What the assertions read of a run: its journal, flags, approvals and spend. */
export async function runFacts(store: CheckpointStore, record: RunRecord): Promise<RunFacts> {
  const source = await loadTraceSource(store, record.id);
  const flags = traceFlags(buildTrace(source, { ...agentFacts(record), captureContent: true }));
  const view = readJournal(source);
  return {
    state: record.state,
    answer: record.result,
    error: record.error,
    toolCalls: view.calls.map((call) => ({ name: call.name, args: parseArguments(call.arguments), ok: call.ok })),
    steps: record.stepCount,
    tokens: record.usage.inputTokens + record.usage.outputTokens,
    costUsd: record.costUsd,
    costKnown: record.costKnown,
    flags: flags.map((flag) => ({ kind: flag.kind, message: flag.message })),
    approvals: source.approvals
      .filter((approval) => approval.kind === 'policy')
      .map((approval) => ({ tool: approval.tool, decision: approval.decision?.action ?? approval.status })),
  };
}

function judgeAssertion(verdicts: readonly Verdict[], threshold: number): AssertionResult {
  const problems = verdicts.map(pinProblem).filter((problem): problem is string => problem !== null);
  const passed = problems.length === 0 && verdicts.every((verdict) => verdict.passed === true);
  const lines = verdicts.map(
    (verdict) => `${describeJudge(verdict.judge)} scored ${verdict.score ?? '?'} (threshold ${threshold})${verdict.reason ? `: ${verdict.reason}` : ''}`,
  );
  const disagree = verdicts.length > 1 && new Set(verdicts.map((verdict) => verdict.passed)).size > 1 ? ' The judges disagree.' : '';
  return {
    kind: 'judge',
    passed,
    message: `${sentence(lines.join('; '))}${disagree}${problems.length > 0 ? ` ${problems.join(' ')}` : ''}`,
    expected: `score ≥ ${threshold}`,
    actual: verdicts.map((verdict) => String(verdict.score ?? '?')).join(', '),
  };
}

/** The text ending with one full stop. */
function sentence(text: string): string {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

function parseArguments(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

function basenameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Counts over file reports, as the CLI's summary line and the test counts give them. */
export interface GoldenSummary {
  readonly passed: number;
  readonly failed: number;
  /** Of the failed: cases that passed some runs. */
  readonly flaky: number;
  /** Of the failed: cases that could not be checked, and files that could not be used. */
  readonly errors: number;
}

export function summarize(reports: readonly GoldenFileReport[]): GoldenSummary {
  let passed = 0;
  let failed = 0;
  let flaky = 0;
  let errors = 0;
  for (const report of reports) {
    if (report.error) {
      failed += 1;
      errors += 1;
    }
    for (const goldenCase of report.cases) {
      if (goldenCase.status === 'passed') passed += 1;
      else failed += 1;
      if (goldenCase.flaky) flaky += 1;
      if (goldenCase.status === 'error') errors += 1;
    }
  }
  return { passed, failed, flaky, errors };
}

