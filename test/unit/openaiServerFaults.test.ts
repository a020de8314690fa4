import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import {
  startOpenAIServer,
  type CompletionReply,
  type FaultKind,
  type OpenAIServer,
  type OpenAIServerOptions,
  type RandomFaults,
  type ServerReply,
} from '../support/openaiServer';

/**
 * The test server's faults, each checked against the real `openai` SDK: what a client sees is what
 * it would see from a real outage of that kind.
 */

const PARAMS = { model: 'gpt-test', messages: [{ role: 'user' as const, content: 'hi' }] };
const COUNTING: CompletionReply = { content: ['one ', 'two ', 'three ', 'four'] };

describe('faults from the local OpenAI server, as the openai SDK sees them', () => {
  let servers: OpenAIServer[] = [];

  afterEach(async () => {
    await Promise.all(servers.map((server) => server.close()));
    servers = [];
  });

  async function serve(respond: OpenAIServerOptions['respond'], faults?: RandomFaults): Promise<OpenAIServer> {
    const server = await startOpenAIServer(faults ? { respond, faults } : { respond });
    servers.push(server);
    return server;
  }

  function clientFor(server: OpenAIServer, options: { timeout?: number; maxRetries?: number } = {}): OpenAI {
    return new OpenAI({
      apiKey: 'sk-test',
      baseURL: server.url,
      maxRetries: options.maxRetries ?? 0,
      timeout: options.timeout ?? 10_000,
      logLevel: 'off',
    });
  }

  function complete(client: OpenAI): Promise<OpenAI.ChatCompletion> {
    return client.chat.completions.create({ ...PARAMS, stream: false });
  }

  /** Streams into `chunks`, so that a test can look at what arrived before a failure. */
  async function stream(client: OpenAI, chunks: ChatCompletionChunk[], signal?: AbortSignal): Promise<void> {
    const events = await client.chat.completions.create({ ...PARAMS, stream: true }, signal ? { signal } : {});
    for await (const chunk of events) chunks.push(chunk);
  }

  function text(chunks: readonly ChatCompletionChunk[]): string {
    return chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
  }

  async function rejection(promise: Promise<unknown>): Promise<unknown> {
    try {
      await promise;
    } catch (error) {
      return error;
    }
    return assert.fail('the call should have failed');
  }

  function assertConnectionError(error: unknown): asserts error is InstanceType<typeof OpenAI.APIConnectionError> {
    assert.ok(error instanceof OpenAI.APIConnectionError, `expected an APIConnectionError, got ${String(error)}`);
    assert.ok(!(error instanceof OpenAI.APIConnectionTimeoutError), 'a dropped connection is not a timeout');
    assert.equal(error.message, 'Connection error.');
  }

  /** What undici's fetch throws when the body of a response is cut off: the SDK passes it through unwrapped. */
  function assertCutOff(error: unknown): void {
    assert.ok(!(error instanceof OpenAI.APIError), `a cut-off body is not wrapped by the SDK, got ${String(error)}`);
    assert.ok(error instanceof TypeError, `expected fetch's TypeError, got ${String(error)}`);
    assert.equal(error.message, 'terminated');
  }

  function assertTimeout(error: unknown, started: number, timeout: number): void {
    assert.ok(error instanceof OpenAI.APIConnectionTimeoutError, `expected an APIConnectionTimeoutError, got ${String(error)}`);
    const waited = performance.now() - started;
    assert.ok(waited >= timeout - 5, `gave up after ${Math.round(waited)} ms, before its ${timeout} ms timeout`);
  }

  describe('HTTP errors', () => {
    for (const streamed of [false, true]) {
      it(`sends a 429 whose retry-after, in seconds, the SDK's RateLimitError carries (${streamed ? 'streamed' : 'non-streamed'})`, async () => {
        const server = await serve([{ fault: 'rate-limit', retryAfter: 7 }]);
        const client = clientFor(server);
        const error = await rejection(streamed ? stream(client, []) : complete(client));
        assert.ok(error instanceof OpenAI.RateLimitError, `expected a RateLimitError, got ${String(error)}`);
        assert.equal(error.status, 429);
        assert.equal(error.headers?.get('retry-after'), '7');
        assert.equal(error.code, 'rate_limit_exceeded');
        assert.equal(server.faultsInjected['rate-limit'], 1);
      });
    }

    it('sends retry-after in the HTTP-date form when given a Date', async () => {
      const when = new Date(Date.UTC(2031, 0, 2, 3, 4, 5));
      const server = await serve([{ fault: 'rate-limit', retryAfter: when }]);
      const error = await rejection(complete(clientFor(server)));
      assert.ok(error instanceof OpenAI.RateLimitError);
      assert.equal(error.headers?.get('retry-after'), 'Thu, 02 Jan 2031 03:04:05 GMT');
    });

    it('sends retry-after: 1 by default, and a Date on a plain error reply too', async () => {
      const when = new Date(Date.UTC(2031, 0, 2, 3, 4, 5));
      const server = await serve([{ fault: 'rate-limit' }, { status: 503, retryAfter: when }]);
      const client = clientFor(server);
      const first = await rejection(complete(client));
      assert.ok(first instanceof OpenAI.RateLimitError);
      assert.equal(first.headers?.get('retry-after'), '1');
      const second = await rejection(complete(client));
      assert.ok(second instanceof OpenAI.InternalServerError);
      assert.equal(second.headers?.get('retry-after'), 'Thu, 02 Jan 2031 03:04:05 GMT');
    });

    it('sends 500, 502, 503 and 504, each an InternalServerError with its status and an OpenAI-shaped message', async () => {
      const statuses = [500, 502, 503, 504] as const;
      const server = await serve([{ fault: 'server-error' }, ...statuses.map((status) => ({ fault: 'server-error' as const, status }))]);
      const client = clientFor(server);
      for (const status of [500, ...statuses]) {
        const error = await rejection(complete(client));
        assert.ok(error instanceof OpenAI.InternalServerError, `expected an InternalServerError for ${status}`);
        assert.equal(error.status, status);
        assert.equal(error.type, 'server_error');
        if (status === 503) assert.match(error.message, /overloaded/);
      }
      assert.equal(server.faultsInjected['server-error'], 5);
    });

    it('lets a client measure the wait between retries: the SDK waits out retry-after in seconds', async () => {
      const server = await serve([{ fault: 'rate-limit', retryAfter: 0.3 }, { content: 'after the wait' }]);
      const answer = await complete(clientFor(server, { maxRetries: 1 }));
      assert.equal(answer.choices[0]?.message.content, 'after the wait');
      const [first, second] = server.requests;
      assert.ok(first && second);
      const waited = second.receivedAt - first.receivedAt;
      assert.ok(waited >= 300 && waited < 1500, `the retry came ${Math.round(waited)} ms after the 429`);
      assert.equal(first.fault, 'rate-limit');
      assert.equal(second.fault, undefined);
    });

    it('lets a client measure the wait between retries: the SDK waits out an HTTP-date retry-after', async () => {
      // The HTTP date has whole seconds: two seconds ahead, rounded down, is at least one second ahead.
      const server = await serve(() =>
        server.requests.length === 1 ? { fault: 'rate-limit', retryAfter: new Date(Date.now() + 2000) } : { content: 'later' },
      );
      const answer = await complete(clientFor(server, { maxRetries: 1 }));
      assert.equal(answer.choices[0]?.message.content, 'later');
      const [first, second] = server.requests;
      assert.ok(first && second);
      const waited = second.receivedAt - first.receivedAt;
      assert.ok(waited >= 950 && waited < 2500, `the retry came ${Math.round(waited)} ms after the 429`);
    });
  });

  describe('timeouts', () => {
    for (const streamed of [false, true]) {
      const mode = streamed ? 'streamed' : 'non-streamed';

      it(`stalls before any response: the SDK times out with APIConnectionTimeoutError (${mode})`, async () => {
        const server = await serve([{ fault: 'stall' }]);
        const started = performance.now();
        const error = await rejection(streamed ? stream(clientFor(server, { timeout: 200 }), []) : complete(clientFor(server, { timeout: 200 })));
        assertTimeout(error, started, 200);
        assert.equal(server.faultsInjected.stall, 1);
        assert.equal(server.requests[0]?.fault, 'stall');
      });

      it(`answers late: in time for a patient client, a timeout for an impatient one (${mode})`, async () => {
        const server = await serve([
          { fault: 'delay', ms: 300, reply: COUNTING },
          { fault: 'delay', ms: 300, reply: COUNTING },
        ]);
        let started = performance.now();
        if (streamed) {
          const chunks: ChatCompletionChunk[] = [];
          await stream(clientFor(server, { timeout: 5_000 }), chunks);
          assert.equal(text(chunks), 'one two three four');
        } else {
          const answer = await complete(clientFor(server, { timeout: 5_000 }));
          assert.equal(answer.choices[0]?.message.content, 'one two three four');
        }
        assert.ok(performance.now() - started >= 295, 'the answer came before the delay was over');
        started = performance.now();
        const error = await rejection(
          streamed ? stream(clientFor(server, { timeout: 100 }), []) : complete(clientFor(server, { timeout: 100 })),
        );
        assertTimeout(error, started, 100);
        assert.equal(server.faultsInjected.delay, 2);
      });
    }

    it('stalls after the headers and half the JSON body: the SDK times out reading it', async () => {
      const server = await serve([{ fault: 'stall', afterChunks: 1 }]);
      const started = performance.now();
      assertTimeout(await rejection(complete(clientFor(server, { timeout: 300 }))), started, 300);
    });

    it('stalls a stream after some chunks: the SDK timeout no longer applies, only the caller ends it, and quietly', async () => {
      const server = await serve([{ fault: 'stall', afterChunks: 3, reply: COUNTING }]);
      const controller = new AbortController();
      const chunks: ChatCompletionChunk[] = [];
      const streaming = stream(clientFor(server, { timeout: 150 }), chunks, controller.signal).then(
        () => 'ended' as const,
        (error: unknown) => error,
      );
      const early = await Promise.race([streaming, sleep(750, 'still waiting' as const)]);
      assert.equal(early, 'still waiting', 'the stream should still be open five timeouts later');
      assert.equal(text(chunks), 'one two ', 'the role chunk and two words got through before the stall');
      controller.abort();
      assert.equal(await streaming, 'ended', 'the SDK ends an aborted stream without an error');
    });
  });

  describe('dropped connections', () => {
    for (const streamed of [false, true]) {
      const mode = streamed ? 'streamed' : 'non-streamed';

      it(`drops before any response: APIConnectionError (${mode})`, async () => {
        const server = await serve([{ fault: 'drop' }]);
        const client = clientFor(server);
        assertConnectionError(await rejection(streamed ? stream(client, []) : complete(client)));
        assert.equal(server.faultsInjected.drop, 1);
        assert.equal(server.requests.length, 1);
      });
    }

    it('drops a stream after some chunks: the chunks arrive, then fetch\'s "terminated" TypeError, unwrapped', async () => {
      const server = await serve([{ fault: 'drop', afterChunks: 3, reply: COUNTING }]);
      const chunks: ChatCompletionChunk[] = [];
      assertCutOff(await rejection(stream(clientFor(server), chunks)));
      assert.equal(text(chunks), 'one two ');
      assert.equal(chunks.length, 3);
    });

    it('drops in the middle of a JSON body: the same "terminated" TypeError', async () => {
      const server = await serve([{ fault: 'drop', afterChunks: 1 }]);
      assertCutOff(await rejection(complete(clientFor(server))));
    });

    it('is retried by the SDK when dropped before any response, but not when dropped mid-stream', async () => {
      const server = await serve([
        { fault: 'drop' },
        { content: 'second try' },
        { fault: 'drop', afterChunks: 2 },
        { content: 'never asked for' },
      ]);
      const client = clientFor(server, { maxRetries: 1 });
      const answer = await complete(client);
      assert.equal(answer.choices[0]?.message.content, 'second try');
      assertCutOff(await rejection(stream(client, [])));
      assert.equal(server.requests.length, 3);
    });
  });

  describe('malformed bodies', () => {
    it('sends a 200 that claims JSON but is a proxy error: a SyntaxError from JSON.parse', async () => {
      const server = await serve([{ fault: 'malformed', variant: 'not-json' }]);
      const error = await rejection(complete(clientFor(server)));
      assert.ok(error instanceof SyntaxError, `expected a SyntaxError, got ${String(error)}`);
      assert.match(error.message, /not valid JSON/);
      assert.equal(server.faultsInjected.malformed, 1);
    });

    it('sends the same non-JSON 200 to a stream: the SDK finds no events and ends without an error', async () => {
      const server = await serve([{ fault: 'malformed', variant: 'not-json' }]);
      const chunks: ChatCompletionChunk[] = [];
      await stream(clientFor(server), chunks);
      assert.equal(chunks.length, 0);
    });

    it('sends an HTML page with a 200: the SDK hands it back as a string, or as an empty stream', async () => {
      const server = await serve([
        { fault: 'malformed', variant: 'html' },
        { fault: 'malformed', variant: 'html' },
      ]);
      const client = clientFor(server);
      const page: unknown = await complete(client);
      assert.equal(typeof page, 'string');
      assert.match(String(page), /^<!DOCTYPE html>/);
      const chunks: ChatCompletionChunk[] = [];
      await stream(client, chunks);
      assert.equal(chunks.length, 0);
    });

    it('sends half a JSON completion: a SyntaxError', async () => {
      const server = await serve([{ fault: 'malformed', variant: 'truncated-json' }]);
      const error = await rejection(complete(clientFor(server)));
      assert.ok(error instanceof SyntaxError, `expected a SyntaxError, got ${String(error)}`);
    });

    it('ends a stream halfway through its last event: every earlier chunk, then the SDK\'s SSE SyntaxError', async () => {
      const server = await serve([{ fault: 'malformed', variant: 'truncated-json', reply: COUNTING }]);
      const chunks: ChatCompletionChunk[] = [];
      const error = await rejection(stream(clientFor(server), chunks));
      assert.ok(error instanceof SyntaxError, `expected a SyntaxError, got ${String(error)}`);
      assert.equal(error.message, 'Error reading response: malformed server-sent event JSON.');
      assert.equal(text(chunks), 'one two three four', 'only the finish chunk was cut');
      assert.equal(chunks.at(-1)?.choices[0]?.finish_reason, null);
    });

    it('breaks one data: line in the middle of a stream: the chunks before it, then the SSE SyntaxError', async () => {
      const server = await serve([{ fault: 'malformed', variant: 'broken-sse', reply: COUNTING }]);
      const chunks: ChatCompletionChunk[] = [];
      const error = await rejection(stream(clientFor(server), chunks));
      assert.ok(error instanceof SyntaxError, `expected a SyntaxError, got ${String(error)}`);
      assert.equal(error.message, 'Error reading response: malformed server-sent event JSON.');
      assert.equal(text(chunks), 'one two ', 'role, "one " and "two " come before the broken third of six events');
    });

    it('answers a non-streamed request with a broken event stream: the SDK returns its text', async () => {
      const server = await serve([{ fault: 'malformed', variant: 'broken-sse' }]);
      const body: unknown = await complete(clientFor(server));
      assert.equal(typeof body, 'string');
      assert.match(String(body), /^data: \{/);
      assert.match(String(body), /data: \[DONE\]\n\n$/);
    });

    it('sends well-formed JSON without choices: the SDK accepts it, so only its reader can notice', async () => {
      const server = await serve([
        { fault: 'malformed', variant: 'no-choices' },
        { fault: 'malformed', variant: 'no-choices' },
      ]);
      const client = clientFor(server);
      const completion = await complete(client);
      assert.equal(completion.object, 'chat.completion');
      assert.equal('choices' in completion, false);
      const chunks: ChatCompletionChunk[] = [];
      await stream(client, chunks);
      assert.ok(chunks.length > 3);
      assert.ok(chunks.every((chunk) => chunk.object === 'chat.completion.chunk' && !('choices' in chunk)));
    });
  });

  describe('records and counters', () => {
    it('stamps each request with a monotonic arrival time and the fault it got, and counts faults by kind', async () => {
      const server = await serve([
        { fault: 'server-error' },
        { content: 'fine' },
        { fault: 'delay', ms: 20, reply: { fault: 'drop' } },
        { fault: 'malformed', variant: 'not-json' },
      ]);
      const client = clientFor(server);
      const before = performance.now();
      await rejection(complete(client));
      await complete(client);
      await rejection(complete(client));
      await rejection(complete(client));
      const after = performance.now();
      assert.deepEqual(
        server.requests.map((request) => request.fault),
        ['server-error', undefined, 'delay', 'malformed'],
      );
      const times = server.requests.map((request) => request.receivedAt);
      assert.ok(times.every((time, index) => time >= (times[index - 1] ?? before) && time <= after), `times ${times.join(', ')}`);
      const expected: Record<FaultKind, number> = { 'rate-limit': 0, 'server-error': 1, delay: 1, stall: 0, drop: 1, malformed: 1 };
      assert.deepEqual(server.faultsInjected, expected);
    });
  });

  describe('random faults', () => {
    const FAST: RandomFaults['kinds'] = [
      { fault: 'rate-limit', retryAfter: 0 },
      'server-error',
      'drop',
      { fault: 'malformed', variant: 'not-json' },
    ];

    /** What the client saw for each of `count` calls: the answer, or the class of its error. */
    async function outcomes(server: OpenAIServer, count: number): Promise<string[]> {
      const client = clientFor(server);
      const seen: string[] = [];
      for (let call = 0; call < count; call++) {
        seen.push(
          await complete(client).then(
            (answer) => answer.choices[0]?.message.content ?? '(no text)',
            (error: unknown) => (error instanceof Error ? error.constructor.name : typeof error),
          ),
        );
      }
      return seen;
    }

    const ok = (): CompletionReply => ({ content: 'ok' });

    it('faults the same requests the same way for the same seed, and differently for another seed', async () => {
      const faults = (seed: number): RandomFaults => ({ rate: 0.3, kinds: FAST, seed });
      const first = await serve(ok, faults(42));
      const again = await serve(ok, faults(42));
      const other = await serve(ok, faults(43));
      const seen = await outcomes(first, 200);
      assert.deepEqual(await outcomes(again, 200), seen);
      await outcomes(other, 200);
      const plan = (server: OpenAIServer): (FaultKind | undefined)[] => server.requests.map((request) => request.fault);
      assert.deepEqual(plan(again), plan(first));
      assert.notDeepEqual(plan(other), plan(first));
      assert.deepEqual(again.faultsInjected, first.faultsInjected);
      assert.deepEqual(
        new Set(seen),
        new Set(['ok', 'RateLimitError', 'InternalServerError', 'APIConnectionError', 'SyntaxError']),
        'every kind listed reached the client as its own error',
      );
    });

    it('faults about the configured share of requests, spread evenly over the kinds listed', async () => {
      const kinds = ['rate-limit', 'server-error', 'drop', 'malformed'] as const;
      const byKind = new Map<FaultKind, number>();
      let total = 0;
      for (const [rate, seed] of [
        [0.3, 42],
        [0.3, 7],
        [0.1, 1],
        [0.7, 2],
      ] as const) {
        const server = await serve(ok, { rate, kinds: FAST, seed });
        const seen = await outcomes(server, 200);
        const faulted = server.requests.filter((request) => request.fault !== undefined).length;
        assert.equal(seen.filter((outcome) => outcome !== 'ok').length, faulted, 'every fault reached the client');
        assert.ok(Math.abs(faulted / 200 - rate) <= 0.08, `seed ${seed} faulted ${faulted} of 200 requests at rate ${rate}`);
        assert.equal(
          Object.values(server.faultsInjected).reduce((sum, count) => sum + count, 0),
          faulted,
        );
        for (const kind of kinds) {
          assert.ok(server.faultsInjected[kind] > 0, `seed ${seed} never drew ${kind}`);
          byKind.set(kind, (byKind.get(kind) ?? 0) + server.faultsInjected[kind]);
        }
        total += faulted;
      }
      for (const kind of kinds) {
        const share = (byKind.get(kind) ?? 0) / total;
        assert.ok(Math.abs(share - 1 / kinds.length) <= 0.07, `${kind} was ${Math.round(share * 100)}% of ${total} faults`);
      }
    });

    it('faults nothing at rate 0 and everything at rate 1', async () => {
      const never = await serve(ok, { rate: 0, kinds: FAST, seed: 1 });
      assert.deepEqual(new Set(await outcomes(never, 50)), new Set(['ok']));
      const always = await serve(ok, { rate: 1, kinds: ['server-error'], seed: 1 });
      assert.deepEqual(new Set(await outcomes(always, 50)), new Set(['InternalServerError']));
      assert.equal(always.faultsInjected['server-error'], 50);
    });

    it('does not use up scripted replies on faulted requests, so retries get the reply the failed attempt missed', async () => {
      const indexes: number[] = [];
      const script = ['first', 'second', 'third'];
      const server = await serve(
        (_request, index) => {
          indexes.push(index);
          return { content: script[index] ?? 'past the script' };
        },
        { rate: 0.5, kinds: [{ fault: 'rate-limit', retryAfter: 0 }], seed: 3 },
      );
      const client = clientFor(server, { maxRetries: 20 });
      const answers: (string | null | undefined)[] = [];
      for (let call = 0; call < 3; call++) answers.push((await complete(client)).choices[0]?.message.content);
      assert.deepEqual(answers, script);
      assert.deepEqual(indexes, [0, 1, 2]);
      assert.ok(server.faultsInjected['rate-limit'] > 0, 'seed 3 should fault some of these requests');
      assert.equal(server.requests.length, 3 + server.faultsInjected['rate-limit']);
    });

    it('delays what respond answers when it draws a delay with no reply of its own', async () => {
      const server = await serve(() => ({ content: 'from respond' }), { rate: 1, kinds: [{ fault: 'delay', ms: 150 }], seed: 9 });
      const started = performance.now();
      const answer = await complete(clientFor(server));
      assert.equal(answer.choices[0]?.message.content, 'from respond');
      assert.ok(performance.now() - started >= 145);
      assert.equal(server.faultsInjected.delay, 1);
    });

    it('refuses settings it cannot honour', async () => {
      await assert.rejects(startOpenAIServer({ respond: [], faults: { rate: 1.5, kinds: FAST, seed: 1 } }), /rate must be from 0 to 1/);
      await assert.rejects(startOpenAIServer({ respond: [], faults: { rate: Number.NaN, kinds: FAST, seed: 1 } }), /rate/);
      await assert.rejects(startOpenAIServer({ respond: [], faults: { rate: 0.5, kinds: [], seed: 1 } }), /at least one fault/);
      await assert.rejects(startOpenAIServer({ respond: [], faults: { rate: 0.5, kinds: FAST, seed: 0.5 } }), /seed must be an integer/);
    });
  });

  describe('robustness', () => {
    const activeTimers = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;

    /** Whether the count of live timers gets back to `count` within two seconds (HTTP clients keep short-lived ones). */
    async function timersBackTo(count: number): Promise<boolean> {
      const deadline = performance.now() + 2_000;
      while (activeTimers() > count) {
        if (performance.now() > deadline) return false;
        await sleep(20);
      }
      return true;
    }

    it('closes promptly, cutting stalled, delayed, half-sent and unanswered requests', async () => {
      const faulty: readonly ServerReply[] = [
        { fault: 'stall' },
        { fault: 'stall', afterChunks: 2, reply: COUNTING },
        { fault: 'stall', afterChunks: 1 },
        { fault: 'delay', ms: 60_000 },
      ];
      await sleep(1); // Mocha arms its own timeout timer only once the test has started.
      const timersBefore = activeTimers();
      const server = await serve((_request, index) => faulty[index] ?? new Promise<ServerReply>(() => undefined));
      const client = clientFor(server, { timeout: 60_000 });
      const calls = [
        rejection(complete(client)),
        rejection(stream(client, [])),
        rejection(complete(client)),
        rejection(complete(client)),
        rejection(complete(client)),
      ];
      while (server.requests.length < calls.length) await sleep(5);
      await sleep(50);
      const started = performance.now();
      await server.close();
      const closing = performance.now() - started;
      assert.ok(closing < 500, `close() took ${Math.round(closing)} ms`);
      const [beforeHeaders, midStream, midBody, delayed, unanswered] = await Promise.all(calls);
      assertConnectionError(beforeHeaders);
      assertCutOff(midStream);
      assertCutOff(midBody);
      assertConnectionError(delayed);
      assertConnectionError(unanswered);
      assert.ok(await timersBackTo(timersBefore), 'the 60 s delay should leave no timer behind');
    });

    it('keeps serving after clients give up on stalls and delays, and after drops', async () => {
      const server = await serve([
        { fault: 'stall' },
        { fault: 'delay', ms: 400, reply: COUNTING },
        { fault: 'drop', afterChunks: 2, reply: COUNTING },
        { fault: 'stall', afterChunks: 2, reply: COUNTING },
        { content: 'still here' },
      ]);
      const impatient = clientFor(server, { timeout: 100 });
      const started = performance.now();
      assertTimeout(await rejection(complete(impatient)), started, 100);
      assert.ok((await rejection(complete(impatient))) instanceof OpenAI.APIConnectionTimeoutError);
      assertCutOff(await rejection(stream(impatient, [])));
      const controller = new AbortController();
      const stalled = stream(impatient, [], controller.signal);
      await sleep(100);
      controller.abort();
      await stalled;
      await sleep(400); // Past the end of the delay whose client left: the server must not trip over it.
      const answer = await complete(clientFor(server));
      assert.equal(answer.choices[0]?.message.content, 'still here');
      assert.equal(server.requests.length, 5);
    });
  });
});
