import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** What differs between the variants of the replay agent. */
export interface ReplayAgentVariant {
  /** The lead's instructions: others make a recorded run no longer match it. */
  readonly instructions?: string;
  /** What the lead pays: more than 1000 is declined (the step fails). Default 40. */
  readonly amount?: number;
  /** The number the lead looks up second: 4 repeats the first call (a flagged step). Default 5. */
  readonly secondLookup?: number;
}

/**
 * An agent file for the replay debugger's tests (plain Node, and inside VS Code): `lead` looks a
 * number up, asks its `researcher` sub-agent (which takes a note), pays, looks another number up
 * and answers, with a scripted model, offline. 8 steps of its own, 3 of the sub-agent run's.
 * Returns the file's path.
 */
export function writeReplayAgent(dir: string, variant: ReplayAgentVariant = {}): string {
  const file = join(dir, 'lead.agent.ts');
  writeFileSync(
    file,
    `import { agentTool, defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

const note = defineTool({
  name: 'note',
  description: 'Writes a note.',
  args: z.object({ text: z.string() }),
  effect: 'none',
  run: ({ text }) => 'noted: ' + text,
});

const researcher = defineAgent({
  name: 'researcher',
  instructions: 'Research, note, answer.',
  model: scriptedModel(({ turn, input }) => (turn === 0 ? { toolCalls: [{ name: 'note', args: { text: input } }] } : 'found: ' + input)),
  tools: [note],
});

const lookup = defineTool({
  name: 'lookup',
  description: 'Looks a number up.',
  args: z.object({ n: z.number() }),
  effect: 'none',
  run: ({ n }) => ({ value: n * 10 }),
});

const pay = defineTool({
  name: 'pay',
  description: 'Pays an amount.',
  args: z.object({ amount: z.number() }),
  effect: 'idempotent',
  run: ({ amount }) => {
    if (amount > 1000) throw new Error('declined');
    return { receipt: 'R-' + amount };
  },
});

export default defineAgent({
  name: 'lead',
  instructions: ${JSON.stringify(variant.instructions ?? 'Look up, research, pay, answer.')},
  model: scriptedModel(({ turn, toolResults }) => {
    if (turn === 0) return { text: 'Looking it up.', toolCalls: [{ name: 'lookup', args: { n: 4 } }] };
    if (turn === 1) return { toolCalls: [{ name: 'researcher', args: { task: 'prices' } }] };
    if (turn === 2) return { toolCalls: [{ name: 'pay', args: { amount: ${variant.amount ?? 40} } }, { name: 'lookup', args: { n: ${variant.secondLookup ?? 5} } }] };
    return 'Done after ' + toolResults.length + ' results.';
  }),
  tools: [lookup, pay, agentTool(researcher)],
});
`,
  );
  return file;
}

/** The order in which a replay of the lead's run visits steps: `agent:seq`. */
export const REPLAY_ORDER = [
  'lead:1',
  'lead:2',
  'lead:3',
  'lead:4',
  'researcher:1',
  'researcher:2',
  'researcher:3',
  'lead:5',
  'lead:6',
  'lead:7',
  'lead:8',
] as const;
