import { describeError } from '../errors';
import { newRunId } from '../ids';
import { modelLabel, type Message, type Model, type Usage } from '../model/model';
import { resolveModel } from '../model/resolve';
import type { CheckpointStore, RunRecord } from '../store/checkpointStore';
import type { Agent, ToolContext } from './define';
import type { RunEvent, RunEventListener } from './events';
import { executeToolCall, type ToolOutcome } from './toolCall';

export interface RuntimeOptions {
  readonly store: CheckpointStore;
  readonly now?: () => number;
}

export interface StartOptions {
  readonly input: string;
  /** The file the agent came from, recorded with the run. */
  readonly agentFile?: string;
  /** Overrides the agent's own model for this run. */
  readonly model?: Model | string;
  readonly onEvent?: RunEventListener;
}

export interface RunHandle {
  readonly runId: string;
  /** Settles with the run's final record; rejects only if the store itself fails. */
  readonly done: Promise<RunRecord>;
  /** Stops the run at the next opportunity; it ends `cancelled`. */
  cancel(): void;
}

const NO_USAGE: Usage = { inputTokens: 0, outputTokens: 0 };

/** Runs agents: the observe-think-act loop, journaled step by step in a CheckpointStore. */
export class Runtime {
  private readonly store: CheckpointStore;
  private readonly now: () => number;

  constructor(options: RuntimeOptions) {
    this.store = options.store;
    this.now = options.now ?? Date.now;
  }

  /** Records a new run and starts it; resolves once the run is recorded, before it finishes. */
  async start(agent: Agent, options: StartOptions): Promise<RunHandle> {
    const model = resolveModel(options.model ?? agent.model);
    const createdAt = this.now();
    const run = await this.store.createRun({
      id: newRunId(createdAt),
      agent: agent.name,
      agentFile: options.agentFile ?? null,
      model: modelLabel(model),
      input: options.input,
      createdAt,
    });
    const emit = options.onEvent ?? (() => undefined);
    const controller = new AbortController();
    emit({ type: 'run_started', run });
    const done = this.execute(agent, model, run, controller.signal, emit);
    return { runId: run.id, done, cancel: () => controller.abort(new Error('Cancelled by the user.')) };
  }

  private async execute(
    agent: Agent,
    model: Model,
    run: RunRecord,
    signal: AbortSignal,
    emit: (event: RunEvent) => void,
  ): Promise<RunRecord> {
    let finished: RunRecord;
    try {
      const result = await this.loop(agent, model, run, signal, emit);
      finished = await this.store.finishRun(
        result.ok
          ? { runId: run.id, state: 'completed', result: result.answer, error: null, endedAt: this.now() }
          : { runId: run.id, state: 'failed', result: null, error: result.error, endedAt: this.now() },
      );
    } catch (error) {
      const cancelled = signal.aborted;
      finished = await this.store.finishRun({
        runId: run.id,
        state: cancelled ? 'cancelled' : 'failed',
        result: null,
        error: cancelled ? describeError(signal.reason) : describeError(error),
        endedAt: this.now(),
      });
    }
    emit({ type: 'run_finished', run: finished });
    return finished;
  }

  private async loop(
    agent: Agent,
    model: Model,
    run: RunRecord,
    signal: AbortSignal,
    emit: (event: RunEvent) => void,
  ): Promise<{ ok: true; answer: string } | { ok: false; error: string }> {
    const tools = [...agent.tools.values()];
    const specs = tools.map((tool) => tool.spec);
    const messages: Message[] = [
      { role: 'system', content: agent.instructions },
      { role: 'user', content: run.input },
    ];
    let seq = 0;
    for (let turn = 0; turn < agent.maxSteps; turn++) {
      signal.throwIfAborted();
      const modelSeq = ++seq;
      emit({
        type: 'step_started',
        step: await this.store.beginStep({
          runId: run.id,
          seq: modelSeq,
          kind: 'model',
          name: modelLabel(model),
          input: { messageCount: messages.length, tools: specs.map((spec) => spec.name) },
          idempotencyKey: null,
          startedAt: this.now(),
        }),
      });
      let response;
      try {
        response = await model.generate(
          { messages: [...messages], tools: specs },
          { signal, onTextDelta: (text) => emit({ type: 'model_delta', runId: run.id, seq: modelSeq, text }) },
        );
      } catch (error) {
        await this.failStep(run.id, modelSeq, signal.aborted ? describeError(signal.reason) : describeError(error), emit);
        throw error;
      }
      emit({
        type: 'step_finished',
        step: await this.store.endStep({
          runId: run.id,
          seq: modelSeq,
          status: 'completed',
          output: response,
          error: null,
          endedAt: this.now(),
          usage: response.usage,
        }),
      });
      messages.push(response.message);
      if (response.message.toolCalls.length === 0) return { ok: true, answer: response.message.content ?? '' };

      for (const [callIndex, call] of response.message.toolCalls.entries()) {
        signal.throwIfAborted();
        const toolSeq = ++seq;
        const idempotencyKey = `${run.id}:${modelSeq}:${callIndex}`;
        emit({
          type: 'step_started',
          step: await this.store.beginStep({
            runId: run.id,
            seq: toolSeq,
            kind: 'tool',
            name: call.name,
            input: { toolCallId: call.id, arguments: call.arguments },
            idempotencyKey,
            startedAt: this.now(),
          }),
        });
        const ctx: ToolContext = {
          runId: run.id,
          stepId: modelSeq,
          callIndex,
          idempotencyKey,
          signal,
          log: (message) => emit({ type: 'tool_log', runId: run.id, seq: toolSeq, message: String(message) }),
        };
        let outcome: ToolOutcome;
        try {
          outcome = await executeToolCall(agent, call, ctx);
        } catch (error) {
          await this.failStep(run.id, toolSeq, describeError(signal.aborted ? signal.reason : error), emit);
          throw error;
        }
        emit({
          type: 'step_finished',
          step: await this.store.endStep({
            runId: run.id,
            seq: toolSeq,
            status: outcome.ok ? 'completed' : 'failed',
            output: outcome.ok ? { content: outcome.content, value: outcome.value } : { content: `Error: ${outcome.error}` },
            error: outcome.ok ? null : outcome.error,
            endedAt: this.now(),
            usage: NO_USAGE,
          }),
        });
        messages.push({
          role: 'tool',
          toolCallId: call.id,
          name: call.name,
          content: outcome.ok ? outcome.content : `Error: ${outcome.error}`,
          isError: !outcome.ok,
        });
      }
    }
    return {
      ok: false,
      error: `${agent.name} reached maxSteps (${agent.maxSteps}) without a final answer.`,
    };
  }

  private async failStep(runId: string, seq: number, error: string, emit: (event: RunEvent) => void): Promise<void> {
    emit({
      type: 'step_finished',
      step: await this.store.endStep({
        runId,
        seq,
        status: 'failed',
        output: null,
        error,
        endedAt: this.now(),
        usage: NO_USAGE,
      }),
    });
  }
}
