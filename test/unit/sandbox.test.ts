import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { z } from 'zod';
import { defineAgent, defineTool, type Tool, type ToolContext } from '../../src/runtime/agent/define';
import { loadAgentFile } from '../../src/runtime/agent/loader';
import { Runtime } from '../../src/runtime/agent/runtime';
import { AgentDefinitionError } from '../../src/runtime/errors';
import { detachedMemory } from '../../src/runtime/memory/runMemory';
import { scriptedModel } from '../../src/runtime/model/scripted';
import { IsolatedVmSandbox } from '../../src/runtime/sandbox/isolatedVmSandbox';
import { ToolSandboxError } from '../../src/runtime/sandbox/sandboxError';
import { openSqliteStore, type SqliteStore } from '../../src/runtime/store/sqliteStore';
import { useTempDirs } from '../support/tempDir';

const none = z.object({});

function context(overrides: Partial<ToolContext> = {}): ToolContext & { logs: string[] } {
  const logs: string[] = [];
  return {
    runId: 'run_test',
    stepId: 3,
    callIndex: 1,
    idempotencyKey: 'run_test:3:1',
    signal: new AbortController().signal,
    log: (message) => logs.push(message),
    subAgent: () => Promise.reject(new Error('no sub-agents here')),
    traceparent: '00-00000000000000000000000000000001-0000000000000001-01',
    annotate: () => undefined,
    ...detachedMemory(),
    ...overrides,
    logs,
  };
}

/** A local HTTP server that records what reached it. */
async function serve(handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<{ origin: string; hits: string[]; close(): Promise<void> }> {
  const hits: string[] = [];
  const server: Server = createServer((request, response) => {
    hits.push(`${request.method ?? ''} ${request.url ?? ''}`);
    handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    hits,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('the isolated-vm tool sandbox', function () {
  this.timeout(30_000);
  let sandbox: IsolatedVmSandbox;

  before(() => {
    sandbox = new IsolatedVmSandbox({ warmIsolates: 1 });
  });
  after(() => sandbox.close());

  function call(tool: Tool, args: unknown = {}, ctx: ToolContext = context()): Promise<unknown> {
    assert.ok(tool.sandbox, `${tool.name} is marked sandbox`);
    return sandbox.run({ tool, grant: tool.sandbox, args, ctx });
  }

  async function stopped(tool: Tool, args: unknown = {}): Promise<ToolSandboxError> {
    try {
      const value = await call(tool, args);
      return assert.fail(`${tool.name} returned ${JSON.stringify(value)}`);
    } catch (error) {
      assert.ok(error instanceof ToolSandboxError, `expected a ToolSandboxError, got ${String(error)}`);
      return error;
    }
  }

  it('runs the tool with copied arguments and returns a copy of its output', async () => {
    const add = defineTool({
      name: 'add',
      description: 'Adds.',
      args: z.object({ a: z.number(), b: z.number(), when: z.date() }),
      effect: 'none',
      sandbox: true,
      run: ({ a, b, when }, ctx) => ({ sum: a + b, year: when.getUTCFullYear(), key: ctx.idempotencyKey, run: ctx.runId, step: ctx.stepId, call: ctx.callIndex }),
    });
    assert.deepEqual(await call(add, { a: 2, b: 3, when: new Date('2026-12-10T00:00:00Z') }), {
      sum: 5,
      year: 2026,
      key: 'run_test:3:1',
      run: 'run_test',
      step: 3,
      call: 1,
    });
  });

  it('ctx.log and console.log reach the run log', async () => {
    const chatty = defineTool({
      name: 'chatty',
      description: 'Logs.',
      args: none,
      effect: 'none',
      sandbox: true,
      run: (_args, ctx) => {
        ctx.log('from ctx.log');
        console.log('from console.log', 42);
        return 'done';
      },
    });
    const ctx = context();
    assert.equal(await call(chatty, {}, ctx), 'done');
    assert.deepEqual(ctx.logs, ['from ctx.log', 'from console.log 42']);
  });

  it('a method-style run works as well as an arrow function', async () => {
    const method = defineTool({
      name: 'method',
      description: 'A method.',
      args: z.object({ text: z.string() }),
      effect: 'none',
      sandbox: true,
      async run({ text }) {
        await Promise.resolve();
        return text.toUpperCase();
      },
    });
    assert.equal(await call(method, { text: 'shout' }), 'SHOUT');
  });

  it('each call gets a fresh context: globals and polluted built-ins do not carry over', async () => {
    const polluter = defineTool({
      name: 'polluter',
      description: 'Leaves things behind.',
      args: none,
      effect: 'none',
      sandbox: true,
      run: () => {
        (globalThis as Record<string, unknown>)['secret'] = 'from the last call';
        (Object.prototype as Record<string, unknown>)['isAdmin'] = true;
        JSON.stringify = () => 'hijacked';
        return 'polluted';
      },
    });
    const reader = defineTool({
      name: 'reader',
      description: 'Looks for leftovers.',
      args: none,
      effect: 'none',
      sandbox: true,
      run: () => ({
        secret: (globalThis as Record<string, unknown>)['secret'] ?? null,
        isAdmin: ({} as Record<string, unknown>)['isAdmin'] ?? null,
        json: JSON.stringify({ a: 1 }),
      }),
    });
    for (let round = 0; round < 3; round++) {
      assert.equal(await call(polluter), 'polluted');
      assert.deepEqual(await call(reader), { secret: null, isAdmin: null, json: '{"a":1}' });
    }
    assert.equal(({} as Record<string, unknown>)['isAdmin'], undefined, 'the host is untouched');
  });

  it('calls of the same tool in a row each start from scratch too', async () => {
    const counter = defineTool({
      name: 'counter',
      description: 'Counts its calls in a global.',
      args: none,
      effect: 'none',
      sandbox: true,
      run: () => {
        const state = globalThis as Record<string, unknown>;
        state['calls'] = (typeof state['calls'] === 'number' ? state['calls'] : 0) + 1;
        return state['calls'];
      },
    });
    const counts: unknown[] = [];
    for (let round = 0; round < 4; round++) {
      await sandbox.whenPrepared();
      counts.push(await call(counter));
    }
    assert.deepEqual(counts, [1, 1, 1, 1]);
  });

  it('arguments are copies: changing them or their prototypes inside does not reach the host', async () => {
    const mutate = defineTool({
      name: 'mutate',
      description: 'Mutates its arguments.',
      args: z.object({ order: z.object({ amount: z.number() }) }),
      effect: 'none',
      sandbox: true,
      run: ({ order }) => {
        order.amount = 1_000_000;
        (Object.getPrototypeOf(order) as Record<string, unknown>)['polluted'] = 'yes';
        return { polluted: ({} as Record<string, unknown>)['polluted'] };
      },
    });
    const args = { order: { amount: 5 } };
    assert.deepEqual(await call(mutate, args), { polluted: 'yes' });
    assert.deepEqual(args, { order: { amount: 5 } });
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });

  it('stops an infinite loop at its CPU limit, and the next call works', async () => {
    const spin = defineTool({
      name: 'spin',
      description: 'Spins.',
      args: none,
      effect: 'none',
      sandbox: { cpuMs: 50 },
      run: () => {
        for (;;) {
          // spin
        }
      },
    });
    const error = await stopped(spin);
    assert.equal(error.message, 'it exceeded its 50 ms CPU limit, so the sandbox stopped it');
    assert.equal(error.stop, 'cpu');
    const ok = defineTool({ name: 'ok', description: 'Fine.', args: none, effect: 'none', sandbox: true, run: () => 'still serving' });
    assert.equal(await call(ok), 'still serving');
  });

  it('a spinning tool does not block the runtime process: other calls go on meanwhile', async () => {
    const spin = defineTool({
      name: 'long_spin',
      description: 'Spins for its whole CPU budget.',
      args: none,
      effect: 'none',
      sandbox: { cpuMs: 1_000 },
      run: () => {
        for (;;) {
          // spin
        }
      },
    });
    const quick = defineTool({ name: 'quick', description: 'Quick.', args: none, effect: 'none', sandbox: true, run: () => 'quick' });
    const order: string[] = [];
    const spinning = call(spin).catch((error: unknown) => order.push(error instanceof ToolSandboxError ? error.stop : 'other'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    order.push(String(await call(quick)));
    await new Promise<void>((resolve) => setImmediate(resolve));
    order.push('event loop free');
    await spinning;
    assert.deepEqual(order, ['quick', 'event loop free', 'cpu']);
  });

  it('stops a loop that starts after an await, within the same CPU budget', async () => {
    const late = defineTool({
      name: 'late_spin',
      description: 'Spins later.',
      args: none,
      effect: 'none',
      sandbox: { cpuMs: 50 },
      run: async () => {
        await Promise.resolve();
        for (;;) {
          // spin
        }
      },
    });
    assert.equal((await stopped(late)).stop, 'cpu');
  });

  it('stops a memory bomb at its memory limit', async () => {
    const bomb = defineTool({
      name: 'bomb',
      description: 'Allocates.',
      args: none,
      effect: 'none',
      sandbox: { memoryMb: 16 },
      run: () => {
        const hoard: number[][] = [];
        for (;;) hoard.push(new Array<number>(10_000).fill(hoard.length));
      },
    });
    const error = await stopped(bomb);
    assert.equal(error.message, 'it used more than 16 MB of memory, so the sandbox stopped it');
  });

  it('names what a run that is not self-contained reached for', async () => {
    const rate = 1.1;
    const outside = defineTool({
      name: 'outside',
      description: 'Uses a variable of its module.',
      args: z.object({ amount: z.number() }),
      effect: 'none',
      sandbox: true,
      run: ({ amount }) => amount * rate,
    });
    assert.equal(
      (await stopped(outside, { amount: 2 })).message,
      "it used `rate`, which is not defined in the sandbox: a sandboxed tool's run function must be self-contained, using only its arguments, ctx and JavaScript's built-ins",
    );
    const web = defineTool({
      name: 'web',
      description: 'Uses URL.',
      args: none,
      effect: 'none',
      sandbox: true,
      run: () => new URL('https://example.com').host,
    });
    assert.match((await stopped(web)).message, /^it used `URL`, which does not exist in the sandbox: it has JavaScript's built-ins only/);
  });

  it('a result that cannot be copied out is a specific error', async () => {
    const fn = defineTool({ name: 'fn', description: 'Returns a function.', args: none, effect: 'none', sandbox: true, run: () => ({ f: () => 1 }) });
    assert.match((await stopped(fn)).message, /^it returned a value that cannot leave the sandbox \(.*could not be cloned.*\): return plain data$/);
  });

  it("a tool's own error comes out with its name and message", async () => {
    const thrower = defineTool({
      name: 'thrower',
      description: 'Throws.',
      args: none,
      effect: 'none',
      sandbox: true,
      run: () => {
        throw new RangeError('amount out of range');
      },
    });
    await assert.rejects(call(thrower), (error: Error) => error.name === 'RangeError' && error.message === 'amount out of range');
  });

  it('stops a call that outlives its time limit while it waits for the network', async () => {
    const server = await serve(() => undefined);
    try {
      const hang = defineTool({
        name: 'hang',
        description: 'Waits for a server that never answers.',
        args: z.object({ url: z.string() }),
        effect: 'none',
        sandbox: { egress: [server.origin], timeoutMs: 300 },
        run: async ({ url }, ctx) => (await ctx.fetch(url)).text(),
      });
      const started = Date.now();
      const error = await stopped(hang, { url: `${server.origin}/slow` });
      assert.equal(error.message, 'it did not finish within its 300 ms time limit, so the sandbox stopped it');
      assert.ok(Date.now() - started < 3_000);
    } finally {
      await server.close();
    }
  });

  it('a cancelled run stops its sandboxed call at once', async () => {
    const server = await serve(() => undefined);
    try {
      const hang = defineTool({
        name: 'hang',
        description: 'Waits.',
        args: z.object({ url: z.string() }),
        effect: 'none',
        sandbox: { egress: [server.origin] },
        run: async ({ url }, ctx) => (await ctx.fetch(url)).text(),
      });
      const controller = new AbortController();
      const pending = call(hang, { url: `${server.origin}/slow` }, context({ signal: controller.signal }));
      setTimeout(() => controller.abort(new Error('Cancelled by the user.')), 50);
      await assert.rejects(pending, /Cancelled by the user\./);
    } finally {
      await server.close();
    }
  });

  describe('ctx.fetch', () => {
    let server: Awaited<ReturnType<typeof serve>>;
    before(async () => {
      server = await serve((request, response) => {
        if (request.url === '/redirect') {
          response.writeHead(302, { location: '/landed' });
          response.end();
          return;
        }
        let body = '';
        request.setEncoding('utf8');
        request.on('data', (chunk: string) => (body += chunk));
        request.on('end', () => {
          response.writeHead(200, { 'content-type': 'application/json', 'x-echo': String(request.headers['x-token'] ?? '') });
          response.end(JSON.stringify({ method: request.method, url: request.url, body, encoding: request.headers['accept-encoding'] }));
        });
      });
    });
    after(() => server.close());

    function fetcher(egress: string[]): Tool {
      return defineTool({
        name: 'fetcher',
        description: 'Fetches.',
        args: z.object({ url: z.string(), method: z.string().default('GET'), body: z.string().optional() }),
        effect: 'none',
        sandbox: { egress },
        run: async ({ url, method, body }, ctx) => {
          const response = await ctx.fetch(url, { method, headers: { 'x-token': 'abc' }, ...(body === undefined ? {} : { body }) });
          return {
            ok: response.ok,
            status: response.status,
            redirected: response.redirected,
            url: response.url,
            echo: response.headers.get('X-Echo'),
            json: await response.json(),
          };
        },
      });
    }

    it('reaches an allowed server, with headers, body and redirects checked and followed', async () => {
      const tool = fetcher([`GET,POST ${server.origin}`]);
      assert.deepEqual(await call(tool, { url: `${server.origin}/a?b=1`, method: 'POST', body: 'hello' }), {
        ok: true,
        status: 200,
        redirected: false,
        url: `${server.origin}/a?b=1`,
        echo: 'abc',
        json: { method: 'POST', url: '/a?b=1', body: 'hello', encoding: 'identity' },
      });
      const redirected = (await call(tool, { url: `${server.origin}/redirect` })) as { redirected: boolean; url: string; json: { url: string } };
      assert.equal(redirected.redirected, true);
      assert.equal(redirected.url, `${server.origin}/landed`);
      assert.equal(redirected.json.url, '/landed');
    });

    it('a network failure the tool rethrows keeps its code, so the runtime can retry it', async () => {
      const closed = await serve(() => undefined);
      await closed.close();
      const tool = fetcher([closed.origin]);
      await assert.rejects(call(tool, { url: `${closed.origin}/` }), (error: Error & { code?: string }) => {
        assert.match(error.message, /^fetch http:\/\/127\.0\.0\.1:\d+\/ failed: connect ECONNREFUSED/);
        assert.equal(error.code, 'ECONNREFUSED');
        return true;
      });
    });

    it('a method the allow-list does not list is denied before anything is sent', async () => {
      const before = server.hits.length;
      const error = await stopped(fetcher([server.origin]), { url: `${server.origin}/orders`, method: 'DELETE' });
      assert.equal(error.stop, 'egress');
      assert.match(error.message, /^it tried to DELETE 127\.0\.0\.1:\d+, which its egress allow-list does not permit \(it allows GET, HEAD there\)$/);
      assert.equal(server.hits.length, before);
    });
  });
});

describe('sandboxed tools in a run', function () {
  this.timeout(30_000);
  const tempDir = useTempDirs();
  let store: SqliteStore;

  beforeEach(() => {
    store = openSqliteStore(join(tempDir('keel-sandbox-run-'), 'keel.db'));
  });
  afterEach(() => store.close());

  it('defineTool checks the sandbox grant and refuses a run it cannot move into the sandbox', () => {
    const base = { name: 'x', description: 'x', args: none, effect: 'none' as const };
    assert.throws(
      () => defineTool({ ...base, sandbox: { memoryMb: 4 }, run: () => 1 }),
      (error: Error) => error instanceof AgentDefinitionError && /sandbox\.memoryMb must be a whole number from 8 to 4096/.test(error.message),
    );
    assert.throws(() => defineTool({ ...base, sandbox: { egress: ['ftp://x.example.com'] }, run: () => 1 }), /sandbox\.egress rule 1 .*schemes must be http or https/);
    assert.throws(() => defineTool({ ...base, sandbox: true, run: (() => 1).bind(null) }), /must be a plain function written out/);
    assert.throws(() => defineTool({ ...base, maxOutputBytes: 0, run: () => 1 }), /`maxOutputBytes` must be a whole number of at least 1/);
  });

  it('an output over the limit is a tool error for every tool, sandboxed or not', async () => {
    const direct = defineTool({ name: 'direct_big', description: 'Big.', args: none, effect: 'none', run: () => 'x'.repeat(2 * 2 ** 20) });
    const small = defineTool({ name: 'small_limit', description: 'Small.', args: none, effect: 'none', maxOutputBytes: 10, sandbox: true, run: () => 'ééééééé' });
    const agent = defineAgent({
      name: 'outputs',
      instructions: '',
      model: scriptedModel([{ toolCalls: [{ name: 'direct_big' }, { name: 'small_limit' }] }, 'done']),
      tools: [direct, small],
    });
    const finished = await (await new Runtime({ store }).start(agent, { input: 'go' })).done;
    assert.equal(finished.state, 'completed');
    const errors = (await store.getSteps(finished.id)).filter((step) => step.kind === 'tool').map((step) => step.error);
    assert.deepEqual(errors, [
      'direct_big returned 2 MB of output, more than its limit of 1 MB (maxOutputBytes).',
      'small_limit returned 14 bytes of output, more than its limit of 10 bytes (maxOutputBytes).',
    ]);
  });

  it("sandbox default 'all' runs unmarked tools in the sandbox too", async () => {
    const pid = defineTool({ name: 'pid', description: 'Reads process.pid.', args: none, effect: 'none', run: () => process.pid });
    const agent = defineAgent({ name: 'pid', instructions: '', model: scriptedModel([{ toolCalls: [{ name: 'pid' }] }, 'done']), tools: [pid] });
    const marked = await (await new Runtime({ store }).start(agent, { input: 'go' })).done;
    assert.equal((await store.getSteps(marked.id))[1]?.status, 'completed', 'by default only marked tools are sandboxed');
    const all = await (await new Runtime({ store, sandbox: { default: 'all' } }).start(agent, { input: 'go' })).done;
    const step = (await store.getSteps(all.id))[1];
    assert.equal(step?.status, 'failed');
    assert.equal(step.error, 'pid failed: it used `process`, which does not exist in the sandbox: sandboxed tools get no Node APIs');
    assert.throws(() => new Runtime({ store, sandbox: { default: 'some' as 'all' } }), /must be 'marked' or 'all'/);
  });

  it('runs a sandboxed tool of an agent file end to end, journaled like any other', async () => {
    const dir = tempDir('keel-sandbox-agent-');
    const file = join(dir, 'convert.agent.ts');
    writeFileSync(
      file,
      `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

const RATES: Record<string, number> = { EUR: 0.9 };

const convert = defineTool({
  name: 'convert',
  description: 'Converts USD.',
  args: z.object({ usd: z.number(), rate: z.number() }),
  output: z.object({ amount: z.number(), note: z.string() }),
  effect: 'none',
  sandbox: { memoryMb: 16, cpuMs: 200 },
  run: async ({ usd, rate }, ctx) => {
    ctx.log(\`converting \${usd} at \${rate}\`);
    const amount = Math.round(usd * rate * 100) / 100;
    return { amount, note: \`\${ctx.idempotencyKey} \${typeof process}\` };
  },
});

export default defineAgent({
  name: 'converter',
  instructions: 'Convert.',
  model: scriptedModel([{ toolCalls: [{ name: 'convert', args: { usd: 10, rate: RATES['EUR'] } }] }, 'Done.']),
  tools: [convert],
});
`,
    );
    const { agent } = await loadAgentFile(file);
    const logs: string[] = [];
    const finished = await (
      await new Runtime({ store }).start(agent, { input: 'go', onEvent: (event) => (event.type === 'tool_log' ? logs.push(event.message) : undefined) })
    ).done;
    assert.equal(finished.state, 'completed', finished.error ?? '');
    const step = (await store.getSteps(finished.id))[1];
    assert.equal(step?.status, 'completed', step?.error ?? '');
    assert.deepEqual(step.output, {
      content: JSON.stringify({ amount: 9, note: `${finished.id}:1:0 undefined` }),
      value: { amount: 9, note: `${finished.id}:1:0 undefined` },
      channel: 'tool_output',
      guard: { fenced: true },
    });
    assert.deepEqual(logs, ['converting 10 at 0.9']);
  });
});
