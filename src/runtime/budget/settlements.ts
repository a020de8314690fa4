/**
 * Model calls waiting for room on a budget wait for calls in flight to settle. A settlement in this
 * process wakes the calls waiting on its budgets at once; one in another process (a budget in a
 * shared database) is seen when the waiting call looks again, after its poll interval.
 */
const waiting = new Map<string, Set<() => void>>();

/** Wakes the calls waiting for room on these budgets: a call on them settled or was released. */
export function settledOn(budgetIds: readonly string[]): void {
  for (const id of budgetIds) for (const wake of waiting.get(id) ?? []) wake();
}

/**
 * Resolves when a call of this process settles on one of `budgetIds`, or after `ms`; rejects with
 * the signal's reason when it is aborted.
 */
export function untilSettled(budgetIds: readonly string[], ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const stopWaiting = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      for (const id of budgetIds) {
        const wakers = waiting.get(id);
        wakers?.delete(wake);
        if (wakers?.size === 0) waiting.delete(id);
      }
    };
    const wake = () => {
      stopWaiting();
      resolve();
    };
    const onAbort = () => {
      stopWaiting();
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    const timer = setTimeout(wake, ms);
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    for (const id of budgetIds) {
      let wakers = waiting.get(id);
      if (!wakers) waiting.set(id, (wakers = new Set()));
      wakers.add(wake);
    }
  });
}
