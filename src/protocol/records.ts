/**
 * Runs, steps, approvals, budgets, threads and memory as the runtime process reports them to the
 * editor and the editor to its webviews. These are the protocol's own types: the runtime process
 * maps its store records to them in one place (src/daemon/toProtocol.ts), so the store can change
 * without changing what crosses a process or webview boundary. Plain JSON throughout.
 */

/**
 * - `running`: a runtime process is executing it now.
 * - `interrupted`: its process stopped without finishing it; it can be resumed.
 * - `waiting_approval`: paused until a person decides.
 * - `completed`, `failed`, `cancelled`: ended; `budget_exceeded`: stopped at a budget's limit.
 */
export type RunState = 'running' | 'interrupted' | 'waiting_approval' | 'completed' | 'failed' | 'cancelled' | 'budget_exceeded';

export interface Usage {
  readonly inputTokens: number;
  readonly outputTokens: number;
}

export interface Amounts extends Usage {
  readonly usd: number;
}

/** Limits on what a run (or a pool of runs) may spend. Every field is optional. */
export interface BudgetLimits {
  readonly inputTokens?: number;
  readonly outputTokens?: number;
  /** Input and output tokens together. */
  readonly tokens?: number;
  readonly usd?: number;
  /** Model calls and tool calls. Per run only. */
  readonly steps?: number;
  /** Time spent running, pauses excluded. Per run only. */
  readonly wallTimeMs?: number;
  /** The fraction of a limit at which Keel warns. Default 0.8. */
  readonly warnAt?: number;
}

export type BudgetDimension = 'inputTokens' | 'outputTokens' | 'tokens' | 'usd' | 'steps' | 'wallTimeMs';

/** The agent as a run saw it when it started. */
export interface AgentFacts {
  readonly instructions: string;
  readonly requiredTools: readonly string[];
  /** Each tool's effect, by tool name. */
  readonly toolEffects: Readonly<Record<string, 'none' | 'idempotent' | 'unsafe'>>;
}

export interface Run {
  readonly id: string;
  readonly agent: string;
  /** Absolute path of the agent file the run was started from, when it came from one. */
  readonly agentFile: string | null;
  /** `provider:name` of the model the run was started with. */
  readonly model: string;
  readonly input: string;
  readonly state: RunState;
  /** One trace for the whole run, across pauses and resumes. */
  readonly traceId: string;
  /** The runtime process that runs or last ran it: `host/pid/token`. */
  readonly owner: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly endedAt: number | null;
  readonly stepCount: number;
  readonly usage: Usage;
  /** What its model calls cost, in USD, as far as their prices are known. */
  readonly costUsd: number;
  /** False when a model without a known price ran: `costUsd` is then a lower bound. */
  readonly costKnown: boolean;
  /** Time spent executing, pauses excluded, in milliseconds. */
  readonly activeMs: number;
  readonly budget: BudgetLimits | null;
  readonly agentFacts: AgentFacts | null;
  /** The run that started this one as a sub-agent, and the step that did. */
  readonly parentRunId: string | null;
  readonly parentSeq: number | null;
  /** The thread it continues, if any (absent where the database keeps no threads). */
  readonly threadId?: string | null;
  readonly taskId?: string | null;
  /** The final answer, when it completed. */
  readonly result: string | null;
  /** Why it failed, was cancelled, was interrupted or waits. */
  readonly error: string | null;
}

export type StepKind = 'model' | 'tool';
export type StepStatus = 'in_progress' | 'completed' | 'failed';

/** An attempt of a step that failed, how it was classified, and how long Keel waited after it. */
export interface FailedAttempt {
  /** 1 for the first attempt. */
  readonly attempt: number;
  readonly error: string;
  readonly class: 'retry' | 'never';
  readonly reason: string;
  /** Absent when Keel gave up. */
  readonly delayMs?: number;
  readonly at: number;
}

/** One entry of a run's journal: a model call or a tool call. */
export interface Step {
  readonly runId: string;
  readonly seq: number;
  readonly kind: StepKind;
  /** The model label for model steps, the tool name for tool steps. */
  readonly name: string;
  readonly status: StepStatus;
  readonly input: unknown;
  /** A completed model step's is a ModelAnswer; a tool step's has `content`. */
  readonly output: unknown;
  readonly error: string | null;
  readonly idempotencyKey: string | null;
  readonly attempts: number;
  readonly failedAttempts: readonly FailedAttempt[];
  /** What a model step cost in USD; null for tool steps and models without a known price. */
  readonly costUsd: number | null;
  readonly startedAt: number;
  readonly endedAt: number | null;
}

/** What a completed model step's output holds. */
export interface ModelAnswer {
  readonly message: {
    readonly content: string | null;
    readonly toolCalls: readonly { readonly id: string; readonly name: string; readonly arguments: string }[];
  };
  readonly usage?: Usage;
}

/** `policy`: a rule asks before a tool call; `unknown_outcome`: a side effect was in flight when its process died. */
export type ApprovalKind = 'unknown_outcome' | 'policy';
export type ApprovalStatus = 'pending' | 'decided' | 'expired';
export type DecisionSource = 'cli' | 'vscode' | 'deadline';

/** What was decided about an approval. */
export type Decision =
  | { readonly action: 'approve'; readonly argsHash: string; readonly args?: unknown }
  | { readonly action: 'reject'; readonly reason: string }
  | { readonly action: 'retry' }
  | { readonly action: 'done'; readonly result: unknown }
  | { readonly action: 'fail'; readonly reason: string };

export interface Approval {
  readonly id: string;
  readonly runId: string;
  readonly seq: number;
  readonly kind: ApprovalKind;
  readonly agent: string;
  readonly tool: string;
  readonly args: unknown;
  /** SHA-256 of the canonical JSON of `args`: approving names it. */
  readonly argsHash: string;
  /** The call in a few words for a person: `$640 NYC→LIS`. */
  readonly summary: string;
  readonly reason: string;
  readonly requestedAt: number;
  readonly deadline: number | null;
  readonly onExpiry: 'reject' | 'escalate';
  readonly escalateTo: string | null;
  readonly escalatedAt: number | null;
  readonly status: ApprovalStatus;
  readonly decision: Decision | null;
  readonly decidedBy: string | null;
  readonly decidedVia: DecisionSource | null;
  readonly decidedAt: number | null;
  /** A sub-agent's approval: the runs it stands under, its parent first (as listApprovals answers). */
  readonly under?: readonly { readonly runId: string; readonly agent: string }[];
}

export interface ApprovalCounts {
  readonly requested: number;
  readonly pending: number;
  readonly approved: number;
  readonly rejected: number;
  /** Approved with arguments a person changed. */
  readonly edited: number;
  readonly expired: number;
  readonly escalated: number;
  /** Approved out of decided, 0 to 1; null before any decision. */
  readonly approvalRate: number | null;
  /** Milliseconds from request to a person's decision (deadlines excluded). */
  readonly latencyP50Ms: number | null;
  readonly latencyP95Ms: number | null;
}

/** How often people are asked, what they decide, and how long they take. */
export interface ApprovalStats {
  readonly overall: ApprovalCounts;
  readonly byTool: Readonly<Record<string, ApprovalCounts>>;
  readonly byAgent: Readonly<Record<string, ApprovalCounts>>;
}

export interface Budget {
  /** `run:<runId>` for a run's own budget, `pool:<id>` for a shared one. */
  readonly id: string;
  readonly kind: 'run' | 'pool';
  readonly limits: BudgetLimits;
  readonly spent: Amounts;
  /** Held by reservations of calls in flight. */
  readonly reserved: Amounts;
  readonly createdAt: number;
}

/** What a model call holds of its budgets while it runs, and what it settled at. */
export interface Reservation {
  readonly id: string;
  readonly runId: string;
  readonly seq: number;
  readonly model: string;
  readonly budgetIds: readonly string[];
  readonly amounts: Amounts;
  readonly status: 'held' | 'settled' | 'released';
  readonly actual: Amounts | null;
  readonly createdAt: number;
  readonly closedAt: number | null;
}

/** The median and the 95th percentile of a figure over earlier runs. */
export interface Spread {
  readonly p50: number;
  readonly p95: number;
}

/** What earlier completed runs of an agent with one model spent, with their sub-agent runs. */
export interface ModelForecast {
  /** `provider:name`, the model the runs started with. */
  readonly model: string;
  /** Completed runs the figures rest on. */
  readonly basedOn: number;
  readonly tokens: Spread;
  readonly inputTokens: Spread;
  readonly outputTokens: Spread;
  readonly usd: Spread;
  /** Journal steps of the run itself. */
  readonly steps: Spread;
  /** Time spent running, pauses excluded, of the run itself. */
  readonly activeMs: Spread;
  /** False when some of those runs used a model without a known price: their money is a lower bound. */
  readonly costKnown: boolean;
}

/** What a run of an agent will likely spend, from its earlier top-level runs that ended. */
export interface Forecast {
  readonly agent: string;
  /** Per model, from completed runs only, the model with the most runs first. */
  readonly models: readonly ModelForecast[];
  /** Earlier runs that ended otherwise, counted apart. */
  readonly failed: number;
  readonly budgetExceeded: number;
  readonly cancelled: number;
}

/** The forecast of a run about to start, compared with the budgets it will draw on. */
export interface RunForecast {
  readonly agent: string;
  /** The model the run will start with. */
  readonly model: string;
  /** Null before any run of the agent ended. */
  readonly forecast: Forecast | null;
  /** The forecast in a sentence, as `keel run` prints it; null before any run of the agent ended. */
  readonly sentence: string | null;
  /** One sentence per budget that 95% of earlier completed runs with this model spent more than. */
  readonly warnings: readonly string[];
}

/** Where content came from; untrusted content is recalled fenced. */
export type ContentChannel = 'user' | 'document' | 'tool_output';

export interface ThreadSummary {
  readonly text: string;
  readonly channel: ContentChannel;
  readonly throughRunId: string;
  /** How many runs it covers, from the first. */
  readonly coveredRuns: number;
  readonly runId: string;
  readonly seq: number;
  readonly at: number;
}

/** A conversation that goes on across runs. */
export interface Thread {
  readonly id: string;
  readonly agent: string;
  /** The input of its first run, shortened. */
  readonly title: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly runCount: number;
  readonly summary: ThreadSummary | null;
}

export interface MemoryItem {
  readonly namespace: string;
  readonly key: string;
  /** Any JSON value. */
  readonly value: unknown;
  readonly channel: ContentChannel;
  /** 1 for the first write, one more for each write after. */
  readonly revision: number;
  /** Who wrote the current value: `run:<runId>:<seq>`, `cli:<user>` or `vscode:<user>`. */
  readonly writtenBy: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface NamespaceSummary {
  readonly namespace: string;
  readonly count: number;
  readonly updatedAt: number;
}
