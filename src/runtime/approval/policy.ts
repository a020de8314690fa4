import type { Effect } from '../agent/toolContext';
import { AgentDefinitionError } from '../errors';

/** A tool call as approval rules see it, before it runs. */
export interface CallForApproval {
  readonly tool: string;
  readonly args: Readonly<Record<string, unknown>>;
  readonly effect: Effect;
  /** How sure the model said it is (0 to 1), when it was asked and said. */
  readonly confidence: number | undefined;
  /** Argument paths whose values come only from untrusted content (documents, tool output). */
  readonly untrustedArguments: readonly string[];
}

export interface ApprovalContext {
  readonly runId: string;
  readonly agent: string;
  readonly input: string;
}

/**
 * Decides whether a call needs a person: a reason (yes, shown to the person), `true` (yes), or
 * `false`/`undefined` (no).
 */
export interface ApprovalRule {
  when(call: CallForApproval, ctx: ApprovalContext): string | boolean | undefined;
  /** Set when the rule reads `call.confidence`: the model is then asked for one with every call. */
  readonly asksConfidence?: boolean;
}

export interface ApprovalPolicy {
  readonly rules: readonly ApprovalRule[];
  /** How long a request waits for a decision; none by default. */
  readonly timeoutMs?: number;
  /** What a deadline does: reject the call, or hand it to someone else for another `timeoutMs`. */
  readonly onTimeout?: 'reject' | { readonly escalateTo: string };
}

/** What agents and tools accept as `approval`: one rule, several, or a whole policy. */
export type ApprovalConfig = ApprovalRule | readonly ApprovalRule[] | ApprovalPolicy;

export function toPolicy(config: ApprovalConfig | undefined, where: string): ApprovalPolicy {
  if (config === undefined) return { rules: [] };
  const policy: ApprovalPolicy = isPolicy(config) ? config : { rules: Array.isArray(config) ? config : [config as ApprovalRule] };
  for (const rule of policy.rules) {
    if (typeof rule?.when !== 'function') {
      throw new AgentDefinitionError(`${where}: every approval rule needs a when(call, ctx) function, such as approvals.amountOver(500).`);
    }
  }
  if (policy.timeoutMs !== undefined && !(policy.timeoutMs > 0)) {
    throw new AgentDefinitionError(`${where}: approval timeoutMs must be a positive number of milliseconds.`);
  }
  return policy;
}

function isPolicy(config: ApprovalConfig): config is ApprovalPolicy {
  return !Array.isArray(config) && typeof config === 'object' && 'rules' in config;
}

export interface ApprovalNeeded {
  readonly reason: string;
  readonly deadlineMs: number | undefined;
  readonly onExpiry: 'reject' | 'escalate';
  readonly escalateTo: string | null;
}

/**
 * Applies a tool's rules, then its agent's: every rule that asks for approval adds its reason.
 * The tool's own deadline settings win over the agent's, and the agent's over the project's
 * defaults (keel.config.ts `approvals`).
 */
export function needsApproval(
  toolPolicy: ApprovalPolicy,
  agentPolicy: ApprovalPolicy,
  call: CallForApproval,
  ctx: ApprovalContext,
  defaults: Pick<ApprovalPolicy, 'timeoutMs' | 'onTimeout'> = {},
): ApprovalNeeded | undefined {
  const reasons: string[] = [];
  for (const rule of [...toolPolicy.rules, ...agentPolicy.rules]) {
    const verdict = rule.when(call, ctx);
    if (verdict === true) reasons.push(`${call.tool} requires approval`);
    else if (typeof verdict === 'string' && verdict.trim() !== '') reasons.push(verdict.trim());
  }
  if (reasons.length === 0) return undefined;
  const owner = [toolPolicy, agentPolicy, defaults].find((policy) => policy.timeoutMs !== undefined);
  const timeoutMs = owner?.timeoutMs;
  const onTimeout = owner?.onTimeout;
  return {
    reason: [...new Set(reasons)].join('; '),
    deadlineMs: timeoutMs,
    onExpiry: typeof onTimeout === 'object' ? 'escalate' : 'reject',
    escalateTo: typeof onTimeout === 'object' ? onTimeout.escalateTo : null,
  };
}

export function asksConfidence(...policies: readonly ApprovalPolicy[]): boolean {
  return policies.some((policy) => policy.rules.some((rule) => rule.asksConfidence === true));
}

/** Ready-made approval rules. */
export const approvals = {
  /** Calls whose amount (an argument, `amount` by default) is over `limit`: "over $500". */
  amountOver(limit: number, options: { field?: string; amount?: (args: Readonly<Record<string, unknown>>) => number | undefined; currency?: string } = {}): ApprovalRule {
    const currency = options.currency ?? '$';
    const read = options.amount ?? ((args) => {
      const value = args[options.field ?? 'amount'];
      return typeof value === 'number' ? value : undefined;
    });
    return {
      when: (call) => {
        const amount = read(call.args);
        return amount !== undefined && amount > limit ? `over ${currency}${limit}` : false;
      },
    };
  },

  /** Calls the model is less than `minimum` sure about (0 to 1); the model is asked to say. */
  lowConfidence(minimum = 0.7): ApprovalRule {
    return {
      asksConfidence: true,
      when: (call) => {
        if (call.confidence === undefined) return 'the model did not say how sure it is';
        return call.confidence < minimum
          ? `the model is only ${Math.round(call.confidence * 100)}% sure (below ${Math.round(minimum * 100)}%)`
          : false;
      },
    };
  },

  /** Calls to tools whose effect is `unsafe`: they cannot be taken back. */
  irreversible(): ApprovalRule {
    return { when: (call) => (call.effect === 'unsafe' ? `${call.tool} cannot be undone` : false) };
  },

  /** Calls whose arguments carry values found only in untrusted content (documents, tool output). */
  untrustedArguments(): ApprovalRule {
    return {
      when: (call) =>
        call.untrustedArguments.length > 0
          ? `${call.untrustedArguments.join(', ')} came from untrusted content`
          : false,
    };
  },

  /** Every call. */
  always(reason?: string): ApprovalRule {
    return { when: (call) => reason ?? `${call.tool} always needs approval` };
  },
};
