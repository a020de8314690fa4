import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * An agent that spends money slowly, for the budget meter's tests in VS Code: its scripted model
 * passes for `openai:gpt-4o-mini` (so Keel prices it), its tool sleeps a little on every call, it
 * asks a sub-agent on `openai:gpt-4.1-nano`, and it has a budget on every limit. While its gate
 * file exists, its third model call waits before answering, holding its reservation: the run is
 * then going, with money spent and a call in flight. Plain Node: the integration tests (in the
 * extension host) and the UI tests (in the runner) both use it.
 */
export interface SpenderAgent {
  /** `spender.agent.ts` in the workspace; the agent is called `spender`, its sub-agent `researcher`. */
  readonly file: string;
  /** From now on the third model call waits. */
  close(): void;
  /** It goes on. */
  open(): void;
  remove(): void;
}

export const SPENDER_BUDGET = { usd: 0.002, tokens: 20_000, steps: 24, wallTimeMs: 120_000, warnAt: 0.5 } as const;
export const SPENDER_MODELS = ['openai:gpt-4o-mini', 'openai:gpt-4.1-nano'] as const;

export function spenderAgent(workspace: string): SpenderAgent {
  const file = join(workspace, 'spender.agent.ts');
  const gate = join(workspace, 'spender.gate');
  writeFileSync(
    file,
    `import { existsSync } from 'node:fs';
import { agentTool, defineAgent, defineTool, scriptedModel, z, type Model, type Script } from 'keel-agents';

/** A scripted model that passes for a priced one; its third call waits while the gate file exists. */
function priced(script: Script, name: string): Model {
  const scripted = scriptedModel(script, { name });
  return {
    provider: 'openai',
    name,
    generate: async (request, options) => {
      const turn = request.messages.filter((message) => message.role === 'assistant').length;
      while (turn === 2 && existsSync(${JSON.stringify(gate)})) await new Promise((resolve) => setTimeout(resolve, 50));
      return scripted.generate(request, options);
    },
  };
}

const slowLookup = defineTool({
  name: 'slow_lookup',
  description: 'Looks a fare table up (slowly).',
  args: z.object({ n: z.number() }),
  effect: 'none',
  run: async ({ n }) => {
    await new Promise((resolve) => setTimeout(resolve, 150));
    return 'fare table ' + n + ': ' + 'LIS 598 KL642 640 UA66 '.repeat(40);
  },
});

const researcher = defineAgent({
  name: 'researcher',
  instructions: 'Research what you are asked, briefly.',
  model: priced(({ input }) => 'Found three fares for: ' + input, 'gpt-4.1-nano'),
  maxOutputTokens: 200,
});

export default defineAgent({
  name: 'spender',
  instructions: 'Compare fares: look up, ask the researcher, look up again, then answer.',
  model: priced(
    ({ turn }) =>
      turn === 0
        ? { toolCalls: [{ name: 'slow_lookup', args: { n: 0 } }] }
        : turn === 1
          ? { toolCalls: [{ name: 'researcher', args: { task: 'fares NYC to LIS in December' } }] }
          : turn < 4
            ? { toolCalls: [{ name: 'slow_lookup', args: { n: turn } }] }
            : 'The cheapest fare is UA66 at $598.',
    'gpt-4o-mini',
  ),
  tools: [slowLookup, agentTool(researcher)],
  budget: ${JSON.stringify(SPENDER_BUDGET)},
  maxOutputTokens: 1000,
});
`,
  );
  return {
    file,
    close: () => writeFileSync(gate, ''),
    open: () => rmSync(gate, { force: true }),
    remove: () => {
      for (const path of [file, gate]) if (existsSync(path)) rmSync(path, { force: true });
    },
  };
}
