import { BudgetExceededError } from '../budget/budget';
import type { ReservedCall } from '../budget/runBudget';
import { CircuitOpenError } from '../effects/circuitBreaker';
import { AttemptsExhaustedError, classifyError, type FailedAttempt } from '../effects/retry';
import { KeelError, describeError } from '../errors';
import { modelLabel, type Message, type Model, type ModelResponse, type ToolSpec, type Usage } from '../model/model';
import { attemptWithRetries, type RunContext } from './runContext';

export const NO_USAGE: Usage = { inputTokens: 0, outputTokens: 0 };

/**
 * One model call of a run: read back from the journal when the run recorded it (checked against
 * what the agent now sends), else journaled, reserved against the run's budgets, admitted by the
 * model's circuit breaker and tried under the agent's retry policy.
 */
export async function modelStep(
  context: RunContext,
  seq: number,
  model: Model,
  messages: readonly Message[],
  specs: readonly ToolSpec[],
  requestHash: string,
  about: Readonly<Record<string, unknown>> = {},
): Promise<ModelResponse> {
  const { services, agent, run, journal, steps, signal, emit } = context;
  const label = modelLabel(model);
  const recorded = journal.recorded(seq, 'model', label, () => 'a model call');
  if (recorded) {
    const input = recorded.input as { requestHash?: string };
    if (input.requestHash !== requestHash) {
      throw journal.diverged(
        seq,
        'the conversation the agent now sends the model differs from the recorded one (its instructions, tools or earlier results changed)',
      );
    }
    if (recorded.status === 'completed') return recorded.output as ModelResponse;
    if (recorded.status === 'failed') throw journal.diverged(seq, 'the recorded model call failed, so the run should have ended there');
  } else {
    await steps.begin({
      runId: run.id,
      seq,
      kind: 'model',
      name: label,
      input: { messageCount: messages.length, tools: specs.map((spec) => spec.name), requestHash, ...about },
      idempotencyKey: null,
      startedAt: services.now(),
    });
  }
  const failures: FailedAttempt[] = recorded ? await steps.restart(recorded) : [];
  const breaker = services.breakers.for(`model ${label}`);
  const { budget, store } = services;
  const wanted = { messages: [...messages], tools: specs, maxTokens: agent.maxOutputTokens };
  let held: ReservedCall | undefined;
  let settled: ReturnType<typeof budget.settle> | undefined;
  let response: ModelResponse;
  try {
    response = await attemptWithRetries(context, seq, agent.modelRetry, failures, undefined, async (attempt) => {
      budget.checkRunLimits(steps.stepsDone);
      held = await budget.reserve(`${run.id}:${seq}:${failures.length + attempt}`, seq, model, wanted, signal);
      const reserved = held;
      // The output limit sent is what the budgets leave room for: a call that keeps to it cannot overspend.
      const request = reserved ? { ...wanted, maxTokens: reserved.maxTokens } : wanted;
      try {
        const step = { runId: run.id, seq, kind: 'model', key: `${run.id}:${seq}`, attempt: failures.length + 1 } as const;
        // Admitted inside the step: a durable engine replaying it takes the breaker's answer from its journal.
        const answer = await services.steps.run(step, async () => {
          await breaker.refresh();
          breaker.admit();
          return model.generate(request, {
            signal,
            onTextDelta: (text) => emit({ type: 'model_delta', runId: run.id, seq, text }),
          });
        });
        breaker.succeeded();
        if (reserved) settled = budget.settle(model, reserved, answer.usage);
        return answer;
      } catch (error) {
        if (!signal.aborted && classifyError(error, agent.modelRetry).class === 'retry') breaker.failed();
        if (reserved) {
          await store.transition({ close: { id: reserved.reservation.id, at: services.now() } });
          await budget.settled(undefined);
        }
        throw error;
      }
    });
  } catch (error) {
    steps.end(seq, { status: 'failed', output: null, error: failureMessage(error, signal), usage: NO_USAGE }, failures);
    await steps.flush();
    const last = error instanceof AttemptsExhaustedError ? error.lastError : error;
    if (last instanceof CircuitOpenError || last instanceof BudgetExceededError) throw last;
    throw error instanceof AttemptsExhaustedError ? new KeelError(attemptsMessage(label, error)) : error;
  }
  const costUsd = budget.costOf(model, response.usage.inputTokens, response.usage.outputTokens);
  // An answer cut off at a limit the budgets set (below the agent's own) is not an answer: the run stops there.
  const cut = held && budget.cutShort(held, response);
  const end = cut
    ? { status: 'failed' as const, output: null, error: cut.message }
    : { status: 'completed' as const, output: context.guard.recordResponse(response, about), error: null };
  steps.end(seq, { ...end, usage: response.usage, costUsd }, failures, settled?.close);
  if (settled) {
    await steps.flush();
    await budget.settled(settled.overrun);
  }
  if (cut) throw cut;
  return response;
}

/** Why a step failed, in a sentence: the cancellation, or the last attempt's error. */
export function failureMessage(error: unknown, signal: AbortSignal): string {
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
