import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { CircuitBreakers, CircuitOpenError } from '../effects/circuitBreaker';
import {
  AttemptsExhaustedError,
  abortableSleep,
  classifyError,
  withRetries,
  type FailedAttempt,
  type RetryPolicy,
} from '../effects/retry';
import { KeelError, describeError } from '../errors';
import { newRunId } from '../ids';
import {
  modelLabel,
  type AssistantMessage,
  type Message,
  type Model,
  type ModelResponse,
  type ToolMessage,
  type ToolSpec,
  type Usage,
} from '../model/model';
import { resolveModel } from '../model/resolve';
import { BudgetExceededError, mergeLimits, type Amounts, type BudgetLimits, type BudgetPool } from '../budget/budget';
import { DEFAULT_PRICES, type PriceTable } from '../budget/prices';
import { RunBudget } from '../budget/runBudget';
import { RUN_STATE_LABELS } from '../format';
import {
  RESUMABLE_STATES,
  TERMINAL_STATES,
  UnfinishedSubRunError,
  type ApprovalRecord,
  type CheckpointStore,
  type Decision,
  type RecordedAgent,
  type RunRecord,
  type StepEnd,
  type StepRecord,
  type StepStart,
} from '../store/checkpointStore';
import type { Agent, Tool, ToolContext } from './define';
import type { RunEvent, RunEventListener } from './events';
import type { RunInspector } from './inspector';
import { argsHash } from '../approval/decide';
import { needsApproval, type ApprovalPolicy } from '../approval/policy';
import { ConversationHash, Journal, JournalDivergenceError, canonicalJson, sha256 } from './journal';
import { PROCESS_OWNER, RESTATE_OWNER_PREFIX, isOwnerAlive } from './owner';
import { checkToolOutput, offeredSpec, prepareToolCall } from './toolCall';
import { ToolRunner, type SandboxOptions } from '../sandbox/toolRunner';
import { withBuiltinTools } from '../memory/builtinTools';
import { RunMemory, outputChannelOf } from '../memory/runMemory';
import { threadAndTask } from '../threads/startThread';
import { approvalsOfTree } from '../store/runTree';
import { RunGuard } from '../guard/runGuard';
import { AttemptInterruptedError, DIRECT_STEPS, type StepRunner } from './steps';
import { RunPausedError, SubAgentPausedError } from './pause';
import { reachableAgents } from './subAgent';
import { guardFields, readToolResultGuard, type TaintDecision, type ToolResultGuard } from '../guard/record';
import type { McpConnections } from '../mcp/connections';
import type { McpPin } from '../mcp/definitions';
import type { McpResolution } from '../mcp/resolveTools';
import { traceparent } from '../trace/buildTrace';

export interface RuntimeOptions {
  readonly store: CheckpointStore;
  readonly now?: () => number;
  /** This process's identity as the owner of the runs it executes. */
  readonly owner?: string;
  /**
   * Whether the owner of a `running` run may still be executing it (by default: its process is
   * alive). An engine whose executions outlive processes says which of its owners are gone.
   */
  readonly isOwnerAlive?: (owner: string) => boolean;
  readonly breakers?: CircuitBreakers;
  /** For backoff jitter; tests make it predictable. */
  readonly random?: () => number;
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Which tools run in the sandbox (`keel.sandbox.default`: marked or all), and in which sandbox. */
  readonly sandbox?: SandboxOptions;
  /** Model prices beyond Keel's table (from settings or KEEL_PRICES); an agent's own prices come first. */
  readonly prices?: readonly PriceTable[];
  /** Shared budgets every run started here draws on, such as a per-workspace daily allowance. */
  readonly pools?: readonly BudgetPool[];
  /** What an approval does when its tool and agent say nothing of it (keel.config.ts `approvals`). */
  readonly approvals?: Pick<ApprovalPolicy, 'timeoutMs' | 'onTimeout'>;
  /** Called before each step of every run executed here, such as the replay debugger pausing a live run. */
  readonly inspector?: RunInspector;
  /**
   * `false` turns off the untrusted-content defenses of every run executed here (fencing, the
   * injection screen, taint checks, answer sanitizing), as an agent's `guard: false` does for its
   * own runs. For measuring them; never in production.
   */
  readonly guard?: boolean;
  /**
   * Where model calls and tool calls execute: in place by default; a durable engine journals each
   * as a step of its own (see StepRunner).
   */
  readonly steps?: StepRunner;
  /** Where agents' MCP tools come from: by default the process's McpManager, started on first use. */
  readonly mcp?: McpConnections;
}

export interface StartOptions {
  readonly input: string;
  /** The new run's id, when the caller chose it (an engine that keys its work by run id); a fresh one by default. */
  readonly runId?: string;
  /** The file the agent came from, recorded with the run so that it can be resumed. */
  readonly agentFile?: string;
  /** Overrides the agent's own model for this run. */
  readonly model?: Model | string;
  /** Limits for this run, tightening (or adding to) the agent's own budget. */
  readonly budget?: BudgetLimits;
  /** The thread this run continues (created if new): its earlier runs start the conversation. */
  readonly threadId?: string;
  /** The task this run works on: it starts from the task's progress notes and keeps them. */
  readonly taskId?: string;
  readonly onEvent?: RunEventListener;
}

export interface ResumeOptions {
  /** The model to continue with; by default the one the run recorded (or the agent's own). */
  readonly model?: Model | string;
  readonly onEvent?: RunEventListener;
}

export interface RunHandle {
  readonly runId: string;
  /** Settles with the run's record when it stops (ended, paused or interrupted); rejects only if the store fails. */
  readonly done: Promise<RunRecord>;
  /** Stops the run at the next opportunity; it ends `cancelled`. */
  cancel(): void;
}

const NO_USAGE: Usage = { inputTokens: 0, outputTokens: 0 };

type LoopResult =
  | { readonly kind: 'completed'; readonly answer: string }
  | { readonly kind: 'failed'; readonly error: string }
  | { readonly kind: 'paused'; readonly approval: ApprovalRecord };

/** What becomes of one tool call, as the model will read it; `attributes` are what the tool added to its span. */
type ToolResult = ({ readonly ok: true; readonly value: unknown; readonly content: string } | { readonly ok: false; readonly error: string }) &
  ToolResultGuard & { readonly attributes?: SpanAttributes };
type SpanAttributes = Readonly<Record<string, string | number | boolean>>;

/**
 * Runs agents: the observe-think-act loop, journaled step by step in a CheckpointStore so that a
 * run survives the death of its process. On resume the loop runs again from the start, taking
 * every recorded result from the journal instead of calling the model or the tool again.
 */
export class Runtime {
  private readonly store: CheckpointStore;
  private readonly now: () => number;
  private readonly owner: string;
  private readonly isOwnerAlive: (owner: string) => boolean;
  private readonly breakers: CircuitBreakers;
  private readonly random: () => number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly tools: ToolRunner;
  private readonly prices: readonly PriceTable[];
  private readonly pools: readonly BudgetPool[];
  private readonly inspector: RunInspector | undefined;
  private readonly guard: boolean;
  private readonly steps: StepRunner;
  private readonly approvals: Pick<ApprovalPolicy, 'timeoutMs' | 'onTimeout'>;
  private readonly mcp: McpConnections | undefined;

  constructor(options: RuntimeOptions) {
    this.store = options.store;
    this.now = options.now ?? Date.now;
    this.owner = options.owner ?? PROCESS_OWNER;
    this.isOwnerAlive = options.isOwnerAlive ?? isOwnerAlive;
    this.breakers = options.breakers ?? new CircuitBreakers(undefined, this.now);
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? abortableSleep;
    this.tools = new ToolRunner(options.sandbox);
    this.prices = options.prices ?? [];
    this.pools = options.pools ?? [];
    this.inspector = options.inspector;
    this.guard = options.guard !== false;
    this.approvals = options.approvals ?? {};
    this.steps = options.steps ?? DIRECT_STEPS;
    this.mcp = options.mcp;
  }

  /** Records a new run and starts it; resolves once the run is recorded, before it finishes. */
  async start(declared: Agent, options: StartOptions): Promise<RunHandle> {
    const { agent, pin } = await this.withMcpTools(declared, options.agentFile ?? null);
    const model = resolveModel(options.model ?? agent.model);
    const createdAt = this.now();
    const budget = mergeLimits(agent.budget, options.budget);
    const placed = await threadAndTask(this.store, agent, { threadId: options.threadId, taskId: options.taskId, input: options.input, at: createdAt });
    const run = await this.store.createRun({
      id: options.runId ?? newRunId(createdAt),
      agent: agent.name,
      agentFile: options.agentFile ?? null,
      model: modelLabel(model),
      input: options.input,
      traceId: randomBytes(16).toString('hex'),
      owner: this.owner,
      createdAt,
      agentFacts: recordedAgent(withBuiltinTools(agent, placed.taskId ?? null), pin),
      ...(budget ? { budget } : {}),
      ...placed,
    });
    return this.launch(agent, model, run, [], options.onEvent);
  }

  /**
   * Runs `agent` as a sub-agent of a run's step, to its end: a new run the first time, the same
   * run (resumed, or just read back) when the step runs again. A sub-agent run that stops before
   * its end (waiting for a decision, interrupted, running elsewhere) pauses the calling step with
   * SubAgentPausedError: its parent waits for it, and never reads the pause as a failure.
   */
  private async subAgent(agent: Agent, input: string, parent: RunRecord, seq: number, key: string, emit: RunEventListener): Promise<string> {
    const id = `run_${sha256(key).slice(0, 22)}`;
    let child = await this.store.getRun(id);
    if (child && !TERMINAL_STATES.includes(child.state)) {
      await this.store.markInterrupted(this.isOwnerAlive, this.now());
      child = (await this.store.getRun(id)) ?? child;
    }
    if (!child) {
      const { agent: withMcp, pin } = await this.withMcpTools(agent, parent.agentFile);
      const model = resolveModel(agent.model);
      const created = await this.store.createRun({
        id,
        agent: agent.name,
        // Loaded again from the file its parent came from: the loader finds a sub-agent there by its name.
        agentFile: parent.agentFile,
        model: modelLabel(model),
        input,
        traceId: parent.traceId,
        owner: this.owner,
        createdAt: this.now(),
        parentRunId: parent.id,
        parentSeq: seq,
        agentFacts: recordedAgent(withMcp, pin),
        ...(agent.budget ? { budget: agent.budget } : {}),
      });
      child = await (await this.launch(withMcp, model, created, [], emit)).done;
    } else if (RESUMABLE_STATES.includes(child.state) && (await this.store.listApprovals({ status: 'pending', runId: id })).length === 0) {
      try {
        child = await (await this.resume(agent, id, { onEvent: emit })).done;
      } catch (error) {
        // Another process took it over just now, say: the parent stops as the sub-agent stands.
        const now = await this.store.getRun(id);
        if (!now || TERMINAL_STATES.includes(now.state)) throw error;
        child = now;
      }
    }
    if (child.state === 'completed') return child.result ?? '';
    if (!TERMINAL_STATES.includes(child.state)) throw new SubAgentPausedError(child);
    throw new KeelError(`The ${agent.name} sub-agent (run ${child.id}) ${RUN_STATE_LABELS[child.state]}: ${child.error ?? 'no answer'}`);
  }

  /**
   * Continues a run that was interrupted or paused, in this process: same run id, same trace.
   * Throws, changing nothing, when the run cannot go on (still running elsewhere, ended, waiting
   * for a decision nobody has made yet, or started by another agent).
   */
  async resume(declared: Agent, runId: string, options: ResumeOptions = {}): Promise<RunHandle> {
    await this.store.markInterrupted(this.isOwnerAlive, this.now());
    const existing = await this.store.getRun(runId);
    if (!existing) throw new KeelError(`There is no run ${runId} in ${this.store.location}.`);
    if (existing.agent !== declared.name) {
      throw new KeelError(`Run ${runId} belongs to agent "${existing.agent}", not "${declared.name}".`);
    }
    // A run Restate executes goes on only there: its workflow waits for it, and would otherwise wait forever.
    if (existing.owner?.startsWith(RESTATE_OWNER_PREFIX) && !this.owner.startsWith(RESTATE_OWNER_PREFIX)) {
      throw new KeelError(`Run ${runId} runs on Restate: it goes on there once its decisions are made (keel approve, keel resume --restate-url <ingress>).`);
    }
    if (!RESUMABLE_STATES.includes(existing.state)) {
      throw new KeelError(
        existing.state === 'running'
          ? `Run ${runId} is still running (in process ${existing.owner ?? 'unknown'}).`
          : `Run ${runId} has ${existing.state === 'completed' ? 'completed' : `ended ${existing.state}`}; only interrupted or paused runs can be resumed.`,
      );
    }
    const [pending] = await approvalsOfTree(this.store, runId, 'pending');
    if (pending) {
      const where = pending.runId === runId ? '' : ` of its ${pending.agent} sub-agent (run ${pending.runId})`;
      throw new KeelError(`Run ${runId} is waiting for a decision on approval ${pending.id} (${pending.tool})${where}: ${pending.reason}`);
    }
    // The MCP tools the run started with, each as it was then: a changed one stops the resume here.
    const { agent } = await this.withMcpTools(declared, existing.agentFile, existing.agentFacts?.mcp ?? null);
    // The model the run recorded: the agent's own, or the spec it was started with instead.
    const own = resolveModel(agent.model);
    const model = resolveModel(options.model ?? (modelLabel(own) === existing.model ? own : existing.model));
    const steps = await this.store.getSteps(runId);
    const run = await this.store.claimRun(runId, this.owner, RESUMABLE_STATES, this.now());
    if (!run) throw new KeelError(`Run ${runId} was resumed by another process just now.`);
    // A model call that was in flight when its process died may have been charged: count it.
    await this.store.settleHeld(runId, this.now());
    return this.launch(agent, model, run, steps, options.onEvent);
  }

  /** The agent with its MCP servers' tools, as offered now (a new run) or as `pinned` by a run. */
  private async withMcpTools(agent: Agent, agentFile: string | null, pinned?: McpPin | null): Promise<McpResolution> {
    if (!agent.mcp && !pinned) return { agent, pin: undefined };
    // Loaded only by runs of agents with MCP servers: the MCP client is not part of every start.
    const { withMcpTools } = await import('../mcp/resolveTools.js');
    return withMcpTools(agent, { connections: this.mcp, agentFile, pinned, store: this.store, screen: this.guard && agent.guard.enabled });
  }

  private async launch(defined: Agent, model: Model, run: RunRecord, steps: StepRecord[], onEvent?: RunEventListener): Promise<RunHandle> {
    const agent = withBuiltinTools(defined, run.taskId ?? null);
    const emit = onEvent ?? (() => undefined);
    const controller = new AbortController();
    const budget = await RunBudget.forRun(this.store, run, this.pools, [agent.prices, ...this.prices, DEFAULT_PRICES], this.now, emit);
    emit({ type: 'run_started', run });
    const services: Services = {
      store: this.store,
      now: this.now,
      breakers: this.breakers,
      random: this.random,
      sleep: this.sleep,
      tools: this.tools,
      budget,
      subAgent: (child, input, seq, key) => this.subAgent(child, input, run, seq, key, emit),
      continueSubAgent: (child, runId) => this.resume(child, runId, { onEvent: emit }),
      inspector: this.inspector,
      memory: await RunMemory.open(this.store, run, agent, this.now),
      guard: this.guard,
      steps: this.steps,
      approvals: this.approvals,
    };
    const execution = new Execution(services, agent, model, run, new Journal(run.id, steps), controller.signal, emit);
    return {
      runId: run.id,
      done: execution.execute(),
      cancel: () => controller.abort(new Error('Cancelled by the user.')),
    };
  }
}

/** What the execution of one run needs from its runtime. */
interface Services {
  readonly store: CheckpointStore;
  readonly now: () => number;
  readonly breakers: CircuitBreakers;
  readonly random: () => number;
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly tools: ToolRunner;
  readonly budget: RunBudget;
  readonly subAgent: (agent: Agent, input: string, seq: number, key: string) => Promise<string>;
  /** Resumes a sub-agent run of this run's tree that its step no longer waits for. */
  readonly continueSubAgent: (agent: Agent, runId: string) => Promise<RunHandle>;
  readonly inspector: RunInspector | undefined;
  readonly memory: RunMemory;
  /** Whether the untrusted-content defenses are on (the agent may still turn them off for its runs). */
  readonly guard: boolean;
  readonly steps: StepRunner;
  /** What approvals do when their tool and agent say nothing of it. */
  readonly approvals: Pick<ApprovalPolicy, 'timeoutMs' | 'onTimeout'>;
}

/** One run executing in this process: the loop, its replay of the journal and its checkpoints. */
class Execution {
  private readonly store: CheckpointStore;
  private readonly now: () => number;
  private seq = 0;
  /** The end of the last step, written together with the start of the next one. */
  private pendingEnd: { end: StepEnd; record: StepRecord; close?: { id: string; actual: Amounts; at: number } } | undefined;
  /** What the steps under way started with, to build their records when they end. */
  private readonly started = new Map<number, Pick<StepRecord, 'kind' | 'name' | 'input' | 'idempotencyKey' | 'startedAt'>>();
  /** Journal steps so far, for the run's step budget: recorded ones plus those ended here. */
  private stepsDone: number;
  private readonly launchedAt: number;
  /** Models picked by the agent's route hook, resolved once each. */
  private readonly routed = new Map<string, Model>();
  /** The run's defenses against untrusted content. */
  private readonly guard: RunGuard;

  constructor(
    private readonly services: Services,
    private readonly agent: Agent,
    private readonly model: Model,
    private readonly run: RunRecord,
    private readonly journal: Journal,
    private readonly signal: AbortSignal,
    private readonly emit: (event: RunEvent) => void,
  ) {
    this.store = services.store;
    this.now = services.now;
    this.stepsDone = run.stepCount;
    this.launchedAt = this.now();
    this.guard = new RunGuard(agent, run, services.guard);
  }

  async execute(): Promise<RunRecord> {
    let stopped: RunRecord;
    try {
      const result = await this.loop();
      await this.flush();
      switch (result.kind) {
        case 'completed':
          stopped = await this.complete(result.answer);
          break;
        case 'failed':
          stopped = await this.finish({ state: 'failed', result: null, error: result.error });
          break;
        case 'paused':
          stopped = await this.pause(result.approval.reason);
          break;
      }
    } catch (error) {
      await this.flush();
      if (error instanceof BudgetExceededError) {
        stopped = await this.finish({ state: 'budget_exceeded', result: null, error: `Stopped: ${error.message}` });
      } else if (error instanceof SubAgentPausedError) {
        stopped = error.parentState === 'waiting_approval' ? await this.pause(error.message) : await this.interrupt(error.message);
      } else if (error instanceof JournalDivergenceError) {
        stopped = await this.interrupt(error.message);
      } else if (this.signal.aborted) {
        stopped = await this.finish({ state: 'cancelled', result: null, error: describeError(this.signal.reason) });
      } else {
        stopped = await this.finish({ state: 'failed', result: null, error: describeError(error) });
      }
    }
    this.emit({ type: 'run_finished', run: stopped });
    return stopped;
  }

  private finish(end: {
    state: 'completed' | 'failed' | 'cancelled' | 'budget_exceeded';
    result: string | null;
    error: string | null;
  }): Promise<RunRecord> {
    const at = this.now();
    return this.store.finishRun({ runId: this.run.id, ...end, endedAt: at, at, activeMs: at - this.launchedAt });
  }

  /**
   * Ends the run with its answer, unless a sub-agent run under it has not ended (a tool that let
   * one go on without waiting for it, say): then the run stops as that sub-agent stands, so that
   * it never completes without the sub-agent's work or decision.
   */
  private async complete(answer: string): Promise<RunRecord> {
    for (const continued = new Set<string>(); ; ) {
      try {
        return await this.finish({ state: 'completed', result: answer, error: null });
      } catch (error) {
        if (!(error instanceof UnfinishedSubRunError)) throw error;
        // A sub-agent run whose decisions are all made, that its tool no longer waits for: it goes on here, once.
        const { child } = error;
        const agent = reachableAgents([this.agent]).find((candidate) => candidate.name === child.agent);
        const ready = RESUMABLE_STATES.includes(child.state) && (await approvalsOfTree(this.store, child.id, 'pending')).length === 0;
        if (!agent || !ready || continued.has(child.id)) {
          return child.state === 'waiting_approval' ? this.pause(error.message) : this.interrupt(error.message);
        }
        continued.add(child.id);
        await (await this.services.continueSubAgent(agent, child.id)).done;
      }
    }
  }

  /** Stops the run for now: it goes on when resumed (after a divergence is fixed, or a sub-agent can go on). */
  private interrupt(reason: string): Promise<RunRecord> {
    const at = this.now();
    return this.store.finishRun({ runId: this.run.id, state: 'interrupted', result: null, error: reason, endedAt: null, at, activeMs: at - this.launchedAt });
  }

  private pause(reason: string): Promise<RunRecord> {
    const at = this.now();
    return this.store.finishRun({
      runId: this.run.id,
      state: 'waiting_approval',
      result: null,
      error: reason,
      endedAt: null,
      at,
      activeMs: at - this.launchedAt,
    });
  }

  private async loop(): Promise<LoopResult> {
    const { agent } = this;
    const specs = [...agent.tools.values()].map((tool) => offeredSpec(agent, tool));
    const conversation = new ConversationHash(specs);
    const messages: Message[] = [];
    const say = (message: Message) => {
      messages.push(message);
      conversation.append(message);
    };
    say({ role: 'system', content: agent.instructions });
    // The thread's earlier turns (and a summary of older ones, itself a model step) and the task's progress notes.
    const prelude = await this.services.memory.prelude(async (call) => {
      const seq = ++this.seq;
      const model = call.model === undefined ? this.model : resolveModel(call.model);
      return { response: await this.modelStep(seq, model, call.messages, [], call.requestHash, call.about), seq };
    });
    for (const message of prelude) say(message);
    say({ role: 'user', content: this.run.input });

    const calls = new Map<string, number>();
    let turnsWithoutProgress = 0;
    for (let turn = 0; turn < agent.maxSteps; turn++) {
      this.signal.throwIfAborted();
      const modelSeq = ++this.seq;
      const model = this.modelFor(turn, messages);
      const inspected = this.services.inspector?.beforeStep({
        run: this.run,
        seq: modelSeq,
        kind: 'model',
        name: modelLabel(model),
        turn,
        call: null,
        messages,
        requestHash: conversation.value,
      });
      // Awaited only when the inspector is asynchronous: a replay inspects every step.
      if (inspected) await inspected;
      const response = await this.modelStep(modelSeq, model, messages, specs, conversation.value);
      say(response.message);
      if (response.message.toolCalls.length === 0) {
        this.journal.assertEndsAfter(this.seq, 'ends the run with its answer');
        return { kind: 'completed', answer: this.guard.answer(response) };
      }

      // Loop breakers: the same call again and again, or turn after turn with nothing new.
      let progress = false;
      for (const call of response.message.toolCalls) {
        const signature = `${call.name} ${canonicalArguments(call.arguments)}`;
        const count = (calls.get(signature) ?? 0) + 1;
        calls.set(signature, count);
        if (count === 1) progress = true;
        if (count >= agent.loopLimits.sameCall) {
          return { kind: 'failed', error: `Stopped a loop: the model asked for ${call.name} with the same arguments ${count} times.` };
        }
      }
      turnsWithoutProgress = progress ? 0 : turnsWithoutProgress + 1;
      if (turnsWithoutProgress >= agent.loopLimits.turnsWithoutProgress) {
        return { kind: 'failed', error: `Stopped a loop: ${turnsWithoutProgress} model calls in a row asked for nothing new.` };
      }

      for (const [callIndex, call] of response.message.toolCalls.entries()) {
        this.signal.throwIfAborted();
        this.services.budget.checkRunLimits(this.stepsDone);
        const toolSeq = ++this.seq;
        const inspectedTool = this.services.inspector?.beforeStep({ run: this.run, seq: toolSeq, kind: 'tool', name: call.name, turn, call, messages, requestHash: null });
        if (inspectedTool) await inspectedTool;
        const outcome = await this.toolStep(toolSeq, modelSeq, callIndex, call);
        if ('approval' in outcome) return { kind: 'paused', approval: outcome.approval };
        say({
          role: 'tool',
          toolCallId: call.id,
          name: call.name,
          content: this.guard.toolMessage(toolSeq, call.name, outcome),
          isError: !outcome.ok,
        });
      }
    }
    this.journal.assertEndsAfter(this.seq, `stops, having reached maxSteps (${agent.maxSteps})`);
    return { kind: 'failed', error: `${agent.name} reached maxSteps (${agent.maxSteps}) without a final answer.` };
  }

  /** The model for this turn: the agent's route hook decides, else the run's model. */
  private modelFor(turn: number, messages: readonly Message[]): Model {
    const route = this.agent.route;
    if (!route) return this.model;
    const lastAssistant = messages.findLastIndex((message) => message.role === 'assistant');
    const choice = route({
      turn,
      input: this.run.input,
      messages,
      toolResults: messages.slice(lastAssistant + 1).filter((message): message is ToolMessage => message.role === 'tool'),
    });
    if (choice === undefined) return this.model;
    if (typeof choice !== 'string') return choice;
    let model = this.routed.get(choice);
    if (!model) {
      model = resolveModel(choice);
      this.routed.set(choice, model);
    }
    return model;
  }

  private async modelStep(
    seq: number,
    model: Model,
    messages: readonly Message[],
    specs: readonly ToolSpec[],
    requestHash: string,
    about: Readonly<Record<string, unknown>> = {},
  ): Promise<ModelResponse> {
    const label = modelLabel(model);
    const recorded = this.journal.recorded(seq, 'model', label, () => 'a model call');
    if (recorded) {
      const input = recorded.input as { requestHash?: string };
      if (input.requestHash !== requestHash) {
        throw this.journal.diverged(
          seq,
          'the conversation the agent now sends the model differs from the recorded one (its instructions, tools or earlier results changed)',
        );
      }
      if (recorded.status === 'completed') return recorded.output as ModelResponse;
      if (recorded.status === 'failed') throw this.journal.diverged(seq, 'the recorded model call failed, so the run should have ended there');
    } else {
      await this.begin({
        runId: this.run.id,
        seq,
        kind: 'model',
        name: label,
        input: { messageCount: messages.length, tools: specs.map((spec) => spec.name), requestHash, ...about },
        idempotencyKey: null,
        startedAt: this.now(),
      });
    }
    const failures: FailedAttempt[] = recorded ? await this.restart(recorded) : [];
    const breaker = this.services.breakers.for(`model ${label}`);
    const { budget } = this.services;
    const request = { messages: [...messages], tools: specs, maxTokens: this.agent.maxOutputTokens };
    let settlement: { id: string; actual: Amounts; at: number } | undefined;
    let response: ModelResponse;
    try {
      response = await this.withRetries(seq, this.agent.modelRetry, failures, undefined, async (attempt) => {
        budget.checkRunLimits(this.stepsDone);
        const reservation = budget.reservation(`${this.run.id}:${seq}:${failures.length + attempt}`, seq, model, request);
        if (reservation) await this.store.transition({ reserve: reservation });
        breaker.admit();
        try {
          const step = { runId: this.run.id, seq, kind: 'model', key: `${this.run.id}:${seq}`, attempt: failures.length + 1 } as const;
          const answer = await this.services.steps.run(step, () =>
            model.generate(request, {
              signal: this.signal,
              onTextDelta: (text) => this.emit({ type: 'model_delta', runId: this.run.id, seq, text }),
            }),
          );
          breaker.succeeded();
          if (reservation) {
            const { inputTokens, outputTokens } = answer.usage;
            settlement = { id: reservation.id, actual: budget.settlement(model, inputTokens, outputTokens), at: this.now() };
          }
          return answer;
        } catch (error) {
          if (!this.signal.aborted && classifyError(error, this.agent.modelRetry).class === 'retry') breaker.failed();
          if (reservation) await this.store.transition({ close: { id: reservation.id, at: this.now() } });
          throw error;
        }
      });
    } catch (error) {
      await this.end(seq, { status: 'failed', output: null, error: failureMessage(error, this.signal), usage: NO_USAGE }, failures);
      await this.flush();
      const last = error instanceof AttemptsExhaustedError ? error.lastError : error;
      if (last instanceof CircuitOpenError || last instanceof BudgetExceededError) throw last;
      throw error instanceof AttemptsExhaustedError ? new KeelError(attemptsMessage(label, error)) : error;
    }
    await this.end(
      seq,
      {
        status: 'completed',
        output: this.guard.recordResponse(response, about),
        error: null,
        usage: response.usage,
        costUsd: budget.costOf(model, response.usage.inputTokens, response.usage.outputTokens),
      },
      failures,
      settlement,
    );
    if (settlement) {
      await this.flush();
      await budget.warnIfNear();
    }
    return response;
  }

  private async toolStep(
    seq: number,
    modelSeq: number,
    callIndex: number,
    call: AssistantMessage['toolCalls'][number],
  ): Promise<ToolResult | { approval: ApprovalRecord }> {
    const idempotencyKey = `${this.run.id}:${modelSeq}:${callIndex}`;
    const recorded = this.journal.recorded(seq, 'tool', call.name, () => `a call to ${call.name}`);
    const input = { toolCallId: call.id, arguments: call.arguments };
    if (recorded && !sameToolInput(recorded.input, input)) {
      throw this.journal.diverged(seq, `the call to ${call.name} has other arguments than the recorded one`);
    }
    if (recorded && recorded.status !== 'in_progress') {
      const output = recorded.output as { content?: string; value?: unknown } | null;
      const guarded = readToolResultGuard(output);
      return recorded.status === 'completed'
        ? { ok: true, value: output?.value, content: output?.content ?? '', ...guarded }
        : { ok: false, error: recorded.error ?? 'failed', ...guarded };
    }

    const prepared = prepareToolCall(this.agent, call);
    if (!prepared.ok) {
      if (recorded) await this.restart(recorded);
      else await this.begin({ runId: this.run.id, seq, kind: 'tool', name: call.name, input, idempotencyKey, startedAt: this.now() });
      await this.endTool(seq, { ok: false, error: prepared.error }, undefined, []);
      return { ok: false, error: prepared.error };
    }
    const { tool } = prepared;
    const effectKey = tool.effect === 'none' ? undefined : idempotencyKey;
    const gate = await this.policyGate(seq, tool, prepared.args, prepared.confidence, recorded === undefined);
    if (gate.kind === 'waiting') return { approval: gate.approval };
    if (gate.kind === 'rejected') {
      if (recorded) await this.restart(recorded);
      else await this.begin({ runId: this.run.id, seq, kind: 'tool', name: call.name, input, idempotencyKey, startedAt: this.now() });
      const rejected: ToolResult = { ok: false, error: gate.error, ...(gate.taint ? { guard: { fenced: false, taint: gate.taint } } : {}) };
      await this.endTool(seq, rejected, undefined, []);
      return rejected;
    }
    const { args } = gate;
    let earlier: FailedAttempt[] = [];
    if (recorded && pausedAttempt(recorded)) {
      // Its last attempt paused for a sub-agent, and no attempt began since: the call goes on, as a new attempt.
      earlier = await this.resumeAfterPause(recorded, effectKey);
    } else if (recorded) {
      if (tool.effect === 'unsafe') {
        const decided = await this.decideUnknownOutcome(recorded, tool, args, idempotencyKey);
        if (decided !== 'retry') return decided;
      }
      earlier = await this.restart(recorded);
    } else {
      await this.begin(
        {
          runId: this.run.id,
          seq,
          kind: 'tool',
          name: call.name,
          input,
          idempotencyKey,
          startedAt: this.now(),
          ...(tool.effect === 'none'
            ? {}
            : { effect: { key: idempotencyKey, tool: tool.name, effect: tool.effect, argsHash: argsHash(args) } }),
        },
        // Only an unsafe effect needs its record on disk before it starts: an idempotent one
        // whose record is lost is simply done again under the same key.
        tool.effect === 'unsafe',
      );
    }
    let ran: { result: ToolResult; failures: FailedAttempt[] };
    for (;;) {
      try {
        ran = await this.runTool(seq, tool, args, { modelSeq, callIndex, idempotencyKey }, earlier);
        break;
      } catch (error) {
        // An unsafe call that an earlier execution of this step began and never finished: as after a crash, a person decides.
        if (!(error instanceof AttemptInterruptedError) || tool.effect !== 'unsafe') throw error;
        const step = (await this.store.getSteps(this.run.id)).find((candidate) => candidate.seq === seq);
        if (!step) throw error;
        const decided = await this.decideUnknownOutcome(step, tool, args, idempotencyKey);
        if (decided !== 'retry') return decided;
        earlier = await this.restart(step);
      }
    }
    const result: ToolResult = this.guard.screen(
      tool,
      gate.edited && ran.result.ok
        ? { ...ran.result, content: `A person changed the arguments to ${JSON.stringify(args)} before approving this call. ${ran.result.content}` }
        : ran.result,
      gate.taint,
      args,
    );
    await this.endTool(seq, result, effectKey, ran.failures);
    return result;
  }

  /**
   * Asks a person before a call when the tool's or the agent's approval rules say so, and honours
   * their decision: the call goes ahead with exactly the arguments approved (edited ones
   * included), or is rejected with the reason the model reads. An approval once requested stands
   * for that step on every later attempt, whatever the rules say by then.
   */
  private async policyGate(
    seq: number,
    tool: Tool,
    args: unknown,
    confidence: number | undefined,
    firstAttempt: boolean,
  ): Promise<
    | { kind: 'go'; args: unknown; edited: boolean; taint?: TaintDecision }
    | { kind: 'waiting'; approval: ApprovalRecord }
    | { kind: 'rejected'; error: string; taint?: TaintDecision }
  > {
    let approval = await this.store.findApproval(this.run.id, seq, 'policy');
    // The taint rule: arguments carrying values found only in untrusted content hold or refuse the call.
    const check = firstAttempt ? this.guard.checkCall(tool, args) : undefined;
    const taint = check?.decision;
    if (!approval) {
      if (check?.action === 'refuse' && taint) return { kind: 'rejected', error: this.guard.refusal(taint), taint };
      const needed = check
        ? needsApproval(
            this.guard.approvalPolicy(tool, check),
            this.agent.approval,
            { tool: tool.name, args: args as Record<string, unknown>, effect: tool.effect, confidence, untrustedArguments: check.untrustedArguments },
            { runId: this.run.id, agent: this.agent.name, input: this.run.input },
            this.services.approvals,
          )
        : undefined;
      if (!needed) return { kind: 'go', args, edited: false, ...(taint ? { taint } : {}) };
      await this.flush();
      const requestedAt = this.now();
      approval = await this.store.requestApproval({
        id: `appr_${this.run.id.slice(4)}_${seq}`,
        runId: this.run.id,
        seq,
        kind: 'policy',
        agent: this.agent.name,
        tool: tool.name,
        args,
        argsHash: argsHash(args),
        summary: tool.describe(args),
        reason: needed.reason,
        requestedAt,
        deadline: needed.deadlineMs === undefined ? null : requestedAt + needed.deadlineMs,
        onExpiry: needed.onExpiry,
        escalateTo: needed.escalateTo,
      });
      this.emit({ type: 'approval_requested', approval });
    }
    const decision = approval.decision;
    if (approval.status === 'pending' || !decision) return { kind: 'waiting', approval };
    if (decision.action === 'reject') {
      const who = approval.decidedVia === 'deadline' ? 'No one approved this call in time' : `${approval.decidedBy ?? 'A person'} rejected this call`;
      return { kind: 'rejected', error: `${who}: ${decision.reason}`, ...(taint ? { taint } : {}) };
    }
    if (decision.action !== 'approve') throw new KeelError(`Approval ${approval.id} holds a decision (${decision.action}) that does not apply to it.`);
    const approved = decision.args === undefined ? approval.args : decision.args;
    if (argsHash(approved) !== decision.argsHash) {
      throw new KeelError(`Approval ${approval.id} approves arguments other than the ones it names; the call was not made.`);
    }
    if (decision.args === undefined) return { kind: 'go', args: approved, edited: false, ...(taint ? { taint } : {}) };
    const checked = tool.args.safeParse(approved);
    if (!checked.success) return { kind: 'rejected', error: `The arguments a person approved do not match ${tool.name}'s schema: ${checked.error.message}` };
    return { kind: 'go', args: checked.data, edited: true, ...(taint ? { taint } : {}) };
  }

  /**
   * An unsafe tool call was in progress when its process stopped: it may or may not have taken
   * effect, so a person decides. Returns the call's result when the decision settles it,
   * `retry` when it is to run again under the same key, or the approval still to be decided.
   */
  private async decideUnknownOutcome(
    recorded: StepRecord,
    tool: Tool,
    args: unknown,
    idempotencyKey: string,
  ): Promise<ToolResult | { approval: ApprovalRecord } | 'retry'> {
    let approval = await this.store.findApproval(this.run.id, recorded.seq, 'unknown_outcome');
    if (!approval) {
      approval = await this.store.requestApproval({
        id: `appr_${this.run.id.slice(4)}_${recorded.seq}_outcome`,
        runId: this.run.id,
        seq: recorded.seq,
        kind: 'unknown_outcome',
        agent: this.agent.name,
        tool: tool.name,
        args,
        argsHash: argsHash(args),
        summary: tool.describe(args),
        reason: `${tool.name} was running when its process stopped, and it is unsafe to repeat: Keel cannot tell whether it took effect. Retry it with the same idempotency key, mark it done with its result, or fail it.`,
        requestedAt: this.now(),
        deadline: null,
        onExpiry: 'reject',
        escalateTo: null,
      });
      this.emit({ type: 'approval_requested', approval });
    }
    const decision: Decision | null = approval.decision;
    if (!decision) return { approval };
    if (decision.action === 'retry') return 'retry';
    if (decision.action !== 'done' && decision.action !== 'fail') {
      throw new KeelError(`Approval ${approval.id} holds a decision (${decision.action}) that does not apply to it.`);
    }
    const result: ToolResult =
      decision.action === 'done'
        ? checkToolOutput(tool, decision.result)
        : { ok: false, error: `${tool.name} was marked as failed by ${approval.decidedBy ?? 'a person'}: ${decision.reason}` };
    this.started.set(recorded.seq, recorded);
    await this.endTool(recorded.seq, result, idempotencyKey, recorded.failedAttempts);
    return result;
  }

  private endTool(seq: number, result: ToolResult, effectKey: string | undefined, failures: readonly FailedAttempt[]): Promise<void> {
    return this.end(
      seq,
      {
        ...(result.ok
          ? { status: 'completed', output: { content: result.content, value: result.value, ...guardFields(result), ...spanFields(result) }, error: null }
          : { status: 'failed', output: { content: `Error: ${result.error}`, ...guardFields(result), ...spanFields(result) }, error: result.error }),
        usage: NO_USAGE,
        ...optionalKey(effectKey),
      },
      failures,
    );
  }

  private async runTool(
    seq: number,
    tool: Tool,
    args: unknown,
    call: { modelSeq: number; callIndex: number; idempotencyKey: string },
    earlier: readonly FailedAttempt[],
  ): Promise<{ result: ToolResult; failures: FailedAttempt[] }> {
    const failures = [...earlier];
    const annotations: Record<string, string | number | boolean> = {};
    const ctx: Omit<ToolContext, 'subAgent' | 'memory' | 'progress'> = {
      runId: this.run.id,
      stepId: call.modelSeq,
      callIndex: call.callIndex,
      idempotencyKey: call.idempotencyKey,
      signal: this.signal,
      log: (message) => this.emit({ type: 'tool_log', runId: this.run.id, seq, message: String(message) }),
      traceparent: traceparent(this.run.traceId, seq),
      annotate: (attributes) => Object.assign(annotations, attributes),
    };
    const annotated = (): { attributes?: SpanAttributes } => (Object.keys(annotations).length > 0 ? { attributes: { ...annotations } } : {});
    // Each attempt numbers the sub-agents it starts, in the order it starts them: the first keeps
    // the call's key, the next ones get `key:1`, `key:2`..., so a tool may start several at once
    // and an attempt that runs again continues the same sub-agent runs.
    const attempt = async (): Promise<unknown> => {
      let started = 0;
      const subAgents: Promise<string>[] = [];
      // Memory operations are numbered per attempt too: one that runs again reads what the first read.
      const memory = this.services.memory.forStep(seq, this.signal, outputChannelOf(tool));
      const context: ToolContext = {
        ...ctx,
        memory,
        progress: memory.progress,
        subAgent: (agent: Agent, input: string) => {
          const index = started++;
          const answer = this.services.subAgent(agent, input, seq, index === 0 ? call.idempotencyKey : `${call.idempotencyKey}:${index}`);
          // Held here until the attempt ends, so a tool that does not await it leaves no unhandled rejection.
          answer.catch(() => undefined);
          subAgents.push(answer);
          return answer;
        },
      };
      return afterSubAgents(this.services.tools.run(tool, args, context), subAgents);
    };
    const breaker = this.services.breakers.for(`tool ${tool.name}`);
    const effectKey = tool.effect === 'none' ? undefined : call.idempotencyKey;
    try {
      const value = await this.withRetries(seq, tool.retry, failures, effectKey, async () => {
        breaker.admit();
        try {
          const step = { runId: this.run.id, seq, kind: 'tool', key: call.idempotencyKey, attempt: failures.length + 1 } as const;
          const result = await this.services.steps.run(tool.effect === 'none' ? step : { ...step, effect: tool.effect }, attempt);
          breaker.succeeded();
          return result;
        } catch (error) {
          if (!this.signal.aborted && !(error instanceof RunPausedError) && classifyError(error, tool.retry).class === 'retry') breaker.failed();
          throw error;
        }
      });
      return { result: { ...checkToolOutput(tool, value), ...annotated() }, failures };
    } catch (caught) {
      // Not a failure of the call: its process stopped during it. The step stays in progress.
      if (caught instanceof AttemptInterruptedError) throw caught;
      // Not a failure either: the attempt paused for a sub-agent. The step stays in progress, its
      // attempt recorded as paused, and goes on as a new attempt once the sub-agent can.
      if (caught instanceof RunPausedError) {
        failures.push({ attempt: failures.length + 1, error: caught.message, class: 'retry', reason: PAUSED, at: this.now() });
        await this.flush();
        await this.store.recordFailedAttempts(this.run.id, seq, failures, effectKey);
        throw caught;
      }
      const error = caught instanceof AttemptsExhaustedError && caught.lastError instanceof CircuitOpenError ? caught.lastError : caught;
      if (this.signal.aborted || error instanceof CircuitOpenError) {
        const message = failureMessage(error, this.signal);
        await this.end(seq, { status: 'failed', output: null, error: message, usage: NO_USAGE, ...optionalKey(effectKey) }, failures);
        await this.flush();
        throw error;
      }
      const last = error instanceof AttemptsExhaustedError ? error.lastError : error;
      const tries = failures.length - earlier.length;
      const error_ = tries > 1 ? `${tool.name} failed after ${tries} attempts: ${describeError(last)}` : `${tool.name} failed: ${describeError(last)}`;
      return { result: { ok: false, error: error_, ...annotated() }, failures };
    }
  }

  private withRetries<T>(
    seq: number,
    policy: RetryPolicy,
    failures: FailedAttempt[],
    effectKey: string | undefined,
    operation: (attempt: number) => Promise<T>,
  ): Promise<T> {
    const { random, sleep } = this.services;
    const offset = failures.length;
    return withRetries(operation, {
      policy,
      signal: this.signal,
      random,
      sleep,
      now: this.now,
      onFailedAttempt: async (failure) => {
        const numbered = { ...failure, attempt: failure.attempt + offset };
        failures.push(numbered);
        await this.flush();
        await this.store.recordFailedAttempts(this.run.id, seq, failures, effectKey);
        this.emit({ type: 'step_retry', runId: this.run.id, seq, failure: numbered });
      },
    });
  }

  /** Checkpoint before execute: the end of the previous step and the start of this one, in one transaction. */
  private async begin(start: StepStart, durable = false): Promise<void> {
    const ended = this.pendingEnd;
    this.pendingEnd = undefined;
    await this.store.transition({ ...(ended ? { end: ended.end, ...(ended.close ? { close: ended.close } : {}) } : {}), begin: start, durable });
    if (ended) this.emit({ type: 'step_finished', step: ended.record });
    this.emit({
      type: 'step_started',
      step: {
        runId: start.runId,
        seq: start.seq,
        kind: start.kind,
        name: start.name,
        status: 'in_progress',
        input: start.input,
        output: null,
        error: null,
        idempotencyKey: start.idempotencyKey,
        attempts: 1,
        failedAttempts: [],
        costUsd: null,
        startedAt: start.startedAt,
        endedAt: null,
      },
    });
    this.started.set(start.seq, { kind: start.kind, name: start.name, input: start.input, idempotencyKey: start.idempotencyKey, startedAt: start.startedAt });
  }

  /**
   * A step that was in progress when its process stopped runs again, as one more attempt.
   * Returns its failed attempts, the interrupted one included.
   */
  private async restart(recorded: StepRecord): Promise<FailedAttempt[]> {
    await this.flush();
    const startedAt = this.now();
    const interruption: FailedAttempt = {
      attempt: recorded.failedAttempts.length + 1,
      error: 'The runtime process stopped during this attempt.',
      class: 'retry',
      reason: 'interrupted',
      at: startedAt,
    };
    await this.store.restartStep(this.run.id, recorded.seq, startedAt, interruption);
    const { kind, name, input, idempotencyKey } = recorded;
    this.started.set(recorded.seq, { kind, name, input, idempotencyKey, startedAt });
    return [...recorded.failedAttempts, interruption];
  }

  /**
   * A tool step whose last attempt paused for a sub-agent goes on as a new attempt: the pause is
   * recorded with how long it lasted, which also marks that an attempt began after it.
   */
  private async resumeAfterPause(recorded: StepRecord, effectKey: string | undefined): Promise<FailedAttempt[]> {
    await this.flush();
    const at = this.now();
    const failures = recorded.failedAttempts.map((failure, index) =>
      index === recorded.failedAttempts.length - 1 ? { ...failure, delayMs: Math.max(0, at - failure.at) } : failure,
    );
    await this.store.recordFailedAttempts(this.run.id, recorded.seq, failures, effectKey);
    const { kind, name, input, idempotencyKey, startedAt } = recorded;
    this.started.set(recorded.seq, { kind, name, input, idempotencyKey, startedAt });
    return failures;
  }

  /** Remembers a step's end; it is written with the next step's start, or flushed. */
  private end(
    seq: number,
    end: Omit<StepEnd, 'runId' | 'seq' | 'endedAt'>,
    failures: readonly FailedAttempt[],
    close?: { id: string; actual: Amounts; at: number },
  ): Promise<void> {
    const endedAt = this.now();
    const begun = this.started.get(seq);
    this.started.delete(seq);
    const full: StepEnd = { ...end, runId: this.run.id, seq, endedAt };
    const record: StepRecord = {
      runId: this.run.id,
      seq,
      kind: begun?.kind ?? 'tool',
      name: begun?.name ?? '',
      status: end.status,
      input: begun?.input ?? null,
      output: end.output ?? null,
      error: end.error,
      idempotencyKey: begun?.idempotencyKey ?? null,
      attempts: failures.length + 1,
      failedAttempts: failures,
      costUsd: end.costUsd ?? null,
      startedAt: begun?.startedAt ?? endedAt,
      endedAt,
    };
    this.stepsDone += 1;
    this.pendingEnd = close ? { end: full, record, close } : { end: full, record };
    this.services.inspector?.afterStep?.(record);
    return Promise.resolve();
  }

  private async flush(): Promise<void> {
    const ended = this.pendingEnd;
    if (!ended) return;
    this.pendingEnd = undefined;
    await this.store.transition({ end: ended.end, ...(ended.close ? { close: ended.close } : {}) });
    this.emit({ type: 'step_finished', step: ended.record });
  }
}

/** The reason recorded for a tool call's attempt that paused for a sub-agent. */
const PAUSED = 'paused';

/**
 * Whether a tool step in progress paused for a sub-agent and no attempt began after: its last
 * attempt is recorded as paused, with no wait after it yet. An attempt that began after a pause
 * and never ended (its process died) leaves the pause with its wait: its outcome is unknown.
 */
function pausedAttempt(step: StepRecord): boolean {
  const last = step.failedAttempts.at(-1);
  return last !== undefined && last.reason === PAUSED && last.delayMs === undefined && step.attempts === step.failedAttempts.length + 1;
}

/**
 * One attempt of a tool call ends once every sub-agent it started has stopped; if one of them
 * paused, so does the attempt, whatever the tool made of it (a tool that caught the pause and
 * answered something else must not end the call without the sub-agent's work).
 */
async function afterSubAgents<T>(result: Promise<T>, subAgents: readonly Promise<string>[]): Promise<T> {
  const settled = await Promise.allSettled([result]);
  let pause: RunPausedError | undefined;
  // A sub-agent may start another while the first ones settle: wait until none is new.
  for (let seen = 0; seen < subAgents.length; ) {
    const batch = subAgents.slice(seen);
    seen = subAgents.length;
    for (const outcome of await Promise.allSettled(batch)) {
      if (outcome.status === 'rejected' && outcome.reason instanceof RunPausedError) pause ??= outcome.reason;
    }
  }
  if (pause) throw pause;
  const [own] = settled;
  if (own?.status === 'rejected') throw own.reason;
  return (own as PromiseFulfilledResult<T>).value;
}

/** The attributes a tool added to its span, as its step's output records them. */
function spanFields(result: ToolResult): { attributes?: SpanAttributes } {
  return result.attributes ? { attributes: result.attributes } : {};
}

function optionalKey(effectKey: string | undefined): { effectKey?: string } {
  return effectKey === undefined ? {} : { effectKey };
}

function failureMessage(error: unknown, signal: AbortSignal): string {
  if (signal.aborted) return describeError(signal.reason);
  if (error instanceof AttemptsExhaustedError) return describeError(error.lastError);
  return describeError(error);
}

function attemptsMessage(label: string, error: AttemptsExhaustedError): string {
  const last = error.failures.at(-1);
  const attempts = error.failures.length;
  const why = last && last.class === 'never' ? `(${last.reason}, not retried)` : `after ${attempts} attempts`;
  return `The model ${label} failed ${why}: ${describeError(error.lastError)}`;
}

/** Who decides, for the record: the OS user running this process. */
export function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? 'unknown'}`;
  }
}

/** A tool call's arguments in a canonical form, so equal calls compare equal however the model spaced them. */
function canonicalArguments(raw: string): string {
  try {
    return canonicalJson(JSON.parse(raw));
  } catch {
    return raw;
  }
}

/**
 * Whether a recorded tool step's input is the call's, by their canonical JSON. The record the loop
 * writes (a plain object of exactly those two strings) against a call of two strings compares
 * directly, to the same answer without writing either out: quoting strings is one-to-one.
 */
function sameToolInput(recorded: unknown, input: { readonly toolCallId: string; readonly arguments: string }): boolean {
  if (typeof input.toolCallId === 'string' && typeof input.arguments === 'string' && isToolInputRecord(recorded)) {
    return recorded.toolCallId === input.toolCallId && recorded.arguments === input.arguments;
  }
  return canonicalJson(recorded) === canonicalJson(input);
}

function isToolInputRecord(value: unknown): value is { readonly toolCallId: string; readonly arguments: string } {
  if (typeof value !== 'object' || value === null) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return false;
  const keys = Object.keys(value);
  if (keys.length !== 2 || !keys.includes('toolCallId') || !keys.includes('arguments')) return false;
  const record = value as Record<string, unknown>;
  return typeof record['toolCallId'] === 'string' && typeof record['arguments'] === 'string';
}

/** What a run records of its agent as it starts, for traces and audits long after. */
function recordedAgent(agent: Agent, mcp: McpPin | undefined): RecordedAgent {
  return {
    instructions: agent.instructions,
    requiredTools: agent.requiredTools,
    toolEffects: Object.fromEntries([...agent.tools.values()].map((tool) => [tool.name, tool.effect])),
    ...(mcp ? { mcp } : {}),
  };
}
