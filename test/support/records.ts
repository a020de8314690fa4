import type { RunRecord, StepRecord } from '../../src/runtime/store/checkpointStore';

/** Records as the store returns them, for tests of code that only reads them. */

export const T0 = 1_790_000_000_000;
export const RUN_ID = 'run_01m8ct03k4x4d7mxxd4b74';

export function runRecord(overrides: Partial<RunRecord> = {}): RunRecord {
  return {
    id: RUN_ID,
    agent: 'travel',
    agentFile: '/work/travel.agent.ts',
    model: 'keel.scripted:travel-script',
    input: 'Fly NYC to LIS on 2026-12-10',
    state: 'running',
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    owner: 'host/1234/abcdef',
    createdAt: T0,
    updatedAt: T0,
    endedAt: null,
    stepCount: 0,
    usage: { inputTokens: 0, outputTokens: 0 },
    costUsd: 0,
    costKnown: true,
    activeMs: 0,
    budget: null,
    agentFacts: null,
    parentRunId: null,
    parentSeq: null,
    result: null,
    error: null,
    ...overrides,
  };
}

export function stepRecord(overrides: Partial<StepRecord> & Pick<StepRecord, 'seq' | 'kind' | 'name'>): StepRecord {
  return {
    runId: RUN_ID,
    status: 'completed',
    input: null,
    output: null,
    error: null,
    idempotencyKey: null,
    attempts: 1,
    failedAttempts: [],
    costUsd: null,
    startedAt: T0 + overrides.seq * 1000,
    endedAt: T0 + overrides.seq * 1000 + 5,
    ...overrides,
  };
}
