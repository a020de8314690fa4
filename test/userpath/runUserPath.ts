import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { describeError } from '../../src/runtime/errors';
import { resultsDirOf } from '../vscode/testWorkspace';
import { docCommands, installCommand, packTarball, readGettingStarted, removeWalk, shell, userEnv, walkFolders, type Step } from './userPath';
import { walkInEditor } from './userPathEditor';

/**
 * The `userpath` stage of npm test: packs keel-agents, then walks docs/getting-started.md as a new
 * user would (see userPath.ts) and checks what the page promises of each command; then opens the
 * project in code-server with the packed VSIX installed and checks it there (userPathEditor.ts).
 * Prints every command with its output and the time each took; exits 0 when every one did what it should.
 */

/** What the page says a command does, beyond exiting with 0. */
const PROMISES: readonly { readonly command: RegExp; readonly what: string; readonly holds: (output: string) => boolean }[] = [
  { command: /^npx keel run /, what: 'the run completes', holds: (output) => /^✓ completed after /m.test(output) },
  { command: /^npx keel test\b/, what: 'the golden cases pass', holds: (output) => /^[1-9]\d* passed, 0 failed$/m.test(output) },
  { command: /^npx tsc --noEmit\b/, what: 'the agent files type-check with 0 errors', holds: (output) => output.trim() === '' },
];

async function walk(): Promise<number> {
  const started = Date.now();
  const repoRoot = resolve(__dirname, '..', '..', '..');
  const commands = docCommands(readGettingStarted(repoRoot));
  const folders = walkFolders(repoRoot);
  const npmCache = process.env['npm_config_cache'] ?? join(homedir(), '.npm');
  const steps: Step[] = [];
  try {
    process.stdout.write(`$ npm pack --ignore-scripts   (in the repository, of the dist/ the build stage built, into ${folders.root})\n`);
    const packed = await packTarball(repoRoot, folders.root, process.env);
    steps.push(packed);
    const env = userEnv(folders.home, npmCache);
    process.stdout.write(`\nIn ${folders.project}, HOME=${folders.home}, npm cache ${npmCache}:\n`);
    for (const command of commands) {
      const actual = installCommand(command, packed.tarball);
      process.stdout.write(`\n$ ${command}${actual === command ? '' : `   (the packed tarball: ${actual})`}\n`);
      const step = await shell(actual, { cwd: folders.project, env, timeoutMs: 600_000 });
      steps.push(step);
      if (step.code !== 0) throw new Error(`\`${command}\` exited with code ${String(step.code)}.`);
      for (const promise of PROMISES.filter((candidate) => candidate.command.test(command))) {
        if (!promise.holds(step.output)) throw new Error(`\`${command}\` exited with 0, but not as the page says (${promise.what}).`);
      }
    }
    const resultsDir = resultsDirOf(repoRoot);
    mkdirSync(resultsDir, { recursive: true });
    process.stdout.write(`\nThe editor: ${folders.project} opened in code-server with the packed VSIX installed (screenshots in ${resultsDir}):\n`);
    steps.push(...(await walkInEditor({ repoRoot, project: folders.project, scratch: folders.root, resultsDir })));
  } catch (error) {
    process.stdout.write(`\nuserpath FAILED: ${describeError(error)}\n`);
    return 1;
  } finally {
    const removing = Date.now();
    removeWalk(folders.root);
    steps.push({ command: `rm -rf ${folders.root}   (the walk's folder)`, code: 0, output: '', ms: Date.now() - removing });
    process.stdout.write(`\n${timings(steps, Date.now() - started)}\n`);
  }
  return 0;
}

function timings(steps: readonly Step[], totalMs: number): string {
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  return `userpath: ${seconds(totalMs)} in all\n${steps.map((step) => `  ${seconds(step.ms).padStart(8)}  ${step.command}`).join('\n')}`;
}

walk().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`userpath: ${describeError(error)}\n`);
    process.exitCode = 1;
  },
);
