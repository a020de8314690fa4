import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, relative } from 'node:path';

/**
 * The user's path: what docs/getting-started.md tells a new user to type, done literally in a new
 * folder outside the repository, with a fresh HOME, against the tarball `npm pack` makes. The
 * commands are read from the page's fenced blocks that follow a `<!-- userpath -->` comment, so
 * the stage follows the page when it changes. The one substitution: `npm install keel-agents`
 * installs the packed tarball, as it would the published package.
 */

export const GETTING_STARTED = join('docs', 'getting-started.md');
const MARKER = /^<!--\s*userpath\b.*-->\s*$/;
const INSTALL = /^npm install keel-agents$/;

/** The commands of every marked block of the page, in order: a block's lines, comments and blank lines left out. */
export function docCommands(markdown: string, page = GETTING_STARTED): string[] {
  const lines = markdown.split('\n');
  const commands: string[] = [];
  let blocks = 0;
  for (let index = 0; index < lines.length; index++) {
    if (!MARKER.test(lines[index] ?? '')) continue;
    const fence = /^```(sh|bash|shell)?\s*$/.exec(lines[index + 1] ?? '');
    if (!fence) throw new Error(`${page}:${index + 1}: a <!-- userpath --> comment must come just before a \`\`\`sh block.`);
    blocks += 1;
    for (index += 2; index < lines.length && !/^```\s*$/.test(lines[index] ?? ''); index++) {
      const line = (lines[index] ?? '').trim();
      if (line !== '' && !line.startsWith('#')) commands.push(line);
    }
  }
  if (blocks === 0) throw new Error(`${page} has no <!-- userpath --> block: the user's path has nothing to follow.`);
  if (commands.filter((command) => INSTALL.test(command)).length !== 1) {
    throw new Error(`${page}'s userpath blocks must install the package once, with \`npm install keel-agents\`: the stage installs the packed tarball there.`);
  }
  return commands;
}

/** What one command did. */
export interface Step {
  readonly command: string;
  readonly code: number | null;
  readonly output: string;
  readonly ms: number;
}

/** Runs a command line in a shell, its output (stdout and stderr together) collected and echoed as it comes. */
export function shell(command: string, options: { readonly cwd: string; readonly env: NodeJS.ProcessEnv; readonly timeoutMs: number }): Promise<Step> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    const collect = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      output += text;
      process.stdout.write(text.replace(/^(?=.)/gm, '    '));
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      reject(new Error(`\`${command}\` did not finish within ${options.timeoutMs / 1000} s.`));
    }, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ command, code, output, ms: Date.now() - started });
    });
  });
}

/**
 * The environment of a new user: a fresh HOME (and no XDG folders); none of the variables npm sets for the script that
 * runs this (`npm test` points npm_config_local_prefix at the repository) nor of Keel's; no
 * node_modules/.bin of the repository on PATH, so `npx keel` and `npx tsc` are the project's own.
 * The npm cache is the one given (packages come from there when they can), so the walk is quick.
 */
export function userEnv(home: string, npmCache: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(npm_|INIT_CWD$|KEEL_|OPENAI_|XDG_|NODE_OPTIONS$|NO_COLOR$|FORCE_COLOR$)/i.test(key)) continue;
    env[key] = value;
  }
  const path = (process.env['PATH'] ?? '').split(delimiter).filter((entry) => !/node_modules[\\/]\.bin|node-gyp-bin/.test(entry));
  return {
    ...env,
    HOME: home,
    PATH: path.join(delimiter),
    npm_config_cache: npmCache,
    npm_config_prefer_offline: 'true',
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    // What this machine needs to reach the registry and build native modules, if it set it.
    ...pick(process.env, ['npm_config_cafile', 'npm_config_nodedir', 'npm_config_registry']),
  };
}

function pick(env: NodeJS.ProcessEnv, names: readonly string[]): NodeJS.ProcessEnv {
  return Object.fromEntries(names.filter((name) => env[name] !== undefined).map((name) => [name, env[name]]));
}

/**
 * Packs keel-agents into `into` as `npm pack` does, from the dist/ the build stage has just built
 * (the same `npm run build` that npm pack's prepack runs, so it is not run twice); the tarball's path.
 */
export async function packTarball(repoRoot: string, into: string, env: NodeJS.ProcessEnv): Promise<Step & { readonly tarball: string }> {
  const unbuilt = ['dist/index.js', 'dist/cli.mjs', 'dist/types/runtime/index.d.ts'].filter((file) => !existsSync(join(repoRoot, file)));
  if (unbuilt.length > 0) throw new Error(`${unbuilt.join(', ')} not built: run the build stage first (node scripts/test.mjs build userpath).`);
  const step = await shell(`npm pack --ignore-scripts --pack-destination ${quote(into)}`, { cwd: repoRoot, env, timeoutMs: 600_000 });
  const tarball = readdirSync(into).find((name) => name.endsWith('.tgz'));
  if (step.code !== 0 || tarball === undefined) throw new Error(`npm pack failed (exit code ${String(step.code)}).`);
  return { ...step, tarball: join(into, tarball) };
}

/** A folder for the walk, outside the repository: its project folder and HOME. */
export function walkFolders(repoRoot: string): { readonly root: string; readonly project: string; readonly home: string } {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'keel-userpath-')));
  if (!relative(repoRoot, root).startsWith('..')) throw new Error(`${root} is inside the repository; the user's path must start outside it.`);
  const project = join(root, 'my-agents');
  const home = join(root, 'home');
  mkdirSync(project);
  mkdirSync(home);
  return { root, project, home };
}

/** Removes the walk's folder: everything in it was made by the walk. */
export function removeWalk(root: string): void {
  if (existsSync(root)) rmSync(root, { recursive: true, force: true });
}

export function readGettingStarted(repoRoot: string): string {
  return readFileSync(join(repoRoot, GETTING_STARTED), 'utf8');
}

export function quote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

export function installCommand(command: string, tarball: string): string {
  return INSTALL.test(command) ? `npm install ${quote(tarball)}` : command;
}
