import type { EngineKind } from '../runtime/engine/engine';
import { RestateEngine } from '../runtime/engine/restateEngine';
import { adminUrlFrom, ingressUrlFrom } from '../runtime/engine/restate/restateHttp';
import type { CheckpointStore } from '../runtime/store/checkpointStore';
import { UsageError } from './shared';

/** Where runs execute, as `--engine` (or KEEL_ENGINE) says: `local` by default, or `restate`. */

/** Where Restate's ingress and admin API are, for every command that may reach a run on Restate. */
export const RESTATE_FLAGS = {
  'restate-url': { type: 'string' },
  'restate-admin': { type: 'string' },
} as const;

export const ENGINE_FLAGS = { engine: { type: 'string' }, ...RESTATE_FLAGS } as const;

export function engineKind(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): EngineKind {
  const value = (flag ?? env['KEEL_ENGINE'] ?? 'local').trim();
  if (value === 'local' || value === 'restate') return value;
  throw new UsageError(`--engine must be local or restate (got "${value}").`);
}

/** The Restate ingress: `--restate-url`, else KEEL_RESTATE_URL, else Restate's default port on this machine. */
export function restateIngressUrl(flag: string | undefined): string {
  return flag ?? ingressUrlFrom();
}

/** The Restate admin API: `--restate-admin`, else KEEL_RESTATE_ADMIN_URL, else Restate's default port on this machine. */
export function restateAdminUrl(flag: string | undefined): string {
  return flag ?? adminUrlFrom();
}

/** The Restate engine at the ingress and admin API the flags (or the environment) name. */
export function restateEngine(store: CheckpointStore, flags: { readonly 'restate-url'?: string | undefined; readonly 'restate-admin'?: string | undefined }): RestateEngine {
  return new RestateEngine(store, { ingressUrl: restateIngressUrl(flags['restate-url']), adminUrl: restateAdminUrl(flags['restate-admin']) });
}
