import { SubAgentPausedError } from '../../agent/pause';
import { AttemptInterruptedError } from '../../agent/steps';
import { BudgetExceededError, type BudgetDimension } from '../../budget/budget';
import { CircuitOpenError } from '../../effects/circuitBreaker';
import { DEFAULT_TOOL_RETRY, NonRetryableError, RetryableError, classifyError } from '../../effects/retry';
import { KeelError, StoreError, describeError } from '../../errors';
import type { RunRecord } from '../../store/checkpointStore';

/**
 * Errors as values, so that what a journaled step threw is journaled with it and thrown again, as
 * the same kind of error, on every replay. Only what Keel reads of an error crosses: its class
 * where Keel checks it (budget, sub-agent paused, retryable or not, store), its name, message and
 * the facts its retry classification reads (HTTP status, error code, Retry-After).
 */
export type EncodedError =
  | { readonly kind: 'budget'; readonly message: string; readonly budgetId: string; readonly dimension: BudgetDimension }
  | { readonly kind: 'subAgentPaused'; readonly child: RunRecord }
  | { readonly kind: 'interrupted'; readonly message: string }
  | { readonly kind: 'circuitOpen'; readonly message: string; readonly context: Readonly<Record<string, unknown>> }
  | {
      readonly kind: 'error';
      readonly class: 'retryable' | 'nonRetryable' | 'store' | 'keel' | 'other';
      readonly name: string;
      readonly message: string;
      readonly status?: number;
      readonly code?: string;
      readonly transient?: boolean;
      readonly retryAfterMs?: number;
    };

export function encodeError(error: unknown): EncodedError {
  if (error instanceof BudgetExceededError) return { kind: 'budget', message: error.message, budgetId: error.budgetId, dimension: error.dimension };
  if (error instanceof SubAgentPausedError) return { kind: 'subAgentPaused', child: error.child };
  if (error instanceof AttemptInterruptedError) return { kind: 'interrupted', message: error.message };
  if (error instanceof CircuitOpenError) return { kind: 'circuitOpen', message: error.message, context: error.context };
  const record = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>;
  const context = objectOf(record['context']);
  const cause = objectOf(record['cause']);
  const status = [record['status'], record['statusCode'], context['status']].find((value): value is number => typeof value === 'number');
  const code = [record['code'], cause['code'], context['code']].find((value): value is string => typeof value === 'string');
  const { retryAfterMs } = classifyError(error, DEFAULT_TOOL_RETRY);
  return {
    kind: 'error',
    class:
      error instanceof RetryableError
        ? 'retryable'
        : error instanceof NonRetryableError
          ? 'nonRetryable'
          : error instanceof StoreError
            ? 'store'
            : error instanceof KeelError
              ? 'keel'
              : 'other',
    name: error instanceof Error ? error.name : 'Error',
    message: describeError(error),
    ...(status === undefined ? {} : { status }),
    ...(code === undefined ? {} : { code }),
    ...(context['transient'] === true ? { transient: true } : {}),
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  };
}

export function decodeError(encoded: EncodedError): Error {
  switch (encoded.kind) {
    case 'budget':
      return new BudgetExceededError(encoded.message, encoded.budgetId, encoded.dimension);
    case 'subAgentPaused':
      return new SubAgentPausedError(encoded.child);
    case 'interrupted':
      return new AttemptInterruptedError(encoded.message);
    case 'circuitOpen':
      return new CircuitOpenError(encoded.message, { context: { ...encoded.context } });
  }
  const facts = {
    ...(encoded.status === undefined ? {} : { status: encoded.status }),
    ...(encoded.code === undefined ? {} : { code: encoded.code }),
    ...(encoded.transient ? { transient: true } : {}),
    ...(encoded.retryAfterMs === undefined ? {} : { retryAfterMs: encoded.retryAfterMs }),
  };
  let error: KeelError;
  switch (encoded.class) {
    case 'retryable':
      error = new RetryableError(encoded.message, encoded.retryAfterMs === undefined ? {} : { retryAfterMs: encoded.retryAfterMs });
      break;
    case 'nonRetryable':
      error = new NonRetryableError(encoded.message, { context: facts });
      break;
    case 'store':
      error = new StoreError(encoded.message, { context: facts });
      break;
    default:
      error = new KeelError(encoded.message, { context: facts });
  }
  // The name as thrown: retry policies name errors never to retry, and a timeout is known by its name.
  error.name = encoded.name;
  return error;
}

function objectOf(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}
