import { z } from 'zod';
import { defineAgent, defineTool, type Agent } from '../../src/runtime/agent/define';
import { agentTool } from '../../src/runtime/agent/subAgent';
import type { Model } from '../../src/runtime/model/model';
import { scriptedModel, type Script } from '../../src/runtime/model/scripted';

/** Agents for the replay debugger's tests, counting every call their model and tools get. */
export interface CountingAgents {
  /** `lookup` (n → value), then `pay` (amount), then an answer; with `researcher` as a sub-agent tool. */
  readonly lead: Agent;
  readonly researcher: Agent;
  readonly calls: { model: number; tools: number };
}

export interface AgentVariant {
  readonly instructions?: string;
  readonly maxSteps?: number;
  /** What the lead pays: more than 1000 is declined (the step fails). Default 40. */
  readonly amount?: number;
  /** The number the lead looks up second: 4 repeats the first call (a flagged step). Default 5. */
  readonly secondLookup?: number;
  /** Whether the lead may ask the researcher (a sub-agent run). */
  readonly research?: boolean;
  /** The lead's loop limit on the same call. */
  readonly sameCall?: number;
}

/** Counts what a model is asked. */
export function counted(model: Model, calls: { model: number }): Model {
  return { ...model, generate: (request, options) => ((calls.model += 1), model.generate(request, options)) };
}

/** A tool result without the fence the guard may put around it. */
function payload(content: string): string {
  const start = content.indexOf('{');
  return start < 0 ? content : content.slice(start, content.lastIndexOf('}') + 1);
}

export function countingAgents(variant: AgentVariant = {}): CountingAgents {
  const calls = { model: 0, tools: 0 };
  const note = defineTool({
    name: 'note',
    description: 'Writes a note.',
    args: z.object({ text: z.string() }),
    effect: 'none',
    run: ({ text }) => ((calls.tools += 1), `noted: ${text}`),
  });
  const researcher = defineAgent({
    name: 'researcher',
    instructions: 'Research, note, answer.',
    model: counted(
      scriptedModel(({ turn, input }) => (turn === 0 ? { toolCalls: [{ name: 'note', args: { text: input } }] } : `found: ${input}`)),
      calls,
    ),
    tools: [note],
  });
  const lookup = defineTool({
    name: 'lookup',
    description: 'Looks a number up.',
    args: z.object({ n: z.number() }),
    output: z.object({ value: z.number() }),
    effect: 'none',
    run: ({ n }) => ((calls.tools += 1), { value: n * 10 }),
  });
  const pay = defineTool({
    name: 'pay',
    description: 'Pays an amount.',
    args: z.object({ amount: z.number() }),
    effect: 'unsafe',
    run: ({ amount }) => {
      calls.tools += 1;
      if (amount > 1000) throw new Error('declined');
      return { receipt: `R-${amount}` };
    },
  });
  const script: Script = ({ turn, toolResults }) => {
    const research = variant.research ?? true;
    if (turn === 0) return { text: 'Looking it up.', toolCalls: [{ name: 'lookup', args: { n: 4 } }] };
    if (turn === 1 && research) return { toolCalls: [{ name: 'researcher', args: { task: 'prices' } }] };
    if (turn === (research ? 2 : 1)) {
      return { toolCalls: [{ name: 'pay', args: { amount: variant.amount ?? 40 } }, { name: 'lookup', args: { n: variant.secondLookup ?? 5 } }] };
    }
    return `Done: ${toolResults.map((result) => payload(result.content)).join(' / ')}`;
  };
  const lead = defineAgent({
    name: 'lead',
    instructions: variant.instructions ?? 'Look up, research, pay, answer.',
    model: counted(scriptedModel(script), calls),
    tools: [lookup, pay, agentTool(researcher)],
    maxSteps: variant.maxSteps ?? 6,
    ...(variant.sameCall === undefined ? {} : { loopLimits: { sameCall: variant.sameCall } }),
  });
  return { lead, researcher, calls };
}
