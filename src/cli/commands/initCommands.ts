import { relative, resolve } from 'node:path';
import { HELLO_AGENT, HELLO_INPUT } from '../../runtime/scaffold/projectFiles';
import { scaffoldProject } from '../../runtime/scaffold/scaffoldProject';
import { UsageError, type Command } from '../command';
import { out, parse, style } from '../shared';

/** `keel init [folder]`: a new project that runs offline at once. */

async function init(args: readonly string[]): Promise<number> {
  const { positionals } = parse(args, {});
  if (positionals.length > 1) throw new UsageError('keel init takes at most one folder: keel init [folder]');
  const folder = resolve(positionals[0] ?? '.');
  const result = await scaffoldProject(folder);
  const shown = relative(process.cwd(), folder);
  out.write(`Created a Keel project${shown === '' ? '' : ` in ${shown}`}:\n`);
  for (const file of result.written) out.write(`  ${style.green('+')} ${file}\n`);
  for (const line of result.todo) out.write(`${style.yellow(`! ${line}`)}\n`);
  const steps = [
    ...(shown === '' ? [] : [`cd ${shown}`]),
    ...(result.wrotePackageJson ? ['npm install'] : []),
    `npx keel run ${HELLO_AGENT} --input "${HELLO_INPUT}"`,
    'npx keel test',
  ];
  out.write(`\nNext:\n${steps.map((step) => `  ${step}\n`).join('')}`);
  return 0;
}

export const initCommands: Readonly<Record<string, Command>> = {
  init: { usage: ['keel init [folder]                   a new project: an agent, its golden test, tsconfig.json, keel.config.ts'], run: init },
};
