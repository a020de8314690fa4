import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describeError } from '../../src/runtime/errors';

/** What the tests inside VS Code learn from the runner, through a file in the workspace. */
export interface TestContext {
  /** The Keel repository (for bin/keel.js and the example agents). */
  readonly repoRoot: string;
  /** Where a stage writes `<stage>.json` with its counts. */
  readonly resultsDir: string;
}

export interface StageResult {
  readonly stage: string;
  readonly passed: number;
  readonly failed: number;
}

export interface TestWorkspace {
  readonly path: string;
  /** The example agent inside the workspace. */
  readonly agentFile: string;
  dispose(): void;
}

export const CONTEXT_FILE = 'keel-test.json';
export const EXAMPLE_AGENT = join('examples', 'travel', 'travel.agent.ts');
export const EXAMPLE_GOLDEN = join('examples', 'travel', 'travel.golden.yaml');
export const EXAMPLE_CASSETTE = join('examples', 'travel', '__cassettes__', 'travel.golden.cassette.json');
export const EXAMPLE_INPUT = 'Book the cheapest flight from NYC to LIS on 2026-12-10';
export const EXAMPLE_RESULT = 'Booked UA66 for $598. Confirmation KEEL-UA66-30.';

/** The repository root, from a compiled file under out/test/<folder>/. */
export function repoRootFrom(compiledDir: string): string {
  return resolve(compiledDir, '..', '..', '..');
}

/** Fails with what to run when the runners' inputs (relative to the repository) have not been built. */
export function requireBuilt(repoRoot: string, files: readonly string[]): void {
  const missing = files.filter((file) => !existsSync(join(repoRoot, file)));
  if (missing.length > 0) {
    throw new Error(`Missing ${missing.join(', ')}: run \`npm run build && npx tsc -p .\` first.`);
  }
}

export function resultsDirOf(repoRoot: string): string {
  return join(repoRoot, 'test-results');
}

/**
 * A fresh folder holding a copy of the example agent (the runtime resolves its `keel-agents`
 * import itself, so no node_modules) and the context file the tests inside VS Code read.
 */
export function prepareWorkspace(repoRoot: string): TestWorkspace {
  const path = mkdtempSync(join(tmpdir(), 'keel-ws-'));
  try {
    const agentFile = join(path, 'travel.agent.ts');
    copyFileSync(join(repoRoot, EXAMPLE_AGENT), agentFile);
    // The example's golden cases and their cassette, for the Test Explorer.
    copyFileSync(join(repoRoot, EXAMPLE_GOLDEN), join(path, 'travel.golden.yaml'));
    mkdirSync(join(path, '__cassettes__'));
    copyFileSync(join(repoRoot, EXAMPLE_CASSETTE), join(path, '__cassettes__', 'travel.golden.cassette.json'));
    const context: TestContext = { repoRoot, resultsDir: resultsDirOf(repoRoot) };
    writeFileSync(join(path, CONTEXT_FILE), `${JSON.stringify(context, null, 2)}\n`);
    return { path, agentFile, dispose: () => rmSync(path, { recursive: true, force: true }) };
  } catch (error) {
    rmSync(path, { recursive: true, force: true });
    throw error;
  }
}

export function readTestContext(workspacePath: string): TestContext {
  const file = join(workspacePath, CONTEXT_FILE);
  let parsed: Partial<TestContext>;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<TestContext>;
  } catch (error) {
    throw new Error(`The test workspace has no readable ${CONTEXT_FILE} (${file}); start the tests through a runner in test/vscode or test/desktop.`, {
      cause: error,
    });
  }
  if (typeof parsed.repoRoot !== 'string' || typeof parsed.resultsDir !== 'string') {
    throw new Error(`${file} must name repoRoot and resultsDir.`);
  }
  return { repoRoot: parsed.repoRoot, resultsDir: parsed.resultsDir };
}

export function stageResultFile(resultsDir: string, stage: string): string {
  return join(resultsDir, `${stage}.json`);
}

export function writeStageResult(resultsDir: string, result: StageResult): void {
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(stageResultFile(resultsDir, result.stage), `${JSON.stringify(result)}\n`);
}

export function readStageResult(resultsDir: string, stage: string): StageResult | undefined {
  try {
    const parsed = JSON.parse(readFileSync(stageResultFile(resultsDir, stage), 'utf8')) as Partial<StageResult>;
    if (typeof parsed.passed !== 'number' || typeof parsed.failed !== 'number') return undefined;
    return { stage, passed: parsed.passed, failed: parsed.failed };
  } catch {
    return undefined;
  }
}

export function clearStageResult(resultsDir: string, stage: string): void {
  rmSync(stageResultFile(resultsDir, stage), { force: true });
}

/** Runs a stage's runner as the main module: its exit code, or a failure counted and explained. */
export function runStageAsMain(stage: string, run: () => Promise<number>): void {
  run().then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`${stage}: ${describeError(error)}\n`);
      writeStageResult(resultsDirOf(repoRootFrom(__dirname)), { stage, passed: 0, failed: 1 });
      process.exitCode = 1;
    },
  );
}
