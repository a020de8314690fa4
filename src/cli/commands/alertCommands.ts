import type { AlertRecord, DeliveryRecord, DeliveryStatus } from '../../runtime/alerts/outbox';
import { alertsOf } from '../../runtime/alerts/outbox';
import { KeelError } from '../../runtime/errors';
import { truncate } from '../../shared/format';
import type { Host } from '../../runtime/host/host';
import type { Style } from '../style';
import { UsageError, type Command } from '../command';
import { out, parse, style, withHost } from '../shared';

/** `keel alerts`: what the outbox holds (sent, pending, failed), a test of every channel, and delivering what is due. */

const STATUSES: readonly DeliveryStatus[] = ['pending', 'sent', 'failed'];

async function alerts(args: readonly string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'test') return test(rest);
  if (sub === 'deliver') return deliver(rest);
  const { values, positionals } = parse(args, { status: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } });
  if (positionals.length > 0) throw new UsageError(`keel alerts takes no "${positionals[0] ?? ''}": keel alerts [test | deliver] [--status pending|sent|failed]`);
  const status = values.status;
  if (status !== undefined && !(STATUSES as readonly string[]).includes(status)) throw new UsageError(`--status is pending, sent or failed (got "${status}").`);
  const limit = values.limit === undefined ? 50 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be a whole number of at least 1.');
  return withHost(values, async (host) => {
    const list = await alertsOf(host.store).list({ ...(status === undefined ? {} : { status: status as DeliveryStatus }), limit });
    if (values.json) {
      out.write(`${JSON.stringify(list, null, 2)}\n`);
      return 0;
    }
    if (list.length === 0) {
      const rules = host.config.alerts.rules.length;
      out.write(`${status === undefined ? 'No alerts' : `No alerts ${status}`} in ${host.store.location}.${rules === 0 ? ' keel.config.ts has no alert rules (alerts.rules; see docs/alerts.md).' : ''}\n`);
      return 0;
    }
    out.write(`${list.map((alert) => alertLines(alert, host, style).join('\n')).join('\n')}\n`);
    return 0;
  });
}

async function test(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' } });
  if (positionals.length > 0) throw new UsageError('keel alerts test takes no arguments: it sends one alert to every channel of keel.config.ts.');
  return withHost(values, async (host) => {
    host.usable();
    const alert = await host.alerts.test(Date.now());
    if (!alert) throw new KeelError('keel.config.ts declares no alert channels (alerts.channels), so there is nothing to test; see docs/alerts.md.');
    await host.alerts.dispatcher.drain(15_000);
    const sent = (await alertsOf(host.store).getAlert(alert.id)) ?? alert;
    if (values.json) out.write(`${JSON.stringify(sent, null, 2)}\n`);
    else out.write(`${alertLines(sent, host, style).join('\n')}\n`);
    // An editor channel is delivered by the runtime process of an editor window: pending here is not a failure.
    const editors = new Set(Object.entries(host.config.alerts.channels).filter(([, channel]) => channel.type === 'editor').map(([name]) => name));
    return sent.deliveries.every((delivery) => delivery.status === 'sent' || (delivery.status === 'pending' && editors.has(delivery.target))) ? 0 : 1;
  });
}

async function deliver(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { wait: { type: 'string' } });
  if (positionals.length > 0) throw new UsageError('keel alerts deliver takes no arguments.');
  const seconds = values.wait === undefined ? 30 : Number(values.wait);
  if (!Number.isFinite(seconds) || seconds < 0) throw new UsageError(`--wait needs a number of seconds of at least 0 (got "${values.wait ?? ''}").`);
  return withHost(values, async (host) => {
    host.usable();
    const { sent, pending } = await host.alerts.flush(seconds * 1000);
    out.write(`Sent ${sent} deliver${sent === 1 ? 'y' : 'ies'}; ${pending} alert${pending === 1 ? '' : 's'} still pending${pending > 0 ? ' (npx keel alerts --status pending)' : ''}.\n`);
    return 0;
  });
}

/** An alert and each of its deliveries, in a few lines. */
function alertLines(alert: AlertRecord, host: Host, paint: Style): string[] {
  const severity = alert.severity === 'error' ? paint.red(alert.severity) : alert.severity === 'warning' ? paint.yellow(alert.severity) : paint.dim(alert.severity);
  const repeats = alert.repeats > 0 ? paint.dim(` (×${alert.repeats + 1} within the dedup window)`) : '';
  const head = `${paint.bold(alert.id)} ${paint.dim(new Date(alert.at).toISOString())} ${severity} ${alert.event}  ${truncate(alert.title, 140)}${repeats}`;
  const width = Math.max(...alert.deliveries.map((delivery) => shownTarget(delivery.target).length), 0);
  return [head, ...alert.deliveries.map((delivery) => `  ${shownTarget(delivery.target).padEnd(width)}  ${deliveryText(delivery, host, paint)}`)];
}

/** A webhook URL that an escalation names may carry a token: only its host is shown. */
function shownTarget(target: string): string {
  return /^https?:\/\//i.test(target) ? target.replace(/^(https?:\/\/[^/]+).*$/i, '$1/…') : target;
}

function deliveryText(delivery: DeliveryRecord, host: Host, paint: Style): string {
  const attempts = `${delivery.attempts} attempt${delivery.attempts === 1 ? '' : 's'}`;
  switch (delivery.status) {
    case 'sent':
      return `${paint.green('sent')} ${new Date(delivery.sentAt ?? 0).toISOString()} (${attempts})`;
    case 'failed':
      return `${paint.red('failed')} after ${attempts}: ${delivery.lastError ?? ''}`;
    case 'pending': {
      if (host.config.alerts.channels[delivery.target]?.type === 'editor' && delivery.attempts === 0) {
        return `${paint.yellow('pending')}: shown when the runtime process of a VS Code window with Keel is running`;
      }
      const next = `next try ${new Date(delivery.nextAttemptAt).toISOString()}`;
      return `${paint.yellow('pending')}, ${next}${delivery.lastError ? ` (${attempts}; last: ${delivery.lastError})` : ''}`;
    }
  }
}

export const alertCommands: Readonly<Record<string, Command>> = {
  alerts: {
    usage: [
      'keel alerts [--status pending|sent|failed] [--limit <n>] [--json]   alerts and their deliveries',
      'keel alerts test [--json]                       send a test alert to every channel of keel.config.ts',
      'keel alerts deliver [--wait <seconds>]          deliver what is due now (a cron job, say)',
    ],
    run: alerts,
  },
};
