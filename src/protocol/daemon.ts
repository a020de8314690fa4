import type { RunEvent } from '../runtime/agent/events';
import type { ApprovalRecord, RunRecord, StepRecord } from '../runtime/store/checkpointStore';

/** The messages between the extension and the runtime process it spawns (JSON-RPC over stdio). */

export interface InitializeParams {
  readonly workspaceRoot: string;
  /** Absolute path of the run database; defaults to `.keel/keel.db` under the workspace root. */
  readonly databasePath?: string;
}

export interface InitializeResult {
  readonly version: string;
  readonly nodeVersion: string;
  readonly databasePath: string;
  /** The runtime script actually running: the workspace's keel-agents or the extension's own. */
  readonly runtimePath: string;
  /** Runs whose process stopped before they finished, found when this runtime process started. */
  readonly interrupted: readonly RunRecord[];
}

export interface StartRunParams {
  readonly agentFile: string;
  readonly input: string;
  /** A model spec overriding the agent's, such as `openai:gpt-4o-mini`. */
  readonly model?: string;
}

export interface ListApprovalsParams {
  readonly runId?: string;
  readonly status?: ApprovalRecord['status'];
}

/** Requests the runtime process answers. */
export interface DaemonRequests {
  initialize: { params: InitializeParams; result: InitializeResult };
  startRun: { params: StartRunParams; result: { runId: string } };
  /** Continues an interrupted or paused run from its last checkpoint, in this process. */
  resumeRun: { params: { runId: string }; result: { runId: string } };
  cancelRun: { params: { runId: string }; result: { cancelled: boolean } };
  listRuns: { params: { limit?: number }; result: RunRecord[] };
  getRun: { params: { runId: string }; result: { run: RunRecord; steps: StepRecord[] } };
  /** Approvals in the order they were requested: of one run or all, pending or decided or both. */
  listApprovals: { params: ListApprovalsParams; result: ApprovalRecord[] };
  shutdown: { params: Record<string, never>; result: null };
}

/** Notifications the runtime process sends. */
export interface DaemonNotifications {
  runEvent: RunEvent;
}

/** The runtime process exits with this code when its Node is too old; stderr says which. */
export const EXIT_UNSUPPORTED_NODE = 3;
/** The oldest Node major the runtime runs on. */
export const MIN_NODE_MAJOR = 22;
