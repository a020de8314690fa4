import { ConfigError } from '../errors';
import { DEFAULT_DEDUP_WINDOW_MS, addressKind, targetsOf, type AlertChannelConfig, type AlertRule, type AlertsConfig } from './alertConfig';

/** The alerts a configuration resolves to, checked: every rule names channels that exist, or addresses. */
export interface ResolvedAlerts {
  readonly channels: Readonly<Record<string, AlertChannelConfig>>;
  readonly rules: readonly AlertRule[];
  readonly dedupWindowMs: number;
}

/** Checks what keel.config.ts says of alerts (and where `approvals.onTimeout` escalates to); a ConfigError names the first mistake. */
export function checkAlerts(config: AlertsConfig, onTimeout: 'reject' | { readonly escalateTo: string } | undefined): ResolvedAlerts {
  const channels = config.channels ?? {};
  const known = (target: string) => Object.hasOwn(channels, target) || addressKind(target) !== undefined;
  const names = Object.keys(channels);
  const described = names.length === 0 ? 'it declares no channels' : `its channels are ${names.join(', ')}`;
  for (const [index, rule] of (config.rules ?? []).entries()) {
    for (const target of targetsOf(rule.to)) {
      if (!known(target)) {
        throw new ConfigError(`alerts.rules.${index} sends ${rule.on} alerts to "${target}", which is neither a channel of alerts.channels nor an email address or URL (${described}).`);
      }
    }
    if (rule.on === 'spend' && [rule.agent, rule.model, rule.pool].filter((scope) => scope !== undefined).length > 1) {
      throw new ConfigError(`alerts.rules.${index}: a spend rule counts the spend of one agent, one model or one pool, not several (or of everything, naming none).`);
    }
  }
  if (typeof onTimeout === 'object' && !known(onTimeout.escalateTo)) {
    throw new ConfigError(`approvals.onTimeout.escalateTo names "${onTimeout.escalateTo}", which is neither a channel of alerts.channels nor an email address or URL (${described}).`);
  }
  return { channels, rules: config.rules ?? [], dedupWindowMs: config.dedupWindowMs ?? DEFAULT_DEDUP_WINDOW_MS };
}

/** The alerts as `keel config` shows them: webhook paths (which often hold a token) and SMTP users hidden. */
export function shownChannels(alerts: ResolvedAlerts): unknown {
  const channels = Object.fromEntries(
    Object.entries(alerts.channels).map(([name, channel]) => {
      switch (channel.type) {
        case 'editor':
          return [name, channel];
        case 'webhook':
          return [name, { ...channel, url: hideSecrets(channel.url), ...(channel.headers ? { headers: Object.fromEntries(Object.keys(channel.headers).map((key) => [key, '***'])) } : {}) }];
        case 'email':
          return [name, { ...channel, smtp: hideSecrets(channel.smtp) }];
      }
    }),
  );
  return { channels, rules: alerts.rules, dedupWindowMs: alerts.dedupWindowMs };
}

/** A URL with its credentials and everything after the host hidden: `https://hooks.slack.com/…`. */
export function hideSecrets(url: string): string {
  try {
    const parsed = new URL(url);
    const path = parsed.pathname === '/' && parsed.search === '' ? '' : '/…';
    return `${parsed.protocol}//${parsed.username ? '***@' : ''}${parsed.host}${path}`;
  } catch {
    return '***';
  }
}
