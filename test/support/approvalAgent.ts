import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * An agent whose unsafe `book` tool needs approval over $100 and appends each booking to
 * `bookings.txt`; a rejected or failed booking ends the run with the error the model read.
 */
export function bookingAgent(dir: string, timeoutMs?: number): string {
  const file = join(dir, 'booking.agent.ts');
  const policy = timeoutMs === undefined ? 'approvals.amountOver(100)' : `{ rules: [approvals.amountOver(100)], timeoutMs: ${timeoutMs}, onTimeout: 'reject' }`;
  writeFileSync(
    file,
    `import { appendFileSync } from 'node:fs';
import { approvals, defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

const book = defineTool({
  name: 'book',
  description: 'Books and pays. Irreversible.',
  args: z.object({ amount: z.number() }),
  effect: 'unsafe',
  approval: ${policy},
  describe: ({ amount }) => '$' + amount,
  run: ({ amount }, ctx) => {
    appendFileSync(${JSON.stringify(join(dir, 'bookings.txt'))}, ctx.idempotencyKey + ' ' + amount + '\\n');
    return 'booked $' + amount;
  },
});

export default defineAgent({
  name: 'booking',
  instructions: 'Book once.',
  model: scriptedModel(({ toolResults }) => {
    const last = toolResults.at(-1);
    if (!last) return { toolCalls: [{ name: 'book', args: { amount: 500 } }] };
    return last.isError ? 'Not booked: ' + last.content : 'Done: ' + last.content;
  }),
  tools: [book],
});
`,
  );
  return file;
}

/** The lines of `bookings.txt`: one per time the booking tool ran. */
export function bookings(dir: string): string[] {
  const file = join(dir, 'bookings.txt');
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : [];
}
