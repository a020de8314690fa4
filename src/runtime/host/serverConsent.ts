import type { ConfigSource, ResolvedConfig } from '../config/resolveConfig';
import { addressKind, targetsOf } from '../alerts/alertConfig';
import { KeelError } from '../errors';
import { isPostgresUrl } from '../../shared/storeLocation';

/**
 * What the editor knows of the person's consent. A project can name servers in its keel.config.ts
 * or its own settings (.vscode/settings.json); Keel would reach them with the person's credentials
 * (PGPASSWORD, ~/.pgpass, OTEL_EXPORTER_OTLP_HEADERS). It connects to such a server only once the
 * person allowed it for this workspace.
 */
export interface ServerConsent {
  /** The editor settings the workspace itself set, by full name (`keel.databasePath`). */
  readonly workspaceSettings: readonly string[];
  /** The servers the person allowed for this workspace, as `host:port`. */
  readonly allowed: readonly string[];
}

/** A server the project named that the person has not allowed yet; nothing was sent to it. */
export class ServerConsentError extends KeelError {
  constructor(
    readonly server: string,
    readonly what: string,
    readonly source: ConfigSource,
  ) {
    super(
      `This workspace's ${source} names ${what} at ${server}; ` +
        `Keel connects there with your credentials only once you allow it for this workspace.`,
      { context: { server, what, source } },
    );
  }
}

/**
 * The servers the configuration reaches with the person's credentials or the project's data: the
 * PostgreSQL database, the OTLP endpoint, and where alerts go (webhooks, and SMTP servers with the
 * password from the person's environment).
 */
function namedServers(config: ResolvedConfig): { key: string; what: string; url: string }[] {
  const servers: { key: string; what: string; url: string }[] = [];
  if (isPostgresUrl(config.database)) servers.push({ key: 'database', what: 'the PostgreSQL database for its runs', url: config.database });
  if (config.otlp?.endpoint) servers.push({ key: 'trace.otlp.endpoint', what: 'an OTLP endpoint for its traces', url: config.otlp.endpoint });
  for (const [name, channel] of Object.entries(config.alerts.channels)) {
    if (channel.type === 'webhook') servers.push({ key: 'alerts', what: `the webhook of its alert channel "${name}"`, url: channel.url });
    if (channel.type === 'email') servers.push({ key: 'alerts', what: `the SMTP server of its alert channel "${name}"`, url: channel.smtp });
  }
  for (const rule of config.alerts.rules) {
    for (const target of targetsOf(rule.to)) if (addressKind(target) === 'webhook') servers.push({ key: 'alerts', what: `a webhook its ${rule.on} alerts go to`, url: target });
  }
  const escalateTo = typeof config.approvalOnTimeout === 'object' ? config.approvalOnTimeout.escalateTo : undefined;
  if (escalateTo !== undefined && addressKind(escalateTo) === 'webhook') servers.push({ key: 'approvals.onTimeout', what: 'a webhook its overdue approvals escalate to', url: escalateTo });
  return servers;
}

/** The port a scheme means when a URL names none (SMTP as nodemailer takes it: submission, or TLS from the start). */
const DEFAULT_PORTS: Readonly<Record<string, string>> = { 'postgres:': '5432', 'postgresql:': '5432', 'https:': '443', 'http:': '80', 'smtp:': '587', 'smtps:': '465' };

/** `host:port` of a server's URL, with the scheme's default port. */
export function serverOf(url: string): string {
  const parsed = new URL(url);
  const port = parsed.port || DEFAULT_PORTS[parsed.protocol] || '80';
  return `${parsed.hostname}:${port}`;
}

/** Throws ServerConsentError for the first server the workspace named that the person has not allowed. */
export function checkServerConsent(config: ResolvedConfig, consent: ServerConsent): void {
  for (const { key, what, url } of namedServers(config)) {
    const source = config.entries.find((entry) => entry.key === key)?.source;
    if (source === undefined) continue;
    const named = source === 'keel.config.ts' || (source.startsWith('setting ') && consent.workspaceSettings.includes(source.slice('setting '.length)));
    if (!named) continue;
    const server = serverOf(url);
    if (!consent.allowed.includes(server)) throw new ServerConsentError(server, what, source);
  }
}
