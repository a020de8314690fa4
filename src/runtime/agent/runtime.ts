import { randomBytes } from 'node:crypto';
import type { ApprovalPolicy } from '../approval/policy';
import { mergeLimits, type BudgetLimits, type BudgetPool } from '../budget/budget';
import { DEFAULT_PRICES, type PriceTable } from '../budget/prices';
import { RunBudget } from '../budget/runBudget';
import { CircuitBreakers } from '../effects/circuitBreaker';
import { abortableSleep } from '../effects/retry';
import { KeelError } from '../errors';
import { RUN_STATE_LABELS } from '../format';
import { sha256 } from '../hash/canonicalJson';
import { newRunId } from '../ids';
import type { McpConnections } from '../mcp/connections';
import type { McpPin } from '../mcp/definitions';
import type { McpResolution } from '../mcp/resolveTools';
import { withBuiltinTools } from '../memory/builtinTools';
import { RunMemory } from '../memory/runMemory';
import { modelLabel, type Model } from '../model/model';
import { resolveModel } from '../model/resolve';
import { ToolRunner, type SandboxOptions } from '../sandbox/toolRunner';
import { RESUMABLE_STATES, TERMINAL_STATES, type CheckpointStore, type RecordedAgent, type RunRecord, type StepRecord } from '../store/checkpointStore';
import { approvalsOfTree } from '../store/runTree';
import { threadAndTask } from '../threads/startThread';
import type { Agent } from './define';
import type { RunEventListener } from './events';
import { Execution } from './execution';
import type { RunInspector } from './inspector';
import { PROCESS_OWNER, RESTATE_OWNER_PREFIX, isOwnerAlive } from './owner';
import { SubAgentPausedError } from './pause';
import type { Services } from './runContext';
import { DIRECT_STEPS, type StepRunner } from './steps';

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
  /** How long a model call whose budgets are full waits for calls in flight to settle before its run stops. Default 30 s. */
  readonly budgetWaitMs?: number;
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
  /**
   * Larger limits for a run that stopped `budget_exceeded` (merged over its own): it goes on from
   * its journal, its recorded work kept. A limit may only grow.
   */
  readonly budget?: BudgetLimits;
  readonly onEvent?: RunEventListener;
}

export interface RunHandle {
  readonly runId: string;
  /** Settles with the run's record when it stops (ended, paused or interrupted); rejects only if the store fails. */
  readonly done: Promise<RunRecord>;
  /** Stops the run at the next opportunity; it ends `cancelled`. */
  cancel(): void;
}

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
  private readonly budgetWaitMs: number | undefined;
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
    this.budgetWaitMs = options.budgetWaitMs;
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
    if (existing.state === 'budget_exceeded') await this.raiseBudget(existing, options.budget);
    else if (!RESUMABLE_STATES.includes(existing.state)) {
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

  /** Gives a `budget_exceeded` run the larger limits it is resumed with, or says how to resume it. */
  private async raiseBudget(run: RunRecord, given: BudgetLimits | undefined): Promise<void> {
    const own: Readonly<Record<string, number | undefined>> = { ...run.budget };
    const limits = Object.entries({ ...given }).filter(([key, value]) => key !== 'warnAt' && value !== undefined);
    const grows = limits.some(([key, value]) => value > (own[key] ?? Infinity) || own[key] === undefined);
    const shrinks = limits.some(([key, value]) => value < (own[key] ?? -Infinity));
    if (!grows || shrinks) {
      throw new KeelError(
        `Run ${run.id} stopped at its budget (${run.error?.replace(/^Stopped: /, '') ?? 'budget_exceeded'}); continue it with a larger one, such as keel resume ${run.id} --budget-tokens <n> (or --budget-usd, --budget-steps, --budget-time), and its recorded work is kept.`,
      );
    }
    if (!(await this.store.raiseRunBudget(run.id, { ...run.budget, ...given }, this.now()))) throw new KeelError(`Run ${run.id} was resumed by another process just now.`);
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
    const budget = await RunBudget.forRun(this.store, run, this.pools, [agent.prices, ...this.prices, DEFAULT_PRICES], this.now, emit, this.budgetWaitMs);
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
    const execution = new Execution(services, agent, model, run, steps, controller.signal, emit);
    return {
      runId: run.id,
      done: execution.execute(),
      cancel: () => controller.abort(new Error('Cancelled by the user.')),
    };
  }
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
