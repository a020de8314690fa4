import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import packageJson from '../../package.json';
import { KEEL, describeOutcome } from '../support/keelCli';
import { runNode, type Finished } from '../support/processes';
import { useTempDirs } from '../support/tempDir';

const SCAFFOLD = [
  '.gitignore',
  '.vscode/extensions.json',
  '.vscode/launch.json',
  'agents/__cassettes__/hello.golden.cassette.json',
  'agents/hello.agent.ts',
  'agents/hello.golden.yaml',
  'keel.config.ts',
  'package.json',
  'tsconfig.json',
];

/** Every file under `dir`, relative to it, sorted. */
function filesUnder(dir: string): string[] {
  const found: string[] = [];
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else found.push(relative(dir, path));
    }
  };
  walk(dir);
  return found.sort();
}

/** Each file's text and modification time, to show that nothing changed. */
function snapshot(dir: string): Map<string, string> {
  return new Map(filesUnder(dir).map((file) => [file, `${statSync(join(dir, file)).mtimeMs} ${readFileSync(join(dir, file), 'utf8')}`]));
}

describe('keel init (the built CLI in a new folder, then keel run and keel test there)', function () {
  this.timeout(60_000);
  const tempDir = useTempDirs();

  const keel = (cwd: string, args: readonly string[]): Promise<Finished> => runNode(KEEL, args, { cwd, timeoutMs: 45_000 });

  it('writes a project whose agent runs and whose golden case replays offline at once', async () => {
    const parent = tempDir('keel-init-');
    const made = await keel(parent, ['init', 'My Agents']);
    assert.equal(made.code, 0, describeOutcome(made));
    const project = join(parent, 'My Agents');
    assert.deepEqual(filesUnder(project), SCAFFOLD);
    for (const file of SCAFFOLD) assert.match(made.stdout, new RegExp(`\\+ ${file.replace(/[.]/g, '\\.')}\\n`), `keel init lists ${file}`);
    assert.match(made.stdout, /Next:\n {2}cd My Agents\n {2}npm install\n {2}npx keel run agents\/hello\.agent\.ts --input "Say hello to Ada"\n {2}npx keel test\n/);

    const manifest = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as { name: string; dependencies: Record<string, string> };
    assert.equal(manifest.name, 'my-agents');
    assert.deepEqual(manifest.dependencies, { 'keel-agents': `^${packageJson.version}` });
    const extensions = JSON.parse(readFileSync(join(project, '.vscode/extensions.json'), 'utf8')) as { recommendations: string[] };
    assert.deepEqual(extensions.recommendations, [`${packageJson.publisher}.${packageJson.name}`]);
    const launch = JSON.parse(readFileSync(join(project, '.vscode/launch.json'), 'utf8')) as { configurations: Record<string, unknown>[] };
    assert.ok(
      launch.configurations.some((configuration) => configuration['type'] === 'keel' && configuration['request'] === 'launch' && configuration['runId'] === '${command:keel.pickRunId}'),
      'launch.json replays a run the person picks',
    );
    assert.match(readFileSync(join(project, '.gitignore'), 'utf8'), /^\.keel\/$/m);
    const tsconfig = JSON.parse(readFileSync(join(project, 'tsconfig.json'), 'utf8')) as { compilerOptions: Record<string, unknown>; include: string[] };
    assert.equal(tsconfig.compilerOptions['moduleResolution'], 'NodeNext', "resolution that reads keel-agents' exports and types");
    assert.deepEqual(tsconfig.include, ['agents', 'keel.config.ts']);

    const ran = await keel(project, ['run', 'agents/hello.agent.ts', '--input', 'Say hello to Ada']);
    assert.equal(ran.code, 0, describeOutcome(ran));
    assert.match(ran.stdout, /2 tool {2}greeting → Hello, Ada!/);
    assert.match(ran.stdout, /✓ completed after .* · 3 steps/);
    assert.match(ran.stderr, /created a new run database at .*My Agents\/\.keel\/keel\.db/);

    const tested = await keel(project, ['test']);
    assert.equal(tested.code, 0, describeOutcome(tested));
    assert.match(tested.stdout, /agents\/hello\.golden\.yaml \(cassette\)\n {2}✓ greets the person named \[happy\]/);
    assert.match(tested.stdout, /\n1 passed, 0 failed\n$/);

    const config = await keel(project, ['config', '--json']);
    assert.equal(config.code, 0, describeOutcome(config));
    assert.equal((JSON.parse(config.stdout) as { file: string }).file, join(project, 'keel.config.ts'), 'keel.config.ts loads as the project configuration');
  });

  it('writes nothing when a file it would write exists, and names every such file', async () => {
    const project = tempDir('keel-init-');
    mkdirSync(join(project, 'agents'));
    writeFileSync(join(project, 'agents', 'hello.agent.ts'), '// mine\n');
    writeFileSync(join(project, 'tsconfig.json'), '{}\n');
    const before = snapshot(project);
    const refused = await keel(project, ['init']);
    assert.equal(refused.code, 1, describeOutcome(refused));
    assert.equal(refused.stdout, '');
    assert.equal(
      refused.stderr,
      `keel: ${project} already has tsconfig.json, agents/hello.agent.ts; keel init never overwrites a file, so it wrote nothing. ` +
        'Move those aside, or give keel init a new folder: keel init <folder>.\n',
    );
    assert.deepEqual(snapshot(project), before);
  });

  it('leaves an existing package.json and .gitignore as they are, and says what they lack', async () => {
    const project = tempDir('keel-init-');
    const manifest = '{\n  "name": "shop",\n  "version": "1.0.0"\n}\n';
    writeFileSync(join(project, 'package.json'), manifest);
    writeFileSync(join(project, '.gitignore'), 'node_modules\n');
    const made = await keel(project, ['init']);
    assert.equal(made.code, 0, describeOutcome(made));
    assert.equal(readFileSync(join(project, 'package.json'), 'utf8'), manifest);
    assert.equal(readFileSync(join(project, '.gitignore'), 'utf8'), 'node_modules\n');
    assert.match(made.stdout, /! package\.json does not list keel-agents: add it with npm install keel-agents\n/);
    assert.match(made.stdout, /! \.gitignore does not ignore Keel's run database: add a line \.keel\/\n/);
    assert.doesNotMatch(made.stdout, /npm install\n/, 'no bare npm install: package.json was not written here');
    assert.ok(existsSync(join(project, 'agents', '__cassettes__', 'hello.golden.cassette.json')));

    const listed = join(tempDir('keel-init-'), 'listed');
    mkdirSync(listed);
    writeFileSync(join(listed, 'package.json'), JSON.stringify({ name: 'listed', devDependencies: { 'keel-agents': 'file:../keel.tgz' } }));
    writeFileSync(join(listed, '.gitignore'), '/.keel\n');
    const quiet = await keel(listed, ['init']);
    assert.equal(quiet.code, 0, describeOutcome(quiet));
    assert.doesNotMatch(quiet.stdout, /^!/m, 'nothing to add when package.json lists keel-agents and .gitignore ignores .keel');
  });

  it('refuses a file as its folder, and more than one folder, in one sentence', async () => {
    const cwd = tempDir('keel-init-');
    writeFileSync(join(cwd, 'notes.txt'), 'hello\n');
    const file = await keel(cwd, ['init', 'notes.txt']);
    assert.equal(file.code, 1, describeOutcome(file));
    assert.equal(file.stderr, `keel: ${join(cwd, 'notes.txt')} is a file; keel init needs a folder.\n`);
    const two = await keel(cwd, ['init', 'a', 'b']);
    assert.equal(two.code, 2, describeOutcome(two));
    assert.match(two.stderr, /^keel: keel init takes at most one folder: keel init \[folder\]\n/);
    assert.deepEqual(filesUnder(cwd), ['notes.txt']);
  });
});
