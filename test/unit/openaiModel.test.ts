import assert from 'node:assert/strict';
import { ModelError } from '../../src/runtime/errors';
import type { Message, ModelRequest, ToolSpec } from '../../src/runtime/model/model';
import { openaiModel, type OpenAIModelOptions } from '../../src/runtime/model/openai';
import { startOpenAIServer, type OpenAIServer, type OpenAIServerOptions } from '../support/openaiServer';

const MODEL = 'gpt-test';
const ENV_KEYS = ['OPENAI_API_KEY', 'OPENAI_BASE_URL'] as const;

const weatherTool: ToolSpec = {
  name: 'get_weather',
  description: 'Current weather for a city.',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string', description: 'City name' }, unit: { type: 'string', enum: ['c', 'f'] } },
    required: ['city'],
    additionalProperties: false,
  },
};

function ask(text: string, tools: readonly ToolSpec[] = []): ModelRequest {
  return { messages: [{ role: 'user', content: text }], tools };
}

describe('openaiModel, through the openai SDK against a local OpenAI-compatible server', () => {
  const saved = new Map<string, string | undefined>();
  let servers: OpenAIServer[] = [];

  before(() => {
    for (const key of ENV_KEYS) saved.set(key, process.env[key]);
  });
  beforeEach(() => {
    for (const key of ENV_KEYS) delete process.env[key];
  });
  afterEach(async () => {
    await Promise.all(servers.map((server) => server.close()));
    servers = [];
  });
  after(() => {
    for (const key of ENV_KEYS) {
      const value = saved.get(key);
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });

  async function serve(respond: OpenAIServerOptions['respond']): Promise<OpenAIServer> {
    const server = await startOpenAIServer({ respond });
    servers.push(server);
    return server;
  }

  function modelFor(server: OpenAIServer, options: Partial<OpenAIModelOptions> = {}): ReturnType<typeof openaiModel> {
    return openaiModel({ model: MODEL, baseURL: server.url, apiKey: 'sk-test', maxRetries: 0, ...options });
  }

  function onlyRequest(server: OpenAIServer): OpenAIServer['requests'][number] {
    assert.equal(server.requests.length, 1, 'exactly one request should reach the server');
    const request = server.requests[0];
    assert.ok(request);
    return request;
  }

  describe('answers', () => {
    it('returns a non-streamed text answer', async () => {
      const server = await serve([{ content: 'Paris is the capital of France.' }]);
      const deltas: string[] = [];
      const response = await modelFor(server, { stream: false }).generate(ask('Capital of France?'), {
        onTextDelta: (delta) => deltas.push(delta),
      });
      assert.deepEqual(response.message, { role: 'assistant', content: 'Paris is the capital of France.', toolCalls: [] });
      assert.equal(response.finishReason, 'stop');
      assert.equal(response.model, MODEL);
      assert.deepEqual(deltas, ['Paris is the capital of France.']);
      assert.equal(onlyRequest(server).stream, false);
    });

    it('streams text, handing each delta to onTextDelta in order, and assembles the whole answer', async () => {
      const pieces = ['Par', 'is is', ' the cap', 'ital', ' of France', '.'];
      const server = await serve([{ content: pieces }]);
      const deltas: string[] = [];
      const response = await modelFor(server).generate(ask('Capital of France?'), { onTextDelta: (d) => deltas.push(d) });
      assert.deepEqual(deltas, pieces);
      assert.equal(response.message.content, 'Paris is the capital of France.');
      assert.deepEqual(response.message.toolCalls, []);
      assert.equal(response.finishReason, 'stop');
      const request = onlyRequest(server);
      assert.equal(request.stream, true);
      assert.deepEqual(request.body.stream === true ? request.body.stream_options : undefined, { include_usage: true });
    });

    it('reports the model the server says answered', async () => {
      const server = await serve([{ content: 'hi', model: 'gpt-test-2025-01-01' }, { content: 'hi', model: 'gpt-test-2025-01-01' }]);
      assert.equal((await modelFor(server).generate(ask('hi'))).model, 'gpt-test-2025-01-01');
      assert.equal((await modelFor(server, { stream: false }).generate(ask('hi'))).model, 'gpt-test-2025-01-01');
    });

    for (const stream of [false, true]) {
      const mode = stream ? 'streamed' : 'non-streamed';

      it(`maps token usage (${mode})`, async () => {
        const server = await serve([{ content: 'ok', usage: { prompt_tokens: 123, completion_tokens: 45 } }]);
        const response = await modelFor(server, { stream }).generate(ask('hi'));
        assert.deepEqual(response.usage, { inputTokens: 123, outputTokens: 45 });
      });

      it(`maps finish reasons (${mode})`, async () => {
        const cases = [
          ['stop', 'stop'],
          ['length', 'length'],
          ['content_filter', 'content_filter'],
          ['tool_calls', 'tool_calls'],
          ['function_call', 'tool_calls'],
        ] as const;
        const server = await serve(cases.map(([wire]) => ({ content: 'partial', finishReason: wire })));
        const model = modelFor(server, { stream });
        for (const [wire, keel] of cases) {
          const response = await model.generate(ask('hi'));
          assert.equal(response.finishReason, keel, `finish_reason ${wire}`);
        }
      });
    }
  });

  describe('tool calls', () => {
    const forecast = '{"city":"Paris","unit":"c","note":"a longer argument string, streamed in many pieces"}';

    for (const stream of [false, true]) {
      const mode = stream ? 'streamed' : 'non-streamed';

      it(`converts one tool call (${mode})`, async () => {
        const server = await serve([{ toolCalls: [{ name: 'get_weather', arguments: forecast }] }]);
        const response = await modelFor(server, { stream }).generate(ask('Weather in Paris?', [weatherTool]));
        assert.deepEqual(response.message, {
          role: 'assistant',
          content: null,
          toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: forecast }],
        });
        assert.equal(response.finishReason, 'tool_calls');
      });

      it(`converts several tool calls next to text, keeping each one's id, name and arguments (${mode})`, async () => {
        const calls = [
          { id: 'call_paris', name: 'get_weather', arguments: forecast },
          { id: 'call_rome', name: 'get_weather', arguments: '{"city":"Rome"}' },
          { id: 'call_time', name: 'get_time', arguments: '{}' },
        ];
        const server = await serve([{ content: 'Let me check.', toolCalls: calls }]);
        const response = await modelFor(server, { stream }).generate(ask('Weather in Paris and Rome?', [weatherTool]));
        assert.equal(response.message.content, 'Let me check.');
        assert.deepEqual(response.message.toolCalls, calls);
        assert.equal(response.finishReason, 'tool_calls');
      });

      it(`passes invalid JSON arguments through untouched (${mode})`, async () => {
        const broken = '{"city": "Par';
        const server = await serve([{ toolCalls: [{ name: 'get_weather', arguments: broken }] }]);
        const response = await modelFor(server, { stream }).generate(ask('Weather?', [weatherTool]));
        assert.equal(response.message.toolCalls[0]?.arguments, broken);
      });
    }

    it('reassembles arguments that arrive split over many chunks', async () => {
      let argumentChunks = 0;
      const server = await serve([
        {
          toolCalls: [{ name: 'get_weather', arguments: forecast }],
          mapChunks: (chunks) => {
            argumentChunks = chunks.filter((c) => c.choices[0]?.delta.tool_calls?.[0]?.function?.arguments).length;
            return chunks;
          },
        },
      ]);
      const response = await modelFor(server).generate(ask('Weather?', [weatherTool]));
      assert.ok(argumentChunks > 5, `the server should split the arguments, sent ${argumentChunks} chunk(s)`);
      assert.equal(response.message.toolCalls[0]?.arguments, forecast);
    });

    it('does not double a tool name that a compatible server repeats in every chunk', async () => {
      const server = await serve([
        {
          toolCalls: [{ name: 'get_weather', arguments: forecast }],
          mapChunks: (chunks) =>
            chunks.map((chunk) => ({
              ...chunk,
              choices: chunk.choices.map((choice) => ({
                ...choice,
                delta: {
                  ...choice.delta,
                  ...(choice.delta.tool_calls
                    ? {
                        tool_calls: choice.delta.tool_calls.map((call) => ({
                          ...call,
                          id: 'call_repeated',
                          function: { ...call.function, name: 'get_weather' },
                        })),
                      }
                    : {}),
                },
              })),
            })),
        },
      ]);
      const response = await modelFor(server).generate(ask('Weather?', [weatherTool]));
      assert.deepEqual(response.message.toolCalls, [{ id: 'call_repeated', name: 'get_weather', arguments: forecast }]);
    });
  });

  describe('the request on the wire', () => {
    const conversation: Message[] = [
      { role: 'system', content: 'You are a travel assistant.' },
      { role: 'user', content: 'Weather in Paris and Rome?' },
      {
        role: 'assistant',
        content: null,
        toolCalls: [
          { id: 'call_a', name: 'get_weather', arguments: '{"city":"Paris"}' },
          { id: 'call_b', name: 'get_weather', arguments: '{"city":"Rome"' },
        ],
      },
      { role: 'tool', toolCallId: 'call_a', name: 'get_weather', content: '{"temp":21}', isError: false },
      { role: 'tool', toolCallId: 'call_b', name: 'get_weather', content: 'Invalid arguments: not JSON', isError: true },
      { role: 'assistant', content: 'Paris is 21°C; Rome failed.', toolCalls: [] },
      { role: 'user', content: 'Thanks!' },
    ];

    it('translates the whole conversation and the tools into Chat Completions messages', async () => {
      const server = await serve([{ content: 'You are welcome.' }]);
      await modelFor(server, { stream: false, temperature: 0.9, maxTokens: 999 }).generate({
        messages: conversation,
        tools: [weatherTool],
        temperature: 0.2,
        maxTokens: 256,
      });
      assert.deepEqual(onlyRequest(server).body, {
        model: MODEL,
        messages: [
          { role: 'system', content: 'You are a travel assistant.' },
          { role: 'user', content: 'Weather in Paris and Rome?' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              { id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
              { id: 'call_b', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Rome"' } },
            ],
          },
          { role: 'tool', tool_call_id: 'call_a', content: '{"temp":21}' },
          { role: 'tool', tool_call_id: 'call_b', content: 'Invalid arguments: not JSON' },
          { role: 'assistant', content: 'Paris is 21°C; Rome failed.' },
          { role: 'user', content: 'Thanks!' },
        ],
        tools: [
          {
            type: 'function',
            function: { name: 'get_weather', description: 'Current weather for a city.', parameters: weatherTool.parameters },
          },
        ],
        temperature: 0.2,
        max_completion_tokens: 256,
        stream: false,
      });
    });

    it('falls back to the model options for temperature and max tokens, and sends no tools when there are none', async () => {
      const server = await serve([{ content: 'ok' }]);
      await modelFor(server, { temperature: 0.7, maxTokens: 64 }).generate(ask('hi'));
      const { body } = onlyRequest(server);
      assert.equal(body.temperature, 0.7);
      assert.equal(body.max_completion_tokens, 64);
      assert.equal('tools' in body, false, 'an empty tools array is rejected by OpenAI and must not be sent');
    });

    it('sends the API key from the options as a bearer token', async () => {
      const server = await serve([{ content: 'ok' }]);
      await modelFor(server, { apiKey: 'sk-from-options' }).generate(ask('hi'));
      assert.equal(onlyRequest(server).headers.authorization, 'Bearer sk-from-options');
    });

    it('takes the endpoint and key from OPENAI_BASE_URL and OPENAI_API_KEY when the options give none', async () => {
      const server = await serve([{ content: 'from env' }]);
      process.env['OPENAI_BASE_URL'] = server.url;
      process.env['OPENAI_API_KEY'] = 'sk-from-env';
      const response = await openaiModel({ model: MODEL, maxRetries: 0 }).generate(ask('hi'));
      assert.equal(response.message.content, 'from env');
      assert.equal(onlyRequest(server).headers.authorization, 'Bearer sk-from-env');
    });

    it('needs no API key for a local endpoint given by baseURL', async () => {
      const server = await serve([{ content: 'local answer' }]);
      const response = await openaiModel({ model: MODEL, baseURL: server.url, maxRetries: 0 }).generate(ask('hi'));
      assert.equal(response.message.content, 'local answer');
    });
  });

  describe('failures', () => {
    it('turns an HTTP 401 into a ModelError naming the model and quoting the server', async () => {
      const server = await serve([{ status: 401, error: { message: 'Incorrect API key provided: sk-bad.' } }]);
      await assert.rejects(modelFor(server, { apiKey: 'sk-bad' }).generate(ask('hi')), (error: unknown) => {
        assert.ok(error instanceof ModelError, `expected a ModelError, got ${String(error)}`);
        assert.match(error.message, /openai:gpt-test/);
        assert.match(error.message, /Incorrect API key provided: sk-bad\./);
        assert.equal(error.context['status'], 401);
        return true;
      });
      onlyRequest(server);
    });

    it('turns a server error on a streamed call into a ModelError with its status', async () => {
      const server = await serve([{ status: 500, error: { message: 'The engine is overloaded.' } }]);
      await assert.rejects(modelFor(server).generate(ask('hi')), (error: unknown) => {
        assert.ok(error instanceof ModelError);
        assert.match(error.message, /openai:gpt-test.*The engine is overloaded\./);
        assert.equal(error.context['status'], 500);
        return true;
      });
    });

    const notOpenAI = [
      { variant: 'html', says: /HTTP 200 with something that is not an OpenAI chat completion \(text\/html\): "<!DOCTYPE html>/ },
      { variant: 'not-json', says: /not an OpenAI chat completion \(application\/json\): "[A-Za-z]/ },
      { variant: 'no-choices', says: /not an OpenAI chat completion \((application\/json|text\/event-stream)\): "\{"id":"chatcmpl-/ },
    ] as const;
    for (const stream of [true, false]) {
      for (const { variant, says } of notOpenAI) {
        it(`names a 200 that is not a chat completion (${variant}, ${stream ? 'streamed' : 'not streamed'}) with what arrived, as not worth retrying`, async () => {
          const server = await serve([{ fault: 'malformed', variant }]);
          await assert.rejects(modelFor(server, { stream }).generate(ask('hi')), (error: unknown) => {
            assert.ok(error instanceof ModelError, `expected a ModelError, got ${String(error)}`);
            assert.match(error.message, says);
            assert.match(error.message, /^openai:gpt-test answered .*; check that its base URL \(OPENAI_BASE_URL\) points at an OpenAI-compatible API\.$/);
            assert.equal(error.context['transient'], undefined);
            return true;
          });
        });
      }
      it(`still retries JSON cut off in the middle (${stream ? 'streamed' : 'not streamed'})`, async () => {
        const server = await serve([{ fault: 'malformed', variant: 'truncated-json' }]);
        await assert.rejects(modelFor(server, { stream }).generate(ask('hi')), (error: unknown) => {
          assert.ok(error instanceof ModelError);
          assert.doesNotMatch(error.message, /not an OpenAI chat completion/);
          assert.equal(error.context['transient'], true);
          return true;
        });
      });
    }

    it('lets the SDK retry a 429 that says when to come back, when retries are allowed', async () => {
      const server = await serve([{ status: 429, retryAfter: 0 }, { content: 'second time lucky' }]);
      const response = await modelFor(server, { maxRetries: 1 }).generate(ask('hi'));
      assert.equal(response.message.content, 'second time lucky');
      assert.equal(server.requests.length, 2);
    });

    it('explains how to configure a key when there is neither a key nor a base URL', async () => {
      await assert.rejects(openaiModel({ model: MODEL, maxRetries: 0 }).generate(ask('hi')), (error: unknown) => {
        assert.ok(error instanceof ModelError);
        assert.match(error.message, /openai:gpt-test needs an API key/);
        assert.match(error.message, /OPENAI_API_KEY/);
        assert.match(error.message, /OPENAI_BASE_URL/);
        return true;
      });
    });

    it('rejects promptly when aborted while waiting for the server', async () => {
      const controller = new AbortController();
      let release: () => void = () => undefined;
      const server = await serve(
        () =>
          new Promise((resolve) => {
            release = () => resolve({ content: 'too late' });
            controller.abort(new Error('cancelled by the user'));
          }),
      );
      try {
        await assert.rejects(modelFor(server).generate(ask('hi'), { signal: controller.signal }));
        assert.equal(server.requests.length, 1, 'the request had reached the server before the abort');
      } finally {
        release();
      }
    });

    it('rejects, rather than returning a cut-off answer, when aborted in the middle of a stream', async () => {
      const controller = new AbortController();
      const server = await serve([{ content: ['one ', 'two ', 'three ', 'four'] }]);
      const deltas: string[] = [];
      await assert.rejects(
        modelFor(server).generate(ask('count'), {
          signal: controller.signal,
          onTextDelta: (delta) => {
            deltas.push(delta);
            controller.abort(new Error('cancelled by the user'));
          },
        }),
      );
      assert.equal(deltas[0], 'one ');
    });
  });
});

describe('the local OpenAI test server', () => {
  let server: OpenAIServer;

  beforeEach(async () => {
    server = await startOpenAIServer({ respond: [{ status: 429, retryAfter: 7 }], models: ['gpt-a', 'gpt-b'] });
  });
  afterEach(() => server.close());

  it('lists its models', async () => {
    const response = await fetch(`${server.url}/models`);
    assert.equal(response.status, 200);
    const body = (await response.json()) as { data: { id: string }[] };
    assert.deepEqual(
      body.data.map((model) => model.id),
      ['gpt-a', 'gpt-b'],
    );
  });

  it('answers unknown routes with an OpenAI-shaped 404', async () => {
    const response = await fetch(`${server.url}/embeddings`, { method: 'POST', body: '{}' });
    assert.equal(response.status, 404);
    assert.deepEqual(await response.json(), {
      error: { message: 'Invalid URL (POST /v1/embeddings)', type: 'invalid_request_error', param: null, code: null },
    });
  });

  it('answers a body that is not JSON with an OpenAI-shaped 400, without recording it', async () => {
    const response = await fetch(`${server.url}/chat/completions`, { method: 'POST', body: '{"model":' });
    assert.equal(response.status, 400);
    const body = (await response.json()) as { error: { message: string; type: string } };
    assert.match(body.error.message, /could not parse the JSON body/);
    assert.equal(body.error.type, 'invalid_request_error');
    assert.equal(server.requests.length, 0);
  });

  it('sends scripted errors with their status, body and retry-after header', async () => {
    const response = await fetch(`${server.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-a', messages: [] }),
    });
    assert.equal(response.status, 429);
    assert.equal(response.headers.get('retry-after'), '7');
    const body = (await response.json()) as { error: { code: string } };
    assert.equal(body.error.code, 'rate_limit_exceeded');
  });
});
