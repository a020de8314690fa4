import packageJson from '../../../package.json';

/**
 * The files of a new Keel project (`keel init`), as text: an agent on the scripted model with one
 * tool, its golden case, a tsconfig.json that type-checks it against the installed package, a
 * keel.config.ts and the editor's settings. Nothing here touches the disk, so the command line and
 * the editor write the same project.
 */

/** A file of the project: its path relative to the project folder (with `/`), and its text. */
export interface ProjectFile {
  readonly path: string;
  readonly content: string;
}

export const HELLO_AGENT = 'agents/hello.agent.ts';
export const HELLO_GOLDEN = 'agents/hello.golden.yaml';
/** What the agent is asked in the docs, the golden case and the hint `keel init` prints. */
export const HELLO_INPUT = 'Say hello to Ada';
/** What a project's .gitignore needs: the run database and the golden runs live there. */
export const GITIGNORE_ENTRY = '.keel/';

/** The extension's id in the marketplace, `publisher.name`, as `.vscode/extensions.json` recommends it. */
export const EXTENSION_ID = `${packageJson.publisher}.${packageJson.name}`;

/** The files `keel init` writes, package.json and the golden case's cassette (recorded once these exist) aside. */
export function projectFiles(): ProjectFile[] {
  return [
    { path: 'tsconfig.json', content: json(TSCONFIG) },
    { path: 'keel.config.ts', content: KEEL_CONFIG },
    { path: HELLO_AGENT, content: AGENT },
    { path: HELLO_GOLDEN, content: GOLDEN },
    { path: '.vscode/extensions.json', content: json({ recommendations: [EXTENSION_ID] }) },
    { path: '.vscode/launch.json', content: json({ version: '0.2.0', configurations: replayConfigurations() }) },
    { path: '.gitignore', content: `node_modules/\n${GITIGNORE_ENTRY}\n` },
  ];
}

/** A package.json for a folder that has none: the project's name from its folder, and keel-agents. */
export function packageJsonFor(folderName: string): ProjectFile {
  const name =
    folderName
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/^[._-]+|-+$/g, '') || 'keel-project';
  return {
    path: 'package.json',
    content: json({
      name,
      version: '0.1.0',
      private: true,
      scripts: { test: 'keel test' },
      dependencies: { [packageJson.name]: `^${packageJson.version}` },
    }),
  };
}

/** The name a project's package.json must list among its dependencies. */
export const PACKAGE_NAME = packageJson.name;

/** The debugger's own first configurations (package.json contributes.debuggers): replay a run, debug the open agent. */
function replayConfigurations(): unknown[] {
  const keel = packageJson.contributes.debuggers.find((debuggerEntry) => debuggerEntry.type === 'keel');
  return keel ? [...keel.initialConfigurations] : [];
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/**
 * Type-checks the agent files and keel.config.ts against the installed keel-agents (its `exports`
 * and declarations need Node16/NodeNext resolution), as `npx tsc --noEmit` and the editor do.
 */
const TSCONFIG = {
  compilerOptions: {
    target: 'ES2023',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    noEmit: true,
    skipLibCheck: true,
  },
  include: ['agents', 'keel.config.ts'],
};

const KEEL_CONFIG = `import { defineConfig } from 'keel-agents';

// Keel's settings for this project. Every key is optional; a flag, an environment variable or a
// VS Code setting overrides it. \`npx keel config\` shows every value and where it came from.
export default defineConfig({
  // Where runs are recorded: an SQLite file (the default) or a postgres:// URL.
  // database: '.keel/keel.db',

  // Run every agent with this model instead of its own (OPENAI_API_KEY, or OPENAI_BASE_URL for a local server).
  // model: 'openai:gpt-4o-mini',

  // Prices of models Keel does not know, in USD per million tokens.
  // prices: { 'my-model': { inputPerMTok: 0.5, outputPerMTok: 1.5 } },

  budget: {
    // Limits every run gets: dollars, tokens, steps, time.
    // run: { usd: 0.5, steps: 20 },
  },
});
`;

const AGENT = `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

/** A tool: the model asks for it with arguments that match \`args\`, and reads what it returns. */
const greeting = defineTool({
  name: 'greeting',
  description: 'The greeting to use for a person, by their name.',
  args: z.object({ name: z.string().min(1) }),
  // What a call does to the world: 'none' (it only reads), 'idempotent' (safe to repeat with its key)
  // or 'unsafe' (Keel never repeats it blindly after a crash).
  effect: 'none',
  run: ({ name }) => \`Hello, \${name}!\`,
});

/** The person to greet: the last word of the request ("Say hello to Ada" greets Ada). */
function personIn(input: string): string {
  return input.trim().split(/\\s+/).at(-1)?.replace(/[^\\p{L}\\p{N}'-]/gu, '') || 'there';
}

export default defineAgent({
  name: 'hello',
  instructions: 'Greet the person the user names. Ask the greeting tool how to greet them, then answer with its greeting.',
  // A scripted model plays the model's part offline, with no key. Run this agent with a real one
  // with --model openai:gpt-4o-mini (and OPENAI_API_KEY), or put that string here.
  model: scriptedModel(({ turn, input, toolResults }) =>
    turn === 0 ? { toolCalls: [{ name: 'greeting', args: { name: personIn(input) } }] } : (toolResults[0]?.content ?? 'Hello!'),
  ),
  tools: [greeting],
  maxSteps: 4,
});
`;

const GOLDEN = `# What the hello agent must keep doing. \`npx keel test\` replays these cases offline from the
# cassette in __cassettes__/; \`npx keel record agents/hello.golden.yaml\` records it again (with the
# agent's model, or --model). See docs/testing.md of keel-agents.
version: 1
agent: ./hello.agent.ts

cases:
  - name: greets the person named
    tags: [happy]
    input: ${HELLO_INPUT}
    expect:
      answer:
        contains: [Hello, Ada]
      tools:
        called: [greeting]
        args:
          - tool: greeting
            args: { name: Ada }
      maxSteps: 3
`;
