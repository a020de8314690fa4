import type { AlertNotifications, ReviewRequests } from './alerts';
import type { RunEvent } from './events';
import type { CaseTag, GoldenEvent, GoldenFileError, GoldenFileReport, TextRange } from './golden';
import type { MemoryRequests } from './memory';
import type { Approval, ApprovalStats, ApprovalStatus, Run, RunForecast, Step } from './records';
import type { SpendReport } from './spend';
import type { RunComparison } from '../shared/runComparison';
import type { TraceSpan } from './trace';

/** The messages between the extension and the runtime process it spawns (JSON-RPC over stdio). */

/**
 * A person's decision from the editor: approve the arguments asked about (named by the hash the
 * approval gave them) or other arguments (edited in the review; the runtime process names them by
 * their hash), reject with a reason the model reads, or give the result of a call whose outcome is
 * unknown.
 */
export type DecisionRequest =
  | { readonly action: 'approve'; readonly argsHash: string; readonly args?: unknown }
  | { readonly action: 'approve'; readonly args: unknown }
  | { readonly action: 'reject'; readonly reason: string }
  | { readonly action: 'done'; readonly result: unknown };

/** A new run forked from a run's step, with the step's result as the edited fork document says. */
export interface ForkRequest {
  readonly runId: string;
  readonly seq: number;
  /** The step's result, edited; the step as recorded when absent. */
  readonly document?: string;
}

export interface InitializeParams {
  readonly workspaceRoot: string;
  /**
   * The editor's Keel settings the user set, by full name (`keel.databasePath`): they override the
   * workspace's keel.config.ts, and this process's environment overrides them.
   */
  readonly settings?: Readonly<Record<string, unknown>>;
  /** False in Restricted Mode: keel.config.ts is not loaded, and nothing of the workspace runs. */
  readonly trusted?: boolean;
  /** Servers the workspace names are reached only once the person allowed them. */
  readonly serverConsent?: ServerConsentParams;
}

/** What the editor knows of the person's consent to the servers a workspace names. */
export interface ServerConsentParams {
  /** The settings the workspace itself set (its .vscode/settings.json), by full name. */
  readonly workspaceSettings: readonly string[];
  /** The servers the person allowed for this workspace, as `host:port`. */
  readonly allowed: readonly string[];
}

export interface InitializeResult {
  readonly version: string;
  readonly nodeVersion: string;
  /** Where the runs are: the database file, or the connection string without its password. */
  readonly databasePath: string;
  /** The runtime script actually running: the workspace's keel-agents or the extension's own. */
  readonly runtimePath: string;
  /** Runs whose process stopped before they finished, found when this runtime process started. */
  readonly interrupted: readonly Run[];
}

export interface StartRunParams {
  readonly agentFile: string;
  readonly input: string;
  /** A model spec overriding the agent's, such as `openai:gpt-4o-mini`. */
  readonly model?: string;
  /** The thread the run continues (created if new). */
  readonly threadId?: string;
  /** The task the run works on: it starts from the task's progress notes. */
  readonly taskId?: string;
}

export interface ListApprovalsParams {
  readonly runId?: string;
  readonly status?: ApprovalStatus;
}

export interface DecideParams {
  readonly approvalId: string;
  /** What the person decided; an approval names the hash of the arguments it approves. */
  readonly request: DecisionRequest;
}

export interface DecideResult {
  /** The approval with its decision recorded: by the OS user, via `vscode`. */
  readonly approval: Approval;
  /** Whether its run went on in the runtime process (it was waiting for this decision and no other). */
  readonly resumed: boolean;
}

/** A golden case as the Test Explorer shows it. */
export interface GoldenCaseInfo {
  readonly name: string;
  readonly tags: readonly CaseTag[];
  readonly input: string;
  readonly range: TextRange;
}

export interface GoldenFileCases {
  readonly file: string;
  readonly agentFile: string | null;
  readonly cases: readonly GoldenCaseInfo[];
  /** Why the file cannot be used, and where (1-based line and column), when it cannot. */
  readonly error: GoldenFileError | null;
}

/** A golden run's cases; their runs are kept where the configured `golden.database` says (a file, or `:memory:`). */
export interface RunGoldenParams {
  /** Chosen by the caller; names this run in `goldenEvent` notifications and `cancelGolden`. */
  readonly token: string;
  readonly file: string;
  /** Names of the cases to run; all when absent. */
  readonly cases?: readonly string[];
  readonly mode: 'replay' | 'live';
}

/** A new project written by Keel: Create Agent… (what `keel init` writes), paths relative to its folder. */
export interface CreatedProject {
  readonly folder: string;
  /** The new agent file, absolute: the editor opens it. */
  readonly agentFile: string;
  readonly written: readonly string[];
  /** What the person still has to do (a package.json without keel-agents, a cassette not recorded yet). */
  readonly todo: readonly string[];
  /** Whether package.json was written, so its dependencies still need `npm install`. */
  readonly wrotePackageJson: boolean;
}

/** Requests the runtime process answers. */
export interface DaemonRequests extends MemoryRequests, ReviewRequests {
  initialize: { params: InitializeParams; result: InitializeResult };
  /**
   * Writes a new project into a folder, as `keel init` does; refused, writing nothing, when a file
   * it would write exists. In Restricted Mode it writes the files but runs nothing (no cassette).
   */
  createProject: { params: { folder: string }; result: CreatedProject };
  startRun: { params: StartRunParams; result: { runId: string } };
  /** Continues an interrupted or paused run from its last checkpoint, in this process. */
  resumeRun: { params: { runId: string }; result: { runId: string } };
  /**
   * A new run forked from a run's step, with that step's result as the edited fork document says
   * (what Fork Run from Here opens); it goes on here, live, from there.
   */
  forkRun: { params: ForkRequest; result: { runId: string } };
  cancelRun: { params: { runId: string }; result: { cancelled: boolean } };
  listRuns: { params: { limit?: number }; result: Run[] };
  getRun: { params: { runId: string }; result: { run: Run; steps: Step[] } };
  /** The run as plain text, one block per step, as the debugger's transcript documents show it. */
  getTranscript: { params: { runId: string }; result: { text: string } };
  /** Two runs side by side, step by step, with what differs in each pair of steps and the first difference (run A, then B). */
  compareRuns: { params: { runA: string; runB: string }; result: RunComparison };
  /** The run as a trace: its spans, derived from its journal, with the flags the detectors raised. */
  getTrace: { params: { runId: string }; result: { spans: TraceSpan[]; /** Whether the spans carry prompts, completions, arguments and results. */ contentRecorded: boolean } };
  /** How many flags the detectors raise on each of these runs, for the Runs tree. */
  getFlagCounts: { params: { runIds: readonly string[] }; result: { counts: Record<string, number> } };
  /** Approvals in the order they were requested: of one run or all, pending or decided or both. */
  listApprovals: { params: ListApprovalsParams; result: Approval[] };
  /** How often people are asked, what they decide and how fast, over every approval of the database. */
  approvalStats: { params: Record<string, never>; result: ApprovalStats };
  /**
   * A person's decision from the editor, checked against its approval as the CLI checks it; then
   * the run goes on here when it waits for no other decision. Agents and tools cannot send this.
   */
  decide: { params: DecideParams; result: DecideResult };
  /** What a run and its sub-agent runs spent and hold: the budget meter's numbers. */
  getSpend: { params: { runId: string }; result: SpendReport };
  /**
   * What a run of an agent will likely cost, from its earlier completed runs with the model it would
   * start with (`model`, else the editor's or the agent's), and the budgets that spend would not fit:
   * of the agent an agent file defines, or of an agent by name. Null when neither is given.
   */
  forecast: { params: { agent?: string; agentFile?: string; model?: string }; result: RunForecast | null };
  /** New editor settings (the user changed some): runs started from now on use them. */
  configure: { params: { settings: Readonly<Record<string, unknown>> }; result: null };
  /** The cases of a golden file, each with its place in the file, or why the file cannot be used. */
  listGoldenCases: { params: { file: string }; result: GoldenFileCases };
  /**
   * Runs cases of a golden file (all, or those named), replayed from its cassette or live;
   * `goldenEvent` notifications with the same token report each case as it starts and ends.
   */
  runGolden: { params: RunGoldenParams; result: GoldenFileReport };
  /** Stops a golden run started with this token after the case under way. */
  cancelGolden: { params: { token: string }; result: { cancelled: boolean } };
  shutdown: { params: Record<string, never>; result: null };
}

/** Notifications the runtime process sends. */
export interface DaemonNotifications extends AlertNotifications {
  runEvent: RunEvent;
  /** Progress of a golden run: its token, and a case started or finished. */
  goldenEvent: { readonly token: string; readonly event: GoldenEvent };
}

/** The runtime process exits with this code when its Node is too old; stderr says which. */
export const EXIT_UNSUPPORTED_NODE = 3;
/** The oldest Node major the runtime runs on. */
export const MIN_NODE_MAJOR = 22;
