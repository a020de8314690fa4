import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { defineAgent, defineTool, type Tool, type ToolContext } from '../../src/runtime/agent/define';
import { loadAgentFile } from '../../src/runtime/agent/loader';
import { Runtime } from '../../src/runtime/agent/runtime';
import { AgentDefinitionError } from '../../src/runtime/errors';
import { detachedMemory } from '../../src/runtime/memory/runMemory';
import { scriptedModel } from '../../src/runtime/model/scripted';
import { IsolateSandbox } from '../../src/runtime/sandbox/isolateSandbox';
import { ToolSandboxError } from '../../src/runtime/sandbox/sandboxError';
import type { StepRecord } from '../../src/runtime/store/checkpointStore';
import { openSqliteStore, type SqliteStore } from '../../src/runtime/store/sqliteStore';
import { KEEL, describeOutcome, listRuns, showRun } from '../support/keelCli';
import { REPO_ROOT, runNode, testEnv } from '../support/processes';
import { useTempDirs } from '../support/tempDir';

const none = z.object({});

/** WebAssembly as sandboxed code sees it (@types/node declares its types only). */
declare const WebAssembly: { Memory: new (descriptor: { initial: number; maximum?: number }) => { readonly buffer: ArrayBuffer; grow(pages: number): number } };

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
  const tempDir = useTempDirs();
  let sandbox: IsolateSandbox;

  before(() => {
    sandbox = new IsolateSandbox({ warmIsolates: 1 });
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

  it('ctx.annotate reaches the span of the call, within bounds, as in the process tier', async () => {
    const annotating = defineTool({
      name: 'annotating',
      description: 'Annotates its span.',
      args: none,
      effect: 'none',
      sandbox: true,
      run: (_args, ctx) => {
        ctx.annotate({ 'app.cache': 'hit', 'app.bytes': 42, 'app.fresh': false, 'app.nested': { no: 'objects' } as unknown as string, 'app.long': 'x'.repeat(5_000) });
        const many: Record<string, number> = {};
        for (let index = 0; index < 100; index++) many[`app.n${index}`] = index;
        ctx.annotate(many);
        return 'done';
      },
    });
    const annotations: Record<string, string | number | boolean> = {};
    assert.equal(await call(annotating, {}, context({ annotate: (attributes) => Object.assign(annotations, attributes) })), 'done');
    assert.equal(annotations['app.cache'], 'hit');
    assert.equal(annotations['app.bytes'], 42);
    assert.equal(annotations['app.fresh'], false);
    assert.equal('app.nested' in annotations, false, 'objects are not attributes');
    assert.equal(String(annotations['app.long']).length, 1_000, 'a long value is cut');
    assert.equal(Object.keys(annotations).length, 64, 'at most 64 attributes a call');
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
      await sandbox.whenPrepared(32);
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
      // Long enough for a second worker process to start under load.
      sandbox: { cpuMs: 5_000 },
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

  it('a catastrophic error in an isolate ends only its worker process: the call fails as a crash, and the next call works', async () => {
    // isolated-vm ends the process it runs in when V8 loses control of an isolate this way.
    const hoard = defineTool({
      name: 'hoard',
      description: 'Fills a Set until V8 gives up.',
      args: none,
      effect: 'none',
      sandbox: { memoryMb: 32, cpuMs: 20_000, timeoutMs: 30_000 },
      run: () => {
        const seen = new Set<number>();
        for (let index = 0; index < 4_000_000; index++) seen.add(index);
        return seen.size;
      },
    });
    const ok = defineTool({ name: 'ok', description: 'Fine.', args: none, effect: 'none', sandbox: true, run: () => 'still serving' });
    // Whether V8 gives up on the isolate (a crash) or stops it at its heap limit first (memory) depends
    // on where the Set's table grows as garbage is collected: both stop the call and spare the rest,
    // so the hoard runs until it has crashed its worker once.
    const stops: string[] = [];
    let crash: ToolSandboxError | undefined;
    while (!crash && stops.length < 5) {
      const error = await stopped(hoard);
      stops.push(error.stop);
      if (error.stop === 'crash') crash = error;
      else assert.equal(error.stop, 'memory', error.message);
      assert.equal(await call(ok), 'still serving');
    }
    assert.ok(crash, `no crash in ${stops.length} hoards (${stops.join(', ')})`);
    assert.match(crash.message, /^the process its sandbox ran in ended under it \(isolated-vm reported a catastrophic error \(.*\)\); only this call was lost$/);
  });

  it('WebAssembly does not exist unless granted; granted, its memory counts against memoryMb', async () => {
    const base = { args: z.object({ pages: z.number() }), effect: 'none' as const, description: 'Grows WebAssembly memory.' };
    const ungranted = defineTool({ ...base, name: 'wasm_ungranted', sandbox: true, run: ({ pages }) => new WebAssembly.Memory({ initial: pages }).buffer.byteLength });
    const small = defineTool({ ...base, name: 'wasm_small', sandbox: { wasm: true }, run: ({ pages }) => new WebAssembly.Memory({ initial: 1 + pages }).buffer.byteLength });
    const greedy = defineTool({
      ...base,
      name: 'wasm_greedy',
      sandbox: { wasm: true, memoryMb: 16, cpuMs: 20_000 },
      run: ({ pages }) => {
        // Outside the isolate's heap: 10 MB at a time, each page touched so that it is really used.
        const memory = new WebAssembly.Memory({ initial: 1, maximum: 65_536 });
        for (let round = 0; round < pages / 160; round++) {
          const start = memory.buffer.byteLength;
          memory.grow(160);
          new Uint8Array(memory.buffer, start, 160 * 65_536).fill(1);
        }
        return memory.buffer.byteLength;
      },
    });
    assert.equal(
      (await stopped(ungranted, { pages: 160 })).message,
      'it used `WebAssembly`, which a sandboxed tool has only when granted `sandbox: { wasm: true }` (its memory then counts against memoryMb)',
    );
    assert.equal(await call(small, { pages: 1 }), 2 * 65_536);
    const error = await stopped(greedy, { pages: 16_000 });
    assert.equal(error.message, 'it used more than 16 MB of memory, so the sandbox stopped it');
  });

  it("a tool's error message is cut inside the sandbox, with a note of how much was cut", async () => {
    const shout = defineTool({
      name: 'shout',
      description: 'Throws a long message.',
      args: z.object({ length: z.number() }),
      effect: 'none',
      sandbox: true,
      run: ({ length }) => {
        throw new TypeError('x'.repeat(length));
      },
    });
    await assert.rejects(call(shout, { length: 5_000_000 }), (error: Error) => {
      assert.equal(error.name, 'TypeError');
      assert.ok(error.message === `${'x'.repeat(16_384)}… (${5_000_000 - 16_384} more characters of this message were cut)`, error.message.slice(-120));
      return true;
    });
  });

  it('a result over the output limit is refused inside the sandbox, before it is copied out', async () => {
    const big = defineTool({
      name: 'big',
      description: 'Returns a lot.',
      args: z.object({ megabytes: z.number(), asObject: z.boolean() }),
      effect: 'none',
      sandbox: { memoryMb: 64 },
      run: ({ megabytes, asObject }) => {
        const text = 'x'.repeat(megabytes * 2 ** 20);
        return asObject ? { text } : text;
      },
    });
    assert.equal(
      (await stopped(big, { megabytes: 200, asObject: false })).message,
      'it returned at least 200 MB of output, more than its limit of 1 MB (maxOutputBytes), so the sandbox refused it',
    );
    assert.equal(
      (await stopped(big, { megabytes: 3, asObject: true })).message,
      'it returned at least 3 MB of output, more than its limit of 1 MB (maxOutputBytes), so the sandbox refused it',
    );
    const exact = defineTool({ name: 'exact', description: 'Returns é.', args: none, effect: 'none', maxOutputBytes: 1_000, sandbox: true, run: () => 'é'.repeat(600) });
    assert.equal((await stopped(exact)).message, 'it returned 1.2 KB of output, more than its limit of 1000 bytes (maxOutputBytes), so the sandbox refused it');
  });

  it('log lines are cut inside the sandbox', async () => {
    const chatty = defineTool({
      name: 'long_lines',
      description: 'Logs a long line.',
      args: none,
      effect: 'none',
      sandbox: { cpuMs: 10_000 },
      run: (_args, ctx) => {
        ctx.log('y'.repeat(50_000_000));
        return 'logged';
      },
    });
    const ctx = context();
    assert.equal(await call(chatty, {}, ctx), 'logged');
    assert.deepEqual(ctx.logs, [`${'y'.repeat(10_000)}…`]);
  });

  it('a process waiting on the sandbox stays alive until its call answers, and exits when the sandbox is idle', async () => {
    const dir = tempDir('keel-sandbox-alive-');
    const script = join(dir, 'wait.js');
    const compiled = (path: string) => JSON.stringify(join(REPO_ROOT, 'out', 'src', 'runtime', path));
    writeFileSync(
      script,
      `const { IsolateSandbox } = require(${compiled('sandbox/isolateSandbox.js')});
const { defineTool } = require(${compiled('agent/define.js')});
const { z } = require(${JSON.stringify(require.resolve('zod'))});
const add = defineTool({ name: 'add', description: 'Adds.', args: z.object({ a: z.number(), b: z.number() }), effect: 'none', sandbox: true, run: ({ a, b }) => a + b });
const ctx = { runId: 'r', stepId: 1, callIndex: 0, idempotencyKey: 'r:1:0', signal: new AbortController().signal, log: () => undefined };
const sandbox = new IsolateSandbox();
sandbox.prewarm(32);
sandbox
  .whenPrepared(32)
  .then(() => sandbox.run({ tool: add, grant: add.sandbox, args: { a: 2, b: 3 }, ctx }))
  .then((sum) => console.log(\`answered \${sum}\`));
`,
    );
    const ran = await runNode(script, [], { timeoutMs: 30_000 });
    assert.equal(ran.code, 0, describeOutcome(ran));
    assert.equal(ran.stdout.trim(), 'answered 5', describeOutcome(ran));
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

/** Runs an agent file as the runtime process does: loaded with the loader, run by the Runtime. */
async function runAgentFile(store: SqliteStore, file: string, logs: string[] = []): Promise<StepRecord[]> {
  const { agent } = await loadAgentFile(file);
  const finished = await (
    await new Runtime({ store }).start(agent, { input: 'go', onEvent: (event) => (event.type === 'tool_log' ? logs.push(event.message) : undefined) })
  ).done;
  assert.equal(finished.state, 'completed', finished.error ?? '');
  return (await store.getSteps(finished.id)).filter((step) => step.kind === 'tool');
}

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
      'small_limit failed: it returned 14 bytes of output, more than its limit of 10 bytes (maxOutputBytes), so the sandbox refused it',
    ]);
  });

  it("a tool's error text is cut to 16 KB, with a note of how much was cut, and stored once", async () => {
    const shout = defineTool({
      name: 'shout',
      description: 'Throws a very long message.',
      args: none,
      effect: 'none',
      run: () => {
        throw new Error('z'.repeat(5_000_000));
      },
    });
    const agent = defineAgent({ name: 'shouter', instructions: '', model: scriptedModel([{ toolCalls: [{ name: 'shout' }] }, 'done']), tools: [shout] });
    const finished = await (await new Runtime({ store, sleep: () => Promise.resolve() }).start(agent, { input: 'go' })).done;
    assert.equal(finished.state, 'completed');
    const step = (await store.getSteps(finished.id))[1];
    const kept = `${'z'.repeat(16_384)}… (${5_000_000 - 16_384} more characters of this message were cut)`;
    // Compared as booleans: a failure must not print megabytes.
    assert.ok(step?.error === `shout failed: ${kept}`, step?.error?.slice(-120));
    assert.deepEqual(step.output, { channel: 'tool_output', guard: { fenced: false } }, 'the output keeps what the guard decided, not a copy of the error');
    assert.ok(step.failedAttempts.length > 0);
    assert.ok(
      step.failedAttempts.every((attempt) => attempt.error === kept),
      'each failed attempt holds the capped text',
    );
  });

  it('defineTool takes a tier, and refuses grants that do not apply to it', () => {
    const base = { name: 'x', description: 'x', args: none, effect: 'none' as const, run: () => 1 };
    assert.equal(defineTool({ ...base, sandbox: { tier: 'os', files: { read: ['/data'] }, env: ['TOKEN'] } }).sandbox?.tier, 'os');
    assert.equal(defineTool({ ...base, sandbox: true }).sandbox?.tier, undefined, 'the runtime default applies');
    assert.match(defineTool({ ...base, sandbox: { tier: 'process' } }).module ?? '', /sandbox\.test\.js$/, 'the module that defined it');
    assert.throws(() => defineTool({ ...base, sandbox: { tier: 'vm' as 'os' } }), /sandbox\.tier must be 'isolate', 'process' or 'os' \(got "vm"\)/);
    assert.throws(() => defineTool({ ...base, sandbox: { files: { read: ['/data'] } } }), /sandbox\.files applies to the os tier: add tier: 'os'/);
    assert.throws(() => defineTool({ ...base, sandbox: { env: ['TOKEN'] } }), /sandbox\.env applies to the process and os tiers/);
    assert.throws(() => defineTool({ ...base, sandbox: { tier: 'process', wasm: true } }), /sandbox\.wasm applies to the isolate tier/);
    assert.throws(() => new Runtime({ store, sandbox: { tier: 'container' as 'os' } }), /The sandbox tier must be 'isolate', 'process' or 'os'/);
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
    const logs: string[] = [];
    const [step] = await runAgentFile(store, file, logs);
    assert.equal(step?.status, 'completed', step?.error ?? '');
    const note = `${step.runId}:1:0 undefined`;
    assert.deepEqual(step.output, {
      content: JSON.stringify({ amount: 9, note }),
      value: { amount: 9, note },
      channel: 'tool_output',
      guard: { fenced: true },
    });
    assert.deepEqual(logs, ['converting 10 at 0.9']);
  });

  describe('the process and OS tiers', function () {
    this.timeout(120_000);

    it('a process-tier tool runs in a Node process of its own, with Node, logs, its key and the limits kept from outside', async () => {
      const file = join(tempDir('keel-process-tier-'), 'tiers.agent.ts');
      writeFileSync(
        file,
        `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';
  import { createHash } from 'node:crypto';

  const none = z.object({});
  const digest = defineTool({
    name: 'digest',
    description: 'Hashes with node:crypto.',
    args: z.object({ text: z.string() }),
    effect: 'none',
    sandbox: { tier: 'process' },
    run: ({ text }, ctx) => {
      ctx.log('hashing');
      console.log('printed to stdout');
      ctx.annotate({ 'app.digest': 'sha256', 'app.bytes': text.length, 'app.nested': { no: 'objects' } });
      return { sha: createHash('sha256').update(text).digest('hex'), pid: process.pid, key: ctx.idempotencyKey, traceparent: ctx.traceparent };
    },
  });
  const spin = defineTool({ name: 'spin', description: 'Spins.', args: none, effect: 'none', sandbox: { tier: 'process', cpuMs: 300 }, run: () => { for (;;) {} } });
  const hog = defineTool({
    name: 'hog',
    description: 'Holds buffers outside the heap.',
    args: none,
    effect: 'none',
    sandbox: { tier: 'process', memoryMb: 32 },
    run: async () => {
      const kept: Buffer[] = [];
      for (;;) {
        kept.push(Buffer.alloc(16 * 2 ** 20, 1));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
  });
  const abort = defineTool({ name: 'abort', description: 'Aborts its process.', args: none, effect: 'none', sandbox: { tier: 'process' }, run: () => process.abort() });
  const sleepy = defineTool({
    name: 'sleepy',
    description: 'Never answers.',
    args: none,
    effect: 'none',
    sandbox: { tier: 'process', timeoutMs: 1_500 },
    run: () => new Promise((resolve) => setTimeout(resolve, 60_000)),
  });
  const shout = defineTool({
    name: 'shout',
    description: 'Throws a long message.',
    args: none,
    effect: 'none',
    sandbox: { tier: 'process' },
    run: () => { throw new RangeError('q'.repeat(1_000_000)); },
  });

  export default defineAgent({
    name: 'tiers',
    instructions: 'Call them.',
    model: scriptedModel([
      { toolCalls: [{ name: 'digest', args: { text: 'keel' } }, { name: 'spin' }, { name: 'hog' }, { name: 'abort' }, { name: 'sleepy' }, { name: 'shout' }] },
      'done',
    ]),
    tools: [digest, spin, hog, abort, sleepy, shout],
  });
  `,
      );
      const logs: string[] = [];
      const steps = await runAgentFile(store, file, logs);
      const byName = (name: string) => {
        const step = steps.find((candidate) => candidate.name === name);
        assert.ok(step, name);
        return step;
      };
      const digest = byName('digest');
      assert.equal(digest.status, 'completed', digest.error ?? '');
      const { value, attributes } = digest.output as { value: { sha: string; pid: number; key: string; traceparent: string }; attributes: unknown };
      assert.equal(value.sha, createHash('sha256').update('keel').digest('hex'));
      assert.notEqual(value.pid, process.pid, 'not in the runtime process');
      assert.match(value.key, /^run_\w+:1:0$/);
      assert.match(value.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/, "the call's own span");
      assert.deepEqual(attributes, { 'app.digest': 'sha256', 'app.bytes': 4 }, 'span attributes from its process, plain values only');
      assert.deepEqual(logs.slice(0, 2), ['hashing', 'printed to stdout'], "the tool's own logs (those of the aborted process follow)");
      const stops: [string, RegExp][] = [
        ['spin', /^spin failed: it exceeded its 300 ms CPU limit, so the sandbox stopped it$/],
        ['hog', /^hog failed: it used more than 32 MB of memory \(its process \d+ MB\), so the sandbox stopped it$/],
        ['abort', /^abort failed: the process it ran in ended before it answered \(it was ended by SIGABRT.*\); only this call was lost$/],
        ['sleepy', /^sleepy failed: it did not finish within its 1500 ms time limit, so the sandbox stopped it$/],
      ];
      for (const [name, message] of stops) {
        const step = byName(name);
        assert.match(step.error ?? '', message);
        assert.deepEqual(step.failedAttempts.map((attempt) => attempt.class), ['never'], `${name} is not retried`);
      }
      const shout = byName('shout').error ?? '';
      assert.ok(shout === `shout failed: ${'q'.repeat(16_384)}… (${1_000_000 - 16_384} more characters of this message were cut)`, shout.slice(-120));
    });

    describe('the OS tier', () => {
      let allowed: Awaited<ReturnType<typeof serve>>;
      let denied: Awaited<ReturnType<typeof serve>>;
      before(async () => {
        allowed = await serve((_request, response) => response.end('hello from the allowed server'));
        denied = await serve((_request, response) => response.end('nothing may reach me'));
      });
      after(async () => {
        await allowed.close();
        await denied.close();
      });

      it('reads only what it is allowed, writes only where granted, and reaches only its egress allow-list, through the proxy', async () => {
        const dir = tempDir('keel-os-tier-');
        const secret = join(tempDir('keel-os-secret-'), 'secret.txt');
        writeFileSync(secret, 'the runtime process can read this; the tool cannot');
        mkdirSync(join(dir, 'out'));
        const file = join(dir, 'os.agent.ts');
        writeFileSync(
          file,
          `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';
  import { readFileSync, writeFileSync } from 'node:fs';

  const allowed = ${JSON.stringify(allowed.origin)};
  const attempt = (action: () => unknown): string | undefined => {
    try {
      action();
      return 'done';
    } catch (error) {
      return (error as { code?: string }).code;
    }
  };

  const probe = defineTool({
    name: 'probe',
    description: 'Reads and writes files and fetches a URL.',
    args: z.object({}),
    effect: 'none',
    sandbox: { tier: 'os', egress: [allowed], files: { write: ['out'] } },
    run: async () => ({
      secret: attempt(() => readFileSync(${JSON.stringify(secret)})),
      home: attempt(() => readFileSync('/root/.bashrc')),
      written: attempt(() => writeFileSync('out/note.txt', 'written inside')),
      elsewhere: attempt(() => writeFileSync('os.agent.ts', 'overwritten')),
      fetched: await (await fetch(\`\${allowed}/hello\`)).text(),
    }),
  });

  const leak = defineTool({
    name: 'leak',
    description: 'Fetches a server not allowed, swallowing the error.',
    args: z.object({}),
    effect: 'none',
    sandbox: { tier: 'os', egress: [allowed] },
    run: async () => {
      try {
        return await (await fetch(${JSON.stringify(`${denied.origin}/collect?data=secret`)})).text();
      } catch {
        return 'swallowed';
      }
    },
  });

  export default defineAgent({
    name: 'os_tier',
    instructions: 'Probe.',
    model: scriptedModel([{ toolCalls: [{ name: 'probe' }, { name: 'leak' }] }, 'done']),
    tools: [probe, leak],
  });
  `,
        );
        const [probe, leak] = await runAgentFile(store, file);
        assert.equal(probe?.status, 'completed', probe?.error ?? '');
        assert.deepEqual((probe.output as { value: unknown }).value, {
          secret: 'ENOENT',
          home: 'ENOENT',
          written: 'done',
          elsewhere: 'EROFS',
          fetched: 'hello from the allowed server',
        });
        assert.equal(readFileSync(join(dir, 'out', 'note.txt'), 'utf8'), 'written inside');
        assert.equal(leak?.status, 'failed');
        assert.equal(
          leak.error,
          `leak failed: it tried to reach 127.0.0.1 on port ${new URL(denied.origin).port}, which its egress allow-list does not permit (it allows port ${new URL(allowed.origin).port} there)`,
        );
        assert.deepEqual(leak.failedAttempts.map((attempt) => attempt.class), ['never']);
        assert.deepEqual(denied.hits, [], 'nothing reached the server not allowed');
        assert.deepEqual(allowed.hits, ['GET /hello']);
      });

      it('a machine without an OS sandbox fails the call, saying what to install, and never runs it unsandboxed', async () => {
        const dir = tempDir('keel-os-missing-');
        const db = join(dir, 'keel.db');
        const marker = join(dir, 'ran.txt');
        const file = join(dir, 'missing.agent.ts');
        writeFileSync(
          file,
          `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';
  import { writeFileSync } from 'node:fs';

  const write = defineTool({
    name: 'write_marker',
    description: 'Leaves a mark.',
    args: z.object({}),
    effect: 'none',
    sandbox: { tier: 'os' },
    run: () => writeFileSync(${JSON.stringify(marker)}, 'ran'),
  });

  export default defineAgent({ name: 'missing', instructions: 'x', model: scriptedModel([{ toolCalls: [{ name: 'write_marker' }] }, 'done']), tools: [write] });
  `,
        );
        // Only Node's own folder on PATH: no bwrap there.
        const env = testEnv({ PATH: dirname(process.execPath) });
        const ran = await runNode(KEEL, ['run', file, '--input', 'go', '--db', db], { env, timeoutMs: 60_000 });
        assert.equal(ran.code, 0, describeOutcome(ran));
        const [run] = await listRuns(db, { env });
        assert.ok(run, describeOutcome(ran));
        const step = (await showRun(run.id, db, { env })).steps.find((candidate) => candidate.kind === 'tool');
        assert.equal(
          step?.error,
          'write_marker failed: it asks for the os sandbox tier, which needs bubblewrap: install it (apt-get install bubblewrap, or dnf install bubblewrap) and try again; it was not run',
        );
        assert.equal(existsSync(marker), false, 'the tool never ran');
      });
    });
  });
});
