import type * as esbuild from 'esbuild';
import { existsSync, statSync } from 'node:fs';
import Module, { SourceMap } from 'node:module';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import vm from 'node:vm';
import * as zod from 'zod';
import * as agentApi from '../agentApi';
import { AgentLoadError, DefinitionError, describeError } from '../errors';
import { collectDefinedAgents, isAgent, type Agent } from './define';
import { reachableAgents, relateAgents } from './subAgent';

export interface LoadedAgent {
  readonly agent: Agent;
  /** Absolute path of the agent file. */
  readonly file: string;
}

/** The modules agent files get from the runtime itself rather than from node_modules. */
const PROVIDED: Readonly<Record<string, unknown>> = { 'keel-agents': agentApi, zod };
const PROVIDED_KEY = Symbol.for('keel.providedModules');

/**
 * Loads an agent file (`*.agent.ts`): bundles it with esbuild (its own relative imports included,
 * npm packages left to Node), evaluates it, and returns the agent it exports, or with `agent`, the
 * agent of that name it exports or calls as a sub-agent (how a sub-agent's run is loaded again).
 * Every failure is an AgentLoadError that names the file, line and cause.
 */
export async function loadAgentFile(path: string, options: { readonly agent?: string } = {}): Promise<LoadedAgent> {
  const file = resolve(path);
  let agents: readonly Agent[] = [];
  const exported = await evaluateModuleFile(file, 'the agent file', (evaluate) => {
    const collected = collectDefinedAgents(evaluate);
    agents = collected.agents;
    return collected.value;
  });
  relateAgents(agents);
  return { agent: options.agent === undefined ? pickAgent(exported, file) : findAgent(exported, file, options.agent), file };
}

/**
 * Bundles a TypeScript module of the user's (an agent file, `keel.config.ts`) with esbuild, its own
 * relative imports included and npm packages left to Node, and evaluates it; returns its exports.
 * `keel-agents` and `zod` are the runtime's own. Every failure is an AgentLoadError that names the
 * file, line and column and says what went wrong in a sentence. `around` wraps the evaluation itself.
 */
export async function evaluateModuleFile(file: string, what: string, around: (evaluate: () => unknown) => unknown = (evaluate) => evaluate()): Promise<unknown> {
  const shown = displayPath(file);
  if (!existsSync(file)) throw new AgentLoadError(`${capitalized(what)} was not found: ${shown}`, file, undefined, undefined);
  if (statSync(file).isDirectory()) throw new AgentLoadError(`${shown} is a folder; ${what} must be a file (such as hello.agent.ts).`, file, undefined, undefined);
  let result: esbuild.BuildResult<{ write: false; sourcemap: 'external'; outfile: string }>;
  // Loaded when a file is: a command that loads none (keel runs, keel show) does not load esbuild.
  const { build } = await import('esbuild');
  try {
    result = await build({
      entryPoints: [file],
      outfile: `${file}.keel.js`,
      write: false,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node22',
      packages: 'external',
      sourcemap: 'external',
      logLevel: 'silent',
      plugins: [providedModulesPlugin],
    });
  } catch (error) {
    throw buildError(error, file);
  }
  const code = result.outputFiles.find((output) => output.path.endsWith('.js'))?.text ?? '';
  const mapText = result.outputFiles.find((output) => output.path.endsWith('.map'))?.text;
  return around(() => evaluate(code, file, mapText, what));
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The agent named `name` among those a file exports and the sub-agents they call, however deep. */
function findAgent(exported: unknown, file: string, name: string): Agent {
  const exports = (typeof exported === 'object' && exported !== null ? exported : {}) as Record<string, unknown>;
  const found = reachableAgents(Object.values(exports).filter(isAgent));
  const agent = found.find((candidate) => candidate.name === name);
  if (agent) return agent;
  throw new AgentLoadError(
    `${displayPath(file)} no longer defines the agent "${name}"${found.length > 0 ? ` (it defines ${[...new Set(found.map((candidate) => candidate.name))].join(', ')})` : ''}.`,
    file,
    undefined,
    undefined,
  );
}

const providedModulesPlugin: esbuild.Plugin = {
  name: 'keel-provided-modules',
  setup(build) {
    build.onResolve({ filter: /^(keel-agents|zod)$/ }, (args) => ({ path: args.path, namespace: 'keel-provided' }));
    build.onLoad({ filter: /.*/, namespace: 'keel-provided' }, (args) => ({
      contents: `module.exports = globalThis[Symbol.for('keel.providedModules')][${JSON.stringify(args.path)}];`,
      loader: 'js',
    }));
  },
};

function evaluate(code: string, file: string, mapText: string | undefined, what: string): unknown {
  (globalThis as Record<symbol, unknown>)[PROVIDED_KEY] = PROVIDED;
  const module = { exports: {} as unknown };
  try {
    const wrapper = vm.runInThisContext(Module.wrap(code), { filename: file }) as (
      exports: unknown,
      require: NodeJS.Require,
      module: { exports: unknown },
      filename: string,
      dirname: string,
    ) => void;
    wrapper(module.exports, Module.createRequire(file), module, file, dirname(file));
  } catch (error) {
    const where = locate(error, file, mapText);
    const cause = describeError(error);
    const message =
      error instanceof DefinitionError ? cause : `loading ${what} threw ${errorName(error)}: ${cause}`;
    throw new AgentLoadError(
      `${where ? `${displayPath(where.file)}:${where.line}:${where.column}` : displayPath(file)}: ${message}`,
      where?.file ?? file,
      where?.line,
      where?.column,
      { cause: error },
    );
  }
  return module.exports;
}

function pickAgent(exported: unknown, file: string): Agent {
  const shown = displayPath(file);
  const exports = (typeof exported === 'object' && exported !== null ? exported : {}) as Record<string, unknown>;
  if (isAgent(exports['default'])) return exports['default'];
  const named = Object.entries(exports).filter(([, value]) => isAgent(value));
  if (named.length === 1) return named[0]![1] as Agent;
  if (named.length > 1) {
    throw new AgentLoadError(
      `${shown} exports several agents (${named.map(([name]) => name).join(', ')}); make the one to run the default export.`,
      file,
      undefined,
      undefined,
    );
  }
  throw new AgentLoadError(
    `${shown} does not export an agent: add \`export default defineAgent({ ... })\`.`,
    file,
    undefined,
    undefined,
  );
}

function buildError(error: unknown, file: string): AgentLoadError {
  const failure = (error as Partial<esbuild.BuildFailure>).errors?.[0];
  if (!failure) return new AgentLoadError(`${displayPath(file)}: ${describeError(error)}`, file, undefined, undefined);
  const location = failure.location;
  if (!location) return new AgentLoadError(`${displayPath(file)}: ${failure.text}`, file, undefined, undefined);
  const source = isAbsolute(location.file) ? location.file : resolve(location.file);
  return new AgentLoadError(
    `${displayPath(source)}:${location.line}:${location.column + 1}: ${failure.text}`,
    source,
    location.line,
    location.column + 1,
    { cause: error },
  );
}

/** Finds where in the user's sources an error thrown while evaluating the bundle came from. */
function locate(
  error: unknown,
  file: string,
  mapText: string | undefined,
): { file: string; line: number; column: number } | undefined {
  if (!(error instanceof Error) || !error.stack || !mapText) return undefined;
  const map = new SourceMap(JSON.parse(mapText) as ConstructorParameters<typeof SourceMap>[0]);
  const escaped = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const frame = new RegExp(`${escaped}:(\\d+):(\\d+)`, 'g');
  for (const match of error.stack.matchAll(frame)) {
    const entry = map.findEntry(Number(match[1]) - 1, Number(match[2]) - 1);
    if (!('originalSource' in entry) || !entry.originalSource) continue;
    const source = entry.originalSource.startsWith('file://')
      ? new URL(entry.originalSource).pathname
      : resolve(dirname(file), entry.originalSource);
    if (source.includes('/node_modules/') || source.includes('keel-provided:')) continue;
    return { file: source, line: entry.originalLine + 1, column: entry.originalColumn + 1 };
  }
  return undefined;
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : 'a value';
}

/** A file as messages name it: relative to the working folder when it is under it. */
export function displayPath(file: string): string {
  const fromCwd = relative(process.cwd(), file);
  return fromCwd.startsWith('..') || isAbsolute(fromCwd) ? file : fromCwd;
}
