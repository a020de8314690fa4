import type { ContentChannel } from '../memory/channel';
import { EgressPolicy, type EgressRule } from '../sandbox/egress';

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
}

export interface ResolvedGuard {
  readonly enabled: boolean;
  readonly allowedHosts: EgressPolicy;
  readonly untrusted: Readonly<Record<ToolChannel, UntrustedAction>>;
}

/** Checks an agent's `guard` and fills in the defaults; throws an Error saying what is wrong. */
export function resolveGuard(config: GuardConfig | false | undefined): ResolvedGuard {
  if (config === false) return { enabled: false, allowedHosts: EgressPolicy.NONE, untrusted: DEFAULT_UNTRUSTED };
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
  return { enabled: true, allowedHosts, untrusted: { ...DEFAULT_UNTRUSTED, ...resolveUntrusted(config?.untrusted, '`guard.untrusted`') } };
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
