import type { ToolCallContext } from '../agent/toolContext';
import { EgressPolicy, type EgressRule } from './egress';

/** What a tool marked `sandbox` may use, as written in defineTool. Everything not granted is denied. */
export interface SandboxConfig {
  /** Where `ctx.fetch` may go. Default: nowhere. */
  readonly egress?: readonly EgressRule[];
  /** The isolate's heap limit in MB (at least 8). Default 32. */
  readonly memoryMb?: number;
  /** CPU time one call may use, in ms. Default 1000. */
  readonly cpuMs?: number;
  /** Wall-clock time one call may take, waiting for the network included, in ms. Default 10000. */
  readonly timeoutMs?: number;
}

/** A sandbox grant with every default filled in and its egress allow-list parsed. */
export interface SandboxGrant {
  readonly egress: EgressPolicy;
  readonly memoryMb: number;
  readonly cpuMs: number;
  readonly timeoutMs: number;
}

export const DEFAULT_SANDBOX_GRANT: SandboxGrant = Object.freeze({
  egress: EgressPolicy.NONE,
  memoryMb: 32,
  cpuMs: 1_000,
  timeoutMs: 10_000,
});

const MIN_MEMORY_MB = 8;
const MAX_MEMORY_MB = 4_096;

/** Turns `sandbox: true | {...}` into a grant; throws an Error saying which part is wrong. */
export function sandboxGrant(config: true | SandboxConfig): SandboxGrant {
  if (config === true) return DEFAULT_SANDBOX_GRANT;
  if (typeof config !== 'object' || config === null) {
    throw new Error('`sandbox` must be true or an object such as { egress: [\'api.example.com\'], memoryMb: 32, cpuMs: 500 }.');
  }
  const number = (key: 'memoryMb' | 'cpuMs' | 'timeoutMs', min: number, max: number): number => {
    const value = config[key] ?? DEFAULT_SANDBOX_GRANT[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new Error(`sandbox.${key} must be a whole number from ${min} to ${max} (got ${JSON.stringify(value)}).`);
    }
    return value;
  };
  let egress: EgressPolicy;
  try {
    egress = EgressPolicy.parse(config.egress ?? []);
  } catch (error) {
    throw new Error(`sandbox.${error instanceof Error ? error.message : String(error)}`);
  }
  return Object.freeze({
    egress,
    memoryMb: number('memoryMb', MIN_MEMORY_MB, MAX_MEMORY_MB),
    cpuMs: number('cpuMs', 1, 3_600_000),
    timeoutMs: number('timeoutMs', 1, 3_600_000),
  });
}

/** What `ctx.fetch` takes inside the sandbox: a subset of the Fetch API's RequestInit. */
export interface SandboxRequestInit {
  readonly method?: string;
  /** A plain object or a list of [name, value] pairs. */
  readonly headers?: Readonly<Record<string, string>> | readonly (readonly [string, string])[];
  /** Text only; JSON.stringify objects yourself. */
  readonly body?: string;
  readonly redirect?: 'follow' | 'manual' | 'error';
}

/** What `ctx.fetch` resolves to inside the sandbox: a subset of the Fetch API's Response. */
export interface SandboxResponse {
  readonly ok: boolean;
  readonly status: number;
  readonly statusText: string;
  readonly url: string;
  readonly redirected: boolean;
  readonly headers: {
    get(name: string): string | null;
    has(name: string): boolean;
    forEach(callback: (value: string, name: string) => void): void;
  };
  text(): Promise<string>;
  json(): Promise<unknown>;
}

export type SandboxFetch = (url: string, init?: SandboxRequestInit) => Promise<SandboxResponse>;

/**
 * The context a sandboxed tool's `run` receives: the call's identity, `log`, and `fetch` mediated
 * by the host and checked against the tool's egress allow-list. `signal` is never aborted inside:
 * a cancelled call is stopped by disposing its isolate. Sub-agents cannot be started from inside.
 */
export interface SandboxToolContext extends ToolCallContext {
  readonly fetch: SandboxFetch;
}
