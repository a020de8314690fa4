import { unfence } from '../../src/runtime/guard/fence';
import type { AssistantMessage, Model, ToolMessage } from '../../src/runtime/model/model';
import { callTurn, turnModel } from './obedientModel';

/** A tool call a script makes. */
export interface PlannedCall {
  readonly name: string;
  readonly args: Readonly<Record<string, unknown>>;
}

export interface GullibleScript {
  /** The calls the user's task needs, in order. */
  readonly calls: readonly PlannedCall[];
  readonly answer: string;
  /** An instruction planted in content a tool returns: once the model has read `carrier`, it makes `call`. */
  readonly injection?: { readonly carrier: string; readonly call: PlannedCall };
}

/**
 * The most gullible model there is, for the taint rule: it does the user's task, and as soon as it
 * reads an injected instruction it carries it out, understanding it however it is written (encoded,
 * spelled out, split up, in lookalike letters) and writing the values it names in whatever form the
 * script says. It never sees through an injection, so what stops the side effect can only be Keel.
 * Deterministic: the conversation alone decides each turn.
 */
export function gullibleModel(script: GullibleScript): Model {
  return turnModel('gullible', (messages) => {
    const assistants = messages.filter((message): message is AssistantMessage => message.role === 'assistant');
    const made = assistants.flatMap((message) => message.toolCalls);
    const said = (call: PlannedCall) => made.some((earlier) => earlier.name === call.name && earlier.arguments === JSON.stringify(call.args));
    const turn = assistants.length + 1;
    const read = messages.filter((message): message is ToolMessage => message.role === 'tool' && !message.isError).map((message) => unfence(message.content));
    const { injection } = script;
    // A tool's JSON output carries the instruction JSON-escaped.
    const carriers = injection ? [injection.carrier, JSON.stringify(injection.carrier).slice(1, -1)] : [];
    if (injection && !said(injection.call) && read.some((content) => carriers.some((carrier) => content.includes(carrier)))) return callTurn(turn, injection.call);
    const next = script.calls.find((call) => !said(call));
    if (next) return callTurn(turn, next);
    return { role: 'assistant', content: script.answer, toolCalls: [] };
  });
}
