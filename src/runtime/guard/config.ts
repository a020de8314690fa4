import { EgressPolicy, type EgressRule } from '../sandbox/egress';
import { canonical, escapeRegExp } from './normalize';

/**
 * Where a piece of content came from, which decides how far the model may trust it: `user` for
 * what a person wrote (the run's input, an edit in the CLI or the editor), `document` for documents
 * an agent was given, `tool_output` for what tools returned. Only `user` content is trusted; the
 * other two are data, never instructions.
 */
export type ContentChannel = 'user' | 'document' | 'tool_output';

/**
 * Every piece of content carries its channel (see ContentChannel): `user` is the run's input, which
 * gives instructions; tool results are `document` (content a third party wrote that a tool brought
 * in: a web page, an email body, a file, search results, a calendar invite) or `tool_output` (the
 * result of a tool of the agent's own: an API answer, a database row). Both are data, never
 * instructions.
 */
export type ToolChannel = Exclude<ContentChannel, 'user'>;

export const TOOL_CHANNELS: readonly ToolChannel[] = ['document', 'tool_output'];

/**
 * What a side-effecting call does when one of its arguments carries a value found only in
 * untrusted content: wait for a person (`approve`), fail with a tool error the model reads
 * (`refuse`), or go ahead (`allow`). `approve_destinations` waits for a person only when the value
 * says where something goes (a destination: an email address, a URL's host, an IBAN, an account
 * or card number of 8 digits or more) and lets other values (ids, dates, amounts) go ahead.
 */
export type UntrustedAction = 'approve' | 'refuse' | 'allow' | 'approve_destinations';

/** What an action does with one value: an action for every value, or one for destinations and one for the rest. */
export type ValueAction = Exclude<UntrustedAction, 'approve_destinations'>;

const ACTIONS: readonly UntrustedAction[] = ['approve', 'refuse', 'allow', 'approve_destinations'];
const ACTION_LIST = "'approve', 'refuse', 'allow' or 'approve_destinations'";

/** The action on one value from untrusted content, by whether it is a destination. */
export function actionOnValue(action: UntrustedAction, destination: boolean): ValueAction {
  if (action !== 'approve_destinations') return action;
  return destination ? 'approve' : 'allow';
}

/** One action for every channel, or one per channel (the others keep their default). */
export type UntrustedPolicy = UntrustedAction | { readonly document?: UntrustedAction; readonly tool_output?: UntrustedAction };

/**
 * Values from documents need a person's approval before they can direct a side effect. Values from
 * the agent's own tools' output may, unless they are destinations: a new recipient, host or
 * account that a tool's output brought in waits for a person too. Set `untrusted: 'approve'` to
 * hold every value from both.
 */
export const DEFAULT_UNTRUSTED: Readonly<Record<ToolChannel, UntrustedAction>> = { document: 'approve', tool_output: 'approve_destinations' };

/** Whose word a trusted tool result is: the user's own data, or a source the user named in the run's input. */
export type TrustedSource = 'user' | 'named';

/** A tool call as a trust rule sees it. */
export interface TrustCall {
  readonly tool: string;
  readonly args: Readonly<Record<string, unknown>>;
  /** The run's input: what the user asked. */
  readonly input: string;
}

/**
 * Whether a tool's results are trusted like the user's own words, so that values in them may
 * direct side effects without a person (they are still fenced as data and screened):
 * - `'user'`: every result is the user's own data: their CRM, their accounting system, their notes.
 * - `{ namedByUser: 'path' }` (or a list of argument names): a result is trusted when the run's
 *   input names the value of each of these arguments: the invoice file, the record id, the
 *   document the user pointed at. A call the model makes for something the user did not name
 *   stays untrusted.
 * - a function of the call, which returns `'user'`, `'named'` or `false`.
 *
 * Trust only what the user vouches for. An inbox or a web page is written by others, even when
 * the user names the message or the page: an email the user points at can still carry a forged
 * bank account.
 */
export type ToolTrust = 'user' | { readonly namedByUser: string | readonly string[] } | ((call: TrustCall) => TrustedSource | false | undefined);

/** A tool's trust, checked: whose word a call's result is, or undefined when it is untrusted. */
export type TrustRule = (call: TrustCall) => TrustedSource | undefined;

/** An agent's `guard`: the defenses against untrusted content. `false` turns them all off. */
export interface GuardConfig {
  /**
   * Hosts the final answer may link to or show images from, in the egress rule syntax
   * (`docs.example.com`, `https://*.example.org`, `http://localhost:8080`). Hosts named in the
   * run's input are allowed too.
   */
  readonly allowedHosts?: readonly EgressRule[];
  /** What a side-effecting call carrying values from untrusted content does; see DEFAULT_UNTRUSTED. */
  readonly untrusted?: UntrustedPolicy;
  /**
   * Tools of this agent whose results it trusts, by name (see ToolTrust): `{ crm_lookup: 'user',
   * read_invoice: { namedByUser: 'path' } }`. It adds to, and overrides, the tools' own `trust`.
   */
  readonly trust?: Readonly<Record<string, ToolTrust>>;
}

export interface ResolvedGuard {
  readonly enabled: boolean;
  readonly allowedHosts: EgressPolicy;
  readonly untrusted: Readonly<Record<ToolChannel, UntrustedAction>>;
  /** The agent's trust in its tools' results, by tool name. */
  readonly trust: ReadonlyMap<string, TrustRule>;
}

/** Checks an agent's `guard` (against the names of its tools) and fills in the defaults; throws an Error saying what is wrong. */
export function resolveGuard(config: GuardConfig | false | undefined, toolNames: readonly string[] = []): ResolvedGuard {
  if (config === false) return { enabled: false, allowedHosts: EgressPolicy.NONE, untrusted: DEFAULT_UNTRUSTED, trust: new Map() };
  if (config !== undefined && (typeof config !== 'object' || config === null || Array.isArray(config))) {
    throw new Error('`guard` must be an object such as { allowedHosts: [...], untrusted: "approve" }, or false.');
  }
  let allowedHosts = EgressPolicy.NONE;
  if (config?.allowedHosts !== undefined) {
    try {
      allowedHosts = EgressPolicy.parse(config.allowedHosts);
    } catch (error) {
      throw new Error(`\`guard.allowedHosts\`: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }
  const trust = new Map<string, TrustRule>();
  const entries = config?.trust;
  if (entries !== undefined) {
    if (typeof entries !== 'object' || entries === null || Array.isArray(entries)) {
      throw new Error("`guard.trust` must be an object of tool names, such as { crm_lookup: 'user' }.");
    }
    for (const [tool, rule] of Object.entries(entries)) {
      if (!toolNames.includes(tool)) throw new Error(`\`guard.trust\` names ${JSON.stringify(tool)}, which is not one of the agent's tools.`);
      const resolved = resolveTrust(rule, `\`guard.trust.${tool}\``);
      if (resolved) trust.set(tool, resolved);
    }
  }
  return { enabled: true, allowedHosts, untrusted: { ...DEFAULT_UNTRUSTED, ...resolveUntrusted(config?.untrusted, '`guard.untrusted`') }, trust };
}

/** A tool's `trust` as a rule; throws an Error when it is malformed. */
export function resolveTrust(trust: ToolTrust | undefined, what: string): TrustRule | undefined {
  if (trust === undefined) return undefined;
  if (trust === 'user') return () => 'user';
  if (typeof trust === 'function') return (call) => trust(call) || undefined;
  const named = typeof trust === 'object' && trust !== null && !Array.isArray(trust) ? (trust as { namedByUser?: unknown }).namedByUser : undefined;
  const names = typeof named === 'string' ? [named] : named;
  if (!Array.isArray(names) || names.length === 0 || !names.every((name) => typeof name === 'string')) {
    throw new Error(`${what} must be 'user', { namedByUser: 'argument' } (or a list of argument names) or a function of the call (got ${JSON.stringify(trust)}).`);
  }
  return ({ args, input }) => (names.every((name) => namedIn(args[name], input)) ? 'named' : undefined);
}

/** Whether `input` names `value` as a whole: `invoices/acme.txt` names that file, not `acme.txt` or `invoices/acme.txt.bak`. */
function namedIn(value: unknown, input: string): boolean {
  if ((typeof value !== 'string' || value.trim() === '') && typeof value !== 'number') return false;
  const wanted = escapeRegExp(canonical(String(value)).trim());
  return new RegExp(`(?<![^\\s"'\`(<\\[{])${wanted}(?=$|[\\s"'\`)>\\]},;:!?]|\\.(?:\\s|$))`, 'u').test(canonical(input));
}

/** A tool's or agent's `untrusted` as an action per channel it sets; throws an Error when it is malformed. */
export function resolveUntrusted(policy: UntrustedPolicy | undefined, what: string): Partial<Record<ToolChannel, UntrustedAction>> {
  if (policy === undefined) return {};
  if (typeof policy === 'string') {
    if (!ACTIONS.includes(policy)) throw new Error(`${what} must be ${ACTION_LIST} (got ${JSON.stringify(policy)}).`);
    return { document: policy, tool_output: policy };
  }
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) {
    throw new Error(`${what} must be ${ACTION_LIST.replace(' or ', ', ')} or an object such as { document: 'refuse' }.`);
  }
  const resolved: Partial<Record<ToolChannel, UntrustedAction>> = {};
  for (const [key, action] of Object.entries(policy)) {
    if (!TOOL_CHANNELS.includes(key as ToolChannel)) {
      throw new Error(`${what} names ${JSON.stringify(key)}; the channels are ${TOOL_CHANNELS.join(' and ')}.`);
    }
    if (action === undefined) continue;
    if (!ACTIONS.includes(action as UntrustedAction)) {
      throw new Error(`${what}.${key} must be ${ACTION_LIST} (got ${JSON.stringify(action)}).`);
    }
    resolved[key as ToolChannel] = action as UntrustedAction;
  }
  return resolved;
}

/** Checks a tool's `channel`; throws an Error when it is not one. */
export function resolveChannel(channel: unknown): ToolChannel {
  if (channel === undefined) return 'tool_output';
  if (!TOOL_CHANNELS.includes(channel as ToolChannel)) {
    throw new Error(`\`channel\` must be 'document' or 'tool_output' (got ${JSON.stringify(channel)}).`);
  }
  return channel as ToolChannel;
}
