/**
 * An isolate worker: the child process in which sandboxed tools run (dist/isolateWorker.js). The
 * runtime process starts it with Node's IPC channel and sends it one call at a time; isolated-vm
 * is loaded here and nowhere else, so when isolated-vm gives up on an isolate and ends the
 * process, it is this process that ends, not the runtime.
 *
 * Arguments: the number of warm isolates per memory limit.
 */
import { describeError } from '../errors';
import type { EngineCall, IsolateEngine } from './isolateEngine';
import type { ToParent, ToWorker } from './workerProtocol';

function send(message: ToParent): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  if (!process.send) {
    process.stderr.write('keel: this is a sandbox worker; the runtime starts it itself.\n');
    process.exitCode = 2;
    return;
  }
  // The runtime process going away, for whatever reason, ends its workers.
  process.on('disconnect', () => process.exit(0));
  let engine: IsolateEngine;
  try {
    const { IsolateEngine: Engine } = await import('./isolateEngine.js');
    engine = new Engine(Number(process.argv[2] ?? '2'));
  } catch (error) {
    send({ type: 'unavailable', message: describeError(error) });
    process.disconnect();
    return;
  }
  let current: { readonly id: number; readonly call: EngineCall } | undefined;
  process.on('message', (message: ToWorker) => {
    switch (message.type) {
      case 'call': {
        const { id } = message;
        const call = engine.run(message, {
          log: (text) => send({ type: 'log', id, message: text }),
          annotate: (attributes) => send({ type: 'annotate', id, attributes }),
          fetch: (fetchId, request) => send({ type: 'fetch', id, fetchId, request }),
        });
        current = { id, call };
        void call.outcome.then((outcome) => {
          if (current?.id === id) current = undefined;
          send({ type: 'done', id, outcome });
        });
        return;
      }
      case 'fetched':
        if (current?.id === message.id) current.call.deliver(message.fetchId, message.ok, message.payload);
        return;
      case 'stop':
        if (current?.id === message.id) current.call.stop();
        return;
      case 'prewarm':
        engine.prewarm(message.memoryMb);
        void engine.whenPrepared().then(() => send({ type: 'prepared', token: message.token }));
        return;
    }
  });
}

void main();
