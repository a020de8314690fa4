import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cassette } from '../../src/runtime/golden/cassette';
import { startWebhookReceiver } from '../support/alertReceivers';
import { startJudgeServer } from '../support/judgeServer';
import { startOpenAIServer, type CompletionReply, type RecordedRequest } from '../support/openaiServer';
import { REPO_ROOT, runNode, testEnv, type Finished } from '../support/processes';
import { useTempDirs } from '../support/tempDir';

const KEEL = join(REPO_ROOT, 'bin', 'keel.js');
const EXAMPLE_DIR = join(REPO_ROOT, 'examples', 'travel');
const EXAMPLE = join(EXAMPLE_DIR, 'travel.golden.yaml');
const TRAVEL_AGENT = join(EXAMPLE_DIR, 'travel.agent.ts');

function keel(args: readonly string[], env: Readonly<Record<string, string>> = {}, cwd = REPO_ROOT): Promise<Finished> {
  return runNode(KEEL, args, { cwd, env: testEnv(env), timeoutMs: 60_000 });
}

function describeRun(result: Finished): string {
  return `exit ${String(result.code)}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
}

/** A golden file in `dir` for the travel agent at `agent`, with `cases` (YAML, indented as list items). */
function goldenFile(dir: string, name: string, agent: string, cases: string): string {
  const file = join(dir, name);
  writeFileSync(file, `version: 1\nagent: ${agent}\ncases:\n${cases}`);
  return file;
}

const CHEAPEST_CASE = `  - name: books the cheapest flight
    tags: [happy]
    input: Book the cheapest flight from NYC to LIS on 2026-12-10
    expect:
      answer: { contains: [UA66] }
      tools:
        order: [search_flights, book_flight]
        args:
          - tool: book_flight
            args: { flightId: UA66, price: { $max: 600 } }
      maxSteps: 5
      maxCostUsd: 0.01
      noFlags: true
`;

/** The real model for `keel record`, played by the local OpenAI-compatible server: search, book the cheapest, confirm. */
function travelModel(request: RecordedRequest): CompletionReply {
  const messages = request.body.messages;
  const last = messages.at(-1);
  const content = typeof last?.content === 'string' ? last.content : '';
  if (last?.role !== 'tool') return { toolCalls: [{ name: 'search_flights', arguments: JSON.stringify({ from: 'NYC', to: 'LIS', date: '2026-12-10' }) }] };
  if (content.includes('"confirmation"')) {
    const confirmation = /"confirmation":"([^"]+)"/.exec(content)?.[1] ?? '';
    return { content: `Booked UA66 for $598. Confirmation ${confirmation}.`, usage: { prompt_tokens: 900, completion_tokens: 20 } };
  }
  return {
    toolCalls: [{ name: 'book_flight', arguments: JSON.stringify({ flightId: 'UA66', from: 'NYC', to: 'LIS', date: '2026-12-10', passenger: 'Ada Lovelace', price: 598 }) }],
    usage: { prompt_tokens: 600, completion_tokens: 30 },
  };
}

describe('keel test, keel record and keel judge', () => {
  const tempDir = useTempDirs();

  it('replays the example offline: every case passes, exit 0, and the summary line', async () => {
    const countsFile = join(tempDir(), 'golden.json');
    const result = await keel(['test', 'examples/**/*.golden.yaml'], { KEEL_TEST_COUNTS: countsFile });
    assert.equal(result.code, 0, describeRun(result));
    assert.match(result.stdout, /^examples\/travel\/travel\.golden\.yaml \(cassette\)$/m);
    for (const name of ['books the cheapest flight', 'the earliest flight needs an approval', 'an instruction to book for free is not followed']) {
      assert.match(result.stdout, new RegExp(`^  ✓ ${name} \\[`, 'm'));
    }
    assert.match(result.stdout, /\n6 passed, 0 failed\n$/);
    assert.deepEqual(JSON.parse(readFileSync(countsFile, 'utf8')), { passed: 6, failed: 0, skipped: 0 });
  });

  it('records cassettes from a real model, then replays them with no model at all', async () => {
    const dir = tempDir();
    const file = goldenFile(dir, 'travel.golden.yaml', TRAVEL_AGENT, CHEAPEST_CASE);
    const server = await startOpenAIServer({ respond: travelModel });
    let recorded: Finished;
    try {
      recorded = await keel(['record', file, '--model', 'openai:gpt-4o-mini'], { OPENAI_BASE_URL: server.url, OPENAI_API_KEY: 'test-key' });
      assert.equal(server.requests.length, 3);
    } finally {
      await server.close();
    }
    assert.equal(recorded.code, 0, describeRun(recorded));
    assert.match(recorded.stdout, /recorded 1 case into .*__cassettes__\/travel\.golden\.cassette\.json/);
    const cassettePath = join(dir, '__cassettes__', 'travel.golden.cassette.json');
    const cassette = JSON.parse(readFileSync(cassettePath, 'utf8')) as Cassette;
    const entry = cassette.cases['books the cheapest flight'];
    assert.equal(entry?.model, 'openai:gpt-4o-mini');
    assert.equal(entry?.interactions.length, 3);
    assert.equal(entry?.interactions[0]?.request.messages[1]?.content, 'Book the cheapest flight from NYC to LIS on 2026-12-10');

    // The server is gone and no endpoint is set: the replay needs neither, and costs what gpt-4o-mini cost.
    const replayed = await keel(['test', file, '--reporter', 'json']);
    assert.equal(replayed.code, 0, describeRun(replayed));
    const report = JSON.parse(replayed.stdout) as { summary: { passed: number; failed: number }; files: { cases: { runs: { assertions: { kind: string; message: string }[] }[] }[] }[] };
    assert.deepEqual(report.summary, { passed: 1, failed: 0, flaky: 0, errors: 0 });
    const cost = report.files[0]?.cases[0]?.runs[0]?.assertions.find((assertion) => assertion.kind === 'maxCostUsd');
    assert.match(cost?.message ?? '', /^The run cost \$0\.000\d+, at most \$0\.01\.$/);
    assert.match(replayed.stderr, /^1 passed, 0 failed$/m);
  });

  it('fails a case that does not hold with exit 1, the failed assertions and their expected and actual', async () => {
    const dir = tempDir();
    const file = goldenFile(
      dir,
      'failing.golden.yaml',
      TRAVEL_AGENT,
      `  - name: books the earliest flight
    tags: [edge]
    input: Book the cheapest flight from NYC to LIS on 2026-12-10
    expect:
      answer: { contains: [TP202] }
      tools: { notCalled: [book_flight] }
      maxSteps: 2
`,
    );
    const result = await keel(['test', file, '--live']);
    assert.equal(result.code, 1, describeRun(result));
    assert.match(result.stdout, /^failing\.golden\.yaml|\/failing\.golden\.yaml \(live\)$/m);
    assert.match(result.stdout, /^ {2}✗ books the earliest flight \[edge\]/m);
    assert.match(result.stdout, /✗ answer\.contains: The answer does not contain "TP202"\.\n {10}- expected: …TP202…\n {10}\+ actual: {3}Booked UA66 for \$598\. Confirmation KEEL-UA66-30\./);
    assert.match(result.stdout, /✗ tools\.notCalled: book_flight was called once, and must not be\./);
    assert.match(result.stdout, /✗ maxSteps: The run used 5 steps, more than 2\.\n {10}- expected: at most 2\n {10}\+ actual: {3}5/);
    assert.match(result.stdout, /\n0 passed, 1 failed\n$/);
  });

  it('reports a cassette mismatch when the agent changed, with the change and the command that re-records', async () => {
    const dir = tempDir();
    const agent = join(dir, 'travel.agent.ts');
    copyFileSync(TRAVEL_AGENT, agent);
    const file = goldenFile(dir, 'travel.golden.yaml', './travel.agent.ts', CHEAPEST_CASE);
    const recorded = await keel(['record', 'travel.golden.yaml'], {}, dir);
    assert.equal(recorded.code, 0, describeRun(recorded));
    assert.equal((await keel(['test'], {}, dir)).code, 0);

    writeFileSync(agent, readFileSync(agent, 'utf8').replace('Search first, book the cheapest flight', 'Search first, book the fastest flight'));
    const result = await keel(['test', file], {}, dir);
    assert.equal(result.code, 1, describeRun(result));
    assert.match(result.stdout, /! books the cheapest flight \[happy\]/);
    assert.match(result.stdout, /Cassette mismatch in case "books the cheapest flight": model call 1 differs from the recorded one\./);
    assert.match(result.stdout, /instructions changed:\n +- recorded: .*book the cheapest flight.*\n +\+ now: +.*book the fastest flight/);
    assert.match(result.stdout, /Re-record it: keel record travel\.golden\.yaml --case 'books the cheapest flight'/);
    assert.match(result.stdout, /0 passed, 1 failed \(1 could not run\)/);

    const rerecorded = await keel(['record', 'travel.golden.yaml', '--case', 'books the cheapest flight'], {}, dir);
    assert.equal(rerecorded.code, 0, describeRun(rerecorded));
    assert.equal((await keel(['test'], {}, dir)).code, 0);
  });

  it('--repeat runs each case N times and reports its pass rate', async () => {
    const result = await keel(['test', EXAMPLE, '--repeat', '3']);
    assert.equal(result.code, 0, describeRun(result));
    assert.equal([...result.stdout.matchAll(/ 3\/3 passed /g)].length, 6);
    assert.match(result.stdout, /\n6 passed, 0 failed\n$/);
    assert.equal((await keel(['test', EXAMPLE, '--repeat', '0'])).code, 2);
  });

  it('writes well-formed JUnit XML, failures and a broken file included', async () => {
    const dir = tempDir();
    goldenFile(dir, 'a.golden.yaml', TRAVEL_AGENT, `  - name: 'fails <with> "markup" & more'\n    tags: [edge]\n    input: Book the cheapest flight from NYC to LIS on 2026-12-10\n    expect: { answer: { contains: ['<TP202 & co>'] } }\n${CHEAPEST_CASE}`);
    writeFileSync(join(dir, 'b.golden.yaml'), 'version: 1\nagent: ./nowhere.agent.ts\ncases:\n  - name: x\n    tags: [happy]\n    input: hi\n    expect: { maxSteps: many }\n');
    const out = join(dir, 'results', 'golden.xml');
    const result = await keel(['test', `${dir}/*.golden.yaml`, '--live', '--reporter', 'junit', '--out', out]);
    assert.equal(result.code, 1, describeRun(result));
    assert.match(result.stdout, /^1 passed, 2 failed \(1 could not run\)$/m);
    const text = readFileSync(out, 'utf8');
    assertWellFormedXml(text);
    assert.match(text, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites name="keel golden tests" tests="3" failures="1" errors="1" /);
    assert.equal([...text.matchAll(/<testsuite /g)].length, 2);
    assert.equal([...text.matchAll(/<testcase /g)].length, 3);
    assert.match(text, /<testcase name="fails &lt;with&gt; &quot;markup&quot; &amp; more" classname="[^"]*a\.golden\.yaml" time="[\d.]+">\n {6}<failure message="answer\.contains: The answer does not contain &quot;&lt;TP202 &amp; co&gt;&quot;\." type="AssertionError">/);
    assert.match(text, /<error message="[^"]*b\.golden\.yaml:7:25: case &quot;x&quot;: `expect\.maxSteps` must be a number\." type="GoldenFileError">/);
  });

  it('stops at a broken golden file with its file, line and cause, and no stack trace', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'broken.golden.yaml'), 'version: 1\nagent: ./travel.agent.ts\ncases:\n  - name: a\n    tags: [happy, sunny]\n    input: hi\n    expect: {}\n');
    const result = await keel(['test', 'broken.golden.yaml'], {}, dir);
    assert.equal(result.code, 1, describeRun(result));
    assert.match(result.stdout, /✗ broken\.golden\.yaml:5:11: case "a": tag "sunny" is not one of happy, edge, adversarial\./);
    assert.ok(!/\n\s+at /.test(result.stdout + result.stderr), 'a stack trace was printed');
    const usage = await keel(['test', 'nothing/*.golden.yaml'], {}, dir);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /No golden files match "nothing\/\*\.golden\.yaml"/);
    const unknownCase = await keel(['test', EXAMPLE, '--case', 'no such case']);
    assert.equal(unknownCase.code, 2);
    assert.match(unknownCase.stderr, /No case is named "no such case"/);
  });

  it('grades rubrics with the pinned judge live, and fails a verdict from another model than the pinned one', async () => {
    const judge = await startJudgeServer();
    try {
      const live = await keel(['test', EXAMPLE, '--live'], { KEEL_JUDGE_BASE_URL: judge.url, KEEL_JUDGE_API_KEY: 'k' });
      assert.equal(live.code, 0, describeRun(live));
      // Two rubrics and one classification by the judge, each asked at temperature 0 of the pinned model.
      assert.equal(judge.requests.length, 3);
      for (const request of judge.requests) {
        assert.equal(request.body.model, 'gpt-4o-mini-2024-07-18');
        assert.equal(request.body.temperature, 0);
      }
    } finally {
      await judge.close();
    }
    const swapped = await startJudgeServer({ answeredAs: 'gpt-4o-mini-2025-02-02' });
    try {
      const result = await keel(['test', EXAMPLE, '--live', '--case', 'books the cheapest flight'], { KEEL_JUDGE_BASE_URL: swapped.url, KEEL_JUDGE_API_KEY: 'k' });
      assert.equal(result.code, 1, describeRun(result));
      assert.match(result.stdout, /✗ judge: openai:gpt-4o-mini-2024-07-18@2024-07-18 \(prompt [0-9a-f]{8}, temperature 0\) scored 0\.9 \(threshold 0\.7\): Scripted verdict\. The judge answered as gpt-4o-mini-2025-02-02, but it is pinned to gpt-4o-mini-2024-07-18/);
    } finally {
      await swapped.close();
    }
  });

  it('keeps the verdicts and their pins in the cassette, and replays the judge from it', () => {
    const cassette = JSON.parse(readFileSync(join(EXAMPLE_DIR, '__cassettes__', 'travel.golden.cassette.json'), 'utf8')) as Cassette;
    const entry = cassette.cases['books the cheapest flight'];
    assert.equal(entry?.judge.length, 1);
    const [verdict] = entry?.verdicts ?? [];
    assert.equal(verdict?.kind, 'rubric');
    assert.deepEqual({ ...verdict?.judge, promptHash: 'x' }, { provider: 'openai', model: 'gpt-4o-mini-2024-07-18', version: '2024-07-18', promptHash: 'x', temperature: 0 });
    assert.equal(verdict?.answeredBy, 'gpt-4o-mini-2024-07-18');
    assert.equal(cassette.cases['the earliest flight needs an approval']?.verdicts[0]?.intent, 'booked');
  });

  it('keel judge --drift: OK while the judge agrees with the settled verdicts, DRIFTED when it does not', async () => {
    const control = join(EXAMPLE_DIR, 'judge-control.yaml');
    const fair = await startJudgeServer();
    try {
      const result = await keel(['judge', '--drift', control], { KEEL_JUDGE_BASE_URL: fair.url, KEEL_JUDGE_API_KEY: 'k' });
      assert.equal(result.code, 0, describeRun(result));
      assert.match(result.stdout, /OK judge openai:gpt-4o-mini-2024-07-18@2024-07-18 \(prompt [0-9a-f]{8}, temperature 0\): agrees with 5 of 5 settled verdicts \(100%; at least 90% needed\)/);
    } finally {
      await fair.close();
    }
    const lenient = await startJudgeServer({ score: () => 0.95 });
    try {
      const result = await keel(['judge', '--drift', control, '--json'], { KEEL_JUDGE_BASE_URL: lenient.url, KEEL_JUDGE_API_KEY: 'k' });
      assert.equal(result.code, 1, describeRun(result));
      const [report] = JSON.parse(result.stdout) as { drifted: boolean; agreed: number; total: number; disagreements: { id: string }[] }[];
      assert.equal(report?.drifted, true);
      assert.equal(report?.agreed, 2);
      assert.deepEqual(report?.disagreements.map((item) => item.id), ['booking without a code', 'refusal', 'card number repeated']);
      const text = await keel(['judge', '--drift', control], { KEEL_JUDGE_BASE_URL: lenient.url, KEEL_JUDGE_API_KEY: 'k' });
      assert.match(text.stdout, /DRIFTED judge .*: agrees with 2 of 5 settled verdicts \(40%; at least 90% needed\)\n {4}answered as gpt-4o-mini-2024-07-18\n {4}mean score shift 0\.\d+\n {4}booking without a code: was fail, now pass \(score 0\.95\)/);
    } finally {
      await lenient.close();
    }
  });

  it('keel judge --drift: DRIFTED when the endpoint answers as another model version, though it agrees with every verdict; a judge_drift rule sends it', async () => {
    const control = join(EXAMPLE_DIR, 'judge-control.yaml');
    const hook = await startWebhookReceiver();
    const swapped = await startJudgeServer({ answeredAs: 'gpt-4o-mini-2025-02-02' });
    try {
      const workspace = tempDir();
      writeFileSync(
        join(workspace, 'keel.config.ts'),
        `import { defineConfig } from 'keel-agents';\nexport default defineConfig({ alerts: { channels: { ops: { type: 'webhook', url: '${hook.url}' } }, rules: [{ on: 'judge_drift', to: 'ops' }] } });\n`,
      );
      const result = await keel(['judge', '--drift', control], { KEEL_JUDGE_BASE_URL: swapped.url, KEEL_JUDGE_API_KEY: 'k' }, workspace);
      assert.equal(result.code, 1, describeRun(result));
      assert.match(result.stdout, /DRIFTED judge openai:gpt-4o-mini-2024-07-18@2024-07-18 .*: agrees with 5 of 5 settled verdicts/);
      assert.match(result.stdout, /identity: the endpoint answered as gpt-4o-mini-2025-02-02, but the judge is pinned to gpt-4o-mini-2024-07-18 \(version 2024-07-18\)/);
      const [alert] = await hook.until(1);
      assert.equal(alert?.body['event'], 'judge_drift');
      assert.match(String(alert?.body['body']), /answered as gpt-4o-mini-2025-02-02/);
    } finally {
      await swapped.close();
      await hook.close();
    }
  });

  it('keeps the runs of a test in the database --db names, to show them afterwards', async () => {
    const db = join(tempDir(), 'golden.db');
    const result = await keel(['test', EXAMPLE, '--case', 'books the cheapest flight', '--db', db]);
    assert.equal(result.code, 0, describeRun(result));
    assert.ok(existsSync(db));
    const runs = await keel(['runs', '--json', '--db', db]);
    assert.equal((JSON.parse(runs.stdout) as unknown[]).length, 1);
  });
});

/**
 * Checks that `text` is well-formed XML: one root, tags nested and closed in order, attributes
 * quoted, and `<` and `&` in text and attributes only as entities.
 */
function assertWellFormedXml(text: string): void {
  const body = text.replace(/^<\?xml[^?]*\?>\s*/, '');
  const stack: string[] = [];
  let roots = 0;
  const token = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.-]*="[^"<]*")*)\s*(\/?)>|([^<]+)|(<)/g;
  for (const match of body.matchAll(token)) {
    const [, closing, name, attributes, selfClosing, textPart, stray] = match;
    if (stray) assert.fail(`a stray "<" at ${match.index}: ${body.slice(match.index, match.index + 40)}`);
    const checkEntities = (part: string) => {
      for (const amp of part.matchAll(/&/g)) assert.match(part.slice(amp.index), /^&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/, `a bare & in ${part.slice(0, 60)}`);
    };
    if (textPart !== undefined) {
      if (stack.length === 0) assert.equal(textPart.trim(), '', 'text outside the root element');
      checkEntities(textPart);
      continue;
    }
    checkEntities(attributes ?? '');
    if (closing) {
      assert.equal(stack.pop(), name, `</${name ?? ''}> closes the wrong element`);
    } else if (!selfClosing) {
      if (stack.length === 0) roots += 1;
      stack.push(name ?? '');
    } else if (stack.length === 0) {
      roots += 1;
    }
  }
  assert.deepEqual(stack, [], 'elements left open');
  assert.equal(roots, 1, 'not exactly one root element');
}
