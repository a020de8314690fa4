import { KeelError, describeError } from '../errors';
import { NonRetryableError, RetryableError } from '../effects/retry';
import { addressKind, targetsOf, type AlertChannelConfig, type EmailChannel, type WebhookChannel } from './alertConfig';
import type { AlertRecord } from './outbox';

/**
 * Sending one alert to one target. A failure worth another attempt throws what
 * effects/retry.classifyError calls transient (a dropped connection, HTTP 429 or 5xx, an SMTP 4xx
 * reply); one that cannot succeed throws NonRetryableError.
 */

/** Shows an alert in the editor; set by a runtime process that an editor window talks to. */
export type EditorSink = (alert: AlertRecord) => void;

export interface ChannelContext {
  readonly channels: Readonly<Record<string, AlertChannelConfig>>;
  readonly editor: EditorSink | undefined;
  readonly env: NodeJS.ProcessEnv;
  /** How long one webhook request or SMTP conversation may take. */
  readonly timeoutMs: number;
}

/** The channel a target names: a configured channel, or an address (an email address goes through the first email channel's server). */
export function channelFor(target: string, channels: Readonly<Record<string, AlertChannelConfig>>): AlertChannelConfig {
  const named = Object.hasOwn(channels, target) ? channels[target] : undefined;
  if (named) return named;
  switch (addressKind(target)) {
    case 'webhook':
      return { type: 'webhook', url: target, format: 'json' };
    case 'email': {
      const server = Object.values(channels).find((channel): channel is EmailChannel => channel.type === 'email');
      if (!server) {
        throw new NonRetryableError(`Keel cannot email ${target}: keel.config.ts declares no email channel whose SMTP server it could send through (alerts.channels).`);
      }
      return { ...server, to: target };
    }
    case undefined:
      throw new NonRetryableError(`"${target}" is not a channel of alerts.channels in keel.config.ts, nor an email address or URL.`);
  }
}

/** Whether this process can deliver to the target now: editor channels only where an editor listens. */
export function canDeliver(target: string, context: Pick<ChannelContext, 'channels' | 'editor'>): boolean {
  const named = Object.hasOwn(context.channels, target) ? context.channels[target] : undefined;
  return named?.type !== 'editor' || context.editor !== undefined;
}

export async function send(alert: AlertRecord, target: string, context: ChannelContext): Promise<void> {
  const channel = channelFor(target, context.channels);
  switch (channel.type) {
    case 'editor':
      if (!context.editor) throw new RetryableError('No editor window is listening.');
      context.editor(alert);
      return;
    case 'webhook':
      return postWebhook(alert, channel, context.timeoutMs);
    case 'email':
      return sendEmail(alert, channel, context);
  }
}

/** Keel's own JSON for an alert: what receivers of the generic webhook get. */
export function alertJson(alert: AlertRecord): Record<string, unknown> {
  return {
    id: alert.id,
    idempotencyKey: alert.id,
    event: alert.event,
    severity: alert.severity,
    title: alert.title,
    body: alert.body,
    runId: alert.runId,
    at: new Date(alert.at).toISOString(),
    repeats: alert.repeats,
    facts: alert.facts,
  };
}

/** A Slack-compatible message (incoming webhooks, and the many chat tools that take the same shape). */
export function slackMessage(alert: AlertRecord): Record<string, unknown> {
  const icon = alert.severity === 'error' ? ':rotating_light:' : alert.severity === 'warning' ? ':warning:' : ':information_source:';
  return {
    text: `${icon} ${alert.title}`,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `${icon} *${escapeSlack(alert.title)}*\n${escapeSlack(alert.body)}` } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: `Keel · ${alert.event} · ${new Date(alert.at).toISOString()} · ${alert.id}` }] },
    ],
  };
}

function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

async function postWebhook(alert: AlertRecord, channel: WebhookChannel, timeoutMs: number): Promise<void> {
  const body = channel.format === 'slack' ? slackMessage(alert) : alertJson(alert);
  let response: Response;
  try {
    response = await fetch(channel.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': alert.id, 'user-agent': 'keel-alerts', ...channel.headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    });
  } catch (error) {
    // A refused or dropped connection, a timeout: the receiver may be back later.
    throw new RetryableError(`The webhook could not be reached: ${describeError(error)}`, { cause: error });
  }
  await response.body?.cancel();
  if (response.ok) return;
  throw new KeelError(`The webhook answered HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}.`, {
    context: { status: response.status, ...retryAfter(response.headers) },
  });
}

function retryAfter(headers: Headers): { retryAfterMs?: number } {
  const value = headers.get('retry-after');
  if (value === null) return {};
  const seconds = Number(value);
  return Number.isFinite(seconds) ? { retryAfterMs: seconds * 1000 } : {};
}

async function sendEmail(alert: AlertRecord, channel: EmailChannel, context: ChannelContext): Promise<void> {
  // Loaded when an email is sent: most commands never send one.
  const nodemailer = await import('nodemailer');
  const url = new URL(channel.smtp);
  if (channel.passwordEnv !== undefined) {
    const password = context.env[channel.passwordEnv];
    if (password === undefined) throw new NonRetryableError(`The SMTP password is to come from ${channel.passwordEnv}, which is not set.`);
    url.password = encodeURIComponent(password);
  }
  const transport = nodemailer.createTransport(url.toString(), {});
  try {
    await transport.sendMail({
      from: channel.from,
      to: [...targetsOf(channel.to)],
      subject: `[Keel] ${alert.title}`,
      text: `${alert.body}\n\n${alert.event} · ${new Date(alert.at).toISOString()} · ${alert.id}\n`,
      messageId: `<${alert.id}@keel.alerts>`,
      headers: { 'X-Keel-Alert': alert.id, 'X-Keel-Event': alert.event },
    });
  } catch (error) {
    throw smtpFailure(error);
  } finally {
    transport.close();
  }
}

/** An SMTP failure as retry classes see it: 4xx replies and lost connections are transient, 5xx replies are not. */
function smtpFailure(error: unknown): Error {
  const facts = error as { responseCode?: unknown; code?: unknown };
  const message = `The SMTP server refused or failed: ${describeError(error)}`;
  if (typeof facts.responseCode === 'number') {
    return facts.responseCode >= 500 ? new NonRetryableError(message, { cause: error }) : new RetryableError(message, { cause: error });
  }
  if (facts.code === 'EAUTH' || facts.code === 'EENVELOPE') return new NonRetryableError(message, { cause: error });
  return new RetryableError(message, { cause: error });
}
