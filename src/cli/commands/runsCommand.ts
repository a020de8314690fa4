import { isOwnerAlive } from '../../runtime/agent/owner';
import { runsTable } from '../render';
import { UsageError, type Command } from '../command';
import { out, parse, style, withStore } from '../shared';

/** `keel runs`, in a module of its own: listing runs loads no more than the store and the table. */

async function runs(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' }, limit: { type: 'string' } });
  if (positionals.length > 0) throw new UsageError('keel runs takes no arguments.');
  const limit = values.limit === undefined ? 50 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be a whole number of at least 1.');
  return withStore(values.db, async (store) => {
    await store.markInterrupted(isOwnerAlive, Date.now());
    const list = await store.listRuns({ limit });
    out.write(values.json ? `${JSON.stringify(list, null, 2)}\n` : `${runsTable(list, style)}\n`);
    return 0;
  });
}

export const runsCommands: Readonly<Record<string, Command>> = {
  runs: { usage: ['keel runs [--limit <n>] [--json]'], run: runs },
};
