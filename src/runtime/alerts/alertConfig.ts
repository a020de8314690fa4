/**
 * Alerts as keel.config.ts declares them: named channels (the editor, webhooks, email) and rules
 * saying which events go to which channels. See docs/alerts.md.
 */

/** What can raise an alert. */
export const ALERT_EVENTS = [
  'budget_warning',
  'budget_exceeded',
  'spend',
  'run_failed',
  'flag',
  'circuit_open',
  'approval_waiting',
  'escalation',
  'judge_drift',
  'provider_overrun',
] as const;
export type AlertEvent = (typeof ALERT_EVENTS)[number];

/** A notification in the editor, with an action that opens the run: shown by the runtime process of an open VS Code window. */
export interface EditorChannel {
  readonly type: 'editor';
}

/** An HTTP POST of the alert: Keel's JSON, or a Slack-compatible message (`{ text, blocks }`, as incoming webhooks take it). */
export interface WebhookChannel {
  readonly type: 'webhook';
  readonly url: string;
  readonly format?: 'json' | 'slack';
  /** Extra request headers, such as an authorization token. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** An email over SMTP (nodemailer). */
export interface EmailChannel {
  readonly type: 'email';
  /** `smtp://user@host:port` or `smtps://…`; the password comes from `passwordEnv`, never from the file. */
  readonly smtp: string;
  /** The environment variable holding the SMTP password, if the server wants one. */
  readonly passwordEnv?: string;
  readonly from: string;
  readonly to: string | readonly string[];
}

export type AlertChannelConfig = EditorChannel | WebhookChannel | EmailChannel;

interface RuleBase {
  /** Channel names, or addresses: an email address or an http(s) webhook URL. */
  readonly to: string | readonly string[];
  /** Only runs of this agent. */
  readonly agent?: string;
}

export type AlertRule =
  | (RuleBase & { readonly on: 'budget_warning' | 'budget_exceeded' | 'run_failed' | 'circuit_open' | 'escalation' | 'judge_drift' | 'provider_overrun' })
  | (RuleBase & {
      readonly on: 'flag';
      /** Only these detector flags (`ignored_tool_error`, `missing_required_tool`…); all by default. */
      readonly kinds?: readonly string[];
      /** Only flags of this severity or worse. */
      readonly severity?: 'warning' | 'error';
    })
  | (RuleBase & {
      readonly on: 'spend';
      /** The threshold, in USD, within one UTC hour or day. */
      readonly usd: number;
      readonly per: 'hour' | 'day';
      /** Spend of one model (`openai:gpt-4o`) or one shared pool, instead of all (or one agent's). */
      readonly model?: string;
      readonly pool?: string;
    })
  | (RuleBase & {
      readonly on: 'approval_waiting';
      /** How long an approval may wait for a decision before this rule sends it. */
      readonly afterMs: number;
    });

export interface AlertsConfig {
  readonly channels?: Readonly<Record<string, AlertChannelConfig>>;
  readonly rules?: readonly AlertRule[];
  /** An alert like one raised within this window (the same breaker open again, the same pool warned) is not sent again. Default one hour. */
  readonly dedupWindowMs?: number;
}

export const DEFAULT_DEDUP_WINDOW_MS = 3_600_000;

/** Whether `target` is an address rather than a channel name: an email address or an http(s) URL. */
export function addressKind(target: string): 'email' | 'webhook' | undefined {
  if (/^https?:\/\//i.test(target)) return 'webhook';
  if (/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(target)) return 'email';
  return undefined;
}

/** The list of recipients a rule or channel names. */
export function targetsOf(to: string | readonly string[]): readonly string[] {
  return typeof to === 'string' ? [to] : to;
}
