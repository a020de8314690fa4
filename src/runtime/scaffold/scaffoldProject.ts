import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
import { KeelError, describeError } from '../errors';
import { cassettePathFor } from '../golden/cassette';
import { runGoldenFile } from '../golden/runGolden';
import { Host } from '../host/host';
import { openSqliteStore } from '../store/sqliteStore';
import { GITIGNORE_ENTRY, HELLO_GOLDEN, PACKAGE_NAME, packageJsonFor, projectFiles, type ProjectFile } from './projectFiles';

/** `keel init` found files it would have written: it wrote nothing. */
export class ProjectExistsError extends KeelError {
  constructor(
    readonly folder: string,
    readonly existing: readonly string[],
  ) {
    super(
      `${folder} already has ${existing.join(', ')}; keel init never overwrites a file, so it wrote nothing. ` +
        'Move those aside, or give keel init a new folder: keel init <folder>.',
      { context: { folder, existing } },
    );
  }
}

export interface ScaffoldResult {
  /** The files written, relative to the folder, in the order written (the cassette last). */
  readonly written: readonly string[];
  /** What the person still has to do to files that existed and were left alone (package.json, .gitignore). */
  readonly todo: readonly string[];
  /** Whether package.json was written here, so its dependencies still need `npm install`. */
  readonly wrotePackageJson: boolean;
  /** Whether the golden case's cassette was recorded (not when the caller may run nothing of the folder). */
  readonly recorded: boolean;
}

export interface ScaffoldOptions {
  /**
   * Whether the new golden case may be run to record its cassette: false in a folder the editor
   * does not trust yet, where Keel writes the files but runs nothing; `todo` then says how to record it.
   */
  readonly record?: boolean;
}

/**
 * Writes a new project into `folder` (made if missing) and records its golden case's cassette by
 * running the case on the scripted model, as `keel record` does, so `keel test` replays it at once
 * (unless `options.record` is false). Both `keel init` and the editor's Keel: Create Agent… write
 * projects with it. Never overwrites: when any file it would write exists, it throws ProjectExistsError naming them
 * and writes nothing. package.json and .gitignore are common in a folder already: they are left as
 * they are, and `todo` says what to add to them.
 */
export async function scaffoldProject(folder: string, options: ScaffoldOptions = {}): Promise<ScaffoldResult> {
  if (existsSync(folder) && !statSync(folder).isDirectory()) throw new KeelError(`${folder} is a file; keel init needs a folder.`);
  const files = projectFiles();
  const packageJson = join(folder, 'package.json');
  const hasPackageJson = existsSync(packageJson);
  const gitignore = join(folder, '.gitignore');
  const hasGitignore = existsSync(gitignore);
  const planned = files.filter((file) => !(file.path === '.gitignore' && hasGitignore));
  const cassette = cassettePathFor(join(folder, HELLO_GOLDEN));
  const existing = [...planned.map((file) => file.path), relativeTo(folder, cassette)].filter((path) => existsSync(join(folder, path)));
  if (existing.length > 0) throw new ProjectExistsError(folder, existing);

  const todo: string[] = [];
  if (hasPackageJson) {
    if (!dependsOnKeel(packageJson)) todo.push(`package.json does not list ${PACKAGE_NAME}: add it with npm install ${PACKAGE_NAME}`);
  } else {
    planned.unshift(packageJsonFor(basename(folder)));
  }
  if (hasGitignore && !readFileSync(gitignore, 'utf8').split(/\r?\n/).some((line) => /^\/?\.keel\/?$/.test(line.trim()))) {
    todo.push(`.gitignore does not ignore Keel's run database: add a line ${GITIGNORE_ENTRY}`);
  }
  const written = planned.map((file) => write(folder, file));
  const record = options.record !== false;
  if (record) written.push(relativeTo(folder, await recordCassette(folder)));
  else todo.push(`${HELLO_GOLDEN} has no cassette yet, so keel test cannot replay it: once you trust this folder, record it with npx keel record ${HELLO_GOLDEN}`);
  return { written, todo, wrotePackageJson: !hasPackageJson, recorded: record };
}

function write(folder: string, file: ProjectFile): string {
  const path = join(folder, file.path);
  mkdirSync(dirname(path), { recursive: true });
  // `wx`: a file that appeared since the check is not overwritten either.
  writeFileSync(path, file.content, { flag: 'wx' });
  return file.path;
}

/** Runs the new golden case on its scripted model and records it, through the host the project now configures. */
async function recordCassette(folder: string): Promise<string> {
  const golden = join(folder, HELLO_GOLDEN);
  const store = openSqliteStore(':memory:');
  try {
    const host = await Host.open({ cwd: folder, store });
    try {
      const report = await runGoldenFile(golden, { store, mode: 'record', runtime: host.runtime });
      const failed = report.error?.message ?? report.cases.flatMap((entry) => entry.runs).find((run) => run.status !== 'passed')?.error;
      if (failed !== undefined || report.cases.some((entry) => entry.status !== 'passed')) {
        throw new KeelError(`The files are written, but recording ${HELLO_GOLDEN} failed: ${failed ?? 'its case did not pass'}.`);
      }
      return report.cassette;
    } finally {
      await host.close();
    }
  } catch (error) {
    if (error instanceof KeelError) throw error;
    throw new KeelError(`The files are written, but recording ${HELLO_GOLDEN} failed: ${describeError(error)}`, { cause: error });
  } finally {
    await store.close();
  }
}

function dependsOnKeel(path: string): boolean {
  try {
    const manifest = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    return ['dependencies', 'devDependencies', 'optionalDependencies'].some((field) => {
      const deps = manifest[field];
      return typeof deps === 'object' && deps !== null && PACKAGE_NAME in deps;
    });
  } catch {
    return false;
  }
}

function relativeTo(folder: string, path: string): string {
  return relative(folder, path).split(sep).join('/');
}
