/** An agent file that pays, calls a tool that does not exist, and claims success: the detectors flag ignored_tool_error at step 4. Its agent is `payer`. */
export const FLAGGED_AGENT = `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';
const pay = defineTool({ name: 'pay', description: 'Pays.', args: z.object({ amount: z.number() }), effect: 'idempotent', run: ({ amount }) => 'paid ' + amount });
export default defineAgent({
  name: 'payer',
  instructions: 'Pay.',
  model: scriptedModel([{ toolCalls: [{ name: 'pay', args: { amount: 640 } }] }, { toolCalls: [{ name: 'nope', args: {} }] }, 'Done, paid.']),
  tools: [pay],
});
`;
