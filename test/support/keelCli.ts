import { join } from 'node:path';
import type { ApprovalRecord, EffectRecord, RunRecord, StepRecord } from '../../src/runtime/store/checkpointStore';
import { REPO_ROOT, runNode, spawnNode, within, type Exit, type Finished, type NodeProcess, type SpawnOptions } from './processes';

/** The keel command as users run it: bin/keel.js on the built dist/. */
export const KEEL = join(REPO_ROOT, 'bin', 'keel.js');

/** What `keel show <runId> --json` prints. */
export interface RunSnapshot {
  readonly run: RunRecord;
  readonly steps: readonly StepRecord[];
  readonly effects: readonly EffectRecord[];
  readonly approvals: readonly ApprovalRecord[];
}

/** When to SIGKILL a keel process: so long after it was spawned, or after it printed a line matching `after`. */
export interface KillPlan {
  readonly delayMs: number;
  readonly after?: RegExp;
}

export interface KeelOutcome extends Finished {
  /** Whether the SIGKILL landed: false when the process had already exited. */
  readonly killed: boolean;
  /** Date.now() when the process was spawned. */
  readonly spawnedAt: number;
}

export function describeOutcome(outcome: Finished): string {
  return `exit ${String(outcome.code ?? outcome.signal)}\nstdout:\n${outcome.stdout}\nstderr:\n${outcome.stderr}`;
}

/** Runs keel to the end, or SIGKILLs it as `plan` says; gives up (and kills it) after `timeoutMs`. */
export async function keelUntil(
  args: readonly string[],
  plan: KillPlan | undefined,
  options: SpawnOptions & { readonly timeoutMs?: number } = {},
): Promise<KeelOutcome> {
  const spawnedAt = Date.now();
  const proc = spawnNode(KEEL, args, options);
  proc.child.stdin.end();
  let timer: NodeJS.Timeout | undefined;
  const kill = () => {
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
  };
  if (plan) {
    const { after } = plan;
    if (after === undefined) {
      timer = setTimeout(kill, plan.delayMs);
    } else {
      const watch = () => {
        if (!after.test(proc.stdout())) return;
        proc.child.stdout.off('data', watch);
        timer = setTimeout(kill, plan.delayMs);
      };
      proc.child.stdout.on('data', watch);
    }
  }
  const exit = await waitFor(proc, `keel ${args.join(' ')}`, options.timeoutMs);
  clearTimeout(timer);
  return { ...exit, stdout: proc.stdout(), stderr: proc.stderr(), killed: exit.signal === 'SIGKILL', spawnedAt };
}

async function waitFor(proc: NodeProcess, what: string, timeoutMs = 60_000): Promise<Exit> {
  try {
    return await within(proc.exited, `${what} exiting`, timeoutMs);
  } catch (error) {
    proc.child.kill('SIGKILL');
    throw new Error(`${error instanceof Error ? error.message : String(error)}\nstdout:\n${proc.stdout()}\nstderr:\n${proc.stderr()}`);
  }
}

/** `keel show <runId> --json`. */
export async function showRun(runId: string, db: string, options: SpawnOptions = {}): Promise<RunSnapshot> {
  const result = await runNode(KEEL, ['show', runId, '--json', '--db', db], options);
  if (result.code !== 0) throw new Error(`keel show ${runId} failed: ${describeOutcome(result)}`);
  return JSON.parse(result.stdout) as RunSnapshot;
}

/** `keel runs --json`, every run. */
export async function listRuns(db: string, options: SpawnOptions = {}): Promise<RunRecord[]> {
  const result = await runNode(KEEL, ['runs', '--json', '--limit', '100000', '--db', db], options);
  if (result.code !== 0) throw new Error(`keel runs failed: ${describeOutcome(result)}`);
  return JSON.parse(result.stdout) as RunRecord[];
}

/** The steps a keel process printed as finished, e.g. `    2 tool  fare → {...} 3 ms`. */
export function printedSteps(stdout: string): { readonly seq: number; readonly kind: 'model' | 'tool' }[] {
  return [...stdout.matchAll(/^\s+(\d+) (model|tool) /gm)].map((match) => ({
    seq: Number(match[1]),
    kind: match[2] === 'model' ? 'model' : 'tool',
  }));
}

/** The run id in the header a keel process prints when a run starts or resumes: `<agent> <runId> · <model>`. */
export function printedRunId(stdout: string, agent: string): string | undefined {
  return new RegExp(`^${agent} (run_[0-9a-z]+) · `, 'm').exec(stdout)?.[1];
}
