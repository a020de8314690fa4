import { Host } from '../../runtime/host/host';
import { ENGINE_FLAGS } from '../engines';
import { UsageError, type Command } from '../command';
import { out, parse, style } from '../shared';

/** `keel config`: every value Keel resolved for this project, and where it came from. */

async function config(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' }, model: { type: 'string' }, ...ENGINE_FLAGS });
  if (positionals.length > 0) throw new UsageError('keel config takes no arguments.');
  const flags = Object.fromEntries(Object.entries(values).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
  const resolved = await Host.configure({ cwd: process.cwd(), flags });
  if (values.json === true) {
    out.write(
      `${JSON.stringify(
        { root: resolved.root, file: resolved.file ?? null, values: resolved.entries, problems: resolved.problems.map((problem) => problem.message) },
        null,
        2,
      )}\n`,
    );
  } else {
    out.write(`${style.dim(`project ${resolved.root}, ${resolved.file ? `configured by ${resolved.file}` : 'no keel.config.ts'}`)}\n`);
    const rows = resolved.entries.map((entry) => [entry.key, shown(entry.value), entry.source]);
    const widths = [0, 1].map((column) => Math.max(...rows.map((row) => row[column]?.length ?? 0)));
    for (const [key = '', value = '', source = ''] of rows) {
      out.write(`${key.padEnd(widths[0] ?? 0)}  ${value.padEnd(widths[1] ?? 0)}  ${style.dim(source)}\n`);
    }
    for (const problem of resolved.problems) out.write(`${style.red(`✗ ${problem.message}`)}\n`);
  }
  return resolved.problems.length > 0 ? 1 : 0;
}

function shown(value: unknown): string {
  if (value === undefined) return '-';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export const configCommands: Readonly<Record<string, Command>> = {
  config: { usage: ['keel config [--json]                  every setting: its value and where it came from (docs/configuration.md)'], run: config },
};
