import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { COMMAND_MODULES } from '../../src/cli/commands';
import type { RunRecord, StepRecord } from '../../src/runtime/store/checkpointStore';
import { startOpenAIServer, type OpenAIServer } from '../support/openaiServer';
import { REPO_ROOT, runNode, testEnv, type Finished } from '../support/processes';
import { useTempDirs } from '../support/tempDir';

const KEEL = join(REPO_ROOT, 'bin', 'keel.js');
const TRAVEL = join(REPO_ROOT, 'examples', 'travel', 'travel.agent.ts');
const INPUT = 'Fly NYC to LIS on 2026-12-10';
const HINT = 'Run `keel help` for usage.';

/** A scripted agent that calls its tool on every turn, so it runs out of steps without an answer. */
const LOOPING_AGENT = `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

const ping = defineTool({
  name: 'ping',
  description: 'Answers pong.',
  args: z.object({ n: z.number() }),
  effect: 'none',
  run: () => 'pong',
});

export default defineAgent({
  name: 'looper',
  instructions: 'Ping until told to stop.',
  model: scriptedModel(({ turn }) => ({ toolCalls: [{ name: 'ping', args: { n: turn } }] })),
  tools: [ping],
  maxSteps: 3,
});
`;

/** A syntax error on line 6 (the doubled comma). */
const BROKEN_AGENT = `import { defineAgent } from 'keel-agents';

export default defineAgent({
  name: 'broken',
  instructions: 'Never loads.',
  model: 'openai:gpt-4o-mini',,
});
`;

/** Valid TypeScript that throws on line 3 while the file is evaluated. */
const THROWING_AGENT = `import { defineAgent } from 'keel-agents';
const limit: number = 3;
if (limit > 2) throw new RangeError('limit is too high for this agent');
export default defineAgent({ name: 'never', instructions: '', model: 'openai:gpt-4o-mini' });
`;

interface StepLine {
  readonly seq: number;
  readonly kind: 'model' | 'tool';
  readonly text: string;
}

/** The step lines of the CLI's text output, such as `    2 tool  search_flights → [...] 2 ms`. */
function stepLines(stdout: string): StepLine[] {
  const steps: StepLine[] = [];
  for (const line of stdout.split('\n')) {
    const match = /^\s+(\d+) (model|tool)\s+(.*)$/.exec(line);
    if (match) steps.push({ seq: Number(match[1]), kind: match[2] === 'model' ? 'model' : 'tool', text: match[3] ?? '' });
  }
  return steps;
}

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '');
}

function assertNoStackTrace(result: Finished): void {
  assert.ok(!(result.stdout + result.stderr).includes('    at '), `no stack trace should be printed:\n${result.stderr}`);
}

function describeResult(result: Finished): string {
  return `exit ${String(result.code)}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
}

describe('keel CLI (node bin/keel.js, real processes and SQLite files)', () => {
  const tempDir = useTempDirs();
  let cwd: string;
  let db: string;

  before(() => {
    assert.ok(existsSync(join(REPO_ROOT, 'dist', 'cli.mjs')), 'dist/cli.mjs is missing: run `npm run build` before the tests');
  });

  beforeEach(() => {
    cwd = tempDir('keel-cli-');
    db = join(cwd, 'runs.db');
  });

  function keel(args: readonly string[], env: NodeJS.ProcessEnv = testEnv()): Promise<Finished> {
    return runNode(KEEL, args, { cwd, env });
  }

  function writeAgent(name: string, source: string): string {
    const file = join(cwd, name);
    writeFileSync(file, source);
    return file;
  }

  async function listRuns(): Promise<RunRecord[]> {
    const result = await keel(['runs', '--json', '--db', db]);
    assert.equal(result.code, 0, describeResult(result));
    return JSON.parse(result.stdout) as RunRecord[];
  }

  describe('run', () => {
    it('runs the travel example with a live step view, a summary and the result, and exits 0', async () => {
      const result = await keel(['run', TRAVEL, '--input', INPUT, '--db', db]);

      assert.equal(result.code, 0, describeResult(result));
      assert.equal(result.stderr, `created a new run database at ${db}\n`);
      const steps = stepLines(result.stdout);
      assert.deepEqual(
        steps.map((step) => [step.seq, step.kind]),
        [
          [1, 'model'],
          [2, 'tool'],
          [3, 'model'],
          [4, 'tool'],
          [5, 'model'],
        ],
      );
      assert.match(steps[0]?.text ?? '', /^search_flights\(from: "NYC", to: "LIS", date: "2026-12-10"\)/);
      assert.match(steps[1]?.text ?? '', /^search_flights → \[/);
      assert.match(steps[2]?.text ?? '', /^book_flight\(flightId: "UA66"/);
      assert.match(steps[3]?.text ?? '', /^book_flight → \{"confirmation":"KEEL-UA66-30"/);
      const output = lines(result.stdout);
      assert.match(output[0] ?? '', /^travel run_[0-9a-z]+ · keel\.scripted:travel-script$/);
      assert.ok(output.some((line) => /log: charging \$598 for Ada Lovelace/.test(line)), 'the tool log line is shown');
      assert.match(output.at(-2) ?? '', /^✓ completed after .+ · 5 steps · \d+ tokens · \$0$/);
      assert.match(output.at(-1) ?? '', /^Booked UA66 for \$598\. Confirmation KEEL-UA66-30\.$/);
    });

    it('leaves the run in the database, where `runs --json` lists it as completed with 5 steps', async () => {
      const result = await keel(['run', TRAVEL, '--input', INPUT, '--db', db]);
      assert.equal(result.code, 0, describeResult(result));

      const runs = await listRuns();
      assert.equal(runs.length, 1);
      const [run] = runs;
      assert.equal(run?.agent, 'travel');
      assert.equal(run?.state, 'completed');
      assert.equal(run?.stepCount, 5);
      assert.equal(run?.input, INPUT);
      assert.equal(run?.agentFile, TRAVEL);
      assert.match(run?.result ?? '', /^Booked UA66 for \$598/);
      assert.ok(result.stdout.includes(run?.id ?? '(no id)'), 'the run id printed is the one recorded');
    });

    it('prints one JSON document with the run and its steps with --json, and no step view', async () => {
      const result = await keel(['run', TRAVEL, '--input', INPUT, '--json', '--db', db]);

      assert.equal(result.code, 0, describeResult(result));
      const document = JSON.parse(result.stdout) as { run: RunRecord; steps: StepRecord[]; flags: unknown[] };
      assert.deepEqual(Object.keys(document).sort(), ['approvals', 'flags', 'run', 'steps']);
      assert.deepEqual(document.flags, [], 'the example run raises no detector flag');
      assert.equal(document.run.state, 'completed');
      assert.match(document.run.result ?? '', /^Booked UA66 for \$598/);
      assert.deepEqual(
        document.steps.map((step) => [step.seq, step.kind, step.name, step.status]),
        [
          [1, 'model', 'keel.scripted:travel-script', 'completed'],
          [2, 'tool', 'search_flights', 'completed'],
          [3, 'model', 'keel.scripted:travel-script', 'completed'],
          [4, 'tool', 'book_flight', 'completed'],
          [5, 'model', 'keel.scripted:travel-script', 'completed'],
        ],
      );
      assert.equal(document.steps.every((step) => step.runId === document.run.id), true);
    });

    it('exits 1 and says why when the agent reaches maxSteps without an answer, recording the run as failed', async () => {
      const agent = writeAgent('looper.agent.ts', LOOPING_AGENT);
      const result = await keel(['run', agent, '--input', 'ping', '--db', db]);

      assert.equal(result.code, 1, describeResult(result));
      const output = lines(result.stdout);
      assert.equal(stepLines(result.stdout).length, 6);
      assert.match(output.at(-2) ?? '', /^✗ failed after .+ · 6 steps · \d+ tokens · \$0$/);
      assert.equal(output.at(-1), 'looper reached maxSteps (3) without a final answer.');
      assertNoStackTrace(result);

      const [run] = await listRuns();
      assert.equal(run?.state, 'failed');
      assert.equal(run?.error, 'looper reached maxSteps (3) without a final answer.');
    });

    it('exits 1 with file:line:column: and the cause, without a stack trace, when the agent file has a syntax error', async () => {
      writeAgent('broken.agent.ts', BROKEN_AGENT);
      const result = await keel(['run', 'broken.agent.ts', '--input', 'hello', '--db', db]);

      assert.equal(result.code, 1, describeResult(result));
      assert.equal(result.stdout, '');
      assert.deepEqual(lines(result.stderr), ['keel: broken.agent.ts:6:31: Expected identifier but found ","']);
      assertNoStackTrace(result);
      assert.equal(existsSync(db), false, 'no database is created for an agent that cannot load');
    });

    it('points at the line of the agent file that threw while loading, without a stack trace', async () => {
      writeAgent('throws.agent.ts', THROWING_AGENT);
      const result = await keel(['run', 'throws.agent.ts', '--input', 'hello', '--db', db]);

      assert.equal(result.code, 1, describeResult(result));
      assert.deepEqual(lines(result.stderr), [
        'keel: throws.agent.ts:3:22: loading the agent file threw RangeError: limit is too high for this agent',
      ]);
      assertNoStackTrace(result);
    });

    it('exits 1 naming the file when the agent file does not exist', async () => {
      const result = await keel(['run', 'missing.agent.ts', '--input', 'hello', '--db', db]);

      assert.equal(result.code, 1, describeResult(result));
      assert.deepEqual(lines(result.stderr), ['keel: The agent file was not found: missing.agent.ts']);
      assertNoStackTrace(result);
    });

    it('exits 1 with one sentence when the agent file is a folder', async () => {
      mkdirSync(join(cwd, 'agents'));
      const result = await keel(['run', 'agents', '--input', 'hello', '--db', db]);

      assert.equal(result.code, 1, describeResult(result));
      assert.deepEqual(lines(result.stderr), ['keel: agents is a folder; the agent file must be a file (such as hello.agent.ts).']);
    });

    describe('with --model openai:<model> and OPENAI_BASE_URL at a local OpenAI-compatible server', () => {
      let server: OpenAIServer | undefined;

      afterEach(async () => {
        await server?.close();
        server = undefined;
      });

      it('completes the run through the real SDK over HTTP, offering the agent its tools', async () => {
        const search = { from: 'NYC', to: 'LIS', date: '2026-12-10' };
        server = await startOpenAIServer({
          respond: [
            { toolCalls: [{ name: 'search_flights', arguments: JSON.stringify(search) }] },
            { content: 'The cheapest flight is UA66 at $598.' },
          ],
        });
        const env = testEnv({ OPENAI_BASE_URL: server.url });
        const result = await keel(['run', TRAVEL, '--input', INPUT, '--model', 'openai:test-model', '--db', db], env);

        assert.equal(result.code, 0, describeResult(result));
        assert.match(lines(result.stdout)[0] ?? '', /^travel run_[0-9a-z]+ · openai:test-model$/);
        assert.deepEqual(
          stepLines(result.stdout).map((step) => [step.kind, step.text.split(/[(\s]/)[0]]),
          [
            ['model', 'search_flights'],
            ['tool', 'search_flights'],
            ['model', '"The'],
          ],
        );
        assert.equal(lines(result.stdout).at(-1), 'The cheapest flight is UA66 at $598.');

        assert.equal(server.requests.length, 2);
        const [first, second] = server.requests;
        assert.equal(first?.body.model, 'test-model');
        const offered = (first?.body.tools ?? []).map((tool) => (tool.type === 'function' ? tool.function.name : tool.custom.name));
        assert.deepEqual(offered, ['search_flights', 'book_flight']);
        const toolMessage = second?.body.messages.find((message) => message.role === 'tool');
        assert.ok(toolMessage, 'the second request carries the tool result');
        assert.match(JSON.stringify(toolMessage.content), /UA66/);

        const [run] = await listRuns();
        assert.equal(run?.model, 'openai:test-model');
        assert.equal(run?.state, 'completed');
        assert.equal(run?.stepCount, 3);
      });

      it('fails at once, naming what arrived, when the endpoint answers 200 with a web page instead of a chat completion', async () => {
        server = await startOpenAIServer({ respond: [{ fault: 'malformed', variant: 'html' }] });
        const result = await keel(['run', TRAVEL, '--input', INPUT, '--model', 'openai:test-model', '--db', db], testEnv({ OPENAI_BASE_URL: server.url }));

        assert.equal(result.code, 1, describeResult(result));
        assert.equal(server.requests.length, 1, 'a page that is not the API is not asked for again');
        assert.match(
          result.stdout + result.stderr,
          /openai:test-model answered HTTP 200 with something that is not an OpenAI chat completion \(text\/html\): "<!DOCTYPE html>.{0,80}"; check that its base URL \(OPENAI_BASE_URL\) points at an OpenAI-compatible API\./,
        );
        assert.match(result.stdout, /not a transient failure, not retried/);
        assert.doesNotMatch(result.stdout + result.stderr, /ended its answer before finishing it|attempt 2 failed/);
        assertNoStackTrace(result);
      });

      it('stops a run with a money budget on a model of unknown price, naming the ways the command line and keel.config.ts give prices', async () => {
        server = await startOpenAIServer({ respond: [{ content: 'never asked' }] });
        const result = await keel(['run', TRAVEL, '--input', INPUT, '--model', 'openai:my-finetune', '--budget-usd', '1', '--db', db], testEnv({ OPENAI_BASE_URL: server.url }));

        assert.equal(result.code, 4, describeResult(result));
        assert.equal(server.requests.length, 0);
        assert.match(
          result.stdout + result.stderr,
          /Keel does not know the price of openai:my-finetune, so it cannot keep this run within its money budget: give its price in USD per million tokens in KEEL_PRICES, in `prices` of keel\.config\.ts, in the agent's `prices`, or in the editor's keel\.prices setting\./,
        );
      });
    });

    it('prints no ANSI escapes when stdout is not a terminal, even with NO_COLOR unset', async () => {
      const env = testEnv();
      assert.equal(env['NO_COLOR'], undefined);
      const ok = await keel(['run', TRAVEL, '--input', INPUT, '--db', db], env);
      const failed = await keel(['run', writeAgent('looper.agent.ts', LOOPING_AGENT), '--input', 'ping', '--db', db], env);
      const table = await keel(['runs', '--db', db], env);

      assert.equal(ok.code, 0, describeResult(ok));
      assert.equal(failed.code, 1, describeResult(failed));
      assert.equal(table.code, 0, describeResult(table));
      for (const result of [ok, failed, table]) {
        assert.doesNotMatch(result.stdout + result.stderr, /\x1b\[/, 'output to a pipe must not contain ANSI escapes');
      }
    });
  });

  describe('KEEL_SANDBOX', () => {
    /** A tool that reads a variable of its module: fine in process, undefined in an isolate. */
    const CLOSURE_AGENT = `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';
const greeting = 'hello from the module';
const greet = defineTool({ name: 'greet', description: 'Greets.', args: z.object({}), effect: 'none', run: () => greeting });
export default defineAgent({
  name: 'greeter',
  instructions: 'Greet.',
  model: scriptedModel(({ turn, toolResults }) => (turn === 0 ? { toolCalls: [{ name: 'greet', args: {} }] } : toolResults[0]?.content ?? 'none')),
  tools: [greet],
});
`;

    it('runs every tool in the sandbox with KEEL_SANDBOX=all, where a tool that needs its module fails saying why', async () => {
      const file = writeAgent('greeter.agent.ts', CLOSURE_AGENT);
      const marked = await keel(['run', file, '--input', 'hi', '--db', db, '--json']);
      assert.equal(marked.code, 0, describeResult(marked));
      assert.equal((JSON.parse(marked.stdout) as { run: RunRecord }).run.result, 'hello from the module');

      const all = await keel(['run', file, '--input', 'hi', '--db', db, '--json'], testEnv({ KEEL_SANDBOX: 'all' }));
      assert.equal(all.code, 0, describeResult(all));
      assert.match((JSON.parse(all.stdout) as { run: RunRecord }).run.result ?? '', /greet failed: it used `greeting`, which is not defined in the sandbox/);
    });

    it("takes the sandbox tier from keel.config.ts: under sandbox { default: 'all', tier: 'process' } a tool runs in a Node process of its own", async () => {
      const file = writeAgent(
        'where.agent.ts',
        `import { basename } from 'node:path';
import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';
const where = defineTool({ name: 'where', description: 'Says which script runs it.', args: z.object({}), effect: 'none', run: () => basename(process.argv[1] ?? '') });
export default defineAgent({
  name: 'where',
  instructions: 'Say where.',
  model: scriptedModel(({ turn, toolResults }) => (turn === 0 ? { toolCalls: [{ name: 'where', args: {} }] } : toolResults[0]?.content ?? 'none')),
  tools: [where],
});
`,
      );
      const inProcess = await keel(['run', file, '--input', 'hi', '--db', db, '--json']);
      assert.equal(inProcess.code, 0, describeResult(inProcess));
      assert.doesNotMatch((JSON.parse(inProcess.stdout) as { run: RunRecord }).run.result ?? '', /toolProcess/);

      writeFileSync(join(cwd, 'keel.config.ts'), "export default { sandbox: { default: 'all', tier: 'process' } };\n");
      const own = await keel(['run', file, '--input', 'hi', '--db', db, '--json']);
      assert.equal(own.code, 0, describeResult(own));
      assert.equal((JSON.parse(own.stdout) as { run: RunRecord }).run.result, 'toolProcess.js');

      const shown = await keel(['config', '--json']);
      assert.equal(shown.code, 0, describeResult(shown));
      const entries = (JSON.parse(shown.stdout) as { values: { key: string; value: unknown; source: string }[] }).values;
      assert.deepEqual(
        entries.find((entry) => entry.key === 'sandbox.tier'),
        { key: 'sandbox.tier', value: 'process', source: 'keel.config.ts' },
      );

      const refused = await keel(['run', file, '--input', 'hi', '--db', db], testEnv({ KEEL_SANDBOX_TIER: 'vm' }));
      assert.equal(refused.code, 1, describeResult(refused));
      assert.match(refused.stderr, /KEEL_SANDBOX_TIER must be "isolate", "process" or "os" \(got "vm"\)/);
    });

    it('refuses a KEEL_SANDBOX that is neither marked nor all, in one sentence', async () => {
      const result = await keel(['run', TRAVEL, '--input', INPUT, '--db', db], testEnv({ KEEL_SANDBOX: 'everything' }));
      assert.equal(result.code, 1, describeResult(result));
      assert.match(result.stderr, /KEEL_SANDBOX must be "marked" \(only tools marked sandbox run in it\) or "all" \(got "everything"\)\./);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
    });
  });

  describe('runs and show', () => {
    async function recordTravelRun(): Promise<RunRecord> {
      const result = await keel(['run', TRAVEL, '--input', INPUT, '--json', '--db', db]);
      assert.equal(result.code, 0, describeResult(result));
      return (JSON.parse(result.stdout) as { run: RunRecord }).run;
    }

    it('lists runs in a table, newest first', async () => {
      const older = await recordTravelRun();
      const newer = await recordTravelRun();
      const result = await keel(['runs', '--db', db]);

      assert.equal(result.code, 0, describeResult(result));
      const [header, ...rows] = lines(result.stdout);
      assert.match(header ?? '', /RUN\s+AGENT\s+STATE\s+STEPS/);
      assert.equal(rows.length, 2);
      assert.ok(rows[0]?.includes(newer.id) && rows[1]?.includes(older.id), result.stdout);
      assert.match(rows[0] ?? '', /travel\s+completed\s+5\s/);
    });

    it('says there are no runs yet in an empty database', async () => {
      const result = await keel(['runs', '--db', db]);

      assert.equal(result.code, 0, describeResult(result));
      assert.match(result.stdout, /^No runs yet\./);
    });

    it('show with a unique id prefix prints the run, its steps and its outcome', async () => {
      const run = await recordTravelRun();
      const result = await keel(['show', run.id.slice(0, 8), '--db', db]);

      assert.equal(result.code, 0, describeResult(result));
      const output = lines(result.stdout);
      assert.ok(output[0]?.includes(run.id), result.stdout);
      assert.ok(output.includes(`  input  ${INPUT}`), result.stdout);
      assert.ok(output.includes(`  file   ${TRAVEL}`), result.stdout);
      assert.deepEqual(
        stepLines(result.stdout).map((step) => `${step.kind} ${step.text.split(/[(\s]/)[0] ?? ''}`),
        ['model search_flights', 'tool search_flights', 'model book_flight', 'tool book_flight', 'model "Booked'],
      );
      assert.match(output.at(-1) ?? '', /^Booked UA66 for \$598/);
    });

    it('show --json gives the run and its steps, by an id typed without run_ too', async () => {
      const run = await recordTravelRun();
      const result = await keel(['show', run.id.slice('run_'.length, 12), '--json', '--db', db]);

      assert.equal(result.code, 0, describeResult(result));
      const shown = JSON.parse(result.stdout) as { run: RunRecord; steps: StepRecord[] };
      assert.deepEqual(shown.run, run);
      assert.deepEqual(
        shown.steps.map((step) => step.seq),
        [1, 2, 3, 4, 5],
      );
      assert.deepEqual(shown.steps[3]?.output, {
        content: '{"confirmation":"KEEL-UA66-30","flightId":"UA66","charged":598}',
        value: { confirmation: 'KEEL-UA66-30', flightId: 'UA66', charged: 598 },
        channel: 'tool_output',
        guard: { fenced: true },
      });
    });

    it('show exits 1 when a prefix matches no run or more than one', async () => {
      await recordTravelRun();
      await recordTravelRun();

      const ambiguous = await keel(['show', 'run_', '--db', db]);
      assert.equal(ambiguous.code, 1, describeResult(ambiguous));
      assert.deepEqual(lines(ambiguous.stderr), ['keel: More than one run has an id starting with "run_"; give more of it.']);

      const unknown = await keel(['show', 'run_zzzz', '--db', db]);
      assert.equal(unknown.code, 1, describeResult(unknown));
      assert.deepEqual(lines(unknown.stderr), ['keel: No run has an id starting with "run_zzzz".']);
    });

    it('refuses a database written by a newer Keel with exit 1, and leaves the file byte for byte as it was', async () => {
      const KEEL_APPLICATION_ID = 0x4b45454c;
      const newer = new Database(db);
      newer.pragma(`application_id = ${KEEL_APPLICATION_ID}`);
      newer.pragma('user_version = 99');
      newer.close();
      const before = readFileSync(db);

      const result = await keel(['runs', '--db', db]);

      assert.equal(result.code, 1, describeResult(result));
      assert.equal(result.stdout, '');
      const message = lines(result.stderr);
      assert.equal(message.length, 1, result.stderr);
      assert.match(message[0] ?? '', /^keel: .*runs\.db was written by a newer Keel \(schema version 99/);
      assertNoStackTrace(result);
      assert.deepEqual(readFileSync(db), before, 'the database file must not change');
      assert.deepEqual(readdirSync(cwd), ['runs.db'], 'no journal or WAL files are left next to it');
    });
  });

  describe('the run database', () => {
    it('makes a new one where it is named, in a folder that exists, and says so once', async () => {
      const first = await keel(['runs', '--db', db]);
      assert.equal(first.code, 0, describeResult(first));
      assert.equal(first.stderr, `created a new run database at ${db}\n`);
      const again = await keel(['run', TRAVEL, '--input', INPUT, '--db', db]);
      assert.equal(again.code, 0, describeResult(again));
      assert.equal(again.stderr, '', 'an existing database is not new');
    });

    it('makes .keel/keel.db, its folder included, where Keel keeps it by default', async () => {
      writeFileSync(join(cwd, 'package.json'), '{"name":"shop"}\n');
      const result = await keel(['runs']);
      assert.equal(result.code, 0, describeResult(result));
      assert.equal(result.stderr, `created a new run database at ${join(cwd, '.keel', 'keel.db')}\n`);
      assert.ok(existsSync(join(cwd, '.keel', 'keel.db')));
    });

    it('refuses a named database in a folder that does not exist, in one sentence, making no folder', async () => {
      const mistyped = await keel(['run', TRAVEL, '--input', INPUT, '--db', 'nope/x/keel.db']);
      assert.equal(mistyped.code, 1, describeResult(mistyped));
      assert.equal(mistyped.stdout, '');
      assert.deepEqual(lines(mistyped.stderr), [
        `keel: --db names the database ${join(cwd, 'nope', 'x', 'keel.db')}, but its folder ${join(cwd, 'nope', 'x')} does not exist; ` +
          'Keel makes no folders for a database it is given, so correct the path or create the folder.',
      ]);
      const fromEnv = await keel(['runs'], testEnv({ KEEL_DB: join(cwd, 'typo', 'keel.db') }));
      assert.equal(fromEnv.code, 1, describeResult(fromEnv));
      assert.match(fromEnv.stderr, /^keel: KEEL_DB names the database .*\/typo\/keel\.db, but its folder .*\/typo does not exist;/);
      const testDb = await keel(['test', `${REPO_ROOT}/examples/travel/travel.golden.yaml`, '--db', 'nope/golden.db']);
      assert.equal(testDb.code, 1, describeResult(testDb));
      assert.match(testDb.stderr, /--db names the database .*\/nope\/golden\.db, but its folder .*\/nope does not exist;/);
      assert.deepEqual(readdirSync(cwd), [], 'no folder and no database were made');
    });
  });

  describe('usage errors exit 2 with a one-line message and no stack trace', () => {
    const cases: readonly { readonly name: string; readonly args: () => readonly string[]; readonly message: RegExp }[] = [
      { name: 'an unknown command', args: () => ['frobnicate'], message: /^keel: Unknown command "frobnicate"\.$/ },
      { name: 'an unknown flag', args: () => ['runs', '--bogus', '--db', db], message: /^keel: Unknown option '--bogus'/ },
      {
        name: 'run without --input',
        args: () => ['run', TRAVEL, '--db', db],
        message: /^keel: keel run needs --input <text>: what to ask the agent\.$/,
      },
      { name: 'run without a file', args: () => ['run', '--input', 'hi', '--db', db], message: /^keel: keel run takes one agent file/ },
      { name: 'show without a run id', args: () => ['show', '--db', db], message: /^keel: keel show takes one run id/ },
      { name: 'runs with a bad --limit', args: () => ['runs', '--limit', '0', '--db', db], message: /^keel: --limit must be a whole number/ },
    ];

    for (const { name, args, message } of cases) {
      it(name, async () => {
        const result = await keel(args());

        assert.equal(result.code, 2, describeResult(result));
        assert.equal(result.stdout, '');
        const [first, ...rest] = lines(result.stderr);
        assert.match(first ?? '', message);
        assert.deepEqual(rest, [HINT]);
        assertNoStackTrace(result);
        assert.deepEqual(readdirSync(cwd), [], 'a usage error creates no database');
      });
    }

    it('knows every command a command module defines, under the name that module gives it', async () => {
      for (const entry of COMMAND_MODULES) assert.deepEqual(Object.keys(await entry.load()), entry.names);
    });

    it('no command at all prints the usage', async () => {
      const result = await keel([]);

      assert.equal(result.code, 2, describeResult(result));
      assert.match(result.stdout + result.stderr, /Usage:\n\s+keel init \[folder\] .*\n\s+keel run <file\.agent\.ts> --input <text>/);
      assertNoStackTrace(result);
      assert.deepEqual(readdirSync(cwd), []);
    });
  });
});
