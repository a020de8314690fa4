import type { HostToView, ViewProtocol, ViewReply, ViewToHost } from '../../src/protocol/webview';

/** What VS Code gives a webview script, once. */
interface VsCodeApi<P extends ViewProtocol> {
  postMessage(message: ViewToHost<P>): void;
  getState(): P['state'] | undefined;
  setState(state: P['state']): void;
}
declare function acquireVsCodeApi<P extends ViewProtocol>(): VsCodeApi<P>;

type Requests<P extends ViewProtocol> = P['requests'];
type Method<P extends ViewProtocol> = keyof Requests<P> & string;
type Params<P extends ViewProtocol, M extends Method<P>> = Requests<P>[M] extends { params: infer T } ? T : never;
type Result<P extends ViewProtocol, M extends Method<P>> = Requests<P>[M] extends { result: infer T } ? T : never;

/**
 * A webview's line to the extension host, typed by its protocol: messages each way, the state it
 * keeps across reloads, and requests the host answers by message id. Messages go to `onMessage`;
 * replies settle the requests that wait for them. Call `ready` once the view can take messages.
 */
export class Host<P extends ViewProtocol> {
  private readonly api = acquireVsCodeApi<P>();
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (result: unknown) => void; reject: (error: Error) => void }>();

  constructor(onMessage: (message: P['toView']) => void) {
    window.addEventListener('message', (event: MessageEvent<HostToView<P>>) => {
      const message = event.data;
      if (isReply(message)) this.settle(message);
      else onMessage(message);
    });
  }

  /** Tells the host the view has (re)loaded and has nothing: it sends what the view shows. */
  ready(): void {
    this.api.postMessage({ type: 'ready' });
  }

  post(message: P['fromView']): void {
    this.api.postMessage(message);
  }

  request<M extends Method<P>>(method: M, params: Params<P, M>): Promise<Result<P, M>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (result: unknown) => void, reject });
      this.api.postMessage({ type: 'request', id, method, params } as ViewToHost<P>);
    });
  }

  /** What the view saved before it was last unloaded, if anything. */
  saved(): P['state'] | undefined {
    return this.api.getState();
  }

  save(state: P['state']): void {
    this.api.setState(state);
  }

  private settle(reply: ViewReply): void {
    const waiter = this.waiting.get(reply.id);
    if (!waiter) return;
    this.waiting.delete(reply.id);
    if ('error' in reply) waiter.reject(new Error(reply.error));
    else waiter.resolve(reply.result);
  }
}

function isReply(message: { readonly type: string }): message is ViewReply {
  return message.type === 'reply';
}
