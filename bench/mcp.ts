/**
 * A journaled MCP tool call through Keel against a bare SDK client call to the same stdio server
 * (the tests' fixture server, its read-only `lookup` tool), in one process, interleaved in rounds.
 * Keel's run makes CALLS calls of `lookup` in one model turn, each a journaled step in a SQLite
 * store on disk (validated against the tool's JSON Schema, checkpointed before and after, fenced
 * and screened as untrusted content, with its span attributes); a run that makes none is
 * subtracted, so what remains per call is the call and everything Keel adds to it. The same loop
 * with a local tool that answers at once shows what of that Keel adds to any tool step.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { Runtime, defineAgent, defineTool, openSqliteStore, scriptedModel, z, type Agent } from '../src/runtime/index';
import { McpManager } from '../src/runtime/mcp/mcpManager';
import { type Benchmark, formatNumber, median, micros, now, table } from './harness';

const FIXTURE_SERVER = join(__dirname, '..', 'test', 'support', 'mcpFixtureServer.js');
/** Calls per Keel run (and per bare batch): few, as a model asks for them. */
const CALLS = 5;
const WARMUP_ROUNDS = 10;
const ROUNDS = 60;

const localLookup = defineTool({
  name: 'lookup',
  description: 'Looks up a customer by id.',
  args: z.object({ id: z.string() }),
  effect: 'none',
  run: ({ id }) => `Customer ${id}: Ada Lovelace, account DE44500105175407324931.`,
});

function agentMaking(calls: number, mcp = true): Agent {
  return defineAgent({
    name: 'mcp-bench',
    instructions: 'Look the customers up.',
    model: scriptedModel((context) =>
      context.turn === 0 && calls > 0 ? { toolCalls: Array.from({ length: calls }, (_, index) => ({ name: 'lookup', args: { id: `c${index}` } })) } : 'Done.',
    ),
    maxSteps: 3,
    ...(mcp ? { mcp: { servers: { fixture: { command: process.execPath, args: [FIXTURE_SERVER] } }, tools: { allow: ['lookup'] } } } : { tools: [localLookup] }),
  });
}

export const benchmark: Benchmark = {
  name: 'mcp',
  title: 'A journaled MCP tool call through Keel vs a bare MCP SDK client call (same stdio server)',
  async run(print, progress) {
    const dir = mkdtempSync(join(tmpdir(), 'keel-bench-mcp-'));
    const store = openSqliteStore(join(dir, 'keel.db'));
    const manager = new McpManager();
    const runtime = new Runtime({ store, mcp: manager });
    const bare = new Client({ name: 'bench', version: '1' });
    await bare.connect(new StdioClientTransport({ command: process.execPath, args: [FIXTURE_SERVER], stderr: 'ignore' }));
    const withCalls = agentMaking(CALLS);
    const withoutCalls = agentMaking(0);
    const withLocalCalls = agentMaking(CALLS, false);
    const withoutLocalCalls = agentMaking(0, false);
    const keelRun = async (agent: Agent): Promise<number> => {
      const started = now();
      const record = await (await runtime.start(agent, { input: 'Look them up.' })).done;
      if (record.state !== 'completed') throw new Error(`the benchmark run ended ${record.state}: ${record.error ?? ''}`);
      return micros(now() - started);
    };
    const bareBatch = async (): Promise<number> => {
      const started = now();
      for (let index = 0; index < CALLS; index++) await bare.callTool({ name: 'lookup', arguments: { id: `c${index}` } });
      return micros(now() - started) / CALLS;
    };
    try {
      const bareCalls: number[] = [];
      const keelCalls: number[] = [];
      const localSteps: number[] = [];
      for (let round = 0; round < WARMUP_ROUNDS + ROUNDS; round++) {
        if (round === WARMUP_ROUNDS) progress(`measuring ${ROUNDS} rounds of ${CALLS} calls each way`);
        const bareCall = await bareBatch();
        const keelCall = ((await keelRun(withCalls)) - (await keelRun(withoutCalls))) / CALLS;
        const localStep = ((await keelRun(withLocalCalls)) - (await keelRun(withoutLocalCalls))) / CALLS;
        if (round >= WARMUP_ROUNDS) {
          bareCalls.push(bareCall);
          keelCalls.push(keelCall);
          localSteps.push(localStep);
        }
      }
      const bareMedian = median(bareCalls);
      const keelMedian = median(keelCalls);
      const added = (value: number) => `${formatNumber(value - bareMedian)} µs (${formatNumber(((value - bareMedian) / bareMedian) * 100, 1)}% of the call)`;
      const rows = [
        ['bare SDK client: client.callTool', formatNumber(bareMedian), '—'],
        ['Keel: journaled MCP tool step', formatNumber(keelMedian), added(keelMedian)],
        ['Keel: journaled local tool step (no MCP)', formatNumber(median(localSteps)), 'what any tool step costs'],
      ];
      for (const line of table(['per call, median of rounds', 'µs', 'Keel adds'], rows)) print(line);
      print(`(${ROUNDS} rounds of ${CALLS} calls each way, after ${WARMUP_ROUNDS} warm-up rounds; goal: Keel adds at most 10% of the call)`);
    } finally {
      await bare.close();
      await manager.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
