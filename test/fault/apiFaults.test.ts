import assert from 'node:assert/strict';
import { join } from 'node:path';
import { z } from 'zod';
import { defineAgent, defineTool } from '../../src/runtime/agent/define';
import { Runtime } from '../../src/runtime/agent/runtime';
import type { RetryPolicy } from '../../src/runtime/effects/retry';
import { openaiModel } from '../../src/runtime/model/openai';
import { openSqliteStore } from '../../src/runtime/store/sqliteStore';
import { startOpenAIServer, type RecordedRequest, type ServerReply } from '../support/openaiServer';
import { useTempDirs } from '../support/tempDir';

const RUNS = 40;
const MODEL_RETRY: Partial<RetryPolicy> = { attempts: 10, baseMs: 20, capMs: 160 };

/**
 * The model endpoint misbehaves on 30% of requests (429 with Retry-After, 5xx, stalls before and
 * during the answer, dropped connections, bodies cut off or garbled). Every run must still complete, within
 * its retry policy, with jittered backoff, and without running any tool twice.
 */
describe('API faults: 30% of model requests fail', function () {
  this.timeout(300_000);
  const tempDir = useTempDirs();

  it('completes every run, retrying within policy, with jittered backoff and no tool run twice', async () => {
    const server = await startOpenAIServer({
      respond: (request) => reply(request),
      faults: {
        rate: 0.3,
        seed: 20261126,
        kinds: [
          { fault: 'rate-limit', retryAfter: 0.05 },
          { fault: 'server-error', status: 503 },
          { fault: 'server-error', status: 500 },
          { fault: 'stall' },
          { fault: 'stall', afterChunks: 2 },
          { fault: 'drop' },
          { fault: 'drop', afterChunks: 2 },
          { fault: 'malformed', variant: 'truncated-json' },
          { fault: 'malformed', variant: 'broken-sse' },
        ],
      },
    });
    const store = openSqliteStore(join(tempDir('keel-api-faults-'), 'keel.db'));
    try {
      const charges = new Map<string, number>();
      const charge = defineTool({
        name: 'charge',
        description: 'Charge the card.',
        args: z.object({ cents: z.number().int() }),
        effect: 'unsafe',
        run: ({ cents }, ctx) => {
          charges.set(ctx.idempotencyKey, (charges.get(ctx.idempotencyKey) ?? 0) + 1);
          return `charged ${cents}`;
        },
      });
      const model = openaiModel({ model: 'gpt-4o-mini', baseURL: server.url, apiKey: 'test', timeoutMs: 400, idleTimeoutMs: 250 });
      const agent = defineAgent({ name: 'biller', instructions: 'Charge twice, then confirm.', model, tools: [charge], modelRetry: MODEL_RETRY });
      const runtime = new Runtime({ store });

      const finished = [];
      for (let i = 0; i < RUNS; i++) finished.push(await (await runtime.start(agent, { input: `bill ${i}` })).done);

      assert.deepEqual(
        finished.filter((run) => run.state !== 'completed').map((run) => `${run.id}: ${run.state} ${run.error ?? ''}`),
        [],
      );
      const duplicates = [...charges.values()].filter((count) => count > 1).length;
      assert.equal(duplicates, 0, 'a tool ran twice');
      assert.equal(charges.size, RUNS * 2);

      const modelSteps = (await Promise.all(finished.map((run) => store.getSteps(run.id)))).flat().filter((step) => step.kind === 'model');
      const failures = modelSteps.flatMap((step) => step.failedAttempts);
      const maxAttempts = Math.max(...modelSteps.map((step) => step.attempts));
      assert.ok(maxAttempts <= MODEL_RETRY.attempts!, `a step made ${maxAttempts} attempts`);
      assert.ok(failures.length > 0, 'no fault reached the runtime');
      for (const failure of failures) {
        assert.equal(failure.class, 'retry', `a transient fault was not retried: ${failure.error}`);
        const ceiling = Math.min(MODEL_RETRY.capMs!, MODEL_RETRY.baseMs! * 2 ** (failure.attempt - 1));
        assert.ok(
          failure.delayMs !== undefined && (failure.delayMs < ceiling || (failure.reason === 'HTTP 429' && failure.delayMs >= 50)),
          `attempt ${failure.attempt} (${failure.reason}) waited ${failure.delayMs} ms, outside the policy`,
        );
      }
      // Full jitter: each delay uniform in [0, ceiling). Delays of the same attempt differ, and
      // their share of the ceiling averages about a half (with 30 or more delays, outside 0.25-0.75
      // only if the delays are not uniform, or not random).
      const jittered = failures.filter((failure) => failure.reason !== 'HTTP 429');
      const shares = jittered.map((failure) => (failure.delayMs ?? 0) / Math.min(MODEL_RETRY.capMs!, MODEL_RETRY.baseMs! * 2 ** (failure.attempt - 1)));
      const shown = jittered.map((failure) => `${failure.delayMs} (attempt ${failure.attempt})`).join(', ');
      assert.ok(jittered.length >= 30, `too few backoff delays to judge their jitter: ${shown}`);
      const firstRetries = new Set(jittered.filter((failure) => failure.attempt === 1).map((failure) => failure.delayMs));
      assert.ok(firstRetries.size >= 2, `every first retry waited the same: ${shown}`);
      const meanShare = shares.reduce((sum, share) => sum + share, 0) / shares.length;
      assert.ok(meanShare > 0.25 && meanShare < 0.75, `backoff delays average ${meanShare.toFixed(2)} of their ceiling, not about a half: ${shown}`);

      const byReason = new Map<string, number>();
      for (const failure of failures) byReason.set(failure.reason, (byReason.get(failure.reason) ?? 0) + 1);
      console.log(
        `      api faults: ${RUNS} runs completed, ${server.requests.length} model requests, ` +
          `${Object.values(server.faultsInjected).reduce((a, b) => a + b, 0)} faults injected ` +
          `(${Object.entries(server.faultsInjected).filter(([, n]) => n > 0).map(([kind, n]) => `${kind} ${n}`).join(', ')}), ` +
          `${failures.length} retries (${[...byReason].map(([reason, n]) => `${reason} ${n}`).join(', ')}), ` +
          `max attempts ${maxAttempts}, ${charges.size} charges, 0 duplicates`,
      );
    } finally {
      await store.close();
      await server.close();
    }
  });
});

/** The model's part: charge twice, then confirm, deciding from the conversation so far. */
function reply(request: RecordedRequest): ServerReply {
  const toolResults = request.body.messages.filter((message) => message.role === 'tool').length;
  if (toolResults < 2) return { toolCalls: [{ name: 'charge', arguments: JSON.stringify({ cents: 100 * (toolResults + 1) }) }] };
  return { content: ['Charged ', 'twice.'] };
}

