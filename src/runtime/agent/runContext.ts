import type { ApprovalPolicy } from '../approval/policy';
import type { RunBudget } from '../budget/runBudget';
import type { CircuitBreakers } from '../effects/circuitBreaker';
import { withRetries, type FailedAttempt, type RetryPolicy } from '../effects/retry';
import type { RunGuard } from '../guard/runGuard';
import type { RunMemory } from '../memory/runMemory';
import type { ToolRunner } from '../sandbox/toolRunner';
import type { CheckpointStore, RunRecord } from '../store/checkpointStore';
import type { Agent } from './define';
import type { RunEvent } from './events';
import type { RunInspector } from './inspector';
import type { Journal } from './journal';
import type { StepJournal } from './stepJournal';
import type { StepRunner } from './steps';

/** What the execution of one run needs from its runtime. */
export interface Services {
  readonly store: CheckpointStore;
  readonly now: () => number;
  readonly breakers: CircuitBreakers;
  readonly random: () => number;
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly tools: ToolRunner;
  readonly budget: RunBudget;
  readonly subAgent: (agent: Agent, input: string, seq: number, key: string) => Promise<string>;
  /** Resumes a sub-agent run of this run's tree that its step no longer waits for. */
  readonly continueSubAgent: (agent: Agent, runId: string) => Promise<{ readonly done: Promise<RunRecord> }>;
  readonly inspector: RunInspector | undefined;
  readonly memory: RunMemory;
  /** Whether the untrusted-content defenses are on (the agent may still turn them off for its runs). */
  readonly guard: boolean;
  readonly steps: StepRunner;
  /** What approvals do when their tool and agent say nothing of it. */
  readonly approvals: Pick<ApprovalPolicy, 'timeoutMs' | 'onTimeout'>;
}

/** One run as its steps see it: what it runs on, what it recorded before, and where it writes. */
export interface RunContext {
  readonly services: Services;
  readonly agent: Agent;
  readonly run: RunRecord;
  /** What the run recorded before this execution (read back on resume). */
  readonly journal: Journal;
  /** Where this execution records its steps. */
  readonly steps: StepJournal;
  readonly guard: RunGuard;
  readonly signal: AbortSignal;
  readonly emit: (event: RunEvent) => void;
}

/**
 * Runs a step's attempts under its retry policy; each failed attempt is journaled with the step
 * (after the ones recorded before: `failures` grows) and announced before any wait.
 */
export function attemptWithRetries<T>(
  context: RunContext,
  seq: number,
  policy: RetryPolicy,
  failures: FailedAttempt[],
  effectKey: string | undefined,
  operation: (attempt: number) => Promise<T>,
): Promise<T> {
  const { services, signal, run, emit } = context;
  const offset = failures.length;
  return withRetries(operation, {
    policy,
    signal,
    random: services.random,
    sleep: services.sleep,
    now: services.now,
    onFailedAttempt: async (failure) => {
      const numbered = { ...failure, attempt: failure.attempt + offset };
      failures.push(numbered);
      await context.steps.recordFailures(seq, failures, effectKey);
      emit({ type: 'step_retry', runId: run.id, seq, failure: numbered });
    },
  });
}
