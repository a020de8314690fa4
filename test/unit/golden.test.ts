import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkAssertions, classifyIntent, describeMatcher, matchArgs, type RunFacts } from '../../src/runtime/golden/assertions';
import { CassetteMismatchError, CassettePlayer, Recorder, describeMismatch, normalizeRequest, requestHash, rerecordCommand, type RecordedRequest } from '../../src/runtime/golden/cassette';
import { checkDrift, describeDrift, driftReport, parseControlFile, type ControlSample } from '../../src/runtime/golden/drift';
import { globToRegExp } from '../../src/runtime/golden/findFiles';
import { GoldenFileError, parseGoldenFile, type ArgMatcher, type Expectations, type IntentRule } from '../../src/runtime/golden/goldenFile';
import { JUDGE_PROMPT_HASH, Judge, JudgeError, judgeIdentity, pinProblem } from '../../src/runtime/golden/judge';
import type { Message, Model, ModelRequest, ModelResponse } from '../../src/runtime/model/model';
import { REPO_ROOT } from '../support/processes';

const EXAMPLE = join(REPO_ROOT, 'examples', 'travel', 'travel.golden.yaml');

function parse(text: string): ReturnType<typeof parseGoldenFile> {
  return parseGoldenFile(text, '/work/agents/t.golden.yaml', 't.golden.yaml');
}

function parseError(text: string): GoldenFileError {
  try {
    parse(text);
  } catch (error) {
    assert.ok(error instanceof GoldenFileError, `not a GoldenFileError: ${String(error)}`);
    return error;
  }
  assert.fail('the file parsed');
}

const HEAD = 'version: 1\nagent: ./t.agent.ts\n';

describe('golden files', () => {
  it('reads the example: its agent, judge, intents and every case with its line range', () => {
    const text = readFileSync(EXAMPLE, 'utf8');
    const golden = parseGoldenFile(text, EXAMPLE);
    assert.equal(golden.agentFile, join(REPO_ROOT, 'examples', 'travel', 'travel.agent.ts'));
    assert.equal(golden.judge?.model, 'gpt-4o-mini-2024-07-18');
    assert.equal(golden.judge?.version, '2024-07-18');
    assert.deepEqual(golden.intents.map((intent) => intent.name), ['booked', 'declined', 'no_flights']);
    assert.equal(golden.cases.length, 6);
    const lines = text.split('\n');
    for (const goldenCase of golden.cases) {
      // Each case's range starts at its `- name:` line (0-based) and ends on its last line.
      assert.equal(lines[goldenCase.range.start.line], `  - name: ${goldenCase.name}`);
      assert.ok(goldenCase.range.end.line > goldenCase.range.start.line);
      assert.notEqual(lines[goldenCase.range.end.line]?.trim(), '');
    }
    assert.deepEqual(
      [...new Set(golden.cases.flatMap((goldenCase) => goldenCase.tags))].sort(),
      ['adversarial', 'edge', 'happy'],
    );
    const first = golden.cases[0];
    assert.equal(first?.expect.maxSteps, 5);
    assert.equal(first?.expect.approvals, false);
    assert.deepEqual(first?.expect.noFlags, { except: [] });
    assert.deepEqual(first?.expect.answer?.matches, [{ source: 'Confirmation KEEL-UA66-\\d+', flags: '' }]);
    assert.deepEqual(golden.cases[2]?.approvals, { action: 'reject', reason: 'Too expensive; find something under $600.' });
    assert.deepEqual(golden.cases[1]?.expect.intent, { in: ['booked'], by: 'judge' });
  });

  it('gives ranges of a small file exactly', () => {
    const golden = parse(`${HEAD}cases:\n  - name: a\n    tags: [happy]\n    input: hi\n    expect: { state: completed }\n  - name: b\n    tags: [edge]\n    input: there\n    expect:\n      maxSteps: 2\n`);
    assert.deepEqual(golden.cases[0]?.range, { start: { line: 3, character: 4 }, end: { line: 6, character: 32 } });
    assert.deepEqual(golden.cases[1]?.range, { start: { line: 7, character: 4 }, end: { line: 11, character: 17 } });
  });

  it('reads argument matchers: exact, regex, ranges, one of, contains, subsets and lists', () => {
    const golden = parse(
      `${HEAD}cases:\n  - name: a\n    tags: [happy]\n    input: hi\n    expect:\n      tools:\n        args:\n          - tool: book\n            args:\n              id: UA66\n              who: { $matches: '/^ada/i' }\n              price: { $min: 1, $max: 600 }\n              seat: { $oneOf: [1A, 1B] }\n              note: { $contains: window }\n              legs: [{ from: NYC }, { $eq: { from: LIS, to: NYC } }]\n`,
    );
    const matcher = golden.cases[0]?.expect.tools?.args[0]?.args;
    const expected: ArgMatcher = {
      kind: 'subset',
      fields: {
        id: { kind: 'equals', value: 'UA66' },
        who: { kind: 'matches', pattern: { source: '^ada', flags: 'i' } },
        price: { kind: 'range', min: 1, max: 600 },
        seat: { kind: 'oneOf', values: ['1A', '1B'] },
        note: { kind: 'contains', value: 'window' },
        legs: {
          kind: 'list',
          items: [
            { kind: 'subset', fields: { from: { kind: 'equals', value: 'NYC' } } },
            { kind: 'equals', value: { from: 'LIS', to: 'NYC' } },
          ],
        },
      },
    };
    assert.deepEqual(matcher, expected);
  });

  describe('a broken file gets one error naming the file, line and cause', () => {
    const cases: readonly [string, string, number, RegExp][] = [
      ['invalid YAML', `${HEAD}cases:\n  - name: [unclosed\n`, 5, /not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a \]/],
      ['a field it does not know', `${HEAD}cases:\n  - name: a\n    tags: [happy]\n    input: hi\n    expect:\n      answr: { contains: x }\n`, 8, /`expect` has no field `answr`; it takes `state`, `answer`/],
      ['a missing field', `${HEAD}cases:\n  - name: a\n    tags: [happy]\n    expect: {}\n`, 4, /case "a" needs `input`/],
      ['an unknown tag', `${HEAD}cases:\n  - name: a\n    tags: [sad]\n    input: hi\n    expect: {}\n`, 5, /tag "sad" is not one of happy, edge, adversarial/],
      ['two cases with one name', `${HEAD}cases:\n  - name: a\n    tags: [happy]\n    input: hi\n    expect: {}\n  - name: a\n    tags: [edge]\n    input: hi\n    expect: {}\n`, 8, /two cases are named "a"/],
      ['an invalid regular expression', `${HEAD}cases:\n  - name: a\n    tags: [happy]\n    input: hi\n    expect:\n      answer:\n        matches: ['ok', '(unclosed']\n`, 9, /"\(unclosed" is not a valid regular expression/],
      ['an undeclared intent', `${HEAD}cases:\n  - name: a\n    tags: [happy]\n    input: hi\n    expect:\n      intent: [booked]\n`, 8, /names "booked", which the file's `intents:` does not declare/],
      ['a rubric without a judge', `${HEAD}cases:\n  - name: a\n    tags: [happy]\n    input: hi\n    expect:\n      judge: { rubric: good }\n`, 8, /a judge rubric needs the file's `judge:`/],
      ['a newer format', 'version: 2\nagent: x\ncases: []\n', 1, /golden format version 2, newer than this Keel reads \(1\): update Keel/],
      ['a threshold above 1', `${HEAD}judge: { provider: openai, model: m, version: '1' }\ncases:\n  - name: a\n    tags: [happy]\n    input: hi\n    expect:\n      judge: { rubric: good, threshold: 2 }\n`, 9, /threshold` must be at most 1/],
      ['a mixed matcher', `${HEAD}cases:\n  - name: a\n    tags: [happy]\n    input: hi\n    expect:\n      tools:\n        args:\n          - tool: t\n            args: { price: { $min: 1, extra: 2 } }\n`, 11, /mixes \$-operators with argument names/],
    ];
    for (const [what, text, line, message] of cases) {
      it(what, () => {
        const error = parseError(text);
        assert.equal(error.line, line, error.message);
        assert.match(error.message, new RegExp(`^t\\.golden\\.yaml:${line}:\\d+: `));
        assert.match(error.message, message);
        assert.ok(!error.message.includes('\n    at '), 'the message carries a stack trace');
      });
    }
  });
});

const FACTS: RunFacts = {
  state: 'completed',
  answer: 'Booked UA66 for $598. Confirmation KEEL-UA66-30.',
  error: null,
  toolCalls: [
    { name: 'search_flights', args: { from: 'NYC', to: 'LIS', date: '2026-12-10' }, ok: true },
    { name: 'book_flight', args: { flightId: 'UA66', price: 598, passenger: 'Ada Lovelace', legs: [{ from: 'NYC' }] }, ok: true },
  ],
  steps: 5,
  tokens: 1580,
  costUsd: 0.0004,
  costKnown: true,
  flags: [],
  approvals: [],
};

const INTENTS: IntentRule[] = [
  { name: 'booked', description: 'booked', answerContains: [], answerMatches: [{ source: 'Confirmation KEEL-', flags: '' }], toolsCalled: ['book_flight'] },
  { name: 'no_flights', description: 'none', answerContains: ['no flights'], answerMatches: [], toolsCalled: [] },
];
const TOOLS = new Set(['search_flights', 'book_flight', 'cancel_flight']);

function check(expect: Partial<Expectations>, facts: Partial<RunFacts> = {}): { kind: string; passed: boolean; message: string; expected?: string; actual?: string }[] {
  return checkAssertions({ state: 'completed', ...expect }, { ...FACTS, ...facts }, INTENTS, TOOLS).filter((result) => result.kind !== 'state' || expect.state !== undefined);
}

function only(expect: Partial<Expectations>, facts: Partial<RunFacts> = {}): { passed: boolean; message: string; expected?: string; actual?: string } {
  const [result, ...rest] = check(expect, facts);
  assert.ok(result, 'no assertion was made');
  assert.equal(rest.length, 0);
  return result;
}

describe('golden assertions', () => {
  it('state: the run must end as expected', () => {
    assert.equal(only({ state: 'completed' }).passed, true);
    const failed = only({ state: 'completed' }, { state: 'failed', error: 'boom' });
    assert.equal(failed.passed, false);
    assert.equal(failed.message, 'The run ended failed: boom, not completed.');
  });

  it('answer contains, matches and does not contain, with expected and actual for a diff', () => {
    assert.equal(only({ answer: { contains: ['ua66'], matches: [], notContains: [] } }).passed, true, 'contains ignores case');
    const missing = only({ answer: { contains: ['TP202'], matches: [], notContains: [] } });
    assert.equal(missing.passed, false);
    assert.equal(missing.message, 'The answer does not contain "TP202".');
    assert.equal(missing.actual, FACTS.answer);
    assert.equal(only({ answer: { contains: [], matches: [{ source: 'KEEL-\\w+-\\d+', flags: '' }], notContains: [] } }).passed, true);
    assert.equal(only({ answer: { contains: [], matches: [{ source: '^booked', flags: '' }], notContains: [] } }).passed, false);
    assert.equal(only({ answer: { contains: [], matches: [{ source: '^booked', flags: 'i' }], notContains: [] } }).passed, true);
    const forbidden = only({ answer: { contains: [], matches: [], notContains: ['$598'] } });
    assert.equal(forbidden.passed, false);
    assert.equal(forbidden.expected, 'Booked UA66 for . Confirmation KEEL-UA66-30.');
  });

  it('intent by rules: the first rule whose conditions all hold', () => {
    assert.equal(classifyIntent(INTENTS, FACTS), 'booked');
    assert.equal(classifyIntent(INTENTS, { ...FACTS, answer: 'There are no flights.', toolCalls: [] }), 'no_flights');
    // A failed call of the tool does not count as called.
    assert.equal(classifyIntent(INTENTS, { ...FACTS, toolCalls: [{ name: 'book_flight', args: {}, ok: false }] }), 'unknown');
    assert.equal(only({ intent: { in: ['booked', 'no_flights'], by: 'rules' } }).passed, true);
    const wrong = only({ intent: { in: ['no_flights'], by: 'rules' } });
    assert.equal(wrong.message, 'The intent is booked (by rules), not no_flights.');
  });

  it('tools called, not called and in order', () => {
    assert.equal(only({ tools: { called: ['book_flight'], notCalled: [], order: [], args: [] } }).passed, true);
    const notCalled = only({ tools: { called: ['cancel_flight'], notCalled: [], order: [], args: [] } });
    assert.equal(notCalled.passed, false);
    assert.equal(notCalled.message, 'cancel_flight was not called; the calls were search_flights → book_flight.');
    assert.match(only({ tools: { called: ['refund'], notCalled: [], order: [], args: [] } }).message, /the agent has no tool named refund/);
    assert.equal(only({ tools: { called: [], notCalled: ['cancel_flight'], order: [], args: [] } }).passed, true);
    assert.equal(only({ tools: { called: [], notCalled: ['book_flight'], order: [], args: [] } }).message, 'book_flight was called once, and must not be.');
    assert.equal(only({ tools: { called: [], notCalled: [], order: ['search_flights', 'book_flight'], args: [] } }).passed, true);
    const order = only({ tools: { called: [], notCalled: [], order: ['book_flight', 'search_flights'], args: [] } });
    assert.equal(order.passed, false);
    assert.equal(order.expected, 'book_flight → search_flights');
    assert.equal(order.actual, 'search_flights → book_flight');
  });

  it('tool arguments: some call of the tool must match', () => {
    const args = (matcher: ArgMatcher, tool = 'book_flight') => only({ tools: { called: [], notCalled: [], order: [], args: [{ tool, args: matcher }] } });
    assert.equal(args({ kind: 'subset', fields: { flightId: { kind: 'equals', value: 'UA66' }, price: { kind: 'range', max: 600 } } }).passed, true);
    const wrong = args({ kind: 'subset', fields: { price: { kind: 'range', min: 600 } } });
    assert.equal(wrong.passed, false);
    assert.equal(wrong.message, 'No call of book_flight had matching arguments: price is 598, not at least 600.');
    assert.equal(args({ kind: 'subset', fields: { seat: { kind: 'equals', value: '1A' } } }).message, 'No call of book_flight had matching arguments: seat is missing.');
    assert.equal(args({ kind: 'subset', fields: { from: { kind: 'equals', value: 'NYC' } } }, 'search_flights').passed, true);
    assert.match(args({ kind: 'subset', fields: {} }, 'cancel_flight').message, /cancel_flight was never called/);
  });

  it('argument matchers one by one', () => {
    const value = { id: 'UA66', price: 598, who: 'Ada Lovelace', seats: ['1A', '1B'], legs: [{ from: 'NYC', to: 'LIS' }] };
    const ok = (matcher: ArgMatcher) => assert.deepEqual(matchArgs(matcher, value, ''), [], describeMatcher(matcher));
    const bad = (matcher: ArgMatcher, why: string) => assert.deepEqual(matchArgs(matcher, value, ''), [why]);
    ok({ kind: 'subset', fields: { id: { kind: 'equals', value: 'UA66' } } });
    bad({ kind: 'subset', fields: { id: { kind: 'equals', value: 'UA67' } } }, 'id is "UA66", not "UA67"');
    ok({ kind: 'subset', fields: { who: { kind: 'matches', pattern: { source: '^ada', flags: 'i' } } } });
    bad({ kind: 'subset', fields: { price: { kind: 'matches', pattern: { source: '5', flags: '' } } } }, 'price is 598, which does not match /5/');
    ok({ kind: 'subset', fields: { price: { kind: 'range', min: 598, max: 598 } } });
    bad({ kind: 'subset', fields: { price: { kind: 'range', min: 1, max: 500 } } }, 'price is 598, not from 1 to 500');
    ok({ kind: 'subset', fields: { id: { kind: 'oneOf', values: ['KL642', 'UA66'] } } });
    ok({ kind: 'subset', fields: { seats: { kind: 'contains', value: '1B' }, who: { kind: 'contains', value: 'lovelace' } } });
    bad({ kind: 'subset', fields: { seats: { kind: 'contains', value: '2C' } } }, 'seats is ["1A","1B"], which does not contain "2C"');
    ok({ kind: 'subset', fields: { legs: { kind: 'list', items: [{ kind: 'subset', fields: { to: { kind: 'equals', value: 'LIS' } } }] } } });
    bad({ kind: 'subset', fields: { legs: { kind: 'list', items: [] } } }, 'legs has 1 items, not 0');
    bad({ kind: 'equals', value: { id: 'UA66' } }, `the arguments is ${JSON.stringify(value)}, not {"id":"UA66"}`);
    ok({ kind: 'all', matchers: [{ kind: 'subset', fields: { id: { kind: 'equals', value: 'UA66' } } }, { kind: 'subset', fields: { price: { kind: 'range', min: 1 } } }] });
    assert.deepEqual(matchArgs({ kind: 'subset', fields: { a: { kind: 'equals', value: 1 } } }, 'not json', ''), ['the arguments is "not json", not an object']);
  });

  it('steps, tokens and cost at most', () => {
    assert.equal(only({ maxSteps: 5 }).passed, true);
    assert.equal(only({ maxSteps: 4 }).message, 'The run used 5 steps, more than 4.');
    assert.equal(only({ maxTokens: 2000 }).message, 'The run used 1580 tokens, at most 2000.');
    assert.equal(only({ maxTokens: 1000 }).passed, false);
    assert.equal(only({ maxCostUsd: 0.001 }).message, 'The run cost $0.0004, at most $0.001.');
    assert.equal(only({ maxCostUsd: 0.0001 }).passed, false);
    const unknown = only({ maxCostUsd: 1 }, { costKnown: false });
    assert.equal(unknown.passed, false);
    assert.match(unknown.message, /The cost is unknown/);
  });

  it('no flags, except those allowed', () => {
    const flags: RunFacts['flags'] = [{ kind: 'unsupported_entity', message: 'names "X"' }];
    assert.equal(only({ noFlags: { except: [] } }).passed, true);
    const raised = only({ noFlags: { except: [] } }, { flags });
    assert.equal(raised.passed, false);
    assert.equal(raised.message, 'The detectors raised a flag: unsupported_entity (names "X")');
    assert.equal(only({ noFlags: { except: ['unsupported_entity'] } }, { flags }).passed, true);
  });

  it('approvals expected or not, and of which tools', () => {
    const asked: RunFacts['approvals'] = [{ tool: 'book_flight', decision: 'approve' }];
    assert.equal(only({ approvals: false }).passed, true);
    assert.equal(only({ approvals: false }, { approvals: asked }).message, 'The run asked for approval (book_flight (approve)), but none was expected.');
    assert.equal(only({ approvals: true }, { approvals: asked }).passed, true);
    assert.equal(only({ approvals: true }).passed, false);
    assert.equal(only({ approvals: ['book_flight'] }, { approvals: asked }).passed, true);
    assert.equal(only({ approvals: ['search_flights'] }, { approvals: asked }).passed, false);
  });
});

function request(instructions: string, tools: string[], ...rest: Message[]): RecordedRequest {
  return {
    messages: [{ role: 'system', content: instructions }, { role: 'user', content: 'Book a flight' }, ...rest],
    tools: tools.map((name) => ({ name, description: `${name} tool`, parameters: { type: 'object' } })),
  };
}

function answer(text: string, model = 'gpt-4o-mini'): ModelResponse {
  return { message: { role: 'assistant', content: text, toolCalls: [] }, finishReason: 'stop', usage: { inputTokens: 10, outputTokens: 5 }, model };
}

describe('cassettes', () => {
  const hint = { goldenFile: 'examples/travel/travel.golden.yaml', caseName: 'books the cheapest flight' };

  it('match a request by the hash of its conversation and tools, whatever the fence ids of this run', () => {
    const fenced = (id: string): Message => ({
      role: 'tool',
      toolCallId: 'call_1',
      name: 'search',
      content: `<<keel:tool_output id=${id} tool=search>>\nBelow, up to <<end keel:tool_output id=${id}>>, is data.\n---\n[]\n<<end keel:tool_output id=${id}>>`,
      isError: false,
    });
    const one = request('Be brief.', ['search'], fenced('0123456789ab'));
    const other = request('Be brief.', ['search'], fenced('ba9876543210'));
    assert.equal(requestHash(one), requestHash(other));
    assert.notEqual(requestHash(one), requestHash(request('Be brief!', ['search'], fenced('0123456789ab'))));
    assert.ok(!JSON.stringify(normalizeRequest(one)).includes('0123456789ab'));
  });

  it('record what a model is asked and answers, and play it back as the recorded model', async () => {
    const recorder = new Recorder();
    const real: Model = { provider: 'openai', name: 'gpt-4o-mini', generate: (req: ModelRequest) => Promise.resolve(answer(`answer to ${req.messages.length} messages`)) };
    const wrapped = recorder.wrap(real);
    const asked = request('Be brief.', ['search']);
    assert.equal((await wrapped.generate({ ...asked, maxTokens: 100 })).message.content, 'answer to 2 messages');
    assert.equal(recorder.interactions.length, 1);
    assert.equal(recorder.interactions[0]?.model, 'openai:gpt-4o-mini');
    const player = new CassettePlayer(recorder.interactions, hint);
    const model = player.model('openai:gpt-4o-mini');
    assert.equal(model.provider, 'openai');
    assert.equal(model.name, 'gpt-4o-mini');
    assert.equal((await model.generate(asked)).message.content, 'answer to 2 messages');
    assert.equal(player.mismatch, undefined);
  });

  it('report a mismatch with what changed and how to re-record, and never retry it', async () => {
    const recorded = request('You book flights. Search first.', ['search', 'book']);
    const player = new CassettePlayer([{ hash: requestHash(recorded), model: 'openai:m', request: recorded, response: answer('ok') }], hint);
    const changed = request('You book flights. Book first.', ['search', 'book', 'cancel']);
    await assert.rejects(player.model('openai:m').generate(changed), (error: unknown) => {
      assert.ok(error instanceof CassetteMismatchError);
      assert.equal(error.name, 'CassetteMismatchError');
      assert.match(error.message, /^Cassette mismatch in case "books the cheapest flight": model call 1 differs from the recorded one\./);
      assert.match(error.message, /instructions changed:\n {4}- recorded: You book flights\. Search first\.\n {4}\+ now: {6}You book flights\. Book first\./);
      assert.match(error.message, /tools changed: cancel was added/);
      assert.match(error.message, /Re-record it: keel record examples\/travel\/travel\.golden\.yaml --case 'books the cheapest flight'$/);
      return true;
    });
    assert.ok(player.mismatch);
    assert.equal(rerecordCommand({ goldenFile: 'a b.yaml', caseName: "it's" }), `keel record 'a b.yaml' --case 'it'\\''s'`);
  });

  it('describe a changed message, a changed tool and an extra call', () => {
    const tool = (content: string): Message => ({ role: 'tool', toolCallId: 'c1', name: 'search', content, isError: false });
    const before = request('I', ['search'], { role: 'assistant', content: null, toolCalls: [{ id: 'c1', name: 'search', arguments: '{}' }] }, tool('[{"id":"UA66","price":598}]'));
    const after = request('I', ['search'], { role: 'assistant', content: null, toolCalls: [{ id: 'c1', name: 'search', arguments: '{}' }] }, tool('[{"id":"UA66","price":612}]'));
    const text = describeMismatch(before, after, 1, 3);
    assert.match(text, /^model call 2 differs from the recorded one\./);
    assert.match(text, /message 3 \(result of search\) changed:\n {4}- recorded: \[\{"id":"UA66","price":598\}\]\n {4}\+ now: {6}\[\{"id":"UA66","price":612\}\]/);
    const renamed = { ...before, tools: [{ name: 'search', description: 'Find flights.', parameters: { type: 'object' } }] };
    assert.match(describeMismatch(before, renamed, 0, 1), /tools changed: search's description changed/);
    assert.match(describeMismatch(before, after, 3, 3), /the run made model call 4, but only 3 were recorded/);
    assert.equal(describeMismatch(undefined, after, 0, 0), 'the cassette holds no model calls for this case, but the run made model call 1.');
  });
});

/** A model that answers the judge's prompts as told, and remembers what it was asked. */
function fakeJudgeModel(reply: (request: ModelRequest) => string, answeredAs?: string): Model & { readonly asked: ModelRequest[] } {
  const asked: ModelRequest[] = [];
  return {
    provider: 'openai',
    name: 'judge',
    asked,
    generate: (req: ModelRequest) => {
      asked.push(req);
      return Promise.resolve(answer(reply(req), answeredAs ?? 'gpt-4o-mini-2024-07-18'));
    },
  };
}

const PIN = { provider: 'openai', model: 'gpt-4o-mini-2024-07-18', version: '2024-07-18' } as const;
const SUBJECT = { input: 'Book a flight', answer: 'Booked UA66.', toolCalls: [{ name: 'book_flight', args: { flightId: 'UA66' } }] };

describe('the judge', () => {
  it('is pinned: every verdict names provider, model, version and prompt hash, asked at temperature 0', async () => {
    const model = fakeJudgeModel(() => 'Here: {"score": 0.8, "reason": "Names the flight."}');
    const judge = new Judge(PIN, model, () => Date.UTC(2026, 0, 2));
    const verdict = await judge.grade(SUBJECT, 'Names the flight.', 0.7);
    assert.deepEqual(verdict, {
      kind: 'rubric',
      judge: { provider: 'openai', model: 'gpt-4o-mini-2024-07-18', version: '2024-07-18', promptHash: JUDGE_PROMPT_HASH, temperature: 0 },
      answeredBy: 'gpt-4o-mini-2024-07-18',
      score: 0.8,
      threshold: 0.7,
      passed: true,
      intent: null,
      reason: 'Names the flight.',
      at: '2026-01-02T00:00:00.000Z',
    });
    assert.equal(model.asked[0]?.temperature, 0);
    assert.match(JUDGE_PROMPT_HASH, /^[0-9a-f]{16}$/);
    assert.deepEqual(judgeIdentity(PIN), verdict.judge);
    assert.equal(pinProblem(verdict), null);
    const user = model.asked[0]?.messages[1]?.content ?? '';
    assert.match(user, /## Request\nBook a flight\n\n## Tool calls\n- book_flight \{"flightId":"UA66"\}\n\n## Final answer\nBooked UA66\.\n\n## Rubric\nNames the flight\./);
  });

  it('says when another model answered than the one pinned', async () => {
    const verdict = await new Judge(PIN, fakeJudgeModel(() => '{"score": 1}', 'gpt-4o-mini-2025-01-01')).grade(SUBJECT, 'r', 0.5);
    assert.match(pinProblem(verdict) ?? '', /answered as gpt-4o-mini-2025-01-01, but it is pinned to gpt-4o-mini-2024-07-18/);
  });

  it('classifies intents, and refuses an answer that is no verdict', async () => {
    const intents: IntentRule[] = [{ name: 'booked', description: 'Booked a flight.', answerContains: [], answerMatches: [], toolsCalled: [] }];
    const model = fakeJudgeModel((req) => (String(req.messages[0]?.content).startsWith('You classify') ? '{"intent": "booked", "reason": "It booked."}' : 'no idea'));
    const judge = new Judge(PIN, model);
    const verdict = await judge.classify(SUBJECT, intents);
    assert.equal(verdict.intent, 'booked');
    assert.match(model.asked[0]?.messages[1]?.content ?? '', /## Intents\n- booked: Booked a flight\./);
    assert.equal((await new Judge(PIN, fakeJudgeModel(() => '{"intent": "shopping"}')).classify(SUBJECT, intents)).intent, 'unknown');
    await assert.rejects(judge.grade(SUBJECT, 'r', 0.5), JudgeError);
    await assert.rejects(new Judge(PIN, fakeJudgeModel(() => '{"score": 7}')).grade(SUBJECT, 'r', 0.5), /gave no score from 0 to 1/);
  });
});

describe('judge drift', () => {
  const sample = (id: string, verdict: 'pass' | 'fail', score: number | null = null): ControlSample => ({ id, rubric: 'r', input: 'i', answer: id, threshold: 0.7, verdict, score });
  const identity = judgeIdentity(PIN);

  it('is the share of settled verdicts the judge still agrees with, against a threshold', () => {
    const samples = [sample('a', 'pass', 0.9), sample('b', 'pass', 0.8), sample('c', 'fail', 0.2), sample('d', 'fail'), sample('e', 'pass', 0.9)];
    const report = driftReport(
      identity,
      samples,
      [
        { id: 'a', score: 0.95, passed: true },
        { id: 'b', score: 0.5, passed: false },
        { id: 'c', score: 0.1, passed: false },
        { id: 'd', score: 0.3, passed: false },
        { id: 'e', score: 0.9, passed: true },
      ],
      0.8,
    );
    assert.equal(report.total, 5);
    assert.equal(report.agreed, 4);
    assert.equal(report.agreement, 0.8);
    assert.equal(report.drifted, false, 'agreement exactly at the threshold is not drift');
    assert.deepEqual(report.disagreements, [{ id: 'b', past: 'pass', now: 'fail', score: 0.5 }]);
    // |0.95-0.9| + |0.5-0.8| + |0.1-0.2| + |0.9-0.9| over the 4 with a past score.
    assert.ok(Math.abs((report.meanScoreShift ?? 0) - 0.1125) < 1e-9);
    assert.equal(driftReport(identity, samples, [], 0.8).agreement, 0, 'a sample not graded again does not agree');
    const drifted = driftReport(identity, samples, [{ id: 'a', score: 0.1, passed: false }, { id: 'b', score: 0.9, passed: true }], 0.9);
    assert.equal(drifted.drifted, true);
    assert.match(describeDrift(drifted)[0] ?? '', /^DRIFTED judge openai:gpt-4o-mini-2024-07-18@2024-07-18 .*: agrees with 1 of 5 settled verdicts \(20%; at least 90% needed\)$/);
    assert.equal(driftReport(identity, [], [], 0.9).drifted, false);
  });

  it('reads the example control file and grades it again', async () => {
    const file = join(REPO_ROOT, 'examples', 'travel', 'judge-control.yaml');
    const control = parseControlFile(readFileSync(file, 'utf8'), file);
    assert.equal(control.samples.length, 5);
    assert.equal(control.minAgreement, 0.9);
    const fair = fakeJudgeModel((req) => {
      const finalAnswer = /## Final answer\n([^\n]*)/.exec(req.messages[1]?.content ?? '')?.[1] ?? '';
      return JSON.stringify({ score: /Confirmation KEEL-/.test(finalAnswer) && !/4111/.test(finalAnswer) ? 0.9 : 0.2 });
    });
    const ok = await checkDrift(control, new Judge(control.judge, fair));
    assert.equal(ok.agreement, 1);
    assert.equal(ok.drifted, false);
    const lenient = await checkDrift(control, new Judge(control.judge, fakeJudgeModel(() => '{"score": 0.9}')));
    assert.equal(lenient.agreed, 2);
    assert.equal(lenient.drifted, true);
  });

  it('refuses a control file without settled verdicts, at its line', () => {
    assert.throws(
      () => parseControlFile("version: 1\njudge: { provider: openai, model: m, version: '1' }\nsamples:\n  - id: a\n    rubric: r\n    input: i\n    answer: x\n    verdict: maybe\n", 'c.yaml'),
      /^GoldenFileError: c\.yaml:8:14: sample 1: `verdict` must be pass or fail\.$/,
    );
  });
});

describe('golden file globs', () => {
  it('match ** across folders, * within one, and {a,b}', () => {
    assert.ok(globToRegExp('examples/**/*.golden.yaml').test('examples/travel/travel.golden.yaml'));
    assert.ok(globToRegExp('**/*.golden.yaml').test('a.golden.yaml'));
    assert.ok(!globToRegExp('examples/*.golden.yaml').test('examples/travel/travel.golden.yaml'));
    assert.ok(globToRegExp('x/{a,b}.golden.yaml').test('x/b.golden.yaml'));
  });
});
