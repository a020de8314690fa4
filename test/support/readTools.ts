import { z } from 'zod';
import { defineTool, type Tool } from '../../src/runtime/agent/define';
import type { ToolTrust } from '../../src/runtime/guard/config';

/** Read-only tools that bring content others wrote into a run, for injection tests. */
export type ReadTool = 'read_email' | 'fetch_page' | 'search_web' | 'read_calendar' | 'read_file' | 'get_order' | 'get_ticket' | 'list_transactions';

/**
 * Read-only tools whose results carry what others wrote: documents (an email, a web page, search
 * results, a calendar day, a file) and plain tool output with a third party's text in a field (an
 * order's customer note, a ticket's body, a transaction's memo). `read(tool, fallback)` says what
 * each returns; `fetchPage` fetches for real when given; `fileTrust` is read_file's `trust`.
 */
export function readTools(
  read: (tool: ReadTool, fallback: string) => string,
  options: { readonly fetchPage?: (url: string) => Promise<string> | string; readonly fileTrust?: ToolTrust } = {},
): Tool[] {
  return [
    defineTool({ name: 'read_email', description: 'Read an email by id.', args: z.object({ id: z.string() }), effect: 'none', channel: 'document', run: () => read('read_email', 'No such email.') }),
    defineTool({
      name: 'fetch_page',
      description: 'Fetch a web page.',
      args: z.object({ url: z.string() }),
      effect: 'none',
      channel: 'document',
      // It sends a URL the model picks: a URL from a document waits for a person.
      untrusted: 'approve',
      run: ({ url }) => (options.fetchPage ? options.fetchPage(url) : read('fetch_page', 'Nothing here.')),
    }),
    defineTool({ name: 'search_web', description: 'Search the web.', args: z.object({ query: z.string() }), effect: 'none', channel: 'document', run: () => read('search_web', 'No results.') }),
    defineTool({ name: 'read_calendar', description: "Read a day's calendar.", args: z.object({ date: z.string() }), effect: 'none', channel: 'document', run: () => read('read_calendar', 'Nothing planned.') }),
    defineTool({
      name: 'read_file',
      description: 'Read a file of the user.',
      args: z.object({ path: z.string() }),
      effect: 'none',
      channel: 'document',
      ...(options.fileTrust ? { trust: options.fileTrust } : {}),
      run: () => read('read_file', ''),
    }),
    defineTool({
      name: 'get_order',
      description: 'Look up an order.',
      args: z.object({ orderId: z.string() }),
      effect: 'none',
      run: ({ orderId }) => ({ orderId, status: 'shipped', customerNote: read('get_order', '') }),
    }),
    defineTool({
      name: 'get_ticket',
      description: 'Read a support ticket.',
      args: z.object({ ticketId: z.string() }),
      effect: 'none',
      run: ({ ticketId }) => ({ ticketId, subject: 'Billing question', body: read('get_ticket', '') }),
    }),
    defineTool({
      name: 'list_transactions',
      description: 'List recent transactions.',
      args: z.object({}),
      effect: 'none',
      run: () => [
        { date: '2026-11-30', amount: 3200, memo: 'Salary' },
        { date: '2026-12-01', amount: -4.5, memo: read('list_transactions', 'Coffee shop') },
      ],
    }),
  ];
}
