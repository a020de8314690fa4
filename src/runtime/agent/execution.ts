import { BudgetExceededError } from '../budget/budget';
import { describeError } from '../errors';
import { RunGuard } from '../guard/runGuard';
import { canonicalJson } from '../hash/canonicalJson';
import { ConversationHash } from '../hash/conversationHash';
import { modelLabel, type Message, type Model, type ToolMessage } from '../model/model';
import { resolveModel } from '../model/resolve';
import { RESUMABLE_STATES, UnfinishedSubRunError, type ApprovalRecord, type RunRecord, type StepRecord } from '../store/checkpointStore';
import { approvalsOfTree } from '../store/runTree';
import type { Agent } from './define';
import type { RunEvent } from './events';
import { Journal, JournalDivergenceError } from './journal';
import { modelStep } from './modelStep';
import { SubAgentPausedError } from './pause';
import type { RunContext, Services } from './runContext';
import { StepJournal } from './stepJournal';
import { reachableAgents } from './subAgent';
import { offeredSpec } from './toolCall';
import { toolStep } from './toolStep';

type LoopResult =
  | { readonly kind: 'completed'; readonly answer: string }
  | { readonly kind: 'failed'; readonly error: string }
  | { readonly kind: 'paused'; readonly approval: ApprovalRecord };

/** One run executing in this process: the loop, its replay of the journal and how it stops. */
export class Execution {
  private readonly context: RunContext;
  private seq = 0;
  private readonly launchedAt: number;
  /** Models picked by the agent's route hook, resolved once each. */
  private readonly routed = new Map<string, Model>();

  constructor(
    private readonly services: Services,
    private readonly agent: Agent,
    private readonly model: Model,
    private readonly run: RunRecord,
    recorded: readonly StepRecord[],
    private readonly signal: AbortSignal,
    private readonly emit: (event: RunEvent) => void,
  ) {
    this.launchedAt = services.now();
    this.context = {
      services,
      agent,
      run,
      journal: new Journal(run.id, recorded),
      steps: new StepJournal(services.store, run.id, services.now, emit, services.inspector, run.stepCount),
      guard: new RunGuard(agent, run, services.guard),
      signal,
      emit,
    };
  }

  async execute(): Promise<RunRecord> {
    const { steps } = this.context;
    let stopped: RunRecord;
    try {
      const result = await this.loop();
      await steps.flush();
      switch (result.kind) {
        case 'completed':
          stopped = await this.complete(result.answer);
          break;
        case 'failed':
          stopped = await this.finish({ state: 'failed', result: null, error: result.error });
          break;
        case 'paused':
          stopped = await this.stop('waiting_approval', result.approval.reason);
          break;
      }
    } catch (error) {
      await steps.flush();
      if (error instanceof BudgetExceededError) {
        stopped = await this.finish({ state: 'budget_exceeded', result: null, error: `Stopped: ${error.message}` });
      } else if (error instanceof SubAgentPausedError) {
        stopped = await this.stop(error.parentState, error.message);
      } else if (error instanceof JournalDivergenceError) {
        stopped = await this.stop('interrupted', error.message);
      } else if (this.signal.aborted) {
        stopped = await this.finish({ state: 'cancelled', result: null, error: describeError(this.signal.reason) });
      } else {
        stopped = await this.finish({ state: 'failed', result: null, error: describeError(error) });
      }
    }
    this.emit({ type: 'run_finished', run: stopped });
    return stopped;
  }

  private finish(end: { state: 'completed' | 'failed' | 'cancelled' | 'budget_exceeded'; result: string | null; error: string | null }): Promise<RunRecord> {
    const at = this.services.now();
    return this.services.store.finishRun({ runId: this.run.id, ...end, endedAt: at, at, activeMs: at - this.launchedAt });
  }

  /**
   * Stops the run for now: paused for a decision, or interrupted (after a divergence is fixed, or
   * once a sub-agent can go on, it is resumed).
   */
  private stop(state: 'waiting_approval' | 'interrupted', reason: string): Promise<RunRecord> {
    const at = this.services.now();
    return this.services.store.finishRun({ runId: this.run.id, state, result: null, error: reason, endedAt: null, at, activeMs: at - this.launchedAt });
  }

  /**
   * Ends the run with its answer, unless a sub-agent run under it has not ended (a tool that let
   * one go on without waiting for it, say): then the run stops as that sub-agent stands, so that
   * it never completes without the sub-agent's work or decision.
   */
  private async complete(answer: string): Promise<RunRecord> {
    for (const continued = new Set<string>(); ; ) {
      try {
        return await this.finish({ state: 'completed', result: answer, error: null });
      } catch (error) {
        if (!(error instanceof UnfinishedSubRunError)) throw error;
        // A sub-agent run whose decisions are all made, that its tool no longer waits for: it goes on here, once.
        const { child } = error;
        const agent = reachableAgents([this.agent]).find((candidate) => candidate.name === child.agent);
        const ready = RESUMABLE_STATES.includes(child.state) && (await approvalsOfTree(this.services.store, child.id, 'pending')).length === 0;
        if (!agent || !ready || continued.has(child.id)) return this.stop(child.state === 'waiting_approval' ? 'waiting_approval' : 'interrupted', error.message);
        continued.add(child.id);
        await (await this.services.continueSubAgent(agent, child.id)).done;
      }
    }
  }

  private async loop(): Promise<LoopResult> {
    const { agent, context } = this;
    const { journal, steps, guard } = context;
    const specs = [...agent.tools.values()].map((tool) => offeredSpec(agent, tool));
    const conversation = new ConversationHash(specs);
    const messages: Message[] = [];
    const say = (message: Message) => {
      messages.push(message);
      conversation.append(message);
    };
    say({ role: 'system', content: agent.instructions });
    // The thread's earlier turns (and a summary of older ones, itself a model step) and the task's progress notes.
    const prelude = await this.services.memory.prelude(async (call) => {
      const seq = ++this.seq;
      const model = call.model === undefined ? this.model : resolveModel(call.model);
      return { response: await modelStep(context, seq, model, call.messages, [], call.requestHash, call.about), seq };
    });
    for (const message of prelude) say(message);
    say({ role: 'user', content: this.run.input });

    const calls = new Map<string, number>();
    let turnsWithoutProgress = 0;
    for (let turn = 0; turn < agent.maxSteps; turn++) {
      this.signal.throwIfAborted();
      const modelSeq = ++this.seq;
      const model = this.modelFor(turn, messages);
      const inspected = this.services.inspector?.beforeStep({
        run: this.run,
        seq: modelSeq,
        kind: 'model',
        name: modelLabel(model),
        turn,
        call: null,
        messages,
        requestHash: conversation.value,
      });
      // Awaited only when the inspector is asynchronous: a replay inspects every step.
      if (inspected) await inspected;
      const response = await modelStep(context, modelSeq, model, messages, specs, conversation.value);
      say(response.message);
      if (response.message.toolCalls.length === 0) {
        journal.assertEndsAfter(this.seq, 'ends the run with its answer');
        return { kind: 'completed', answer: guard.answer(response) };
      }

      // Loop breakers: the same call again and again, or turn after turn with nothing new.
      let progress = false;
      for (const call of response.message.toolCalls) {
        const signature = `${call.name} ${canonicalArguments(call.arguments)}`;
        const count = (calls.get(signature) ?? 0) + 1;
        calls.set(signature, count);
        if (count === 1) progress = true;
        if (count >= agent.loopLimits.sameCall) {
          return { kind: 'failed', error: `Stopped a loop: the model asked for ${call.name} with the same arguments ${count} times.` };
        }
      }
      turnsWithoutProgress = progress ? 0 : turnsWithoutProgress + 1;
      if (turnsWithoutProgress >= agent.loopLimits.turnsWithoutProgress) {
        return { kind: 'failed', error: `Stopped a loop: ${turnsWithoutProgress} model calls in a row asked for nothing new.` };
      }

      for (const [callIndex, call] of response.message.toolCalls.entries()) {
        this.signal.throwIfAborted();
        this.services.budget.checkRunLimits(steps.stepsDone);
        const toolSeq = ++this.seq;
        const inspectedTool = this.services.inspector?.beforeStep({ run: this.run, seq: toolSeq, kind: 'tool', name: call.name, turn, call, messages, requestHash: null });
        if (inspectedTool) await inspectedTool;
        const outcome = await toolStep(context, toolSeq, modelSeq, callIndex, call);
        if ('approval' in outcome) return { kind: 'paused', approval: outcome.approval };
        say({
          role: 'tool',
          toolCallId: call.id,
          name: call.name,
          content: guard.toolMessage(toolSeq, call.name, outcome),
          isError: !outcome.ok,
        });
      }
    }
    journal.assertEndsAfter(this.seq, `stops, having reached maxSteps (${agent.maxSteps})`);
    return { kind: 'failed', error: `${agent.name} reached maxSteps (${agent.maxSteps}) without a final answer.` };
  }

  /** The model for this turn: the agent's route hook decides, else the run's model. */
  private modelFor(turn: number, messages: readonly Message[]): Model {
    const route = this.agent.route;
    if (!route) return this.model;
    const lastAssistant = messages.findLastIndex((message) => message.role === 'assistant');
    const choice = route({
      turn,
      input: this.run.input,
      messages,
      toolResults: messages.slice(lastAssistant + 1).filter((message): message is ToolMessage => message.role === 'tool'),
    });
    if (choice === undefined) return this.model;
    if (typeof choice !== 'string') return choice;
    let model = this.routed.get(choice);
    if (!model) {
      model = resolveModel(choice);
      this.routed.set(choice, model);
    }
    return model;
  }
}

/** A tool call's arguments in a canonical form, so equal calls compare equal however the model spaced them. */
function canonicalArguments(raw: string): string {
  try {
    return canonicalJson(JSON.parse(raw));
  } catch {
    return raw;
  }
}
