import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ESLint } from 'eslint';
import { REPO_ROOT } from '../support/processes';
import { useTempDirs } from '../support/tempDir';

/**
 * The repository's own lint configuration, run through ESLint's API on small source texts: the
 * layering rules fire where a front end reaches into the runtime, and import cycles are found
 * when they are made of type imports alone.
 */

const LAYER_RULES = new Set(['import-x/no-restricted-paths', 'keel/no-cycle']);

async function repoLinter(): Promise<ESLint> {
  const { ESLint } = await import('eslint');
  // Only the layering rules, parsed without type information: the rules under test need none.
  return new ESLint({
    cwd: REPO_ROOT,
    overrideConfig: { languageOptions: { parserOptions: { projectService: false, project: null } } },
    ruleFilter: ({ ruleId }) => LAYER_RULES.has(ruleId),
  });
}

/** What the repository's lint says of `text` as if it were the file at `path`: rule and message of each problem. */
async function lint(eslint: ESLint, path: string, text: string): Promise<{ ruleId: string | null; message: string }[]> {
  const [result] = await eslint.lintText(text, { filePath: join(REPO_ROOT, path) });
  return (result?.messages ?? []).map(({ ruleId, message }) => ({ ruleId, message }));
}

describe('lint rules of the repository (eslint.config.mjs)', function () {
  this.timeout(60_000);
  const tempDir = useTempDirs();
  let eslint: ESLint;
  before(async () => {
    eslint = await repoLinter();
  });

  it('refuses a deep runtime import from the extension, and allows the runtime’s public entry', async () => {
    const deep = await lint(eslint, 'src/extension/main.ts', "import type { RunRecord } from '../runtime/store/checkpointStore';\nexport type Shown = RunRecord;\n");
    assert.equal(deep.length, 1, JSON.stringify(deep));
    assert.equal(deep[0]?.ruleId, 'import-x/no-restricted-paths');
    assert.match(deep[0]?.message ?? '', /src\/runtime\/index\.ts/);

    assert.deepEqual(await lint(eslint, 'src/extension/main.ts', "import type { RunRecord } from '../runtime/index';\nexport type Shown = RunRecord;\n"), []);
  });

  it('refuses any runtime import from a webview, the protocol or src/shared, the public entry too', async () => {
    for (const [path, specifier] of [
      ['webview/run/main.ts', '../../src/runtime/index'],
      ['webview/timeline/model/tree.ts', '../../../src/runtime/trace/span'],
      ['src/protocol/records.ts', '../runtime/store/checkpointStore'],
      ['src/shared/format.ts', '../runtime/index'],
    ] as const) {
      const problems = await lint(eslint, path, `import type { RunRecord } from '${specifier}';\nexport type Shown = RunRecord;\n`);
      assert.ok(
        problems.some((problem) => problem.ruleId === 'import-x/no-restricted-paths' && /never the runtime/.test(problem.message)),
        `${path} importing ${specifier}: ${JSON.stringify(problems)}`,
      );
    }
  });

  it('keeps src/shared below everything: it imports neither the protocol nor the editor', async () => {
    const problems = await lint(eslint, 'src/shared/format.ts', "import type { Run } from '../protocol/records';\nexport type Shown = Run;\n");
    assert.deepEqual(problems, [{ ruleId: 'import-x/no-restricted-paths', message: 'Unexpected path "../protocol/records" imported in restricted zone. src/shared imports only src/shared.' }]);
  });

  it('finds an import cycle made of type imports alone, and names its files', async () => {
    const problems = await lint(eslint, 'src/runtime/guard/config.ts', "import type { ContentChannel } from '../memory/channel';\nexport type Kept = ContentChannel;\n");
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.equal(problems[0]?.ruleId, 'keel/no-cycle');
    assert.match(problems[0]?.message ?? '', /src\/runtime\/guard\/config\.ts -> src\/runtime\/memory\/channel\.ts -> src\/runtime\/guard\/config\.ts/);
  });

  it('follows a longer cycle through files on disk, and stays quiet once it is broken', async () => {
    const dir = tempDir('keel-lint-cycle-');
    writeFileSync(join(dir, 'a.ts'), "import type { C } from './c';\nexport type A = C | 'a';\n");
    writeFileSync(join(dir, 'b.ts'), "import type { A } from './a';\nexport type B = A | 'b';\n");
    writeFileSync(join(dir, 'c.ts'), "export type C = 'c';\n");
    const { ESLint } = await import('eslint');
    const { default: importCycles } = (await import(join(REPO_ROOT, 'scripts', 'lint', 'importCycles.mjs'))) as { default: NonNullable<ESLint.Plugin> };
    const { parser } = await import('typescript-eslint');
    const isolated = new ESLint({
      cwd: dir,
      overrideConfigFile: true,
      overrideConfig: { files: ['**/*.ts'], languageOptions: { parser }, plugins: { keel: importCycles }, rules: { 'keel/no-cycle': 'error' } },
    });
    const lintC = async (text: string) => (await isolated.lintText(text, { filePath: join(dir, 'c.ts') }))[0]?.messages ?? [];

    const closing = await lintC("import type { B } from './b';\nexport type C = 'c' | B;\n");
    assert.equal(closing.length, 1, JSON.stringify(closing));
    assert.equal(closing[0]?.message, 'Import cycle (type-only imports count): c.ts -> b.ts -> a.ts -> c.ts. Move what both sides need into a module of its own.');

    assert.deepEqual(await lintC("export type C = 'c';\n"), []);
  });
});
