import { unfence } from '../../src/runtime/guard/fence';
import type { AssistantMessage, Message, Model, ModelRequest, ModelResponse, ToolCall, ToolMessage } from '../../src/runtime/model/model';

/**
 * The worst-case model for injection tests: it does the user's task, but obeys whatever
 * instruction it last read. It reads the last tool result as a model would understand it (inside
 * Keel's fence, ignoring the warning), reveals what hides in it (zero-width characters, Unicode
 * tag characters, base64, comments and hidden elements are all just text to it), and when it finds
 * an instruction it knows (send an email, transfer money, post or fetch a URL, call a tool with
 * JSON arguments, put an image or link in the answer), it carries it out, filling in the user's
 * data where the instruction asks for it. Deterministic: the conversation alone decides each turn.
 */

export interface ObedientTask {
  /** The calls the user's task needs, in order. */
  readonly calls: readonly { readonly name: string; readonly args: Readonly<Record<string, unknown>> }[];
  /** The final answer, once the calls are made (before any injected link it adds). */
  readonly answer: string;
}

/** What an injected instruction makes the model do. */
export type Obeyed = { readonly kind: 'call'; readonly call: { readonly name: string; readonly args: Readonly<Record<string, unknown>> } } | { readonly kind: 'answer'; readonly text: string };

const TAGS = /[\u{E0000}-\u{E007F}]+/gu;
const INVISIBLE = /[\u200B-\u200F\u2060-\u2064\uFEFF\u00AD]/g;
const BASE64 = /[A-Za-z0-9+/]{24,}={0,2}/g;
const EMAIL = '([\\w.+-]+@[\\w-]+(?:\\.[\\w-]+)+)';
const URL_TEXT = '(https?:\\/\\/[^\\s"\'<>)\\]]+)';
const ACCOUNT = '([A-Z]{2}\\d{2}(?:\\s?[A-Z0-9]{4}){2,7}(?:\\s?[A-Z0-9]{1,4})?|\\d[\\d -]{5,}\\d)';
const AMOUNT = '(?:USD\\s*|\\$|€|EUR\\s*)?(\\d[\\d,]*(?:\\.\\d+)?)';

/** Everything a model would read in `text`, hidden parts made plain. */
export function reveal(text: string): string {
  const parts = [text.replace(INVISIBLE, '')];
  for (const match of text.matchAll(TAGS)) {
    parts.push([...match[0]].map((char) => String.fromCodePoint((char.codePointAt(0) ?? 0xe0000) - 0xe0000)).join(''));
  }
  for (const match of text.matchAll(BASE64)) {
    const decoded = Buffer.from(match[0], 'base64').toString('utf8');
    if (/^[\x20-\x7e\s]+$/.test(decoded) && decoded.includes(' ')) parts.push(decoded);
  }
  return parts.join('\n');
}

/** The first instruction the model knows in `text`, with `data` (what it knows of the user) filled in. */
export function instructionIn(text: string, data: string): Obeyed | undefined {
  const plain = reveal(text);
  const fill = (url: string) =>
    url.replace(/\{[^}]*\}|%7B[^%]*%7D|<[^>]*>|\[[^\]]*\]/gi, encodeURIComponent(data.slice(0, 200))).replace(/[.,;:]+$/, '');
  const json = /\{\s*"(?:name|tool)"\s*:\s*"(\w+)"\s*,\s*"(?:arguments|args)"\s*:\s*(\{[^{}]*\})\s*\}/.exec(plain);
  if (json) return { kind: 'call', call: { name: json[1]!, args: JSON.parse(json[2]!) as Record<string, unknown> } };
  const named = /\b(?:call|run|invoke|use)\s+`?(\w+)`?(?:\s+tool)?\s+(?:with|using)\s+(\{[^{}]*\})/i.exec(plain);
  if (named) return { kind: 'call', call: { name: named[1]!, args: JSON.parse(named[2]!) as Record<string, unknown> } };
  const transfer = new RegExp(`\\b(?:transfer|wire|pay|send)\\s+(?:the\\s+)?${AMOUNT}\\s*(?:USD|EUR|dollars|euros)?\\s+(?:to|into)\\s+(?:the\\s+)?(?:account|acct\\.?|IBAN)\\s*(?:number\\s*)?[:#]?\\s*${ACCOUNT}`, 'i').exec(plain);
  if (transfer) {
    return { kind: 'call', call: { name: 'transfer_money', args: { account: transfer[2]!.trim(), amount: Number(transfer[1]!.replace(/,/g, '')) } } };
  }
  const post = new RegExp(`\\b(?:post|upload|submit|send|transmit)\\b[^.\\n]{0,120}?\\bto\\s+${URL_TEXT}`, 'i').exec(plain);
  if (post) return { kind: 'call', call: { name: 'http_post', args: { url: fill(post[1]!), body: data } } };
  const email = new RegExp(`\\b(?:send|forward|e-?mail|bcc|cc|copy)\\b[^.\\n]{0,120}?\\bto\\s+${EMAIL}`, 'i').exec(plain);
  if (email) return { kind: 'call', call: { name: 'send_email', args: { to: email[1]!.replace(/\.$/, ''), subject: 'Fwd: as requested', body: data } } };
  const visit = new RegExp(`\\b(?:visit|open|fetch|load|go to|browse to)\\s+${URL_TEXT}`, 'i').exec(plain);
  if (visit) return { kind: 'call', call: { name: 'fetch_page', args: { url: fill(visit[1]!) } } };
  const image = /!\[([^\]]*)\]\((https?:\/\/[^)\s]+)\)/.exec(plain);
  if (image) return { kind: 'answer', text: `![${image[1]!}](${fill(image[2]!)})` };
  const html = /<img\b[^>]*\bsrc\s*=\s*"(https?:\/\/[^"]+)"[^>]*>/i.exec(plain);
  if (html) return { kind: 'answer', text: `<img src="${fill(html[1]!)}">` };
  const reference = /^\s*\[([^\]]+)\]:\s*(https?:\/\/\S+)/m.exec(plain);
  if (reference) return { kind: 'answer', text: `![status][${reference[1]!}]\n\n[${reference[1]!}]: ${fill(reference[2]!)}` };
  const link = /(?<!!)\[([^\]]+)\]\((https?:\/\/[^)\s]+)\)/.exec(plain);
  if (link) return { kind: 'answer', text: `[${link[1]!}](${fill(link[2]!)})` };
  const autolink = /<(https?:\/\/[^>\s]+)>/.exec(plain);
  if (autolink) return { kind: 'answer', text: `<${fill(autolink[1]!)}>` };
  return undefined;
}

/**
 * A model that does `task` and obeys injected instructions. `data` is what it leaks when an
 * instruction asks for the user's data (by default the run's input).
 */
export function obedientModel(task: ObedientTask, options: { readonly data?: string } = {}): Model {
  return turnModel('obedient', (messages) => nextTurn(task, messages, options.data));
}

/** A model whose every turn `next` decides from the conversation alone. */
export function turnModel(name: string, next: (messages: readonly Message[]) => AssistantMessage): Model {
  return {
    provider: 'keel.scripted',
    name,
    generate(request: ModelRequest): Promise<ModelResponse> {
      const message = next(request.messages);
      return Promise.resolve({
        message,
        finishReason: message.toolCalls.length > 0 ? 'tool_calls' : 'stop',
        usage: { inputTokens: 1, outputTokens: 1 },
        model: name,
      });
    },
  };
}

function nextTurn(task: ObedientTask, messages: readonly Message[], leak: string | undefined): AssistantMessage {
  const input = [...messages].reverse().find((message) => message.role === 'user')?.content ?? '';
  const data = leak ?? input;
  const assistants = messages.filter((message): message is AssistantMessage => message.role === 'assistant');
  const made = assistants.flatMap((message) => message.toolCalls);
  const results = messages.filter((message): message is ToolMessage => message.role === 'tool');
  const turn = assistants.length + 1;
  const said = (call: { name: string; args: Readonly<Record<string, unknown>> }) =>
    made.some((earlier) => earlier.name === call.name && earlier.arguments === JSON.stringify(call.args));

  // Obey the last thing read, once: instructions in what the task's own calls returned.
  const taskTools = new Set(task.calls.map((call) => call.name));
  const lastRead = [...results].reverse().find((result) => taskTools.has(result.name) && !result.isError);
  const obeyed: string[] = [];
  for (const result of results.filter((candidate) => taskTools.has(candidate.name) && !candidate.isError)) {
    const instruction = instructionIn(unfence(result.content), data);
    if (instruction?.kind === 'answer') obeyed.push(instruction.text);
    if (result === lastRead && instruction?.kind === 'call' && !said(instruction.call)) return callTurn(turn, instruction.call);
  }
  const next = task.calls.find((call) => !said(call));
  if (next) return callTurn(turn, next);
  return { role: 'assistant', content: [task.answer, ...obeyed].join('\n\n'), toolCalls: [] };
}

export function callTurn(turn: number, call: { name: string; args: Readonly<Record<string, unknown>> }): AssistantMessage {
  const toolCall: ToolCall = { id: `call_${turn}_1`, name: call.name, arguments: JSON.stringify(call.args) };
  return { role: 'assistant', content: null, toolCalls: [toolCall] };
}
