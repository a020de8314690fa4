/**
 * Per-step runtime overhead: the same two-tool agent loop with a zero-latency fake model, run by
 * Keel (without persistence, and durable in SQLite at synchronous NORMAL and FULL), by LangGraph JS
 * (without a checkpointer, and with its SqliteSaver), and by a bare loop that only makes one
 * durable SQLite commit per step boundary: the floor. All variants run interleaved in this process.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AIMessage, HumanMessage, SystemMessage, type BaseMessage } from '@langchain/core/messages';
import { tool } from '@langchain/core/tools';
import { END, MessagesAnnotation, START, StateGraph } from '@langchain/langgraph';
import { ToolNode } from '@langchain/langgraph/prebuilt';
import { SqliteSaver } from '@langchain/langgraph-checkpoint-sqlite';
import {
  Runtime,
  defineAgent,
  defineTool,
  openSqliteStore,
  scriptedModel,
  z,
  type Agent,
  type CheckpointStore,
  type ModelRequest,
} from '../src/runtime/index';
import { type Benchmark, formatNumber, formatRatio, median, micros, now, table } from './harness';

const SHORT_CYCLES = 5;
const LONG_CYCLES = 100;
/** Short runs per variant before measuring, to warm up the JIT, the caches and the files. */
const SHORT_WARMUP = 60;
/** Measured short runs per variant, taken in rounds that interleave the variants. */
const SHORT_ROUNDS = 20;
const SHORT_RUNS_PER_ROUND = 20;
const LONG_WARMUP = 1;
/** Measured long runs per variant; each is a fresh 100-cycle run, and the report takes the median. */
const LONG_RUNS = 7;
/** How many cycles at each end of a long run are compared to see whether the cost per cycle grows. */
const EDGE_CYCLES = 10;

const INSTRUCTIONS = 'Look things up and take notes as asked, then answer.';
const INPUT = 'Run the benchmark workload.';

type SyncMode = 'NORMAL' | 'FULL';

// ---------------------------------------------------------------------------------------------
// The workload, shared by every variant: cycle i is one model call that asks for one tool call
// (lookup on even cycles, note on odd ones) and that tool call; after N cycles the model answers.

type Turn =
  | { readonly kind: 'call'; readonly tool: 'lookup'; readonly args: { readonly key: string } }
  | { readonly kind: 'call'; readonly tool: 'note'; readonly args: { readonly text: string } }
  | { readonly kind: 'answer'; readonly text: string };

function workloadTurn(turn: number, cycles: number): Turn {
  if (turn >= cycles) return { kind: 'answer', text: expectedAnswer(cycles) };
  return turn % 2 === 0
    ? { kind: 'call', tool: 'lookup', args: { key: `item-${turn}` } }
    : { kind: 'call', tool: 'note', args: { text: `item-${turn - 1} looked up` } };
}

function expectedAnswer(cycles: number): string {
  return `Done after ${cycles} cycles.`;
}

function lookupResult(key: string): { key: string; value: string } {
  return { key, value: `value of ${key}` };
}

function noteResult(text: string): { saved: boolean; length: number } {
  return { saved: true, length: text.length };
}

// ---------------------------------------------------------------------------------------------

interface Variant {
  readonly label: string;
  /** Which no-persistence variant this one's persistence overhead is measured against. */
  readonly baseline?: Variant;
  readonly synchronous: string;
  /** One fresh run of `cycles` cycles; pushes the clock onto `marks` at every model call. Returns the answer. */
  run(cycles: number, marks: bigint[]): Promise<string>;
  /** Facts about what the variant persisted, read after the measurements. */
  describe(): Promise<string[]>;
  close(): Promise<void>;
}

interface Measured {
  readonly variant: Variant;
  /** Median microseconds per cycle over fresh short runs (the whole run divided by its cycles). */
  short: number;
  /** Medians over the long runs of: each run's median cycle, first cycles, last cycles. */
  longMedian: number;
  longFirst: number;
  longLast: number;
}

function memo<K, V>(make: (key: K) => V): (key: K) => V {
  const cache = new Map<K, V>();
  return (key) => {
    let value = cache.get(key);
    if (value === undefined) {
      value = make(key);
      cache.set(key, value);
    }
    return value;
  };
}

// ---------------------------------------------------------------------------------------------
// Keel

/**
 * Keel's baseline without persistence: the same SQLite store, in memory, so nothing reaches a
 * disk and no commit waits for one.
 */
function memoryStore(): CheckpointStore {
  return openSqliteStore(':memory:');
}


const keelLookup = defineTool({
  name: 'lookup',
  description: 'Look a key up.',
  args: z.object({ key: z.string() }),
  effect: 'none',
  run: ({ key }) => lookupResult(key),
});

const keelNote = defineTool({
  name: 'note',
  description: 'Write a note down.',
  args: z.object({ text: z.string() }),
  effect: 'idempotent',
  run: ({ text }) => noteResult(text),
});

function keelVariant(label: string, store: CheckpointStore, synchronous: string, baseline?: Variant): Variant {
  const runtime = new Runtime({ store });
  let marks: bigint[] = [];
  const agentFor = memo(
    (cycles: number): Agent =>
      defineAgent({
        name: 'bench',
        instructions: INSTRUCTIONS,
        model: scriptedModel(
          (context) => {
            marks.push(now());
            const turn = workloadTurn(context.turn, cycles);
            return turn.kind === 'answer' ? turn.text : { toolCalls: [{ name: turn.tool, args: turn.args }] };
          },
          { name: `bench-${cycles}` },
        ),
        tools: [keelLookup, keelNote],
        maxSteps: cycles + 1,
      }),
  );
  return {
    label,
    baseline,
    synchronous,
    async run(cycles, runMarks) {
      marks = runMarks;
      const handle = await runtime.start(agentFor(cycles), { input: INPUT });
      const record = await handle.done;
      if (record.state !== 'completed') throw new Error(`${label}: the run ended ${record.state}: ${record.error ?? ''}`);
      return record.result ?? '';
    },
    async describe() {
      const [last] = await store.listRuns({ limit: 1 });
      if (!last) return [];
      const steps = await store.getSteps(last.id);
      return [`last run ${last.state}, ${steps.length} steps journaled (${steps.filter((s) => s.status === 'completed').length} completed)`];
    },
    close: () => store.close(),
  };
}

/**
 * The scripted model is not free: it estimates tokens by serializing the whole request, which
 * grows with the conversation. Times it alone, with no runtime around it, on the requests that a
 * long Keel run gave it in its first and in its last cycles. Medians in microseconds per call.
 */
async function scriptedModelAlone(): Promise<{ first: number; last: number }> {
  const requests: ModelRequest[] = [];
  const agent = defineAgent({
    name: 'bench',
    instructions: INSTRUCTIONS,
    model: scriptedModel((context) => {
      requests.push(context.request);
      const turn = workloadTurn(context.turn, LONG_CYCLES);
      return turn.kind === 'answer' ? turn.text : { toolCalls: [{ name: turn.tool, args: turn.args }] };
    }),
    tools: [keelLookup, keelNote],
    maxSteps: LONG_CYCLES + 1,
  });
  await (await new Runtime({ store: memoryStore() }).start(agent, { input: INPUT })).done;
  const model = scriptedModel(() => ({ toolCalls: [{ name: 'lookup', args: { key: 'item-0' } }] }));
  const perCall = async (request: ModelRequest): Promise<number> => {
    const calls = 200;
    for (let i = 0; i < calls; i++) await model.generate(request);
    const started = now();
    for (let i = 0; i < calls; i++) await model.generate(request);
    return micros(now() - started) / calls;
  };
  const first: number[] = [];
  const last: number[] = [];
  for (const request of requests.slice(0, EDGE_CYCLES)) first.push(await perCall(request));
  for (const request of requests.slice(LONG_CYCLES - EDGE_CYCLES, LONG_CYCLES)) last.push(await perCall(request));
  return { first: median(first), last: median(last) };
}

// ---------------------------------------------------------------------------------------------
// LangGraph JS

const langGraphLookup = tool(({ key }) => JSON.stringify(lookupResult(key)), {
  name: 'lookup',
  description: 'Look a key up.',
  schema: z.object({ key: z.string() }),
});

const langGraphNote = tool(({ text }) => JSON.stringify(noteResult(text)), {
  name: 'note',
  description: 'Write a note down.',
  schema: z.object({ text: z.string() }),
});

type Durability = 'sync' | 'async';

const SYNCHRONOUS_NAMES = ['OFF', 'NORMAL', 'FULL', 'EXTRA'];

function pragmaText(db: Database.Database, name: string): string {
  const value = db.pragma(name, { simple: true }) as unknown;
  if (name === 'synchronous' && typeof value === 'number') return SYNCHRONOUS_NAMES[value] ?? String(value);
  return String(value);
}

interface LangGraphOptions {
  readonly label: string;
  readonly saver?: SqliteSaver;
  /** LangGraph's `durability`; undefined leaves LangGraph's default. */
  readonly durability?: Durability;
  /** Who chose the saver connection's synchronous setting, printed beside the setting itself. */
  readonly synchronousChosenBy?: string;
  readonly baseline?: Variant;
}

function langGraphVariant(options: LangGraphOptions): Variant {
  const { label, saver, durability } = options;
  let marks: bigint[] = [];
  let threads = 0;
  let lastThread = '';
  const graphFor = memo((cycles: number) =>
    new StateGraph(MessagesAnnotation)
      .addNode('model', (state: typeof MessagesAnnotation.State) => {
        marks.push(now());
        // Like Keel's scripted model, the fake model derives its turn from the conversation.
        const turn = workloadTurn(state.messages.filter((message) => AIMessage.isInstance(message)).length, cycles);
        const message =
          turn.kind === 'answer'
            ? new AIMessage(turn.text)
            : new AIMessage({
                content: '',
                tool_calls: [{ id: `call_${state.messages.length}_1`, name: turn.tool, args: turn.args, type: 'tool_call' }],
              });
        return { messages: [message] };
      })
      .addNode('tools', new ToolNode([langGraphLookup, langGraphNote]))
      .addEdge(START, 'model')
      .addConditionalEdges('model', (state: typeof MessagesAnnotation.State) => (wantsTool(state.messages) ? 'tools' : END), [
        'tools',
        END,
      ])
      .addEdge('tools', 'model')
      .compile(saver ? { checkpointer: saver } : {}),
  );
  return {
    label,
    baseline: options.baseline,
    // Read from the saver's own connection, so the report says what LangGraph really used.
    get synchronous() {
      return saver ? `${pragmaText(saver.db, 'synchronous')} (${options.synchronousChosenBy ?? 'its default'})` : 'none';
    },
    async run(cycles, runMarks) {
      marks = runMarks;
      lastThread = `thread-${++threads}`;
      const state = await graphFor(cycles).invoke(
        { messages: [new SystemMessage(INSTRUCTIONS), new HumanMessage(INPUT)] },
        {
          configurable: { thread_id: lastThread },
          recursionLimit: 2 * cycles + 10,
          ...(durability ? { durability } : {}),
        },
      );
      const last = state.messages.at(-1);
      return typeof last?.content === 'string' ? last.content : '';
    },
    describe() {
      if (!saver) return Promise.resolve([]);
      const { db } = saver;
      const checkpoints = db
        .prepare('SELECT count(*) AS n, coalesce(sum(length(checkpoint)), 0) AS bytes FROM checkpoints WHERE thread_id = ?')
        .get(lastThread) as { n: number; bytes: number };
      const writes = db.prepare('SELECT count(*) AS n FROM writes WHERE thread_id = ?').get(lastThread) as { n: number };
      return Promise.resolve([
        `its connection: journal_mode=${pragmaText(db, 'journal_mode')}, synchronous=${pragmaText(db, 'synchronous')}`,
        `last run: ${checkpoints.n} checkpoints (${formatNumber(checkpoints.bytes / 1024, 0)} KiB in all) and ${writes.n} writes`,
      ]);
    },
    close() {
      saver?.db.close();
      return Promise.resolve();
    },
  };
}

function wantsTool(messages: readonly BaseMessage[]): boolean {
  const last = messages.at(-1);
  return last !== undefined && AIMessage.isInstance(last) && (last.tool_calls?.length ?? 0) > 0;
}

// ---------------------------------------------------------------------------------------------
// The floor: a bare loop with the same fake model and tools and nothing else, which (when given a
// database) commits one small JSON row at every step boundary: before the first model call, and
// after each model call and each tool call (the previous step's result and the next step's
// intent in one row). That is two commits per cycle, each a transaction of its own.

function bareLoopVariant(label: string, db: Database.Database | undefined, synchronous: string, baseline?: Variant): Variant {
  const insert = db?.prepare('INSERT INTO journal (run_id, seq, body) VALUES (?, ?, ?)');
  let runs = 0;
  return {
    label,
    baseline,
    synchronous,
    async run(cycles, marks) {
      const runId = `run-${++runs}`;
      let seq = 0;
      const commit = (body: unknown): void => {
        insert?.run(runId, ++seq, JSON.stringify(body));
      };
      const model = (turn: number): Promise<Turn> => Promise.resolve(workloadTurn(turn, cycles));
      const execute = (turn: Extract<Turn, { kind: 'call' }>): Promise<string> =>
        Promise.resolve(JSON.stringify(turn.tool === 'lookup' ? lookupResult(turn.args.key) : noteResult(turn.args.text)));
      commit({ next: 'model', input: INPUT });
      for (let index = 0; ; index++) {
        marks.push(now());
        const turn = await model(index);
        if (turn.kind === 'answer') {
          commit({ model: turn, done: true });
          return turn.text;
        }
        commit({ model: turn, next: turn.tool });
        const content = await execute(turn);
        commit({ tool: turn.tool, content, next: 'model' });
      }
    },
    describe() {
      if (!db) return Promise.resolve([]);
      const rows = db.prepare('SELECT count(*) AS n FROM journal WHERE run_id = ?').get(`run-${runs}`) as { n: number };
      return Promise.resolve([`last run: ${rows.n} rows committed`]);
    },
    close() {
      db?.close();
      return Promise.resolve();
    },
  };
}

function openFloorDatabase(path: string, synchronous: SyncMode): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.exec('CREATE TABLE journal (run_id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (run_id, seq))');
  return db;
}

// ---------------------------------------------------------------------------------------------

async function timedRun(variant: Variant, cycles: number): Promise<{ total: bigint; marks: bigint[] }> {
  const marks: bigint[] = [];
  const started = now();
  const answer = await variant.run(cycles, marks);
  const total = now() - started;
  if (answer !== expectedAnswer(cycles)) throw new Error(`${variant.label} answered ${JSON.stringify(answer)}.`);
  if (marks.length !== cycles + 1) {
    throw new Error(`${variant.label} called the model ${marks.length} times in a ${cycles}-cycle run.`);
  }
  return { total, marks };
}

async function measure(variants: readonly Variant[], progress: (note: string) => void): Promise<Measured[]> {
  progress(`warming up ${variants.length} variants`);
  for (const variant of variants) {
    for (let i = 0; i < SHORT_WARMUP; i++) await timedRun(variant, SHORT_CYCLES);
    for (let i = 0; i < LONG_WARMUP; i++) await timedRun(variant, LONG_CYCLES);
  }

  const shortSamples = new Map<Variant, number[]>(variants.map((variant) => [variant, []]));
  for (let round = 0; round < SHORT_ROUNDS; round++) {
    if (round % 5 === 0) progress(`short runs: round ${round + 1} of ${SHORT_ROUNDS}`);
    for (const variant of variants) {
      for (let i = 0; i < SHORT_RUNS_PER_ROUND; i++) {
        const { total } = await timedRun(variant, SHORT_CYCLES);
        shortSamples.get(variant)!.push(micros(total) / SHORT_CYCLES);
      }
    }
  }

  const longSamples = new Map<Variant, { median: number[]; first: number[]; last: number[] }>(
    variants.map((variant) => [variant, { median: [], first: [], last: [] }]),
  );
  for (let run = 0; run < LONG_RUNS; run++) {
    progress(`long runs: ${run + 1} of ${LONG_RUNS}`);
    for (const variant of variants) {
      const { marks } = await timedRun(variant, LONG_CYCLES);
      const cycles = marks.slice(1).map((mark, index) => micros(mark - marks[index]!));
      const samples = longSamples.get(variant)!;
      samples.median.push(median(cycles));
      samples.first.push(median(cycles.slice(0, EDGE_CYCLES)));
      samples.last.push(median(cycles.slice(-EDGE_CYCLES)));
    }
  }

  return variants.map((variant) => {
    const long = longSamples.get(variant)!;
    return {
      variant,
      short: median(shortSamples.get(variant)!),
      longMedian: median(long.median),
      longFirst: median(long.first),
      longLast: median(long.last),
    };
  });
}

function packageVersion(name: string): string {
  const manifest = JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')) as { version?: unknown };
  return String(manifest.version);
}

function report(results: readonly Measured[], print: (line: string) => void): void {
  const us = (value: number): string => formatNumber(value);
  print('');
  print(
    `Median microseconds per model+tool cycle. Short: ${SHORT_ROUNDS * SHORT_RUNS_PER_ROUND} fresh ${SHORT_CYCLES}-cycle runs ` +
      `per variant (whole run / ${SHORT_CYCLES}, so run start and the final answer are included). Long: ${LONG_RUNS} fresh ` +
      `${LONG_CYCLES}-cycle runs per variant, cycle = model call to next model call; first/last = the first/last ${EDGE_CYCLES} cycles.`,
  );
  print('');
  for (const line of table(
    ['variant', 'synchronous', 'short µs', 'long µs', `first ${EDGE_CYCLES} µs`, `last ${EDGE_CYCLES} µs`, 'last/first'],
    results.map((r) => [
      r.variant.label,
      r.variant.synchronous,
      us(r.short),
      us(r.longMedian),
      us(r.longFirst),
      us(r.longLast),
      formatRatio(r.longLast / r.longFirst),
    ]),
  )) {
    print(line);
  }

  const byVariant = new Map(results.map((r) => [r.variant, r]));
  print('');
  print('Persistence overhead: each durable variant minus its own no-persistence baseline, microseconds per cycle.');
  print('');
  const overheadRows: string[][] = [];
  for (const r of results) {
    const base = r.variant.baseline && byVariant.get(r.variant.baseline);
    if (!base) continue;
    overheadRows.push([
      r.variant.label,
      r.variant.synchronous,
      base.variant.label,
      us(r.short - base.short),
      us(r.longMedian - base.longMedian),
      us(r.longLast - base.longLast),
    ]);
  }
  for (const line of table(['durable variant', 'synchronous', 'baseline', 'short µs', 'long µs', `last ${EDGE_CYCLES} µs`], overheadRows)) {
    print(line);
  }
}

/** `a / b`, and when below 1 also as a fraction: `0.10 = 1/9.8`. */
function shareOf(a: number, b: number): string {
  const ratio = a / b;
  return ratio < 1 ? `${ratio.toFixed(2)} = 1/${formatNumber(b / a, 1)}` : `${ratio.toFixed(2)}`;
}

function ratioLines(
  results: readonly Measured[],
  pairs: readonly (readonly [string, Variant, Variant])[],
  print: (line: string) => void,
): void {
  const find = (variant: Variant): Measured => results.find((r) => r.variant === variant)!;
  const overhead = (m: Measured, pick: (m: Measured) => number): number =>
    pick(m) - (m.variant.baseline ? pick(find(m.variant.baseline)) : 0);
  const rows = pairs.flatMap(([title, keel, other]) => {
    const k = find(keel);
    const o = find(other);
    return [
      [title, 'per cycle', shareOf(k.short, o.short), shareOf(k.longMedian, o.longMedian), shareOf(k.longLast, o.longLast)],
      [
        '',
        'persistence overhead',
        shareOf(overhead(k, (m) => m.short), overhead(o, (m) => m.short)),
        shareOf(overhead(k, (m) => m.longMedian), overhead(o, (m) => m.longMedian)),
        shareOf(overhead(k, (m) => m.longLast), overhead(o, (m) => m.longLast)),
      ],
    ];
  });
  for (const line of table(['ratio (below 1: Keel costs less)', 'of', 'short', 'long', `long, last ${EDGE_CYCLES}`], rows)) {
    print(line);
  }
}

export const benchmark: Benchmark = {
  name: 'stepOverhead',
  title: 'Per-step runtime overhead: Keel vs LangGraph JS vs a bare durable loop',
  async run(print, progress) {
    const dir = mkdtempSync(join(tmpdir(), 'keel-bench-'));
    const variants: Variant[] = [];
    try {
      const keelNone = keelVariant('Keel, in-memory store (nothing on disk)', memoryStore(), 'none');
      const keelNormal = keelVariant(
        'Keel, SQLite store',
        openSqliteStore(join(dir, 'keel-normal.db'), { synchronous: 'NORMAL' }),
        'NORMAL',
        keelNone,
      );
      const keelFull = keelVariant(
        'Keel, SQLite store',
        openSqliteStore(join(dir, 'keel-full.db'), { synchronous: 'FULL' }),
        'FULL',
        keelNone,
      );
      const graphNone = langGraphVariant({ label: 'LangGraph, no checkpointer' });
      const graphNormal = langGraphVariant({
        label: 'LangGraph, SqliteSaver, durability sync',
        saver: SqliteSaver.fromConnString(join(dir, 'langgraph-sync.db')),
        durability: 'sync',
        baseline: graphNone,
      });
      const graphAsync = langGraphVariant({
        label: 'LangGraph, SqliteSaver, durability async (its default)',
        saver: SqliteSaver.fromConnString(join(dir, 'langgraph-async.db')),
        baseline: graphNone,
      });
      const fullSaver = SqliteSaver.fromConnString(join(dir, 'langgraph-full.db'));
      fullSaver.db.pragma('synchronous = FULL');
      const graphFull = langGraphVariant({
        label: 'LangGraph, SqliteSaver, durability sync',
        saver: fullSaver,
        durability: 'sync',
        synchronousChosenBy: 'set by this benchmark',
        baseline: graphNone,
      });
      const bareNone = bareLoopVariant('bare loop, no commits', undefined, 'none');
      const bareNormal = bareLoopVariant(
        'bare loop, 1 commit per step boundary',
        openFloorDatabase(join(dir, 'floor-normal.db'), 'NORMAL'),
        'NORMAL',
        bareNone,
      );
      const bareFull = bareLoopVariant(
        'bare loop, 1 commit per step boundary',
        openFloorDatabase(join(dir, 'floor-full.db'), 'FULL'),
        'FULL',
        bareNone,
      );
      variants.push(keelNone, keelNormal, keelFull, graphNone, graphNormal, graphAsync, graphFull, bareNone, bareNormal, bareFull);

      const probe = new Database(':memory:');
      const sqliteVersion = (probe.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
      const walDefault = (probe.pragma('compile_options') as { compile_options: string }[])
        .map((row) => row.compile_options)
        .filter((option) => option.startsWith('DEFAULT_WAL_SYNCHRONOUS') || option.startsWith('DEFAULT_SYNCHRONOUS'));
      probe.close();
      print(
        `@langchain/langgraph ${packageVersion('@langchain/langgraph')}, @langchain/core ${packageVersion('@langchain/core')}, ` +
          `@langchain/langgraph-checkpoint-sqlite ${packageVersion('@langchain/langgraph-checkpoint-sqlite')}, ` +
          `better-sqlite3 ${packageVersion('better-sqlite3')} (SQLite ${sqliteVersion}; ` +
          `${walDefault.length > 0 ? walDefault.join(', ') : 'no synchronous defaults compiled in'})`,
      );
      print(`databases in ${dir} (WAL); every variant runs in this process, interleaved`);
      print(
        'workload: each cycle is one call of a zero-latency fake model that asks for one tool call, then that call; ' +
          "the tools alternate: lookup (Keel effect 'none') and note (Keel effect 'idempotent', a side effect).",
      );

      const results = await measure(variants, progress);
      report(results, print);

      print('');
      ratioLines(
        results,
        [
          ['Keel NORMAL / LangGraph sync, default (NORMAL)', keelNormal, graphNormal],
          ['Keel NORMAL / LangGraph async (its default)', keelNormal, graphAsync],
          ['Keel FULL / LangGraph sync, FULL', keelFull, graphFull],
          ['Keel NORMAL / bare loop NORMAL (the floor)', keelNormal, bareNormal],
          ['Keel FULL / bare loop FULL (the floor)', keelFull, bareFull],
        ],
        print,
      );

      const floorCommit = (variant: Variant): string => {
        const m = results.find((r) => r.variant === variant)!;
        const base = results.find((r) => r.variant === bareNone)!;
        return formatNumber((m.longMedian - base.longMedian) / 2);
      };
      print('');
      print(
        `The floor's commit: ${floorCommit(bareNormal)} µs at NORMAL, ${floorCommit(bareFull)} µs at FULL ` +
          '(its long-run overhead per cycle over the bare loop / 2 commits per cycle).',
      );

      const alone = await scriptedModelAlone();
      print(
        `Keel's scriptedModel alone, on the requests of a long run: ${formatNumber(alone.first)} µs per call in the first ` +
          `${EDGE_CYCLES} cycles, ${formatNumber(alone.last)} µs in the last ${EDGE_CYCLES}. It estimates tokens by serializing ` +
          'the whole request, so this share of every Keel row grows with the conversation; the fake LangGraph model does not.',
      );

      print('');
      print('What each durable variant persisted (its last run, a long one):');
      for (const variant of variants) {
        for (const line of await variant.describe()) print(`  ${variant.label} [${variant.synchronous}]: ${line}`);
      }
    } finally {
      for (const variant of variants) await variant.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

