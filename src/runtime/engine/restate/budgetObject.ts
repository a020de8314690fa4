import * as restate from '@restatedev/restate-sdk';
import type { CheckpointStore, NewReservation, StepTransition } from '../../store/checkpointStore';
import { outcomeOf, type Outcome } from './outcome';

/**
 * A shared budget (a pool many runs draw on) as a Restate virtual object, `KeelBudget`, keyed by
 * the budget's id. Restate runs an object's handlers one at a time per key, so every reservation
 * on a shared budget is serialized by the engine, whichever service instance asks: the handler
 * makes the reservation in the store (all or nothing, against what was spent and is held there)
 * while it holds the budget. A reservation on several shared budgets goes through their objects in
 * the order of their ids, each holding its budget while the next one is asked, so two reservations
 * never wait for each other.
 */

export interface ReserveRequest {
  /** The transition that makes the reservation (and possibly more, in the same transaction). */
  readonly change: StepTransition;
  /** The other shared budgets the reservation draws on, after this one, in order. */
  readonly then: readonly string[];
}

export interface KeelBudgetHandlers {
  reserve(ctx: restate.ObjectContext, request: ReserveRequest): Promise<Outcome>;
}

export const KEEL_BUDGET: restate.VirtualObjectDefinition<'KeelBudget', KeelBudgetHandlers> = { name: 'KeelBudget' };

/** The shared budgets (pools) a reservation draws on, in the order their objects are asked. */
export function sharedBudgetsOf(reservation: NewReservation): string[] {
  return reservation.budgetIds.filter((id) => id.startsWith('pool:')).sort();
}

export function budgetObject(store: CheckpointStore): restate.VirtualObjectDefinition<'KeelBudget', KeelBudgetHandlers> {
  const handlers: KeelBudgetHandlers = {
    async reserve(ctx, { change, then }) {
      const [next, ...rest] = then;
      if (next !== undefined) return ctx.objectClient(KEEL_BUDGET, next).reserve({ change, then: rest });
      return ctx.run('store.transition', () => outcomeOf(() => store.transition(change), 'final'));
    },
  };
  return restate.object({ name: 'KeelBudget', handlers });
}
