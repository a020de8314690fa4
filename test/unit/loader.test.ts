import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadAgentFile } from '../../src/runtime/agent/loader';
import { AgentLoadError } from '../../src/runtime/errors';

const HEADER = `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';\n`;

describe('loadAgentFile', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'keel-loader-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function write(name: string, text: string): string {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  }

  async function loadError(file: string): Promise<AgentLoadError> {
    try {
      await loadAgentFile(file);
    } catch (error) {
      assert.ok(error instanceof AgentLoadError, `expected an AgentLoadError, got ${String(error)}`);
      return error;
    }
    assert.fail('the agent file loaded');
  }

  it('loads the example travel agent with its tools', async () => {
    const { agent, file } = await loadAgentFile('examples/travel/travel.agent.ts');
    assert.equal(file, resolve('examples/travel/travel.agent.ts'));
    assert.equal(agent.name, 'travel');
    assert.deepEqual([...agent.tools.keys()], ['search_flights', 'book_flight']);
    assert.equal(agent.tools.get('book_flight')?.effect, 'unsafe');
  });

  it('bundles relative imports and gives agent files the runtime\'s own zod', async () => {
    write('tools.ts', `import { z } from 'zod';\nexport const Args = z.object({ q: z.string() });\n`);
    const file = write(
      'search.agent.ts',
      `${HEADER}import { Args } from './tools';\nimport { join } from 'node:path';\n` +
        `const search = defineTool({ name: 'search', description: join('a', 'b'), args: Args, effect: 'none', run: ({ q }) => q });\n` +
        `export default defineAgent({ name: 'search', instructions: 'Search.', model: scriptedModel(['ok']), tools: [search] });\n`,
    );
    const { agent } = await loadAgentFile(file);
    assert.equal(agent.tools.get('search')?.description, join('a', 'b'));
  });

  it('takes a single named export when there is no default export', async () => {
    const file = write('named.agent.ts', `${HEADER}export const helper = defineAgent({ name: 'named', instructions: '', model: 'openai:gpt-4o' });\n`);
    assert.equal((await loadAgentFile(file)).agent.name, 'named');
  });

  it('points at the line and column of a syntax error', async () => {
    const file = write('broken.agent.ts', `${HEADER}\nexport default defineAgent({\n  name: 'broken'\n  instructions: 'x',\n});\n`);
    const error = await loadError(file);
    assert.equal(error.line, 5);
    assert.equal(error.column, 3);
    assert.match(error.message, /broken\.agent\.ts:5:3: Expected "}" but found "instructions"/);
  });

  it('points at the defineTool call that is malformed, in the user\'s file', async () => {
    const file = write(
      'bad-tool.agent.ts',
      `${HEADER}\n\nconst tool = defineTool({\n  name: 'pay', description: 'Pay.', args: z.object({}), effect: 'sometimes' as 'none', run: () => 1 });\n` +
        `export default defineAgent({ name: 'x', instructions: '', model: 'openai:gpt-4o', tools: [tool] });\n`,
    );
    const error = await loadError(file);
    assert.equal(error.file, file);
    assert.equal(error.line, 4);
    assert.match(error.message, /bad-tool\.agent\.ts:4:\d+: defineTool\("pay"\): `effect` must be 'none', 'idempotent' or 'unsafe'/);
  });

  it('reports an exception thrown while the file loads, with its line in a file it imports', async () => {
    write('config.ts', `export function readConfig(): string {\n  throw new TypeError('KEY is not set');\n}\n`);
    const file = write(
      'throws.agent.ts',
      `${HEADER}import { readConfig } from './config';\nconst key = readConfig();\n` +
        `export default defineAgent({ name: key, instructions: '', model: 'openai:gpt-4o' });\n`,
    );
    const error = await loadError(file);
    assert.equal(error.file, join(dir, 'config.ts'));
    assert.equal(error.line, 2);
    assert.match(error.message, /config\.ts:2:\d+: loading the agent file threw TypeError: KEY is not set$/);
  });

  it('says how to export an agent when the file exports none', async () => {
    const file = write('empty.agent.ts', `export const answer = 42;\n`);
    assert.match((await loadError(file)).message, /empty\.agent\.ts does not export an agent: add `export default defineAgent\(\{ \.\.\. \}\)`/);
  });

  it('asks which agent to run when a file exports several and no default', async () => {
    const file = write(
      'two.agent.ts',
      `${HEADER}export const a = defineAgent({ name: 'a', instructions: '', model: 'openai:x' });\n` +
        `export const b = defineAgent({ name: 'b', instructions: '', model: 'openai:x' });\n`,
    );
    assert.match((await loadError(file)).message, /exports several agents \(a, b\); make the one to run the default export/);
  });

  it('names a missing file', async () => {
    assert.match((await loadError(join(dir, 'nope.agent.ts'))).message, /^The agent file was not found: .*nope\.agent\.ts$/);
  });

  it('names an import that cannot be found', async () => {
    const file = write('missing-import.agent.ts', `${HEADER}import { x } from './nowhere';\nexport default x;\n`);
    const error = await loadError(file);
    assert.equal(error.line, 2);
    assert.match(error.message, /Could not resolve "\.\/nowhere"/);
  });
});
