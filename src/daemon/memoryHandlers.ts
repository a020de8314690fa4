import type { MemoryRequests } from '../protocol/memory';
import type { RequestHandlers } from '../protocol/jsonRpc';
import { currentUser } from '../runtime/currentUser';
import { KeelError } from '../runtime/errors';
import { memoryStoreOf, type MemoryCapableStore } from '../runtime/memory/memoryCapable';
import { checkKey, checkNamespace, searchableText } from '../runtime/memory/memoryStore';
import type { CheckpointStore } from '../runtime/store/checkpointStore';
import { checkThreadId } from '../runtime/threads/threadStore';
import { toMemoryItem, toRun, toThread } from './toProtocol';

/** The runtime process's answers about threads and memory, over the store it serves. */
export function memoryHandlers(storeOf: () => CheckpointStore): RequestHandlers<MemoryRequests> {
  const kept = (): MemoryCapableStore => memoryStoreOf(storeOf(), 'Threads and memory');
  return {
    listThreads: async ({ limit }) => (await kept().threads.list(limit === undefined ? {} : { limit })).map(toThread),
    getThread: async ({ threadId }) => {
      const store = kept();
      const thread = await store.threads.get(threadId);
      if (!thread) throw new KeelError(`There is no thread ${threadId} in ${store.location}.`);
      return { thread: toThread(thread), runs: (await store.threadRuns(threadId)).map(toRun) };
    },
    deleteThread: async ({ threadId }) => kept().threads.delete(threadId),
    attachThread: async ({ runId, threadId }) => toThread(await kept().threads.attachRun(runId, checkThreadId(threadId), Date.now())),
    listMemoryNamespaces: async () => kept().memory.namespaces(),
    listMemory: async ({ namespace }) => (await kept().memory.list(checkNamespace(namespace))).map(toMemoryItem),
    getMemory: async ({ namespace, key }) => {
      const item = await kept().memory.get(checkNamespace(namespace), checkKey(key));
      return item ? toMemoryItem(item) : null;
    },
    putMemory: async ({ namespace, key, value, expectedRevision }) => {
      const store = kept();
      const current = await store.memory.get(checkNamespace(namespace), checkKey(key));
      const written = await store.memory.put({
        namespace,
        key,
        value,
        text: searchableText(value),
        channel: current?.channel ?? 'user',
        writtenBy: `vscode:${currentUser()}`,
        at: Date.now(),
        expectedRevision,
      });
      return toMemoryItem(written);
    },
    deleteMemory: async ({ namespace, key }) => ({ deleted: await kept().memory.delete(checkNamespace(namespace), checkKey(key)) }),
  };
}
