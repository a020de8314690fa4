import type { ConfigSource, ResolvedConfig } from '../config/resolveConfig';
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

/** The servers the configuration reaches with the person's credentials: the PostgreSQL database and the OTLP endpoint. */
function namedServers(config: ResolvedConfig): { key: string; what: string; url: string }[] {
  const servers: { key: string; what: string; url: string }[] = [];
  if (isPostgresUrl(config.database)) servers.push({ key: 'database', what: 'the PostgreSQL database for its runs', url: config.database });
  if (config.otlp?.endpoint) servers.push({ key: 'trace.otlp.endpoint', what: 'an OTLP endpoint for its traces', url: config.otlp.endpoint });
  return servers;
}

/** `host:port` of a server's URL, with the scheme's default port. */
export function serverOf(url: string): string {
  const parsed = new URL(url);
  const port = parsed.port || (/^postgres(ql)?:$/.test(parsed.protocol) ? '5432' : parsed.protocol === 'https:' ? '443' : '80');
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
