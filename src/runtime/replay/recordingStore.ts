import { KeelError } from '../errors';
import type { Agent, Tool } from '../agent/define';
import type { RunInspector } from '../agent/inspector';
import { Runtime } from '../agent/runtime';
import { pinnedConnections } from '../mcp/offlineConnections';
import { CircuitBreakers } from '../effects/circuitBreaker';
import type { Model } from '../model/model';
import type { MemoryCapableStore } from '../memory/memoryCapable';
import type { MemoryStore } from '../memory/memoryStore';
import type { CheckpointStore, RunEnd, RunRecord } from '../store/checkpointStore';
import type { ThreadStore } from '../threads/threadStore';
import type { Recording } from './recording';

/** What a re-execution of a recording told its store. */
export interface RecordingStoreReport {
  /** How the re-execution stopped, as it told the store. */
  readonly end: RunEnd | undefined;
  /** The first thing the runtime asked that a recording cannot answer (`store.threadRuns`), if any. */
  readonly refused: string | undefined;
}

/**
 * The store a re-execution runs against: it serves one recorded run, paused where it stopped, as
 * if it were about to be resumed, and keeps nothing. Served with no steps counted, no time spent
 * and no budget, so no limit stops what was recorded; its memory operations come from their
 * journal. Anything else the runtime asks of it (writes, other runs, live memory) is refused, and
 * the refusal noted, so that the replay can say it could not check the run rather than report a
 * divergence.
 */
function recordingStore(recording: Recording): { readonly store: CheckpointStore; report(): RecordingStoreReport } {
  const recorded = recording.run;
  const paused: RunRecord = {
    ...recorded,
    state: 'interrupted',
    stepCount: 0,
    activeMs: 0,
    budget: null,
    usage: { inputTokens: 0, outputTokens: 0 },
    costUsd: 0,
  };
  let end: RunEnd | undefined;
  let refused: string | undefined;
  // A callable stand-in for anything not served, however deep (`store.memory.search(...)`):
  // calling it rejects, and the first such call is what the report names.
  const refuse = (path: string): unknown =>
    new Proxy(() => undefined, {
      get: (_target, key) => (typeof key === 'string' && key !== 'then' ? refuse(`${path}.${key}`) : undefined),
      apply: () => {
        refused ??= path;
        return Promise.reject(new KeelError(`A replay serves only the recorded run, so it cannot answer ${path}().`));
      },
    });
  /** `members`, with everything else refused. */
  const serve = <T extends object>(path: string, members: T): T =>
    new Proxy(members, {
      get: (target, key) => (key in target ? Reflect.get(target, key) : typeof key === 'string' && key !== 'then' ? refuse(`${path}.${key}`) : undefined),
    });
  const memoryOps = recording.memoryOps ?? [];
  const served: Partial<MemoryCapableStore> = {
    location: `the recording of run ${recorded.id}`,
    getRun: (runId) => Promise.resolve(runId === recorded.id ? paused : undefined),
    getSteps: (runId) => Promise.resolve(runId === recorded.id ? [...recording.steps] : []),
    listApprovals: () => Promise.resolve([]),
    // Its sub-agents' runs are replayed as recordings of their own: none is served under it.
    childRuns: () => Promise.resolve([]),
    findApproval: () => Promise.resolve(undefined),
    markInterrupted: () => Promise.resolve([]),
    claimRun: () => Promise.resolve({ ...paused, state: 'running' }),
    settleHeld: () => Promise.resolve([]),
    finishRun: (stopped) => {
      end = stopped;
      return Promise.resolve({ ...paused, state: stopped.state, result: stopped.result, error: stopped.error });
    },
    close: () => Promise.resolve(),
    // The run's memory operations, journaled with their results, are what it reads again.
    memory: serve('store.memory', { ops: (runId: string) => Promise.resolve(runId === recorded.id ? [...memoryOps] : []) }) as MemoryStore,
    threads: serve('store.threads', {}) as ThreadStore,
  };
  const store = serve('store', served) as CheckpointStore;
  return { store, report: () => ({ end, refused }) };
}

/**
 * Runs an agent's code again over a recording, exactly as a resume replays a journal: every model
 * response and tool result comes from the recording, no model or tool is called, and nothing is
 * kept. `inspector` sees each step before it executes; throwing there stops the re-execution.
 * Resolves with what the re-execution told its store.
 */
export async function reexecuteRecording(recording: Recording, agent: Agent, inspector: RunInspector): Promise<RecordingStoreReport> {
  const { run } = recording;
  const { store, report } = recordingStore(recording);
  const runtime = new Runtime({
    store,
    now: () => run.createdAt,
    sleep: () => Promise.resolve(),
    breakers: new CircuitBreakers(undefined, () => run.createdAt),
    inspector,
    // MCP tools as the run pinned them: no server is started, none is called.
    mcp: pinnedConnections(),
  });
  await (await runtime.resume(refusingTools(agent), run.id, { model: refusingModel(run.model) })).done;
  return report();
}

/** A model labelled as the recorded one that refuses every call: a replay never calls a model. */
function refusingModel(label: string): Model {
  const colon = label.indexOf(':');
  return {
    provider: colon < 0 ? label : label.slice(0, colon),
    name: colon < 0 ? '' : label.slice(colon + 1),
    generate: () => Promise.reject(new KeelError('A replay never calls a model; this step is not in the recording.')),
  };
}

/** The agent with every tool's code replaced by a refusal: a replay never calls a tool. */
function refusingTools(agent: Agent): Agent {
  const tools = new Map<string, Tool>();
  for (const [name, tool] of agent.tools) {
    tools.set(
      name,
      Object.freeze({
        ...tool,
        sandbox: undefined,
        run: () => Promise.reject(new KeelError(`A replay never calls tools; ${name} is not in the recording here.`)),
      }),
    );
  }
  return Object.freeze({ ...agent, tools });
}
