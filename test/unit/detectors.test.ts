import assert from 'node:assert/strict';
import { z } from 'zod';
import { defineAgent, defineTool, type Agent, type AgentConfig } from '../../src/runtime/agent/define';
import { AgentDefinitionError } from '../../src/runtime/errors';
import { scriptedModel, type Script } from '../../src/runtime/model/scripted';
import { buildTrace } from '../../src/runtime/trace/buildTrace';
import { detectFlags, extractEntities, unsupportedEntities, type DetectedFlag, type DetectorOptions } from '../../src/runtime/trace/detectors';
import type { FlagKind } from '../../src/runtime/trace/span';
import { useTraceRuns } from '../support/traceRuns';

const flights = defineTool({
  name: 'search_flights',
  description: 'Finds flights.',
  args: z.object({ to: z.string() }),
  output: z.array(z.object({ id: z.string(), price: z.number() })),
  effect: 'none',
  run: ({ to }) => (to === 'NOWHERE' ? ([{ id: 42 }] as unknown as { id: string; price: number }[]) : [{ id: 'UA66', price: 598 }]),
});

const charge = defineTool({
  name: 'charge',
  description: 'Charges a card.',
  args: z.object({ amount: z.number() }),
  effect: 'unsafe',
  run: ({ amount }) => {
    if (amount > 1000) throw new Error('card declined');
    return { receipt: `R-${amount}` };
  },
});

function agent(script: Script, extra: Partial<AgentConfig> = {}): Agent {
  return defineAgent({ name: 'trip', instructions: 'Book trips.', model: scriptedModel(script), tools: [flights, charge], ...extra });
}

describe('semantic failure detectors: each flags the run it should and not the one it should not', () => {
  const runs = useTraceRuns();

  async function flagsOf(script: Script, options: DetectorOptions = {}, input = 'Fly me to LIS for Ada Lovelace', extra: Partial<AgentConfig> = {}): Promise<DetectedFlag[]> {
    const { source } = await runs.run(agent(script, extra), input);
    return detectFlags(source, { quoteContent: true, ...options });
  }

  const kinds = (flags: readonly DetectedFlag[]) => flags.map((flag) => flag.kind);
  const only = (flags: readonly DetectedFlag[], kind: FlagKind) => flags.filter((flag) => flag.kind === kind);

  describe('tool output that fails its schema', () => {
    it('flags the tool call whose output broke the schema', async () => {
      const flags = await flagsOf([{ toolCalls: [{ name: 'search_flights', args: { to: 'NOWHERE' } }] }, 'Sorry, the search failed.']);
      assert.deepEqual(only(flags, 'tool_output_schema').map((flag) => [flag.seq, flag.severity]), [[2, 'error']]);
    });
    it('does not flag output that matches', async () => {
      const flags = await flagsOf([{ toolCalls: [{ name: 'search_flights', args: { to: 'LIS' } }] }, 'UA66 costs $598.']);
      assert.deepEqual(kinds(flags), []);
    });
  });

  describe('empty final answer', () => {
    it('flags a run that completed with nothing to say', async () => {
      const flags = await flagsOf(['   ']);
      assert.deepEqual(flags.map((flag) => [flag.kind, flag.seq, flag.severity]), [['empty_answer', 1, 'error']]);
    });
    it('does not flag a real answer', async () => {
      assert.deepEqual(kinds(await flagsOf(['Happy to help.'])), []);
    });
  });

  describe('refusal', () => {
    it('flags an answer with a refusal phrase, curly apostrophes included', async () => {
      const flags = await flagsOf(['I’m sorry, but I can’t help with booking flights.']);
      assert.deepEqual(kinds(flags), ['refusal']);
      assert.match(flags[0]?.message ?? '', /I’m sorry, but I can’t/);
    });
    it('does not flag an answer that only mentions sorrow, and honours a custom phrase list', async () => {
      assert.deepEqual(kinds(await flagsOf(['Sorry for the wait: your trip to LIS is booked for Ada Lovelace.'])), []);
      assert.deepEqual(kinds(await flagsOf(['That is outside my remit.'], { refusalPhrases: ['outside my remit'] })), ['refusal']);
    });
  });

  describe('the same call repeated', () => {
    it('flags the second identical call, whatever the key order', async () => {
      const flags = await flagsOf([
        { toolCalls: [{ name: 'charge', rawArguments: '{"amount":598}' }] },
        { toolCalls: [{ name: 'charge', rawArguments: '{ "amount": 598 }' }] },
        'Charged 598 as R-598.',
      ]);
      assert.deepEqual(only(flags, 'repeated_call').map((flag) => [flag.seq, flag.severity]), [[4, 'warning']]);
      assert.match(only(flags, 'repeated_call')[0]?.message ?? '', /same arguments as at step 2/);
    });
    it('does not flag the same tool with other arguments', async () => {
      const flags = await flagsOf([
        { toolCalls: [{ name: 'charge', args: { amount: 598 } }] },
        { toolCalls: [{ name: 'charge', args: { amount: 640 } }] },
        'Charged 598 and 640 (R-598, R-640).',
      ]);
      assert.deepEqual(kinds(flags), []);
    });
  });

  describe('a tool error the model ignored', () => {
    it('flags a failed call when the next turn says nothing of it and the answer claims success', async () => {
      const flags = await flagsOf([{ toolCalls: [{ name: 'charge', args: { amount: 5000 } }] }, 'Your payment is done.']);
      assert.deepEqual(only(flags, 'ignored_tool_error').map((flag) => [flag.seq, flag.severity]), [[2, 'error']]);
    });
    it('does not flag an error the model owned up to, or retried', async () => {
      assert.deepEqual(kinds(await flagsOf([{ toolCalls: [{ name: 'charge', args: { amount: 5000 } }] }, 'The card was declined, so nothing is paid.'])), []);
      const retried = await flagsOf([
        { toolCalls: [{ name: 'charge', args: { amount: 5000 } }] },
        { toolCalls: [{ name: 'charge', args: { amount: 500 } }] },
        'Your payment of 500 is done (R-500).',
      ]);
      assert.deepEqual(kinds(retried), []);
    });
  });

  describe('an entity in the answer that nothing supports', () => {
    it('flags numbers, money, codes, names, emails and URLs that appear in no input or tool output', async () => {
      const flags = await flagsOf([
        { toolCalls: [{ name: 'search_flights', args: { to: 'LIS' } }] },
        'Booked UA66 for $640 with Grace Hopper, ref KEEL-ZZ99, mail ops@example.com or see https://example.com/trip.',
      ]);
      const [flag] = only(flags, 'unsupported_entity');
      assert.equal(flag?.seq, 3);
      assert.equal(flag?.severity, 'warning');
      for (const entity of ['$640', 'Grace Hopper', 'KEEL-ZZ99', 'ops@example.com', 'https://example.com/trip']) {
        assert.ok(flag?.message.includes(entity), `${entity} is named in: ${flag?.message ?? ''}`);
      }
      assert.ok(!flag?.message.includes('UA66'), 'UA66 came from the tool');
    });
    it('does not flag entities the input and the tools gave, or the agent instructions', async () => {
      const flags = await flagsOf(
        [{ toolCalls: [{ name: 'search_flights', args: { to: 'LIS' } }] }, 'Booked UA66 for $598.00 for Ada Lovelace. Call 0800 123 456 with questions.'],
        { evidence: ['Our helpline is 0800 123 456.'] },
      );
      assert.deepEqual(kinds(flags), []);
    });
    it('says what kinds of thing it found, without quoting them, when content is not captured', async () => {
      const { source } = await runs.run(agent(['Your code is QX4417 and it costs $77.']), 'hello');
      const [flag] = detectFlags(source, { quoteContent: false });
      assert.equal(flag?.kind, 'unsupported_entity');
      assert.ok(!flag?.message.includes('QX4417'));
      assert.match(flag?.message ?? '', /1 amount of money, 1 code/);
    });
  });

  describe('a required tool never used', () => {
    it('flags a run that ended without a successful call of a required tool', async () => {
      const never = await flagsOf(['Done, all booked.'], {}, 'book', { requiredTools: ['charge'] });
      const { source } = await runs.run(agent(['Done, all booked.'], { requiredTools: ['charge'] }), 'book');
      const flags = detectFlags(source, { requiredTools: ['charge'] });
      assert.deepEqual(flags.map((flag) => [flag.kind, flag.seq, flag.severity]), [['missing_required_tool', null, 'error']]);
      assert.match(flags[0]?.message ?? '', /without calling charge/);
      assert.deepEqual(kinds(never), [], 'the detector needs requiredTools passed in');

      const failedOnly = await runs.run(agent([{ toolCalls: [{ name: 'charge', args: { amount: 5000 } }] }, 'The card was declined.']), 'book');
      assert.match(detectFlags(failedOnly.source, { requiredTools: ['charge'] })[0]?.message ?? '', /without a successful call of charge/);
    });
    it('does not flag a run that used it', async () => {
      const { source } = await runs.run(agent([{ toolCalls: [{ name: 'charge', args: { amount: 598 } }] }, 'Paid, receipt R-598.']), 'pay 598');
      assert.deepEqual(detectFlags(source, { requiredTools: ['charge'] }), []);
    });
    it('is declared with defineAgent, which checks the names', () => {
      assert.deepEqual(agent(['x'], { requiredTools: ['charge'] }).requiredTools, ['charge']);
      assert.deepEqual(agent(['x']).requiredTools, []);
      assert.throws(() => agent(['x'], { requiredTools: ['refund'] }), (error: unknown) => error instanceof AgentDefinitionError && /"refund", which is not one of the agent's tools/.test(error.message));
    });
  });

  it('puts each flag on its span and lists the kinds in keel.flags', async () => {
    const { source } = await runs.run(
      agent([{ toolCalls: [{ name: 'charge', args: { amount: 5000 } }] }, { toolCalls: [{ name: 'charge', args: { amount: 5000 } }] }, 'All done.'], {
        requiredTools: ['search_flights'],
      }),
      'pay',
    );
    const spans = buildTrace(source, { requiredTools: ['search_flights'] });
    const [root] = spans;
    const second = spans.find((span) => span.attributes['keel.step.id'] === 4);
    assert.deepEqual(root?.flags.map((flag) => flag.kind), ['missing_required_tool']);
    assert.deepEqual(root?.attributes['keel.flags'], ['missing_required_tool']);
    // Its error was ignored too: the answer claims success, and no turn after it mentions the failure.
    assert.deepEqual(
      second?.flags.map((flag) => [flag.kind, flag.spanId]),
      [
        ['repeated_call', second?.spanId],
        ['ignored_tool_error', second?.spanId],
      ],
    );
    assert.deepEqual(second?.attributes['keel.flags'], ['repeated_call', 'ignored_tool_error']);
    assert.equal(spans.find((span) => span.attributes['keel.step.id'] === 1)?.attributes['keel.flags'], undefined);
  });

  it('extracts the entities a reader could check', () => {
    const entities = extractEntities('Ada Lovelace paid €1,234.50 for AB1234 on 2026-12-10. See https://x.io/a, write a@b.io. Thanks!');
    assert.deepEqual(
      entities.map((entity) => [entity.kind, entity.text]),
      [
        ['url', 'https://x.io/a'],
        ['email', 'a@b.io'],
        ['money', '€1,234.50'],
        ['code', 'AB1234'],
        ['number', '2026'],
        ['name', 'Ada Lovelace'],
      ],
    );
    assert.deepEqual(unsupportedEntities('It costs 1,234.5 dollars.', '{"price":1234.50}'), []);
  });
});
