import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as oniguruma from 'vscode-oniguruma';
import { INITIAL, parseRawGrammar, Registry, type IGrammar } from 'vscode-textmate';
import { z } from 'zod';
import { documentHandlers } from '../../src/daemon/documentHandlers';
import { defineAgent, defineTool } from '../../src/runtime/agent/define';
import { Runtime } from '../../src/runtime/agent/runtime';
import { approvals } from '../../src/runtime/approval/policy';
import { RetryableError } from '../../src/runtime/effects/retry';
import { scriptedModel } from '../../src/runtime/model/scripted';
import { useTraceRuns } from '../support/traceRuns';

const ROOT = join(__dirname, '..', '..', '..');

/** The grammar package.json contributes, loaded as VS Code loads it (vscode-textmate over Oniguruma). */
async function shippedGrammar(): Promise<IGrammar> {
  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    contributes: { grammars: { language: string; scopeName: string; path: string }[]; languages: { id: string; extensions: string[] }[] };
  };
  const contributed = manifest.contributes.grammars.find((grammar) => grammar.language === 'keel-transcript');
  assert.ok(contributed, 'package.json contributes no grammar for keel-transcript');
  assert.ok(manifest.contributes.languages.some((language) => language.id === 'keel-transcript' && language.extensions.includes('.keel-transcript')));
  await oniguruma.loadWASM(readFileSync(require.resolve('vscode-oniguruma/release/onig.wasm')).buffer);
  const path = join(ROOT, contributed.path);
  const registry = new Registry({
    onigLib: Promise.resolve({ createOnigScanner: (sources) => new oniguruma.OnigScanner(sources), createOnigString: (text) => new oniguruma.OnigString(text) }),
    loadGrammar: (scopeName) => Promise.resolve(scopeName === contributed.scopeName ? parseRawGrammar(readFileSync(path, 'utf8'), path) : null),
  });
  const grammar = await registry.loadGrammar(contributed.scopeName);
  assert.ok(grammar, `the grammar ${contributed.scopeName} does not load`);
  return grammar;
}

/** Each line's tokens as `text=innermost scope`, trimmed, whitespace-only tokens left out. */
function tokenize(grammar: IGrammar, text: string): string[][] {
  let state = INITIAL;
  return text.split('\n').map((line) => {
    const result = grammar.tokenizeLine(line, state);
    state = result.ruleStack;
    return result.tokens
      .filter((token) => line.slice(token.startIndex, token.endIndex).trim() !== '')
      .map((token) => `${line.slice(token.startIndex, token.endIndex).trim()}=${token.scopes.at(-1) ?? ''}`);
  });
}

describe('transcript documents', () => {
  const runs = useTraceRuns();

  it('show approval decisions (who, what, when) and failed attempts inside their step, coloured by the shipped grammar', async () => {
    let calls = 0;
    const quote = defineTool({
      name: 'quote',
      description: 'Busy once, then quotes.',
      args: z.object({}),
      effect: 'idempotent',
      run: () => {
        calls += 1;
        if (calls === 1) throw new RetryableError('quote service busy');
        return '$120';
      },
    });
    const charge = defineTool({
      name: 'charge',
      description: 'Charge a card.',
      args: z.object({ amount: z.number() }),
      effect: 'unsafe',
      approval: approvals.always('charges need a person'),
      run: ({ amount }) => `receipt R-${amount}`,
    });
    const agent = defineAgent({
      name: 'payer',
      instructions: 'Pay what you are asked.',
      model: scriptedModel([{ toolCalls: [{ name: 'quote' }] }, { toolCalls: [{ name: 'charge', args: { amount: 120 } }] }, 'Charged 120.'], { name: 'pay-script' }),
      tools: [quote, charge],
    });
    const store = runs.store();
    const handlers = documentHandlers(() => store, () => Promise.resolve(store));

    const { run: paused } = await runs.run(agent, 'pay 120');
    assert.equal(paused.state, 'waiting_approval');
    const waiting = (await handlers.getTranscript({ runId: paused.id })).text;
    assert.match(waiting, /\nstep 4 · tool charge\n {2}arguments: \{"amount":120\}\n {2}approval asked at \S+: charges need a person · .*\n {2}decision: pending\n {2}\(about to run\)\n\nwaiting for a decision · /);

    const [approval] = await store.listApprovals({ runId: paused.id });
    assert.ok(approval);
    const decidedAt = Date.UTC(2026, 11, 8, 1, 30);
    await store.decideApproval(approval.id, { action: 'approve', argsHash: approval.argsHash }, { by: 'ada', via: 'vscode', at: decidedAt });
    const done = await (await new Runtime({ store }).resume(agent, paused.id)).done;
    assert.equal(done.state, 'completed');

    const text = (await handlers.getTranscript({ runId: paused.id })).text;
    const lines = text.split('\n');
    const block = (header: string): string[] => {
      const start = lines.indexOf(header);
      assert.ok(start >= 0, `no ${header} in\n${text}`);
      const end = lines.findIndex((line, index) => index > start && !line.startsWith('  '));
      return lines.slice(start + 1, end);
    };
    const quoteBlock = block('step 2 · tool quote');
    assert.equal(quoteBlock.length, 3, quoteBlock.join('\n'));
    assert.match(quoteBlock[1] ?? '', /^ {2}attempt 1 failed at \d{4}-\d\d-\d\dT\S+Z \(retry: marked retryable\), retried after \d+ ms: quote service busy$/);
    assert.equal(quoteBlock[2], '  result: $120');
    const chargeBlock = block('step 4 · tool charge');
    assert.deepEqual(chargeBlock.slice(0, 1), ['  arguments: {"amount":120}']);
    assert.match(chargeBlock[1] ?? '', /^ {2}approval asked at \S+: charges need a person · /);
    assert.equal(chargeBlock[2], '  decision: approved by ada in vscode at 2026-12-08T01:30:00.000Z');
    assert.equal(chargeBlock[3], '  result: receipt R-120');

    const grammar = await shippedGrammar();
    const tokens = tokenize(grammar, text);
    const at = (line: string): string[] => tokens[lines.indexOf(line)] ?? [];
    assert.deepEqual(at('step 4 · tool charge'), [
      'step=keyword.other.step.keel-transcript',
      '4=constant.numeric.step.keel-transcript',
      '·=punctuation.separator.keel-transcript',
      'tool=keyword.other.tool.keel-transcript',
      'charge=entity.name.function.tool.keel-transcript',
    ]);
    assert.deepEqual(at('step 3 · model keel.scripted:pay-script').slice(3), ['model=keyword.other.model.keel-transcript', 'keel.scripted:pay-script=entity.name.type.model.keel-transcript']);
    assert.deepEqual(at(chargeBlock[2] ?? ''), [
      'decision:=keyword.control.decision.keel-transcript',
      'approved=markup.inserted.approved.keel-transcript',
      'by ada in vscode=entity.name.tag.decider.keel-transcript',
      'at=source.keel-transcript',
      '2026-12-08T01:30:00.000Z=constant.other.time.keel-transcript',
    ]);
    assert.ok(at(chargeBlock[1] ?? '').includes('approval asked=keyword.control.approval.keel-transcript'));
    const attempt = at(quoteBlock[1] ?? '');
    assert.deepEqual(attempt.slice(0, 3), ['attempt=keyword.control.retry.keel-transcript', '1=constant.numeric.attempt.keel-transcript', 'failed=invalid.illegal.failed.keel-transcript']);
    assert.ok(attempt.some((token) => /^retried after \d+ ms=keyword.control.retry.keel-transcript$/.test(token)), attempt.join(' | '));
    assert.ok(at('input:').includes('input:=entity.name.tag.role.user.keel-transcript'));
    assert.ok(at('  calls charge {"amount":120}').includes('charge=entity.name.function.tool.keel-transcript'));
    const ended = at(lines.find((line) => line.startsWith('completed · ')) ?? '');
    assert.equal(ended[0], 'completed=keyword.other.state.keel-transcript');
  });

  it('colour a failed step and a rejection as errors', async () => {
    const grammar = await shippedGrammar();
    const [failed, rejected, expired] = tokenize(
      grammar,
      ['  error: card declined', '  decision: rejected (too much) by ada in cli at 2026-12-08T01:30:00.000Z', '  decision: rejected (no decision in time) by the deadline at 2026-12-08T02:30:00.000Z'].join('\n'),
    );
    assert.deepEqual(failed, ['error:=invalid.illegal.error.keel-transcript', 'card declined=message.error.keel-transcript']);
    assert.equal(rejected?.[1], 'rejected (too much)=markup.deleted.rejected.keel-transcript');
    assert.equal(expired?.[2], 'by the deadline=entity.name.tag.decider.keel-transcript');
  });
});
