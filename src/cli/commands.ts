import type { Command } from './command';

export type CommandTable = Readonly<Record<string, Command>>;

/**
 * Every command, in the order the usage text lists them: the names a module's table holds, and how
 * to load it. A command loads only its own module, so `keel --version` and `keel runs` do not
 * evaluate what `keel run` or `keel serve` need (the openai SDK, esbuild, isolated-vm, an HTTP
 * server). To add a command, add its name to its module's line, or a line for a new module.
 */
export const COMMAND_MODULES: readonly { readonly names: readonly string[]; readonly load: () => Promise<CommandTable> }[] = [
  { names: ['init'], load: () => import('./commands/initCommands.js').then((module) => module.initCommands) },
  { names: ['run', 'resume'], load: () => import('./commands/runCommands.js').then((module) => module.runCommands) },
  { names: ['approvals', 'approve', 'reject', 'resolve'], load: () => import('./commands/approvalCommands.js').then((module) => module.approvalCommands) },
  { names: ['runs'], load: () => import('./commands/runsCommand.js').then((module) => module.runsCommands) },
  { names: ['doctor', 'show', 'diff'], load: () => import('./commands/inspectCommands.js').then((module) => module.inspectCommands) },
  { names: ['export', 'audit'], load: () => import('./commands/traceCommands.js').then((module) => module.traceCommands) },
  { names: ['test', 'record', 'judge'], load: () => import('./commands/goldenCommands.js').then((module) => module.goldenCommands) },
  { names: ['threads', 'thread', 'memory'], load: () => import('./commands/memoryCommands.js').then((module) => module.memoryCommands) },
  { names: ['mcp'], load: () => import('./commands/mcpCommands.js').then((module) => module.mcpCommands) },
  { names: ['serve'], load: () => import('./commands/serveCommands.js').then((module) => module.serveCommands) },
  { names: ['config'], load: () => import('./commands/configCommands.js').then((module) => module.configCommands) },
  { names: ['alerts'], load: () => import('./commands/alertCommands.js').then((module) => module.alertCommands) },
  { names: ['review'], load: () => import('./commands/reviewCommands.js').then((module) => module.reviewCommands) },
];
