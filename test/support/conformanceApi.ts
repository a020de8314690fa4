import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The outside world of the engine conformance suite, in the test process (which outlives every
 * process the suite kills): an HTTP API that charges once per idempotency key, so that a repeated
 * call shows as a replay and never as a second charge, and that tells the test what it did.
 *
 *   GET  /quote?amount=N   the fee of a transfer (idempotent)
 *   POST /pay {amount, fee}  charges once per key; `holdNextPay()` makes the next first charge
 *                          hang after it is made, so the caller dies not knowing it happened
 *   POST /buy {amount}     an order, once per key
 *   GET  /flaky?order=X    503 twice per key, then the order's status
 *   GET  /strict?order=X   always 400
 */

export interface Charge {
  readonly key: string;
  readonly path: '/pay' | '/buy';
  readonly amount: number;
  readonly confirmation: string;
}

export interface ConformanceApi {
  readonly url: string;
  /** Charges made, one per key. */
  readonly charges: readonly Charge[];
  /** Every request, as `<path> <key> <outcome>`. */
  readonly requests: readonly string[];
  /** The requests to `path` under keys that start with `<runId>:`. */
  requestsOf(runId: string, path: string): string[];
  /** The next first charge on /pay is made, then never answered; resolves when it is made. */
  holdNextPay(): Promise<Charge>;
  close(): Promise<void>;
}

export async function startConformanceApi(): Promise<ConformanceApi> {
  const charges = new Map<string, Charge>();
  const requests: string[] = [];
  const attempts = new Map<string, number>();
  let hold: ((charge: Charge) => void) | undefined;
  const held = new Set<ServerResponse>();

  const send = (response: ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  };

  const charge = async (path: '/pay' | '/buy', request: IncomingMessage, response: ServerResponse, key: string) => {
    let text = '';
    for await (const chunk of request) text += String(chunk);
    const { amount } = JSON.parse(text) as { amount: number };
    const existing = charges.get(key);
    if (existing) {
      requests.push(`${path} ${key} replayed`);
      send(response, 200, { confirmation: existing.confirmation, charged: existing.amount, order: existing.confirmation });
      return;
    }
    const made: Charge = { key, path, amount, confirmation: `${path === '/pay' ? 'PAY' : 'ORD'}-${String(charges.size + 1).padStart(4, '0')}` };
    charges.set(key, made);
    requests.push(`${path} ${key} charged`);
    if (path === '/pay' && hold) {
      const resolveHold = hold;
      hold = undefined;
      held.add(response);
      resolveHold(made);
      return;
    }
    send(response, 200, { confirmation: made.confirmation, charged: made.amount, order: made.confirmation });
  };

  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const key = String(request.headers['idempotency-key'] ?? '');
    const handle = async () => {
      switch (`${request.method ?? ''} ${url.pathname}`) {
        case 'GET /quote': {
          requests.push(`/quote ${key} quoted`);
          const amount = Number(url.searchParams.get('amount'));
          send(response, 200, { amount, fee: Math.round(amount) / 100 });
          return;
        }
        case 'POST /pay':
          return charge('/pay', request, response, key);
        case 'POST /buy':
          return charge('/buy', request, response, key);
        case 'GET /flaky': {
          const count = (attempts.get(key) ?? 0) + 1;
          attempts.set(key, count);
          requests.push(`/flaky ${key} ${count <= 2 ? 'unavailable' : 'ok'}`);
          if (count <= 2) send(response, 503, { error: 'try again' });
          else send(response, 200, { order: url.searchParams.get('order'), status: 'shipped' });
          return;
        }
        case 'GET /strict':
          requests.push(`/strict ${key} refused`);
          send(response, 400, { error: 'this order cannot be cancelled' });
          return;
        default:
          send(response, 404, { error: `no ${url.pathname}` });
      }
    };
    handle().catch((error: unknown) => send(response, 500, { error: String(error) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get charges() {
      return [...charges.values()];
    },
    requests,
    requestsOf: (runId, path) => requests.filter((line) => line.startsWith(`${path} ${runId}:`)),
    holdNextPay: () =>
      new Promise<Charge>((resolve) => {
        hold = resolve;
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const response of held) response.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
