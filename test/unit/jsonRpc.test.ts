import assert from 'node:assert/strict';
import {
  RPC_CONNECTION_CLOSED,
  RPC_INTERNAL_ERROR,
  RPC_METHOD_NOT_FOUND,
  RpcError,
  RpcPeer,
  type RequestHandlers,
} from '../../src/protocol/jsonRpc';
import { AgentLoadError, StoreError } from '../../src/runtime/errors';

/** What the "server" side answers. */
interface ServerRequests {
  add: { params: { a: number; b: number }; result: number };
  echo: { params: { text: string }; result: { text: string } };
  wait: { params: { id: string }; result: string };
  fail: { params: { kind: 'store' | 'load' | 'plain' | 'string' }; result: null };
  nothing: { params: Record<string, never>; result: null };
  unhandled: { params: Record<string, never>; result: null };
}

/** What the "client" side answers. */
interface ClientRequests {
  confirm: { params: { question: string }; result: boolean };
}

interface ServerNotes {
  progress: { percent: number };
  done: { runId: string };
}

interface ClientNotes {
  cancel: { runId: string };
}

type Server = RpcPeer<ServerRequests, ClientRequests, ClientNotes, ServerNotes>;
type Client = RpcPeer<ClientRequests, ServerRequests, ServerNotes, ClientNotes>;

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve: (value: T) => void = () => undefined;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Lets every pending promise callback and macrotask-free chain settle. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Resolves with the error a promise rejects with; fails if it resolves. */
async function rejection(promise: Promise<unknown>): Promise<RpcError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof RpcError, `expected an RpcError, got ${String(error)}`);
    return error;
  }
  assert.fail('the promise resolved');
}

const waiting = new Map<string, Deferred<string>>();

const serverHandlers: Partial<RequestHandlers<ServerRequests>> = {
  add: ({ a, b }) => Promise.resolve(a + b),
  echo: ({ text }) => Promise.resolve({ text }),
  wait: ({ id }) => {
    const gate = deferred<string>();
    waiting.set(id, gate);
    return gate.promise;
  },
  fail: ({ kind }) => {
    switch (kind) {
      case 'store':
        // Thrown, not returned as a rejected promise: handlers may do either.
        throw new StoreError('The run database is locked.', { context: { path: '/tmp/keel.db', retries: 3 } });
      case 'load':
        return Promise.reject(new AgentLoadError('a.agent.ts:2:5: Unexpected "}"', '/work/a.agent.ts', 2, 5));
      case 'plain':
        return Promise.reject(new Error('plain failure'));
      case 'string':
        return Promise.reject('just a string');
    }
  },
  nothing: () => Promise.resolve(null),
};

/** Two peers whose output goes straight into each other, a macrotask later as over a pipe. */
function connectedPair(): { server: Server; client: Client; serverWrites: string[]; clientWrites: string[] } {
  const serverWrites: string[] = [];
  const clientWrites: string[] = [];
  const server: Server = new RpcPeer<ServerRequests, ClientRequests, ClientNotes, ServerNotes>((line) => {
    serverWrites.push(line);
    setImmediate(() => client.receive(line));
  }, serverHandlers);
  const client: Client = new RpcPeer<ClientRequests, ServerRequests, ServerNotes, ClientNotes>(
    (line) => {
      clientWrites.push(line);
      setImmediate(() => server.receive(line));
    },
    { confirm: ({ question }) => Promise.resolve(question.endsWith('?')) },
  );
  return { server, client, serverWrites, clientWrites };
}

/** A server peer fed by hand, whose output lines are parsed for the test to read. */
function serverFedByHand(): { server: Server; responses: () => unknown[] } {
  const written: string[] = [];
  const server: Server = new RpcPeer<ServerRequests, ClientRequests, ClientNotes, ServerNotes>(
    (line) => written.push(line),
    serverHandlers,
  );
  return { server, responses: () => written.map((line) => JSON.parse(line) as unknown) };
}

function requestLine(id: number, method: string, params: unknown): string {
  return `${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`;
}

describe('RpcPeer: JSON-RPC 2.0 over newline-delimited JSON', () => {
  afterEach(() => waiting.clear());

  it('answers typed requests, in both directions', async () => {
    const { server, client } = connectedPair();

    assert.equal(await client.request('add', { a: 2, b: 40 }), 42);
    assert.deepEqual(await client.request('echo', { text: 'Zürich ✈ 東京\nsecond line' }), { text: 'Zürich ✈ 東京\nsecond line' });
    assert.equal(await client.request('nothing', {}), null);
    assert.equal(await server.request('confirm', { question: 'Book it?' }), true);
    assert.equal(await server.request('confirm', { question: 'Book it.' }), false);
  });

  it('writes one JSON-RPC 2.0 message per line', async () => {
    const { client, clientWrites, serverWrites } = connectedPair();

    await client.request('add', { a: 1, b: 1 });

    assert.deepEqual(
      clientWrites.map((line) => JSON.parse(line) as unknown),
      [{ jsonrpc: '2.0', id: 1, method: 'add', params: { a: 1, b: 1 } }],
    );
    assert.deepEqual(
      serverWrites.map((line) => JSON.parse(line) as unknown),
      [{ jsonrpc: '2.0', id: 1, result: 2 }],
    );
    for (const line of [...clientWrites, ...serverWrites]) {
      assert.equal(line.endsWith('\n'), true);
      assert.equal(line.indexOf('\n'), line.length - 1, 'a message is exactly one line');
    }
  });

  it('matches each answer to its request when answers come back out of order', async () => {
    const { client } = connectedPair();

    const first = client.request('wait', { id: 'first' });
    const second = client.request('wait', { id: 'second' });
    await settle();
    waiting.get('second')?.resolve('answer to second');
    await settle();
    waiting.get('first')?.resolve('answer to first');

    assert.deepEqual(await Promise.all([first, second]), ['answer to first', 'answer to second']);
  });

  it('delivers notifications to every listener until it unsubscribes, and answers none of them', async () => {
    const { server, client, clientWrites } = connectedPair();
    const seen: [string, unknown][] = [];
    const alsoSeen: string[] = [];
    const unsubscribe = client.onNotification((method, params) => seen.push([method, params]));
    client.onNotification((method) => alsoSeen.push(method));

    server.notify('progress', { percent: 50 });
    server.notify('done', { runId: 'run_1' });
    await settle();
    unsubscribe();
    server.notify('progress', { percent: 100 });
    await settle();

    assert.deepEqual(seen, [
      ['progress', { percent: 50 }],
      ['done', { runId: 'run_1' }],
    ]);
    assert.deepEqual(alsoSeen, ['progress', 'done', 'progress']);
    assert.deepEqual(clientWrites, [], 'notifications get no response');
  });

  it('turns a KeelError thrown by a handler into an RpcError with its message, name and context', async () => {
    const { client } = connectedPair();

    const store = await rejection(client.request('fail', { kind: 'store' }));
    assert.equal(store.message, 'The run database is locked.');
    assert.equal(store.code, RPC_INTERNAL_ERROR);
    assert.equal(store.name, 'RpcError');
    assert.deepEqual(store.data, { name: 'StoreError', context: { path: '/tmp/keel.db', retries: 3 } });

    const load = await rejection(client.request('fail', { kind: 'load' }));
    assert.equal(load.message, 'a.agent.ts:2:5: Unexpected "}"');
    assert.deepEqual(load.data, { name: 'AgentLoadError', context: { file: '/work/a.agent.ts', line: 2, column: 5 } });
  });

  it('passes on plain errors by name and other thrown values as text', async () => {
    const { client } = connectedPair();

    const plain = await rejection(client.request('fail', { kind: 'plain' }));
    assert.equal(plain.message, 'plain failure');
    assert.deepEqual(plain.data, { name: 'Error' });

    const text = await rejection(client.request('fail', { kind: 'string' }));
    assert.equal(text.message, 'just a string');
    assert.equal(text.code, RPC_INTERNAL_ERROR);
  });

  it('answers a method without a handler with "method not found", and keeps serving', async () => {
    const { client } = connectedPair();

    const error = await rejection(client.request('unhandled', {}));
    assert.equal(error.code, RPC_METHOD_NOT_FOUND);
    assert.equal(error.message, 'Unknown method unhandled.');
    assert.equal(await client.request('add', { a: 1, b: 2 }), 3);
  });

  it('reassembles messages split at any point, and handles several messages in one chunk', async () => {
    const text = requestLine(1, 'add', { a: 1, b: 2 }) + requestLine(2, 'echo', { text: 'Grüße ✈' }) + requestLine(3, 'add', { a: 5, b: 5 });
    const expected = [
      { jsonrpc: '2.0', id: 1, result: 3 },
      { jsonrpc: '2.0', id: 2, result: { text: 'Grüße ✈' } },
      { jsonrpc: '2.0', id: 3, result: 10 },
    ];
    for (const size of [1, 2, 3, 7, 16, 50, text.length]) {
      const { server, responses } = serverFedByHand();
      for (let at = 0; at < text.length; at += size) server.receive(text.slice(at, at + size));
      await settle();
      assert.deepEqual(responses(), expected, `fed in chunks of ${size} characters`);
    }
  });

  it('waits for the end of a line before handling it', async () => {
    const { server, responses } = serverFedByHand();
    const line = requestLine(7, 'add', { a: 20, b: 22 });

    server.receive(line.slice(0, -1));
    await settle();
    assert.deepEqual(responses(), []);
    server.receive('\n');
    await settle();
    assert.deepEqual(responses(), [{ jsonrpc: '2.0', id: 7, result: 42 }]);
  });

  it('ignores lines that are not JSON, blank lines and stray responses, and handles what follows', async () => {
    const { server, responses } = serverFedByHand();

    server.receive('Debugger listening on ws://127.0.0.1:9229\n\n   \n{"jsonrpc":"2.0","id":\n');
    server.receive('{"jsonrpc":"2.0","id":99,"result":"nobody asked"}\n[1,2,3]\nnull\n"text"\n');
    server.receive(requestLine(1, 'add', { a: 3, b: 4 }));
    await settle();

    assert.deepEqual(responses(), [{ jsonrpc: '2.0', id: 1, result: 7 }]);
  });

  it('accepts lines ending in \\r\\n', async () => {
    const { server, responses } = serverFedByHand();

    server.receive(requestLine(1, 'add', { a: 1, b: 1 }).replace('\n', '\r\n'));
    await settle();

    assert.deepEqual(responses(), [{ jsonrpc: '2.0', id: 1, result: 2 }]);
  });

  it('close() rejects the requests still waiting, and every later request, with the reason', async () => {
    const { client, clientWrites } = connectedPair();
    const pending = client.request('wait', { id: 'slow' });
    const alsoPending = client.request('wait', { id: 'slower' });
    await settle();

    client.close('The runtime process exited.');

    for (const promise of [pending, alsoPending]) {
      const error = await rejection(promise);
      assert.equal(error.message, 'The runtime process exited.');
      assert.equal(error.code, RPC_CONNECTION_CLOSED);
    }
    const written = clientWrites.length;
    const later = await rejection(client.request('add', { a: 1, b: 1 }));
    assert.equal(later.code, RPC_CONNECTION_CLOSED);
    client.notify('cancel', { runId: 'run_1' });
    assert.equal(clientWrites.length, written, 'a closed peer writes nothing more');
  });

  it('a closed peer sends no answers to requests still being handled', async () => {
    const { server, responses } = serverFedByHand();

    server.receive(requestLine(1, 'wait', { id: 'pending' }));
    await settle();
    server.close('Shutting down.');
    waiting.get('pending')?.resolve('finished after close');
    await settle();

    assert.deepEqual(responses(), []);
  });
});
