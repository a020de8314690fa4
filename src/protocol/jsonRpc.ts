/**
 * JSON-RPC 2.0 over newline-delimited JSON, independent of any transport: feed it text with
 * `receive`, and it writes whole lines through the function it was given. Typed by two maps, the
 * requests and notifications each side handles.
 */

/** A map from method name to its params and result. */
export type RequestMap<T> = { [M in keyof T]: { params: unknown; result: unknown } };

interface RequestMessage {
  jsonrpc: '2.0';
  id: number;
  method: string;
  params: unknown;
}
interface NotificationMessage {
  jsonrpc: '2.0';
  method: string;
  params: unknown;
}
interface ResponseMessage {
  jsonrpc: '2.0';
  id: number;
  result?: unknown;
  error?: { code: number; message: string; data?: RpcErrorData };
}

/** What travels with an error: the remote error's class name and the facts it carried. */
export interface RpcErrorData {
  readonly name?: string;
  readonly context?: Readonly<Record<string, unknown>>;
}

/** An error the other side returned: its message is meant for a person. */
export class RpcError extends Error {
  constructor(
    message: string,
    readonly code: number,
    readonly data: RpcErrorData = {},
  ) {
    super(message);
    this.name = 'RpcError';
  }
}

export const RPC_INTERNAL_ERROR = -32603;
export const RPC_METHOD_NOT_FOUND = -32601;
export const RPC_CONNECTION_CLOSED = -32099;

/** A notification as a `[method, params]` pair: a union over the methods, so a method check narrows its params. */
export type Notification<N extends object> = { [M in keyof N]: [method: M, params: N[M]] }[keyof N];

export type RequestHandlers<In extends RequestMap<In>> = {
  [M in keyof In]: (params: In[M]['params']) => Promise<In[M]['result']>;
};

export class RpcPeer<
  In extends RequestMap<In>,
  Out extends RequestMap<Out>,
  InNotes extends object,
  OutNotes extends object,
> {
  private buffer = '';
  private nextId = 1;
  private closed = false;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private readonly noteListeners = new Set<(...note: Notification<InNotes>) => unknown>();

  constructor(
    private readonly write: (line: string) => void,
    private readonly handlers: Partial<RequestHandlers<In>>,
  ) {}

  request<M extends keyof Out & string>(method: M, params: Out[M]['params']): Promise<Out[M]['result']> {
    if (this.closed) return Promise.reject(new RpcError('The connection is closed.', RPC_CONNECTION_CLOSED));
    const id = this.nextId++;
    const message: RequestMessage = { jsonrpc: '2.0', id, method, params };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.write(`${JSON.stringify(message)}\n`);
    });
  }

  notify<M extends keyof OutNotes & string>(method: M, params: OutNotes[M]): void {
    if (this.closed) return;
    const message: NotificationMessage = { jsonrpc: '2.0', method, params };
    this.write(`${JSON.stringify(message)}\n`);
  }

  /** `listener(method, params)`: checking `method` narrows `params` to that notification's type. */
  onNotification(listener: (...note: Notification<InNotes>) => unknown): () => void;
  onNotification(listener: (method: keyof InNotes) => unknown): () => void;
  onNotification(listener: ((...note: Notification<InNotes>) => unknown) | ((method: keyof InNotes) => unknown)): () => void {
    // A listener of the method alone is called with both; it reads the first.
    const heard = listener as (...note: Notification<InNotes>) => unknown;
    this.noteListeners.add(heard);
    return () => this.noteListeners.delete(heard);
  }

  /** Feeds received text; complete lines are handled, a partial line waits for the rest. */
  receive(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (line) this.handleLine(line);
    }
  }

  /** Fails every request still waiting for an answer; later requests fail at once. */
  close(reason: string): void {
    this.closed = true;
    for (const { reject } of this.pending.values()) reject(new RpcError(reason, RPC_CONNECTION_CLOSED));
    this.pending.clear();
  }

  private handleLine(line: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return;
    }
    // Valid JSON that is not a message (`null`, a number, a list) is ignored like any other noise.
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return;
    const message = parsed as Partial<RequestMessage & ResponseMessage>;
    if (typeof message.method === 'string') {
      if (typeof message.id === 'number') void this.answer(message.id, message.method, message.params);
      else for (const listener of this.noteListeners) listener(...([message.method, message.params] as Notification<InNotes>));
      return;
    }
    if (typeof message.id !== 'number') return;
    const waiter = this.pending.get(message.id);
    if (!waiter) return;
    this.pending.delete(message.id);
    if (message.error) waiter.reject(new RpcError(message.error.message, message.error.code, message.error.data));
    else waiter.resolve(message.result);
  }

  private async answer(id: number, method: string, params: unknown): Promise<void> {
    const handler = (this.handlers as Record<string, ((params: unknown) => Promise<unknown>) | undefined>)[method];
    let response: ResponseMessage;
    if (!handler) {
      response = { jsonrpc: '2.0', id, error: { code: RPC_METHOD_NOT_FOUND, message: `Unknown method ${method}.` } };
    } else {
      try {
        response = { jsonrpc: '2.0', id, result: (await handler(params)) ?? null };
      } catch (error) {
        response = { jsonrpc: '2.0', id, error: { code: RPC_INTERNAL_ERROR, ...describeRemoteError(error) } };
      }
    }
    if (!this.closed) this.write(`${JSON.stringify(response)}\n`);
  }
}

function describeRemoteError(error: unknown): { message: string; data: RpcErrorData } {
  if (!(error instanceof Error)) return { message: String(error), data: {} };
  const context = (error as { context?: unknown }).context;
  return {
    message: error.message,
    data: {
      name: error.name,
      ...(typeof context === 'object' && context !== null ? { context: context as Record<string, unknown> } : {}),
    },
  };
}
