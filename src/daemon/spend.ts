import { RECENT_RESERVATIONS, type ModelSpend, type SpendReport } from '../protocol/spend';
import { KeelError } from '../runtime/errors';
import type { ModelResponse } from '../runtime/model/model';
import type { CheckpointStore, ReservationRecord, RunRecord, StepRecord } from '../runtime/store/checkpointStore';
import { toBudget, toReservation, toRun } from './toProtocol';

export interface SpendOptions {
  readonly now: number;
  /** When this process began executing the run, if it is executing it now. */
  readonly executingSince?: number;
  /** Shared pools (without the `pool:` prefix) every run started here draws on, such as today's daily pool. */
  readonly pools?: readonly string[];
}

/** Sub-agent runs are followed this deep at most: a guard against a cycle in a damaged database. */
const MAX_DEPTH = 32;

/** What a run and its sub-agent runs spent and hold, read from the store. */
export async function spendReport(store: CheckpointStore, runId: string, options: SpendOptions): Promise<SpendReport> {
  const run = await store.getRun(runId);
  if (!run) throw new KeelError(`No run ${runId} in ${store.location}.`);

  const subRuns: RunRecord[] = [];
  const visit = async (parent: RunRecord, depth: number): Promise<void> => {
    if (depth >= MAX_DEPTH) return;
    for (const child of await store.childRuns(parent.id)) {
      subRuns.push(child);
      await visit(child, depth + 1);
    }
  };
  await visit(run, 0);
  const tree = [run, ...subRuns];

  const reservations = (await Promise.all(tree.map((member) => store.listReservations({ runId: member.id })))).flat();
  const held = reservations.filter((reservation) => reservation.status === 'held').sort(byCreation);
  const recent = reservations
    .filter((reservation) => reservation.status !== 'held')
    .sort((a, b) => (b.closedAt ?? b.createdAt) - (a.closedAt ?? a.createdAt) || b.id.localeCompare(a.id))
    .slice(0, RECENT_RESERVATIONS);

  const budgetIds: string[] = [];
  const add = (id: string) => {
    if (!budgetIds.includes(id)) budgetIds.push(id);
  };
  for (let current: RunRecord | undefined = run, depth = 0; current && depth < MAX_DEPTH; depth++) {
    add(`run:${current.id}`);
    current = current.parentRunId ? await store.getRun(current.parentRunId) : undefined;
  }
  for (const reservation of reservations) for (const id of reservation.budgetIds) if (id.startsWith('pool:')) add(id);
  for (const pool of options.pools ?? []) add(`pool:${pool}`);
  const budgets = await store.getBudgets(budgetIds);

  const models = (await Promise.all(tree.map(async (member) => modelSpend(member.id, await store.getSteps(member.id))))).flat();
  return {
    at: options.now,
    run: toRun(run),
    subRuns: subRuns.map(toRun),
    activeSince: activeSince(run, options.executingSince),
    budgets: budgets.map(toBudget),
    held: held.map(toReservation),
    recent: recent.map(toReservation),
    models,
  };
}

function byCreation(a: ReservationRecord, b: ReservationRecord): number {
  return a.createdAt - b.createdAt || a.id.localeCompare(b.id);
}

/**
 * When the current execution began. This process knows for the runs it executes; for a run that
 * was never stopped before (no active time counted yet) it is its creation.
 */
function activeSince(run: RunRecord, executingSince: number | undefined): number | null {
  if (run.state !== 'running') return null;
  if (executingSince !== undefined) return executingSince;
  return run.activeMs === 0 ? run.createdAt : null;
}

/** Tokens and money per model, summed from a run's completed model steps. */
export function modelSpend(runId: string, steps: readonly StepRecord[]): ModelSpend[] {
  const byModel = new Map<string, ModelSpend>();
  for (const step of steps) {
    if (step.kind !== 'model' || step.status !== 'completed') continue;
    const usage = (step.output as Partial<ModelResponse> | null)?.usage;
    const current = byModel.get(step.name) ?? { runId, model: step.name, calls: 0, inputTokens: 0, outputTokens: 0, usd: 0, unpricedCalls: 0 };
    byModel.set(step.name, {
      ...current,
      calls: current.calls + 1,
      inputTokens: current.inputTokens + (usage?.inputTokens ?? 0),
      outputTokens: current.outputTokens + (usage?.outputTokens ?? 0),
      usd: current.usd + (step.costUsd ?? 0),
      unpricedCalls: current.unpricedCalls + (step.costUsd === null ? 1 : 0),
    });
  }
  return [...byModel.values()];
}
