import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeelConfig } from '../../src/runtime/config/keelConfig';

/**
 * A project as a user has one, for the configuration tests: a package.json, a keel.config.ts
 * written from `config` (none when it is undefined) and an agent file.
 */

/** The agent's own model; the configuration's `model` replaces it. */
const AGENT_MODEL = 'agent-model';
/** A secret the probe tool reads: redaction patterns of the configuration hide it. */
const PROBE_SECRET = 'ZQX-4417-ALPHA';

/** The text of a keel.config.ts exporting `config`, as `npx keel init` would write it. */
function configFileText(config: KeelConfig): string {
  return `import { defineConfig } from 'keel-agents';\n\nexport default defineConfig(${JSON.stringify(config, null, 2)});\n`;
}

/** Writes the project's package.json and, when `config` is given, its keel.config.ts. Returns the root. */
export function writeProject(root: string, config?: KeelConfig): string {
  writeFileSync(join(root, 'package.json'), '{ "name": "config-project", "private": true }\n');
  if (config) writeFileSync(join(root, 'keel.config.ts'), configFileText(config));
  return root;
}

/**
 * `probe.agent.ts`: an agent with the model `openai:agent-model` (the local OpenAI-compatible
 * server) and two tools. `probe` says where it runs (the script of the Node process it runs in,
 * or an isolate) and returns PROBE_SECRET; `book` is unsafe and needs approval over $100.
 */
export function writeProbeAgent(root: string): string {
  const file = join(root, 'probe.agent.ts');
  writeFileSync(
    file,
    `import { approvals, defineAgent, defineTool, z } from 'keel-agents';

const probe = defineTool({
  name: 'probe',
  description: 'Says where it runs, and the key it read.',
  args: z.object({}),
  effect: 'none',
  run: () => 'ran in ' + (typeof process === 'object' ? process.argv[1].split(/[\\\\/]/).pop() : 'an isolate') + '; key ${PROBE_SECRET}',
});

const book = defineTool({
  name: 'book',
  description: 'Books and pays. Irreversible.',
  args: z.object({ amount: z.number() }),
  effect: 'unsafe',
  approval: approvals.amountOver(100),
  run: ({ amount }) => 'booked $' + amount,
});

export default defineAgent({
  name: 'probe',
  instructions: 'Use your tools, then answer.',
  model: 'openai:${AGENT_MODEL}',
  tools: [probe, book],
});
`,
  );
  return file;
}
