import { KeelError, describeError } from '../../errors';

/** Where a Restate server answers: its ingress (runs, decisions) or its admin API (registration). */
export interface RestateApi {
  readonly base: string;
  readonly api: 'ingress' | 'admin';
}

export const DEFAULT_INGRESS_URL = 'http://127.0.0.1:8080';
export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9070';

/** The Restate ingress the environment names (KEEL_RESTATE_URL), else Restate's default port on this machine. */
export function ingressUrlFrom(env: NodeJS.ProcessEnv = process.env): string {
  return env['KEEL_RESTATE_URL']?.trim() || DEFAULT_INGRESS_URL;
}

/** The Restate admin API the environment names (KEEL_RESTATE_ADMIN_URL), else Restate's default port on this machine. */
export function adminUrlFrom(env: NodeJS.ProcessEnv = process.env): string {
  return env['KEEL_RESTATE_ADMIN_URL']?.trim() || DEFAULT_ADMIN_URL;
}

/** How people point Keel at each API, for the errors that say it is not there. */
const SETTING: Readonly<Record<RestateApi['api'], string>> = {
  ingress: '--restate-url or KEEL_RESTATE_URL',
  admin: '--restate-admin or KEEL_RESTATE_ADMIN_URL',
};

/** Restate could not be reached, or refused a request. */
export class RestateRequestError extends KeelError {}

/**
 * One JSON request to a Restate server. Resolves with the answer's JSON (undefined for an empty
 * body); throws a RestateRequestError that says what to do when the server cannot be reached or refuses.
 */
export async function restateRequest(target: RestateApi, method: 'GET' | 'POST' | 'PATCH', path: string, body?: unknown, headers: Readonly<Record<string, string>> = {}): Promise<unknown> {
  const url = `${target.base.replace(/\/+$/, '')}${path}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause;
    throw new RestateRequestError(
      `restate-server is not reachable at ${target.base} (${describeError(cause ?? error)}): start it (\`npx restate-server\`, see docs/deployment.md) or point ${SETTING[target.api]} at its ${target.api === 'admin' ? 'admin API' : 'ingress'}.`,
      { cause: error },
    );
  }
  const text = await response.text();
  if (!response.ok) {
    let message = text.trim();
    try {
      const parsed = JSON.parse(text) as { message?: unknown };
      if (typeof parsed.message === 'string') message = parsed.message;
    } catch {
      // Not JSON: the text as it came.
    }
    throw new RestateRequestError(`Restate at ${target.base} answered ${method} ${path} with ${response.status}: ${message || response.statusText}`, {
      context: { status: response.status },
    });
  }
  return text.trim() === '' ? undefined : (JSON.parse(text) as unknown);
}
