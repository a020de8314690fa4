import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { describeError } from '../../src/runtime/errors';

/**
 * A real VS Code for tests: code-server (VS Code in a browser) driven by Debian's Chromium through
 * playwright-core, because @vscode/test-electron cannot download VS Code here. Everything it starts
 * or creates is undone by a `Cleanup`, including on failure.
 */

const CHROMIUM = '/usr/bin/chromium';
const FIRST_PORT = 18000;
const PORT_SPREAD = 2000;
const HEALTH_TIMEOUT_MS = 30_000;

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Cleanup steps run in reverse order; a failing step is reported and does not stop the others.
 * Until `run`, being interrupted (Ctrl+C, SIGTERM) also runs them: code-server lives in its own
 * process group, so it would not see the terminal's Ctrl+C and would outlive the runner.
 */
export class Cleanup {
  private readonly steps: { readonly name: string; readonly step: () => Promise<void> | void }[] = [];
  private readonly onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`\n${signal}: stopping code-server and Chromium, removing temporary folders\n`);
    void this.run().finally(() => process.exit(128 + (constants.signals[signal] ?? 0)));
  };

  constructor() {
    for (const signal of STOP_SIGNALS) process.once(signal, this.onSignal);
  }

  defer(name: string, step: () => Promise<void> | void): void {
    this.steps.push({ name, step });
  }

  async run(): Promise<void> {
    for (const signal of STOP_SIGNALS) process.removeListener(signal, this.onSignal);
    for (const { name, step } of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (error) {
        process.stderr.write(`cleanup: could not ${name}: ${describeError(error)}\n`);
      }
    }
  }
}

/** Rejects with `message` if `promise` has not settled within `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function locateCodeServer(): string {
  const configured = process.env['KEEL_CODE_SERVER'];
  if (!configured) {
    throw new Error(
      'KEEL_CODE_SERVER is not set, so there is no code-server (a real VS Code) to test in: run `eval "$(.ci/provision.sh)"` to install it and set it.',
    );
  }
  if (!existsSync(configured)) {
    throw new Error(`KEEL_CODE_SERVER points at ${configured}, which does not exist: run \`eval "$(.ci/provision.sh)"\` to install code-server.`);
  }
  return configured;
}

/** Folders and environment of one isolated code-server: nothing is read from or written to the real home. */
export interface CodeServerProfile {
  readonly root: string;
  readonly userDataDir: string;
  readonly extensionsDir: string;
  readonly env: NodeJS.ProcessEnv;
}

const USER_SETTINGS = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'telemetry.telemetryLevel': 'off',
  'security.workspace.trust.enabled': false,
  'extensions.ignoreRecommendations': true,
  'extensions.autoUpdate': false,
  'extensions.autoCheckUpdates': false,
  'update.mode': 'none',
  'chat.disableAIFeatures': true,
  'git.enabled': false,
};

export function createProfile(cleanup: Cleanup): CodeServerProfile {
  const root = mkdtempSync(join(tmpdir(), 'keel-code-server-'));
  cleanup.defer(`remove ${root}`, () => rmSync(root, { recursive: true, force: true }));
  const home = join(root, 'home');
  const userDataDir = join(root, 'user-data');
  const extensionsDir = join(root, 'extensions');
  for (const dir of [home, join(userDataDir, 'User'), extensionsDir]) mkdirSync(dir, { recursive: true });
  writeFileSync(join(userDataDir, 'User', 'settings.json'), `${JSON.stringify(USER_SETTINGS, null, 2)}\n`);
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    // Variables of an enclosing VS Code (its terminal) would make code-server talk to that one.
    if (!key.startsWith('VSCODE_') && key !== 'ELECTRON_RUN_AS_NODE') env[key] = value;
  }
  Object.assign(env, {
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local', 'share'),
    XDG_CACHE_HOME: join(home, '.cache'),
    // No extension gallery: nothing to download offline, and no failed lookups in the log.
    EXTENSIONS_GALLERY: '{}',
  });
  return { root, userDataDir, extensionsDir, env };
}

function baseArgs(profile: CodeServerProfile): string[] {
  return ['--config', '/dev/null', '--user-data-dir', profile.userDataDir, '--extensions-dir', profile.extensionsDir];
}

/**
 * Installs a .vsix into the profile's extensions folder, as `code-server --install-extension`
 * does for a person, and returns the folder it was installed into.
 */
export async function installExtension(profile: CodeServerProfile, vsix: string, extensionId = EXTENSION_ID): Promise<string> {
  const result = await runProcess(locateCodeServer(), [...baseArgs(profile), '--install-extension', vsix], {
    env: profile.env,
    timeoutMs: 120_000,
  });
  if (result.code !== 0) {
    throw new Error(`code-server could not install ${vsix} (exit code ${result.code}):\n${result.output}`);
  }
  const prefix = `${extensionId.toLowerCase()}-`;
  const folder = readdirSync(profile.extensionsDir).find((name) => name.toLowerCase().startsWith(prefix));
  if (!folder) {
    throw new Error(`code-server said it installed ${vsix}, but ${profile.extensionsDir} has no ${prefix}* folder:\n${result.output}`);
  }
  return join(profile.extensionsDir, folder);
}

/** The extension's id, `publisher.name`, as code-server names its folder. */
export const EXTENSION_ID = 'keel.keel-agents';

/** `vsce package` as a publisher runs it: no flags but where to put the .vsix (package.json's "vsce" holds the rest). */
export async function packageExtension(repoRoot: string, vsix: string): Promise<string> {
  const vsce = join(repoRoot, 'node_modules', '.bin', 'vsce');
  const args = ['package', '--out', vsix];
  const result = await runProcess(vsce, args, { cwd: repoRoot, timeoutMs: 180_000 });
  if (result.code !== 0) throw new Error(`vsce ${args.join(' ')} failed (exit code ${result.code}):\n${result.output.trim()}`);
  return vsix;
}

export interface CodeServer {
  /** host:port, the authority of vscode-remote:// URIs. */
  readonly authority: string;
  readonly url: string;
  /** The last lines code-server printed, for error messages. */
  output(): string;
  stop(): Promise<void>;
}

export interface CodeServerOptions {
  /** Lets the page run extension tests (the `payload` URL parameter); suppresses notification toasts. */
  readonly smokeTestDriver?: boolean;
  /** Also append everything code-server prints to this file. */
  readonly logFile?: string;
}

/** Starts code-server on a free port in its own process group and waits until it is healthy. */
export async function startCodeServer(profile: CodeServerProfile, options: CodeServerOptions = {}): Promise<CodeServer> {
  const binary = locateCodeServer();
  for (let attempt = 1; ; attempt++) {
    const port = await findFreePort();
    const args = [
      ...baseArgs(profile),
      '--auth',
      'none',
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      // Extension hosts get this process's environment (PATH with Node 24 first) rather than one
      // resolved from a login shell of the temporary HOME, which would put the system Node first.
      '--vscode-option',
      'force-disable-user-env',
      ...(options.smokeTestDriver ? ['--vscode-option', 'enable-smoke-test-driver'] : []),
    ];
    const server = spawnServer(binary, args, profile.env, port, options.logFile);
    try {
      await server.healthy;
      return server;
    } catch (error) {
      await server.stop();
      // Another process may have taken the port between the check and code-server binding it.
      if (attempt < 3 && /EADDRINUSE/.test(server.output())) continue;
      throw error;
    }
  }
}

function spawnServer(
  binary: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  port: number,
  logFile: string | undefined,
): CodeServer & { readonly healthy: Promise<void> } {
  const authority = `127.0.0.1:${port}`;
  const url = `http://${authority}`;
  const child = spawn(binary, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const record = (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    if (logFile) appendFileSync(logFile, text);
    lines.push(...text.split('\n').filter((line) => line.trim() !== ''));
    lines.splice(0, Math.max(0, lines.length - 40));
  };
  child.stdout?.on('data', record);
  child.stderr?.on('data', record);
  const output = () => lines.join('\n');
  let stopped = false;
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (error) => {
      spawnError = error;
      resolve();
    });
  });
  void exited.then(() => {
    stopped = true;
  });

  const healthy = (async () => {
    const deadline = Date.now() + HEALTH_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (stopped) {
        const why = spawnError ? spawnError.message : `exit code ${child.exitCode ?? child.signalCode}`;
        throw new Error(`code-server (${binary}) stopped before it was healthy (${why}):\n${output()}`);
      }
      if (await answers(`${url}/healthz`)) return;
      await delay(200);
    }
    throw new Error(`code-server did not answer ${url}/healthz within ${HEALTH_TIMEOUT_MS / 1000} s:\n${output()}`);
  })();
  healthy.catch(() => undefined);

  const stop = async () => {
    const pid = child.pid;
    if (pid === undefined) return;
    signalGroup(pid, 'SIGTERM');
    await withTimeout(exited, 5000, 'code-server did not stop on SIGTERM').catch(() => undefined);
    // code-server leaves child processes (extension host, file watcher) when only it is stopped.
    signalGroup(pid, 'SIGKILL');
  };
  return { authority, url, output, stop, healthy };
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return response.ok;
  } catch {
    return false;
  }
}

async function findFreePort(): Promise<number> {
  const start = FIRST_PORT + Math.floor(Math.random() * PORT_SPREAD);
  for (let offset = 0; offset < PORT_SPREAD; offset++) {
    const port = FIRST_PORT + ((start - FIRST_PORT + offset) % PORT_SPREAD);
    if (await isFree(port)) return port;
  }
  throw new Error(`No free port between ${FIRST_PORT} and ${FIRST_PORT + PORT_SPREAD - 1} on 127.0.0.1.`);
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface BrowserSession {
  readonly context: BrowserContext;
  readonly page: Page;
  close(): Promise<void>;
}

/** Debian's Chromium, headless, with a fresh profile (flags from notes/machine-facts.md). */
export async function launchBrowser(cleanup: Cleanup): Promise<BrowserSession> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: run \`eval "$(.ci/provision.sh)"\` (it installs Debian's chromium).`);
  }
  const root = mkdtempSync(join(tmpdir(), 'keel-chromium-'));
  cleanup.defer(`remove ${root}`, () => rmSync(root, { recursive: true, force: true }));
  const home = join(root, 'home');
  mkdirSync(home);
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined) env[key] = value;
  env['HOME'] = home;
  env['XDG_CONFIG_HOME'] = join(home, '.config');
  env['XDG_CACHE_HOME'] = join(home, '.cache');
  const context = await chromium.launchPersistentContext(join(root, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    // The runner's Cleanup closes Chromium on a signal, after code-server.
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    env,
    viewport: { width: 1440, height: 900 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const close = async () => {
    await withTimeout(context.close(), 15_000, 'Chromium did not close within 15 s.');
  };
  cleanup.defer('close Chromium', close);
  const page = context.pages()[0] ?? (await context.newPage());
  return { context, page, close };
}

export interface ProcessResult {
  readonly code: number | null;
  readonly output: string;
}

/** Runs a command to completion, collecting stdout and stderr together. */
export function runProcess(
  command: string,
  args: readonly string[],
  options: { readonly cwd?: string; readonly env?: NodeJS.ProcessEnv; readonly timeoutMs: number },
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not finish within ${options.timeoutMs / 1000} s:\n${output}`));
    }, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`Could not run ${command}: ${error.message}`));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
